//! Accounts with an end (issue 17): tokens and sign-in sessions listed and revoked, staff members
//! disabled. Each act is the admin's (or the operator's) by the policy's `manage_tokens` and
//! `manage_directory`, and an audit entry; a revoked token or a disabled staff member's tokens stop
//! working in this process at once (other processes re-read a token within 30 seconds).

use serde::Serialize;
use steward_domain::{StaffId, Timestamp, TokenId};
use steward_policy::Action;
use steward_store::TokenRow;

use crate::Actor;
use crate::door::About;
use crate::error::{ServiceError, ServiceResult};
use crate::identity::Identity;

/// An API token or sign-in session as listed: never its secret or hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TokenInfo {
    /// Id.
    pub id: TokenId,
    /// What it is for (`session` for a staff sign-in).
    pub name: String,
    /// Whom it acts for: `role:<role>` for a service client, `staff:<id>` for a staff member.
    pub owner: String,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it was last seen in use (kept at most every 30 seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<Timestamp>,
    /// `active`, `revoked` or `expired`.
    pub state: &'static str,
}

impl TokenInfo {
    fn of(r: TokenRow, now: i64) -> Self {
        let state = if r.revoked_at.is_some() {
            "revoked"
        } else if r.expires_at.is_some_and(|e| e <= now) {
            "expired"
        } else {
            "active"
        };
        TokenInfo {
            id: r.id,
            owner: match r.staff_id {
                Some(s) => format!("staff:{s}"),
                None => format!("role:{}", r.role),
            },
            name: r.name,
            created_at: Timestamp(r.created_at),
            last_used_at: r.last_used_at.map(Timestamp),
            state,
        }
    }
}

impl Identity {
    /// Every API token and sign-in session, oldest first, if the policy lets `actor` manage
    /// tokens; the listing is an audit entry.
    pub async fn list_tokens(&self, actor: Actor<'_>) -> ServiceResult<Vec<TokenInfo>> {
        self.door()
            .authorize_actor(actor, Action::ManageTokens, None, false)
            .await?;
        self.door()
            .record_read(actor, "list_tokens", None, &["tokens"])
            .await?;
        let now = Timestamp::now().millis();
        let rows = self.store.list_tokens().await?;
        Ok(rows.into_iter().map(|r| TokenInfo::of(r, now)).collect())
    }

    /// Revokes a token or sign-in session, if the policy lets `actor` manage tokens. Revoking
    /// one already revoked changes nothing; an unknown one is `NotFound`.
    pub async fn revoke_token(&self, actor: Actor<'_>, id: TokenId) -> ServiceResult<()> {
        self.door()
            .authorize_actor(actor, Action::ManageTokens, None, false)
            .await?;
        if self.store.get_token(id).await?.is_none() {
            return Err(ServiceError::NotFound("token"));
        }
        let subject = id.to_string();
        let about = About {
            subject: Some(&subject),
            purpose: None,
        };
        let entry = self
            .door()
            .write_entry_for(actor, "revoke_token", None, &["token"], about);
        let store = self.store.clone();
        self.revoke_and_tell(crate::cluster::Change::Token(id), async move {
            store
                .revoke_token(id, Timestamp::now().millis(), &[entry])
                .await
                .map(|_| ((), true))
        })
        .await?;
        Ok(())
    }

    /// Disables a staff member — every token and sign-in session they hold is revoked in the same
    /// transaction, and they can neither sign in nor authenticate — or enables them again (their
    /// old tokens stay revoked), if the policy lets `actor` manage the directory.
    pub async fn set_staff_disabled(
        &self,
        actor: Actor<'_>,
        staff: StaffId,
        disabled: bool,
    ) -> ServiceResult<()> {
        self.door()
            .authorize_actor(actor, Action::ManageDirectory, None, false)
            .await?;
        // An admin who disabled themself would lock the door behind them.
        if disabled
            && let Actor::Principal(p) = actor
            && p.staff_id() == Some(staff)
        {
            return Err(ServiceError::WrongState("you cannot disable yourself"));
        }
        let subject = staff.to_string();
        let about = About {
            subject: Some(&subject),
            purpose: None,
        };
        let action = if disabled {
            "disable_staff"
        } else {
            "enable_staff"
        };
        let entry = self
            .door()
            .write_entry_for(actor, action, None, &["staff"], about);
        let at = disabled.then(|| Timestamp::now().millis());
        let write = self.directory.disabling(staff, at, entry);
        let found = self
            .revoke_and_tell(crate::cluster::Change::Staff(staff), async move {
                // Enabling again forgets nothing: the old tokens stay revoked.
                let found = write.await?;
                Ok((found, found && disabled))
            })
            .await?;
        if !found {
            return Err(ServiceError::NotFound("staff"));
        }
        Ok(())
    }
}
