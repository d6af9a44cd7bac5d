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
        .outreach()
        .dkim_record(operator.acting("dkim_record"), &args.mail_from)
        .map_err(|e| anyhow::anyhow!("--mail-from: {e}"))?;
    println!("{record}");
    Ok(ExitCode::SUCCESS)
}

/// Options of `steward mail receive`.
#[derive(Args)]
pub struct ReceiveArgs {
    /// The envelope recipient, if the message's headers may not name it (Postfix's pipe gives
    /// it as `${original_recipient}`, OpenSMTPD's mda as `%{rcpt}`).
    #[arg(long, env = "ORIGINAL_RECIPIENT")]
    recipient: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
}

/// sysexits(3) codes, which mail servers act on: a refusal is bounced, a failure retried.
const EX_DATAERR: u8 = 65;
const EX_NOUSER: u8 = 67;
const EX_TEMPFAIL: u8 = 75;

/// Reads one RFC 5322 message on standard input and files it: a reply to a staff message, or a
/// delivery status notification. Exit 0 when it is taken; otherwise a one-line reason on
/// standard error and a non-zero sysexits code (67 for an address Steward did not issue or no
/// longer serves, 65 for input that is not a message it takes, 75 to try again later).
pub async fn receive(args: ReceiveArgs) -> anyhow::Result<ExitCode> {
    use std::io::Read;
    use steward_service::inbound::{MAX_MESSAGE_BYTES, Received};
    let mut raw = Vec::new();
    std::io::stdin()
        .take(MAX_MESSAGE_BYTES as u64 + 1)
        .read_to_end(&mut raw)?;
    let (vault, operator) = open::vault(&args.store).await?;
    let recipients: Vec<String> = args.recipient.into_iter().collect();
    let outcome = vault
        .outreach()
        .receive_mail(
            steward_service::Actor::Operator(operator.acting("mail_receive")),
            &raw,
            &recipients,
        )
        .await;
    match outcome {
        Ok(Received::Reply { thread, .. }) => {
            println!("stored: a reply in thread {thread}");
            Ok(ExitCode::SUCCESS)
        }
        Ok(Received::Bounce) => {
            println!("stored: the address is marked undeliverable");
            Ok(ExitCode::SUCCESS)
        }
        Ok(Received::Notice) => {
            println!("taken: a delivery notice that changes nothing");
            Ok(ExitCode::SUCCESS)
        }
        Err(steward_service::ServiceError::Validation(v)) => {
            eprintln!("refused: {}", v.reason);
            let code = if v.field == "recipient" {
                EX_NOUSER
            } else {
                EX_DATAERR
            };
            Ok(ExitCode::from(code))
        }
        Err(e) => {
            eprintln!("not taken, try again later: {e}");
            Ok(ExitCode::from(EX_TEMPFAIL))
        }
    }
}
