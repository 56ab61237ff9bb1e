//! The TPM backend against a real software TPM: Debian's `swtpm`, started here on
//! loopback ports (install it with `tests/setup-tpm`). Built only with `--features tpm`.
#![cfg(feature = "tpm")]

use fazt_hal::keystore::tpm::{Tpm, TpmKeystore, P256_TPM};
use fazt_hal::keystore::{BlobStore, EcdsaKeystore, ErrorKind, MemoryBlobs};
#[path = "support/swtpm.rs"]
mod swtpm;

use std::net::TcpListener;
use std::sync::Arc;
use swtpm::Swtpm;

#[test]
fn keys_are_made_in_the_tpm_and_signatures_verify_outside_it() {
    let state = tempfile::tempdir().unwrap();
    let swtpm = Swtpm::start(state.path());
    let tpm = Arc::new(Tpm::connect(&swtpm.tcti()).unwrap());
    assert_eq!(tpm.info().manufacturer, "IBM", "swtpm reports IBM: {:?}", tpm.info());
    let blobs = MemoryBlobs::default();
    let keys = TpmKeystore::new(tpm.clone(), blobs);
    let public = keys.ecdsa_public_key("lan-ca-p256").unwrap();
    assert_eq!(public.0.len(), 65);
    assert_eq!(keys.ecdsa_public_key("lan-ca-p256").unwrap(), public, "created once");
    for message in [&b""[..], b"x", &[0xAA; 5000]] {
        let der = keys.ecdsa_sign("lan-ca-p256", message).unwrap();
        assert!(public.verify(message, &der), "the p256 crate accepts the TPM's signature");
        assert!(!public.verify(b"another message", &der));
    }
    let other = keys.ecdsa_public_key("other").unwrap();
    assert_ne!(other, public);
}

#[test]
fn keys_and_sealed_secrets_survive_a_tpm_and_node_restart() {
    let state = tempfile::tempdir().unwrap();
    let blobs = Arc::new(MemoryBlobs::default());
    let (public, sealed, port) = {
        let swtpm = Swtpm::start(state.path());
        let tpm = Arc::new(Tpm::connect(&swtpm.tcti()).unwrap());
        let keys = TpmKeystore::new(tpm.clone(), blobs.clone());
        (keys.ecdsa_public_key("ca").unwrap(), tpm.seal(&[9u8; 32]).unwrap(), swtpm.port)
    };
    // A new swtpm process on the same state: a power cycle of the machine.
    let swtpm = Swtpm::start_on(state.path(), port);
    let tpm = Arc::new(Tpm::connect(&swtpm.tcti()).unwrap());
    assert_eq!(tpm.unseal("wrapping-key", &sealed).unwrap(), vec![9u8; 32]);
    let keys = TpmKeystore::new(tpm, blobs.clone());
    assert_eq!(keys.ecdsa_public_key("ca").unwrap(), public);
    let der = keys.ecdsa_sign("ca", b"after restart").unwrap();
    assert!(public.verify(b"after restart", &der));
    assert_eq!(blobs.load_blob("ca").unwrap().unwrap().0, P256_TPM);
}

#[test]
fn a_tpm_that_restarts_under_a_running_node_is_reconnected() {
    let state = tempfile::tempdir().unwrap();
    let mut swtpm = Swtpm::start(state.path());
    let tpm = Arc::new(Tpm::connect(&swtpm.tcti()).unwrap());
    let keys = TpmKeystore::new(tpm.clone(), MemoryBlobs::default());
    let public = keys.ecdsa_public_key("ca").unwrap();
    let sealed = tpm.seal(b"wrapping key").unwrap();
    assert!(public.verify(b"before", &keys.ecdsa_sign("ca", b"before").unwrap()));
    // The TPM goes away and comes back (suspend and resume, a restarted swtpm): the
    // loaded key and the storage key are gone from it.
    let port = swtpm.port;
    swtpm.stop();
    let down = keys.ecdsa_sign("ca", b"down").unwrap_err();
    assert_eq!(down.kind(), ErrorKind::Device, "{down}");
    let _swtpm = Swtpm::start_on(state.path(), port);
    assert!(public.verify(b"after", &keys.ecdsa_sign("ca", b"after").unwrap()));
    assert_eq!(tpm.unseal("wrapping-key", &sealed).unwrap(), b"wrapping key");
}

#[test]
fn blobs_from_another_tpm_are_refused_as_sealed_elsewhere() {
    let (a_state, b_state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (Swtpm::start(a_state.path()), Swtpm::start(b_state.path()));
    let tpm_a = Tpm::connect(&a.tcti()).unwrap();
    let tpm_b = Arc::new(Tpm::connect(&b.tcti()).unwrap());
    let sealed = tpm_a.seal(b"secret").unwrap();
    let err = tpm_b.unseal("wrapping-key", &sealed).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SealedElsewhere, "{err}");
    assert!(err.to_string().contains("another TPM"), "{err}");
    let (key_blob, _) = tpm_a.create_p256().unwrap();
    let err = tpm_b.sign_p256("ca", &key_blob, b"m").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SealedElsewhere, "{err}");
    // Damaged blobs are reported as damaged, whatever the damage.
    for cut in [0, 3, 4, 10, key_blob.len() - 1] {
        let err = tpm_a.sign_p256("ca", &key_blob[..cut], b"m").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt, "cut at {cut}: {err}");
    }
    let mut flipped = key_blob.clone();
    let last = flipped.len() - 5;
    flipped[last] ^= 1;
    assert!(tpm_a.sign_p256("ca", &flipped, b"m").is_err());
}

#[test]
fn an_absent_tpm_or_a_bad_tcti_is_a_clear_error() {
    let free = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let err = Tpm::connect(&format!("swtpm:host=127.0.0.1,port={free}")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Device);
    assert!(err.to_string().contains("cannot reach the TPM"), "{err}");
    let err = Tpm::connect("device:/nonexistent/tpmrm0").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Device);
    for bad in ["", "carrier-pigeon", "swtpm:host=127.0.0.1,port=notaport"] {
        let err = Tpm::connect(bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Device, "{bad:?}: {err}");
    }
}

#[test]
fn an_owner_password_on_the_tpm_is_a_clear_error() {
    let state = tempfile::tempdir().unwrap();
    let swtpm = Swtpm::start(state.path());
    swtpm.set_owner_password("s3cret");
    let err = Tpm::connect(&swtpm.tcti()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Device);
    assert!(err.to_string().contains("owner password"), "{err}");
}
