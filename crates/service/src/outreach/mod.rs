//! Reaching customers: campaigns to a segment's consenting customers (composed, sent, counted),
//! a staff member's messages to one customer, and the mail that comes back (replies, bounces).
//! One context because the three share their mail: a campaign's bounce lands on a delivery, a
//! reply on a thread, and both are told apart by the same tagged return address.

use std::sync::{Arc, OnceLock};

pub(crate) mod campaigns;
pub mod inbound;
pub mod messages;
pub mod sending;

/// Campaigns, staff messages and the mail that comes back. Cheap to clone (its senders run
/// in tasks of their own).
#[derive(Clone)]
pub struct Outreach {
    door: Arc<crate::door::Door>,
    campaigns: Arc<dyn steward_store::CampaignStore>,
    messages: Arc<dyn steward_store::MessageStore>,
    records: Arc<crate::records::Records>,
    segments: crate::segments::Segments,
    purposes: Arc<crate::purposes::Purposes>,
    consents: Arc<crate::consent::Consents>,
    keys: Arc<crate::customer_keys::CustomerKeys>,
    notices: Arc<crate::notice::Notices>,
    /// What a campaign recommends (its `{recommendations}`).
    personalisation: Arc<crate::personalise::Personalisation>,
    /// Who a campaign is sent as (its sender's roles now).
    identity: Arc<crate::identity::Identity>,
    /// Signs every campaign message (DKIM).
    dkim: Arc<steward_crypto::DkimKey>,
    /// Seals the links in messages (one-click unsubscribe).
    links: Arc<steward_crypto::LinkKey>,
    /// How mail leaves, once the operator has said.
    mail: Arc<OnceLock<Arc<sending::Mail>>>,
    /// Where staff messages are handed over (the notifier the opener set).
    notifier: Arc<OnceLock<Arc<dyn crate::notify::Notifier>>>,
}

/// What outreach is wired to.
pub(crate) struct OutreachParts {
    pub(crate) door: Arc<crate::door::Door>,
    pub(crate) campaigns: Arc<dyn steward_store::CampaignStore>,
    pub(crate) messages: Arc<dyn steward_store::MessageStore>,
    pub(crate) records: Arc<crate::records::Records>,
    pub(crate) segments: crate::segments::Segments,
    pub(crate) purposes: Arc<crate::purposes::Purposes>,
    pub(crate) consents: Arc<crate::consent::Consents>,
    pub(crate) keys: Arc<crate::customer_keys::CustomerKeys>,
    pub(crate) notices: Arc<crate::notice::Notices>,
    pub(crate) personalisation: Arc<crate::personalise::Personalisation>,
    pub(crate) identity: Arc<crate::identity::Identity>,
    pub(crate) dkim: steward_crypto::DkimKey,
    pub(crate) links: Arc<steward_crypto::LinkKey>,
    pub(crate) notifier: Arc<OnceLock<Arc<dyn crate::notify::Notifier>>>,
}

impl Outreach {
    /// Wires outreach to its stores and the services it asks; mail is configured later.
    pub(crate) fn new(p: OutreachParts) -> Self {
        Outreach {
            door: p.door,
            campaigns: p.campaigns,
            messages: p.messages,
            records: p.records,
            segments: p.segments,
            purposes: p.purposes,
            consents: p.consents,
            keys: p.keys,
            notices: p.notices,
            personalisation: p.personalisation,
            identity: p.identity,
            dkim: Arc::new(p.dkim),
            links: p.links,
            mail: Arc::default(),
            notifier: p.notifier,
        }
    }

    fn door(&self) -> &crate::door::Door {
        &self.door
    }

    fn purposes(&self) -> &crate::purposes::Purposes {
        &self.purposes
    }

    fn consents(&self) -> &crate::consent::Consents {
        &self.consents
    }

    fn keys(&self) -> &crate::customer_keys::CustomerKeys {
        &self.keys
    }

    /// The delivery an unsubscribe link's token stands for, if it is one (read only).
    pub(crate) async fn link_delivery(
        &self,
        token: &str,
    ) -> crate::error::ServiceResult<steward_store::DeliveryRow> {
        let id = self
            .links
            .open("unsubscribe", token)
            .map(|b| steward_domain::DeliveryId(uuid::Uuid::from_bytes(b)))
            .ok_or(crate::ServiceError::NotFound("link"))?;
        self.campaigns
            .delivery(id)
            .await?
            .ok_or(crate::ServiceError::NotFound("link"))
    }

    /// The campaigns customer `id` was a recipient of, with their delivery and when it was
    /// sent. Undecided: for the customer's own export, after its decision.
    pub(crate) async fn deliveries_of(
        &self,
        id: steward_domain::CustomerId,
    ) -> crate::error::ServiceResult<
        Vec<(
            steward_store::CampaignRow,
            steward_store::DeliveryRow,
            Option<i64>,
        )>,
    > {
        Ok(self.campaigns.customer_deliveries(id).await?)
    }

    /// Counts delivery `id` as unsubscribed (again: no change); whether this was the first time.
    pub(crate) async fn mark_unsubscribed(
        &self,
        id: steward_domain::DeliveryId,
    ) -> crate::error::ServiceResult<bool> {
        Ok(self
            .campaigns
            .mark_unsubscribed(id, steward_domain::Timestamp::now().millis())
            .await?)
    }
}
