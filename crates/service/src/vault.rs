//! The vault: every write is sealed before it reaches the store, every read unsealed after.

use std::sync::Arc;
use steward_domain::pii::PiiTypes;

use serde::Serialize;
use steward_crypto::{DataKey, Keyring, WrappedKey};
use steward_domain::{
    Customer, CustomerId, CustomerPatch, Interaction, InteractionId, NewCustomer, NewInteraction,
    NewPurchase, Purchase, PurchaseId, Role, Timestamp, ValidationError,
};
use steward_policy::Action;
use steward_store::{DynStore, Lookup, SealedCustomer, StoredKey};
use uuid::Uuid;

use crate::Actor;
use crate::auth::Operator;
use crate::door::{About, entry};
use crate::error::{ServiceError, ServiceResult};
use crate::seal;

/// Every part of a customer's record, as an audit entry names what a whole-record act touched
/// (the portal's view, the operator's export): every declared profile field, then the activity.
/// Names only, never a value.
pub(crate) fn whole_record() -> Vec<&'static str> {
    steward_domain::ProfileField::ALL
        .iter()
        .map(|f| f.name())
        .chain(["purchases", "communications"])
        .collect()
}

const BLIND_INDEX_KEY: &str = "blind_index";
const DIRECTORY_KEY: &str = "directory";
const RECEIPT_KEY: &str = "receipt_signing";
// Rotation re-wraps every entry under the label `keyring\0<name>`: these names are the labels'.
const LINK_KEY: &str = "link";
const DKIM_KEY: &str = "dkim";
const WEBHOOK_KEY: &str = "webhook_signing";
/// Keyring entry of the key that tags pending audit entries.
pub(crate) const OUTBOX_KEY: &str = "audit_outbox";

/// The installation key `name`, created with `make` on first use (another server racing to create
/// it wins harmlessly: the stored one is returned).
async fn keyring_entry(
    store: &dyn steward_store::KeyStore,
    name: &str,
    make: impl FnOnce() -> Result<WrappedKey, steward_crypto::CryptoError>,
) -> ServiceResult<StoredKey> {
    match store.keyring_get(name).await? {
        Some(k) => Ok(k),
        None => Ok(store.keyring_put_if_absent(name, &stored(make()?)).await?),
    }
}

/// Gives `store` the tagger of pending audit entries, under the installation's outbox key
/// (made on first use). The vault does it when it opens; an operator tool that records audit
/// entries through a bare store (a backup, a key rotation) does it first, with the master key:
/// without it, every audited write fails.
pub(crate) async fn tag_outbox(store: &DynStore, keyring: &Keyring) -> ServiceResult<()> {
    let key = keyring.unwrap_outbox_key(&wrapped(
        &keyring_entry(&**store, OUTBOX_KEY, || keyring.new_outbox_key()).await?,
    ))?;
    store.tag_outbox_with(Arc::new(crate::audit::OutboxTags(key)));
    Ok(())
}

pub(crate) fn stored(w: WrappedKey) -> StoredKey {
    StoredKey {
        master_key_id: w.master_key_id,
        wrapped: w.blob,
    }
}

pub(crate) fn wrapped(k: &StoredKey) -> WrappedKey {
    WrappedKey {
        master_key_id: k.master_key_id.clone(),
        blob: k.wrapped.clone(),
    }
}

/// Seals and stores; loads and unseals. Cheap to clone.
#[derive(Clone)]
pub struct Vault {
    pub(crate) inner: Arc<Inner>,
}

/// The store, one handle per context: each call names the context it touches, and each handle
/// offers only that context's methods (all upcast from the one store the opener wired).
pub(crate) struct Stores {
    pub(crate) customers: Arc<dyn steward_store::CustomerStore>,
    pub(crate) activity: Arc<dyn steward_store::ActivityStore>,
    pub(crate) portal: Arc<dyn steward_store::PortalStore>,
    pub(crate) rights: Arc<dyn steward_store::RightsStore>,
    pub(crate) segments: Arc<dyn steward_store::SegmentStore>,
    pub(crate) campaigns: Arc<dyn steward_store::CampaignStore>,
    pub(crate) messages: Arc<dyn steward_store::MessageStore>,
    pub(crate) personalisation: Arc<dyn steward_store::PersonalisationStore>,
    pub(crate) analytics: Arc<dyn steward_store::AnalyticsStore>,
    pub(crate) surveys: Arc<dyn steward_store::SurveyStore>,
    pub(crate) sharing: Arc<dyn steward_store::SharingStore>,
    pub(crate) maintenance: Arc<dyn steward_store::MaintenanceStore>,
    pub(crate) cluster: Arc<dyn steward_store::ClusterStore>,
}

impl Stores {
    fn of(store: &DynStore) -> Self {
        Stores {
            customers: store.clone(),
            activity: store.clone(),
            portal: store.clone(),
            rights: store.clone(),
            segments: store.clone(),
            campaigns: store.clone(),
            messages: store.clone(),
            personalisation: store.clone(),
            analytics: store.clone(),
            surveys: store.clone(),
            sharing: store.clone(),
            maintenance: store.clone(),
            cluster: store.clone(),
        }
    }
}

pub(crate) struct Inner {
    /// The policy's decision and the audit entry, shared by every context.
    pub(crate) door: Arc<crate::door::Door>,
    pub(crate) stores: Stores,
    /// Each customer's data key, under the keyring.
    pub(crate) keys: Arc<crate::customer_keys::CustomerKeys>,
    /// Access alerts for the DPO.
    pub(crate) alerts: crate::alerts::Alerts,
    /// Seals staff names and the surveys' keys.
    pub(crate) directory_key: Arc<DataKey>,
    /// Outlets and staff.
    pub(crate) directory: Arc<crate::directory::Directory>,
    /// The audit log's read side.
    pub(crate) audit_trail: crate::AuditTrail,
    /// Tells the other servers of committed changes.
    pub(crate) announcer: Arc<crate::cluster::Announcer>,
    /// The purpose registry.
    pub(crate) purposes: Arc<crate::purposes::Purposes>,
    /// Tokens, sessions, authentication.
    pub(crate) identity: crate::identity::Identity,
    /// Whether this server hears the others' changes (see `cluster`).
    pub(crate) hearing: Arc<crate::cluster::Hearing>,
    /// The limits the servers count together, and the brakes and refusals they announced.
    pub(crate) limits: Arc<crate::shared_limits::SharedLimits>,
    /// The database's last answer to a readiness check, and when.
    pub(crate) readiness: tokio::sync::Mutex<Option<(std::time::Instant, bool)>>,
    pub(crate) portal: crate::portal::PortalCache,
    /// The consent ledger.
    pub(crate) consents: crate::consent::Consents,
    pub(crate) bulk: crate::BulkGuard,
    /// Crypto-shredding, the erasure journal, legal holds.
    pub(crate) erasures: Arc<crate::erasure::Erasures>,
    /// Delivers one-time codes for data-subject requests (set by the opener).
    pub(crate) notifier: std::sync::OnceLock<Arc<dyn crate::notify::Notifier>>,
    /// The confidentiality notice and the staff's acknowledgements, for the read path.
    pub(crate) notices: Arc<crate::notice::Notices>,
    /// Where the DPO is told of requests, alerts and deadlines.
    pub(crate) dpo: Arc<crate::dpo_notify::DpoNotices>,
    /// Days a data-subject request has until its deadline.
    pub(crate) request_days: std::sync::atomic::AtomicI64,
    /// Segment sizes under the threshold are shown as "fewer than N"; evaluations per caller.
    pub(crate) segment_limits: crate::segments::SegmentLimits,
    pub(crate) analytics: crate::analytics::AnalyticsSettings,
    /// Seals the links in messages (one-click unsubscribe).
    pub(crate) links: steward_crypto::LinkKey,
    /// Signs every campaign message (DKIM).
    pub(crate) dkim: steward_crypto::DkimKey,
    /// How campaign mail leaves, once the operator has said.
    pub(crate) mail: std::sync::OnceLock<Arc<crate::sending::Mail>>,
    /// Personalisation's co-purchase model.
    pub(crate) recommender: crate::personalise::Recommender,
    /// Every recipient's agreements, for the read path (issue 22).
    pub(crate) agreements: Arc<crate::sharing::Agreements>,
    /// Signs notifications to recipients; whether plain-http loopback receivers are allowed.
    pub(crate) webhooks: Arc<crate::webhooks::Webhooks>,
}

impl Vault {
    /// Notifications to recipients: their sender, keys and settings.
    pub fn webhooks(&self) -> &Arc<crate::webhooks::Webhooks> {
        &self.inner.webhooks
    }

    /// The limits the servers of an installation count together (rates, brakes, bulk reads).
    pub fn limits(&self) -> &crate::shared_limits::SharedLimits {
        &self.inner.limits
    }

    /// Erasures: the journal, legal holds (an erasure itself is [`Vault::erase_customer`]).
    pub fn erasures(&self) -> &Arc<crate::erasure::Erasures> {
        &self.inner.erasures
    }

    /// Access alerts: the DPO's list, and an alert's reason opened.
    pub fn alerts(&self) -> &crate::alerts::Alerts {
        &self.inner.alerts
    }

    /// Each customer's data key.
    pub(crate) fn keys(&self) -> &crate::customer_keys::CustomerKeys {
        &self.inner.keys
    }

    /// The policy's decision and the audit entry (see [`crate::door`]).
    pub(crate) fn door(&self) -> &crate::door::Door {
        &self.inner.door
    }

    /// The consent ledger: receipts and the DPO's chart (a staff member's read of a customer's
    /// ledger is [`Vault::consent_state`]).
    pub fn consents(&self) -> &crate::consent::Consents {
        &self.inner.consents
    }

    /// Tokens, sign-in sessions and authentication.
    pub fn identity(&self) -> &crate::identity::Identity {
        &self.inner.identity
    }

    /// The audit log: checkpoint, entries, proofs, access logs, search.
    pub fn audit(&self) -> &crate::AuditTrail {
        &self.inner.audit_trail
    }

    /// The purpose registry.
    pub fn purposes(&self) -> &crate::purposes::Purposes {
        &self.inner.purposes
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

    /// The confidentiality notice and the staff's acknowledgements.
    pub fn notices(&self) -> &crate::notice::Notices {
        &self.inner.notices
    }

    /// Outlets and staff.
    pub fn directory(&self) -> &crate::directory::Directory {
        &self.inner.directory
    }

    /// Opens the vault over a migrated store: creates the installation keys on first use and
    /// seeds the default purposes. The opener holds the master key, so it alone is handed the
    /// [`Operator`] capability; whoever is given only the vault (the HTTP API) cannot act as one.
    pub async fn open(
        store: DynStore,
        keyring: Keyring,
        policy: Arc<steward_policy::Policy>,
        audit_signer: steward_crypto::NoteSigner,
    ) -> ServiceResult<(Self, Operator)> {
        let blind = keyring.unwrap_blind_index_key(&wrapped(
            &keyring_entry(&*store, BLIND_INDEX_KEY, || keyring.new_blind_index_key()).await?,
        ))?;
        let dir_label = b"keyring\0directory";
        let dir_wrapped = keyring_entry(&*store, DIRECTORY_KEY, || {
            DataKey::generate()?.wrap(&keyring, dir_label)
        })
        .await?;
        let directory_key = Arc::new(DataKey::unwrap(
            &keyring,
            &wrapped(&dir_wrapped),
            dir_label,
        )?);
        let receipts = keyring.unwrap_receipt_signer(&wrapped(
            &keyring_entry(&*store, RECEIPT_KEY, || keyring.new_receipt_signer()).await?,
        ))?;
        let links = keyring.unwrap_link_key(&wrapped(
            &keyring_entry(&*store, LINK_KEY, || keyring.new_link_key()).await?,
        ))?;
        let dkim = keyring.unwrap_dkim_key(&wrapped(
            &keyring_entry(&*store, DKIM_KEY, || keyring.new_dkim_key()).await?,
        ))?;
        let webhook_signer = keyring.unwrap_webhook_signer(&wrapped(
            &keyring_entry(&*store, WEBHOOK_KEY, || keyring.new_webhook_signer()).await?,
        ))?;
        // Before anything is written or drained: until then audited writes fail (closed).
        tag_outbox(&store, &keyring).await?;
        let audit = crate::audit::AuditLog::start(store.clone(), store.clone(), audit_signer);
        let door = Arc::new(crate::door::Door::new(
            policy,
            audit,
            blind,
            store.clone(),
            store.clone(),
        ));
        let announcer = Arc::new(crate::cluster::Announcer::new(door.clone(), store.clone()));
        let agreements: Arc<crate::sharing::Agreements> = Arc::default();
        let keys = Arc::new(crate::customer_keys::CustomerKeys::new(
            keyring,
            store.clone(),
        ));
        let dpo: Arc<crate::dpo_notify::DpoNotices> = Arc::default();
        let hearing = Arc::new(crate::cluster::Hearing::new(
            store.backend() != steward_store::Backend::Postgres,
        ));
        let directory = Arc::new(crate::directory::Directory::new(
            door.clone(),
            store.clone(),
            directory_key.clone(),
        ));
        let purposes = Arc::new(
            crate::purposes::Purposes::open(door.clone(), store.clone(), announcer.clone()).await?,
        );
        let notices = Arc::new(
            crate::notice::Notices::open(
                door.clone(),
                store.clone(),
                directory.clone(),
                announcer.clone(),
            )
            .await?,
        );
        let vault = Self {
            inner: Arc::new(Inner {
                door: door.clone(),
                directory: directory.clone(),
                directory_key,
                announcer: announcer.clone(),
                audit_trail: crate::AuditTrail::new(door.clone(), store.clone()),
                stores: Stores::of(&store),
                alerts: crate::alerts::Alerts::new(
                    door.clone(),
                    store.clone(),
                    keys.clone(),
                    notices.clone(),
                    dpo.clone(),
                ),
                keys,
                purposes: purposes.clone(),
                identity: crate::identity::Identity::new(
                    door.clone(),
                    store.clone(),
                    directory.clone(),
                    store.clone(),
                    hearing.clone(),
                    announcer.clone(),
                ),
                limits: Arc::new(crate::shared_limits::SharedLimits::new(
                    door.clone(),
                    store.clone(),
                    store.backend() == steward_store::Backend::Postgres,
                    announcer.clone(),
                )),
                readiness: Default::default(),
                hearing,
                portal: crate::portal::PortalCache::default(),
                consents: crate::consent::Consents::new(
                    door.clone(),
                    store.clone(),
                    purposes.clone(),
                    agreements.clone(),
                    receipts,
                ),
                bulk: crate::BulkGuard::default(),
                erasures: Arc::new(crate::erasure::Erasures::new(
                    door.clone(),
                    store.clone(),
                    store.clone(),
                )),
                notifier: std::sync::OnceLock::new(),
                request_days: std::sync::atomic::AtomicI64::new(
                    crate::rights::DEFAULT_DEADLINE_DAYS,
                ),
                notices,
                dpo,
                segment_limits: Default::default(),
                analytics: Default::default(),
                links,
                dkim,
                mail: std::sync::OnceLock::new(),
                recommender: Default::default(),
                agreements,
                webhooks: Arc::new(crate::webhooks::Webhooks::new(
                    door.clone(),
                    store.clone(),
                    webhook_signer,
                )),
            }),
        };
        vault
            .inner
            .agreements
            .reload(&*vault.inner.stores.sharing)
            .await?;
        // The purchase categories marked as special categories: segments leave them out
        // whether or not personalisation's model is ever built in this process.
        vault.reload_marked().await?;
        crate::cluster::spawn_refresh(Arc::downgrade(&vault.inner));
        vault.spawn_hearing();
        vault.inner.limits.spawn_pruning();
        let indexed = vault.index_missing_names().await?;
        if indexed > 0 {
            tracing::info!(customers = indexed, "indexed names for search");
        }
        Ok((vault, Operator::internal("cli")))
    }

    /// Sets the bulk-access limit of `role` (`None` lifts it): the operator's setting
    /// (`serve --bulk-limit`), so a layer given only the vault cannot lift a limit.
    pub fn set_bulk_limit(&self, _operator: Operator, role: Role, limit: Option<usize>) {
        self.inner.bulk.set_limit(role, limit);
    }

    /// The backend's name, for the start-up log line.
    pub fn backend(&self) -> &'static str {
        match self.inner.stores.maintenance.backend() {
            steward_store::Backend::Sqlite => "sqlite",
            steward_store::Backend::Postgres => "postgres",
        }
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

    /// [`Vault::create_customer`] even when another customer has the same e-mail or phone (a
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
        self.inner
            .stores
            .customers
            .insert_customers(std::slice::from_ref(&sealed), &[entry])
            .await?;
        Ok(id)
    }

    /// Stores customers sealed by [`Vault::seal_new_customer`] in one transaction, with an
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
        self.inner
            .stores
            .customers
            .insert_customers(&batch, &entries)
            .await?;
        Ok(batch.iter().map(|c| c.row.id).collect())
    }

    /// Records an operator's action that writes nothing else to the database (the policy a
    /// server starts with); `subject` says what it was about.
    pub async fn record_operator(
        &self,
        operator: Operator,
        action: &str,
        subject: Option<&str>,
    ) -> ServiceResult<()> {
        let about = About {
            subject,
            purpose: None,
        };
        let e = self
            .door()
            .write_entry_for(Actor::Operator(operator), action, None, &[], about);
        self.door().record(&[e]).await
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
        let Some((row, key, facts)) = self
            .inner
            .stores
            .customers
            .get_customer_for_read(id)
            .await?
        else {
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
            .inner
            .stores
            .customers
            .get_customer(id)
            .await?
            .ok_or(ServiceError::NotFound("customer"))?;
        self.open_sealed(&row, &key)
    }

    /// Applies a merge patch to a customer, if the policy lets `actor` change them (a customer
    /// changes only themself, through the portal). A new e-mail address waits for the customer to
    /// confirm it from that address (see [`crate::contact`]); an address another customer holds
    /// is a conflict naming `email`; nothing is changed by a refused patch. A phone number is no
    /// sign-in factor and may be shared (a household): it applies at once, and the address on
    /// record is told.
    pub async fn update_customer(
        &self,
        actor: Actor<'_>,
        id: CustomerId,
        patch: &CustomerPatch,
    ) -> ServiceResult<crate::contact::Updated> {
        self.door()
            .authorize_actor(actor, Action::UpdateCustomer, Some(id), true)
            .await?;
        if patch.is_empty() {
            return Err(ValidationError::new("body", "names no field to change").into());
        }
        let by_customer = matches!(actor, Actor::Subject(_));
        self.update_customer_as(actor, id, patch, by_customer).await
    }

    /// [`Vault::update_customer`]; `by_customer` when the customer asked for it (signed in, or
    /// through a data-subject request whose identity was checked): a new e-mail address is then
    /// confirmed from itself, otherwise approved from the address on record.
    pub(crate) async fn update_customer_as(
        &self,
        actor: Actor<'_>,
        id: CustomerId,
        patch: &CustomerPatch,
        by_customer: bool,
    ) -> ServiceResult<crate::contact::Updated> {
        let current = self.get_customer(id).await?;
        let next = patch.apply(current.profile())?;
        let operator = matches!(actor, Actor::Operator(_));
        // The change of address that waits for the customer: `Some(Some(a))` a new one,
        // `Some(None)` a removal asked by staff (a customer removes theirs at once). The operator at
        // the command line holds the keys anyway: its changes apply at once.
        let waits: Option<Option<&str>> = match (current.email.as_deref(), next.email.as_deref()) {
            _ if operator => None,
            (old, Some(new)) if old != Some(new) => Some(Some(new)),
            (Some(_), None) if !by_customer => Some(None),
            _ => None,
        };
        let new_phone = next
            .phone
            .as_deref()
            .filter(|p| current.phone.as_deref() != Some(*p));
        // Another customer's address: staff are told (they can look it up anyway); a customer in
        // the portal is answered as if the change had started, so the portal tells nobody whose
        // address it is — and no code is sent, so it never takes effect.
        let mut taken = false;
        if let Some(Some(e)) = waits
            && self.held_by_another("email", e, id).await?
        {
            if !matches!(actor, Actor::Subject(_)) {
                return Err(ServiceError::Conflict("email"));
            }
            taken = true;
        }
        // What applies now: everything but the waiting change of address.
        let mut now = patch.clone();
        if waits.is_some() {
            now.email = None;
            if next.name.is_none() && current.email.is_none() && next.phone.is_none() {
                return Err(ValidationError::new(
                    "email",
                    "a new e-mail address takes effect only when confirmed; keep a name or a phone meanwhile",
                )
                .into());
            }
        }
        match waits {
            Some(_) if taken => {
                let entry =
                    self.door()
                        .write_entry(actor, "contact_change.refused", Some(id), &["email"]);
                self.door().record(&[entry]).await?;
            }
            Some(target) => {
                self.start_email_change(actor, id, current.email.as_deref(), target, by_customer)
                    .await?
            }
            None => {}
        }
        let customer = if now.field_names().is_empty() {
            current.clone()
        } else {
            self.apply_patch(actor, id, &now).await?
        };
        if let Some(p) = new_phone {
            self.record_phone_change(id, current.email.as_deref(), p)
                .await?;
        }
        Ok(crate::contact::Updated {
            customer,
            pending: waits.map(|_| "email").into_iter().collect(),
        })
    }

    /// Applies a merge patch as it is (identity checks done by the caller); one transaction.
    pub(crate) async fn apply_patch(
        &self,
        actor: Actor<'_>,
        id: CustomerId,
        patch: &CustomerPatch,
    ) -> ServiceResult<Customer> {
        let (row, key) = self
            .inner
            .stores
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
            .inner
            .stores
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
                .inner
                .stores
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

    /// Up to `limit` customer ids after `after`, in id order, with the cursor of the next page
    /// (`None` after the last).
    pub(crate) async fn customer_id_page(
        &self,
        after: Option<CustomerId>,
        limit: u32,
    ) -> ServiceResult<(Vec<CustomerId>, Option<CustomerId>)> {
        let ids = self
            .inner
            .stores
            .customers
            .list_customer_ids(None, after, limit)
            .await?;
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
            .inner
            .stores
            .customers
            .lookup(kind, &self.door().mac(kind, normalised))
            .await?)
    }

    /// Number of customers.
    pub async fn count_customers(&self) -> ServiceResult<i64> {
        Ok(self.inner.stores.customers.count_customers().await?)
    }

    /// Records an interaction, if the policy lets `actor` do so; its text is kept as written
    /// (see [`Vault::add_interaction_for`] for a purpose's rule).
    pub async fn add_interaction(
        &self,
        actor: Actor<'_>,
        customer: CustomerId,
        i: &NewInteraction,
    ) -> ServiceResult<InteractionId> {
        self.record_interaction(actor, customer, i, PiiTypes::NONE)
            .await
    }

    /// Records an interaction whose text was screened, `found` the kinds found before a rule
    /// changed the text.
    pub(crate) async fn record_interaction(
        &self,
        actor: Actor<'_>,
        customer: CustomerId,
        i: &NewInteraction,
        found: PiiTypes,
    ) -> ServiceResult<InteractionId> {
        self.door()
            .authorize_actor(actor, Action::AddInteraction, Some(customer), false)
            .await?;
        let dk = self.keys().of(customer).await?;
        let id = InteractionId::new();
        self.inner
            .stores
            .activity
            .insert_interaction(
                &seal::seal_screened(&dk, customer, id, i, found)?,
                &[self.door().write_entry(
                    actor,
                    "add_interaction",
                    Some(customer),
                    &["communications"],
                )],
            )
            .await?;
        Ok(id)
    }

    /// A customer's interactions, undecided: for the service's own use after a decision.
    pub(crate) async fn list_interactions(
        &self,
        customer: CustomerId,
        after: Option<Uuid>,
        limit: u32,
    ) -> ServiceResult<Vec<Interaction>> {
        let dk = self.keys().of(customer).await?;
        let rows = self
            .inner
            .stores
            .activity
            .list_interactions(customer, after.map(|a| a.as_bytes().to_vec()), limit)
            .await?;
        rows.iter()
            .map(|r| seal::open_interaction(&dk, r))
            .collect()
    }

    /// Records a purchase, if the policy lets `actor` do so, after checking its outlet and seller.
    pub async fn add_purchase(
        &self,
        actor: Actor<'_>,
        customer: CustomerId,
        p: &NewPurchase,
    ) -> ServiceResult<PurchaseId> {
        self.door()
            .authorize_actor(actor, Action::AddPurchase, Some(customer), false)
            .await?;
        let dk = self.keys().of(customer).await?;
        self.directory()
            .check_outlet("outlet_id", Some(p.outlet_id))
            .await?;
        // Issue 15, finding 8: staff record sales at their own outlets (support agents and
        // service clients, which serve every outlet, excepted), credited to someone who works there.
        if let Actor::Principal(who) = actor
            && who.staff_id.is_some()
            && !who.roles.contains(&Role::SupportAgent)
            && !who.outlets.contains(&p.outlet_id)
        {
            return Err(ServiceError::Forbidden {
                field: "outlet_id",
                detail: "a purchase is recorded only at one of the caller's own outlets".into(),
            });
        }
        if let Some(s) = p.seller_id {
            let works_there = self
                .directory()
                .staff_row(s)
                .await?
                .is_some_and(|row| row.outlet_ids.contains(&p.outlet_id));
            if !works_there {
                return Err(ValidationError::new(
                    "seller_id",
                    "no staff member of that id works at the purchase's outlet",
                )
                .into());
            }
        }
        let id = PurchaseId::new();
        let row = seal::seal_purchase(&dk, customer, id, p)?;
        let entry = self
            .door()
            .write_entry(actor, "add_purchase", Some(customer), &["purchases"]);
        let insert = async || {
            Ok(self
                .inner
                .stores
                .activity
                .insert_purchase(&row, std::slice::from_ref(&entry))
                .await?)
        };
        // A consenting customer's new purchase joins their basket in personalisation's model;
        // the others' purchases take no lock.
        if self.personalisation_contributor(customer).await? {
            self.with_basket_moved(customer, insert).await?;
        } else {
            insert().await?;
        }
        Ok(id)
    }

    /// A customer's purchases, undecided: for the service's own use after a decision.
    pub(crate) async fn list_purchases(
        &self,
        customer: CustomerId,
        after: Option<Uuid>,
        limit: u32,
    ) -> ServiceResult<Vec<Purchase>> {
        let dk = self.keys().of(customer).await?;
        let rows = self
            .inner
            .stores
            .activity
            .list_purchases(customer, after.map(|a| a.as_bytes().to_vec()), limit)
            .await?;
        rows.iter().map(|r| seal::open_purchase(&dk, r)).collect()
    }

    /// The customer's newest `limit` purchases (by id), opened, oldest of them first: what an
    /// abstraction of the purchase history is computed from.
    pub(crate) async fn newest_purchases(
        &self,
        customer: CustomerId,
        limit: u32,
    ) -> ServiceResult<Vec<Purchase>> {
        let dk = self.keys().of(customer).await?;
        let rows = self
            .inner
            .stores
            .activity
            .recent_purchases(customer, None, limit)
            .await?;
        rows.iter()
            .rev()
            .map(|r| seal::open_purchase(&dk, r))
            .collect()
    }

    /// Seals and stores interactions and purchases of known customers in one transaction: the
    /// operator's bulk load (demo data), decided once for the batch; the operator vouches that
    /// outlets and sellers exist.
    pub async fn add_activity(
        &self,
        operator: Operator,
        items: &[(CustomerId, Activity)],
    ) -> ServiceResult<()> {
        let actor = Actor::Operator(operator);
        for action in [Action::AddInteraction, Action::AddPurchase] {
            self.door()
                .authorize_actor(actor, action, None, false)
                .await?;
        }
        let (mut interactions, mut purchases) = (Vec::new(), Vec::new());
        let mut last: Option<(CustomerId, DataKey)> = None;
        for (cid, a) in items {
            if last.as_ref().is_none_or(|(id, _)| id != cid) {
                last = Some((*cid, self.keys().of(*cid).await?));
            }
            let Some((_, dk)) = &last else { continue };
            match a {
                Activity::Interaction(i) => {
                    interactions.push(seal::seal_interaction(dk, *cid, InteractionId::new(), i)?)
                }
                Activity::Purchase(p) => {
                    purchases.push(seal::seal_purchase(dk, *cid, PurchaseId::new(), p)?)
                }
            }
        }
        Ok(self
            .inner
            .stores
            .activity
            .insert_activity(
                &interactions,
                &purchases,
                &items
                    .iter()
                    .map(|(c, a)| {
                        let (action, field) = match a {
                            Activity::Interaction(_) => ("add_interaction", "communications"),
                            Activity::Purchase(_) => ("add_purchase", "purchases"),
                        };
                        self.door().write_entry(actor, action, Some(*c), &[field])
                    })
                    .collect::<Vec<_>>(),
            )
            .await?)
    }

    /// The outlets to offer `principal` in a list's filter under `purpose` (with a reason, if
    /// they read with one): those whose customers' outlet the policy would show them
    /// ([`Vault::read_customers`] refuses the others).
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

/// One interaction or purchase, for bulk loading.
#[derive(Debug, Clone)]
pub enum Activity {
    /// An interaction.
    Interaction(NewInteraction),
    /// A purchase.
    Purchase(NewPurchase),
}

pub(crate) fn serde_plain<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// Records an operator's act that opens nothing and names no customer (a backup copies
/// everyone's ciphertext, so it is recorded even so): one entry through the outbox, tagged under
/// a key `keyring` unwraps.
pub async fn record_operator_act(
    store: &DynStore,
    keyring: &Keyring,
    what: &'static str,
    action: &str,
) -> ServiceResult<()> {
    tag_outbox(store, keyring).await?;
    store.record_audit(&[operator_entry(what, action)]).await?;
    Ok(())
}

/// The audit entry of an operator's act (see [`record_operator_act`]); public for the tests'
/// harness, which writes entries beside the service to attack the outbox.
#[doc(hidden)]
pub fn operator_entry(what: &'static str, action: &str) -> steward_store::AuditEntryRow {
    entry(
        (format!("operator:{what}"), vec![], vec![]),
        action,
        None,
        &[],
        About::default(),
        "written",
    )
}

/// A customer sealed by [`Vault::seal_new_customer`] and not stored yet; only
/// [`Vault::insert_sealed`] opens it (the store's row type stays inside the service).
#[derive(Debug)]
pub struct Sealed(SealedCustomer);

impl Sealed {
    /// The id the customer will have.
    pub fn id(&self) -> CustomerId {
        self.0.row.id
    }
}
