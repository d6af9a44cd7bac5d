//! `steward export`: everything, decrypted for the key holder, as JSON lines.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use steward_domain::{Customer, Interaction, Purchase};
use steward_service::Vault;

use crate::{StoreArgs, open};

/// Options of `steward export`.
#[derive(Args)]
pub struct ExportArgs {
    /// Write here (created with mode 0600) instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Export one customer's data-subject export (a ZIP: JSON, CSV per entity, manifest with
    /// SHA-256) instead of everything. Needs `--out`.
    #[arg(long, requires = "out")]
    customer: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
}

/// One line of the export.
#[derive(Serialize)]
pub struct ExportLine {
    /// The profile.
    pub customer: Customer,
    /// All interactions.
    pub interactions: Vec<Interaction>,
    /// All purchases.
    pub purchases: Vec<Purchase>,
}

const PAGE: u32 = 500;

/// Writes every customer with their interactions and purchases as JSON lines.
pub async fn export(
    vault: &Vault,
    out: &mut impl Write,
    mut progress: impl FnMut(u64),
) -> anyhow::Result<u64> {
    let mut after = None;
    let mut n = 0u64;
    loop {
        let page = vault.list_customers(after, PAGE).await?;
        for customer in &page {
            let interactions = all_pages(
                |a| vault.list_interactions(customer.id, a, PAGE),
                |i: &Interaction| i.id.0,
            )
            .await?;
            let purchases = all_pages(
                |a| vault.list_purchases(customer.id, a, PAGE),
                |p: &Purchase| p.id.0,
            )
            .await?;
            serde_json::to_writer(
                &mut *out,
                &ExportLine {
                    customer: customer.clone(),
                    interactions,
                    purchases,
                },
            )?;
            out.write_all(b"\n")?;
            n += 1;
        }
        progress(n);
        match page.last() {
            Some(c) if page.len() == PAGE as usize => after = Some(c.id),
            _ => break,
        }
    }
    out.flush()?;
    Ok(n)
}

async fn all_pages<T, F, Fut>(mut fetch: F, id: impl Fn(&T) -> uuid::Uuid) -> anyhow::Result<Vec<T>>
where
    F: FnMut(Option<uuid::Uuid>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>, steward_service::ServiceError>>,
{
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = fetch(after).await?;
        let full = page.len() == PAGE as usize;
        after = page.last().map(&id);
        all.extend(page);
        if !full {
            return Ok(all);
        }
    }
}

/// Writes one customer's data-subject export to `out`.
async fn export_subject(vault: &Vault, customer: &str, out: &Path) -> anyhow::Result<ExitCode> {
    let id: steward_domain::CustomerId = customer
        .parse()
        .map_err(|_| anyhow::anyhow!("--customer: not a customer id"))?;
    let export = vault
        .export_subject(steward_service::Actor::Operator("export"), id)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    vault.flush_audit().await?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut file = opts
        .open(out)
        .with_context(|| format!("creating {} (it must not exist)", out.display()))?;
    file.write_all(&export.zip)?;
    file.sync_all()?;
    eprintln!(
        "Wrote {} ({} files, {} bytes). It holds the customer's data in clear: hand it over securely.",
        out.display(),
        export.files.len() + 1,
        export.zip.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs `steward export`.
pub async fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    open::init_logging(false);
    let vault = open::vault(&args.store).await?;
    if let (Some(customer), Some(out)) = (&args.customer, &args.out) {
        return export_subject(&vault, customer, out).await;
    }
    // Recorded before any data is written out; it reaches the log with the next server or
    // `steward` run that drains the outbox, or right away below.
    vault.record_operator("export", "export_all", None).await?;
    vault.flush_audit().await?;
    let n = match &args.out {
        Some(path) => {
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let file = opts
                .open(path)
                .with_context(|| format!("creating {}", path.display()))?;
            let total = vault.count_customers().await?;
            let bar = indicatif::ProgressBar::new(u64::try_from(total).unwrap_or(0));
            let n = export(&vault, &mut std::io::BufWriter::new(file), |n| {
                bar.set_position(n)
            })
            .await?;
            bar.finish_and_clear();
            n
        }
        None => {
            export(
                &vault,
                &mut std::io::BufWriter::new(std::io::stdout().lock()),
                |_| {},
            )
            .await?
        }
    };
    eprintln!(
        "Exported {n} customers. The export holds personal data in clear: protect and delete it."
    );
    Ok(ExitCode::SUCCESS)
}
