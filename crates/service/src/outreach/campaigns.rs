//! Campaigns (issue 18, point 2): marketing composes a message to a segment under a marketing
//! purpose; the templates are checked against what the purpose may use, a preview is rendered
//! with a fictional customer, and the campaign shows counts only. Sending it evaluates the
//! segment once, under the policy, and queues one delivery per member; the sender
//! ([`crate::sending`]) decides each recipient again at send time.

use serde::Serialize;
use steward_domain::campaign::{self, Template};
use steward_domain::{CampaignId, SegmentId, Timestamp, ValidationError};
use steward_policy::Action;
use steward_store::{CampaignRow, DeliveryCounts, DeliveryState, Sender};

use super::Outreach;
use crate::door::About;
use crate::error::{ServiceError, ServiceResult};
use crate::{Actor, Principal};

/// What a campaign has done so far: counts, never recipients.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct CampaignCounts {
    /// Messages waiting to be handed to the mail server.
    pub queued: u64,
    /// Messages handed over.
    pub sent: u64,
    /// Members not sent to: no consent at send time, frequency cap, undeliverable address.
    pub skipped: u64,
    /// Hand-overs that failed.
    pub failed: u64,
    /// Recipients who unsubscribed from it.
    pub unsubscribed: u64,
    /// Messages whose hand-over was interrupted (the server may or may not have taken them):
    /// never sent again.
    pub uncertain: u64,
    /// Messages being handed over now.
    pub sending: u64,
}

/// The counts of a campaign's deliveries.
pub(crate) fn counts_of(c: &DeliveryCounts) -> CampaignCounts {
    let mut out = CampaignCounts {
        unsubscribed: c.unsubscribed,
        ..CampaignCounts::default()
    };
    for (state, _, n) in &c.by_state {
        let slot = match state {
            DeliveryState::Queued => &mut out.queued,
            DeliveryState::Sending => &mut out.sending,
            DeliveryState::Sent => &mut out.sent,
            DeliveryState::Uncertain => &mut out.uncertain,
            DeliveryState::Failed => &mut out.failed,
            DeliveryState::Skipped => &mut out.skipped,
        };
        *slot += n;
    }
    out
}

/// A purpose's key as people read it (`marketing_email` → "marketing email").
pub(crate) fn purpose_words(key: &str) -> String {
    key.replace('_', " ")
}

/// A campaign as marketing sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CampaignView {
    /// Its id.
    pub id: CampaignId,
    /// The segment it goes to.
    pub segment_id: SegmentId,
    /// The purpose it is sent under.
    pub purpose: String,
    /// The subject's template.
    pub subject: String,
    /// The body's template.
    pub body: String,
    /// `draft`, `sending` or `sent`.
    pub status: String,
    /// Counts only.
    pub counts: CampaignCounts,
    /// The subject and body as a fictional customer (Alex Example) would read them.
    pub preview: Preview,
    /// When it was composed.
    pub created_at: Timestamp,
    /// When sending started.
    pub started_at: Option<Timestamp>,
    /// When its last message was settled.
    pub finished_at: Option<Timestamp>,
}

/// A rendered message.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Preview {
    /// The subject line.
    pub subject: String,
    /// The body.
    pub body: String,
}

/// A stored campaign's subject and body templates (they were validated when composed: one that
/// no longer parses has been changed under the service).
pub(crate) fn templates(r: &CampaignRow) -> ServiceResult<(Template, Template)> {
    let parse =
        |field, text: &str| Template::parse(field, text).map_err(|_| ServiceError::Integrity);
    Ok((parse("subject", &r.subject)?, parse("body", &r.body)?))
}

fn view(r: CampaignRow, counts: CampaignCounts) -> ServiceResult<CampaignView> {
    let (subject, body) = templates(&r)?;
    Ok(CampaignView {
        preview: Preview {
            subject: subject.render(campaign::sample_value),
            body: body.render(campaign::sample_value),
        },
        id: r.id,
        segment_id: r.segment_id,
        purpose: r.purpose,
        subject: r.subject,
        body: r.body,
        status: r.status,
        counts,
        created_at: Timestamp(r.created_at),
        started_at: r.started_at.map(Timestamp),
        finished_at: r.finished_at.map(Timestamp),
    })
}

impl Outreach {
    /// Composes a campaign (marketing): the segment must exist, the purpose be marketing
    /// communication the caller may declare, and every placeholder a field it covers. One
    /// audit entry; nothing is sent.
    pub async fn create_campaign(
        &self,
        principal: &Principal,
        segment: SegmentId,
        purpose: &str,
        subject: &str,
        body: &str,
        skip_without_recommendations: bool,
    ) -> ServiceResult<CampaignView> {
        self.door()
            .authorize(principal, Action::ManageCampaigns, None)
            .await?;
        let purpose = self.purposes().get("purpose", purpose)?;
        // Decided by the policy's `purpose-bound-to-roles`, as for a read under the purpose.
        self.records.check_declarable(&crate::Access {
            principal,
            purpose: &purpose,
            reason: None,
            break_glass: false,
        })?;
        if self.segments.segment_row(segment).await?.is_none() {
            return Err(ValidationError::new("segment_id", "no such segment").into());
        }
        let valid = campaign::validate(&purpose, subject, body)?;
        if skip_without_recommendations
            && !valid
                .body
                .placeholders()
                .any(|p| p == campaign::Placeholder::Recommendations)
        {
            return Err(ValidationError::new(
                "without_recommendations",
                "skip applies only to a body with {{recommendations}}",
            )
            .into());
        }
        let row = CampaignRow {
            id: CampaignId::new(),
            segment_id: segment,
            purpose: purpose.key.clone(),
            subject: valid.subject_text,
            body: valid.body_text,
            status: "draft".to_owned(),
            created_by: self.door().pseudonym(&principal.asker().id),
            created_at: Timestamp::now().millis(),
            sender: None,
            started_at: None,
            finished_at: None,
            skip_without_recommendations,
        };
        let id = row.id.to_string();
        let about = About {
            subject: Some(&id),
            purpose: Some(&purpose.key),
        };
        let entry = self.door().write_entry_for(
            Actor::Principal(principal),
            "create_campaign",
            None,
            &[],
            about,
        );
        self.campaigns.insert_campaign(&row, &[entry]).await?;
        view(row, CampaignCounts::default())
    }

    /// One campaign: its templates, preview, status and counts (marketing).
    pub async fn campaign(
        &self,
        principal: &Principal,
        id: CampaignId,
    ) -> ServiceResult<CampaignView> {
        self.door()
            .authorize(principal, Action::ManageCampaigns, None)
            .await?;
        let row = self
            .campaigns
            .campaign(id)
            .await?
            .ok_or(ServiceError::NotFound("campaign"))?;
        let counts = self.campaigns.delivery_counts(id).await?;
        view(row, counts_of(&counts))
    }

    /// Whether `principal` may compose and send campaigns (the console offers them only then).
    pub async fn may_manage_campaigns(&self, principal: &Principal) -> bool {
        self.door()
            .authorize(principal, Action::ManageCampaigns, None)
            .await
            .is_ok()
    }

    /// Every campaign, newest first (marketing).
    pub async fn campaigns(&self, principal: &Principal) -> ServiceResult<Vec<CampaignView>> {
        self.door()
            .authorize(principal, Action::ManageCampaigns, None)
            .await?;
        let store = &self.campaigns;
        let mut out = Vec::new();
        for row in store.campaigns().await? {
            let counts = counts_of(&store.delivery_counts(row.id).await?);
            out.push(view(row, counts)?);
        }
        Ok(out)
    }

    /// Starts sending a draft (marketing): the segment is evaluated once, under the campaign's
    /// purpose and the policy, as sizing it is (and counted against the same hourly budget);
    /// each member gets a queued delivery, and the campaign is recorded as one audit entry
    /// with the number of recipients. A segment that reaches fewer customers than the size
    /// threshold is refused: a message to so few is a message to individuals.
    pub async fn send_campaign(
        &self,
        principal: &Principal,
        id: CampaignId,
    ) -> ServiceResult<CampaignView> {
        self.door()
            .authorize(principal, Action::ManageCampaigns, None)
            .await?;
        let mail = self.mail()?;
        let store = &self.campaigns;
        let row = store
            .campaign(id)
            .await?
            .ok_or(ServiceError::NotFound("campaign"))?;
        if row.status != "draft" {
            return Err(ServiceError::WrongState(
                "the campaign has been sent already",
            ));
        }
        let id_text = id.to_string();
        let record = |outcome: &str, recipients: Option<usize>| {
            let mut leaf = crate::door::leaf(
                self.door().actor_parts(Actor::Principal(principal)),
                "send_campaign",
                None,
                &[],
                About {
                    subject: Some(&id_text),
                    purpose: Some(&row.purpose),
                },
                "used",
                outcome,
            );
            if let Some(n) = recipients {
                leaf.categories
                    .insert("recipients".to_owned(), n.to_string());
            }
            leaf
        };
        let members = match self.campaign_members(principal, &row).await {
            Ok(m) => m,
            // A refused send evaluated (or tried to evaluate) the segment: on the record too.
            Err(e) => {
                self.door().audit().append(&record("deny", None)).await?;
                return Err(e);
            }
        };
        let sender = Sender {
            staff: principal.staff_id,
            token: principal.token_id,
        };
        let started = store
            .start_campaign(
                id,
                sender,
                &members,
                Timestamp::now().millis(),
                &[crate::door::row_of(record("done", Some(members.len())))],
            )
            .await?;
        if !started {
            return Err(ServiceError::WrongState(
                "the campaign has been sent already",
            ));
        }
        mail.wake.notify_one();
        self.campaign(principal, id).await
    }

    /// The members a campaign goes to: the segment evaluated under the campaign's purpose for
    /// the caller, each usable for the address and the template's fields too, at least as many
    /// as the size threshold.
    async fn campaign_members(
        &self,
        principal: &Principal,
        row: &CampaignRow,
    ) -> ServiceResult<Vec<steward_domain::CustomerId>> {
        let purpose = self.purposes().get("purpose", &row.purpose)?;
        campaign::check_purpose(&purpose)?;
        let (subject, body) = templates(row)?;
        let uses = campaign::categories_used(&subject, &body);
        self.segments.audience(
            principal,
            &purpose,
            row.segment_id,
            &uses,
            "the segment reaches too few customers under this purpose for a campaign (fewer than the size threshold); write to customers one by one instead",
        )
        .await
    }
}
