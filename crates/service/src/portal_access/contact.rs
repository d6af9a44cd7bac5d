//! Changes of the contact details that decide who can act as a customer (issue 15, finding 1).
//!
//! The e-mail address is the customer's key to the portal and where data-subject request codes
//! go. A new address therefore takes effect only when the customer confirms it: until then the
//! profile, the portal's sign-in and every code keep the address on record. Who confirms depends
//! on who asked. When staff ask, the code goes to the address on record — the customer approves
//! from the mailbox they have proved, so a staff member cannot confirm a mailbox of their own
//! (the pen test's takeover). When the customer asks (signed in to the portal, or through a
//! data-subject request whose identity was checked), the code goes to the new address, proving
//! it, and the old one is told. A customer with no address yet confirms the first one from it. A
//! new address must be nobody else's. A phone number is no sign-in factor: a change applies at
//! once and is told to the address on record. Each change is a row of `contact_changes`; a
//! portal session that began soon after one confirms an erasure with a fresh code sent to the
//! address on record before the change.

use steward_domain::{CustomerId, CustomerPatch, Timestamp, ValidationError, normalize};
use steward_store::ContactChangeRow;
use uuid::Uuid;

use super::PortalAccess;
use crate::door::About;
use crate::error::{ServiceError, ServiceResult};
use crate::{Actor, seal};

/// How long the code sent to a new address works, and how many tries it has.
const CONFIRM_TTL_MS: i64 = 24 * 60 * 60 * 1000;
const CONFIRM_TRIES: i64 = 5;
/// A portal session that began less than this after a contact change confirms an erasure by a
/// fresh code.
pub const ERASURE_RECHECK_MS: i64 = 15 * 60 * 1000;

/// A profile change as applied: the customer as now stored, and the fields left waiting for the
/// customer's confirmation (`email`).
#[derive(Debug)]
pub struct Updated {
    /// The customer as stored now.
    pub customer: steward_domain::Customer,
    /// Fields that take effect only when confirmed.
    pub pending: Vec<&'static str>,
}

impl PortalAccess {
    /// Whether a customer other than `id` holds `value` as their `kind` (`email`, `phone`).
    pub(crate) async fn held_by_another(
        &self,
        kind: &'static str,
        value: &str,
        id: CustomerId,
    ) -> ServiceResult<bool> {
        Ok(self
            .records
            .lookup_ids(kind, value)
            .await?
            .into_iter()
            .any(|c| c != id))
    }

    /// Starts a change of customer `id`'s e-mail address from `old` to `new` (normalised, checked
    /// unique by the caller; `None` removes it, which staff may ask only with an `old` to
    /// approve). `by_customer`: the customer asked (the code goes to `new`, `old` is told);
    /// otherwise staff did, and the code goes to `old` for the customer's approval, naming the new
    /// address masked (to `new` only when there is no `old`).
    pub(crate) async fn start_email_change(
        &self,
        actor: Actor<'_>,
        id: CustomerId,
        old: Option<&str>,
        new: Option<&str>,
        by_customer: bool,
    ) -> ServiceResult<()> {
        let (approver, target) = match (old, new) {
            (Some(old), _) if !by_customer => (old, new),
            (_, Some(new)) => (new, Some(new)),
            (None, None) => return Ok(()),
            (Some(_), None) => {
                return Err(ServiceError::WrongState(
                    "a customer removes their own address at once",
                ));
            }
        };
        let dk = self.keys().of(id).await?;
        let change = Uuid::now_v7();
        let code = crate::rights::one_time_code()?;
        let now = Timestamp::now().millis();
        let row = ContactChangeRow {
            id: change,
            customer_id: id,
            kind: "email".into(),
            // A removal is the empty value.
            value: seal::seal_contact_change(&dk, id, change, "value", target.unwrap_or(""))?,
            value_mac: self.door().mac("email", target.unwrap_or("")).to_vec(),
            sent_to_mac: self.door().mac("email", approver).to_vec(),
            previous: old
                .map(|o| seal::seal_contact_change(&dk, id, change, "previous", o))
                .transpose()?,
            code_mac: Some(
                self.door()
                    .mac("contact-code", &format!("{change}\n{code}"))
                    .to_vec(),
            ),
            attempts: 0,
            created_at: now,
            expires_at: now + CONFIRM_TTL_MS,
            confirmed_at: None,
        };
        let entry =
            self.door()
                .write_entry(actor, "contact_change.requested", Some(id), &["email"]);
        self.store.insert_contact_change(&row, &[entry]).await?;
        let page = "open the privacy portal's page \"Confirm a change of e-mail address\" (/portal/confirm-address), enter this address and the code";
        if Some(approver) == new && (by_customer || old.is_none()) {
            self.send_later(
                approver,
                "Confirm your new e-mail address",
                format!(
                    "You asked to make this the e-mail address we hold for you. To confirm it, {page}:\n\n{code}\n\nIt works for 24 hours. Until you confirm, nothing changes. If you did not ask, ignore this message.\n"
                ),
            );
            if let Some(old) = old {
                self.send_later(
                    old,
                    "A change of your e-mail address was asked for",
                    "A change of the e-mail address we hold for you was asked for. It takes effect only when it is confirmed from the new address; your privacy portal and your requests keep using this one until then. If you did not ask for this, contact our data protection officer.\n".to_owned(),
                );
            }
        } else {
            let what = match target {
                Some(t) => format!(
                    "replace the e-mail address we hold for you with {}",
                    steward_domain::view::mask_email(t)
                ),
                None => "remove the e-mail address we hold for you".to_owned(),
            };
            self.send_later(
                approver,
                "Approve a change of your e-mail address",
                format!(
                    "Our staff asked to {what}. If you asked for exactly this, {page}:\n\n{code}\n\nIt works for 24 hours. If you did not ask, ignore this message: nothing changes, and please tell our data protection officer.\n"
                ),
            );
        }
        Ok(())
    }

    /// Records a phone change that has applied (for the erasure recheck) and tells the address
    /// on record.
    pub(crate) async fn record_phone_change(
        &self,
        id: CustomerId,
        email: Option<&str>,
        new: &str,
    ) -> ServiceResult<()> {
        let dk = self.keys().of(id).await?;
        let change = Uuid::now_v7();
        let now = Timestamp::now().millis();
        let mac = self.door().mac("phone", new).to_vec();
        let row = ContactChangeRow {
            id: change,
            customer_id: id,
            kind: "phone".into(),
            value: seal::seal_contact_change(&dk, id, change, "value", new)?,
            value_mac: mac.clone(),
            sent_to_mac: mac,
            previous: email
                .map(|e| seal::seal_contact_change(&dk, id, change, "previous", e))
                .transpose()?,
            code_mac: None,
            attempts: 0,
            created_at: now,
            expires_at: now,
            confirmed_at: Some(now),
        };
        // The update's own audit entry names the phone as written: no second entry.
        self.store.insert_contact_change(&row, &[]).await?;
        if let Some(to) = email {
            self.send_later(
                to,
                "Your phone number was changed",
                "The phone number we hold for you was changed. If you did not ask for this, contact our data protection officer.\n".to_owned(),
            );
        }
        Ok(())
    }

    /// Confirms a change of e-mail address with the code sent for it to `address` (the new
    /// address, or the one on record when staff asked): the new address becomes the customer's
    /// (profile, portal sign-in, request codes) and both are told. A wrong or expired code is a
    /// validation error naming `code`; five tries spend it. Acts as the customer (`subject`).
    pub async fn confirm_email_change(&self, address: &str, code: &str) -> ServiceResult<()> {
        let wrong =
            || ValidationError::new("code", "is wrong or has expired; ask for the change again");
        let address = normalize::email("email", address)?;
        let now = Timestamp::now().millis();
        let pending = self
            .store
            .pending_contact_changes(&self.door().mac("email", &address), now)
            .await?;
        for row in pending {
            // Counted before the comparison, atomically, as for sign-in codes.
            if !self
                .store
                .claim_contact_change_try(row.id, CONFIRM_TRIES, now)
                .await?
            {
                continue;
            }
            let good = row.code_mac.as_deref().is_some_and(|stored| {
                use subtle::ConstantTimeEq;
                let mac = self
                    .door()
                    .mac("contact-code", &format!("{}\n{}", row.id, code.trim()));
                bool::from(mac.ct_eq(stored))
            });
            if good {
                return self.apply_email_change(&row, now).await;
            }
        }
        let entry = crate::door::entry_with_outcome(
            self.door()
                .actor_parts(Actor::Operator(crate::auth::Operator::internal("portal"))),
            "contact_change.confirm",
            None,
            &[],
            About::default(),
            "denied",
            "denied",
        );
        self.door().record(&[entry]).await?;
        Err(wrong().into())
    }

    async fn apply_email_change(&self, row: &ContactChangeRow, now: i64) -> ServiceResult<()> {
        let id = row.customer_id;
        let dk = self.keys().of(id).await?;
        let new = seal::open_contact_change(&dk, id, row.id, "value", &row.value)?;
        // Defence in depth against a blind-index collision: the sealed value is the one indexed.
        if self.door().mac("email", &new).as_slice() != row.value_mac.as_slice() {
            return Err(ServiceError::Integrity);
        }
        // Unique when asked for, and still unique now (a removal is nobody's).
        if !new.is_empty() && self.held_by_another("email", &new, id).await? {
            return Err(ServiceError::Conflict("email"));
        }
        let old = self.records.get_customer(id).await?.email;
        let actor = Actor::Subject(crate::auth::Myself(id));
        let entry =
            self.door()
                .write_entry(actor, "contact_change.confirmed", Some(id), &["email"]);
        if !self
            .store
            .confirm_contact_change(row.id, now, &[entry])
            .await?
        {
            return Err(ValidationError::new("code", "is wrong or has expired").into());
        }
        let patch = CustomerPatch {
            email: Some((!new.is_empty()).then(|| new.clone())),
            ..CustomerPatch::default()
        };
        self.records.apply_patch(actor, id, &patch).await?;
        let changed = "The e-mail address we hold for you was replaced by another, as confirmed on our privacy portal. The old address no longer signs in to your portal. If you did not ask for this, contact our data protection officer.\n";
        if let Some(old) = old.filter(|o| *o != new) {
            self.send_later(&old, "Your e-mail address was changed", changed.to_owned());
        }
        if !new.is_empty() {
            self.send_later(&new, "Your e-mail address was changed", changed.to_owned());
        }
        Ok(())
    }

    /// Where an erasure from portal session `s` must be confirmed: `Ok(None)` when it needs no
    /// fresh code; `Ok(Some(address))` when the session began less than [`ERASURE_RECHECK_MS`]
    /// after a contact change (the address on record before it); `WrongState` when there was
    /// none before (the customer waits, or asks the DPO).
    pub(crate) async fn erasure_recheck(
        &self,
        s: &crate::portal::PortalSession,
    ) -> ServiceResult<Option<String>> {
        match self
            .before_recent_change(s.customer_id, s.began_at())
            .await?
        {
            None => Ok(None),
            Some(None) => Err(ServiceError::WrongState(
                "your contact details changed in the last 15 minutes: erase later, or ask our data protection officer",
            )),
            Some(previous) => Ok(previous),
        }
    }

    /// Where a verification code for customer `id` goes now: the address on record, or — less
    /// than [`ERASURE_RECHECK_MS`] after a contact change — the one on record before it (none if
    /// there was none: the request then waits for an in-person check). So a request right after
    /// a change of address cannot be confirmed from the new one.
    pub(crate) async fn code_address(&self, id: CustomerId) -> ServiceResult<Option<String>> {
        match self.before_recent_change(id, Timestamp::now()).await? {
            Some(previous) => Ok(previous),
            None => Ok(self.records.get_customer(id).await?.email),
        }
    }

    /// If customer `id`'s contact details changed less than [`ERASURE_RECHECK_MS`] before `at`:
    /// the e-mail address on record before that change (`Some(None)`: there was none).
    async fn before_recent_change(
        &self,
        id: CustomerId,
        at: Timestamp,
    ) -> ServiceResult<Option<Option<String>>> {
        let Some(last) = self.store.last_contact_change(id).await? else {
            return Ok(None);
        };
        let recent = last
            .confirmed_at
            .is_some_and(|changed| at.millis() - changed < ERASURE_RECHECK_MS);
        if !recent {
            return Ok(None);
        }
        let Some(sealed) = &last.previous else {
            return Ok(Some(None));
        };
        let dk = self.keys().of(id).await?;
        let previous = seal::open_contact_change(&dk, id, last.id, "previous", sealed)?;
        Ok(Some(Some(previous)))
    }

    /// Whether an erasure from portal session `s` must be confirmed with a fresh code (see
    /// [`PortalAccess::portal_fresh_code`]).
    pub async fn erasure_needs_fresh_code(
        &self,
        s: &crate::portal::PortalSession,
    ) -> ServiceResult<bool> {
        Ok(self.erasure_recheck(s).await?.is_some())
    }

    /// Sends a message off the request's path (a slow relay delays no answer); failures are
    /// logged without the address.
    fn send_later(&self, to: &str, subject: &'static str, body: String) {
        let Some(n) = self.notifier.get().cloned() else {
            return;
        };
        let to = to.to_owned();
        tokio::task::spawn_blocking(move || {
            if let Err(error) = n.send(&to, subject, &body) {
                tracing::warn!(error, subject, "sending a notice failed");
            }
        });
    }
}
