//! The I/O seam: the file, its memory map, and every write, sync and growth.
//!
//! Everything the pager does to the file goes through [`Storage`]: a later
//! crash simulator plugs in here to stop the program between any two writes or
//! syncs, or to fail one. This module holds the crate's `unsafe` code that
//! touches the map, and `snapshot.rs` the one read that other threads make.
//!
//! What differs between operating systems (positional I/O, locks, block
//! reservation, syncs, cutting a mapped file) lives in [`platform`]; this
//! module names no OS.
//!
//! # Why the map is sound
//! A map hands out slices whose bytes the kernel may change if another
//! program writes the file. [`Storage`] takes an exclusive lock on the file
//! when it opens it ([`platform::try_lock`]), so no other `Pager` writes it.
//! A program that ignores the lock and writes or truncates the file anyway
//! can change bytes under a live reference or make a read fault; the crate
//! documentation says so.
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
//! threads sound; `snapshot.rs` states it in full. Positional writes
//! ([`Storage::write_at`], [`Storage::write_pages`]) change the same bytes
//! through the page cache, which the map shares, and follow the same rule.
//!
//! # Pages held in memory
//! A transaction writes the pages it allocated into [`PageBuffers`], not
//! through the map: the first write to a fresh page through a shared map
//! costs a write fault, more than the positional write the commit makes of
//! it instead ([`Storage::write_pages`]). Afterwards the map reads the
//! written bytes, as it reads every write to the file.

#![allow(unsafe_code)]

mod page_buffers;
mod platform;
pub(crate) mod reader_table;

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::marker::PhantomData;
use std::ops::Range;
use std::path::Path;
use std::sync::{Arc, Weak};

use memmap2::{MmapOptions, MmapRaw};

use crate::error::{MappedPageError, Result};
use crate::fault::{HookSlot, IoEvent};
use reader_table::ReaderSlot;

pub(crate) use page_buffers::PageBuffers;
pub(crate) use platform::read_exact_at;

/// The open, locked, mapped file.
#[derive(Debug)]
pub(crate) struct Storage {
    file: Arc<File>,
    map: Arc<MapRegion>,
    /// Where `map` starts and how long it is: a read takes one load from
    /// here, not a walk through the `Arc` (reads through the map are the
    /// hot path). Set only by [`Storage::set_map`], with `map`.
    view: View,
    /// The file's length in bytes; at least the map's length. Longer only
    /// when giving back the tail of a failed growth failed.
    file_len: u64,
    syncs: u64,
    hook: HookSlot,
    /// Ranges written through the map since the last sync, where the
    /// platform's sync does not see them by itself.
    map_writes: MapWrites,
    /// Where the platform cannot cut a mapped file: the length a cut was
    /// asked for while a snapshot's view blocked it, tried again at each
    /// sync until no such view is left.
    deferred_cut: Option<u64>,
    /// Where the platform cannot cut a mapped file: the regions this
    /// storage mapped before its current one, which block a cut for as long
    /// as a snapshot holds them.
    retired: Vec<Weak<MapRegion>>,
    /// Set if the writer's view was unmapped for a cut and could not be
    /// mapped again: every later sync fails with this error.
    unmapped: Option<io::ErrorKind>,
    /// Bytes known to read as zeros (see [`KnownZeros`]).
    zeros: KnownZeros,
    /// Bytes of zeros written ahead into unused pages, for tests.
    #[cfg(test)]
    unused_zeros: u64,
}

/// A range of the file's bytes known to read as zeros: the file grew over
/// them in this process (a file reads zeros where it was extended) and
/// nothing has written them since. Every write through [`Storage`] but that
/// of zeros shrinks it from below, past the written bytes (losing, at
/// worst, zeros below them, which only costs a read later).
#[derive(Debug, Default)]
struct KnownZeros(Range<u64>);

impl KnownZeros {
    /// Bytes `start..end` are about to be written.
    #[inline]
    fn written(&mut self, start: u64, end: u64) {
        let zeros = &mut self.0;
        if start < zeros.end && end > zeros.start {
            zeros.start = end.min(zeros.end);
        }
    }

    /// The file grew from `old_len` to `new_len` bytes.
    fn grown(&mut self, old_len: u64, new_len: u64) {
        let zeros = &mut self.0;
        if zeros.is_empty() || zeros.end != old_len {
            zeros.start = old_len;
        }
        zeros.end = new_len;
    }

    /// The file was cut to `len` bytes.
    fn cut(&mut self, len: u64) {
        let zeros = &mut self.0;
        zeros.end = zeros.end.min(len);
        zeros.start = zeros.start.min(zeros.end);
    }

    fn contains(&self, start: u64, end: u64) -> bool {
        self.0.start <= start && end <= self.0.end
    }
}

/// The address and length of a [`MapRegion`], kept beside the `Arc` that
/// holds it so that a read takes one load, not a walk through the `Arc`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct View {
    ptr: *mut u8,
    len: usize,
}

impl View {
    /// The view of `region`, valid while `region` lives.
    pub fn of(region: &MapRegion) -> View {
        let ptr = region.map.as_mut_ptr();
        View {
            // An empty map may have no address; a slice wants a non-null one.
            ptr: if ptr.is_null() {
                std::ptr::NonNull::dangling().as_ptr()
            } else {
                ptr
            },
            len: region.map.len(),
        }
    }
}

impl View {
    /// The bytes of `range`, if it lies within the view, for a lifetime the
    /// caller chooses.
    ///
    /// # Safety
    /// The region the view was made of must outlive `'a`, and no one may
    /// write these bytes while the slice lives (as for
    /// [`MapRegion::range`]).
    #[inline]
    pub unsafe fn range<'a>(self, range: Range<usize>) -> Option<&'a [u8]> {
        if range.start > range.end || range.end > self.len {
            return None;
        }
        // SAFETY: in bounds of a live mapping (the caller's promise), which
        // the caller keeps free of writers.
        Some(unsafe { std::slice::from_raw_parts(self.ptr.add(range.start), range.len()) })
    }
}

// SAFETY: a `View` is a copy of the address and length of a `MapRegion`
// that its owner (a `Storage`, a snapshot's state) holds in an `Arc`, which
// is `Send + Sync`; the owner hands out access through it under the same
// rules as through the region (shared for reads, unique for writes), so
// moving or sharing it between threads allows nothing the region does not.
unsafe impl Send for View {}
// SAFETY: as for `Send` above.
unsafe impl Sync for View {}

/// The byte ranges of the map written through it since the last sync, kept
/// only where [`platform::FLUSH_MAP_WRITES`] says the sync needs them:
/// elsewhere every method is empty and compiled out.
#[derive(Debug, Default)]
struct MapWrites {
    ranges: Vec<Range<usize>>,
    /// How many ranges trigger the next merge: twice what the last merge
    /// left, so that merges cost amortised O(log n) per range.
    merge_at: usize,
}

impl MapWrites {
    /// Past this many ranges (at least), adjacent and overlapping ones are
    /// merged, so a long run of unsynced commits costs memory per page
    /// written once, not per write.
    const MERGE_AT: usize = 4096;

    #[inline]
    fn note(&mut self, range: Range<usize>) {
        if !platform::FLUSH_MAP_WRITES || range.is_empty() {
            return;
        }
        self.ranges.push(range);
        if self.ranges.len() >= self.merge_at.max(Self::MERGE_AT) {
            self.merge();
            self.merge_at = 2 * self.ranges.len();
        }
    }

    /// Sorts the ranges and joins those that touch.
    fn merge(&mut self) {
        self.ranges.sort_unstable_by_key(|range| range.start);
        let mut merged: Vec<Range<usize>> = Vec::with_capacity(self.ranges.len());
        for range in self.ranges.drain(..) {
            match merged.last_mut() {
                Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
                _ => merged.push(range),
            }
        }
        self.ranges = merged;
    }

    /// Flushes every range (the part of it within `map`) and forgets them.
    /// All maps of a file share its pages, so a range written through an
    /// older map is flushed through the current one. On error the ranges
    /// are kept for the next try.
    fn flush(&mut self, map: &MmapRaw) -> io::Result<()> {
        if !platform::FLUSH_MAP_WRITES || self.ranges.is_empty() {
            return Ok(());
        }
        self.merge();
        for range in &self.ranges {
            let end = range.end.min(map.len());
            if range.start < end {
                platform::flush_map_range(map, range.start, end - range.start)?;
            }
        }
        self.ranges.clear();
        Ok(())
    }
}

/// A sync started by [`Storage::detach_sync`]: everything written to the
/// file before it started is durable once [`DetachedSync::sync`] returns.
#[derive(Debug)]
pub(crate) struct DetachedSync {
    file: Arc<File>,
}

impl DetachedSync {
    /// Waits until the file's writes reach the disk.
    pub fn sync(self) -> io::Result<()> {
        platform::sync_data(&self.file)
    }
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
        let len = file.metadata()?.len();
        check_mappable(len)?;
        let len = usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
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

    /// Grows the mapping to `len` bytes of the file, which is at least that
    /// long, keeping its pages mapped; false, with the mapping unchanged,
    /// where the platform cannot (or the call failed: a new mapping then
    /// reports the error that matters).
    fn grow_in_place(&mut self, len: u64) -> bool {
        usize::try_from(len)
            .is_ok_and(|len| platform::grow_map(&mut self.map, len).unwrap_or(false))
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

    /// The bytes of a region [`LiveFile::map`] made, to read the pages of
    /// the state `slot` registered in the reader table, and no others.
    ///
    /// A writer (of this process or another) may be writing the file: the
    /// pages it leaves alone are those of every state a live reader
    /// registered, and the caller, holding `slot` with its registration,
    /// reads only those (see `io/reader_table.rs`). The pages a writer may
    /// be writing (the roots) are copied, with [`LiveFile::read_at`] or
    /// [`MapRegion::copy_changing`].
    pub fn registered_pages(&self, slot: &ReaderSlot) -> &[u8] {
        debug_assert!(slot.registered().is_some());
        // SAFETY: a live mapping of `self.map.len()` bytes that lives as
        // long as `self`; the bytes the caller reads are those of a state it
        // registered, which no writer that honours the table changes while
        // the registration lasts (the file is not cut below that state's
        // pages either), so none changes under the borrow.
        unsafe { View::of(self).range(0..self.map.len()) }.unwrap_or_default()
    }

    /// Copies the bytes at `offset` into `buf`, one machine word at a time
    /// with volatile reads: how a reader reads through its map the pages a
    /// writer may be writing at that very moment (the roots), which no
    /// reference may cover. A copy made while they change may be torn, so
    /// the caller checks what it copied (a root's checksum, or its equality
    /// with a root known valid). Copies nothing and returns `false` unless
    /// `offset` and `buf.len()` are whole words and the bytes lie within
    /// the mapping.
    pub fn copy_changing(&self, offset: usize, buf: &mut [u8]) -> bool {
        const WORD: usize = std::mem::size_of::<usize>();
        let within = offset
            .checked_add(buf.len())
            .is_some_and(|end| end <= self.map.len());
        if !within || !offset.is_multiple_of(WORD) || !buf.len().is_multiple_of(WORD) {
            return false;
        }
        let base = self.map.as_ptr();
        for (i, chunk) in buf.chunks_exact_mut(WORD).enumerate() {
            // SAFETY: the word lies within this live mapping (checked
            // above), whose base is page-aligned, so the pointer is valid
            // for reads and aligned for a `usize`. The bytes are changed
            // only by writes from outside this program's memory model (a
            // writer's `pwrite`, through the kernel, in this process or
            // another) and no reference to them exists; a volatile read
            // sees whole words, and a torn copy is the caller's to detect.
            let word =
                unsafe { std::ptr::read_volatile(base.add(offset + i * WORD).cast::<usize>()) };
            chunk.copy_from_slice(&word.to_ne_bytes());
        }
        true
    }

    /// The bytes of `range`, if it lies within the mapping.
    ///
    /// # Safety
    /// No one may write these bytes while the returned slice lives: the
    /// writer writes only ranges no live snapshot reads (module docs).
    #[inline]
    pub unsafe fn range(&self, range: std::ops::Range<usize>) -> Option<&[u8]> {
        // SAFETY: the view of this mapping, which lives as long as `self`
        // (the file is not cut below it while it is mapped, see
        // `Storage::give_back`); the caller excludes writers.
        unsafe { View::of(self).range(range) }
    }
}

/// The longest file this process could map and use, in bytes: what a map
/// can take ([`max_map_bytes`]) and the platform's file-size limits
/// ([`platform::file_size_limit`]).
pub(crate) fn max_file_bytes() -> u64 {
    max_map_bytes().min(platform::file_size_limit())
}

/// The longest file this process could map, in bytes: the user half of the
/// virtual address space on common 64-bit targets, `isize::MAX` bytes on
/// 32-bit ones. A longer file is refused at open with `FileTooLarge`.
fn max_map_bytes() -> u64 {
    // Without an address hint (memmap2 gives none) Linux places maps below
    // 2^47 on x86_64 and below 2^48 on aarch64, whatever the hardware allows.
    #[cfg(target_arch = "aarch64")]
    const ADDRESS_SPACE: u64 = 1 << 48;
    #[cfg(all(target_pointer_width = "64", not(target_arch = "aarch64")))]
    const ADDRESS_SPACE: u64 = 1 << 47;
    #[cfg(not(target_pointer_width = "64"))]
    const ADDRESS_SPACE: u64 = isize::MAX as u64;
    ADDRESS_SPACE
}

/// Refuses, before anything is mapped or written, a file longer than a map
/// can take (a 32-bit process opening a file of more than 2 GiB).
fn check_mappable(len: u64) -> io::Result<()> {
    if len > max_map_bytes() {
        return Err(io::ErrorKind::FileTooLarge.into());
    }
    Ok(())
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
    // comes: opened so that it never waits, it is refused below.
    let file = platform::open_without_waiting(options).open(path)?;
    if !file.metadata()?.is_file() {
        return Err(MappedPageError::NotARegularFile);
    }
    Ok(file)
}

/// A data file opened to follow the writer that may be writing it (in this
/// process or another): no lock is taken, so writers are not kept out (the
/// reader table keeps them off what its readers read, see
/// `io/reader_table.rs`).
#[derive(Debug)]
pub(crate) struct LiveFile {
    file: Arc<File>,
}

impl LiveFile {
    /// Opens `path` for reading.
    pub fn open(path: &Path) -> Result<LiveFile> {
        let file = open_regular(path, OpenOptions::new().read(true))?;
        Ok(LiveFile {
            file: Arc::new(file),
        })
    }

    /// Copies the bytes at `offset` into `buf`: how the pages a writer may
    /// be writing at that moment are read, never in place.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        platform::read_exact_at(&self.file, buf, offset)
    }

    /// The file's length now.
    pub fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    /// Maps the first `len` bytes of the file read-only.
    pub fn map(&self, len: u64) -> Result<MapRegion> {
        check_mappable(len)?;
        let len = usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
        let map = MmapOptions::new().len(len).map_raw_read_only(&*self.file)?;
        Ok(MapRegion {
            map,
            _file: Arc::clone(&self.file),
            read_only: false,
        })
    }
}

/// Takes the exclusive lock, or fails with `Locked`.
///
/// A lock held by another `Pager` is reported after a short grace period
/// (about 250 ms), not at the first refusal: while any thread of this
/// process spawns a child, the child briefly holds copies of every
/// descriptor until it execs, so a file a `Pager` just closed can look
/// locked for a moment, longer on a loaded machine (50 ms was seen to be
/// too short).
fn lock(file: &File) -> Result<()> {
    retry_lock(|| platform::try_lock(file))
}

/// Takes a shared lock, which an exclusive one excludes either way round:
/// `Locked` while a writer holds the file (after the grace period of
/// [`lock`]), and a writer gets `Locked` while readers hold it.
fn lock_shared(file: &File) -> Result<()> {
    retry_lock(|| platform::try_lock_shared(file))
}

fn retry_lock(mut try_lock: impl FnMut() -> std::result::Result<(), TryLockError>) -> Result<()> {
    const ATTEMPTS: u32 = 50;
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
        hook.fire(IoEvent::Reserve {
            offset: old_len,
            len: new_len - old_len,
        })?;
        if platform::reserve(file, old_len, new_len)? {
            return Ok(());
        }
        // The file system cannot reserve blocks: fall back to a sparse extent.
    }
    hook.fire(IoEvent::SetLen { len: new_len })?;
    file.set_len(new_len)
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
        check_mappable(file_len)?;
        let map = Arc::new(MapRegion::new(&file, file_len)?);
        Ok(Storage {
            file,
            view: View::of(&map),
            map,
            file_len,
            syncs: 0,
            hook,
            map_writes: MapWrites::default(),
            deferred_cut: None,
            retired: Vec::new(),
            unmapped: None,
            zeros: KnownZeros::default(),
            #[cfg(test)]
            unused_zeros: 0,
        })
    }

    /// Makes the directory entry of a newly created file durable.
    pub fn sync_parent_dir(path: &Path) -> io::Result<()> {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        platform::sync_dir(parent)
    }

    /// The file's length in bytes (equal to the map's length).
    pub fn len(&self) -> u64 {
        self.map.len() as u64
    }

    /// The file's length in bytes as the file system has it: longer than
    /// the map after a cut that failed or waits for a snapshot's view to go
    /// (see [`Storage::give_back`]), or after an open of a file longer than
    /// its roots count on.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// The whole file.
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `view` is the whole of the live mapping `self.map` (see
        // `set_map`), non-null, which lives as long as `self`; only this
        // `Storage` writes through it, and not while this shared borrow of
        // it lives; snapshots only read.
        unsafe { std::slice::from_raw_parts(self.view.ptr, self.view.len) }
    }

    /// Makes `map` the writer's mapping and returns the one it replaces.
    fn set_map(&mut self, map: Arc<MapRegion>) -> Arc<MapRegion> {
        self.view = View::of(&map);
        std::mem::replace(&mut self.map, map)
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
        self.map_writes.note(range.clone());
        self.zeros.written(range.start as u64, range.end as u64);
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
        self.map_writes.note(dst_start..dst_start + len);
        self.zeros
            .written(dst_start as u64, dst_start as u64 + len as u64);
        let base = self.map.map.as_mut_ptr();
        // SAFETY: both ranges are in bounds and do not overlap; the
        // destination is written by no one else and read by no snapshot
        // (the caller's rule), and the source is only read.
        unsafe { std::ptr::copy_nonoverlapping(base.add(src.start), base.add(dst_start), len) };
        true
    }

    /// The map, to lend out several pages of at once (see [`DisjointPages`]),
    /// with the buffers pages lent writable are held in while they have room.
    pub fn disjoint_pages<'a>(
        &'a mut self,
        page_size: usize,
        buffers: Option<&'a mut PageBuffers>,
    ) -> DisjointPages<'a> {
        DisjointPages {
            base: self.map.map.as_mut_ptr(),
            len: self.map.len(),
            page_size,
            lent: RefCell::new(HashMap::new()),
            map_writes: RefCell::new(&mut self.map_writes),
            zeros: RefCell::new(&mut self.zeros),
            buffers: RefCell::new(buffers),
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
        self.zeros
            .written(offset, offset.saturating_add(data.len() as u64));
        self.write_within(offset, data)
    }

    /// Whether the bytes of `range` are known to read as zeros: the file
    /// grew over them in this process and nothing wrote them since.
    pub fn reads_zeros(&self, range: Range<usize>) -> bool {
        self.zeros.contains(range.start as u64, range.end as u64)
    }

    /// Writes the pages `buffers` holds to the file, each run of adjacent
    /// pages in one write of at most [`PageBuffers::MAX_WRITE`] bytes, each
    /// announced to the fault hook as a write. The pages are ones no live
    /// snapshot reads (module docs). On error some of them may have been
    /// written.
    ///
    /// Pages between two held ones that `unused` says no state uses, and
    /// that nothing wrote since the file grew over them, are written as
    /// zeros in the same write (where something wrote them, their blocks
    /// are written already and the zeros would only cost bytes). A file
    /// system that preallocated them keeps every such page left between
    /// written ones as an extent of its own: a B+tree's removals left
    /// 130 000 in a 3 GB file, whose truncate to 850 MB then took 9 s on
    /// ext4 mounted with `discard`, a discard per extent (a 2 GB file
    /// written whole: 0.5 s).
    pub fn write_pages(
        &mut self,
        buffers: &PageBuffers,
        page_size: usize,
        unused: impl Fn(u64) -> bool,
    ) -> io::Result<()> {
        let per_write = (PageBuffers::MAX_WRITE / page_size).max(1) as u64;
        // The run's pages from `first`: a held page's bytes, or `None` for
        // a page between two of them written as zeros.
        let mut run: Vec<Option<&[u8]>> = Vec::new();
        let mut first = 0;
        let mut joined = Vec::new();
        let page_bytes = |page: u64| page.saturating_mul(page_size as u64);
        let mut pages = buffers.iter().peekable();
        while let Some((page, bytes)) = pages.next() {
            if run.is_empty() {
                first = page;
            }
            run.push(Some(bytes));
            // The pages up to the next held one, when they join it.
            let mut gap = None;
            if let Some(&(next, _)) = pages.peek() {
                let len = next.saturating_sub(page.saturating_add(1));
                let joins = len == 0
                    || len < per_write
                        && self.zeros.contains(page_bytes(page + 1), page_bytes(next))
                        && (page + 1..next).all(&unused);
                if joins && run.len() as u64 + len < per_write {
                    run.extend((0..len).map(|_| None));
                    continue;
                }
                gap = joins.then_some(len);
            }
            let offset = page_bytes(first);
            if let [Some(only)] = run.as_slice() {
                self.write_at(offset, only)?;
            } else {
                joined.clear();
                for bytes in &run {
                    match bytes {
                        Some(bytes) => joined.extend_from_slice(bytes),
                        None => joined.resize(joined.len() + page_size, 0),
                    }
                }
                self.write_at(offset, &joined)?;
            }
            run.clear();
            // A write full before a gap of zeros: the next one starts with
            // them.
            if let Some(len) = gap.filter(|&len| len > 0) {
                first = page + 1;
                run.extend((0..len).map(|_| None));
            }
        }
        Ok(())
    }

    /// Writes zeros at byte `offset` into pages no state uses (see
    /// `engine/placement.rs`), past the fault hook: the write changes nothing a
    /// crash or a reader can see, so crash and fault tests need not count
    /// it. Best effort, as its caller treats it.
    pub fn write_unused_zeros(&mut self, offset: u64, zeros: &[u8]) -> io::Result<()> {
        #[cfg(test)]
        {
            self.unused_zeros += zeros.len() as u64;
        }
        self.write_within(offset, zeros)
    }

    /// How many bytes [`Storage::write_unused_zeros`] has written.
    #[cfg(test)]
    pub fn unused_zeros_written(&self) -> u64 {
        self.unused_zeros
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
        platform::write_all_at(&self.file, data, offset)
    }

    /// Makes every write so far durable: the ranges written through the map
    /// are flushed where the platform needs it, then one sync of the file
    /// (`fdatasync` on Linux, which also writes back pages dirtied through
    /// the map; see [`platform::sync_data`]). A cut that a snapshot's view
    /// deferred is tried again afterwards.
    pub fn sync(&mut self) -> io::Result<()> {
        self.hook.fire(IoEvent::Sync { file: self.bytes() })?;
        self.syncs += 1;
        if let Some(kind) = self.unmapped {
            return Err(kind.into());
        }
        self.map_writes.flush(&self.map.map)?;
        platform::sync_data(&self.file)?;
        if platform::CUT_NEEDS_UNMAP {
            self.retry_deferred_cut()?;
        }
        Ok(())
    }

    /// Starts a sync to be finished without `&mut self` ([`DetachedSync`]),
    /// so that the writer can go on while it runs: what [`Storage::sync`]
    /// does but the wait for the disk.
    pub fn detach_sync(&mut self) -> io::Result<DetachedSync> {
        self.hook.fire(IoEvent::Sync { file: self.bytes() })?;
        self.syncs += 1;
        if let Some(kind) = self.unmapped {
            return Err(kind.into());
        }
        self.map_writes.flush(&self.map.map)?;
        Ok(DetachedSync {
            file: Arc::clone(&self.file),
        })
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
            self.zeros.grown(self.file_len, new_len);
            self.file_len = new_len;
        }
        self.hook.fire(IoEvent::Map { len: new_len })?;
        // A region no snapshot holds is grown where it is, where the
        // platform can: its pages stay mapped.
        if let Some(region) = Arc::get_mut(&mut self.map) {
            if region.grow_in_place(new_len) {
                self.view = View::of(&self.map);
                return Ok(());
            }
        }
        let map = Arc::new(MapRegion::new(&self.file, new_len)?);
        self.replace_map(map)
    }

    /// Makes `map` the current mapping. Where the platform needs it, the
    /// ranges written through the old one are flushed first (the sync to
    /// come flushes through the new map only what lies within it), and the
    /// old one is remembered while a snapshot holds it (it blocks cuts).
    fn replace_map(&mut self, map: Arc<MapRegion>) -> io::Result<()> {
        self.map_writes.flush(&self.map.map)?;
        let old = self.set_map(map);
        if platform::CUT_NEEDS_UNMAP {
            self.retired.retain(|region| region.strong_count() > 0);
            if Arc::strong_count(&old) > 1 {
                self.retired.push(Arc::downgrade(&old));
            }
        }
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
            let map = Arc::new(MapRegion::new(&self.file, len)?);
            self.replace_map(map)?;
        }
        let _ = self.cut_to(len);
        Ok(())
    }

    /// Sets the file's length to `len`, which is at least the map's length.
    ///
    /// Where the platform cannot cut a mapped file, the writer's own view is
    /// unmapped for the cut and mapped again; if a snapshot's view blocks
    /// the cut, it is deferred (and `Ok`): the file stays longer than the
    /// map, which open accepts, until [`Storage::sync`] finds no such view.
    fn cut_to(&mut self, len: u64) -> io::Result<()> {
        debug_assert!(len >= self.len());
        if platform::CUT_NEEDS_UNMAP && len < self.file_len {
            self.deferred_cut = Some(len);
            return self.retry_deferred_cut();
        }
        self.hook.fire(IoEvent::SetLen { len })?;
        // Whether or not the cut happens, the bytes past `len` may read as
        // something else after a growth over them.
        self.zeros.cut(len);
        self.file.set_len(len)?;
        self.file_len = len;
        Ok(())
    }

    /// Whether a view other than the writer's own is mapped: a snapshot
    /// holding the current region or an older one.
    fn views_block_cut(&mut self) -> bool {
        self.retired.retain(|region| region.strong_count() > 0);
        !self.retired.is_empty() || Arc::strong_count(&self.map) > 1
    }

    /// At close: makes a cut that a snapshot's view deferred if no view
    /// blocks it any more, so that a closed file is no longer than its
    /// roots count on. Best effort, like every deferred cut.
    pub fn finish_deferred_cut(&mut self) {
        if platform::CUT_NEEDS_UNMAP {
            let _ = self.retry_deferred_cut();
        }
    }

    /// Makes the cut deferred by [`Storage::cut_to`] if no snapshot's view
    /// blocks it any more: unmaps the writer's view, cuts, maps it again.
    /// Best effort: a cut that fails stays deferred. Only a failure to map
    /// the file again is an error; the map is then empty, and every later
    /// sync fails with that error, so the pager becomes unavailable (the
    /// file holds the last commit).
    fn retry_deferred_cut(&mut self) -> io::Result<()> {
        let Some(len) = self.deferred_cut else {
            return Ok(());
        };
        // A growth since may have mapped part of the tail again (without
        // extending the file, which was longer): cut to what is mapped now.
        let len = len.max(self.len());
        if len >= self.file_len {
            self.deferred_cut = None;
            return Ok(());
        }
        self.deferred_cut = Some(len);
        if self.views_block_cut() || self.map_writes.flush(&self.map.map).is_err() {
            return Ok(());
        }
        let map_len = self.len();
        let Ok(empty) = MapRegion::new(&self.file, 0) else {
            return Ok(());
        };
        // The writer's view goes away here: the file cannot be cut below it.
        let own = self.set_map(Arc::new(empty));
        drop(own);
        self.zeros.cut(len);
        let cut = self
            .hook
            .fire(IoEvent::SetLen { len })
            .and_then(|()| self.file.set_len(len));
        if cut.is_ok() {
            self.file_len = len;
            self.deferred_cut = None;
        }
        match MapRegion::new(&self.file, map_len) {
            Ok(map) => {
                self.set_map(Arc::new(map));
                Ok(())
            }
            Err(err) => {
                self.unmapped = Some(err.kind());
                Err(err)
            }
        }
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
///
/// A page held in `buffers` is lent from its buffer instead of the map, by
/// the same record: the buffers are borrowed uniquely for `'a` too, and a
/// buffer is a heap allocation of its own that nothing here frees or
/// resizes while the borrow lasts ([`PageBuffers`] only adds buffers while
/// lent, and adding one moves the boxes that own the others, never their
/// bytes). The pointers are taken with `as_ptr`/`as_mut_ptr`, which
/// make no reference to the bytes, and a buffer is only reached through a
/// `&mut` (`PageBuffers::ptr_mut`) for a page not lent at all.
pub(crate) struct DisjointPages<'a> {
    base: *mut u8,
    len: usize,
    page_size: usize,
    /// Page number -> lent writable.
    lent: RefCell<HashMap<u64, bool>>,
    /// Where the pages lent writable are noted for the next sync.
    map_writes: RefCell<&'a mut MapWrites>,
    /// What the map is known to hold zeros in, which a page lent writable
    /// from it leaves.
    zeros: RefCell<&'a mut KnownZeros>,
    /// Where pages lent writable are held while there is room.
    buffers: RefCell<Option<&'a mut PageBuffers>>,
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

    /// Lends `page` readable, unless it is lent writable: from its buffer
    /// if it is held in one, else from the map.
    pub fn shared(&self, page: u64) -> Result<&'a [u8], LendError> {
        let start = self.offset(page)?;
        let mut lent = self.lent.borrow_mut();
        if *lent.entry(page).or_insert(false) {
            return Err(LendError::Lent);
        }
        let held = self
            .buffers
            .borrow()
            .as_deref()
            .and_then(|buffers| buffers.ptr(page, self.page_size));
        // SAFETY: `held` points at a live buffer of `page_size` bytes, and
        // `start..start + page_size` lies within the map (`offset`); both
        // stay allocated and unmoved for `'a`. The page is not lent
        // writable and will not be (see the type's docs).
        Ok(unsafe {
            std::slice::from_raw_parts(
                held.unwrap_or(self.base.add(start).cast_const()),
                self.page_size,
            )
        })
    }

    /// Lends `page` writable, unless it is lent already: from its buffer,
    /// which is made (holding the page's bytes in the file) if the page has
    /// none and the buffers have room, else from the map.
    pub fn unique(&self, page: u64) -> Result<&'a mut [u8], LendError> {
        let start = self.offset(page)?;
        let mut lent = self.lent.borrow_mut();
        if lent.contains_key(&page) {
            return Err(LendError::Lent);
        }
        lent.insert(page, true);
        let end = start + self.page_size;
        let mut buffers = self.buffers.borrow_mut();
        if let Some(buffers) = buffers.as_deref_mut() {
            let made = buffers.ptr_mut(page, self.page_size).or_else(|| {
                if self.zeros.borrow().contains(start as u64, end as u64) {
                    return buffers.hold(page, &vec![0; self.page_size]);
                }
                // SAFETY: as in `shared`, for the map's bytes of a page lent
                // to no one, read only while this copy is made.
                let bytes =
                    unsafe { std::slice::from_raw_parts(self.base.add(start), self.page_size) };
                buffers.hold(page, bytes)
            });
            if let Some(held) = made {
                // SAFETY: `held` points at the live buffer of `page`,
                // `page_size` bytes, which stays allocated and unmoved for
                // `'a` (the type's docs); the page was lent to no one before
                // and is recorded as lent writable.
                let bytes = unsafe { std::slice::from_raw_parts_mut(held, self.page_size) };
                return Ok(bytes);
            }
        }
        self.zeros.borrow_mut().written(start as u64, end as u64);
        // Checked here too, so that where nothing is tracked not even the
        // `RefCell`'s borrow flag is touched.
        if platform::FLUSH_MAP_WRITES {
            self.map_writes.borrow_mut().note(start..end);
        }
        // SAFETY: as in `shared`; the page was lent to no one before and is
        // recorded as lent writable, so no other reference to it is made
        // for `'a`.
        let bytes = unsafe { std::slice::from_raw_parts_mut(self.base.add(start), self.page_size) };
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A growth keeps every byte written before it, whether the region is
    /// grown where it is (nothing else holds it: on Linux the same region,
    /// its pages still mapped) or mapped anew because a snapshot holds it,
    /// which then still reads the file as far as it reached.
    #[test]
    fn a_growth_keeps_the_bytes_whether_or_not_a_snapshot_holds_the_map() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        let mut store =
            Storage::create(&path, 8192, true, HookSlot::default(), |_| Ok(())).unwrap();
        store.range_mut(0..8192).unwrap().fill(0x5A);
        let region = Arc::as_ptr(&store.map);
        store.grow(1 << 20, true).unwrap();
        assert_eq!(store.len(), 1 << 20);
        assert_eq!(
            Arc::as_ptr(&store.map) == region,
            cfg!(target_os = "linux"),
            "grown where it is only on Linux"
        );
        assert!(store.bytes()[..8192].iter().all(|&b| b == 0x5A));
        assert!(store.bytes()[8192..].iter().all(|&b| b == 0));
        store
            .range_mut((1 << 20) - 4096..1 << 20)
            .unwrap()
            .fill(0x77);

        let held = store.region();
        store.grow(4 << 20, true).unwrap();
        assert!(
            !Arc::ptr_eq(&held, &store.map),
            "a held region is mapped anew"
        );
        assert_eq!((held.len(), store.len()), (1 << 20, 4 << 20));
        // SAFETY: nothing writes the file while these bytes are read.
        let old = unsafe { held.range(0..held.len()) }.unwrap();
        assert_eq!(old, &store.bytes()[..1 << 20]);
        assert!(old[..8192].iter().all(|&b| b == 0x5A));
        assert!(old[(1 << 20) - 4096..].iter().all(|&b| b == 0x77));
        assert!(store.bytes()[1 << 20..].iter().all(|&b| b == 0));
    }

    #[test]
    fn copy_changing_copies_whole_words_within_the_map_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        let bytes: Vec<u8> = (0..4096u32).map(|i| (i * 7) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let region = LiveFile::open(&path).unwrap().map(4096).unwrap();
        let mut buf = vec![0u8; 64];
        assert!(region.copy_changing(128, &mut buf));
        assert_eq!(buf, bytes[128..192]);
        let untouched = [0xAAu8; 64];
        let cases = [(4096 - 32, 64), (3, 64), (128, 63), (usize::MAX - 7, 8)];
        for (offset, len) in cases {
            let mut buf = untouched[..len].to_vec();
            assert!(!region.copy_changing(offset, &mut buf), "{offset} {len}");
            assert_eq!(buf, untouched[..len], "nothing copied");
        }
    }
}
