//! The vault: every write is sealed before it reaches the store, every read unsealed after.

use std::sync::Arc;

use serde::Serialize;
use steward_crypto::{DataKey, Keyring, WrappedKey};
use steward_domain::{CustomerId, CustomerPatch, NewPurchase, PurchaseId, ValidationError};
use steward_policy::Action;
use steward_store::{DynStore, StoredKey};

use crate::Actor;
use crate::auth::Operator;
use crate::door::{About, entry};
use crate::error::{ServiceError, ServiceResult};

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
    pub(crate) maintenance: Arc<dyn steward_store::MaintenanceStore>,
    pub(crate) cluster: Arc<dyn steward_store::ClusterStore>,
}

impl Stores {
    fn of(store: &DynStore) -> Self {
        Stores {
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
    /// Customers and their activity, and the read path.
    pub(crate) records: Arc<crate::records::Records>,
    /// Access alerts for the DPO.
    pub(crate) alerts: Arc<crate::alerts::Alerts>,
    /// Outlets and staff.
    pub(crate) directory: Arc<crate::directory::Directory>,
    /// The audit log's read side.
    pub(crate) audit_trail: crate::AuditTrail,
    /// Tells the other servers of committed changes.
    pub(crate) announcer: Arc<crate::cluster::Announcer>,
    /// The purpose registry.
    pub(crate) purposes: Arc<crate::purposes::Purposes>,
    /// Tokens, sessions, authentication.
    pub(crate) identity: Arc<crate::identity::Identity>,
    /// Whether this server hears the others' changes (see `cluster`).
    pub(crate) hearing: Arc<crate::cluster::Hearing>,
    /// The limits the servers count together, and the brakes and refusals they announced.
    pub(crate) limits: Arc<crate::shared_limits::SharedLimits>,
    /// The database's last answer to a readiness check, and when.
    pub(crate) readiness: tokio::sync::Mutex<Option<(std::time::Instant, bool)>>,
    /// Codes, portal sessions, contact changes.
    pub(crate) portal_access: crate::portal_access::PortalAccess,
    /// The consent ledger.
    pub(crate) consents: Arc<crate::consent::Consents>,
    /// Crypto-shredding, the erasure journal, legal holds.
    pub(crate) erasures: Arc<crate::erasure::Erasures>,
    /// Delivers one-time codes for data-subject requests (set by the opener).
    pub(crate) notifier: Arc<std::sync::OnceLock<Arc<dyn crate::notify::Notifier>>>,
    /// The confidentiality notice and the staff's acknowledgements, for the read path.
    pub(crate) notices: Arc<crate::notice::Notices>,
    /// The data-subject request ledger, its deadlines, and what the DPO is told.
    pub(crate) requests: crate::requests::Requests,
    /// Segments: rules, sizes, members.
    pub(crate) segments: crate::segments::Segments,
    /// Aggregate queries under privacy budgets.
    pub(crate) analytics: crate::analytics::Analytics,
    /// Surveys of a segment's consenting customers.
    pub(crate) surveys: crate::surveys::Surveys,
    /// Recipients, agreements, disclosures.
    pub(crate) sharing: crate::sharing::Sharing,
    /// Campaigns, staff messages, the mail that comes back.
    pub(crate) outreach: crate::outreach::Outreach,
    /// Personalisation's co-purchase model and recommendations.
    pub(crate) personalisation: Arc<crate::personalise::Personalisation>,
    /// Every recipient's agreements, for the read path (issue 22).
    pub(crate) agreements: Arc<crate::agreements::Agreements>,
    /// Signs notifications to recipients; whether plain-http loopback receivers are allowed.
    pub(crate) webhooks: Arc<crate::webhooks::Webhooks>,
}

impl Vault {
    /// Customers and their activity: their creation and changes, and every decided read.
    pub fn records(&self) -> &Arc<crate::records::Records> {
        &self.inner.records
    }

    /// Personalisation: the model, the recommendations, the categories it leaves out.
    pub fn personalisation(&self) -> &Arc<crate::personalise::Personalisation> {
        &self.inner.personalisation
    }

    /// Segments: rules over the customer base, sizes and members, each evaluation decided.
    pub fn segments(&self) -> &crate::segments::Segments {
        &self.inner.segments
    }

    /// Analytics without identities: noisy aggregates under each analyst's budget.
    pub fn analytics(&self) -> &crate::analytics::Analytics {
        &self.inner.analytics
    }

    /// Surveys: questions to a segment's consenting customers, totals released with noise.
    pub fn surveys(&self) -> &crate::surveys::Surveys {
        &self.inner.surveys
    }

    /// Sharing under agreement: recipients, agreements, disclosures, a recipient's reads.
    pub fn sharing(&self) -> &crate::sharing::Sharing {
        &self.inner.sharing
    }

    /// Reaching customers: campaigns, staff messages, the mail that comes back.
    pub fn outreach(&self) -> &crate::outreach::Outreach {
        &self.inner.outreach
    }

    /// The data-subject request ledger, its deadlines, and the DPO's notices.
    pub fn request_ledger(&self) -> &crate::requests::Requests {
        &self.inner.requests
    }

    /// How a customer reaches their data: codes, portal sessions, confirmed contact changes.
    pub fn portal_access(&self) -> &crate::portal_access::PortalAccess {
        &self.inner.portal_access
    }

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
        let links = Arc::new(keyring.unwrap_link_key(&wrapped(
            &keyring_entry(&*store, LINK_KEY, || keyring.new_link_key()).await?,
        ))?);
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
        let agreements = Arc::new(crate::agreements::Agreements::new(store.clone()));
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
        let alerts = Arc::new(crate::alerts::Alerts::new(
            door.clone(),
            store.clone(),
            keys.clone(),
            notices.clone(),
            dpo.clone(),
        ));
        let consents = Arc::new(crate::consent::Consents::new(
            door.clone(),
            store.clone(),
            purposes.clone(),
            agreements.clone(),
            receipts,
        ));
        let limits = Arc::new(crate::shared_limits::SharedLimits::new(
            door.clone(),
            store.clone(),
            store.backend() == steward_store::Backend::Postgres,
            announcer.clone(),
        ));
        let records = Arc::new(crate::records::Records::new(crate::records::RecordsParts {
            door: door.clone(),
            customers: store.clone(),
            activity: store.clone(),
            keys: keys.clone(),
            directory: directory.clone(),
            purposes: purposes.clone(),
            notices: notices.clone(),
            consents: consents.clone(),
            alerts: alerts.clone(),
            limits: limits.clone(),
            agreements: agreements.clone(),
        }));
        let marked: Arc<crate::personalise::Marked> = Arc::default();
        let segments = crate::segments::Segments::new(crate::segments::SegmentsParts {
            door: door.clone(),
            store: store.clone(),
            records: records.clone(),
            purposes: purposes.clone(),
            directory: directory.clone(),
            alerts: alerts.clone(),
            keys: keys.clone(),
            notices: notices.clone(),
            marked: marked.clone(),
        });
        let personalisation = Arc::new(crate::personalise::Personalisation::new(
            crate::personalise::PersonalisationParts {
                door: door.clone(),
                store: store.clone(),
                segments: segments.clone(),
                marked: marked.clone(),
                records: records.clone(),
                consents: consents.clone(),
                keys: keys.clone(),
                purposes: purposes.clone(),
                announcer: announcer.clone(),
            },
        ));
        let analytics = crate::analytics::Analytics::new(crate::analytics::AnalyticsParts {
            door: door.clone(),
            store: store.clone(),
            segments: segments.clone(),
            purposes: purposes.clone(),
            directory: directory.clone(),
            keys: keys.clone(),
            notices: notices.clone(),
            marked: marked.clone(),
        });
        let surveys = crate::surveys::Surveys::new(crate::surveys::SurveysParts {
            door: door.clone(),
            store: store.clone(),
            segments: segments.clone(),
            analytics: analytics.clone(),
            records: records.clone(),
            purposes: purposes.clone(),
            consents: consents.clone(),
            directory_key,
        });
        let webhooks = Arc::new(crate::webhooks::Webhooks::new(
            door.clone(),
            store.clone(),
            webhook_signer,
        ));
        let sharing = crate::sharing::Sharing::new(crate::sharing::SharingParts {
            door: door.clone(),
            store: store.clone(),
            records: records.clone(),
            agreements: agreements.clone(),
            consents: consents.clone(),
            purposes: purposes.clone(),
            webhooks: webhooks.clone(),
            announcer: announcer.clone(),
            links: links.clone(),
        });
        let identity = Arc::new(crate::identity::Identity::new(
            door.clone(),
            store.clone(),
            directory.clone(),
            store.clone(),
            hearing.clone(),
            announcer.clone(),
        ));
        let notifier: Arc<std::sync::OnceLock<Arc<dyn crate::notify::Notifier>>> = Arc::default();
        let outreach = crate::outreach::Outreach::new(crate::outreach::OutreachParts {
            door: door.clone(),
            campaigns: store.clone(),
            messages: store.clone(),
            records: records.clone(),
            segments: segments.clone(),
            purposes: purposes.clone(),
            consents: consents.clone(),
            keys: keys.clone(),
            notices: notices.clone(),
            personalisation: personalisation.clone(),
            identity: identity.clone(),
            dkim,
            links: links.clone(),
            notifier: notifier.clone(),
        });
        let vault = Self {
            inner: Arc::new(Inner {
                door: door.clone(),
                directory: directory.clone(),
                announcer: announcer.clone(),
                audit_trail: crate::AuditTrail::new(door.clone(), store.clone()),
                stores: Stores::of(&store),
                alerts: alerts.clone(),
                records: records.clone(),
                keys: keys.clone(),
                purposes: purposes.clone(),
                identity,
                limits,
                readiness: Default::default(),
                hearing,
                portal_access: crate::portal_access::PortalAccess::new(
                    door.clone(),
                    store.clone(),
                    records.clone(),
                    keys.clone(),
                    notifier.clone(),
                ),
                consents,
                erasures: Arc::new(crate::erasure::Erasures::new(
                    door.clone(),
                    store.clone(),
                    store.clone(),
                )),
                notifier,
                notices: notices.clone(),
                requests: crate::requests::Requests::new(
                    door.clone(),
                    store.clone(),
                    alerts.clone(),
                    dpo,
                ),
                segments: segments.clone(),
                analytics: analytics.clone(),
                surveys,
                sharing,
                outreach,
                personalisation: personalisation.clone(),
                agreements,
                webhooks,
            }),
        };
        vault.inner.agreements.reload().await?;
        // The purchase categories marked as special categories: segments leave them out
        // whether or not personalisation's model is ever built in this process.
        vault.personalisation().reload_marked().await?;
        crate::cluster::spawn_refresh(Arc::downgrade(&vault.inner));
        vault.spawn_hearing();
        vault.inner.limits.spawn_pruning();
        let indexed = vault.records().index_missing_names().await?;
        if indexed > 0 {
            tracing::info!(customers = indexed, "indexed names for search");
        }
        Ok((vault, Operator::internal("cli")))
    }

    /// The backend's name, for the start-up log line.
    pub fn backend(&self) -> &'static str {
        match self.inner.stores.maintenance.backend() {
            steward_store::Backend::Sqlite => "sqlite",
            steward_store::Backend::Postgres => "postgres",
        }
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

    /// Applies a merge patch to a customer, if the policy lets `actor` change them (a customer
    /// changes only themself, through the portal). A new e-mail address waits for the customer to
    /// confirm it from that address (see [`crate::contact`], the portal's access); an address another customer holds
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
        let current = self.records().get_customer(id).await?;
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
            && self.portal_access().held_by_another("email", e, id).await?
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
                self.portal_access()
                    .start_email_change(actor, id, current.email.as_deref(), target, by_customer)
                    .await?
            }
            None => {}
        }
        let customer = if now.field_names().is_empty() {
            current.clone()
        } else {
            self.records().apply_patch(actor, id, &now).await?
        };
        if let Some(p) = new_phone {
            self.portal_access()
                .record_phone_change(id, current.email.as_deref(), p)
                .await?;
        }
        Ok(crate::contact::Updated {
            customer,
            pending: waits.map(|_| "email").into_iter().collect(),
        })
    }
    /// Records a purchase, if the policy lets `actor` do so, after checking its outlet and seller.
    pub async fn add_purchase(
        &self,
        actor: Actor<'_>,
        customer: CustomerId,
        p: &NewPurchase,
    ) -> ServiceResult<PurchaseId> {
        let prepared = self.records().prepare_purchase(actor, customer, p).await?;
        let insert = async || self.records().store_purchase(&prepared).await;
        // A consenting customer's new purchase joins their basket in personalisation's model;
        // the others' purchases take no lock.
        if self
            .personalisation()
            .personalisation_contributor(customer)
            .await?
        {
            self.personalisation()
                .with_basket_moved(customer, insert)
                .await?;
        } else {
            insert().await?;
        }
        Ok(prepared.id)
    }
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
