//! Compaction: take a churned file down to its live bytes.
//!
//! The workload of the comparison benchmark's W8: 2^14 pages of 4 KiB
//! written, half of them freed at random, a quarter written again. The file
//! is then larger than what it holds, and its free pages are holes, not a
//! tail. An engine compacts by moving its highest pages into the lowest free
//! ones (`Transaction::relocate`), repointing what referred to them in the
//! same transaction, and then giving the free tail back (`Pager::shrink`).
//! Here the "references" are a table of ids kept in memory; a real engine
//! rewrites the parent nodes that hold them.
//!
//! ```text
//! cargo run --release --example compact
//! ```

use std::error::Error;

use mappedpages::{PageId, Pager};

const PS: usize = 4096;
const PAGES: usize = 1 << 14;

/// A small, fixed pseudo-random sequence (xorshift), so runs compare.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Writes `count` new pages in one transaction, each holding its own id.
fn write(pager: &mut Pager<PS>, count: usize) -> Result<Vec<PageId<PS>>, Box<dyn Error>> {
    let mut txn = pager.transaction()?;
    let ids = txn.alloc_bulk(count)?;
    for &id in &ids {
        txn.get_mut(id)?.as_bytes_mut()[..8].copy_from_slice(&id.0.to_le_bytes());
    }
    txn.commit()?;
    Ok(ids)
}

fn ratio(pager: &Pager<PS>) -> f64 {
    pager.page_count() as f64 / pager.allocated_page_count() as f64
}

fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("churned.pages");
    let mut pager = Pager::<PS>::create(&path)?;

    // The churn.
    let mut live = write(&mut pager, PAGES)?;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for i in (1..live.len()).rev() {
        live.swap(i, rng.below(i + 1));
    }
    let freed = live.split_off(PAGES / 2);
    pager.free_bulk(freed)?;
    live.extend(write(&mut pager, PAGES / 4)?);
    println!(
        "after the churn: {} pages for {} live: {:.2} bytes per live byte",
        pager.page_count(),
        pager.allocated_page_count(),
        ratio(&pager)
    );

    // The compaction: the highest pages move down, 1024 per transaction.
    let mut at: std::collections::HashMap<PageId<PS>, usize> =
        live.iter().enumerate().map(|(i, &id)| (id, i)).collect();
    let mut moved = 0;
    loop {
        let top: Vec<_> = pager.iter_allocated_pages().rev().take(1024).collect();
        let mut txn = pager.transaction()?;
        let mut this_round = 0;
        for id in top {
            let Some(to) = txn.relocate(id)? else { break };
            // Repoint: the page's own id field, and the table.
            txn.get_mut(to)?.as_bytes_mut()[..8].copy_from_slice(&to.0.to_le_bytes());
            let slot = at.remove(&id).ok_or("a page nothing refers to")?;
            live[slot] = to;
            at.insert(to, slot);
            this_round += 1;
        }
        txn.commit()?;
        moved += this_round;
        if this_round == 0 {
            break;
        }
    }
    let given_back = pager.shrink()?;
    println!(
        "after compaction: {moved} pages moved, {given_back} given back: {} pages for {} live: {:.3} bytes per live byte",
        pager.page_count(),
        pager.allocated_page_count(),
        ratio(&pager)
    );
    if ratio(&pager) > 1.1 {
        return Err("the compacted file is more than 1.1x its live bytes".into());
    }

    // Every page is where the table says, holding its own id, after a reopen.
    drop(pager);
    let pager = Pager::<PS>::open(&path)?;
    for &id in &live {
        if id.get(&pager)?.as_bytes()[..8] != id.0.to_le_bytes() {
            return Err(format!("page {} lost its bytes", id.0).into());
        }
    }
    println!("all {} live pages checked after a reopen", live.len());
    Ok(())
}
