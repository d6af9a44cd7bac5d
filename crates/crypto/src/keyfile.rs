//! Secret key files: base64 of 32 random bytes, created owner-only (0600) and never overwritten.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::CryptoError;

fn error(path: &Path, reason: impl Into<String>) -> CryptoError {
    CryptoError::KeyFile {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// Reads a key file. Returns the key and whether the file's mode lets others than its owner read
/// it, which the caller should warn about.
pub(crate) fn read(path: &Path) -> Result<(Zeroizing<[u8; 32]>, bool), CryptoError> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|e| error(path, e.kind().to_string()))?,
    );
    let bytes = Zeroizing::new(
        STANDARD
            .decode(text.trim())
            .map_err(|_| error(path, "not base64"))?,
    );
    let raw: Zeroizing<[u8; 32]> = Zeroizing::new(
        bytes
            .as_slice()
            .try_into()
            .map_err(|_| error(path, "must hold exactly 32 bytes (base64)"))?,
    );
    Ok((raw, too_open(path)))
}

/// Generates a key and writes it to `path` (mode 0600, never overwriting), durably.
pub(crate) fn create(path: &Path) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    let mut raw = Zeroizing::new([0u8; 32]);
    crate::random_bytes(raw.as_mut_slice())?;
    let encoded = Zeroizing::new(format!("{}\n", STANDARD.encode(raw.as_slice())));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(path)
        .map_err(|e| error(path, e.kind().to_string()))?;
    f.write_all(encoded.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| error(path, e.kind().to_string()))?;
    if let Some(dir) = path.parent().and_then(|d| {
        std::fs::File::open(if d.as_os_str().is_empty() {
            Path::new(".")
        } else {
            d
        })
        .ok()
    }) {
        let _ = dir.sync_all();
    }
    Ok(raw)
}

/// Loads the key at `path`, or creates one there if there is none: (key, created, too open).
pub(crate) fn load_or_create(
    path: &Path,
) -> Result<(Zeroizing<[u8; 32]>, bool, bool), CryptoError> {
    match create(path) {
        Ok(k) => Ok((k, true, false)),
        Err(_) if path.exists() => read(path).map(|(k, open)| (k, false, open)),
        Err(e) => Err(e),
    }
}

#[cfg(unix)]
fn too_open(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o077 != 0)
        .unwrap_or(false)
}

#[cfg(not(unix))]
fn too_open(_: &Path) -> bool {
    false
}
