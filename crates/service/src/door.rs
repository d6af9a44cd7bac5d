//! The door every use of personal data passes through: the policy's decision and the audit
//! entry, in one value the composition root makes once ([`Vault::open`](crate::Vault::open)) and
//! hands to every context's service. A context decides with [`Door::authorize_actor`] (or the
//! read path's per-field decision, `access.rs`) and records with [`Door::write_entry_for`] (the
//! entry committed with its write) or [`Door::record_read`] (committed before the answer); it
//! never reaches the policy or the log another way.

use std::sync::Arc;

use steward_crypto::BlindIndexKey;
use steward_domain::{CustomerId, OutletId, Role, Timestamp};
use steward_policy::{Action, Policy, Subject};
use steward_store::{AccessFacts, AuditStore, CustomerStore};

use crate::audit::AuditLog;
use crate::error::{ServiceError, ServiceResult};
use crate::{Actor, Myself, Principal};

/// The policy, the audit log, and what both need: the key of the log's pseudonyms and the facts
/// a decision about a customer is made on (their outlets, whether restricted).
pub(crate) struct Door {
    policy: Arc<Policy>,
    audit: AuditLog,
    /// Keys the principals' pseudonyms in the log (and the installation's other MACs).
    macs: BlindIndexKey,
    facts: Arc<dyn CustomerStore>,
    /// Where entries that stand alone are recorded (the others commit with their write).
    records: Arc<dyn AuditStore>,
}

impl Door {
    /// The door of one installation.
    pub(crate) fn new(
        policy: Arc<Policy>,
        audit: AuditLog,
        macs: BlindIndexKey,
        facts: Arc<dyn CustomerStore>,
        records: Arc<dyn AuditStore>,
    ) -> Self {
        Door {
            policy,
            audit,
            macs,
            facts,
            records,
        }
    }

    /// Records entries of acts that write nothing else (a refused sign-in, an operator's act),
    /// through the outbox, before the caller answers.
    pub(crate) async fn record(
        &self,
        entries: &[steward_store::AuditEntryRow],
    ) -> ServiceResult<()> {
        Ok(self.records.record_audit(entries).await?)
    }

    /// The policy, for a decision of its own kind (a read's fields, a use, an analysis).
    pub(crate) fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The audit log, for a decided read's entry (committed before the answer).
    pub(crate) fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// A keyed MAC under the installation's blind-index key, for `kind` (a domain separator).
    pub(crate) fn mac(&self, kind: &str, value: &str) -> [u8; 16] {
        self.macs.mac(kind, value)
    }

    /// A stable pseudonym for a principal in the audit log: a keyed MAC of its id, so the log
    /// never names a staff member and the same person always looks the same.
    pub(crate) fn pseudonym(&self, asker_id: &str) -> String {
        let mac = self.macs.mac("audit-principal", asker_id);
        let hex: String = mac[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("p_{hex}")
    }

    /// The facts the policy decides customer `id` by (outlets, restriction); `NotFound` if none.
    pub(crate) async fn access_facts(&self, id: CustomerId) -> ServiceResult<AccessFacts> {
        self.facts
            .access_facts(id)
            .await?
            .ok_or(ServiceError::NotFound("customer"))
    }

    /// Checks a non-read action; `Forbidden` if the policy does not allow it.
    pub(crate) async fn authorize(
        &self,
        principal: &Principal,
        action: Action,
        customer: Option<CustomerId>,
    ) -> ServiceResult<()> {
        // A recipient is asked first about no one in particular: it may do nothing but read, and
        // whether a customer exists is not for it to learn from a 404 (second review, finding 2).
        if principal.recipient().is_some() && customer.is_some() {
            let nobody = crate::access::nobody();
            if !self
                .policy
                .allows(&principal.asker(), action, Some(&nobody))
                .0
            {
                return Err(ServiceError::Forbidden {
                    field: "Authorization",
                    detail: "no policy lets this caller do this".into(),
                });
            }
        }
        self.authorize_as(&principal.asker(), action, customer)
            .await
    }

    /// [`Door::authorize`] for the policy's view of any acting party (a principal, the operator).
    pub(crate) async fn authorize_as(
        &self,
        asker: &steward_policy::Asker<'_>,
        action: Action,
        customer: Option<CustomerId>,
    ) -> ServiceResult<()> {
        let facts = match customer {
            Some(id) => Some((id, self.access_facts(id).await?)),
            None => None,
        };
        let subject = facts.as_ref().map(|(id, f)| Subject {
            id: *id,
            outlets: &f.outlets,
            restricted: f.restricted,
        });
        if self.policy.allows(asker, action, subject.as_ref()).0 {
            Ok(())
        } else {
            Err(ServiceError::Forbidden {
                field: "Authorization",
                detail: "no policy lets this caller do this".into(),
            })
        }
    }

    /// Authorises an act (on customer `id`, if about one) by whoever performs it: a principal or
    /// the operator by the policy, a portal customer only on themself and only where
    /// `self_service`.
    pub(crate) async fn authorize_actor(
        &self,
        actor: Actor<'_>,
        action: steward_policy::Action,
        id: Option<CustomerId>,
        self_service: bool,
    ) -> ServiceResult<()> {
        match actor {
            Actor::Principal(p) => self.authorize(p, action, id).await,
            Actor::Operator(o) => self.authorize_as(&o.asker(), action, id).await,
            Actor::Subject(Myself(c)) if self_service && Some(c) == id => Ok(()),
            Actor::Subject(_) => Err(ServiceError::Forbidden {
                field: "customer",
                detail: "a customer may do this only through a request".into(),
            }),
        }
    }

    /// The audit entry of a write: who, what, about whom, which fields — never a value.
    pub(crate) fn write_entry(
        &self,
        actor: Actor<'_>,
        action: &str,
        customer: Option<CustomerId>,
        fields: &[&str],
    ) -> steward_store::AuditEntryRow {
        self.write_entry_for(actor, action, customer, fields, About::default())
    }

    /// [`Door::write_entry`] for a write about something besides a customer, or under a purpose.
    pub(crate) fn write_entry_for(
        &self,
        actor: Actor<'_>,
        action: &str,
        customer: Option<CustomerId>,
        fields: &[&str],
        about: About<'_>,
    ) -> steward_store::AuditEntryRow {
        self.write_entry_marked(actor, action, customer, fields, about, "written")
    }

    /// [`Door::write_entry_for`] marking each field with `mark` (e.g. `destroyed`).
    pub(crate) fn write_entry_marked(
        &self,
        actor: Actor<'_>,
        action: &str,
        customer: Option<CustomerId>,
        fields: &[&str],
        about: About<'_>,
        mark: &str,
    ) -> steward_store::AuditEntryRow {
        entry(
            self.actor_parts(actor),
            action,
            customer,
            fields,
            about,
            mark,
        )
    }

    /// How an entry names the actor: a principal by pseudonym, roles and outlets; the operator
    /// by what it did; the customer as `subject`.
    pub(crate) fn actor_parts(&self, actor: Actor<'_>) -> (String, Vec<Role>, Vec<OutletId>) {
        match actor {
            Actor::Principal(p) => (
                self.pseudonym(&p.asker().id),
                p.roles.clone(),
                p.outlets.clone(),
            ),
            Actor::Operator(o) => (format!("operator:{}", o.what()), vec![], vec![]),
            // The entry names the customer already; the actor is marked as them, no more.
            Actor::Subject(_) => ("subject".to_owned(), vec![], vec![]),
        }
    }

    /// Records a read that no per-field decision covers (a consent ledger, an access log, a
    /// request, a list): who, what, about whom, which parts were shown — an entry even when the
    /// read found nothing (issue 15, finding 10). Like a decided read, it is committed before
    /// anything is returned.
    pub(crate) async fn record_read(
        &self,
        actor: Actor<'_>,
        action: &str,
        customer: Option<CustomerId>,
        shown: &[&str],
    ) -> ServiceResult<()> {
        let l = leaf(
            self.actor_parts(actor),
            action,
            customer,
            shown,
            About::default(),
            "shown",
            "done",
        );
        self.audit.append(&l).await
    }
}

/// What a write was about besides a customer, and under which purpose.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct About<'a> {
    /// An outlet, staff member, token or purpose (id or key), or a policy (`sha256:…`).
    pub subject: Option<&'a str>,
    /// The purpose the write was made under.
    pub purpose: Option<&'a str>,
}

/// The audit entry of a write: who, what, about whom, which fields — never a value.
pub(crate) fn entry(
    actor: (String, Vec<Role>, Vec<OutletId>),
    action: &str,
    customer: Option<CustomerId>,
    fields: &[&str],
    about: About<'_>,
    mark: &str,
) -> steward_store::AuditEntryRow {
    entry_with_outcome(actor, action, customer, fields, about, mark, "done")
}

/// [`entry`] with an outcome other than `done` (a refused sign-in is `denied`).
pub(crate) fn entry_with_outcome(
    actor: (String, Vec<Role>, Vec<OutletId>),
    action: &str,
    customer: Option<CustomerId>,
    fields: &[&str],
    about: About<'_>,
    mark: &str,
    outcome: &str,
) -> steward_store::AuditEntryRow {
    row_of(leaf(actor, action, customer, fields, about, mark, outcome))
}

/// The outbox row of a leaf.
pub(crate) fn row_of(leaf: steward_domain::AuditLeaf) -> steward_store::AuditEntryRow {
    steward_store::AuditEntryRow {
        leaf: leaf.to_bytes(),
        occurred_at: leaf.time.millis(),
        customer_id: leaf.customer,
        action: leaf.action,
    }
}

/// The leaf of [`entry_with_outcome`].
pub(crate) fn leaf(
    (principal, roles, outlets): (String, Vec<Role>, Vec<OutletId>),
    action: &str,
    customer: Option<CustomerId>,
    fields: &[&str],
    about: About<'_>,
    mark: &str,
    outcome: &str,
) -> steward_domain::AuditLeaf {
    steward_domain::AuditLeaf {
        v: steward_domain::audit::LEAF_VERSION,
        time: Timestamp::now(),
        principal,
        roles,
        outlets,
        action: action.to_owned(),
        customer,
        subject: about.subject.map(str::to_owned),
        purpose: about.purpose.map(str::to_owned),
        categories: fields
            .iter()
            .map(|f| ((*f).to_owned(), mark.to_owned()))
            .collect(),
        policies: Default::default(),
        reason_length: 0,
        break_glass: false,
        outcome: outcome.into(),
    }
}
