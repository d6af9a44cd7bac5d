//! `steward bench audit`: appends, full verification and inclusion proofs on a SQLite log.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context;
use steward_domain::{AuditLeaf, CustomerId, Role, Timestamp};
use steward_store::AuditEntryRow;

/// A realistic entry: a support agent's read of one of 10,000 customers.
fn entry(n: u64, customers: &[CustomerId]) -> AuditEntryRow {
    let customer = customers[(n as usize * 7919) % customers.len()];
    let leaf = AuditLeaf {
        v: steward_domain::audit::LEAF_VERSION,
        time: Timestamp(1_790_000_000_000 + n as i64),
        principal: format!("p_{:016x}", n % 97),
        roles: vec![Role::SupportAgent],
        outlets: vec![],
        action: "read".into(),
        customer: Some(customer),
        subject: None,
        purpose: Some("service".into()),
        categories: BTreeMap::from([
            ("name".into(), "show".into()),
            ("email".into(), "show".into()),
            ("phone".into(), "show".into()),
        ]),
        policies: BTreeMap::from([("name".into(), vec!["support-agent".into()])]),
        reason_length: 0,
        break_glass: false,
        outcome: "allow".into(),
    };
    AuditEntryRow {
        leaf: leaf.to_bytes(),
        occurred_at: leaf.time.millis(),
        action: leaf.action,
        customer_id: leaf.customer,
    }
}

/// Runs the audit benchmark on a fresh SQLite log of `entries` entries.
pub async fn run(entries: u64, batch: usize, proofs: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("steward.db").display());
    let store = steward_store::open(&url).await?;
    let (signer, _, _) = steward_crypto::NoteSigner::load_or_create(
        &dir.path().join("audit-signing.key"),
        "steward/bench",
    )?;
    let key = signer.verifier_key();
    let sealer = steward_service::TreeSealer::new(signer);
    let customers: Vec<CustomerId> = (0..10_000).map(|_| CustomerId::new()).collect();
    let bar = indicatif::ProgressBar::new(entries);
    let mut rows = Vec::with_capacity(batch);
    let mut append_time = std::time::Duration::ZERO;
    let mut n = 0u64;
    let mut tip = None;
    // The writer's own appender, as a server appends.
    let mut appender = store.audit_appender().await.context("appender")?;
    while n < entries {
        rows.clear();
        let take = (batch as u64).min(entries - n);
        rows.extend((n..n + take).map(|i| entry(i, &customers)));
        let t = Instant::now();
        tip = Some(
            appender
                .append(&rows, &sealer, tip.take())
                .await
                .context("append")?,
        );
        append_time += t.elapsed();
        n += take;
        bar.set_position(n);
    }
    bar.finish_and_clear();
    let append_rate = entries as f64 / append_time.as_secs_f64();

    // The by-customer index, as a running server keeps it (every entry here is about a
    // customer), so that verification checks it too.
    let t = Instant::now();
    let indexed = store.index_audit(entries).await.context("index")?;
    anyhow::ensure!(indexed == entries, "the index stopped at {indexed}");
    let index_s = t.elapsed().as_secs_f64();

    // Full verification: everything recomputed from the stored leaves.
    let t = Instant::now();
    let report = steward_service::verify_log(&store, &key, |_, _| {}).await?;
    let verify_s = t.elapsed().as_secs_f64();
    anyhow::ensure!(
        report.first_bad.is_none(),
        "the log did not verify: {report:?}"
    );

    // Inclusion proofs at random indexes against the full tree, with their one query.
    let mut samples = Vec::with_capacity(proofs);
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..proofs {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let index = x % entries;
        let t = Instant::now();
        let proof = steward_service::inclusion_proof(&*store, index, entries).await?;
        samples.push(t.elapsed().as_nanos() as u64);
        std::hint::black_box(proof);
    }
    samples.sort_unstable();
    let pct =
        |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)] as f64 / 1e6;
    emit!(
        "| audit log, SQLite, {entries} entries of ~{} bytes | | |",
        entry(0, &customers).leaf.len()
    );
    emit!(
        "| append, batches of {batch} (group commit: tree hashes, head, checkpoint each second) | **{append_rate:.0} entries/s** | |"
    );
    emit!(
        "| by-customer index built in one go (a server extends it behind the log, 16,384 entries a step) | {:.0} entries/s ({index_s:.1} s) | |",
        entries as f64 / index_s
    );
    emit!(
        "| full verification (`audit verify`: every leaf, hash, column, checkpoint, the by-customer index) | **{:.0} entries/s** ({verify_s:.1} s) | |",
        entries as f64 / verify_s
    );
    emit!(
        "| inclusion proof at tree size {entries} (one query for the ~log₂ n entries holding its hashes) | p50 {:.3} ms | p99 {:.3} ms |",
        pct(0.5),
        pct(0.99)
    );
    Ok(())
}
