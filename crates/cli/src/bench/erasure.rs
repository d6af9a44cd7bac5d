//! `steward bench erasure`: how long until an erased customer is unreadable, for a short and a
//! long history, and how long the purge of a long history takes.

use std::time::{Duration, Instant};

use steward_domain::{Channel, CustomerId, NewInteraction, Timestamp};
use steward_service::{Operator, Vault};

async fn customer_with(
    vault: &Vault,
    operator: Operator,
    n: usize,
    history: usize,
) -> anyhow::Result<CustomerId> {
    let id = vault
        .records()
        .create_customer(operator.into(), &super::generated(n))
        .await?;
    let bar = (history >= 10_000).then(|| {
        let b = indicatif::ProgressBar::new(history as u64);
        b.set_message(format!("history of customer {n}"));
        b
    });
    for i in 0..history {
        let note = NewInteraction {
            channel: Channel::Email,
            text: format!("Bench message {i} about order {n}"),
            source: "bench".into(),
            occurred_at: Timestamp::now(),
        };
        vault
            .records()
            .add_interaction(operator.into(), id, &note)
            .await?;
        if let Some(b) = &bar {
            b.inc(1);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(id)
}

fn pct(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)]
}

/// Erases `small` customers with one interaction each and `large` with `history` each.
pub async fn run(small: usize, large: usize, history: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (vault, operator, store, _) = super::temp_vault(dir.path()).await?;
    vault
        .erasures()
        .use_journal(dir.path().join("erasures.journal"));

    let mut short = Vec::with_capacity(small);
    for n in 0..small {
        let id = customer_with(&vault, operator, n, 1).await?;
        let t = Instant::now();
        let r = vault.erase_customer(operator.into(), id).await?;
        short.push(t.elapsed().as_secs_f64() * 1e3);
        anyhow::ensure!(r.purge == "complete", "a short history is purged at once");
    }

    let (mut long, mut purges) = (Vec::new(), Vec::new());
    for n in 0..large {
        let id = customer_with(&vault, operator, small + n, history).await?;
        let t = Instant::now();
        let r = vault.erase_customer(operator.into(), id).await?;
        long.push(t.elapsed().as_secs_f64() * 1e3);
        // Unreadable now; the purge runs in the background: time it until it is recorded done.
        loop {
            let done = store
                .erasures()
                .await?
                .iter()
                .any(|e| e.customer_id == id && e.purged_at.is_some());
            if done || r.purge == "complete" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        purges.push(t.elapsed().as_secs_f64());
    }

    emit!("| erasure (SQLite) | p50 | p99 | max | samples |");
    emit!("| --- | --- | --- | --- | --- |");
    emit!(
        "| unreadable and unfindable, 1 interaction (shred, purge and WAL truncation included) | {:.2} ms | {:.2} ms | {:.2} ms | {small} |",
        pct(&mut short, 0.5),
        pct(&mut short, 0.99),
        pct(&mut short, 1.0)
    );
    if large > 0 {
        emit!(
            "| unreadable and unfindable, {history} interactions (shred; purge continues in the background) | {:.2} ms | {:.2} ms | {:.2} ms | {large} |",
            pct(&mut long, 0.5),
            pct(&mut long, 0.99),
            pct(&mut long, 1.0)
        );
        emit!(
            "| purge of the {history} ciphertext rows left, until recorded complete | {:.2} s | {:.2} s | {:.2} s | {large} |",
            pct(&mut purges, 0.5),
            pct(&mut purges, 0.99),
            pct(&mut purges, 1.0)
        );
    }
    Ok(())
}

/// Times the data-subject export (the ZIP) of a customer with `history` interactions.
pub async fn run_export(history: usize, runs: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (vault, operator, _, _) = super::temp_vault(dir.path()).await?;
    let id = customer_with(&vault, operator, 0, history).await?;
    let mut times = Vec::with_capacity(runs);
    let mut size = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let export = vault.operator_export_subject(operator, id).await?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        size = export.zip.len();
    }
    emit!("| data-subject export (SQLite) | p50 | p99 | max | runs |");
    emit!("| --- | --- | --- | --- | --- |");
    emit!(
        "| ZIP of a customer with {history} interactions (JSON, CSV, manifest; {size} bytes) | {:.1} ms | {:.1} ms | {:.1} ms | {runs} |",
        pct(&mut times, 0.5),
        pct(&mut times, 0.99),
        pct(&mut times, 1.0)
    );
    Ok(())
}
