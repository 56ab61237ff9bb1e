//! An app's deployed files: listing them (`fazt fs ls`, `GET /api/apps/{id}/files`) and
//! reading one (`GET /api/apps/{id}/files/{path}`).

use super::{apps, Caller, Kind, SyscallError};
use crate::apps::FileSummary;
use crate::fs::site::{read_blob, Encoding};
use crate::storage::Storage;
use std::sync::Arc;

/// A path inside an app (a file or a folder) as a site path, `""` for all of it;
/// `bad_path` when it could leave the app (`..`, NUL, bad escapes).
pub fn check_path(path: &str) -> Result<String, SyscallError> {
    crate::fs::path::request_to_site_path(path).ok_or_else(|| {
        SyscallError::refused(
            Kind::Invalid,
            "bad_path",
            format!("invalid path '{}': use a path inside the app, without '..'", path.escape_default()),
        )
    })
}

/// The files at or under `prefix` (a site path from [`check_path`]; `""` is all).
pub fn under(files: Vec<FileSummary>, prefix: &str) -> Vec<FileSummary> {
    files
        .into_iter()
        .filter(|f| prefix.is_empty() || f.path == prefix || f.path.starts_with(&format!("{prefix}/")))
        .collect()
}

/// The files of an app's current deployment at or under `path` (all of them without
/// one), by path; `not_found` when `path` names nothing.
pub async fn list(
    storage: &Arc<Storage>,
    caller: &Caller,
    app: &str,
    path: Option<&str>,
) -> Result<Vec<FileSummary>, SyscallError> {
    // Checked before anything is read: `..` never reaches the database.
    let prefix = path.map(check_path).transpose()?.unwrap_or_default();
    let (found, files) = apps::show(storage, caller, app).await?;
    let files = under(files, &prefix);
    if files.is_empty() && !prefix.is_empty() {
        return Err(SyscallError::not_found(format!("no file or folder '{prefix}' in app '{}'", found.name)));
    }
    Ok(files)
}

/// One file of an app's current deployment: its bytes and content type.
pub async fn read(
    storage: &Arc<Storage>,
    caller: &Caller,
    app: &str,
    path: &str,
) -> Result<(Vec<u8>, String), SyscallError> {
    let path = check_path(path)?;
    if path.is_empty() {
        return Err(SyscallError::refused(Kind::Invalid, "bad_path", "invalid file path"));
    }
    let (found, files) = apps::show(storage, caller, app).await?;
    let missing = || SyscallError::not_found(format!("no such file in app '{}'", found.name));
    let file = files.into_iter().find(|f| f.path == path).ok_or_else(missing)?;
    let hash = file.hash.clone();
    let data =
        storage.read(move |conn| read_blob(conn, &hash, Encoding::Identity)).await?.ok_or_else(missing)?;
    Ok((data, file.content_type))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syscall::apps::tests::{id_of, node};

    #[test]
    fn an_app_reads_its_own_files_and_hostile_paths_are_refused() {
        let (_dir, storage, _bus) = node();
        let a = Caller::app(id_of(&storage, "a"));
        smol::block_on(async {
            assert_eq!(read(&storage, &a, "a", "index.html").await.unwrap().0, b"<h1>hi</h1>");
            assert_eq!(read(&storage, &a, "b", "index.html").await.unwrap_err().code(), "forbidden");
            assert_eq!(list(&storage, &a, "b", None).await.unwrap_err().code(), "forbidden");
            let assets = list(&storage, &Caller::Local, "a", Some("assets")).await.unwrap();
            assert_eq!(assets.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(), ["assets/app.js"]);
            for bad in ["../../etc/passwd", "assets/..", "a%00b", "x\\y"] {
                assert_eq!(
                    list(&storage, &Caller::Local, "a", Some(bad)).await.unwrap_err().code(),
                    "bad_path",
                    "{bad}"
                );
                assert_eq!(
                    read(&storage, &Caller::Local, "a", bad).await.unwrap_err().code(),
                    "bad_path",
                    "{bad}"
                );
            }
            assert_eq!(
                list(&storage, &Caller::Local, "a", Some("asset")).await.unwrap_err().code(),
                "not_found"
            );
            assert_eq!(
                read(&storage, &Caller::Local, "a", "nope.html").await.unwrap_err().code(),
                "not_found"
            );
        });
    }
}
