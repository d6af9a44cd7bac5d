//! `steward erase`, `steward backup` and `steward restore`.
//!
//! A backup holds the two SQLite databases (data and audit log) and nothing else: not the master
//! key, not the audit signing key, not the erasure journal. Restoring one replays the journal,
//! so a customer erased after the backup was taken stays erased.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::{StoreArgs, open};

/// The files a backup holds, by their names in the data directory.
const DATA_DB: &str = "steward.db";
const LOG_DB: &str = "steward-audit.db";
/// The audit log's by-customer index: derived from the log, so not backed up; a restore removes
/// it and the server rebuilds it from the restored entries.
const INDEX_DB: &str = "steward-audit-index.db";

/// `steward erase`.
#[derive(Args)]
pub struct EraseArgs {
    /// The customer to erase.
    #[arg(long)]
    customer: String,
    #[command(flatten)]
    store: StoreArgs,
}

/// `steward backup`.
#[derive(Args)]
pub struct BackupArgs {
    /// The backup file to create (a ZIP of the two databases).
    file: PathBuf,
    #[command(flatten)]
    store: StoreArgs,
}

/// `steward restore`.
#[derive(Args)]
pub struct RestoreArgs {
    /// The backup file `steward backup` made. Omit with `--replay-only`.
    #[arg(required_unless_present = "replay_only")]
    file: Option<PathBuf>,
    /// Replace an existing database in the data directory.
    #[arg(long)]
    force: bool,
    /// Only replay the erasure journal against the configured database (after restoring a
    /// PostgreSQL dump with pg_restore, or copying files back by hand).
    #[arg(long)]
    replay_only: bool,
    #[command(flatten)]
    store: StoreArgs,
}

/// Erases one customer by crypto-shredding and prints the disposal record.
pub async fn erase(args: EraseArgs) -> anyhow::Result<ExitCode> {
    let id: steward_domain::CustomerId = args
        .customer
        .parse()
        .map_err(|_| anyhow::anyhow!("--customer: not a customer id"))?;
    let (vault, operator) = open::vault(&args.store).await?;
    let report = vault
        .erase_customer(operator.acting("erase").into(), id)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    vault
        .audit()
        .flush()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}

/// Writes a consistent backup of the running (or stopped) SQLite databases.
pub async fn backup(args: BackupArgs) -> anyhow::Result<ExitCode> {
    if args.file.exists() {
        anyhow::bail!("{} exists; choose a new file", args.file.display());
    }
    let store = open::store(&args.store).await?;
    let dir = tempfile::tempdir_in(
        args.file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
    )
    .context("creating a scratch directory beside the backup")?;
    let (data, log) = (dir.path().join(DATA_DB), dir.path().join(LOG_DB));
    // Recorded before the copy, so the backup holds the record of itself (PostgreSQL is backed
    // up with pg_dump, which `backup_into` refuses).
    if store.backend() == steward_store::Backend::Sqlite {
        // The entry is tagged under a key the master key unwraps.
        let (ring, _) = steward_service::keys::load_keyring(&args.store.key_file(), false)
            .context("loading the master key (the backup is recorded in the audit log)")?;
        steward_service::record_operator_act(&store, &ring, "backup", "backup")
            .await
            .map_err(|e| anyhow::anyhow!("recording the backup in the audit log: {e}"))?;
    }
    store
        .backup_into(&data, &log)
        .await
        .map_err(|e| anyhow::anyhow!("backing up: {e}"))?;
    let file = create_owner_only(&args.file)?;
    let mut zip = zip::ZipWriter::new(file);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o600);
    for (name, path) in [(DATA_DB, &data), (LOG_DB, &log)] {
        zip.start_file(name, opts)?;
        let mut f = std::fs::File::open(path)?;
        std::io::copy(&mut f, &mut zip)?;
    }
    zip.finish()?.sync_all()?;
    eprintln!(
        "Backed up to {}. It holds no keys and no erasure journal: keep the master key, the audit \
         signing key and the journal apart from it.",
        args.file.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn create_owner_only(path: &Path) -> anyhow::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
        .with_context(|| format!("creating {}", path.display()))
}

/// Restores a backup into a stopped server's data directory, then replays the erasure journal.
pub async fn restore(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    if let Some(file) = &args.file {
        if args.store.database_url.is_some() {
            anyhow::bail!(
                "a backup restores the SQLite databases of --data-dir; for PostgreSQL, restore the dump with pg_restore, then run `steward restore --replay-only`"
            );
        }
        unpack(file, &args.store.data_dir, args.force)?;
    }
    let (vault, _) = open::vault(&args.store).await?;
    let again = vault
        .replay_erasures()
        .await
        .map_err(|e| anyhow::anyhow!("replaying the erasure journal: {e}"))?;
    vault
        .audit()
        .flush()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    eprintln!("Restored. Erasures replayed from the journal: {again}.");
    Ok(ExitCode::SUCCESS)
}

/// Puts the backup's databases in place of those in `dir`.
fn unpack(file: &Path, dir: &Path, force: bool) -> anyhow::Result<()> {
    let f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let mut zip = zip::ZipArchive::new(f).context("the backup is not a Steward backup (ZIP)")?;
    if dir.join(DATA_DB).exists() && !force {
        anyhow::bail!(
            "{} already holds a database; stop the server and pass --force to replace it",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir)?;
    // The index belongs to the log being replaced: gone before the restored log is in place,
    // so that no crash in between leaves it beside a log it does not describe.
    for suffix in ["", "-wal", "-shm"] {
        let path = dir.join(format!("{INDEX_DB}{suffix}"));
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("removing {}", path.display()));
            }
            _ => {}
        }
    }
    for name in [DATA_DB, LOG_DB] {
        let mut entry = zip
            .by_name(name)
            .with_context(|| format!("the backup holds no {name}"))?;
        let staged = dir.join(format!("{name}.restoring"));
        let mut out = create_owner_only_replacing(&staged)?;
        let mut header = [0u8; 16];
        entry.read_exact(&mut header)?;
        if &header != b"SQLite format 3\0" {
            anyhow::bail!("{name} in the backup is not an SQLite database");
        }
        out.write_all(&header)?;
        std::io::copy(&mut entry, &mut out)?;
        out.sync_all()?;
        // The old database's write-ahead log must not be applied to the restored file.
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(dir.join(format!("{name}{suffix}")));
        }
        std::fs::rename(&staged, dir.join(name))?;
    }
    Ok(())
}

fn create_owner_only_replacing(path: &Path) -> anyhow::Result<std::fs::File> {
    let _ = std::fs::remove_file(path);
    create_owner_only(path)
}
