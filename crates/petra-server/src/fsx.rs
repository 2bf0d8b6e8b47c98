//! Files that hold secrets: written atomically, readable by their owner only.

use crate::{Result, ServerError};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

pub(crate) fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ServerError {
    let path = path.to_path_buf();
    move |source| ServerError::Io { op, path, source }
}

/// Writes `bytes` to `path` with mode 0600 so that a reader sees the old file or the new one,
/// never a mix, and the new one survives a power cut once this returns: a temporary file in
/// the same directory, fsync, rename over `path`, fsync of the directory. Creates the directory
/// when missing.
pub(crate) fn write_private_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir).map_err(io("create the directory", dir))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io("create", &tmp))?;
        // `mode` applies only when the file is created; a leftover temp file keeps its own.
        f.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(io("set permissions of", &tmp))?;
        f.write_all(bytes).map_err(io("write", &tmp))?;
        f.sync_all().map_err(io("sync", &tmp))?;
        fs::rename(&tmp, path).map_err(io("replace", path))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io("sync the directory", dir))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Refuses a file that its group or others may read or write.
pub(crate) fn check_private(path: &Path, meta: &fs::Metadata) -> Result<()> {
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(ServerError::InsecureFile {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}
