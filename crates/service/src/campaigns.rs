//! Campaigns (issue 18, point 2): marketing composes a message to a segment under a marketing
//! purpose; the templates are checked against what the purpose may use, a preview is rendered
//! with a fictional customer, and the campaign shows counts only. Sending (consent checked per
//! recipient at send time, the frequency cap, delivery) is not built yet: a campaign stays a
//! draft.

use serde::Serialize;
use steward_domain::campaign::{self, Template};
use steward_domain::{CampaignId, SegmentId, Timestamp, ValidationError};
use steward_policy::Action;
use steward_store::CampaignRow;

use crate::error::{ServiceError, ServiceResult};
use crate::vault::About;
use crate::{Actor, Principal, Vault};

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
    /// `draft` (sending is not available yet), `sending` or `sent`.
    pub status: String,
    /// Counts only.
    pub counts: CampaignCounts,
    /// The subject and body as a fictional customer (Alex Example) would read them.
    pub preview: Preview,
    /// When it was composed.
    pub created_at: Timestamp,
}

/// A rendered message.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Preview {
    /// The subject line.
    pub subject: String,
    /// The body.
    pub body: String,
}

fn view(r: CampaignRow) -> ServiceResult<CampaignView> {
    let render = |field, text: &str| {
        Template::parse(field, text)
            .map(|t| t.render(campaign::sample_value))
            .map_err(|_| ServiceError::Integrity)
    };
    Ok(CampaignView {
        preview: Preview {
            subject: render("subject", &r.subject)?,
            body: render("body", &r.body)?,
        },
        id: r.id,
        segment_id: r.segment_id,
        purpose: r.purpose,
        subject: r.subject,
        body: r.body,
        status: r.status,
        counts: CampaignCounts::default(),
        created_at: Timestamp(r.created_at),
    })
}

impl Vault {
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
    ) -> ServiceResult<CampaignView> {
        self.authorize(principal, Action::ManageCampaigns, None)
            .await?;
        let purpose = self.purpose("purpose", purpose)?;
        // Decided by the policy's `purpose-bound-to-roles`, as for a read under the purpose.
        self.check_declarable(&crate::Access {
            principal,
            purpose: &purpose,
            reason: None,
            break_glass: false,
        })?;
        if self.inner.stores.segments.segment(segment).await?.is_none() {
            return Err(ValidationError::new("segment_id", "no such segment").into());
        }
        let valid = campaign::validate(&purpose, subject, body)?;
        let row = CampaignRow {
            id: CampaignId::new(),
            segment_id: segment,
            purpose: purpose.key.clone(),
            subject: valid.subject_text,
            body: valid.body_text,
            status: "draft".to_owned(),
            created_by: self.pseudonym(&principal.asker().id),
            created_at: Timestamp::now().millis(),
        };
        let id = row.id.to_string();
        let about = About {
            subject: Some(&id),
            purpose: Some(&purpose.key),
        };
        let entry = self.write_entry_for(
            Actor::Principal(principal),
            "create_campaign",
            None,
            &[],
            about,
        );
        self.inner
            .stores
            .campaigns
            .insert_campaign(&row, &[entry])
            .await?;
        view(row)
    }

    /// One campaign: its templates, preview, status and counts (marketing).
    pub async fn campaign(
        &self,
        principal: &Principal,
        id: CampaignId,
    ) -> ServiceResult<CampaignView> {
        self.authorize(principal, Action::ManageCampaigns, None)
            .await?;
        let row = self
            .inner
            .stores
            .campaigns
            .campaign(id)
            .await?
            .ok_or(ServiceError::NotFound("campaign"))?;
        view(row)
    }

    /// Every campaign, newest first (marketing).
    pub async fn campaigns(&self, principal: &Principal) -> ServiceResult<Vec<CampaignView>> {
        self.authorize(principal, Action::ManageCampaigns, None)
            .await?;
        self.inner
            .stores
            .campaigns
            .campaigns()
            .await?
            .into_iter()
            .map(view)
            .collect()
    }
}
