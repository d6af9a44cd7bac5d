//! PostgreSQL point reads on connections kept apart from the pool.
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
//! have ended it. Everything else still goes through the pool.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::AnyConnection;
use sqlx::Connection;
use sqlx::any::AnyConnectOptions;

use crate::StoreResult;

/// Connections kept between reads, and the most lent at once (more readers wait their turn).
const KEEP: usize = 8;

/// How long a kept connection may sit unused before it is asked to answer when lent again.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Read connections to one PostgreSQL database, opened as needed and kept for the next read.
pub(crate) struct Conns {
    opts: AnyConnectOptions,
    idle: Mutex<Vec<(AnyConnection, Instant)>>,
    turns: tokio::sync::Semaphore,
}

impl std::fmt::Debug for Conns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conns").finish_non_exhaustive()
    }
}

/// A connection lent for one read: closed when dropped, kept only through [`Lent::keep`].
pub(crate) struct Lent<'a> {
    conn: AnyConnection,
    home: &'a Conns,
    _turn: tokio::sync::SemaphorePermit<'a>,
    /// Opened for this loan (not kept from an earlier one).
    fresh: bool,
}

impl Conns {
    /// Read connections opened with `opts`.
    pub(crate) fn new(opts: AnyConnectOptions) -> Self {
        Self {
            opts,
            idle: Mutex::new(Vec::new()),
            turns: tokio::sync::Semaphore::new(KEEP),
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<(AnyConnection, Instant)>> {
        // A panic while the list was held leaves it intact (a push or a pop).
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A connection known to have answered within the last second, or a new one.
    pub(crate) async fn lend(&self) -> StoreResult<Lent<'_>> {
        let turn = self
            .turns
            .acquire()
            .await
            .map_err(|_| crate::StoreError::Unavailable("the point reads' connections"))?;
        loop {
            let kept = self.idle().pop();
            let Some((mut conn, since)) = kept else { break };
            if since.elapsed() < PING_AFTER_IDLE || conn.ping().await.is_ok() {
                return Ok(Lent {
                    conn,
                    home: self,
                    _turn: turn,
                    fresh: false,
                });
            }
            // Ended while it waited (a restarted database): dropped, the next one tried.
        }
        let conn = AnyConnection::connect_with(&self.opts).await?;
        Ok(Lent {
            conn,
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

    /// After the read on this loan failed with `e`: a new connection to read once more on if
    /// this one was kept from an earlier read (the database may have ended it within the second
    /// it is trusted unasked), else `e`.
    pub(crate) async fn renew(self, e: crate::StoreError) -> StoreResult<Self> {
        if self.fresh {
            return Err(e);
        }
        tracing::debug!(error = %e, "a kept read connection failed; reading on a new one");
        let Lent { home, _turn, .. } = self;
        Ok(Lent {
            conn: AnyConnection::connect_with(&home.opts).await?,
            home,
            _turn,
            fresh: true,
        })
    }

    /// Gives the connection back after a read that completed.
    pub(crate) fn keep(self) {
        let Lent { conn, home, .. } = self;
        let mut idle = home.idle();
        if idle.len() < KEEP {
            idle.push((conn, Instant::now()));
        }
    }
}
