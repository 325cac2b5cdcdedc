//! Reading and atomically replacing the credential file. The file is born
//! with mode 0600 (set by the `open` that creates it, so there is no moment
//! when others could read it) and replaced by writing a fresh temporary file
//! beside it and renaming it over the old one: a crash leaves the old
//! version or the new one, never half of either.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

/// The file's text, or `None` when it does not exist yet.
pub fn read(path: &Path) -> Result<Option<String>, String> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Replaces (or creates) `path` with `text`, mode 0600.
pub fn replace(path: &Path, text: &str) -> Result<(), String> {
    let tmp = temp_path(path);
    // A leftover from a crashed run with the same pid; `create_new` below
    // still refuses anything planted in between (a symlink included).
    let _ = fs::remove_file(&tmp);
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(text.as_bytes())?;
            f.sync_all()
        })
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()));
    let renamed = written.and_then(|()| {
        fs::rename(&tmp, path)
            .map_err(|e| format!("cannot move {} to {}: {e}", tmp.display(), path.display()))
    });
    if renamed.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    renamed
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "users.toml".into());
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}
