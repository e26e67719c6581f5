//! The raw disk, the floor every engine is measured against: 4 KiB
//! `pwrite`s (with `fdatasync` where the workload syncs), T3's `pwrite`s and
//! one `fdatasync`, and reads through a `memmap2` map of this crate's own
//! file.

use std::fs::OpenOptions;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use super::{Engine, ReadData, Work};
use crate::support::raw::{RawT3, RawWrites};
use crate::support::stats::ns;
use crate::support::workloads::head;
use crate::support::PAGE;
use crate::workloads::group::{text, Committer, GroupStore};
use crate::{Op, R};

/// `pwrite` and `fdatasync` on a file of written blocks.
pub struct Raw;

/// A second `memmap2` map of this crate's file, read at the same offsets.
pub struct RawMap;

impl Engine for Raw {
    fn id(&self) -> &'static str {
        "raw"
    }

    fn label(&self, work: Work) -> String {
        match work {
            Work::Txn { .. } => {
                "raw: k+1 one-page pwrites (k in a row, 1 apart) + one fdatasync, overwrites".into()
            }
            w if w.sync() => "raw 4 KiB pwrite + fdatasync".into(),
            _ => "raw 4 KiB pwrite, no sync".into(),
        }
    }

    fn op(&self, work: Work, dir: &Path, _cap: usize) -> R<Op> {
        if let Work::Txn { k } = work {
            let mut raw = RawT3::create(&dir.join("raw-t3.bin"), k, 0, false)?;
            return Ok(Box::new(move |_| Ok(ns(raw.commit()?))));
        }
        let sync = work.sync();
        let mut raw = RawWrites::create(&dir.join("raw.bin"))?;
        Ok(Box::new(move |i| Ok(ns(raw.write(i, sync)?))))
    }

    fn group(&self, dir: &Path) -> R<Vec<Box<dyn GroupStore>>> {
        let raw = RawWrites::create(&dir.join("raw.bin"))?;
        Ok(vec![Box::new(RawGroup(Mutex::new((raw, 0))))])
    }
}

/// G: 4 KiB `pwrite` + `fdatasync` from one thread, the disk's syncs per
/// second; the writes and their count, locked by that thread alone.
struct RawGroup(Mutex<(RawWrites, u64)>);

impl GroupStore for RawGroup {
    fn label(&self) -> &'static str {
        "raw 4 KiB pwrite + fdatasync, 1 thread (the disk's syncs per second)"
    }

    fn short(&self) -> &'static str {
        "the raw disk"
    }

    fn max_threads(&self) -> usize {
        1
    }

    fn committer(&self, _thread: usize) -> Result<Box<dyn Committer + '_>, String> {
        Ok(Box::new(RawCommitter(&self.0)))
    }
}

struct RawCommitter<'a>(&'a Mutex<(RawWrites, u64)>);

impl Committer for RawCommitter<'_> {
    fn commit(&mut self) -> Result<(), String> {
        let mut raw = self.0.lock().map_err(text)?;
        let (writes, i) = &mut *raw;
        writes.write(*i, true).map_err(text)?;
        *i += 1;
        Ok(())
    }
}

impl Engine for RawMap {
    fn id(&self) -> &'static str {
        "raw-map"
    }

    fn label(&self, _work: Work) -> String {
        "raw memmap2 slice".into()
    }

    /// Maps the pager's own file a second time and reads the same pages at
    /// the same offsets: the same page-cache pages, so the two loops differ
    /// only in the access path. (A separately written file of the same
    /// bytes can sit in differently sized folios and read faster or slower
    /// for that reason alone.)
    fn reads(&self, _dir: &Path, data: &ReadData) -> R<(String, Op)> {
        // The same kind of map as the pager's own (shared, read-write),
        // though only read here.
        let raw_file = OpenOptions::new().read(true).write(true).open(&data.path)?;
        // SAFETY: a map of a file this program owns; the pager never
        // truncates it while open, nothing is written through this map,
        // and nothing writes the pages read here while the loops run.
        let map = unsafe { memmap2::MmapMut::map_mut(&raw_file)? };
        if (map.len() as u64) < data.pager.page_count() * PAGE as u64 {
            return Err("the second map does not cover the pager's file".into());
        }
        // The byte offsets of the pages `get` reads, in the same order.
        let offsets: Vec<usize> = data
            .order
            .iter()
            .map(|&i| data.ids[i as usize].0 as usize * PAGE)
            .collect();
        // Both paths must read the same bytes.
        for &off in offsets.iter().take(64) {
            let id = mappedpages::PageId::<PAGE>(off as u64 / PAGE as u64);
            if head(&map[off..off + PAGE]) != head(id.get(&data.pager)?.as_bytes()) {
                return Err("the raw map and the pager read different bytes".into());
            }
        }
        Ok((
            "raw memmap2 slice (a second map of the pager's file, same pages)".into(),
            Box::new(move |_| {
                let start = Instant::now();
                let mut sum = 0u64;
                for &off in &offsets {
                    sum = sum.wrapping_add(head(&map[off..off + PAGE]));
                }
                std::hint::black_box(sum);
                Ok(ns(start.elapsed()) / offsets.len() as f64)
            }),
        ))
    }
}
