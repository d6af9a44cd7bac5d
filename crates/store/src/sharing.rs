//! Recipients, agreements, disclosures and the notifications that follow changes to recipients
//! (see the `sharing` migration, issue 22).

use std::collections::BTreeMap;

use sqlx::Row;
use sqlx::any::AnyRow;
use steward_domain::sharing::Change;
use steward_domain::{AgreementId, CustomerId, RecipientId};

use crate::sql::id16;
use crate::{AuditEntryRow, SharingStore, SqlStore, StoreResult};

/// A recipient as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientRow {
    /// Id.
    pub id: RecipientId,
    /// Name.
    pub name: String,
    /// `processor` or `third_party`.
    pub kind: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// Whom to contact there.
    pub contact: Option<String>,
    /// Where notifications go.
    pub webhook_url: String,
    /// When registered (Unix ms).
    pub created_at: i64,
}

/// An agreement as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgreementRow {
    /// Id.
    pub id: AgreementId,
    /// The recipient.
    pub recipient_id: RecipientId,
    /// 1 for a first agreement, one more than the one it supersedes otherwise.
    pub version: i64,
    /// The agreement it replaces.
    pub supersedes: Option<AgreementId>,
    /// Purpose keys.
    pub purposes: Vec<String>,
    /// Data categories (fideslang names).
    pub categories: Vec<String>,
    /// Lawful basis.
    pub lawful_basis: String,
    /// SHA-256 of the signed document, hex.
    pub document_sha256: String,
    /// `identified` or `pseudonymous`.
    pub identity: String,
    /// In force from (Unix ms).
    pub starts_at: i64,
    /// Until (Unix ms).
    pub expires_at: i64,
    /// Ended early, when (Unix ms).
    pub ended_at: Option<i64>,
    /// Recorded (Unix ms).
    pub created_at: i64,
}

/// What went to one recipient about one customer, under one agreement and purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisclosureRow {
    /// The recipient.
    pub recipient_id: RecipientId,
    /// The agreement.
    pub agreement_id: AgreementId,
    /// The purpose declared.
    pub purpose: String,
    /// The categories received.
    pub categories: Vec<String>,
    /// First time (Unix ms).
    pub first_at: i64,
    /// Last time (Unix ms).
    pub last_at: i64,
    /// How many reads.
    pub times: i64,
}

/// A notification to a recipient, as queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRow {
    /// The `webhook-id`.
    pub id: String,
    /// To whom.
    pub recipient_id: RecipientId,
    /// The change's type, e.g. `customer.erased`.
    pub change: String,
    /// The customer's id or pseudonym, as the recipient knows them.
    pub customer_ref: String,
    /// The categories concerned.
    pub categories: Vec<String>,
    /// For a withdrawal, the purpose.
    pub purpose: Option<String>,
    /// Queued at (Unix ms): the `webhook-timestamp` is its second.
    pub created_at: i64,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Tries so far.
    pub attempts: i64,
    /// Next try not before (Unix ms).
    pub next_attempt_at: i64,
    /// Delivered at (Unix ms).
    pub delivered_at: Option<i64>,
    /// Why the last try failed (a status code or a connection error; never a body).
    pub last_error: Option<String>,
}

/// What became of an agreement to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgreementStored {
    /// Recorded.
    Stored,
    /// The agreement it supersedes is another recipient's or was superseded already.
    Superseded,
    /// The recipient's other agreements are of the other identity.
    MixedIdentity,
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// The recipient answered 2xx.
    Delivered {
        /// When.
        at: i64,
    },
    /// Try again at `next_at`.
    Retry {
        /// When.
        next_at: i64,
        /// Why this try failed.
        error: String,
    },
    /// Given up (past the retry window).
    Failed {
        /// Why the last try failed.
        error: String,
    },
}

/// A disclosure about to be made: recorded only if, at this moment, the customer is neither
/// erased nor restricted, their consent (where the purpose needs it) is active, and the
/// agreement is still in force.
#[derive(Debug, Clone)]
pub struct NewDisclosure<'a> {
    /// About whom.
    pub customer: CustomerId,
    /// Under which agreement.
    pub agreement: &'a AgreementRow,
    /// The purpose declared.
    pub purpose: &'a str,
    /// The categories shown.
    pub categories: &'a [&'a str],
    /// The purpose rests on consent.
    pub consent_needed: bool,
    /// A random pseudonym to give the customer if the agreement is pseudonymous and the
    /// recipient has none for them yet.
    pub fresh_pseudonym: Option<&'a str>,
    /// When (Unix ms).
    pub at: i64,
}

/// Which of a customer's disclosures a change touches.
#[derive(Debug, Clone, Copy)]
pub enum Touched<'a> {
    /// All of them (erasure, restriction).
    All,
    /// Those of these categories (a rectification of these fields' categories).
    Categories(&'a [&'a str]),
    /// Those made under this purpose (a withdrawal of consent to it).
    Purpose(&'a str),
}

fn split(s: String) -> Vec<String> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

const RECIPIENT_COLUMNS: &str = "id, name, kind, country, contact, webhook_url, created_at";

fn recipient_from(r: &AnyRow) -> StoreResult<RecipientRow> {
    Ok(RecipientRow {
        id: id16(r.try_get(0)?, RecipientId::from_slice)?,
        name: r.try_get(1)?,
        kind: r.try_get(2)?,
        country: r.try_get(3)?,
        contact: r.try_get(4)?,
        webhook_url: r.try_get(5)?,
        created_at: r.try_get(6)?,
    })
}

const AGREEMENT_COLUMNS: &str = "id, recipient_id, version, supersedes, purposes, categories, lawful_basis, document_sha256, identity, starts_at, expires_at, ended_at, created_at";

fn agreement_from(r: &AnyRow) -> StoreResult<AgreementRow> {
    Ok(AgreementRow {
        id: id16(r.try_get(0)?, AgreementId::from_slice)?,
        recipient_id: id16(r.try_get(1)?, RecipientId::from_slice)?,
        version: r.try_get(2)?,
        supersedes: r
            .try_get::<Option<Vec<u8>>, _>(3)?
            .map(|b| id16(b, AgreementId::from_slice))
            .transpose()?,
        purposes: split(r.try_get(4)?),
        categories: split(r.try_get(5)?),
        lawful_basis: r.try_get(6)?,
        document_sha256: r.try_get(7)?,
        identity: r.try_get(8)?,
        starts_at: r.try_get(9)?,
        expires_at: r.try_get(10)?,
        ended_at: r.try_get(11)?,
        created_at: r.try_get(12)?,
    })
}

const NOTIFICATION_COLUMNS: &str = "id, recipient_id, change, customer_ref, categories, purpose, created_at, status, attempts, next_attempt_at, delivered_at, last_error";

fn notification_from(r: &AnyRow) -> StoreResult<NotificationRow> {
    Ok(NotificationRow {
        id: r.try_get(0)?,
        recipient_id: id16(r.try_get(1)?, RecipientId::from_slice)?,
        change: r.try_get(2)?,
        customer_ref: r.try_get(3)?,
        categories: split(r.try_get(4)?),
        purpose: r.try_get(5)?,
        created_at: r.try_get(6)?,
        status: r.try_get(7)?,
        attempts: r.try_get(8)?,
        next_attempt_at: r.try_get(9)?,
        delivered_at: r.try_get(10)?,
        last_error: r.try_get(11)?,
    })
}

impl SqlStore {
    /// Queues, inside the change's own transaction, one notification per recipient (and
    /// reference it knows the customer by) whose disclosures of `customer` the change touches:
    /// the change and its notifications commit together or not at all (GDPR Art. 19).
    pub(crate) async fn follow(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        backend: crate::Backend,
        customer: CustomerId,
        change: Change,
        touched: Touched<'_>,
        at: i64,
    ) -> StoreResult<u64> {
        // Serialises with a disclosure being recorded (which holds the row FOR SHARE): either
        // it committed and is seen below, or it waits and then sees this change.
        // (SQLite has no row locks: its write transaction already excludes every other.)
        if backend == crate::Backend::Postgres {
            // NO KEY: conflicts with a disclosure's FOR SHARE, not with the foreign keys' KEY
            // SHARE that the change's own inserts take (two changes would deadlock otherwise).
            sqlx::query("SELECT 1 FROM customers WHERE id = $1 FOR NO KEY UPDATE")
                .bind(customer.as_bytes().to_vec())
                .fetch_optional(&mut **tx)
                .await?;
        }
        let rows = sqlx::query(
            "SELECT recipient_id, customer_ref, purpose, category FROM disclosures WHERE customer_id = $1",
        )
        .bind(customer.as_bytes().to_vec())
        .fetch_all(&mut **tx)
        .await?;
        let mut due: BTreeMap<(Vec<u8>, String), Vec<String>> = BTreeMap::new();
        for r in &rows {
            let (recipient, customer_ref, purpose, category): (Vec<u8>, String, String, String) =
                (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?);
            let hit = match touched {
                Touched::All => true,
                Touched::Categories(cs) => cs.contains(&category.as_str()),
                Touched::Purpose(p) => p == purpose,
            };
            if hit {
                let cats = due.entry((recipient, customer_ref)).or_default();
                if !cats.contains(&category) {
                    cats.push(category);
                }
            }
        }
        let purpose = match touched {
            Touched::Purpose(p) => Some(p.to_owned()),
            _ => None,
        };
        for ((recipient, customer_ref), mut categories) in
            due.iter_mut().map(|(k, v)| (k, v.clone()))
        {
            categories.sort();
            sqlx::query(
                "INSERT INTO webhook_outbox (id, recipient_id, change, customer_ref, categories, purpose, created_at, status, attempts, next_attempt_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $7)",
            )
            .bind(format!("msg_{}", uuid::Uuid::now_v7().simple()))
            .bind(recipient.clone())
            .bind(change.as_str())
            .bind(customer_ref.clone())
            .bind(categories.join(","))
            .bind(purpose.clone())
            .bind(at)
            .execute(&mut **tx)
            .await?;
        }
        Ok(due.len() as u64)
    }

    /// Forgets what went where about `customer` (after [`SqlStore::follow`] queued the erasure's
    /// notifications): the pseudonyms map to nothing from now on.
    pub(crate) async fn forget_disclosures(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        customer: CustomerId,
    ) -> StoreResult<()> {
        for sql in [
            "DELETE FROM disclosures WHERE customer_id = $1",
            "DELETE FROM shared_pseudonyms WHERE customer_id = $1",
        ] {
            sqlx::query(sql)
                .bind(customer.as_bytes().to_vec())
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl SharingStore for SqlStore {
    async fn insert_recipient(
        &self,
        row: &RecipientRow,
        audit: &[AuditEntryRow],
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO recipients (id, name, kind, country, contact, webhook_url, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(row.id.as_bytes().to_vec())
        .bind(&row.name)
        .bind(&row.kind)
        .bind(&row.country)
        .bind(row.contact.clone())
        .bind(&row.webhook_url)
        .bind(row.created_at)
        .execute(&mut *tx)
        .await?;
        self.outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn recipients(&self) -> StoreResult<Vec<RecipientRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RECIPIENT_COLUMNS} FROM recipients ORDER BY name, id"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(recipient_from).collect()
    }

    async fn recipient(&self, id: RecipientId) -> StoreResult<Option<RecipientRow>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RECIPIENT_COLUMNS} FROM recipients WHERE id = $1"
        )))
        .bind(id.as_bytes().to_vec())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(recipient_from).transpose()
    }

    async fn insert_agreement(
        &self,
        row: &AgreementRow,
        audit: &[AuditEntryRow],
    ) -> StoreResult<AgreementStored> {
        let mut tx = self.write_tx().await?;
        // Identities or pseudonyms, never both, per recipient: checked here, in the transaction
        // (PostgreSQL: the recipient's row locked), so two agreements recorded at once cannot mix.
        let lock = match self.backend {
            crate::Backend::Sqlite => "SELECT 1 FROM recipients WHERE id = $1",
            crate::Backend::Postgres => "SELECT 1 FROM recipients WHERE id = $1 FOR UPDATE",
        };
        sqlx::query(lock)
            .bind(row.recipient_id.as_bytes().to_vec())
            .fetch_optional(&mut *tx)
            .await?;
        let mixed: i64 = sqlx::query(
            "SELECT COUNT(*) FROM agreements WHERE recipient_id = $1 AND identity <> $2",
        )
        .bind(row.recipient_id.as_bytes().to_vec())
        .bind(row.identity.clone())
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        if mixed > 0 {
            return Ok(AgreementStored::MixedIdentity);
        }
        if let Some(old) = row.supersedes {
            // The old version ends when the new one starts (if it had not ended before), and
            // only one version may supersede it.
            let ended = sqlx::query(
                "UPDATE agreements SET ended_at = CASE WHEN ended_at IS NULL OR ended_at > $2 THEN $2 ELSE ended_at END \
                 WHERE id = $1 AND recipient_id = $3 AND NOT EXISTS (SELECT 1 FROM agreements s WHERE s.supersedes = $1)",
            )
            .bind(old.as_bytes().to_vec())
            .bind(row.starts_at)
            .bind(row.recipient_id.as_bytes().to_vec())
            .execute(&mut *tx)
            .await?;
            if ended.rows_affected() == 0 {
                return Ok(AgreementStored::Superseded);
            }
        }
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO agreements ({AGREEMENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        )))
        .bind(row.id.as_bytes().to_vec())
        .bind(row.recipient_id.as_bytes().to_vec())
        .bind(row.version)
        .bind(row.supersedes.map(|s| s.as_bytes().to_vec()))
        .bind(row.purposes.join(","))
        .bind(row.categories.join(","))
        .bind(&row.lawful_basis)
        .bind(&row.document_sha256)
        .bind(&row.identity)
        .bind(row.starts_at)
        .bind(row.expires_at)
        .bind(row.ended_at)
        .bind(row.created_at)
        .execute(&mut *tx)
        .await?;
        self.outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(AgreementStored::Stored)
    }

    async fn end_agreement(
        &self,
        id: AgreementId,
        at: i64,
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool> {
        let q = sqlx::query(
            "UPDATE agreements SET ended_at = $2 WHERE id = $1 AND (ended_at IS NULL OR ended_at > $2)",
        )
        .bind(id.as_bytes().to_vec())
        .bind(at);
        self.update_with_audit(q, audit).await
    }

    async fn agreements(&self, recipient: Option<RecipientId>) -> StoreResult<Vec<AgreementRow>> {
        let rows = match recipient {
            Some(r) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {AGREEMENT_COLUMNS} FROM agreements WHERE recipient_id = $1 ORDER BY starts_at, id"
                )))
                .bind(r.as_bytes().to_vec())
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {AGREEMENT_COLUMNS} FROM agreements ORDER BY starts_at, id"
                )))
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(agreement_from).collect()
    }

    async fn agreement(&self, id: AgreementId) -> StoreResult<Option<AgreementRow>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {AGREEMENT_COLUMNS} FROM agreements WHERE id = $1"
        )))
        .bind(id.as_bytes().to_vec())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(agreement_from).transpose()
    }

    async fn record_disclosure(&self, d: &NewDisclosure<'_>) -> StoreResult<Option<String>> {
        let mut tx = self.write_tx().await?;
        let id = d.customer.as_bytes().to_vec();
        // Under the customer's row lock (PostgreSQL) or the write lock (SQLite), a restriction,
        // withdrawal or erasure committed a moment ago is seen, and one that comes later sees
        // this disclosure when it queues its notifications.
        // First the customer's row, locked (PostgreSQL) or under the write lock (SQLite): a
        // restriction or erasure committed meanwhile is seen in it.
        let lock = match self.backend {
            crate::Backend::Sqlite => {
                "SELECT restricted FROM customers WHERE id = $1 AND erased_at IS NULL"
            }
            crate::Backend::Postgres => {
                "SELECT restricted FROM customers WHERE id = $1 AND erased_at IS NULL FOR SHARE"
            }
        };
        let Some(row) = sqlx::query(lock)
            .bind(id.clone())
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        if row.try_get::<i64, _>(0)? != 0 {
            return Ok(None);
        }
        // Then, in a statement of its own (PostgreSQL takes a new snapshot per statement, after
        // the lock: a withdrawal that held the row is seen), the agreement and the consent.
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM agreements a WHERE a.id = $2 AND a.starts_at <= $3 AND a.expires_at > $3 AND (a.ended_at IS NULL OR a.ended_at > $3)), \
             (SELECT e.action FROM consent_events e WHERE e.customer_id = $1 AND e.purpose = $4 ORDER BY e.id DESC LIMIT 1)",
        )
        .bind(id.clone())
        .bind(d.agreement.id.as_bytes().to_vec())
        .bind(d.at)
        .bind(d.purpose.to_owned())
        .fetch_one(&mut *tx)
        .await?;
        let in_force = row.try_get::<i64, _>(0)? > 0;
        let granted = row.try_get::<Option<String>, _>(1)?.as_deref() == Some("grant");
        if !in_force || (d.consent_needed && !granted) {
            return Ok(None);
        }
        let recipient = d.agreement.recipient_id.as_bytes().to_vec();
        let customer_ref = match d.fresh_pseudonym {
            None => d.customer.to_string(),
            Some(fresh) => {
                sqlx::query(
                    "INSERT INTO shared_pseudonyms (recipient_id, pseudonym, customer_id) VALUES ($1, $2, $3) \
                     ON CONFLICT (customer_id, recipient_id) DO NOTHING",
                )
                .bind(recipient.clone())
                .bind(fresh.to_owned())
                .bind(id.clone())
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "SELECT pseudonym FROM shared_pseudonyms WHERE customer_id = $1 AND recipient_id = $2",
                )
                .bind(id.clone())
                .bind(recipient.clone())
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?
            }
        };
        // One statement for every category (each statement through the driver costs more than
        // the row it writes): `$7` onwards are the categories, each once.
        let mut categories: Vec<&str> = d.categories.to_vec();
        categories.sort_unstable();
        categories.dedup();
        if !categories.is_empty() {
            let rows: Vec<String> = (0..categories.len())
                .map(|i| format!("($1, $2, $3, $4, ${}, $5, $6, $6, 1)", i + 7))
                .collect();
            let sql = format!(
                "INSERT INTO disclosures (customer_id, recipient_id, agreement_id, purpose, category, customer_ref, first_at, last_at, times) \
                 VALUES {} ON CONFLICT (customer_id, recipient_id, agreement_id, purpose, category) \
                 DO UPDATE SET last_at = excluded.last_at, times = disclosures.times + 1",
                rows.join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(id.clone())
                .bind(recipient.clone())
                .bind(d.agreement.id.as_bytes().to_vec())
                .bind(d.purpose.to_owned())
                .bind(customer_ref.clone())
                .bind(d.at);
            for c in &categories {
                q = q.bind((*c).to_owned());
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(Some(customer_ref))
    }

    async fn pseudonym_of(
        &self,
        recipient: RecipientId,
        customer: CustomerId,
    ) -> StoreResult<Option<String>> {
        let row = sqlx::query(
            "SELECT pseudonym FROM shared_pseudonyms WHERE customer_id = $1 AND recipient_id = $2",
        )
        .bind(customer.as_bytes().to_vec())
        .bind(recipient.as_bytes().to_vec())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| r.try_get(0)).transpose().map_err(Into::into)
    }

    async fn pseudonym_customer(
        &self,
        recipient: RecipientId,
        pseudonym: &str,
    ) -> StoreResult<Option<CustomerId>> {
        let row = sqlx::query(
            "SELECT p.customer_id FROM shared_pseudonyms p JOIN customers c ON c.id = p.customer_id \
             WHERE p.recipient_id = $1 AND p.pseudonym = $2 AND c.erased_at IS NULL",
        )
        .bind(recipient.as_bytes().to_vec())
        .bind(pseudonym.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| id16(r.try_get(0)?, CustomerId::from_slice))
            .transpose()
    }

    async fn disclosures_of(&self, customer: CustomerId) -> StoreResult<Vec<DisclosureRow>> {
        let rows = sqlx::query(
            "SELECT recipient_id, agreement_id, purpose, category, first_at, last_at, times FROM disclosures \
             WHERE customer_id = $1 ORDER BY recipient_id, agreement_id, purpose, category",
        )
        .bind(customer.as_bytes().to_vec())
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<DisclosureRow> = Vec::new();
        for r in &rows {
            let recipient_id = id16(r.try_get(0)?, RecipientId::from_slice)?;
            let agreement_id = id16(r.try_get(1)?, AgreementId::from_slice)?;
            let purpose: String = r.try_get(2)?;
            let (category, first_at, last_at, times): (String, i64, i64, i64) =
                (r.try_get(3)?, r.try_get(4)?, r.try_get(5)?, r.try_get(6)?);
            match out.last_mut() {
                Some(d)
                    if d.recipient_id == recipient_id
                        && d.agreement_id == agreement_id
                        && d.purpose == purpose =>
                {
                    d.categories.push(category);
                    d.first_at = d.first_at.min(first_at);
                    d.last_at = d.last_at.max(last_at);
                    d.times = d.times.max(times);
                }
                _ => out.push(DisclosureRow {
                    recipient_id,
                    agreement_id,
                    purpose,
                    categories: vec![category],
                    first_at,
                    last_at,
                    times,
                }),
            }
        }
        Ok(out)
    }

    async fn claim_notifications(
        &self,
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> StoreResult<Vec<NotificationRow>> {
        // Most rounds find nothing due: asked first without a write transaction, so the sender's
        // polling never takes SQLite's write lock from the requests that need it.
        let due = sqlx::query(
            "SELECT 1 FROM webhook_outbox WHERE status = 'pending' AND next_attempt_at <= $1 \
             AND (claimed_until IS NULL OR claimed_until <= $1) LIMIT 1",
        )
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let mut tx = self.write_tx().await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM webhook_outbox WHERE status = 'pending' AND next_attempt_at <= $1 \
             AND (claimed_until IS NULL OR claimed_until <= $1) ORDER BY next_attempt_at, id LIMIT $2{}",
            match self.backend {
                crate::Backend::Sqlite => "",
                crate::Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            }
        )))
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let claimed = rows
            .iter()
            .map(notification_from)
            .collect::<StoreResult<Vec<_>>>()?;
        for n in &claimed {
            sqlx::query("UPDATE webhook_outbox SET claimed_until = $2 WHERE id = $1")
                .bind(&n.id)
                .bind(lease_until)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(claimed)
    }

    async fn settle_notification(&self, id: &str, settled: &Settled) -> StoreResult<()> {
        let q = match settled {
            Settled::Delivered { at } => sqlx::query(
                // An erasure's notice, once delivered, keeps no reference: beside the erasure's
                // time in the audit log, the pseudonym would say whom it stood for.
                "UPDATE webhook_outbox SET status = 'delivered', delivered_at = $2, attempts = attempts + 1, claimed_until = NULL, last_error = NULL, \
                 customer_ref = CASE WHEN change = 'customer.erased' THEN '' ELSE customer_ref END WHERE id = $1",
            )
            .bind(id.to_owned())
            .bind(*at),
            Settled::Retry { next_at, error } => sqlx::query(
                "UPDATE webhook_outbox SET next_attempt_at = $2, last_error = $3, attempts = attempts + 1, claimed_until = NULL WHERE id = $1 AND status = 'pending'",
            )
            .bind(id.to_owned())
            .bind(*next_at)
            .bind(error.clone()),
            Settled::Failed { error } => sqlx::query(
                "UPDATE webhook_outbox SET status = 'failed', last_error = $2, attempts = attempts + 1, claimed_until = NULL WHERE id = $1 AND status = 'pending'",
            )
            .bind(id.to_owned())
            .bind(error.clone()),
        };
        q.execute(&self.pool).await?;
        Ok(())
    }

    async fn notifications(
        &self,
        recipient: Option<RecipientId>,
        limit: u32,
    ) -> StoreResult<Vec<NotificationRow>> {
        let rows = match recipient {
            Some(r) => sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {NOTIFICATION_COLUMNS} FROM webhook_outbox WHERE recipient_id = $1 ORDER BY id DESC LIMIT $2"
            )))
            .bind(r.as_bytes().to_vec())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?,
            None => sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {NOTIFICATION_COLUMNS} FROM webhook_outbox ORDER BY id DESC LIMIT $1"
            )))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?,
        };
        rows.iter().map(notification_from).collect()
    }
}
