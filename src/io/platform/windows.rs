//! Windows.

#![allow(unsafe_code)]

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::os::windows::fs::FileExt;
use std::os::windows::io::AsRawHandle;
use std::path::Path;

use memmap2::MmapRaw;
use windows_sys::Win32::Foundation::{ERROR_IO_PENDING, ERROR_LOCK_VIOLATION, HANDLE};
use windows_sys::Win32::Storage::FileSystem::{
    LockFileEx, UnlockFileEx, LOCKFILE_EXCLUSIVE_LOCK, LOCKFILE_FAIL_IMMEDIATELY,
};
use windows_sys::Win32::System::IO::OVERLAPPED;

/// Pages written through a view stay in it until `FlushViewOfFile` hands
/// them to the cache manager; `FlushFileBuffers` then writes out what the
/// cache holds. So the written ranges are flushed before each sync.
pub(crate) const FLUSH_MAP_WRITES: bool = true;

/// Windows refuses to change the length of a file below a mapped view
/// (`ERROR_USER_MAPPED_FILE`) and to cut a file while any view of it is
/// mapped: the writer unmaps its own view first, and a view a snapshot still
/// holds defers the cut.
pub(crate) const CUT_NEEDS_UNMAP: bool = true;

/// The byte the locks are taken on: one that never holds data, because
/// Windows file offsets are signed 64-bit numbers and the last byte of the
/// largest file lies below it.
///
/// Not the whole file, as std's `File::try_lock` locks: on Windows a byte
/// range lock is mandatory, so an exclusive lock over the data would refuse
/// every read of it through another handle, and `Inspector` (which takes no
/// lock, as on Unix) could not read a file a `Pager` holds. A lock on a
/// byte past any data keeps writers apart, and readers that take the shared
/// lock (`ReadOnlyPager`) out while a writer holds it, as `flock` does.
const LOCK_OFFSET: u64 = i64::MAX as u64;

/// Reads exactly `buf.len()` bytes at `offset`. `ReadFile` at an offset
/// may return fewer bytes than asked, so it is called until all arrived.
pub(crate) fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match file.seek_read(buf, offset) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Writes all of `data` at `offset`, calling `WriteFile` until all of it
/// was written.
pub(crate) fn write_all_at(file: &File, mut data: &[u8], mut offset: u64) -> io::Result<()> {
    while !data.is_empty() {
        match file.seek_write(data, offset) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                data = &data[n..];
                offset += n as u64;
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// `FlushFileBuffers` (std's `sync_data`): writes the file's cached data
/// and metadata and asks the drive to write its cache through.
pub(crate) fn sync_data(file: &File) -> io::Result<()> {
    file.sync_data()
}

/// `false`: a view cannot be grown in place; the caller maps the file anew.
pub(crate) fn grow_map(_map: &mut MmapRaw, _len: usize) -> io::Result<bool> {
    Ok(false)
}

/// `FlushViewOfFile` of the range: hands the pages written through the view
/// to the cache manager without waiting for the disk, which the
/// `FlushFileBuffers` of [`sync_data`] that follows does once for all of them.
pub(crate) fn flush_map_range(map: &MmapRaw, offset: usize, len: usize) -> io::Result<()> {
    map.flush_async_range(offset, len)
}

/// `options` unchanged: opening a named pipe or a device does not wait on
/// Windows the way a Unix FIFO does, and what opens is refused by its
/// metadata (not a regular file).
pub(crate) fn open_without_waiting(options: &mut OpenOptions) -> &mut OpenOptions {
    options
}

/// Nothing to do: a directory cannot be opened as a file to sync it
/// (without backup semantics it is refused), and NTFS journals the entries
/// of a directory itself, so a name is durable once the file's
/// `FlushFileBuffers` has returned (SQLite and redb do not sync directories
/// on Windows either).
pub(crate) fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// Takes the exclusive lock that keeps a second writer out (see
/// [`LOCK_OFFSET`] for why not the whole file).
pub(crate) fn try_lock(file: &File) -> Result<(), TryLockError> {
    lock_byte(file, LOCKFILE_EXCLUSIVE_LOCK)
}

/// Takes a shared lock on the same byte, which [`try_lock`] excludes either
/// way round.
pub(crate) fn try_lock_shared(file: &File) -> Result<(), TryLockError> {
    lock_byte(file, 0)
}

/// Tries to take, without waiting, an exclusive lock on the byte at
/// `offset` of `file` (which need not reach it), held until
/// [`unlock_byte`], or until the handle is closed or the process ends.
pub(crate) fn try_lock_byte(file: &File, offset: u32) -> Result<(), TryLockError> {
    lock_byte_at(file, u64::from(offset), LOCKFILE_EXCLUSIVE_LOCK)
}

/// Releases a lock [`try_lock_byte`] took.
pub(crate) fn unlock_byte(file: &File, offset: u32) -> io::Result<()> {
    let mut at = overlapped_at(u64::from(offset));
    let handle = file.as_raw_handle() as HANDLE;
    // SAFETY: the handle is owned by `file` for the duration of the call;
    // `at` lives on this stack frame and the call does not wait.
    let ok = unsafe { UnlockFileEx(handle, 0, 1, 0, &mut at) };
    if ok != 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn overlapped_at(offset: u64) -> OVERLAPPED {
    // SAFETY: OVERLAPPED is plain data, valid when zeroed.
    let mut at: OVERLAPPED = unsafe { std::mem::zeroed() };
    at.Anonymous.Anonymous.Offset = offset as u32;
    at.Anonymous.Anonymous.OffsetHigh = (offset >> 32) as u32;
    at
}

fn lock_byte(file: &File, mode: u32) -> Result<(), TryLockError> {
    lock_byte_at(file, LOCK_OFFSET, mode)
}

fn lock_byte_at(file: &File, offset: u64, mode: u32) -> Result<(), TryLockError> {
    let mut at = overlapped_at(offset);
    let handle = file.as_raw_handle() as HANDLE;
    // SAFETY: the handle is owned by `file` for the duration of the call; the
    // lock is asked not to wait (`LOCKFILE_FAIL_IMMEDIATELY`), so the call
    // is done with `at`, which lives on this stack frame, when it returns.
    // The lock is released when the handle is closed.
    let ok = unsafe { LockFileEx(handle, mode | LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &mut at) };
    if ok != 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(code) if code == ERROR_LOCK_VIOLATION as i32 || code == ERROR_IO_PENDING as i32 => {
            Err(TryLockError::WouldBlock)
        }
        _ => Err(TryLockError::Error(err)),
    }
}

/// The longest file Windows can hold: offsets are signed 64-bit numbers, and
/// there is no per-process file-size limit.
pub(crate) fn file_size_limit() -> u64 {
    i64::MAX as u64
}

/// Always `Ok(false)`: the caller sets the length, and NTFS allocates the
/// clusters of a non-sparse file when its length grows (the file is never
/// made sparse), so there is no separate reservation call to make.
pub(crate) fn reserve(_file: &File, _old_len: u64, _new_len: u64) -> io::Result<bool> {
    Ok(false)
}
