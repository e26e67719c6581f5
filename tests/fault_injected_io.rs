//! Failed I/O (contract E2, D1): over a seeded workload, fail the Nth
//! metadata write, the Nth sync, or the Nth growth of the file or of one of
//! its steps (reserve, set length, map), for every N the workload reaches,
//! with and without preallocation. The call that meets the failure returns
//! `Err` (or, for a growth step, `Ok` if the least growth it needed then
//! fitted); later calls either work (the pager rolled back) or return
//! `Unavailable`; dropping the pager and reopening the file gives a
//! committed state: the state after the last call that returned `Ok`, or
//! after the failed call if its commit had reached the file, with every
//! regular byte written.
//!
//! A failed growth must roll back: the pager goes on, and after every call
//! the file is exactly as long as the pager says, holding no disk blocks
//! past its end.
//!
//! The process survives the failure, so the page cache is intact: nothing
//! that a call returning `Ok` made may be lost.
//!
//! The workload's calls include transactions (contract T2), so every I/O
//! call of a transaction's steps and of its commit fails in some run: the
//! `Err` must leave the pager as it was before the transaction (and usable),
//! or `Unavailable`; a pager that goes on is checked to show the state from
//! before the failed call.
//!
//! `MAPPEDPAGES_SOAK=<n>` runs `n` seeds per durability mode.

#![cfg(feature = "fault-injection")]

#[path = "support/crash/mod.rs"]
mod crash_support;
#[path = "support/os/mod.rs"]
mod os_support;

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crash_support::{
    check_file, describe, drive, options, soak_factor, temp_dir, workload, Expect, History, Op,
    Patch, Slot, State, Target, P,
};
use mappedpages::fault::{IoEvent, IoHook};
use mappedpages::{Durability, MappedPageError};

const CALLS: u64 = 120;
/// Calls tried after the failed one.
const AFTER: u64 = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Write,
    Sync,
    Grow,
    Reserve,
    SetLen,
    Map,
}

const KINDS: [Kind; 6] = [
    Kind::Write,
    Kind::Sync,
    Kind::Grow,
    Kind::Reserve,
    Kind::SetLen,
    Kind::Map,
];

impl Kind {
    /// A step of a growth, which must roll back when it fails.
    fn is_growth(self) -> bool {
        matches!(self, Kind::Grow | Kind::Reserve | Kind::SetLen | Kind::Map)
    }
}

fn kind_of(event: &IoEvent<'_>) -> Option<Kind> {
    match event {
        IoEvent::Write { .. } => Some(Kind::Write),
        IoEvent::Sync { .. } => Some(Kind::Sync),
        IoEvent::Grow { .. } => Some(Kind::Grow),
        IoEvent::Reserve { .. } => Some(Kind::Reserve),
        IoEvent::SetLen { .. } => Some(Kind::SetLen),
        IoEvent::Map { .. } => Some(Kind::Map),
        _ => None,
    }
}

/// Counts events and fails the `fail_at`th of `kind` (never if `None`).
#[derive(Default)]
struct Injector {
    kind: Option<Kind>,
    fail_at: u64,
    /// Fail every event of `kind` from the `fail_at`th on (a disk that stays
    /// full), not only that one.
    and_after: bool,
    counts: [u64; KINDS.len()],
    call: u64,
    failed_in: Option<u64>,
    /// A growth started after the injected failure, in the same call.
    regrew: bool,
    /// The length the growth in progress goes to: a `SetLen` to another
    /// length cuts the file back.
    growing_to: Option<u64>,
}

impl Injector {
    fn on_event(&mut self, event: IoEvent<'_>) -> io::Result<()> {
        let Some(kind) = kind_of(&event) else {
            return Ok(());
        };
        if kind == Kind::Grow && self.failed_in == Some(self.call) {
            self.regrew = true;
        }
        match event {
            IoEvent::Grow { new_len } => self.growing_to = Some(new_len),
            IoEvent::Map { .. } => self.growing_to = None,
            _ => {}
        }
        // A full disk still lets a file shrink: a transaction whose first
        // growth fitted and whose commit's did not gives the first back.
        let cut = matches!(event, IoEvent::SetLen { len } if Some(len) != self.growing_to);
        let count = &mut self.counts[kind as usize];
        *count += 1;
        let hit = if self.and_after {
            *count >= self.fail_at && !cut
        } else {
            *count == self.fail_at
        };
        if Some(kind) == self.kind && hit {
            self.failed_in = Some(self.call);
            return Err(match kind {
                Kind::Grow | Kind::Reserve | Kind::SetLen => {
                    io::Error::from(io::ErrorKind::StorageFull)
                }
                Kind::Map => io::Error::from(io::ErrorKind::OutOfMemory),
                _ => io::Error::other("injected I/O error"),
            });
        }
        Ok(())
    }
}

/// The file is as long as the pager says, and holds no disk blocks past
/// that (a failed growth gave back what it took).
fn check_length(path: &Path, pager: &P) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    let expected = pager.page_count() * P_SIZE;
    if meta.len() != expected {
        return Err(format!(
            "the file is {} bytes long, the pager has {} pages ({expected} bytes)",
            meta.len(),
            pager.page_count()
        ));
    }
    match os_support::disk_bytes(&meta) {
        Some(disk) if disk > expected.next_multiple_of(4096) => Err(format!(
            "the file holds {disk} bytes of disk blocks for {expected} bytes"
        )),
        _ => Ok(()),
    }
}

const P_SIZE: u64 = crash_support::PS as u64;

fn hook(injector: &Arc<Mutex<Injector>>) -> IoHook {
    let injector = Arc::clone(injector);
    IoHook::new(move |event| injector.lock().unwrap().on_event(event))
}

/// Runs the workload with no failure: the reference states and the number
/// of events of each kind (call 1 is the open, the drop comes last).
fn baseline(durability: Durability, preallocate: bool, seed: u64) -> (History, [u64; KINDS.len()]) {
    let dir = temp_dir();
    let path = dir.path().join("f.bin");
    drop(options(durability).create(&path).unwrap());
    let injector = Arc::new(Mutex::new(Injector::default()));
    let options = options(durability)
        .preallocate(preallocate)
        .io_hook(hook(&injector));
    let pager = options.clone().open(&path).unwrap();
    let mut driver = drive(&path, pager, options);
    let mut history = History::new();
    history.push_same();
    let mut workload = workload(seed);
    crash_support::run_calls(&mut driver, &mut workload, &mut history, CALLS);
    drop(driver);
    let counts = injector.lock().unwrap().counts;
    (history, counts)
}

#[derive(Default)]
struct Tally {
    runs: u64,
    failed_calls: u64,
    failed_at_drop: u64,
    rolled_back: u64,
    unavailable: u64,
    /// Growths that failed and then fitted at the least size the call needed.
    regrew: u64,
    /// Failures injected in a transaction's call, by kind of event; of
    /// the calls that returned the error, how many pagers went on and how
    /// many became `Unavailable`.
    txn_failed: [u64; KINDS.len()],
    txn_rolled_back: u64,
    txn_unavailable: u64,
    violations: Vec<String>,
}

/// One run failing the `n`th event of `kind`.
struct Case {
    durability: Durability,
    preallocate: bool,
    seed: u64,
    kind: Kind,
    n: u64,
    and_after: bool,
}

fn run_failing(case: &Case, reference: &History, tally: &mut Tally) {
    let Case {
        durability,
        preallocate,
        seed,
        kind,
        n,
        and_after,
    } = *case;
    let what = format!(
        "{durability:?} seed {seed} (preallocate {preallocate}): failing {kind:?} #{n}{}",
        if and_after { " and after" } else { "" }
    );
    let dir = temp_dir();
    let path = dir.path().join("f.bin");
    drop(options(durability).create(&path).unwrap());
    let injector = Arc::new(Mutex::new(Injector {
        kind: Some(kind),
        fail_at: n,
        and_after,
        call: 1,
        ..Injector::default()
    }));
    tally.runs += 1;
    let mut history = History::new();
    let options = options(durability)
        .preallocate(preallocate)
        .io_hook(hook(&injector));
    let opened = options.clone().open(&path);
    let failed_in = || injector.lock().unwrap().failed_in;
    let pager = match opened {
        Ok(pager) => pager,
        Err(e) => {
            if failed_in() != Some(1) {
                tally.violations.push(format!("{what}: open failed: {e}"));
                return;
            }
            tally.failed_calls += 1;
            history.push_same();
            verify(&path, &history, (1, 1), 2, &what, tally);
            return;
        }
    };
    let mut driver = drive(&path, pager, options);
    history.push_same();
    let mut workload = workload(seed);
    let mut failed: Option<u64> = None;
    let mut later_ok = false;
    let mut poisoned = false;
    let mut regrew = false;
    let mut failed_txn = false;
    // A failed call that left the pager showing another state than before
    // it: only `Unavailable` may follow.
    let mut not_rolled_back: Option<String> = None;
    while history.last() < CALLS + 1 + AFTER && !poisoned {
        let call = history.last() + 1;
        if failed.is_none() && call > CALLS + 1 {
            break;
        }
        if failed.is_some_and(|f| call > f + AFTER) {
            break;
        }
        injector.lock().unwrap().call = call;
        let op = workload.next_op(history.states.last().unwrap(), call);
        let shown = describe(&op);
        let result = driver.apply(&op);
        let failed_here = failed_in() == Some(call);
        let is_txn = matches!(op, Op::Txn(..));
        if is_txn && failed_here {
            tally.txn_failed[kind as usize] += 1;
        }
        match (result, failed_here) {
            (Ok(_), false) if not_rolled_back.is_some() => {
                tally.violations.push(format!(
                    "{what}: call {call} returned Ok after the failed call {failed:?} left the \
                     pager changed: {}",
                    not_rolled_back.unwrap_or_default()
                ));
                return;
            }
            (Ok(outcome), false) => {
                later_ok |= failed.is_some();
                history.push(driver.model.state(), &op, &outcome);
            }
            // The growth step failed, and the least growth the call needed
            // then fitted.
            (Ok(outcome), true) if kind.is_growth() && injector.lock().unwrap().regrew => {
                regrew = true;
                history.push(driver.model.state(), &op, &outcome);
            }
            (Ok(_), true) => {
                tally
                    .violations
                    .push(format!("{what}: call {call} {shown} returned Ok"));
                return;
            }
            (Err(_), true) => {
                tally.failed_calls += 1;
                failed = Some(call);
                failed_txn = is_txn;
                // Rolled back, if the pager goes on: the state stays.
                let before = history.states.last().unwrap();
                match State::observe(driver.pager()) {
                    Ok(now) if now == *before => {}
                    Ok(now) => not_rolled_back = Some(now.diff(before)),
                    Err(e) => not_rolled_back = Some(e),
                }
                history.push_same();
            }
            (Err(MappedPageError::Unavailable), false) if failed.is_some() => {
                if kind.is_growth() {
                    tally.violations.push(format!(
                        "{what}: the pager became Unavailable after a failed growth in call {failed:?}"
                    ));
                    return;
                }
                poisoned = true;
            }
            (Err(e), false) => {
                tally.violations.push(format!(
                    "{what}: call {call} {shown} after the failure in {failed:?} returned {e}"
                ));
                return;
            }
        }
        if !poisoned {
            if let Err(e) = check_length(&path, driver.pager()) {
                tally
                    .violations
                    .push(format!("{what}: after call {call} {shown}: {e}"));
                return;
            }
        }
    }
    drop(driver);
    if regrew {
        tally.regrew += 1;
    }
    if poisoned {
        tally.unavailable += 1;
        tally.txn_unavailable += u64::from(failed_txn);
    } else if later_ok {
        tally.rolled_back += 1;
        tally.txn_rolled_back += u64::from(failed_txn);
    }
    match failed {
        None => {
            if failed_in().is_some() && !regrew {
                tally.failed_at_drop += 1;
            }
            let last = history.last();
            verify(&path, &history, (last, last), last + 1, &what, tally);
        }
        // A failed growth published nothing: the state is the one the
        // pager went on from.
        Some(_) if kind.is_growth() => {
            let last = history.last();
            verify(&path, &history, (last, last), last + 1, &what, tally);
        }
        Some(call) if !later_ok => {
            // The failed call's commit may have reached the file. Its
            // writes in place may not have happened (a `get_mut` that must
            // first make a transaction's checked pages durable fails before
            // it hands out the page); a transaction's are held to the
            // state the file shows.
            let mut model = reference.clone();
            model.truncate(call);
            verify(&path, &model, (call - 1, call), call, &what, tally);
        }
        Some(_) => {
            let last = history.last();
            verify(&path, &history, (last, last), last + 1, &what, tally);
        }
    }
}

/// Reopens the file: it must show one of the states after calls `lo..=hi`,
/// with the writes of every call before `durable_before`.
fn verify(
    path: &std::path::Path,
    history: &History,
    (lo, hi): (u64, u64),
    durable_before: u64,
    what: &str,
    tally: &mut Tally,
) {
    let expect = Expect {
        history,
        lo,
        hi,
        durable_before,
        root_calls: None,
        deep: true,
    };
    if let Err(e) = check_file(path, &expect) {
        tally.violations.push(format!("{what}: reopened: {e}"));
    }
}

fn run(durability: Durability) {
    let mut tally = Tally::default();
    let mut per_kind = [0u64; KINDS.len()];
    // Every positional write is a failure point, and a transaction's fresh
    // pages are written so. Under Wine, where each run costs several times
    // more, one seed: it still fails every kind of step (writes, syncs and
    // each growth step, through the Windows preallocation, length and map
    // code), with and without preallocation; which step of which workload
    // fails is the same logic everywhere, and the native run takes all four.
    let seeds = if cfg!(mappedpages_wine) { 1 } else { 4 };
    for seed in 0..seeds * soak_factor() {
        let seed = seed + 77;
        for preallocate in [true, false] {
            let (reference, counts) = baseline(durability, preallocate, seed);
            for kind in KINDS {
                for n in 1..=counts[kind as usize] {
                    for and_after in [false, true] {
                        if and_after && !kind.is_growth() {
                            continue;
                        }
                        per_kind[kind as usize] += 1;
                        let case = Case {
                            durability,
                            preallocate,
                            seed,
                            kind,
                            n,
                            and_after,
                        };
                        run_failing(&case, &reference, &mut tally);
                    }
                }
            }
        }
    }
    println!(
        "{durability:?}: {} runs (failed: {} writes, {} syncs, {} growths, {} reserves, \
         {} set lengths, {} maps): {} calls returned the error, {} failures at drop, {} \
         growths fitted at their least size; afterwards {} pagers rolled back and went on, \
         {} became Unavailable; {} violations",
        tally.runs,
        per_kind[0],
        per_kind[1],
        per_kind[2],
        per_kind[3],
        per_kind[4],
        per_kind[5],
        tally.failed_calls,
        tally.failed_at_drop,
        tally.regrew,
        tally.rolled_back,
        tally.unavailable,
        tally.violations.len()
    );
    println!(
        "{durability:?}: failures in transactions: {} writes, {} syncs, {} growths, {} \
         reserves, {} set lengths, {} maps; afterwards {} pagers rolled back and went on, {} \
         became Unavailable",
        tally.txn_failed[0],
        tally.txn_failed[1],
        tally.txn_failed[2],
        tally.txn_failed[3],
        tally.txn_failed[4],
        tally.txn_failed[5],
        tally.txn_rolled_back,
        tally.txn_unavailable
    );
    for v in tally.violations.iter().take(10) {
        println!("  violation: {v}");
    }
    assert!(tally.violations.is_empty(), "{durability:?}: violations");
    assert!(
        per_kind.iter().all(|&n| n > 0),
        "some kind of event never happened"
    );
    assert!(
        tally.txn_rolled_back > 0 && tally.txn_failed[Kind::Write as usize] > 0,
        "no transaction's failure was rolled back, or none met a failed write"
    );
}

#[test]
fn every_failed_write_sync_and_growth_immediate() {
    run(Durability::Immediate);
}

#[test]
fn every_failed_write_sync_and_growth_deferred() {
    run(Durability::Deferred);
}

/// A failure at any step of `create` (each growth step, write and sync):
/// `create` returns the error and removes the file it made, so `create`
/// works again at once.
#[test]
fn a_failed_create_leaves_no_file() {
    for preallocate in [true, false] {
        let mut failures = 0;
        for n in 1..=12u64 {
            let dir = temp_dir();
            let path = dir.path().join("f.bin");
            let mut seen = 0;
            let failing = IoHook::new(move |_event| {
                seen += 1;
                if seen == n {
                    return Err(io::Error::from(io::ErrorKind::StorageFull));
                }
                Ok(())
            });
            let created = P::options()
                .preallocate(preallocate)
                .io_hook(failing)
                .create(&path);
            if created.is_ok() {
                continue;
            }
            failures += 1;
            assert!(
                !path.exists(),
                "event {n} (preallocate {preallocate}): a failed create left a file"
            );
            let pager = P::create(&path).unwrap();
            assert_eq!(pager.allocated_page_count(), 0);
        }
        // Grow, reserve or set length, map, three writes, two syncs.
        assert!(failures >= 8, "only {failures} events in create");
    }
}

/// Which growths a full disk refuses: every one, or every one but the
/// second (a call whose own growth fits at its least size, and whose
/// checkpoint then needs more).
#[derive(Clone, Copy, Debug)]
enum FullDisk {
    RefusesAll,
    FitsOnlySecond,
}

/// Every kind of committing call, made when the file has no free page and
/// the log is full or nearly (so the commit checkpoints, and the checkpoint
/// needs pages the file must grow for), on a disk that refuses the growth:
/// the call fails with `StorageFull` and is undone (the state, the page
/// count and the file's length are as before), the pager goes on (the
/// same call works once the disk has room), and the file reopens to that.
#[test]
fn a_commit_whose_checkpoint_cannot_grow_is_undone() {
    let calls = |regular: &[u64], slots: &[u64]| {
        vec![
            Op::Alloc,
            Op::AllocBulk(3),
            Op::Free(Target::Id(regular[0])),
            Op::FreeBulk(
                regular[1..4].iter().map(|&p| Target::Id(p)).collect(),
                crash_support::BulkFlaw::None,
            ),
            Op::AllocProtected,
            Op::AllocProtectedBulk(2),
            Op::FreeProtected(Slot::Id(slots[1])),
            Op::ProtectedWrite(
                Slot::Id(slots[0]),
                Patch::Stamp {
                    stamp: 99,
                    offset: 40,
                    bytes: vec![7; 16],
                },
                true,
            ),
        ]
    };
    let mut undone = vec![0u32; calls(&[0; 4], &[0; 2]).len()];
    // Calls whose own growth fitted and were undone all the same: the
    // file gave back what the call had grown.
    let mut grown_and_undone = 0u32;
    for (which, undone_here) in undone.iter_mut().enumerate() {
        // Each toggle adds two records to the log, a protected commit one: so
        // the log reaches every length.
        for (toggles, odd) in (0..24).flat_map(|t| [(t, false), (t, true)]) {
            for disk in [FullDisk::RefusesAll, FullDisk::FitsOnlySecond] {
                let what = format!("call #{which} after {toggles} toggles (odd {odd}), {disk:?}");
                let dir = temp_dir();
                let path = dir.path().join("f.bin");
                let full: Arc<Mutex<Option<(FullDisk, u32)>>> = Arc::new(Mutex::new(None));
                let gate = Arc::clone(&full);
                let hook = IoHook::new(move |event| {
                    let mut gate = gate.lock().unwrap();
                    match (&mut *gate, event) {
                        (Some((disk, seen)), IoEvent::Grow { .. }) => {
                            *seen += 1;
                            match (*disk, *seen) {
                                (FullDisk::FitsOnlySecond, 2) => Ok(()),
                                _ => Err(io::Error::from(io::ErrorKind::StorageFull)),
                            }
                        }
                        _ => Ok(()),
                    }
                });
                let options = P::options().initial_pages(64).io_hook(hook);
                let mut pager = options.clone().create(&path).unwrap();
                let slots: Vec<u64> = pager
                    .alloc_protected_bulk(2)
                    .unwrap()
                    .iter()
                    .map(|s| s.0)
                    .collect();
                let mut writer = mappedpages::ProtectedPageId::<{ crash_support::PS }>(slots[0])
                    .get_mut(&mut pager)
                    .unwrap();
                writer.page_mut().as_bytes_mut().fill(5);
                writer.commit().unwrap();
                if odd {
                    let mut writer =
                        mappedpages::ProtectedPageId::<{ crash_support::PS }>(slots[1])
                            .get_mut(&mut pager)
                            .unwrap();
                    writer.page_mut().as_bytes_mut().fill(6);
                    writer.commit().unwrap();
                }
                let free = pager.free_page_count() as usize;
                let regular: Vec<u64> = pager
                    .alloc_bulk(free)
                    .unwrap()
                    .iter()
                    .map(|p| p.0)
                    .collect();
                let last = *regular.last().unwrap();
                let mut driver = drive(&path, pager, options);
                for _ in 0..toggles {
                    driver.apply(&Op::Free(Target::Id(last))).unwrap();
                    driver.apply(&Op::Alloc).unwrap();
                    // A checkpoint on the way grew the file: full again.
                    let free = driver.pager().free_page_count() as usize;
                    if free > 0 {
                        driver.apply(&Op::AllocBulk(free)).unwrap();
                    }
                }
                let before = State::observe(driver.pager()).unwrap();
                let (pages, len) = (
                    driver.pager().page_count(),
                    std::fs::metadata(&path).unwrap().len(),
                );
                let call = calls(&regular, &slots).swap_remove(which);

                *full.lock().unwrap() = Some((disk, 0));
                let result = driver.apply(&call);
                *full.lock().unwrap() = None;
                if result.is_ok() {
                    continue;
                }
                match result {
                    Err(MappedPageError::Io(e)) if e.kind() == io::ErrorKind::StorageFull => {}
                    other => panic!("{what}: {call:?} gave {other:?}"),
                }
                *undone_here += 1;
                grown_and_undone += u32::from(matches!(disk, FullDisk::FitsOnlySecond));
                assert_eq!(
                    State::observe(driver.pager()).unwrap(),
                    before,
                    "{what}: not undone"
                );
                assert_eq!(driver.pager().page_count(), pages, "{what}: page count");
                assert_eq!(
                    std::fs::metadata(&path).unwrap().len(),
                    len,
                    "{what}: file length"
                );
                check_length(&path, driver.pager()).unwrap();
                driver
                    .apply(&call)
                    .unwrap_or_else(|e| panic!("{what}: retry: {e}"));
                let after = State::observe(driver.pager()).unwrap();
                drop(driver);
                let reopened = P::open(&path).unwrap();
                assert_eq!(
                    State::observe(&reopened).unwrap(),
                    after,
                    "{what}: reopened"
                );
            }
        }
    }
    println!(
        "calls undone per kind of call: {undone:?}; {grown_and_undone} of them after their own growth"
    );
    assert!(
        grown_and_undone > 0,
        "no call was undone after its own growth"
    );
    assert!(
        undone.iter().all(|&n| n > 0),
        "some kind of call never met a full disk: {undone:?}"
    );
}

/// What a process killed at any step of `create` leaves (the file as the
/// page cache holds it before each write, sync and growth step): the file
/// opens as created, or is `IncompleteCreate`, never another error.
#[test]
fn a_create_killed_at_any_step_is_incomplete_or_created() {
    let dir = temp_dir();
    let path = dir.path().join("f.bin");
    let images: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let seen = Arc::clone(&images);
    let watched = path.clone();
    let hook = IoHook::new(move |_event| {
        seen.lock()
            .unwrap()
            .push(std::fs::read(&watched).unwrap_or_default());
        Ok(())
    });
    drop(P::options().io_hook(hook).create(&path).unwrap());
    let mut images = std::mem::take(&mut *images.lock().unwrap());
    images.push(std::fs::read(&path).unwrap());
    let (mut incomplete, mut created) = (0, 0);
    for (step, image) in images.iter().enumerate() {
        let copy = dir.path().join(format!("step{step}.bin"));
        std::fs::write(&copy, image).unwrap();
        match P::open(&copy) {
            Ok(pager) => {
                assert_eq!(pager.allocated_page_count(), 0);
                created += 1;
            }
            Err(MappedPageError::IncompleteCreate) => incomplete += 1,
            Err(e) => panic!("killed before step {step} of create: open gave {e}"),
        }
    }
    assert!(
        incomplete >= 4 && created >= 1,
        "{incomplete} incomplete, {created} created"
    );
}
