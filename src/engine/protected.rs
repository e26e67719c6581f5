//! The engine's side of protected pages: the directory slots in use and
//! the committed copy each names (the public face is `crate::protected`).

use crate::engine::core::Core;
use crate::error::{MappedPageError, Result};
use crate::format::record::{DirEntry, EntryState};

impl Core {
    pub(crate) fn live_entry(&self, slot: u64) -> Result<DirEntry> {
        self.check_usable()?;
        self.map
            .entry(slot)
            .copied()
            .filter(DirEntry::is_protected)
            .ok_or(MappedPageError::OutOfBounds)
    }

    /// The entry of `slot`, to free it: `DoubleFree` for a slot of the
    /// directory that holds no protected page (free, or taken since by a
    /// sub-page parent: 0.2's rule, which free of a regular page follows
    /// too), `OutOfBounds` only past the directory.
    pub(super) fn freeable_entry(&self, slot: u64) -> Result<DirEntry> {
        match self.live_entry(slot) {
            Err(MappedPageError::OutOfBounds) if slot < self.map.dir_len() => {
                Err(MappedPageError::DoubleFree)
            }
            other => other,
        }
    }

    /// Allocates `count` protected pages in one commit.
    pub(crate) fn alloc_protected(&mut self, count: u64) -> Result<Vec<u64>> {
        self.one_op(|core, txn| core.txn_alloc_protected(txn, count))
    }

    /// Frees protected pages in one commit, after checking every one.
    pub(crate) fn free_protected(&mut self, slots: &[u64]) -> Result<()> {
        self.one_op(|core, txn| core.txn_free_protected(txn, slots))
    }

    /// The committed bytes of a protected page.
    pub(crate) fn protected_page(&self, slot: u64) -> Result<&[u8]> {
        let entry = self.live_entry(slot)?;
        match entry.state {
            EntryState::Active(copy) => {
                let range = self.page_range(entry.copies[usize::from(copy)]);
                self.store
                    .bytes()
                    .get(range)
                    .ok_or(MappedPageError::OutOfBounds)
            }
            _ => Ok(&self.zero_page),
        }
    }
}
