//! Signatures per second through a TPM against the software keystore, and the start-up
//! cost of the TPM backend. Run by `bench/keystore.sh` (which starts swtpm):
//! `cargo run --release -p fazt-hal --features tpm --example keystore_bench -- <tcti>`.

use fazt_hal::keystore::tpm::{Tpm, TpmKeystore};
use fazt_hal::keystore::{
    AeadSealer, EcdsaKeystore, KeyOrigin, Keystore, MemoryBlobs, MemorySeeds, Sealer, SoftwareKeystore,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs `f` until `budget` is spent (at most `max` times); returns operations per second.
fn rate(budget: Duration, max: u32, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut n = 0;
    while n < max && start.elapsed() < budget {
        f();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let tcti = std::env::args().nth(1).expect("usage: keystore_bench <tcti>");
    let budget = Duration::from_secs(3);
    let message = [0x5au8; 256];

    let software = SoftwareKeystore::new(MemorySeeds::default());
    software.public_key("node").unwrap();
    software.ecdsa_public_key("ca").unwrap();
    let ed = rate(budget, 1_000_000, || {
        software.sign("node", &message).unwrap();
    });
    let p256 = rate(budget, 1_000_000, || {
        software.ecdsa_sign("ca", &message).unwrap();
    });
    let sealer = AeadSealer::new([1; 32], KeyOrigin::MachineFile, "bench");
    let blob = sealer.seal("row", &[7; 32]).unwrap();
    let unseal = rate(budget, 1_000_000, || {
        sealer.unseal("row", &blob).unwrap();
    });

    let start = Instant::now();
    let tpm = Arc::new(Tpm::connect(&tcti).unwrap());
    let connect = start.elapsed();
    let wrapped = tpm.seal(&[9; 32]).unwrap();
    let start = Instant::now();
    tpm.unseal("wrapping-key", &wrapped).unwrap();
    let tpm_unseal = start.elapsed();
    let keys = TpmKeystore::new(tpm.clone(), MemoryBlobs::default());
    let start = Instant::now();
    keys.ecdsa_public_key("ca").unwrap();
    let create = start.elapsed();
    let start = Instant::now();
    keys.ecdsa_sign("ca", &message).unwrap();
    let first_sign = start.elapsed();
    let tpm_sign = rate(budget, 10_000, || {
        keys.ecdsa_sign("ca", &message).unwrap();
    });
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;

    println!("| operation | software | TPM (swtpm) |");
    println!("|---|---|---|");
    println!(
        "| Ed25519 signatures/s (node identity) | {ed:.0} | n/a (TPM 2.0 has no Ed25519; seed sealed) |"
    );
    println!("| P-256 ECDSA signatures/s (LAN CA) | {p256:.0} | {tpm_sign:.0} |");
    println!("| unseal a 32-byte secret | {:.2} µs | {:.1} ms |", 1e6 / unseal, ms(tpm_unseal));
    println!("| start-up: connect + derive the storage key | - | {:.1} ms |", ms(connect));
    println!("| start-up: unseal the wrapping key | - | {:.1} ms |", ms(tpm_unseal));
    println!("| first use: create a P-256 key in the TPM | - | {:.1} ms |", ms(create));
    println!("| first signature (load + sign) | - | {:.1} ms |", ms(first_sign));
    println!(
        "| start-up cost of the TPM backend (connect + unseal) | - | {:.1} ms |",
        ms(connect) + ms(tpm_unseal)
    );
}
