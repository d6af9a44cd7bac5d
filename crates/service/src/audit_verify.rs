//! `steward audit verify`: the whole tree rebuilt from the stored leaves and compared with
//! everything stored beside them — tree hashes, copied columns, the by-customer index, every
//! signed checkpoint. Safe on a live log: it checks what existed when it began.

use steward_crypto::merkle::{self, Hash};
use steward_crypto::{Checkpoint, NoteVerifier};
use steward_store::{DynStore, StoredAuditEntry};

use crate::error::{ServiceError, ServiceResult};

/// Verifies the audit log in `store` against the verifier key (see [`verify`]); for
/// `steward audit verify`, which needs neither the master key nor a running server.
pub async fn verify_log(
    store: &DynStore,
    verifier_key: &str,
    progress: impl FnMut(u64, u64),
) -> ServiceResult<AuditReport> {
    verify(store, verifier_key, progress).await
}

/// Checks the tags of the audit entries pending in the outbox with the installation's outbox
/// key, unwrapped by `keyring` (`steward audit verify` where the master key is); changes nothing.
pub async fn check_outbox(
    store: &DynStore,
    keyring: &steward_crypto::Keyring,
) -> ServiceResult<steward_store::OutboxCheck> {
    let Some(stored) = store.keyring_get(crate::vault::OUTBOX_KEY).await? else {
        // No key was ever made: no genuine entry carries a tag.
        return Ok(store.check_audit_outbox(&NoKey).await?);
    };
    let key = keyring.unwrap_outbox_key(&crate::vault::wrapped(&stored))?;
    Ok(store
        .check_audit_outbox(&crate::audit::OutboxTags(key))
        .await?)
}

/// The tagger of an installation that never made an outbox key: nothing checks.
#[derive(Debug)]
struct NoKey;

impl steward_store::OutboxTagger for NoKey {
    fn tag(&self, _: &[u8]) -> [u8; 32] {
        [0; 32]
    }
    fn check(&self, _: &[u8], _: &[u8]) -> bool {
        false
    }
}

/// What `audit verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    /// Entries checked.
    pub entries: u64,
    /// Signed checkpoints checked.
    pub checkpoints: usize,
    /// The first problem, if any: the entry index where it shows, and what.
    pub first_bad: Option<(u64, String)>,
    /// Entries that stand in for pending ones refused as tampered ([`crate::audit::OUTBOX_REFUSED`]).
    pub refused: u64,
}

/// Entries read per query while verifying.
const VERIFY_CHUNK: u64 = 20_000;

/// Recomputes the whole tree from the stored entries and compares every stored hash, every copy
/// kept beside a leaf, the head and every signed checkpoint. `progress` gets the entries done.
async fn verify(
    store: &DynStore,
    verifier_key: &str,
    mut progress: impl FnMut(u64, u64),
) -> ServiceResult<AuditReport> {
    let verifier = NoteVerifier::parse(verifier_key).map_err(|_| ServiceError::Integrity)?;
    let size = store.audit_size().await?;
    let bad = |i: u64, what: &str| AuditReport {
        entries: i,
        checkpoints: 0,
        first_bad: Some((i, what.to_owned())),
        refused: 0,
    };
    // The tree is rebuilt in memory from the leaves alone.
    let checkpoints = store.audit_checkpoints().await?;
    let wanted: std::collections::BTreeSet<u64> = checkpoints.iter().map(|(s, _)| *s).collect();
    let mut roots = std::collections::BTreeMap::new();
    if wanted.contains(&0) {
        roots.insert(0, merkle::root_of_edge(&[]));
    }
    // The by-customer index is checked below its watermark, bucket by bucket, by count and by a
    // sum of per-row hashes: a multiset fingerprint that needs no sorting of the index.
    // Checked below the watermark as it was when verification began, and within the log's size
    // then: a server running meanwhile only adds past both.
    let watermark = store.audit_index_watermark().await?;
    let watermark = watermark.min(size);
    // Chunk by chunk; the next chunk is read while this one is checked.
    let fetch =
        |lo: u64, hi: u64| async move { Ok::<_, ServiceError>(store.audit_entries(lo, hi).await?) };
    let mut state = Rebuild {
        edge: Vec::new(),
        roots,
        wanted,
        watermark,
        from_entries: Buckets::new(),
        refused: 0,
    };
    // The entries, chunk by chunk, and meanwhile the by-customer index (read and
    // fingerprinted while the entries' chunks are checked on another thread).
    let entries_pass = async {
        let mut lo = 0u64;
        let mut current = if size > 0 {
            Some(fetch(0, size.min(VERIFY_CHUNK)).await?)
        } else {
            None
        };
        while let Some(entries) = current.take() {
            let hi = (lo + VERIFY_CHUNK).min(size);
            let next = async {
                if hi < size {
                    Some(fetch(hi, (hi + VERIFY_CHUNK).min(size)).await)
                } else {
                    None
                }
            };
            // The check runs on a thread of its own, so that it overlaps the next read's work
            // on this one (taking the rows apart) as well as SQLite's (stepping through them).
            let work = tokio::task::spawn_blocking(move || {
                let outcome = state.chunk(lo, hi, &entries);
                (state, outcome)
            });
            let (next, done) = tokio::join!(next, work);
            let (back, outcome) = done.map_err(|_| ServiceError::Integrity)?;
            state = back;
            if let Some((at, why)) = outcome {
                return Ok(Err(bad(at, why)));
            }
            progress(hi, size);
            current = next.transpose()?;
            lo = hi;
        }
        Ok::<_, ServiceError>(Ok((lo, state)))
    };
    let (pass, scanned) = tokio::join!(entries_pass, scan_index(store, watermark));
    let (lo, state) = match pass? {
        Ok(done) => done,
        Err(report) => return Ok(report),
    };
    let scanned = scanned?;
    let n = lo;
    let Rebuild {
        roots,
        from_entries,
        refused,
        ..
    } = state;
    if n != size {
        return Ok(bad(n, "entries are missing below the head's size"));
    }
    // Whatever lies past the head was not appended: an append moves head, entries and hashes
    // in one transaction, so anything stored before the head is read is covered by it.
    let last_entry = store.audit_extent().await?;
    let head = store.audit_size().await?;
    if head < size {
        return Ok(bad(head, "the head moved back"));
    }
    if let Some(e) = last_entry.filter(|e| *e >= head) {
        return Ok(bad(e, "entries past the head"));
    }
    if let Some((at, why)) = check_index(store, watermark, head, &from_entries, scanned).await? {
        return Ok(bad(at, why));
    }
    for (at, note) in &checkpoints {
        let Ok(c) = Checkpoint::open(note, &verifier) else {
            return Ok(bad(
                (*at).min(head),
                "a checkpoint's signature does not verify",
            ));
        };
        if c.size != *at || *at > head {
            return Ok(bad(
                (*at).min(head),
                "a signed checkpoint does not match the log",
            ));
        }
        // One signed while this ran, past the size verified, is checked by the next run.
        if *at <= size && roots.get(at) != Some(&c.root) {
            return Ok(bad(
                *at,
                "a signed checkpoint does not match the recomputed tree",
            ));
        }
    }
    Ok(AuditReport {
        entries: n,
        checkpoints: checkpoints.len(),
        first_bad: None,
        refused,
    })
}

/// The tree rebuilt from the leaves alone, and what verification gathers along the way.
struct Rebuild {
    /// The right edge of the tree so far.
    edge: Vec<Hash>,
    /// Roots at the checkpointed sizes.
    roots: std::collections::BTreeMap<u64, Hash>,
    /// The checkpointed sizes.
    wanted: std::collections::BTreeSet<u64>,
    watermark: u64,
    from_entries: Buckets,
    /// Stand-ins for refused pending entries seen.
    refused: u64,
}

impl Rebuild {
    /// Checks entries `[lo, hi)` and the stored hashes their appends wrote; the first problem.
    fn chunk(
        &mut self,
        lo: u64,
        hi: u64,
        entries: &[StoredAuditEntry],
    ) -> Option<(u64, &'static str)> {
        let mut seen = lo;
        for (expect, e) in (lo..hi).zip(entries) {
            if e.index != expect {
                return Some((expect, "an entry is missing or out of order"));
            }
            if let Some(why) = columns_disagree(e) {
                return Some((expect, why));
            }
            if e.row.action == crate::audit::OUTBOX_REFUSED {
                self.refused += 1;
            }
            if let Some(c) = e.row.customer_id
                && expect < self.watermark
            {
                add(&mut self.from_entries, c.as_bytes(), expect);
            }
            let written = merkle::push(&mut self.edge, expect, merkle::leaf_hash(&e.row.leaf));
            if e.hashes.len() != written.len() * 32
                || written
                    .iter()
                    .zip(e.hashes.chunks_exact(32))
                    .any(|(w, s)| w.as_slice() != s)
            {
                return Some((
                    expect,
                    "the tree hashes stored with an entry differ from the recomputed ones",
                ));
            }
            if self.wanted.contains(&(expect + 1)) {
                self.roots
                    .insert(expect + 1, merkle::root_of_edge(&self.edge));
            }
            seen = expect + 1;
        }
        (seen < hi).then_some((seen, "an entry is missing below the head's size"))
    }
}

/// Why the columns kept beside a leaf disagree with it, if they do (the rest of the leaf is
/// covered by its hash).
fn columns_disagree(e: &StoredAuditEntry) -> Option<&'static str> {
    let Some((time, action, customer)) = steward_domain::AuditLeaf::columns(&e.row.leaf) else {
        return Some("a leaf is not a valid entry");
    };
    if time != e.row.occurred_at || action != e.row.action || customer != e.row.customer_id {
        return Some("the columns beside a leaf disagree with it");
    }
    None
}

/// Entries per fingerprint bucket of the by-customer index check.
const BUCKET: u64 = 65_536;

/// Per bucket of entry indexes: rows counted and the wrapping sum of their fingerprints.
type Buckets = std::collections::BTreeMap<u64, (u64, u128)>;

fn add(b: &mut Buckets, customer: &[u8], idx: u64) {
    // Customer ids are 16 bytes; on the stack, as this runs once per entry and per index row.
    let mut buf = [0u8; 24];
    let bytes: &[u8] = match customer.len() {
        16 => {
            buf[..16].copy_from_slice(customer);
            buf[16..].copy_from_slice(&idx.to_be_bytes());
            &buf
        }
        _ => &[customer, &idx.to_be_bytes()].concat(),
    };
    let h = merkle::leaf_hash(bytes);
    let mut first = [0u8; 16];
    first.copy_from_slice(&h[..16]);
    let slot = b.entry(idx / BUCKET).or_default();
    slot.0 += 1;
    slot.1 = slot.1.wrapping_add(u128::from_be_bytes(first));
}

/// The by-customer index read whole, from one snapshot, as the access log reads it: the
/// fingerprints of its rows below `watermark`, and the indexes of the rows at or past it.
async fn scan_index(store: &DynStore, watermark: u64) -> ServiceResult<(Buckets, Vec<u64>)> {
    let mut from_index = Buckets::new();
    let mut past = Vec::new();
    store
        .audit_index_scan(50_000, &mut |rows| {
            for (c, i) in rows {
                if i < watermark {
                    add(&mut from_index, &c, i);
                } else {
                    past.push(i);
                }
            }
        })
        .await?;
    Ok((from_index, past))
}

/// Compares the by-customer index (`scanned` by [`scan_index`]) with the entries below
/// `watermark` (`from_entries`); returns the first entry index where they disagree, and why.
async fn check_index(
    store: &DynStore,
    watermark: u64,
    size: u64,
    from_entries: &Buckets,
    (from_index, past): (Buckets, Vec<u64>),
) -> ServiceResult<Option<(u64, &'static str)>> {
    // A server may have extended the index meanwhile: rows past the watermark it has reached
    // now are not the index's.
    let now = store.audit_index_watermark().await?;
    // The log only grows and the index trails it, so the head read after the watermark bounds
    // it: an index step between the two reads is no alarm (read before, it was one).
    if now > size && now > store.audit_size().await? {
        return Ok(Some((
            size,
            "the by-customer index claims entries past the log",
        )));
    }
    if let Some(i) = past.iter().filter(|i| **i >= now).min() {
        return Ok(Some((*i, "a by-customer index row past its watermark")));
    }
    let buckets: std::collections::BTreeSet<u64> = from_entries
        .keys()
        .chain(from_index.keys())
        .copied()
        .collect();
    let Some(bad) = buckets
        .into_iter()
        .find(|b| from_entries.get(b) != from_index.get(b))
    else {
        return Ok(None);
    };
    // Locate the first disagreeing entry in that bucket exactly.
    let (lo, hi) = (bad * BUCKET, ((bad + 1) * BUCKET).min(watermark));
    let mut want: Vec<(u64, Vec<u8>)> = store
        .audit_entries(lo, hi)
        .await?
        .into_iter()
        .filter_map(|e| e.row.customer_id.map(|c| (e.index, c.as_bytes().to_vec())))
        .collect();
    let mut have = Vec::new();
    store
        .audit_index_scan(10_000, &mut |rows| {
            have.extend(
                rows.into_iter()
                    .filter(|(_, i)| (lo..hi).contains(i))
                    .map(|(c, i)| (i, c)),
            );
        })
        .await?;
    want.sort();
    have.sort();
    let at = want
        .iter()
        .zip(&have)
        .find(|(w, h)| w != h)
        .map(|(w, h)| w.0.min(h.0))
        .or_else(|| want.get(have.len()).or(have.get(want.len())).map(|x| x.0))
        .unwrap_or(lo);
    Ok(Some((
        at,
        "the by-customer index disagrees with the entries",
    )))
}
