//! Changes of the contact details that decide who can act as a customer (issue 15, finding 1).
//!
//! The e-mail address is the customer's key to the portal and where data-subject request codes
//! go. A new address therefore takes effect only when the customer confirms it with a code sent
//! to it: until then the profile, the portal's sign-in and every code keep the address on record,
//! and that address is told of the change. A new address must be nobody else's. A phone number is
//! no sign-in factor: a change applies at once and is told to the address on record. Each change is a row of `contact_changes`, and a portal session that began
//! soon after one must confirm an erasure with a fresh code.

use steward_domain::{CustomerId, CustomerPatch, Timestamp, ValidationError, normalize};
use steward_store::ContactChangeRow;
use uuid::Uuid;

use crate::error::{ServiceError, ServiceResult};
use crate::vault::About;
use crate::{Actor, Vault, seal};

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

impl Vault {
    /// Whether a customer other than `id` holds `value` as their `kind` (`email`, `phone`).
    pub(crate) async fn held_by_another(
        &self,
        kind: &'static str,
        value: &str,
        id: CustomerId,
    ) -> ServiceResult<bool> {
        Ok(self
            .lookup_ids(kind, value)
            .await?
            .into_iter()
            .any(|c| c != id))
    }

    /// Starts a change of customer `id`'s e-mail address from `old` to `new` (normalised, checked
    /// unique by the caller): the new address gets a code, the old one a notice.
    pub(crate) async fn start_email_change(
        &self,
        actor: Actor<'_>,
        id: CustomerId,
        old: Option<&str>,
        new: &str,
    ) -> ServiceResult<()> {
        let dk = self.data_key_of(id).await?;
        let change = Uuid::now_v7();
        let code = crate::rights::one_time_code()?;
        let now = Timestamp::now().millis();
        let row = ContactChangeRow {
            id: change,
            customer_id: id,
            kind: "email".into(),
            value: seal::seal_contact_change(&dk, id, change, new)?,
            value_mac: self.mac("email", new).to_vec(),
            code_mac: Some(
                self.mac("contact-code", &format!("{change}\n{code}"))
                    .to_vec(),
            ),
            attempts: 0,
            created_at: now,
            expires_at: now + CONFIRM_TTL_MS,
            confirmed_at: None,
        };
        let entry = self.write_entry(actor, "contact_change.requested", Some(id), &["email"]);
        self.inner
            .store
            .insert_contact_change(&row, &[entry])
            .await?;
        self.send_later(
            new,
            "Confirm your new e-mail address",
            format!(
                "Someone asked to make this the e-mail address we hold for you. To confirm it, open the privacy portal's page \"Confirm a new e-mail address\" (/portal/confirm-address), enter this address and the code:\n\n{code}\n\nIt works for 24 hours. Until you confirm, nothing changes. If you did not ask, ignore this message.\n"
            ),
        );
        if let Some(old) = old {
            self.send_later(
                old,
                "A change of your e-mail address was asked for",
                "Someone asked to replace the e-mail address we hold for you with another. It takes effect only if it is confirmed from the new address; your privacy portal and your requests keep using this one until then. If you did not ask for this, contact our data protection officer.\n".to_owned(),
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
        let dk = self.data_key_of(id).await?;
        let change = Uuid::now_v7();
        let now = Timestamp::now().millis();
        let row = ContactChangeRow {
            id: change,
            customer_id: id,
            kind: "phone".into(),
            value: seal::seal_contact_change(&dk, id, change, new)?,
            value_mac: self.mac("phone", new).to_vec(),
            code_mac: None,
            attempts: 0,
            created_at: now,
            expires_at: now,
            confirmed_at: Some(now),
        };
        // The update's own audit entry names the phone as written: no second entry.
        self.inner.store.insert_contact_change(&row, &[]).await?;
        if let Some(to) = email {
            self.send_later(
                to,
                "Your phone number was changed",
                "The phone number we hold for you was changed. If you did not ask for this, contact our data protection officer.\n".to_owned(),
            );
        }
        Ok(())
    }

    /// Confirms a new e-mail address with the code sent to it: the address becomes the
    /// customer's (profile, portal sign-in, request codes) and the old one is told. A wrong or
    /// expired code is a validation error naming `code`; five tries spend it. Acts as the
    /// customer (`subject` in the audit log).
    pub async fn confirm_email_change(&self, address: &str, code: &str) -> ServiceResult<()> {
        let wrong =
            || ValidationError::new("code", "is wrong or has expired; ask for the change again");
        let address = normalize::email("email", address)?;
        let now = Timestamp::now().millis();
        let pending = self
            .inner
            .store
            .pending_contact_changes(&self.mac("email", &address), now)
            .await?;
        for row in pending {
            // Counted before the comparison, atomically, as for sign-in codes.
            if !self
                .inner
                .store
                .claim_contact_change_try(row.id, CONFIRM_TRIES, now)
                .await?
            {
                continue;
            }
            let good = row.code_mac.as_deref().is_some_and(|stored| {
                use subtle::ConstantTimeEq;
                let mac = self.mac("contact-code", &format!("{}\n{}", row.id, code.trim()));
                bool::from(mac.ct_eq(stored))
            });
            if good {
                return self.apply_email_change(&row, &address, now).await;
            }
        }
        let entry = crate::vault::entry_with_outcome(
            self.actor_parts(Actor::Operator("portal")),
            "contact_change.confirm",
            None,
            &[],
            About::default(),
            "denied",
            "denied",
        );
        self.inner.store.record_audit(&[entry]).await?;
        Err(wrong().into())
    }

    async fn apply_email_change(
        &self,
        row: &ContactChangeRow,
        address: &str,
        now: i64,
    ) -> ServiceResult<()> {
        let id = row.customer_id;
        let dk = self.data_key_of(id).await?;
        // Defence in depth against a blind-index collision: the sealed value must be this one.
        if seal::open_contact_change(&dk, id, row.id, &row.value)? != address {
            return Err(ValidationError::new("code", "is wrong or has expired").into());
        }
        // Unique when asked for, and still unique now.
        if self.held_by_another("email", address, id).await? {
            return Err(ServiceError::Conflict("email"));
        }
        let old = self.get_customer(id).await?.email;
        let actor = Actor::Subject(id);
        let entry = self.write_entry(actor, "contact_change.confirmed", Some(id), &["email"]);
        if !self
            .inner
            .store
            .confirm_contact_change(row.id, now, &[entry])
            .await?
        {
            return Err(ValidationError::new("code", "is wrong or has expired").into());
        }
        let patch = CustomerPatch {
            email: Some(Some(address.to_owned())),
            ..CustomerPatch::default()
        };
        self.apply_patch(actor, id, &patch).await?;
        if let Some(old) = old.filter(|o| o != address) {
            self.send_later(
                &old,
                "Your e-mail address was changed",
                "The e-mail address we hold for you was replaced by another, confirmed from that address. This address no longer signs in to your privacy portal. If you did not ask for this, contact our data protection officer.\n".to_owned(),
            );
        }
        Ok(())
    }

    /// Whether an erasure from portal session `s` must be confirmed with a fresh code: the
    /// session began less than [`ERASURE_RECHECK_MS`] after the customer's contact details
    /// last changed.
    pub async fn erasure_needs_fresh_code(
        &self,
        s: &crate::portal::PortalSession,
    ) -> ServiceResult<bool> {
        let began = s.began_at();
        Ok(self
            .inner
            .store
            .last_contact_change(s.customer_id)
            .await?
            .is_some_and(|changed| began.millis() - changed < ERASURE_RECHECK_MS))
    }

    /// Sends a message off the request's path (a slow relay delays no answer); failures are
    /// logged without the address.
    fn send_later(&self, to: &str, subject: &'static str, body: String) {
        let Some(n) = self.inner.notifier.get().cloned() else {
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
