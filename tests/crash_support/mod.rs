//! Shared by the crash tests (`crash_simulator.rs`, `crash_killed_process.rs`,
//! `fault_injected_io.rs`): a seeded workload over the public API, the model
//! it keeps (the allocation state and protected bytes after every call, and
//! every write to a regular page), and the check of a reopened file against
//! that model (contract D1, D2, D3).
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
//! A shrink ([`Op::Shrink`]) is one call that leaves the state as it was;
//! a workload with [`Workload::shrink_percent`] set frees its highest pages
//! before most of them.
//!
//! A snapshot ([`Op::TakeSnapshot`], [`Op::DropSnapshot`]) is a call that
//! leaves the state as it was: the snapshot is held across the calls after
//! it, which must neither change a byte it reads nor reuse a page it holds
//! ([`Held::verify`] after every call), and crash images taken meanwhile are
//! checked like any other. A transaction may relocate committed pages
//! ([`Step::Relocate`]): the page moves with its bytes, checked by the
//! commit's root like any page the transaction wrote.
//!
//! A transaction ([`Op::Txn`]) is one call too: its steps run inside one
//! `Pager::transaction`, which commits or is dropped, so the model has no
//! state for a part of it (contract T1, T2). The fresh pages a committed
//! transaction wrote are checksummed by its root: once a state at or after
//! that call is seen, their bytes must be exactly the written ones
//! ([`UserWrite::checked`]).

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mappedpages::{
    Durability, MappedPageError, PageId, Pager, ProtectedPageId, Snapshot, Transaction,
};

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

/// SplitMix64: small, seeded, reproducible.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// What the public API shows of a file: the allocated regular pages and the
/// protected pages in use with their committed bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    pub regular: BTreeSet<u64>,
    pub protected: BTreeMap<u64, Arc<Vec<u8>>>,
}

impl State {
    /// Reads the state through the public API.
    pub fn observe<const N: usize>(pager: &Pager<N>) -> Result<State, String> {
        let regular: BTreeSet<u64> = pager.iter_allocated_pages().map(|id| id.0).collect();
        let mut protected = BTreeMap::new();
        for id in pager.iter_allocated_protected_pages() {
            let bytes = id
                .get(pager)
                .map_err(|e| format!("protected page {} listed but unreadable: {e}", id.0))?;
            protected.insert(id.0, Arc::new(bytes.as_bytes().to_vec()));
        }
        Ok(State { regular, protected })
    }

    /// A short description of how `self` differs from `other`.
    pub fn diff(&self, other: &State) -> String {
        let extra: Vec<_> = self.regular.difference(&other.regular).collect();
        let missing: Vec<_> = other.regular.difference(&self.regular).collect();
        let pk: Vec<_> = self.protected.keys().collect();
        let ok: Vec<_> = other.protected.keys().collect();
        let differing: Vec<_> = self
            .protected
            .iter()
            .filter(|(k, v)| other.protected.get(k).is_some_and(|o| o != *v))
            .map(|(k, _)| k)
            .collect();
        format!(
            "regular +{extra:?} -{missing:?}; protected {pk:?} vs {ok:?}; bytes differ in {differing:?}"
        )
    }
}

/// One pager call of the workload.
#[derive(Clone, Debug)]
pub enum Op {
    Alloc,
    AllocBulk(usize),
    Free(u64),
    FreeBulk(Vec<u64>),
    /// Fill a regular page with one byte value through `get_mut`.
    Write {
        page: u64,
        value: u8,
    },
    AllocProtected,
    AllocProtectedBulk(usize),
    FreeProtected(u64),
    FreeProtectedBulk(Vec<u64>),
    /// A protected write, committed (`commit`) or dropped: a stamp in the
    /// first and last 8 bytes and `bytes` at `offset`.
    Protected {
        slot: u64,
        stamp: u64,
        offset: usize,
        bytes: Vec<u8>,
        commit: bool,
    },
    Sync,
    /// A transaction: its steps, then a commit or a drop.
    Txn(Txn),
    /// `Pager::shrink`: the state stays, the free tail is cut off.
    Shrink,
    /// Take a snapshot and hold it (see [`Held`]): the state stays.
    TakeSnapshot,
    /// Drop the `n`th snapshot held, oldest first.
    DropSnapshot(usize),
}

/// The steps of one transaction and how it ends.
#[derive(Clone, Debug)]
pub struct Txn {
    pub steps: Vec<Step>,
    /// `commit()` if set, else `rollback()` (a drop).
    pub commit: bool,
}

/// A protected page a transaction step names: one committed before it, or
/// the `n`th it allocated itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotRef {
    Committed(u64),
    Fresh(usize),
}

/// One step inside a transaction. Fresh pages and slots are named by their
/// index among those the transaction allocated so far (the ids are known
/// only once it runs).
#[derive(Clone, Debug)]
pub enum Step {
    /// Allocate this many regular pages (`alloc` for one, else `alloc_bulk`).
    Alloc(usize),
    /// Fill fresh pages with one byte value each: through one `pages()` set
    /// holding them all at once if `together`, else one `get_mut` each.
    Write {
        pages: Vec<(usize, u8)>,
        together: bool,
    },
    /// Free pages committed before the transaction (`free` for one, else
    /// `free_bulk`).
    Free(Vec<u64>),
    /// Free fresh pages again.
    FreeFresh(Vec<usize>),
    AllocProtected,
    FreeProtected(SlotRef),
    /// Stage a protected write, as [`Op::Protected`] writes it.
    WriteProtected {
        slot: SlotRef,
        stamp: u64,
        offset: usize,
        bytes: Vec<u8>,
    },
    /// `Transaction::relocate` each of these committed pages, which the
    /// transaction neither freed nor relocated before.
    Relocate(Vec<u64>),
}

impl Txn {
    /// The fresh pages this transaction leaves written, with their last
    /// value, given the pages it allocated (`Outcome::Txn`).
    pub fn written(&self, pages: &[u64]) -> BTreeMap<u64, u8> {
        let mut written = BTreeMap::new();
        for step in &self.steps {
            match step {
                Step::Write { pages: w, .. } => {
                    written.extend(w.iter().map(|&(i, value)| (pages[i], value)));
                }
                Step::FreeFresh(freed) => {
                    for &i in freed {
                        written.remove(&pages[i]);
                    }
                }
                _ => {}
            }
        }
        written
    }

    /// The committed pages the transaction relocates, in order.
    pub fn relocated(&self) -> impl Iterator<Item = u64> + '_ {
        self.steps
            .iter()
            .flat_map(|step| match step {
                Step::Relocate(pages) => pages.as_slice(),
                _ => &[],
            })
            .copied()
    }

    /// Fresh pages the transaction writes, over all its steps.
    pub fn pages_written(&self) -> usize {
        self.steps
            .iter()
            .map(|step| match step {
                Step::Write { pages, .. } => pages.len(),
                _ => 0,
            })
            .sum()
    }
}

/// What a call returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Pages(Vec<u64>),
    Slots(Vec<u64>),
    Done,
    /// The regular pages and protected slots a transaction allocated, in
    /// order (whether it committed or not), and where each page it
    /// relocated went (`None`: no lower page was free, it stayed).
    Txn {
        pages: Vec<u64>,
        slots: Vec<u64>,
        moved: Vec<Option<u64>>,
    },
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

/// How many page checks and log records fit in a root of `page_size`-byte
/// pages (`FORMAT.md`): a transaction writing more pages needs check pages.
pub fn root_capacity(page_size: usize) -> usize {
    (page_size.min(4096) - 132) / 24
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

    /// Records the completion of call `last() + 1`.
    pub fn push(&mut self, op: &Op, outcome: &Outcome) {
        let call = self.states.len() as u64;
        let prev = self.states.last().unwrap();
        let next = next_state(prev, op, outcome, self.page_size);
        for &page in next.regular.difference(&prev.regular) {
            self.births.entry(page).or_default().push(call);
        }
        match (op, outcome) {
            (Op::Write { page, value }, _) => self.record(UserWrite {
                call,
                page: *page,
                value: *value,
                checked: false,
            }),
            (Op::Txn(txn), Outcome::Txn { pages, moved, .. }) if txn.commit => {
                // A relocated page's bytes move with it, checked by the
                // commit's root: its last write since it was allocated.
                let relocated: Vec<(u64, u8)> = txn
                    .relocated()
                    .zip(moved)
                    .filter_map(|(old, new)| Some((new.as_ref()?, old)))
                    .filter_map(|(&new, old)| {
                        let born = self.born(old, call - 1);
                        let last = self.writes.get(&old)?.iter().rfind(|w| w.call >= born)?;
                        Some((new, last.value))
                    })
                    .collect();
                for (page, value) in txn.written(pages).into_iter().chain(relocated) {
                    self.record(UserWrite {
                        call,
                        page,
                        value,
                        checked: true,
                    });
                }
            }
            _ => {}
        }
        self.states.push(next);
    }
}

impl Default for History {
    fn default() -> Self {
        History::new()
    }
}

/// Generates the calls of a workload from a seed and the current state.
#[derive(Clone, Debug)]
pub struct Workload {
    pub rng: Rng,
    next_value: u8,
    pub max_regular: usize,
    pub max_protected: usize,
    /// Page size of the file the protected writes go to.
    pub page_size: usize,
    /// Percentage of calls that are transactions.
    pub txn_percent: u64,
    /// Percentage of the transactions that write more pages than a root
    /// can check ([`root_capacity`]), so their checks go to check pages.
    pub big_txn_percent: u64,
    /// Percentage of calls that start a shrink: most free the highest
    /// regular pages first (one call) so that the tail it cuts is long.
    pub shrink_percent: u64,
    /// The last call freed the highest pages: the next one shrinks.
    shrink_next: bool,
    /// Percentage of calls that take a snapshot (at most
    /// [`MAX_HELD_SNAPSHOTS`] are held; each later call drops the oldest
    /// with a chance of one in eight).
    pub snapshot_percent: u64,
    /// Percentage of the transactions that relocate their highest
    /// committed pages.
    pub relocate_percent: u64,
    /// The regular pages of each snapshot held, oldest first: they may not
    /// be written in place while it lives.
    held: Vec<BTreeSet<u64>>,
}

/// The most snapshots a workload holds at once.
pub const MAX_HELD_SNAPSHOTS: usize = 2;

impl Workload {
    /// A workload for a file of [`PS`]-byte pages.
    pub fn new(seed: u64) -> Workload {
        Workload::sized(seed, PS)
    }

    /// A workload for a file of `page_size`-byte pages.
    pub fn sized(seed: u64, page_size: usize) -> Workload {
        Workload {
            rng: Rng::new(seed),
            next_value: 0,
            max_regular: 48,
            max_protected: 8,
            page_size,
            txn_percent: 8,
            big_txn_percent: 25,
            shrink_percent: 0,
            shrink_next: false,
            snapshot_percent: 0,
            relocate_percent: 0,
            held: Vec::new(),
        }
    }

    fn value(&mut self) -> u8 {
        self.next_value = self.next_value % 254 + 1;
        self.next_value
    }

    fn pick(&mut self, set: &BTreeSet<u64>) -> u64 {
        let i = self.rng.index(set.len());
        *set.iter().nth(i).unwrap()
    }

    fn pick_many(&mut self, set: &BTreeSet<u64>, max: usize) -> Vec<u64> {
        let mut all: Vec<u64> = set.iter().copied().collect();
        let n = 1 + self.rng.index(max.min(all.len()));
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(all.swap_remove(self.rng.index(all.len())));
        }
        out
    }

    /// A protected write's stamp, offset and bytes for a page of the
    /// workload's size.
    fn protected_write(&mut self, call: u64) -> (u64, usize, Vec<u8>) {
        let ps = self.page_size;
        let offset = 8 + self.rng.index(ps - 16);
        // Short writes: a protected write copies its whole page anyway, and
        // big pages would make long ones slow.
        let len = 1 + self.rng.index((ps - 8 - offset).min(PS));
        let bytes = (0..len).map(|_| self.rng.next_u64() as u8).collect();
        (call << 8 | self.rng.below(256), offset, bytes)
    }

    /// A transaction valid for `state`: it allocates `k` fresh pages (in one
    /// to three steps) and writes them, frees some committed pages (enough to
    /// stay within the workload's page budget), allocates, frees and writes
    /// protected pages, and commits or is dropped. A big one writes more
    /// pages than its root can check.
    pub fn next_txn(&mut self, state: &State, call: u64) -> Op {
        let big = self.rng.chance(self.big_txn_percent);
        let capacity = root_capacity(self.page_size);
        let k = if big {
            capacity + 4 + self.rng.index(capacity / 3 + 8)
        } else {
            1 + self.rng.index(self.max_regular.clamp(1, 8))
        };
        let mut committed: Vec<u64> = state.regular.iter().copied().collect();
        let limit = self.max_regular.max(k);
        let least = (committed.len() + k).saturating_sub(limit);
        let n_free = (least + self.rng.index(7)).min(committed.len());
        let mut frees = Vec::with_capacity(n_free);
        for _ in 0..n_free {
            frees.push(committed.swap_remove(self.rng.index(committed.len())));
        }
        // Frees before, between and after the allocations.
        let mut chunks: Vec<Vec<u64>> = Vec::new();
        if !frees.is_empty() {
            let cut = self.rng.index(frees.len() + 1);
            let rest = frees.split_off(cut);
            chunks.extend([frees, rest].into_iter().filter(|c| !c.is_empty()));
        }
        let mut steps = Vec::new();
        let mut allocated = 0;
        let parts = 1 + self.rng.index(3);
        for part in 0..parts {
            if self.rng.chance(40) {
                if let Some(chunk) = chunks.pop() {
                    steps.push(Step::Free(chunk));
                }
            }
            let n = if part + 1 == parts {
                k - allocated
            } else {
                self.rng.index(k - allocated + 1)
            };
            if n > 0 {
                steps.push(Step::Alloc(n));
                let mut written = Vec::with_capacity(n);
                for i in allocated..allocated + n {
                    if big || self.rng.chance(85) {
                        written.push((i, self.value()));
                    }
                }
                if !written.is_empty() {
                    let together = self.rng.chance(50);
                    steps.push(Step::Write {
                        pages: written,
                        together,
                    });
                }
                allocated += n;
            }
        }
        steps.extend(chunks.into_iter().map(Step::Free));
        if !big && self.rng.chance(15) {
            steps.push(Step::FreeFresh(vec![self.rng.index(allocated)]));
        }
        // Only workloads that relocate draw for it: the others keep the
        // sequences their seeds always gave.
        if self.relocate_percent > 0
            && !committed.is_empty()
            && self.rng.chance(self.relocate_percent)
        {
            // The highest pages, as an engine compacting its file moves them.
            committed.sort_unstable();
            let n = 1 + self.rng.index(committed.len().min(3));
            let top = committed.split_off(committed.len() - n);
            steps.push(Step::Relocate(top.into_iter().rev().collect()));
        }
        // Protected pages: the committed ones still usable, the fresh ones.
        let mut slots: Vec<SlotRef> = state
            .protected
            .keys()
            .map(|&s| SlotRef::Committed(s))
            .collect();
        let mut fresh_slots = 0;
        for _ in 0..self.rng.index(5) {
            match self.rng.below(100) {
                0..=24 if slots.len() < self.max_protected => {
                    steps.push(Step::AllocProtected);
                    slots.push(SlotRef::Fresh(fresh_slots));
                    fresh_slots += 1;
                }
                25..=34 if !slots.is_empty() => {
                    let slot = slots.swap_remove(self.rng.index(slots.len()));
                    steps.push(Step::FreeProtected(slot));
                }
                35..=99 if !slots.is_empty() => {
                    let slot = slots[self.rng.index(slots.len())];
                    let (stamp, offset, bytes) = self.protected_write(call);
                    steps.push(Step::WriteProtected {
                        slot,
                        stamp,
                        offset,
                        bytes,
                    });
                }
                _ => {}
            }
        }
        Op::Txn(Txn {
            steps,
            commit: self.rng.chance(85),
        })
    }

    /// A shrink, or the free of the highest regular pages that comes
    /// before one.
    fn next_shrink(&mut self, state: &State) -> Op {
        if state.regular.is_empty() || self.rng.chance(20) {
            return Op::Shrink;
        }
        self.shrink_next = true;
        let n = 1 + self.rng.index(state.regular.len().div_ceil(2));
        let top: Vec<u64> = state.regular.iter().rev().take(n).copied().collect();
        match top[..] {
            [page] => Op::Free(page),
            _ => Op::FreeBulk(top),
        }
    }

    /// The next call, valid for `state` (so it returns `Ok` unless I/O fails).
    pub fn next_op(&mut self, state: &State, call: u64) -> Op {
        if std::mem::take(&mut self.shrink_next) {
            return Op::Shrink;
        }
        if self.snapshot_percent > 0 {
            if !self.held.is_empty() && self.rng.chance(12) {
                self.held.remove(0);
                return Op::DropSnapshot(0);
            }
            if self.held.len() < MAX_HELD_SNAPSHOTS && self.rng.chance(self.snapshot_percent) {
                self.held.push(state.regular.clone());
                return Op::TakeSnapshot;
            }
        }
        if self.shrink_percent > 0 && self.rng.chance(self.shrink_percent) {
            return self.next_shrink(state);
        }
        if self.txn_percent > 0 && self.rng.chance(self.txn_percent) {
            return self.next_txn(state, call);
        }
        let regular = &state.regular;
        let protected = &state.protected;
        let full = regular.len() >= self.max_regular;
        let pfull = protected.len() >= self.max_protected;
        loop {
            let roll = self.rng.below(100);
            let op = match roll {
                0..=11 if !full => Op::Alloc,
                12..=17 if !full => Op::AllocBulk(1 + self.rng.index(8)),
                18..=29 if !regular.is_empty() => Op::Free(self.pick(regular)),
                30..=35 if !regular.is_empty() => Op::FreeBulk(self.pick_many(regular, 6)),
                36..=55 if !regular.is_empty() => {
                    // A page a snapshot reads is not written in place.
                    let writable: BTreeSet<u64> = regular
                        .iter()
                        .filter(|page| !self.held.iter().any(|held| held.contains(page)))
                        .copied()
                        .collect();
                    if writable.is_empty() {
                        continue;
                    }
                    Op::Write {
                        page: self.pick(&writable),
                        value: self.value(),
                    }
                }
                56..=60 if !pfull => Op::AllocProtected,
                61..=63 if !pfull => Op::AllocProtectedBulk(1 + self.rng.index(3)),
                64..=67 if !protected.is_empty() => Op::FreeProtected(
                    *protected
                        .keys()
                        .nth(self.rng.index(protected.len()))
                        .unwrap(),
                ),
                68..=69 if !protected.is_empty() => {
                    let slots: BTreeSet<u64> = protected.keys().copied().collect();
                    Op::FreeProtectedBulk(self.pick_many(&slots, 3))
                }
                70..=94 if !protected.is_empty() => {
                    let slot = *protected
                        .keys()
                        .nth(self.rng.index(protected.len()))
                        .unwrap();
                    let (stamp, offset, bytes) = self.protected_write(call);
                    Op::Protected {
                        slot,
                        stamp,
                        offset,
                        bytes,
                        commit: self.rng.chance(80),
                    }
                }
                95..=99 => Op::Sync,
                _ => continue,
            };
            return op;
        }
    }
}

/// The bytes a protected write leaves in the writer's page (`old`, a whole
/// page).
pub fn protected_after(old: &[u8], stamp: u64, offset: usize, bytes: &[u8]) -> Vec<u8> {
    let mut page = old.to_vec();
    let end = page.len();
    page[..8].copy_from_slice(&stamp.to_le_bytes());
    page[end - 8..].copy_from_slice(&stamp.to_le_bytes());
    page[offset..offset + bytes.len()].copy_from_slice(bytes);
    page
}

/// Snapshots a workload holds across its calls, each with what it must go
/// on reading: the state it was taken in and the bytes of its regular pages.
pub struct Held<const N: usize> {
    snapshots: Vec<HeldSnapshot<N>>,
}

struct HeldSnapshot<const N: usize> {
    snapshot: Snapshot<N>,
    state: State,
    bytes: BTreeMap<u64, Vec<u8>>,
}

impl<const N: usize> Default for Held<N> {
    fn default() -> Self {
        Held {
            snapshots: Vec::new(),
        }
    }
}

impl<const N: usize> Held<N> {
    /// How many snapshots are held.
    pub fn len(&self) -> usize {
        self.snapshots.len()
    }

    fn take(&mut self, pager: &Pager<N>) -> Result<(), MappedPageError> {
        let snapshot = pager.snapshot()?;
        let state = State::observe(pager).map_err(|_| MappedPageError::Unavailable)?;
        let bytes = state
            .regular
            .iter()
            .map(|&page| Ok((page, PageId::<N>(page).get(pager)?.as_bytes().to_vec())))
            .collect::<Result<_, MappedPageError>>()?;
        self.snapshots.push(HeldSnapshot {
            snapshot,
            state,
            bytes,
        });
        Ok(())
    }

    /// Checks that every snapshot held still reads exactly what it read
    /// when it was taken (contract R2, R3): its pages, their bytes, its
    /// protected pages.
    pub fn verify(&self) -> Result<(), String> {
        for (i, held) in self.snapshots.iter().enumerate() {
            let snap = &held.snapshot;
            let regular: BTreeSet<u64> = snap.iter_allocated_pages().map(|id| id.0).collect();
            if regular != held.state.regular {
                return Err(format!(
                    "snapshot {i} lists other pages than it was taken with"
                ));
            }
            for (&page, bytes) in &held.bytes {
                let now = snap
                    .get(PageId::<N>(page))
                    .map_err(|e| format!("snapshot {i}: page {page} unreadable: {e}"))?;
                if now.as_bytes() != &bytes[..] {
                    return Err(format!("snapshot {i}: page {page} changed under it"));
                }
            }
            for (&slot, bytes) in &held.state.protected {
                let now = snap
                    .get_protected(ProtectedPageId::<N>(slot))
                    .map_err(|e| format!("snapshot {i}: protected {slot} unreadable: {e}"))?;
                if now.as_bytes() != &bytes[..] {
                    return Err(format!("snapshot {i}: protected {slot} changed under it"));
                }
            }
        }
        Ok(())
    }
}

/// Performs `op` on `pager`; snapshots are taken and dropped in `held`, and
/// every snapshot still held is verified after the call.
pub fn apply_holding<const N: usize>(
    pager: &mut Pager<N>,
    held: &mut Held<N>,
    op: &Op,
) -> Result<Outcome, MappedPageError> {
    let outcome = match op {
        Op::TakeSnapshot => {
            held.take(pager)?;
            Outcome::Done
        }
        Op::DropSnapshot(i) => {
            if *i < held.snapshots.len() {
                held.snapshots.remove(*i);
            }
            Outcome::Done
        }
        op => apply(pager, op)?,
    };
    if let Err(problem) = held.verify() {
        panic!("after {}: {problem}", describe(op));
    }
    Ok(outcome)
}

/// Performs `op` on `pager`. A snapshot taken here is dropped at once: a
/// caller that holds them uses [`apply_holding`].
pub fn apply<const N: usize>(pager: &mut Pager<N>, op: &Op) -> Result<Outcome, MappedPageError> {
    Ok(match op {
        Op::Alloc => Outcome::Pages(vec![pager.alloc()?.0]),
        Op::AllocBulk(n) => Outcome::Pages(pager.alloc_bulk(*n)?.iter().map(|p| p.0).collect()),
        Op::Free(page) => {
            pager.free(PageId(*page))?;
            Outcome::Done
        }
        Op::FreeBulk(pages) => {
            pager.free_bulk(pages.iter().map(|&p| PageId(p)).collect())?;
            Outcome::Done
        }
        Op::Write { page, value } => {
            PageId::<N>(*page)
                .get_mut(pager)?
                .as_bytes_mut()
                .fill(*value);
            Outcome::Done
        }
        Op::AllocProtected => Outcome::Slots(vec![pager.alloc_protected()?.0]),
        Op::AllocProtectedBulk(n) => Outcome::Slots(
            pager
                .alloc_protected_bulk(*n)?
                .iter()
                .map(|p| p.0)
                .collect(),
        ),
        Op::FreeProtected(slot) => {
            pager.free_protected(ProtectedPageId(*slot))?;
            Outcome::Done
        }
        Op::FreeProtectedBulk(slots) => {
            pager.free_protected_bulk(slots.iter().map(|&s| ProtectedPageId(s)).collect())?;
            Outcome::Done
        }
        Op::Protected {
            slot,
            stamp,
            offset,
            bytes,
            commit,
        } => {
            let mut writer = ProtectedPageId::<N>(*slot).get_mut(pager)?;
            let page = writer.page_mut().as_bytes_mut();
            let after = protected_after(page, *stamp, *offset, bytes);
            page.copy_from_slice(&after);
            if *commit {
                writer.commit()?;
            }
            Outcome::Done
        }
        Op::Sync => {
            pager.sync()?;
            Outcome::Done
        }
        Op::Txn(txn) => apply_txn(pager, txn)?,
        Op::Shrink => {
            let (before, given_back) = (pager.page_count(), pager.shrink()?);
            assert_eq!(pager.page_count(), before - given_back, "shrink's count");
            Outcome::Done
        }
        Op::TakeSnapshot => {
            drop(pager.snapshot()?);
            Outcome::Done
        }
        Op::DropSnapshot(_) => Outcome::Done,
    })
}

/// `op` for a violation message, without the bytes of a protected write and
/// with a transaction's steps in short.
pub fn describe(op: &Op) -> String {
    match op {
        Op::Protected {
            slot,
            stamp,
            offset,
            bytes,
            commit,
        } => format!(
            "Protected {{ slot: {slot}, stamp: {stamp}, {} bytes at {offset}, commit: {commit} }}",
            bytes.len()
        ),
        Op::Txn(txn) => {
            let steps: Vec<String> = txn
                .steps
                .iter()
                .map(|step| match step {
                    Step::Alloc(n) => format!("alloc {n}"),
                    Step::Write { pages, together } => format!(
                        "write {}{}",
                        pages.len(),
                        if *together { " together" } else { "" }
                    ),
                    Step::Free(pages) => format!("free {pages:?}"),
                    Step::FreeFresh(fresh) => format!("free fresh {fresh:?}"),
                    Step::AllocProtected => "alloc protected".to_string(),
                    Step::FreeProtected(slot) => format!("free protected {slot:?}"),
                    Step::WriteProtected { slot, stamp, .. } => {
                        format!("write protected {slot:?} stamp {stamp}")
                    }
                    Step::Relocate(pages) => format!("relocate {pages:?}"),
                })
                .collect();
            let end = if txn.commit { "commit" } else { "drop" };
            format!("Txn [{}], {end}", steps.join(", "))
        }
        op => format!("{op:?}"),
    }
}

/// Runs a transaction's steps; an error drops it (a rollback).
fn apply_txn<const N: usize>(pager: &mut Pager<N>, t: &Txn) -> Result<Outcome, MappedPageError> {
    let mut txn = pager.transaction()?;
    let (mut pages, mut slots, mut moved) = (Vec::new(), Vec::new(), Vec::new());
    for step in &t.steps {
        if let Step::Relocate(committed) = step {
            for &page in committed {
                moved.push(txn.relocate(PageId(page))?.map(|id| id.0));
            }
            continue;
        }
        apply_step(&mut txn, step, &mut pages, &mut slots)?;
    }
    if t.commit {
        txn.commit()?;
    } else {
        txn.rollback();
    }
    Ok(Outcome::Txn {
        pages,
        slots,
        moved,
    })
}

fn apply_step<const N: usize>(
    txn: &mut Transaction<'_, N>,
    step: &Step,
    pages: &mut Vec<u64>,
    slots: &mut Vec<u64>,
) -> Result<(), MappedPageError> {
    let slot_id = |slot: SlotRef, slots: &[u64]| ProtectedPageId::<N>(resolve(slot, slots));
    match step {
        Step::Alloc(1) => pages.push(txn.alloc()?.0),
        Step::Alloc(n) => pages.extend(txn.alloc_bulk(*n)?.iter().map(|p| p.0)),
        Step::Write {
            pages: written,
            together: false,
        } => {
            for &(i, value) in written {
                txn.get_mut(PageId(pages[i]))?.as_bytes_mut().fill(value);
            }
        }
        Step::Write {
            pages: written,
            together: true,
        } => {
            // Every page lent out before any is written.
            let set = txn.pages();
            let lent = written
                .iter()
                .map(|&(i, value)| Ok((set.get_mut(PageId(pages[i]))?, value)))
                .collect::<Result<Vec<_>, MappedPageError>>()?;
            for (page, value) in lent {
                page.as_bytes_mut().fill(value);
            }
        }
        Step::Free(freed) if freed.len() == 1 => txn.free(PageId(freed[0]))?,
        Step::Free(freed) => txn.free_bulk(freed.iter().map(|&p| PageId(p)))?,
        Step::FreeFresh(freed) => txn.free_bulk(freed.iter().map(|&i| PageId(pages[i])))?,
        Step::AllocProtected => slots.push(txn.alloc_protected()?.0),
        Step::FreeProtected(slot) => txn.free_protected(slot_id(*slot, slots))?,
        Step::WriteProtected {
            slot,
            stamp,
            offset,
            bytes,
        } => {
            let page = txn.write_protected(slot_id(*slot, slots))?.as_bytes_mut();
            let after = protected_after(page, *stamp, *offset, bytes);
            page.copy_from_slice(&after);
        }
        Step::Relocate(_) => unreachable!("relocations are applied by apply_txn"),
    }
    Ok(())
}

/// The state after `op` returned `outcome` in `state`, for `page_size`-byte
/// pages.
pub fn next_state(state: &State, op: &Op, outcome: &Outcome, page_size: usize) -> State {
    let mut next = state.clone();
    match (op, outcome) {
        (Op::Alloc | Op::AllocBulk(_), Outcome::Pages(pages)) => next.regular.extend(pages),
        (Op::Free(page), _) => {
            next.regular.remove(page);
        }
        (Op::FreeBulk(pages), _) => {
            for page in pages {
                next.regular.remove(page);
            }
        }
        (Op::AllocProtected | Op::AllocProtectedBulk(_), Outcome::Slots(slots)) => {
            for &slot in slots {
                next.protected.insert(slot, Arc::new(vec![0; page_size]));
            }
        }
        (Op::FreeProtected(slot), _) => {
            next.protected.remove(slot);
        }
        (Op::FreeProtectedBulk(slots), _) => {
            for slot in slots {
                next.protected.remove(slot);
            }
        }
        (
            Op::Protected {
                slot,
                stamp,
                offset,
                bytes,
                commit: true,
            },
            _,
        ) => {
            let old = next.protected.get(slot).unwrap();
            let new = protected_after(old, *stamp, *offset, bytes);
            next.protected.insert(*slot, Arc::new(new));
        }
        (
            Op::Txn(txn),
            Outcome::Txn {
                pages,
                slots,
                moved,
            },
        ) if txn.commit => {
            let mut pages = pages.iter();
            let mut moved = moved.iter();
            let (mut fresh, mut fresh_slots) = (Vec::new(), slots.iter());
            let mut slots = Vec::new();
            for step in &txn.steps {
                match step {
                    Step::Alloc(n) => {
                        let taken: Vec<u64> = pages.by_ref().take(*n).copied().collect();
                        next.regular.extend(&taken);
                        fresh.extend(taken);
                    }
                    Step::Write { .. } => {}
                    Step::Free(freed) => {
                        for page in freed {
                            next.regular.remove(page);
                        }
                    }
                    Step::FreeFresh(freed) => {
                        for &i in freed {
                            next.regular.remove(&fresh[i]);
                        }
                    }
                    Step::AllocProtected => {
                        let slot = *fresh_slots.next().unwrap();
                        next.protected.insert(slot, Arc::new(vec![0; page_size]));
                        slots.push(slot);
                    }
                    Step::FreeProtected(slot) => {
                        next.protected.remove(&resolve(*slot, &slots));
                    }
                    Step::WriteProtected {
                        slot,
                        stamp,
                        offset,
                        bytes,
                    } => {
                        let slot = resolve(*slot, &slots);
                        let old = next.protected.get(&slot).unwrap();
                        let new = protected_after(old, *stamp, *offset, bytes);
                        next.protected.insert(slot, Arc::new(new));
                    }
                    Step::Relocate(committed) => {
                        for page in committed {
                            if let Some(&Some(new)) = moved.next() {
                                next.regular.remove(page);
                                next.regular.insert(new);
                            }
                        }
                    }
                }
            }
        }
        _ => {}
    }
    next
}

/// The slot a step names, given the slots its transaction allocated.
fn resolve(slot: SlotRef, fresh: &[u64]) -> u64 {
    match slot {
        SlotRef::Committed(s) => s,
        SlotRef::Fresh(i) => fresh[i],
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

/// Runs `calls` calls of `workload` on `pager`, recording them in `history`.
/// Every call must succeed.
pub fn run_calls<const N: usize>(
    pager: &mut Pager<N>,
    workload: &mut Workload,
    history: &mut History,
    calls: u64,
) {
    let mut held = Held::default();
    for _ in 0..calls {
        let call = history.last() + 1;
        let op = workload.next_op(history.states.last().unwrap(), call);
        let outcome = apply_holding(pager, &mut held, &op)
            .unwrap_or_else(|e| panic!("call {call} {op:?}: {e}"));
        history.push(&op, &outcome);
    }
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
