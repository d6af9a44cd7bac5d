//! `steward bench share` (issue 22, "Measured"): a recipient's read of a customer under its
//! agreement against a support agent's read of the same customers under the same purpose,
//! interleaved, through the service in process (decided, audited, the disclosure recorded,
//! fields opened); then the notification throughput: changes to customers the recipient
//! received, queued with the changes, delivered by the real sender to a loopback HTTP receiver.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use steward_domain::sharing::{AgreementInput, Identity, RecipientInput, RecipientKind};
use steward_domain::{CustomerId, CustomerPatch, LawfulBasis, OutletId, Purpose, Role, Timestamp};
use steward_service::{Access, Actor, Principal, TokenOwner, Vault};

/// Percentile `p` (0..1) of sorted samples.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// A loopback HTTP receiver answering 204 to every POST, counting them; its address.
async fn receiver(count: Arc<AtomicU64>) -> anyhow::Result<std::net::SocketAddr> {
    let app = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move || {
            let count = count.clone();
            async move {
                count.fetch_add(1, Ordering::Relaxed);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}

/// Reads each of `ids` as `who`; the latencies in ms.
async fn reads(
    vault: &Vault,
    who: &Principal,
    purpose: &Purpose,
    ids: &[CustomerId],
) -> anyhow::Result<Vec<f64>> {
    let access = Access {
        principal: who,
        purpose,
        reason: None,
        break_glass: false,
    };
    let mut times = Vec::with_capacity(ids.len());
    for id in ids {
        let t = Instant::now();
        vault.records().read_customer(&access, *id).await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(times)
}

/// Loads `customers`, registers a recipient with an agreement, times `rounds` interleaved
/// rounds of `per_round` reads each way, then `notifications` notifications delivered.
pub async fn run(
    customers: usize,
    rounds: usize,
    per_round: usize,
    notifications: usize,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (vault, operator, _, _) = super::temp_vault(dir.path()).await?;
    let outlet: OutletId = vault
        .directory()
        .create_outlet(operator.into(), "Bench outlet")
        .await?;
    let mut ids: Vec<CustomerId> = Vec::with_capacity(customers);
    for start in (0..customers).step_by(2_000) {
        let end = (start + 2_000).min(customers);
        ids.extend(super::insert_generated(&vault, operator, outlet, start..end).await?);
    }
    // The loopback receiver is plain http: the test-only setting, as the tests use it.
    vault.webhooks().allow_insecure(operator, true);
    let count = Arc::new(AtomicU64::new(0));
    let at = receiver(count.clone()).await?;
    let dpo = super::segment::client(&vault, operator, Role::Dpo).await?;
    let recipient = vault
        .sharing()
        .create_recipient(
            &dpo,
            &RecipientInput {
                name: "Bench Parcel".into(),
                kind: RecipientKind::Processor,
                country: "DE".into(),
                contact: None,
                webhook_url: format!("http://{at}/hooks"),
            },
        )
        .await?;
    let now = Timestamp::now().millis();
    vault
        .sharing()
        .create_agreement(
            &dpo,
            &AgreementInput {
                recipient_id: recipient.to_string(),
                purposes: vec!["order_fulfilment".into()],
                categories: serde_json::from_value(serde_json::json!([
                    "user.name",
                    "user.contact.email",
                    "user.contact.phone_number",
                    "user.contact.address",
                    "user.behavior.purchase_history"
                ]))?,
                lawful_basis: LawfulBasis::Contract,
                document_sha256: "ab".repeat(32),
                starts_at: Timestamp(now - 60_000),
                expires_at: Timestamp(now + 86_400_000),
                identity: Identity::Identified,
                supersedes: None,
            },
        )
        .await?;
    let (_, token) = vault
        .identity()
        .create_token(operator, "bench parcel", TokenOwner::Recipient(recipient))
        .await?;
    let parcel = vault
        .identity()
        .authenticate(&token)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the recipient's token does not authenticate"))?;
    let support = super::segment::client(&vault, operator, Role::SupportAgent).await?;
    // Thousands of distinct customers an hour, as no person reads: the limits lifted.
    vault
        .records()
        .set_bulk_limit(operator, Role::SupportAgent, None);
    vault
        .records()
        .set_bulk_limit(operator, Role::Recipient, None);
    let purpose = vault
        .purposes()
        .get("purpose", "order_fulfilment")
        .map_err(|e| anyhow::anyhow!("{}", e.reason))?;

    let (mut staff, mut shared) = (Vec::new(), Vec::new());
    let (mut staff_s, mut shared_s) = (0.0, 0.0);
    for round in 0..rounds {
        let sample: Vec<CustomerId> = (0..per_round)
            .map(|k| ids[(round * per_round + k) * 7919 % ids.len()])
            .collect();
        // Alternating which goes first, so neither always meets a warm cache.
        for first in [round % 2 == 0, round % 2 == 1] {
            let t = Instant::now();
            if first {
                staff.extend(reads(&vault, &support, &purpose, &sample).await?);
                staff_s += t.elapsed().as_secs_f64();
            } else {
                shared.extend(reads(&vault, &parcel, &purpose, &sample).await?);
                shared_s += t.elapsed().as_secs_f64();
            }
        }
    }
    vault.audit().flush().await?;
    for v in [&mut staff, &mut shared] {
        v.sort_by(f64::total_cmp);
    }
    let line = |who: &str, v: &[f64], secs: f64| {
        format!(
            "{who}: {:.0} reads/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            v.len() as f64 / secs,
            percentile(v, 0.5),
            percentile(v, 0.99),
            v.last().copied().unwrap_or(0.0)
        )
    };
    emit!(
        "| share: a customer read, {customers} customers, {rounds} interleaved rounds of {per_round} (service call, in process, single client) | {} | {} | ratio {:.2} |",
        line("support agent", &staff, staff_s),
        line(
            "recipient under an agreement (disclosure recorded)",
            &shared,
            shared_s
        ),
        (shared.len() as f64 / shared_s) / (staff.len() as f64 / staff_s)
    );

    // Notifications: one rectification each of customers the recipient received.
    let changed: Vec<CustomerId> = ids
        .iter()
        .take(notifications.min(ids.len()))
        .copied()
        .collect();
    reads(&vault, &parcel, &purpose, &changed).await?;
    let patch: CustomerPatch =
        serde_json::from_value(serde_json::json!({"name": "Renamed Bench"}))?;
    for id in &changed {
        vault
            .update_customer(Actor::Operator(operator), *id, &patch)
            .await?;
    }
    let before = count.load(Ordering::Relaxed);
    let t = Instant::now();
    {
        let vault = vault.clone();
        let sender = operator.acting("webhook_sender");
        tokio::spawn(async move { vault.webhooks().run(sender).await });
    }
    let want = before + changed.len() as u64;
    let deadline = Instant::now() + Duration::from_secs(600);
    while count.load(Ordering::Relaxed) < want {
        anyhow::ensure!(Instant::now() < deadline, "not every notification arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let secs = t.elapsed().as_secs_f64();
    emit!(
        "| share: notifications to a loopback receiver | {} rectifications of customers the recipient received, queued with the changes | delivered, signed (Ed25519), in {secs:.2} s: {:.0} notifications/s |",
        changed.len(),
        changed.len() as f64 / secs
    );
    Ok(())
}
