//! The customer privacy portal: a customer signs in with a one-time code sent to the e-mail
//! address on record, then sees everything held about them, sets their consents, downloads
//! their export, asks for a correction or erasure and reads who looked at their data.
//!
//! A portal session acts only on its own customer, so it needs no policy decision: the
//! customer is the one the data is about (GDPR Art. 15–21). Every step is in the audit log with
//! the customer as the actor (`subject`).

use steward_domain::{
    ConsentAction, ConsentEvent, ConsentInput, ConsentSource, ConsentState, Customer, CustomerId,
    IdentityCheck, Interaction, Purchase, Purpose, RequestInput, RequestStatus, RequestType,
    Timestamp, ValidationError,
};
use uuid::Uuid;

use crate::error::{ServiceError, ServiceResult};
use crate::portal_access::SESSION_MS;
use crate::{Actor, Vault};

/// Most purchases and interactions the overview lists (the export holds all).
const OVERVIEW_ROWS: u32 = 200;

/// A customer signed in to the portal. Made only by [`crate::PortalAccess`], from a checked code or
/// session cookie: it is the customer's capability to act on their own data, so no other crate
/// can build one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSession {
    /// The session.
    pub(crate) id: Uuid,
    /// Whose portal it is.
    pub(crate) customer_id: CustomerId,
    /// When it ends.
    pub(crate) expires_at: Timestamp,
}

impl PortalSession {
    /// Whose portal it is.
    pub fn customer_id(&self) -> CustomerId {
        self.customer_id
    }

    /// When it ends.
    pub fn expires_at(&self) -> Timestamp {
        self.expires_at
    }

    /// When the session began (sessions last a fixed time).
    pub fn began_at(&self) -> Timestamp {
        Timestamp(self.expires_at.millis() - SESSION_MS)
    }
}

/// What the portal shows a signed-in customer.
#[derive(Debug)]
pub struct PortalOverview {
    /// The profile, unsealed.
    pub customer: Customer,
    /// Newest purchases first would need a reverse scan; these are the first recorded.
    pub purchases: Vec<Purchase>,
    /// The first recorded interactions.
    pub interactions: Vec<Interaction>,
    /// Whether there are more purchases or interactions than listed (the export has them all).
    pub truncated: bool,
    /// Consent state and history.
    pub consents: ConsentState,
    /// Every purpose, with its notice.
    pub purposes: Vec<Purpose>,
    /// When the customer agreed to personalisation: the purchases of theirs it uses (special
    /// categories left out), as (item, when) — the portal's "Why you see these".
    pub personalisation: Option<Vec<(String, steward_domain::Timestamp)>>,
    /// Fewest customers an item must have been bought by to be recommended to anyone.
    pub personalisation_k: u32,
}

impl Vault {
    /// Everything held about the signed-in customer, unsealed for them alone; recorded as a
    /// `portal.view` entry.
    pub async fn portal_overview(&self, s: &PortalSession) -> ServiceResult<PortalOverview> {
        let id = s.customer_id;
        let (customer, mut purchases, mut interactions, consents) = tokio::try_join!(
            self.records().get_customer(id),
            self.records().list_purchases(id, None, OVERVIEW_ROWS + 1),
            self.records()
                .list_interactions(id, None, OVERVIEW_ROWS + 1),
            self.consents().ledger(id),
        )?;
        let limit = OVERVIEW_ROWS as usize;
        let truncated = purchases.len() > limit || interactions.len() > limit;
        purchases.truncate(limit);
        interactions.truncate(limit);
        let entry =
            self.portal_access()
                .portal_entry(s, "portal.view", &crate::vault::whole_record());
        self.door().record(&[entry]).await?;
        let personalisation = consents
            .granted(crate::personalise::PURPOSE)
            .then(|| self.personalisation().personalisation_inputs(&purchases));
        Ok(PortalOverview {
            customer,
            purchases,
            interactions,
            truncated,
            consents,
            purposes: self.purposes().all(),
            personalisation,
            personalisation_k: self.personalisation().personalisation_k(),
        })
    }

    /// Grants or withdraws a consent-based purpose from the portal (source `portal`), with its
    /// signed receipt. (The portal honours `Sec-GPC: 1` before every form it takes: see
    /// [`Vault::portal_honour_gpc`].)
    pub async fn portal_consent(
        &self,
        s: &PortalSession,
        purpose: &str,
        action: ConsentAction,
    ) -> ServiceResult<(ConsentEvent, String)> {
        let p = self.purposes().get("purpose", purpose)?;
        let input = ConsentInput {
            purpose: p.key.clone(),
            action,
            source: ConsentSource::Portal,
        };
        self.write_consent(
            Actor::Subject(crate::auth::Myself(s.customer_id)),
            s.customer_id,
            &p,
            &input,
        )
        .await
    }

    /// Honours `Sec-GPC: 1` for a portal customer: withdraws, with source `gpc`, each purpose
    /// the signal covers that is granted now — unless the customer granted it themself in the
    /// portal: that explicit choice for this business stands over the browser's general signal
    /// (as the CCPA regulations allow, §7025(c)(3)), and the portal says so beside the toggle.
    pub async fn portal_honour_gpc(
        &self,
        s: &PortalSession,
    ) -> ServiceResult<Vec<(ConsentEvent, String)>> {
        let id = s.customer_id;
        let state = self.consents().ledger(id).await?;
        let mut out = Vec::new();
        for p in self
            .purposes()
            .all()
            .into_iter()
            .filter(|p| p.withdrawn_by_gpc())
        {
            let last = state.history.iter().rev().find(|e| e.purpose == p.key);
            let own_grant = last.is_some_and(|e| {
                e.action == ConsentAction::Grant.as_str()
                    && e.source == ConsentSource::Portal.as_str()
            });
            if own_grant || !state.granted(&p.key) {
                continue;
            }
            let input = ConsentInput {
                purpose: p.key.clone(),
                action: ConsentAction::Withdraw,
                source: ConsentSource::Gpc,
            };
            out.push(
                self.write_consent(Actor::Subject(crate::auth::Myself(id)), id, &p, &input)
                    .await?,
            );
        }
        Ok(out)
    }

    /// Takes a request from the signed-in customer — verified by the code they signed in
    /// with — and fulfils it at once as the API does for a verified request: an erasure erases
    /// (unless a legal hold denies it), a correction of an unverified field applies, one of a
    /// verified field waits for staff to confirm.
    pub async fn portal_request(
        &self,
        s: &PortalSession,
        kind: RequestType,
        corrections: Option<serde_json::Value>,
    ) -> ServiceResult<crate::RequestView> {
        if kind == RequestType::Erasure {
            return Err(ServiceError::WrongState(
                "an erasure from the portal goes through portal_erase",
            ));
        }
        self.take_portal_request(s, kind, corrections).await
    }

    /// The signed-in customer's erasure. From a session that began less than 15 minutes after
    /// a contact change it needs `fresh`: the challenge and code of [`crate::PortalAccess::portal_fresh_code`]
    /// (issue 15, finding 1: a taken-over portal could otherwise erase the customer).
    pub async fn portal_erase(
        &self,
        s: &PortalSession,
        fresh: Option<(Uuid, &str)>,
    ) -> ServiceResult<crate::RequestView> {
        if self.portal_access().erasure_recheck(s).await?.is_some() {
            let Some((challenge, code)) = fresh else {
                return Err(ValidationError::new(
                    "code",
                    "your contact details changed recently: confirm the erasure with the code we send you",
                )
                .into());
            };
            self.portal_access()
                .portal_check_fresh_code(s, challenge, code)
                .await?;
        }
        self.take_portal_request(s, RequestType::Erasure, None)
            .await
    }

    async fn take_portal_request(
        &self,
        s: &PortalSession,
        kind: RequestType,
        corrections: Option<serde_json::Value>,
    ) -> ServiceResult<crate::RequestView> {
        let id = s.customer_id;
        let input = RequestInput {
            kind,
            customer_id: id,
            identity_verified: None,
            corrections,
        };
        input.validate()?;
        let row = self.new_request_row(&input).await?;
        let actor = Actor::Subject(crate::auth::Myself(id));
        let entry = self.request_entry(actor, "request.create", &row);
        self.request_ledger().insert(&row, &[entry]).await?;
        self.request_arrived(&row);
        let row = self.verified(actor, row, IdentityCheck::EmailCode).await?;
        if kind == RequestType::Erasure {
            self.portal_access().forget_portal(s.id);
        }
        crate::rights::view(&row)
    }

    /// The signed-in customer's export (everything held, as a ZIP), recorded as a fulfilled
    /// export request so it appears in the DPO's records.
    pub async fn portal_export(
        &self,
        s: &PortalSession,
    ) -> ServiceResult<crate::subject_export::SubjectExport> {
        let view = self.portal_request(s, RequestType::Export, None).await?;
        if view.status != RequestStatus::Fulfilled {
            return Err(ServiceError::WrongState("the export could not be prepared"));
        }
        self.export_subject(
            Actor::Subject(crate::auth::Myself(s.customer_id)),
            s.customer_id,
        )
        .await
    }

    /// The signed-in customer's access log with inclusion proofs, newest first, entries below
    /// `before` (default: all), and who outside the business received their data under which
    /// agreement (issue 22); the view is recorded as one `portal.access_log` entry.
    pub async fn portal_access_log(
        &self,
        s: &PortalSession,
        before: Option<u64>,
        limit: u32,
    ) -> ServiceResult<PortalLog> {
        let entry = self
            .portal_access()
            .portal_entry(s, "portal.access_log", &[]);
        self.door().record(&[entry]).await?;
        Ok(PortalLog {
            log: self
                .audit()
                .access_log_of(s.customer_id, before, limit)
                .await?,
            disclosures: self.sharing().disclosures_unrecorded(s.customer_id).await?,
        })
    }
}

/// What the portal's access-log page shows the customer: their access log and the disclosures
/// of their data to recipients.
#[derive(Debug, Clone)]
pub struct PortalLog {
    /// Who looked at their data, with proofs.
    pub log: crate::AccessLog,
    /// Who outside the business received it.
    pub disclosures: Vec<crate::sharing::Disclosure>,
}
