//! Erasure by crypto-shredding, legal holds, and the erasure journal that keeps restored
//! backups from bringing an erased customer back.
//!
//! The journal is an append-only text file kept beside the master key, not in the database, so
//! backups of the database do not carry it. Each erasure is written (and synced) to it before
//! the database forgets the customer; on start and on restore, every erasure the database does
//! not know is done again. Each line is chained to the previous one by a MAC under an
//! installation key, so a line removed or edited is detected. Hand-written: it is a few lines of
//! text, and its rules (write first, replay on start) are the point.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use serde::Serialize;
use steward_domain::{CustomerId, Timestamp};
use steward_store::{CustomerStanding, Erased, ErasureStore, MaintenanceStore};

use crate::auth::Actor;
use crate::door::{About, Door};
use crate::error::{ServiceError, ServiceResult};
use crate::vault::Vault;

const HEADER: &str = "steward-erasure-journal/1";

/// Ciphertext rows purged per transaction.
const PURGE_CHUNK: u32 = 5_000;
/// Customers with at most this many rows left are purged within the request.
const PURGE_INLINE: u64 = 1_000;

/// What an erasure destroys, named in its disposal record: every profile field, then the rest.
pub fn erased_categories() -> Vec<&'static str> {
    steward_domain::ProfileField::ALL
        .iter()
        .map(|f| f.name())
        .chain([
            "purchase_history",
            "communications",
            "consents",
            "lookup_indexes",
        ])
        .collect()
}

/// One erasure in the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// Position in the journal, from 1.
    pub seq: i64,
    /// Whose data is erased.
    pub customer: CustomerId,
    /// When (Unix ms).
    pub at: i64,
    /// The erasure did not happen (a legal hold or a failure came first).
    pub void: bool,
}

/// The erasure journal file.
pub(crate) struct Journal {
    path: PathBuf,
    /// Serialises appends within this process.
    lock: Mutex<()>,
}

impl Journal {
    pub(crate) fn new(path: PathBuf) -> Self {
        Self {
            path,
            lock: Mutex::new(()),
        }
    }

    fn line_mac(door: &Door, prev: &str, body: &str) -> String {
        door.mac("erasure-journal", &format!("{prev}\n{body}"))
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Reads and checks every entry.
    pub(crate) fn read(&self, door: &Door) -> ServiceResult<Vec<JournalEntry>> {
        let file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(_) => return Err(ServiceError::Journal("cannot be read")),
        };
        let mut entries = Vec::new();
        let mut prev = String::from("0");
        for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|_| ServiceError::Journal("cannot be read"))?;
            if n == 0 {
                if line != HEADER {
                    return Err(ServiceError::Journal("is not an erasure journal"));
                }
                continue;
            }
            let (body, mac) = line
                .rsplit_once(' ')
                .ok_or(ServiceError::Journal("has a malformed line"))?;
            if !constant_time_eq(Self::line_mac(door, &prev, body).as_bytes(), mac.as_bytes()) {
                return Err(ServiceError::Journal(
                    "failed its integrity check: a line was changed, removed or reordered",
                ));
            }
            entries.push(parse(body).ok_or(ServiceError::Journal("has a malformed line"))?);
            if entries.last().map(|e| e.seq) != Some(n as i64) {
                return Err(ServiceError::Journal("has a gap in its numbering"));
            }
            mac.clone_into(&mut prev);
        }
        Ok(entries)
    }

    /// Appends an entry and syncs it to disk; returns its sequence number. Reads only the last
    /// line (the whole journal is checked on replay), under an exclusive lock on the file, so a
    /// `steward erase` beside a running server cannot fork the chain.
    pub(crate) fn append(
        &self,
        door: &Door,
        customer: CustomerId,
        at: i64,
        void: bool,
    ) -> ServiceResult<i64> {
        let _held = self
            .lock
            .lock()
            .map_err(|_| ServiceError::Journal("is poisoned"))?;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .mode_owner_only()
            .open(&self.path)
            .map_err(|_| ServiceError::Journal("cannot be opened for writing"))?;
        file.lock()
            .map_err(|_| ServiceError::Journal("cannot be locked"))?;
        let (last_seq, prev) = last_line(&mut file)?;
        let seq = last_seq + 1;
        let body = format!(
            "{seq} {customer} {at} {}",
            if void { "void" } else { "erase" }
        );
        let mac = Self::line_mac(door, &prev, &body);
        let text = if last_seq == 0 {
            format!("{HEADER}\n{body} {mac}\n")
        } else {
            format!("{body} {mac}\n")
        };
        file.write_all(text.as_bytes())
            .and_then(|_| file.sync_all())
            .map_err(|_| ServiceError::Journal("cannot be written"))?;
        if last_seq == 0
            && let Some(dir) = self.path.parent()
        {
            // The new file's name is durable only once its directory is.
            let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(seq)
    }
}

/// The sequence number and MAC of the journal's last line; `(0, "0")` for an empty journal.
fn last_line(file: &mut std::fs::File) -> ServiceResult<(i64, String)> {
    use std::io::{Read, Seek, SeekFrom};
    let len = file
        .seek(SeekFrom::End(0))
        .map_err(|_| ServiceError::Journal("cannot be read"))?;
    if len == 0 {
        return Ok((0, "0".to_owned()));
    }
    // A line is well under 200 bytes; 4 KiB from the end always holds the last whole one.
    let from = len.saturating_sub(4096);
    file.seek(SeekFrom::Start(from))
        .map_err(|_| ServiceError::Journal("cannot be read"))?;
    let mut tail = String::new();
    file.read_to_string(&mut tail)
        .map_err(|_| ServiceError::Journal("cannot be read"))?;
    let line = tail
        .lines()
        .last()
        .ok_or(ServiceError::Journal("has a malformed line"))?;
    if line == HEADER {
        return Ok((0, "0".to_owned()));
    }
    let (body, mac) = line
        .rsplit_once(' ')
        .ok_or(ServiceError::Journal("has a malformed line"))?;
    let entry = parse(body).ok_or(ServiceError::Journal("has a malformed line"))?;
    Ok((entry.seq, mac.to_owned()))
}

trait OwnerOnly {
    fn mode_owner_only(&mut self) -> &mut Self;
}

impl OwnerOnly for std::fs::OpenOptions {
    fn mode_owner_only(&mut self) -> &mut Self {
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            self.mode(0o600);
        }
        self
    }
}

fn parse(body: &str) -> Option<JournalEntry> {
    let mut it = body.split(' ');
    let seq = it.next()?.parse().ok()?;
    let customer = it.next()?.parse().ok()?;
    let at = it.next()?.parse().ok()?;
    let void = match it.next()? {
        "erase" => false,
        "void" => true,
        _ => return None,
    };
    it.next().is_none().then_some(JournalEntry {
        seq,
        customer,
        at,
        void,
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// The answer to an erasure: the certificate of destruction, with no personal value.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErasureReport {
    /// Whose data was erased.
    #[schema(value_type = String, format = Uuid)]
    pub customer_id: CustomerId,
    /// When the data key was destroyed (RFC 3339).
    pub erased_at: String,
    /// How: `crypto-shredding` (the customer's data key destroyed, then the ciphertext purged).
    pub method: &'static str,
    /// The categories of data destroyed.
    pub categories: Vec<&'static str>,
    /// `complete`, or `in_progress` while a large history is purged in the background.
    pub purge: &'static str,
    /// The erasure journal's sequence number for this erasure.
    pub journal_seq: i64,
}

/// The erasure context: crypto-shredding in the store, the journal, legal holds. What an erasure
/// also moves elsewhere (personalisation's model) is the vault's, which orchestrates the steps.
pub struct Erasures {
    door: Arc<Door>,
    store: Arc<dyn ErasureStore>,
    /// Clears old page copies after a purge.
    maintenance: Arc<dyn MaintenanceStore>,
    /// Where erasures are journalled before the database forgets (set by the opener).
    journal: OnceLock<Journal>,
}

impl Erasures {
    /// The erasures of one installation (made by the composition root).
    pub(crate) fn new(
        door: Arc<Door>,
        store: Arc<dyn ErasureStore>,
        maintenance: Arc<dyn MaintenanceStore>,
    ) -> Self {
        Erasures {
            door,
            store,
            maintenance,
            journal: OnceLock::new(),
        }
    }

    /// Keeps the erasure journal at `path` (beside the master key; never in a backup).
    pub fn use_journal(&self, path: PathBuf) {
        let _ = self.journal.set(Journal::new(path));
    }

    fn journal(&self) -> ServiceResult<&Journal> {
        self.journal
            .get()
            .ok_or(ServiceError::Journal("is not configured"))
    }

    /// Writes an erasure (or, `void`, that one did not happen) to the journal, synced; its
    /// sequence number.
    fn journal_append(&self, id: CustomerId, at: i64, void: bool) -> ServiceResult<i64> {
        self.journal()?.append(&self.door, id, at, void)
    }

    /// Every journalled erasure, checked.
    fn journal_entries(&self) -> ServiceResult<Vec<JournalEntry>> {
        self.journal()?.read(&self.door)
    }

    /// Whether customer `id` is there, held, or absent.
    pub(crate) async fn standing(&self, id: CustomerId) -> ServiceResult<CustomerStanding> {
        Ok(self.store.customer_standing(id).await?)
    }

    /// Every erasure the database records.
    pub(crate) async fn erasures(&self) -> ServiceResult<Vec<steward_store::ErasureRow>> {
        Ok(self.store.erasures().await?)
    }

    /// The shred transaction, with its disposal record (the caller has decided the erasure and
    /// journalled it as `seq`). Private to this module: only `Vault::shred`, which also takes the
    /// customer's basket out of personalisation's model, calls it.
    async fn shred(
        &self,
        actor: Actor<'_>,
        id: CustomerId,
        seq: i64,
        at: Timestamp,
        why: &str,
    ) -> ServiceResult<Erased> {
        let subject = format!("crypto-shredding; {why}; journal {seq}");
        let entry = self.door.write_entry_marked(
            actor,
            "erase",
            Some(id),
            &erased_categories(),
            About {
                subject: Some(&subject),
                purpose: None,
            },
            "destroyed",
        );
        Ok(self
            .store
            .erase_customer(
                id,
                seq,
                at.millis(),
                PURGE_INLINE + 1,
                std::slice::from_ref(&entry),
            )
            .await?)
    }

    /// Purges what an erasure left, in bounded transactions, then clears old page copies.
    async fn purge(&self, id: CustomerId) -> ServiceResult<()> {
        while self
            .store
            .purge_customer(id, PURGE_CHUNK, Timestamp::now().millis())
            .await?
            > 0
        {}
        self.maintenance.compact().await?;
        Ok(())
    }

    /// Sets (`Some` case reference) or lifts (`None`) a legal hold on a customer.
    pub async fn set_legal_hold(
        &self,
        actor: Actor<'_>,
        id: CustomerId,
        reference: Option<&str>,
    ) -> ServiceResult<()> {
        if let Some(r) = reference {
            validate_reference(r)?;
        }
        self.door
            .authorize_actor(
                actor,
                steward_policy::Action::ManageLegalHold,
                Some(id),
                false,
            )
            .await?;
        let action = if reference.is_some() {
            "legal_hold.set"
        } else {
            "legal_hold.lift"
        };
        let entry = self.door.write_entry_for(
            actor,
            action,
            Some(id),
            &[],
            About {
                subject: reference,
                purpose: None,
            },
        );
        if self.store.set_legal_hold(id, reference, &[entry]).await? {
            Ok(())
        } else {
            Err(ServiceError::NotFound("customer"))
        }
    }
}

impl Vault {
    /// Erases a customer by crypto-shredding: unreadable and unfindable when this returns; what
    /// ciphertext is left is purged now or, for a long history, in the background.
    pub async fn erase_customer(
        &self,
        actor: Actor<'_>,
        id: CustomerId,
    ) -> ServiceResult<ErasureReport> {
        self.door()
            .authorize_actor(
                actor,
                steward_policy::Action::EraseCustomer,
                Some(id),
                false,
            )
            .await?;
        self.erase_authorized(actor, id, "request").await
    }

    /// [`Vault::erase_customer`] once the erasure is authorised (by the policy, the operator,
    /// a verified data-subject request, or retention); `why` goes into the disposal record.
    pub(crate) async fn erase_authorized(
        &self,
        actor: Actor<'_>,
        id: CustomerId,
        why: &str,
    ) -> ServiceResult<ErasureReport> {
        let erasures = self.erasures();
        match erasures.standing(id).await? {
            CustomerStanding::Absent => return Err(ServiceError::NotFound("customer")),
            CustomerStanding::Held(r) => return Err(ServiceError::LegalHold(r)),
            CustomerStanding::Present => {}
        }
        let at = Timestamp::now();
        // Written before the database forgets: if the database fails next, the erasure is
        // replayed on the next start rather than lost.
        let seq = erasures.journal_append(id, at.millis(), false)?;
        let outcome = self.shred(actor, id, seq, at, why).await;
        let remaining = match outcome {
            Ok(Erased::Shredded { remaining }) => remaining,
            other => {
                // Not erased: void the journal line so no replay erases a held customer.
                let _ = erasures.journal_append(id, Timestamp::now().millis(), true);
                return Err(match other {
                    Ok(Erased::Held(r)) => ServiceError::LegalHold(r),
                    Ok(_) => ServiceError::NotFound("customer"),
                    Err(e) => e,
                });
            }
        };
        let purge = if remaining <= PURGE_INLINE {
            erasures.purge(id).await?;
            "complete"
        } else {
            let erasures = self.erasures().clone();
            tokio::spawn(async move {
                if let Err(e) = erasures.purge(id).await {
                    tracing::warn!(error = %e, "purging an erased customer stopped; resumed on the next start");
                }
            });
            "in_progress"
        };
        Ok(ErasureReport {
            customer_id: id,
            erased_at: at.to_rfc3339_millis(),
            method: "crypto-shredding",
            categories: erased_categories(),
            purge,
            journal_seq: seq,
        })
    }

    /// The shred transaction; the customer's basket leaves personalisation's model with the key
    /// (issue 20).
    async fn shred(
        &self,
        actor: Actor<'_>,
        id: CustomerId,
        seq: i64,
        at: Timestamp,
        why: &str,
    ) -> ServiceResult<Erased> {
        self.personalisation()
            .with_basket_moved(id, async || {
                self.erasures().shred(actor, id, seq, at, why).await
            })
            .await
    }

    /// Makes the database agree with the erasure journal: every erasure it does not know (a
    /// restored backup, a crash between journal and database) is done again, and every purge
    /// left unfinished is finished. Returns how many customers were erased again.
    pub async fn replay_erasures(&self) -> ServiceResult<usize> {
        let entries = self.erasures().journal_entries()?;
        let known: std::collections::HashMap<CustomerId, steward_store::ErasureRow> = self
            .erasures()
            .erasures()
            .await?
            .into_iter()
            .map(|r| (r.customer_id, r))
            .collect();
        // A void line follows the erase line it voids: an erase is void when a later void line
        // names the same customer.
        let mut last_void: std::collections::HashMap<CustomerId, i64> =
            std::collections::HashMap::new();
        for e in entries.iter().filter(|e| e.void) {
            let v = last_void.entry(e.customer).or_insert(e.seq);
            *v = (*v).max(e.seq);
        }
        let mut again = 0;
        for e in entries.iter().filter(|e| !e.void) {
            if last_void.get(&e.customer).is_some_and(|v| *v > e.seq) {
                continue;
            }
            if known
                .get(&e.customer)
                .is_some_and(|k| k.journal_seq >= e.seq)
            {
                continue;
            }
            let at = Timestamp(e.at);
            match self
                .shred(
                    Actor::Operator(crate::auth::Operator::internal("erasure-replay")),
                    e.customer,
                    e.seq,
                    at,
                    "replay",
                )
                .await?
            {
                Erased::Shredded { .. } => again += 1,
                Erased::Absent => {}
                Erased::Held(_) => tracing::warn!(
                    seq = e.seq,
                    "a journalled erasure is blocked by a legal hold in this database; left as it is"
                ),
            }
        }
        // Erasures the database records that this journal lacks were journalled elsewhere: this
        // server does not share the installation's journal, and a restored backup could bring
        // those customers back through it before another server replays.
        let journalled: std::collections::HashSet<(CustomerId, i64)> = entries
            .iter()
            .filter(|e| !e.void)
            .map(|e| (e.customer, e.seq))
            .collect();
        let unknown = known
            .values()
            .filter(|k| !journalled.contains(&(k.customer_id, k.journal_seq)))
            .count();
        if unknown > 0 {
            tracing::error!(
                erasures = unknown,
                "erasures recorded in the database are missing from this server's erasure \
                 journal: every server of one database must name the same journal \
                 (--erasure-journal, on storage they all mount), or a restored backup can bring \
                 those customers back"
            );
        }
        for r in self.erasures().erasures().await? {
            if r.purged_at.is_none() {
                self.erasures().purge(r.customer_id).await?;
            }
        }
        Ok(again)
    }
}

/// A legal hold's case reference: short, and from a character set that keeps names out.
fn validate_reference(r: &str) -> ServiceResult<()> {
    let ok = !r.is_empty()
        && r.len() <= 64
        && r.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        && r.chars().any(|c| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(steward_domain::ValidationError::new(
            "reference",
            "must be a case reference of 1 to 64 letters, digits and - _ . /, with at least one digit",
        )
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_lines_parse_and_reject_extras() {
        let id = CustomerId::new();
        let e = parse(&format!("3 {id} 1700000000000 erase")).expect("parses");
        assert_eq!(
            (e.seq, e.customer, e.at, e.void),
            (3, id, 1_700_000_000_000, false)
        );
        assert!(parse(&format!("3 {id} 1700000000000 void")).is_some_and(|e| e.void));
        assert!(parse(&format!("3 {id} 1700000000000 erase extra")).is_none());
        assert!(parse(&format!("3 {id} 1700000000000 delete")).is_none());
        assert!(parse("x y z erase").is_none());
    }

    #[test]
    fn references_keep_to_case_numbers() {
        assert!(validate_reference("CASE-2026/114").is_ok());
        assert!(validate_reference("John Smith").is_err());
        assert!(validate_reference("litigation").is_err());
        assert!(validate_reference("").is_err());
        assert!(validate_reference(&"1".repeat(65)).is_err());
    }
}
