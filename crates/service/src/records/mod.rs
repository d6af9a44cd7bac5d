//! Customers' records: the customers and their activity, sealed under each customer's key, and
//! the read path every use of them goes through — the policy's decision, the bulk guard, the
//! notice, a recipient's agreement, and the audit entry before the answer.

use std::sync::Arc;

use steward_crypto::DataKey;
use steward_domain::{Customer, CustomerId, CustomerPatch, NewCustomer, Role, Timestamp};
use steward_policy::Action;
use steward_store::{Lookup, SealedCustomer, StoredKey};

use crate::Actor;
use crate::auth::Operator;
use crate::error::{ServiceError, ServiceResult};
use crate::seal;

pub(crate) mod access;
mod activity;
pub use activity::Activity;
pub(crate) mod operator_export;
pub mod pii;
pub(crate) mod rectification;
pub(crate) mod search;
pub mod social;
pub(crate) mod timeline;

/// Customers and their activity, and every decided read of them: the one service that opens
/// a customer's record (see the module's doc). The vault holds it in an `Arc`.
pub struct Records {
    door: Arc<crate::door::Door>,
    customers: Arc<dyn steward_store::CustomerStore>,
    activity: Arc<dyn steward_store::ActivityStore>,
    keys: Arc<crate::customer_keys::CustomerKeys>,
    directory: Arc<crate::directory::Directory>,
    purposes: Arc<crate::purposes::Purposes>,
    /// The confidentiality notice a reader must have acknowledged.
    notices: Arc<crate::notice::Notices>,
    consents: Arc<crate::consent::Consents>,
    alerts: Arc<crate::alerts::Alerts>,
    limits: Arc<crate::shared_limits::SharedLimits>,
    /// Every recipient's agreements, for a recipient's read.
    agreements: Arc<crate::agreements::Agreements>,
    /// Distinct customers per reader and window.
    bulk: crate::BulkGuard,
}

/// What the read path is wired to: its stores, and the services it asks (each shared with the
/// vault).
pub(crate) struct RecordsParts {
    pub(crate) door: Arc<crate::door::Door>,
    pub(crate) customers: Arc<dyn steward_store::CustomerStore>,
    pub(crate) activity: Arc<dyn steward_store::ActivityStore>,
    pub(crate) keys: Arc<crate::customer_keys::CustomerKeys>,
    pub(crate) directory: Arc<crate::directory::Directory>,
    pub(crate) purposes: Arc<crate::purposes::Purposes>,
    pub(crate) notices: Arc<crate::notice::Notices>,
    pub(crate) consents: Arc<crate::consent::Consents>,
    pub(crate) alerts: Arc<crate::alerts::Alerts>,
    pub(crate) limits: Arc<crate::shared_limits::SharedLimits>,
    pub(crate) agreements: Arc<crate::agreements::Agreements>,
}

impl Records {
    /// Wires the read path to its stores and the services it asks.
    pub(crate) fn new(p: RecordsParts) -> Self {
        Records {
            door: p.door,
            customers: p.customers,
            activity: p.activity,
            keys: p.keys,
            directory: p.directory,
            purposes: p.purposes,
            notices: p.notices,
            consents: p.consents,
            alerts: p.alerts,
            limits: p.limits,
            agreements: p.agreements,
            bulk: crate::BulkGuard::default(),
        }
    }

    /// The policy's decision and the audit entry.
    pub(crate) fn door(&self) -> &crate::door::Door {
        &self.door
    }

    /// Each customer's data key.
    pub(crate) fn keys(&self) -> &crate::customer_keys::CustomerKeys {
        &self.keys
    }

    fn directory(&self) -> &crate::directory::Directory {
        &self.directory
    }

    fn purposes(&self) -> &crate::purposes::Purposes {
        &self.purposes
    }

    fn consents(&self) -> &crate::consent::Consents {
        &self.consents
    }

    fn alerts(&self) -> &crate::alerts::Alerts {
        &self.alerts
    }

    fn limits(&self) -> &crate::shared_limits::SharedLimits {
        &self.limits
    }

    /// Sets the bulk-access limit of `role` (`None` lifts it): the operator's setting
    /// (`serve --bulk-limit`), so a layer given only the vault cannot lift a limit.
    pub fn set_bulk_limit(&self, _operator: Operator, role: Role, limit: Option<usize>) {
        self.bulk.set_limit(role, limit);
    }

    /// The purposes `principal` may declare, as the policy's `purpose-bound-to-roles` decides
    /// them, for the forms that offer a choice.
    pub fn declarable_purposes(
        &self,
        principal: &crate::Principal,
    ) -> Vec<steward_domain::Purpose> {
        let mut all = self.purposes().all();
        all.retain(|p| self.declares(principal, p));
        all
    }

    /// A customer's blind-index entries: e-mail, phone, social handles and the name's search buckets.
    fn lookups(&self, id: CustomerId, c: &NewCustomer) -> Vec<Lookup> {
        let mut v = self.name_lookups(id, c.name.as_deref());
        if let Some(e) = &c.email {
            v.push(Lookup {
                kind: "email",
                mac: self.door().mac("email", e),
            });
        }
        if let Some(p) = &c.phone {
            v.push(Lookup {
                kind: "phone",
                mac: self.door().mac("phone", p),
            });
        }
        // Each social handle, so that an event from the platform finds its customer (issue 23).
        for h in c.social_handles.iter().flat_map(|h| &h.0) {
            v.push(Lookup {
                kind: "social",
                mac: self.door().mac("social", &h.index_value()),
            });
        }
        v
    }

    /// Seals a new customer (pure CPU work; callers may run it off the async threads).
    pub fn seal_new_customer(&self, c: &NewCustomer, now: Timestamp) -> ServiceResult<Sealed> {
        self.seal_customer_row(c, now).map(Sealed)
    }

    fn seal_customer_row(&self, c: &NewCustomer, now: Timestamp) -> ServiceResult<SealedCustomer> {
        let id = CustomerId::new();
        let dk = DataKey::generate()?;
        let row = seal::seal_customer(&dk, id, c, now.millis(), now.millis())?;
        Ok(SealedCustomer {
            row,
            key: self.keys().wrap(id, &dk)?,
            lookups: self.lookups(id, c),
        })
    }

    /// Times sealing `c` as a new customer and opening it for a read, `iterations` times each:
    /// mean µs per seal and per open. For `steward bench crypto`; only the figures leave.
    pub fn time_seal_and_open(
        &self,
        c: &NewCustomer,
        iterations: usize,
    ) -> ServiceResult<(f64, f64)> {
        let n = iterations.max(1);
        let t = std::time::Instant::now();
        let mut last = None;
        for _ in 0..n {
            last = Some(std::hint::black_box(
                self.seal_customer_row(c, Timestamp::now())?,
            ));
        }
        let seal_us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
        let Some(sealed) = last else {
            return Err(ServiceError::Integrity);
        };
        let t = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(self.open_sealed(&sealed.row, &sealed.key)?);
        }
        Ok((seal_us, t.elapsed().as_secs_f64() * 1e6 / n as f64))
    }
    /// Creates a customer, if the policy lets `actor` do so, unless one with the same e-mail or
    /// phone exists (a `Duplicate` naming the field and the existing customer); one transaction,
    /// with its audit entry.
    pub async fn create_customer(
        &self,
        actor: Actor<'_>,
        c: &NewCustomer,
    ) -> ServiceResult<CustomerId> {
        self.create_customer_as(actor, c, false).await
    }

    /// [`Records::create_customer`] even when another customer has the same e-mail or phone (a
    /// household sharing a phone; the caller was told and chose to).
    pub async fn create_customer_allowing_duplicate(
        &self,
        actor: Actor<'_>,
        c: &NewCustomer,
    ) -> ServiceResult<CustomerId> {
        self.create_customer_as(actor, c, true).await
    }

    async fn create_customer_as(
        &self,
        actor: Actor<'_>,
        c: &NewCustomer,
        allow_duplicate: bool,
    ) -> ServiceResult<CustomerId> {
        self.door()
            .authorize_actor(actor, Action::CreateCustomer, None, false)
            .await?;
        if !allow_duplicate && let Some((field, existing)) = self.duplicate_of(c).await? {
            // The refusal says someone holds the value: a probe of who is on file, so it is an
            // entry about them and counts against the bulk limit like a look-up; and it names them
            // only to a caller who may work on them (change their details), never past the policy.
            let known = match actor {
                Actor::Principal(p) => {
                    let who = crate::access::Flagged {
                        principal: p,
                        purpose: "duplicate_check",
                        reason: None,
                        break_glass: false,
                    };
                    self.count_read(&who, existing).await?;
                    self.door()
                        .authorize(p, Action::UpdateCustomer, Some(existing))
                        .await
                        .is_ok()
                }
                _ => true,
            };
            self.door()
                .record_read(actor, "duplicate_found", Some(existing), &[field])
                .await?;
            return Err(ServiceError::Duplicate {
                field,
                existing: known.then_some(existing),
            });
        }
        self.directory()
            .check_outlet("outlet_id", c.outlet_id)
            .await?;
        let sealed = self.seal_customer_row(c, Timestamp::now())?;
        let id = sealed.row.id;
        let entry = self
            .door()
            .write_entry(actor, "create_customer", Some(id), &c.field_names());
        self.customers
            .insert_customers(std::slice::from_ref(&sealed), &[entry])
            .await?;
        Ok(id)
    }

    /// Saves customers sealed by [`Records::seal_new_customer`] in one transaction, with an
    /// audit entry each: the operator's bulk load (import, demo data), decided once for the batch.
    /// Returns their ids, in the batch's order.
    pub async fn insert_sealed(
        &self,
        operator: Operator,
        batch: Vec<Sealed>,
    ) -> ServiceResult<Vec<CustomerId>> {
        let batch: Vec<SealedCustomer> = batch.into_iter().map(|s| s.0).collect();
        let actor = Actor::Operator(operator);
        self.door()
            .authorize_actor(actor, Action::CreateCustomer, None, false)
            .await?;
        let entries: Vec<_> = batch
            .iter()
            .map(|c| {
                self.door()
                    .write_entry(actor, "create_customer", Some(c.row.id), &[])
            })
            .collect();
        self.customers.insert_customers(&batch, &entries).await?;
        Ok(batch.iter().map(|c| c.row.id).collect())
    }

    /// The customer's `wanted` fields, with their facts and data key, for the service's own use
    /// after its decision (sending to them, filing their reply); `None` once erased.
    pub(crate) async fn open_for_use(
        &self,
        id: CustomerId,
        wanted: impl Fn(steward_domain::ProfileField) -> bool,
    ) -> ServiceResult<
        Option<(
            steward_domain::Customer,
            steward_store::AccessFacts,
            DataKey,
        )>,
    > {
        let Some((row, key, facts)) = self.customers.get_customer_for_read(id).await? else {
            return Ok(None);
        };
        let dk = self.keys().open(id, &key)?;
        let c = seal::open_customer_fields(&dk, &row, wanted)?;
        Ok(Some((c, facts, dk)))
    }

    /// Opens a stored customer row with its wrapped key (what a read does after the query).
    pub(crate) fn open_sealed(
        &self,
        row: &steward_store::CustomerRow,
        key: &StoredKey,
    ) -> ServiceResult<Customer> {
        seal::open_customer(&self.keys().open(row.id, key)?, row)
    }

    /// Reads one customer, undecided: for the service's own use after a decision.
    pub(crate) async fn get_customer(&self, id: CustomerId) -> ServiceResult<Customer> {
        let (row, key) = self
            .customers
            .get_customer(id)
            .await?
            .ok_or(ServiceError::NotFound("customer"))?;
        self.open_sealed(&row, &key)
    }

    /// Applies a merge patch as it is (identity checks done by the caller); one transaction.
    pub(crate) async fn apply_patch(
        &self,
        actor: Actor<'_>,
        id: CustomerId,
        patch: &CustomerPatch,
    ) -> ServiceResult<Customer> {
        let (row, key) = self
            .customers
            .get_customer(id)
            .await?
            .ok_or(ServiceError::NotFound("customer"))?;
        let dk = self.keys().open(id, &key)?;
        let current = seal::open_customer(&dk, &row)?;
        let next = patch.apply(current.profile())?;
        let now = Timestamp::now().millis();
        let new_row = seal::seal_customer(&dk, id, &next, row.created_at, now)?;
        // The previous values of the fields changed, kept sealed like the data: the change
        // history a rectification must leave.
        let fields = patch.field_names();
        let was = serde_json::to_value(&current).unwrap_or_default();
        let previous: serde_json::Map<String, serde_json::Value> = fields
            .iter()
            .map(|f| ((*f).to_owned(), was.get(*f).cloned().unwrap_or_default()))
            .collect();
        let change_id = uuid::Uuid::now_v7();
        let json = serde_json::to_vec(&previous).map_err(|_| ServiceError::Integrity)?;
        let change = steward_store::ChangeRow {
            id: change_id.as_bytes().to_vec(),
            customer_id: id,
            changed_at: now,
            fields: fields.join(","),
            previous: seal::seal_change(&dk, id, change_id, &json)?,
        };
        if !self
            .customers
            .update_customer(
                &new_row,
                &self.lookups(id, &next),
                &change,
                &[self.door().write_entry(
                    actor,
                    "update_customer",
                    Some(id),
                    &patch.field_names(),
                )],
            )
            .await?
        {
            return Err(ServiceError::NotFound("customer"));
        }
        seal::open_customer(&dk, &new_row)
    }

    /// The first customer who already holds `c`'s e-mail or phone (through the blind indexes):
    /// the field and their id.
    pub(crate) async fn duplicate_of(
        &self,
        c: &NewCustomer,
    ) -> ServiceResult<Option<(&'static str, CustomerId)>> {
        for (kind, value) in [("email", &c.email), ("phone", &c.phone)] {
            if let Some(v) = value
                && let Some(id) = self.lookup_ids(kind, v).await?.first()
            {
                return Ok(Some((kind, *id)));
            }
        }
        Ok(None)
    }

    /// For each of `customers` (an import), whether it duplicates a customer already stored or an
    /// earlier one of the batch, by e-mail or phone through the blind indexes; decided as the
    /// operator's creation of them, and each match with a stored customer is an audit entry about
    /// that customer.
    pub async fn import_duplicates(
        &self,
        operator: Operator,
        customers: &[NewCustomer],
    ) -> ServiceResult<Vec<Option<DuplicateOf>>> {
        let actor = Actor::Operator(operator);
        self.door()
            .authorize_actor(actor, Action::CreateCustomer, None, false)
            .await?;
        let mut out: Vec<Option<DuplicateOf>> = vec![None; customers.len()];
        for kind in ["email", "phone"] {
            let value = |c: &NewCustomer| match kind {
                "email" => c.email.clone(),
                _ => c.phone.clone(),
            };
            let macs: Vec<Option<[u8; 16]>> = customers
                .iter()
                .map(|c| value(c).map(|v| self.door().mac(kind, &v)))
                .collect();
            let wanted: Vec<[u8; 16]> = macs.iter().flatten().copied().collect();
            let stored: std::collections::HashMap<[u8; 16], CustomerId> = self
                .customers
                .lookup_many(kind, &wanted)
                .await?
                .into_iter()
                .collect();
            let mut first_at: std::collections::HashMap<[u8; 16], usize> = Default::default();
            for (i, mac) in macs.iter().enumerate() {
                let Some(mac) = mac else { continue };
                let found = match stored.get(mac) {
                    Some(id) => Some(DuplicateOf::Stored {
                        field: kind,
                        existing: *id,
                    }),
                    None => first_at.get(mac).map(|earlier| DuplicateOf::Earlier {
                        field: kind,
                        index: *earlier,
                    }),
                };
                first_at.entry(*mac).or_insert(i);
                if out[i].is_none() {
                    out[i] = found;
                }
            }
        }
        for d in out.iter().flatten() {
            if let DuplicateOf::Stored { field, existing } = d {
                self.door()
                    .record_read(actor, "duplicate_found", Some(*existing), &[field])
                    .await?;
            }
        }
        Ok(out)
    }

    /// What a decision about customer `id` is made on (`None` once erased), for a context's
    /// own use after its decision.
    pub(crate) async fn access_facts(
        &self,
        id: CustomerId,
    ) -> ServiceResult<Option<steward_store::AccessFacts>> {
        Ok(self.customers.access_facts(id).await?)
    }

    /// Customer `id`'s sealed row, wrapped key and access facts (`None` once erased), for a
    /// context that decides per field itself before it opens any (a campaign's message).
    pub(crate) async fn sealed_for_read(
        &self,
        id: CustomerId,
    ) -> ServiceResult<
        Option<(
            steward_store::CustomerRow,
            StoredKey,
            steward_store::AccessFacts,
        )>,
    > {
        Ok(self.customers.get_customer_for_read(id).await?)
    }

    /// The customers who share one of `kinds` of blind index with customer `id` (a merge's
    /// candidates). Undecided: the caller decides about each.
    pub(crate) async fn sharing_lookups(
        &self,
        id: CustomerId,
        kinds: &[&str],
    ) -> ServiceResult<Vec<CustomerId>> {
        Ok(self.customers.sharing_lookups(id, kinds).await?)
    }

    /// Restricts customer `id`'s processing (or lifts it), with its audit entries: a decided
    /// request's step. Whether the customer was there.
    pub(crate) async fn set_restricted(
        &self,
        id: CustomerId,
        restricted: bool,
        audit: &[steward_store::AuditEntryRow],
    ) -> ServiceResult<bool> {
        Ok(self.customers.set_restricted(id, restricted, audit).await?)
    }

    /// Up to `limit` customer ids after `after`, in id order, with the cursor of the next page
    /// (`None` after the last).
    pub(crate) async fn customer_id_page(
        &self,
        after: Option<CustomerId>,
        limit: u32,
    ) -> ServiceResult<(Vec<CustomerId>, Option<CustomerId>)> {
        let ids = self.customers.list_customer_ids(None, after, limit).await?;
        let next = (ids.len() == limit as usize)
            .then(|| ids.last().copied())
            .flatten();
        Ok((ids, next))
    }

    /// The ids of customers whose blind index of `kind` matches the normalised value.
    pub(crate) async fn lookup_ids(
        &self,
        kind: &'static str,
        normalised: &str,
    ) -> ServiceResult<Vec<CustomerId>> {
        Ok(self
            .customers
            .lookup(kind, &self.door().mac(kind, normalised))
            .await?)
    }

    /// Number of customers.
    pub async fn count_customers(&self) -> ServiceResult<i64> {
        Ok(self.customers.count_customers().await?)
    }

    /// The outlets to offer `principal` in a list's filter under `purpose` (with a reason, if
    /// they read with one): those whose customers' outlet the policy would show them
    /// ([`Records::read_customers`] refuses the others).
    pub async fn outlets_for(
        &self,
        principal: &crate::Principal,
        purpose: &steward_domain::Purpose,
        reason: Option<&str>,
    ) -> ServiceResult<Vec<crate::Outlet>> {
        let access = crate::Access {
            principal,
            purpose,
            reason,
            break_glass: false,
        };
        Ok(self
            .directory()
            .outlets()
            .await?
            .into_iter()
            .filter(|o| self.shows_outlet(&access, o.id))
            .collect())
    }
}

/// What an imported customer duplicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DuplicateOf {
    /// A customer already stored holds the same `field` (`email` or `phone`).
    Stored {
        /// `email` or `phone`.
        field: &'static str,
        /// The customer who holds it.
        existing: CustomerId,
    },
    /// An earlier customer of the same batch has the same `field`.
    Earlier {
        /// `email` or `phone`.
        field: &'static str,
        /// Its place in the batch.
        index: usize,
    },
}

/// A customer sealed by [`Records::seal_new_customer`] and not stored yet; only
/// [`Records::insert_sealed`] opens it (the store's row type stays inside the service).
#[derive(Debug)]
pub struct Sealed(SealedCustomer);

impl Sealed {
    /// The id the customer will have.
    pub fn id(&self) -> CustomerId {
        self.0.row.id
    }
}
