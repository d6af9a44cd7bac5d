//! How a customer reaches their own data: one-time codes sent to the address on record, portal
//! sessions (a cookie's digest cached in memory), and the confirmed changes of the contact
//! details that decide who can act as the customer (`contact.rs`). What a signed-in customer
//! then does (views, consents, requests, exports) is orchestrated by the vault (`portal.rs`).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use steward_crypto::{IssuedToken, TokenDigest, parse_token, verify_token_secret};
use steward_domain::{CustomerId, Timestamp, ValidationError, normalize};
use steward_store::{PortalCodeRow, PortalSessionRow};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::Actor;
use crate::door::About;
use crate::error::{ServiceError, ServiceResult};
use crate::portal::PortalSession;

pub mod contact;

/// How long a sign-in code works, and how many wrong tries spend it.
const CODE_TTL_MS: i64 = 15 * 60 * 1000;
const CODE_TRIES: i64 = 5;
/// How long a portal session lasts (no sliding renewal: a customer visit is short).
pub(crate) const SESSION_MS: i64 = 30 * 60 * 1000;

/// Portal sessions whose secret passed Argon2 once, by id: later requests compare a digest in
/// constant time. Expiry and sign-out are read from the row on every request.
#[derive(Default)]
pub(crate) struct PortalCache(RwLock<HashMap<Uuid, TokenDigest>>);

/// One-time codes, portal sessions and contact changes.
pub struct PortalAccess {
    door: Arc<crate::door::Door>,
    store: Arc<dyn steward_store::PortalStore>,
    records: Arc<crate::records::Records>,
    keys: Arc<crate::customer_keys::CustomerKeys>,
    /// How codes leave (the notifier the opener set).
    notifier: Arc<OnceLock<Arc<dyn crate::notify::Notifier>>>,
    /// Live sessions' digests, so a page view costs no query.
    cache: PortalCache,
}

impl PortalAccess {
    /// Wires the portal's access to its store and the services it asks.
    pub(crate) fn new(
        door: Arc<crate::door::Door>,
        store: Arc<dyn steward_store::PortalStore>,
        records: Arc<crate::records::Records>,
        keys: Arc<crate::customer_keys::CustomerKeys>,
        notifier: Arc<OnceLock<Arc<dyn crate::notify::Notifier>>>,
    ) -> Self {
        PortalAccess {
            door,
            store,
            records,
            keys,
            notifier,
            cache: PortalCache::default(),
        }
    }

    fn door(&self) -> &crate::door::Door {
        &self.door
    }

    fn keys(&self) -> &crate::customer_keys::CustomerKeys {
        &self.keys
    }

    /// Deletes (or, `delete` false, counts) the codes and sessions dead since `before`: the
    /// operator's retention run.
    pub(crate) async fn dead_portal(&self, before: i64, delete: bool) -> ServiceResult<u64> {
        Ok(self.store.dead_portal(before, delete).await?)
    }
}

impl PortalAccess {
    /// Starts a portal sign-in: if exactly one customer has this e-mail address, a one-time
    /// code goes to it. Either way the answer is a challenge id for the browser to keep, so the
    /// portal never tells whether an address is known.
    pub async fn portal_send_code(&self, email: &str) -> ServiceResult<Uuid> {
        let email = normalize::email("email", email)?;
        let ids = self.records.lookup_ids("email", &email).await?;
        let customer = match ids.as_slice() {
            [one] => Some(*one),
            _ => None,
        };
        self.issue_portal_code(customer, email).await
    }

    /// A fresh code for the signed-in customer: an erasure from a session that began soon after a
    /// contact change is confirmed with it. It goes to the address on record before that change,
    /// which the customer had proved: a new address cannot approve an erasure right after it came.
    pub async fn portal_fresh_code(&self, s: &PortalSession) -> ServiceResult<Uuid> {
        let email = match self.erasure_recheck(s).await? {
            Some(previous) => previous,
            None => self
                .records
                .get_customer(s.customer_id)
                .await?
                .email
                .ok_or(ServiceError::WrongState("no e-mail address is on record"))?,
        };
        self.issue_portal_code(Some(s.customer_id), email).await
    }

    /// Checks a fresh code (see [`PortalAccess::portal_fresh_code`]) for the signed-in customer: the try
    /// is counted first, atomically; a wrong or expired code is a validation error naming `code`.
    pub async fn portal_check_fresh_code(
        &self,
        s: &PortalSession,
        challenge: Uuid,
        code: &str,
    ) -> ServiceResult<()> {
        let wrong = || ValidationError::new("code", "is wrong or has expired; ask for a new one");
        let Some((row, right)) = self.try_portal_code(challenge, code).await? else {
            return Err(wrong().into());
        };
        if right && row.customer_id == Some(s.customer_id) {
            Ok(())
        } else {
            let entry = self.portal_entry(s, "portal.fresh_code_refused", &[]);
            self.door().record(&[entry]).await?;
            Err(wrong().into())
        }
    }

    /// One try of a challenge's code: the challenge, and whether the code is right and still
    /// live; `None` for an unknown challenge. The try is counted before the code is compared, in
    /// one atomic step: however many tries arrive together, at most CODE_TRIES are compared.
    async fn try_portal_code(
        &self,
        challenge: Uuid,
        code: &str,
    ) -> ServiceResult<Option<(PortalCodeRow, bool)>> {
        let Some(row) = self.store.portal_code(challenge).await? else {
            return Ok(None);
        };
        let now = Timestamp::now().millis();
        let live = self
            .store
            .claim_portal_code_try(challenge, CODE_TRIES, now)
            .await?;
        let good = {
            use subtle::ConstantTimeEq;
            let mac = self
                .door()
                .mac("portal-code", &format!("{challenge}\n{}", code.trim()));
            bool::from(mac.ct_eq(row.code_mac.as_slice()))
        };
        Ok(Some((row, live && good)))
    }

    /// Stores a challenge for `customer` (none: a decoy) and sends its code to `email`.
    async fn issue_portal_code(
        &self,
        customer: Option<CustomerId>,
        email: String,
    ) -> ServiceResult<Uuid> {
        // Random, not time-ordered: the id is all a browser holds of its challenge.
        let mut random = [0u8; 16];
        steward_crypto::random_bytes(&mut random)?;
        let id = uuid::Builder::from_random_bytes(random).into_uuid();
        let code = crate::rights::one_time_code()?;
        let code_mac = match customer {
            Some(_) => self
                .door()
                .mac("portal-code", &format!("{id}\n{code}"))
                .to_vec(),
            // A decoy: random bytes no code's MAC equals.
            None => {
                let mut b = [0u8; 16];
                steward_crypto::random_bytes(&mut b)?;
                b.to_vec()
            }
        };
        let now = Timestamp::now().millis();
        let row = PortalCodeRow {
            id,
            customer_id: customer,
            code_mac,
            attempts: 0,
            created_at: now,
            expires_at: now + CODE_TTL_MS,
        };
        let action = if customer.is_some() {
            "portal.code_sent"
        } else {
            "portal.code_unmatched"
        };
        let entry = self.door().write_entry_for(
            Actor::Operator(crate::auth::Operator::internal("portal")),
            action,
            customer,
            &[],
            About::default(),
        );
        self.store.insert_portal_code(&row, &[entry]).await?;
        if let (Some(_), Some(n)) = (customer, self.notifier.get().cloned()) {
            // Not awaited: a known address must not answer slower than an unknown one.
            tokio::task::spawn_blocking(move || {
                if let Err(error) = n.send_code(&email, &code) {
                    tracing::warn!(error, "sending a portal sign-in code failed");
                }
            });
        }
        Ok(id)
    }

    /// Whether this server can send sign-in codes at all.
    pub fn portal_can_send(&self) -> bool {
        self.notifier.get().is_some()
    }

    /// Finishes a portal sign-in with the code the customer received: a session token (shown
    /// once, stored as an Argon2id hash). A wrong or expired code is a validation error naming
    /// `code`; five wrong tries spend the challenge.
    pub async fn portal_sign_in(
        &self,
        challenge: Uuid,
        code: &str,
    ) -> ServiceResult<(Zeroizing<String>, PortalSession)> {
        let wrong = || ValidationError::new("code", "is wrong or has expired; ask for a new one");
        let Some((row, right)) = self.try_portal_code(challenge, code).await? else {
            return Err(wrong().into());
        };
        let now = Timestamp::now().millis();
        let customer = match row.customer_id {
            Some(c) if right => c,
            _ => {
                let entry = crate::door::entry_with_outcome(
                    self.door()
                        .actor_parts(Actor::Operator(crate::auth::Operator::internal("portal"))),
                    "portal.sign_in",
                    row.customer_id,
                    &[],
                    About::default(),
                    "denied",
                    "denied",
                );
                self.door().record(&[entry]).await?;
                return Err(wrong().into());
            }
        };
        let id = Uuid::now_v7();
        let issued = tokio::task::spawn_blocking(move || IssuedToken::new(id))
            .await
            .map_err(|_| ServiceError::from(steward_crypto::CryptoError::Random))??;
        let session = PortalSessionRow {
            id,
            customer_id: customer,
            secret_hash: issued.secret_hash.clone(),
            created_at: now,
            expires_at: now + SESSION_MS,
        };
        let entry = self.door().write_entry_for(
            Actor::Subject(crate::auth::Myself(customer)),
            "portal.sign_in",
            Some(customer),
            &[],
            About::default(),
        );
        if !self
            .store
            .open_portal_session(challenge, &session, &[entry])
            .await?
        {
            return Err(wrong().into());
        }
        if let Ok(mut cache) = self.cache.0.write() {
            cache.insert(id, TokenDigest::of(&issued.token));
        }
        Ok((
            issued.token,
            PortalSession {
                id,
                customer_id: customer,
                expires_at: Timestamp(session.expires_at),
            },
        ))
    }

    /// The portal session a presented token opens, if it is one and still live.
    pub async fn portal_session(&self, token: &str) -> ServiceResult<Option<PortalSession>> {
        let Some((id, secret)) = parse_token(token) else {
            return Ok(None);
        };
        let Some(row) = self.store.portal_session(id).await? else {
            self.forget_portal(id);
            return Ok(None);
        };
        if row.expires_at <= Timestamp::now().millis() {
            self.forget_portal(id);
            return Ok(None);
        }
        let digest = TokenDigest::of(token);
        let known = self
            .cache
            .0
            .read()
            .ok()
            .and_then(|c| c.get(&id).map(|d| d.matches(&digest)));
        let ok = match known {
            Some(matches) => matches,
            None => {
                let (secret, hash) = (secret.to_owned(), row.secret_hash.clone());
                let ok = tokio::task::spawn_blocking(move || {
                    verify_token_secret(secret.as_bytes(), &hash)
                })
                .await
                .unwrap_or(false);
                if ok && let Ok(mut cache) = self.cache.0.write() {
                    cache.insert(id, digest);
                }
                ok
            }
        };
        Ok(ok.then_some(PortalSession {
            id,
            customer_id: row.customer_id,
            expires_at: Timestamp(row.expires_at),
        }))
    }

    pub(crate) fn forget_portal(&self, id: Uuid) {
        if let Ok(mut cache) = self.cache.0.write() {
            cache.remove(&id);
        }
    }

    /// The CSRF token of a portal session's forms: a MAC of the session id.
    pub fn portal_csrf(&self, s: &PortalSession) -> String {
        self.door()
            .mac("portal-csrf", &s.id.to_string())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Ends a portal session.
    pub async fn portal_sign_out(&self, s: &PortalSession) -> ServiceResult<()> {
        let entry = self.portal_entry(s, "portal.sign_out", &[]);
        self.store.close_portal_session(s.id, &[entry]).await?;
        self.forget_portal(s.id);
        Ok(())
    }

    pub(crate) fn portal_entry(
        &self,
        s: &PortalSession,
        action: &str,
        fields: &[&str],
    ) -> steward_store::AuditEntryRow {
        let id = s.customer_id;
        self.door().write_entry_marked(
            Actor::Subject(crate::auth::Myself(id)),
            action,
            Some(id),
            fields,
            About::default(),
            "shown",
        )
    }
}
