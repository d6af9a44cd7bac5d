//! Retention: each purpose's retention period, enforced. What no purpose still justifies goes —
//! old interactions and purchases are deleted, customers inactive past every profile purpose are
//! erased (crypto-shredding) — and every disposal is an audit entry.

use serde::Serialize;
use steward_domain::{DataCategory, Purpose, Timestamp};
use steward_store::ActivityTable;

use crate::auth::{Actor, Operator};
use crate::door::About;
use crate::error::{ServiceError, ServiceResult};
use crate::vault::Vault;

const DAY_MS: i64 = 86_400_000;
const PAGE: u32 = 500;
/// Most customers erased by one run (the next run continues).
const CUSTOMERS_PER_RUN: u32 = 100_000;

/// The categories of a customer's profile (every declared field's); the profile lives as long as
/// the longest of them.
fn profile_categories() -> Vec<DataCategory> {
    steward_domain::ProfileField::ALL
        .iter()
        .map(|f| f.category())
        .collect()
}

/// How long one kind of data may be kept, and which purpose justifies that long.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RetentionRule {
    /// `interactions`, `purchases` or `profile`.
    pub data: &'static str,
    /// The longest retention of any purpose using it (0: no purpose uses it).
    pub days: i64,
    /// That purpose.
    pub justified_by: Option<String>,
    /// Data older than this (or, for a profile, customers inactive since) goes.
    pub cutoff: Timestamp,
}

/// What a retention run found and did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RetentionReport {
    /// Nothing was changed.
    pub dry_run: bool,
    /// The rules applied.
    pub rules: Vec<RetentionRule>,
    /// Interactions deleted (or, in a dry run, due).
    pub interactions: u64,
    /// Purchases deleted (or due).
    pub purchases: u64,
    /// Customers erased (or due).
    pub customers: u64,
    /// Customers due but kept by a legal hold.
    pub held: u64,
    /// Sign-in sessions (staff and portal) and portal codes expired or revoked over a day ago,
    /// deleted (or due).
    pub sessions: u64,
}

fn rule(
    purposes: &[Purpose],
    data: &'static str,
    cats: &[DataCategory],
    now: i64,
) -> RetentionRule {
    let best = purposes
        .iter()
        .filter(|p| p.categories.iter().any(|c| cats.contains(c)))
        .max_by_key(|p| p.retention_days);
    let days = best.map_or(0, |p| p.retention_days.max(0));
    RetentionRule {
        data,
        days,
        justified_by: best.map(|p| p.key.clone()),
        cutoff: Timestamp(now - days * DAY_MS),
    }
}

impl Vault {
    /// Applies every purpose's retention period (or, with `dry_run`, reports what it would do).
    pub async fn run_retention(
        &self,
        operator: Operator,
        dry_run: bool,
    ) -> ServiceResult<RetentionReport> {
        let purposes = self.purposes().all();
        let now = Timestamp::now().millis();
        let rules = vec![
            rule(
                &purposes,
                "interactions",
                &[DataCategory::Communications],
                now,
            ),
            rule(
                &purposes,
                "purchases",
                &[DataCategory::PurchaseHistory],
                now,
            ),
            rule(&purposes, "profile", &profile_categories(), now),
        ];
        let mut report = RetentionReport {
            dry_run,
            rules: rules.clone(),
            interactions: 0,
            purchases: 0,
            customers: 0,
            held: 0,
            sessions: 0,
        };
        // A day's grace, so that a session's last requests are still explained by its row.
        report.sessions = self
            .identity()
            .dead_sessions(now - 86_400_000, !dry_run)
            .await?;
        // Portal codes and sessions, the customer's side of the same.
        report.sessions += self
            .portal_access()
            .dead_portal(now - 86_400_000, !dry_run)
            .await?;
        for (r, table, category) in [
            (&rules[0], ActivityTable::Interactions, "communications"),
            (&rules[1], ActivityTable::Purchases, "purchase_history"),
        ] {
            let n = self.dispose(operator, r, table, category, dry_run).await?;
            match table {
                ActivityTable::Interactions => report.interactions = n,
                ActivityTable::Purchases => report.purchases = n,
            }
        }
        let cutoff = rules[2].cutoff.millis();
        for id in self
            .records()
            .inactive_customers(cutoff, CUSTOMERS_PER_RUN)
            .await?
        {
            if dry_run {
                match self.erasures().standing(id).await? {
                    steward_store::CustomerStanding::Held(_) => report.held += 1,
                    _ => report.customers += 1,
                }
                continue;
            }
            match self
                .erase_authorized(Actor::Operator(operator), id, "retention")
                .await
            {
                Ok(_) => report.customers += 1,
                Err(ServiceError::LegalHold(_)) => report.held += 1,
                Err(ServiceError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(report)
    }

    /// Deletes (or counts) one table's rows older than the rule's cutoff, customer by customer,
    /// each customer's disposal an audit entry in the same transaction.
    async fn dispose(
        &self,
        operator: Operator,
        r: &RetentionRule,
        table: ActivityTable,
        category: &str,
        dry_run: bool,
    ) -> ServiceResult<u64> {
        let before = r.cutoff.millis();
        if dry_run {
            let due = self
                .records()
                .expired_activity(table, before, u32::MAX >> 1)
                .await?;
            return Ok(due
                .iter()
                .map(|(_, n)| u64::try_from(*n).unwrap_or(0))
                .sum());
        }
        let subject = format!(
            "retention: older than {} days ({})",
            r.days,
            r.justified_by.as_deref().unwrap_or("no purpose uses it")
        );
        let mut total = 0;
        loop {
            let due = self.records().expired_activity(table, before, PAGE).await?;
            if due.is_empty() {
                return Ok(total);
            }
            for (customer, _) in due {
                let entry = self.door().write_entry_marked(
                    Actor::Operator(operator),
                    "retention.dispose",
                    Some(customer),
                    &[category],
                    About {
                        subject: Some(&subject),
                        purpose: None,
                    },
                    "destroyed",
                );
                total += self
                    .records()
                    .dispose_activity(customer, table, before, &[entry])
                    .await?;
                // Disposed purchases leave personalisation's model too.
                self.personalisation().refresh_basket(customer).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_purpose_sets_the_rule() {
        let purposes = steward_domain::purpose::default_purposes();
        let now = 10_000 * DAY_MS;
        let r = rule(
            &purposes,
            "purchases",
            &[DataCategory::PurchaseHistory],
            now,
        );
        assert_eq!(
            (r.days, r.justified_by.as_deref()),
            (2555, Some("order_fulfilment"))
        );
        assert_eq!(r.cutoff, Timestamp(now - 2555 * DAY_MS));
        let none = rule(&purposes, "x", &[DataCategory::HealthAndMedical], now);
        assert_eq!(
            (none.days, none.justified_by, none.cutoff),
            (0, None, Timestamp(now))
        );
    }
}
