//! Test support: what the tests do to files and processes that std spells
//! per OS. What a platform cannot do at all is compiled out where it is
//! used, and listed by `tests/skipped_on_this_platform.rs`.

#![allow(dead_code)]

use std::fs::Metadata;
use std::process::ExitStatus;

/// Positional reads and writes: std's own on Unix.
#[cfg(unix)]
#[allow(unused_imports)] // not every test that shares this module uses it
pub use std::os::unix::fs::FileExt;

/// Positional reads and writes under the Unix names, for Windows: a seek
/// and a whole read or write through `&File`, which a test (one thread per
/// file) can afford.
#[cfg(not(unix))]
pub trait FileExt {
    /// Reads exactly `buf.len()` bytes at `offset`.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()>;
    /// Writes all of `data` at `offset`.
    fn write_all_at(&self, data: &[u8], offset: u64) -> std::io::Result<()>;
    /// Writes all of `data` at `offset`, and says how much that was.
    fn write_at(&self, data: &[u8], offset: u64) -> std::io::Result<usize> {
        self.write_all_at(data, offset).map(|()| data.len())
    }
}

#[cfg(not(unix))]
impl FileExt for std::fs::File {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = self;
        file.seek(SeekFrom::Start(offset))?;
        file.read_exact(buf)
    }

    fn write_all_at(&self, data: &[u8], offset: u64) -> std::io::Result<()> {
        use std::io::{Seek, SeekFrom, Write};
        let mut file = self;
        file.seek(SeekFrom::Start(offset))?;
        file.write_all(data)
    }
}

/// Bytes of disk the file takes, where the OS tells (`st_blocks`): `None`
/// elsewhere, and the check that needs it is left out there.
pub fn disk_bytes(meta: &Metadata) -> Option<u64> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some(meta.blocks() * 512)
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

/// Whether a child ended the way `Child::kill` ends it: by `SIGKILL` on
/// Unix, by `TerminateProcess` with exit code 1 on Windows. Either way no
/// destructor of the child ran.
pub fn killed(status: &ExitStatus) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        status.signal() == Some(libc::SIGKILL)
    }
    #[cfg(not(unix))]
    {
        status.code() == Some(1)
    }
}

/// Makes the file read-only for everyone, or writable again by its owner.
pub fn set_read_only(path: &std::path::Path, read_only: bool) {
    #[cfg(unix)]
    let permissions = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::Permissions::from_mode(if read_only { 0o444 } else { 0o644 })
    };
    #[cfg(not(unix))]
    let permissions = {
        let mut permissions = std::fs::metadata(path).unwrap().permissions();
        permissions.set_readonly(read_only);
        permissions
    };
    std::fs::set_permissions(path, permissions).unwrap();
}
