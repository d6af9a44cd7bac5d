//! `steward bench merge`: merging a duplicate with a long history into another customer, as a
//! support agent would through the API (re-sealing every row under the survivor's key, one
//! transaction, then the duplicate's crypto-shredding); SQLite.

use std::time::Instant;

use steward_domain::{Channel, NewInteraction, Role, Timestamp};
use steward_service::{Activity, Actor, TokenOwner};

/// Merges a customer with `history` interactions into another, `runs` times.
pub async fn run(history: usize, runs: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (vault, operator, _, _) = super::temp_vault(dir.path()).await?;
    vault
        .erasures()
        .use_journal(dir.path().join("erasures.journal"));
    let (_, token) = vault
        .identity()
        .create_token(operator, "bench", TokenOwner::Role(Role::SupportAgent))
        .await?;
    let support = vault
        .identity()
        .authenticate(&token)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the bench token does not authenticate"))?;
    let mut times = Vec::with_capacity(runs);
    for run in 0..runs {
        // The same person twice: the duplicate shares the survivor's phone (a merge takes only
        // real duplicates).
        let first = super::generated(2 * run);
        let second = steward_domain::NewCustomer {
            phone: first.phone.clone(),
            ..super::generated(2 * run + 1)
        };
        let survivor = vault
            .records()
            .create_customer_allowing_duplicate(operator.into(), &first)
            .await?;
        let other = vault
            .records()
            .create_customer_allowing_duplicate(operator.into(), &second)
            .await?;
        let items: Vec<_> = (0..history)
            .map(|i| {
                (
                    other,
                    Activity::Interaction(NewInteraction {
                        channel: Channel::Email,
                        text: format!("Bench message {i} before the merge"),
                        source: "bench".into(),
                        occurred_at: Timestamp::now(),
                    }),
                )
            })
            .collect();
        for chunk in items.chunks(5_000) {
            vault.records().add_activity(operator, chunk).await?;
        }
        let t = Instant::now();
        vault
            .merge_customers(Actor::Principal(&support), survivor, other)
            .await?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    emit!(
        "| merge a customer with {history} interactions into another (SQLite, {runs} runs) | median {:.0} ms | slowest {:.0} ms |",
        times[times.len() / 2],
        times[times.len() - 1]
    );
    Ok(())
}
