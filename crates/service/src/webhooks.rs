//! Changes follow the data (issue 22, GDPR Art. 19): notifications queued with each change in
//! its own transaction are delivered to the recipients' webhooks, signed as Standard Webhooks
//! says (`v1a`, Ed25519), at least once, retried with backoff for days; the local change never
//! waits for a recipient.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use serde::Serialize;
use steward_domain::{RecipientId, Timestamp};
use steward_store::{NotificationRow, Settled};

use crate::error::ServiceResult;
use crate::{Operator, Principal, Vault};

/// How long a notification is retried by default before it is given up: 72 hours.
pub const DEFAULT_RETRY_HOURS: i64 = 72;
/// The first retry's delay; each next one doubles it, up to [`MAX_BACKOFF_MS`].
const FIRST_BACKOFF_MS: i64 = 2_000;
/// The longest wait between two tries.
const MAX_BACKOFF_MS: i64 = 3_600_000;
/// Notifications claimed per round.
const BATCH: u32 = 64;
/// A claim outlives one attempt's timeout: a sender killed mid-delivery leaves its claims to the
/// next sender after this (at least once, never lost). `serve --webhook-lease-secs`.
pub const DEFAULT_LEASE_SECS: i64 = 30;
/// The longest one attempt may take (less when the lease is shorter: two thirds of it).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// The signing key and the operator's settings for notifications.
pub(crate) struct Webhooks {
    signer: steward_crypto::WebhookSigner,
    /// `serve --allow-insecure-webhooks`: plain-http loopback receivers (tests only).
    insecure: AtomicBool,
    /// How long a notification is retried (ms).
    retry_for_ms: AtomicI64,
    /// How long a claim lasts (ms).
    lease_ms: AtomicI64,
}

impl Webhooks {
    pub(crate) fn new(signer: steward_crypto::WebhookSigner) -> Self {
        Webhooks {
            signer,
            insecure: AtomicBool::new(false),
            retry_for_ms: AtomicI64::new(DEFAULT_RETRY_HOURS * 3_600_000),
            lease_ms: AtomicI64::new(DEFAULT_LEASE_SECS * 1000),
        }
    }
}

/// The public keys that verify notifications (`GET /.well-known/webhook-keys.json`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookKeys {
    /// The keys in use (one; more while one is replaced).
    pub keys: Vec<WebhookKey>,
}

/// One public key.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookKey {
    /// Key id.
    pub kid: String,
    /// `whpk_` and the base64 Ed25519 public key.
    pub public_key: String,
}

/// A notification as the DPO sees it: to whom, what, where it stands. No personal value.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Notification {
    /// The `webhook-id`.
    pub id: String,
    /// The recipient.
    pub recipient_id: RecipientId,
    /// The change, e.g. `customer.erased`.
    #[serde(rename = "type")]
    pub change: String,
    /// The customer's id or pseudonym, as the recipient knows them.
    pub customer: String,
    /// The categories concerned.
    pub categories: Vec<String>,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Tries so far.
    pub attempts: i64,
    /// Queued.
    pub created_at: Timestamp,
    /// Next try, while pending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<Timestamp>,
    /// Delivered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<Timestamp>,
    /// Why the last try failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl Notification {
    fn of(n: NotificationRow) -> Self {
        Notification {
            next_attempt_at: (n.status == "pending").then_some(Timestamp(n.next_attempt_at)),
            id: n.id,
            recipient_id: n.recipient_id,
            change: n.change,
            customer: n.customer_ref,
            categories: n.categories,
            status: n.status,
            attempts: n.attempts,
            created_at: Timestamp(n.created_at),
            delivered_at: n.delivered_at.map(Timestamp),
            last_error: n.last_error,
        }
    }
}

/// The body of a notification: the change, the reference the recipient holds, the categories
/// concerned; never a value.
#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    change: &'a str,
    timestamp: String,
    customer: &'a str,
    categories: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    purpose: Option<&'a str>,
}

/// The wait before the next try after `attempts` failed ones.
fn backoff(attempts: i64) -> i64 {
    let doublings = u32::try_from(attempts.clamp(0, 30)).unwrap_or(30);
    FIRST_BACKOFF_MS
        .saturating_mul(1i64 << doublings)
        .min(MAX_BACKOFF_MS)
}

impl Vault {
    /// Lets notifications go to plain-http loopback receivers (`serve
    /// --allow-insecure-webhooks`, tests only): the operator's setting.
    pub fn allow_insecure_webhooks(&self, _operator: Operator, allow: bool) {
        self.inner.webhooks.insecure.store(allow, Ordering::Relaxed);
    }

    /// How long a notification is retried before it is given up (`serve
    /// --webhook-retry-hours`): the operator's setting.
    pub fn set_webhook_retry(&self, _operator: Operator, hours: i64) {
        self.inner
            .webhooks
            .retry_for_ms
            .store(hours.max(1).saturating_mul(3_600_000), Ordering::Relaxed);
    }

    /// How long a sender's claim on a notification lasts (`serve --webhook-lease-secs`): after
    /// a crash, what it held is sent again after this. The operator's setting.
    pub fn set_webhook_lease(&self, _operator: Operator, secs: i64) {
        self.inner
            .webhooks
            .lease_ms
            .store(secs.max(1).saturating_mul(1000), Ordering::Relaxed);
    }

    /// Whether plain-http loopback receivers are allowed.
    pub(crate) fn insecure_webhooks(&self) -> bool {
        self.inner.webhooks.insecure.load(Ordering::Relaxed)
    }

    /// The public keys recipients verify notifications with: public, like the audit log's.
    pub fn webhook_keys(&self) -> WebhookKeys {
        let s = &self.inner.webhooks.signer;
        WebhookKeys {
            keys: vec![WebhookKey {
                kid: s.kid().to_owned(),
                public_key: s.public_key(),
            }],
        }
    }

    /// The newest notifications, to one recipient or all (the DPO).
    pub async fn notifications(
        &self,
        principal: &Principal,
        recipient: Option<RecipientId>,
        limit: u32,
    ) -> ServiceResult<Vec<Notification>> {
        self.authorize(principal, steward_policy::Action::ManageRecipients, None)
            .await?;
        let rows = self
            .inner
            .stores
            .sharing
            .notifications(recipient, limit.clamp(1, 500))
            .await?;
        Ok(rows.into_iter().map(Notification::of).collect())
    }

    /// Delivers notifications until the process stops: the operator's sender, started by
    /// `serve`. Each round claims what is due, posts it, and records how each try ended.
    pub async fn run_webhooks(&self, operator: Operator) {
        let lease = self.inner.webhooks.lease_ms.load(Ordering::Relaxed);
        let attempt = ATTEMPT_TIMEOUT.min(Duration::from_millis(
            u64::try_from(lease * 2 / 3).unwrap_or(1).max(1),
        ));
        let client = match reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(attempt)
            .connect_timeout(attempt.min(Duration::from_secs(5)))
            .user_agent(concat!("Steward-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "the webhook client could not be built; no notification will leave");
                return;
            }
        };
        loop {
            match self.deliver_round(operator, &client).await {
                Ok(n) if n == BATCH as usize => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "a round of notifications failed; will retry"),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// One round: claims up to a batch of due notifications and tries each once, concurrently.
    async fn deliver_round(
        &self,
        _operator: Operator,
        client: &reqwest::Client,
    ) -> ServiceResult<usize> {
        let now = Timestamp::now().millis();
        let sharing = &self.inner.stores.sharing;
        let lease = self.inner.webhooks.lease_ms.load(Ordering::Relaxed);
        let claimed = sharing.claim_notifications(now, now + lease, BATCH).await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        let recipients = sharing.recipients().await?;
        let retry_for = self.inner.webhooks.retry_for_ms.load(Ordering::Relaxed);
        let mut tries = tokio::task::JoinSet::new();
        for n in claimed.iter().cloned() {
            let url = recipients
                .iter()
                .find(|r| r.id == n.recipient_id)
                .map(|r| r.webhook_url.clone());
            let (client, vault) = (client.clone(), self.clone());
            tries.spawn(async move {
                let outcome = match url {
                    Some(url) => vault.try_once(&client, &url, &n).await,
                    None => Err("the recipient is gone".to_owned()),
                };
                let now = Timestamp::now().millis();
                let settled = match outcome {
                    Ok(()) => Settled::Delivered { at: now },
                    Err(error) if now - n.created_at >= retry_for => Settled::Failed { error },
                    Err(error) => Settled::Retry {
                        next_at: now + backoff(n.attempts),
                        error,
                    },
                };
                if let Settled::Failed { error } = &settled {
                    tracing::warn!(id = %n.id, error, "a notification to a recipient was given up");
                }
                (n.id, settled)
            });
        }
        let mut done = 0;
        while let Some(joined) = tries.join_next().await {
            let Ok((id, settled)) = joined else { continue };
            sharing.settle_notification(&id, &settled).await?;
            done += 1;
        }
        Ok(done)
    }

    /// Posts one notification, signed for this attempt; `Err` says why it did not arrive
    /// (a status or a connection failure, never a body).
    async fn try_once(
        &self,
        client: &reqwest::Client,
        url: &str,
        n: &NotificationRow,
    ) -> Result<(), String> {
        let body = serde_json::to_vec(&Body {
            change: &n.change,
            timestamp: Timestamp(n.created_at).to_rfc3339(),
            customer: &n.customer_ref,
            categories: &n.categories,
            purpose: n.purpose.as_deref(),
        })
        .map_err(|_| "the body could not be written".to_owned())?;
        // Signed per attempt: the timestamp tells the recipient how fresh this attempt is (its
        // replay window); the id stays the same across attempts (its idempotency key).
        let ts = Timestamp::now().millis() / 1000;
        let signature = self.inner.webhooks.signer.sign(&n.id, ts, &body);
        let response = client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &n.id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    "timed out".to_owned()
                } else if e.is_connect() {
                    "could not connect".to_owned()
                } else {
                    "the request failed".to_owned()
                }
            })?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("answered HTTP {}", status.as_u16()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_an_hour() {
        assert_eq!(backoff(0), 2_000);
        assert_eq!(backoff(1), 4_000);
        assert_eq!(backoff(10), 2_048_000);
        assert_eq!(backoff(11), MAX_BACKOFF_MS);
        assert_eq!(backoff(1_000), MAX_BACKOFF_MS);
        assert_eq!(backoff(-5), 2_000);
    }
}
