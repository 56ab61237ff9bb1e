//! Keys inside a TPM 2.0 (cargo feature `tpm`, on `tss-esapi` over Debian's tpm2-tss).
//!
//! - A storage key (ECC P-256, restricted decrypt) is derived by `CreatePrimary` from
//!   the owner hierarchy's seed each time the node starts: the same TPM always gives
//!   the same key, so nothing is written to the TPM's NV memory.
//! - P-256 signing keys are created under it. The TPM returns them as a blob that only
//!   this TPM can load (the private part is encrypted under the storage key); the blob
//!   is kept in `data.db` through a [`BlobStore`]. The private key never leaves the
//!   chip: [`TpmKeystore`] signs by loading the blob and asking the TPM.
//! - [`Tpm::seal`] seals small secrets (a keyed-hash object with the data inside);
//!   the node seals one random wrapping key this way and encrypts the rest of its
//!   secrets with it in software (see [`super::sealer`]), because a TPM is slow and has
//!   few object slots.
//!
//! TPM 2.0 has no Ed25519, so the node's Ed25519 identity seed is sealed by the TPM
//! (through the wrapping key), not held in it.
//!
//! Objects are created with `noDA`: a wrong password elsewhere on the TPM (dictionary
//! attack lockout) does not lock the node out of its own keys. An owner password on the
//! TPM does: the node then reports a clear error.

pub use super::tpm_common::{TpmInfo, DEFAULT_TCTI, P256_TPM};
use super::{check_name, BlobStore, EcdsaKeystore, EcdsaPublicKey, Error};
use sha2::Digest as _;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use tss_esapi::attributes::ObjectAttributesBuilder;
use tss_esapi::constants::tss::{TPM2_RH_NULL, TPM2_ST_HASHCHECK};
use tss_esapi::constants::PropertyTag;
use tss_esapi::handles::KeyHandle;
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::resource_handles::Hierarchy;
use tss_esapi::interface_types::session_handles::AuthSession;
use tss_esapi::structures::{
    Digest, EccPoint, EccScheme, HashScheme, KeyedHashScheme, Private, Public, PublicBuilder,
    PublicEccParametersBuilder, PublicKeyedHashParameters, SensitiveData, Signature, SignatureScheme,
    SymmetricDefinitionObject,
};
use tss_esapi::tcti_ldr::TctiNameConf;
use tss_esapi::traits::{Marshall, UnMarshall};
use tss_esapi::tss2_esys::TPMT_TK_HASHCHECK;
use tss_esapi::Context;

/// Whether this build can talk to a TPM.
pub const COMPILED: bool = true;

// The ESAPI context is not `Send` because it holds raw pointers into the C library.
// SAFETY: tpm2-tss's ESYS context has no thread affinity; it must only never be used
// by two threads at once, which the `Mutex` around `Session` guarantees.
struct Session {
    ctx: Context,
    storage_key: KeyHandle,
    // The signing key loaded last and its blob: a TPM has few object slots, so one
    // stays loaded (the LAN CA's, in practice) and signing needs no load.
    loaded: Option<(Vec<u8>, KeyHandle)>,
}
unsafe impl Send for Session {}

/// A connection to a TPM 2.0, with the node's storage key loaded.
pub struct Tpm {
    // None after a failed reconnect: the next call tries again.
    session: Mutex<Option<Session>>,
    info: TpmInfo,
    tcti: String,
    flush_leftovers: bool,
}

impl fmt::Debug for Tpm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tpm").field("tcti", &self.tcti).field("info", &self.info).finish()
    }
}

fn device(what: &str, err: tss_esapi::Error) -> Error {
    Error::Device(format!("{what}: {err}"))
}

fn property_text(word: u32) -> String {
    word.to_be_bytes()
        .iter()
        .filter(|b| b.is_ascii_graphic() || **b == b' ')
        .map(|b| char::from(*b))
        .collect()
}

impl Tpm {
    /// Connects through `tcti` (e.g. [`DEFAULT_TCTI`], or
    /// `swtpm:host=127.0.0.1,port=2321`) and derives the storage key. Reached without a
    /// resource manager, the TPM is first cleared of objects a killed process left.
    pub fn connect(tcti: &str) -> Result<Self, Error> {
        Tpm::open(tcti, true)
    }

    /// Like [`Tpm::connect`], but leaves the TPM's other objects alone: for looking at a
    /// TPM that a running node may be using (`fazt hal tpm status`).
    pub fn connect_shared(tcti: &str) -> Result<Self, Error> {
        Tpm::open(tcti, false)
    }

    fn open(tcti: &str, flush_leftovers: bool) -> Result<Self, Error> {
        let (session, info) = Tpm::start_session(tcti, flush_leftovers)?;
        Ok(Tpm { session: Mutex::new(Some(session)), info, tcti: tcti.to_string(), flush_leftovers })
    }

    /// A new context on `tcti`, with the storage key derived.
    fn start_session(tcti: &str, flush_leftovers: bool) -> Result<(Session, TpmInfo), Error> {
        let conf = TctiNameConf::from_str(tcti).map_err(|_| {
            Error::Device(format!(
                "'{tcti}' is not a TCTI (use device:/dev/tpmrm0, swtpm:host=H,port=P or mssim:host=H,port=P)"
            ))
        })?;
        if let Some(path) = tcti.strip_prefix("device:") {
            let path = if path.is_empty() { "/dev/tpmrm0" } else { path };
            if !std::path::Path::new(path).exists() {
                return Err(Error::Device(format!(
                    "cannot reach the TPM at {tcti}: there is no {path} (no TPM, TPM disabled in the firmware, or its kernel driver not loaded)"
                )));
            }
        }
        let mut ctx =
            Context::new(conf).map_err(|e| device(&format!("cannot reach the TPM at {tcti}"), e))?;
        let mut property = |tag| ctx.get_tpm_property(tag).map(|v| v.unwrap_or(0));
        let words = (|| -> tss_esapi::Result<_> {
            Ok((
                [
                    property(PropertyTag::VendorString1)?,
                    property(PropertyTag::VendorString2)?,
                    property(PropertyTag::VendorString3)?,
                    property(PropertyTag::VendorString4)?,
                ],
                property(PropertyTag::Manufacturer)?,
                (property(PropertyTag::FirmwareVersion1)?, property(PropertyTag::FirmwareVersion2)?),
                property(PropertyTag::Revision)?,
            ))
        })()
        .map_err(|e| device(&format!("the TPM at {tcti} does not answer"), e))?;
        let (vendor, manufacturer, (fw1, fw2), revision) = words;
        let info = TpmInfo {
            vendor: vendor.iter().map(|w| property_text(*w)).collect::<String>().trim().to_string(),
            manufacturer: property_text(manufacturer).trim().to_string(),
            firmware: format!("{fw1:08x}.{fw2:08x}"),
            revision: format!("{}.{:02}", revision / 100, revision % 100),
        };
        // Without a resource manager (swtpm or mssim reached directly, not
        // /dev/tpmrm0), objects a killed process loaded stay in the TPM's few slots:
        // flush them. Such a TPM has one user at a time, so nothing else loses an object.
        if flush_leftovers && !tcti.starts_with("device:/dev/tpmrm") && !tcti.starts_with("tabrmd") {
            flush_transient_objects(&mut ctx);
        }
        let storage_key = ctx
            .execute_with_session(Some(AuthSession::Password), |c| c.create_primary(Hierarchy::Owner, storage_key_template(), None, None, None, None))
            .map_err(|e| {
                device(
                    "creating the storage key under the owner hierarchy failed (an owner password set on the TPM, or the TPM is in lockout or failure mode)",
                    e,
                )
            })?
            .key_handle;
        Ok((Session { ctx, storage_key, loaded: None }, info))
    }

    /// What the TPM says about itself.
    pub fn info(&self) -> &TpmInfo {
        &self.info
    }

    /// The TCTI it was reached through.
    pub fn tcti(&self) -> &str {
        &self.tcti
    }

    /// Runs `f` on the session. On a device error it starts a fresh session and tries
    /// once more: a TPM that was reset (suspend and resume, a restarted swtpm) has lost
    /// the storage key and every loaded object, and the old context may be dead.
    fn with_session<T>(&self, mut f: impl FnMut(&mut Session) -> Result<T, Error>) -> Result<T, Error> {
        let mut guard = self.session.lock().unwrap_or_else(|e| e.into_inner());
        let first = match guard.as_mut() {
            Some(session) => f(session),
            None => Err(Error::Device("not connected".into())),
        };
        match first {
            Err(err) if err.kind() == super::ErrorKind::Device => {
                // Close the old connection first: a TPM without a resource manager
                // serves one connection at a time (and /dev/tpm0 opens only once).
                *guard = None;
                let (fresh, _) = Tpm::start_session(&self.tcti, self.flush_leftovers).map_err(|_| err)?;
                f(guard.insert(fresh))
            }
            other => other,
        }
    }

    /// Creates a new P-256 signing key inside the TPM; returns the blob to keep (only
    /// this TPM can load it) and the public key.
    pub fn create_p256(&self) -> Result<(Vec<u8>, EcdsaPublicKey), Error> {
        let created = self.with_session(|s| {
            let parent = s.storage_key;
            s.ctx
                .execute_with_session(Some(AuthSession::Password), |c| {
                    c.create(parent, signing_key_template(), None, None, None, None)
                })
                .map_err(|e| device("creating a P-256 key", e))
        })?;
        let public = ecdsa_public(&created.out_public)?;
        Ok((encode_blob(&created.out_public, &created.out_private)?, public))
    }

    /// The public key inside a blob made by [`Tpm::create_p256`] (no TPM needed).
    pub fn blob_public_key(name: &str, blob: &[u8]) -> Result<EcdsaPublicKey, Error> {
        let (public, _) = decode_blob(name, blob)?;
        ecdsa_public(&public)
    }

    /// Signs `message` (hashed with SHA-256 here; the TPM signs the digest) with the key
    /// in `blob`; returns a DER signature, as X.509 wants.
    pub fn sign_p256(&self, name: &str, blob: &[u8], message: &[u8]) -> Result<Vec<u8>, Error> {
        let (public, private) = decode_blob(name, blob)?;
        let digest =
            Digest::try_from(sha2::Sha256::digest(message).to_vec()).map_err(|e| device("digest", e))?;
        let signature = self.with_session(|s| {
            let key = match &s.loaded {
                Some((loaded, handle)) if loaded.as_slice() == blob => *handle,
                _ => {
                    if let Some((_, old)) = s.loaded.take() {
                        let _ = s.ctx.flush_context(old.into());
                    }
                    let handle = load(s, name, private.clone(), public.clone())?;
                    s.loaded = Some((blob.to_vec(), handle));
                    handle
                }
            };
            let validation = TPMT_TK_HASHCHECK {
                tag: TPM2_ST_HASHCHECK,
                hierarchy: TPM2_RH_NULL,
                digest: Default::default(),
            };
            let signed = validation.try_into().and_then(|ticket| {
                s.ctx.execute_with_session(Some(AuthSession::Password), |c| {
                    c.sign(key, digest.clone(), SignatureScheme::Null, ticket)
                })
            });
            signed.map_err(|e| device(&format!("signing with '{name}'"), e))
        })?;
        let Signature::EcDsa(ecc) = signature else {
            return Err(Error::Device(format!(
                "the TPM returned a {:?} signature for '{name}'",
                signature.algorithm()
            )));
        };
        let (r, s) = (ecc.signature_r().value(), ecc.signature_s().value());
        if r.len() > 32 || s.len() > 32 {
            return Err(Error::Device("the TPM returned an oversized ECDSA signature".into()));
        }
        let mut fixed = [0u8; 64];
        fixed[32 - r.len()..32].copy_from_slice(r);
        fixed[64 - s.len()..].copy_from_slice(s);
        let sig = p256::ecdsa::Signature::from_slice(&fixed)
            .map_err(|_| Error::Device("the TPM returned an invalid ECDSA signature".into()))?;
        Ok(sig.to_der().as_bytes().to_vec())
    }

    /// Seals `data` (at most 128 bytes) to this TPM; returns the blob to keep.
    pub fn seal(&self, data: &[u8]) -> Result<Vec<u8>, Error> {
        let sensitive = SensitiveData::try_from(data.to_vec())
            .map_err(|_| Error::InvalidName(format!("{} bytes is too much to seal in a TPM", data.len())))?;
        let created = self.with_session(|s| {
            let parent = s.storage_key;
            s.ctx
                .execute_with_session(Some(AuthSession::Password), |c| {
                    c.create(parent, sealed_object_template(), None, Some(sensitive.clone()), None, None)
                })
                .map_err(|e| device("sealing", e))
        })?;
        encode_blob(&created.out_public, &created.out_private)
    }

    /// Opens a blob made by [`Tpm::seal`] on this TPM; `name` is for messages.
    pub fn unseal(&self, name: &str, blob: &[u8]) -> Result<Vec<u8>, Error> {
        let (public, private) = decode_blob(name, blob)?;
        self.with_session(|s| {
            let object = load(s, name, private.clone(), public.clone())?;
            let data = s.ctx.execute_with_session(Some(AuthSession::Password), |c| c.unseal(object.into()));
            let _ = s.ctx.flush_context(object.into());
            Ok(data.map_err(|e| device(&format!("unsealing '{name}'"), e))?.value().to_vec())
        })
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // A TPM has only a few object slots, and without a resource manager an object
        // outlives the connection that loaded it.
        if let Some((_, handle)) = self.loaded.take() {
            let _ = self.ctx.flush_context(handle.into());
        }
        let key = self.storage_key;
        let _ = self.ctx.flush_context(key.into());
    }
}

fn flush_transient_objects(ctx: &mut Context) {
    use tss_esapi::constants::tss::TPM2_TRANSIENT_FIRST;
    use tss_esapi::constants::CapabilityType;
    use tss_esapi::handles::TpmHandle;
    use tss_esapi::structures::CapabilityData;
    let Ok((CapabilityData::Handles(handles), _)) =
        ctx.get_capability(CapabilityType::Handles, TPM2_TRANSIENT_FIRST, 16)
    else {
        return;
    };
    for handle in handles.into_inner() {
        if let TpmHandle::Transient(_) = handle {
            if let Ok(object) = ctx.tr_from_tpm_public(handle) {
                let _ = ctx.flush_context(object);
            }
        }
    }
}

/// Loads a key blob under the storage key. A blob another TPM made fails the TPM's
/// integrity check: that is reported as [`Error::SealedElsewhere`], not as a device
/// error, so the caller can tell "moved to another machine" from "TPM broken".
fn load(s: &mut Session, name: &str, private: Private, public: Public) -> Result<KeyHandle, Error> {
    let parent = s.storage_key;
    s.ctx.execute_with_session(Some(AuthSession::Password), |c| c.load(parent, private, public)).map_err(|e| {
        let text = e.to_string();
        if text.contains("integrity") || text.contains("Integrity") {
            Error::SealedElsewhere {
                name: name.to_string(),
                why: "it was made by another TPM (the database was moved from another machine, or the TPM was cleared)".into(),
            }
        } else {
            device(&format!("loading '{name}'"), e)
        }
    })
}

const BLOB_MAGIC: &[u8; 4] = b"FZT1";

fn encode_blob(public: &Public, private: &Private) -> Result<Vec<u8>, Error> {
    let public = public.marshall().map_err(|e| device("encoding a key blob", e))?;
    let private = private.value();
    let mut out = Vec::with_capacity(8 + public.len() + private.len());
    out.extend_from_slice(BLOB_MAGIC);
    out.extend_from_slice(&(public.len() as u16).to_be_bytes());
    out.extend_from_slice(&public);
    out.extend_from_slice(&(private.len() as u16).to_be_bytes());
    out.extend_from_slice(private);
    Ok(out)
}

fn decode_blob(name: &str, blob: &[u8]) -> Result<(Public, Private), Error> {
    let corrupt = || Error::Corrupt(name.to_string());
    let rest = blob.strip_prefix(BLOB_MAGIC.as_slice()).ok_or_else(corrupt)?;
    let take = |bytes: &[u8]| -> Option<(Vec<u8>, usize)> {
        let len = u16::from_be_bytes(bytes.get(..2)?.try_into().ok()?) as usize;
        Some((bytes.get(2..2 + len)?.to_vec(), 2 + len))
    };
    let (public, used) = take(rest).ok_or_else(corrupt)?;
    let (private, used2) = take(&rest[used..]).ok_or_else(corrupt)?;
    if used + used2 != rest.len() {
        return Err(corrupt());
    }
    let public = Public::unmarshall(&public).map_err(|_| corrupt())?;
    let private = Private::try_from(private).map_err(|_| corrupt())?;
    Ok((public, private))
}

fn ecdsa_public(public: &Public) -> Result<EcdsaPublicKey, Error> {
    let Public::Ecc { unique, .. } = public else {
        return Err(Error::Device("the key is not an ECC key".into()));
    };
    let (x, y) = (unique.x().value(), unique.y().value());
    if x.len() > 32 || y.len() > 32 {
        return Err(Error::Device("the key is not a P-256 key".into()));
    }
    let mut sec1 = vec![0u8; 65];
    sec1[0] = 4;
    sec1[33 - x.len()..33].copy_from_slice(x);
    sec1[65 - y.len()..].copy_from_slice(y);
    Ok(EcdsaPublicKey(sec1))
}

/// The attributes every object of the node has: bound to this TPM and its parent,
/// usable with an empty password, exempt from dictionary-attack lockout.
fn base_attributes() -> ObjectAttributesBuilder {
    ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_user_with_auth(true)
        .with_no_da(true)
}

/// A P-256 key made inside the TPM (its private part generated there) for `parameters`.
fn p256_template(attributes: ObjectAttributesBuilder, parameters: PublicEccParametersBuilder) -> Public {
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::Ecc)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(
            attributes.with_sensitive_data_origin(true).build().expect("valid attributes"),
        )
        .with_ecc_parameters(parameters.build().expect("valid P-256 parameters"))
        .with_ecc_unique_identifier(EccPoint::default())
        .build()
        .expect("a valid P-256 template")
}

/// The storage key: decrypts (wraps) its children, nothing else.
fn storage_key_template() -> Public {
    p256_template(
        base_attributes().with_decrypt(true).with_restricted(true),
        PublicEccParametersBuilder::new_restricted_decryption_key(
            SymmetricDefinitionObject::AES_128_CFB,
            EccCurve::NistP256,
        ),
    )
}

/// A signing key: ECDSA with SHA-256, signs any digest.
fn signing_key_template() -> Public {
    p256_template(
        base_attributes().with_sign_encrypt(true),
        PublicEccParametersBuilder::new_unrestricted_signing_key(
            EccScheme::EcDsa(HashScheme::new(HashingAlgorithm::Sha256)),
            EccCurve::NistP256,
        ),
    )
}

/// A sealed data object: holds bytes given at creation, returned by `Unseal`.
fn sealed_object_template() -> Public {
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::KeyedHash)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(base_attributes().build().expect("valid attributes"))
        .with_keyed_hash_parameters(PublicKeyedHashParameters::new(KeyedHashScheme::Null))
        .with_keyed_hash_unique_identifier(Default::default())
        .build()
        .expect("a valid sealed object template")
}

/// P-256 keys held inside the TPM, their blobs kept in a [`BlobStore`].
pub struct TpmKeystore<B> {
    tpm: std::sync::Arc<Tpm>,
    blobs: B,
    // Blobs and public keys already read, so signing does not query the store.
    loaded: Mutex<HashMap<String, (Vec<u8>, EcdsaPublicKey)>>,
}

impl<B: fmt::Debug> fmt::Debug for TpmKeystore<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TpmKeystore").field("tpm", &self.tpm).field("blobs", &self.blobs).finish()
    }
}

impl<B: BlobStore> TpmKeystore<B> {
    /// Keys in `tpm`, blobs in `blobs`.
    pub fn new(tpm: std::sync::Arc<Tpm>, blobs: B) -> Self {
        TpmKeystore { tpm, blobs, loaded: Mutex::default() }
    }

    fn key(&self, name: &str) -> Result<(Vec<u8>, EcdsaPublicKey), Error> {
        check_name(name)?;
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(key) = loaded.get(name) {
            return Ok(key.clone());
        }
        let blob = match self.blobs.load_blob(name)? {
            Some((algorithm, blob)) if algorithm == P256_TPM => blob,
            Some((algorithm, _)) => {
                return Err(Error::Corrupt(format!("{name} (stored as {algorithm}, not as a TPM key)")))
            }
            None => {
                let (blob, _) = self.tpm.create_p256()?;
                self.blobs.save_blob(name, P256_TPM, &blob)?;
                // Read back: if another process created the key first, theirs wins.
                self.blobs.load_blob(name)?.map(|(_, b)| b).ok_or_else(|| Error::Corrupt(name.to_string()))?
            }
        };
        let public = Tpm::blob_public_key(name, &blob)?;
        loaded.insert(name.to_string(), (blob.clone(), public.clone()));
        Ok((blob, public))
    }
}

impl<B: BlobStore> EcdsaKeystore for TpmKeystore<B> {
    fn ecdsa_public_key(&self, name: &str) -> Result<EcdsaPublicKey, Error> {
        Ok(self.key(name)?.1)
    }

    fn ecdsa_sign(&self, name: &str, message: &[u8]) -> Result<Vec<u8>, Error> {
        let (blob, _) = self.key(name)?;
        self.tpm.sign_p256(name, &blob, message)
    }
}
