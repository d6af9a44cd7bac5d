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

/// A pool of up to `max` connections. sqlx pings each connection as it lends it and again as it
/// takes it back: a round trip each, kept here for the pool's many less frequent queries (a
/// connection the database ended is found before a request uses it); the hottest reads and the
/// audit appends use connections of their own (`pg_read`).
fn pool_options(max: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(30))
}

/// Connects to the PostgreSQL database at `url` and migrates it.
pub async fn open(url: &str) -> StoreResult<SqlStore> {
    sqlx::any::install_default_drivers();
    let pool = pool_options(16)
        .connect_with(AnyConnectOptions::from_str(url)?)
        .await?;
    MIGRATOR.run(&pool).await?;
    let log_pool = pool_options(1)
        .connect_with(AnyConnectOptions::from_str(url)?)
        .await?;
    // The by-customer index's own connections: its steps never hold the log's.
    let index_pool = pool_options(2)
        .connect_with(AnyConnectOptions::from_str(url)?)
        .await?;
    let mut store = SqlStore::new(pool, log_pool, index_pool, Backend::Postgres, None);
    store.pg_url = Some(std::sync::Arc::from(url));
    store.pg_readers = Some(std::sync::Arc::new(crate::pg_read::Conns::new(
        AnyConnectOptions::from_str(url)?,
    )));
    Ok(store)
}
