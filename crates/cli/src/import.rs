//! `steward import FILE.csv`: validate every row first, then seal and store in batches.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use steward_domain::{NewCustomer, Timestamp, ValidationError};
use steward_service::import::{RowError, parse_csv};
use steward_service::{DuplicateOf, Operator, Vault};

use crate::{StoreArgs, open};

/// Options of `steward import`.
#[derive(Args)]
pub struct ImportArgs {
    /// The CSV file, with a header row.
    file: PathBuf,
    /// Import the valid rows even if some are invalid (the invalid ones are reported and skipped).
    #[arg(long)]
    skip_invalid: bool,
    /// Import customers whose e-mail or phone another customer (stored, or on an earlier line)
    /// already has; without it they are reported by line like invalid rows.
    #[arg(long)]
    allow_duplicates: bool,
    /// Customers per transaction (the first few are smaller, from 1,000 up, so that storing
    /// starts while the rest are sealed).
    #[arg(long, default_value_t = 50_000)]
    batch: usize,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// The file holds social events (`platform, handle, event_id, text, url, occurred_at, city,
    /// country`), not customers: each is kept only for a customer who holds the handle and
    /// consented to `social_listening`, the rest dropped and counted.
    #[arg(long, conflicts_with_all = ["allow_duplicates"])]
    social: bool,
    #[command(flatten)]
    store: StoreArgs,
}

/// Seals and stores `customers` in batches, overlapping the sealing of one batch with the
/// storing of the previous one. Calls `progress` with the number stored after each batch.
pub async fn store_all(
    vault: &Vault,
    operator: Operator,
    customers: Vec<NewCustomer>,
    batch: usize,
    mut progress: impl FnMut(usize),
) -> anyhow::Result<usize> {
    let now = Timestamp::now();
    let sizes = batch_sizes(customers.len(), batch);
    let mut rest = customers.into_iter();
    let mut chunks = sizes
        .into_iter()
        .map(move |n| rest.by_ref().take(n).collect::<Vec<_>>());
    let seal = |chunk: Vec<NewCustomer>| {
        let v = vault.clone();
        tokio::task::spawn_blocking(move || {
            chunk
                .iter()
                .map(|c| v.records().seal_new_customer(c, now))
                .collect::<Result<Vec<_>, _>>()
        })
    };
    let mut pending = chunks.next().map(seal);
    let mut stored = 0;
    while let Some(task) = pending.take() {
        let sealed = task.await.context("sealing task failed")??;
        pending = chunks.next().map(seal);
        stored += vault.records().insert_sealed(operator, sealed).await?.len();
        progress(stored);
    }
    Ok(stored)
}

/// The sizes of the batches `total` customers are stored in: small at first, doubling up to
/// `batch`. Storing a customer takes longer than sealing one, so each batch is sealed while
/// the one before is stored, and the store waits only for the first, small one (a full first
/// batch of 50,000 kept it idle for two seconds).
fn batch_sizes(total: usize, batch: usize) -> Vec<usize> {
    let batch = batch.max(1);
    let mut sizes = Vec::new();
    let (mut next, mut left) = (batch.min(1_000), total);
    while left > 0 {
        let n = next.min(left);
        sizes.push(n);
        left -= n;
        next = (next * 2).min(batch);
    }
    sizes
}

/// Runs `steward import`.
pub async fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    open::init_bulk_logging(&args.store);
    if args.social {
        let (vault, operator) = open::vault(&args.store).await?;
        return crate::import_social::run(&vault, operator, &args.file, args.skip_invalid).await;
    }
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("opening {}", args.file.display()))?;
    let started = Instant::now();
    let (rows, mut errors, ignored) = parse_csv(std::io::BufReader::new(file))
        .with_context(|| format!("reading {}", args.file.display()))?;
    if !ignored.is_empty() {
        eprintln!(
            "Ignoring columns not mapped to a profile field (not collected): {}",
            ignored.join(", ")
        );
    }
    let (vault, operator) = open::vault(&args.store).await?;
    // A customer whose e-mail or phone another holds (stored, or on an earlier line) is reported
    // by line like an invalid row, unless duplicates are allowed.
    let customers: Vec<NewCustomer> = if args.allow_duplicates {
        rows.into_iter().map(|(_, c)| c).collect()
    } else {
        let (lines, customers): (Vec<u64>, Vec<NewCustomer>) = rows.into_iter().unzip();
        let dups = vault
            .records()
            .import_duplicates(operator.acting("import"), &customers)
            .await?;
        let mut kept = Vec::with_capacity(customers.len());
        for ((line, c), d) in lines.iter().zip(customers).zip(dups) {
            let reason = match d {
                None => {
                    kept.push(c);
                    continue;
                }
                Some(DuplicateOf::Stored { field, existing }) => (
                    field,
                    format!(
                        "another customer has it ({existing}); --allow-duplicates imports it anyway"
                    ),
                ),
                Some(DuplicateOf::Earlier { field, index }) => (
                    field,
                    format!(
                        "the same as line {}",
                        lines.get(index).copied().unwrap_or(0)
                    ),
                ),
            };
            errors.push(RowError {
                line: *line,
                error: ValidationError::new(reason.0, reason.1),
            });
        }
        errors.sort_by_key(|e| e.line);
        kept
    };
    for e in &errors {
        eprintln!("line {}: {}: {}", e.line, e.error.field, e.error.reason);
    }
    if !errors.is_empty() && !args.skip_invalid {
        eprintln!(
            "{} invalid or duplicate rows; nothing was imported. Fix them, or pass --skip-invalid to import the {} valid rows.",
            errors.len(),
            customers.len()
        );
        return Ok(ExitCode::from(2));
    }
    let total = customers.len();
    let bar = if args.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(total as u64)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} customers ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let stored = store_all(
        &vault,
        operator.acting("import"),
        customers,
        args.batch,
        |n| bar.set_position(n as u64),
    )
    .await?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "Imported {stored} customers ({} invalid rows skipped) in {secs:.1} s ({:.0} customers/s).",
        errors.len(),
        stored as f64 / secs.max(1e-9)
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::batch_sizes;

    #[test]
    fn batches_start_small_and_cover_every_customer_once() {
        assert_eq!(batch_sizes(10_000, 4_000), vec![1_000, 2_000, 4_000, 3_000]);
        assert_eq!(batch_sizes(500, 50_000), vec![500]);
        assert_eq!(batch_sizes(0, 50_000), Vec::<usize>::new());
        assert_eq!(batch_sizes(5, 2), vec![2, 2, 1]);
        for (total, batch) in [(1_000_000, 50_000), (123_457, 10_000), (7, 0)] {
            let sizes = batch_sizes(total, batch);
            assert_eq!(sizes.iter().sum::<usize>(), total);
            assert!(sizes.iter().all(|n| *n >= 1 && *n <= batch.max(1)));
        }
    }
}
