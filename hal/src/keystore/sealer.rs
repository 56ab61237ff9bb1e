//! Sealing: secrets encrypted so that only this machine reads them back.
//!
//! A [`Sealer`] turns a secret (a key seed, an ACME account key, a certificate key)
//! into an opaque blob that is safe to keep in `data.db`: a backup of the database
//! alone does not reveal it. The blob is bound to a label (the row it is stored under),
//! so a sealed value copied to another row does not unseal.
//!
//! [`AeadSealer`] does the work in software with ChaCha20-Poly1305 under a 32-byte
//! wrapping key. Where that key comes from is the whole security story:
//! - [`machine_secret`]: a file outside the database (`machine.key`, mode 0600). It
//!   protects against a stolen or leaked *backup*; it does not protect against someone
//!   who can read the machine's disk (they get both the file and the database), nor
//!   against root on the running node.
//! - A TPM 2.0 (cargo feature `tpm`, [`super::tpm`]): the wrapping key is itself sealed
//!   by the TPM, so the disk alone is not enough either; the database must be read on
//!   the machine whose TPM sealed it.
//!
//! # Examples
//! ```
//! use fazt_hal::keystore::{AeadSealer, Sealer, KeyOrigin};
//! let sealer = AeadSealer::new([7u8; 32], KeyOrigin::MachineFile, "test key");
//! let blob = sealer.seal("acme", b"secret").unwrap();
//! assert_eq!(sealer.unseal("acme", &blob).unwrap(), b"secret");
//! assert!(sealer.unseal("other-row", &blob).is_err());
//! ```

use super::Error;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use std::fmt;
use std::io::Write;
use std::path::Path;

/// Encrypts secrets so that only this machine can read them back.
pub trait Sealer: Send + Sync + fmt::Debug {
    /// Seals `plaintext` under `label` (the name it will be stored under).
    fn seal(&self, label: &str, plaintext: &[u8]) -> Result<Vec<u8>, Error>;

    /// Opens a blob made by [`Sealer::seal`] with the same `label`.
    fn unseal(&self, label: &str, sealed: &[u8]) -> Result<Vec<u8>, Error>;

    /// Which wrapping key this sealer uses (recorded in every blob it makes).
    fn origin(&self) -> KeyOrigin;

    /// Where the wrapping key lives, for status output.
    fn describe(&self) -> String;
}

/// Where a wrapping key comes from; its byte is the first of every sealed blob, so a
/// blob says which key can open it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrigin {
    /// A machine secret file beside the database.
    MachineFile,
    /// A random key sealed by the TPM.
    Tpm,
}

impl KeyOrigin {
    fn tag(self) -> u8 {
        match self {
            KeyOrigin::MachineFile => 0xF1,
            KeyOrigin::Tpm => 0xF2,
        }
    }

    /// The origin that sealed `blob`, if it is a sealed blob at all.
    pub fn of(blob: &[u8]) -> Option<KeyOrigin> {
        match blob.first() {
            Some(0xF1) if blob.len() >= OVERHEAD => Some(KeyOrigin::MachineFile),
            Some(0xF2) if blob.len() >= OVERHEAD => Some(KeyOrigin::Tpm),
            _ => None,
        }
    }

    /// A short name ("machine-file", "tpm").
    pub fn name(self) -> &'static str {
        match self {
            KeyOrigin::MachineFile => "machine-file",
            KeyOrigin::Tpm => "tpm",
        }
    }
}

/// Bytes a sealed blob adds to its plaintext: origin tag, nonce and tag.
pub const OVERHEAD: usize = 1 + NONCE_LEN + 16;

/// ChaCha20-Poly1305 under a wrapping key (ring's implementation, already in the build
/// for TLS).
pub struct AeadSealer {
    key: LessSafeKey,
    origin: KeyOrigin,
    described: String,
}

impl fmt::Debug for AeadSealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AeadSealer").field("origin", &self.origin).field("key", &self.described).finish()
    }
}

impl AeadSealer {
    /// A sealer over `wrapping_key`, which came from `origin` (described by `described`,
    /// e.g. the file's path).
    pub fn new(wrapping_key: [u8; 32], origin: KeyOrigin, described: &str) -> Self {
        // Derive the AEAD key rather than use the secret directly, so the same machine
        // secret can later key other things without the two uses ever sharing a key.
        let salt = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, b"fazt seal v1");
        let prk = salt.extract(&wrapping_key);
        let mut aead_key = [0u8; 32];
        prk.expand(&[b"chacha20-poly1305"], &CHACHA20_POLY1305)
            .and_then(|okm| okm.fill(&mut aead_key))
            .expect("32 bytes is the output length of the AEAD key type");
        let key = LessSafeKey::new(
            UnboundKey::new(&CHACHA20_POLY1305, &aead_key).expect("the key has the algorithm's length"),
        );
        AeadSealer { key, origin, described: described.to_string() }
    }
}

impl Sealer for AeadSealer {
    fn seal(&self, label: &str, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::getrandom(&mut nonce).map_err(|e| Error::Random(e.to_string()))?;
        let mut out = Vec::with_capacity(plaintext.len() + OVERHEAD);
        out.push(self.origin.tag());
        out.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(label.as_bytes()),
                &mut body,
            )
            .map_err(|_| Error::Random("sealing failed".into()))?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    fn unseal(&self, label: &str, sealed: &[u8]) -> Result<Vec<u8>, Error> {
        match KeyOrigin::of(sealed) {
            Some(origin) if origin == self.origin => {}
            Some(other) => {
                return Err(Error::SealedElsewhere {
                    name: label.to_string(),
                    why: format!(
                        "it was sealed with the {} key, and this node uses the {} key",
                        other.name(),
                        self.origin.name()
                    ),
                })
            }
            None => return Err(Error::Corrupt(label.to_string())),
        }
        let nonce = Nonce::try_assume_unique_for_key(&sealed[1..1 + NONCE_LEN])
            .map_err(|_| Error::Corrupt(label.to_string()))?;
        let mut body = sealed[1 + NONCE_LEN..].to_vec();
        let plain = self.key.open_in_place(nonce, Aad::from(label.as_bytes()), &mut body).map_err(|_| {
            Error::SealedElsewhere {
                name: label.to_string(),
                why: format!(
                    "{} does not open it (another machine's key, or the value is damaged)",
                    self.described
                ),
            }
        })?;
        Ok(plain.to_vec())
    }

    fn origin(&self) -> KeyOrigin {
        self.origin
    }

    fn describe(&self) -> String {
        self.described.clone()
    }
}

/// Reads the 32-byte machine secret at `path`, creating it (mode 0600) if it does not
/// exist; returns the secret and whether it was just created.
///
/// Creation is atomic (a temp file, fsync, then a hard link that fails if another
/// process won the race), so a power cut leaves either no file or a whole one.
pub fn machine_secret(path: &Path) -> Result<([u8; 32], bool), Error> {
    let storage = |what: String, err: std::io::Error| Error::Storage { what, err: Box::new(err) };
    match std::fs::read(path) {
        Ok(bytes) => {
            let secret: [u8; 32] =
                bytes.try_into().map_err(|_| Error::Corrupt(path.display().to_string()))?;
            return Ok((secret, false));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(storage(format!("reading {}", path.display()), e)),
    }
    let mut secret = [0u8; 32];
    getrandom::getrandom(&mut secret).map_err(|e| Error::Random(e.to_string()))?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let write = || -> std::io::Result<()> {
        let mut file = super::file::private_file(&tmp)?;
        file.write_all(&secret)?;
        file.sync_all()
    };
    let linked = write().map_err(|e| storage(format!("writing {}", tmp.display()), e)).and_then(|()| {
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(storage(format!("creating {}", path.display()), e)),
        }
    });
    let _ = std::fs::remove_file(&tmp);
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    if linked? {
        Ok((secret, true))
    } else {
        // Another process created it first: theirs is the machine's secret.
        machine_secret(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(key: u8) -> AeadSealer {
        AeadSealer::new([key; 32], KeyOrigin::MachineFile, "test")
    }

    #[test]
    fn another_key_a_moved_blob_or_a_flipped_bit_do_not_unseal() {
        let blob = sealer(1).seal("row", b"seed").unwrap();
        assert_eq!(blob.len(), 4 + OVERHEAD);
        assert_eq!(sealer(1).unseal("row", &blob).unwrap(), b"seed");
        assert_eq!(
            sealer(2).unseal("row", &blob).unwrap_err().kind(),
            super::super::ErrorKind::SealedElsewhere
        );
        assert!(sealer(1).unseal("row2", &blob).is_err());
        for i in 1..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 0x40;
            assert!(sealer(1).unseal("row", &bad).is_err(), "bit flip at {i}");
        }
        for len in 0..OVERHEAD {
            assert!(sealer(1).unseal("row", &blob[..len]).is_err());
        }
        let tpm = AeadSealer::new([1; 32], KeyOrigin::Tpm, "tpm");
        let err = tpm.unseal("row", &blob).unwrap_err();
        assert!(err.to_string().contains("machine-file"), "{err}");
    }

    #[test]
    fn the_same_plaintext_seals_differently_each_time() {
        let s = sealer(3);
        assert_ne!(s.seal("a", b"x").unwrap(), s.seal("a", b"x").unwrap());
    }

    #[test]
    fn the_machine_secret_is_created_once_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("machine.key");
        let (first, created) = machine_secret(&path).unwrap();
        assert!(created);
        let (again, created) = machine_secret(&path).unwrap();
        assert!(!created);
        assert_eq!(first, again);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        std::fs::write(&path, b"short").unwrap();
        assert_eq!(machine_secret(&path).unwrap_err().kind(), super::super::ErrorKind::Corrupt);
        assert_eq!(std::fs::read(&path).unwrap(), b"short", "a damaged secret is reported, not replaced");
    }
}
