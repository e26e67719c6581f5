//! KV: the workload redb publishes (its `lmdb_benchmark`: keys of 24 bytes,
//! values of 150 bytes, random order), on the B+tree of `mappedpages-btree`
//! built on this crate, redb, LMDB (heed) and SQLite.
//!
//! Phases, on one store per system, all stores open side by side: a bulk
//! load of N pairs in one transaction; individual durable writes (one new
//! pair, one commit each); a batch phase of small durable transactions; N
//! random reads on one thread, then on two (N/2 each), from one read
//! transaction per thread; ranges of consecutive pairs from random keys;
//! removals of N/2 loaded keys in durable transactions; the file's size
//! afterwards. The systems run one phase after another, in a new random
//! order every phase, so drift on a busy machine does not fall on one
//! system's whole run. Times are per operation (the phase's time divided
//! by its operations); the read and range phases run three passes and
//! give the median pass. Each engine's store is in its file in `engines/`.

use std::path::{Path, PathBuf};
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

/// The engines compared, this crate first: the ratios are to its rows.
const ENGINES: [&dyn Engine; 4] = [OURS, REDB, LMDB, SQLITE];

/// Phase sizes; N is the bulk load.
pub struct Counts {
    pub n: usize,
    pub individual: usize,
    pub batches: usize,
    pub batch: usize,
    pub ranges: usize,
    pub range_len: usize,
    pub remove_txn: usize,
    pub passes: usize,
}

impl Counts {
    pub fn new(quick: bool) -> Counts {
        Counts {
            n: if quick { 100_000 } else { 1_000_000 },
            individual: if quick { 200 } else { 1_000 },
            batches: 100,
            batch: 100,
            ranges: 1_000,
            range_len: 100,
            remove_txn: 1_000,
            passes: if quick { 1 } else { 3 },
        }
    }
}

/// A key and its value.
pub type Pair = ([u8; KEY], [u8; VALUE]);

/// `count` random pairs.
fn random_pairs(count: usize, rng: &mut Rng) -> Vec<Pair> {
    let mut fill = |b: &mut [u8]| {
        for chunk in b.chunks_mut(8) {
            let r = rng.next().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
    };
    let mut pairs = vec![([0u8; KEY], [0u8; VALUE]); count];
    for (k, v) in pairs.iter_mut() {
        fill(k);
        fill(v);
    }
    pairs
}

/// A value's fingerprint, summed over reads so that every system must
/// find the same values.
pub fn print(v: &[u8]) -> u64 {
    u64::from(v[0]) + (u64::from(v[VALUE - 1]) << 8)
}

/// A phase's time per operation on each system (by index in `ENGINES`)
/// and what each one's reads summed to.
type Timed = (Vec<(usize, f64)>, Vec<u64>);

/// One store of one engine.
pub trait KvStore {
    /// Its rows' label.
    fn label(&self) -> &'static str;

    /// Its name in a note.
    fn short(&self) -> &'static str;

    /// One durable write transaction of `pairs`.
    fn put(&mut self, pairs: &[Pair]) -> R<()>;

    /// One durable transaction removing `keys`, all present.
    fn remove(&mut self, keys: &[[u8; KEY]]) -> R<()>;

    /// What a reader thread needs, `Send` for every engine.
    fn reader(&self) -> R<Box<dyn KvReader + '_>>;

    /// `len` pairs in order from each of `starts`, in one read transaction:
    /// the sum of their prints (and the count, which must be exact).
    fn ranges(&self, starts: &[[u8; KEY]], len: usize) -> R<(u64, usize)>;

    /// Makes its files hold everything it holds (SQLite folds its WAL into
    /// its database, as LMDB and redb hold everything in their one file).
    fn settle(&mut self) -> R<()> {
        Ok(())
    }

    /// The files whose size is its size (LMDB: data.mdb, not lock.mdb).
    fn files(&self) -> PathBuf;

    /// The sync calls it counted itself, where it counts them.
    fn sync_count(&self) -> Option<u64> {
        None
    }
}

/// A handle for reads on one thread.
pub trait KvReader: Send {
    /// Reads `keys` in one read transaction: the sum of their prints.
    fn get(&self, keys: &[[u8; KEY]]) -> R<u64>;

    /// A handle for a second thread (this crate's: the same snapshot).
    fn twin(&self) -> Box<dyn KvReader + '_>;
}

/// Each engine's store, in a new directory of its own.
fn create(engine: &dyn Engine, dir: &Path) -> R<Box<dyn KvStore>> {
    let sub = dir.join(format!("kv-{}", engine.id()));
    std::fs::create_dir_all(&sub)?;
    engine.kv(&sub)
}

/// The rows of one phase: the time per operation of each system, the ratio
/// to this crate's row (first), and in this crate's note its ratio to the
/// best peer.
fn phase_rows(
    title: &str,
    names: &[(&str, &str)],
    times: &[(usize, f64)],
    notes: &[String],
) -> Vec<Row> {
    let best_peer = times
        .iter()
        .filter(|(s, _)| !is_ours(*s))
        .min_by(|a, b| a.1.total_cmp(&b.1));
    let mut sorted: Vec<(usize, f64)> = times.to_vec();
    sorted.sort_by_key(|(s, _)| *s);
    sorted
        .iter()
        .map(|&(s, t)| {
            let mut note = notes[s].clone();
            if is_ours(s) {
                if let Some(&(b, bt)) = best_peer {
                    let ratio = format!("{:.2}× the best peer ({})", t / bt, names[b].1);
                    note = if note.is_empty() {
                        ratio
                    } else {
                        format!("{ratio}; {note}")
                    };
                }
            }
            Row {
                group: title.into(),
                system: names[s].0.into(),
                value: Value::Time(t),
                syncs: String::new(),
                note,
            }
        })
        .collect()
}

fn is_ours(s: usize) -> bool {
    ENGINES[s].id() == OURS.id()
}

pub fn run(quick: bool, dir: &Path, count_syncs: &dyn Fn(&str) -> String) -> R<Vec<Row>> {
    let c = Counts::new(quick);
    let mut rng = Rng(0x0003_0003_0003_0003);
    let loaded = random_pairs(c.n, &mut rng);
    let singles = random_pairs(c.individual, &mut rng);
    let batched = random_pairs(c.batches * c.batch, &mut rng);
    // Reads in an order unrelated to the load's.
    let mut reads: Vec<[u8; KEY]> = loaded.iter().map(|p| p.0).collect();
    rng.shuffle(&mut reads);
    let starts: Vec<[u8; KEY]> = (0..c.ranges)
        .map(|_| loaded[(rng.next() % c.n as u64) as usize].0)
        .collect();
    let mut removed: Vec<[u8; KEY]> = loaded.iter().map(|p| p.0).collect();
    rng.shuffle(&mut removed);
    removed.truncate(c.n / 2);

    let mut stores: Vec<Box<dyn KvStore>> =
        ENGINES.iter().map(|e| create(*e, dir)).collect::<R<_>>()?;
    let names: Vec<(&str, &str)> = stores.iter().map(|s| (s.label(), s.short())).collect();
    let names = &names[..];
    let mut order: Vec<usize> = (0..ENGINES.len()).collect();
    let mut rows = Vec::new();
    let none = vec![String::new(); ENGINES.len()];
    let n = c.n;

    // Runs `phase` on every store in a new random order; its time per op.
    let mut each = |rng: &mut Rng,
                    stores: &mut [Box<dyn KvStore>],
                    ops: usize,
                    phase: &mut dyn FnMut(usize, &mut dyn KvStore) -> R<u64>|
     -> R<Timed> {
        rng.shuffle(&mut order);
        let mut times = Vec::new();
        let mut sums = vec![0u64; stores.len()];
        for &s in &order {
            let start = Instant::now();
            sums[s] = phase(s, stores[s].as_mut())?;
            times.push((s, ns(start.elapsed()) / ops as f64));
            eprintln!("  kv {} {}", ENGINES[s].id(), fmt_ns(ns(start.elapsed())));
        }
        Ok((times, sums))
    };
    let same = |sums: &[u64], what: &str| -> R<()> {
        if sums.windows(2).any(|w| w[0] != w[1]) {
            return Err(format!("kv {what}: the systems read different values: {sums:?}").into());
        }
        Ok(())
    };

    eprintln!("kv bulk load");
    let (t, _) = each(&mut rng, &mut stores, n, &mut |_, st| {
        st.put(&loaded)?;
        Ok(0)
    })?;
    rows.extend(phase_rows(
        &format!("KV bulk load, {n} pairs in one transaction (per pair)"),
        names,
        &t,
        &none,
    ));

    eprintln!("kv individual writes");
    let mut medians = vec![String::new(); ENGINES.len()];
    let mut ours_syncs = 0;
    let (t, _) = each(&mut rng, &mut stores, c.individual, &mut |i, st| {
        let before = st.sync_count();
        let mut each_time = Vec::with_capacity(c.individual);
        for pair in &singles {
            let start = Instant::now();
            st.put(std::slice::from_ref(pair))?;
            each_time.push(ns(start.elapsed()));
        }
        if let (Some(before), Some(after)) = (before, st.sync_count()) {
            ours_syncs = after - before;
        }
        medians[i] = format!("median commit {}", fmt_ns(median(&each_time)));
        Ok(0)
    })?;
    medians[0].push_str(&format!(
        "; the pager counted {ours_syncs} syncs for the {} commits",
        c.individual
    ));
    let mut r = phase_rows(
        &format!(
            "KV individual durable writes, {} commits of one pair (per commit)",
            c.individual
        ),
        names,
        &t,
        &medians,
    );
    for (row, e) in r.iter_mut().zip(ENGINES) {
        row.syncs = count_syncs(e.id());
    }
    rows.extend(r);

    eprintln!("kv batch writes");
    let (t, _) = each(&mut rng, &mut stores, c.batches * c.batch, &mut |_, st| {
        for chunk in 0..c.batches {
            let range = chunk * c.batch..(chunk + 1) * c.batch;
            st.put(&batched[range])?;
        }
        Ok(0)
    })?;
    rows.extend(phase_rows(
        &format!(
            "KV batch writes, {} durable transactions of {} pairs (per pair)",
            c.batches, c.batch
        ),
        names,
        &t,
        &none,
    ));

    eprintln!("kv random reads");
    let mut passes: Vec<Vec<f64>> = vec![Vec::new(); ENGINES.len()];
    for _ in 0..c.passes {
        let (t, sums) = each(&mut rng, &mut stores, n, &mut |_, st| {
            st.reader()?.get(&reads)
        })?;
        same(&sums, "random reads")?;
        for (s, t) in t {
            passes[s].push(t);
        }
    }
    let t: Vec<(usize, f64)> = passes.iter().map(|p| median(p)).enumerate().collect();
    rows.extend(phase_rows(
        &format!("KV random reads, {n} on one thread, one read transaction (per read)"),
        names,
        &t,
        &vec![passes_note(c.passes); ENGINES.len()],
    ));

    eprintln!("kv random reads, two threads");
    let mut passes: Vec<Vec<f64>> = vec![Vec::new(); ENGINES.len()];
    for _ in 0..c.passes {
        let (t, sums) = each(&mut rng, &mut stores, n, &mut |_, st| {
            let reader = st.reader()?;
            let theirs_reader = reader.twin();
            let (a, b) = reads.split_at(n / 2);
            std::thread::scope(|scope| -> R<u64> {
                let other = scope.spawn(move || theirs_reader.get(b).map_err(|e| e.to_string()));
                let mine = reader.get(a)?;
                let theirs = other.join().map_err(|_| "a reader panicked")??;
                Ok(mine + theirs)
            })
        })?;
        same(&sums, "random reads on two threads")?;
        for (s, t) in t {
            passes[s].push(t);
        }
    }
    let t: Vec<(usize, f64)> = passes.iter().map(|p| median(p)).enumerate().collect();
    rows.extend(phase_rows(
        &format!(
            "KV random reads, {n} on two threads ({} each), one read transaction each (wall time per read)",
            n / 2
        ),
        names,
        &t,
        &vec![passes_note(c.passes); ENGINES.len()],
    ));

    eprintln!("kv ranges");
    let mut passes: Vec<Vec<f64>> = vec![Vec::new(); ENGINES.len()];
    for _ in 0..c.passes {
        let (t, sums) = each(&mut rng, &mut stores, c.ranges, &mut |_, st| {
            let (sum, count) = st.ranges(&starts, c.range_len)?;
            Ok(sum ^ ((count as u64) << 48))
        })?;
        same(&sums, "ranges")?;
        for (s, t) in t {
            passes[s].push(t);
        }
    }
    let t: Vec<(usize, f64)> = passes.iter().map(|p| median(p)).enumerate().collect();
    rows.extend(phase_rows(
        &format!(
            "KV range reads, {} ranges of {} pairs from random keys (per range)",
            c.ranges, c.range_len
        ),
        names,
        &t,
        &vec![passes_note(c.passes); ENGINES.len()],
    ));

    eprintln!("kv removals");
    let (t, _) = each(&mut rng, &mut stores, removed.len(), &mut |_, st| {
        for chunk in removed.chunks(c.remove_txn) {
            st.remove(chunk)?;
        }
        Ok(0)
    })?;
    rows.extend(phase_rows(
        &format!(
            "KV removals, {} random keys in durable transactions of {} (per removal)",
            removed.len(),
            c.remove_txn
        ),
        names,
        &t,
        &none,
    ));

    // Every store's last state, its files closed (so that redb and LMDB
    // have written all they keep in memory).
    for st in &mut stores {
        st.settle()?;
    }
    let files: Vec<PathBuf> = stores.iter().map(|s| s.files()).collect();
    let labels: Vec<&str> = names.iter().map(|n| n.0).collect();
    drop(stores);
    let sizes: Vec<(u64, u64)> = files.iter().map(|f| file_bytes(f)).collect();
    let live = (c.n - c.n / 2 + c.individual + c.batches * c.batch) as u64 * (KEY + VALUE) as u64;
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    for (what, pick) in [
        ("on disk (allocated blocks)", 1usize),
        ("file length", 0usize),
    ] {
        let title = format!(
            "KV file size afterwards, {what} ({:.1} MiB of live keys and values)",
            mib(live)
        );
        let lmdb = sizes[ENGINES
            .iter()
            .position(|e| e.id() == LMDB.id())
            .unwrap_or(0)];
        for (s, &(len, disk)) in sizes.iter().enumerate() {
            let b = if pick == 0 { len } else { disk };
            let mut note = format!(
                "{:.2} bytes per live byte; file {:.1} MiB, on disk {:.1} MiB",
                b as f64 / live as f64,
                mib(len),
                mib(disk)
            );
            if is_ours(s) {
                let l = if pick == 0 { lmdb.0 } else { lmdb.1 };
                note = format!("{:.2}× LMDB's; {note}", b as f64 / l as f64);
            }
            rows.push(Row {
                group: title.clone(),
                system: labels[s].into(),
                value: Value::Number(mib(b), "MiB".into()),
                syncs: String::new(),
                note,
            });
        }
    }
    Ok(rows)
}

fn passes_note(passes: usize) -> String {
    if passes == 1 {
        "one pass".into()
    } else {
        format!("median of {passes} passes")
    }
}

/// For counting sync calls: one durable commit of one new pair per call,
/// after a load of 10 000 pairs.
pub fn write_op(engine: &dyn Engine, dir: &Path) -> R<Op> {
    let mut rng = Rng(0x5EED);
    let load = random_pairs(10_000, &mut rng);
    let mut st = create(engine, dir)?;
    st.put(&load)?;
    Ok(Box::new(move |_| {
        let pair = random_pairs(1, &mut rng);
        let start = Instant::now();
        st.put(&pair)?;
        Ok(ns(start.elapsed()))
    }))
}
