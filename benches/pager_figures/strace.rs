//! The sync-counting modes: `BENCH strace-prep FILE` prepares a page file,
//! and `strace -f -c -e trace=msync,fsync,fdatasync BENCH strace-ops FILE
//! PHASE` runs one phase of single operations on it, so that strace counts
//! the syncs of those operations and not those of the file's creation (see
//! the top of `mod.rs` for the phases). The pager's own sync count of each
//! phase is printed beside strace's.

use std::path::Path;

use mappedpages::{Durability, PageId, Pager};

use super::sub_pages::replace_sub_pages;
use super::support::workloads::replace_pages;
use super::support::{BoxResult, PAGE};
use super::transactions::T3_KS;

const STRACE_OPS: usize = 100;

fn options() -> mappedpages::PagerOptions<PAGE> {
    Pager::<PAGE>::options()
        .durability(Durability::Immediate)
        .initial_pages(4096)
}

pub fn prep(path: &Path) -> BoxResult<()> {
    let mut pager = options().create(path)?;
    let protected = pager.alloc_protected()?;
    let mut writer = protected.get_mut(&mut pager)?;
    writer.page_mut().as_bytes_mut()[0] = 1;
    writer.commit()?;
    // Written pages for the T3 phases' first transactions to free.
    let mut txn = pager.transaction()?;
    for id in txn.alloc_bulk(T3_KS[T3_KS.len() - 1])? {
        txn.get_mut(id)?.as_bytes_mut().fill(0x22);
    }
    txn.commit()?;
    eprintln!(
        "prepared a page file: {} pages, one protected page, {} written regular pages",
        pager.page_count(),
        pager.allocated_page_count()
    );
    Ok(())
}

/// The `t3-K` phase: `STRACE_OPS` transactions of T3 with reused pages,
/// each allocating K pages, writing them, freeing K older ones (the
/// previous transaction's; the first frees the oldest allocated pages) and
/// writing the protected root.
fn t3(pager: &mut Pager<PAGE>, k: usize) -> BoxResult<u64> {
    let root = pager
        .iter_allocated_protected_pages()
        .next()
        .ok_or("no protected page: run strace-prep first")?;
    let mut older: Vec<PageId<PAGE>> = pager.iter_allocated_pages().take(k).collect();
    if older.len() < k {
        return Err(format!(
            "only {} allocated pages: run strace-prep first",
            older.len()
        )
        .into());
    }
    let before = pager.sync_count();
    for i in 0..STRACE_OPS {
        let freed = std::mem::take(&mut older);
        older = replace_pages(pager, root, freed, k, |_, bytes| bytes.fill(i as u8))?;
    }
    Ok(pager.sync_count() - before)
}

/// The `t4` phase: `STRACE_OPS` `Deferred` transactions of one fresh page,
/// written; then frees them in one more, so the file can be used again.
fn t4(pager: &mut Pager<PAGE>) -> BoxResult<u64> {
    let before = pager.sync_count();
    let mut ids = Vec::new();
    for i in 0..STRACE_OPS {
        let mut txn = pager.transaction()?;
        let id = txn.alloc()?;
        txn.get_mut(id)?.as_bytes_mut().fill(i as u8);
        txn.commit()?;
        ids.push(id);
    }
    let syncs = pager.sync_count() - before;
    pager.transaction().and_then(|mut txn| {
        txn.free_bulk(ids)?;
        txn.commit()
    })?;
    Ok(syncs)
}

/// The `sub-K` phase: `STRACE_OPS` transactions that each allocate K
/// sub-pages of `sub_pages::SUB` bytes, write them and free the K of the one before;
/// then one more that frees the last K, so the file can be used again.
fn sub(pager: &mut Pager<PAGE>, k: usize) -> BoxResult<u64> {
    let before = pager.sync_count();
    let mut older = Vec::new();
    for i in 0..STRACE_OPS {
        older = replace_sub_pages(pager, &older, k, i as u8)?;
    }
    let syncs = pager.sync_count() - before;
    replace_sub_pages(pager, &older, 0, 0)?;
    Ok(syncs)
}

pub fn ops(path: &Path, phase: &str) -> BoxResult<()> {
    let options = if phase == "t4" {
        options().durability(Durability::Deferred)
    } else {
        options()
    };
    let mut pager = options.open(path)?;
    let mut report = vec![("open", pager.sync_count())];
    if let Some(k) = phase.strip_prefix("t3-") {
        let k: usize = k
            .parse()
            .map_err(|_| format!("t3-K: K a number, not {k:?}"))?;
        report.push(("t3", t3(&mut pager, k)?));
    }
    if phase == "t4" {
        report.push(("t4", t4(&mut pager)?));
    }
    if let Some(k) = phase.strip_prefix("sub-") {
        let k: usize = k
            .parse()
            .map_err(|_| format!("sub-K: K a number, not {k:?}"))?;
        report.push(("sub", sub(&mut pager, k)?));
    }
    let mut ids = Vec::new();
    if matches!(phase, "alloc" | "all") {
        let before = pager.sync_count();
        for _ in 0..STRACE_OPS {
            ids.push(pager.alloc()?);
        }
        report.push(("alloc", pager.sync_count() - before));
    }
    if matches!(phase, "free" | "all") {
        if ids.is_empty() {
            ids = pager.iter_allocated_pages().take(STRACE_OPS).collect();
        }
        if ids.len() < STRACE_OPS {
            return Err(format!(
                "only {} allocated pages to free: run the alloc phase first",
                ids.len()
            )
            .into());
        }
        let before = pager.sync_count();
        for id in ids.drain(..) {
            pager.free(id)?;
        }
        report.push(("free", pager.sync_count() - before));
    }
    if matches!(phase, "commit" | "all") {
        let protected = pager
            .iter_allocated_protected_pages()
            .next()
            .ok_or("no protected page: run strace-prep first")?;
        let before = pager.sync_count();
        for i in 0..STRACE_OPS {
            let mut writer = protected.get_mut(&mut pager)?;
            writer.page_mut().as_bytes_mut()[0] = i as u8;
            writer.commit()?;
        }
        report.push(("commit", pager.sync_count() - before));
    }
    if !matches!(phase, "open" | "alloc" | "free" | "commit" | "all" | "t4")
        && !phase.starts_with("t3-")
        && !phase.starts_with("sub-")
    {
        return Err(format!(
            "unknown phase {phase:?}: open, alloc, free, commit, all, t3-K, t4 or sub-K"
        )
        .into());
    }
    drop(pager);
    for (name, syncs) in report {
        let per = if name == "open" {
            String::new()
        } else {
            format!(" ({:.2} per call)", syncs as f64 / STRACE_OPS as f64)
        };
        eprintln!("sync_count, {name}: {syncs}{per}");
    }
    Ok(())
}
