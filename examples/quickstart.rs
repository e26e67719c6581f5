//! The crate's main job end to end, on a file it creates itself: allocate
//! pages, write them, commit a protected root that points at them, reopen,
//! and check that everything is there.
//!
//! Run it with `cargo run --example quickstart [PATH]`.

use std::time::Instant;

use mappedpages::{Pager, ProtectedPageId};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = std::env::args_os()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.path().join("quickstart.pages"));
    let _ = std::fs::remove_file(&path);

    let started = Instant::now();
    let mut pager = Pager::<4096>::create(&path)?;
    println!(
        "created {} with {} pages of {} bytes",
        path.display(),
        pager.page_count(),
        pager.page_size()
    );

    // Data pages: one commit for all of them.
    let pages = pager.alloc_bulk(100)?;
    for (i, id) in pages.iter().enumerate() {
        let page = id.get_mut(&mut pager)?;
        page.as_bytes_mut()[..8].copy_from_slice(&(i as u64).to_le_bytes());
    }

    // A protected root that lists the data pages, committed atomically after
    // the data pages are durable.
    let root: ProtectedPageId<4096> = pager.alloc_protected()?;
    let mut writer = root.get_mut(&mut pager)?;
    let bytes = writer.page_mut().as_bytes_mut();
    bytes[..8].copy_from_slice(&(pages.len() as u64).to_le_bytes());
    for (i, id) in pages.iter().enumerate() {
        bytes[8 + i * 8..16 + i * 8].copy_from_slice(&id.0.to_le_bytes());
    }
    writer.commit()?;
    println!(
        "allocated {} pages and committed a protected root in {:?} ({} syncs)",
        pages.len(),
        started.elapsed(),
        pager.sync_count()
    );
    drop(pager);

    // Reopen and follow the root.
    let pager = Pager::<4096>::open(&path)?;
    let report = pager.recovery();
    println!(
        "reopened at generation {} (fell back: {})",
        report.generation, report.fell_back
    );
    let root_bytes = root.get(&pager)?.as_bytes();
    let count = u64::from_le_bytes(root_bytes[..8].try_into()?);
    for i in 0..count as usize {
        let raw = u64::from_le_bytes(root_bytes[8 + i * 8..16 + i * 8].try_into()?);
        let page = mappedpages::PageId::<4096>(raw).get(&pager)?;
        let value = u64::from_le_bytes(page.as_bytes()[..8].try_into()?);
        assert_eq!(value, i as u64, "page {raw} lost its bytes");
    }
    println!(
        "verified {count} pages through the protected root; {} pages allocated, {} free",
        pager.allocated_page_count(),
        pager.free_page_count()
    );
    Ok(())
}
