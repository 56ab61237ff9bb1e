//! Seeds in a directory: one `<name>.ed25519` file of 32 bytes per key, mode 0600.

use super::{check_name, Error, SeedStore};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A directory of seed files.
#[derive(Debug, Clone)]
pub struct DirSeeds {
    dir: PathBuf,
}

impl DirSeeds {
    /// Seeds kept in `dir` (created on the first save, mode 0700).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        DirSeeds { dir: dir.into() }
    }

    fn path(&self, name: &str) -> Result<PathBuf, Error> {
        check_name(name)?;
        Ok(self.dir.join(format!("{name}.ed25519")))
    }
}

fn storage(what: String, err: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Storage { what, err: Box::new(err) }
}

#[cfg(unix)]
pub(crate) fn private_file(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)
}

#[cfg(not(unix))]
pub(crate) fn private_file(path: &Path) -> std::io::Result<fs::File> {
    fs::OpenOptions::new().write(true).create_new(true).open(path)
}

impl SeedStore for DirSeeds {
    fn load(&self, name: &str) -> Result<Option<[u8; 32]>, Error> {
        let path = self.path(name)?;
        match fs::read(&path) {
            Ok(bytes) => bytes.try_into().map(Some).map_err(|_| Error::Corrupt(name.to_string())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(storage(format!("reading {}", path.display()), err)),
        }
    }

    fn save(&self, name: &str, seed: &[u8; 32]) -> Result<(), Error> {
        let path = self.path(name)?;
        fs::create_dir_all(&self.dir).map_err(|e| storage(format!("creating {}", self.dir.display()), e))?;
        // Write a temp file, fsync, then hard-link it into place: link fails if the key
        // exists (never overwrite an identity), and a crash leaves either no key or a
        // whole one, never a short file.
        let tmp = self.dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let _ = fs::remove_file(&tmp);
        let write = || -> std::io::Result<()> {
            let mut file = private_file(&tmp)?;
            file.write_all(seed)?;
            file.sync_all()
        };
        let result = write().map_err(|e| storage(format!("writing {}", tmp.display()), e)).and_then(|()| {
            match fs::hard_link(&tmp, &path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
                Err(e) => Err(storage(format!("creating {}", path.display()), e)),
            }
        });
        let _ = fs::remove_file(&tmp);
        if let Ok(dir) = fs::File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keystore::{Keystore, SoftwareKeystore};

    #[test]
    fn key_survives_a_restart_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let first = SoftwareKeystore::new(DirSeeds::new(dir.path().join("keys"))).public_key("node").unwrap();
        let again = SoftwareKeystore::new(DirSeeds::new(dir.path().join("keys"))).public_key("node").unwrap();
        assert_eq!(first, again);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join("keys/node.ed25519")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_truncated_key_is_reported_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("node.ed25519"), [1u8; 5]).unwrap();
        let err = SoftwareKeystore::new(DirSeeds::new(dir.path())).public_key("node").unwrap_err();
        assert_eq!(err.kind(), crate::keystore::ErrorKind::Corrupt);
        assert_eq!(fs::read(dir.path().join("node.ed25519")).unwrap().len(), 5);
    }
}
