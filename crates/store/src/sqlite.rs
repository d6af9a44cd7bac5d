//! SQLite: the embedded default. WAL mode, so readers never wait for the writer.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Executor;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};

use crate::{Backend, SqlStore, StoreResult};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// Opens (creating if needed) the SQLite database at `url` (`sqlite://path`) and migrates it.
pub async fn open(url: &str) -> StoreResult<SqlStore> {
    let pool = pool_of(url, 8).await?;
    MIGRATOR.run(&pool).await?;
    let log_pool = pool_of(url, 1).await?;
    Ok(SqlStore::new(pool, log_pool, Backend::Sqlite))
}

/// A connection pool to the SQLite database at `url`, with Steward's settings (WAL, busy
/// timeout, secure delete) and no migration. Benchmarks use it for their plain baselines.
pub async fn pool(url: &str) -> StoreResult<sqlx::AnyPool> {
    pool_of(url, 8).await
}

async fn pool_of(url: &str, size: u32) -> StoreResult<sqlx::AnyPool> {
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
        .after_connect(|conn, _| {
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
                Ok(())
            })
        })
        .connect_with(opts)
        .await?;
    Ok(pool)
}
