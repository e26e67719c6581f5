//! The raw-disk baselines the pager is measured against: a 4 KiB `pwrite`
//! (with or without `fdatasync`), and the `pwrite`s and `fdatasync` of one
//! T3 transaction.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use super::PAGE;

/// Blocks of the one-page baseline file, overwritten in turn.
pub const BASE_BLOCKS: u64 = 256;

/// One-page overwrites of a file of written, synced blocks: a 4 KiB
/// overwrite plus `fdatasync` flushes one data block and no allocation
/// metadata, which is the least any durable write can cost.
pub struct RawWrites {
    file: File,
    block: Vec<u8>,
}

impl RawWrites {
    pub fn create(path: &Path) -> io::Result<RawWrites> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        let block = vec![0x5Au8; PAGE];
        for i in 0..BASE_BLOCKS {
            file.write_at(&block, i * PAGE as u64)?;
        }
        file.sync_all()?;
        Ok(RawWrites {
            file,
            block: vec![0u8; PAGE],
        })
    }

    /// Write number `i`, stamped with `i` (so that no write repeats the
    /// block's bytes), and its `fdatasync` with `sync`: its time.
    pub fn write(&mut self, i: u64, sync: bool) -> io::Result<Duration> {
        self.block[0] = i as u8;
        let start = Instant::now();
        self.file
            .write_at(&self.block, (i % BASE_BLOCKS) * PAGE as u64)?;
        if sync {
            self.file.sync_data()?;
        }
        Ok(start.elapsed())
    }
}

/// The raw work of a T3 transaction of k pages: k+1 one-page `pwrite`s and
/// one `fdatasync`: k pages in a row and one page for the root, the file's
/// first, apart from them (next to the data it would merge with it into one
/// disk write, which the pager's root, in a page of its own, does not).
pub struct RawT3 {
    file: File,
    k: usize,
    /// Overwrites: regions of written blocks used in turn. Fresh: the next
    /// never-written region of a reserved file.
    fresh: bool,
    next: u64,
    regions: u64,
    block: Vec<u8>,
}

impl RawT3 {
    const REGIONS: u64 = 4;
    /// The root page and a gap page come before the regions.
    const DATA_START: u64 = 2 * PAGE as u64;

    /// With `fresh`, room for `commits` transactions in blocks `fallocate`
    /// reserved (an unwritten extent, as the pager's growth leaves);
    /// otherwise a few regions of written blocks, overwritten in turn.
    pub fn create(path: &Path, k: usize, commits: usize, fresh: bool) -> io::Result<RawT3> {
        let region = k as u64 * PAGE as u64;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        let regions = if fresh {
            let regions = commits as u64;
            let len = Self::DATA_START + regions * region;
            let len = libc::off64_t::try_from(len).map_err(io::Error::other)?;
            // SAFETY: fallocate64 reads no memory of ours; the descriptor is
            // open for writing and owned by `file` for the call.
            let rc = unsafe { libc::fallocate64(file.as_raw_fd(), 0, 0, len) };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
            // The root page is overwritten every time: written, like the
            // pager's root pages.
            file.write_at(&[0x5Au8; PAGE], 0)?;
            file.sync_all()?;
            regions
        } else {
            let len = Self::DATA_START + Self::REGIONS * region;
            file.write_at(&vec![0x5Au8; len as usize], 0)?;
            file.sync_all()?;
            Self::REGIONS
        };
        Ok(RawT3 {
            file,
            k,
            fresh,
            next: 0,
            regions,
            block: vec![0u8; PAGE],
        })
    }

    /// One transaction's writes and sync: their time.
    pub fn commit(&mut self) -> io::Result<Duration> {
        if self.fresh && self.next >= self.regions {
            return Err(io::Error::other("the fresh raw file is used up"));
        }
        let region = self.next % self.regions;
        self.next += 1;
        self.block[0] = self.next as u8;
        let base = Self::DATA_START + region * (self.k * PAGE) as u64;
        let start = Instant::now();
        for i in 0..self.k as u64 {
            self.file.write_at(&self.block, base + i * PAGE as u64)?;
        }
        self.file.write_at(&self.block, 0)?;
        self.file.sync_data()?;
        Ok(start.elapsed())
    }
}
