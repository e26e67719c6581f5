//! Open on damaged files: each metadata copy damaged in turn (flipped bytes,
//! torn writes, zeros) reopens from the other copy at a consistent state;
//! damage that leaves nothing valid is a typed error, never a panic.
//!
//! Layout the tests rely on (see `FORMAT.md`): page 0 is the superblock
//! (version at byte 8, page size at byte 16, CRC-32C of bytes 0..60 at byte
//! 60); pages 1 and 2 are the metadata roots A and B, each with its version at
//! byte 8, log length at byte 12, generation at byte 24 and a CRC-32C of the
//! rest of the page in its last 4 bytes.

#[path = "support/os/mod.rs"]
mod os_support;

use os_support::FileExt;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use mappedpages::inspect::{Inspector, PageKind, Problem};
use mappedpages::{Durability, MappedPageError, PageId, Pager, ProtectedPageId};

const PS: usize = 1024;
type P = Pager<PS>;

// The format's offsets, from the crate's own source.
#[allow(dead_code)]
#[path = "../src/format/layout.rs"]
mod layout;

use layout::pages::ROOT_PAGES;
use layout::root::{
    OFF_BITMAP_HEIGHT, OFF_DIR_HEIGHT, OFF_DIR_LEN, OFF_GENERATION, OFF_LOG_LEN, OFF_PAGE_SIZE,
    OFF_REGULAR_COUNT, OFF_TOTAL_PAGES, OFF_VERSION,
};
use layout::superblock::{OFF_CHECKSUM as SB_OFF_CRC, OFF_PAGE_SIZE as SB_OFF_PAGE_SIZE};

/// What the public API shows of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
struct State {
    regular: Vec<u64>,
    protected: Vec<u64>,
    protected_bytes: Vec<Vec<u8>>,
    /// First bytes of every regular page (written by the history, synced).
    regular_heads: Vec<[u8; 8]>,
}

impl State {
    fn of(pager: &P) -> State {
        let regular: Vec<u64> = pager.iter_allocated_pages().map(|id| id.0).collect();
        let protected: Vec<u64> = pager
            .iter_allocated_protected_pages()
            .map(|id| id.0)
            .collect();
        let protected_bytes = protected
            .iter()
            .map(|&s| {
                ProtectedPageId::<PS>(s)
                    .get(pager)
                    .unwrap()
                    .as_bytes()
                    .to_vec()
            })
            .collect();
        let regular_heads = regular
            .iter()
            .map(|&p| {
                PageId::<PS>(p).get(pager).unwrap().as_bytes()[..8]
                    .try_into()
                    .unwrap()
            })
            .collect();
        assert_eq!(pager.allocated_page_count(), regular.len() as u64);
        State {
            regular,
            protected,
            protected_bytes,
            regular_heads,
        }
    }

    /// Allocation state only: which pages and slots are in use.
    fn sets(&self) -> (&[u64], &[u64]) {
        (&self.regular, &self.protected)
    }
}

/// How the last commit of a history is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Last {
    ProtectedCommit,
    Alloc,
    FreeBulk,
    /// A commit that checkpointed the page trees (its root's log is empty).
    Checkpoint,
    /// A commit that grew the file.
    Grow,
}

/// A closed file with some history, and what it looked like at its last two
/// commits.
struct History {
    _dir: tempfile::TempDir,
    path: PathBuf,
    /// State after the second newest commit (what a fallback must show).
    prev: State,
    prev_generation: u64,
    /// State after the newest commit.
    last: State,
    last_generation: u64,
    /// Root copy (0 = A, 1 = B) holding the newest commit.
    newest_copy: usize,
    /// For each root copy, the bytes it held before its latest write.
    older_root: [Vec<u8>; 2],
    /// Pages in the file after the second newest commit.
    prev_pages: u64,
}

fn read_page(path: &Path, page: u64) -> Vec<u8> {
    let file = fs::File::open(path).unwrap();
    let mut buf = vec![0u8; PS];
    file.read_exact_at(&mut buf, page * PS as u64).unwrap();
    buf
}

fn write_at(path: &Path, offset: u64, bytes: &[u8]) {
    let file = OpenOptions::new().write(true).open(path).unwrap();
    file.write_all_at(bytes, offset).unwrap();
    file.sync_all().unwrap();
}

fn root_generation(page: &[u8]) -> u64 {
    u64::from_le_bytes(page[OFF_GENERATION..OFF_GENERATION + 8].try_into().unwrap())
}

/// Runs `commit` (one committing call) and keeps the previous root bytes.
struct Recorder {
    roots: [Vec<u8>; 2],
    older: [Vec<u8>; 2],
}

impl Recorder {
    fn new(path: &Path) -> Recorder {
        let roots = [read_page(path, 1), read_page(path, 2)];
        Recorder {
            older: roots.clone(),
            roots,
        }
    }

    /// Notes the root pages after a commit; the file is read through the
    /// page cache, so it sees what the pager wrote to its map.
    fn after_commit(&mut self, path: &Path) {
        for (copy, &page) in ROOT_PAGES.iter().enumerate() {
            let now = read_page(path, page);
            if now != self.roots[copy] {
                self.older[copy] = std::mem::replace(&mut self.roots[copy], now);
            }
        }
    }
}

fn build(last: Last, durability: Durability) -> History {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.pages");
    // Small growth steps (the default minimum is 4 MiB) keep the file at a
    // few hundred pages: the tests below damage every one of them.
    let mut pager = P::options()
        .durability(durability)
        .initial_pages(8)
        .max_growth_step(16 * PS as u64)
        .create(&path)
        .unwrap();
    let mut rec = Recorder::new(&path);
    let mut regular = Vec::new();
    let mut protected = Vec::new();
    // About 70 commits: both root copies written many times, and at least one
    // checkpoint (a 1 KiB root holds 37 log records).
    for round in 0..10u8 {
        let ids = pager.alloc_bulk(3 + round as usize).unwrap();
        rec.after_commit(&path);
        for (i, id) in ids.iter().enumerate() {
            id.get_mut(&mut pager)
                .unwrap()
                .as_bytes_mut()
                .fill(round * 16 + i as u8);
        }
        regular.extend(ids);
        let slot = pager.alloc_protected().unwrap();
        rec.after_commit(&path);
        protected.push(slot);
        for (n, slot) in protected.iter().enumerate() {
            let mut writer = slot.get_mut(&mut pager).unwrap();
            writer.page_mut().as_bytes_mut()[n * 8..n * 8 + 8].fill(round + 1);
            writer.commit().unwrap();
            rec.after_commit(&path);
        }
        let victim = regular.remove((round as usize * 7) % regular.len());
        pager.free(victim).unwrap();
        rec.after_commit(&path);
        if round % 3 == 2 {
            let gone = protected.remove(0);
            pager.free_protected(gone).unwrap();
            rec.after_commit(&path);
        }
    }
    pager.sync().unwrap();
    let commit = |pager: &mut P,
                  regular: &mut Vec<PageId<PS>>,
                  protected: &[ProtectedPageId<PS>]| {
        match last {
            Last::ProtectedCommit | Last::Checkpoint => {
                let slot = protected[pager.generation() as usize % protected.len()];
                let mut writer = slot.get_mut(pager).unwrap();
                writer.page_mut().as_bytes_mut()[PS - 100..].fill(0xEE);
                writer.commit().unwrap();
            }
            Last::Alloc => regular.push(pager.alloc().unwrap()),
            Last::FreeBulk => {
                let ids: Vec<_> = regular.drain(..3).collect();
                pager.free_bulk(ids).unwrap();
            }
            Last::Grow => {
                let n = pager.free_page_count() as usize + 40;
                regular.extend(pager.alloc_bulk(n).unwrap());
            }
        }
    };
    let newest_log_len = |rec: &Recorder| {
        let newest = rec.roots.iter().max_by_key(|r| root_generation(r)).unwrap();
        u32::from_le_bytes(newest[OFF_LOG_LEN..OFF_LOG_LEN + 4].try_into().unwrap())
    };
    // The second newest commit is made durable so that in Deferred mode too
    // the older root copy holds it. For `Checkpoint`, commit until a commit
    // leaves the newest root's log empty: that commit checkpointed.
    let mut prev;
    let mut prev_generation;
    let mut prev_pages;
    let mut attempts = 0;
    loop {
        pager.sync().unwrap();
        prev = State::of(&pager);
        prev_generation = pager.generation();
        prev_pages = pager.page_count();
        commit(&mut pager, &mut regular, &protected);
        rec.after_commit(&path);
        attempts += 1;
        if last != Last::Checkpoint || newest_log_len(&rec) == 0 {
            break;
        }
        assert!(attempts < 200, "no commit checkpointed");
    }
    if last == Last::Grow {
        assert!(pager.page_count() > prev_pages);
    }
    let last_state = State::of(&pager);
    let mut last_generation = pager.generation();
    let last_pages = pager.page_count();
    if durability == Durability::Immediate {
        assert_eq!(last_generation, prev_generation + 1);
    }
    drop(pager);
    rec.after_commit(&path);
    let gens = [
        root_generation(&rec.roots[0]),
        root_generation(&rec.roots[1]),
    ];
    let newest_copy = usize::from(gens[1] > gens[0]);
    if durability == Durability::Deferred && gens[newest_copy] == last_generation + 1 {
        // A Deferred pager's clean close commits once more: a root that
        // changes nothing and checks no page. The older copy then holds
        // the last commit, which a damaged newest copy falls back to.
        prev = last_state.clone();
        prev_generation = last_generation;
        prev_pages = last_pages;
        last_generation += 1;
    }
    assert_eq!(gens[newest_copy], last_generation);
    History {
        _dir: dir,
        path,
        prev,
        prev_generation,
        last: last_state,
        last_generation,
        newest_copy,
        older_root: rec.older,
        prev_pages,
    }
}

/// A fresh copy of the history's file to damage.
fn copy_of(history: &History, name: &str) -> PathBuf {
    let path = history.path.with_file_name(name);
    fs::copy(&history.path, &path).unwrap();
    path
}

/// One way to damage a root page, given its bytes and the bytes the same
/// copy held before its latest write.
#[derive(Clone, Copy, Debug)]
enum Damage {
    Flip(usize),
    /// Second half zeroed.
    TornZeros,
    /// First half new, second half as before the write.
    TornOldTail,
    /// First half as before the write, second half new.
    TornOldHead,
    Zeros,
}

fn damages() -> Vec<Damage> {
    let mut all: Vec<Damage> = [
        0,
        7,
        OFF_VERSION,
        OFF_LOG_LEN,
        OFF_GENERATION,
        OFF_GENERATION + 7,
        32,
        40,
        48,
        56,
        60,
        64,
        72,
        80,
        88,
        100,
        128,
        140,
        PS / 2,
        PS - 5,
        PS - 4,
        PS - 1,
    ]
    .into_iter()
    .map(Damage::Flip)
    .collect();
    all.extend([
        Damage::TornZeros,
        Damage::TornOldTail,
        Damage::TornOldHead,
        Damage::Zeros,
    ]);
    all
}

fn damaged(page: &[u8], older: &[u8], damage: Damage) -> Vec<u8> {
    let mut out = page.to_vec();
    let half = PS / 2;
    match damage {
        Damage::Flip(at) => out[at] ^= 0x5A,
        Damage::TornZeros => out[half..].fill(0),
        Damage::TornOldTail => out[half..].copy_from_slice(&older[half..]),
        Damage::TornOldHead => out[..half].copy_from_slice(&older[..half]),
        Damage::Zeros => out.fill(0),
    }
    out
}

fn damage_root(path: &Path, history: &History, copy: usize, damage: Damage) {
    let page = read_page(path, ROOT_PAGES[copy]);
    let bytes = damaged(&page, &history.older_root[copy], damage);
    assert_ne!(bytes, page, "{damage:?} changed nothing");
    write_at(path, ROOT_PAGES[copy] * PS as u64, &bytes);
}

/// After a successful open: the pager works and the file reopens.
fn still_usable(path: &Path, mut pager: P) {
    let generation = pager.generation();
    let id = pager.alloc().unwrap();
    id.get_mut(&mut pager).unwrap().as_bytes_mut()[0] = 0x77;
    let slot = pager.alloc_protected().unwrap();
    let mut writer = slot.get_mut(&mut pager).unwrap();
    writer.page_mut().as_bytes_mut()[0] = 0x99;
    writer.commit().unwrap();
    let state = State::of(&pager);
    assert_eq!(pager.generation(), generation + 3);
    drop(pager);
    let pager = P::open(path).unwrap();
    assert_eq!(pager.recovery().generation, generation + 3);
    assert!(!pager.recovery().fell_back, "{:?}", pager.recovery());
    assert_eq!(State::of(&pager), state);
}

fn all_histories() -> Vec<(Last, Durability)> {
    let mut out = Vec::new();
    for last in [
        Last::ProtectedCommit,
        Last::Alloc,
        Last::FreeBulk,
        Last::Checkpoint,
        Last::Grow,
    ] {
        out.push((last, Durability::Immediate));
    }
    out.push((Last::ProtectedCommit, Durability::Deferred));
    out.push((Last::Checkpoint, Durability::Deferred));
    out
}

#[test]
fn a_damaged_newest_copy_falls_back_to_the_previous_commit() {
    for (last, durability) in all_histories() {
        let history = build(last, durability);
        assert!(history.prev_generation >= 2 && history.last_generation > history.prev_generation);
        for damage in damages() {
            let ctx = format!("{last:?}/{durability:?}, newest copy {damage:?}");
            let path = copy_of(&history, "newest.pages");
            damage_root(&path, &history, history.newest_copy, damage);
            let pager = P::open(&path).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            let report = pager.recovery().clone();
            assert_eq!(
                report.generation, history.prev_generation,
                "{ctx}: {report:?}"
            );
            assert_eq!(
                usize::from(report.root_copy),
                1 - history.newest_copy,
                "{ctx}"
            );
            assert_eq!(State::of(&pager), history.prev, "{ctx}");
            if !matches!(damage, Damage::Zeros) {
                // A zeroed copy is pinned by its own test below.
                assert!(report.fell_back, "{ctx}: {report:?}");
                assert!(report.other_copy_problem.is_some(), "{ctx}: {report:?}");
            }
            still_usable(&path, pager);
            fs::remove_file(&path).unwrap();
        }
    }
}

#[test]
fn a_damaged_older_copy_opens_the_newest_commit() {
    for (last, durability) in all_histories() {
        let history = build(last, durability);
        for damage in damages() {
            let ctx = format!("{last:?}/{durability:?}, older copy {damage:?}");
            let path = copy_of(&history, "older.pages");
            damage_root(&path, &history, 1 - history.newest_copy, damage);
            let pager = P::open(&path).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            let report = pager.recovery().clone();
            assert_eq!(
                report.generation, history.last_generation,
                "{ctx}: {report:?}"
            );
            assert_eq!(usize::from(report.root_copy), history.newest_copy, "{ctx}");
            assert_eq!(State::of(&pager), history.last, "{ctx}");
            if !matches!(damage, Damage::Zeros) {
                assert!(report.other_copy_problem.is_some(), "{ctx}: {report:?}");
            }
            still_usable(&path, pager);
            fs::remove_file(&path).unwrap();
        }
    }
}

/// Contract D6: open tells whether it fell back from a damaged newer copy.
/// Once both copies have been written (generation 2 and up), a copy that
/// reads as all zeros is damage, not a copy that was never written.
#[test]
fn a_zeroed_newest_copy_is_reported_as_a_fallback() {
    let history = build(Last::Alloc, Durability::Immediate);
    let path = copy_of(&history, "zeroed.pages");
    damage_root(&path, &history, history.newest_copy, Damage::Zeros);
    let pager = P::open(&path).unwrap();
    let report = pager.recovery();
    assert_eq!(report.generation, history.prev_generation);
    assert!(
        report.fell_back,
        "opened generation {} of {} without reporting a fallback: {report:?}",
        report.generation, history.last_generation
    );
}

#[test]
fn both_copies_damaged_is_corrupt_metadata() {
    let history = build(Last::ProtectedCommit, Durability::Immediate);
    let pairs = [
        (Damage::Flip(OFF_GENERATION), Damage::Flip(PS - 1)),
        (Damage::Zeros, Damage::Zeros),
        (Damage::TornZeros, Damage::Flip(0)),
        (Damage::Zeros, Damage::TornOldTail),
        (Damage::TornOldHead, Damage::Flip(200)),
    ];
    for (a, b) in pairs {
        let path = copy_of(&history, "both.pages");
        damage_root(&path, &history, 0, a);
        damage_root(&path, &history, 1, b);
        match P::open(&path) {
            Err(MappedPageError::CorruptMetadata) => {}
            other => panic!("{a:?} + {b:?}: expected CorruptMetadata, got {other:?}"),
        }
        // The inspector tells what failed in each copy.
        let report = Inspector::open(&path).unwrap().check().unwrap();
        match &report.problems[..] {
            [Problem::NoValidRoot { reason }] => {
                assert!(
                    reason.contains("copy A") && reason.contains("copy B"),
                    "{reason}"
                )
            }
            other => panic!("{a:?} + {b:?}: expected NoValidRoot, got {other:?}"),
        }
        fs::remove_file(&path).unwrap();
    }
}

fn fix_superblock_crc(sb: &mut [u8]) {
    let crc = crc32c::crc32c(&sb[..SB_OFF_CRC]);
    sb[SB_OFF_CRC..SB_OFF_CRC + 4].copy_from_slice(&crc.to_le_bytes());
}

fn fix_root_crc(root: &mut [u8]) {
    let crc = crc32c::crc32c(&root[..PS - 4]);
    root[PS - 4..].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn a_damaged_superblock_is_corrupt_superblock() {
    let history = build(Last::Alloc, Durability::Immediate);
    let original = read_page(&history.path, 0);
    let mut variants: Vec<(String, Vec<u8>)> = [
        0usize,
        3,
        7,
        OFF_VERSION,
        12,
        SB_OFF_PAGE_SIZE,
        20,
        40,
        SB_OFF_CRC,
        63,
    ]
    .iter()
    .map(|&at| {
        let mut page = original.clone();
        page[at] ^= 0x10;
        (format!("flip at {at}"), page)
    })
    .collect();
    variants.push(("zeros".into(), vec![0; PS]));
    let mut torn = original.clone();
    torn[32..].fill(0);
    variants.push(("torn".into(), torn));
    for (what, page) in variants {
        let path = copy_of(&history, "sb.pages");
        write_at(&path, 0, &page);
        match P::open(&path) {
            Err(MappedPageError::CorruptSuperblock) => {}
            other => panic!("superblock {what}: expected CorruptSuperblock, got {other:?}"),
        }
        fs::remove_file(&path).unwrap();
    }
}

#[test]
fn an_unknown_version_is_unsupported_version() {
    let history = build(Last::Alloc, Durability::Immediate);
    // In the superblock (this build reads versions 1 to 4).
    for version in [0u32, 5, 99, u32::MAX] {
        let path = copy_of(&history, "v.pages");
        let mut sb = read_page(&path, 0);
        sb[OFF_VERSION..OFF_VERSION + 4].copy_from_slice(&version.to_le_bytes());
        fix_superblock_crc(&mut sb);
        write_at(&path, 0, &sb);
        match P::open(&path) {
            Err(MappedPageError::UnsupportedVersion { found, supported }) => {
                assert_eq!((found, supported), (version, 4));
            }
            other => panic!("superblock version {version}: got {other:?}"),
        }
        fs::remove_file(&path).unwrap();
    }
    // In the newest root, with its checksum made to match.
    let path = copy_of(&history, "rv.pages");
    let page = ROOT_PAGES[history.newest_copy];
    let mut root = read_page(&path, page);
    root[OFF_VERSION..OFF_VERSION + 4].copy_from_slice(&5u32.to_le_bytes());
    fix_root_crc(&mut root);
    write_at(&path, page * PS as u64, &root);
    match P::open(&path) {
        Err(MappedPageError::UnsupportedVersion { found: 5, .. }) => {}
        other => panic!("root version 5: got {other:?}"),
    }
}

#[test]
fn another_page_size_in_the_superblock_is_a_typed_error() {
    let history = build(Last::Alloc, Durability::Immediate);
    for size in [4096u64, 512, 1000, 0, u64::MAX] {
        let path = copy_of(&history, "ps.pages");
        let mut sb = read_page(&path, 0);
        sb[SB_OFF_PAGE_SIZE..SB_OFF_PAGE_SIZE + 8].copy_from_slice(&size.to_le_bytes());
        fix_superblock_crc(&mut sb);
        write_at(&path, 0, &sb);
        match P::open(&path) {
            Err(MappedPageError::InvalidPageSize) => {}
            other => panic!("page size {size}: got {other:?}"),
        }
        if size == 4096 {
            // The page size the file records is the inspector's to tell.
            let inspector = Inspector::open(&path).unwrap();
            assert_eq!(inspector.superblock().page_size, 4096);
            // Opened as the page size the superblock claims: the roots are
            // not where that size puts them.
            let result = Pager::<4096>::open(&path);
            assert!(result.is_err(), "{result:?}");
        }
        fs::remove_file(&path).unwrap();
    }
}

#[test]
fn a_file_cut_short_is_file_truncated() {
    let history = build(Last::Alloc, Durability::Immediate);
    let len = fs::metadata(&history.path).unwrap().len();
    let pages = len / PS as u64;
    for new_len in [
        len - 1,
        len - PS as u64,
        (pages / 2) * PS as u64,
        3 * PS as u64,
    ] {
        let path = copy_of(&history, "cut.pages");
        cut(&path, new_len);
        match P::open(&path) {
            Err(MappedPageError::FileTruncated { expected, actual }) => {
                assert_eq!((expected, actual), (len, new_len));
            }
            other => panic!("cut to {new_len} of {len}: got {other:?}"),
        }
        fs::remove_file(&path).unwrap();
    }
    // Cut into the metadata roots or the superblock: a typed error.
    for new_len in [
        3 * PS as u64 - 1,
        2 * PS as u64,
        PS as u64 + 10,
        PS as u64,
        64,
        63,
        10,
        0,
    ] {
        let path = copy_of(&history, "cut.pages");
        cut(&path, new_len);
        match P::open(&path) {
            // An empty file is what a create stopped before it wrote
            // anything leaves.
            Err(MappedPageError::IncompleteCreate) if new_len == 0 => {}
            Err(
                MappedPageError::FileTruncated { .. }
                | MappedPageError::CorruptMetadata
                | MappedPageError::CorruptSuperblock,
            ) if new_len > 0 => {}
            other => panic!("cut to {new_len}: got {other:?}"),
        }
        fs::remove_file(&path).unwrap();
    }
}

/// The last commit grew the file; the file is cut back to its old length.
/// The newest root counts on the new length, which was durable before that
/// root was written, so the file was cut by someone else: open reports the
/// truncation instead of quietly opening the previous commit.
#[test]
fn a_file_cut_back_below_its_last_growth_is_never_opened_silently() {
    let history = build(Last::Grow, Durability::Immediate);
    let len = fs::metadata(&history.path).unwrap().len();
    let path = copy_of(&history, "grown.pages");
    let old_len = history.prev_pages * PS as u64;
    assert!(old_len < len);
    cut(&path, old_len);
    match P::open(&path) {
        Err(MappedPageError::FileTruncated { expected, actual }) => {
            assert_eq!((expected, actual), (len, old_len));
        }
        other => panic!("expected FileTruncated, got {other:?}"),
    }
}

/// Sets the length of the file at `path` to `len` bytes.
fn cut(path: &std::path::Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

/// Bytes from a seed (xorshift), for garbage files.
fn garbage(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

#[test]
fn tiny_empty_and_garbage_files_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.pages");
    let history = build(Last::Alloc, Durability::Immediate);
    let superblock = read_page(&history.path, 0);
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("one byte", vec![0x4D]),
        ("ten bytes", b"MAPPEDPG\0\0".to_vec()),
        ("magic only", b"MAPPEDPG".to_vec()),
        ("zeros", vec![0; 16 * PS]),
        ("garbage", garbage(16 * PS, 1)),
        ("odd garbage", garbage(3 * PS + 17, 2)),
        ("superblock head", superblock[..64].to_vec()),
        ("superblock page", superblock.clone()),
    ];
    let mut sb_and_garbage = superblock.clone();
    sb_and_garbage.extend(garbage(15 * PS, 3));
    cases.push(("superblock + garbage", sb_and_garbage));
    let mut sb_and_zeros = superblock.clone();
    sb_and_zeros.extend(vec![0; 15 * PS]);
    cases.push(("superblock + zeros", sb_and_zeros));
    for (what, bytes) in cases {
        fs::write(&path, &bytes).unwrap();
        // An empty file, or pages of zeros, is what a create that was
        // stopped before its superblock reached the disk leaves.
        let unfinished_create = what == "empty" || what == "zeros";
        match P::open(&path) {
            Err(MappedPageError::IncompleteCreate) if unfinished_create => {}
            Err(MappedPageError::CorruptSuperblock | MappedPageError::CorruptMetadata)
                if !unfinished_create => {}
            other => panic!("{what}: expected a corruption error, got {other:?}"),
        }
        fs::remove_file(&path).unwrap();
    }
}

/// Garbage in every data page of a real file: open either refuses it as
/// `CorruptMetadata` (a page tree fails its checksum) or opens a consistent
/// state, and never panics. Random roots with matching checksums too.
#[test]
fn garbage_data_pages_and_forged_roots_never_panic() {
    let history = build(Last::Checkpoint, Durability::Immediate);
    let len = fs::metadata(&history.path).unwrap().len() as usize;
    let path = copy_of(&history, "g.pages");
    write_at(&path, 3 * PS as u64, &garbage(len - 3 * PS, 9));
    match P::open(&path) {
        Err(MappedPageError::CorruptMetadata) => {}
        Ok(pager) => {
            let state = State::of(&pager);
            assert!(state.sets() == history.last.sets() || state.sets() == history.prev.sets());
        }
        Err(other) => panic!("got {other:?}"),
    }
    // Roots of random bytes with a valid checksum and magic: decoders must
    // bounds-check every field.
    let magic = read_page(&history.path, 1)[..8].to_vec();
    for seed in 0..200u64 {
        let path = copy_of(&history, "forged.pages");
        for (copy, &page) in ROOT_PAGES.iter().enumerate() {
            let mut root = garbage(PS, seed * 2 + copy as u64 + 100);
            root[..8].copy_from_slice(&magic);
            root[OFF_VERSION..OFF_VERSION + 4].copy_from_slice(&1u32.to_le_bytes());
            root[OFF_PAGE_SIZE..OFF_PAGE_SIZE + 8].copy_from_slice(&(PS as u64).to_le_bytes());
            if seed % 2 == 0 {
                // Small, plausible counts so decoding goes deeper.
                root[OFF_LOG_LEN..OFF_LOG_LEN + 4]
                    .copy_from_slice(&((seed % 38) as u32).to_le_bytes());
                let total = OFF_TOTAL_PAGES;
                root[total..total + 8].copy_from_slice(&((len / PS) as u64).to_le_bytes());
                let count = OFF_REGULAR_COUNT;
                root[count..count + 8].copy_from_slice(&(seed % 8).to_le_bytes());
                let height = OFF_BITMAP_HEIGHT;
                root[height..height + 4].copy_from_slice(&((seed % 3) as u32).to_le_bytes());
                root[OFF_DIR_LEN..OFF_DIR_LEN + 8].copy_from_slice(&(seed % 5).to_le_bytes());
                let height = OFF_DIR_HEIGHT;
                root[height..height + 4].copy_from_slice(&((seed % 2) as u32).to_le_bytes());
            }
            fix_root_crc(&mut root);
            write_at(&path, page * PS as u64, &root);
        }
        match P::open(&path) {
            Ok(pager) => {
                // Whatever it accepted must be self-consistent.
                let _ = State::of(&pager);
            }
            Err(MappedPageError::CorruptMetadata | MappedPageError::FileTruncated { .. }) => {}
            Err(other) => panic!("forged roots {seed}: got {other:?}"),
        }
        fs::remove_file(&path).unwrap();
    }
}

/// Flip one byte in every page that is not a regular page (page-tree pages,
/// protected copies, free pages), one at a time. Open either succeeds at the
/// last or the previous commit, with exactly that commit's allocation state,
/// regular bytes and protected bytes, or returns a typed error; damage to a
/// page tree is caught by its checksum. The one damage that can be neither
/// caught nor harmless is to the committed copy of a protected page at rest:
/// its checksum is checked only while its commit is in flight, so the flipped
/// byte reads back as flipped and nothing else changes (the test pins exactly
/// that, so a wider effect fails it).
#[test]
fn damage_in_any_internal_or_free_page_is_caught_or_harmless() {
    for (last, durability) in [
        (Last::Checkpoint, Durability::Immediate),
        (Last::Grow, Durability::Immediate),
        (Last::Checkpoint, Durability::Deferred),
    ] {
        let history = build(last, durability);
        let pages = fs::metadata(&history.path).unwrap().len() / PS as u64;
        let (mut caught, mut committed_copies) = (0, 0);
        for page in 3..pages {
            if history.last.regular.contains(&page) {
                continue;
            }
            let kind = Inspector::open(&history.path)
                .unwrap()
                .page_kind(page)
                .unwrap();
            for at in [0usize, 13, PS / 2 + 5, PS - 1] {
                let ctx = format!("{last:?}/{durability:?}: page {page} ({kind:?}) byte {at}");
                let path = copy_of(&history, "tree.pages");
                let mut bytes = read_page(&path, page);
                bytes[at] ^= 0x21;
                write_at(&path, page * PS as u64, &bytes);
                match P::open(&path) {
                    Ok(pager) => {
                        let state = State::of(&pager);
                        let report = pager.recovery().clone();
                        let want = if report.generation == history.last_generation {
                            assert!(!report.fell_back, "{ctx}: {report:?}");
                            &history.last
                        } else {
                            assert_eq!(report.generation, history.prev_generation, "{ctx}");
                            assert!(report.fell_back, "{ctx}: {report:?}");
                            caught += 1;
                            &history.prev
                        };
                        assert_eq!(state.sets(), want.sets(), "{ctx}");
                        // Regular pages are never touched by this damage.
                        if std::ptr::eq(want, &history.last) {
                            assert_eq!(state.regular_heads, want.regular_heads, "{ctx}");
                        }
                        let mut expected = want.protected_bytes.clone();
                        if let PageKind::ProtectedCopy {
                            slot,
                            committed: true,
                            ..
                        } = kind
                        {
                            if std::ptr::eq(want, &history.last) {
                                let i = want.protected.iter().position(|&s| s == slot).unwrap();
                                expected[i][at] ^= 0x21;
                                committed_copies += 1;
                            }
                        }
                        assert!(
                            state.protected_bytes == expected,
                            "{ctx}: protected bytes differ from the commit opened"
                        );
                        still_usable(&path, pager);
                    }
                    Err(MappedPageError::CorruptMetadata) => caught += 1,
                    Err(other) => panic!("{ctx}: got {other:?}"),
                }
                fs::remove_file(&path).unwrap();
            }
        }
        assert!(
            committed_copies > 0,
            "{last:?}/{durability:?}: no committed protected copy was damaged"
        );
        assert!(
            caught > 0,
            "{last:?}/{durability:?}: no damaged page-tree page was caught"
        );
    }
}
