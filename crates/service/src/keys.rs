//! Master-key files and rotation.
//!
//! Rotation re-wraps every data key and installation key under a new master key without
//! touching the sealed data. It is safe to interrupt: the new key is written first, to
//! `<key file>.next`; each batch of re-wrapped keys commits on its own and records which master
//! key wrapped it; while `.next` exists both keys are loaded, so every key opens whatever state
//! the rotation stopped in; running the rotation again resumes it. Only when no stored key
//! is wrapped by the old master key does `.next` replace the key file (an atomic rename).

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use steward_crypto::{Keyring, MasterKey};
use steward_store::DynStore;

use crate::customer_keys::owner_label;
use crate::error::ServiceResult;
use crate::vault::wrapped;

/// Where the pending key of an unfinished rotation is kept.
pub fn next_key_path(key_file: &Path) -> PathBuf {
    let mut p = key_file.as_os_str().to_owned();
    p.push(".next");
    PathBuf::from(p)
}

/// What loading the key file found, for the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyFileStatus {
    /// A new key was generated (it must be backed up).
    pub created: bool,
    /// The key file is readable by others than its owner.
    pub too_open: bool,
    /// An unfinished rotation was found (both keys are loaded).
    pub rotation_pending: bool,
}

/// Loads the master key at `key_file` (creating it if `create` and absent), plus the pending key
/// of an unfinished rotation, if any. The pending key becomes current: new keys are wrapped under
/// it, so an interrupted rotation never loses ground.
pub fn load_keyring(key_file: &Path, create: bool) -> ServiceResult<(Keyring, KeyFileStatus)> {
    let (key, created, too_open) = if create {
        MasterKey::load_or_create(key_file)?
    } else {
        MasterKey::load(key_file).map(|(k, o)| (k, false, o))?
    };
    let next = next_key_path(key_file);
    if next.exists() {
        let (pending, _) = MasterKey::load(&next)?;
        Ok((
            Keyring::new(pending).with_previous(key),
            KeyFileStatus {
                created,
                too_open,
                rotation_pending: true,
            },
        ))
    } else {
        Ok((
            Keyring::new(key),
            KeyFileStatus {
                created,
                too_open,
                rotation_pending: false,
            },
        ))
    }
}

/// Progress of a rotation, reported after each batch.
#[derive(Debug, Clone, Copy)]
pub struct RotationProgress {
    /// Keys re-wrapped so far in this run.
    pub done: u64,
    /// Keys that were left to re-wrap when this run started.
    pub total: u64,
}

/// How a rotation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotationOutcome {
    /// Every key is wrapped by the new master key, which replaced the key file.
    Done {
        /// The new master key id.
        master_key_id: String,
    },
    /// Stopped at a batch boundary because `progress` asked to; run again to resume.
    Paused {
        /// Keys re-wrapped in this run.
        done: u64,
    },
}

/// Rotates the master key at `key_file`. See the module docs for why it is safe to interrupt.
/// `progress` is called after each committed batch; returning `Break` stops cleanly there.
pub async fn rotate(
    store: &DynStore,
    key_file: &Path,
    batch: u32,
    mut progress: impl FnMut(RotationProgress) -> ControlFlow<()>,
) -> ServiceResult<RotationOutcome> {
    let next = next_key_path(key_file);
    // The rotation's entries go through the outbox, tagged under a key the keyring unwraps
    // (the current master key, or either one of a rotation under way).
    let (ring, _) = load_keyring(key_file, false)?;
    crate::vault::tag_outbox(store, &ring).await?;
    drop(ring);
    if !next.exists() {
        MasterKey::create(&next)?;
        // A rotation's start is an audit entry; a resumed one is the same rotation.
        let e = crate::door::entry(
            ("operator:keys rotate".into(), vec![], vec![]),
            "rotate_master_key",
            None,
            &[],
            crate::door::About::default(),
            "written",
        );
        store.record_audit(&[e]).await?;
    }
    let (ring, _) = load_keyring(key_file, false)?;
    let new_id = ring.current_id().0.clone();

    for (name, k) in store.keyring_all().await? {
        if k.master_key_id != new_id {
            let label = format!("keyring\0{name}");
            let w = ring.rewrap(&wrapped(&k), label.as_bytes())?;
            store
                .keyring_replace(
                    &name,
                    &steward_store::StoredKey {
                        master_key_id: w.master_key_id,
                        wrapped: w.blob,
                    },
                )
                .await?;
        }
    }
    let total: i64 = store
        .data_key_census()
        .await?
        .iter()
        .filter(|(id, _)| *id != new_id)
        .map(|(_, n)| n)
        .sum();
    let total = u64::try_from(total).unwrap_or(0);
    let mut done = 0u64;
    loop {
        let keys = store.data_keys_not_under(&new_id, batch).await?;
        if keys.is_empty() {
            break;
        }
        let mut rewrapped = Vec::with_capacity(keys.len());
        for (id, k) in &keys {
            let w = ring.rewrap(&wrapped(k), &owner_label(*id))?;
            rewrapped.push((
                *id,
                steward_store::StoredKey {
                    master_key_id: w.master_key_id,
                    wrapped: w.blob,
                },
            ));
        }
        store.replace_data_keys(&rewrapped).await?;
        done += keys.len() as u64;
        if progress(RotationProgress { done, total }).is_break() {
            return Ok(RotationOutcome::Paused { done });
        }
    }
    // INVARIANT: no stored key is wrapped by the old master key any more, so it can go.
    std::fs::rename(&next, key_file).map_err(|e| steward_crypto::CryptoError::KeyFile {
        path: key_file.display().to_string(),
        reason: e.kind().to_string(),
    })?;
    if let Some(dir) = key_file.parent().and_then(|d| {
        std::fs::File::open(if d.as_os_str().is_empty() {
            Path::new(".")
        } else {
            d
        })
        .ok()
    }) {
        let _ = dir.sync_all();
    }
    Ok(RotationOutcome::Done {
        master_key_id: new_id,
    })
}
