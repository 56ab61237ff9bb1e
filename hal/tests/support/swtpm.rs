//! A real software TPM for tests: Debian's `swtpm`, on two free loopback ports (the
//! TPM and its control channel), killed on drop. Shared by the HAL's TPM tests and the
//! end-to-end tests (`#[path]`); `tests/setup-tpm` installs swtpm.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running swtpm.
pub struct Swtpm {
    child: Child,
    /// Its TPM port (the control channel is the next one).
    pub port: u16,
}

impl Swtpm {
    /// Starts one keeping its state in `state`, on free ports.
    pub fn start(state: &Path) -> Swtpm {
        // Tests run in parallel: a port found free may be taken before swtpm binds it,
        // and then swtpm exits. Try other ports a few times.
        for _ in 0..5 {
            let port = loop {
                let p = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
                if p < 65000 && TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
                    break p;
                }
            };
            if let Some(swtpm) = Swtpm::try_start_on(state, port) {
                return swtpm;
            }
        }
        panic!("swtpm did not start on any free port");
    }

    /// Starts one on `port` (a restart of an earlier one: same state, same port).
    pub fn start_on(state: &Path, port: u16) -> Swtpm {
        Swtpm::try_start_on(state, port).unwrap_or_else(|| panic!("swtpm did not start on port {port}"))
    }

    fn try_start_on(state: &Path, port: u16) -> Option<Swtpm> {
        std::fs::create_dir_all(state).unwrap();
        let mut child = Command::new("swtpm")
            .args(["socket", "--tpm2", "--tpmstate"])
            .arg(format!("dir={}", state.display()))
            .args(["--server", &format!("type=tcp,port={port},bindaddr=127.0.0.1")])
            .args(["--ctrl", &format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1)])
            .args(["--flags", "not-need-init,startup-clear"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("swtpm is not installed: run tests/setup-tpm");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // Exited: it could not bind (the port was taken meanwhile).
            if child.try_wait().ok().flatten().is_some() {
                return None;
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                // Make sure the listener is ours, not another test's that took the port.
                std::thread::sleep(Duration::from_millis(100));
                if child.try_wait().ok().flatten().is_some() {
                    return None;
                }
                return Some(Swtpm { child, port });
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The TCTI string that reaches it.
    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    /// Sets an owner password with tpm2-tools, as an administrator might: the owner
    /// hierarchy then refuses an empty password.
    pub fn set_owner_password(&self, password: &str) {
        let status = Command::new("tpm2_changeauth")
            .args(["-c", "owner", password])
            .env("TPM2TOOLS_TCTI", self.tcti())
            .status()
            .expect("tpm2-tools is not installed: run tests/setup-tpm");
        assert!(status.success(), "tpm2_changeauth failed");
    }

    /// Stops it (as a power cut would).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        self.stop();
    }
}
