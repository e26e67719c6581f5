//! The work both programs run on this crate: T3's transaction (fresh pages
//! written, the transaction before's freed, a protected root), R6's writer
//! and readers on a `ConcurrentPager`, and files of written pages to read.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use mappedpages::{ConcurrentPager, Durability, PageId, Pager, ProtectedPageId, Snapshot};

use super::stats::Rng;
use super::{BoxResult, PAGE};

/// R6's writer: fresh pages per commit, and the pages the commit before
/// wrote freed.
pub const R6_K: usize = 4;
/// R6's readers read the first 8 bytes of random pages of this many (64 MiB).
pub const R6_PAGES: u64 = 1 << 14;
/// Reads per snapshot before a reader takes the newest one again.
pub const R6_BATCH: u64 = 256;
/// A reader count meaning one thread that spins and reads nothing: it keeps
/// the second core busy, as a reader does, so that the reader's own cost to
/// the writer can be told apart from that of a busy core.
pub const R6_SPINNER: usize = usize::MAX;
/// R6's configurations, (writer, reader threads): the writer alone, with 1
/// reader, with 2; 1 and 2 readers without a writer; the writer beside a
/// spinning thread.
pub const R6_CONFIGS: [(bool, usize); 6] = [
    (true, 0),
    (true, 1),
    (true, 2),
    (false, 1),
    (false, 2),
    (true, R6_SPINNER),
];

/// R6's spinning thread (`R6_SPINNER`): busy until `stop`, touching no
/// page.
pub fn spin(stop: &AtomicBool) {
    let mut spins = 0u64;
    while !stop.load(Ordering::Relaxed) {
        spins = std::hint::black_box(spins.wrapping_add(1));
    }
}

/// The first 8 bytes of a page, as the read loops sum them.
#[inline(always)]
pub fn head(bytes: &[u8]) -> u64 {
    bytes
        .first_chunk::<8>()
        .map_or(0, |c| u64::from_le_bytes(*c))
}

/// A file of `n` written pages, each filled with its id's low byte and
/// starting with its id, synced, with `spare` free pages after them.
pub fn written_pages(
    path: &Path,
    n: u64,
    spare: u64,
    durability: Durability,
) -> BoxResult<(Pager<PAGE>, Vec<PageId<PAGE>>)> {
    let mut pager = Pager::<PAGE>::options()
        .durability(durability)
        .initial_pages(n + spare)
        .create(path)?;
    let ids = pager.alloc_bulk(n as usize)?;
    for id in &ids {
        let bytes = id.get_mut(&mut pager)?.as_bytes_mut();
        bytes.fill(id.0 as u8);
        bytes[..8].copy_from_slice(&id.0.to_le_bytes());
    }
    pager.sync()?;
    Ok((pager, ids))
}

/// One transaction of the shape T3 and R6 measure: `k` fresh pages, each
/// written by `write`; `older` freed; the protected `root` pointed at the
/// first new page; committed. Returns the new pages, which the next such
/// transaction frees.
pub fn replace_pages(
    pager: &mut Pager<PAGE>,
    root: ProtectedPageId<PAGE>,
    older: Vec<PageId<PAGE>>,
    k: usize,
    mut write: impl FnMut(PageId<PAGE>, &mut [u8]),
) -> mappedpages::Result<Vec<PageId<PAGE>>> {
    let mut txn = pager.transaction()?;
    let ids = txn.alloc_bulk(k)?;
    for &id in &ids {
        write(id, txn.get_mut(id)?.as_bytes_mut());
    }
    txn.free_bulk(older)?;
    txn.write_protected(root)?.as_bytes_mut()[..8].copy_from_slice(&ids[0].0.to_le_bytes());
    txn.commit()?;
    Ok(ids)
}

/// R6's writer on a `ConcurrentPager`: each commit allocates `R6_K` pages,
/// writes them (each starting with its id, which readers check), frees the
/// `R6_K` the commit before wrote and points the protected root at the
/// first new one.
pub struct R6Writer {
    root: ProtectedPageId<PAGE>,
    older: Vec<PageId<PAGE>>,
    fill: u8,
}

impl R6Writer {
    pub fn new(root: ProtectedPageId<PAGE>) -> R6Writer {
        R6Writer {
            root,
            older: Vec::new(),
            fill: 0,
        }
    }

    /// One commit, published to readers when it returns (the guard's drop
    /// publishes it). Errors as text, for the writer's thread to return.
    pub fn commit(&mut self, shared: &ConcurrentPager<PAGE>) -> Result<(), String> {
        self.fill = self.fill.wrapping_add(1);
        let fill = self.fill;
        let mut guard = shared.write().map_err(|e| e.to_string())?;
        let older = std::mem::take(&mut self.older);
        self.older = replace_pages(&mut guard, self.root, older, R6_K, |id, bytes| {
            bytes.fill(fill);
            bytes[..8].copy_from_slice(&id.0.to_le_bytes());
        })
        .map_err(|e| e.to_string())?;
        drop(guard);
        Ok(())
    }
}

/// An R6 reader's check of a snapshot: the page its root names reads as the
/// commit that wrote the root wrote it, never as a later or earlier one.
pub fn check_root(snap: &Snapshot<PAGE>, root: ProtectedPageId<PAGE>) -> Result<(), String> {
    let newest = head(
        snap.get_protected(root)
            .map_err(|e| e.to_string())?
            .as_bytes(),
    );
    if newest != 0 {
        let page = snap.get(PageId(newest)).map_err(|e| e.to_string())?;
        if head(page.as_bytes()) != newest {
            return Err(format!(
                "page {newest} does not read as its commit wrote it"
            ));
        }
    }
    Ok(())
}

/// `R6_BATCH` reads of the first 8 bytes of random pages of `ids` (a power
/// of two of them) through one snapshot: their sum.
pub fn read_batch(
    snap: &Snapshot<PAGE>,
    ids: &[PageId<PAGE>],
    rng: &mut Rng,
) -> Result<u64, String> {
    let mask = ids.len() as u64 - 1;
    let mut sum = 0u64;
    for _ in 0..R6_BATCH {
        let id = ids[(rng.next() & mask) as usize];
        let page = snap.get(id).map_err(|e| e.to_string())?;
        sum = sum.wrapping_add(head(page.as_bytes()));
    }
    Ok(sum)
}
