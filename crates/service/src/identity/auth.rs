//! Who is asking: API tokens to principals.

use std::collections::HashMap;
use std::sync::RwLock;

use steward_crypto::{IssuedToken, TokenDigest, parse_token, verify_token_secret};
use steward_domain::{CustomerId, OutletId, RecipientId, Role, StaffId, Timestamp, TokenId};
use steward_store::TokenRow;
use zeroize::Zeroizing;

use crate::error::{ServiceError, ServiceResult};
use crate::identity::Identity;

/// An authenticated caller. Made only here, by checking a token or a password: no other crate
/// can build a caller with roles of its choosing (the fields are readable, not writable, outside).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token used.
    pub(crate) token_id: TokenId,
    /// The token's name.
    pub(crate) name: String,
    /// The staff member the token acts for; `None` for a service client.
    pub(crate) staff_id: Option<StaffId>,
    /// The roles it acts in.
    pub(crate) roles: Vec<Role>,
    /// The outlets it works at (a staff member's; none for a service client).
    pub(crate) outlets: Vec<OutletId>,
    /// The recipient it acts for (issue 22), whose agreements decide its reads.
    pub(crate) recipient: Option<RecipientId>,
}

impl Principal {
    /// The token used.
    pub fn token_id(&self) -> TokenId {
        self.token_id
    }

    /// The token's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The staff member the token acts for; `None` for a service client.
    pub fn staff_id(&self) -> Option<StaffId> {
        self.staff_id
    }

    /// The roles it acts in.
    pub fn roles(&self) -> &[Role] {
        &self.roles
    }

    /// The outlets it works at (a staff member's; none for a service client).
    pub fn outlets(&self) -> &[OutletId] {
        &self.outlets
    }

    /// The recipient it acts for, if it is a recipient's token.
    pub fn recipient(&self) -> Option<RecipientId> {
        self.recipient
    }

    /// The policy's view of this caller: the staff id, or the token id for a service client.
    pub fn asker(&self) -> steward_policy::Asker<'_> {
        let id = self
            .staff_id
            .map(|s| s.to_string())
            .unwrap_or_else(|| format!("token-{}", self.token_id));
        steward_policy::Asker {
            id,
            roles: &self.roles,
            outlets: &self.outlets,
        }
    }
}

/// Who acts: every service function that reads, writes or discloses personal data takes one,
/// decides by it and records it. None can be made outside this crate from nothing: a
/// [`Principal`] comes from authentication, an [`Operator`] from opening the vault with the master
/// key, a [`Myself`] from a customer's portal session.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    /// A caller of the API.
    Principal(&'a Principal),
    /// The operator at the command line: import, export, demo data, token creation, …
    Operator(Operator),
    /// The customer themself, signed in to the privacy portal.
    Subject(Myself),
}

impl<'a> From<&'a Principal> for Actor<'a> {
    fn from(p: &'a Principal) -> Self {
        Actor::Principal(p)
    }
}

impl From<Operator> for Actor<'_> {
    fn from(o: Operator) -> Self {
        Actor::Operator(o)
    }
}

/// The operator: whoever opened the vault with the master key (the command line). Handed out by
/// [`Vault::open`] and never by a vault already open, so a layer that is only given a vault (the
/// HTTP API) cannot act as the operator. The operator's acts are decided by the policy (role
/// `operator`) and audited as `operator:<what>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operator {
    what: &'static str,
}

impl Operator {
    /// The operator's capability inside this crate (the vault's own chores: retention, deadlines).
    pub(crate) const fn internal(what: &'static str) -> Self {
        Operator { what }
    }

    /// The same operator, doing `what` (the audit log shows `operator:<what>`).
    pub fn acting(self, what: &'static str) -> Self {
        Operator { what }
    }

    /// What the operator is doing.
    pub fn what(self) -> &'static str {
        self.what
    }

    /// The policy's view of the operator: role `operator`, no outlets.
    pub(crate) fn asker(self) -> steward_policy::Asker<'static> {
        steward_policy::Asker {
            id: format!("operator:{}", self.what),
            roles: &[Role::Operator],
            outlets: &[],
        }
    }
}

/// The customer themself, as a signed-in portal session (or a request whose identity was
/// checked) makes them: only this crate makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Myself(pub(crate) CustomerId);

impl Myself {
    /// The customer.
    pub fn customer(self) -> CustomerId {
        self.0
    }
}

/// Whom a token acts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenOwner {
    /// A service client in one role.
    Role(Role),
    /// A staff member, with their roles and outlets.
    Staff(StaffId),
    /// A recipient (processor or third party), reading under its agreements (issue 22).
    Recipient(RecipientId),
}

/// Stored in `api_tokens.role` for staff-bound tokens, whose roles come from the staff record.
pub(crate) const STAFF_ROLE_MARK: &str = "staff";

/// How long a remembered token is trusted before its row is read again: the bound on how long a
/// token revoked or expired by another server process keeps working here.
const RECHECK_AFTER: std::time::Duration = std::time::Duration::from_secs(30);

/// A token verified once: its digest, whom it stands for, when it expires, when last checked.
struct Verified {
    digest: TokenDigest,
    principal: Principal,
    expires_at: Option<i64>,
    checked: std::time::Instant,
}

/// What the cache says of a presented token.
enum Remembered {
    /// Known, but the secret differs or it expired.
    Refused,
    /// Known and checked against its row recently.
    Fresh(Principal),
    /// Known, but its row must be read again (revoked or expired elsewhere?).
    Stale,
}

/// What the cache settles without the store: `Ok` with the answer for a refused or fresh token,
/// else `Err` saying whether the token is known (stale: verified before, its row to read again).
fn settled(r: Option<Remembered>) -> Result<Option<Principal>, bool> {
    match r {
        Some(Remembered::Refused) => Ok(None),
        Some(Remembered::Fresh(p)) => Ok(Some(p)),
        Some(Remembered::Stale) => Err(true),
        None => Err(false),
    }
}

/// Tokens verified once with Argon2id, remembered by digest so later requests cost a hash and
/// a constant-time compare instead of an Argon2 run.
#[derive(Default)]
pub(crate) struct TokenCache {
    verified: RwLock<HashMap<TokenId, Verified>>,
    /// One verification per token at a time (see [`TokenCache::turn`]).
    turns: std::sync::Mutex<HashMap<TokenId, std::sync::Weak<tokio::sync::Mutex<()>>>>,
    /// Counts forgettings (under the write lock). A verification that read its token's row
    /// before a forgetting must not cache what it found: the row may have been revoked since,
    /// and the forgetting, done first, would not undo an entry made after it.
    forgotten: std::sync::atomic::AtomicU64,
}

impl TokenCache {
    /// The lock a token's verification holds. A client that opens 32 connections at once sends
    /// 32 first requests with one token; without it each ran its own Argon2 verification (tens
    /// of milliseconds of CPU and 19 MiB each), and on two cores every request of the server's
    /// first second waited a quarter of a second (issue 19). The rest wait and find it cached.
    fn turn(&self, id: TokenId) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        let mut turns = self
            .turns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(t) = turns.get(&id).and_then(std::sync::Weak::upgrade) {
            return t;
        }
        // Only tokens being verified right now hold a live lock: the map stays that small.
        turns.retain(|_, t| t.strong_count() > 0);
        let t = std::sync::Arc::new(tokio::sync::Mutex::new(()));
        turns.insert(id, std::sync::Arc::downgrade(&t));
        t
    }

    /// What the cache knows of token `id` presented with `digest` at `now`; never fresh unless
    /// `trusted` (the server hears the others' revocations).
    fn remembered(
        &self,
        id: TokenId,
        digest: &TokenDigest,
        now: i64,
        trusted: bool,
    ) -> Option<Remembered> {
        self.verified.read().ok().and_then(|cache| {
            cache.get(&id).map(|v| {
                if !v.digest.matches(digest) || v.expires_at.is_some_and(|e| e <= now) {
                    Remembered::Refused
                } else if trusted && v.checked.elapsed() < RECHECK_AFTER {
                    Remembered::Fresh(v.principal.clone())
                } else {
                    Remembered::Stale
                }
            })
        })
    }

    /// Removes what `keep` refuses, counting the forgetting.
    fn forget_where(&self, keep: impl FnMut(&TokenId, &mut Verified) -> bool) {
        let mut cache = self
            .verified
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.retain(keep);
        self.forgotten
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// The count of forgettings so far (see `forgotten`).
    fn generation(&self) -> u64 {
        self.forgotten.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Forgets a token (revoked here).
    pub(crate) fn forget(&self, id: TokenId) {
        self.forget_where(|k, _| *k != id);
    }

    /// Drops a token found revoked, expired or gone by its own verification, which holds its
    /// turn: no other verification of it can be racing, so the count of forgettings (which
    /// would keep every other verification under way from caching) is left alone. Presented
    /// junk tokens take this path, and must not stop the cache for everyone.
    fn drop_found_invalid(&self, id: TokenId) {
        if let Ok(mut cache) = self.verified.write() {
            cache.remove(&id);
        }
    }

    /// Forgets every token: each is checked against its row again at its next use.
    pub(crate) fn forget_every(&self) {
        self.forget_where(|_, _| false);
    }

    /// Forgets every token of a staff member (disabled here).
    pub(crate) fn forget_all_of(&self, staff: StaffId) {
        self.forget_where(|_, v| v.principal.staff_id != Some(staff));
    }

    /// Forgets a staff member's tokens named `name` (their sign-in sessions, revoked here).
    pub(crate) fn forget_staff(&self, staff: StaffId, name: &str) {
        self.forget_where(|_, v| {
            !(v.principal.staff_id == Some(staff) && v.principal.name == name)
        });
    }
}

impl Identity {
    /// Records, off the request's path, that token `id` was used at `now` (at most once per re-check
    /// of its row, so every 30 seconds); a failure to record it is only logged.
    fn touch(&self, id: TokenId, now: i64) {
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.touch_token(id, now).await {
                tracing::debug!(error = %e, "recording a token's last use failed");
            }
        });
    }

    /// Creates an API token; the returned string is shown once and stored only as a hash.
    pub async fn create_token(
        &self,
        operator: Operator,
        name: &str,
        owner: TokenOwner,
    ) -> ServiceResult<(TokenId, Zeroizing<String>)> {
        self.door()
            .authorize_actor(
                Actor::Operator(operator),
                steward_policy::Action::ManageTokens,
                None,
                false,
            )
            .await?;
        let name = steward_domain::normalize::short_text("name", name)?;
        let mut recipient_id = None;
        let (role, staff_id) = match owner {
            TokenOwner::Role(Role::Operator | Role::Recipient) => {
                return Err(steward_domain::ValidationError::new(
                    "role",
                    "the operator's role is held by no token, a recipient's only by its own (--recipient)",
                )
                .into());
            }
            TokenOwner::Role(r) => (r.as_str(), None),
            TokenOwner::Recipient(r) => {
                if self.recipients.recipient(r).await?.is_none() {
                    return Err(steward_domain::ValidationError::new(
                        "recipient",
                        "no such recipient",
                    )
                    .into());
                }
                recipient_id = Some(r);
                (Role::Recipient.as_str(), None)
            }
            TokenOwner::Staff(s) => {
                match self.directory.staff_row(s).await? {
                    None => {
                        return Err(steward_domain::ValidationError::new(
                            "staff",
                            "no such staff member",
                        )
                        .into());
                    }
                    Some(row) if row.disabled_at.is_some() => {
                        return Err(steward_domain::ValidationError::new(
                            "staff",
                            "the staff member is disabled",
                        )
                        .into());
                    }
                    Some(_) => {}
                }
                (STAFF_ROLE_MARK, Some(s))
            }
        };
        let id = TokenId::new();
        let issued = tokio::task::spawn_blocking(move || IssuedToken::new(id.0))
            .await
            .map_err(|_| ServiceError::NotFound("token"))??;
        let row = TokenRow {
            id,
            name,
            role: role.to_owned(),
            secret_hash: issued.secret_hash,
            created_at: Timestamp::now().millis(),
            revoked_at: None,
            staff_id,
            expires_at: None,
            last_used_at: None,
            recipient_id,
        };
        // Tokens are made at the command line only: by the operator.
        let token_id = id.to_string();
        let about = crate::door::About {
            subject: Some(&token_id),
            purpose: None,
        };
        let entry = self.door().write_entry_for(
            Actor::Operator(operator),
            "create_token",
            None,
            &["token"],
            about,
        );
        self.store.insert_token(&row, &[entry]).await?;
        Ok((id, issued.token))
    }

    /// The principal a bearer token stands for, or `None` if it is not valid. A staff-bound
    /// token takes the staff member's roles and outlets as they are when it is first checked.
    pub async fn authenticate(&self, token: &str) -> ServiceResult<Option<Principal>> {
        let Some((uuid, secret)) = parse_token(token) else {
            return Ok(None);
        };
        let id = TokenId(uuid);
        let digest = TokenDigest::of(token);
        let now = Timestamp::now().millis();
        let trusted = self.hearing.trusted();
        // Decided under the read lock: on the hot path only the principal is cloned.
        let stale = match settled(self.tokens.remembered(id, &digest, now, trusted)) {
            Ok(answer) => return Ok(answer),
            Err(stale) => stale,
        };
        let turn = self.tokens.turn(id);
        let _turn = turn.lock().await;
        // Whoever held the turn before may have verified this very token meanwhile.
        let stale = stale
            || match settled(self.tokens.remembered(id, &digest, now, trusted)) {
                Ok(answer) => return Ok(answer),
                Err(stale) => stale,
            };
        // Taken before the row is read: a forgetting after this (a revocation heard meanwhile)
        // keeps what is found below out of the cache.
        let generation = self.tokens.generation();
        let Some(row) = self.store.get_token(id).await? else {
            self.tokens.drop_found_invalid(id);
            return Ok(None);
        };
        if row.revoked_at.is_some() || row.expires_at.is_some_and(|e| e <= now) {
            self.tokens.drop_found_invalid(id);
            return Ok(None);
        }
        // Known and still valid: the secret matched before, so no second Argon2 run.
        if stale
            && let Ok(mut cache) = self.tokens.verified.write()
            && self.tokens.generation() == generation
            && let Some(v) = cache.get_mut(&id)
        {
            v.checked = std::time::Instant::now();
            self.touch(id, now);
            return Ok(Some(v.principal.clone()));
        }
        let (secret, hash) = (secret.to_owned(), row.secret_hash.clone());
        metrics::counter!("steward_token_verifications_total").increment(1);
        let ok = tokio::task::spawn_blocking(move || verify_token_secret(secret.as_bytes(), &hash))
            .await
            .unwrap_or(false);
        if !ok {
            return Ok(None);
        }
        let (roles, outlets) = match row.staff_id {
            // A disabled staff member's tokens were revoked with them; refused here too.
            Some(staff) => match self.directory.staff_row(staff).await? {
                Some(s) if s.disabled_at.is_none() => (
                    s.roles.split(',').filter_map(|r| r.parse().ok()).collect(),
                    s.outlet_ids,
                ),
                _ => return Ok(None),
            },
            // A recipient's token: the role no other token can hold, and only that role.
            None if row.recipient_id.is_some() => {
                if row.role != Role::Recipient.as_str() {
                    return Ok(None);
                }
                (vec![Role::Recipient], vec![])
            }
            None => match row.role.parse::<Role>() {
                Ok(r) => (vec![r], vec![]),
                Err(_) => return Ok(None),
            },
        };
        self.touch(id, now);
        let principal = Principal {
            token_id: id,
            name: row.name,
            staff_id: row.staff_id,
            roles,
            outlets,
            recipient: row.recipient_id,
        };
        if let Ok(mut cache) = self.tokens.verified.write()
            && self.tokens.generation() == generation
        {
            cache.insert(
                id,
                Verified {
                    digest,
                    principal: principal.clone(),
                    expires_at: row.expires_at,
                    checked: std::time::Instant::now(),
                },
            );
        }
        Ok(Some(principal))
    }
}
