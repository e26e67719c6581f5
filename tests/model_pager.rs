//! Model-based property test of `Pager`: random sequences of regular and
//! protected allocations, frees, bulk calls, writes, transactions (with
//! relocations of the highest pages), shrinks, syncs, reopens, snapshots
//! held across ops, copies of snapshots, and copies of the file as a killed
//! process leaves it run against the shared model (`model_support`), and
//! the pager must match the model after every op, a transaction after
//! every call inside it, a snapshot held all the while it is held.
//!
//! The default run keeps to a few cases per configuration, more with
//! `MAPPEDPAGES_DEEP_TESTS=1` (see `depth_support`); `PROPTEST_CASES`
//! overrides both.

#[path = "support/depth/mod.rs"]
mod depth_support;
#[path = "support/model/mod.rs"]
mod model_support;

use depth_support::depth;
use mappedpages::{Durability, MappedPageError, Pager};
use model_support::driver::Driver;
use model_support::ops::{BulkFlaw, End, Op, Patch, Slot, Step, Target};
use model_support::strategy::ops;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

/// A few cases per configuration by default; `PROPTEST_CASES` overrides.
fn config(default_cases: u32) -> Config {
    let mut config = Config {
        max_shrink_iters: 400,
        // Regressions found here are kept as named tests below, not as files.
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..Config::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = default_cases;
    }
    config
}

/// The options of the pager under test: the defaults, or with the pager
/// cutting its free tail past `auto_shrink` pages (and growing by as many).
fn options<const N: usize>(
    durability: Durability,
    auto_shrink: Option<u64>,
) -> mappedpages::PagerOptions<N> {
    let options = Pager::<N>::options().durability(durability);
    match auto_shrink {
        Some(pages) => options
            .shrink_threshold(Some(pages * N as u64))
            .max_growth_step(pages * N as u64),
        None => options,
    }
}

fn run<const N: usize>(durability: Durability, initial_pages: u64, ops: &[Op]) {
    run_with::<N>(durability, initial_pages, None, ops);
}

/// Runs `ops` and returns how many pages the `Shrink` ops gave back and
/// how many other ops cut the file.
fn run_with<const N: usize>(
    durability: Durability,
    initial_pages: u64,
    auto_shrink: Option<u64>,
    ops: &[Op],
) -> (u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.pages");
    let options = options::<N>(durability, auto_shrink);
    let mut driver = Driver::create(&path, options.initial_pages(initial_pages));
    driver.auto_shrink = auto_shrink.is_some();
    for (step, op) in ops.iter().chain([&Op::Reopen(false)]).enumerate() {
        driver
            .apply(op)
            .unwrap_or_else(|e| panic!("step {step}: {op:?}: {e}"));
    }
    (driver.given_back, driver.auto_cuts)
}

fn patch(start: u64, len: u64, seed: u64) -> Patch {
    Patch::Span {
        start: start as u16,
        len: len as u16,
        seed,
    }
}

/// `relocate` of the `n` highest pages, top down.
fn relocate_top(n: usize) -> Step {
    Step::Relocate((0..n).map(Target::Top).collect())
}

proptest! {
    #![proptest_config(config(depth(24, 96)))]

    #[test]
    fn model_1k_immediate(initial in 4u64..24, ops in ops(240)) {
        run::<1024>(Durability::Immediate, initial, &ops);
    }

    #[test]
    fn model_1k_deferred(initial in 4u64..24, ops in ops(240)) {
        run::<1024>(Durability::Deferred, initial, &ops);
    }

    #[test]
    fn model_4k_immediate(initial in 4u64..24, ops in ops(180)) {
        run::<4096>(Durability::Immediate, initial, &ops);
    }

    #[test]
    fn model_4k_deferred(initial in 4u64..24, ops in ops(180)) {
        run::<4096>(Durability::Deferred, initial, &ops);
    }
}

proptest! {
    #![proptest_config(config(depth(8, 24)))]

    /// The pager cuts its free tail by itself past 64 free pages.
    #[test]
    fn model_1k_auto_shrink(deferred: bool, initial in 4u64..24, ops in ops(200)) {
        let durability = if deferred { Durability::Deferred } else { Durability::Immediate };
        run_with::<1024>(durability, initial, Some(64), &ops);
    }
}

/// A churned file compacted as an engine would: the highest pages moved
/// down into the holes a free left, then the tail cut, with and without a
/// reopen between.
#[test]
fn model_relocate_then_shrink() {
    let patch = |i: u64| patch(i * 7919, i * 104_729, i);
    let ops = vec![
        Op::AllocBulk(600),
        Op::AllocProtectedBulk(4),
        Op::Write(Target::Live(599), patch(1)),
        Op::ProtectedWrite(Slot::Live(1), patch(2), true),
        Op::FreeRun(0, 300),
        Op::Sync,
        Op::Shrink(false),
        Op::Txn(vec![relocate_top(150), relocate_top(4)], End::Drop),
        Op::Txn(
            vec![relocate_top(150), Step::KillCopy, relocate_top(140)],
            End::Commit,
        ),
        Op::Shrink(true),
        Op::Sync,
        Op::Shrink(false),
        Op::Txn(vec![relocate_top(4)], End::Commit),
        Op::Shrink(true),
    ];
    for durability in [Durability::Immediate, Durability::Deferred] {
        let (given_back, _) = run_with::<1024>(durability, 8, None, &ops);
        assert!(
            given_back > 1000,
            "{durability:?}: {given_back} pages given back"
        );
    }
}

/// Frees at the top of the file leave a free tail past the threshold: the
/// commit (Immediate) or the next sync (Deferred) cuts it.
#[test]
fn model_auto_shrink_cuts() {
    let mut ops = Vec::new();
    for i in 0..6u16 {
        ops.extend([
            // Protected pages first: copies above the freed pages would
            // hold the tail.
            Op::AllocProtected,
            Op::AllocBulk(300),
            Op::FreeRun(u16::MAX / 3 + i * 1000, 400),
            Op::Txn(
                vec![Step::AllocWrite(
                    20,
                    patch(u64::from(i), u64::from(i), u64::from(i)),
                )],
                End::Commit,
            ),
            Op::Sync,
            Op::Reopen(i % 3 == 2),
        ]);
    }
    for durability in [Durability::Immediate, Durability::Deferred] {
        let (_, cuts) = run_with::<1024>(durability, 8, Some(64), &ops);
        assert!(cuts > 0, "{durability:?}: no step cut the file");
    }
}

/// Shrinks whose new end sits at, just before and just after the end of
/// the first bitmap leaf (8192 pages at 1 KiB), with a snapshot held across
/// one of them and copies made after: the model checks every op, and the
/// file reopens at the end.
#[test]
fn model_1k_shrink_at_tree_boundaries() {
    for tail_start in [8191usize, 8192, 8193] {
        let ops = vec![
            Op::Txn(vec![Step::AllocBulk(tail_start - 3)], End::Commit),
            Op::Alloc,
            Op::Free(Target::Top(0)),
            Op::Sync,
            Op::Shrink(false),
            Op::Alloc,
            Op::Free(Target::Top(0)),
            Op::TakeSnapshot,
            Op::FreeBulk((0..8).map(Target::Top).collect(), BulkFlaw::None),
            Op::Sync,
            Op::Shrink(false),
            Op::Copy(Some(0)),
            Op::DropSnapshot(0),
            Op::Sync,
            Op::Shrink(true),
            Op::Copy(None),
        ];
        run::<1024>(Durability::Immediate, 8, &ops);
        run::<1024>(Durability::Deferred, 8, &ops);
    }
}

/// Many protected pages (several directory leaves) and a bitmap of more than
/// one leaf (past 8192 pages at 1 KiB), so checkpoints write interior pages.
#[test]
fn model_1k_multi_leaf_trees() {
    let mut ops = vec![Op::AllocBulk(8300), Op::AllocProtectedBulk(150)];
    for i in 0..120usize {
        let patch = patch(i as u64 * 997, i as u64 * 331, i as u64);
        ops.push(match i % 8 {
            0 => Op::FreeRun((i * 541) as u16, 200),
            1 => Op::ProtectedWrite(Slot::Live(i * 13), patch, true),
            2 => Op::AllocBulk(150),
            3 => Op::FreeProtected(Slot::Live(i * 7)),
            4 => Op::Write(Target::Live(i * 31), patch),
            5 => Op::AllocProtectedBulk(3),
            6 => Op::Free(Target::Live(i * 17)),
            _ => Op::Reopen(i % 16 == 7),
        });
    }
    run::<1024>(Durability::Immediate, 4, &ops);
    run::<1024>(Durability::Deferred, 4, &ops);
}

/// Transactions that write more pages than a root's check list holds
/// (about 165 in 4 KiB pages, 40 in 1 KiB pages), committed one after the
/// other, dropped, copied as a kill leaves them and reopened, with pages
/// they wrote written in place after.
fn overflowing_transactions(written: usize) -> Vec<Op> {
    let patch = |i: usize| patch(i as u64 * 7919, i as u64 * 104_729, i as u64);
    let mut ops = vec![Op::AllocBulk(written), Op::AllocProtectedBulk(4)];
    for i in 0..8 {
        let calls = vec![
            Step::AllocWrite(written + 10 * i, patch(i)),
            Step::FreeBulk(
                (0..8).map(|k| Target::Live(k * 31 + i)).collect(),
                BulkFlaw::None,
            ),
            Step::WriteProtected(Slot::Live(i), patch(i + 100)),
            Step::Pages(
                vec![
                    (Target::Fresh(i), patch(i + 200)),
                    (Target::Fresh(i + 7), patch(i + 201)),
                ],
                vec![Target::Live(i * 3)],
                true,
            ),
            Step::KillCopy,
            Step::Write(Target::Fresh(i * 5), patch(i + 300)),
        ];
        ops.push(Op::Txn(
            calls,
            if i % 4 == 2 { End::Drop } else { End::Commit },
        ));
        ops.push(match i % 4 {
            0 => Op::KillCopy,
            1 => Op::Write(Target::Live(i * 13), patch(i + 400)),
            2 => Op::FreeRun((i * 4001) as u16, 20),
            _ => Op::Reopen(i == 7),
        });
    }
    ops
}

#[test]
fn model_transactions_overflow_check_lists() {
    run::<1024>(Durability::Immediate, 8, &overflowing_transactions(60));
    run::<1024>(Durability::Deferred, 8, &overflowing_transactions(60));
    run::<4096>(Durability::Immediate, 8, &overflowing_transactions(200));
    run::<4096>(Durability::Deferred, 8, &overflowing_transactions(200));
}

/// Found by the model (`Step::Relocate`): with no page free, `relocate`
/// returns `None` although a page below waits for a sync (freed by a
/// Deferred commit not yet durable), and an `alloc` in the same
/// transaction, which syncs to reuse waiting pages when none is free, then
/// hands out that lower page. An engine compacting stops too early, and
/// `None` does not mean "no lower page" as documented.
#[test]
fn regression_relocate_with_pages_waiting_for_a_sync() {
    let dir = tempfile::tempdir().unwrap();
    let mut pager = Pager::<1024>::options()
        .durability(Durability::Deferred)
        .create(dir.path().join("relocate.pages"))
        .unwrap();
    let free = pager.free_page_count() as usize;
    let ids = pager.alloc_bulk(free).unwrap();
    pager.free(ids[0]).unwrap();
    assert_eq!(pager.free_page_count(), 0);
    let high = *ids.last().unwrap();
    let mut txn = pager.transaction().unwrap();
    let moved = txn.relocate(high).unwrap();
    let probe = txn.alloc().unwrap();
    assert!(
        moved.is_some() || probe.0 > high.0,
        "relocate({}) found no lower free page, then alloc gave {}",
        high.0,
        probe.0
    );
}

/// Found by the model in CI: a Deferred transaction writes more pages than
/// the root lists (a check page holds the rest), a later unsynced commit
/// frees one of them, and the pager is reopened. The chain of the root open
/// took still checks that page, but open counted it free: the next
/// transaction wrote it (even one rolled back), and a kill then lost every
/// commit since the last sync, the root failing its checks.
#[test]
fn regression_reopen_withholds_pages_the_chain_checks() {
    let ops = vec![
        Op::Txn(vec![Step::AllocWrite(40, patch(0, 0, 0))], End::Commit),
        Op::Free(Target::Live(0)),
        Op::Reopen(false),
        Op::Txn(
            vec![Step::AllocWrite(1, patch(0, 0, 987_553_864_434_687))],
            End::Rollback,
        ),
        Op::KillCopy,
    ];
    run::<1024>(Durability::Deferred, 4, &ops);
    run::<1024>(Durability::Immediate, 4, &ops);
}
/// Contract A5: a page freed twice is `DoubleFree`, in every durability mode.
/// In Deferred mode a page freed since the last sync waits, internally, for
/// that commit to become durable, and the second free reports `NotAllocated`.
#[test]
fn regression_deferred_double_free_is_double_free() {
    let dir = tempfile::tempdir().unwrap();
    let mut pager = Pager::<4096>::options()
        .durability(Durability::Deferred)
        .create(dir.path().join("double.pages"))
        .unwrap();
    let id = pager.alloc().unwrap();
    pager.free(id).unwrap();
    let err = pager.free(id).unwrap_err();
    assert!(
        matches!(err, MappedPageError::DoubleFree),
        "second free gave {err:?}"
    );
    let err = pager.free_bulk(vec![id]).unwrap_err();
    assert!(
        matches!(err, MappedPageError::DoubleFree),
        "free_bulk of a freed page gave {err:?}"
    );
}
