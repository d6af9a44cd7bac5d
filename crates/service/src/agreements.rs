//! Every recipient's agreements, kept in memory for the read path (a recipient's read is decided
//! without a query for its agreements), and the disclosures a recipient's read records. The
//! agreements themselves are made and ended in [`crate::sharing`].

use std::sync::{Arc, RwLock};

use steward_domain::sharing::{AgreementTerms, Identity};
use steward_domain::{CustomerId, DataCategory, LawfulBasis, RecipientId, Timestamp};
use steward_store::{AgreementRow, RecipientRow};

use crate::error::{ServiceError, ServiceResult};
use crate::{Access, Principal};

/// The agreements of every recipient, kept in memory for the read path (a recipient's read is
/// decided without a query for its agreements); reloaded after every change here and every
/// two seconds with the purposes, so another process's change reaches this one within that time.
pub(crate) struct Agreements {
    store: Arc<dyn steward_store::SharingStore>,
    all: RwLock<(Vec<AgreementRow>, Vec<RecipientRow>)>,
}

impl Agreements {
    /// Empty until [`Agreements::reload`] reads them from `store`.
    pub(crate) fn new(store: Arc<dyn steward_store::SharingStore>) -> Self {
        Agreements {
            store,
            all: RwLock::default(),
        }
    }

    /// The recipients a purpose is shared with now, by name: what a consent receipt names.
    pub(crate) fn shared_with(&self, purpose: &str) -> Vec<String> {
        let now = Timestamp::now().millis();
        let Ok(all) = self.all.read() else {
            return Vec::new();
        };
        let (agreements, recipients) = &*all;
        let mut names: Vec<String> = recipients
            .iter()
            .filter(|r| {
                agreements.iter().any(|a| {
                    a.recipient_id == r.id
                        && in_force(a, now)
                        && a.purposes.iter().any(|p| p == purpose)
                })
            })
            .map(|r| r.name.clone())
            .collect();
        names.sort();
        names
    }

    /// Reads them (and the recipients' names) all again.
    pub(crate) async fn reload(&self) -> ServiceResult<()> {
        let rows = self.store.agreements(None).await?;
        let recipients = self.store.recipients().await?;
        if let Ok(mut all) = self.all.write() {
            *all = (rows, recipients);
        }
        Ok(())
    }

    /// Whether `recipient`'s agreements are pseudonymous (all are, or none: never mixed). Fails
    /// closed: a lock poisoned by a panic says yes.
    fn pseudonymous(&self, recipient: RecipientId) -> bool {
        let Ok(all) = self.all.read() else {
            return true;
        };
        all.0
            .iter()
            .any(|a| a.recipient_id == recipient && identity_of(a) == Identity::Pseudonymous)
    }

    /// The agreement in force now between `recipient` and us that covers `purpose`: the one
    /// that started last if several do.
    fn in_force_for(
        &self,
        recipient: RecipientId,
        purpose: &str,
        now: i64,
    ) -> Option<AgreementRow> {
        let all = self.all.read().ok()?;
        all.0
            .iter()
            .filter(|a| a.recipient_id == recipient && in_force(a, now))
            .filter(|a| a.purposes.iter().any(|p| p == purpose))
            .max_by_key(|a| (a.starts_at, a.id))
            .cloned()
    }

    /// The agreement covering a recipient's read under `purpose` now; `None` for a caller who
    /// is no recipient or a recipient without one (the policy then refuses every read).
    pub(crate) fn covering(&self, principal: &Principal, purpose: &str) -> Option<Covering> {
        let recipient = principal.recipient()?;
        let row = self.in_force_for(recipient, purpose, Timestamp::now().millis())?;
        let terms = AgreementTerms {
            id: row.id,
            categories: categories_of(&row),
            identity: identity_of(&row),
        };
        Some(Covering { row, terms })
    }

    /// Refuses a read that names a customer by id when the caller is a recipient whose
    /// agreement for the purpose is pseudonymous: before anything is looked up, so that neither
    /// a listing cursor nor a 404 tells it which ids exist (review finding 1).
    ///
    /// For any recipient the refusal comes before any look-up: a pseudonymous one (whatever the
    /// purpose: its agreements are all pseudonymous) never names a customer by id, and an
    /// identified one without an agreement for the purpose is told so before whether the id
    /// exists (second review, finding 2).
    pub(crate) fn refuse_recipient_by_id(&self, access: &Access<'_>) -> ServiceResult<()> {
        let Some(recipient) = access.principal.recipient() else {
            return Ok(());
        };
        if self.pseudonymous(recipient) {
            return Err(ServiceError::Forbidden {
                field: "id",
                detail: "this recipient's agreements are pseudonymous: read by pseudonym, GET /v1/shared/{pseudonym}".into(),
            });
        }
        if self
            .covering(access.principal, &access.purpose.key)
            .is_none()
        {
            return Err(ServiceError::Forbidden {
                field: "purpose",
                detail: "no agreement in force covers this purpose".into(),
            });
        }
        Ok(())
    }

    /// After a recipient's read was decided and before anything leaves: records what goes to
    /// it, in one transaction with the checks that it still may (not erased, not restricted,
    /// consent active where the purpose needs it, the agreement in force). The reference the
    /// recipient knows the customer by, or `None`: then nothing may leave (review finding 3).
    pub(crate) async fn record_disclosure(
        &self,
        covering: &Covering,
        customer: CustomerId,
        purpose: &steward_domain::Purpose,
        categories: &[&str],
    ) -> ServiceResult<Option<String>> {
        let fresh = match covering.terms.identity {
            Identity::Identified => None,
            Identity::Pseudonymous => Some(fresh_pseudonym()?),
        };
        Ok(self
            .store
            .record_disclosure(&steward_store::NewDisclosure {
                customer,
                agreement: &covering.row,
                purpose: &purpose.key,
                categories,
                consent_needed: purpose.lawful_basis == LawfulBasis::Consent,
                fresh_pseudonym: fresh.as_deref(),
                at: Timestamp::now().millis(),
            })
            .await?)
    }
}

/// The agreement a recipient reads under, with its terms for the policy.
pub(crate) struct Covering {
    pub(crate) row: AgreementRow,
    pub(crate) terms: AgreementTerms,
}

/// Stored category names as categories (unknown names, impossible through the API, dropped).
pub(crate) fn parse_categories(names: &[String]) -> Vec<DataCategory> {
    names
        .iter()
        .filter_map(|c| DataCategory::parse(c))
        .collect()
}

/// The categories of a stored agreement.
pub(crate) fn categories_of(row: &AgreementRow) -> Vec<DataCategory> {
    parse_categories(&row.categories)
}

/// Whether a stored agreement is pseudonymous or identified.
pub(crate) fn identity_of(row: &AgreementRow) -> Identity {
    // Fail closed: anything but an explicit `identified` gives pseudonyms.
    Identity::parse(&row.identity).unwrap_or(Identity::Pseudonymous)
}

/// Whether a stored agreement is in force at `now`.
pub(crate) fn in_force(row: &AgreementRow, now: i64) -> bool {
    row.starts_at <= now && now < row.expires_at && row.ended_at.is_none_or(|e| now < e)
}

/// A new random pseudonym (`psn_` and 26 base32 letters): random rather than derived, so
/// that once the customer is erased and their row in `shared_pseudonyms` gone, nothing —
/// not even this installation's keys — can map it back (review finding 4). Stable per
/// recipient and customer because it is stored the first time and looked up after.
pub(crate) fn fresh_pseudonym() -> ServiceResult<String> {
    let mut bytes = [0u8; 16];
    steward_crypto::random_bytes(&mut bytes)?;
    Ok(format!(
        "psn_{}",
        data_encoding::BASE32_NOPAD
            .encode(&bytes)
            .to_ascii_lowercase()
    ))
}
