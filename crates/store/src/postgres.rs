//! PostgreSQL: for several servers sharing one database.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};

use crate::{Backend, SqlStore, StoreResult};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Whether the PostgreSQL database at `url` holds a Steward installation (its keyring has a key),
/// asked before anything is migrated or made there.
pub async fn is_installed(url: &str) -> StoreResult<bool> {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await?;
    // No keyring table: nothing was ever migrated here.
    let found = sqlx::query("SELECT 1 FROM keyring LIMIT 1")
        .fetch_optional(&mut conn)
        .await
        .map(|r| r.is_some())
        .unwrap_or(false);
    conn.close().await?;
    Ok(found)
}

/// Connects to the PostgreSQL database at `url` and migrates it.
pub async fn open(url: &str) -> StoreResult<SqlStore> {
    sqlx::any::install_default_drivers();
    let opts = AnyConnectOptions::from_str(url)?;
    let pool = AnyPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(opts)
        .await?;
    MIGRATOR.run(&pool).await?;
    let log_opts = AnyConnectOptions::from_str(url)?;
    let log_pool = AnyPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(log_opts)
        .await?;
    // The by-customer index's own connections: its steps never hold the log's.
    let index_pool = AnyPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(AnyConnectOptions::from_str(url)?)
        .await?;
    let mut store = SqlStore::new(pool, log_pool, index_pool, Backend::Postgres, None);
    store.pg_url = Some(std::sync::Arc::from(url));
    Ok(store)
}
