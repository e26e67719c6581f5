//! The seeded generator of ops the crash tests run: each op valid for the
//! state it is drawn in (so it returns `Ok` unless I/O fails), naming pages
//! by id, writing regular pages with one byte value each (what a crash
//! check can hold a torn page to) and protected pages with stamps.

use std::collections::BTreeSet;

use super::model::State;
use super::ops::{BulkFlaw, End, Op, Patch, Slot, Step, Target};

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

/// How many page checks and log records fit in a root of `page_size`-byte
/// pages (`FORMAT.md`): a transaction writing more pages needs check pages.
pub fn root_capacity(page_size: usize) -> usize {
    (page_size.min(4096) - 132) / 24
}

/// Fresh pages a transaction's steps write.
pub fn pages_written(steps: &[Step]) -> usize {
    steps
        .iter()
        .map(|step| match step {
            Step::Write(..) => 1,
            Step::AllocWrite(n, _) => *n,
            Step::Pages(written, ..) => written.len(),
            _ => 0,
        })
        .sum()
}

/// About the most sub-pages a workload keeps live.
pub const MAX_SUB_PAGES: usize = 96;

/// The most snapshots a workload holds at once.
pub const MAX_HELD_SNAPSHOTS: usize = 2;

/// Generates the ops of a workload from a seed and the current state.
#[derive(Clone, Debug)]
pub struct Workload {
    pub rng: Rng,
    next_value: u8,
    pub max_regular: usize,
    pub max_protected: usize,
    /// Page size of the file the protected writes go to.
    pub page_size: usize,
    /// Percentage of ops that are transactions.
    pub txn_percent: u64,
    /// Percentage of the transactions that write more pages than a root
    /// can check ([`root_capacity`]), so their checks go to check pages.
    pub big_txn_percent: u64,
    /// Percentage of ops that start a shrink: most free the highest
    /// regular pages first (one op) so that the tail it cuts is long.
    pub shrink_percent: u64,
    /// The last op freed the highest pages: the next one shrinks.
    shrink_next: bool,
    /// Percentage of ops that take a snapshot (at most
    /// [`MAX_HELD_SNAPSHOTS`] are held; each later op drops the oldest
    /// with a chance of one in eight).
    pub snapshot_percent: u64,
    /// Percentage of the transactions that relocate their highest
    /// committed pages.
    pub relocate_percent: u64,
    /// Percentage of ops that copy the file (`Snapshot::copy_to`), from
    /// a snapshot held when there is one, half the time.
    pub copy_percent: u64,
    /// Percentage of the transactions that allocate, rewrite and free
    /// sub-pages too.
    pub sub_page_percent: u64,
    /// The regular pages of each snapshot held, oldest first: they may not
    /// be written in place while it lives.
    held: Vec<BTreeSet<u64>>,
}

impl Workload {
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
            copy_percent: 0,
            sub_page_percent: 0,
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

    /// A protected write's stamp for a page of the workload's size.
    fn stamp(&mut self, call: u64) -> Patch {
        let ps = self.page_size;
        let offset = 8 + self.rng.index(ps - 16);
        // Short writes: a protected write copies its whole page anyway, and
        // big pages would make long ones slow.
        let len = 1 + self.rng.index((ps - 8 - offset).min(1024));
        let bytes = (0..len).map(|_| self.rng.next_u64() as u8).collect();
        Patch::Stamp {
            stamp: call << 8 | self.rng.below(256),
            offset,
            bytes,
        }
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
        let free_step = |pages: Vec<u64>| match pages[..] {
            [page] => Step::Free(Target::Id(page)),
            _ => Step::FreeBulk(pages.into_iter().map(Target::Id).collect(), BulkFlaw::None),
        };
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
                    steps.push(free_step(chunk));
                }
            }
            let n = if part + 1 == parts {
                k - allocated
            } else {
                self.rng.index(k - allocated + 1)
            };
            if n > 0 {
                steps.push(if n == 1 {
                    Step::Alloc
                } else {
                    Step::AllocBulk(n)
                });
                let mut written = Vec::with_capacity(n);
                for i in allocated..allocated + n {
                    if big || self.rng.chance(85) {
                        written.push((Target::Fresh(i), Patch::Fill(self.value())));
                    }
                }
                if !written.is_empty() {
                    // Every page lent out of one set before any is written,
                    // or one `get_mut` each.
                    if self.rng.chance(50) {
                        steps.push(Step::Pages(written, Vec::new(), false));
                    } else {
                        steps.extend(written.into_iter().map(|(t, p)| Step::Write(t, p)));
                    }
                }
                allocated += n;
            }
        }
        steps.extend(chunks.into_iter().map(free_step));
        if !big && self.rng.chance(15) {
            let fresh = Target::Fresh(self.rng.index(allocated));
            steps.push(Step::FreeBulk(vec![fresh], BulkFlaw::None));
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
            steps.push(Step::Relocate(
                top.into_iter().rev().map(Target::Id).collect(),
            ));
        }
        // Only workloads that use sub-pages draw for them (as for relocation).
        if self.sub_page_percent > 0 && self.rng.chance(self.sub_page_percent) {
            self.sub_page_steps(state, call, &mut steps);
        }
        // Protected pages: the committed ones still usable, the fresh ones.
        let mut slots: Vec<Slot> = state.protected.keys().map(|&s| Slot::Id(s)).collect();
        let mut fresh_slots = 0;
        for _ in 0..self.rng.index(5) {
            match self.rng.below(100) {
                0..=24 if slots.len() < self.max_protected => {
                    steps.push(Step::AllocProtected);
                    slots.push(Slot::Fresh(fresh_slots));
                    fresh_slots += 1;
                }
                25..=34 if !slots.is_empty() => {
                    let slot = slots.swap_remove(self.rng.index(slots.len()));
                    steps.push(Step::FreeProtected(slot));
                }
                35..=99 if !slots.is_empty() => {
                    let slot = slots[self.rng.index(slots.len())];
                    let stamp = self.stamp(call);
                    steps.push(Step::WriteProtected(slot, stamp));
                }
                _ => {}
            }
        }
        let end = if self.rng.chance(85) {
            End::Commit
        } else {
            End::Rollback
        };
        Op::Txn(steps, end)
    }

    /// Sub-page steps of a transaction: allocations of every size, rewrites
    /// and frees, keeping about [`MAX_SUB_PAGES`] live.
    fn sub_page_steps(&mut self, state: &State, call: u64, steps: &mut Vec<Step>) {
        let live = state.sub_pages.len();
        for _ in 0..1 + self.rng.index(4) {
            let seed = call << 16 | self.rng.below(1 << 16);
            match self.rng.below(100) {
                0..=44 if live < MAX_SUB_PAGES => {
                    let count = 1 + self.rng.index(12);
                    steps.push(Step::SubAlloc(self.rng.index(3), count, seed));
                }
                45..=69 => steps.push(Step::SubRewrite(self.rng.index(1 << 16), seed)),
                _ => steps.push(Step::SubFree(self.rng.index(1 << 16))),
            }
        }
    }

    /// A shrink, or the free of the highest regular pages that comes
    /// before one.
    fn next_shrink(&mut self, state: &State) -> Op {
        if state.regular.is_empty() || self.rng.chance(20) {
            return Op::Shrink(false);
        }
        self.shrink_next = true;
        let n = 1 + self.rng.index(state.regular.len().div_ceil(2));
        let top: Vec<u64> = state.regular.iter().rev().take(n).copied().collect();
        match top[..] {
            [page] => Op::Free(Target::Id(page)),
            _ => Op::FreeBulk(top.into_iter().map(Target::Id).collect(), BulkFlaw::None),
        }
    }

    /// The next op, valid for `state`, the state after call `call - 1`.
    pub fn next_op(&mut self, state: &State, call: u64) -> Op {
        if std::mem::take(&mut self.shrink_next) {
            return Op::Shrink(false);
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
        // Only workloads that copy draw for it (see `relocate_percent`).
        if self.copy_percent > 0 && self.rng.chance(self.copy_percent) {
            let from = (!self.held.is_empty() && self.rng.chance(50))
                .then(|| self.rng.index(self.held.len()));
            return Op::Copy(from);
        }
        if self.shrink_percent > 0 && self.rng.chance(self.shrink_percent) {
            return self.next_shrink(state);
        }
        if self.txn_percent > 0 && self.rng.chance(self.txn_percent) {
            return self.next_txn(state, call);
        }
        let regular = &state.regular;
        let protected = &state.protected;
        let slots: BTreeSet<u64> = protected.keys().copied().collect();
        let full = regular.len() >= self.max_regular;
        let pfull = protected.len() >= self.max_protected;
        loop {
            let roll = self.rng.below(100);
            let op = match roll {
                0..=11 if !full => Op::Alloc,
                12..=17 if !full => Op::AllocBulk(1 + self.rng.index(8)),
                18..=29 if !regular.is_empty() => Op::Free(Target::Id(self.pick(regular))),
                30..=35 if !regular.is_empty() => Op::FreeBulk(
                    self.pick_many(regular, 6)
                        .into_iter()
                        .map(Target::Id)
                        .collect(),
                    BulkFlaw::None,
                ),
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
                    let page = self.pick(&writable);
                    Op::Write(Target::Id(page), Patch::Fill(self.value()))
                }
                56..=60 if !pfull => Op::AllocProtected,
                61..=63 if !pfull => Op::AllocProtectedBulk(1 + self.rng.index(3)),
                64..=67 if !protected.is_empty() => Op::FreeProtected(Slot::Id(self.pick(&slots))),
                68..=69 if !protected.is_empty() => Op::FreeProtectedBulk(
                    self.pick_many(&slots, 3)
                        .into_iter()
                        .map(Slot::Id)
                        .collect(),
                    BulkFlaw::None,
                ),
                70..=94 if !protected.is_empty() => {
                    let slot = self.pick(&slots);
                    let stamp = self.stamp(call);
                    Op::ProtectedWrite(Slot::Id(slot), stamp, self.rng.chance(80))
                }
                95..=99 => Op::Sync,
                _ => continue,
            };
            return op;
        }
    }
}
