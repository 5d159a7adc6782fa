//! Files that hold personal data, signed links or keys (the SQLite database, the outbox, the
//! link key file, everything under `app.data_dir`) are private to the service's user: folders
//! 0700, files 0600, whatever the umask. The binary also sets the umask to 077 at start.

use std::io;
use std::path::Path;

pub const DIR_MODE: u32 = 0o700;
pub const FILE_MODE: u32 = 0o600;

/// Restricts new files of this process to its user (`umask 077`): the binary calls it first.
pub fn restrict_umask() {
    #[cfg(unix)]
    // SAFETY: umask only swaps the process's file mode creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

/// Creates `dir` (and missing parents) as 0700; an existing one is set to 0700 too, unless it
/// is `.` or `/` (not ours alone).
pub fn private_dir(dir: &Path) -> io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(DIR_MODE);
    }
    b.create(dir)?;
    let ours = dir
        .components()
        .any(|c| matches!(c, std::path::Component::Normal(_)));
    if ours {
        set_mode(dir, DIR_MODE)?;
    }
    Ok(())
}

/// Creates the folders above a file as 0700 (existing ones are left as they are).
pub fn private_parent(file: &Path) -> io::Result<()> {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() && !p.exists() => private_dir(p),
        _ => Ok(()),
    }
}

/// Sets an existing file or folder to `mode` (if it is not already); missing: nothing.
pub fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        if meta.permissions().mode() & 0o777 != mode {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        }
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// A SQLite database file and its companions (`-wal`, `-shm`, `-journal`): the file is
/// created empty as 0600 if missing (SQLite gives its companions the database file's mode),
/// existing ones are set to 0600.
pub fn private_sqlite(db: &Path, create: bool) -> io::Result<()> {
    private_parent(db)?;
    if create && !db.exists() {
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(FILE_MODE);
        }
        o.open(db)?;
    }
    set_mode(db, FILE_MODE)?;
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        set_mode(Path::new(&p), FILE_MODE)?;
    }
    Ok(())
}

/// Writes `bytes` to `path` as a new 0600 file (replacing one left by a crash).
pub async fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut o = tokio::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    o.mode(FILE_MODE);
    let mut f = o.open(path).await?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // A file left over from before keeps its old mode through open().
        f.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))
            .await?;
    }
    f.write_all(bytes).await?;
    f.flush().await
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[tokio::test]
    async fn everything_is_created_private() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("a/b");
        private_dir(&d).unwrap();
        assert_eq!((mode(&t.path().join("a")), mode(&d)), (0o700, 0o700));
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&d).unwrap();
        assert_eq!(mode(&d), 0o700, "an existing folder is tightened");
        let db = t.path().join("c/pf.db");
        private_sqlite(&db, true).unwrap();
        assert_eq!((mode(&t.path().join("c")), mode(&db)), (0o700, 0o600));
        let wal = t.path().join("c/pf.db-wal");
        std::fs::write(&wal, "x").unwrap();
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o644)).unwrap();
        private_sqlite(&db, true).unwrap();
        assert_eq!(mode(&wal), 0o600);
        let f = d.join("m.eml");
        std::fs::write(&f, "old").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&f, b"new").await.unwrap();
        assert_eq!(
            (mode(&f), std::fs::read_to_string(&f).unwrap()),
            (0o600, "new".into())
        );
    }
}
