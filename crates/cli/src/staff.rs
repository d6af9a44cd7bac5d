//! `steward staff password`: gives a staff member a login and a password for signing in.

use std::io::BufRead;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use zeroize::Zeroizing;

use crate::{StoreArgs, open};

/// Options of `steward staff password`.
#[derive(Args)]
pub struct PasswordArgs {
    /// The staff member (id from `POST /v1/staff`).
    #[arg(long)]
    staff: String,
    /// Their login: 3 to 64 letters, digits or `. _ - @`, case-insensitive.
    #[arg(long)]
    login: String,
    #[command(flatten)]
    store: StoreArgs,
}

/// Reads the password from the first line of standard input (never from the command line, where
/// other users and the shell history would see it), and stores its Argon2id hash.
pub async fn password(args: PasswordArgs) -> anyhow::Result<ExitCode> {
    open::init_logging(false);
    let staff = args
        .staff
        .parse()
        .map_err(|_| anyhow::anyhow!("--staff: not a staff id"))?;
    eprintln!("Password (12 characters or more), then Enter:");
    let mut line = Zeroizing::new(String::new());
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned());
    let (vault, operator) = open::vault(&args.store).await?;
    vault
        .identity()
        .set_staff_password(
            operator.acting("staff password"),
            staff,
            &args.login,
            password,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    vault.audit().flush().await?;
    eprintln!("The password is set; sign in with POST /v1/sessions.");
    Ok(ExitCode::SUCCESS)
}
