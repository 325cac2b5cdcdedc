//! File handling for the CA directory. Every private key is born with mode
//! 0600 and every directory with 0700: permissions are set by the `open` or
//! `mkdir` that creates the file, never by a later chmod, so there is no
//! window in which a key is readable by others. Files that are rewritten
//! (the CRL, its number, the revocation list, a renewed development key) are
//! written to a fresh file beside the target and renamed over it, so a crash
//! leaves the old version or the new one, never half of either.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Owner read/write only: private keys.
    Private,
    /// World-readable: certificates, CRLs, the bookkeeping lists.
    Public,
}

impl Access {
    #[cfg_attr(not(unix), allow(dead_code))]
    fn mode(self) -> u32 {
        match self {
            Access::Private => 0o600,
            Access::Public => 0o644,
        }
    }
}

fn options(access: Access) -> OpenOptions {
    let mut o = OpenOptions::new();
    o.write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(access.mode());
    }
    #[cfg(not(unix))]
    let _ = access;
    o
}

/// Creates `dir` and any missing parents with mode 0700. An existing
/// directory is accepted as it is.
pub fn create_private_dir(dir: &Path) -> Result<(), String> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
        .map_err(|e| format!("cannot create directory {}: {e}", dir.display()))?;
    if !dir.is_dir() {
        return Err(format!("{} exists but is not a directory", dir.display()));
    }
    Ok(())
}

/// Writes a file that must not exist yet. `O_EXCL` also refuses a symlink
/// planted at `path`.
pub fn write_new(path: &Path, bytes: &[u8], access: Access) -> Result<(), String> {
    let mut f = options(access)
        .create_new(true)
        .open(path)
        .map_err(|e| match e.kind() {
            ErrorKind::AlreadyExists => format!(
                "{} already exists; refusing to overwrite it (move it away or choose another name)",
                path.display()
            ),
            _ => format!("cannot create {}: {e}", path.display()),
        })?;
    write_all(&mut f, path, bytes)
}

/// Replaces `path` (or creates it) by writing a temporary file in the same
/// directory and renaming it into place.
pub fn replace(path: &Path, bytes: &[u8], access: Access) -> Result<(), String> {
    let tmp = temp_path(path);
    // A leftover from a crashed run with the same pid; `create_new` below
    // still refuses anything that appears in between.
    let _ = fs::remove_file(&tmp);
    let written = options(access)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| format!("cannot create {}: {e}", tmp.display()))
        .and_then(|mut f| write_all(&mut f, &tmp, bytes));
    let renamed = written.and_then(|()| {
        fs::rename(&tmp, path)
            .map_err(|e| format!("cannot move {} to {}: {e}", tmp.display(), path.display()))
    });
    if renamed.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    renamed
}

/// Appends one line, creating the file (world-readable) if needed.
pub fn append_line(path: &Path, line: &str) -> Result<(), String> {
    let mut f = options(Access::Public)
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| format!("cannot open {} for appending: {e}", path.display()))?;
    write_all(&mut f, path, format!("{line}\n").as_bytes())
}

/// Reads a file; `hint` tells the operator what to do when it is missing.
pub fn read(path: &Path, hint: &str) -> Result<Vec<u8>, String> {
    fs::read(path).map_err(|e| match e.kind() {
        ErrorKind::NotFound => format!("{} does not exist; {hint}", path.display()),
        _ => format!("cannot read {}: {e}", path.display()),
    })
}

/// Like [`read`], but a missing file is `None`: the bookkeeping files start
/// out absent.
pub fn read_optional(path: &Path) -> Result<Option<String>, String> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Refuses a private key that others can read, as ssh does: a CA key that
/// leaked must not keep signing as if nothing had happened.
pub fn check_private(path: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta =
            fs::metadata(path).map_err(|e| format!("cannot inspect {}: {e}", path.display()))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "{} is accessible by group or others (mode {mode:04o}); \
                 check who may have copied it, then run `chmod 600 {}`",
                path.display(),
                path.display()
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// `PREFIX` + `.pem`, keeping any dots already in the prefix (`a.b` gives
/// `a.b.pem`, where `Path::with_extension` would give `a.pem`).
pub fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

fn write_all(f: &mut File, path: &Path, bytes: &[u8]) -> Result<(), String> {
    // sync_all so that a renamed file is never an empty one after a power
    // loss: CA material is small and rarely written.
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}
