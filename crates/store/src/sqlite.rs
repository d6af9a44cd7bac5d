//! SQLite: the embedded default. WAL mode, so readers never wait for the writer.
//!
//! The decision log lives in a file of its own beside the data (`steward.db` →
//! `steward-audit.db`). In WAL mode every commit to a file makes each other connection to it drop
//! its whole page cache at its next read; with one decision committed per read, readers of a
//! shared file re-read every B-tree page from the OS on nearly every request. Measured with
//! `steward bench read`: 0.32 of the plain baseline with the log in the data file, 0.57 with it
//! in its own. Reads write nothing to the data file, so their records lose nothing by it.
//!
//! The log's by-customer index has a third file (`steward-audit-index.db`, with the log attached
//! for its queries): see `migrations/sqlite-index` for why.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Executor;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};

use crate::{Backend, SqlStore, StoreResult};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static LOG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite-log");
static INDEX_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite-index");

/// Most memory SQLite takes in the whole process, all connections together (MiB;
/// `STEWARD_SQLITE_MEMORY_MIB` overrides). Each connection may cache up to 64 MiB and a server
/// keeps about twenty: unbounded, `steward serve` held 287 MiB after a minute of reads over
/// 1,000,000 customers, mostly copies of pages the operating system's cache holds anyway. At 32
/// MiB it held 130 MiB and served more reads (15.7k/s against 14.6k/s, `wrk`, same data), and a
/// 1,000,000-row import ran no slower (`bench import`).
const SQLITE_MEMORY_MIB: i64 = 32;

/// Sets SQLite's soft heap limit for this process (it is process-wide: the pools' connections
/// and the store's own rusqlite connections share it), past which caches recycle their pages
/// instead of growing.
async fn limit_memory(pool: &sqlx::AnyPool) -> StoreResult<()> {
    let mib = std::env::var("STEWARD_SQLITE_MEMORY_MIB")
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|m| *m > 0)
        .unwrap_or(SQLITE_MEMORY_MIB);
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "PRAGMA soft_heap_limit = {}",
        mib * 1024 * 1024
    )))
    .execute(pool)
    .await?;
    Ok(())
}

/// Opens (creating if needed) the SQLite database at `url` (`sqlite://path`) and migrates it.
pub async fn open(url: &str) -> StoreResult<SqlStore> {
    create_private(url)?;
    if let Some((_, log_path)) = log_file(url) {
        create_private(&format!("sqlite://{log_path}"))?;
        create_private(&format!("sqlite://{}", index_file(&log_path)))?;
    }
    let pool = pool_of(url, 8, Checkpoints::OnCommit, None, Scrub::Yes).await?;
    limit_memory(&pool).await?;
    MIGRATOR.run(&pool).await?;
    let store = match log_file(url) {
        Some((log_url, log_path)) => {
            let log_pool = pool_of(&log_url, 1, Checkpoints::Apart, None, Scrub::Yes).await?;
            // Two connections: the indexer's, and one for the queries that read the index.
            let index_pool = pool_of(
                &format!("sqlite://{}", index_file(&log_path)),
                2,
                Checkpoints::OnCommit,
                Some(&log_path),
                // Pairs of a customer id and an entry index, which the log holds too: zeroing
                // what the merges of its runs free would double their writes for nothing.
                Scrub::No,
            )
            .await?;
            INDEX_MIGRATOR.run(&index_pool).await?;
            // Before the log's migrations drop the index it carried until now.
            carry_over_index(&index_pool).await?;
            LOG_MIGRATOR.run(&log_pool).await?;
            carry_over_decisions(&pool, &log_path).await?;
            let store = SqlStore::new(
                pool,
                log_pool,
                index_pool,
                Backend::Sqlite,
                file_path(url).map(|data| (data, log_path.as_str())),
            );
            let checkpointer = pool_of(&log_url, 1, Checkpoints::Apart, None, Scrub::Yes).await?;
            spawn_checkpointer(checkpointer, store.alive(), store.wal_restart.clone());
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

/// Whether a file's deleted content is overwritten with zeros (`secure_delete`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scrub {
    /// Every file that holds anything erasable.
    Yes,
    /// Only a file that holds nothing its source does not hold too.
    No,
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

/// WAL frames (pages) past which the decision log's WAL is started over: 4 MiB at SQLite's
/// 4 KiB pages. Small on purpose: the appender's last checkpoint before a restart costs about
/// 2.3 µs per frame of the WAL whatever the checkpointer copied already (measured on these
/// machines: 4 ms at 1,800 frames, 25 ms at 17,000), and every read waits it out; the time spent
/// in it per second is the same at any size, so many short pauses beat a few long ones.
const WAL_RESTART_FRAMES: i64 = 1_024;

/// WAL frames past which the checkpointer forces the restart itself (RESTART, which holds the
/// appends back while it runs), should the appender's way keep failing (a reader holding an old
/// snapshot for long): 64 MiB, the bound before issue 19.
const WAL_FORCE_FRAMES: i64 = 16_384;

/// Checkpoints the decision log apart from its commits, until the store is dropped.
///
/// A checkpoint copies the WAL into the file and syncs it: milliseconds on a busy disk. Done by
/// the committing connection (SQLite's default), it stalls every read waiting for its decision
/// record; a PASSIVE checkpoint from another connection runs beside the writer instead. But the
/// WAL starts over only when a write begins with every frame already copied back, and under
/// sustained load some append always lands between the checkpoint and the next write, so the
/// WAL grew without end (3.9 GB in three and a half minutes of `steward bench soak`). A RESTART
/// checkpoint past 64 MiB bounded it, but it holds the appends back while it runs: 30–100 ms
/// every four seconds at 12,000 reads/s, which every read in flight waited out (issue 19).
///
/// So past [`WAL_RESTART_FRAMES`], once a PASSIVE checkpoint has copied the whole WAL, this sets
/// `restart`; the appender, before its next append, copies the frames appended since (its own
/// PASSIVE checkpoint, a few milliseconds at this size: see [`WAL_RESTART_FRAMES`]) and its write
/// then starts the WAL over. Past [`WAL_FORCE_FRAMES`] the RESTART is forced as before.
fn spawn_checkpointer(
    pool: sqlx::AnyPool,
    alive: std::sync::Weak<()>,
    restart: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while alive.upgrade().is_some() {
            tick.tick().await;
            let t = std::time::Instant::now();
            let frames = sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(&pool)
                .await;
            if let Ok((busy, log, copied)) = &frames {
                tracing::trace!(
                    busy,
                    log,
                    copied,
                    ms = t.elapsed().as_secs_f64() * 1e3,
                    "decision log checkpoint"
                );
            }
            let result = match frames {
                Ok((_, log, copied)) if log > WAL_RESTART_FRAMES && log <= WAL_FORCE_FRAMES => {
                    if copied == log {
                        restart.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    Ok(())
                }
                Ok((_, log, _)) if log > WAL_FORCE_FRAMES => {
                    let t = std::time::Instant::now();
                    let r = sqlx::query("PRAGMA wal_checkpoint(RESTART)")
                        .execute(&pool)
                        .await
                        .map(drop);
                    tracing::debug!(
                        frames = log,
                        ms = t.elapsed().as_secs_f64() * 1e3,
                        "decision log WAL restarted"
                    );
                    r
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

/// The by-customer index's file beside the log's file at `log_path`.
pub(crate) fn index_file(log_path: &str) -> String {
    match log_path.strip_suffix(".db") {
        Some(stem) => format!("{stem}-index.db"),
        None => format!("{log_path}-index"),
    }
}

/// Moves the by-customer index that installations before issue 19 kept in the log's file into
/// the index's own file, once, so that an upgrade does not leave every access log scanning the
/// whole log until the index is rebuilt. The log's next migration then drops the old tables.
async fn carry_over_index(index: &sqlx::AnyPool) -> StoreResult<()> {
    let legacy: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM log.sqlite_master WHERE type = 'table' AND name = 'audit_index_state'",
    )
    .fetch_one(index)
    .await?;
    if legacy == 0 {
        return Ok(());
    }
    let mut tx = index.begin().await?;
    let ours: i64 = sqlx::query_scalar("SELECT indexed FROM main.audit_index_state WHERE id = 1")
        .fetch_one(&mut *tx)
        .await?;
    if ours == 0 {
        sqlx::query("INSERT OR IGNORE INTO main.audit_by_customer (run, customer_id, idx) SELECT 0, customer_id, idx FROM log.audit_by_customer")
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE main.audit_index_state SET indexed = (SELECT indexed FROM log.audit_index_state WHERE id = 1) WHERE id = 1")
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
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
    pool_of(url, 8, Checkpoints::OnCommit, None, Scrub::Yes).await
}

/// A pool with Steward's settings; with `attach`, every connection also sees that database file
/// as schema `log` (unqualified names resolve to the pool's own file first).
async fn pool_of(
    url: &str,
    size: u32,
    checkpoints: Checkpoints,
    attach: Option<&str>,
    scrub: Scrub,
) -> StoreResult<sqlx::AnyPool> {
    let attach = attach.map(|p| format!("ATTACH DATABASE '{}' AS log", p.replace('\'', "''")));
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
            let attach = attach.clone();
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
                if scrub == Scrub::Yes {
                    conn.execute("PRAGMA secure_delete = ON").await?;
                }
                if checkpoints == Checkpoints::Apart {
                    conn.execute("PRAGMA wal_autocheckpoint = 0").await?;
                }
                if let Some(attach) = attach {
                    conn.execute(sqlx::AssertSqlSafe(attach)).await?;
                }
                Ok(())
            })
        })
        .connect_with(opts)
        .await?;
    Ok(pool)
}
