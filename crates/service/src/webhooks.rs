//! Changes follow the data (issue 22, GDPR Art. 19): notifications queued with each change in
//! its own transaction are delivered to the recipients' webhooks, signed as Standard Webhooks
//! says (`v1a`, Ed25519), at least once, retried with backoff for days; the local change never
//! waits for a recipient.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use serde::Serialize;
use steward_domain::{RecipientId, Timestamp};
use steward_store::{NotificationRow, Settled, SharingStore};

use crate::door::Door;
use crate::error::ServiceResult;
use crate::{Operator, Principal};

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

/// Notifications to recipients' webhooks: the outbox's sender, its signing key and the
/// operator's settings.
pub struct Webhooks {
    door: Arc<Door>,
    /// The notification outbox and the recipients' addresses.
    store: Arc<dyn SharingStore>,
    signer: steward_crypto::WebhookSigner,
    /// `serve --allow-insecure-webhooks`: plain-http loopback receivers (tests only).
    insecure: AtomicBool,
    /// How long a notification is retried (ms).
    retry_for_ms: AtomicI64,
    /// How long a claim lasts (ms).
    lease_ms: AtomicI64,
}

impl Webhooks {
    /// The sender of one installation (made by the composition root).
    pub(crate) fn new(
        door: Arc<Door>,
        store: Arc<dyn SharingStore>,
        signer: steward_crypto::WebhookSigner,
    ) -> Self {
        Webhooks {
            door,
            store,
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
/// concerned, and whom it is for (so that a recipient cannot replay another's notification to
/// a third: every recipient verifies with the same key); never a value.
#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    change: &'a str,
    timestamp: String,
    recipient: String,
    customer: &'a str,
    categories: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    purpose: Option<&'a str>,
}

/// Whether a notification may be sent to `ip`: a public address, or (tests only, `serve
/// --allow-insecure-webhooks`) a loopback one. The DPO names the URL, but a URL that resolves
/// to the machine's own network would make Steward a probe of it (review finding 7).
fn reachable(ip: std::net::IpAddr, insecure: bool) -> bool {
    use std::net::IpAddr;
    if ip.is_loopback() {
        return insecure;
    }
    match ip {
        IpAddr::V4(a) => {
            let [x, y, ..] = a.octets();
            !(a.is_private()
                || a.is_link_local()
                || a.is_broadcast()
                || a.is_documentation()
                || a.is_unspecified()
                || a.is_multicast()
                || x == 0
                || (x == 100 && (64..128).contains(&y))
                || (x == 192 && y == 0 && a.octets()[2] == 0)
                || (x == 198 && (y == 18 || y == 19))
                || x >= 240)
        }
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return reachable(IpAddr::V4(v4), insecure);
            }
            let s = a.segments();
            // Ranges that carry an IPv4 address inside (IPv4-compatible, NAT64, 6to4, Teredo)
            // could reach a private one: refused whole.
            let embeds_v4 = s[..6] == [0; 6]
                || (s[0] == 0x64 && s[1] == 0xff9b)
                || s[0] == 0x2002
                || (s[0] == 0x2001 && s[1] == 0);
            !(a.is_unspecified()
                || a.is_multicast()
                || embeds_v4
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0
                || (s[0] == 0x2001 && s[1] == 0x0db8))
        }
    }
}

/// Resolves a recipient's host to the addresses a notification may go to (see [`reachable`]):
/// checked at every connection, so a name that later points inside the network is refused too.
struct Reachable {
    insecure: bool,
}

impl reqwest::dns::Resolve for Reachable {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let insecure = self.insecure;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let ok: Vec<std::net::SocketAddr> =
                found.filter(|a| reachable(a.ip(), insecure)).collect();
            if ok.is_empty() {
                return Err("the name resolves to no public address".into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(ok.into_iter());
            Ok(addrs)
        })
    }
}

/// Whether `url` may be posted to now: `https://`, or `http://` to loopback in test mode; an
/// address written in the URL is checked here (a name is checked when it is resolved).
fn may_post(url: &reqwest::Url, insecure: bool) -> Result<(), String> {
    match url.scheme() {
        "https" => {}
        "http" if insecure => {}
        _ => return Err("refused: not an https:// address".to_owned()),
    }
    let ip = match url.host() {
        Some(url::Host::Ipv4(a)) => Some(std::net::IpAddr::V4(a)),
        Some(url::Host::Ipv6(a)) => Some(std::net::IpAddr::V6(a)),
        Some(url::Host::Domain(_)) => None,
        None => return Err("refused: no host".to_owned()),
    };
    if let Some(ip) = ip
        && !reachable(ip, insecure)
    {
        return Err("refused: not a public address".to_owned());
    }
    if url.scheme() == "http" && !ip.is_some_and(|i| i.is_loopback()) {
        return Err("refused: plain http only to loopback".to_owned());
    }
    Ok(())
}

/// The wait before the next try after `attempts` failed ones.
fn backoff(attempts: i64) -> i64 {
    let doublings = u32::try_from(attempts.clamp(0, 30)).unwrap_or(30);
    FIRST_BACKOFF_MS
        .saturating_mul(1i64 << doublings)
        .min(MAX_BACKOFF_MS)
}

impl Webhooks {
    /// Lets notifications go to plain-http loopback receivers (`serve
    /// --allow-insecure-webhooks`, tests only): the operator's setting.
    pub fn allow_insecure(&self, _operator: Operator, allow: bool) {
        self.insecure.store(allow, Ordering::Relaxed);
    }

    /// How long a notification is retried before it is given up (`serve
    /// --webhook-retry-hours`): the operator's setting.
    pub fn set_retry(&self, _operator: Operator, hours: i64) {
        self.retry_for_ms
            .store(hours.max(1).saturating_mul(3_600_000), Ordering::Relaxed);
    }

    /// How long a sender's claim on a notification lasts (`serve --webhook-lease-secs`): after
    /// a crash, what it held is sent again after this. The operator's setting.
    pub fn set_lease(&self, _operator: Operator, secs: i64) {
        self.lease_ms
            .store(secs.max(1).saturating_mul(1000), Ordering::Relaxed);
    }

    /// Whether plain-http loopback receivers are allowed.
    pub(crate) fn insecure(&self) -> bool {
        self.insecure.load(Ordering::Relaxed)
    }

    /// The public keys recipients verify notifications with: public, like the audit log's.
    pub fn keys(&self) -> WebhookKeys {
        let s = &self.signer;
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
        self.door
            .authorize(principal, steward_policy::Action::ManageRecipients, None)
            .await?;
        let rows = self
            .store
            .notifications(recipient, limit.clamp(1, 500))
            .await?;
        Ok(rows.into_iter().map(Notification::of).collect())
    }

    /// Delivers notifications until the process stops: the operator's sender, started by
    /// `serve`. Each round claims what is due, posts it, and records how each try ended.
    pub async fn run(self: &Arc<Self>, operator: Operator) {
        let lease = self.lease_ms.load(Ordering::Relaxed);
        let attempt = ATTEMPT_TIMEOUT.min(Duration::from_millis(
            u64::try_from(lease * 2 / 3).unwrap_or(1).max(1),
        ));
        let insecure = self.insecure();
        let client = match reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // A proxy from the environment would resolve names itself, past the check below.
            .no_proxy()
            .dns_resolver(std::sync::Arc::new(Reachable { insecure }))
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
        self: &Arc<Self>,
        _operator: Operator,
        client: &reqwest::Client,
    ) -> ServiceResult<usize> {
        let now = Timestamp::now().millis();
        let sharing = &self.store;
        let lease = self.lease_ms.load(Ordering::Relaxed);
        let claimed = sharing.claim_notifications(now, now + lease, BATCH).await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        let recipients = sharing.recipients().await?;
        let retry_for = self.retry_for_ms.load(Ordering::Relaxed);
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
            // To the second: recipients comparing notes should not match changes by the
            // millisecond.
            timestamp: Timestamp(n.created_at - n.created_at.rem_euclid(1000)).to_rfc3339(),
            recipient: n.recipient_id.to_string(),
            customer: &n.customer_ref,
            categories: &n.categories,
            purpose: n.purpose.as_deref(),
        })
        .map_err(|_| "the body could not be written".to_owned())?;
        let url = reqwest::Url::parse(url).map_err(|_| "refused: not a URL".to_owned())?;
        may_post(&url, self.insecure())?;
        // Signed per attempt: the timestamp tells the recipient how fresh this attempt is (its
        // replay window); the id stays the same across attempts (its idempotency key).
        let ts = Timestamp::now().millis() / 1000;
        let signature = self.signer.sign(&n.id, ts, &body);
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
    fn only_public_addresses_are_reachable() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        for private in [
            "10.0.0.1",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.1",
            "198.18.0.1",
            "240.0.0.1",
            "::",
            "fc00::1",
            "::10.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::1",
            "2001:0:a00:1::1",
            "fec0::1",
            "fe80::1",
            "2001:db8::1",
            "::ffff:10.0.0.1",
            "ff02::1",
        ] {
            assert!(!reachable(ip(private), true), "{private}");
        }
        assert!(!reachable(ip("127.0.0.1"), false));
        assert!(reachable(ip("127.0.0.1"), true));
        assert!(!reachable(ip("::1"), false));
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700::1111"] {
            assert!(reachable(ip(public), false), "{public}");
        }
        let url = |u: &str| reqwest::Url::parse(u).unwrap();
        assert!(may_post(&url("https://hooks.example.com/x"), false).is_ok());
        assert!(may_post(&url("https://10.1.2.3/x"), false).is_err());
        assert!(
            may_post(&url("http://127.0.0.1:9/x"), false).is_err(),
            "the flag is off now"
        );
        assert!(may_post(&url("http://127.0.0.1:9/x"), true).is_ok());
        assert!(may_post(&url("http://hooks.example.com/x"), true).is_err());
    }

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
