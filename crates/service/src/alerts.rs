//! Access alerts for the DPO: a break-glass read, a fraud review, a bulk-access refusal. Each is an
//! audit entry and a row the DPO lists; a stated reason is a staff member's words about a
//! customer, sealed under that customer's key (erasure shreds it) and opened one alert at a time.

use std::sync::Arc;

use serde::Serialize;
use steward_domain::{AuditLeaf, CustomerId, Timestamp};
use steward_policy::Action;
use steward_store::AlertStore;
use uuid::Uuid;

use crate::Principal;
use crate::access::Flagged;
use crate::customer_keys::CustomerKeys;
use crate::door::Door;
use crate::dpo_notify::DpoNotices;
use crate::error::{ServiceError, ServiceResult};
use crate::notice::Notices;
use crate::seal;

/// An access alert, as the DPO sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Alert {
    /// Id.
    pub id: String,
    /// When.
    pub occurred_at: Timestamp,
    /// `break_glass`, `fraud_review` or `bulk_access`.
    pub kind: String,
    /// The principal's pseudonym (staff id, or `token-<id>` for a service client).
    pub principal: String,
    /// The customer concerned, if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// The declared purpose.
    pub purpose: String,
    /// What happened.
    pub detail: String,
    /// Whether a reason was given (read it with `GET /v1/alerts/{id}`).
    pub has_reason: bool,
    /// The reason, on `GET /v1/alerts/{id}` only (absent once the customer is erased).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Alert {
    fn new(a: steward_store::AlertRow, reason: Option<String>) -> Self {
        Alert {
            id: Uuid::from_slice(&a.id)
                .map(|u| u.to_string())
                .unwrap_or_default(),
            occurred_at: Timestamp(a.occurred_at),
            kind: a.kind,
            principal: a.principal,
            customer_id: a.customer_id.map(|c| c.to_string()),
            purpose: a.purpose,
            detail: a.detail,
            has_reason: a.reason.is_some(),
            reason,
        }
    }
}

/// The alerts' context.
pub struct Alerts {
    door: Arc<Door>,
    store: Arc<dyn AlertStore>,
    keys: Arc<CustomerKeys>,
    /// Opening a reason is a personal read: not before the notice is acknowledged.
    notices: Arc<Notices>,
    dpo: Arc<DpoNotices>,
}

impl Alerts {
    /// The alerts of one installation (made by the composition root).
    pub(crate) fn new(
        door: Arc<Door>,
        store: Arc<dyn AlertStore>,
        keys: Arc<CustomerKeys>,
        notices: Arc<Notices>,
        dpo: Arc<DpoNotices>,
    ) -> Self {
        Alerts {
            door,
            store,
            keys,
            notices,
            dpo,
        }
    }

    /// How many alerts were raised since `since` (Unix ms; at most 1,000 counted): the DPO's badge.
    pub(crate) async fn count_since(&self, since: i64) -> ServiceResult<usize> {
        Ok(self
            .store
            .list_alerts(None, 1_000)
            .await?
            .iter()
            .filter(|a| a.occurred_at >= since)
            .count())
    }

    /// Raises an alert for the DPO about `access` (a read under a declared purpose, or one
    /// counted by the bulk guard): appended to the audit log, listed for the DPO (its reason
    /// sealed under the customer's key), and the DPO told by mail.
    pub(crate) async fn raise(
        &self,
        kind: &str,
        access: &Flagged<'_>,
        customer: Option<CustomerId>,
        detail: String,
    ) -> ServiceResult<()> {
        let principal = access.principal.asker().id;
        let pseudonym = self.door.pseudonym(&principal);
        // The pseudonym, as in the audit log: no staff id in log lines.
        tracing::warn!(kind, principal = %pseudonym, "access alert");
        let now = Timestamp::now();
        let leaf = AuditLeaf {
            v: steward_domain::audit::LEAF_VERSION,
            time: now,
            principal: pseudonym,
            roles: access.principal.roles.clone(),
            outlets: access.principal.outlets.clone(),
            action: "alert".into(),
            customer,
            subject: None,
            purpose: Some(access.purpose.to_owned()),
            categories: Default::default(),
            policies: Default::default(),
            reason_length: access
                .reason
                .map(|r| {
                    u32::try_from(steward_domain::normalize::visible_chars(r)).unwrap_or(u32::MAX)
                })
                .unwrap_or(0),
            break_glass: access.break_glass,
            outcome: kind.to_owned(),
        };
        self.door.audit().append(&leaf).await?;
        let alert_id = Uuid::now_v7();
        // The reason is the staff member's words about a customer: sealed under that customer's
        // key (erasure shreds it), opened only for the DPO, one alert at a time.
        let reason = match (customer, access.reason) {
            (Some(c), Some(r)) => {
                let dk = self.keys.of(c).await?;
                Some(seal::seal_alert_reason(&dk, c, alert_id, r)?)
            }
            _ => None,
        };
        let row = steward_store::AlertRow {
            id: alert_id.as_bytes().to_vec(),
            occurred_at: now.millis(),
            kind: kind.to_owned(),
            principal,
            customer_id: customer,
            purpose: access.purpose.to_owned(),
            detail,
            reason,
        };
        self.store.insert_alert(&row).await?;
        self.dpo.notify(
            "Access alert",
            format!(
                "An access alert ({kind}) was raised at {} by {}. Review it on the console's data protection page: /console/dpo\n\nThis message names no customer.\n",
                now.to_rfc3339(),
                row.principal
            ),
        );
        Ok(())
    }

    /// One access alert with its reason opened, for the DPO; the opening is itself an audit entry
    /// about the customer (`read_alert_reason`). No reason once the customer is erased.
    pub async fn with_reason(&self, principal: &Principal, id: Uuid) -> ServiceResult<Alert> {
        self.door
            .authorize(principal, Action::ReadAlerts, None)
            .await?;
        // The reason is a staff member's words about a customer: a personal read.
        if self.notices.must_acknowledge(principal) {
            return Err(ServiceError::AcknowledgementRequired);
        }
        let row = self
            .store
            .get_alert(id.as_bytes())
            .await?
            .ok_or(ServiceError::NotFound("alert"))?;
        let reason = match (row.customer_id, &row.reason) {
            (Some(c), Some(sealed)) => {
                let entry = self.door.write_entry_marked(
                    crate::Actor::Principal(principal),
                    "read_alert_reason",
                    Some(c),
                    &["reason"],
                    crate::door::About {
                        subject: None,
                        purpose: Some(&row.purpose),
                    },
                    "show",
                );
                self.door.record(&[entry]).await?;
                match self.keys.of(c).await {
                    Ok(dk) => Some(seal::open_alert_reason(&dk, c, id, sealed)?),
                    // Erased: the key is gone, and the reason with it.
                    Err(ServiceError::NotFound(_)) => None,
                    Err(e) => return Err(e),
                }
            }
            _ => None,
        };
        Ok(Alert::new(row, reason))
    }

    /// Access alerts (bulk access, break-glass), newest first, for the DPO.
    pub async fn list(&self, principal: &Principal, limit: u32) -> ServiceResult<Vec<Alert>> {
        self.door
            .authorize(principal, Action::ReadAlerts, None)
            .await?;
        self.door
            .record_read(crate::Actor::Principal(principal), "read_alerts", None, &[])
            .await?;
        let rows = self.store.list_alerts(None, limit).await?;
        Ok(rows.into_iter().map(|a| Alert::new(a, None)).collect())
    }
}
