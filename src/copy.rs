//! Consistent copies of a live file (contract C3): a snapshot's state
//! written to a new file while the writer goes on.
//!
//! The copy is built under a temporary name beside the destination: a new
//! file of the snapshot's length up to its last page in use, the bytes of
//! every page the state uses (allocated regular pages, protected copies)
//! written at the same page numbers in runs (free pages are left as holes),
//! then one commit whose root describes exactly that state, with both page
//! trees written whole into its free pages, and a sync. Only then is the
//! file renamed to the destination and the directory synced, so a crash
//! during a copy leaves no file at the destination that looks complete.

use std::path::{Path, PathBuf};

use crate::core::{Core, Settings};
use crate::error::{MappedPageError, Result};
use crate::fault::HookSlot;
use crate::format::FIRST_DATA_PAGE;
use crate::freemap::FreeMap;
use crate::io::Storage;
use crate::options::Durability;
use crate::snapshot::Frozen;

/// The largest write a copy makes at once: long runs of pages are written
/// in pieces this size, so a copy needs no more memory than the map.
const COPY_CHUNK: usize = 8 << 20;

impl Frozen {
    /// Writes this state to a new file at `path` (see the module docs);
    /// `progress(done, total)` is told the pages written so far.
    pub(crate) fn copy_to(&self, path: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<()> {
        if path.exists() {
            return Err(std::io::Error::from(std::io::ErrorKind::AlreadyExists).into());
        }
        let partial = partial_name(path);
        let _ = std::fs::remove_file(&partial);
        let result = self.write_copy(&partial, progress).and_then(|()| {
            std::fs::rename(&partial, path)?;
            Storage::sync_parent_dir(path)?;
            Ok(())
        });
        if result.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        result
    }

    fn write_copy(&self, path: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<()> {
        let page_size = self.page_size();
        let used = self.used_pages();
        // Up to the last page the state names: its pages, and both copies
        // of each protected page (the other copy is named, not copied).
        let copies = self
            .directory()
            .iter()
            .filter(|entry| entry.in_use())
            .flat_map(|entry| entry.copies);
        let total = used
            .iter()
            .map(|&(start, count)| start + count - 1)
            .chain(copies)
            .max()
            .map_or(FIRST_DATA_PAGE, |last| last + 1)
            .max(FIRST_DATA_PAGE + 1)
            .max(self.directory().len() as u64 * 2);
        let settings = Settings {
            page_size,
            durability: Durability::Immediate,
            max_growth_pages: u64::MAX,
            shrink_threshold_pages: None,
            preallocate: false,
            initial_pages: total,
            hook: HookSlot::default(),
        };
        let mut core = Core::create(path, settings)?;
        let pages_to_copy: u64 = used.iter().map(|&(_, count)| count).sum();
        let mut done = 0u64;
        let pages_per_chunk = (COPY_CHUNK / page_size).max(1) as u64;
        for &(start, count) in &used {
            let mut page = start;
            while page < start + count {
                let n = pages_per_chunk.min(start + count - page);
                let bytes = self.pages(page, n)?;
                core.store.write_at(page * page_size as u64, bytes)?;
                page += n;
                done += n;
                progress(done, pages_to_copy);
            }
        }
        // The source's length, cut to the copy's (nothing is set past it).
        let mut regular = self.regular_bits().clone();
        regular.truncate(total);
        regular.grow(total);
        let map = FreeMap::from_parts(
            regular,
            self.directory().to_vec(),
            self.directory().len() as u64,
            [],
        )
        .map_err(|_| MappedPageError::CorruptMetadata)?;
        core.map = map;
        core.journal.root_total = total;
        // One commit of the whole state; its sync makes the pages written
        // above durable with it.
        core.commit_trees_whole()
    }
}

/// `path` with `.partial` added to its name: where a copy is built.
fn partial_name(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}
