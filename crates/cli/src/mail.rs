//! `steward mail …`: what the mail side of an installation needs from the operator.

use std::process::ExitCode;

use clap::Args;

use crate::{StoreArgs, open};

/// Options of `steward mail dkim-record`.
#[derive(Args)]
pub struct DkimRecordArgs {
    /// The sender campaign mail goes out as (the same as `serve --mail-from`); its domain is
    /// the one the record is published under.
    #[arg(
        long,
        env = "STEWARD_MAIL_FROM",
        default_value = "Privacy <privacy@localhost>"
    )]
    mail_from: String,
    #[command(flatten)]
    store: StoreArgs,
}

/// Prints the DNS TXT record that publishes the installation's DKIM key (made on first use).
pub async fn dkim_record(args: DkimRecordArgs) -> anyhow::Result<ExitCode> {
    let (vault, operator) = open::vault_creating(&args.store).await?;
    let record = vault
        .dkim_record(operator.acting("dkim_record"), &args.mail_from)
        .map_err(|e| anyhow::anyhow!("--mail-from: {e}"))?;
    println!("{record}");
    Ok(ExitCode::SUCCESS)
}
