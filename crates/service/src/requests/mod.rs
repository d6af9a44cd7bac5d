//! The data-subject request ledger (access, rectification, erasure, restriction, objection,
//! portability): requests as they arrive, are verified and are answered, their deadlines, and
//! what the DPO is told of them. The steps a request takes (an erasure, a correction, an export)
//! are other contexts' and orchestrated by the vault (`rights.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use steward_domain::RequestId;
use steward_store::{AuditEntryRow, RequestRow};

use crate::error::ServiceResult;

pub(crate) mod dpo_notify;

/// The request ledger and the DPO's notices.
pub struct Requests {
    door: Arc<crate::door::Door>,
    store: Arc<dyn steward_store::RightsStore>,
    /// The alerts the DPO's badge counts.
    alerts: Arc<crate::alerts::Alerts>,
    /// Where the DPO is told of requests, alerts and deadlines.
    dpo: Arc<dpo_notify::DpoNotices>,
    /// Days a data-subject request has until its deadline.
    days: AtomicI64,
}

impl Requests {
    /// The ledger over `store`, telling the DPO through `dpo`.
    pub(crate) fn new(
        door: Arc<crate::door::Door>,
        store: Arc<dyn steward_store::RightsStore>,
        alerts: Arc<crate::alerts::Alerts>,
        dpo: Arc<dpo_notify::DpoNotices>,
    ) -> Self {
        Requests {
            door,
            store,
            alerts,
            dpo,
            days: AtomicI64::new(crate::rights::DEFAULT_DEADLINE_DAYS),
        }
    }

    fn door(&self) -> &crate::door::Door {
        &self.door
    }

    fn alerts(&self) -> &crate::alerts::Alerts {
        &self.alerts
    }

    /// Days a new request has until its deadline.
    pub fn set_request_deadline_days(&self, days: i64) {
        self.days.store(days.max(1), Ordering::Relaxed);
    }

    /// Days a new request has until its deadline, as set.
    pub(crate) fn deadline_days(&self) -> i64 {
        self.days.load(Ordering::Relaxed)
    }

    /// Where the DPO is told.
    pub(crate) fn dpo(&self) -> &dpo_notify::DpoNotices {
        &self.dpo
    }

    /// Records a new request with its audit entries.
    pub(crate) async fn insert(
        &self,
        row: &RequestRow,
        audit: &[AuditEntryRow],
    ) -> ServiceResult<()> {
        Ok(self.store.insert_request(row, audit).await?)
    }

    /// One request, undecided: the caller decides (the DPO's desk, the portal's own).
    pub(crate) async fn get(&self, id: RequestId) -> ServiceResult<Option<RequestRow>> {
        Ok(self.store.get_request(id).await?)
    }

    /// Claims one try of a request's e-mailed code (see `RightsStore::claim_request_code_try`).
    pub(crate) async fn claim_code_try(
        &self,
        id: RequestId,
        max_tries: i64,
    ) -> ServiceResult<Option<i64>> {
        Ok(self.store.claim_request_code_try(id, max_tries).await?)
    }

    /// Replaces a request's mutable columns if its status is still `was`, with its entries.
    pub(crate) async fn update(
        &self,
        row: &RequestRow,
        was: &str,
        audit: &[AuditEntryRow],
    ) -> ServiceResult<bool> {
        Ok(self.store.update_request(row, was, audit).await?)
    }

    /// Open and in-progress requests due before `due_before`, soonest first.
    pub(crate) async fn list(
        &self,
        due_before: Option<i64>,
        limit: u32,
    ) -> ServiceResult<Vec<RequestRow>> {
        Ok(self.store.list_requests(due_before, limit).await?)
    }
}
