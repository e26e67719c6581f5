//! Linux, Android, macOS and iOS, FreeBSD and the other Unix-like systems.

#![allow(unsafe_code)]

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use memmap2::MmapRaw;

/// Whether pages written through the map must be flushed (`msync`) before
/// the file's sync makes them durable.
///
/// Not on Linux and Android, whose `fdatasync` writes back every dirty page
/// of the file, map-dirty ones included; not on FreeBSD, whose `fsync` and
/// `fdatasync` clean the file's VM object (`vm_object_page_clean`) before
/// they sync the vnode. XNU's `fsync`/`F_FULLFSYNC` sync only the vnode, and
/// the other BSDs promise nothing either, so there the written ranges are
/// flushed first.
pub(crate) const FLUSH_MAP_WRITES: bool = !cfg!(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd"
));

/// Whether the file can be cut only while no view of it is mapped: never on
/// Unix, where a map may even reach past the end of the file.
pub(crate) const CUT_NEEDS_UNMAP: bool = false;

/// Reads exactly `buf.len()` bytes at `offset` (`pread`, retried on short
/// reads and `EINTR` by std).
#[inline]
pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    file.read_exact_at(buf, offset)
}

/// Writes all of `data` at `offset` (`pwrite`, retried on short writes and
/// `EINTR` by std).
#[inline]
pub(crate) fn write_all_at(file: &File, data: &[u8], offset: u64) -> io::Result<()> {
    file.write_all_at(data, offset)
}

/// Makes every write to `file` durable, including, where
/// [`FLUSH_MAP_WRITES`] is false, pages written through a map of it.
///
/// std's `sync_data` is `fdatasync` on Linux and FreeBSD, and
/// `fcntl(F_FULLFSYNC)` on Apple systems, which also empties the drive's
/// write cache: the only call there that keeps a commit across power loss.
#[inline]
pub(crate) fn sync_data(file: &File) -> io::Result<()> {
    file.sync_data()
}

/// Grows `map` to `len` bytes, keeping the pages it maps mapped (`mremap`,
/// which may move it), so that a growth neither unmaps the file's pages
/// nor faults them in again; `false` where the platform has no such call
/// (the caller then maps the file anew).
pub(crate) fn grow_map(map: &mut MmapRaw, len: usize) -> io::Result<bool> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: the caller grew the file to at least `len` bytes first, so
        // no byte of the grown map lies past its end, and it holds the only
        // handle to the map: no pointer into the old address is used again.
        unsafe { map.remap(len, memmap2::RemapOptions::new().may_move(true))? };
        Ok(true)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (map, len);
        Ok(false)
    }
}

/// Writes back the bytes `offset..offset + len` of `map` that were written
/// through it, and waits (`msync(MS_SYNC)`): [`sync_data`] alone would not
/// see them where [`FLUSH_MAP_WRITES`] is true.
pub(crate) fn flush_map_range(map: &MmapRaw, offset: usize, len: usize) -> io::Result<()> {
    map.flush_range(offset, len)
}

/// `options` set so that opening a FIFO or a device returns at once instead
/// of waiting (`O_NONBLOCK`; it changes nothing for a regular file).
pub(crate) fn open_without_waiting(options: &mut OpenOptions) -> &mut OpenOptions {
    options.custom_flags(libc::O_NONBLOCK)
}

/// Makes the entry of a file just created or renamed in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Takes the exclusive lock that keeps a second writer out: `flock`, which
/// is advisory, so readers that take no lock (`Inspector`) still read.
#[inline]
pub(crate) fn try_lock(file: &File) -> Result<(), TryLockError> {
    file.try_lock()
}

/// Takes a shared lock, which [`try_lock`] excludes either way round.
#[inline]
pub(crate) fn try_lock_shared(file: &File) -> Result<(), TryLockError> {
    file.try_lock_shared()
}

// Linux's locks belong to the open file description (`F_OFD_SETLK`); the
// other systems have only process-owned `F_SETLK` locks, which any close of
// the file by the process releases: the reader table is opened once per
// process for that reason.
#[cfg(any(target_os = "linux", target_os = "android"))]
const SET_BYTE_LOCK: libc::c_int = libc::F_OFD_SETLK;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const SET_BYTE_LOCK: libc::c_int = libc::F_SETLK;

/// Tries to take, without waiting, an exclusive lock on the byte at
/// `offset` of `file` (which need not reach it). It is held until
/// [`unlock_byte`], or until the file is closed or the process ends, which
/// is what the reader table reads a reader's liveness from.
pub(crate) fn try_lock_byte(file: &File, offset: u32) -> Result<(), TryLockError> {
    match set_byte_lock(file, offset, libc::F_WRLCK as libc::c_short) {
        Ok(()) => Ok(()),
        Err(err)
            if matches!(
                err.raw_os_error(),
                Some(code) if code == libc::EAGAIN || code == libc::EACCES
            ) =>
        {
            Err(TryLockError::WouldBlock)
        }
        Err(err) => Err(TryLockError::Error(err)),
    }
}

/// Releases a lock [`try_lock_byte`] took.
pub(crate) fn unlock_byte(file: &File, offset: u32) -> io::Result<()> {
    set_byte_lock(file, offset, libc::F_UNLCK as libc::c_short)
}

fn set_byte_lock(file: &File, offset: u32, kind: libc::c_short) -> io::Result<()> {
    use std::os::fd::AsRawFd as _;
    // SAFETY: `flock` is plain data, valid when zeroed (and `l_pid` must be
    // zero for `F_OFD_SETLK`).
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = kind;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    // Below 2^31: `off_t` is 32 bits on some 32-bit targets.
    lock.l_start = offset as libc::off_t;
    lock.l_len = 1;
    // SAFETY: the descriptor is owned by `file` for the call; `lock` is a
    // valid `flock` that lives across it, and the command does not wait.
    let done = unsafe { libc::fcntl(file.as_raw_fd(), SET_BYTE_LOCK, &mut lock) };
    if done == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The longest file the OS lets this process write, in bytes: the largest
/// file offset, and the file-size limit (`RLIMIT_FSIZE`: writing past it
/// raises `SIGXFSZ`, which ends the process).
pub(crate) fn file_size_limit() -> u64 {
    // std reads and writes with 64-bit offsets on every Unix target, 32-bit
    // Linux included (`pread64`, `ftruncate64`); `reserve` uses the same.
    let offset_max = i64::MAX as u64;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` into the struct it is given,
    // which lives on this stack frame for the duration of the call.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut limit) };
    let fsize = if rc == 0 && limit.rlim_cur != libc::RLIM_INFINITY {
        // `rlim_t` is 32 bits wide on some targets and 64 on others.
        #[allow(clippy::useless_conversion, clippy::unnecessary_fallible_conversions)]
        let cur = u64::try_from(limit.rlim_cur).unwrap_or(u64::MAX);
        cur
    } else {
        u64::MAX
    };
    offset_max.min(fsize)
}

/// Extends `file` from `old_len` to `new_len` bytes with disk blocks
/// reserved for all of the new part. `Ok(false)`, with the file unchanged
/// or merely longer, when the file system cannot reserve blocks: the caller
/// then sets the length itself (a sparse extent).
pub(crate) fn reserve(file: &File, old_len: u64, new_len: u64) -> io::Result<bool> {
    let len = new_len - old_len;
    reserve_blocks(file, old_len, len, new_len)
}

// musl's `off_t` is 64 bits everywhere and it dropped the `*64` names.
#[cfg(all(target_os = "linux", target_env = "musl"))]
use libc::{fallocate as fallocate64, off_t as off64_t};
#[cfg(all(
    any(target_os = "linux", target_os = "android"),
    not(target_env = "musl")
))]
use libc::{fallocate64, off64_t};

/// The byte count or offset as the 64-bit `off_t` type the call takes;
/// a value past it is refused, never cut short.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn to_off64(value: u64) -> io::Result<off64_t> {
    off64_t::try_from(value).map_err(|_| io::Error::from(io::ErrorKind::FileTooLarge))
}

#[cfg(any(target_os = "linux", target_os = "android"))]
#[inline]
fn reserve_blocks(file: &File, offset: u64, len: u64, _new_len: u64) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    let (offset, len) = (to_off64(offset)?, to_off64(len)?);
    // SAFETY: fallocate64 reads no memory of ours; the descriptor is open for
    // writing and owned by `file` for the duration of the call. The 64-bit
    // variant takes 64-bit offsets on 32-bit targets too.
    let rc = unsafe { fallocate64(file.as_raw_fd(), 0, offset, len) };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EOPNOTSUPP) {
        return Ok(false);
    }
    Err(err)
}

/// Apple systems have no `fallocate`: `F_PREALLOCATE` reserves blocks past
/// the physical end of the file (contiguous if it can, else anywhere), and
/// setting the length then makes them part of the file.
#[cfg(target_vendor = "apple")]
fn reserve_blocks(file: &File, _offset: u64, len: u64, new_len: u64) -> io::Result<bool> {
    let length = libc::off_t::try_from(len).map_err(|_| io::ErrorKind::FileTooLarge)?;
    let mut reserved = false;
    for flags in [libc::F_ALLOCATECONTIG, libc::F_ALLOCATEALL] {
        let mut store = libc::fstore_t {
            fst_flags: flags,
            fst_posmode: libc::F_PEOFPOSMODE,
            fst_offset: 0,
            fst_length: length,
            fst_bytesalloc: 0,
        };
        // SAFETY: F_PREALLOCATE reads and updates the one `fstore_t` it is
        // given, which lives on this stack frame for the duration of the call;
        // the descriptor is owned by `file`.
        let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_PREALLOCATE, &mut store) };
        if rc != -1 {
            reserved = true;
            break;
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::ENOTSUP | libc::EINVAL) => return Ok(false),
            // Not that much contiguous space: try anywhere, then give up.
            Some(libc::ENOSPC) if flags == libc::F_ALLOCATECONTIG => {}
            _ => return Err(err),
        }
    }
    if reserved {
        file.set_len(new_len)?;
    }
    Ok(reserved)
}

/// FreeBSD and the other Unix-like systems: `posix_fallocate`, which ZFS
/// and some other file systems refuse with `EINVAL` or `EOPNOTSUPP`.
#[cfg(not(any(target_os = "linux", target_os = "android", target_vendor = "apple")))]
fn reserve_blocks(file: &File, offset: u64, len: u64, _new_len: u64) -> io::Result<bool> {
    let to_off = |value: u64| {
        libc::off_t::try_from(value).map_err(|_| io::Error::from(io::ErrorKind::FileTooLarge))
    };
    let (offset, len) = (to_off(offset)?, to_off(len)?);
    // SAFETY: posix_fallocate reads no memory of ours; the descriptor is open
    // for writing and owned by `file` for the duration of the call.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), offset, len) };
    match rc {
        0 => Ok(true),
        libc::EINVAL | libc::EOPNOTSUPP => Ok(false),
        code => Err(io::Error::from_raw_os_error(code)),
    }
}
