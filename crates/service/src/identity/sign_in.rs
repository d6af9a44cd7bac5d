//! Staff sign-in with a login and a password: the session is an API token bound to the staff
//! member that expires, so every request after the sign-in goes through the same
//! authentication, policy and audit as any token. Each sign-in, refused or not, and each
//! sign-out is an audit entry; none names the login.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicI64, Ordering};

use steward_crypto::{IssuedToken, hash_token_secret, verify_token_secret};
use steward_domain::{StaffId, Timestamp, TokenId, ValidationError};
use steward_store::{CredentialRow, TokenRow};
use zeroize::Zeroizing;

use crate::auth::{Actor, Principal};
use crate::door::{About, entry_with_outcome};
use crate::error::{ServiceError, ServiceResult};
use crate::identity::Identity;

/// The shortest password accepted (NIST SP 800-63B asks for at least 8; staff see customer data).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The longest password accepted (Argon2 hashes any length; this bounds the work a request asks).
pub const MAX_PASSWORD_CHARS: usize = 1024;
/// How long a session lasts unless `serve --session-hours` says otherwise.
pub const DEFAULT_SESSION_HOURS: i64 = 12;

/// The name of the tokens sign-ins issue.
pub(crate) const SESSION_TOKEN_NAME: &str = "sign-in session";

/// An Argon2id hash checked when the login is unknown, so that a wrong login takes as long as a
/// wrong password and does not reveal which logins exist.
static DECOY: LazyLock<Option<String>> =
    LazyLock::new(|| hash_token_secret(b"steward decoy password").ok());

/// A signed-in session.
pub struct Session {
    /// The session token (shown once; the client sends it as a bearer token or cookie).
    pub token: Zeroizing<String>,
    /// Whom it stands for.
    pub principal: Principal,
    /// When it stops working.
    pub expires_at: Timestamp,
}

/// Session lifetime in milliseconds.
pub(crate) struct SessionLength(AtomicI64);

impl Default for SessionLength {
    fn default() -> Self {
        Self(AtomicI64::new(DEFAULT_SESSION_HOURS * 3_600_000))
    }
}

/// A login, normalised: 3 to 64 of `a-z 0-9 . _ - @`, case-insensitive.
fn normalise_login(raw: &str) -> Result<String, ValidationError> {
    let login = raw.trim().to_lowercase();
    let ok = (3..=64).contains(&login.chars().count())
        && login
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_@".contains(c));
    if ok {
        Ok(login)
    } else {
        Err(ValidationError::new(
            "login",
            "must be 3 to 64 letters, digits or . _ - @",
        ))
    }
}

impl Identity {
    /// Sets how long sign-in sessions last (at least one minute).
    pub fn set_session_minutes(&self, minutes: i64) {
        self.session_length
            .0
            .store(minutes.max(1) * 60_000, Ordering::Relaxed);
    }

    fn login_mac(&self, login: &str) -> Vec<u8> {
        self.door().mac("staff-login", login).to_vec()
    }

    /// Gives a staff member a login and a password (the command line's `steward staff
    /// password`), replacing any they had. The login is stored only as a keyed MAC.
    pub async fn set_staff_password(
        &self,
        operator: crate::auth::Operator,
        staff: StaffId,
        login: &str,
        password: Zeroizing<String>,
    ) -> ServiceResult<()> {
        self.door()
            .authorize_actor(
                Actor::Operator(operator),
                steward_policy::Action::ManageDirectory,
                None,
                false,
            )
            .await?;
        let login = normalise_login(login)?;
        let chars = password.chars().count();
        if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&chars) {
            return Err(ValidationError::new("password", "must be 12 to 1024 characters").into());
        }
        if self.directory.staff_row(staff).await?.is_none() {
            return Err(ValidationError::new("staff", "no such staff member").into());
        }
        let mac = self.login_mac(&login);
        if let Some(other) = self.store.staff_credentials(&mac).await?
            && other.staff_id != staff
        {
            return Err(ServiceError::Conflict("login"));
        }
        let hash = tokio::task::spawn_blocking(move || hash_token_secret(password.as_bytes()))
            .await
            .map_err(|_| ServiceError::NotFound("password hashing"))??;
        let staff_id = staff.to_string();
        let entry = self.door().write_entry_for(
            Actor::Operator(operator),
            "set_password",
            None,
            &["credentials"],
            About {
                subject: Some(&staff_id),
                purpose: None,
            },
        );
        let row = CredentialRow {
            staff_id: staff,
            login_mac: mac,
            password_hash: hash,
            updated_at: Timestamp::now().millis(),
        };
        // Sessions remembered here end now, and on every other server as it hears of it.
        let store = self.store.clone();
        self.revoke_and_tell(crate::cluster::Change::Sessions(staff), async move {
            store
                .set_staff_credentials(&row, SESSION_TOKEN_NAME, &[entry])
                .await
                .map(|()| ((), true))
        })
        .await
    }

    /// Signs a staff member in: `None` (and a `denied` audit entry) for a wrong login or
    /// password, else a new session token that expires.
    pub async fn sign_in(
        &self,
        login: &str,
        password: Zeroizing<String>,
    ) -> ServiceResult<Option<Session>> {
        let credentials = match normalise_login(login) {
            Ok(l) if password.chars().count() <= MAX_PASSWORD_CHARS => {
                self.store.staff_credentials(&self.login_mac(&l)).await?
            }
            _ => None,
        };
        let hash = credentials
            .as_ref()
            .map(|c| c.password_hash.clone())
            .or_else(|| DECOY.clone());
        let matched = match hash {
            Some(h) => {
                tokio::task::spawn_blocking(move || verify_token_secret(password.as_bytes(), &h))
                    .await
                    .unwrap_or(false)
            }
            None => false,
        };
        let staff = match credentials {
            Some(c) if matched => c.staff_id,
            other => {
                self.record_refused_sign_in(other.map(|c| c.staff_id))
                    .await?;
                return Ok(None);
            }
        };
        let Some(staff_row) = self.directory.staff_row(staff).await? else {
            self.record_refused_sign_in(None).await?;
            return Ok(None);
        };
        // Disabled: answered like a wrong password (the brake counts it), and recorded.
        if staff_row.disabled_at.is_some() {
            self.record_refused_sign_in(Some(staff)).await?;
            return Ok(None);
        }
        let id = TokenId::new();
        let issued = tokio::task::spawn_blocking(move || IssuedToken::new(id.0))
            .await
            .map_err(|_| ServiceError::NotFound("token"))??;
        let now = Timestamp::now();
        let expires_at = Timestamp(now.millis() + self.session_length.0.load(Ordering::Relaxed));
        let principal = Principal {
            token_id: id,
            name: SESSION_TOKEN_NAME.to_owned(),
            staff_id: Some(staff),
            roles: staff_row
                .roles
                .split(',')
                .filter_map(|r| r.parse().ok())
                .collect(),
            outlets: staff_row.outlet_ids,
            recipient: None,
        };
        let token_id = id.to_string();
        let entry = self.door().write_entry_for(
            Actor::Principal(&principal),
            "sign_in",
            None,
            &[],
            About {
                subject: Some(&token_id),
                purpose: None,
            },
        );
        let row = TokenRow {
            id,
            name: SESSION_TOKEN_NAME.to_owned(),
            role: crate::auth::STAFF_ROLE_MARK.to_owned(),
            secret_hash: issued.secret_hash,
            created_at: now.millis(),
            revoked_at: None,
            staff_id: Some(staff),
            expires_at: Some(expires_at.millis()),
            last_used_at: None,
            recipient_id: None,
        };
        self.store.insert_token(&row, &[entry]).await?;
        Ok(Some(Session {
            token: issued.token,
            principal,
            expires_at,
        }))
    }

    /// A refused sign-in: by the staff member whose login was given, if it was one.
    async fn record_refused_sign_in(&self, staff: Option<StaffId>) -> ServiceResult<()> {
        let principal = match staff {
            Some(s) => self.door().pseudonym(&s.to_string()),
            None => "unknown".to_owned(),
        };
        let entry = entry_with_outcome(
            (principal, vec![], vec![]),
            "sign_in",
            None,
            &[],
            About::default(),
            "written",
            "denied",
        );
        self.door().record(&[entry]).await
    }

    /// The console's CSRF token for `principal`'s session: a keyed MAC of the session's token
    /// id, so it needs no storage and dies with the session.
    pub fn session_csrf(&self, principal: &Principal) -> String {
        self.door()
            .mac("console-csrf", &principal.token_id.to_string())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Ends the session (or revokes the token) `principal` signed in with.
    pub async fn sign_out(&self, principal: &Principal) -> ServiceResult<()> {
        let token_id = principal.token_id.to_string();
        let entry = self.door().write_entry_for(
            Actor::Principal(principal),
            "sign_out",
            None,
            &[],
            About {
                subject: Some(&token_id),
                purpose: None,
            },
        );
        let (store, id) = (self.store.clone(), principal.token_id);
        self.revoke_and_tell(crate::cluster::Change::Token(id), async move {
            store
                .revoke_token(id, Timestamp::now().millis(), &[entry])
                .await
                .map(|_| ((), true))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_are_normalised_and_bounded() {
        assert_eq!(normalise_login(" Alice.K@Shop ").unwrap(), "alice.k@shop");
        for bad in ["ab", "a b c", "x".repeat(65).as_str(), "ünï", "a;drop"] {
            assert_eq!(normalise_login(bad).unwrap_err().field, "login", "{bad}");
        }
    }
}
