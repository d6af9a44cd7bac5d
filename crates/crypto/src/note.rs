//! Signed tree heads in the formats transparency logs speak: a C2SP `tlog-checkpoint` body inside
//! a C2SP `signed-note`, signed with Ed25519; the verifier key in the C2SP `vkey` form.
//!
//! Hand-written (about a hundred lines of formatting around one Ed25519 signature) so that every
//! key operation stays in this crate on one Ed25519 implementation; the tests check it against an
//! independent implementation (`signed_note`) and the specification's own example.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::CryptoError;

/// The signed-note signature type of Ed25519.
const ED25519: u8 = 0x01;
/// The signature line prefix: an em dash and a space.
const SIG_PREFIX: &str = "\u{2014} ";

/// Why a note or checkpoint was not accepted. Says nothing more than needed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The verifier key is not `name+keyid+base64` of an Ed25519 key.
    #[error("malformed verifier key")]
    VerifierKey,
    /// The note is not text, a blank line and signature lines.
    #[error("malformed note")]
    Malformed,
    /// No valid signature by the expected key.
    #[error("the note is not signed by the expected key")]
    Unverified,
    /// The text is not a `tlog-checkpoint` body.
    #[error("malformed checkpoint")]
    Checkpoint,
}

/// The 4-byte key id of an Ed25519 key with this name.
fn key_id(name: &str, public: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ED25519]);
    h.update(public);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// A key name: non-empty, no whitespace, no `+`.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// The key that signs the audit log's checkpoints. It lives in a file of its own, apart from the
/// master key and the database, so that whoever can rewrite the database cannot re-sign it.
pub struct NoteSigner {
    name: String,
    key: SigningKey,
    id: [u8; 4],
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NoteSigner({})", self.verifier_key())
    }
}

impl NoteSigner {
    /// A signer named `name` (the log's origin) from a 32-byte seed.
    pub fn from_seed(name: &str, seed: &zeroize::Zeroizing<[u8; 32]>) -> Result<Self, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::VerifierKey);
        }
        let key = SigningKey::from_bytes(seed);
        let id = key_id(name, &key.verifying_key().to_bytes());
        Ok(Self {
            name: name.to_owned(),
            key,
            id,
        })
    }

    /// Loads the seed at `path`, or creates one there (0600). The key is named
    /// `{prefix}/{16 hex digits of the SHA-256 of its public key}`, so that two installations
    /// never share a log name. Returns the signer, whether it was created, and whether the file
    /// is open to others.
    pub fn load_or_create(path: &Path, prefix: &str) -> Result<(Self, bool, bool), CryptoError> {
        let (seed, created, open) = crate::keyfile::load_or_create(path)?;
        let public = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
        let name = format!("{prefix}/{}", hex(&Sha256::digest(public)[..8]));
        let signer = Self::from_seed(&name, &seed).map_err(|_| CryptoError::KeyFile {
            path: path.display().to_string(),
            reason: "the log's name is not a valid key name".into(),
        })?;
        Ok((signer, created, open))
    }

    /// The key name (the log's origin).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The verifier key, `name+keyid+base64(0x01 || public key)`.
    pub fn verifier_key(&self) -> String {
        let mut k = vec![ED25519];
        k.extend_from_slice(&self.key.verifying_key().to_bytes());
        format!("{}+{}+{}", self.name, hex(&self.id), STANDARD.encode(k))
    }

    /// Signs `text` (which must end in a newline) into a note.
    pub fn sign(&self, text: &str) -> String {
        let sig: Signature = self.key.sign(text.as_bytes());
        let mut blob = self.id.to_vec();
        blob.extend_from_slice(&sig.to_bytes());
        format!(
            "{text}\n{SIG_PREFIX}{} {}\n",
            self.name,
            STANDARD.encode(blob)
        )
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A parsed verifier key.
#[derive(Debug, Clone)]
pub struct NoteVerifier {
    name: String,
    id: [u8; 4],
    key: VerifyingKey,
}

impl NoteVerifier {
    /// Parses `name+keyid+base64(0x01 || key)`; the key id must match the key.
    pub fn parse(vkey: &str) -> Result<Self, NoteError> {
        let mut parts = vkey.trim().splitn(3, '+');
        let (Some(name), Some(id_hex), Some(b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(NoteError::VerifierKey);
        };
        let raw = STANDARD.decode(b64).map_err(|_| NoteError::VerifierKey)?;
        // `split_first`, not `raw[1..]`: an empty key must be an error, not a panic (found by
        // fuzzing `steward audit verify-export --verifier-key`).
        let Some((&ED25519, rest)) = raw.split_first() else {
            return Err(NoteError::VerifierKey);
        };
        let Ok(public) = <[u8; 32]>::try_from(rest) else {
            return Err(NoteError::VerifierKey);
        };
        let key = VerifyingKey::from_bytes(&public).map_err(|_| NoteError::VerifierKey)?;
        let id = key_id(name, &public);
        if !valid_name(name) || id_hex != hex(&id) {
            return Err(NoteError::VerifierKey);
        }
        Ok(Self {
            name: name.to_owned(),
            id,
            key,
        })
    }

    /// Verifies `note` and returns its text. Signatures by other keys are ignored; a signature
    /// that names this key but does not verify rejects the note.
    pub fn open<'a>(&self, note: &'a str) -> Result<&'a str, NoteError> {
        let split = note.rfind("\n\n").ok_or(NoteError::Malformed)?;
        let (text, sigs) = (&note[..=split], &note[split + 2..]);
        if !sigs.ends_with('\n') || text.chars().any(|c| c.is_ascii_control() && c != '\n') {
            return Err(NoteError::Malformed);
        }
        let mut verified = false;
        for line in sigs.lines() {
            let rest = line.strip_prefix(SIG_PREFIX).ok_or(NoteError::Malformed)?;
            let (name, b64) = rest.split_once(' ').ok_or(NoteError::Malformed)?;
            let blob = STANDARD.decode(b64).map_err(|_| NoteError::Malformed)?;
            if blob.len() < 5 {
                return Err(NoteError::Malformed);
            }
            if name != self.name || blob[..4] != self.id {
                continue;
            }
            let sig = Signature::from_slice(&blob[4..]).map_err(|_| NoteError::Unverified)?;
            self.key
                .verify(text.as_bytes(), &sig)
                .map_err(|_| NoteError::Unverified)?;
            verified = true;
        }
        if verified {
            Ok(text)
        } else {
            Err(NoteError::Unverified)
        }
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A tree head: the body of a C2SP `tlog-checkpoint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin (unique name).
    pub origin: String,
    /// The number of entries.
    pub size: u64,
    /// The RFC 6962 root hash at that size.
    pub root: [u8; 32],
}

impl Checkpoint {
    /// The body text: origin, size, base64 root, each on its own line.
    pub fn to_text(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        )
    }

    /// Parses a body (extension lines after the third are allowed and ignored).
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let mut lines = text.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(NoteError::Checkpoint);
        };
        let leading_zero = size.len() > 1 && size.starts_with('0');
        let size: u64 = size
            .parse()
            .ok()
            .filter(|_| !leading_zero && !origin.is_empty())
            .ok_or(NoteError::Checkpoint)?;
        let root: [u8; 32] = STANDARD
            .decode(root)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or(NoteError::Checkpoint)?;
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
        })
    }

    /// Verifies a signed checkpoint note with `verifier` (whose name must be the origin).
    pub fn open(note: &str, verifier: &NoteVerifier) -> Result<Self, NoteError> {
        let c = Self::parse(verifier.open(note)?)?;
        if c.origin != verifier.name() {
            return Err(NoteError::Unverified);
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    fn signer() -> NoteSigner {
        NoteSigner::from_seed("steward.test/audit", &Zeroizing::new([7u8; 32])).unwrap()
    }

    #[test]
    fn the_specification_example_verifies() {
        // From c2sp.org/signed-note: the example key and note.
        let v = NoteVerifier::parse(
            "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        )
        .unwrap();
        let note = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";
        assert_eq!(v.open(note).unwrap(), "This is an example message.\n");
        let tampered = note.replace("example message", "exemplary message");
        assert_eq!(v.open(&tampered), Err(NoteError::Unverified));
    }

    /// Found by fuzzing (`audit_export`): a key whose base64 part decodes to nothing panicked.
    #[test]
    fn malformed_verifier_keys_are_errors_not_panics() {
        for k in [
            "a+b+",
            "a+00000000+",
            "steward/fuzz+12345678+AA==",
            "+++",
            "",
            "a+b",
        ] {
            assert_eq!(
                NoteVerifier::parse(k).err(),
                Some(NoteError::VerifierKey),
                "{k}"
            );
        }
    }

    #[test]
    fn an_independent_implementation_verifies_our_checkpoints() {
        let s = signer();
        let c = Checkpoint {
            origin: s.name().to_owned(),
            size: 42,
            root: [9u8; 32],
        };
        let note = s.sign(&c.to_text());
        // signed_note (Cloudflare's port of Go's sumdb/note) opens what we sign.
        let theirs = signed_note::StandardVerifier::new(&s.verifier_key()).unwrap();
        let list = signed_note::VerifierList::new(vec![Box::new(theirs)]);
        let parsed = signed_note::Note::from_bytes(note.as_bytes()).unwrap();
        let (verified, _) = parsed.verify(&list).unwrap();
        assert_eq!(verified.len(), 1);
        // And we open it, and parse the body back.
        let v = NoteVerifier::parse(&s.verifier_key()).unwrap();
        assert_eq!(Checkpoint::open(&note, &v).unwrap(), c);
    }

    #[test]
    fn wrong_keys_and_bad_bodies_are_refused() {
        let s = signer();
        let other =
            NoteSigner::from_seed("steward.test/audit", &Zeroizing::new([8u8; 32])).unwrap();
        let c = Checkpoint {
            origin: s.name().to_owned(),
            size: 1,
            root: [1u8; 32],
        };
        let v = NoteVerifier::parse(&s.verifier_key()).unwrap();
        assert_eq!(
            Checkpoint::open(&other.sign(&c.to_text()), &v),
            Err(NoteError::Unverified)
        );
        assert!(NoteVerifier::parse("steward.test/audit+00000000+AQ==").is_err());
        for body in ["x\n01\nAA==\n", "x\n1\nnot base64\n", "\n1\n", "x\n-1\n"] {
            assert_eq!(
                Checkpoint::parse(body),
                Err(NoteError::Checkpoint),
                "{body:?}"
            );
        }
        let forged = s.sign(&c.to_text()).replace("\n1\n", "\n2\n");
        assert_eq!(Checkpoint::open(&forged, &v), Err(NoteError::Unverified));
    }
}
