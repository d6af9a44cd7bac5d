//! Opening the store and the vault from the command line's arguments.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use steward_service::keys::{self, KeyFileStatus};
use steward_service::{Operator, Vault};
use steward_store::DynStore;

use crate::StoreArgs;

/// Logs go to stderr, as text or JSON; `RUST_LOG` overrides the level.
pub fn init_logging(json: bool) {
    init_logging_default(json, "info,sqlx=warn");
}

/// Logging for a bulk load. On SQLite its transactions hold the write lock for seconds at a
/// time, and sqlx reported each of the audit drain's statements waiting that out as a slow
/// statement — dozens of warnings about nothing wrong — so sqlx's statement log is off there
/// (`RUST_LOG` still shows it). On PostgreSQL a slow statement means contention with running
/// servers, worth seeing: logged as for any command.
pub fn init_bulk_logging(store: &StoreArgs) {
    let sqlite = store
        .database_url
        .as_deref()
        .is_none_or(|u| u.starts_with("sqlite:"));
    init_logging_default(
        false,
        if sqlite {
            "info,sqlx=warn,sqlx::query=off"
        } else {
            "info,sqlx=warn"
        },
    );
}

fn init_logging_default(json: bool, default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        b.json().try_init()
    } else {
        b.try_init()
    };
}

impl StoreArgs {
    /// The master key file.
    pub fn key_file(&self) -> PathBuf {
        self.master_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("master.key"))
    }

    /// The audit log's signing key file.
    pub fn audit_key_file(&self) -> PathBuf {
        self.audit_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("audit-signing.key"))
    }

    /// The erasure journal file.
    pub fn erasure_journal(&self) -> PathBuf {
        self.erasure_journal.clone().unwrap_or_else(|| {
            self.key_file()
                .parent()
                .map(|d| d.join("erasures.journal"))
                .unwrap_or_else(|| PathBuf::from("erasures.journal"))
        })
    }

    /// The database URL.
    pub fn url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("steward.db").display()))
    }
}

fn ensure_data_dir(args: &StoreArgs) -> anyhow::Result<()> {
    if !args.data_dir.exists() {
        std::fs::create_dir_all(&args.data_dir)
            .with_context(|| format!("creating data directory {}", args.data_dir.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&args.data_dir, std::fs::Permissions::from_mode(0o700))?;
        }
    }
    Ok(())
}

/// A new installation is made only on purpose: by `serve` (`create`) or with `--init`. Anything
/// else pointed at an SQLite database that does not exist, or a PostgreSQL database whose keyring
/// is empty, is refused before anything is made or migrated there.
async fn check_installation(args: &StoreArgs, create: bool) -> anyhow::Result<()> {
    if create || args.init {
        return Ok(());
    }
    let url = args.url();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let installed = steward_store::postgres::is_installed(&url)
            .await
            .map_err(|e| anyhow::anyhow!("opening the database: {e}"))?;
        if !installed {
            anyhow::bail!(
                "this PostgreSQL database holds no Steward installation; `steward serve` makes \
                 one, as does this command with --init"
            );
        }
        return Ok(());
    }
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .map(|p| p.split('?').next().unwrap_or(p))
        && !std::path::Path::new(path).exists()
    {
        anyhow::bail!(
            "no Steward installation at {path} (is --data-dir right?); `steward serve` makes one, \
             as does this command with --init"
        );
    }
    Ok(())
}

/// Opens the store (migrating it); refuses to make a new installation unless asked (`--init`).
pub async fn store(args: &StoreArgs) -> anyhow::Result<DynStore> {
    open_store(args, false).await
}

/// [`store`], making a new installation when `create` (as `serve` does).
async fn open_store(args: &StoreArgs, create: bool) -> anyhow::Result<DynStore> {
    check_installation(args, create).await?;
    ensure_data_dir(args)?;
    steward_store::open(&args.url())
        .await
        .map_err(|e| anyhow::anyhow!("opening the database: {e}"))
}

/// Opens the vault: loads the master key, opens the store. The operator's capability comes with
/// it: the command line holds the master key. Refuses to make a new installation unless asked
/// (`--init`); see [`vault_creating`].
pub async fn vault(args: &StoreArgs) -> anyhow::Result<(Vault, Operator)> {
    open_vault(args, false).await
}

/// [`vault`], making a new installation (database and master key) if there is none: `serve`.
pub async fn vault_creating(args: &StoreArgs) -> anyhow::Result<(Vault, Operator)> {
    open_vault(args, true).await
}

async fn open_vault(args: &StoreArgs, create: bool) -> anyhow::Result<(Vault, Operator)> {
    let key_file = args.key_file();
    let store = open_store(args, create).await?;
    // A new master key is made only for a database that holds no keys yet: for one that does, a
    // missing key file is a mistake to report, not a reason to mint a key that opens nothing.
    let existing = store
        .keyring_all()
        .await
        .map_err(|e| anyhow::anyhow!("reading the keyring: {e}"))?;
    if !key_file.exists()
        && let Some((_, k)) = existing.first()
    {
        anyhow::bail!(
            "no master key at {}, but this database holds data sealed under master key {}; \
             point --master-key-file (or STEWARD_MASTER_KEY_FILE) at that key",
            key_file.display(),
            k.master_key_id
        );
    }
    // An empty database (PostgreSQL: created by its administrator) and no key: a new
    // installation, made only on purpose.
    if existing.is_empty() && !key_file.exists() && !(create || args.init) {
        anyhow::bail!(
            "this database holds no Steward installation and there is no master key at {}; \
             `steward serve` makes one, as does this command with --init",
            key_file.display()
        );
    }
    let (keyring, status) = keys::load_keyring(&key_file, existing.is_empty())
        .with_context(|| "loading the master key")?;
    let policy = policy(args)?;
    warn_about_key(&key_file, status);
    let signer = audit_signer(args)?;
    let (vault, operator) =
        Vault::open(store, keyring, policy, signer)
            .await
            .map_err(|e| match &e {
                steward_service::ServiceError::Crypto(c) if c.unknown_master_key().is_some() => {
                    anyhow::anyhow!(
                        "the master key at {} is not the one this database was sealed with ({})",
                        key_file.display(),
                        c.unknown_master_key().unwrap_or_default()
                    )
                }
                e => anyhow::anyhow!("opening the vault: {e}"),
            })?;
    vault.erasures().use_journal(args.erasure_journal());
    Ok((vault, operator))
}

/// The name prefix of the audit log (its origin is this plus the key's fingerprint).
pub const AUDIT_ORIGIN_PREFIX: &str = "steward/audit";

/// The audit log's checkpoint signer, from its key file (created on first start).
pub fn audit_signer(args: &StoreArgs) -> anyhow::Result<steward_crypto::NoteSigner> {
    let path = args.audit_key_file();
    let (signer, created, open) =
        steward_crypto::NoteSigner::load_or_create(&path, AUDIT_ORIGIN_PREFIX)
            .with_context(|| "loading the audit signing key")?;
    if created {
        eprintln!(
            "WARNING: generated a new audit signing key at {}.\n         Keep it apart from the database: whoever holds it can sign checkpoints.",
            path.display()
        );
    }
    if open {
        eprintln!(
            "WARNING: {} is readable by other users; run `chmod 600 {}`.",
            path.display(),
            path.display()
        );
    }
    Ok(signer)
}

/// The fingerprint of the policy text `policy` loads, for the audit log.
pub fn policy_fingerprint(args: &StoreArgs) -> anyhow::Result<String> {
    let text = match &args.policy_file {
        Some(f) => std::fs::read(f).with_context(|| format!("reading {}", f.display()))?,
        None => steward_policy::DEFAULT_POLICIES.as_bytes().to_vec(),
    };
    Ok(steward_crypto::fingerprint(&text))
}

/// The access policy: the operator's file, or the shipped default; either must validate.
pub fn policy(args: &StoreArgs) -> anyhow::Result<std::sync::Arc<steward_policy::Policy>> {
    let policy = match &args.policy_file {
        Some(f) => {
            let text =
                std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
            steward_policy::Policy::from_sources(&text, steward_policy::SCHEMA)
                .map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?
        }
        None => steward_policy::Policy::default_policy()
            .map_err(|e| anyhow::anyhow!("the shipped policy: {e}"))?,
    };
    Ok(std::sync::Arc::new(policy))
}

fn warn_about_key(key_file: &std::path::Path, status: KeyFileStatus) {
    if status.created {
        eprintln!(
            "WARNING: generated a new master key at {}.\n         Back it up now, apart from the database: without it the data cannot be read.",
            key_file.display()
        );
    }
    if status.too_open {
        eprintln!(
            "WARNING: {} is readable by other users; run `chmod 600 {}`.",
            key_file.display(),
            key_file.display()
        );
    }
    if status.rotation_pending {
        eprintln!(
            "WARNING: a key rotation was interrupted; run `steward keys rotate` again to finish it."
        );
    }
}

/// `steward keys rotate`.
pub async fn rotate(args: &StoreArgs, batch: u32) -> anyhow::Result<ExitCode> {
    let key_file = args.key_file();
    anyhow::ensure!(
        key_file.exists(),
        "no master key at {}: nothing to rotate",
        key_file.display()
    );
    let store = store(args).await?;
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} data keys re-wrapped ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    // Ctrl-C stops after the batch in flight, leaving a rotation that the next run resumes.
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.store(true, Ordering::Relaxed);
        }
    });
    let outcome = keys::rotate(&store, &key_file, batch.max(1), |p| {
        bar.set_length(p.total);
        bar.set_position(p.done);
        if stop.load(Ordering::Relaxed) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .await
    .map_err(|e| {
        anyhow::anyhow!("rotation stopped: {e}; run `steward keys rotate` again to resume")
    })?;
    bar.finish();
    match outcome {
        keys::RotationOutcome::Done { master_key_id } => {
            eprintln!(
                "Rotated: every key is now wrapped by master key {master_key_id}, written to {}.\nThe old key is gone from that file; back up the new one now.",
                key_file.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        keys::RotationOutcome::Paused { done } => {
            eprintln!(
                "Interrupted after re-wrapping {done} keys; both keys stay loaded. Run `steward keys rotate` again to finish."
            );
            Ok(ExitCode::from(130))
        }
    }
}
