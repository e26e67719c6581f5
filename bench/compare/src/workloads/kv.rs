//! KV: redb's own key-value benchmark (the `benchmark` function of its
//! `redb-bench` crate, which its `lmdb_benchmark` runs on every engine it
//! compares), followed phase for phase and at its scale, on the B+tree of
//! `mappedpages-btree` built on this crate, redb, LMDB (heed) and SQLite.
//! Written here from its description, not copied.
//!
//! The pairs are redb's: keys of 24 bytes and values of 150, drawn from
//! `fastrand` seeded with 3, the key's bytes then the value's, so that every
//! phase inserts, reads and removes the very keys redb's benchmark does.
//! Its phases, in its order, with its counts (quick mode: about 1/50):
//!
//! 1. bulk load: 5 000 000 pairs in one transaction;
//! 2. individual writes: 1 000 durable transactions of one pair;
//! 3. batch writes: 100 durable transactions of 1 000 pairs;
//! 4. no-sync writes: 50 000 transactions of one pair, not synced (redb:
//!    `Durability::None`; LMDB: `NO_SYNC`; SQLite: `synchronous=OFF`; this
//!    crate: the store reopened `Durability::Deferred`, see below);
//! 5. `len()` in a new read transaction, which must be every pair so far;
//! 6. random reads: the first 1 000 000 keys of the load, in one read
//!    transaction, three passes, the median;
//! 7. range reads: 500 000 ranges of 10 pairs from those keys, the same
//!    read transaction, three passes, the median;
//! 8. random reads of every key written so far on 4, 8, 16 and 32 threads,
//!    each its own connection and read transaction and its share of the
//!    keys, started together;
//! 9. removals of the first half of the keys written, in ONE transaction;
//! 10. retain: one transaction keeping every other pair in key order;
//!     then as many new pairs, untimed;
//! 11. extract_if over keys from `[0x55; 24]` to `[0xAA; 24]` (about a
//!     third), taking every other one; then as many new pairs, untimed;
//! 12. pop: 500 000 removals alternating `pop_first` and `pop_last` in one
//!     transaction; then as many new pairs, untimed;
//! 13. the size of the store's files (their length, as redb's `walkdir`
//!     sum gives it), compaction, and the size after;
//! 14. sorted inserts: 1 000 000 pairs whose keys (`[0xFF; 24]` and a
//!     big-endian counter, 32 bytes) ascend past every key held, in one
//!     transaction, by the fastest way the engine has; reported among the
//!     write phases, as redb reports it.
//!
//! Each engine is configured as redb's harness configures it: redb with a
//! 4 GiB cache, its default `Durability::Immediate` and its own
//! `compact()`; LMDB with a 4 GiB map and default flags (a sync at every
//! commit), `NO_SYNC` for phase 4, `APPEND` puts for phase 14, cursor
//! deletes (`del_current`) for pop, retain and extract_if, and compaction by
//! `copy_to_file` with compaction into a new file that replaces its data
//! file; SQLite with its defaults (rollback journal, `synchronous=FULL`,
//! its default page cache), one table `kv (key BLOB PRIMARY KEY, value
//! BLOB)`, `INSERT OR REPLACE`, pop as the first (last) row by key then a
//! delete by rowid, retain and extract_if as a scan by key and deletes of
//! the rows picked, `VACUUM` to compact; this crate with
//! `Durability::Immediate` and a 4 GiB bound on the pages a transaction
//! holds in memory (`DbOptions::transaction_memory`, the memory redb's
//! harness gives redb's cache; the default, 256 MiB, made the 5 M-pair
//! load write out and copy back pages it changes again), its
//! `pop_first`/`pop_last`, `retain`, `extract_if`, `len` and `compact`. For phase 4 this crate's store is
//! dropped and reopened with `Durability::Deferred`, the 50 000 commits
//! timed, then `Db::sync` and a reopen with `Durability::Immediate`,
//! untimed, as the other engines switch their sync off and on outside
//! the timing (and pay for the writes they deferred in their next durable
//! commit).
//!
//! Where it differs from redb's harness, and why:
//! - The engines run one phase after another, in a new random order every
//!   phase, each on its own store, all open side by side, where redb's
//!   harness runs each engine's whole benchmark one after another: so
//!   drift on a busy, shared machine does not fall on one engine's whole
//!   run. Every engine still sees redb's phases in redb's order with its
//!   counts and pairs.
//! - The figure is the time per operation (the phase's time over its
//!   pairs, commits or ranges), as the rest of this table; the note gives
//!   the rate redb reports (keys/s, txn/s, scan/s).
//! - RocksDB and fjall, in redb's harness, are not here: this comparison
//!   builds no C++ and keeps to the engines it already compares.
//! - redb is the 2.x release the other workloads use, not redb's newest:
//!   it has no appending cursor, so its sorted inserts are plain inserts
//!   (redb's newest uses one); this crate's B+tree takes plain inserts too
//!   (a key past the last fills the right-edge leaf and starts a new one,
//!   without a separate call); LMDB appends.
//! - SQLite's statements are prepared once per connection (`prepare_cached`),
//!   where redb's adapter prepares its inserts and removals at every call.
//! - redb's harness estimates the pop phase from its first 5 000 pops when
//!   they take over a second; every engine here is fast enough to do all
//!   500 000.
//! - Compaction's time is a row here; redb's harness prints it but puts
//!   only the compacted size in its table.
//! - The file sizes are measured per engine directory (LMDB: data.mdb and
//!   lock.mdb, as redb's sum over its directory).

use std::path::Path;
use std::sync::Barrier;
use std::time::Instant;

use crate::engines::{Engine, LMDB, OURS, REDB, SQLITE};
use crate::report::{Row, Value};
use crate::support::file_bytes;
use crate::support::stats::{fmt_ns, median, ns, Rng};
use crate::{Op, R};

/// The workload a child process runs to count the syncs of individual
/// writes.
pub const SYNC_WORKLOAD: &str = "kv-writes";

pub const KEY: usize = 24;
pub const VALUE: usize = 150;
/// A sorted insert's key: past every random key (`[0xFF; KEY]`), then a
/// big-endian counter.
pub const SORTED_KEY: usize = KEY + 8;
/// redb's seed.
const SEED: u64 = 3;
/// The reader threads of phase 8.
const THREADS: [usize; 4] = [4, 8, 16, 32];
/// Passes of the read and range phases, of which the median counts.
const PASSES: usize = 3;
/// The range extract_if walks: a first byte from 0x55 up to 0xAA, a third
/// of uniformly random keys.
const EXTRACT_FROM: [u8; KEY] = [0x55; KEY];
const EXTRACT_TO: [u8; KEY] = [0xAA; KEY];

/// The engines compared, this crate first: the ratios are to its rows.
const ENGINES: [&dyn Engine; 4] = [OURS, REDB, LMDB, SQLITE];

/// Phase sizes: redb's, or about 1/50 of them for a quick check.
struct Counts {
    bulk: usize,
    individual: usize,
    batches: usize,
    batch: usize,
    nosync: usize,
    reads: usize,
    scans: usize,
    scan_len: usize,
    pops: usize,
    sorted: usize,
}

impl Counts {
    fn new(quick: bool) -> Counts {
        let scale = |n: usize| if quick { n / 50 } else { n };
        Counts {
            bulk: scale(5_000_000),
            // Enough commits for a median even in quick mode.
            individual: if quick { 100 } else { 1_000 },
            batches: if quick { 10 } else { 100 },
            batch: 1_000,
            nosync: scale(50_000),
            reads: scale(1_000_000),
            scans: scale(500_000),
            scan_len: 10,
            pops: scale(500_000),
            sorted: scale(1_000_000),
        }
    }

    /// The pairs written by the end of phase 4.
    fn elements(&self) -> usize {
        self.bulk + self.individual + self.batches * self.batch + self.nosync
    }
}

/// A key and its value.
pub type Pair = ([u8; KEY], [u8; VALUE]);
/// A pair of the sorted inserts.
pub type SortedPair = ([u8; SORTED_KEY], [u8; VALUE]);

/// redb's stream of pairs: `fastrand` seeded with 3, each key filled, then
/// its value. A copy goes on from where the original was, which is how
/// every engine gets the same pairs in a phase and reader threads their
/// share of the keys.
#[derive(Clone)]
struct Pairs(fastrand::Rng);

impl Pairs {
    fn new() -> Pairs {
        Pairs(fastrand::Rng::with_seed(SEED))
    }

    /// A copy of the stream where it is, and the stream moved `n` pairs
    /// on: the pairs of a phase that every engine writes.
    fn advance(&mut self, n: usize) -> Pairs {
        let at = self.clone();
        for _ in 0..n {
            self.next();
        }
        at
    }
}

impl Iterator for Pairs {
    type Item = Pair;

    fn next(&mut self) -> Option<Pair> {
        let mut pair = ([0u8; KEY], [0u8; VALUE]);
        self.0.fill(&mut pair.0);
        self.0.fill(&mut pair.1);
        Some(pair)
    }
}

/// One store of one engine, as redb's harness drives it.
/// The pop phase's removals: `count` pops, `pop(true)` (the first pair)
/// then `pop(false)` (the last) in turn, each returning whether it removed
/// a pair; fails if one finds nothing.
pub fn pop_alternately(count: usize, mut pop: impl FnMut(bool) -> R<bool>) -> R<()> {
    for i in 0..count {
        if !pop(i % 2 == 0)? {
            return Err("pop found nothing".into());
        }
    }
    Ok(())
}

pub trait KvStore {
    /// Its rows' label.
    fn label(&self) -> &'static str;

    /// Its name in a note.
    fn short(&self) -> &'static str;

    /// One write transaction inserting `pairs` (replacing equal keys),
    /// durable unless `set_sync(false)`.
    fn insert(&mut self, pairs: &mut dyn Iterator<Item = Pair>) -> R<()>;

    /// One write transaction inserting `pairs`, whose keys ascend past
    /// every key held, the fastest way the engine has.
    fn insert_sorted(&mut self, pairs: &[SortedPair]) -> R<()>;

    /// How it makes `insert_sorted` fast, for the note.
    fn sorted_by(&self) -> &'static str;

    /// How its commits go without sync, for the note.
    fn unsynced_by(&self) -> &'static str;

    /// Turns syncing at commit off or back on.
    fn set_sync(&mut self, sync: bool) -> R<()>;

    /// One write transaction removing `keys`: how many it found.
    fn remove(&mut self, keys: &mut dyn Iterator<Item = [u8; KEY]>) -> R<u64>;

    /// One write transaction keeping the pairs `keep` takes, called in key
    /// order: how many it removed.
    fn retain(&mut self, keep: &mut dyn FnMut(&[u8], &[u8]) -> bool) -> R<u64>;

    /// One write transaction removing the pairs with keys in `from..to`
    /// that `pick` takes, called in key order on those only: how many.
    fn extract_if(
        &mut self,
        from: &[u8],
        to: &[u8],
        pick: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> R<u64>;

    /// One write transaction of `count` removals, `pop_first` then
    /// `pop_last` in turn; fails if one finds nothing.
    fn pop(&mut self, count: usize) -> R<()>;

    /// A connection, for this thread or another.
    fn connect(&self) -> R<Box<dyn KvConnection + '_>>;

    /// Compacts its files.
    fn compact(&mut self) -> R<()>;

    /// The sync calls it counted itself, where it counts them.
    fn sync_count(&self) -> Option<u64> {
        None
    }
}

/// What a reader thread is given.
pub trait KvConnection: Send {
    /// A read transaction, on the thread that uses it.
    fn begin(&self) -> R<Box<dyn KvRead + '_>>;
}

/// Reads in one read transaction.
pub trait KvRead {
    /// The number of pairs.
    fn len(&mut self) -> R<u64>;

    /// The first byte of `key`'s value, what redb's checksums add up.
    fn first_byte(&mut self, key: &[u8]) -> R<Option<u8>>;

    /// The first bytes of the values of up to `len` pairs from `from` on,
    /// added up.
    fn scan(&mut self, from: &[u8], len: usize) -> R<u64>;
}

/// Each engine's store, in a new directory of its own (its size is the
/// directory's).
fn create(engine: &dyn Engine, dir: &Path) -> R<(Box<dyn KvStore>, std::path::PathBuf)> {
    let sub = dir.join(format!("kv-{}", engine.id()));
    std::fs::create_dir_all(&sub)?;
    Ok((engine.kv(&sub)?, sub))
}

/// The time `work` takes, in nanoseconds.
fn time(work: impl FnOnce() -> R<()>) -> R<f64> {
    let start = Instant::now();
    work()?;
    Ok(ns(start.elapsed()))
}

/// Runs `phase` on every item (one per engine, in `ENGINES`' order) in a
/// new random order: the nanoseconds each returned, by engine.
fn each<T>(
    order: &mut Rng,
    what: &str,
    items: &mut [T],
    mut phase: impl FnMut(usize, &mut T) -> R<f64>,
) -> R<Vec<f64>> {
    let mut turns: Vec<usize> = (0..items.len()).collect();
    order.shuffle(&mut turns);
    let mut times = vec![f64::NAN; items.len()];
    for s in turns {
        times[s] = phase(s, &mut items[s])?;
        eprintln!("  kv {what}: {} {}", ENGINES[s].id(), fmt_ns(times[s]));
    }
    Ok(times)
}

/// Fails unless every engine gave the same `values` (what they read or
/// removed).
fn same(values: &[u64], what: &str) -> R<u64> {
    match values {
        [first, rest @ ..] if rest.iter().all(|v| v == first) => Ok(*first),
        _ => Err(format!("kv {what}: the engines differ: {values:?}").into()),
    }
}

/// Adds up the first bytes `reader` finds for `pairs`' keys, and fails
/// unless they are the first bytes of their values (redb's checksum).
fn read_checked(reader: &mut dyn KvRead, pairs: impl Iterator<Item = Pair>) -> R<()> {
    let (mut got, mut want) = (0u64, 0u64);
    for (key, value) in pairs {
        got += u64::from(reader.first_byte(&key)?.ok_or("a read key was missing")?);
        want += u64::from(value[0]);
    }
    if got != want {
        return Err(format!("kv reads: checksum {got}, expected {want}").into());
    }
    Ok(())
}

/// How redb reports a phase: a rate of this unit, or the time a call takes
/// (which the median column shows).
#[derive(Clone, Copy)]
enum Unit {
    Keys,
    Txns,
    Scans,
    Latency,
}

/// A rate as redb prints it: three significant digits and K, M or G.
fn rate(per_second: f64) -> String {
    let (mut v, mut suffix) = (per_second, 0);
    while v >= 1000.0 && suffix < 3 {
        v /= 1000.0;
        suffix += 1;
    }
    let digits = if v < 10.0 {
        2
    } else if v < 100.0 {
        1
    } else {
        0
    };
    format!("{v:.digits$}{}", ["", "K", "M", "G"][suffix])
}

/// The rows being made, and the engines' names.
struct Table {
    rows: Vec<Row>,
    names: Vec<(&'static str, &'static str)>,
}

impl Table {
    /// A phase's rows: `per_op` nanoseconds per operation by engine, with
    /// redb's figure, `notes` and in this crate's row its ratio to the best
    /// peer.
    fn phase(&mut self, title: &str, per_op: &[f64], unit: Unit, mut notes: Vec<String>) {
        let best_peer = (0..per_op.len())
            .filter(|&s| !is_ours(s))
            .min_by(|&a, &b| per_op[a].total_cmp(&per_op[b]));
        for (s, &t) in per_op.iter().enumerate() {
            let unit = match unit {
                Unit::Keys => "keys/s",
                Unit::Txns => "txn/s",
                Unit::Scans => "scan/s",
                Unit::Latency => "",
            };
            let mut note = Vec::new();
            if !unit.is_empty() {
                note.push(format!("{} {unit}", rate(1e9 / t)));
            }
            if is_ours(s) {
                if let Some(b) = best_peer {
                    note.push(format!(
                        "{:.2}× the best peer ({})",
                        t / per_op[b],
                        self.names[b].1
                    ));
                }
            }
            note.extend(
                notes
                    .get_mut(s)
                    .map(std::mem::take)
                    .filter(|n| !n.is_empty()),
            );
            self.rows.push(Row {
                group: title.into(),
                system: self.names[s].0.into(),
                value: Value::Time(t),
                syncs: String::new(),
                note: note.join("; "),
            });
        }
    }

    /// The rows of the stores' sizes, `bytes` by engine, against `live`
    /// bytes of keys and values.
    fn sizes(&mut self, title: &str, bytes: &[(u64, u64)], live: u64) {
        let mib = |b: u64| b as f64 / (1 << 20) as f64;
        let title = format!("{title} ({:.1} MiB of live keys and values)", mib(live));
        for (s, &(len, disk)) in bytes.iter().enumerate() {
            self.rows.push(Row {
                group: title.clone(),
                system: self.names[s].0.into(),
                value: Value::Number(mib(len), "MiB".into()),
                syncs: String::new(),
                note: format!(
                    "{:.2} bytes per live byte; on disk (allocated) {:.1} MiB",
                    len as f64 / live as f64,
                    mib(disk)
                ),
            });
        }
    }
}

fn is_ours(s: usize) -> bool {
    ENGINES[s].id() == OURS.id()
}

pub fn run(quick: bool, dir: &Path, count_syncs: &dyn Fn(&str) -> String) -> R<Vec<Row>> {
    let c = Counts::new(quick);
    let n_engines = ENGINES.len();
    let made: Vec<(Box<dyn KvStore>, std::path::PathBuf)> =
        ENGINES.iter().map(|e| create(*e, dir)).collect::<R<_>>()?;
    let (mut stores, dirs): (Vec<Box<dyn KvStore>>, Vec<_>) = made.into_iter().unzip();
    let mut table = Table {
        rows: Vec::new(),
        names: stores.iter().map(|s| (s.label(), s.short())).collect(),
    };
    let mut order = Rng(0x0003_0003_0003_0003);
    // The stream of new pairs, as redb's benchmark draws them phase after
    // phase.
    let mut fresh = Pairs::new();
    let no_notes = || vec![String::new(); n_engines];
    let per = |times: Vec<f64>, ops: usize| -> Vec<f64> {
        times.into_iter().map(|t| t / ops as f64).collect()
    };

    eprintln!("kv bulk load");
    let pairs = fresh.advance(c.bulk);
    let t = each(&mut order, "bulk load", &mut stores, |_, st| {
        time(|| st.insert(&mut pairs.clone().take(c.bulk)))
    })?;
    table.phase(
        &format!(
            "KV bulk load, {} pairs in one transaction (per pair)",
            c.bulk
        ),
        &per(t, c.bulk),
        Unit::Keys,
        no_notes(),
    );

    eprintln!("kv individual writes");
    let pairs = fresh.advance(c.individual);
    let mut notes = no_notes();
    let t = each(&mut order, "individual writes", &mut stores, |s, st| {
        let before = st.sync_count();
        let mut pairs = pairs.clone();
        let mut each_commit = Vec::with_capacity(c.individual);
        let total = time(|| {
            for _ in 0..c.individual {
                each_commit.push(time(|| st.insert(&mut pairs.by_ref().take(1)))?);
            }
            Ok(())
        })?;
        notes[s] = format!("median commit {}", fmt_ns(median(&each_commit)));
        if let (Some(before), Some(after)) = (before, st.sync_count()) {
            notes[s].push_str(&format!(
                "; the pager counted {} syncs for the {} commits",
                after - before,
                c.individual
            ));
        }
        Ok(total)
    })?;
    table.phase(
        &format!(
            "KV individual writes, {} durable transactions of one pair (per commit)",
            c.individual
        ),
        &per(t, c.individual),
        Unit::Txns,
        notes,
    );
    let first = table.rows.len() - n_engines;
    for (row, e) in table.rows[first..].iter_mut().zip(ENGINES) {
        row.syncs = count_syncs(e.id());
    }

    eprintln!("kv batch writes");
    let pairs = fresh.advance(c.batches * c.batch);
    let t = each(&mut order, "batch writes", &mut stores, |_, st| {
        let mut pairs = pairs.clone();
        time(|| {
            for _ in 0..c.batches {
                st.insert(&mut pairs.by_ref().take(c.batch))?;
            }
            Ok(())
        })
    })?;
    table.phase(
        &format!(
            "KV batch writes, {} durable transactions of {} pairs (per pair)",
            c.batches, c.batch
        ),
        &per(t, c.batches * c.batch),
        Unit::Keys,
        no_notes(),
    );
    // redb runs the sorted inserts last (so that the sizes stay comparable
    // with its earlier results) but lists them here, among the writes.
    let sorted_rows_at = table.rows.len();

    eprintln!("kv no-sync writes");
    let pairs = fresh.advance(c.nosync);
    let t = each(&mut order, "no-sync writes", &mut stores, |_, st| {
        st.set_sync(false)?;
        let mut pairs = pairs.clone();
        let t = time(|| {
            for _ in 0..c.nosync {
                st.insert(&mut pairs.by_ref().take(1))?;
            }
            Ok(())
        })?;
        st.set_sync(true)?;
        Ok(t)
    })?;
    table.phase(
        &format!(
            "KV no-sync writes, {} transactions of one pair without sync (per commit)",
            c.nosync
        ),
        &per(t, c.nosync),
        Unit::Txns,
        stores.iter().map(|s| s.unsynced_by().to_string()).collect(),
    );

    let elements = c.elements();
    {
        // One read transaction per engine for len, reads and ranges, as
        // redb's benchmark holds one over the three.
        let connections: Vec<Box<dyn KvConnection + '_>> =
            stores.iter().map(|s| s.connect()).collect::<R<_>>()?;
        let mut txns: Vec<Box<dyn KvRead + '_>> =
            connections.iter().map(|c| c.begin()).collect::<R<_>>()?;

        eprintln!("kv len");
        let t = each(&mut order, "len", &mut txns, |_, txn| {
            time(|| match txn.len()? {
                n if n == elements as u64 => Ok(()),
                n => Err(format!("kv len: {n}, expected {elements}").into()),
            })
        })?;
        table.phase(
            &format!("KV len(), {elements} pairs (one call)"),
            &t,
            Unit::Latency,
            no_notes(),
        );

        eprintln!("kv random reads");
        let mut passes = vec![Vec::new(); n_engines];
        for _ in 0..PASSES {
            let t = each(&mut order, "random reads", &mut txns, |_, txn| {
                time(|| read_checked(txn.as_mut(), Pairs::new().take(c.reads)))
            })?;
            for (s, t) in t.into_iter().enumerate() {
                passes[s].push(t);
            }
        }
        table.phase(
            &format!(
                "KV random reads, {} of the loaded keys in one read transaction (per read)",
                c.reads
            ),
            &per(passes.iter().map(|p| median(p)).collect(), c.reads),
            Unit::Keys,
            vec![format!("median of {PASSES} passes"); n_engines],
        );

        eprintln!("kv range reads");
        let mut passes = vec![Vec::new(); n_engines];
        let mut sums = vec![0u64; n_engines];
        for _ in 0..PASSES {
            let t = each(&mut order, "range reads", &mut txns, |s, txn| {
                time(|| {
                    sums[s] = 0;
                    for (key, _) in Pairs::new().take(c.scans) {
                        sums[s] += txn.scan(&key, c.scan_len)?;
                    }
                    Ok(())
                })
            })?;
            if same(&sums, "range reads")? == 0 {
                return Err("kv range reads: nothing read".into());
            }
            for (s, t) in t.into_iter().enumerate() {
                passes[s].push(t);
            }
        }
        table.phase(
            &format!(
                "KV range reads, {} ranges of {} pairs from loaded keys, one read transaction (per range)",
                c.scans, c.scan_len
            ),
            &per(passes.iter().map(|p| median(p)).collect(), c.scans),
            Unit::Scans,
            vec![format!("median of {PASSES} passes"); n_engines],
        );
    }

    for threads in THREADS {
        eprintln!("kv random reads, {threads} threads");
        // Each thread's share of every key written: where the stream is at
        // its first key.
        let share = elements / threads;
        let mut stream = Pairs::new();
        let shares: Vec<Pairs> = (0..threads).map(|_| stream.advance(share)).collect();
        let t = each(&mut order, "threaded reads", &mut stores, |_, st| {
            let start = Instant::now();
            let go = Barrier::new(threads);
            std::thread::scope(|scope| -> R<()> {
                let mut readers = Vec::new();
                for pairs in &shares {
                    let connection = st.connect()?;
                    let go = &go;
                    readers.push(scope.spawn(move || {
                        go.wait();
                        connection
                            .begin()
                            .and_then(|mut txn| {
                                read_checked(txn.as_mut(), pairs.clone().take(share))
                            })
                            .map_err(|e| e.to_string())
                    }));
                }
                for reader in readers {
                    reader.join().map_err(|_| "a reader panicked")??;
                }
                Ok(())
            })?;
            Ok(ns(start.elapsed()))
        })?;
        table.phase(
            &format!(
                "KV random reads on {threads} threads, all {elements} keys, {share} each (wall time per read)"
            ),
            &per(t, share * threads),
            Unit::Keys,
            no_notes(),
        );
    }

    eprintln!("kv removals");
    let deletes = elements / 2;
    let mut found = vec![0u64; n_engines];
    let t = each(&mut order, "removals", &mut stores, |s, st| {
        time(|| {
            found[s] = st.remove(&mut Pairs::new().take(deletes).map(|p| p.0))?;
            Ok(())
        })
    })?;
    if same(&found, "removals")? != deletes as u64 {
        return Err(format!("kv removals: {found:?} of {deletes} found").into());
    }
    table.phase(
        &format!("KV removals, the first {deletes} keys written, in one transaction (per removal)"),
        &per(t, deletes),
        Unit::Keys,
        no_notes(),
    );

    eprintln!("kv retain");
    let mut removed = vec![0u64; n_engines];
    let t = each(&mut order, "retain", &mut stores, |s, st| {
        let mut seen = 0u64;
        time(|| {
            removed[s] = st.retain(&mut |_, _| {
                seen += 1;
                seen % 2 == 1
            })?;
            Ok(())
        })
    })?;
    let retained = same(&removed, "retain")? as usize;
    table.phase(
        &format!(
            "KV retain, every other pair in key order removed ({retained}), one transaction (per removal)"
        ),
        &per(t, retained),
        Unit::Keys,
        no_notes(),
    );
    refill(&mut stores, &mut fresh, retained)?;

    eprintln!("kv extract_if");
    let t = each(&mut order, "extract_if", &mut stores, |s, st| {
        let mut seen = 0u64;
        time(|| {
            removed[s] = st.extract_if(&EXTRACT_FROM, &EXTRACT_TO, &mut |_, _| {
                seen += 1;
                seen.is_multiple_of(2)
            })?;
            Ok(())
        })
    })?;
    let extracted = same(&removed, "extract_if")? as usize;
    table.phase(
        &format!(
            "KV extract_if, every other pair with first byte 0x55..0xAA removed ({extracted}), one transaction (per removal)"
        ),
        &per(t, extracted),
        Unit::Keys,
        no_notes(),
    );
    refill(&mut stores, &mut fresh, extracted)?;

    eprintln!("kv pop");
    let t = each(&mut order, "pop", &mut stores, |_, st| {
        time(|| st.pop(c.pops))
    })?;
    table.phase(
        &format!(
            "KV pop, {} removals alternating pop_first and pop_last, one transaction (per pop)",
            c.pops
        ),
        &per(t, c.pops),
        Unit::Keys,
        no_notes(),
    );
    refill(&mut stores, &mut fresh, c.pops)?;

    let live = (elements - deletes) as u64 * (KEY + VALUE) as u64;
    let sizes: Vec<(u64, u64)> = dirs.iter().map(|d| file_bytes(d)).collect();
    table.sizes("KV uncompacted size, file length", &sizes, live);

    eprintln!("kv compaction");
    let t = each(&mut order, "compaction", &mut stores, |_, st| {
        time(|| st.compact())
    })?;
    table.phase("KV compaction (one call)", &t, Unit::Latency, no_notes());
    let sizes: Vec<(u64, u64)> = dirs.iter().map(|d| file_bytes(d)).collect();
    table.sizes("KV compacted size, file length", &sizes, live);

    eprintln!("kv sorted inserts");
    let sorted: Vec<SortedPair> = (0..c.sorted as u64)
        .zip(fresh.by_ref())
        .map(|(i, (_, value))| {
            let mut key = [0xFF; SORTED_KEY];
            key[KEY..].copy_from_slice(&i.to_be_bytes());
            (key, value)
        })
        .collect();
    let t = each(&mut order, "sorted inserts", &mut stores, |_, st| {
        time(|| st.insert_sorted(&sorted))
    })?;
    let how = stores.iter().map(|s| s.sorted_by().to_string()).collect();
    table.phase(
        &format!(
            "KV sorted inserts, {} pairs past every key in one transaction, run last (per pair)",
            c.sorted
        ),
        &per(t, c.sorted),
        Unit::Keys,
        how,
    );
    let sorted_rows: Vec<Row> = table.rows.split_off(table.rows.len() - n_engines);
    table
        .rows
        .splice(sorted_rows_at..sorted_rows_at, sorted_rows);
    Ok(table.rows)
}

/// redb's refill after retain, extract_if and pop: `count` new pairs in one
/// durable transaction, on every store, untimed.
fn refill(stores: &mut [Box<dyn KvStore>], fresh: &mut Pairs, count: usize) -> R<()> {
    let pairs = fresh.advance(count);
    for st in stores {
        st.insert(&mut pairs.clone().take(count))?;
    }
    Ok(())
}

/// For counting sync calls: one durable commit of one new pair per call,
/// after a load of 10 000 pairs.
pub fn write_op(engine: &dyn Engine, dir: &Path) -> R<Op> {
    let mut pairs = Pairs::new();
    let (mut st, _) = create(engine, dir)?;
    st.insert(&mut pairs.by_ref().take(10_000))?;
    Ok(Box::new(move |_| {
        time(|| st.insert(&mut pairs.by_ref().take(1)))
    }))
}
