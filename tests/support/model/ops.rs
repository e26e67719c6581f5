//! The one vocabulary of pager operations. The property test draws it from
//! proptest strategies, the crash tests from a seeded workload; both run it
//! through the same driver against the same model, so an operation added
//! here is crash-tested as soon as the workload draws it.
//!
//! Ops name pages by [`Target`] and slots by [`Slot`], resolved against the
//! model when the op runs: a generator that does not know the state (a
//! proptest strategy) names them by index, one that does (the workload) by
//! id. A target that resolves to nothing makes the op a no-op.

/// A regular page an op names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The `i`th (modulo their number) allocated page, ascending.
    Live(usize),
    /// The `i`th highest allocated page (none if there are not that many).
    Top(usize),
    /// Inside a transaction: the `i`th (modulo their number) of the pages it
    /// allocated and still holds, in the order it got them.
    Fresh(usize),
    /// The page with this id.
    Id(u64),
}

/// A protected page an op names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// The `i`th (modulo their number) slot in use, ascending.
    Live(usize),
    /// Inside a transaction: the `i`th slot it allocated.
    Fresh(usize),
    /// The slot with this id.
    Id(u64),
}

/// An id that is wrong for `free`/`get`, and how it is wrong.
#[derive(Clone, Copy, Debug)]
pub enum BadId {
    /// Pages 0 to 2: `ReservedPage`.
    Reserved(u64),
    /// `page_count() + k`: `OutOfBounds`.
    PastEnd(u64),
    /// `u64::MAX`: `OutOfBounds`.
    Huge,
    /// An id freed earlier (picked by index): free or internal now.
    Stale(usize),
}

/// How a bulk free's list is spoiled.
#[derive(Clone, Copy, Debug)]
pub enum BulkFlaw {
    None,
    /// The id at this index of the chosen ids is named twice.
    Duplicate(usize),
    /// One bad id is added.
    Bad(BadId),
}

/// What a write puts into a page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Patch {
    /// Seeded bytes over a range given as fractions of the page, so that one
    /// patch fits every page size.
    Span { start: u16, len: u16, seed: u64 },
    /// Every byte one value: a crash image can then tell, byte by byte,
    /// which write a torn page holds.
    Fill(u8),
    /// A stamp in the first and last 8 bytes (so that a torn write of a
    /// big page shows at both ends) and `bytes` at `offset`.
    Stamp {
        stamp: u64,
        offset: usize,
        bytes: Vec<u8>,
    },
}

impl Patch {
    /// Writes the patch into `page`; `mix`, when given, is XORed into the
    /// bytes it writes (a page written from another one read beside it).
    pub fn apply(&self, page: &mut [u8], mix: Option<&[u8]>) {
        let range = self.range(page.len());
        match self {
            Patch::Span { seed, .. } => fill(&mut page[range.clone()], *seed),
            Patch::Fill(value) => page.fill(*value),
            Patch::Stamp {
                stamp,
                offset,
                bytes,
            } => {
                let end = page.len();
                page[..8].copy_from_slice(&stamp.to_le_bytes());
                page[end - 8..].copy_from_slice(&stamp.to_le_bytes());
                page[*offset..offset + bytes.len()].copy_from_slice(bytes);
            }
        }
        if let Some(mix) = mix {
            for (d, s) in page[range.clone()].iter_mut().zip(&mix[range]) {
                *d ^= s;
            }
        }
    }

    /// The bytes a patch covers in a page of `page_size` bytes (never none).
    pub fn range(&self, page_size: usize) -> std::ops::Range<usize> {
        match *self {
            Patch::Span { start, len, .. } => {
                let start = start as usize * page_size / 65536;
                let max_len = page_size - start;
                let len = 1 + len as usize * max_len / 65536;
                start..start + len.min(max_len)
            }
            Patch::Fill(_) | Patch::Stamp { .. } => 0..page_size,
        }
    }

    /// The same patch with its seed moved on by `k` (pages of one bulk call
    /// get different bytes).
    pub fn nth(&self, k: usize) -> Patch {
        match self {
            Patch::Span { start, len, seed } => Patch::Span {
                start: *start,
                len: *len,
                seed: seed.wrapping_add(k as u64),
            },
            other => other.clone(),
        }
    }
}

/// Deterministic bytes from a seed (splitmix64).
pub fn fill(bytes: &mut [u8], mut seed: u64) {
    for chunk in bytes.chunks_mut(8) {
        seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
    }
}

/// One call of the pager, or of the test around it.
#[derive(Clone, Debug)]
pub enum Op {
    Alloc,
    AllocBulk(usize),
    Free(Target),
    /// Free a live page, then free it again at once: `DoubleFree`.
    FreeTwice(Target),
    FreeBad(BadId),
    GetBad(BadId),
    FreeBulk(Vec<Target>, BulkFlaw),
    /// Free a run of the live pages: from a fraction of the list, this many.
    FreeRun(u16, usize),
    /// `alloc_bulk(0)`, `free_bulk([])` and their protected twins do
    /// nothing (no commit, no sync); `alloc_bulk(usize::MAX)` and its
    /// protected twin are `InvalidCount`.
    BadCounts,
    /// A write in place through `get_mut`: `InUseBySnapshot` if a held
    /// snapshot reads the page.
    Write(Target, Patch),
    AllocProtected,
    AllocProtectedBulk(usize),
    /// Free a protected page, then again: `DoubleFree`.
    FreeProtected(Slot),
    FreeProtectedBulk(Vec<Slot>, BulkFlaw),
    /// A protected id not in use: a freed one or one past the directory.
    ProtectedBad(Option<usize>),
    /// A protected write, committed or dropped.
    ProtectedWrite(Slot, Patch, bool),
    Sync,
    /// Drop and open again, optionally in the other durability mode.
    Reopen(bool),
    /// Open a copy of the file taken while the pager is open, as a killed
    /// process leaves it: it must show every commit, in both modes.
    KillCopy,
    /// Steps inside one transaction, then its end.
    Txn(Vec<Step>, End),
    /// `shrink()`, then a reopen if set.
    Shrink(bool),
    /// Take a snapshot and hold it: every snapshot held must go on reading
    /// exactly its state after every later op.
    TakeSnapshot,
    /// Drop the `i`th (modulo their number) snapshot held, oldest first.
    DropSnapshot(usize),
    /// `Snapshot::copy_to` of a new snapshot (`None`) or of the `i`th
    /// (modulo their number) one held: the copy must open to exactly the
    /// state the snapshot was taken in.
    Copy(Option<usize>),
}

/// How a transaction ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Commit,
    Drop,
    Rollback,
}

/// One call inside a transaction.
#[derive(Clone, Debug)]
pub enum Step {
    Alloc,
    AllocBulk(usize),
    /// `alloc_bulk` of this many pages, then the patch written into each:
    /// enough of them overflow the root's list of page checks.
    AllocWrite(usize, Patch),
    /// Free any allocated page, committed or allocated in the transaction.
    Free(Target),
    /// Free a page, then again: `DoubleFree`.
    FreeTwice(Target),
    FreeBulk(Vec<Target>, BulkFlaw),
    FreeBad(BadId),
    GetBad(BadId),
    /// Write a page the transaction allocated (any other target is skipped).
    Write(Target, Patch),
    /// `get_mut` of a page committed before: `CommittedPage`.
    WriteCommitted(usize),
    /// `get_mut` of a page the transaction freed: `NotAllocated`.
    WriteFreed(usize),
    BadCounts,
    AllocProtected,
    /// Free a protected page, then again: `DoubleFree`.
    FreeProtected(Slot),
    WriteProtected(Slot, Patch),
    /// A protected id not in use: freed (perhaps in this transaction) or
    /// past the directory.
    ProtectedBad(Option<usize>),
    /// Several pages lent at once from one `pages()` set: fresh pages
    /// written, each mixed with a page read beside them; with `true`,
    /// lending conflicts and bad ids are tried while they are out.
    Pages(Vec<(Target, Patch)>, Vec<Target>, bool),
    /// A copy of the file taken in the middle of the transaction shows the
    /// state before it.
    KillCopy,
    /// `relocate` of these pages (resolved all at once, before the first
    /// moves), in order.
    Relocate(Vec<Target>),
    /// Allocate sub-pages of the model's size `class % 3` (see
    /// `sub::sizes`), this many, each written with bytes from the seed.
    SubAlloc(usize, usize, u64),
    /// Free the `i`th (modulo their number) live sub-page, committed or
    /// allocated in the transaction.
    SubFree(usize),
    /// Rewrite the `i`th live sub-page copy-on-write: a new one with its
    /// bytes changed (the seed in the first 8), the old one freed.
    SubRewrite(usize, u64),
    /// Bad sub-page calls: the `i`th live sub-page freed twice in one call
    /// (`DoubleFree`) and, if committed, written (`CommittedSubPage`); a
    /// made-up raw id read at every size (an error unless it names a live
    /// sub-page).
    SubBad(usize, u64),
}

/// `op` for a violation message: patches and steps in short.
pub fn describe(op: &Op) -> String {
    fn patch(p: &Patch) -> String {
        match p {
            Patch::Stamp {
                stamp,
                offset,
                bytes,
            } => format!("stamp {stamp}, {} bytes at {offset}", bytes.len()),
            other => format!("{other:?}"),
        }
    }
    match op {
        Op::ProtectedWrite(slot, p, commit) => {
            format!("ProtectedWrite({slot:?}, {}, commit {commit})", patch(p))
        }
        Op::Txn(steps, end) => {
            let steps: Vec<String> = steps
                .iter()
                .map(|step| match step {
                    Step::WriteProtected(slot, p) => {
                        format!("WriteProtected({slot:?}, {})", patch(p))
                    }
                    Step::Pages(w, r, c) => format!("Pages({} written, {r:?}, {c})", w.len()),
                    Step::AllocWrite(n, _) => format!("AllocWrite({n})"),
                    other => format!("{other:?}"),
                })
                .collect();
            format!("Txn [{}], {end:?}", steps.join(", "))
        }
        op => format!("{op:?}"),
    }
}
