//! `steward export`: everything, decrypted for the key holder, as JSON lines — each customer
//! decided by the access policy and recorded in the audit log as the operator's export.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use steward_service::{Operator, Vault};

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

const PAGE: u32 = 500;

/// Writes every customer the policy lets the operator export, with their interactions and
/// purchases, as JSON lines; each exported customer is an audit entry (`operator:export`),
/// committed before their line is written. Returns how many were written and how many refused.
pub async fn export(
    vault: &Vault,
    operator: Operator,
    out: &mut impl Write,
    mut progress: impl FnMut(u64),
) -> anyhow::Result<(u64, u64)> {
    let (mut after, mut n, mut refused) = (None, 0u64, 0u64);
    loop {
        let page = vault.records().export_page(operator, after, PAGE).await?;
        for line in &page.customers {
            serde_json::to_writer(&mut *out, line)?;
            out.write_all(b"\n")?;
            n += 1;
        }
        refused += page.refused;
        progress(n + refused);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    out.flush()?;
    Ok((n, refused))
}

/// Writes one customer's data-subject export to `out`.
async fn export_subject(
    vault: &Vault,
    operator: Operator,
    customer: &str,
    out: &Path,
) -> anyhow::Result<ExitCode> {
    let id: steward_domain::CustomerId = customer
        .parse()
        .map_err(|_| anyhow::anyhow!("--customer: not a customer id"))?;
    let export = vault
        .operator_export_subject(operator, id)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    vault.audit().flush().await?;
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
    let (vault, operator) = open::vault(&args.store).await?;
    let operator = operator.acting("export");
    if let (Some(customer), Some(out)) = (&args.customer, &args.out) {
        return export_subject(&vault, operator, customer, out).await;
    }
    // The export as a whole is an entry too (the customers' own entries follow, page by page).
    vault.record_operator(operator, "export_all", None).await?;
    vault.audit().flush().await?;
    let (n, refused) = match &args.out {
        Some(path) => {
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let file = opts
                .open(path)
                .with_context(|| format!("creating {}", path.display()))?;
            let total = vault.records().count_customers().await?;
            let bar = indicatif::ProgressBar::new(u64::try_from(total).unwrap_or(0));
            let n = export(&vault, operator, &mut std::io::BufWriter::new(file), |n| {
                bar.set_position(n)
            })
            .await?;
            bar.finish_and_clear();
            n
        }
        None => {
            export(
                &vault,
                operator,
                &mut std::io::BufWriter::new(std::io::stdout().lock()),
                |_| {},
            )
            .await?
        }
    };
    // The entries of the last page reach the Merkle log now, not with the next server start.
    vault.audit().flush().await?;
    eprintln!(
        "Exported {n} customers. The export holds personal data in clear: protect and delete it."
    );
    if refused > 0 {
        // A partial export must not pass for a whole one (a replaced policy may lack the
        // operator's permit): say so, and fail.
        eprintln!(
            "The access policy refused {refused} customers (policy `operator` permits \
             export_customer); they are not in the export."
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
