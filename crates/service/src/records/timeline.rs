//! A customer's timeline: purchases and interactions together, newest first, a page at a time,
//! each kind decided by the policy (and recorded) as its own read, as the API reads them.

use steward_domain::{CustomerId, Interaction, Purchase};
use steward_policy::{Field, Outcome};
use uuid::Uuid;

use crate::access::{ABSTRACTION_SCAN, serves_communications, serves_purchases};
use crate::error::ServiceResult;
use crate::records::Records;
use crate::{Access, seal};

/// One event of a timeline.
#[derive(Debug, Clone)]
pub enum TimelineEntry {
    /// A purchase the policy shows.
    Purchase(Purchase),
    /// An interaction the policy shows.
    Interaction(Interaction),
}

impl TimelineEntry {
    /// Its id: ids are time-ordered (UUIDv7), so they order the timeline as it was recorded.
    pub fn id(&self) -> Uuid {
        match self {
            TimelineEntry::Purchase(p) => p.id.0,
            TimelineEntry::Interaction(i) => i.id.0,
        }
    }
}

/// A page of a customer's timeline, with what the policy decided for each kind.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// Newest first.
    pub entries: Vec<TimelineEntry>,
    /// The cursor of the next (older) page, if there is one.
    pub next: Option<Uuid>,
    /// The purchase history's outcome: `show`, `abstract` (then only the sales made at the
    /// reader's own outlets are listed) or `withhold`.
    pub purchases: &'static str,
    /// Whether interactions are shown.
    pub communications: bool,
}

impl Records {
    /// A page of customer `id`'s timeline before `before` (newest first), as the policy allows.
    pub async fn read_timeline(
        &self,
        access: &Access<'_>,
        id: CustomerId,
        before: Option<Uuid>,
        limit: u32,
    ) -> ServiceResult<Timeline> {
        self.agreements.refuse_recipient_by_id(access)?;
        let limit = limit.clamp(1, 200);
        let facts = self.door().access_facts(id).await?;
        let cursor = before.map(|b| b.as_bytes().to_vec());
        let on_purchases = self
            .decide_with(
                access,
                id,
                &facts,
                &[Field::PurchaseHistory],
                serves_purchases,
            )
            .await?;
        let purchases_outcome = on_purchases.outcome(Field::PurchaseHistory);
        let mut entries: Vec<TimelineEntry> = Vec::new();
        let mut more = false;
        match purchases_outcome {
            Outcome::Show => {
                let dk = self.keys().of(id).await?;
                let rows = self
                    .activity
                    .recent_purchases(id, cursor.clone(), limit + 1)
                    .await?;
                more |= rows.len() > limit as usize;
                for r in rows.iter().take(limit as usize) {
                    entries.push(TimelineEntry::Purchase(seal::open_purchase(&dk, r)?));
                }
            }
            Outcome::Abstract => {
                // Only the sales made at the reader's own outlets, as the purchases read shows them.
                let all = self.newest_purchases(id, ABSTRACTION_SCAN).await?;
                let mut own = self
                    .own_outlet_purchases(access, id, &facts, all, None, ABSTRACTION_SCAN)
                    .await?;
                own.retain(|p| before.is_none_or(|b| p.id.0 < b));
                own.sort_by_key(|p| std::cmp::Reverse(p.id.0));
                more |= own.len() > limit as usize;
                entries.extend(
                    own.into_iter()
                        .take(limit as usize)
                        .map(TimelineEntry::Purchase),
                );
            }
            _ => {}
        }
        let on_messages = self
            .decide_with(
                access,
                id,
                &facts,
                &[Field::Communications],
                serves_communications,
            )
            .await?;
        let communications = serves_communications(&on_messages);
        if communications {
            let dk = self.keys().of(id).await?;
            let rows = self
                .activity
                .recent_interactions(id, cursor, limit + 1)
                .await?;
            more |= rows.len() > limit as usize;
            let mut shown = rows
                .iter()
                .take(limit as usize)
                .map(|r| seal::open_interaction(&dk, r))
                .collect::<Result<Vec<_>, _>>()?;
            self.shown_to(access.principal, &mut shown).await?;
            entries.extend(shown.into_iter().map(TimelineEntry::Interaction));
        }
        entries.sort_by_key(|e| std::cmp::Reverse(e.id()));
        // Two newest-first lists merged: the page is the newest `limit`; whatever was cut, or
        // was left in either list, comes on the next page.
        more |= entries.len() > limit as usize;
        entries.truncate(limit as usize);
        let next = if more {
            entries.last().map(TimelineEntry::id)
        } else {
            None
        };
        Ok(Timeline {
            entries,
            next,
            purchases: purchases_outcome.as_str(),
            communications,
        })
    }
}
