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

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mappedpages::{Durability, MappedPageError, PageId, Pager, ProtectedPageId};

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
}

/// What a call returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Pages(Vec<u64>),
    Slots(Vec<u64>),
    Done,
}

/// A write to a regular page: `call` filled `page` with `value`.
#[derive(Clone, Copy, Debug)]
pub struct UserWrite {
    pub call: u64,
    pub page: u64,
    pub value: u8,
}

/// The model: the state after every call and every user write.
#[derive(Clone, Debug)]
pub struct History {
    pub states: Vec<State>,
    pub writes: Vec<UserWrite>,
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
            writes: Vec::new(),
            page_size,
        }
    }

    /// Index of the last completed call.
    pub fn last(&self) -> u64 {
        self.states.len() as u64 - 1
    }

    /// Records the completion of call `last() + 1`.
    pub fn push(&mut self, op: &Op, outcome: &Outcome) {
        let call = self.states.len() as u64;
        let next = next_state(self.states.last().unwrap(), op, outcome, self.page_size);
        if let Op::Write { page, value } = *op {
            self.writes.push(UserWrite { call, page, value });
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
}

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

    /// The next call, valid for `state` (so it returns `Ok` unless I/O fails).
    pub fn next_op(&mut self, state: &State, call: u64) -> Op {
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
                36..=55 if !regular.is_empty() => Op::Write {
                    page: self.pick(regular),
                    value: self.value(),
                },
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
                    let ps = self.page_size;
                    let offset = 8 + self.rng.index(ps - 16);
                    // Short writes: a protected write copies its whole page
                    // anyway, and big pages would make long ones slow.
                    let len = 1 + self.rng.index((ps - 8 - offset).min(PS));
                    let bytes = (0..len).map(|_| self.rng.next_u64() as u8).collect();
                    Op::Protected {
                        slot,
                        stamp: call << 8 | self.rng.below(256),
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

/// Performs `op` on `pager`.
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
    })
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
        _ => {}
    }
    next
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
    let Some(&first) = matching.first() else {
        let lo = &history.states[expect.lo as usize];
        let hi = &history.states[expect.hi as usize];
        return Err(format!(
            "state matches none of calls {}..={} (D1/D2); vs first: {}; vs last: {}",
            expect.lo,
            expect.hi,
            seen.diff(lo),
            seen.diff(hi)
        ));
    };
    if pager.allocated_page_count() != seen.regular.len() as u64 {
        return Err(format!(
            "allocated_page_count {} but the iterator shows {}",
            pager.allocated_page_count(),
            seen.regular.len()
        ));
    }
    check_regular_bytes(&pager, &seen, first, expect)?;
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
/// byte (a torn page mixes them).
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
        let writes = history
            .writes
            .iter()
            .filter(|w| w.page == page && w.call <= expect.hi);
        if writes.clone().next().is_none() {
            continue;
        }
        // The call that allocated the page's incarnation seen in `first`.
        let mut born = first;
        while born > 0 && history.states[born as usize - 1].regular.contains(&page) {
            born -= 1;
        }
        let durable = writes.clone().rfind(|w| w.call > born && w.call < before);
        let Some(durable) = durable else { continue };
        let allowed: BTreeSet<u8> = writes
            .filter(|w| w.call >= durable.call)
            .map(|w| w.value)
            .collect();
        let bytes = PageId::<N>(page)
            .get(pager)
            .map_err(|e| format!("listed page {page} unreadable: {e}"))?
            .as_bytes();
        if let Some(pos) = bytes.iter().position(|b| !allowed.contains(b)) {
            return Err(format!(
                "regular page {page} byte {pos} is {:#x}; written {:#x} by call {} before a completed sync or commit, allowed {allowed:x?} (D3)",
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
    for _ in 0..calls {
        let call = history.last() + 1;
        let op = workload.next_op(history.states.last().unwrap(), call);
        let outcome = apply(pager, &op).unwrap_or_else(|e| panic!("call {call} {op:?}: {e}"));
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
