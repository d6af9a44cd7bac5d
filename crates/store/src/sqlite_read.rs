//! SQLite point reads on the request's own thread.
//!
//! A read of one customer through the pool crosses threads three times: sqlx runs every SQLite
//! statement on a worker thread of the connection (a wake-up there and back), and pings the
//! connection on its worker again when it goes back to the pool. On two cores those wake-ups
//! cost more than the read itself. The hottest reads (a customer, their key and outlets; the
//! access facts every other decision asks for; both by primary key) therefore run on connections
//! of their own, called directly: microseconds of SQLite work on pages in the connection's cache,
//! never waiting on a lock (WAL readers do not wait for the writer). Everything else still goes
//! through the pool.

use std::sync::Mutex;
use std::time::Duration;

use rusqlite::OpenFlags;
use steward_domain::{CustomerId, OutletId, ProfileField};

use crate::{
    AccessFacts, CustomerRow, SegmentCustomer, SegmentPage, SegmentPurchase, SegmentScan,
    StoreError, StoreResult, StoredKey,
};

/// Connections kept between reads: one per runtime thread that reads at the same moment.
const KEEP: usize = 8;

/// Read connections to the data file, opened as needed and kept for the next read.
#[derive(Debug)]
pub(crate) struct Readers {
    path: String,
    idle: Mutex<Vec<rusqlite::Connection>>,
}

/// As the pool's query: one row per outlet, the customer's columns repeated, so the customer and
/// their outlets come from one snapshot.
static CUSTOMER_FOR_READ: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT c.outlet_id, c.created_at, c.updated_at, {}, k.master_key_id, k.wrapped, \
           c.restricted, o.outlet_id \
         FROM customers c JOIN data_keys k ON k.customer_id = c.id \
         LEFT JOIN customer_outlets o ON o.customer_id = c.id WHERE c.id = ?1",
        crate::records::profile_columns("c.")
    )
});

impl Readers {
    /// Readers of the SQLite file at `path`.
    pub(crate) fn new(path: &str) -> Self {
        Self {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<rusqlite::Connection>> {
        // A panic while the list was held leaves it intact (a push or a pop).
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn open(&self) -> StoreResult<rusqlite::Connection> {
        let conn = rusqlite::Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // Reads only. The busy timeout covers the rare moments a WAL reader must wait (the
        // WAL index being rebuilt after a crash).
        conn.busy_timeout(Duration::from_secs(10))?;
        // A small page cache of its own: point reads touch a few pages each, all over the file,
        // and the operating system's cache (shared, and outside the process) holds the file
        // anyway; 64 MiB per reader kept half a gigabyte resident for 100,000 customers.
        conn.execute_batch("PRAGMA query_only = ON; PRAGMA cache_size = -4096;")?;
        Ok(conn)
    }

    /// Runs `f` on an idle connection (or a new one), then keeps the connection unless `f`
    /// failed (a connection that erred is not trusted with the next read).
    fn with<T>(&self, f: impl FnOnce(&rusqlite::Connection) -> StoreResult<T>) -> StoreResult<T> {
        let conn = match self.idle().pop() {
            Some(c) => c,
            None => self.open()?,
        };
        let out = f(&conn);
        let mut idle = self.idle();
        if out.is_ok() && idle.len() < KEEP {
            idle.push(conn);
        }
        out
    }

    /// A customer's row, wrapped key and access facts (see `Store::get_customer_for_read`).
    pub(crate) fn customer_for_read(
        &self,
        id: CustomerId,
    ) -> StoreResult<Option<(CustomerRow, StoredKey, AccessFacts)>> {
        self.with(|conn| {
            // As the pool's query: one row per outlet, the customer's columns repeated, so the
            // customer and their outlets come from one snapshot.
            let mut stmt = conn.prepare_cached(&CUSTOMER_FOR_READ)?;
            // Columns: outlet, two times, the profile, the key (two), restriction, an outlet.
            let n = ProfileField::ALL.len();
            let mut rows = stmt.query([id.as_bytes().as_slice()])?;
            let mut found = None;
            let mut outlets = Vec::new();
            while let Some(r) = rows.next()? {
                if found.is_none() {
                    let registered: Option<Vec<u8>> = r.get(0)?;
                    let row = CustomerRow {
                        id,
                        outlet_id: registered.map(|o| outlet_id(&o)).transpose()?,
                        created_at: r.get(1)?,
                        updated_at: r.get(2)?,
                        fields: (0..n).map(|i| r.get(3 + i)).collect::<Result<_, _>>()?,
                    };
                    let key = StoredKey {
                        master_key_id: r.get(3 + n)?,
                        wrapped: r.get(4 + n)?,
                    };
                    found = Some((row, key, r.get::<_, i64>(5 + n)? != 0));
                }
                if let Some(o) = r.get::<_, Option<Vec<u8>>>(6 + n)? {
                    outlets.push(outlet_id(&o)?);
                }
            }
            Ok(found.map(|(row, key, restricted)| {
                (
                    row,
                    key,
                    AccessFacts {
                        outlets,
                        restricted,
                    },
                )
            }))
        })
    }
}

impl Readers {
    /// A customer's access facts (see `Store::access_facts`): asked before every decision on
    /// their interactions or purchases and every action on them.
    pub(crate) fn access_facts(&self, id: CustomerId) -> StoreResult<Option<AccessFacts>> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT c.restricted, o.outlet_id FROM customers c \
                 LEFT JOIN customer_outlets o ON o.customer_id = c.id \
                 WHERE c.id = ?1 AND c.erased_at IS NULL",
            )?;
            let mut rows = stmt.query([id.as_bytes().as_slice()])?;
            let mut facts: Option<AccessFacts> = None;
            while let Some(r) = rows.next()? {
                let f = facts.get_or_insert(AccessFacts {
                    outlets: Vec::new(),
                    restricted: false,
                });
                f.restricted = r.get::<_, i64>(0)? != 0;
                if let Some(o) = r.get::<_, Option<Vec<u8>>>(1)? {
                    f.outlets.push(outlet_id(&o)?);
                }
            }
            Ok(facts)
        })
    }
}

impl Readers {
    /// One page of a segment's evaluation (see `SegmentStore::segment_page`), every query in one
    /// read transaction: one snapshot of the customers and their facts.
    pub(crate) fn segment_page(
        &self,
        after: Option<CustomerId>,
        limit: u32,
        scan: &SegmentScan,
    ) -> StoreResult<SegmentPage> {
        use crate::segments::{
            CONSENTS_SQL, INTERACTIONS_SQL, KEYS_SQL, OUTLETS_SQL, attach_outlets, customers_sql,
            purchases_sql,
        };
        let id = |b: Vec<u8>| {
            CustomerId::from_slice(&b).ok_or(StoreError::Corrupt("id is not 16 bytes"))
        };
        self.with(|conn| {
            conn.execute_batch("BEGIN")?;
            let read = || -> StoreResult<SegmentPage> {
                let lo = after.map_or_else(|| vec![0u8; 16], |a| a.as_bytes().to_vec());
                let mut page = SegmentPage::default();
                let mut stmt = conn.prepare_cached(&customers_sql(scan))?;
                let mut rows = stmt.query(rusqlite::params![lo, i64::from(limit)])?;
                while let Some(r) = rows.next()? {
                    page.customers.push(SegmentCustomer {
                        id: id(r.get(0)?)?,
                        outlets: Vec::new(),
                        restricted: r.get::<_, i64>(1)? != 0,
                        language: if scan.language { r.get(2)? } else { None },
                    });
                }
                let Some(last) = page.customers.last() else {
                    return Ok(page);
                };
                let hi = last.id.as_bytes().to_vec();
                let each = |sql: &str, f: &mut dyn FnMut(&rusqlite::Row<'_>) -> StoreResult<()>| {
                    let mut stmt = conn.prepare_cached(sql)?;
                    let mut rows = stmt.query(rusqlite::params![lo, hi])?;
                    while let Some(r) = rows.next()? {
                        f(r)?;
                    }
                    StoreResult::Ok(())
                };
                let mut outlets = Vec::new();
                each(OUTLETS_SQL, &mut |r| {
                    outlets.push((id(r.get(0)?)?, outlet_id(&r.get::<_, Vec<u8>>(1)?)?));
                    Ok(())
                })?;
                attach_outlets(&mut page, outlets);
                if scan.purchases {
                    each(&purchases_sql(scan), &mut |r| {
                        page.purchases.push(SegmentPurchase {
                            customer_id: id(r.get(0)?)?,
                            id: r.get(1)?,
                            category: r.get(2)?,
                            occurred_at: r.get(3)?,
                            amount: if scan.amounts {
                                Some((r.get(4)?, r.get(5)?))
                            } else {
                                None
                            },
                            item: if scan.items {
                                Some(r.get(scan.item_column())?)
                            } else {
                                None
                            },
                            outlet: if scan.outlets {
                                Some(r.get(scan.outlet_column())?)
                            } else {
                                None
                            },
                        });
                        Ok(())
                    })?;
                }
                if scan.interactions {
                    each(INTERACTIONS_SQL, &mut |r| {
                        page.interactions
                            .push((id(r.get(0)?)?, r.get(1)?, r.get(2)?));
                        Ok(())
                    })?;
                }
                if scan.consents {
                    each(CONSENTS_SQL, &mut |r| {
                        let action: String = r.get(2)?;
                        page.consents
                            .push((id(r.get(0)?)?, r.get(1)?, action == "grant"));
                        Ok(())
                    })?;
                }
                if scan.needs_keys() {
                    each(KEYS_SQL, &mut |r| {
                        page.keys.push((
                            id(r.get(0)?)?,
                            StoredKey {
                                master_key_id: r.get(1)?,
                                wrapped: r.get(2)?,
                            },
                        ));
                        Ok(())
                    })?;
                }
                Ok(page)
            };
            let out = read();
            // A read transaction: ending it changes nothing, whatever happened above.
            conn.execute_batch("COMMIT")?;
            out
        })
    }
}

fn outlet_id(bytes: &[u8]) -> StoreResult<OutletId> {
    OutletId::from_slice(bytes).ok_or(StoreError::Corrupt("id is not 16 bytes"))
}

#[cfg(test)]
mod tests {
    use steward_domain::{CustomerId, OutletId};

    use crate::prelude::*;
    use crate::{CustomerRow, OutletRow, PurchaseRow, SealedCustomer, SqlStore, StoredKey};

    fn customer(id: CustomerId, outlet: Option<OutletId>, n: u8) -> SealedCustomer {
        SealedCustomer {
            row: CustomerRow {
                id,
                outlet_id: outlet,
                created_at: 1_000 + i64::from(n),
                updated_at: 2_000 + i64::from(n),
                fields: vec![
                    Some(vec![n; 40]),
                    n.is_multiple_of(2).then(|| vec![n, 1, 2]),
                    None,
                    Some(vec![n; 3]),
                    (n > 1).then(|| vec![9; 20]),
                    (n > 2).then(|| vec![7; 5]),
                    (n > 3).then(|| vec![5; 8]),
                ]
                .into_iter()
                // One per declared field, however many there are.
                .chain(std::iter::repeat(None))
                .take(steward_domain::ProfileField::ALL.len())
                .collect(),
            },
            key: StoredKey {
                master_key_id: format!("mk-{n}"),
                wrapped: vec![n; 60],
            },
            lookups: vec![],
        }
    }

    /// The in-thread reads give exactly what the pool's queries give: a customer with no outlet,
    /// one registered there, one who also bought elsewhere, a restricted one, an erased one, and
    /// nobody.
    #[tokio::test]
    async fn reads_match_the_pool() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("steward.db").display());
        let store = crate::sqlite::open(&url).await.unwrap();
        let (a, b) = (OutletId::new(), OutletId::new());
        for (id, name) in [(a, "A"), (b, "B")] {
            let row = OutletRow {
                id,
                name: name.into(),
                country: None,
                created_at: 1,
            };
            store.insert_outlet(&row, &[]).await.unwrap();
        }
        let ids: Vec<CustomerId> = (0..5).map(|_| CustomerId::new()).collect();
        let outlets = [None, Some(a), Some(a), None, Some(b)];
        let sealed: Vec<SealedCustomer> = (0u8..)
            .zip(ids.iter().zip(outlets))
            .map(|(n, (id, o))| customer(*id, o, n))
            .collect();
        store.insert_customers(&sealed, &[]).await.unwrap();
        let purchase = PurchaseRow {
            id: vec![7; 16],
            customer_id: ids[2],
            category: "watch".into(),
            currency: "EUR".into(),
            occurred_at: 5,
            item: vec![1],
            amount: vec![2],
            outlet: vec![3],
            seller: None,
        };
        store.insert_purchase(&purchase, &[]).await.unwrap();
        // A purchase links its customer to no outlet (issue 15, finding 2); a second link, as a
        // database migrated from before holds them, is read alike by both paths.
        assert_eq!(
            SqlStore::access_facts_on(store.pool(), ids[2])
                .await
                .unwrap()
                .unwrap()
                .outlets
                .len(),
            1
        );
        sqlx::query("INSERT INTO customer_outlets (customer_id, outlet_id) VALUES ($1, $2)")
            .bind(ids[2].as_bytes().to_vec())
            .bind(b.as_bytes().to_vec())
            .execute(store.pool())
            .await
            .unwrap();
        assert!(store.set_restricted(ids[3], true, &[]).await.unwrap());
        // Marked erased (its shred left aside): no access facts on either path.
        sqlx::query("UPDATE customers SET erased_at = 1 WHERE id = $1")
            .bind(ids[4].as_bytes().to_vec())
            .execute(store.pool())
            .await
            .unwrap();

        let readers = store.readers.clone().unwrap();
        for id in ids.iter().copied().chain([CustomerId::new()]) {
            let mut pooled = SqlStore::customer_for_read_on(store.pool(), id)
                .await
                .unwrap();
            let mut direct = readers.customer_for_read(id).unwrap();
            for (_, _, facts) in [&mut pooled, &mut direct].into_iter().flatten() {
                facts.outlets.sort_by_key(|o| *o.as_bytes());
            }
            assert_eq!(direct, pooled);
            let mut pooled = SqlStore::access_facts_on(store.pool(), id).await.unwrap();
            let mut direct = readers.access_facts(id).unwrap();
            for facts in [&mut pooled, &mut direct].into_iter().flatten() {
                facts.outlets.sort_by_key(|o| *o.as_bytes());
            }
            assert_eq!(direct, pooled);
        }
        let (_, _, facts) = readers.customer_for_read(ids[2]).unwrap().unwrap();
        assert_eq!(facts.outlets.len(), 2, "registered at A, linked to B");
        assert!(
            readers
                .customer_for_read(ids[3])
                .unwrap()
                .unwrap()
                .2
                .restricted
        );
        assert!(readers.access_facts(ids[3]).unwrap().unwrap().restricted);
        assert_eq!(
            readers.access_facts(ids[2]).unwrap().unwrap().outlets.len(),
            2
        );
        assert_eq!(readers.access_facts(ids[4]).unwrap(), None);
    }
}
