//! The engine's side of a copy (the public face, with the temporary file
//! and its publication, is `crate::copy`): how long the new file is, and
//! the state's pages and page trees written into it in one commit.

use crate::engine::core::{Core, Settings};
use crate::engine::durability::Durability;
use crate::engine::freemap::FreeMap;
use crate::engine::limits::MIN_FILE_PAGES;
use crate::engine::readers::ReaderBounds;
use crate::engine::snapshots::Frozen;
use crate::engine::transaction::DEFAULT_TRANSACTION_MEMORY;
use crate::error::{MappedPageError, Result};
use crate::fault::HookSlot;
use crate::format::FIRST_DATA_PAGE;

/// The largest write a copy makes at once: long runs of pages are written
/// in pieces this size, so a copy needs no more memory than the map.
const COPY_CHUNK: usize = 8 << 20;

impl Frozen {
    /// How to create the copy's file: as long as the state's last page in
    /// use, and synced as it is written.
    pub(crate) fn copy_settings(&self) -> Settings {
        // Up to the last page the state names: its pages, and both copies
        // of each protected page (the other copy is named, not copied).
        let copies = self
            .directory()
            .iter()
            .flat_map(|entry| entry.pages().iter().copied());
        let total = self
            .used_pages()
            .iter()
            .map(|&(start, count)| start + count - 1)
            .chain(copies)
            .max()
            .map_or(FIRST_DATA_PAGE, |last| last + 1)
            .max(MIN_FILE_PAGES)
            .max(self.directory().len() as u64);
        Settings {
            page_size: self.page_size(),
            durability: Durability::Immediate,
            max_growth_pages: u64::MAX,
            shrink_threshold_pages: None,
            preallocate: false,
            transaction_memory: DEFAULT_TRANSACTION_MEMORY,
            initial_pages: total,
            hook: HookSlot::default(),
            process_readers: false,
            reader_bounds: ReaderBounds::default(),
        }
    }
}

impl Core {
    /// Fills this new file, made with [`Frozen::copy_settings`], with
    /// `state`, and commits it. The file is closed when this returns or
    /// unwinds, before its name is given or removed.
    pub(crate) fn fill_with_copy_of(
        mut self,
        state: &Frozen,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<()> {
        let page_size = state.page_size();
        let used = state.used_pages();
        let total = self.map.total_pages();
        let pages_to_copy: u64 = used.iter().map(|&(_, count)| count).sum();
        let mut done = 0u64;
        let pages_per_chunk = (COPY_CHUNK / page_size).max(1) as u64;
        for &(start, count) in &used {
            let mut page = start;
            while page < start + count {
                let n = pages_per_chunk.min(start + count - page);
                let bytes = state.pages(page, n)?;
                self.store.write_at(page * page_size as u64, bytes)?;
                page += n;
                done += n;
                progress(done, pages_to_copy);
            }
        }
        // The source's length, cut to the copy's (nothing is set past it).
        let mut regular = state.regular_bits().clone();
        regular.truncate(total);
        regular.grow(total);
        let map = FreeMap::from_parts(
            regular,
            state.directory().to_vec(),
            state.directory().len() as u64,
            [],
        )
        .map_err(|_| MappedPageError::CorruptMetadata)?;
        self.map = map;
        self.journal.root_total = total;
        // One commit of the whole state; its sync makes the pages written
        // above durable with it.
        self.commit_trees_whole()
    }
}
