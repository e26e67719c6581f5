//! The crate's main job end to end, on a file it creates itself: allocate
//! pages and a protected root in one transaction, write them, commit with
//! one sync, reopen, find the root again and check every page through it.
//!
//! Run it with `cargo run --example quickstart [PATH]`. Without PATH it works
//! in a temporary directory that it removes at the end; with PATH it creates
//! that file (and refuses one that exists) and leaves it for a look with
//! `mappedpages info PATH`.

use std::path::PathBuf;
use std::time::Instant;

use mappedpages::{PageId, Pager, ProtectedPageId};

/// Data pages the example writes: few enough to fit the new file's initial
/// size, so the commit does not have to grow the file.
const PAGES: usize = 40;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let scratch = tempfile::tempdir()?;
    let path = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| scratch.path().join("quickstart.pages"));

    let started = Instant::now();
    // `create` refuses a file that exists, so a path given by mistake is
    // never overwritten.
    let mut pager = Pager::<4096>::create(&path)
        .map_err(|err| format!("{err} (give the path of a new file)"))?;
    println!(
        "created {} with {} pages of {} bytes",
        path.display(),
        pager.page_count(),
        pager.page_size()
    );

    // The data pages and a root that lists them, in one transaction: the
    // pages, their allocation and the root become visible together, with
    // one sync at commit.
    let syncs_before = pager.sync_count();
    let mut txn = pager.transaction()?;
    let root = txn.alloc_protected()?;
    let pages = txn.alloc_bulk(PAGES)?;
    for (i, id) in pages.iter().enumerate() {
        txn.get_mut(*id)?.as_bytes_mut()[..8].copy_from_slice(&(i as u64).to_le_bytes());
    }
    let root_bytes = txn.write_protected(root)?.as_bytes_mut();
    root_bytes[..8].copy_from_slice(&(pages.len() as u64).to_le_bytes());
    for (entry, id) in root_bytes[8..].chunks_exact_mut(8).zip(&pages) {
        entry.copy_from_slice(&id.0.to_le_bytes());
    }
    txn.commit()?;
    let syncs = pager.sync_count() - syncs_before;
    println!(
        "committed {} pages and a protected root in one transaction in {:?} ({syncs} sync{})",
        pages.len(),
        started.elapsed(),
        if syncs == 1 { "" } else { "s" }
    );
    drop(pager);

    // Reopen and follow the root: it was the file's first protected page,
    // so its id is known without storing it anywhere.
    let pager = Pager::<4096>::open(&path)?;
    let report = pager.recovery();
    println!(
        "reopened at generation {} (fell back to an older copy: {})",
        report.generation, report.fell_back
    );
    let root_bytes = pager.get_protected(ProtectedPageId::FIRST)?.as_bytes();
    let count = u64::from_le_bytes(root_bytes[..8].try_into()?);
    let entries = root_bytes[8..].chunks_exact(8).take(count as usize);
    for (i, entry) in entries.enumerate() {
        let id = PageId::<4096>(u64::from_le_bytes(entry.try_into()?));
        let value = u64::from_le_bytes(pager.get(id)?.as_bytes()[..8].try_into()?);
        if value != i as u64 {
            return Err(format!("page {} holds {value}, not {i}", id.0).into());
        }
    }
    println!(
        "verified {count} pages through the protected root; {} regular pages allocated, {} free",
        pager.allocated_page_count(),
        pager.free_page_count()
    );
    Ok(())
}
