//! When a commit becomes durable: the modes a pager is opened with. How
//! each is kept is the commit protocol's (`engine/commit.rs`).

/// When a commit becomes durable.
///
/// In every mode each call is atomic and the file is consistent after a crash
/// of the process or the machine. The modes differ only in how many of the
/// latest commits a power loss may take back.
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.pages");
/// use mappedpages::{Durability, Pager};
/// let mut pager = Pager::<4096>::options()
///     .durability(Durability::Deferred)
///     .create(&path)?;
/// let syncs = pager.sync_count();
/// let mut txn = pager.transaction()?;
/// let id = txn.alloc()?;
/// txn.get_mut(id)?.as_bytes_mut()[0] = 1;
/// txn.commit()?; // atomic, but no sync
/// assert_eq!(pager.sync_count(), syncs);
/// pager.sync()?; // now durable
/// drop(pager);
///
/// let mut pager = Pager::<4096>::options()
///     .durability(Durability::Deferred)
///     .open(&path)?;
/// let syncs = pager.sync_count();
/// pager.alloc()?; // the first write after an open syncs the root open found
/// pager.alloc()?;
/// assert_eq!(pager.sync_count(), syncs + 1);
/// # Ok::<(), mappedpages::MappedPageError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// Durable when the call returns: one sync per commit, whatever a
    /// [`Transaction`](crate::Transaction) wrote (two when the commit grows
    /// the file, or when regular pages written in place through
    /// [`PageId::get_mut`](crate::PageId::get_mut) must reach the disk
    /// before the commit's metadata, and for the first write after an open,
    /// which first makes the root open found durable: open itself syncs
    /// nothing).
    #[default]
    Immediate,
    /// No sync at commit, like LMDB's `MDB_NOSYNC` or redb's
    /// `Durability::None`: commits are atomic and survive a killed process
    /// (the page cache keeps them); a power loss may take back the commits
    /// since the last sync, never part of one. Pages a transaction wrote
    /// are listed with their CRC in the commit's root instead of synced, so
    /// a root whose pages were lost is not opened. [`Pager::sync`](crate::Pager::sync),
    /// or a commit in a pager opened with `Immediate`, makes everything
    /// before it durable; dropping the pager syncs too.
    ///
    /// A commit syncs all the same (once, before it writes anything) when:
    /// regular pages were written in place through `get_mut` since the last
    /// sync (they must reach the disk before the next commit's metadata);
    /// it is the first write after an open (which makes the root open found
    /// durable); it needs more free pages than the file has while many pages
    /// freed since the last sync wait for one (an eighth of a growth step or
    /// more: a sync makes them reusable, which is cheaper than growing the
    /// file; with fewer, the file grows instead); or the pages written since
    /// the last sync would pass the bound below.
    ///
    /// What open checks: after a sync or a clean close, nothing (the root
    /// they leave lists no page). After a killed process or a power loss,
    /// every page written since the last sync, read and checksummed once:
    /// exactly what a power loss could have torn. A commit that would make
    /// that more than 65 536 pages syncs first, so open never checks more
    /// (about 60 ms for 60 000 pages of 4 KiB on a warm cache).
    Deferred,
}
