//! The audit log as the DPO searches it: newest first, a page at a time, filtered by action,
//! principal pseudonym, customer and time. The log has no secondary index to search by (its
//! rows are leaves of the tree), so a page is found by reading back from the newest entry, in
//! bounded steps.

use steward_domain::{CustomerId, Timestamp};

use crate::Principal;
use crate::audit_trail::AuditTrail;
use crate::error::ServiceResult;

/// What the DPO looks for; every part optional.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// The entry's action, e.g. `read`, `erase`, `merge`.
    pub action: Option<String>,
    /// The principal's pseudonym (`p_…`) as the entries show it, or a role (`operator`).
    pub principal: Option<String>,
    /// The customer the entry is about.
    pub customer: Option<CustomerId>,
    /// From this time on.
    pub since: Option<Timestamp>,
    /// Before this time.
    pub until: Option<Timestamp>,
}

/// One audit entry as the DPO's page shows it: what its leaf says, never a personal value.
#[derive(Debug, Clone)]
pub struct AuditLine {
    /// Its index in the log.
    pub index: u64,
    /// When.
    pub at: Timestamp,
    /// The principal's pseudonym or kind.
    pub principal: String,
    /// The action.
    pub action: String,
    /// The customer it is about, if one.
    pub customer: Option<CustomerId>,
    /// The outcome (`allow`, `deny`, `recorded`, …).
    pub outcome: String,
    /// The declared purpose, if any.
    pub purpose: String,
}

/// How many entries one page reads back at most before it answers (perhaps short).
const SCAN: u64 = 20_000;

impl AuditTrail {
    /// Up to `limit` entries matching `filter`, newest first, before index `before` (the
    /// log's end if `None`), and the index to go on from (`None` at the start of the log).
    pub async fn search(
        &self,
        principal: &Principal,
        filter: &AuditFilter,
        before: Option<u64>,
        limit: usize,
    ) -> ServiceResult<(Vec<AuditLine>, Option<u64>)> {
        let checkpoint = self.checkpoint().await?;
        // The checkpoint's second line is the tree size (C2SP tlog-checkpoint).
        let size: u64 = checkpoint
            .lines()
            .nth(1)
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        let mut end = before.unwrap_or(size).min(size);
        let floor = end.saturating_sub(SCAN);
        let mut out = Vec::new();
        while end > floor {
            let start = end.saturating_sub(1000).max(floor);
            // Decided (`read_audit`) on every step, like the API's reads of the log.
            let entries = self.rows(principal, start, end).await?;
            for e in entries.into_iter().rev() {
                let leaf = steward_domain::AuditLeaf::from_bytes(&e.row.leaf);
                let line = AuditLine {
                    index: e.index,
                    at: Timestamp(e.row.occurred_at),
                    principal: leaf
                        .as_ref()
                        .map(|l| l.principal.clone())
                        .unwrap_or_default(),
                    action: e.row.action.clone(),
                    customer: e.row.customer_id,
                    outcome: leaf.as_ref().map(|l| l.outcome.clone()).unwrap_or_default(),
                    purpose: leaf.and_then(|l| l.purpose).unwrap_or_default(),
                };
                if matches(filter, &line) {
                    out.push(line);
                    if out.len() == limit {
                        return Ok((out, Some(e.index)));
                    }
                }
            }
            end = start;
        }
        Ok((out, (end > 0).then_some(end)))
    }
}

fn matches(f: &AuditFilter, l: &AuditLine) -> bool {
    f.action.as_ref().is_none_or(|a| *a == l.action)
        && f.principal.as_ref().is_none_or(|p| *p == l.principal)
        && f.customer.is_none_or(|c| Some(c) == l.customer)
        && f.since.is_none_or(|t| l.at.millis() >= t.millis())
        && f.until.is_none_or(|t| l.at.millis() < t.millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_combine() {
        let line = AuditLine {
            index: 3,
            at: Timestamp(1_000),
            principal: "p_ab".into(),
            action: "read".into(),
            customer: Some(CustomerId(uuid::Uuid::nil())),
            outcome: "allow".into(),
            purpose: "service".into(),
        };
        assert!(matches(&AuditFilter::default(), &line));
        let f = AuditFilter {
            action: Some("read".into()),
            principal: Some("p_ab".into()),
            customer: Some(CustomerId(uuid::Uuid::nil())),
            since: Some(Timestamp(1_000)),
            until: Some(Timestamp(1_001)),
        };
        assert!(matches(&f, &line));
        assert!(!matches(
            &AuditFilter {
                action: Some("erase".into()),
                ..f.clone()
            },
            &line
        ));
        assert!(!matches(
            &AuditFilter {
                until: Some(Timestamp(1_000)),
                ..f.clone()
            },
            &line
        ));
        assert!(!matches(
            &AuditFilter {
                principal: Some("p_cd".into()),
                ..f
            },
            &line
        ));
    }
}
