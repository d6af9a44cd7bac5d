//! Who is asking: API tokens to principals.

use std::collections::HashMap;
use std::sync::RwLock;

use steward_crypto::{IssuedToken, TokenDigest, parse_token, verify_token_secret};
use steward_domain::{Role, Timestamp, TokenId};
use steward_store::TokenRow;
use zeroize::Zeroizing;

use crate::Vault;
use crate::error::{ServiceError, ServiceResult};

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token used.
    pub token_id: TokenId,
    /// The token's name.
    pub name: String,
    /// The role it acts in.
    pub role: Role,
}

/// Tokens verified once with Argon2id, remembered by digest so later requests cost a hash and
/// a constant-time compare instead of an Argon2 run.
#[derive(Default)]
pub(crate) struct TokenCache {
    verified: RwLock<HashMap<TokenId, (TokenDigest, Principal)>>,
}

impl Vault {
    /// Creates an API token; the returned string is shown once and stored only as a hash.
    pub async fn create_token(
        &self,
        name: &str,
        role: Role,
    ) -> ServiceResult<(TokenId, Zeroizing<String>)> {
        let name = steward_domain::normalize::short_text("name", name)?;
        let id = TokenId::new();
        let issued = tokio::task::spawn_blocking(move || IssuedToken::new(id.0))
            .await
            .map_err(|_| ServiceError::NotFound("token"))??;
        let row = TokenRow {
            id,
            name,
            role: role.as_str().to_owned(),
            secret_hash: issued.secret_hash,
            created_at: Timestamp::now().millis(),
            revoked_at: None,
        };
        self.inner.store.insert_token(&row).await?;
        Ok((id, issued.token))
    }

    /// The principal a bearer token stands for, or `None` if it is not valid.
    pub async fn authenticate(&self, token: &str) -> ServiceResult<Option<Principal>> {
        let Some((uuid, secret)) = parse_token(token) else {
            return Ok(None);
        };
        let id = TokenId(uuid);
        let digest = TokenDigest::of(token);
        if let Ok(cache) = self.inner.tokens.verified.read()
            && let Some((d, p)) = cache.get(&id)
        {
            return Ok(d.matches(&digest).then(|| p.clone()));
        }
        let Some(row) = self.inner.store.get_token(id).await? else {
            return Ok(None);
        };
        if row.revoked_at.is_some() {
            return Ok(None);
        }
        let (secret, hash) = (secret.to_owned(), row.secret_hash.clone());
        let ok = tokio::task::spawn_blocking(move || verify_token_secret(secret.as_bytes(), &hash))
            .await
            .unwrap_or(false);
        if !ok {
            return Ok(None);
        }
        let Ok(role) = row.role.parse::<Role>() else {
            return Ok(None);
        };
        let principal = Principal {
            token_id: id,
            name: row.name,
            role,
        };
        if let Ok(mut cache) = self.inner.tokens.verified.write() {
            cache.insert(id, (digest, principal.clone()));
        }
        Ok(Some(principal))
    }
}
