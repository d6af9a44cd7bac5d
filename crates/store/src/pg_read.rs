//! PostgreSQL point reads (and the audit appends) on connections kept apart from the pool.
//!
//! sqlx's pool pings every connection it takes back (a `Sync` and its answer: a round trip, not
//! configurable in 0.9), so each pooled query costs the database two wake-ups, not one. For the
//! hottest reads (a customer, their key and outlets; the access facts every decision asks for;
//! both by primary key) that doubled the messages PostgreSQL handles per authorised read — on a
//! database several servers share, the resource that runs out first. These reads therefore run
//! on a few connections of their own, lent one at a time and taken back without a ping when the
//! read completed. A read that failed, or was cancelled half-way (its request dropped), leaves
//! its connection in a state nobody knows: that connection is closed, never lent again. One idle
//! for a while is asked to answer before it is lent, as a restarted or failed-over database may
//! have ended it; a read that fails on a kept connection runs once more on a new one. The audit
//! appender uses the same kind of connection, asked to answer after a far shorter quiet, as a
//! write is never run twice. Everything else still goes through the pool.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::AnyConnection;
use sqlx::Connection;
use sqlx::any::AnyConnectOptions;

use crate::{StoreError, StoreResult};

/// Connections kept between reads, and the most lent at once (more readers wait their turn).
const KEEP: usize = 8;

/// How long a kept connection may sit unused before it is asked to answer when lent again.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// The same for a connection lent to write: a write is never run twice (a failure may have
/// come after its commit; the writer then refuses the batch's requests), so it is asked after
/// a far shorter quiet. Under load the appends follow each other closer than this and are never
/// delayed by a ping; a connection the database ended in the moment between two of them fails
/// one batch, closed.
const PING_BEFORE_WRITE_AFTER: Duration = Duration::from_millis(100);

/// How long a connection is kept at all (as sqlx's pool): one in steady use is still replaced,
/// so a database that moved (a failover behind the same name) is followed.
const MAX_AGE: Duration = Duration::from_secs(30 * 60);

/// How long to wait for a turn, a new connection, or an answer to a ping; and how long a read
/// or an append may take before its connection is given up (one that went half-open when the
/// database's machine vanished would otherwise hang until TCP gives up, many minutes later).
pub(crate) const DEADLINE: Duration = Duration::from_secs(10);

/// What a lent connection is for: how long it may have been quiet and still be lent unasked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// A read, run again on a new connection if a kept one fails.
    Read,
    /// A write, never run twice.
    Write,
}

/// Connections to one PostgreSQL database, opened as needed and kept for the next use.
pub(crate) struct Conns {
    opts: AnyConnectOptions,
    idle: Mutex<Vec<Kept>>,
    turns: tokio::sync::Semaphore,
}

/// A kept connection: when it was opened, when it was last given back.
struct Kept {
    conn: AnyConnection,
    opened: Instant,
    since: Instant,
}

impl std::fmt::Debug for Conns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conns").finish_non_exhaustive()
    }
}

/// A connection lent for one use: closed when dropped, kept only through [`Lent::keep`].
pub(crate) struct Lent<'a> {
    conn: AnyConnection,
    opened: Instant,
    home: &'a Conns,
    _turn: tokio::sync::SemaphorePermit<'a>,
    /// Opened for this loan (not kept from an earlier one).
    fresh: bool,
}

/// `f`, given up after [`DEADLINE`].
pub(crate) async fn within<T>(
    what: &'static str,
    f: impl std::future::Future<Output = StoreResult<T>>,
) -> StoreResult<T> {
    tokio::time::timeout(DEADLINE, f)
        .await
        .unwrap_or(Err(StoreError::Unavailable(what)))
}

impl Conns {
    /// Connections opened with `opts`.
    pub(crate) fn new(opts: AnyConnectOptions) -> Self {
        Self {
            opts,
            idle: Mutex::new(Vec::new()),
            turns: tokio::sync::Semaphore::new(KEEP),
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Kept>> {
        // A panic while the list was held leaves it intact (a push or a pop).
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn connect(&self) -> StoreResult<(AnyConnection, Instant)> {
        let conn = within("a new connection", async {
            Ok(AnyConnection::connect_with(&self.opts).await?)
        })
        .await?;
        Ok((conn, Instant::now()))
    }

    /// A kept connection that answered a moment ago (how long a moment, `check` says) or does
    /// when asked now, or a new one.
    pub(crate) async fn lend(&self, check: Check) -> StoreResult<Lent<'_>> {
        let turn = tokio::time::timeout(DEADLINE, self.turns.acquire())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or(StoreError::Unavailable("no connection was free"))?;
        loop {
            let kept = self.idle().pop();
            let Some(Kept {
                mut conn,
                opened,
                since,
            }) = kept
            else {
                break;
            };
            if opened.elapsed() >= MAX_AGE {
                continue;
            }
            let unasked = match check {
                Check::Read => PING_AFTER_IDLE,
                Check::Write => PING_BEFORE_WRITE_AFTER,
            };
            if since.elapsed() < unasked
                || within("a ping", async { Ok(conn.ping().await?) })
                    .await
                    .is_ok()
            {
                return Ok(Lent {
                    conn,
                    opened,
                    home: self,
                    _turn: turn,
                    fresh: false,
                });
            }
            // Ended while it waited (a restarted database, a machine gone): dropped, and the
            // others with it, as they most likely went the same way (asking each in turn could
            // keep a read waiting a deadline per connection).
            self.idle().clear();
            break;
        }
        let (conn, opened) = self.connect().await?;
        Ok(Lent {
            conn,
            opened,
            home: self,
            _turn: turn,
            fresh: true,
        })
    }
}

impl Lent<'_> {
    /// The lent connection.
    pub(crate) fn conn(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }

    /// After a read on this loan failed with `e`: a new connection to read once more on if
    /// this one was kept from an earlier read (the database may have ended it within the second
    /// it is trusted unasked), else `e`. Never for a write.
    pub(crate) async fn renew(self, e: StoreError) -> StoreResult<Self> {
        if self.fresh {
            return Err(e);
        }
        tracing::debug!(error = %e, "a kept read connection failed; reading on a new one");
        let Lent { home, _turn, .. } = self;
        let (conn, opened) = home.connect().await?;
        Ok(Lent {
            conn,
            opened,
            home,
            _turn,
            fresh: true,
        })
    }

    /// Gives the connection back after a use that completed.
    pub(crate) fn keep(self) {
        let Lent {
            conn, opened, home, ..
        } = self;
        let mut idle = home.idle();
        if idle.len() < KEEP {
            idle.push(Kept {
                conn,
                opened,
                since: Instant::now(),
            });
        }
    }
}
