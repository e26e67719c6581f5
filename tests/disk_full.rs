//! A full disk, for real (contract E1, E2): each test makes a small ext4
//! image, mounts it through a loop device, fills it, and runs the pager
//! there. A pager on a nearly full disk must keep working as long as what it
//! writes fits; a growth that does not fit is `StorageFull` with the pager
//! rolled back and usable, the file at its old length and the disk space
//! given back; and once space is back, everything works.
//!
//! Mounting needs root and loop devices (CI runs as root on Linux). Where it
//! is not possible, each test prints why on stderr and does nothing else;
//! `MAPPEDPAGES_REQUIRE_DISK_FULL=1` turns that into a failure.
//!
//! Every test has its own image and mount point, so they run in parallel.
//! Loop mounts are Linux's: elsewhere the suite is compiled out, and
//! `skipped_on_this_platform` lists it.

#![cfg(target_os = "linux")]

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

#[path = "support/process/mod.rs"]
mod process_support;
use process_support::run;

use mappedpages::{MappedPageError, Pager};

/// A small ext4 file system mounted on a loop device, unmounted and removed
/// when dropped (also when the test fails).
struct SmallDisk {
    // Dropped after the mount is gone (fields drop in declaration order,
    // after `Drop::drop`).
    _dir: tempfile::TempDir,
    mnt: PathBuf,
    mounted: bool,
}

impl SmallDisk {
    /// A fresh file system of `mib` MiB, or `None` (after saying why) where
    /// none can be mounted.
    fn new(test: &str, mib: u64) -> Option<SmallDisk> {
        match Self::try_new(mib) {
            Ok(disk) => Some(disk),
            Err(why) => {
                let message =
                    format!("disk_full: skipping {test}: cannot mount an ext4 image: {why}");
                if std::env::var_os("MAPPEDPAGES_REQUIRE_DISK_FULL").is_some_and(|v| v == "1") {
                    panic!("{message}");
                }
                eprintln!("{message}");
                None
            }
        }
    }

    fn try_new(mib: u64) -> Result<SmallDisk, String> {
        if !cfg!(target_os = "linux") {
            return Err("loop mounts are Linux only".into());
        }
        // The image in memory where the system offers it: the loop device's
        // flushes are then cheap, and the test fast.
        let dir = tempfile::tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())
            .map_err(|e| format!("no temporary directory: {e}"))?;
        let image = dir.path().join("disk.img");
        let mnt = dir.path().join("mnt");
        fs::create_dir(&mnt).map_err(|e| e.to_string())?;
        let size = format!("{mib}M");
        run(
            "truncate",
            &["-s".as_ref(), size.as_ref(), image.as_os_str()],
        )?;
        // 4 KiB blocks, no blocks reserved for root (the tests run as root,
        // which may use reserved blocks: "free" would then mean two things).
        run(
            "mkfs.ext4",
            &[
                "-q".as_ref(),
                "-F".as_ref(),
                "-m".as_ref(),
                "0".as_ref(),
                "-b".as_ref(),
                "4096".as_ref(),
                image.as_os_str(),
            ],
        )?;
        run(
            "mount",
            &[
                "-o".as_ref(),
                "loop".as_ref(),
                image.as_os_str(),
                mnt.as_os_str(),
            ],
        )?;
        Ok(SmallDisk {
            _dir: dir,
            mnt,
            mounted: true,
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.mnt.join(name)
    }

    /// Bytes an unprivileged writer could still allocate.
    fn free_bytes(&self) -> u64 {
        let path = std::ffi::CString::new(self.mnt.as_os_str().as_bytes()).unwrap();
        // SAFETY: an all-zero `statvfs` is a valid value of this plain C
        // struct; statvfs fills it from the NUL-terminated path, which lives
        // until the call returns.
        let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::statvfs(path.as_ptr(), &mut stat) };
        assert_eq!(rc, 0, "statvfs: {}", io::Error::last_os_error());
        // 32 bits wide on 32-bit targets, 64 on the others.
        #[allow(clippy::useless_conversion)]
        let free = u64::from(stat.f_bavail) * u64::from(stat.f_frsize);
        free
    }

    /// Fills the disk with a file of reserved blocks until `leave` bytes are
    /// free (or fewer: blocks are 4 KiB).
    fn fill(&self, leave: u64) -> PathBuf {
        let path = self.path("filler");
        let file = File::create(&path).unwrap();
        let len = self.free_bytes().saturating_sub(leave);
        if len > 0 {
            // SAFETY: fallocate reads no memory of ours; the descriptor is
            // open for writing for the duration of the call.
            let rc = unsafe { libc::fallocate64(file.as_raw_fd(), 0, 0, to_off64(len)) };
            assert_eq!(rc, 0, "filling the disk: {}", io::Error::last_os_error());
        }
        file.sync_all().unwrap();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        if !self.mounted {
            return;
        }
        if run("umount", &[self.mnt.as_os_str()]).is_err() {
            // Something still holds the file system (a test that failed
            // mid-way): detach it now, the kernel frees it when released.
            if let Err(why) = run("umount", &["-l".as_ref(), self.mnt.as_os_str()]) {
                eprintln!("disk_full: could not unmount {}: {why}", self.mnt.display());
            }
        }
        self.mounted = false;
    }
}

/// Disk space a failed growth may leave behind: not data but the file
/// system's own, such as an extent-tree block the reservation added to the
/// file, which a cut does not take away again.
const FS_METADATA_SLACK: u64 = 4 * 4096;

/// The disk has `before` bytes free again, up to the file system's own
/// bookkeeping.
fn assert_space_back(disk: &SmallDisk, before: u64) {
    let now = disk.free_bytes();
    assert!(
        now <= before && before - now <= FS_METADATA_SLACK,
        "the failed growth kept disk space: {before} bytes free before, {now} after"
    );
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).unwrap().len()
}

fn is_storage_full(result: &Result<impl std::fmt::Debug, MappedPageError>) -> bool {
    matches!(result, Err(MappedPageError::Io(e)) if e.kind() == io::ErrorKind::StorageFull)
}

/// After a failed call: the file is as long as the pager says, which is
/// what it was before the call.
fn assert_unchanged<const N: usize>(pager: &Pager<N>, path: &Path, pages: u64, allocated: u64) {
    assert_eq!(pager.page_count(), pages, "page count after a failed call");
    assert_eq!(
        file_len(path),
        pages * N as u64,
        "file length after a failed call"
    );
    assert_eq!(pager.allocated_page_count(), allocated);
}

/// The case, scaled down: a fully allocated `Pager<1024>` with a
/// few MiB left on the disk. Freeing pages one at a time makes the log
/// overflow every few dozen commits; each checkpoint writes a handful of
/// pages, which the pages freed so far cover, so nothing needs to grow.
/// (The old checkpoint asked for ~180 free pages and grew by a doubling
/// that did not fit: the 37th free failed and the pager was wedged.)
#[test]
fn freeing_and_reusing_pages_with_a_few_mib_left() {
    let Some(disk) = SmallDisk::new("freeing_and_reusing_pages_with_a_few_mib_left", 48) else {
        return;
    };
    let path = disk.path("pages");
    const TOTAL: u64 = 16 << 10; // 16 MiB of 1 KiB pages
    let mut pager = Pager::<1024>::options()
        .initial_pages(TOTAL)
        .create(&path)
        .unwrap();
    let ids = pager.alloc_bulk((TOTAL - 3) as usize).unwrap();
    assert_eq!((pager.page_count(), pager.free_page_count()), (TOTAL, 0));
    disk.fill(2 << 20);
    assert!(disk.free_bytes() <= 2 << 20);

    // Every other page, one call each: no two frees merge into one record.
    let freed: Vec<_> = ids.iter().copied().step_by(2).take(150).collect();
    for (i, &id) in freed.iter().enumerate() {
        pager
            .free(id)
            .unwrap_or_else(|e| panic!("free #{} of page {}: {e}", i + 1, id.0));
    }
    assert_eq!(pager.page_count(), TOTAL, "freeing grew the file");
    assert_eq!(file_len(&path), TOTAL * 1024);
    // The pages come back without growing the file.
    let again: Vec<_> = (0..100).map(|_| pager.alloc().unwrap()).collect();
    assert_eq!(pager.page_count(), TOTAL);
    assert!(again.iter().all(|id| freed.contains(id)));
    let allocated = pager.allocated_page_count();
    drop(pager);

    // After a reopen (with a log full of the changes above): free_bulk,
    // alloc_protected, alloc and sync all work.
    let mut pager = Pager::<1024>::open(&path).unwrap();
    assert_eq!(pager.allocated_page_count(), allocated);
    pager.free_bulk(again[..40].to_vec()).unwrap();
    let protected = pager.alloc_protected().unwrap();
    let mut writer = protected.get_mut(&mut pager).unwrap();
    writer.page_mut().as_bytes_mut().fill(7);
    writer.commit().unwrap();
    pager.alloc().unwrap();
    pager.sync().unwrap();
    assert_eq!(pager.page_count(), TOTAL);
    let allocated = pager.allocated_page_count();
    drop(pager);
    let pager = Pager::<1024>::open(&path).unwrap();
    assert_eq!(pager.allocated_page_count(), allocated);
    assert_eq!(protected.get(&pager).unwrap().as_bytes()[0], 7);
}

/// A growth larger than the disk: `StorageFull`, and the call gives back
/// everything it took (the file's length and the disk space); the pager is
/// rolled back and goes on, and the file reopens.
#[test]
fn a_growth_larger_than_the_disk_is_storage_full_and_gives_everything_back() {
    let Some(disk) = SmallDisk::new("a_growth_larger_than_the_disk", 32) else {
        return;
    };
    let path = disk.path("pages");
    let mut pager = Pager::<4096>::create(&path).unwrap();
    let kept = pager.alloc_bulk(10).unwrap();
    let (pages, allocated) = (pager.page_count(), pager.allocated_page_count());
    let free_disk = disk.free_bytes();

    // Twice the disk, regular and protected.
    let too_many = (2 * free_disk / 4096) as usize;
    let result = pager.alloc_bulk(too_many);
    assert!(is_storage_full(&result), "{result:?}");
    assert_unchanged(&pager, &path, pages, allocated);
    assert_space_back(&disk, free_disk);
    let result = pager.alloc_protected_bulk(too_many / 2);
    assert!(is_storage_full(&result), "{result:?}");
    assert_unchanged(&pager, &path, pages, allocated);
    assert_space_back(&disk, free_disk);

    // Usable: the same calls that fit work.
    let id = pager.alloc().unwrap();
    let protected = pager.alloc_protected().unwrap();
    pager.free(kept[0]).unwrap();
    pager.sync().unwrap();
    let allocated = pager.allocated_page_count();
    drop(pager);
    let mut pager = Pager::<4096>::open(&path).unwrap();
    assert_eq!(pager.allocated_page_count(), allocated);
    assert!(id.get(&pager).is_ok() && protected.get(&pager).is_ok());
    // And after the reopen, the same failure changes nothing again.
    let pages = pager.page_count();
    assert!(is_storage_full(&pager.alloc_bulk(too_many)));
    assert_unchanged(&pager, &path, pages, allocated);
}

/// A bulk allocation that fills the disk to the last block: the growth step
/// does not fit, the least growth that does is taken. Counting down from
/// the exact figure (the file system may need a block or two of its own),
/// every attempt that does not fit changes nothing, and the first that fits
/// leaves the disk (nearly) full. Then the disk full, the pager goes on.
#[test]
fn a_bulk_allocation_that_fills_the_disk() {
    let Some(disk) = SmallDisk::new("a_bulk_allocation_that_fills_the_disk", 32) else {
        return;
    };
    let path = disk.path("pages");
    // Most of the disk already: the growth the call prefers (what it needs
    // and room for a checkpoint) cannot fit.
    let mut pager = Pager::<4096>::options()
        .initial_pages(disk.free_bytes() / 4096 * 3 / 5)
        .create(&path)
        .unwrap();
    let pages = pager.page_count();
    let exact = pager.free_page_count() + disk.free_bytes() / 4096;
    assert!(
        exact - pager.free_page_count() < pages,
        "the step would fit"
    );
    let mut count = exact;
    let ids = loop {
        let result = pager.alloc_bulk(count as usize);
        match result {
            Ok(ids) => break ids,
            Err(MappedPageError::Io(ref e)) if e.kind() == io::ErrorKind::StorageFull => {
                assert_unchanged(&pager, &path, pages, 0);
                assert!(
                    exact - count < 64,
                    "{count} of {exact} pages still did not fit"
                );
                count -= 1;
            }
            Err(e) => panic!("alloc_bulk({count}): {e}"),
        }
    };
    assert_eq!(ids.len() as u64, count);
    assert!(
        disk.free_bytes() < 64 * 4096,
        "the disk still has {} bytes free",
        disk.free_bytes()
    );
    assert_eq!(file_len(&path), pager.page_count() * 4096);

    // Full: more fails and changes nothing; freeing and reusing works.
    let (pages, allocated) = (pager.page_count(), pager.allocated_page_count());
    let result = pager.alloc_bulk(1000);
    assert!(is_storage_full(&result), "{result:?}");
    assert_unchanged(&pager, &path, pages, allocated);
    pager.free_bulk(ids[..100].to_vec()).unwrap();
    pager.alloc_bulk(100).unwrap();
    pager.sync().unwrap();
    drop(pager);
    let pager = Pager::<4096>::open(&path).unwrap();
    assert_eq!(pager.allocated_page_count(), allocated);
}

/// A full disk and a full file: every call that must grow fails, the pager
/// stays usable; once another file is deleted, every call works again.
#[test]
fn everything_works_again_once_space_is_back() {
    let Some(disk) = SmallDisk::new("everything_works_again_once_space_is_back", 32) else {
        return;
    };
    let path = disk.path("pages");
    let mut pager = Pager::<1024>::options()
        .initial_pages(1024)
        .create(&path)
        .unwrap();
    let ids = pager.alloc_bulk(1021).unwrap();
    let filler = disk.fill(0);
    let (pages, allocated) = (pager.page_count(), pager.allocated_page_count());
    assert!(is_storage_full(&pager.alloc()));
    assert!(is_storage_full(&pager.alloc_protected()));
    assert!(is_storage_full(&pager.alloc_bulk(5000)));
    assert_unchanged(&pager, &path, pages, allocated);
    pager.sync().unwrap();
    drop(pager);
    let mut pager = Pager::<1024>::open(&path).unwrap();
    assert!(is_storage_full(&pager.alloc()));
    assert_unchanged(&pager, &path, pages, allocated);

    fs::remove_file(&filler).unwrap();
    OpenOptions::new()
        .read(true)
        .open(&disk.mnt)
        .unwrap()
        .sync_all()
        .unwrap();
    let id = pager.alloc().unwrap();
    let protected = pager.alloc_protected().unwrap();
    let mut writer = protected.get_mut(&mut pager).unwrap();
    writer.page_mut().as_bytes_mut().fill(3);
    writer.commit().unwrap();
    pager.alloc_bulk(5000).unwrap();
    pager.free(ids[0]).unwrap();
    pager.free_bulk(ids[1..50].to_vec()).unwrap();
    pager.sync().unwrap();
    let allocated = pager.allocated_page_count();
    assert_eq!(file_len(&path), pager.page_count() * 1024);
    drop(pager);
    let pager = Pager::<1024>::open(&path).unwrap();
    assert_eq!(pager.allocated_page_count(), allocated);
    assert!(id.get(&pager).is_ok());
    assert_eq!(protected.get(&pager).unwrap().as_bytes()[0], 3);
}

/// A `create` whose initial size does not fit on the disk: `StorageFull`,
/// no file left behind, the space back; a smaller `create` then works.
#[test]
fn a_create_larger_than_the_disk_leaves_no_file() {
    let Some(disk) = SmallDisk::new("a_create_larger_than_the_disk_leaves_no_file", 32) else {
        return;
    };
    let path = disk.path("pages");
    let free_disk = disk.free_bytes();
    let created = Pager::<4096>::options()
        .initial_pages(2 * free_disk / 4096)
        .create(&path);
    assert!(is_storage_full(&created), "{created:?}");
    assert!(!path.exists(), "a failed create left a file");
    assert_space_back(&disk, free_disk);
    let mut pager = Pager::<4096>::create(&path).unwrap();
    pager.alloc().unwrap();
    drop(pager);
    assert_eq!(
        Pager::<4096>::open(&path).unwrap().allocated_page_count(),
        1
    );
}

/// A length as fallocate64 takes it; a test disk is far smaller.
fn to_off64(len: u64) -> libc::off64_t {
    libc::off64_t::try_from(len).unwrap()
}
