//! Corrupt files (contract D5, E3): arbitrary bytes, and valid files with
//! bits flipped, bytes set, ranges zeroed, the file cut or extended, pages
//! copied over others (optionally with every checksum recomputed so the
//! damage reaches the checks behind them), go to `open` and to every read
//! path after it, then to allocations, writes, frees and a reopen. Only typed
//! errors may come back: no panic, no hang, no out-of-bounds access; and
//! whatever `open` accepts must behave (see `corrupt_support::exercise`).
//!
//! Without `MAPPEDPAGES_DEEP_TESTS=1` (see `depth_support`) a quarter of
//! the cases run. `MAPPEDPAGES_SOAK=<n>` multiplies the number of cases by
//! `n`.

#[path = "support/corrupt/mod.rs"]
mod corrupt_support;
#[path = "support/depth/mod.rs"]
mod depth_support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use corrupt_support::{
    build_bases, claimed_len, damage, exercise_bytes, exercise_crafted, fix_checksums,
    set_root_count, Damage, PS, ROOT_COUNTS,
};
use depth_support::depth;
use mappedpages::inspect::{Inspector, RootCopy};
use mappedpages::MappedPageError;
use proptest::prelude::*;
use proptest::strategy::ValueTree;

/// The most heap this test binary may hold at once. Far more than any case
/// needs; a reader that sizes memory from a count in a crafted file asks for
/// more, gets null, and the process aborts: a failed test, not a machine
/// driven out of memory.
const HEAP_CAP: usize = 1 << 30;

/// The system allocator, refusing to hold more than [`HEAP_CAP`] bytes.
struct CappedHeap;

static HELD: AtomicUsize = AtomicUsize::new(0);

impl CappedHeap {
    fn admit(size: usize) -> bool {
        let before = HELD.fetch_add(size, Ordering::Relaxed);
        if before.saturating_add(size) > HEAP_CAP {
            HELD.fetch_sub(size, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// `allocate()` if `size` more bytes stay within the cap, else null; the
    /// count gives back what a failed allocation did not take.
    fn admitted(size: usize, allocate: impl FnOnce() -> *mut u8) -> *mut u8 {
        if !Self::admit(size) {
            return std::ptr::null_mut();
        }
        let ptr = allocate();
        if ptr.is_null() {
            HELD.fetch_sub(size, Ordering::Relaxed);
        }
        ptr
    }
}

// SAFETY: every call is passed to `System` unchanged, which upholds the
// `GlobalAlloc` contract; the count only decides whether to call it, and a
// refusal is the null pointer the contract allows.
unsafe impl GlobalAlloc for CappedHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's layout, as the contract requires.
        Self::admitted(layout.size(), || unsafe { System.alloc(layout) })
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        Self::admitted(layout.size(), || unsafe { System.alloc_zeroed(layout) })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = layout.size();
        if new_size > old && !Self::admit(new_size - old) {
            return std::ptr::null_mut();
        }
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if new.is_null() {
            if new_size > old {
                HELD.fetch_sub(new_size - old, Ordering::Relaxed);
            }
        } else if new_size < old {
            HELD.fetch_sub(old - new_size, Ordering::Relaxed);
        }
        new
    }
}

#[global_allocator]
static HEAP: CappedHeap = CappedHeap;

fn scratch_dir() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = std::path::Path::new("/dev/shm");
        if shm.is_dir() {
            if let Ok(dir) = tempfile::tempdir_in(shm) {
                return dir;
            }
        }
        tempfile::tempdir().unwrap()
    })
}

fn bases() -> &'static [Vec<u8>] {
    static BASES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    BASES.get_or_init(|| build_bases(scratch_dir().path()))
}

/// The cap is one for the whole binary, and its tests run in parallel: a
/// case whose crafted counts make a reader take most of it (a bitmap for
/// billions of pages, or the refusal of one past it) runs alone, or a small
/// allocation of a test beside it would find the cap reached and abort the
/// binary. Every other case shares.
static HEAP_USERS: RwLock<()> = RwLock::new(());

fn sharing_the_heap() -> RwLockReadGuard<'static, ()> {
    HEAP_USERS.read().unwrap_or_else(|p| p.into_inner())
}

fn alone_on_the_heap() -> RwLockWriteGuard<'static, ()> {
    HEAP_USERS.write().unwrap_or_else(|p| p.into_inner())
}

/// A file per test thread.
fn case_path() -> PathBuf {
    let name = format!("{:?}.bin", std::thread::current().id()).replace(['(', ')'], "");
    scratch_dir().path().join(name)
}

fn cases() -> u32 {
    let soak = std::env::var("MAPPEDPAGES_SOAK")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(1);
    depth(250, 1000) * soak
}

/// Offsets biased towards the metadata: the superblock, the roots and the
/// first data pages (where the trees and the directory live).
fn offset() -> impl Strategy<Value = usize> {
    prop_oneof![
        3 => 0..3 * PS,
        2 => 3 * PS..16 * PS,
        1 => any::<usize>(),
        // The fields of a root, and its records.
        2 => (1..3usize, 0..128usize).prop_map(|(page, at)| page * PS + at),
    ]
}

fn damage_strategy() -> impl Strategy<Value = Damage> {
    prop_oneof![
        4 => (offset(), any::<u8>()).prop_map(|(at, bit)| Damage::Flip { at, bit }),
        3 => (offset(), any::<u8>()).prop_map(|(at, byte)| Damage::Set { at, byte }),
        3 => (offset(), prop_oneof![
            any::<u64>(),
            0..256u64,
            Just(u64::MAX),
            Just(1u64 << 56),
            Just(1u64 << 32),
        ])
        .prop_map(|(at, value)| Damage::SetU64 { at, value }),
        2 => (offset(), 0..2 * PS).prop_map(|(at, len)| Damage::Zero { at, len }),
        1 => any::<usize>().prop_map(|len| Damage::Truncate { len }),
        1 => (0..4 * PS).prop_map(|len| Damage::Extend { len }),
        1 => (0..64usize, 0..64usize).prop_map(|(from, to)| Damage::CopyPage { from, to }),
    ]
}

fn check(bytes: &[u8]) -> Result<bool, TestCaseError> {
    let _shared = sharing_the_heap();
    exercise_bytes(&case_path(), bytes).map_err(TestCaseError::fail)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_bytes_are_a_typed_error(bytes in prop::collection::vec(any::<u8>(), 0..6 * PS)) {
        check(&bytes)?;
    }

    #[test]
    fn arbitrary_pages_behind_a_valid_superblock(
        base in 0..6usize,
        rest in prop::collection::vec(any::<u8>(), 0..8 * PS),
        fix in any::<bool>(),
    ) {
        let mut file = bases()[base % bases().len()][..PS].to_vec();
        file.extend_from_slice(&rest);
        if fix {
            fix_checksums(&mut file);
        }
        check(&file)?;
    }

    #[test]
    fn damaged_valid_files_are_a_typed_error_or_consistent(
        base in 0..6usize,
        damages in prop::collection::vec(damage_strategy(), 1..6),
    ) {
        let mut file = bases()[base % bases().len()].clone();
        for d in &damages {
            damage(&mut file, d);
        }
        check(&file)?;
    }

    /// As above, with every checksum recomputed after the damage, so that
    /// it reaches the decoders and consistency checks behind them.
    #[test]
    fn damaged_files_with_checksums_fixed_are_a_typed_error_or_consistent(
        base in 0..6usize,
        damages in prop::collection::vec(damage_strategy(), 1..6),
    ) {
        let mut file = bases()[base % bases().len()].clone();
        for d in &damages {
            damage(&mut file, d);
        }
        fix_checksums(&mut file);
        check(&file)?;
    }
}

/// Values for a crafted count: around the 2^32 the contract asks for, the
/// format's limits, and the widths of the fields.
fn huge_count() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(1u64 << 20),
        Just(1u64 << 27),
        Just(1u64 << 32),
        Just(1u64 << 33),
        Just(1u64 << 40),
        Just((1u64 << 56) - 1),
        Just(1u64 << 56),
        Just(u64::from(u32::MAX)),
        Just(u64::MAX),
        (1u64 << 16..1u64 << 34),
    ]
}

fn crafted_case(base: usize, edits: &[(usize, usize, u64)], sparse: bool) -> (Vec<u8>, u64) {
    let mut file = bases()[base % bases().len()].clone();
    for &(copy, field, value) in edits {
        set_root_count(&mut file, copy, field, value);
    }
    fix_checksums(&mut file);
    let len = if sparse {
        claimed_len(&file).unwrap_or(0)
    } else {
        0
    };
    (file, len)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases() / 4,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Roots whose counts are set huge, checksums recomputed, the file made
    /// as long as they claim (sparse): both readers return quickly with
    /// bounded memory (see `HEAP_CAP`), fall back or fail with a typed
    /// error, and whatever opens behaves (contract D5).
    #[test]
    fn roots_with_huge_counts_are_bounded(
        base in 0..6usize,
        edits in prop::collection::vec((0..2usize, 0..ROOT_COUNTS.len(), huge_count()), 1..4),
        sparse in any::<bool>(),
    ) {
        let _alone = alone_on_the_heap();
        let (file, len) = crafted_case(base, &edits, sparse);
        exercise_crafted(&case_path(), &file, len).map_err(TestCaseError::fail)?;
    }
}

/// The file of the report: the newer root (copy B) claims 2^33 pages and
/// 2^32 directory slots, with a correct checksum, in a sparse file that long.
/// The directory was sized from `dir_len` up front (about 100 GB) and the
/// process aborted. Now the root is valid as the format defines it (a file
/// whose directory slots are all free), and its bitmap alone needs 1 GiB:
/// past the heap this test allows, so both readers fail with `OutOfMemory`.
#[test]
fn a_root_claiming_billions_of_slots_is_not_an_abort() {
    let _alone = alone_on_the_heap();
    let (file, len) = crafted_case(1, &[(1, 2, 1 << 33), (1, 6, 1 << 32)], true);
    assert_eq!(len, (1 << 33) * PS as u64);
    let path = case_path();
    assert_eq!(exercise_crafted(&path, &file, len), Ok(false));
    let out_of_memory = |e: &mappedpages::MappedPageError| matches!(e, mappedpages::MappedPageError::Io(io) if io.kind() == std::io::ErrorKind::OutOfMemory);
    let info = mappedpages::inspect::Inspector::open(&path).unwrap().info();
    assert!(info.as_ref().is_err_and(out_of_memory), "{info:?}");
    // A 32-bit process refuses a file longer than it can map (2 GiB)
    // before it reads the root.
    let too_long = |e: &mappedpages::MappedPageError| {
        cfg!(target_pointer_width = "32")
            && matches!(e, mappedpages::MappedPageError::Io(io) if io.kind() == std::io::ErrorKind::FileTooLarge)
    };
    let opened = corrupt_support::P::open(&path);
    assert!(
        opened
            .as_ref()
            .is_err_and(|e| out_of_memory(e) || too_long(e)),
        "{:?}",
        opened.err()
    );
}

/// Regression found by `roots_with_huge_counts_are_bounded`: a root
/// claiming a little under 2^32 pages, whose bitmap and its copy fit in
/// the heap this test allows but whose summary levels (a 64th of that) do
/// not. The summary was allocated as if memory never ran out, and the
/// process aborted. Now open reports `OutOfMemory`. The counts step through
/// the band where that happens here (at 2^32 - 2^25 pages, about 16 TiB of
/// sparse file) and a little to either side of it, for a heap a little
/// larger or smaller than this build's; every case must return, opened or
/// not.
#[test]
#[cfg_attr(
    mappedpages_wine,
    ignore = "maps 16 TiB of sparse file; Wine refuses maps of 64 GiB or more"
)]
#[cfg_attr(
    target_pointer_width = "32",
    ignore = "maps 16 TiB of sparse file; a 32-bit process maps at most 2 GiB"
)]
fn a_root_whose_bitmap_nearly_fills_the_heap_is_not_an_abort() {
    let _alone = alone_on_the_heap();
    for step in 15..=17u64 {
        let pages = (1u64 << 32) - step * (2 << 20);
        let (file, len) = crafted_case(1, &[(1, 2, pages)], true);
        let exercised = exercise_crafted(&case_path(), &file, len);
        assert!(exercised.is_ok(), "{pages} pages: {exercised:?}");
    }
}

/// As above at 2^28 pages and 2^27 slots: a directory sized from the count
/// would take 3 GiB, the bitmaps take 64 MiB, so the file opens at the newer
/// root, and works.
#[test]
#[cfg_attr(
    mappedpages_wine,
    ignore = "maps 1 TiB of sparse file; Wine refuses maps of 64 GiB or more"
)]
#[cfg_attr(
    target_pointer_width = "32",
    ignore = "maps 1 TiB of sparse file; a 32-bit process maps at most 2 GiB \
              and refuses the file with FileTooLarge (checked above)"
)]
fn a_root_claiming_many_unused_slots_opens_without_their_memory() {
    let _alone = alone_on_the_heap();
    let (file, len) = crafted_case(1, &[(1, 2, 1 << 28), (1, 6, 1 << 27)], true);
    let path = case_path();
    assert_eq!(exercise_crafted(&path, &file, len), Ok(true));
    let info = mappedpages::inspect::Inspector::open(&path)
        .unwrap()
        .info()
        .unwrap();
    // The commits of the exercise may cut the file's free tail, down to a
    // page per directory slot.
    assert_eq!(info.directory_slots, 1 << 27);
    assert!(
        (1 << 27..=1 << 28).contains(&info.total_pages),
        "{}",
        info.total_pages
    );
}

/// Regression found by the property test: a root whose generation is
/// `u64::MAX` (with a matching checksum) opens, and the next commit computes
/// `generation + 1`: a panic in debug builds (E3), and in release a wrap to
/// 0, so the new root loses to the stale one at the next open and every
/// commit made since is silently dropped (D1).
#[test]
fn root_generation_at_the_limit() {
    let _shared = sharing_the_heap();
    let (mut fell_back, mut refused) = (0, 0);
    for base in bases() {
        let path = case_path();
        let _ = std::fs::remove_file(&path);
        std::fs::write(&path, base).unwrap();
        let copy_b_valid = matches!(
            Inspector::open(&path).unwrap().copies()[1],
            RootCopy::Decoded(_)
        );
        let mut file = base.clone();
        // Root A (page 1): generation at byte 24.
        file[PS + 24..PS + 32].copy_from_slice(&u64::MAX.to_le_bytes());
        fix_checksums(&mut file);
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, &file).unwrap();
        // A generation at the limit is refused: open takes copy B if it is
        // valid, and the commits made from there on are kept.
        match corrupt_support::P::open(&path) {
            Ok(mut pager) => {
                assert!(
                    copy_b_valid,
                    "opened a file whose only valid root was refused"
                );
                let report = pager.recovery().clone();
                assert!(report.fell_back && report.root_copy == 1, "{report:?}");
                let id = pager.alloc().unwrap();
                drop(pager);
                let pager = corrupt_support::P::open(&path).unwrap();
                assert!(
                    id.get(&pager).is_ok(),
                    "the commit after the limit was lost"
                );
                fell_back += 1;
            }
            Err(MappedPageError::CorruptMetadata) => {
                assert!(!copy_b_valid, "refused a file whose copy B is valid");
                refused += 1;
            }
            Err(other) => panic!("generation u64::MAX: got {other:?}"),
        }
    }
    assert!(fell_back > 0, "no base had a valid copy B to fall back to");
    println!("generation at the limit: {fell_back} fell back, {refused} refused");
}

/// How far the damage goes: the share of damaged files that `open` still
/// accepts (and that then pass every check), with and without fixed
/// checksums. A harness whose damage never got past the checksums would
/// test nothing behind them.
#[test]
fn damage_reaches_past_the_checksums() {
    let _shared = sharing_the_heap();
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = (0..6usize, prop::collection::vec(damage_strategy(), 1..4));
    let cases = depth(150, 600);
    let (mut opened_plain, mut opened_fixed) = (0, 0);
    for _ in 0..cases {
        let (base, damages) = strategy.new_tree(&mut runner).unwrap().current();
        let mut file = bases()[base % bases().len()].clone();
        for d in &damages {
            // Keep generations away from the limit (see root_generation_at_the_limit).
            if let Damage::SetU64 { at, .. } = d {
                if (at % file.len().max(1)) & !7 == PS + 24
                    || (at % file.len().max(1)) & !7 == 2 * PS + 24
                {
                    continue;
                }
            }
            damage(&mut file, d);
        }
        if exercise_bytes(&case_path(), &file).unwrap() {
            opened_plain += 1;
        }
        fix_checksums(&mut file);
        if exercise_bytes(&case_path(), &file).unwrap() {
            opened_fixed += 1;
        }
    }
    println!(
        "damaged files that open and pass every check: {opened_plain}/{cases} as damaged, \
         {opened_fixed}/{cases} with checksums fixed"
    );
    assert!(opened_fixed > 0 && opened_plain > 0);
}

/// The undamaged bases open and pass every check (the harness itself works).
#[test]
fn undamaged_bases_open() {
    let _shared = sharing_the_heap();
    for (i, base) in bases().iter().enumerate() {
        assert_eq!(exercise_bytes(&case_path(), base), Ok(true), "base {i}");
        let mut fixed = base.clone();
        fix_checksums(&mut fixed);
        assert_eq!(&fixed, base, "fix_checksums changed a valid base {i}");
    }
}
