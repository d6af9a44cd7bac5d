//! Identity and sessions: API tokens, staff sign-in sessions and passwords, and the
//! authentication that turns a bearer token into a [`Principal`]. Its acts are the operator's or
//! the admin's, decided and recorded at the [`Door`]; its methods live in `auth.rs`
//! (authentication, tokens), `sign_in.rs` (passwords, sessions) and `accounts.rs` (listing,
//! revoking, disabling).

pub(crate) mod accounts;
pub(crate) mod auth;
pub mod sign_in;

use std::sync::Arc;

use steward_domain::Timestamp;
use steward_store::{IdentityStore, SharingStore};

use crate::directory::Directory;

use crate::Principal;
use crate::auth::TokenCache;
use crate::cluster::{Announcer, Change, Hearing};
use crate::door::Door;
use crate::error::{ServiceError, ServiceResult};
use crate::sign_in::SessionLength;

/// The identity context's service.
pub struct Identity {
    door: Arc<Door>,
    store: Arc<dyn IdentityStore>,
    /// Staff rows: a staff token takes its holder's roles and outlets.
    directory: Arc<Directory>,
    /// Recipients: a recipient's token is made only for one that exists.
    recipients: Arc<dyn SharingStore>,
    tokens: Arc<TokenCache>,
    /// Whether this server hears the others (cached tokens are trusted only then).
    hearing: Arc<Hearing>,
    session_length: SessionLength,
    announcer: Arc<Announcer>,
}

impl Identity {
    /// The identity context of one installation (made by the composition root).
    pub(crate) fn new(
        door: Arc<Door>,
        store: Arc<dyn IdentityStore>,
        directory: Arc<Directory>,
        recipients: Arc<dyn SharingStore>,
        hearing: Arc<Hearing>,
        announcer: Arc<Announcer>,
    ) -> Self {
        Identity {
            door,
            store,
            directory,
            recipients,
            tokens: Arc::default(),
            hearing,
            session_length: SessionLength::default(),
            announcer,
        }
    }

    /// The principal a campaign's sender stands for now (see `sending.rs`).
    // The sender's principal as it is now: a disabled staff member, or a service client whose
    /// token is revoked or expired, sends nothing more. A staff member's campaign follows the
    /// staff member, not the session or token it was started with (signing out does not stop it;
    /// disabling them does).
    pub(crate) async fn sender_principal(
        &self,
        sender: Option<steward_store::Sender>,
    ) -> ServiceResult<Option<Principal>> {
        let Some(sender) = sender else {
            return Ok(None);
        };
        let now = Timestamp::now().millis();
        let (roles, outlets) = match sender.staff {
            Some(staff) => match self.directory.staff_row(staff).await? {
                Some(s) if s.disabled_at.is_none() => (
                    s.roles.split(',').filter_map(|r| r.parse().ok()).collect(),
                    s.outlet_ids,
                ),
                _ => return Ok(None),
            },
            None => match self.store.get_token(sender.token).await? {
                Some(t) if t.revoked_at.is_none() && t.expires_at.is_none_or(|e| e > now) => {
                    match t.role.parse() {
                        Ok(r) => (vec![r], vec![]),
                        Err(_) => return Ok(None),
                    }
                }
                _ => return Ok(None),
            },
        };
        Ok(Some(Principal {
            token_id: sender.token,
            name: "campaign sender".to_owned(),
            staff_id: sender.staff,
            roles,
            outlets,
            recipient: None,
        }))
    }

    /// Counts (and, if `delete`, deletes) sign-in sessions that ended before `before` (Unix ms):
    /// the retention job's.
    pub(crate) async fn dead_sessions(&self, before: i64, delete: bool) -> ServiceResult<u64> {
        Ok(self.store.dead_sessions(before, delete).await?)
    }

    /// The door its acts are decided and recorded at.
    pub(crate) fn door(&self) -> &Door {
        &self.door
    }

    /// Drops every verified token: each is checked again at its next use.
    pub(crate) fn forget_every(&self) {
        self.tokens.forget_every();
    }

    /// Drops what a change (heard from another server, or made here) makes stale.
    pub(crate) fn forget(&self, change: Change) {
        forget(&self.tokens, change);
    }

    /// Runs `write` (a revocation's transaction) and then drops what this server kept and tells
    /// the others, all in a task of its own: a request cut off at its deadline while `write`
    /// commits cannot stop between the commit and the word. `write` answers its result and
    /// whether `change` happened.
    pub(crate) async fn revoke_and_tell<T: Send + 'static>(
        &self,
        change: Change,
        write: impl std::future::Future<Output = steward_store::StoreResult<(T, bool)>> + Send + 'static,
    ) -> ServiceResult<T> {
        let (tokens, announcer) = (self.tokens.clone(), self.announcer.clone());
        let done = tokio::spawn(async move {
            let (out, changed) = write.await?;
            if changed {
                forget(&tokens, change);
                announcer.announce(change).await;
            }
            Ok::<T, ServiceError>(out)
        });
        done.await
            .map_err(|_| ServiceError::WrongState("the change was interrupted"))?
    }
}

fn forget(tokens: &TokenCache, change: Change) {
    match change {
        Change::Token(id) => tokens.forget(id),
        Change::Staff(id) => tokens.forget_all_of(id),
        Change::Sessions(id) => tokens.forget_staff(id, crate::sign_in::SESSION_TOKEN_NAME),
        Change::Registry | Change::Brake(..) | Change::BulkRefused(..) => {}
    }
}
