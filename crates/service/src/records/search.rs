//! Customer lists and search by name over sealed profiles.
//!
//! Names are sealed, so the database cannot compare them. Each name leaves keyed buckets in the
//! blind index: for each of its first two words and its last, a bucket of the word's first two
//! letters (kind `name2`, 64 buckets) and one of its first three (kind `name3`, 4096 buckets).
//! A bucket is an HMAC under the installation's blind-index key, truncated so that many
//! different prefixes share it: the index narrows the candidates, it does not name anyone. Each
//! candidate's name is then opened and compared exactly, and each match is decided by the policy
//! and recorded like any read. Every name leaves exactly three buckets of each kind (missing
//! ones are keyed fillers derived from the customer's id), so the index does not tell how many
//! words a name has. What someone holding the database learns is written down in
//! `docs/architecture.md`, "Search".
//!
//! Hand-written rather than a searchable-encryption library: the scheme is a few lines over the
//! blind index Steward already has, and its leakage is exactly what is documented here.

use std::collections::{BTreeSet, HashMap};

use steward_domain::{CustomerFilter, CustomerId, CustomerView, OutletId, ProfileField, normalize};
use steward_policy::{Field, Outcome, Subject};
use steward_store::Lookup;

use crate::access::serves_customer_view;
use crate::error::{ServiceError, ServiceResult};
use crate::records::Records;
use crate::{Access, seal};

/// How many of a name's words are indexed: the first two and the last.
pub const NAME_WORDS: usize = 3;

/// A kind of name bucket: its blind-index kind, its number of buckets (a power of two, so the
/// truncation is unbiased) and the prefix length it covers.
struct Buckets {
    kind: &'static str,
    count: u16,
    letters: usize,
}

const SHORT: Buckets = Buckets {
    kind: "name2",
    count: 64,
    letters: 2,
};
const LONG: Buckets = Buckets {
    kind: "name3",
    count: 4096,
    letters: 3,
};

/// At most this many candidates are looked at per page: a page may come back short, with a cursor
/// to go on, rather than one request scanning a whole store.
const SCAN_BUDGET: usize = 2_000;

/// A bucket as stored in the blind index's 16-byte MAC column.
fn bucket_mac(bucket: u16) -> [u8; 16] {
    let mut mac = [0u8; 16];
    mac[..2].copy_from_slice(&bucket.to_be_bytes());
    mac
}

impl Records {
    fn bucket(&self, b: &Buckets, kind: &str, value: &str) -> u16 {
        let mac = self.door().mac(kind, value);
        u16::from_be_bytes([mac[0], mac[1]]) % b.count
    }

    /// The name buckets of customer `id` whose name is `name`: exactly [`NAME_WORDS`] of each kind.
    pub(crate) fn name_lookups(&self, id: CustomerId, name: Option<&str>) -> Vec<Lookup> {
        let words = name.map(normalize::name_words).unwrap_or_default();
        let indexed: Vec<&String> = if words.len() <= NAME_WORDS {
            words.iter().collect()
        } else {
            words[..NAME_WORDS - 1].iter().chain(words.last()).collect()
        };
        let mut out = Vec::with_capacity(2 * NAME_WORDS);
        for b in [&SHORT, &LONG] {
            let mut set: BTreeSet<u16> = indexed
                .iter()
                .map(|w| {
                    let prefix: String = w.chars().take(b.letters).collect();
                    self.bucket(b, b.kind, &prefix)
                })
                .collect();
            // Fillers, keyed and stable per customer: an update that keeps the name keeps them.
            let mut i = 0u32;
            while set.len() < NAME_WORDS {
                set.insert(self.bucket(b, "name-filler", &format!("{}/{id}/{i}", b.kind)));
                i += 1;
            }
            out.extend(set.into_iter().map(|bucket| Lookup {
                kind: b.kind,
                mac: bucket_mac(bucket),
            }));
        }
        out
    }

    /// Lists the customers `filter` selects, as the policy allows, a page at a time: the views
    /// and the cursor to go on from (`None` when nothing is left). Customers the caller may see
    /// nothing of are passed over without being read; each customer shown is a decided and
    /// recorded read, counted by the bulk-access guard.
    pub async fn read_customers(
        &self,
        access: &Access<'_>,
        filter: &CustomerFilter,
        after: Option<CustomerId>,
        limit: u32,
    ) -> ServiceResult<(Vec<CustomerView>, Option<CustomerId>)> {
        self.check_declarable(access)?;
        self.check_reads_anyone(access)?;
        self.check_filter_known(access, filter)?;
        self.directory()
            .check_outlet("outlet_id", filter.outlet)
            .await?;
        let source = filter.key_word().map(|w| {
            let b = if w.chars().count() >= LONG.letters {
                &LONG
            } else {
                &SHORT
            };
            let prefix: String = w.chars().take(b.letters).collect();
            (b.kind, bucket_mac(self.bucket(b, b.kind, &prefix)))
        });
        let limit = limit.max(1);
        let chunk = (limit * 4).clamp(50, 500);
        let mut out = Vec::new();
        let mut cursor = after;
        let mut scanned = 0usize;
        let mut may_read: HashMap<(Vec<OutletId>, bool), bool> = HashMap::new();
        loop {
            let ids = match &source {
                None => {
                    self.customers
                        .list_customer_ids(filter.outlet, cursor, chunk)
                        .await?
                }
                Some((kind, mac)) => {
                    self.customers
                        .lookup_page(kind, mac, filter.outlet, cursor, chunk)
                        .await?
                }
            };
            let exhausted = ids.len() < chunk as usize;
            for id in ids {
                cursor = Some(id);
                scanned += 1;
                if !self.is_candidate(access, id, filter, &mut may_read).await? {
                    continue;
                }
                let view = match self.read_customer(access, id).await {
                    Ok(v) => v,
                    Err(ServiceError::Forbidden { .. } | ServiceError::NotFound(_)) => continue,
                    Err(e) => return Err(e),
                };
                if self.keeps(&view, filter).await? {
                    out.push(view);
                    if out.len() == limit as usize {
                        return Ok((out, cursor));
                    }
                }
            }
            if exhausted {
                return Ok((out, None));
            }
            if scanned >= SCAN_BUDGET {
                return Ok((out, cursor));
            }
        }
    }

    /// Whether customer `id` is worth deciding: the policy would show the caller something of
    /// them and what the filter is about (the name, the purchase history) — consent taken as
    /// given; decided without a record, by outlets and restriction, once per combination — and
    /// their name matches, if one is asked for. A name is opened here only to be compared;
    /// nothing of it leaves unless the read that follows shows it.
    async fn is_candidate(
        &self,
        access: &Access<'_>,
        id: CustomerId,
        filter: &CustomerFilter,
        may_read: &mut HashMap<(Vec<OutletId>, bool), bool>,
    ) -> ServiceResult<bool> {
        let Some((row, key, facts)) = self.customers.get_customer_for_read(id).await? else {
            return Ok(false);
        };
        let scope = (facts.outlets.clone(), facts.restricted);
        // Decided once per combination of outlets and restriction only when the policy's
        // decisions depend on nothing else (it names no individual: `memoizes`).
        let cached = self
            .door()
            .policy()
            .memoizes()
            .then(|| may_read.get(&scope).copied())
            .flatten();
        let allowed = match cached {
            Some(a) => a,
            None => {
                let subject = Subject {
                    id,
                    outlets: &facts.outlets,
                    restricted: facts.restricted,
                };
                let a = self.shows_filtered(access, subject, filter);
                may_read.insert(scope, a);
                a
            }
        };
        if !allowed {
            return Ok(false);
        }
        // A purpose resting on consent shows nothing of a customer who has not consented: they
        // are passed over here, unread and unrecorded, so a search is no oracle for them.
        if access.purpose.lawful_basis == steward_domain::LawfulBasis::Consent
            && !self.consents().active(id, &access.purpose.key).await?
        {
            return Ok(false);
        }
        // A consent filter reveals a customer's consent: only where the caller may read it.
        if let Some(key) = &filter.consent
            && (self
                .door()
                .authorize(
                    access.principal,
                    steward_policy::Action::ReadConsents,
                    Some(id),
                )
                .await
                .is_err()
                || !self.consents().active(id, key).await?)
        {
            return Ok(false);
        }
        // Last activity: the time of the latest purchase or interaction (in clear on the rows).
        if let Some(since) = filter.active_since
            && self
                .activity
                .last_activity_at(id)
                .await?
                .is_none_or(|at| at < since.millis())
        {
            return Ok(false);
        }
        // The tier is a count of purchase rows (their owner is in clear), so it is checked before
        // any decision: the read that follows shows it only if the policy lets the caller know.
        if let Some(tier) = filter.tier
            && crate::access::tier_of(self.purchase_count_to_five(id).await?) != tier
        {
            return Ok(false);
        }
        let name = &filter.name;
        if name.is_empty() {
            return Ok(true);
        }
        let dk = self.keys().open(id, &key)?;
        let opened = seal::open_customer_fields(&dk, &row, |f| f == ProfileField::Name)?;
        Ok(opened
            .name
            .as_deref()
            .is_some_and(|n| normalize::name_matches(name, &normalize::name_words(n))))
    }

    /// Whether a decided view passes the filter as the caller may know it: a name search keeps
    /// only customers whose name the view shows (so a search is no oracle for a withheld name);
    /// a tier filter only customers whose purchase history the view shows or abstracts.
    async fn keeps(&self, view: &CustomerView, filter: &CustomerFilter) -> ServiceResult<bool> {
        // An outlet filter keeps only customers whose outlet the view itself shows.
        if filter.outlet.is_some() && view.outlet_id.is_none() {
            return Ok(false);
        }
        if !filter.name.is_empty()
            && (view.name.is_none() || view.decision.masked.iter().any(|f| f == "name"))
        {
            return Ok(false);
        }
        let Some(tier) = filter.tier else {
            return Ok(true);
        };
        if let Some(s) = &view.purchase_summary {
            return Ok(s.tier == tier);
        }
        let purchases = Field::PurchaseHistory.as_str();
        if view.decision.withheld.iter().any(|f| f == purchases) {
            return Ok(false);
        }
        Ok(crate::access::tier_of(self.purchase_count_to_five(view.id).await?) == tier)
    }

    /// How many purchases customer `id` has, counted up to five: enough for the tier, whose top
    /// starts at five.
    async fn purchase_count_to_five(&self, id: CustomerId) -> ServiceResult<usize> {
        Ok(self.activity.list_purchases(id, None, 5).await?.len())
    }

    /// Whether the policy would show the caller something of `subject` and what `filter` is
    /// about: the name in full for a name search, the purchase history in any form for a tier
    /// filter (consent taken as given; nothing recorded).
    fn shows_filtered(
        &self,
        access: &Access<'_>,
        subject: Subject<'_>,
        filter: &CustomerFilter,
    ) -> bool {
        let d = self.decide_hypothetical(
            access.principal,
            access.purpose,
            subject,
            access
                .reason
                .map(normalize::visible_chars)
                .filter(|n| *n > 0),
            access.break_glass,
            &Field::ALL,
        );
        let activity_shown = d.outcome(Field::PurchaseHistory) == Outcome::Show
            || d.outcome(Field::Communications) == Outcome::Show;
        serves_customer_view(&d)
            && (filter.name.is_empty()
                || d.outcome(Field::Profile(ProfileField::Name)) == Outcome::Show)
            && (filter.tier.is_none() || d.outcome(Field::PurchaseHistory) != Outcome::Withhold)
            && (filter.active_since.is_none() || activity_shown)
    }

    /// Whether the policy would show `access`'s caller in full the purchase history (and so
    /// the outlet) of a customer of outlet `outlet` (consent taken as given; nothing recorded).
    pub(crate) fn shows_outlet(&self, access: &Access<'_>, outlet: OutletId) -> bool {
        let d = self.decide_hypothetical(
            access.principal,
            access.purpose,
            Subject {
                id: CustomerId(uuid::Uuid::nil()),
                outlets: &[outlet],
                restricted: false,
            },
            access
                .reason
                .map(normalize::visible_chars)
                .filter(|n| *n > 0),
            access.break_glass,
            &[Field::PurchaseHistory],
        );
        d.outcome(Field::PurchaseHistory) == Outcome::Show
    }

    /// Refuses a search by name, or a filter by tier, when under this access the caller is shown
    /// no customer's name, or purchase history, even of their own outlets: matching on it would
    /// tell them what they may not read.
    fn check_filter_known(
        &self,
        access: &Access<'_>,
        filter: &CustomerFilter,
    ) -> ServiceResult<()> {
        let own = Subject {
            id: CustomerId(uuid::Uuid::nil()),
            outlets: &access.principal.outlets,
            restricted: false,
        };
        let by_name = CustomerFilter {
            name: filter.name.clone(),
            ..CustomerFilter::default()
        };
        let by_tier = CustomerFilter {
            tier: filter.tier,
            ..CustomerFilter::default()
        };
        let by_activity = CustomerFilter {
            active_since: filter.active_since,
            ..CustomerFilter::default()
        };
        if let Some(key) = &filter.consent {
            let ok = self
                .purposes()
                .get("consent", key)
                .is_ok_and(|p| p.lawful_basis == steward_domain::LawfulBasis::Consent);
            if !ok {
                return Err(steward_domain::ValidationError::new(
                    "consent",
                    "not a purpose that rests on consent",
                )
                .into());
            }
        }
        // Filtering by outlet tells which customers belong to it: only for an outlet whose
        // customers' purchase history (which names the outlet) the caller is shown in full.
        if let Some(o) = filter.outlet
            && !self.shows_outlet(access, o)
        {
            return Err(ServiceError::Forbidden {
                field: "outlet_id",
                detail: format!(
                    "under the purpose '{}' you are not shown which customers belong to this outlet",
                    access.purpose.key
                ),
            });
        }
        for (field, what, only) in [
            ("q", "names", by_name),
            ("tier", "purchase histories", by_tier),
            ("active_since", "purchases or interactions", by_activity),
        ] {
            if only == CustomerFilter::default() || self.shows_filtered(access, own.clone(), &only)
            {
                continue;
            }
            return Err(ServiceError::Forbidden {
                field,
                detail: format!(
                    "under the purpose '{}' you are not shown customers' {what}, so you cannot search by them",
                    access.purpose.key
                ),
            });
        }
        Ok(())
    }

    /// Indexes the names of customers stored before name search existed (or restored from such
    /// a backup), a batch at a time; returns how many were indexed.
    pub(crate) async fn index_missing_names(&self) -> ServiceResult<usize> {
        let (mut done, mut keyless) = (0, 0);
        // A cursor, so that a customer who cannot be indexed (no key row) is passed, not asked
        // about again and again.
        let mut after = None;
        loop {
            let ids = self.customers.missing_lookup(LONG.kind, after, 500).await?;
            let Some(last) = ids.last() else {
                if keyless > 0 {
                    tracing::warn!(
                        customers = keyless,
                        "customers without a data key: their names are not indexed for search"
                    );
                }
                return Ok(done);
            };
            after = Some(*last);
            let mut entries = Vec::with_capacity(ids.len() * 2 * NAME_WORDS);
            for id in &ids {
                let Some((row, key)) = self.customers.get_customer(*id).await? else {
                    keyless += 1;
                    continue;
                };
                let dk = self.keys().open(*id, &key)?;
                let c = seal::open_customer_fields(&dk, &row, |f| f == ProfileField::Name)?;
                entries.extend(
                    self.name_lookups(*id, c.name.as_deref())
                        .into_iter()
                        .map(|l| (*id, l)),
                );
                done += 1;
            }
            self.customers.add_lookups(&entries).await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_fit_the_mac_column_and_keep_their_value() {
        for b in [0u16, 1, 63, 4095] {
            let m = bucket_mac(b);
            assert_eq!(u16::from_be_bytes([m[0], m[1]]), b);
            assert!(m[2..].iter().all(|x| *x == 0));
        }
    }
}
