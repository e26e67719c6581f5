//! The writer's side of readers in other processes: the one place the
//! engine reads the reader table (`io/reader_table.rs`) from.
//!
//! A file whose reader table exists is written as if every reader in it
//! were a live snapshot of this process: a page freed by a commit after the
//! generation a reader reads is not reused while it reads it (rule 1 of the
//! argument in `engine/snapshots.rs`), and the file is not cut below the
//! pages its state counts. A writer opens the table when it opens the file
//! if the table exists, and makes it when asked to (`process_readers`), so
//! a reader that finds a table can count on every writer honouring it.

use std::path::Path;

use crate::engine::core::Core;
use crate::error::{MappedPageError, Result};
use crate::io::reader_table::{table_path, ReaderEntry, ReaderTable, TableError};

/// The error a table that cannot be used is reported as.
pub(crate) fn table_error(err: TableError, data: &Path) -> MappedPageError {
    match err {
        TableError::Io(err) => MappedPageError::Io(err),
        TableError::NotATable => MappedPageError::NotAReaderTable {
            path: table_path(data),
        },
        TableError::Full => MappedPageError::ReaderTableFull,
    }
}

/// How far a reader of another process may fall behind before the writer's
/// commits are refused (`PagerOptions::max_reader_pins` and
/// `max_reader_lag`); no bound by default.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ReaderBounds {
    /// Freed pages the oldest reader may keep from reuse.
    pub(crate) pins: Option<u64>,
    /// Commits the oldest reader may be behind the newest.
    pub(crate) lag: Option<u64>,
}

impl ReaderBounds {
    fn any(self) -> bool {
        self.pins.is_some() || self.lag.is_some()
    }
}

impl Core {
    /// Opens the reader table of the file at `path` if it exists or
    /// `make` asks for one, at the generation the writer starts from. The
    /// pages that are free in that state may be in use in the older state
    /// of a reader that followed an earlier writer: while such a reader
    /// lives they all wait, as if freed by this generation.
    pub(crate) fn attach_readers(&mut self, path: &Path, make: bool) -> Result<()> {
        if !make && !table_path(path).exists() {
            return Ok(());
        }
        let table = ReaderTable::open(path, true).map_err(|err| table_error(err, path))?;
        let generation = self.journal.generation;
        let oldest = table.before_reuse(generation)?;
        if oldest.is_some_and(|oldest| oldest < generation) {
            let free: Vec<u64> = (0..self.map.total_pages())
                .filter(|&page| self.map.is_free(page))
                .collect();
            let withheld = self.map.withhold(&free);
            self.journal.reclaim.freed(generation, withheld);
        }
        self.readers = Some(table);
        Ok(())
    }

    /// The readers of other processes (and this one's `LiveReader`s)
    /// registered in the file's reader table; none without a table.
    pub(crate) fn process_readers(&self) -> Result<Vec<ReaderEntry>> {
        match &self.readers {
            Some(table) => Ok(table.readers()?),
            None => Ok(Vec::new()),
        }
    }

    /// The oldest generation a reader in another process reads, once the
    /// table was told that pages freed by commits up to `freed_through`
    /// are about to be reused (see `io/reader_table.rs` for the race this
    /// closes). A table that cannot be read pins everything.
    pub(super) fn oldest_process_reader(&self, freed_through: u64) -> Option<u64> {
        let table = self.readers.as_ref()?;
        match table.before_reuse(freed_through) {
            Ok(oldest) => oldest,
            Err(err) => {
                log::warn!("reader table unreadable, no freed page is reused: {err}");
                Some(0)
            }
        }
    }

    /// Whether a reader in another process reads some state now. The writer
    /// cannot see which pages that state counts, so while one does, no page
    /// is written in place and a staged protected write goes to a fresh
    /// page (rules 3 and 4 of `engine/snapshots.rs`, kept for every page
    /// such a state may count). A table that cannot be read counts as read.
    pub(super) fn process_reader_reads(&self) -> bool {
        self.readers
            .as_ref()
            .is_some_and(|table| table.any_reader().unwrap_or(true))
    }

    /// How many freed pages wait for readers as old as `generation`: those
    /// freed by later commits that a sync has made durable.
    pub(crate) fn pages_pinned_by(&self, generation: u64) -> u64 {
        self.journal.reclaim.held_after(generation)
    }

    /// Fails if the oldest reader of another process is past a bound of
    /// the pager's (`PagerOptions::max_reader_lag` and `max_reader_pins`):
    /// with `ReaderTooFarBehind` if the next commit would leave it more
    /// commits behind than allowed, with `ReaderPinsTooMany` if it keeps
    /// more freed pages from reuse (checked only when `pins`: before a
    /// commit that changes the allocation, and before a transaction).
    /// Checked before every commit, so a refused one changes nothing.
    pub(super) fn check_reader_bounds(&self, pins: bool) -> Result<()> {
        let bounds = self.reader_bounds;
        let Some(table) = self.readers.as_ref().filter(|_| bounds.any()) else {
            return Ok(());
        };
        let Some(oldest) = table.readers()?.into_iter().min_by_key(|r| r.generation) else {
            return Ok(());
        };
        let behind = (self.journal.generation + 1).saturating_sub(oldest.generation);
        if bounds.lag.is_some_and(|limit| behind > limit) {
            return Err(MappedPageError::ReaderTooFarBehind {
                process_id: oldest.pid,
                generation: oldest.generation,
                behind,
            });
        }
        let pinned = self.pages_pinned_by(oldest.generation);
        if pins && bounds.pins.is_some_and(|limit| pinned > limit) {
            return Err(MappedPageError::ReaderPinsTooMany {
                process_id: oldest.pid,
                generation: oldest.generation,
                pins: pinned,
            });
        }
        Ok(())
    }

    /// The fewest pages the file may be cut to: those the state of every
    /// reader in another process counts (0 without readers). A table that
    /// cannot be read forbids every cut.
    pub(super) fn process_readers_pages(&self) -> u64 {
        match self.readers.as_ref().map(|table| table.pages_in_use()) {
            None => 0,
            Some(Ok(pages)) => pages,
            Some(Err(_)) => u64::MAX,
        }
    }
}
