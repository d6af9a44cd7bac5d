//! SQLite: the embedded default. WAL mode, so readers never wait for the writer.
//!
//! The decision log lives in a file of its own beside the data (`steward.db` →
//! `steward-audit.db`). In WAL mode every commit to a file makes each other connection to it drop
//! its whole page cache at its next read; with one decision committed per read, readers of a
//! shared file re-read every B-tree page from the OS on nearly every request. Measured with
//! `steward bench read`: 0.32 of the plain baseline with the log in the data file, 0.57 with it
//! in its own. Reads write nothing to the data file, so their records lose nothing by it.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Executor;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};

use crate::{Backend, SqlStore, StoreResult};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static LOG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite-log");

/// Opens (creating if needed) the SQLite database at `url` (`sqlite://path`) and migrates it.
pub async fn open(url: &str) -> StoreResult<SqlStore> {
    create_private(url)?;
    if let Some((_, log_path)) = log_file(url) {
        create_private(&format!("sqlite://{log_path}"))?;
    }
    let pool = pool_of(url, 8, Checkpoints::OnCommit).await?;
    MIGRATOR.run(&pool).await?;
    let store = match log_file(url) {
        Some((log_url, log_path)) => {
            let log_pool = pool_of(&log_url, 1, Checkpoints::Apart).await?;
            LOG_MIGRATOR.run(&log_pool).await?;
            carry_over_decisions(&pool, &log_path).await?;
            let store = SqlStore::new(
                pool,
                log_pool,
                Backend::Sqlite,
                file_path(url).map(|data| (data, log_path.as_str())),
            );
            let checkpointer = pool_of(&log_url, 1, Checkpoints::Apart).await?;
            spawn_checkpointer(checkpointer, store.alive());
            store
        }
        // The audit log needs a file of its own beside the data (see above).
        None => {
            return Err(crate::StoreError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "SQLite needs a database file (sqlite://PATH), not an in-memory database",
            )));
        }
    };
    Ok(store)
}

/// Who copies the WAL back into the database file.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Checkpoints {
    /// SQLite's default: the commit that fills the WAL past 1,000 pages does it.
    OnCommit,
    /// A task of its own ([`spawn_checkpointer`]); commits never do.
    Apart,
}

/// How often the decision log's WAL is copied back into its file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// WAL frames (pages) past which the checkpointer restarts the decision log's WAL: 64 MiB at
/// SQLite's 4 KiB pages.
const WAL_RESTART_FRAMES: i64 = 16_384;

/// Checkpoints the decision log apart from its commits, until the store is dropped.
///
/// A checkpoint copies the WAL into the file and syncs it: milliseconds on a busy disk. Done by
/// the committing connection (SQLite's default), it stalls every read waiting for its decision
/// record; a PASSIVE checkpoint from another connection runs beside the writer instead. But a
/// PASSIVE checkpoint never starts the WAL over while appends keep coming (some frame is always
/// newer than the checkpoint), so under sustained load the WAL and its index grew without end:
/// 3.9 GB in three and a half minutes of `steward bench soak`, and the index's shared memory with
/// it. Past [`WAL_RESTART_FRAMES`], a RESTART checkpoint waits for the current append, copies
/// the few frames the PASSIVE ones left, and makes the next append start the WAL over from its
/// beginning, so the file stays near that size: one short pause of the appends every few seconds
/// of heavy load instead of a file that fills the disk. (TRUNCATE, which also shrinks the file,
/// measured a higher p99 in the same soak: 29–34 ms against 18–23 ms.)
fn spawn_checkpointer(pool: sqlx::AnyPool, alive: std::sync::Weak<()>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while alive.upgrade().is_some() {
            tick.tick().await;
            let frames = sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(&pool)
                .await;
            let result = match frames {
                Ok((_, log, _)) if log > WAL_RESTART_FRAMES => {
                    sqlx::query("PRAGMA wal_checkpoint(RESTART)")
                        .execute(&pool)
                        .await
                        .map(drop)
                }
                other => other.map(drop),
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, "decision log checkpoint failed; will retry");
            }
        }
        pool.close().await;
    });
}

/// Creates the database file of `url` readable by its owner only, if it does not exist yet.
/// SQLite gives its -wal and -shm files the permissions of the database file, so those follow.
fn create_private(url: &str) -> StoreResult<()> {
    let Some(path) = url
        .strip_prefix("sqlite://")
        .and_then(|p| p.split('?').next())
        .filter(|p| !p.is_empty() && !p.contains(":memory:"))
    else {
        return Ok(());
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(crate::StoreError::Io(e)),
    }
}

/// The database file of `url`, unless it is in memory.
fn file_path(url: &str) -> Option<&str> {
    let path = url.strip_prefix("sqlite://")?.split('?').next()?;
    (!path.is_empty() && !path.contains(":memory:")).then_some(path)
}

/// The decision log's file beside the data file of `url`: its URL and path.
fn log_file(url: &str) -> Option<(String, String)> {
    let path = file_path(url)?;
    let log = match path.strip_suffix(".db") {
        Some(stem) => format!("{stem}-audit.db"),
        None => format!("{path}-audit"),
    };
    Some((format!("sqlite://{log}"), log))
}

/// Moves decision records that builds before the split kept in the data file into the log's
/// file, then drops the old table. Idempotent: a crash between the two copies again.
async fn carry_over_decisions(pool: &sqlx::AnyPool, log_path: &str) -> StoreResult<()> {
    let legacy: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'access_decisions'",
    )
    .fetch_one(pool)
    .await?;
    if legacy == 0 {
        return Ok(());
    }
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM access_decisions")
        .fetch_one(pool)
        .await?;
    if rows > 0 {
        // ATTACH from the data file's side: the log file is the one written.
        let mut conn = pool.acquire().await?;
        let quoted = log_path.replace('\'', "''");
        conn.execute(sqlx::AssertSqlSafe(format!(
            "ATTACH DATABASE '{quoted}' AS log"
        )))
        .await?;
        let copied = conn
            .execute(
                "INSERT OR IGNORE INTO log.access_decisions SELECT * FROM main.access_decisions",
            )
            .await;
        conn.execute("DETACH DATABASE log").await?;
        copied?;
    }
    sqlx::query("DROP TABLE access_decisions")
        .execute(pool)
        .await?;
    Ok(())
}

/// A connection pool to the SQLite database at `url`, with Steward's settings (WAL, busy
/// timeout, secure delete) and no migration. Benchmarks use it for their plain baselines.
pub async fn pool(url: &str) -> StoreResult<sqlx::AnyPool> {
    pool_of(url, 8, Checkpoints::OnCommit).await
}

async fn pool_of(url: &str, size: u32, checkpoints: Checkpoints) -> StoreResult<sqlx::AnyPool> {
    sqlx::any::install_default_drivers();
    let url = if url.contains('?') {
        url.to_owned()
    } else {
        format!("{url}?mode=rwc")
    };
    let opts = AnyConnectOptions::from_str(&url)?;
    let pool = AnyPoolOptions::new()
        .max_connections(size)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(move |conn, _| {
            Box::pin(async move {
                // busy_timeout first: switching to WAL needs the lock other connections may hold.
                conn.execute("PRAGMA busy_timeout = 10000").await?;
                conn.execute("PRAGMA journal_mode = WAL").await?;
                // NORMAL is durable in WAL mode except for the last transactions on power loss.
                conn.execute("PRAGMA synchronous = NORMAL").await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                // 64 MiB of page cache per connection: blind indexes are keyed by MACs, which are
                // uniformly random, so their inserts touch pages all over the tree; the default
                // 2 MiB cache thrashes on them.
                conn.execute("PRAGMA cache_size = -65536").await?;
                // Overwrite deleted content with zeros, so erased ciphertext does not linger in
                // free pages of the file.
                conn.execute("PRAGMA secure_delete = ON").await?;
                if checkpoints == Checkpoints::Apart {
                    conn.execute("PRAGMA wal_autocheckpoint = 0").await?;
                }
                if let Ok(m) = std::env::var("STEWARD_MMAP") {
                    conn.execute(sqlx::AssertSqlSafe(format!("PRAGMA mmap_size = {m}")))
                        .await?;
                }
                Ok(())
            })
        })
        .connect_with(opts)
        .await?;
    Ok(pool)
}
