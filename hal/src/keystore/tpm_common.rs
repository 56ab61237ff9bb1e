//! What a TPM build and a build without one share: names recorded in `data.db` and
//! the TPM's description, so the two `tpm` modules cannot drift apart.

/// The algorithm name recorded for a P-256 key held in the TPM.
pub const P256_TPM: &str = "p256-tpm";

/// The TCTI of the kernel's TPM resource manager, the usual device on Linux.
pub const DEFAULT_TCTI: &str = "device:/dev/tpmrm0";

/// What the TPM says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmInfo {
    /// Vendor string, e.g. "SW   TPM" (swtpm) or "SLB9670" (Infineon).
    pub vendor: String,
    /// The four-letter manufacturer id, e.g. "IBM", "IFX", "MSFT".
    pub manufacturer: String,
    /// Firmware version: the two 32-bit version words in hex, e.g. "20191023.00163636".
    pub firmware: String,
    /// The TPM 2.0 specification revision it implements, e.g. "1.59".
    pub revision: String,
}
