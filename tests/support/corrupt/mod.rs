//! Shared by `corrupt_files_proptest.rs` and the fuzz target in `fuzz/`:
//! valid files to start from, the damage done to them, and the drive of
//! every read path (and a few writes) over whatever `open` accepts
//! (contract D5, E3).
//!
//! Layout used to keep damage meaningful (see `FORMAT.md`): page 0 is the
//! superblock with a CRC-32C of bytes 0..60 at byte 60; pages 1 and 2 are the
//! roots, each ending in a CRC-32C of the rest of the page, with the bitmap
//! tree's top page at byte 48 and its CRC at 56, the directory's top page at
//! 72 and its CRC at 80, the log length at 12, the page-check count at 92 and
//! 24-byte records from byte 128 (kind 4, a page check, holds a page and its
//! CRC-32C).

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use mappedpages::{Durability, PageId, Pager, ProtectedPageId};

pub const PS: usize = 1024;
pub type P = Pager<PS>;

// The format's offsets, from the crate's own source: the bytes damaged and
// re-checksummed here are the ones the crate reads.
#[allow(dead_code)]
#[path = "../../../src/format/layout.rs"]
mod layout;

use layout::record::{KIND_CHECK, RECORD_LEN};
use layout::root::{
    MAGIC as ROOT_MAGIC, OFF_BITMAP_CRC, OFF_BITMAP_HEIGHT, OFF_BITMAP_TOP, OFF_CHECK_LEN,
    OFF_DIR_CRC, OFF_DIR_HEIGHT, OFF_DIR_LEN, OFF_DIR_TOP, OFF_GENERATION, OFF_LOG as OFF_RECORDS,
    OFF_LOG_LEN, OFF_REGULAR_COUNT, OFF_TOTAL_PAGES,
};
use layout::superblock::{OFF_CHECKSUM as SB_OFF_CRC, SUPERBLOCK_LEN};

/// Options with growth steps of 16 pages (the default minimum is 4 MiB), so
/// that the files grown below stay a few hundred KiB, as every byte of them
/// is damaged in turn, and a damaged file that is driven (and grows) costs
/// no more than a small file.
fn small_steps() -> mappedpages::PagerOptions<PS> {
    P::options().max_growth_step(16 * PS as u64)
}

/// Builds the valid files the damage starts from, in `dir`.
pub fn build_bases(dir: &Path) -> Vec<Vec<u8>> {
    let mut bases = Vec::new();
    let mut n = 0;
    let mut path = || {
        n += 1;
        let path = dir.join(format!("base-{n}.bin"));
        let _ = std::fs::remove_file(&path);
        path
    };

    // A fresh file.
    let p = path();
    drop(small_steps().initial_pages(8).create(&p).unwrap());
    bases.push(std::fs::read(&p).unwrap());

    // A few pages, written.
    let p = path();
    let mut pager = small_steps().initial_pages(8).create(&p).unwrap();
    for i in 0..3u8 {
        let id = pager.alloc().unwrap();
        id.get_mut(&mut pager).unwrap().as_bytes_mut().fill(i + 1);
    }
    pager.sync().unwrap();
    drop(pager);
    bases.push(std::fs::read(&p).unwrap());

    // Protected pages, frees and enough commits to checkpoint the trees.
    for durability in [Durability::Immediate, Durability::Deferred] {
        let p = path();
        let mut pager = small_steps()
            .initial_pages(8)
            .durability(durability)
            .create(&p)
            .unwrap();
        let mut live = Vec::new();
        let prot = pager.alloc_protected_bulk(3).unwrap();
        for round in 0..60u64 {
            let id = pager.alloc().unwrap();
            id.get_mut(&mut pager).unwrap().as_bytes_mut()[..8]
                .copy_from_slice(&round.to_le_bytes());
            live.push(id);
            if round % 3 == 0 {
                let victim = live.remove((round as usize * 7) % live.len());
                pager.free(victim).unwrap();
            }
            let slot = prot[round as usize % prot.len()];
            let mut writer = slot.get_mut(&mut pager).unwrap();
            writer.page_mut().as_bytes_mut()[..8].copy_from_slice(&round.to_le_bytes());
            writer.commit().unwrap();
        }
        pager.free_protected(prot[0]).unwrap();
        drop(pager);
        bases.push(std::fs::read(&p).unwrap());
    }

    // A file grown several times, with a bulk allocation and a bulk free.
    let p = path();
    let mut pager = small_steps().initial_pages(4).create(&p).unwrap();
    let ids = pager.alloc_bulk(150).unwrap();
    pager
        .free_bulk(ids.into_iter().step_by(2).collect())
        .unwrap();
    drop(pager);
    bases.push(std::fs::read(&p).unwrap());
    bases
}

/// One piece of damage.
#[derive(Clone, Debug)]
pub enum Damage {
    Flip { at: usize, bit: u8 },
    Set { at: usize, byte: u8 },
    SetU64 { at: usize, value: u64 },
    Zero { at: usize, len: usize },
    Truncate { len: usize },
    Extend { len: usize },
    CopyPage { from: usize, to: usize },
}

/// Applies `damage` to `file` (offsets wrap around its length).
pub fn damage(file: &mut Vec<u8>, damage: &Damage) {
    let len = file.len();
    if len == 0 {
        if let Damage::Extend { len } = *damage {
            file.resize(len % (64 * PS), 0);
        }
        return;
    }
    match *damage {
        Damage::Flip { at, bit } => file[at % len] ^= 1 << (bit % 8),
        Damage::Set { at, byte } => file[at % len] = byte,
        Damage::SetU64 { at, value } => {
            let at = (at % len) & !7;
            let end = (at + 8).min(len);
            file[at..end].copy_from_slice(&value.to_le_bytes()[..end - at]);
        }
        Damage::Zero { at, len: n } => {
            let at = at % len;
            let end = at.saturating_add(n % (4 * PS)).min(len);
            file[at..end].fill(0);
        }
        Damage::Truncate { len: n } => file.truncate(n % (len + 1)),
        Damage::Extend { len: n } => file.resize(len + n % (8 * PS), 0),
        Damage::CopyPage { from, to } => {
            let pages = len / PS;
            if pages > 0 {
                let (from, to) = (from % pages, to % pages);
                let page = file[from * PS..(from + 1) * PS].to_vec();
                file[to * PS..(to + 1) * PS].copy_from_slice(&page);
            }
        }
    }
}

fn crc_at(file: &mut [u8], page: u64, field: usize, root: usize) {
    let start = (page as usize).saturating_mul(PS);
    if page == 0 || start.saturating_add(PS) > file.len() {
        return;
    }
    let crc = crc32c::crc32c(&file[start..start + PS]);
    file[root + field..root + field + 4].copy_from_slice(&crc.to_le_bytes());
}

fn u64_at(file: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(file[at..at + 8].try_into().unwrap())
}

fn u32_at(file: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(file[at..at + 4].try_into().unwrap())
}

/// Makes the checksums match the damaged bytes again, so that the damage
/// reaches the decoders and consistency checks behind them: the
/// superblock's, the top tree pages' and page checks' in each root, and each
/// root's own.
pub fn fix_checksums(file: &mut [u8]) {
    if file.len() >= SUPERBLOCK_LEN {
        let crc = crc32c::crc32c(&file[..SB_OFF_CRC]);
        file[SB_OFF_CRC..SB_OFF_CRC + 4].copy_from_slice(&crc.to_le_bytes());
    }
    for root in [PS, 2 * PS] {
        if file.len() < root + PS || file[root..root + 8] != ROOT_MAGIC {
            continue;
        }
        let bitmap_top = u64_at(file, root + OFF_BITMAP_TOP);
        let dir_top = u64_at(file, root + OFF_DIR_TOP);
        crc_at(file, bitmap_top, OFF_BITMAP_CRC, root);
        crc_at(file, dir_top, OFF_DIR_CRC, root);
        let log = u32_at(file, root + OFF_LOG_LEN) as usize;
        let checks = u32_at(file, root + OFF_CHECK_LEN) as usize;
        for i in log..log
            .saturating_add(checks)
            .min((PS - OFF_RECORDS - 4) / RECORD_LEN)
        {
            let at = root + OFF_RECORDS + i * RECORD_LEN;
            let word = u64_at(file, at);
            if word >> 56 == KIND_CHECK {
                let page = word & ((1 << 56) - 1);
                let start = (page as usize).saturating_mul(PS);
                if page > 2 && start.saturating_add(PS) <= file.len() {
                    let crc = u64::from(crc32c::crc32c(&file[start..start + PS]));
                    file[at + 8..at + 16].copy_from_slice(&crc.to_le_bytes());
                }
            }
        }
        let crc = crc32c::crc32c(&file[root..root + PS - 4]);
        file[root + PS - 4..root + PS].copy_from_slice(&crc.to_le_bytes());
    }
}

/// What the public API shows of an open file.
#[derive(Debug, PartialEq, Eq)]
struct Shown {
    regular: BTreeSet<u64>,
    protected: BTreeMap<u64, Vec<u8>>,
}

/// Reads everything the public API can read. Bounded: a file cannot list
/// more pages than it has.
fn read_everything(pager: &P) -> Result<Shown, String> {
    let count = pager.page_count();
    let regular: BTreeSet<u64> = pager
        .iter_allocated_pages()
        .take(count as usize + 1)
        .map(|id| id.0)
        .collect();
    if regular.len() as u64 > count || regular.iter().any(|&p| p < 3 || p >= count) {
        return Err(format!("iterator lists impossible pages: {regular:?}"));
    }
    if pager.allocated_page_count() != regular.len() as u64 {
        return Err("allocated_page_count disagrees with the iterator".into());
    }
    let mut sum = 0u64;
    for page in (0..count + 3).chain([u64::MAX, 1 << 40]) {
        match PageId::<PS>(page).get(pager) {
            Ok(bytes) => {
                if !regular.contains(&page) {
                    return Err(format!("page {page} is readable but not listed"));
                }
                sum = sum.wrapping_add(bytes.as_bytes().iter().map(|&b| u64::from(b)).sum());
            }
            Err(e) => {
                if regular.contains(&page) {
                    return Err(format!("listed page {page} is unreadable: {e}"));
                }
            }
        }
    }
    let mut protected = BTreeMap::new();
    for id in pager
        .iter_allocated_protected_pages()
        .take(count as usize + 1)
    {
        let bytes = id
            .get(pager)
            .map_err(|e| format!("listed protected page {} unreadable: {e}", id.0))?;
        protected.insert(id.0, bytes.as_bytes().to_vec());
    }
    let last = protected.keys().last().map_or(0, |s| s + 1);
    for slot in (0..last + 3).chain([u64::MAX]) {
        if ProtectedPageId::<PS>(slot).get(pager).is_ok() != protected.contains_key(&slot) {
            return Err(format!(
                "protected slot {slot} readable but not listed, or not readable"
            ));
        }
    }
    std::hint::black_box(sum);
    let _ = format!("{:?} {:?}", pager.recovery(), pager);
    Ok(Shown { regular, protected })
}

/// Opens `path`; if `open` accepts it, drives every read path, then
/// allocates, writes, frees and commits, and checks that the file reopens to
/// what the pager showed. `Err` is a broken promise (a panic is one too).
pub fn exercise(path: &Path) -> Result<bool, String> {
    let mut pager = match small_steps().open(path) {
        Ok(pager) => pager,
        Err(e) => {
            // Any typed error is fine; its message must render.
            let _ = e.to_string();
            return Ok(false);
        }
    };
    let shown = read_everything(&pager)?;
    let free_before = pager.free_page_count();
    if free_before > pager.page_count() {
        return Err("more free pages than pages".into());
    }

    // Writes over whatever open accepted: every call must work.
    let step = |what: &str, r: Result<(), mappedpages::MappedPageError>| {
        r.map_err(|e| format!("{what} failed on a file open accepted: {e}"))
    };
    let id = pager.alloc().map_err(|e| format!("alloc: {e}"))?;
    if shown.regular.contains(&id.0) {
        return Err(format!("alloc handed out live page {}", id.0));
    }
    id.get_mut(&mut pager).unwrap().as_bytes_mut().fill(0xA5);
    let bulk = pager
        .alloc_bulk(free_before.min(40) as usize + 1)
        .map_err(|e| format!("alloc_bulk: {e}"))?;
    for b in &bulk {
        if shown.regular.contains(&b.0) || b.0 == id.0 {
            return Err(format!("alloc_bulk handed out live page {}", b.0));
        }
        b.get_mut(&mut pager).unwrap().as_bytes_mut().fill(0x5A);
    }
    let after_writes = read_everything(&pager)?;
    if after_writes.protected != shown.protected {
        return Err("writing fresh pages changed a protected page".into());
    }
    let prot = pager
        .alloc_protected()
        .map_err(|e| format!("alloc_protected: {e}"))?;
    let mut writer = prot.get_mut(&mut pager).map_err(|e| e.to_string())?;
    writer.page_mut().as_bytes_mut()[..4].copy_from_slice(b"prot");
    step("protected commit", writer.commit())?;
    if let Some(&first) = shown.protected.keys().next() {
        let mut writer = ProtectedPageId::<PS>(first)
            .get_mut(&mut pager)
            .map_err(|e| e.to_string())?;
        writer.page_mut().as_bytes_mut()[0] ^= 0xFF;
        step("commit of an existing protected page", writer.commit())?;
    }
    if let Some(&victim) = shown.regular.iter().next() {
        step("free of a listed page", pager.free(PageId(victim)))?;
    }
    step("free_bulk", pager.free_bulk(bulk))?;
    if let Some(&slot) = shown.protected.keys().last() {
        step(
            "free_protected",
            pager.free_protected(ProtectedPageId(slot)),
        )?;
    }
    step("sync", pager.sync())?;
    let before_drop = read_everything(&pager)?;
    drop(pager);
    let pager = P::open(path).map_err(|e| format!("reopen after our own commits failed: {e}"))?;
    let again = read_everything(&pager)?;
    if again != before_drop {
        return Err("reopen shows another state than the pager had".into());
    }
    Ok(true)
}

/// Writes `bytes` to a fresh file at `path` and exercises it.
pub fn exercise_bytes(path: &PathBuf, bytes: &[u8]) -> Result<bool, String> {
    let _ = std::fs::remove_file(path);
    std::fs::write(path, bytes).map_err(|e| e.to_string())?;
    exercise(path)
}

/// Every count a root holds, as (offset in the root, width in bytes): the
/// log length, generation, total_pages, regular_count, bitmap top and height,
/// dir_len, directory top and height, the page-check count.
pub const ROOT_COUNTS: [(usize, usize); 10] = [
    (OFF_LOG_LEN, 4),
    (OFF_GENERATION, 8),
    (OFF_TOTAL_PAGES, 8),
    (OFF_REGULAR_COUNT, 8),
    (OFF_BITMAP_TOP, 8),
    (OFF_BITMAP_HEIGHT, 4),
    (OFF_DIR_LEN, 8),
    (OFF_DIR_TOP, 8),
    (OFF_DIR_HEIGHT, 4),
    (OFF_CHECK_LEN, 4),
];

/// Sets count `field` (an index into [`ROOT_COUNTS`]) of root `copy` (A is
/// 0, B is 1) to `value`, truncated to the field's width. Checksums are left
/// to [`fix_checksums`].
pub fn set_root_count(file: &mut [u8], copy: usize, field: usize, value: u64) {
    let (offset, width) = ROOT_COUNTS[field % ROOT_COUNTS.len()];
    let at = (1 + copy % 2) * PS + offset;
    if let Some(dst) = file.get_mut(at..at + width) {
        dst.copy_from_slice(&value.to_le_bytes()[..width]);
    }
}

/// The length a file must have for the roots' `total_pages` to fit: the
/// largest either root claims, in bytes, when a file can be that long.
pub fn claimed_len(file: &[u8]) -> Option<u64> {
    [PS, 2 * PS]
        .iter()
        .filter_map(|&root| file.get(root + OFF_TOTAL_PAGES..root + OFF_TOTAL_PAGES + 8))
        .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
        .filter_map(|pages| pages.checked_mul(PS as u64))
        .filter(|&len| len < 1 << 62)
        .max()
}

/// Writes `bytes` to a fresh file at `path`, extends it (sparse, so nothing
/// is written) to `sparse_len` if that is longer, and drives both readers:
/// `Inspector` (`info`, `check`) and `Pager` (open, a few calls, reopen).
/// Bounded work, whatever the file claims: nothing here walks every page.
/// Returns whether `Pager::open` accepted the file.
pub fn exercise_crafted(path: &Path, bytes: &[u8], sparse_len: u64) -> Result<bool, String> {
    let _ = std::fs::remove_file(path);
    std::fs::write(path, bytes).map_err(|e| e.to_string())?;
    if sparse_len > bytes.len() as u64 {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| e.to_string())?;
        if file.set_len(sparse_len).is_err() {
            // Longer than this file system allows: the case cannot be made.
            return Ok(false);
        }
    }
    if let Ok(inspector) = mappedpages::inspect::Inspector::open(path) {
        match inspector.info() {
            Ok(info) => {
                if info.free_pages > info.total_pages || info.regular_pages > info.total_pages {
                    return Err(format!(
                        "Inspector::info counts more pages than there are: {info:?}"
                    ));
                }
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
        let _ = inspector.check().map(|r| r.problems.len());
    }
    let mut pager = match small_steps().open(path) {
        Ok(pager) => pager,
        Err(e) => {
            let _ = e.to_string();
            return Ok(false);
        }
    };
    let count = pager.page_count();
    if pager.allocated_page_count() > count || pager.free_page_count() > count {
        return Err("more allocated or free pages than pages".into());
    }
    let listed: Vec<u64> = pager
        .iter_allocated_protected_pages()
        .take(64)
        .map(|id| id.0)
        .collect();
    let id = pager.alloc().map_err(|e| format!("alloc: {e}"))?;
    id.get_mut(&mut pager).unwrap().as_bytes_mut().fill(0xA5);
    let prot = pager
        .alloc_protected()
        .map_err(|e| format!("alloc_protected: {e}"))?;
    if listed.contains(&prot.0) {
        return Err(format!("alloc_protected handed out live slot {}", prot.0));
    }
    let mut writer = prot.get_mut(&mut pager).map_err(|e| e.to_string())?;
    writer.page_mut().as_bytes_mut()[..4].copy_from_slice(b"prot");
    writer
        .commit()
        .map_err(|e| format!("protected commit: {e}"))?;
    pager.sync().map_err(|e| format!("sync: {e}"))?;
    drop(pager);
    let pager = P::open(path).map_err(|e| format!("reopen after our own commits failed: {e}"))?;
    if id.get(&pager).map(|p| p.as_bytes()[0]).ok() != Some(0xA5) {
        return Err("the page allocated and written before the reopen is gone".into());
    }
    if prot.get(&pager).map(|p| p.as_bytes()[..4] == *b"prot").ok() != Some(true) {
        return Err("the protected page committed before the reopen is gone".into());
    }
    Ok(true)
}
