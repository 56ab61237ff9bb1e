//! The TPM in a build without the `tpm` cargo feature: [`Tpm`] is a type with no
//! values, so code written for a TPM compiles unchanged and simply never has one.
//! [`Tpm::connect`] says why.

pub use super::tpm_common::{TpmInfo, DEFAULT_TCTI, P256_TPM};
use super::{BlobStore, EcdsaKeystore, EcdsaPublicKey, Error};
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

/// Whether this build can talk to a TPM.
pub const COMPILED: bool = false;

/// Stands in for the TPM in a build without the `tpm` feature: there never is one.
#[derive(Debug)]
pub enum Tpm {}

fn not_compiled() -> Error {
    Error::Device("this fazt was built without TPM support (cargo feature tpm)".into())
}

/// Why there is no TPM behind `tcti` in this build, telling apart a machine that has a
/// TPM device (then a `tpm` build would use it) from one that has none.
fn not_compiled_for(tcti: &str) -> Error {
    let device = tcti.strip_prefix("device:").filter(|d| std::path::Path::new(d).exists());
    Error::Device(match device {
        Some(d) => format!("a TPM device exists at {d}, but this fazt was built without TPM support (build with --features tpm); keys are kept by the software keystore"),
        None => "TPM support is not compiled into this fazt (build with --features tpm); keys are kept by the software keystore, sealed with machine.key".into(),
    })
}

impl Tpm {
    /// Always fails: this build has no TPM support (the error says whether `tcti`'s
    /// device exists).
    pub fn connect(tcti: &str) -> Result<Self, Error> {
        Err(not_compiled_for(tcti))
    }

    /// Always fails, as [`Tpm::connect`].
    pub fn connect_shared(tcti: &str) -> Result<Self, Error> {
        Err(not_compiled_for(tcti))
    }

    /// What the TPM says about itself.
    pub fn info(&self) -> &TpmInfo {
        match *self {}
    }

    /// How the TPM is reached.
    pub fn tcti(&self) -> &str {
        match *self {}
    }

    /// Makes a P-256 key inside the TPM.
    pub fn create_p256(&self) -> Result<(Vec<u8>, EcdsaPublicKey), Error> {
        match *self {}
    }

    /// The public key inside a TPM key blob: never readable without TPM support.
    pub fn blob_public_key(_name: &str, _blob: &[u8]) -> Result<EcdsaPublicKey, Error> {
        Err(not_compiled())
    }

    /// Signs with the key in `blob`.
    pub fn sign_p256(&self, _name: &str, _blob: &[u8], _message: &[u8]) -> Result<Vec<u8>, Error> {
        match *self {}
    }

    /// Seals `data` to this TPM.
    pub fn seal(&self, _data: &[u8]) -> Result<Vec<u8>, Error> {
        match *self {}
    }

    /// Opens what [`Tpm::seal`] sealed.
    pub fn unseal(&self, _name: &str, _blob: &[u8]) -> Result<Vec<u8>, Error> {
        match *self {}
    }
}

/// P-256 keys held inside the TPM: never built without TPM support.
pub struct TpmKeystore<B> {
    tpm: Arc<Tpm>,
    blobs: PhantomData<B>,
}

impl<B> fmt::Debug for TpmKeystore<B> {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self.tpm {}
    }
}

impl<B: BlobStore> TpmKeystore<B> {
    /// Keys in `tpm`, blobs in `blobs`.
    pub fn new(tpm: Arc<Tpm>, _blobs: B) -> Self {
        TpmKeystore { tpm, blobs: PhantomData }
    }
}

impl<B: BlobStore> EcdsaKeystore for TpmKeystore<B> {
    fn ecdsa_public_key(&self, _name: &str) -> Result<EcdsaPublicKey, Error> {
        match *self.tpm {}
    }

    fn ecdsa_sign(&self, _name: &str, _message: &[u8]) -> Result<Vec<u8>, Error> {
        match *self.tpm {}
    }
}
