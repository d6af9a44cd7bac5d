//! `steward`: the one binary. Thin: parses arguments, opens the vault, calls the services.

/// mimalloc instead of glibc's malloc: the read path allocates and frees many small buffers per
/// request on two threads, and glibc's consolidation of freed chunks showed up in profiles.
/// Built `secure` (guard pages, encoded free lists, double-free checks): about 3 % of the gain,
/// kept for a process that holds customers' keys and plaintext.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod audit;
mod bench;
mod erasure;
mod export;
mod http;
mod import;
mod import_social;
mod mail;
mod open;
mod pii;
mod serve;
mod staff;
mod tls;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Steward: a privacy-by-design CRM core.
#[derive(Parser)]
#[command(name = "steward", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the data and the master key live.
#[derive(Args, Clone, Debug)]
pub struct StoreArgs {
    /// Data directory for the embedded SQLite database and the generated master key.
    #[arg(
        long,
        global = true,
        default_value = "./steward-data",
        env = "STEWARD_DATA_DIR"
    )]
    pub data_dir: PathBuf,
    /// Use this database instead of SQLite in the data directory (`postgres://…` or `sqlite://…`).
    #[arg(long, global = true, env = "STEWARD_DATABASE_URL")]
    pub database_url: Option<String>,
    /// The master key file (base64 of 32 bytes). Default: `master.key` in the data directory,
    /// generated on first start.
    #[arg(long, global = true, env = "STEWARD_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
    /// A Cedar policy set replacing the shipped default (validated against the schema on start).
    #[arg(long, global = true, env = "STEWARD_POLICY_FILE")]
    pub policy_file: Option<PathBuf>,
    /// The key that signs the audit log's checkpoints (base64 of an Ed25519 seed), kept apart
    /// from the master key and the database. Default: `audit-signing.key` in the data
    /// directory, generated on first start.
    #[arg(long, global = true, env = "STEWARD_AUDIT_KEY_FILE")]
    pub audit_key_file: Option<PathBuf>,
    /// The erasure journal, replayed on start and on restore so that no backup brings an erased
    /// customer back. Keep it with the master key, out of database backups; servers sharing one
    /// database all name the same file, on storage they all mount (docs/deploy.md). Default:
    /// `erasures.journal` beside the master key file.
    #[arg(long, global = true, env = "STEWARD_ERASURE_JOURNAL")]
    pub erasure_journal: Option<PathBuf>,
    /// Make a new installation (database and keys) if there is none. `serve` does so anyway;
    /// every other command refuses a data directory or database that holds no installation, so
    /// a mistyped `--data-dir` makes nothing.
    #[arg(long, global = true)]
    pub init: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API.
    Serve(Box<serve::ServeArgs>),
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Manage staff sign-in.
    Staff {
        #[command(subcommand)]
        command: StaffCommand,
    },
    /// Import customers from a CSV file (the usual CRM export headers are recognised).
    Import(import::ImportArgs),
    /// Export all data, decrypted, as JSON lines (one customer per line).
    Export(export::ExportArgs),
    /// Erase a customer by crypto-shredding (their data key destroyed, ciphertext purged, a
    /// disposal record in the audit log). A legal hold blocks it.
    Erase(erasure::EraseArgs),
    /// Write a consistent backup of the SQLite databases (safe while the server runs). It holds
    /// no keys and no erasure journal.
    Backup(erasure::BackupArgs),
    /// Restore a backup into a stopped server's data directory, then replay the erasure journal.
    Restore(erasure::RestoreArgs),
    /// Enforce each purpose's retention period.
    Retention {
        #[command(subcommand)]
        command: RetentionCommand,
    },
    /// Manage the master key.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Run a benchmark and print its figures.
    Bench(bench::BenchArgs),
    /// Work with the access policy.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Check the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Campaign and customer mail: the DKIM record to publish, inbound replies and bounces.
    Mail {
        #[command(subcommand)]
        command: MailCommand,
    },
    /// Personal data in free text: the detector Steward runs on every text it stores.
    Pii {
        #[command(subcommand)]
        command: PiiCommand,
    },
}

/// `steward pii …`.
#[derive(Subcommand)]
enum PiiCommand {
    /// Find e-mail addresses, telephone numbers, card numbers, IBANs, national ids, IP
    /// addresses and URLs with credentials in a file. Exit 1 when anything is found.
    Scan(pii::ScanArgs),
}

/// `steward mail …`.
#[derive(Subcommand)]
enum MailCommand {
    /// Print the DNS TXT record that publishes the DKIM key every message is signed with
    /// (`SELECTOR._domainkey.DOMAIN TXT "v=DKIM1; k=ed25519; p=…"`).
    DkimRecord(mail::DkimRecordArgs),
    /// Take one inbound message on standard input (how a mail server hands mail to a program):
    /// a reply to a staff message, stored in its thread with the customer's address and phone
    /// number removed, or a delivery status notification, which marks the address
    /// undeliverable. Exit 0 when taken; otherwise a one-line reason and a non-zero code.
    Receive(mail::ReceiveArgs),
}

/// `steward staff …`.
#[derive(Subcommand)]
enum StaffCommand {
    /// Give a staff member a login and a password (read from standard input) to sign in with
    /// (`POST /v1/sessions`); replaces any they had.
    Password(staff::PasswordArgs),
}

/// `steward retention …`.
#[derive(Subcommand)]
enum RetentionCommand {
    /// Delete interactions and purchases older than every purpose that uses them allows, and
    /// erase customers inactive for longer than every profile purpose allows. Each disposal is
    /// an audit entry; a legal hold keeps its customer.
    Run {
        /// Report what would go, change nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// `steward audit …`.
#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute the Merkle tree from the stored entries and check every stored hash, every
    /// column kept beside a leaf, the head and every signed checkpoint; where the master key is,
    /// check the tag of every entry still waiting in the outbox too. The log's check needs
    /// neither the master key nor a running server. Exits 1 at the first problem, naming the
    /// entry (or the pending entries); 3 when all checks but the log records pending entries
    /// the server refused as tampered, more than `--refused-seen`.
    Verify {
        #[command(flatten)]
        store: StoreArgs,
        /// The verifier key (`name+keyid+base64`, as `GET /v1/audit/public-key` gives it).
        /// Default: derived from the audit key file.
        #[arg(long)]
        verifier_key: Option<String>,
        /// Refused pending entries already investigated: exit 0 while the log records no more.
        #[arg(long, default_value_t = 0)]
        refused_seen: u64,
    },
    /// Write the latest signed checkpoint and every entry it covers to FILE (JSON lines, 0600),
    /// for anyone to check with `verify-export`.
    Export {
        #[command(flatten)]
        store: StoreArgs,
        /// The file to create.
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Check an export against the log's verifier key, with no database and no master key.
    VerifyExport {
        /// The export file.
        file: std::path::PathBuf,
        /// The verifier key (`name+keyid+base64`, from `GET /v1/audit/public-key`).
        #[arg(long)]
        verifier_key: String,
    },
}

/// A hypothetical read for `steward policy explain`.
#[derive(Args)]
struct ExplainArgs {
    /// The asker's roles (repeat or comma-separate).
    #[arg(long, value_delimiter = ',', required = true)]
    role: Vec<String>,
    /// The declared purpose.
    #[arg(long)]
    purpose: String,
    /// The asker works at an outlet the customer belongs to.
    #[arg(long)]
    own_outlet: bool,
    /// The customer has granted consent for the purpose.
    #[arg(long)]
    consented: bool,
    /// A reason is given.
    #[arg(long)]
    reason: bool,
    /// The customer's processing is restricted.
    #[arg(long)]
    restricted: bool,
    /// The caller asks for break-glass (with `--reason`, a reason of 40 characters is assumed).
    #[arg(long)]
    break_glass: bool,
    /// The policy file (default: the shipped policy).
    #[arg(long)]
    file: Option<PathBuf>,
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Validate a Cedar policy set against Steward's schema (no file: the shipped default).
    Check {
        /// The policy file.
        file: Option<PathBuf>,
    },
    /// Show the per-field decision for a hypothetical read.
    Explain(ExplainArgs),
    /// Print the shipped default policy set, to start a replacement from.
    Show,
    /// Print the Cedar schema policies are validated against.
    Schema,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create an API token; it is printed once and stored only as a hash.
    Create {
        /// What the token is for, e.g. `till-integration`.
        #[arg(long)]
        name: String,
        /// A service client's role: admin, sales_associate, store_manager, support_agent,
        /// marketing, analyst, dpo, monitoring, mail_gateway, social_connector.
        #[arg(long, conflicts_with_all = ["staff", "recipient"], required_unless_present_any = ["staff", "recipient"])]
        role: Option<String>,
        /// The staff member the token acts for (their roles and outlets apply).
        #[arg(long, conflicts_with = "recipient")]
        staff: Option<String>,
        /// The recipient (processor or third party, `POST /v1/recipients`) the token acts for:
        /// it reads only under that recipient's agreements.
        #[arg(long)]
        recipient: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List every API token and sign-in session, one a line: id, name, role or staff, created,
    /// last used, state. Never a secret.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke a token or sign-in session: refused from its next request on (servers on
    /// PostgreSQL hear of it at once; a server on SQLite re-reads a token within 30 seconds).
    Revoke {
        /// The token's id (as `token list` prints it).
        id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Re-wrap every data key under a new master key (the data itself is not rewritten). Safe to
    /// interrupt and re-run. Stop the server first.
    Rotate {
        #[command(flatten)]
        store: StoreArgs,
        /// Keys re-wrapped per transaction.
        #[arg(long, default_value_t = 1000)]
        batch: u32,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve::run(*args).await,
        Command::Token {
            command:
                TokenCommand::Create {
                    name,
                    role,
                    staff,
                    recipient,
                    store,
                },
        } => {
            open::init_logging(false);
            let owner = match (role, staff, recipient) {
                (Some(r), _, _) => steward_service::TokenOwner::Role(r.parse().map_err(
                    |e: steward_domain::ValidationError| anyhow::anyhow!("--role: {}", e.reason),
                )?),
                (None, Some(s), _) => steward_service::TokenOwner::Staff(
                    s.parse()
                        .map_err(|_| anyhow::anyhow!("--staff: not a staff id"))?,
                ),
                (None, None, Some(r)) => steward_service::TokenOwner::Recipient(
                    r.parse()
                        .map_err(|_| anyhow::anyhow!("--recipient: not a recipient id"))?,
                ),
                (None, None, None) => anyhow::bail!("give --role, --staff or --recipient"),
            };
            let (vault, operator) = open::vault(&store).await?;
            let (id, token) = vault
                .identity()
                .create_token(operator.acting("token create"), &name, owner)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            eprintln!("Created token {id}. It is shown once; store it in a secret manager:");
            println!("{}", token.as_str());
            Ok(ExitCode::SUCCESS)
        }
        Command::Token {
            command: TokenCommand::List { store },
        } => {
            open::init_logging(false);
            let (vault, operator) = open::vault(&store).await?;
            let tokens = vault
                .identity()
                .list_tokens(operator.acting("token list").into())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            vault.audit().flush().await?;
            for t in tokens {
                let last = t
                    .last_used_at
                    .map(|l| l.to_rfc3339_millis())
                    .unwrap_or_else(|| "never".into());
                println!(
                    "{}\t{}\t{}\t{}\t{last}\t{}",
                    t.id,
                    t.name,
                    t.owner,
                    t.created_at.to_rfc3339_millis(),
                    t.state
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Token {
            command: TokenCommand::Revoke { id, store },
        } => {
            open::init_logging(false);
            let id: steward_domain::TokenId =
                id.parse().map_err(|_| anyhow::anyhow!("not a token id"))?;
            let (vault, operator) = open::vault(&store).await?;
            vault
                .identity()
                .revoke_token(operator.acting("token revoke").into(), id)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            vault.audit().flush().await?;
            eprintln!("Revoked token {id}.");
            Ok(ExitCode::SUCCESS)
        }
        Command::Staff {
            command: StaffCommand::Password(args),
        } => staff::password(args).await,
        Command::Import(args) => import::run(args).await,
        Command::Export(args) => export::run(args).await,
        Command::Erase(args) => erasure::erase(args).await,
        Command::Retention {
            command: RetentionCommand::Run { dry_run, store },
        } => {
            open::init_logging(false);
            let (vault, operator) = open::vault(&store).await?;
            vault.replay_erasures().await?;
            let report = vault
                .run_retention(operator.acting("retention"), dry_run)
                .await?;
            vault.audit().flush().await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Backup(args) => erasure::backup(args).await,
        Command::Restore(args) => erasure::restore(args).await,
        Command::Keys {
            command: KeysCommand::Rotate { store, batch },
        } => {
            open::init_logging(false);
            open::rotate(&store, batch).await
        }
        Command::Bench(args) => bench::run(args).await,
        Command::Mail {
            command: MailCommand::DkimRecord(args),
        } => mail::dkim_record(args).await,
        Command::Mail {
            command: MailCommand::Receive(args),
        } => mail::receive(args).await,
        Command::Pii {
            command: PiiCommand::Scan(args),
        } => pii::scan(args),
        Command::Audit {
            command:
                AuditCommand::Verify {
                    store,
                    verifier_key,
                    refused_seen,
                },
        } => audit::verify(&store, verifier_key, refused_seen).await,
        Command::Audit {
            command: AuditCommand::Export { store, out },
        } => audit::export(&store, &out).await,
        Command::Audit {
            command: AuditCommand::VerifyExport { file, verifier_key },
        } => audit::verify_export(&file, &verifier_key),
        Command::Policy { command } => match command {
            PolicyCommand::Check { file } => {
                let text = match &file {
                    Some(f) => std::fs::read_to_string(f)
                        .map_err(|e| anyhow::anyhow!("reading {}: {e}", f.display()))?,
                    None => steward_policy::DEFAULT_POLICIES.to_owned(),
                };
                match steward_policy::Policy::from_sources(&text, steward_policy::SCHEMA) {
                    Ok(_) => {
                        println!("valid: the policy set validates against the schema");
                        Ok(ExitCode::SUCCESS)
                    }
                    Err(e) => {
                        eprintln!("invalid: {e}");
                        Ok(ExitCode::from(2))
                    }
                }
            }
            PolicyCommand::Explain(a) => policy_explain(a),
            PolicyCommand::Show => {
                print!("{}", steward_policy::DEFAULT_POLICIES);
                Ok(ExitCode::SUCCESS)
            }
            PolicyCommand::Schema => {
                print!("{}", steward_policy::SCHEMA);
                Ok(ExitCode::SUCCESS)
            }
        },
    }
}

/// `steward policy explain`: one line per field with its outcome and the deciding policies.
fn policy_explain(a: ExplainArgs) -> anyhow::Result<ExitCode> {
    use steward_policy::{Asker, Field, Policy, ReadRequest, Subject};
    let text = match &a.file {
        Some(f) => std::fs::read_to_string(f)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", f.display()))?,
        None => steward_policy::DEFAULT_POLICIES.to_owned(),
    };
    let policy = Policy::from_sources(&text, steward_policy::SCHEMA)?;
    let roles = a
        .role
        .iter()
        .map(|r| {
            r.parse::<steward_domain::Role>()
                .map_err(|e| anyhow::anyhow!("--role {r}: {}", e.reason))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let purpose = steward_domain::purpose::default_purposes()
        .into_iter()
        .find(|p| p.key == a.purpose)
        .ok_or_else(|| anyhow::anyhow!("--purpose: unknown purpose {}", a.purpose))?;
    let (staff_outlet, other_outlet) = (
        steward_domain::OutletId::new(),
        steward_domain::OutletId::new(),
    );
    let customer_outlets = [if a.own_outlet {
        staff_outlet
    } else {
        other_outlet
    }];
    let req = ReadRequest {
        asker: Asker {
            id: "explain".into(),
            roles: &roles,
            outlets: &[staff_outlet],
        },
        subject: Subject {
            id: steward_domain::CustomerId::new(),
            outlets: &customer_outlets,
            restricted: a.restricted,
        },
        purpose: &purpose,
        consented: a.consented,
        has_reason: a.reason,
        reason_length: if a.reason { 40 } else { 0 },
        break_glass: a.break_glass,
        acknowledged: true,
        now: steward_domain::Timestamp::now(),
        agreement: None,
    };
    for d in policy.evaluate_read(&req, &Field::ALL).fields {
        let by = if d.policies.is_empty() {
            "no policy permits (deny by default)".to_owned()
        } else {
            d.policies.join(", ")
        };
        println!(
            "{:<14} {:<9} {by}",
            d.field.as_str(),
            format!("{:?}", d.outcome).to_lowercase()
        );
    }
    Ok(ExitCode::SUCCESS)
}
