//! Failed I/O (contract E2, D1): over a seeded workload, fail the Nth
//! metadata write, the Nth sync, or the Nth growth of the file, for every N
//! the workload reaches. The call that meets the failure returns `Err`;
//! later calls either work (the pager rolled back) or return `Unavailable`;
//! dropping the pager and reopening the file gives a committed state: the
//! state after the last call that returned `Ok`, or after the failed call
//! if its commit had reached the file, with every regular byte written.
//!
//! The process survives the failure, so the page cache is intact: nothing
//! that a call returning `Ok` made may be lost.
//!
//! `MAPPEDPAGES_SOAK=<n>` runs `n` seeds per durability mode.

#![cfg(feature = "fault-injection")]

mod crash_support;

use std::io;
use std::sync::{Arc, Mutex};

use crash_support::{
    apply, check_file, options, soak_factor, temp_dir, Expect, History, Op, Outcome, Workload, P,
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
}

fn kind_of(event: &IoEvent<'_>) -> Option<Kind> {
    match event {
        IoEvent::Write { .. } => Some(Kind::Write),
        IoEvent::Sync { .. } => Some(Kind::Sync),
        IoEvent::Grow { .. } => Some(Kind::Grow),
        _ => None,
    }
}

/// Counts events and fails the `fail_at`th of `kind` (never if `None`).
#[derive(Default)]
struct Injector {
    kind: Option<Kind>,
    fail_at: u64,
    counts: [u64; 3],
    call: u64,
    failed_in: Option<u64>,
}

impl Injector {
    fn on_event(&mut self, event: IoEvent<'_>) -> io::Result<()> {
        let Some(kind) = kind_of(&event) else {
            return Ok(());
        };
        let count = &mut self.counts[kind as usize];
        *count += 1;
        if Some(kind) == self.kind && *count == self.fail_at {
            self.failed_in = Some(self.call);
            return Err(match kind {
                Kind::Grow => io::Error::from(io::ErrorKind::StorageFull),
                _ => io::Error::other("injected I/O error"),
            });
        }
        Ok(())
    }
}

fn hook(injector: &Arc<Mutex<Injector>>) -> IoHook {
    let injector = Arc::clone(injector);
    IoHook::new(move |event| injector.lock().unwrap().on_event(event))
}

/// Runs the workload with no failure: the reference states and the number
/// of events of each kind (call 1 is the open, the drop comes last).
fn baseline(durability: Durability, seed: u64) -> (History, [u64; 3]) {
    let dir = temp_dir();
    let path = dir.path().join("f.bin");
    drop(options(durability).create(&path).unwrap());
    let injector = Arc::new(Mutex::new(Injector::default()));
    let mut pager = options(durability)
        .io_hook(hook(&injector))
        .open(&path)
        .unwrap();
    let mut history = History::new();
    history.push(&Op::Sync, &Outcome::Done);
    let mut workload = Workload::new(seed);
    crash_support::run_calls(&mut pager, &mut workload, &mut history, CALLS);
    drop(pager);
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
    violations: Vec<String>,
}

/// One run failing the `n`th event of `kind`.
fn run_failing(
    durability: Durability,
    seed: u64,
    kind: Kind,
    n: u64,
    reference: &History,
    tally: &mut Tally,
) {
    let what = format!("{durability:?} seed {seed}: failing {kind:?} #{n}");
    let dir = temp_dir();
    let path = dir.path().join("f.bin");
    drop(options(durability).create(&path).unwrap());
    let injector = Arc::new(Mutex::new(Injector {
        kind: Some(kind),
        fail_at: n,
        call: 1,
        ..Injector::default()
    }));
    tally.runs += 1;
    let mut history = History::new();
    let opened = options(durability).io_hook(hook(&injector)).open(&path);
    let failed_in = || injector.lock().unwrap().failed_in;
    let mut pager = match opened {
        Ok(pager) => pager,
        Err(e) => {
            if failed_in() != Some(1) {
                tally.violations.push(format!("{what}: open failed: {e}"));
                return;
            }
            tally.failed_calls += 1;
            history.push(&Op::Sync, &Outcome::Done);
            verify(&path, &history, 1, 1, &what, tally);
            return;
        }
    };
    history.push(&Op::Sync, &Outcome::Done);
    let mut workload = Workload::new(seed);
    let mut failed: Option<u64> = None;
    let mut later_ok = false;
    let mut poisoned = false;
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
        let result = apply(&mut pager, &op);
        let failed_here = failed_in() == Some(call);
        match (result, failed_here) {
            (Ok(outcome), false) => {
                later_ok |= failed.is_some();
                history.push(&op, &outcome);
            }
            (Ok(_), true) => {
                tally
                    .violations
                    .push(format!("{what}: call {call} {op:?} returned Ok"));
                return;
            }
            (Err(_), true) => {
                tally.failed_calls += 1;
                failed = Some(call);
                // Rolled back, if the pager goes on: the state stays.
                history.push(&Op::Sync, &Outcome::Done);
            }
            (Err(MappedPageError::Unavailable), false) if failed.is_some() => {
                poisoned = true;
            }
            (Err(e), false) => {
                tally.violations.push(format!(
                    "{what}: call {call} {op:?} after the failure in {failed:?} returned {e}"
                ));
                return;
            }
        }
    }
    drop(pager);
    if poisoned {
        tally.unavailable += 1;
    } else if later_ok {
        tally.rolled_back += 1;
    }
    match failed {
        None => {
            if failed_in().is_some() {
                tally.failed_at_drop += 1;
            }
            let last = history.last();
            verify(&path, &history, last, last, &what, tally);
        }
        Some(call) if !later_ok => {
            // The failed call's commit may have reached the file.
            let mut model = reference.clone();
            model.states.truncate(call as usize + 1);
            model.writes.retain(|w| w.call <= call);
            verify(&path, &model, call - 1, call, &what, tally);
        }
        Some(_) => {
            let last = history.last();
            verify(&path, &history, last, last, &what, tally);
        }
    }
}

fn verify(
    path: &std::path::Path,
    history: &History,
    lo: u64,
    hi: u64,
    what: &str,
    tally: &mut Tally,
) {
    let expect = Expect {
        history,
        lo,
        hi,
        durable_before: hi + 1,
        root_calls: None,
        deep: true,
    };
    if let Err(e) = check_file(path, &expect) {
        tally.violations.push(format!("{what}: reopened: {e}"));
    }
}

fn run(durability: Durability) {
    let mut tally = Tally::default();
    let mut per_kind = [0u64; 3];
    for seed in 0..4 * soak_factor() {
        let seed = seed + 77;
        let (reference, counts) = baseline(durability, seed);
        for kind in [Kind::Write, Kind::Sync, Kind::Grow] {
            for n in 1..=counts[kind as usize] {
                per_kind[kind as usize] += 1;
                run_failing(durability, seed, kind, n, &reference, &mut tally);
            }
        }
    }
    println!(
        "{durability:?}: {} runs ({} failed writes, {} failed syncs, {} failed growths): \
         {} calls returned the error, {} failures at drop; afterwards {} pagers rolled back \
         and went on, {} became Unavailable; {} violations",
        tally.runs,
        per_kind[0],
        per_kind[1],
        per_kind[2],
        tally.failed_calls,
        tally.failed_at_drop,
        tally.rolled_back,
        tally.unavailable,
        tally.violations.len()
    );
    for v in tally.violations.iter().take(10) {
        println!("  violation: {v}");
    }
    assert!(tally.violations.is_empty(), "{durability:?}: violations");
    assert!(
        per_kind.iter().all(|&n| n > 0),
        "some kind of event never happened"
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

/// A failed growth while creating: `create` returns the error, and the file
/// it leaves behind is a typed error to open, never a panic.
#[test]
fn failed_create_is_an_error_and_leaves_no_trap() {
    for n in 1..=5u64 {
        let dir = temp_dir();
        let path = dir.path().join("f.bin");
        let injector = Arc::new(Mutex::new(Injector::default()));
        let mut seen = 0;
        let counting = Arc::clone(&injector);
        let failing = IoHook::new(move |event| {
            seen += 1;
            let _ = counting.lock().unwrap().on_event(event);
            if seen == n {
                return Err(io::Error::other("injected"));
            }
            Ok(())
        });
        let created = P::options().io_hook(failing).create(&path);
        if created.is_ok() {
            continue;
        }
        match P::open(&path) {
            Ok(pager) => {
                assert_eq!(pager.iter_allocated_pages().count(), 0);
                assert_eq!(pager.iter_allocated_protected_pages().count(), 0);
            }
            Err(MappedPageError::Io(_))
            | Err(MappedPageError::CorruptSuperblock)
            | Err(MappedPageError::CorruptMetadata)
            | Err(MappedPageError::FileTruncated { .. }) => {}
            Err(e) => panic!("event {n}: unexpected error reopening a failed create: {e}"),
        }
    }
}
