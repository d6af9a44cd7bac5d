//! Telling the data protection officer (issue 17, point 4): an e-mail through the configured
//! notifier when a data-subject request arrives, when an access alert is raised (a break-glass
//! read, a fraud review, a bulk-access refusal), and once when an open request's deadline is
//! three days away. Messages name no customer and no personal value: what happened, ids, and
//! where in the console to look. Without `serve --dpo-email` nothing is sent; the console's
//! badges show the same things.

use std::collections::HashSet;
use std::sync::Mutex;

use steward_domain::{RequestId, RequestStatus, Timestamp, normalize};

use super::Requests;
use crate::Operator;
use crate::error::ServiceResult;

/// How far ahead a deadline is reminded of.
pub const REMINDER_AHEAD_MS: i64 = 3 * 86_400_000;

/// Where the DPO is told, and which deadlines were reminded of already (per process: a
/// restart may remind once more).
#[derive(Default)]
pub(crate) struct DpoNotices {
    address: std::sync::OnceLock<String>,
    /// How mail leaves (the operator's, set once with the customers' notifier).
    notifier: std::sync::OnceLock<std::sync::Arc<dyn crate::notify::Notifier>>,
    reminded: Mutex<HashSet<RequestId>>,
}

impl DpoNotices {
    /// Sets how the DPO's mail leaves (once; with the customers' notifier).
    pub(crate) fn use_notifier(&self, notifier: std::sync::Arc<dyn crate::notify::Notifier>) {
        let _ = self.notifier.set(notifier);
    }

    /// Tells the DPO `body` under `subject`, off the caller's path.
    pub(crate) fn notify(&self, subject: &'static str, body: String) {
        let (Some(to), Some(n)) = (self.address.get().cloned(), self.notifier.get().cloned())
        else {
            return;
        };
        tokio::task::spawn_blocking(move || {
            if let Err(error) = n.send(&to, subject, &body) {
                tracing::warn!(error, subject, "telling the DPO failed");
            }
        });
    }
}

impl Requests {
    /// Sends the DPO's notices to `address` (the operator's setting, `serve --dpo-email`).
    pub fn set_dpo_address(
        &self,
        _operator: Operator,
        address: &str,
    ) -> Result<(), steward_domain::ValidationError> {
        let address = normalize::email("dpo_email", address)?;
        let _ = self.dpo.address.set(address);
        Ok(())
    }

    /// Tells the DPO (see [`DpoNotices::notify`]).
    pub(crate) fn notify_dpo(&self, subject: &'static str, body: String) {
        self.dpo.notify(subject, body);
    }

    /// Reminds the DPO of every open request due within three days not reminded of before;
    /// returns how many. Run by the server every hour.
    pub async fn remind_due_requests(&self) -> ServiceResult<usize> {
        let due_before = Timestamp::now().millis() + REMINDER_AHEAD_MS;
        let rows = self.list(Some(due_before), 1_000).await?;
        let mut sent = 0;
        for r in rows {
            let open = is_open(&r);
            let fresh = self
                .dpo
                .reminded
                .lock()
                .map(|mut seen| seen.insert(r.id))
                .unwrap_or(false);
            if open && fresh {
                self.notify_dpo(
                    "A privacy request is due in three days or less",
                    format!(
                        "Request {} ({}) is due by {}. Open the console's data protection page: /console/dpo\n\nThis message names no customer.\n",
                        r.id,
                        r.kind,
                        Timestamp(r.deadline_at).to_rfc3339()
                    ),
                );
                sent += 1;
            }
        }
        Ok(sent)
    }

    /// What needs the DPO's attention now: open requests due within three days, and access
    /// alerts of the last seven days (the console's badge). Counts only, decided like the lists
    /// they count but not recorded as reads of them: the home page would otherwise write two
    /// audit entries at every visit.
    pub async fn dpo_attention(
        &self,
        principal: &crate::Principal,
    ) -> ServiceResult<(usize, usize)> {
        self.door()
            .authorize(principal, steward_policy::Action::ReadRequests, None)
            .await?;
        self.door()
            .authorize(principal, steward_policy::Action::ReadAlerts, None)
            .await?;
        let now = Timestamp::now().millis();
        let due = self
            .list(Some(now + REMINDER_AHEAD_MS), 1_000)
            .await?
            .iter()
            .filter(|r| is_open(r))
            .count();
        let week = 7 * 86_400_000;
        let alerts = self.alerts().count_since(now - week).await?;
        Ok((due, alerts))
    }
}

/// Whether a stored request still waits for the DPO (open or in progress).
fn is_open(r: &steward_store::RequestRow) -> bool {
    [RequestStatus::Open, RequestStatus::InProgress]
        .iter()
        .any(|s| s.as_str() == r.status)
}
