//! The writer's side of snapshots: the committed state frozen for them,
//! and what live snapshots forbid the writer (rules 1, 3 and 4 of the
//! argument in `engine/snapshots.rs`).

use std::sync::Arc;

use crate::engine::core::Core;
use crate::engine::snapshots::Frozen;
use crate::error::{MappedPageError, Result};

impl Core {
    /// The state as of the last commit, shared with earlier snapshots of it.
    pub(crate) fn freeze(&self) -> Result<Arc<Frozen>> {
        self.check_usable()?;
        let generation = self.journal.generation;
        let mut states = self.snapshots.states();
        if let Some(state) = states
            .last()
            .filter(|(g, _)| *g == generation)
            .and_then(|(_, state)| state.upgrade())
        {
            return Ok(state);
        }
        let state = Arc::new(Frozen::new(
            generation,
            &self.map,
            self.store.region(),
            Arc::clone(&self.zero_page),
            &self.snapshots.alive,
        ));
        states.push((generation, Arc::downgrade(&state)));
        Ok(state)
    }

    /// Whether any snapshot given out may still live.
    #[inline]
    pub(super) fn snapshots_alive(&self) -> bool {
        self.snapshots.any_alive()
    }

    /// Fails with `InUseBySnapshot` if a live snapshot reads `page` (rule 3
    /// of the module docs), or a reader in another process reads any state
    /// (`readers.rs`).
    #[inline]
    pub(crate) fn check_not_in_snapshot(&self, page: u64) -> Result<()> {
        if self.process_reader_reads() {
            return Err(MappedPageError::InUseBySnapshot { page });
        }
        if !self.snapshots.any_alive() {
            return Ok(());
        }
        let newest = self.snapshots.newest();
        if newest.is_some_and(|state| state.regular_bits().get(page)) {
            return Err(MappedPageError::InUseBySnapshot { page });
        }
        Ok(())
    }

    /// Whether a live snapshot (or, for all the writer knows, a reader in
    /// another process) names `page` as the committed copy of `slot`
    /// (rule 4).
    pub(super) fn snapshot_names(&self, slot: u64, page: u64) -> bool {
        self.process_reader_reads()
            || self
                .snapshots
                .live()
                .iter()
                .any(|state| state.names_copy(slot, page))
    }

    /// The generation of the oldest live snapshot, if any.
    fn oldest_snapshot(&self) -> Option<u64> {
        self.snapshots.oldest_generation()
    }

    /// Makes the pages held for snapshots reusable once no live snapshot,
    /// and no reader in another process (`readers.rs`), is older than the
    /// commit that freed them (rule 1).
    pub(super) fn release_unpinned(&mut self) {
        let Some(freed_through) = self.journal.reclaim.newest_releasable() else {
            return;
        };
        let snapshot = self.oldest_snapshot();
        let reader = self.oldest_process_reader(freed_through);
        let oldest = match (snapshot, reader) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.journal.reclaim.release(&mut self.map, oldest);
    }
}
