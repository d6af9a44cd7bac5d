//! What several servers on one PostgreSQL database share beyond the data: word of changes that
//! other servers keep in memory (`LISTEN/NOTIFY`), the lease that makes one of them the signer of
//! checkpoints (an advisory lock), and the counters behind the installation's limits.
//!
//! On SQLite one process serves the file, so changes need no word, the lease is always held and
//! limits are counted in memory, exactly.

use std::time::Duration;

use sqlx::Row;

use crate::{Backend, SqlStore, StoreError, StoreResult};

/// The channel changes are announced on.
const CHANNEL: &str = "steward_changes";

/// The advisory lock key of the checkpoint signer's lease (`'steward-signer'` as bytes).
const SIGNER_LOCK: i64 = 0x7374_6577_7369_676e;

/// What a change feed yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feed {
    /// A change another server (or this one) announced.
    Message(String),
    /// The feed was cut and is listening again: what was announced meanwhile is lost, so every
    /// cache must be dropped.
    Gap,
}

/// Changes announced by every server of the installation, as they commit.
#[async_trait::async_trait]
pub trait ChangeFeed: Send {
    /// The next change; [`Feed::Gap`] after the connection was lost and made again.
    async fn next(&mut self) -> StoreResult<Feed>;
}

/// The checkpoint signer's lease while this server holds it.
#[async_trait::async_trait]
pub trait Lease: Send {
    /// Whether the lease is still held (its connection alive); false once lost for good.
    async fn held(&mut self) -> bool;
}

/// What is left in a shared bucket after a take.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Taken {
    /// Whole units granted (at most what was asked for).
    pub granted: u32,
    /// Seconds until one more unit is in the bucket, when none was granted.
    pub wait_secs: f64,
}

/// The installation-wide side of running several servers on one database.
#[async_trait::async_trait]
pub trait ClusterStore: Send + Sync + 'static {
    /// Tells every server of the installation that `change` happened (after it committed).
    /// Nothing on SQLite, where this process is the only one.
    async fn announce(&self, change: &str) -> StoreResult<()>;

    /// A feed of the changes every server announces; `None` on SQLite.
    async fn changes(&self) -> StoreResult<Option<Box<dyn ChangeFeed>>>;

    /// Tries to take the checkpoint signer's lease: `Some` while this server holds it, `None`
    /// while another does. On SQLite always granted.
    async fn signer_lease(&self) -> StoreResult<Option<Box<dyn Lease>>>;

    /// Takes up to `want` units from the shared token bucket `key` (filled at `per_second`, up
    /// to `burst`), creating it full. PostgreSQL only: SQLite counts in memory.
    async fn take_shared(
        &self,
        key: &[u8],
        per_second: f64,
        burst: f64,
        want: u32,
    ) -> StoreResult<Taken>;

    /// Records that `key` met `item` at `now` (milliseconds; a later meeting moves the time)
    /// and returns how many distinct items `key` met since `since`. PostgreSQL only.
    async fn count_distinct(
        &self,
        key: &[u8],
        item: &[u8],
        now: i64,
        since: i64,
    ) -> StoreResult<u64>;

    /// Records one event of `key` at `now` (milliseconds) and returns how many `key` had since
    /// `since`, this one included. PostgreSQL only.
    async fn count_event(&self, key: &[u8], now: i64, since: i64) -> StoreResult<u64>;

    /// Takes back one event of `key` recorded at `at` (a reserved attempt that succeeded).
    /// PostgreSQL only.
    async fn take_back_event(&self, key: &[u8], at: i64) -> StoreResult<()>;

    /// Drops meetings and events before `before` (milliseconds) and buckets that have filled up
    /// again since their last take. PostgreSQL only.
    async fn prune_shared(&self, before: i64) -> StoreResult<u64>;
}

fn postgres_only(what: &'static str) -> StoreError {
    StoreError::Unsupported(what)
}

#[async_trait::async_trait]
impl ClusterStore for SqlStore {
    async fn announce(&self, change: &str) -> StoreResult<()> {
        if self.backend != Backend::Postgres {
            return Ok(());
        }
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(change)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn changes(&self) -> StoreResult<Option<Box<dyn ChangeFeed>>> {
        let Some(url) = self.pg_url.as_deref() else {
            return Ok(None);
        };
        let mut listener = sqlx::postgres::PgListener::connect(url).await?;
        listener.listen(CHANNEL).await?;
        let backend = backend_pid(&mut listener).await?;
        Ok(Some(Box::new(PgFeed { listener, backend })))
    }

    async fn signer_lease(&self) -> StoreResult<Option<Box<dyn Lease>>> {
        use sqlx::Connection;
        let Some(url) = self.pg_url.as_deref() else {
            return Ok(Some(Box::new(Always)));
        };
        // A session-level advisory lock on a connection of its own: released by PostgreSQL the
        // moment that connection ends, so a server killed mid-run frees the lease at once.
        let mut conn = sqlx::PgConnection::connect(url).await?;
        // If this server is cut off, PostgreSQL ends the session (and frees the lease) after
        // five quiet seconds instead of when TCP keepalive notices, hours later; the holder asks
        // every second. Before PostgreSQL 14 the setting does not exist: keepalive then decides.
        let _ = sqlx::query("SET idle_session_timeout = '5s'")
            .execute(&mut conn)
            .await;
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(SIGNER_LOCK)
            .fetch_one(&mut conn)
            .await?;
        if !got {
            let _ = conn.close().await;
            return Ok(None);
        }
        Ok(Some(Box::new(PgLease { conn: Some(conn) })))
    }

    async fn take_shared(
        &self,
        key: &[u8],
        per_second: f64,
        burst: f64,
        want: u32,
    ) -> StoreResult<Taken> {
        if self.backend != Backend::Postgres {
            return Err(postgres_only("shared limits"));
        }
        // One statement, so two servers taking at once cannot both spend the same units: refill
        // by the time since the last take (the database's clock, the one every server shares;
        // never negative when another server's statement stamped a later time), cap at the
        // burst, grant whole units, keep the rest. The row lock serialises the takes.
        let refilled = "LEAST($3, b.tokens + GREATEST(0, EXTRACT(EPOCH FROM statement_timestamp() - b.at)::float8) * $2)";
        let sql = format!(
            "INSERT INTO shared_buckets AS b (key, tokens, granted, at, per_second, burst)
             VALUES ($1, $3 - LEAST($4, floor($3)), LEAST($4, floor($3)), statement_timestamp(),
                     $2, $3)
             ON CONFLICT (key) DO UPDATE SET
               tokens = {refilled} - LEAST($4, floor({refilled})),
               granted = LEAST($4, floor({refilled})),
               at = GREATEST(b.at, statement_timestamp()),
               per_second = $2,
               burst = $3
             RETURNING tokens, granted"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(key)
            .bind(per_second)
            .bind(burst)
            .bind(f64::from(want))
            .fetch_one(&self.pool)
            .await?;
        let (left, granted): (f64, f64) = (row.try_get(0)?, row.try_get(1)?);
        let granted = granted.clamp(0.0, f64::from(want)) as u32;
        Ok(Taken {
            granted,
            wait_secs: if granted > 0 {
                0.0
            } else {
                (1.0 - left).max(0.0) / per_second
            },
        })
    }

    async fn count_distinct(
        &self,
        key: &[u8],
        item: &[u8],
        now: i64,
        since: i64,
    ) -> StoreResult<u64> {
        if self.backend != Backend::Postgres {
            return Err(postgres_only("shared counters"));
        }
        let mut tx = self.pool.begin().await?;
        lock_key(&mut tx, key).await?;
        sqlx::query(
            "INSERT INTO shared_seen (key, item, at) VALUES ($1, $2, $3)
             ON CONFLICT (key, item) DO UPDATE SET at = GREATEST(shared_seen.at, $3)",
        )
        .bind(key)
        .bind(item)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        count_and_commit(tx, "shared_seen", key, since).await
    }

    async fn count_event(&self, key: &[u8], now: i64, since: i64) -> StoreResult<u64> {
        if self.backend != Backend::Postgres {
            return Err(postgres_only("shared counters"));
        }
        let mut tx = self.pool.begin().await?;
        lock_key(&mut tx, key).await?;
        sqlx::query("INSERT INTO shared_events (key, at) VALUES ($1, $2)")
            .bind(key)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        count_and_commit(tx, "shared_events", key, since).await
    }

    async fn take_back_event(&self, key: &[u8], at: i64) -> StoreResult<()> {
        if self.backend != Backend::Postgres {
            return Err(postgres_only("shared counters"));
        }
        sqlx::query(
            "DELETE FROM shared_events WHERE id =
               (SELECT id FROM shared_events WHERE key = $1 AND at = $2 LIMIT 1)",
        )
        .bind(key)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn prune_shared(&self, before: i64) -> StoreResult<u64> {
        if self.backend != Backend::Postgres {
            return Err(postgres_only("shared counters"));
        }
        let mut gone = 0;
        for sql in [
            "DELETE FROM shared_seen WHERE at < $1",
            "DELETE FROM shared_events WHERE at < $1",
            // Only buckets that are full again: recreated full, they change nothing.
            "DELETE FROM shared_buckets WHERE at < to_timestamp($1::float8 / 1000.0)
               AND tokens + EXTRACT(EPOCH FROM statement_timestamp() - at)::float8 * per_second
                   >= burst",
        ] {
            gone += sqlx::query(sql)
                .bind(before)
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        Ok(gone)
    }
}

/// Serialises the counts of one key across servers until the transaction ends: each count then
/// sees every event recorded before it (two statements at once would each miss the other's).
async fn lock_key(tx: &mut sqlx::Transaction<'_, sqlx::Any>, key: &[u8]) -> StoreResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended(encode($1, 'hex'), 24))")
        .bind(key)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The rows of `key` in `table` (one of this module's, by name) at or after `since`; then commits.
async fn count_and_commit(
    mut tx: sqlx::Transaction<'_, sqlx::Any>,
    table: &'static str,
    key: &[u8],
    since: i64,
) -> StoreResult<u64> {
    let sql = format!("SELECT COUNT(*) FROM {table} WHERE key = $1 AND at >= $2");
    let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(key)
        .bind(since)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(count.max(0) as u64)
}

/// Notifications on a connection of their own.
struct PgFeed {
    listener: sqlx::postgres::PgListener,
    /// The server process of the listening session: another one means the listener connected
    /// again by itself, and what was announced in between is lost.
    backend: i32,
}

async fn backend_pid(listener: &mut sqlx::postgres::PgListener) -> StoreResult<i32> {
    Ok(sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(listener)
        .await?)
}

#[async_trait::async_trait]
impl ChangeFeed for PgFeed {
    async fn next(&mut self) -> StoreResult<Feed> {
        loop {
            // `try_recv` says when the connection was lost (`None`); the next call connects
            // again and listens anew. Anything announced in between is gone, hence the gap.
            // Quiet for a while, the connection is asked to answer: one that died without a
            // word (a partition, a dropped NAT entry) would otherwise wait here for ever while
            // the server believes it hears the others.
            match tokio::time::timeout(FEED_QUIET, self.listener.try_recv()).await {
                Ok(r) => {
                    return match r? {
                        Some(n) => Ok(Feed::Message(n.payload().to_owned())),
                        None => Ok(Feed::Gap),
                    };
                }
                Err(_) => {
                    let ping = backend_pid(&mut self.listener);
                    match tokio::time::timeout(LEASE_PING, ping).await {
                        Ok(Ok(pid)) if pid == self.backend => continue,
                        Ok(Ok(pid)) => {
                            // Connected again inside the wait that the timeout cut short.
                            self.backend = pid;
                            return Ok(Feed::Gap);
                        }
                        Ok(Err(e)) => return Err(e),
                        Err(_) => {
                            return Err(StoreError::Unavailable("the change feed's connection"));
                        }
                    }
                }
            }
        }
    }
}

/// The lease on SQLite: one process, always the signer.
struct Always;

#[async_trait::async_trait]
impl Lease for Always {
    async fn held(&mut self) -> bool {
        true
    }
}

/// The advisory lock's connection; the lease lasts as long as it answers.
struct PgLease {
    conn: Option<sqlx::PgConnection>,
}

/// How long the lease's (or the feed's) connection has to answer before it counts as lost.
const LEASE_PING: Duration = Duration::from_secs(2);

/// How long the change feed may be quiet before its connection is asked to answer.
const FEED_QUIET: Duration = Duration::from_secs(5);

#[async_trait::async_trait]
impl Lease for PgLease {
    async fn held(&mut self) -> bool {
        let Some(conn) = self.conn.as_mut() else {
            return false;
        };
        let ok = matches!(
            tokio::time::timeout(LEASE_PING, sqlx::query("SELECT 1").execute(&mut *conn)).await,
            Ok(Ok(_))
        );
        if !ok {
            // Whether or not PostgreSQL still holds the lock for it, this connection is not to
            // be trusted with it: dropped, the lock goes with the session.
            self.conn = None;
        }
        ok
    }
}
