//! The systems under test, one `Engine` each: this crate, its 0.2 release,
//! redb, LMDB (heed), SQLite, and the raw disk (`pwrite`, and `memmap2`
//! for reads). A workload asks each engine for what it measures; an engine
//! that does not take part in a workload keeps the trait's default, which
//! says so. Adding an engine: one file here and one line in `ENGINES`.
//! Adding a workload: one method here, implemented by the engines it
//! compares.

mod lmdb;
mod ours;
mod raw;
mod redb;
mod seed;
mod sqlite;

use std::path::{Path, PathBuf};
use std::rc::Rc;

use mappedpages::{PageId, Pager};

use crate::support::PAGE;
use crate::workloads::group::GroupStore;
use crate::workloads::kv::KvStore;
use crate::workloads::r6::R6Store;
use crate::workloads::rp::R6Follower;
use crate::workloads::w8::Churn;
use crate::{Op, R};

pub use self::lmdb::Lmdb;
pub use self::ours::Mappedpages;
pub use self::raw::{Raw, RawMap};
pub use self::redb::Redb;
pub use self::seed::Seed;
pub use self::sqlite::Sqlite;

pub const RAW: &dyn Engine = &Raw;
pub const RAW_MAP: &dyn Engine = &RawMap;
pub const OURS: &dyn Engine = &Mappedpages::Single;
pub const OURS_TXN: &dyn Engine = &Mappedpages::Txn;
pub const OURS_DEFERRED: &dyn Engine = &Mappedpages::DeferredThenSync;
pub const OURS_SYNC128: &dyn Engine = &Mappedpages::SyncEvery128;
pub const SEED: &dyn Engine = &Seed;
pub const REDB: &dyn Engine = &Redb;
pub const LMDB: &dyn Engine = &Lmdb;
pub const SQLITE: &dyn Engine = &Sqlite;

/// Every engine, for a child process to find the one its arguments name.
const ENGINES: &[&dyn Engine] = &[
    RAW,
    RAW_MAP,
    OURS,
    OURS_TXN,
    OURS_DEFERRED,
    OURS_SYNC128,
    SEED,
    REDB,
    LMDB,
    SQLITE,
];

pub fn engine(id: &str) -> R<&'static dyn Engine> {
    ENGINES
        .iter()
        .copied()
        .find(|e| e.id() == id)
        .ok_or_else(|| format!("no system {id}").into())
}

/// What a single-operation workload (W1-W3, W7, T3, T4) times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// W1, and W7's first without sync: allocate one page.
    Alloc { sync: bool },
    /// W2, W7's second and T4: write 4 KiB of new data.
    Write { sync: bool },
    /// W3, W7's third: overwrite a protected page (or one value) and commit.
    Overwrite { sync: bool },
    /// T3: one durable transaction writing `k` values of one page and
    /// removing the `k` the transaction before wrote.
    Txn { k: usize },
}

impl Work {
    pub fn sync(self) -> bool {
        match self {
            Work::Alloc { sync } | Work::Write { sync } | Work::Overwrite { sync } => sync,
            Work::Txn { .. } => true,
        }
    }
}

/// W5's data: a file of this crate's pages, each starting with its id,
/// which the raw map reads too, and the random order of the reads.
pub struct ReadData {
    pub pager: Rc<Pager<PAGE>>,
    pub path: PathBuf,
    /// The pages, in the order of their keys (0..n).
    pub ids: Vec<PageId<PAGE>>,
    /// The keys to read, in the order to read them.
    pub order: Rc<Vec<u64>>,
}

/// One system under test. Every method but `id` and `label` is a workload;
/// its default is "not in this workload".
pub trait Engine {
    /// Its name on a child process's command line.
    fn id(&self) -> &'static str;

    /// Its row in a single-operation workload.
    fn label(&self, work: Work) -> String;

    /// Its plain name, for the rows of W4 and W6.
    fn name(&self) -> &'static str {
        self.id()
    }

    /// The timed operation of `work`, set up in `dir` for up to `cap`
    /// operations: it takes the operation's number and returns its time in
    /// nanoseconds.
    fn op(&self, work: Work, dir: &Path, cap: usize) -> R<Op> {
        let _ = (dir, cap);
        Err(format!("no system {} in {work:?}", self.id()).into())
    }

    /// W5: a pass of reads of `data.order` (the first 8 bytes of each value),
    /// set up in `dir`: its row label, and the pass, timed in nanoseconds
    /// per read.
    fn reads(&self, dir: &Path, data: &ReadData) -> R<(String, Op)> {
        let _ = (dir, data);
        Err(format!("no system {} in W5", self.id()).into())
    }

    /// W4, in a child process: `alloc_bulk(count)` on a new file of 4 KiB
    /// pages at `path`: its time in nanoseconds and the pages it returned.
    fn bulk(&self, path: &Path, count: usize) -> R<(f64, usize)> {
        let _ = (path, count);
        Err(format!("no system {} in W4", self.id()).into())
    }

    /// W6: a file of `count` allocated 1 KiB pages at `path`.
    fn build_small_pages(&self, path: &Path, count: u64) -> R<()> {
        let _ = (path, count);
        Err(format!("no system {} in W6", self.id()).into())
    }

    /// W6: one open of that file, timed in nanoseconds (the pager dropped
    /// after the timing).
    fn open_small_pages(&self, path: &Path) -> R<f64> {
        let _ = path;
        Err(format!("no system {} in W6", self.id()).into())
    }

    /// R6: a store of `R6_PAGES` values that a writer thread and reader
    /// threads share, set up in `dir`.
    fn r6(&self, dir: &Path) -> R<Box<dyn R6Store>> {
        let _ = dir;
        Err(format!("no system {} in R6", self.id()).into())
    }

    /// RP: R6's store, made so that readers in other processes can follow
    /// its writer, in the new directory `dir`.
    fn r6_followed(&self, dir: &Path) -> R<Box<dyn R6Store>> {
        let _ = dir;
        Err(format!("no system {} in RP", self.id()).into())
    }

    /// RP, in a reader process: a reader of the store `r6_followed` made in
    /// `dir`, while its writer goes on.
    fn r6_follower(&self, dir: &Path) -> R<Box<dyn R6Follower>> {
        let _ = dir;
        Err(format!("no system {} in RP", self.id()).into())
    }

    /// W8: the churn, in the new directory `dir`: its row label and the
    /// files whose size is the figure.
    fn churn(&self, dir: &Path, churn: &Churn) -> R<(String, PathBuf)> {
        let _ = (dir, churn);
        Err(format!("no system {} in W8", self.id()).into())
    }

    /// G: the stores that threads commit on, set up in the new directory
    /// `dir`; one per way the engine commits (this crate: two,
    /// `write_and_sync` first, then `Immediate` through `write()`).
    fn group(&self, dir: &Path) -> R<Vec<Box<dyn GroupStore>>> {
        let _ = dir;
        Err(format!("no system {} in G", self.id()).into())
    }

    /// KV: a new key-value store in the new directory `dir`.
    fn kv(&self, dir: &Path) -> R<Box<dyn KvStore>> {
        let _ = dir;
        Err(format!("no system {} in KV", self.id()).into())
    }
}
