//! The SQL shared by both backends, run through sqlx's `Any` driver.

use sqlx::AnyPool;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row, Transaction};

use steward_domain::{CustomerId, OutletId, ProfileField, StaffId, TokenId};

use crate::*;

/// A [`Store`] on SQLite or PostgreSQL.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pub(crate) pool: AnyPool,
    /// One connection of its own for the decision log's group commits, so that they never queue
    /// behind the reads they are recording. On SQLite it opens a file of its own (see
    /// `sqlite.rs`).
    pub(crate) log_pool: AnyPool,
    /// The audit log's by-customer index, built apart from the appends so that they never wait
    /// for it: on SQLite a file of its own with the log attached as `log`, on PostgreSQL
    /// connections of its own to the same database.
    pub(crate) index_pool: AnyPool,
    pub(crate) backend: Backend,
    /// SQLite: the decision log's file, for the audit writer's own connection.
    pub(crate) log_path: Option<std::sync::Arc<str>>,
    /// SQLite: connections of its own for the hottest point reads (see `sqlite_read`).
    pub(crate) readers: Option<std::sync::Arc<crate::sqlite_read::Readers>>,
    /// PostgreSQL: connections of their own for the same point reads (see `pg_read`).
    pub(crate) pg_readers: Option<std::sync::Arc<crate::pg_read::Conns>>,
    /// Background tasks of this store hold a weak reference and stop when the last clone goes.
    alive: std::sync::Arc<()>,
    /// SQLite: set by the log's checkpointer when its WAL is long and was just copied back in
    /// full; the appender then starts it over (see `sqlite::spawn_checkpointer`).
    pub(crate) wal_restart: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Tags the audit entries writes leave in the outbox; set once by the service that holds
    /// the key. Unset, a write with an audit entry fails (see `audit::OutboxTagger`).
    pub(crate) outbox_tagger:
        std::sync::Arc<std::sync::OnceLock<std::sync::Arc<dyn crate::OutboxTagger>>>,
    /// PostgreSQL: where to open the connections of their own that the cluster needs (the
    /// change feed, the signer's lease); they are not pooled.
    pub(crate) pg_url: Option<std::sync::Arc<str>>,
    /// PostgreSQL: customers inserted since the statistics were last refreshed here (see
    /// [`ANALYZE_AFTER`]); counted across batches, whatever their size.
    unanalysed: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// Rows per multi-row INSERT: well under SQLite's 32,766 and PostgreSQL's 65,535 bound parameters.
pub(crate) const INSERT_CHUNK: usize = 500;

/// Customers inserted (in one batch or several) after which PostgreSQL's statistics are
/// refreshed.
const ANALYZE_AFTER: usize = 10_000;

/// A customer's columns with its wrapped key: id, outlet, times, the profile, the key.
static CUSTOMER_COLUMNS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "c.id, c.outlet_id, c.created_at, c.updated_at, {}, k.master_key_id, k.wrapped",
        crate::records::profile_columns("c.")
    )
});

/// A profile's update: its time, then every declared field (`$3…`), by id (`$1`); built once.
static UPDATE_PROFILE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let set: Vec<String> = ProfileField::ALL
        .iter()
        .enumerate()
        .map(|(i, f)| format!("{} = ${}", f.name(), i + 3))
        .collect();
    format!(
        // Never an erased customer's tombstone: a rectification read before an erasure that
        // commits first would otherwise write the profile and its blind-index entries back.
        "UPDATE customers SET updated_at = $2, {} WHERE id = $1 AND erased_at IS NULL",
        set.join(", ")
    )
});

/// Where the profile's columns start in a row of [`CUSTOMER_COLUMNS`].
const PROFILE_AT: usize = 4;

pub(crate) fn id16<T>(bytes: Vec<u8>, f: fn(&[u8]) -> Option<T>) -> StoreResult<T> {
    f(&bytes).ok_or(StoreError::Corrupt("id is not 16 bytes"))
}

/// An interaction from `id, customer_id, channel, source, occurred_at, body, pii_types`.
pub(crate) fn interaction_from(r: &AnyRow) -> StoreResult<InteractionRow> {
    Ok(InteractionRow {
        id: r.try_get(0)?,
        customer_id: id16(r.try_get(1)?, CustomerId::from_slice)?,
        channel: r.try_get(2)?,
        source: r.try_get(3)?,
        occurred_at: r.try_get(4)?,
        body: r.try_get(5)?,
        pii_types: r.try_get(6)?,
    })
}

fn customer_from_row(r: &AnyRow) -> StoreResult<(CustomerRow, StoredKey)> {
    let outlet: Option<Vec<u8>> = r.try_get(1)?;
    Ok((
        CustomerRow {
            id: id16(r.try_get(0)?, CustomerId::from_slice)?,
            outlet_id: outlet.map(|o| id16(o, OutletId::from_slice)).transpose()?,
            created_at: r.try_get(2)?,
            updated_at: r.try_get(3)?,
            fields: (0..ProfileField::ALL.len())
                .map(|i| r.try_get(PROFILE_AT + i))
                .collect::<Result<_, _>>()?,
        },
        stored_key(r, PROFILE_AT + ProfileField::ALL.len())?,
    ))
}

/// A token's columns, as [`token_from_row`] reads them.
const TOKEN_COLUMNS: &str = "id, name, role, secret_hash, created_at, revoked_at, staff_id, expires_at, last_used_at, recipient_id";

fn token_from_row(r: &AnyRow) -> StoreResult<TokenRow> {
    Ok(TokenRow {
        id: id16(r.try_get(0)?, TokenId::from_slice)?,
        name: r.try_get(1)?,
        role: r.try_get(2)?,
        secret_hash: r.try_get(3)?,
        created_at: r.try_get(4)?,
        revoked_at: r.try_get(5)?,
        staff_id: r
            .try_get::<Option<Vec<u8>>, _>(6)?
            .map(|b| id16(b, StaffId::from_slice))
            .transpose()?,
        expires_at: r.try_get(7)?,
        last_used_at: r.try_get(8)?,
        recipient_id: r
            .try_get::<Option<Vec<u8>>, _>(9)?
            .map(|b| id16(b, steward_domain::RecipientId::from_slice))
            .transpose()?,
    })
}

/// A wrapped key from columns `at` (master key id) and `at + 1` (wrapped bytes).
fn stored_key(r: &AnyRow, at: usize) -> StoreResult<StoredKey> {
    Ok(StoredKey {
        master_key_id: r.try_get(at)?,
        wrapped: r.try_get(at + 1)?,
    })
}

/// `(…), (…), …` for `rows` rows of `cols` parameters: `$N` on PostgreSQL, `?` on SQLite.
///
/// SQLite looks up a numbered parameter's name by a linear scan and sqlx asks for every
/// parameter's name, so `$N` makes a multi-row INSERT quadratic in its parameter count; anonymous
/// `?` parameters are bound in order with no lookup.
pub(crate) fn values_clause(backend: Backend, rows: usize, cols: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 6);
    for r in 0..rows {
        s.push_str(if r == 0 { "(" } else { ",(" });
        for c in 0..cols {
            if c > 0 {
                s.push(',');
            }
            match backend {
                Backend::Sqlite => s.push('?'),
                Backend::Postgres => {
                    s.push('$');
                    s.push_str(&(r * cols + c + 1).to_string());
                }
            }
        }
        s.push(')');
    }
    s
}

/// A query on either backend.
pub(crate) type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Binds a purpose's columns as $1..$7 in table order.
/// Binds an interaction's seven columns, in the order `INTERACTION_COLUMNS` names them.
pub(crate) fn bind_interaction<'q>(q: AnyQuery<'q>, r: &'q InteractionRow) -> AnyQuery<'q> {
    q.bind(r.id.clone())
        .bind(r.customer_id.as_bytes().to_vec())
        .bind(&r.channel)
        .bind(&r.source)
        .bind(r.occurred_at)
        .bind(r.body.clone())
        .bind(&r.pii_types)
}

/// The columns [`bind_interaction`] binds.
pub(crate) const INTERACTION_COLUMNS: &str =
    "id, customer_id, channel, source, occurred_at, body, pii_types";

fn bind_purpose<'q>(q: AnyQuery<'q>, p: &'q PurposeRow) -> AnyQuery<'q> {
    q.bind(&p.key)
        .bind(&p.lawful_basis)
        .bind(&p.data_use)
        .bind(&p.categories)
        .bind(p.retention_days)
        .bind(p.notice_version)
        .bind(&p.notice_text)
}

/// Keeps what a purpose's notice version said, beside the current row.
async fn record_purpose_version(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    p: &PurposeRow,
) -> StoreResult<()> {
    bind_purpose(
        sqlx::query(
            "INSERT INTO purpose_versions (key, lawful_basis, data_use, categories, retention_days, notice_version, notice_text, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        ),
        p,
    )
    .bind(steward_domain::Timestamp::now().millis())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// An alert from its columns in table order.
fn alert_row(r: &sqlx::any::AnyRow) -> StoreResult<AlertRow> {
    Ok(AlertRow {
        id: r.try_get(0)?,
        occurred_at: r.try_get(1)?,
        kind: r.try_get(2)?,
        principal: r.try_get(3)?,
        customer_id: r
            .try_get::<Option<Vec<u8>>, _>(4)?
            .map(|b| id16(b, CustomerId::from_slice))
            .transpose()?,
        purpose: r.try_get(5)?,
        detail: r.try_get(6)?,
        reason: r.try_get(7)?,
    })
}

fn map_conflict(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict,
        _ => StoreError::Database(e),
    }
}

impl SqlStore {
    /// The customer, key and access facts, read with `e` (PostgreSQL's point-read connections,
    /// see `pg_read`, or the pool; SQLite reads them on connections of its own, `sqlite_read`).
    pub(crate) async fn customer_for_read_on<'e>(
        e: impl sqlx::Executor<'e, Database = sqlx::Any>,
        id: CustomerId,
    ) -> StoreResult<Option<(CustomerRow, StoredKey, AccessFacts)>> {
        // One row per outlet the customer belongs to (rarely more than a few), the customer's
        // columns repeated: one round trip instead of two.
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {}, c.restricted, o.outlet_id FROM customers c JOIN data_keys k ON k.customer_id = c.id \
             LEFT JOIN customer_outlets o ON o.customer_id = c.id WHERE c.id = $1",
            *CUSTOMER_COLUMNS
        )))
        .bind(id.as_bytes().to_vec())
        .fetch_all(e)
        .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let (row, key) = customer_from_row(first)?;
        // After the customer's columns and the key's two: restriction, then an outlet.
        let after = PROFILE_AT + ProfileField::ALL.len() + 2;
        let restricted: i64 = first.try_get(after)?;
        let mut outlets = Vec::with_capacity(rows.len());
        for r in &rows {
            if let Some(o) = r.try_get::<Option<Vec<u8>>, _>(after + 1)? {
                outlets.push(id16(o, OutletId::from_slice)?);
            }
        }
        Ok(Some((
            row,
            key,
            AccessFacts {
                outlets,
                restricted: restricted != 0,
            },
        )))
    }

    /// A customer's access facts, read with `e` (see `customer_for_read_on`).
    pub(crate) async fn access_facts_on<'e>(
        e: impl sqlx::Executor<'e, Database = sqlx::Any>,
        id: CustomerId,
    ) -> StoreResult<Option<AccessFacts>> {
        let rows = sqlx::query(
            "SELECT c.restricted, o.outlet_id FROM customers c LEFT JOIN customer_outlets o ON o.customer_id = c.id WHERE c.id = $1 AND c.erased_at IS NULL",
        )
        .bind(id.as_bytes().to_vec())
        .fetch_all(e)
        .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let restricted: i64 = first.try_get(0)?;
        let mut outlets = Vec::with_capacity(rows.len());
        for r in &rows {
            if let Some(o) = r.try_get::<Option<Vec<u8>>, _>(1)? {
                outlets.push(id16(o, OutletId::from_slice)?);
            }
        }
        Ok(Some(AccessFacts {
            outlets,
            restricted: restricted != 0,
        }))
    }

    pub(crate) fn new(
        pool: AnyPool,
        log_pool: AnyPool,
        index_pool: AnyPool,
        backend: Backend,
        files: Option<(&str, &str)>,
    ) -> Self {
        Self {
            pool,
            log_pool,
            index_pool,
            backend,
            log_path: files.map(|(_, log)| std::sync::Arc::from(log)),
            readers: files
                .map(|(data, _)| std::sync::Arc::new(crate::sqlite_read::Readers::new(data))),
            pg_readers: None,
            alive: std::sync::Arc::new(()),
            wal_restart: Default::default(),
            outbox_tagger: Default::default(),
            pg_url: None,
            unanalysed: Default::default(),
        }
    }

    /// A token that lives as long as this store (or a clone of it).
    pub(crate) fn alive(&self) -> std::sync::Weak<()> {
        std::sync::Arc::downgrade(&self.alive)
    }

    /// The connection pool (for tests and benchmarks that compare against plain SQL).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Begins a write transaction. On SQLite it takes the write lock up front (`IMMEDIATE`), so
    /// two writers queue on the busy timeout instead of failing on a lock upgrade.
    /// Runs one UPDATE and, if it changed a row, the audit entries, in one transaction.
    /// Returns whether a row changed.
    pub(crate) async fn update_with_audit(
        &self,
        q: AnyQuery<'_>,
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        if q.execute(&mut *tx).await?.rows_affected() == 0 {
            return Ok(false);
        }
        self.outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub(crate) async fn write_tx(&self) -> StoreResult<Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }
}

impl SqlStore {
    /// Records that customers belong to outlets (idempotent).
    async fn link_outlets(
        &self,
        tx: &mut Transaction<'static, sqlx::Any>,
        links: &[(CustomerId, OutletId)],
    ) -> StoreResult<()> {
        for chunk in links.chunks(INSERT_CHUNK) {
            let sql = format!(
                "INSERT INTO customer_outlets (customer_id, outlet_id) VALUES {} ON CONFLICT DO NOTHING",
                values_clause(self.backend, chunk.len(), 2)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (c, o) in chunk {
                q = q.bind(c.as_bytes().to_vec()).bind(o.as_bytes().to_vec());
            }
            q.execute(&mut **tx).await?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl KeyStore for SqlStore {
    async fn keyring_get(&self, name: &str) -> StoreResult<Option<StoredKey>> {
        let row = sqlx::query("SELECT master_key_id, wrapped FROM keyring WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| stored_key(&r, 0)).transpose()
    }

    async fn keyring_put_if_absent(&self, name: &str, key: &StoredKey) -> StoreResult<StoredKey> {
        sqlx::query("INSERT INTO keyring (name, master_key_id, wrapped) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(&key.master_key_id)
            .bind(key.wrapped.clone())
            .execute(&self.pool)
            .await?;
        self.keyring_get(name)
            .await?
            .ok_or(StoreError::Corrupt("keyring row vanished"))
    }

    async fn keyring_all(&self) -> StoreResult<Vec<(String, StoredKey)>> {
        let rows = sqlx::query("SELECT name, master_key_id, wrapped FROM keyring ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, stored_key(r, 1)?)))
            .collect()
    }

    async fn customer_key(&self, id: CustomerId) -> StoreResult<Option<StoredKey>> {
        let row =
            sqlx::query("SELECT master_key_id, wrapped FROM data_keys WHERE customer_id = $1")
                .bind(id.as_bytes().to_vec())
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| stored_key(&r, 0)).transpose()
    }

    async fn data_keys_not_under(
        &self,
        master_key_id: &str,
        limit: u32,
    ) -> StoreResult<Vec<(CustomerId, StoredKey)>> {
        let rows = sqlx::query("SELECT customer_id, master_key_id, wrapped FROM data_keys WHERE master_key_id <> $1 ORDER BY customer_id LIMIT $2")
            .bind(master_key_id)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    id16(r.try_get(0)?, CustomerId::from_slice)?,
                    stored_key(r, 1)?,
                ))
            })
            .collect()
    }

    async fn replace_data_keys(&self, keys: &[(CustomerId, StoredKey)]) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        for (id, k) in keys {
            sqlx::query(
                "UPDATE data_keys SET master_key_id = $2, wrapped = $3 WHERE customer_id = $1",
            )
            .bind(id.as_bytes().to_vec())
            .bind(&k.master_key_id)
            .bind(k.wrapped.clone())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn keyring_replace(&self, name: &str, key: &StoredKey) -> StoreResult<()> {
        sqlx::query("UPDATE keyring SET master_key_id = $2, wrapped = $3 WHERE name = $1")
            .bind(name)
            .bind(&key.master_key_id)
            .bind(key.wrapped.clone())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn data_key_census(&self) -> StoreResult<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT master_key_id, COUNT(*) FROM data_keys GROUP BY master_key_id ORDER BY master_key_id").fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }
}

#[async_trait::async_trait]
impl CustomerStore for SqlStore {
    async fn insert_customers(
        &self,
        customers: &[SealedCustomer],
        audit: &[AuditEntryRow],
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        for chunk in customers.chunks(INSERT_CHUNK) {
            let sql = format!(
                "INSERT INTO data_keys (customer_id, master_key_id, wrapped, created_at) VALUES {}",
                values_clause(self.backend, chunk.len(), 4)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for c in chunk {
                q = q
                    .bind(c.row.id.as_bytes().to_vec())
                    .bind(&c.key.master_key_id)
                    .bind(c.key.wrapped.clone())
                    .bind(c.row.created_at);
            }
            q.execute(&mut *tx).await?;

            let sql = format!(
                "INSERT INTO customers (id, outlet_id, created_at, updated_at, {}) VALUES {}",
                crate::records::profile_columns(""),
                values_clause(self.backend, chunk.len(), 4 + ProfileField::ALL.len())
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for c in chunk {
                let r = &c.row;
                q = q
                    .bind(r.id.as_bytes().to_vec())
                    .bind(r.outlet_id.map(|o| o.as_bytes().to_vec()))
                    .bind(r.created_at)
                    .bind(r.updated_at);
                for f in &r.fields {
                    q = q.bind(f.clone());
                }
            }
            q.execute(&mut *tx).await?;
        }
        let lookups: Vec<(CustomerId, &[Lookup])> = customers
            .iter()
            .map(|c| (c.row.id, c.lookups.as_slice()))
            .collect();
        self.insert_lookups(&mut tx, &lookups).await?;
        let homes: Vec<(CustomerId, OutletId)> = customers
            .iter()
            .filter_map(|c| c.row.outlet_id.map(|o| (c.row.id, o)))
            .collect();
        self.link_outlets(&mut tx, &homes).await?;
        self.outbox(&mut tx, audit).await?;
        tx.commit().await?;
        let unanalysed = self
            .unanalysed
            .fetch_add(customers.len(), std::sync::atomic::Ordering::Relaxed)
            + customers.len();
        if self.backend == Backend::Postgres && unanalysed >= ANALYZE_AFTER {
            self.unanalysed
                .store(0, std::sync::atomic::Ordering::Relaxed);
            // A bulk import leaves the planner's statistics describing the tables before it,
            // and autovacuum comes later: the next start's look for unindexed customers then
            // took minutes on 100,000 (a nested loop planned for a few hundred rows).
            // The batch is stored: a failure here is only logged (autovacuum analyses later).
            if let Err(e) = sqlx::query("ANALYZE customers, lookup_index, lookup_owners, data_keys")
                .execute(&self.pool)
                .await
            {
                tracing::warn!(error = %e, "refreshing PostgreSQL's statistics after an import failed");
            }
        }
        Ok(())
    }

    async fn get_customer(&self, id: CustomerId) -> StoreResult<Option<(CustomerRow, StoredKey)>> {
        let sql = const_format_customer_by_id();
        let row = sqlx::query(sql)
            .bind(id.as_bytes().to_vec())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(customer_from_row).transpose()
    }

    async fn list_customers(
        &self,
        after: Option<CustomerId>,
        limit: u32,
    ) -> StoreResult<Vec<(CustomerRow, StoredKey)>> {
        let after = after.map(|a| a.as_bytes().to_vec()).unwrap_or_default();
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {} FROM customers c JOIN data_keys k ON k.customer_id = c.id WHERE c.id > $1 ORDER BY c.id LIMIT $2",
            *CUSTOMER_COLUMNS
        )))
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(customer_from_row).collect()
    }

    async fn list_customer_ids(
        &self,
        outlet: Option<OutletId>,
        after: Option<CustomerId>,
        limit: u32,
    ) -> StoreResult<Vec<CustomerId>> {
        let after = after.map(|a| a.as_bytes().to_vec()).unwrap_or_default();
        let rows = match outlet {
            None => sqlx::query(
                "SELECT id FROM customers WHERE id > $1 AND erased_at IS NULL ORDER BY id LIMIT $2",
            )
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?,
            Some(o) => sqlx::query(
                "SELECT c.id FROM customer_outlets co JOIN customers c ON c.id = co.customer_id \
                     WHERE co.outlet_id = $1 AND co.customer_id > $2 AND c.erased_at IS NULL \
                     ORDER BY co.customer_id LIMIT $3",
            )
            .bind(o.as_bytes().to_vec())
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?,
        };
        rows.iter()
            .map(|r| id16(r.try_get(0)?, CustomerId::from_slice))
            .collect()
    }

    async fn lookup_page(
        &self,
        kind: &str,
        mac: &[u8; 16],
        outlet: Option<OutletId>,
        after: Option<CustomerId>,
        limit: u32,
    ) -> StoreResult<Vec<CustomerId>> {
        let after = after.map(|a| a.as_bytes().to_vec()).unwrap_or_default();
        let rows = match outlet {
            None => {
                sqlx::query(
                    "SELECT customer_id FROM lookup_index WHERE kind = $1 AND mac = $2 \
                     AND customer_id > $3 ORDER BY customer_id LIMIT $4",
                )
                .bind(kind)
                .bind(mac.to_vec())
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?
            }
            Some(o) => {
                sqlx::query(
                    "SELECT l.customer_id FROM lookup_index l JOIN customer_outlets co \
                     ON co.customer_id = l.customer_id AND co.outlet_id = $3 \
                     WHERE l.kind = $1 AND l.mac = $2 AND l.customer_id > $4 \
                     ORDER BY l.customer_id LIMIT $5",
                )
                .bind(kind)
                .bind(mac.to_vec())
                .bind(o.as_bytes().to_vec())
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter()
            .map(|r| id16(r.try_get(0)?, CustomerId::from_slice))
            .collect()
    }

    async fn sharing_lookups(
        &self,
        id: CustomerId,
        kinds: &[&str],
    ) -> StoreResult<Vec<CustomerId>> {
        self.sharing_lookups_impl(id, kinds).await
    }

    async fn missing_lookup(
        &self,
        kind: &str,
        after: Option<CustomerId>,
        limit: u32,
    ) -> StoreResult<Vec<CustomerId>> {
        self.missing_lookup_impl(kind, after, limit).await
    }

    async fn add_lookups(&self, entries: &[(CustomerId, Lookup)]) -> StoreResult<()> {
        self.add_lookups_impl(entries).await
    }

    async fn update_customer(
        &self,
        row: &CustomerRow,
        lookups: &[Lookup],
        change: &ChangeRow,
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let id = row.id.as_bytes().to_vec();
        let mut q = sqlx::query(AssertSqlSafe(UPDATE_PROFILE.as_str()))
            .bind(id.clone())
            .bind(row.updated_at);
        for f in &row.fields {
            q = q.bind(f.clone());
        }
        let done = q.execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        Self::delete_lookups(&mut tx, row.id).await?;
        self.insert_lookups(&mut tx, &[(row.id, lookups)]).await?;
        Self::insert_change(&mut tx, change).await?;
        // Recipients that received a corrected field's category are told (Art. 19).
        let categories: Vec<&str> = change
            .fields
            .split(',')
            .filter_map(|f| {
                steward_domain::ProfileField::ALL
                    .iter()
                    .find(|p| p.name() == f)
            })
            .map(|f| f.category().as_str())
            .collect();
        Self::follow(
            &mut tx,
            self.backend,
            row.id,
            steward_domain::sharing::Change::Rectified,
            crate::Touched::Categories(&categories),
            change.changed_at,
        )
        .await?;
        self.outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn lookup(&self, kind: &str, mac: &[u8]) -> StoreResult<Vec<CustomerId>> {
        let rows = sqlx::query("SELECT customer_id FROM lookup_index WHERE kind = $1 AND mac = $2 ORDER BY customer_id")
            .bind(kind)
            .bind(mac.to_vec())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| id16(r.try_get(0)?, CustomerId::from_slice))
            .collect()
    }

    async fn lookup_many(
        &self,
        kind: &str,
        macs: &[[u8; 16]],
    ) -> StoreResult<Vec<([u8; 16], CustomerId)>> {
        let mut found = Vec::new();
        for chunk in macs.chunks(INSERT_CHUNK) {
            let list: Vec<String> = (0..chunk.len())
                .map(|i| match self.backend {
                    Backend::Sqlite => "?".to_owned(),
                    Backend::Postgres => format!("${}", i + 2),
                })
                .collect();
            let first = match self.backend {
                Backend::Sqlite => "?",
                Backend::Postgres => "$1",
            };
            let sql = format!(
                "SELECT mac, customer_id FROM lookup_index WHERE kind = {first} AND mac IN ({}) ORDER BY mac, customer_id",
                list.join(",")
            );
            let mut q = sqlx::query(AssertSqlSafe(sql)).bind(kind);
            for m in chunk {
                q = q.bind(m.to_vec());
            }
            for r in q.fetch_all(&self.pool).await? {
                let mac: Vec<u8> = r.try_get(0)?;
                let mac: [u8; 16] = mac
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("blind index of the wrong length"))?;
                // One customer per value: the first in id order.
                if found.last().is_none_or(|(m, _)| *m != mac) {
                    found.push((mac, id16(r.try_get(1)?, CustomerId::from_slice)?));
                }
            }
        }
        Ok(found)
    }

    async fn count_customers(&self) -> StoreResult<i64> {
        Ok(
            sqlx::query("SELECT COUNT(*) FROM customers WHERE erased_at IS NULL")
                .fetch_one(&self.pool)
                .await?
                .try_get(0)?,
        )
    }

    async fn get_customer_for_read(
        &self,
        id: CustomerId,
    ) -> StoreResult<Option<(CustomerRow, StoredKey, AccessFacts)>> {
        if let Some(readers) = &self.readers {
            return readers.customer_for_read(id);
        }
        let Some(conns) = &self.pg_readers else {
            return Self::customer_for_read_on(&self.pool, id).await;
        };
        use crate::pg_read::{Check, within};
        let mut lent = conns.lend(Check::Read).await?;
        let found = match within("a point read", Self::customer_for_read_on(lent.conn(), id)).await
        {
            Ok(found) => found,
            Err(e) => {
                lent = lent.renew(e).await?;
                within("a point read", Self::customer_for_read_on(lent.conn(), id)).await?
            }
        };
        lent.keep();
        Ok(found)
    }

    async fn access_facts(&self, id: CustomerId) -> StoreResult<Option<AccessFacts>> {
        if let Some(readers) = &self.readers {
            return readers.access_facts(id);
        }
        let Some(conns) = &self.pg_readers else {
            return Self::access_facts_on(&self.pool, id).await;
        };
        use crate::pg_read::{Check, within};
        let mut lent = conns.lend(Check::Read).await?;
        let found = match within("a point read", Self::access_facts_on(lent.conn(), id)).await {
            Ok(found) => found,
            Err(e) => {
                lent = lent.renew(e).await?;
                within("a point read", Self::access_facts_on(lent.conn(), id)).await?
            }
        };
        lent.keep();
        Ok(found)
    }

    async fn changes(&self, customer: CustomerId) -> StoreResult<Vec<ChangeRow>> {
        self.changes_impl(customer).await
    }

    async fn verified_fields(&self, customer: CustomerId) -> StoreResult<Option<Vec<String>>> {
        self.verified_fields_impl(customer).await
    }

    async fn set_verified_fields(
        &self,
        customer: CustomerId,
        fields: &[&str],
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool> {
        self.set_verified_fields_impl(customer, fields, audit).await
    }

    async fn set_restricted(
        &self,
        id: CustomerId,
        restricted: bool,
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool> {
        self.set_restricted_impl(id, restricted, audit).await
    }
}

#[async_trait::async_trait]
impl ActivityStore for SqlStore {
    async fn insert_interaction(
        &self,
        row: &InteractionRow,
        audit: &[AuditEntryRow],
    ) -> StoreResult<()> {
        self.insert_activity(std::slice::from_ref(row), &[], audit)
            .await
    }

    async fn insert_external_interaction(
        &self,
        row: &InteractionRow,
        external_mac: &[u8],
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let sql = format!(
            "INSERT INTO interactions ({INTERACTION_COLUMNS}, external_mac) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING"
        );
        let done = bind_interaction(sqlx::query(AssertSqlSafe(sql)), row)
            .bind(external_mac.to_vec())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        self.outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn list_interactions(
        &self,
        customer: CustomerId,
        after: Option<Vec<u8>>,
        limit: u32,
    ) -> StoreResult<Vec<InteractionRow>> {
        self.interactions_page(customer, Page::After(after), limit)
            .await
    }

    async fn recent_interactions(
        &self,
        customer: CustomerId,
        before: Option<Vec<u8>>,
        limit: u32,
    ) -> StoreResult<Vec<InteractionRow>> {
        self.interactions_page(customer, Page::Before(before), limit)
            .await
    }

    async fn insert_purchase(&self, row: &PurchaseRow, audit: &[AuditEntryRow]) -> StoreResult<()> {
        self.insert_activity(&[], std::slice::from_ref(row), audit)
            .await
    }

    async fn list_purchases(
        &self,
        customer: CustomerId,
        after: Option<Vec<u8>>,
        limit: u32,
    ) -> StoreResult<Vec<PurchaseRow>> {
        self.purchases_page(customer, Page::After(after), limit)
            .await
    }

    async fn move_activity(
        &self,
        from: CustomerId,
        to: CustomerId,
        interactions: &[InteractionRow],
        purchases: &[PurchaseRow],
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool> {
        self.move_activity_impl(from, to, interactions, purchases, audit)
            .await
    }

    async fn last_activity_at(&self, customer: CustomerId) -> StoreResult<Option<i64>> {
        let id = customer.as_bytes().to_vec();
        let row = sqlx::query(
            "SELECT MAX(at) FROM (SELECT MAX(occurred_at) AS at FROM interactions WHERE customer_id = $1 \
             UNION ALL SELECT MAX(occurred_at) AS at FROM purchases WHERE customer_id = $2) latest",
        )
        .bind(id.clone())
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<Option<i64>, _>(0)?)
    }

    async fn recent_purchases(
        &self,
        customer: CustomerId,
        before: Option<Vec<u8>>,
        limit: u32,
    ) -> StoreResult<Vec<PurchaseRow>> {
        self.purchases_page(customer, Page::Before(before), limit)
            .await
    }

    async fn insert_activity(
        &self,
        interactions: &[InteractionRow],
        purchases: &[PurchaseRow],
        audit: &[AuditEntryRow],
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        for chunk in interactions.chunks(INSERT_CHUNK) {
            let sql = format!(
                "INSERT INTO interactions (id, customer_id, channel, source, occurred_at, body, pii_types) VALUES {}",
                values_clause(self.backend, chunk.len(), 7)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for i in chunk {
                q = q
                    .bind(i.id.clone())
                    .bind(i.customer_id.as_bytes().to_vec())
                    .bind(&i.channel)
                    .bind(&i.source)
                    .bind(i.occurred_at)
                    .bind(i.body.clone())
                    .bind(&i.pii_types);
            }
            q.execute(&mut *tx).await?;
        }
        for chunk in purchases.chunks(INSERT_CHUNK) {
            let sql = format!(
                "INSERT INTO purchases (id, customer_id, category, currency, occurred_at, item, amount, outlet, seller) VALUES {}",
                values_clause(self.backend, chunk.len(), 9)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for p in chunk {
                q = q
                    .bind(p.id.clone())
                    .bind(p.customer_id.as_bytes().to_vec())
                    .bind(&p.category)
                    .bind(&p.currency)
                    .bind(p.occurred_at)
                    .bind(p.item.clone())
                    .bind(p.amount.clone())
                    .bind(p.outlet.clone())
                    .bind(p.seller.clone());
            }
            q.execute(&mut *tx).await?;
        }
        // INVARIANT: a purchase links its customer to no outlet. Membership is where the customer
        // registered, so that no write (a zero-amount "strap adjustment") makes a customer
        // someone's own (issue 15, finding 2).
        self.outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn expired_activity(
        &self,
        table: ActivityTable,
        before: i64,
        limit: u32,
    ) -> StoreResult<Vec<(CustomerId, i64)>> {
        self.expired_activity_impl(table, before, limit).await
    }

    async fn dispose_activity(
        &self,
        customer: CustomerId,
        table: ActivityTable,
        before: i64,
        audit: &[AuditEntryRow],
    ) -> StoreResult<u64> {
        self.dispose_activity_impl(customer, table, before, audit)
            .await
    }

    async fn inactive_customers(&self, before: i64, limit: u32) -> StoreResult<Vec<CustomerId>> {
        self.inactive_customers_impl(before, limit).await
    }
}

#[async_trait::async_trait]
impl DirectoryStore for SqlStore {
    async fn insert_outlet(&self, row: &OutletRow, audit: &[AuditEntryRow]) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("INSERT INTO outlets (id, name, country, created_at) VALUES ($1, $2, $3, $4)")
            .bind(row.id.as_bytes().to_vec())
            .bind(&row.name)
            .bind(row.country.clone())
            .bind(row.created_at)
            .execute(&mut *tx)
            .await
            .map_err(map_conflict)?;
        self.outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_outlets(&self) -> StoreResult<Vec<OutletRow>> {
        let rows = sqlx::query("SELECT id, name, created_at, country FROM outlets ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(OutletRow {
                    id: id16(r.try_get(0)?, OutletId::from_slice)?,
                    name: r.try_get(1)?,
                    created_at: r.try_get(2)?,
                    country: r.try_get(3)?,
                })
            })
            .collect()
    }

    async fn outlet_exists(&self, id: OutletId) -> StoreResult<bool> {
        Ok(sqlx::query("SELECT 1 FROM outlets WHERE id = $1")
            .bind(id.as_bytes().to_vec())
            .fetch_optional(&self.pool)
            .await?
            .is_some())
    }

    async fn insert_staff(&self, row: &StaffRow, audit: &[AuditEntryRow]) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("INSERT INTO staff (id, name, roles, created_at) VALUES ($1, $2, $3, $4)")
            .bind(row.id.as_bytes().to_vec())
            .bind(row.name.clone())
            .bind(&row.roles)
            .bind(row.created_at)
            .execute(&mut *tx)
            .await?;
        for o in &row.outlet_ids {
            sqlx::query("INSERT INTO staff_outlets (staff_id, outlet_id) VALUES ($1, $2)")
                .bind(row.id.as_bytes().to_vec())
                .bind(o.as_bytes().to_vec())
                .execute(&mut *tx)
                .await?;
        }
        self.outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_staff(&self) -> StoreResult<Vec<StaffRow>> {
        let rows =
            sqlx::query("SELECT id, name, roles, created_at, disabled_at FROM staff ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        let links = sqlx::query(
            "SELECT staff_id, outlet_id FROM staff_outlets ORDER BY staff_id, outlet_id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: Vec<u8> = r.try_get(0)?;
            let mut outlet_ids = Vec::new();
            for l in &links {
                if l.try_get::<Vec<u8>, _>(0)? == id {
                    outlet_ids.push(id16(l.try_get(1)?, OutletId::from_slice)?);
                }
            }
            out.push(StaffRow {
                id: id16(id, StaffId::from_slice)?,
                name: r.try_get(1)?,
                roles: r.try_get(2)?,
                outlet_ids,
                created_at: r.try_get(3)?,
                disabled_at: r.try_get(4)?,
            });
        }
        Ok(out)
    }

    async fn get_staff(&self, id: StaffId) -> StoreResult<Option<StaffRow>> {
        let Some(r) =
            sqlx::query("SELECT name, roles, created_at, disabled_at FROM staff WHERE id = $1")
                .bind(id.as_bytes().to_vec())
                .fetch_optional(&self.pool)
                .await?
        else {
            return Ok(None);
        };
        let links = sqlx::query(
            "SELECT outlet_id FROM staff_outlets WHERE staff_id = $1 ORDER BY outlet_id",
        )
        .bind(id.as_bytes().to_vec())
        .fetch_all(&self.pool)
        .await?;
        let outlet_ids = links
            .iter()
            .map(|l| id16(l.try_get(0)?, OutletId::from_slice))
            .collect::<StoreResult<_>>()?;
        Ok(Some(StaffRow {
            id,
            name: r.try_get(0)?,
            roles: r.try_get(1)?,
            outlet_ids,
            created_at: r.try_get(2)?,
            disabled_at: r.try_get(3)?,
        }))
    }

    async fn set_staff_disabled(
        &self,
        id: StaffId,
        at: Option<i64>,
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let idb = id.as_bytes().to_vec();
        let found = sqlx::query("UPDATE staff SET disabled_at = $1 WHERE id = $2")
            .bind(at)
            .bind(idb.clone())
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        if !found {
            return Ok(false);
        }
        if let Some(at) = at {
            sqlx::query(
                "UPDATE api_tokens SET revoked_at = $1 WHERE staff_id = $2 AND revoked_at IS NULL",
            )
            .bind(at)
            .bind(idb)
            .execute(&mut *tx)
            .await?;
        }
        self.outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }
}

#[async_trait::async_trait]
impl ConsentStore for SqlStore {
    async fn insert_consent(&self, row: &ConsentRow, audit: &[AuditEntryRow]) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO consent_events (id, customer_id, purpose, action, source, notice_version, occurred_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(row.id.clone())
        .bind(row.customer_id.as_bytes().to_vec())
        .bind(&row.purpose)
        .bind(&row.action)
        .bind(&row.source)
        .bind(row.notice_version)
        .bind(row.occurred_at)
        .execute(&mut *tx)
        .await?;
        // Recipients that received data under the purpose are told of its withdrawal.
        if row.action == "withdraw" {
            Self::follow(
                &mut tx,
                self.backend,
                row.customer_id,
                steward_domain::sharing::Change::ConsentWithdrawn,
                crate::Touched::Purpose(&row.purpose),
                row.occurred_at,
            )
            .await?;
        }
        self.outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn consents(&self, customer: CustomerId) -> StoreResult<Vec<ConsentRow>> {
        let rows = sqlx::query(
            "SELECT id, purpose, action, source, notice_version, occurred_at FROM consent_events WHERE customer_id = $1 ORDER BY id",
        )
        .bind(customer.as_bytes().to_vec())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ConsentRow {
                    id: r.try_get(0)?,
                    customer_id: customer,
                    purpose: r.try_get(1)?,
                    action: r.try_get(2)?,
                    source: r.try_get(3)?,
                    notice_version: r.try_get(4)?,
                    occurred_at: r.try_get(5)?,
                })
            })
            .collect()
    }

    async fn consent_timeline(&self) -> StoreResult<Vec<(Vec<u8>, String, String, i64)>> {
        let rows = sqlx::query(
            "SELECT customer_id, purpose, action, occurred_at FROM consent_events ORDER BY occurred_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
            .collect()
    }
}

#[async_trait::async_trait]
impl PurposeStore for SqlStore {
    async fn seed_purposes(&self, purposes: &[PurposeRow]) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        for p in purposes {
            let added = bind_purpose(
                sqlx::query(
                    "INSERT INTO purposes (key, lawful_basis, data_use, categories, retention_days, notice_version, notice_text, roles, pii_rule) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (key) DO NOTHING",
                ),
                p,
            )
            .bind(&p.roles)
            .bind(&p.pii_rule)
            .execute(&mut *tx)
            .await?;
            if added.rows_affected() == 1 {
                record_purpose_version(&mut tx, p).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn insert_purpose(&self, p: &PurposeRow, audit: &[AuditEntryRow]) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        bind_purpose(
            sqlx::query(
                "INSERT INTO purposes (key, lawful_basis, data_use, categories, retention_days, notice_version, notice_text, roles, pii_rule) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            ),
            p,
        )
        .bind(&p.roles)
        .bind(&p.pii_rule)
        .execute(&mut *tx)
        .await
        .map_err(map_conflict)?;
        record_purpose_version(&mut tx, p).await?;
        self.outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn update_purpose(
        &self,
        p: &PurposeRow,
        expected_version: i64,
        expected_pii_rule: &str,
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        // Both the notice version and the PII rule (which changes without a new version) are
        // what the change was made from: a change made meanwhile is not silently undone.
        let changed = bind_purpose(
            sqlx::query(
                "UPDATE purposes SET lawful_basis = $2, data_use = $3, categories = $4, retention_days = $5, notice_version = $6, notice_text = $7, roles = $9, pii_rule = $10 WHERE key = $1 AND notice_version = $8 AND pii_rule = $11",
            ),
            p,
        )
        .bind(expected_version)
        .bind(&p.roles)
        .bind(&p.pii_rule)
        .bind(expected_pii_rule)
        .execute(&mut *tx)
        .await?;
        if changed.rows_affected() != 1 {
            return Ok(false);
        }
        // A change customers are not told of (its PII rule) keeps the notice version, which is
        // recorded already (found by API fuzzing: recording it again broke a unique key, a 500).
        if p.notice_version != expected_version {
            record_purpose_version(&mut tx, p).await?;
        }
        self.outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn list_purposes(&self) -> StoreResult<Vec<PurposeRow>> {
        let rows = sqlx::query("SELECT key, lawful_basis, data_use, categories, retention_days, notice_version, notice_text, roles, pii_rule FROM purposes ORDER BY key")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(PurposeRow {
                    key: r.try_get(0)?,
                    lawful_basis: r.try_get(1)?,
                    data_use: r.try_get(2)?,
                    categories: r.try_get(3)?,
                    retention_days: r.try_get(4)?,
                    notice_version: r.try_get(5)?,
                    notice_text: r.try_get(6)?,
                    roles: r.try_get(7)?,
                    pii_rule: r.try_get(8)?,
                })
            })
            .collect()
    }
}

#[async_trait::async_trait]
impl AuditStore for SqlStore {
    async fn audit_appender(&self) -> StoreResult<Box<dyn crate::AuditAppender>> {
        Ok(match &self.log_path {
            Some(path) => Box::new(crate::audit_append::SqliteAppender::open(
                path,
                self.wal_restart.clone(),
            )?),
            None => Box::new(crate::audit_append::PoolAppender {
                store: self.clone(),
                conns: match self.pg_url.as_deref() {
                    Some(url) => Some(crate::pg_read::Conns::new(
                        <sqlx::any::AnyConnectOptions as std::str::FromStr>::from_str(url)?,
                    )),
                    None => None,
                },
                contended: 0,
            }),
        })
    }

    async fn record_audit(&self, entries: &[AuditEntryRow]) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        self.outbox(&mut tx, entries).await?;
        tx.commit().await?;
        Ok(())
    }

    fn tag_outbox_with(&self, tagger: std::sync::Arc<dyn crate::OutboxTagger>) {
        // Set once: a second service over the same store holds the same key.
        let _ = self.outbox_tagger.set(tagger);
    }

    async fn check_audit_outbox(
        &self,
        tagger: &dyn crate::OutboxTagger,
    ) -> StoreResult<crate::OutboxCheck> {
        self.check_outbox(tagger).await
    }

    async fn drain_audit_outbox(
        &self,
        limit: u32,
        sealer: &dyn AuditSealer,
        known: Option<AuditTip>,
    ) -> StoreResult<crate::DrainReport> {
        self.drain_outbox(limit, sealer, known).await
    }

    async fn audit_size(&self) -> StoreResult<u64> {
        self.audit_log_size().await
    }

    async fn audit_entry_hashes(
        &self,
        indexes: &[u64],
    ) -> StoreResult<std::collections::HashMap<u64, Vec<u8>>> {
        self.audit_hashes_of(indexes).await
    }

    async fn audit_entries(&self, start: u64, end: u64) -> StoreResult<Vec<StoredAuditEntry>> {
        self.audit_entry_range(start, end).await
    }

    async fn audit_checkpoints(&self) -> StoreResult<Vec<(u64, String)>> {
        self.audit_checkpoint_list().await
    }

    async fn latest_audit_checkpoint(&self) -> StoreResult<Option<(u64, String)>> {
        self.audit_latest_checkpoint().await
    }

    async fn add_audit_checkpoint(&self, size: u64, note: &str) -> StoreResult<()> {
        self.audit_add_checkpoint(size, note).await
    }

    async fn index_audit(&self, limit: u64) -> StoreResult<u64> {
        self.index_audit_entries(limit).await
    }

    async fn customer_audit(
        &self,
        customer: CustomerId,
        before: u64,
        limit: u32,
    ) -> StoreResult<Vec<StoredAuditEntry>> {
        self.customer_audit_entries(customer, before, limit).await
    }

    async fn audit_index_watermark(&self) -> StoreResult<u64> {
        self.read_index_watermark().await
    }

    async fn audit_index_scan(
        &self,
        limit: u32,
        page: &mut (dyn FnMut(Vec<(Vec<u8>, u64)>) + Send),
    ) -> StoreResult<()> {
        self.scan_index_rows(limit, page).await
    }

    async fn audit_extent(&self) -> StoreResult<Option<u64>> {
        self.audit_extent_now().await
    }

    async fn count_audit_entries(&self, customer: CustomerId) -> StoreResult<i64> {
        self.audit_count_for(customer).await
    }
}

#[async_trait::async_trait]
impl AlertStore for SqlStore {
    async fn insert_alert(&self, row: &AlertRow) -> StoreResult<()> {
        sqlx::query("INSERT INTO access_alerts (id, occurred_at, kind, principal, customer_id, purpose, detail, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(row.id.clone())
            .bind(row.occurred_at)
            .bind(&row.kind)
            .bind(&row.principal)
            .bind(row.customer_id.map(|c| c.as_bytes().to_vec()))
            .bind(&row.purpose)
            .bind(&row.detail)
            .bind(row.reason.clone())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn get_alert(&self, id: &[u8]) -> StoreResult<Option<AlertRow>> {
        sqlx::query("SELECT id, occurred_at, kind, principal, customer_id, purpose, detail, reason FROM access_alerts WHERE id = $1")
            .bind(id.to_vec())
            .fetch_optional(&self.pool)
            .await?
            .map(|r| alert_row(&r))
            .transpose()
    }

    async fn list_alerts(&self, before: Option<Vec<u8>>, limit: u32) -> StoreResult<Vec<AlertRow>> {
        // 0xff… sorts after every UUIDv7.
        let before = before.unwrap_or_else(|| vec![0xff; 16]);
        let rows = sqlx::query("SELECT id, occurred_at, kind, principal, customer_id, purpose, detail, reason FROM access_alerts WHERE id < $1 ORDER BY id DESC LIMIT $2")
            .bind(before)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(alert_row).collect()
    }
}

#[async_trait::async_trait]
impl IdentityStore for SqlStore {
    async fn insert_token(&self, row: &TokenRow, audit: &[AuditEntryRow]) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("INSERT INTO api_tokens (id, name, role, secret_hash, created_at, revoked_at, staff_id, expires_at, recipient_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
            .bind(row.id.as_bytes().to_vec())
            .bind(&row.name)
            .bind(&row.role)
            .bind(&row.secret_hash)
            .bind(row.created_at)
            .bind(row.revoked_at)
            .bind(row.staff_id.map(|s| s.as_bytes().to_vec()))
            .bind(row.expires_at)
            .bind(row.recipient_id.map(|r| r.as_bytes().to_vec()))
            .execute(&mut *tx)
            .await?;
        self.outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn revoke_token(
        &self,
        id: TokenId,
        at: i64,
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool> {
        self.revoke_token_impl(id, at, audit).await
    }

    async fn dead_sessions(&self, before: i64, delete: bool) -> StoreResult<u64> {
        self.dead_sessions_impl(before, delete).await
    }

    async fn set_staff_credentials(
        &self,
        row: &crate::CredentialRow,
        session_name: &str,
        audit: &[AuditEntryRow],
    ) -> StoreResult<()> {
        self.set_credentials_impl(row, session_name, audit).await
    }

    async fn staff_credentials(
        &self,
        login_mac: &[u8],
    ) -> StoreResult<Option<crate::CredentialRow>> {
        self.credentials_by_login_impl(login_mac).await
    }

    async fn get_token(&self, id: TokenId) -> StoreResult<Option<TokenRow>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = $1"
        )))
        .bind(id.as_bytes().to_vec())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn list_tokens(&self) -> StoreResult<Vec<TokenRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at, id"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_from_row).collect()
    }

    async fn touch_token(&self, id: TokenId, at: i64) -> StoreResult<()> {
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(at)
            .bind(id.as_bytes().to_vec())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl PortalStore for SqlStore {
    async fn insert_portal_code(
        &self,
        row: &crate::PortalCodeRow,
        audit: &[AuditEntryRow],
    ) -> StoreResult<()> {
        self.insert_portal_code_impl(row, audit).await
    }

    async fn insert_contact_change(
        &self,
        row: &crate::ContactChangeRow,
        audit: &[AuditEntryRow],
    ) -> StoreResult<()> {
        self.insert_contact_change_impl(row, audit).await
    }

    async fn pending_contact_changes(
        &self,
        sent_to_mac: &[u8],
        now: i64,
    ) -> StoreResult<Vec<crate::ContactChangeRow>> {
        self.pending_contact_changes_impl(sent_to_mac, now).await
    }

    async fn claim_contact_change_try(
        &self,
        id: uuid::Uuid,
        max_tries: i64,
        now: i64,
    ) -> StoreResult<bool> {
        self.claim_contact_change_try_impl(id, max_tries, now).await
    }

    async fn confirm_contact_change(
        &self,
        id: uuid::Uuid,
        now: i64,
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool> {
        self.confirm_contact_change_impl(id, now, audit).await
    }

    async fn last_contact_change(
        &self,
        customer: CustomerId,
    ) -> StoreResult<Option<crate::ContactChangeRow>> {
        self.last_contact_change_impl(customer).await
    }

    async fn portal_code(&self, id: uuid::Uuid) -> StoreResult<Option<crate::PortalCodeRow>> {
        self.portal_code_impl(id).await
    }

    async fn claim_portal_code_try(
        &self,
        id: uuid::Uuid,
        max_tries: i64,
        now: i64,
    ) -> StoreResult<bool> {
        let q = sqlx::query(
            "UPDATE portal_codes SET attempts = attempts + 1 WHERE id = $1 AND attempts < $2 AND expires_at >= $3",
        )
        .bind(id.as_bytes().to_vec())
        .bind(max_tries)
        .bind(now);
        self.update_with_audit(q, &[]).await
    }

    async fn open_portal_session(
        &self,
        code: uuid::Uuid,
        session: &crate::PortalSessionRow,
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool> {
        self.open_portal_session_impl(code, session, audit).await
    }

    async fn portal_session(&self, id: uuid::Uuid) -> StoreResult<Option<crate::PortalSessionRow>> {
        self.portal_session_impl(id).await
    }

    async fn close_portal_session(
        &self,
        id: uuid::Uuid,
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool> {
        self.close_portal_session_impl(id, audit).await
    }

    async fn dead_portal(&self, before: i64, delete: bool) -> StoreResult<u64> {
        self.dead_portal_impl(before, delete).await
    }
}

#[async_trait::async_trait]
impl RightsStore for SqlStore {
    async fn insert_request(&self, row: &RequestRow, audit: &[AuditEntryRow]) -> StoreResult<()> {
        self.insert_request_impl(row, audit).await
    }

    async fn get_request(&self, id: steward_domain::RequestId) -> StoreResult<Option<RequestRow>> {
        self.get_request_impl(id).await
    }

    async fn claim_request_code_try(
        &self,
        id: steward_domain::RequestId,
        max_tries: i64,
    ) -> StoreResult<Option<i64>> {
        self.claim_request_code_try_impl(id, max_tries).await
    }

    async fn update_request(
        &self,
        row: &RequestRow,
        was: &str,
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool> {
        self.update_request_impl(row, was, audit).await
    }

    async fn list_requests(
        &self,
        due_before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<RequestRow>> {
        self.list_requests_impl(due_before, limit).await
    }
}

#[async_trait::async_trait]
impl ErasureStore for SqlStore {
    async fn customer_standing(&self, id: CustomerId) -> StoreResult<CustomerStanding> {
        self.customer_standing_impl(id).await
    }

    async fn set_legal_hold(
        &self,
        id: CustomerId,
        reference: Option<&str>,
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool> {
        self.set_legal_hold_impl(id, reference, audit).await
    }

    async fn erase_customer(
        &self,
        id: CustomerId,
        journal_seq: i64,
        at: i64,
        count_up_to: u64,
        audit: &[AuditEntryRow],
    ) -> StoreResult<Erased> {
        self.erase_customer_impl(id, journal_seq, at, count_up_to, audit)
            .await
    }

    async fn purge_customer(&self, id: CustomerId, limit: u32, at: i64) -> StoreResult<u64> {
        self.purge_customer_impl(id, limit, at).await
    }

    async fn erasures(&self) -> StoreResult<Vec<ErasureRow>> {
        self.erasures_impl().await
    }
}

#[async_trait::async_trait]
impl MaintenanceStore for SqlStore {
    fn backend(&self) -> Backend {
        self.backend
    }

    async fn compact(&self) -> StoreResult<()> {
        self.compact_impl().await
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn backup_into(&self, data: &std::path::Path, log: &std::path::Path) -> StoreResult<()> {
        self.backup_into_impl(data, log).await
    }
}

/// One customer with its wrapped key, by id.
fn const_format_customer_by_id() -> &'static str {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT {} FROM customers c JOIN data_keys k ON k.customer_id = c.id WHERE c.id = $1",
            *CUSTOMER_COLUMNS
        )
    });
    &SQL
}

/// Which page of a customer's activity: oldest first after a cursor, or newest first before one.
enum Page {
    After(Option<Vec<u8>>),
    Before(Option<Vec<u8>>),
}

impl Page {
    /// The condition and order (fixed text: no value is formatted into SQL).
    fn clause(&self) -> &'static str {
        match self {
            Page::After(_) => "id > $2 ORDER BY id",
            Page::Before(_) => "id < $2 ORDER BY id DESC",
        }
    }

    /// The cursor to bind as `$2`: before the first id, or after the last possible one.
    fn cursor(&self) -> Vec<u8> {
        match self {
            Page::After(a) => a.clone().unwrap_or_default(),
            Page::Before(b) => b.clone().unwrap_or_else(|| vec![0xff; 17]),
        }
    }
}

impl SqlStore {
    async fn interactions_page(
        &self,
        customer: CustomerId,
        page: Page,
        limit: u32,
    ) -> StoreResult<Vec<InteractionRow>> {
        let rows = sqlx::query(
            AssertSqlSafe(format!(
                "SELECT id, customer_id, channel, source, occurred_at, body, pii_types FROM interactions WHERE customer_id = $1 AND {} LIMIT $3",
                page.clause()
            )),
        )
        .bind(customer.as_bytes().to_vec())
        .bind(page.cursor())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(interaction_from).collect()
    }

    async fn purchases_page(
        &self,
        customer: CustomerId,
        page: Page,
        limit: u32,
    ) -> StoreResult<Vec<PurchaseRow>> {
        let rows = sqlx::query(
            AssertSqlSafe(format!(
                "SELECT id, customer_id, category, currency, occurred_at, item, amount, outlet, seller FROM purchases WHERE customer_id = $1 AND {} LIMIT $3",
                page.clause()
            )),
        )
        .bind(customer.as_bytes().to_vec())
        .bind(page.cursor())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PurchaseRow {
                    id: r.try_get(0)?,
                    customer_id: id16(r.try_get(1)?, CustomerId::from_slice)?,
                    category: r.try_get(2)?,
                    currency: r.try_get(3)?,
                    occurred_at: r.try_get(4)?,
                    item: r.try_get(5)?,
                    amount: r.try_get(6)?,
                    outlet: r.try_get(7)?,
                    seller: r.try_get(8)?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::values_clause;
    use crate::Backend;

    #[test]
    fn values_clause_numbers_placeholders() {
        assert_eq!(
            values_clause(Backend::Postgres, 2, 3),
            "($1,$2,$3),($4,$5,$6)"
        );
        assert_eq!(values_clause(Backend::Sqlite, 2, 2), "(?,?),(?,?)");
    }
}
