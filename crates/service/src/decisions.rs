//! The decision log: every decided read is recorded durably before any of its data leaves.
//!
//! Group commit: reads hand their records to one writer task, which commits whatever has queued
//! up in a single transaction and then releases every read in that batch. Under load a commit
//! carries many reads, so recording costs little throughput; a read never returns before its
//! record is committed, and if the commit fails the read fails.

use steward_store::{DecisionRow, DynStore};
use tokio::sync::{mpsc, oneshot};

use crate::error::{ServiceError, ServiceResult};

/// Records queued before readers wait for room (backpressure).
const QUEUE: usize = 4096;
/// Most records in one batch: one INSERT statement (see `Store::insert_decisions`).
const BATCH: usize = 500;

type Pending = (DecisionRow, oneshot::Sender<bool>);

/// A handle to the writer task.
pub(crate) struct DecisionLog {
    tx: mpsc::Sender<Pending>,
}

impl DecisionLog {
    /// Starts the writer. It runs on a thread of its own (driving the runtime's I/O through its
    /// handle), so that a commit is never queued behind the requests it is holding up: on a busy
    /// runtime a writer task waited longer for its turn than for SQLite.
    pub(crate) fn start(store: DynStore) -> Self {
        let (tx, rx) = mpsc::channel::<Pending>(QUEUE);
        let handle = tokio::runtime::Handle::current();
        let spawned = std::thread::Builder::new()
            .name("decision-log".into())
            .spawn(move || handle.block_on(write_batches(rx, store)));
        if let Err(e) = spawned {
            // Without a writer every read fails (its record cannot commit): loud, and safe.
            tracing::error!(error = %e, "cannot start the decision log writer");
        }
        Self { tx }
    }

    /// Records one decision; returns once it is committed.
    pub(crate) async fn record(&self, row: DecisionRow) -> ServiceResult<()> {
        let (done, committed) = oneshot::channel();
        self.tx
            .send((row, done))
            .await
            .map_err(|_| ServiceError::DecisionLog)?;
        match committed.await {
            Ok(true) => Ok(()),
            _ => Err(ServiceError::DecisionLog),
        }
    }
}

/// Commits queued records in batches until every sender is gone.
async fn write_batches(mut rx: mpsc::Receiver<Pending>, store: DynStore) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let rows: Vec<DecisionRow> = batch.iter().map(|(r, _)| r.clone()).collect();
        let ok = match store.insert_decisions(&rows).await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, records = rows.len(), "recording access decisions failed");
                false
            }
        };
        for (_, done) in batch {
            let _ = done.send(ok);
        }
    }
}
