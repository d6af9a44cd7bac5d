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

    /// Adds `n` to the shared counter `key` for the window that starts at `window_start`
    /// (milliseconds); that window's new count and the count of the window that started at
    /// `previous_start`. PostgreSQL only.
    async fn count_shared(
        &self,
        key: &[u8],
        window_start: i64,
        previous_start: i64,
        n: u32,
    ) -> StoreResult<(u64, u64)>;

    /// Drops counters of windows that started before `before` (milliseconds) and buckets not
    /// taken from since then. PostgreSQL only.
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
        Ok(Some(Box::new(PgFeed { listener })))
    }

    async fn signer_lease(&self) -> StoreResult<Option<Box<dyn Lease>>> {
        use sqlx::Connection;
        let Some(url) = self.pg_url.as_deref() else {
            return Ok(Some(Box::new(Always)));
        };
        // A session-level advisory lock on a connection of its own: released by PostgreSQL the
        // moment that connection ends, so a server killed mid-run frees the lease at once.
        let mut conn = sqlx::PgConnection::connect(url).await?;
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
            "INSERT INTO shared_buckets AS b (key, tokens, granted, at)
             VALUES ($1, $3 - LEAST($4, floor($3)), LEAST($4, floor($3)), statement_timestamp())
             ON CONFLICT (key) DO UPDATE SET
               tokens = {refilled} - LEAST($4, floor({refilled})),
               granted = LEAST($4, floor({refilled})),
               at = GREATEST(b.at, statement_timestamp())
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

    async fn count_shared(
        &self,
        key: &[u8],
        window_start: i64,
        previous_start: i64,
        n: u32,
    ) -> StoreResult<(u64, u64)> {
        if self.backend != Backend::Postgres {
            return Err(postgres_only("shared counters"));
        }
        let row = sqlx::query(
            "WITH up AS (
               INSERT INTO shared_counters (key, window_start, count) VALUES ($1, $2, $3)
               ON CONFLICT (key, window_start) DO UPDATE SET count = shared_counters.count + $3
               RETURNING count)
             SELECT (SELECT count FROM up),
                    COALESCE((SELECT count FROM shared_counters
                              WHERE key = $1 AND window_start = $4), 0)",
        )
        .bind(key)
        .bind(window_start)
        .bind(i64::from(n))
        .bind(previous_start)
        .fetch_one(&self.pool)
        .await?;
        let (current, previous): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
        Ok((current.max(0) as u64, previous.max(0) as u64))
    }

    async fn prune_shared(&self, before: i64) -> StoreResult<u64> {
        if self.backend != Backend::Postgres {
            return Err(postgres_only("shared counters"));
        }
        let counters = sqlx::query("DELETE FROM shared_counters WHERE window_start < $1")
            .bind(before)
            .execute(&self.pool)
            .await?
            .rows_affected();
        let buckets =
            sqlx::query("DELETE FROM shared_buckets WHERE at < to_timestamp($1::float8 / 1000.0)")
                .bind(before)
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(counters + buckets)
    }
}

/// Notifications on a connection of their own.
struct PgFeed {
    listener: sqlx::postgres::PgListener,
}

#[async_trait::async_trait]
impl ChangeFeed for PgFeed {
    async fn next(&mut self) -> StoreResult<Feed> {
        // `try_recv` says when the connection was lost (`None`); the next call connects again
        // and listens anew. Anything announced in between is gone, hence the gap.
        match self.listener.try_recv().await? {
            Some(n) => Ok(Feed::Message(n.payload().to_owned())),
            None => Ok(Feed::Gap),
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

/// How long the lease's connection has to answer before the lease counts as lost.
const LEASE_PING: Duration = Duration::from_secs(2);

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
