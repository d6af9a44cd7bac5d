//! Audit log exports anyone can check without the database or the master key: the latest signed
//! checkpoint, then every entry up to its size, as JSON lines.
//!
//! ```text
//! {"format":"steward-audit-export/1","checkpoint":"<signed note>"}
//! {"index":0,"leaf":"<base64 of the hashed bytes>"}
//! …
//! ```

use std::io::{BufRead, Write};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use steward_crypto::merkle;
use steward_crypto::{Checkpoint, NoteVerifier};
use steward_store::DynStore;

use crate::error::{ServiceError, ServiceResult};

/// The export format's name and version.
pub const EXPORT_FORMAT: &str = "steward-audit-export/1";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: String,
    checkpoint: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    index: u64,
    leaf: String,
}

/// Entries read from the store per query while exporting.
const CHUNK: u64 = 10_000;

/// Writes the latest signed checkpoint and the entries it covers to `out`; returns how many.
pub async fn export_audit(
    store: &DynStore,
    out: &mut impl Write,
    mut progress: impl FnMut(u64, u64),
) -> ServiceResult<u64> {
    let (size, note) = store
        .latest_audit_checkpoint()
        .await?
        .ok_or(ServiceError::NotFound("signed checkpoint"))?;
    let io = |_| ServiceError::Integrity;
    let header = Header {
        format: EXPORT_FORMAT.into(),
        checkpoint: note,
    };
    serde_json::to_writer(&mut *out, &header).map_err(|_| ServiceError::Integrity)?;
    out.write_all(b"\n").map_err(io)?;
    let mut n = 0;
    while n < size {
        let entries = store.audit_entries(n, (n + CHUNK).min(size)).await?;
        if entries.is_empty() {
            break;
        }
        for e in entries {
            let line = Line {
                index: e.index,
                leaf: STANDARD.encode(&e.row.leaf),
            };
            serde_json::to_writer(&mut *out, &line).map_err(|_| ServiceError::Integrity)?;
            out.write_all(b"\n").map_err(io)?;
            n = e.index + 1;
        }
        progress(n, size);
    }
    out.flush().map_err(io)?;
    Ok(n)
}

/// What checking an export found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportReport {
    /// The signed checkpoint's size.
    pub size: u64,
    /// The first problem: the entry (or line) where it shows, and what.
    pub first_bad: Option<(u64, String)>,
}

/// Checks an export against a verifier key: the checkpoint's signature, then the tree rebuilt
/// from the exported leaves alone against the signed root. Needs nothing else.
pub fn verify_export(input: impl BufRead, verifier_key: &str) -> Result<ExportReport, String> {
    let verifier = NoteVerifier::parse(verifier_key)
        .map_err(|_| "the verifier key is malformed".to_owned())?;
    let mut lines = input.lines();
    let header: Header = lines
        .next()
        .ok_or("the file is empty")?
        .map_err(|e| format!("reading: {e}"))
        .and_then(|l| {
            serde_json::from_str(&l).map_err(|_| "line 1 is not an export header".into())
        })?;
    if header.format != EXPORT_FORMAT {
        return Err(format!("unknown format {:?}", header.format));
    }
    let head = Checkpoint::open(&header.checkpoint, &verifier)
        .map_err(|_| "the checkpoint is not signed by this key".to_owned())?;
    let bad = |at: u64, why: &str| {
        Ok(ExportReport {
            size: head.size,
            first_bad: Some((at, why.to_owned())),
        })
    };
    let mut edge = Vec::new();
    let mut n = 0u64;
    for line in lines {
        let line = line.map_err(|e| format!("reading: {e}"))?;
        let Ok(entry) = serde_json::from_str::<Line>(&line) else {
            return bad(n, "a line is not an entry");
        };
        if entry.index != n {
            return bad(n, "an entry is missing or out of order");
        }
        let Ok(leaf) = STANDARD.decode(&entry.leaf) else {
            return bad(n, "a leaf is not base64");
        };
        if n >= head.size {
            return bad(n, "entries past the signed checkpoint");
        }
        merkle::push(&mut edge, n, merkle::leaf_hash(&leaf));
        n += 1;
    }
    if n != head.size {
        return bad(n, "entries are missing below the signed checkpoint's size");
    }
    if merkle::root_of_edge(&edge) != head.root {
        return bad(head.size, "the entries do not hash to the signed root");
    }
    Ok(ExportReport {
        size: head.size,
        first_bad: None,
    })
}
