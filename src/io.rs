//! The I/O seam: the file, its memory map, and every write, sync and growth.
//!
//! Everything the pager does to the file goes through [`Storage`]: a later
//! crash simulator plugs in here to stop the program between any two writes or
//! syncs, or to fail one. This module and `page.rs` hold the crate's only
//! `unsafe` code.
//!
//! # Why the map is sound
//! A `MmapMut` hands out slices whose bytes the kernel may change if another
//! program writes the file. [`Storage`] takes an exclusive lock on the file
//! when it opens it (`flock`), so no other `Pager` writes it. A program that
//! ignores the advisory lock and writes or truncates the file anyway can
//! change bytes under a live reference or make a read fault (`SIGBUS`); the
//! crate documentation says so.

#![allow(unsafe_code)]

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

use memmap2::MmapMut;

use crate::error::{MappedPageError, Result};
use crate::fault::{HookSlot, IoEvent};

/// The open, locked, mapped file.
#[derive(Debug)]
pub(crate) struct Storage {
    file: File,
    map: MmapMut,
    syncs: u64,
    hook: HookSlot,
}

/// Maps the whole file read-write.
fn map_file(file: &File) -> io::Result<MmapMut> {
    // SAFETY: the file is locked exclusively by the `Storage` that owns it
    // (see the module docs), and every access through the map is bounds-checked
    // against the map's own length, which equals the file length at mapping
    // time; the file never shrinks while the map lives.
    unsafe { MmapMut::map_mut(file) }
}

/// Takes the exclusive lock, or fails with `Locked`.
///
/// A lock held by another `Pager` is reported after a short grace period
/// (about 50 ms), not at the first refusal: while any thread of this process
/// spawns a child, the child briefly holds copies of every descriptor until
/// it execs, so a file a `Pager` just closed can look locked for a moment.
fn lock(file: &File) -> Result<()> {
    const ATTEMPTS: u32 = 10;
    for attempt in 1..=ATTEMPTS {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(TryLockError::WouldBlock) if attempt < ATTEMPTS => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(TryLockError::WouldBlock) => return Err(MappedPageError::Locked),
            Err(TryLockError::Error(err)) => return Err(err.into()),
        }
    }
    Err(MappedPageError::Locked)
}

/// Extends `file` to `new_len` bytes, reserving disk blocks when `preallocate`
/// so that a later write through the map cannot hit a full disk (`SIGBUS`).
fn extend(file: &File, old_len: u64, new_len: u64, preallocate: bool) -> io::Result<()> {
    if preallocate {
        let (offset, len) = (to_off(old_len)?, to_off(new_len - old_len)?);
        // SAFETY: fallocate reads no memory of ours; the descriptor is open
        // for writing and owned by `file` for the duration of the call.
        let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, offset, len) };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EOPNOTSUPP) {
            return Err(err);
        }
        // The file system cannot reserve blocks: fall back to a sparse extent.
    }
    file.set_len(new_len)
}

fn to_off(value: u64) -> io::Result<libc::off_t> {
    libc::off_t::try_from(value).map_err(|_| io::Error::from(io::ErrorKind::FileTooLarge))
}

impl Storage {
    /// Creates a new file of `len` bytes (failing if it exists), locks it and
    /// maps it. The caller writes the initial metadata and syncs.
    pub fn create(path: &Path, len: u64, preallocate: bool, hook: HookSlot) -> Result<Storage> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        lock(&file)?;
        hook.fire(IoEvent::Grow { new_len: len })?;
        extend(&file, 0, len, preallocate)?;
        Storage::map_locked(file, hook)
    }

    /// Opens, locks and maps an existing file.
    pub fn open(path: &Path, hook: HookSlot) -> Result<Storage> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        lock(&file)?;
        Storage::map_locked(file, hook)
    }

    fn map_locked(file: File, hook: HookSlot) -> Result<Storage> {
        let map = map_file(&file)?;
        Ok(Storage {
            file,
            map,
            syncs: 0,
            hook,
        })
    }

    /// Makes the directory entry of a newly created file durable.
    pub fn sync_parent_dir(path: &Path) -> io::Result<()> {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(parent)?.sync_all()
    }

    /// The file's length in bytes (equal to the map's length).
    pub fn len(&self) -> u64 {
        self.map.len() as u64
    }

    /// The whole file.
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// The whole file, writable. Writes here are ordinary page-cache writes:
    /// durable only after the next [`Storage::sync`].
    #[inline]
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.map
    }

    /// Writes `data` at byte `offset` (within the file). Visible through the
    /// map at once; durable only after the next sync.
    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.hook.fire(IoEvent::Write {
            offset,
            len: data.len(),
        })?;
        let end = offset.checked_add(data.len() as u64);
        if end.is_none_or(|end| end > self.len()) {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        // `pwrite`, not a copy into the map: a process killed in the middle
        // of a copy leaves a half-written page in the page cache, while the
        // kernel finishes a one-page `pwrite` it has started. A root torn by
        // a kill would otherwise lose Deferred commits that had returned.
        self.file.write_all_at(data, offset)
    }

    /// Makes every write so far durable: one `fdatasync`, which on Linux also
    /// writes back pages dirtied through the map.
    pub fn sync(&mut self) -> io::Result<()> {
        self.hook.fire(IoEvent::Sync { file: &self.map })?;
        self.syncs += 1;
        self.file.sync_data()
    }

    /// How many syncs this storage has issued.
    pub fn sync_count(&self) -> u64 {
        self.syncs
    }

    /// Extends the file to `new_len` bytes. The map still covers the old
    /// length: the caller syncs (so no metadata that counts on the new length
    /// can be seen before it is durable, contract D6), then calls
    /// [`Storage::remap`].
    pub fn extend_to(&mut self, new_len: u64, preallocate: bool) -> io::Result<()> {
        let old_len = self.len();
        if new_len <= old_len {
            return Ok(());
        }
        self.hook.fire(IoEvent::Grow { new_len })?;
        extend(&self.file, old_len, new_len, preallocate)
    }

    /// Maps the file at its current length. On error the old map stays and
    /// is still valid.
    pub fn remap(&mut self) -> io::Result<()> {
        self.map = map_file(&self.file)?;
        Ok(())
    }
}
