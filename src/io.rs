//! The I/O seam: the file, its memory map, and every write, sync and growth.
//!
//! Everything the pager does to the file goes through [`Storage`]: a later
//! crash simulator plugs in here to stop the program between any two writes or
//! syncs, or to fail one. This module holds the crate's `unsafe` code that
//! touches the map, and `snapshot.rs` the one read that other threads make.
//!
//! # Why the map is sound
//! A map hands out slices whose bytes the kernel may change if another
//! program writes the file. [`Storage`] takes an exclusive lock on the file
//! when it opens it (`flock`), so no other `Pager` writes it. A program that
//! ignores the advisory lock and writes or truncates the file anyway can
//! change bytes under a live reference or make a read fault (`SIGBUS`); the
//! crate documentation says so.
//!
//! Each mapping is a [`MapRegion`] behind an `Arc`, shared by the writer and
//! by the snapshots taken from it (`snapshot.rs`). Growing the file makes a
//! new, longer mapping; an older one stays mapped, and the file stays locked,
//! until the last snapshot holding it is dropped, so no snapshot ever reads
//! unmapped memory. The writer is the only one who writes through a
//! mapping: whole-map shared views ([`Storage::bytes`]) live only while it
//! writes nothing (both need the `Storage`), and it writes only through
//! page ranges ([`Storage::range_mut`], [`Storage::copy_within`],
//! [`DisjointPages`]) that, by the pager's rules, no live snapshot reads:
//! pages allocated after every live snapshot was taken, and protected copies
//! no live snapshot names. That rule is what makes reading from other
//! threads sound; `snapshot.rs` states it in full.

#![allow(unsafe_code)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::marker::PhantomData;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

use std::sync::Arc;

use memmap2::{MmapOptions, MmapRaw};

use crate::error::{MappedPageError, Result};
use crate::fault::{HookSlot, IoEvent};

/// The open, locked, mapped file.
#[derive(Debug)]
pub(crate) struct Storage {
    file: Arc<File>,
    map: Arc<MapRegion>,
    /// The file's length in bytes; at least the map's length. Longer only
    /// when giving back the tail of a failed growth failed.
    file_len: u64,
    syncs: u64,
    hook: HookSlot,
}

/// One read-write mapping of the first `len` bytes of the file, and the
/// locked file it maps: a snapshot that holds the region holds the lock, so
/// no other `Pager` can write the bytes it reads.
#[derive(Debug)]
pub(crate) struct MapRegion {
    map: MmapRaw,
    _file: Arc<File>,
    /// Mapped read-only under a shared lock: no one writes it at all.
    read_only: bool,
}

impl MapRegion {
    /// Maps the first `len` bytes of `file` read-write.
    fn new(file: &Arc<File>, len: u64) -> io::Result<MapRegion> {
        let len = usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
        let map = MmapOptions::new().len(len).map_raw(&**file)?;
        Ok(MapRegion {
            map,
            _file: Arc::clone(file),
            read_only: false,
        })
    }

    /// Opens `path` for reading only, takes a shared lock on it (which a
    /// writer's exclusive lock excludes, either way round: `Locked`) and
    /// maps all of it read-only. No write to the file is possible through
    /// the result.
    pub fn open_read_only(path: &Path) -> Result<MapRegion> {
        let file = Arc::new(open_regular(path, OpenOptions::new().read(true))?);
        lock_shared(&file)?;
        let len = usize::try_from(file.metadata()?.len())
            .map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
        let map = MmapOptions::new().len(len).map_raw_read_only(&*file)?;
        Ok(MapRegion {
            map,
            _file: file,
            read_only: true,
        })
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// All of a region made by [`MapRegion::open_read_only`]; `None` for
    /// the writer's regions.
    pub fn read_only_bytes(&self) -> Option<&[u8]> {
        // SAFETY: a read-only mapping of a file under a shared lock, which
        // excludes every `Pager`: no one writes these bytes while it lives.
        self.read_only
            .then(|| unsafe { self.range(0..self.map.len()) })
            .flatten()
    }

    /// The bytes of `range`, if it lies within the mapping.
    ///
    /// # Safety
    /// No one may write these bytes while the returned slice lives: the
    /// writer writes only ranges no live snapshot reads (module docs).
    #[inline]
    pub unsafe fn range(&self, range: std::ops::Range<usize>) -> Option<&[u8]> {
        if range.start > range.end || range.end > self.map.len() {
            return None;
        }
        // SAFETY: in bounds (checked above) of a mapping that lives as long
        // as `self`; the file is not cut below it while it is mapped (see
        // `Storage::give_back`); the caller excludes writers.
        Some(unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(range.start), range.len()) })
    }
}

/// The longest file this process could map and use, in bytes: the largest
/// `off_t`, the address space a map can take (the user half of the virtual
/// address space on common 64-bit targets), and the process's file-size limit
/// (`RLIMIT_FSIZE`: growing past it raises `SIGXFSZ`, which ends the process).
pub(crate) fn max_file_bytes() -> u64 {
    // Without an address hint (memmap2 gives none) Linux places maps below
    // 2^47 on x86_64 and below 2^48 on aarch64, whatever the hardware allows.
    #[cfg(target_arch = "aarch64")]
    const ADDRESS_SPACE: u64 = 1 << 48;
    #[cfg(all(target_pointer_width = "64", not(target_arch = "aarch64")))]
    const ADDRESS_SPACE: u64 = 1 << 47;
    #[cfg(not(target_pointer_width = "64"))]
    const ADDRESS_SPACE: u64 = isize::MAX as u64;
    let off_t_max = u64::try_from(libc::off_t::MAX).unwrap_or(u64::MAX);
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` into the struct it is given, which
    // lives on this stack frame for the duration of the call.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut limit) };
    let fsize = if rc == 0 && limit.rlim_cur != libc::RLIM_INFINITY {
        // `rlim_t` is not 64 bits wide on every target.
        #[allow(clippy::useless_conversion)]
        let cur = u64::try_from(limit.rlim_cur).unwrap_or(u64::MAX);
        cur
    } else {
        u64::MAX
    };
    ADDRESS_SPACE.min(off_t_max).min(fsize)
}

/// Opens `path` with `options` if it is a regular file, and fails with
/// `NotARegularFile` at once otherwise: every way of opening an existing
/// file goes through here, so all refuse alike.
///
/// The path is looked at before the open, so that a directory, which some
/// opens refuse with an error of their own, is refused like the rest; the
/// handle is looked at after it, for a file swapped in between.
pub(crate) fn open_regular(path: &Path, options: &mut OpenOptions) -> Result<File> {
    if std::fs::metadata(path).is_ok_and(|meta| !meta.is_file()) {
        return Err(MappedPageError::NotARegularFile);
    }
    // A read-only open of a FIFO waits for a writer, for ever if none
    // comes; non-blocking, it returns at once and is refused below. The
    // flag changes nothing for a regular file.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(options, libc::O_NONBLOCK);
    let file = options.open(path)?;
    if !file.metadata()?.is_file() {
        return Err(MappedPageError::NotARegularFile);
    }
    Ok(file)
}

/// Takes the exclusive lock, or fails with `Locked`.
///
/// A lock held by another `Pager` is reported after a short grace period
/// (about 50 ms), not at the first refusal: while any thread of this process
/// spawns a child, the child briefly holds copies of every descriptor until
/// it execs, so a file a `Pager` just closed can look locked for a moment.
fn lock(file: &File) -> Result<()> {
    retry_lock(|| file.try_lock())
}

/// Takes a shared lock, which an exclusive one excludes either way round:
/// `Locked` while a writer holds the file (after the grace period of
/// [`lock`]), and a writer gets `Locked` while readers hold it.
fn lock_shared(file: &File) -> Result<()> {
    retry_lock(|| file.try_lock_shared())
}

fn retry_lock(mut try_lock: impl FnMut() -> std::result::Result<(), TryLockError>) -> Result<()> {
    const ATTEMPTS: u32 = 10;
    for attempt in 1..=ATTEMPTS {
        match try_lock() {
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

/// Extends `file` from `old_len` to `new_len` bytes, reserving disk blocks
/// when `preallocate` so that a later write through the map cannot hit a full
/// disk (`SIGBUS`). On error the file may be anywhere between the two lengths
/// (a reservation can fail part way): the caller cuts it back.
fn extend(
    file: &File,
    hook: &HookSlot,
    old_len: u64,
    new_len: u64,
    preallocate: bool,
) -> io::Result<()> {
    if preallocate {
        let (offset, len) = (to_off(old_len)?, to_off(new_len - old_len)?);
        hook.fire(IoEvent::Reserve {
            offset: old_len,
            len: new_len - old_len,
        })?;
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
    hook.fire(IoEvent::SetLen { len: new_len })?;
    file.set_len(new_len)
}

fn to_off(value: u64) -> io::Result<libc::off_t> {
    libc::off_t::try_from(value).map_err(|_| io::Error::from(io::ErrorKind::FileTooLarge))
}

impl Storage {
    /// Creates a new file of `len` bytes (failing if it exists), locks it,
    /// maps it and lets `init` write the initial metadata. If any of it fails
    /// after the file was made, the file is removed again.
    pub fn create(
        path: &Path,
        len: u64,
        preallocate: bool,
        hook: HookSlot,
        init: impl FnOnce(&mut Storage) -> Result<()>,
    ) -> Result<Storage> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        let made = (|| {
            lock(&file)?;
            let mut store = Storage::map_locked(file, hook)?;
            store.grow(len, preallocate)?;
            init(&mut store)?;
            Ok(store)
        })();
        if made.is_err() {
            // Ours since `create_new` succeeded; nothing else counts on it.
            let _ = std::fs::remove_file(path);
        }
        made
    }

    /// Opens, locks and maps an existing file.
    pub fn open(path: &Path, hook: HookSlot) -> Result<Storage> {
        let file = open_regular(path, OpenOptions::new().read(true).write(true))?;
        lock(&file)?;
        Storage::map_locked(file, hook)
    }

    fn map_locked(file: File, hook: HookSlot) -> Result<Storage> {
        let file = Arc::new(file);
        let file_len = file.metadata()?.len();
        let map = Arc::new(MapRegion::new(&file, file_len)?);
        Ok(Storage {
            file,
            map,
            file_len,
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
        // SAFETY: the whole mapping; only this `Storage` writes through it,
        // and not while this shared borrow of it lives; snapshots only read.
        unsafe { self.map.range(0..self.map.len()) }.unwrap_or_default()
    }

    /// The current mapping, for a snapshot to read.
    pub fn region(&self) -> Arc<MapRegion> {
        Arc::clone(&self.map)
    }

    /// The bytes of `range`, writable, if it lies within the file. Writes
    /// are ordinary page-cache writes: durable only after the next
    /// [`Storage::sync`]. The caller passes only ranges that no live
    /// snapshot reads (module docs).
    #[inline]
    pub fn range_mut(&mut self, range: std::ops::Range<usize>) -> Option<&mut [u8]> {
        if range.start > range.end || range.end > self.map.len() {
            return None;
        }
        // SAFETY: in bounds of the live mapping; `&mut self` excludes every
        // other view this `Storage` hands out, and no snapshot reads the
        // range (the caller's rule above).
        Some(unsafe {
            std::slice::from_raw_parts_mut(self.map.map.as_mut_ptr().add(range.start), range.len())
        })
    }

    /// Copies the bytes of `src` to `dst_start` (ranges that do not
    /// overlap); false, changing nothing, if either is out of bounds. The
    /// destination is a range no live snapshot reads.
    pub fn copy_within(&mut self, src: std::ops::Range<usize>, dst_start: usize) -> bool {
        let len = src.len();
        let in_bounds = |start: usize| {
            start
                .checked_add(len)
                .is_some_and(|end| end <= self.map.len())
        };
        let disjoint = src.end <= dst_start || dst_start.saturating_add(len) <= src.start;
        if src.start > src.end || !in_bounds(src.start) || !in_bounds(dst_start) || !disjoint {
            return false;
        }
        let base = self.map.map.as_mut_ptr();
        // SAFETY: both ranges are in bounds and do not overlap; the
        // destination is written by no one else and read by no snapshot
        // (the caller's rule), and the source is only read.
        unsafe { std::ptr::copy_nonoverlapping(base.add(src.start), base.add(dst_start), len) };
        true
    }

    /// The map, to lend out several pages of at once (see [`DisjointPages`]).
    pub fn disjoint_pages(&mut self, page_size: usize) -> DisjointPages<'_> {
        DisjointPages {
            base: self.map.map.as_mut_ptr(),
            len: self.map.len(),
            page_size,
            lent: RefCell::new(HashMap::new()),
            _map: PhantomData,
        }
    }

    /// Writes `data` at byte `offset` (within the file). Visible through the
    /// map at once; durable only after the next sync.
    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.hook.fire(IoEvent::Write {
            offset,
            len: data.len(),
        })?;
        self.write_within(offset, data)
    }

    /// Writes zeros at byte `offset` into pages no state uses (see
    /// `placement.rs`), past the fault hook: the write changes nothing a
    /// crash or a reader can see, so crash and fault tests need not count
    /// it. Best effort, as its caller treats it.
    pub fn write_unused_zeros(&mut self, offset: u64, zeros: &[u8]) -> io::Result<()> {
        self.write_within(offset, zeros)
    }

    /// `pwrite` of `data` at `offset`, refused past the end of the file.
    fn write_within(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
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
        self.hook.fire(IoEvent::Sync { file: self.bytes() })?;
        self.syncs += 1;
        self.file.sync_data()
    }

    /// How many syncs this storage has issued.
    pub fn sync_count(&self) -> u64 {
        self.syncs
    }

    /// Extends the file to `new_len` bytes and maps all of it: reserve (or
    /// set the length), then map. The caller syncs before it writes any
    /// metadata that counts on the new length (contract D6).
    ///
    /// On error the file is cut back to the length it had, so a failed growth
    /// keeps no disk space, and the old map stays valid.
    pub fn grow(&mut self, new_len: u64, preallocate: bool) -> io::Result<()> {
        let (old_len, old_map_len) = (self.file_len, self.len());
        if new_len <= old_map_len {
            return Ok(());
        }
        self.hook.fire(IoEvent::Grow { new_len })?;
        let result = self.extend_and_map(new_len, preallocate);
        if result.is_err() {
            // Best effort: if this fails too, the file is merely longer than
            // any metadata counts on, which open accepts.
            let _ = self.cut_to(old_len);
        }
        result
    }

    fn extend_and_map(&mut self, new_len: u64, preallocate: bool) -> io::Result<()> {
        if new_len > self.file_len {
            extend(&self.file, &self.hook, self.file_len, new_len, preallocate)?;
            self.file_len = new_len;
        }
        self.hook.fire(IoEvent::Map { len: new_len })?;
        self.map = Arc::new(MapRegion::new(&self.file, new_len)?);
        Ok(())
    }

    /// Gives back the tail of the file past `len` bytes: maps only `len`
    /// bytes, then cuts the file there. An older, longer mapping a snapshot
    /// holds still covers the tail, but a snapshot reads only pages its
    /// state counts, and `len` is never below what the newest root counts
    /// on, which no snapshot's state exceeds. Returns an error, with the map
    /// unchanged, if the shorter map cannot be made; a failure to cut leaves
    /// the file longer than the map, which is harmless.
    pub fn give_back(&mut self, len: u64) -> io::Result<()> {
        if len < self.len() {
            self.hook.fire(IoEvent::Map { len })?;
            self.map = Arc::new(MapRegion::new(&self.file, len)?);
        }
        let _ = self.cut_to(len);
        Ok(())
    }

    /// Sets the file's length to `len`, which is at least the map's length.
    fn cut_to(&mut self, len: u64) -> io::Result<()> {
        debug_assert!(len >= self.len());
        self.hook.fire(IoEvent::SetLen { len })?;
        self.file.set_len(len)?;
        self.file_len = len;
        Ok(())
    }
}

/// Several pages of the map lent out together: any number of them readable,
/// each of the others writable once, never one both ways.
///
/// # Why this is sound
/// `base` comes from the map's unique borrow, held for `'a`: for as long as
/// any page lent here lives, nothing else reads or writes the map through
/// `Storage`, and the map is neither moved, remapped nor unmapped (those
/// need `&mut Storage`). Pages are `page_size` bytes at multiples of
/// `page_size`, so two distinct page numbers never overlap, and `lent`
/// records, per page number, whether it went out writable: a writable page
/// is lent once and never readable besides, a readable one never writable.
/// So no byte is reachable through a `&mut [u8]` and another reference at
/// once. The type is neither `Send` nor `Sync` (a raw pointer, a `RefCell`),
/// so the record is kept by one thread.
pub(crate) struct DisjointPages<'a> {
    base: *mut u8,
    len: usize,
    page_size: usize,
    /// Page number -> lent writable.
    lent: RefCell<HashMap<u64, bool>>,
    _map: PhantomData<&'a mut [u8]>,
}

/// Why [`DisjointPages`] refused a page.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LendError {
    OutOfBounds,
    Lent,
}

impl<'a> DisjointPages<'a> {
    /// Byte offset of `page`, if the whole page is in the map.
    fn offset(&self, page: u64) -> Result<usize, LendError> {
        let start = usize::try_from(page)
            .ok()
            .and_then(|p| p.checked_mul(self.page_size))
            .ok_or(LendError::OutOfBounds)?;
        match start.checked_add(self.page_size) {
            Some(end) if end <= self.len => Ok(start),
            _ => Err(LendError::OutOfBounds),
        }
    }

    /// Lends `page` readable, unless it is lent writable.
    pub fn shared(&self, page: u64) -> Result<&'a [u8], LendError> {
        let start = self.offset(page)?;
        let mut lent = self.lent.borrow_mut();
        if *lent.entry(page).or_insert(false) {
            return Err(LendError::Lent);
        }
        // SAFETY: `start..start + page_size` lies within the map (`offset`),
        // which stays mapped and unmoved for `'a`; the page is not lent
        // writable and will not be (see the type's docs).
        Ok(unsafe { std::slice::from_raw_parts(self.base.add(start), self.page_size) })
    }

    /// Lends `page` writable, unless it is lent already.
    pub fn unique(&self, page: u64) -> Result<&'a mut [u8], LendError> {
        let start = self.offset(page)?;
        let mut lent = self.lent.borrow_mut();
        if lent.contains_key(&page) {
            return Err(LendError::Lent);
        }
        lent.insert(page, true);
        // SAFETY: as in `shared`; the page was lent to no one before and is
        // recorded as lent writable, so no other reference to it is made
        // for `'a`.
        Ok(unsafe { std::slice::from_raw_parts_mut(self.base.add(start), self.page_size) })
    }
}
