//! Segments and what their evaluation reads (see the `segments` migration). The evaluation walks
//! the customers a page at a time, in id order, with each page's purchases, interactions,
//! consent events and data keys fetched by the same id range: bounded memory at any size, and
//! every query served by an index that starts with the customer id.

use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};
use steward_domain::{CustomerId, OutletId, ProfileField, SegmentId};

use crate::sql::id16;
use crate::{AuditEntryRow, SegmentStore, SqlStore, StoreError, StoreResult, StoredKey};

/// A segment as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentRow {
    /// Id.
    pub id: SegmentId,
    /// The name marketing gave it.
    pub name: String,
    /// The rules, as validated JSON.
    pub rules: String,
    /// The author's audit pseudonym.
    pub created_by: String,
    /// When (ms).
    pub created_at: i64,
}

/// What a segment's evaluation reads besides the customers' ids, outlets and restriction.
#[derive(Debug, Clone, Default)]
pub struct SegmentScan {
    /// Purchases' categories and times.
    pub purchases: bool,
    /// Purchases' sealed amounts and currencies (with the data keys to open them).
    pub amounts: bool,
    /// Interactions' channels and times.
    pub interactions: bool,
    /// The sealed preferred language (with the data keys).
    pub language: bool,
    /// Consent events (all purposes; the caller keeps the ones it asks about).
    pub consents: bool,
    /// Purchases' sealed items (with the data keys to open them): personalisation's baskets.
    pub items: bool,
    /// Purchases' sealed outlets (with the data keys): analytics' sales by outlet.
    pub outlets: bool,
}

impl SegmentScan {
    /// Whether the page needs the customers' data keys.
    pub(crate) fn needs_keys(&self) -> bool {
        self.amounts || self.language || self.items || self.outlets
    }

    /// The column of a purchase row that holds the sealed item, when asked for.
    pub(crate) fn item_column(&self) -> usize {
        if self.amounts { 6 } else { 4 }
    }

    /// The column of a purchase row that holds the sealed outlet, when asked for.
    pub(crate) fn outlet_column(&self) -> usize {
        self.item_column() + usize::from(self.items)
    }
}

/// One customer of a page.
#[derive(Debug, Clone)]
pub struct SegmentCustomer {
    /// Id.
    pub id: CustomerId,
    /// The outlets the customer belongs to (where registered), as the policy sees them.
    pub outlets: Vec<OutletId>,
    /// Processing restricted.
    pub restricted: bool,
    /// The sealed preferred language, when asked for.
    pub language: Option<Vec<u8>>,
}

/// One purchase of a page.
#[derive(Debug, Clone)]
pub struct SegmentPurchase {
    /// The customer.
    pub customer_id: CustomerId,
    /// The purchase's id (16 bytes): the sealed amount is bound to it.
    pub id: Vec<u8>,
    /// Product category (clear).
    pub category: String,
    /// When (ms).
    pub occurred_at: i64,
    /// The sealed amount and the currency, when asked for.
    pub amount: Option<(Vec<u8>, String)>,
    /// The sealed item, when asked for.
    pub item: Option<Vec<u8>>,
    /// The sealed outlet, when asked for.
    pub outlet: Option<Vec<u8>>,
}

/// One page of a segment's evaluation: customers in id order, and their facts.
#[derive(Debug, Clone, Default)]
pub struct SegmentPage {
    /// The customers (not erased), in id order.
    pub customers: Vec<SegmentCustomer>,
    /// Their purchases, in customer order.
    pub purchases: Vec<SegmentPurchase>,
    /// Their interactions: (customer, channel, time), in customer order.
    pub interactions: Vec<(CustomerId, String, i64)>,
    /// Their consent events: (customer, purpose, is a grant), in customer and ledger order.
    pub consents: Vec<(CustomerId, String, bool)>,
    /// Their wrapped data keys, when amounts or the language are asked for.
    pub keys: Vec<(CustomerId, StoredKey)>,
}

fn segment_from(r: &AnyRow) -> StoreResult<SegmentRow> {
    Ok(SegmentRow {
        id: id16(r.try_get(0)?, SegmentId::from_slice)?,
        name: r.try_get(1)?,
        rules: r.try_get(2)?,
        created_by: r.try_get(3)?,
        created_at: r.try_get(4)?,
    })
}

fn customer_id(r: &AnyRow) -> StoreResult<CustomerId> {
    id16(r.try_get(0)?, CustomerId::from_slice)
}

#[async_trait::async_trait]
impl SegmentStore for SqlStore {
    async fn insert_segment(&self, row: &SegmentRow, audit: &[AuditEntryRow]) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO segments (id, name, rules, created_by, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(row.id.as_bytes().to_vec())
        .bind(row.name.clone())
        .bind(row.rules.clone())
        .bind(row.created_by.clone())
        .bind(row.created_at)
        .execute(&mut *tx)
        .await?;
        self.outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn segment(&self, id: SegmentId) -> StoreResult<Option<SegmentRow>> {
        let row = sqlx::query(
            "SELECT id, name, rules, created_by, created_at FROM segments WHERE id = $1",
        )
        .bind(id.as_bytes().to_vec())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(segment_from).transpose()
    }

    async fn segments(&self) -> StoreResult<Vec<SegmentRow>> {
        let rows = sqlx::query(
            "SELECT id, name, rules, created_by, created_at FROM segments ORDER BY created_at DESC, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(segment_from).collect()
    }

    async fn segment_page(
        &self,
        after: Option<CustomerId>,
        limit: u32,
        scan: &SegmentScan,
    ) -> StoreResult<SegmentPage> {
        // On SQLite a page is read on a connection of its own, off the async threads: tens of
        // thousands of rows through sqlx's `Any` cost several times SQLite's own work.
        if let Some(readers) = &self.readers {
            let (readers, scan) = (readers.clone(), scan.clone());
            return tokio::task::spawn_blocking(move || readers.segment_page(after, limit, &scan))
                .await
                .map_err(|_| StoreError::Corrupt("the segment reader stopped"))?;
        }
        let lo = after.map_or_else(|| vec![0u8; 16], |a| a.as_bytes().to_vec());
        // One snapshot per page: a customer erased between two of its queries must not be read
        // with their clear facts but without their key.
        let mut tx = self.pool.begin().await?;
        if self.backend == crate::Backend::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await?;
        }
        let rows = sqlx::query(AssertSqlSafe(customers_sql(scan)))
            .bind(lo.clone())
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?;
        let mut page = SegmentPage::default();
        for r in &rows {
            let restricted: i64 = r.try_get(1)?;
            page.customers.push(SegmentCustomer {
                id: customer_id(r)?,
                outlets: Vec::new(),
                restricted: restricted != 0,
                language: if scan.language { r.try_get(2)? } else { None },
            });
        }
        let Some(last) = page.customers.last() else {
            return Ok(page);
        };
        let hi = last.id.as_bytes().to_vec();
        let range = |sql| sqlx::query(sql).bind(lo.clone()).bind(hi.clone());
        let mut outlets = Vec::new();
        for r in &range(OUTLETS_SQL).fetch_all(&mut *tx).await? {
            outlets.push((customer_id(r)?, id16(r.try_get(1)?, OutletId::from_slice)?));
        }
        attach_outlets(&mut page, outlets);
        if scan.purchases {
            let sql = purchases_sql(scan);
            let rows = sqlx::query(AssertSqlSafe(sql))
                .bind(lo.clone())
                .bind(hi.clone())
                .fetch_all(&mut *tx)
                .await?;
            for r in &rows {
                page.purchases.push(SegmentPurchase {
                    customer_id: customer_id(r)?,
                    id: r.try_get(1)?,
                    category: r.try_get(2)?,
                    occurred_at: r.try_get(3)?,
                    amount: if scan.amounts {
                        Some((r.try_get(4)?, r.try_get(5)?))
                    } else {
                        None
                    },
                    item: if scan.items {
                        Some(r.try_get(scan.item_column())?)
                    } else {
                        None
                    },
                    outlet: if scan.outlets {
                        Some(r.try_get(scan.outlet_column())?)
                    } else {
                        None
                    },
                });
            }
        }
        if scan.interactions {
            for r in &range(INTERACTIONS_SQL).fetch_all(&mut *tx).await? {
                page.interactions
                    .push((customer_id(r)?, r.try_get(1)?, r.try_get(2)?));
            }
        }
        if scan.consents {
            for r in &range(CONSENTS_SQL).fetch_all(&mut *tx).await? {
                let action: String = r.try_get(2)?;
                page.consents
                    .push((customer_id(r)?, r.try_get(1)?, action == "grant"));
            }
        }
        if scan.needs_keys() {
            for r in &range(KEYS_SQL).fetch_all(&mut *tx).await? {
                page.keys.push((
                    customer_id(r)?,
                    StoredKey {
                        master_key_id: r.try_get(1)?,
                        wrapped: r.try_get(2)?,
                    },
                ));
            }
        }
        // Read only: ending the transaction changes nothing.
        tx.commit().await?;
        Ok(page)
    }
}

/// A page's customers (not erased), in id order, after `$1`, at most `$2`. Columns not asked for
/// are not selected (a bare NULL has no type both engines agree on); the language column's name
/// comes from the profile's declaration, not from input.
pub(crate) fn customers_sql(scan: &SegmentScan) -> String {
    let language = if scan.language {
        format!(", {}", ProfileField::PreferredLanguage.name())
    } else {
        String::new()
    };
    format!(
        "SELECT id, restricted{language} FROM customers \
         WHERE id > $1 AND erased_at IS NULL ORDER BY id LIMIT $2"
    )
}

// The facts of the customers in ($1, $2]: each served by an index that starts with the customer
// id (the purchases' and interactions' cover the clear columns read here).
pub(crate) const OUTLETS_SQL: &str = "SELECT customer_id, outlet_id FROM customer_outlets \
     WHERE customer_id > $1 AND customer_id <= $2 ORDER BY customer_id";
pub(crate) const INTERACTIONS_SQL: &str = "SELECT customer_id, channel, occurred_at FROM interactions \
     WHERE customer_id > $1 AND customer_id <= $2";
pub(crate) const CONSENTS_SQL: &str = "SELECT customer_id, purpose, action FROM consent_events \
     WHERE customer_id > $1 AND customer_id <= $2 ORDER BY customer_id, id";
pub(crate) const KEYS_SQL: &str = "SELECT customer_id, master_key_id, wrapped FROM data_keys \
     WHERE customer_id > $1 AND customer_id <= $2";

/// The purchases of the customers in ($1, $2], with the sealed amounts and items if asked for
/// (column names are constants, not input).
pub(crate) fn purchases_sql(scan: &SegmentScan) -> String {
    let amounts = if scan.amounts {
        ", amount, currency"
    } else {
        ""
    };
    let item = if scan.items { ", item" } else { "" };
    let outlet = if scan.outlets { ", outlet" } else { "" };
    // Personalisation's baskets take each customer's most recent items: in purchase order.
    let order = if scan.items {
        " ORDER BY customer_id, id"
    } else {
        ""
    };
    format!(
        "SELECT customer_id, id, category, occurred_at{amounts}{item}{outlet} FROM purchases \
         WHERE customer_id > $1 AND customer_id <= $2{order}"
    )
}

/// Gives each customer of the page their outlets; both lists are in id order.
pub(crate) fn attach_outlets(page: &mut SegmentPage, outlets: Vec<(CustomerId, OutletId)>) {
    let mut at = 0;
    for (id, outlet) in outlets {
        while page.customers.get(at).is_some_and(|c| c.id < id) {
            at += 1;
        }
        if let Some(c) = page.customers.get_mut(at).filter(|c| c.id == id) {
            c.outlets.push(outlet);
        }
    }
}
