//! Shared by the crash tests (`crash_simulator.rs`, `crash_killed_process.rs`,
//! `fault_injected_io.rs`, `real_syncs_strace.rs`): what is particular to
//! crash images. The ops, the model of the pager and the seeded workload are
//! the ones the property test runs too (`model_support`, re-exported here):
//! a workload runs through its [`Driver`], which checks every op, every
//! snapshot held and every copy against the model as it goes; here the
//! [`History`] keeps the state after every call and every write to a
//! regular page, and [`check_file`] checks a reopened file against it
//! (contract D1, D2, D3).
//!
//! Every pager interaction of the workload is one numbered *call*; call 0 is
//! the file's creation (or, for a file set up before recording, its set-up
//! state: [`History::starting_from`]). `History::states[c]` is the state after
//! call `c`.
//!
//! [`P`] and [`PS`] are the small pages most tests use; the workload, the model
//! and the checks also take other page sizes (the `*_sized` functions and the
//! ones generic over the pager's page size).
//!
//! A shrink, a snapshot taken or dropped and a copy of the file are calls
//! that leave the state as it was: a snapshot is held across the calls after
//! it, which must neither change a byte it reads nor reuse a page it holds,
//! and crash images taken meanwhile are checked like any other. A
//! transaction is one call too: it commits or is dropped, so the model has
//! no state for a part of it (contract T1, T2). The fresh pages a committed
//! transaction wrote, and the pages it relocated, are checksummed by its
//! root: once a state at or after that call is seen, their bytes must be
//! exactly the written ones ([`UserWrite::checked`]).

#![allow(dead_code)]

#[path = "../model/mod.rs"]
pub mod model_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use mappedpages::{Durability, PageId, Pager, PagerOptions, ProtectedPageId};

// Each test uses a part of these.
#[allow(unused_imports)]
pub use model_support::driver::{Driver, Outcome};
#[allow(unused_imports)]
pub use model_support::model::{Model, State};
#[allow(unused_imports)]
pub use model_support::ops::{describe, BulkFlaw, End, Op, Patch, Slot, Step, Target};
#[allow(unused_imports)]
pub use model_support::workload::{pages_written, root_capacity, Rng, Workload};

/// Small pages keep the files, and so every image, small.
pub const PS: usize = 1024;
pub type P = Pager<PS>;

/// Initial size of the workload files: small, so the workloads grow them.
pub const INITIAL_PAGES: u64 = 8;

/// The most one growth adds to the workload files, in pages. The default
/// step is at least 4 MiB, which a workload of a hundred pages would reach
/// once; small steps make it grow many times, with a growth in flight at
/// many sync points, and keep every image small.
pub const GROWTH_STEP_PAGES: u64 = 16;

/// How far a soak run goes: `MAPPEDPAGES_SOAK=<n>` multiplies the default
/// amount of work by `n` (unset: 1).
pub fn soak_factor() -> u64 {
    std::env::var("MAPPEDPAGES_SOAK")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(1)
}

/// A temporary directory, in memory where the system has a tmpfs for it (the
/// tests sync thousands of small files; page-cache semantics are the same).
pub fn temp_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().unwrap()
}

/// A write to a regular page: `call` filled `page` with `value`.
#[derive(Clone, Copy, Debug)]
pub struct UserWrite {
    pub call: u64,
    pub page: u64,
    pub value: u8,
    /// Written by a committed transaction into a page it allocated: the
    /// commit's root checks it, so any state from `call` on shows exactly
    /// these bytes (until a later write).
    pub checked: bool,
}

/// The model: the state after every call and every user write.
#[derive(Clone, Debug)]
pub struct History {
    pub states: Vec<State>,
    /// Every user write, by page, in call order.
    pub writes: BTreeMap<u64, Vec<UserWrite>>,
    /// The calls that allocated each page (it was free before them), in
    /// order: a check then finds a page's incarnation without walking back
    /// through the states.
    births: BTreeMap<u64, Vec<u64>>,
    /// Page size of the file: a newly allocated protected page reads as
    /// this many zeros.
    pub page_size: usize,
}

impl History {
    /// The model of a new, empty file of [`PS`]-byte pages.
    pub fn new() -> History {
        History::starting_from(State::default(), PS)
    }

    /// The model of a new, empty file of `page_size`-byte pages.
    pub fn with_page_size(page_size: usize) -> History {
        History::starting_from(State::default(), page_size)
    }

    /// The model of a file whose call 0 left `state`: a file set up before
    /// the recorded workload starts (one with deep page trees, say), with
    /// pages of `page_size` bytes. Writes made during the set-up are not
    /// modelled: the checks hold regular bytes only to writes recorded here.
    pub fn starting_from(state: State, page_size: usize) -> History {
        History {
            states: vec![state],
            writes: BTreeMap::new(),
            births: BTreeMap::new(),
            page_size,
        }
    }

    /// Forgets every call after `last`.
    pub fn truncate(&mut self, last: u64) {
        self.states.truncate(last as usize + 1);
        for calls in self.births.values_mut() {
            calls.retain(|&c| c <= last);
        }
        for writes in self.writes.values_mut() {
            writes.retain(|w| w.call <= last);
        }
    }

    /// The call that allocated the incarnation of `page` (allocated in the
    /// state after call `call`) that this state holds; 0 for the first state's.
    fn born(&self, page: u64, call: u64) -> u64 {
        self.births
            .get(&page)
            .and_then(|calls| calls.iter().rev().find(|&&c| c <= call))
            .copied()
            .unwrap_or(0)
    }

    fn record(&mut self, write: UserWrite) {
        self.writes.entry(write.page).or_default().push(write);
    }

    /// Index of the last completed call.
    pub fn last(&self) -> u64 {
        self.states.len() as u64 - 1
    }

    /// Records the completion of call `last() + 1`, which left `state`.
    pub fn push(&mut self, state: State, op: &Op, outcome: &Outcome) {
        let call = self.states.len() as u64;
        let prev = self.states.last().unwrap();
        for &page in state.regular.difference(&prev.regular) {
            self.births.entry(page).or_default().push(call);
        }
        match op {
            Op::Txn(..) if outcome.committed => {
                // The last value of every fresh page it left written, and
                // a relocated page's bytes, which move with it: its last
                // write since it was allocated.
                let mut written = BTreeMap::new();
                for &(page, value) in &outcome.fills {
                    if state.regular.contains(&page) {
                        written.insert(page, value);
                    }
                }
                for &(old, new) in &outcome.moved {
                    let Some(new) = new else { continue };
                    let born = self.born(old, call - 1);
                    let last = self
                        .writes
                        .get(&old)
                        .and_then(|w| w.iter().rfind(|w| w.call >= born));
                    if let Some(last) = last {
                        written.insert(new, last.value);
                    }
                }
                for (page, value) in written {
                    self.record(UserWrite {
                        call,
                        page,
                        value,
                        checked: true,
                    });
                }
            }
            Op::Txn(..) => {}
            _ => {
                for &(page, value) in &outcome.fills {
                    self.record(UserWrite {
                        call,
                        page,
                        value,
                        checked: false,
                    });
                }
            }
        }
        self.states.push(state);
    }

    /// Records a committed transaction made outside a [`Driver`] as call
    /// `last() + 1`: it left `state`, and filled each fresh page of `fills`
    /// with its byte (so its root checks those bytes).
    pub fn push_commit(&mut self, state: State, fills: &[(u64, u8)]) {
        let outcome = Outcome {
            fills: fills.to_vec(),
            committed: true,
            ..Outcome::default()
        };
        self.push(state, &Op::Txn(Vec::new(), End::Commit), &outcome);
    }

    /// Records a call that left the state as it was.
    pub fn push_same(&mut self) {
        let state = self.states.last().unwrap().clone();
        self.states.push(state);
    }
}

impl Default for History {
    fn default() -> Self {
        History::new()
    }
}

/// What a reopened file may show.
#[derive(Clone, Copy, Debug)]
pub struct Expect<'a> {
    pub history: &'a History,
    /// The state is one of `states[lo..=hi]`.
    pub lo: u64,
    pub hi: u64,
    /// Writes of calls before this one are durable.
    pub durable_before: u64,
    /// Calls that wrote a metadata root: every write made before such a call
    /// is durable once its root is seen (write-before ordering, D3).
    pub root_calls: Option<&'a BTreeSet<u64>>,
    /// Also allocate every free page, write it, and reopen (slower).
    pub deep: bool,
}

/// Opens the file at `path` (of [`PS`]-byte pages) and checks it against
/// `expect`. Returns the first matching call index, or a description of the
/// violation.
pub fn check_file(path: &Path, expect: &Expect<'_>) -> Result<u64, String> {
    check_file_sized::<PS>(path, expect)
}

/// [`check_file`] for a file of `N`-byte pages.
pub fn check_file_sized<const N: usize>(path: &Path, expect: &Expect<'_>) -> Result<u64, String> {
    let pager = open_checked::<N>(path).map_err(|e| format!("open failed: {e}"))?;
    check_pager(pager, path, expect)
}

/// Opens a crash image to check, with the workloads' small growth steps:
/// the check allocates every free page, and the commit of that may grow
/// the image, by 4 MiB with the default step.
fn open_checked<const N: usize>(path: &Path) -> mappedpages::Result<Pager<N>> {
    Pager::<N>::options()
        .max_growth_step(GROWTH_STEP_PAGES * N as u64)
        .open(path)
}

fn check_pager<const N: usize>(
    mut pager: Pager<N>,
    path: &Path,
    expect: &Expect<'_>,
) -> Result<u64, String> {
    let history = expect.history;
    let seen = State::observe(&pager)?;
    let matching: Vec<u64> = (expect.lo..=expect.hi)
        .filter(|&j| history.states.get(j as usize) == Some(&seen))
        .collect();
    if matching.is_empty() {
        let lo = &history.states[expect.lo as usize];
        let hi = &history.states[expect.hi as usize];
        return Err(format!(
            "state matches none of calls {}..={} (D1/D2, T1); vs first: {}; vs last: {}",
            expect.lo,
            expect.hi,
            seen.diff(lo),
            seen.diff(hi)
        ));
    }
    if pager.allocated_page_count() != seen.regular.len() as u64 {
        return Err(format!(
            "allocated_page_count {} but the iterator shows {}",
            pager.allocated_page_count(),
            seen.regular.len()
        ));
    }
    // Equal states may follow different calls (a page freed and allocated
    // again): the file shows one of them, and its bytes must fit that one.
    let mut first_error = None;
    let fits = |&j: &u64| match check_regular_bytes(&pager, &seen, j, expect) {
        Ok(()) => true,
        Err(e) => {
            first_error.get_or_insert(e);
            false
        }
    };
    let Some(first) = matching.into_iter().find(fits) else {
        return Err(first_error.unwrap_or_default());
    };
    check_visibility(&pager, &seen)?;
    if expect.deep {
        check_free_pages_are_free(&mut pager, &seen)?;
        drop(pager);
        let again =
            open_checked::<N>(path).map_err(|e| format!("reopen after alloc-all failed: {e}"))?;
        let seen_again = State::observe(&again)?;
        if seen_again != seen {
            return Err(format!(
                "reopen after alloc-all/free-all changed the state: {}",
                seen_again.diff(&seen)
            ));
        }
    }
    Ok(first)
}

/// D3: a regular page holds its last durable write or a later write, byte by
/// byte (a torn page mixes them), taking the file to show the state after
/// call `first`. A page a committed transaction wrote holds exactly that
/// write from its call on (T1: its root checks it), or a later write.
fn check_regular_bytes<const N: usize>(
    pager: &Pager<N>,
    seen: &State,
    first: u64,
    expect: &Expect<'_>,
) -> Result<(), String> {
    let history = expect.history;
    let mut before = expect.durable_before;
    if let Some(roots) = expect.root_calls {
        if let Some(&r) = roots.range(..=first).next_back() {
            before = before.max(r);
        }
    }
    for &page in &seen.regular {
        let Some(writes) = history.writes.get(&page) else {
            continue;
        };
        let writes = writes.iter().filter(|w| w.call <= expect.hi);
        let born = history.born(page, first);
        // A transaction writes the pages it allocates in the same call.
        let durable = writes.clone().rfind(|w| {
            if w.checked {
                w.call >= born && w.call <= first
            } else {
                w.call > born && w.call < before
            }
        });
        let Some(durable) = durable else { continue };
        let mut allowed = [false; 256];
        for w in writes.filter(|w| w.call >= durable.call) {
            allowed[usize::from(w.value)] = true;
        }
        let bytes = PageId::<N>(page)
            .get(pager)
            .map_err(|e| format!("listed page {page} unreadable: {e}"))?
            .as_bytes();
        if let Some(pos) = bytes.iter().position(|&b| !allowed[usize::from(b)]) {
            let allowed: Vec<u8> = (0..=255).filter(|&b| allowed[usize::from(b)]).collect();
            let when = if durable.checked {
                "by the transaction, committed in the state shown, of call"
            } else {
                "before a completed sync or commit by call"
            };
            return Err(format!(
                "regular page {page} byte {pos} is {:#x} in the state after call {first}; written \
                 {:#x} {when} {}, allowed {allowed:x?} (D3, T1)",
                bytes[pos], durable.value, durable.call
            ));
        }
    }
    Ok(())
}

/// Files of up to this many pages have the visibility of every page
/// checked. Past it (the crash images with deep page trees, millions of
/// pages, where a full scan per image would cost more than all the rest) the
/// check covers the first pages, where the pager takes its own pages (the
/// lowest free ones), every allocated page and its neighbours, the last pages,
/// and a stride through the rest.
const VISIBILITY_SCAN_ALL: u64 = 1 << 18;
const VISIBILITY_STRIDE: u64 = 257;

/// Only allocated regular pages are readable through `PageId::get`, only
/// protected pages in use through `ProtectedPageId::get`.
fn check_visibility<const N: usize>(pager: &Pager<N>, seen: &State) -> Result<(), String> {
    let check = |page: u64, allocated: bool| {
        let readable = PageId::<N>(page).get(pager).is_ok();
        if readable == allocated {
            return Ok(());
        }
        Err(format!(
            "PageId({page}).get is {} but the page is {}",
            if readable { "Ok" } else { "Err" },
            if readable {
                "not allocated (internal or free page visible)"
            } else {
                "allocated"
            }
        ))
    };
    let end = pager.page_count() + 4;
    let scan = end.min(VISIBILITY_SCAN_ALL);
    // Both ascend: walk them together rather than look each page up.
    let mut allocated = seen.regular.range(..scan).peekable();
    for page in 0..scan {
        check(page, allocated.next_if_eq(&&page).is_some())?;
    }
    let near_allocated = seen
        .regular
        .range(scan.saturating_sub(1)..)
        .flat_map(|&p| [p - 1, p, p + 1]);
    let sample = (scan..end)
        .step_by(VISIBILITY_STRIDE as usize)
        .chain(end.saturating_sub(8).max(scan)..end)
        .chain(near_allocated)
        .chain([u64::MAX, 1 << 56]);
    for page in sample {
        check(page, seen.regular.contains(&page))?;
    }
    let slots = seen.protected.keys().last().map_or(0, |s| s + 1) + 4;
    for slot in (0..slots).chain([u64::MAX]) {
        let readable = ProtectedPageId::<N>(slot).get(pager).is_ok();
        if readable != seen.protected.contains_key(&slot) {
            return Err(format!("ProtectedPageId({slot}).get readable={readable}"));
        }
    }
    Ok(())
}

/// At most this many free pages are allocated and written by
/// [`check_free_pages_are_free`]: every free page of the small files, the
/// lowest ones of the files with deep trees (millions of free pages). The
/// allocator hands out the lowest free pages first, and the pager's own pages
/// (tree pages, protected copies, pages awaiting a sync) are taken from the
/// lowest free ones too, so a page wrongly free lies among them.
const FREE_CHECK_MAX: u64 = 1 << 9;

/// Allocates the free pages (at most [`FREE_CHECK_MAX`]), fills them, and
/// checks that no live page (regular or protected) changed: no page is both
/// free and in use.
fn check_free_pages_are_free<const N: usize>(
    pager: &mut Pager<N>,
    seen: &State,
) -> Result<(), String> {
    let contents: Vec<Vec<u8>> = seen
        .regular
        .iter()
        .map(|&p| PageId::<N>(p).get(pager).unwrap().as_bytes().to_vec())
        .collect();
    let free = pager.free_page_count().min(FREE_CHECK_MAX);
    if free == 0 {
        return Ok(());
    }
    let ids = pager
        .alloc_bulk(free as usize)
        .map_err(|e| format!("alloc_bulk of {free} free pages failed: {e}"))?;
    let mut fresh = BTreeSet::new();
    for id in &ids {
        if id.0 < 3 || seen.regular.contains(&id.0) || !fresh.insert(id.0) {
            return Err(format!(
                "alloc_bulk handed out page {} which is in use",
                id.0
            ));
        }
        id.get_mut(pager).unwrap().as_bytes_mut().fill(0xEE);
    }
    for (&page, before) in seen.regular.iter().zip(&contents) {
        if PageId::<N>(page).get(pager).unwrap().as_bytes() != &before[..] {
            return Err(format!(
                "regular page {page} changed when free pages were written"
            ));
        }
    }
    let now = State::observe(pager)?;
    if now.protected != seen.protected {
        return Err(format!(
            "protected pages changed when free pages were written: {}",
            now.diff(seen)
        ));
    }
    pager
        .free_bulk(ids)
        .map_err(|e| format!("free_bulk of the pages just allocated failed: {e}"))
}

/// Runs `calls` calls of `workload` through `driver`, recording them in
/// `history`. Every call must succeed.
pub fn run_calls<const N: usize>(
    driver: &mut Driver<N>,
    workload: &mut Workload,
    history: &mut History,
    calls: u64,
) {
    for _ in 0..calls {
        let call = history.last() + 1;
        let op = workload.next_op(history.states.last().unwrap(), call);
        let outcome = driver
            .apply(&op)
            .unwrap_or_else(|e| panic!("call {call} {}: {e}", describe(&op)));
        history.push(driver.model.state(), &op, &outcome);
    }
}

/// A driver of `pager`, open on `path` with `options`, from the state it
/// shows now. Crash workloads check the states and bytes that crash images
/// and reopens show, the snapshots they hold and the copies they make, not
/// the pager after every call nor the exact count of commits and syncs (their files start deep, or cut themselves while
/// snapshots hold pages): the property test does.
pub fn drive<const N: usize>(path: &Path, pager: Pager<N>, options: PagerOptions<N>) -> Driver<N> {
    let model = Model::observe(&pager);
    let mut driver = Driver::new(path, pager, options, model);
    driver.strict = false;
    driver.check_pager = false;
    driver
}

/// A workload for a file of [`PS`]-byte pages.
pub fn workload(seed: u64) -> Workload {
    Workload::sized(seed, PS)
}

/// Options for the workload files.
pub fn options(durability: Durability) -> mappedpages::PagerOptions<PS> {
    options_sized::<PS>(durability)
}

/// [`options`] for a pager of `N`-byte pages.
pub fn options_sized<const N: usize>(durability: Durability) -> mappedpages::PagerOptions<N> {
    Pager::<N>::options()
        .durability(durability)
        .initial_pages(INITIAL_PAGES)
        .max_growth_step(GROWTH_STEP_PAGES * N as u64)
}

/// A fresh path in `dir`.
pub fn file_in(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}
