//! The customer privacy portal: a customer signs in with a one-time code sent to the e-mail
//! address on record, then sees everything held about them, sets their consents, downloads
//! their export, asks for a correction or erasure and reads who looked at their data.
//!
//! A portal session acts only on its own customer, so it needs no policy decision: the
//! customer is the one the data is about (GDPR Art. 15–21). Every step is in the audit log with
//! the customer as the actor (`subject`).

use std::collections::HashMap;
use std::sync::RwLock;

use steward_crypto::{IssuedToken, TokenDigest, parse_token, verify_token_secret};
use steward_domain::{
    ConsentAction, ConsentEvent, ConsentInput, ConsentSource, ConsentState, Customer, CustomerId,
    IdentityCheck, Interaction, Purchase, Purpose, RequestInput, RequestStatus, RequestType,
    Timestamp, ValidationError, normalize,
};
use steward_store::{PortalCodeRow, PortalSessionRow};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::door::About;
use crate::error::{ServiceError, ServiceResult};
use crate::{Actor, Vault};

/// How long a sign-in code works, and how many wrong tries spend it.
const CODE_TTL_MS: i64 = 15 * 60 * 1000;
const CODE_TRIES: i64 = 5;
/// How long a portal session lasts (no sliding renewal: a customer visit is short).
const SESSION_MS: i64 = 30 * 60 * 1000;
/// Most purchases and interactions the overview lists (the export holds all).
const OVERVIEW_ROWS: u32 = 200;

/// A customer signed in to the portal. Made only here, from a checked code or session cookie: it
/// is the customer's capability to act on their own data, so no other crate can build one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSession {
    /// The session.
    pub(crate) id: Uuid,
    /// Whose portal it is.
    pub(crate) customer_id: CustomerId,
    /// When it ends.
    pub(crate) expires_at: Timestamp,
}

impl PortalSession {
    /// Whose portal it is.
    pub fn customer_id(&self) -> CustomerId {
        self.customer_id
    }

    /// When it ends.
    pub fn expires_at(&self) -> Timestamp {
        self.expires_at
    }

    /// When the session began (sessions last a fixed time).
    pub fn began_at(&self) -> Timestamp {
        Timestamp(self.expires_at.millis() - SESSION_MS)
    }
}

/// Portal sessions whose secret passed Argon2 once, by id: later requests compare a digest in
/// constant time. Expiry and sign-out are read from the row on every request.
#[derive(Default)]
pub(crate) struct PortalCache(RwLock<HashMap<Uuid, TokenDigest>>);

/// What the portal shows a signed-in customer.
#[derive(Debug)]
pub struct PortalOverview {
    /// The profile, unsealed.
    pub customer: Customer,
    /// Newest purchases first would need a reverse scan; these are the first recorded.
    pub purchases: Vec<Purchase>,
    /// The first recorded interactions.
    pub interactions: Vec<Interaction>,
    /// Whether there are more purchases or interactions than listed (the export has them all).
    pub truncated: bool,
    /// Consent state and history.
    pub consents: ConsentState,
    /// Every purpose, with its notice.
    pub purposes: Vec<Purpose>,
    /// When the customer agreed to personalisation: the purchases of theirs it uses (special
    /// categories left out), as (item, when) — the portal's "Why you see these".
    pub personalisation: Option<Vec<(String, steward_domain::Timestamp)>>,
    /// Fewest customers an item must have been bought by to be recommended to anyone.
    pub personalisation_k: u32,
}

impl Vault {
    /// Starts a portal sign-in: if exactly one customer has this e-mail address, a one-time
    /// code goes to it. Either way the answer is a challenge id for the browser to keep, so the
    /// portal never tells whether an address is known.
    pub async fn portal_send_code(&self, email: &str) -> ServiceResult<Uuid> {
        let email = normalize::email("email", email)?;
        let ids = self.records().lookup_ids("email", &email).await?;
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
                .records()
                .get_customer(s.customer_id)
                .await?
                .email
                .ok_or(ServiceError::WrongState("no e-mail address is on record"))?,
        };
        self.issue_portal_code(Some(s.customer_id), email).await
    }

    /// Checks a fresh code (see [`Vault::portal_fresh_code`]) for the signed-in customer: the try
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
        let Some(row) = self.inner.stores.portal.portal_code(challenge).await? else {
            return Ok(None);
        };
        let now = Timestamp::now().millis();
        let live = self
            .inner
            .stores
            .portal
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
        self.inner
            .stores
            .portal
            .insert_portal_code(&row, &[entry])
            .await?;
        if let (Some(_), Some(n)) = (customer, self.inner.notifier.get().cloned()) {
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
        self.inner.notifier.get().is_some()
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
            .inner
            .stores
            .portal
            .open_portal_session(challenge, &session, &[entry])
            .await?
        {
            return Err(wrong().into());
        }
        if let Ok(mut cache) = self.inner.portal.0.write() {
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
        let Some(row) = self.inner.stores.portal.portal_session(id).await? else {
            self.forget_portal(id);
            return Ok(None);
        };
        if row.expires_at <= Timestamp::now().millis() {
            self.forget_portal(id);
            return Ok(None);
        }
        let digest = TokenDigest::of(token);
        let known = self
            .inner
            .portal
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
                if ok && let Ok(mut cache) = self.inner.portal.0.write() {
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

    fn forget_portal(&self, id: Uuid) {
        if let Ok(mut cache) = self.inner.portal.0.write() {
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
        self.inner
            .stores
            .portal
            .close_portal_session(s.id, &[entry])
            .await?;
        self.forget_portal(s.id);
        Ok(())
    }

    fn portal_entry(
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

    /// Everything held about the signed-in customer, unsealed for them alone; recorded as a
    /// `portal.view` entry.
    pub async fn portal_overview(&self, s: &PortalSession) -> ServiceResult<PortalOverview> {
        let id = s.customer_id;
        let (customer, mut purchases, mut interactions, consents) = tokio::try_join!(
            self.records().get_customer(id),
            self.records().list_purchases(id, None, OVERVIEW_ROWS + 1),
            self.records()
                .list_interactions(id, None, OVERVIEW_ROWS + 1),
            self.consents().ledger(id),
        )?;
        let limit = OVERVIEW_ROWS as usize;
        let truncated = purchases.len() > limit || interactions.len() > limit;
        purchases.truncate(limit);
        interactions.truncate(limit);
        let entry = self.portal_entry(s, "portal.view", &crate::vault::whole_record());
        self.door().record(&[entry]).await?;
        let personalisation = consents
            .granted(crate::personalise::PURPOSE)
            .then(|| self.personalisation().personalisation_inputs(&purchases));
        Ok(PortalOverview {
            customer,
            purchases,
            interactions,
            truncated,
            consents,
            purposes: self.purposes().all(),
            personalisation,
            personalisation_k: self.personalisation().personalisation_k(),
        })
    }

    /// Grants or withdraws a consent-based purpose from the portal (source `portal`), with its
    /// signed receipt. (The portal honours `Sec-GPC: 1` before every form it takes: see
    /// [`Vault::portal_honour_gpc`].)
    pub async fn portal_consent(
        &self,
        s: &PortalSession,
        purpose: &str,
        action: ConsentAction,
    ) -> ServiceResult<(ConsentEvent, String)> {
        let p = self.purposes().get("purpose", purpose)?;
        let input = ConsentInput {
            purpose: p.key.clone(),
            action,
            source: ConsentSource::Portal,
        };
        self.write_consent(
            Actor::Subject(crate::auth::Myself(s.customer_id)),
            s.customer_id,
            &p,
            &input,
        )
        .await
    }

    /// Honours `Sec-GPC: 1` for a portal customer: withdraws, with source `gpc`, each purpose
    /// the signal covers that is granted now — unless the customer granted it themself in the
    /// portal: that explicit choice for this business stands over the browser's general signal
    /// (as the CCPA regulations allow, §7025(c)(3)), and the portal says so beside the toggle.
    pub async fn portal_honour_gpc(
        &self,
        s: &PortalSession,
    ) -> ServiceResult<Vec<(ConsentEvent, String)>> {
        let id = s.customer_id;
        let state = self.consents().ledger(id).await?;
        let mut out = Vec::new();
        for p in self
            .purposes()
            .all()
            .into_iter()
            .filter(|p| p.withdrawn_by_gpc())
        {
            let last = state.history.iter().rev().find(|e| e.purpose == p.key);
            let own_grant = last.is_some_and(|e| {
                e.action == ConsentAction::Grant.as_str()
                    && e.source == ConsentSource::Portal.as_str()
            });
            if own_grant || !state.granted(&p.key) {
                continue;
            }
            let input = ConsentInput {
                purpose: p.key.clone(),
                action: ConsentAction::Withdraw,
                source: ConsentSource::Gpc,
            };
            out.push(
                self.write_consent(Actor::Subject(crate::auth::Myself(id)), id, &p, &input)
                    .await?,
            );
        }
        Ok(out)
    }

    /// Takes a request from the signed-in customer — verified by the code they signed in
    /// with — and fulfils it at once as the API does for a verified request: an erasure erases
    /// (unless a legal hold denies it), a correction of an unverified field applies, one of a
    /// verified field waits for staff to confirm.
    pub async fn portal_request(
        &self,
        s: &PortalSession,
        kind: RequestType,
        corrections: Option<serde_json::Value>,
    ) -> ServiceResult<crate::RequestView> {
        if kind == RequestType::Erasure {
            return Err(ServiceError::WrongState(
                "an erasure from the portal goes through portal_erase",
            ));
        }
        self.take_portal_request(s, kind, corrections).await
    }

    /// The signed-in customer's erasure. From a session that began less than 15 minutes after
    /// a contact change it needs `fresh`: the challenge and code of [`Vault::portal_fresh_code`]
    /// (issue 15, finding 1: a taken-over portal could otherwise erase the customer).
    pub async fn portal_erase(
        &self,
        s: &PortalSession,
        fresh: Option<(Uuid, &str)>,
    ) -> ServiceResult<crate::RequestView> {
        if self.erasure_recheck(s).await?.is_some() {
            let Some((challenge, code)) = fresh else {
                return Err(ValidationError::new(
                    "code",
                    "your contact details changed recently: confirm the erasure with the code we send you",
                )
                .into());
            };
            self.portal_check_fresh_code(s, challenge, code).await?;
        }
        self.take_portal_request(s, RequestType::Erasure, None)
            .await
    }

    async fn take_portal_request(
        &self,
        s: &PortalSession,
        kind: RequestType,
        corrections: Option<serde_json::Value>,
    ) -> ServiceResult<crate::RequestView> {
        let id = s.customer_id;
        let input = RequestInput {
            kind,
            customer_id: id,
            identity_verified: None,
            corrections,
        };
        input.validate()?;
        let row = self.new_request_row(&input).await?;
        let actor = Actor::Subject(crate::auth::Myself(id));
        let entry = self.request_entry(actor, "request.create", &row);
        self.request_ledger().insert(&row, &[entry]).await?;
        self.request_arrived(&row);
        let row = self.verified(actor, row, IdentityCheck::EmailCode).await?;
        if kind == RequestType::Erasure {
            self.forget_portal(s.id);
        }
        crate::rights::view(&row)
    }

    /// The signed-in customer's export (everything held, as a ZIP), recorded as a fulfilled
    /// export request so it appears in the DPO's records.
    pub async fn portal_export(
        &self,
        s: &PortalSession,
    ) -> ServiceResult<crate::subject_export::SubjectExport> {
        let view = self.portal_request(s, RequestType::Export, None).await?;
        if view.status != RequestStatus::Fulfilled {
            return Err(ServiceError::WrongState("the export could not be prepared"));
        }
        self.export_subject(
            Actor::Subject(crate::auth::Myself(s.customer_id)),
            s.customer_id,
        )
        .await
    }

    /// The signed-in customer's access log with inclusion proofs, newest first, entries below
    /// `before` (default: all), and who outside the business received their data under which
    /// agreement (issue 22); the view is recorded as one `portal.access_log` entry.
    pub async fn portal_access_log(
        &self,
        s: &PortalSession,
        before: Option<u64>,
        limit: u32,
    ) -> ServiceResult<PortalLog> {
        let entry = self.portal_entry(s, "portal.access_log", &[]);
        self.door().record(&[entry]).await?;
        Ok(PortalLog {
            log: self
                .audit()
                .access_log_of(s.customer_id, before, limit)
                .await?,
            disclosures: self.sharing().disclosures_unrecorded(s.customer_id).await?,
        })
    }
}

/// What the portal's access-log page shows the customer: their access log and the disclosures
/// of their data to recipients.
#[derive(Debug, Clone)]
pub struct PortalLog {
    /// Who looked at their data, with proofs.
    pub log: crate::AccessLog,
    /// Who outside the business received it.
    pub disclosures: Vec<crate::sharing::Disclosure>,
}
