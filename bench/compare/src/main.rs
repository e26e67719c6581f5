//! Side-by-side comparison of `mappedpages` with its 0.2 release, redb, LMDB
//! (heed), SQLite (rusqlite, bundled, WAL, synchronous=FULL), raw
//! `pwrite`+`fdatasync` and raw `memmap2`, on files in one directory.
//!
//! ```text
//! cd bench/compare
//! QUICK=1 cargo run --release          # quick mode, under two minutes
//! cargo run --release                  # full mode
//! cargo run --release -- DIR           # files in a temporary directory inside DIR
//! ```
//!
//! Workloads: W1-W3 single durable operations; T3 one durable transaction
//! writing k values of one page (k = 1, 16, 256) and removing the k the one
//! before wrote; W4 bulk allocation; W5 random reads; W6 open; W7 W1-W3
//! without sync; T4 one page committed without sync; W8 space after churn;
//! R6 random reads on one and two threads while a writer commits durable
//! transactions, and the writer's commit time with a reader running.
//! KV: redb's published workload (24-byte keys, 150-byte values, random
//! order) on the B+tree of `examples/btree`, redb, LMDB and SQLite (see
//! `kv.rs`). `ONLY=w1,t3,...` runs some of them (`t3` all three sizes, `t3-16` one).
//!
//! Every figure is the median of repeated measurements. For W1-W3, W5, W7,
//! T3 and T4 the systems of a workload are interleaved round by round in
//! this process (a new random order every round), so drift on a busy
//! machine hits all of them alike. For W4 and W6 every timed call runs in a new child process, for
//! both crates alike, the two alternating run by run (the 0.2 crate may
//! panic there). W8 measures space, one system after another. The table
//! gives each median and its ratio to the first row of its group. The table
//! is printed and written to `bench/results/<date>-<machine>.md`; a chart of
//! the ratios goes next to it as an SVG. The file's header says how the run
//! was timed and whether sync calls were counted.
//!
//! Sync points per operation (W1-W3, W7, T3, T4) are counted with `strace` when it
//! is installed: the program runs itself in a child under `strace -f`, once
//! with 0 and once with N operations after the same setup, and divides the
//! difference by N. It counts sync calls (fsync, fdatasync, msync(MS_SYNC),
//! sync_file_range, syncfs, sync) and writes through a descriptor opened
//! with `O_DSYNC`/`O_SYNC` (found from the `openat` flags), which is how
//! LMDB writes its meta page. `SYNCS=0` skips the counting, and the table
//! then says so.

use std::error::Error;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use heed::types::Bytes;
use heed::{byteorder::BigEndian, types::U64, EnvFlags, EnvOpenOptions};
use mappedpages::{Durability, PageId, Pager};
use redb::TableDefinition;

mod kv;
// The B+tree of examples/btree, compiled in as it stands (not copied); the
// bench uses only part of its API.
#[allow(dead_code)]
#[path = "../../../examples/btree/node.rs"]
mod node;
#[allow(dead_code)]
#[path = "../../../examples/btree/tree.rs"]
mod tree;

type R<T> = Result<T, Box<dyn Error>>;
/// One timed operation: returns nanoseconds (or, for read loops, ns/page).
type Op = Box<dyn FnMut(u64) -> R<f64>>;

const PAGE: usize = 4096;
const TABLE: TableDefinition<u64, &[u8]> = TableDefinition::new("t");
type LmdbDb = heed::Database<U64<BigEndian>, Bytes>;

// ---------------------------------------------------------------------------
// Configuration and statistics.

struct Config {
    quick: bool,
    /// Rounds of the durable single-operation workloads (W1-W3).
    rounds: usize,
    /// Rounds of the no-sync workloads (W7).
    fast_rounds: usize,
    warmup: usize,
    /// W5: pages read, passes.
    read_pages: u64,
    read_passes: usize,
    /// W4: repetitions of each bulk size.
    bulk_reps: usize,
    /// W6: largest file opened (pages of 1 KiB).
    open_max_exp: u32,
    /// W8: values written before the churn.
    churn: u64,
}

impl Config {
    fn new(quick: bool) -> Config {
        Config {
            quick,
            rounds: if quick { 60 } else { 300 },
            fast_rounds: if quick { 300 } else { 2000 },
            warmup: if quick { 10 } else { 30 },
            read_pages: if quick { 1 << 14 } else { 1 << 16 },
            read_passes: if quick { 9 } else { 31 },
            bulk_reps: if quick { 3 } else { 5 },
            open_max_exp: if quick { 22 } else { 28 },
            churn: if quick { 1 << 14 } else { 1 << 18 },
        }
    }
}

fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn ns(d: Duration) -> f64 {
    d.as_secs_f64() * 1e9
}

fn fmt_ns(value: f64) -> String {
    if !value.is_finite() {
        "—".to_string()
    } else if value >= 1e9 {
        format!("{:.2} s", value / 1e9)
    } else if value >= 1e6 {
        format!("{:.2} ms", value / 1e6)
    } else if value >= 1e3 {
        format!("{:.1} µs", value / 1e3)
    } else {
        format!("{value:.2} ns")
    }
}

/// A small deterministic generator (xorshift64*), for random orders.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

// ---------------------------------------------------------------------------
// Rows of the table.

enum Value {
    Time(f64),
    /// A plain number with its unit and a note (space per live byte).
    Number(f64, String),
    /// Did not run; why.
    Failed(String),
}

struct Row {
    group: String,
    system: String,
    value: Value,
    syncs: String,
    note: String,
}

fn time_row(group: &str, system: &str, value: f64, note: &str) -> Row {
    Row {
        group: group.into(),
        system: system.into(),
        value: Value::Time(value),
        syncs: String::new(),
        note: note.into(),
    }
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Time(t) => Some(*t),
        Value::Number(n, _) => Some(*n),
        Value::Failed(_) => None,
    }
}

fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str("| workload | system | median | ratio to first row | syncs/op | note |\n");
    out.push_str("|---|---|---|---|---|---|\n");
    let mut first: Option<(String, Option<f64>)> = None;
    for r in rows {
        if first.as_ref().is_none_or(|(g, _)| *g != r.group) {
            first = Some((r.group.clone(), num(&r.value)));
        }
        let base = first.as_ref().and_then(|(_, b)| *b);
        let (shown, ratio) = match &r.value {
            Value::Time(t) => (
                fmt_ns(*t),
                base.map_or("—".into(), |b| format!("{:.2}×", t / b)),
            ),
            Value::Number(n, unit) => (
                format!("{n:.2} {unit}"),
                base.map_or("—".into(), |b| format!("{:.2}×", n / b)),
            ),
            Value::Failed(why) => (format!("failed: {why}"), "—".into()),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            r.group,
            r.system,
            shown,
            ratio,
            if r.syncs.is_empty() { "—" } else { &r.syncs },
            r.note
        ));
    }
    out
}

// ---------------------------------------------------------------------------
// Interleaved measurement.

/// Runs every op `warmup + rounds` times, all ops once per round, in a new
/// random order every round (a rotating order would keep each op behind the
/// same neighbour every round, and a neighbour that sweeps the caches would
/// slow it every time). With `warm_each`, each timed call is preceded by an
/// untimed call of the same op, so each is timed warm whatever ran before
/// (for read loops only: the op runs twice).
fn interleave(
    rounds: usize,
    warmup: usize,
    warm_each: bool,
    ops: &mut [(String, Op)],
) -> R<Vec<Vec<f64>>> {
    let mut out = vec![Vec::with_capacity(rounds); ops.len()];
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut order: Vec<usize> = (0..ops.len()).collect();
    for round in 0..warmup + rounds {
        rng.shuffle(&mut order);
        for &i in &order {
            if warm_each {
                (ops[i].1)(round as u64)?;
            }
            let t = (ops[i].1)(round as u64)?;
            if round >= warmup {
                out[i].push(t);
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Systems, set up for one workload each.

const BASE_BLOCKS: u64 = 256;

/// A file of written, synced blocks: a 4 KiB overwrite plus `fdatasync`
/// flushes one data block and no allocation metadata.
fn baseline_file(path: &Path) -> R<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)?;
    let block = vec![0x5Au8; PAGE];
    for i in 0..BASE_BLOCKS {
        file.write_at(&block, i * PAGE as u64)?;
    }
    file.sync_all()?;
    Ok(file)
}

fn raw_write_op(dir: &Path, sync: bool) -> R<Op> {
    let file = baseline_file(&dir.join("raw.bin"))?;
    let mut block = vec![0u8; PAGE];
    Ok(Box::new(move |i| {
        block[0] = i as u8;
        let start = Instant::now();
        file.write_at(&block, (i % BASE_BLOCKS) * PAGE as u64)?;
        if sync {
            file.sync_data()?;
        }
        Ok(ns(start.elapsed()))
    }))
}

/// One transaction that allocates a page, fills it with `data` stamped with
/// `i`, and commits: its time in nanoseconds.
fn commit_one_page(p: &mut Pager<PAGE>, data: &[u8], i: u64) -> R<f64> {
    let start = Instant::now();
    let mut txn = p.transaction()?;
    let id = txn.alloc()?;
    let page = txn.get_mut(id)?.as_bytes_mut();
    page.copy_from_slice(data);
    page[0] = i as u8;
    txn.commit()?;
    Ok(ns(start.elapsed()))
}

fn ours(dir: &Path, durability: Durability, pages: u64) -> R<Pager<PAGE>> {
    Ok(Pager::<PAGE>::options()
        .durability(durability)
        .initial_pages(pages)
        .create(dir.join("ours.pages"))?)
}

fn seed(dir: &Path, pages: usize) -> R<mappedpages_seed::Pager<PAGE>> {
    let mut pager = mappedpages_seed::Pager::<PAGE>::create(dir.join("seed.pages"))?;
    // Grow the file before timing, so no timed call includes a growth.
    let ids: Vec<mappedpages_seed::PageId<PAGE>> = pager.alloc_bulk(pages)?;
    pager.free_bulk(ids)?;
    Ok(pager)
}

fn redb_db(dir: &Path, sync: bool) -> R<(redb::Database, redb::Durability)> {
    let db = redb::Database::create(dir.join("redb.db"))?;
    let tx = db.begin_write()?;
    tx.open_table(TABLE)?;
    tx.commit()?;
    let durability = if sync {
        redb::Durability::Immediate
    } else {
        redb::Durability::None
    };
    Ok((db, durability))
}

fn redb_put(db: &redb::Database, durability: redb::Durability, key: u64, value: &[u8]) -> R<()> {
    let mut tx = db.begin_write()?;
    tx.set_durability(durability);
    {
        let mut t = tx.open_table(TABLE)?;
        t.insert(key, value)?;
    }
    tx.commit()?;
    Ok(())
}

fn lmdb_env(dir: &Path, sync: bool, map_size: usize) -> R<(heed::Env, LmdbDb)> {
    let path = dir.join("lmdb");
    std::fs::create_dir_all(&path)?;
    let mut opts = EnvOpenOptions::new();
    opts.map_size(map_size).max_dbs(1);
    if !sync {
        // SAFETY: NO_SYNC only changes durability on power loss; the
        // environment is used by this process alone.
        unsafe { opts.flags(EnvFlags::NO_SYNC) };
    }
    // SAFETY: the directory is new and opened once, by this process only.
    let env = unsafe { opts.open(&path)? };
    let mut wtxn = env.write_txn()?;
    let db: LmdbDb = env.create_database(&mut wtxn, None)?;
    wtxn.commit()?;
    Ok((env.clone(), db))
}

fn sqlite(dir: &Path) -> R<rusqlite::Connection> {
    sqlite_with(dir, true)
}

/// SQLite in WAL mode, `synchronous=FULL` (or `OFF` without `sync`).
fn sqlite_with(dir: &Path, sync: bool) -> R<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(dir.join("sqlite.db"))?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(format!("SQLite journal mode {mode}, not WAL").into());
    }
    conn.pragma_update(None, "synchronous", if sync { "FULL" } else { "OFF" })?;
    conn.execute(
        "CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v BLOB NOT NULL)",
        [],
    )?;
    Ok(conn)
}

/// Whether `workload` syncs: all but W7 and T4, their no-sync twins.
fn syncing(workload: &str) -> bool {
    !(workload.starts_with("w7") || workload == "t4")
}

/// The transaction size of a T3 workload (`t3-K`).
fn t3_size(workload: &str) -> Option<usize> {
    workload.strip_prefix("t3-")?.parse().ok()
}

/// The raw work of a T3 transaction of `k` pages: k+1 one-page `pwrite`s
/// and one `fdatasync`, overwriting written blocks: k pages in a row (in
/// regions used in turn) and one page for the root, the file's first,
/// apart from them (a root next to the data would merge with it into one
/// disk write, which the pager's root, in a page of its own, does not).
fn raw_t3_op(dir: &Path, k: usize) -> R<Op> {
    const REGIONS: u64 = 4;
    let page = PAGE as u64;
    let region = k as u64 * page;
    // The root page, a gap page, then the regions.
    let data_start = 2 * page;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(dir.join("raw-t3.bin"))?;
    file.write_at(&vec![0x5Au8; (data_start + REGIONS * region) as usize], 0)?;
    file.sync_all()?;
    let mut block = vec![0u8; PAGE];
    Ok(Box::new(move |i| {
        block[0] = i as u8;
        let base = data_start + (i % REGIONS) * region;
        let start = Instant::now();
        for p in 0..k as u64 {
            file.write_at(&block, base + p * page)?;
        }
        file.write_at(&block, 0)?;
        file.sync_data()?;
        Ok(ns(start.elapsed()))
    }))
}

/// T3 on each system: one transaction writes `k` values of one page (this
/// crate: `k` fresh pages and its protected root) and removes the `k` the
/// previous transaction wrote, so the data stays the same size.
fn t3_op(system: &str, dir: &Path, k: usize) -> R<Op> {
    let data = vec![0xA5u8; PAGE];
    let keys = move |i: u64| (i * k as u64)..((i + 1) * k as u64);
    match system {
        "raw-t3" => raw_t3_op(dir, k),
        "ours" => {
            let mut p = ours(dir, Durability::Immediate, 4 * k as u64 + 1024)?;
            let root = p.alloc_protected()?;
            let mut older: Vec<PageId<PAGE>> = Vec::new();
            Ok(Box::new(move |i| {
                let start = Instant::now();
                let mut txn = p.transaction()?;
                let ids = txn.alloc_bulk(k)?;
                for &id in &ids {
                    let page = txn.get_mut(id)?.as_bytes_mut();
                    page.copy_from_slice(&data);
                    page[0] = i as u8;
                }
                txn.free_bulk(std::mem::replace(&mut older, ids.clone()))?;
                txn.write_protected(root)?.as_bytes_mut()[..8]
                    .copy_from_slice(&ids[0].0.to_le_bytes());
                txn.commit()?;
                Ok(ns(start.elapsed()))
            }))
        }
        "lmdb" => {
            let (env, db) = lmdb_env(dir, true, 1 << 30)?;
            Ok(Box::new(move |i| {
                let start = Instant::now();
                let mut w = env.write_txn()?;
                for key in keys(i) {
                    db.put(&mut w, &key, &data)?;
                }
                if i > 0 {
                    for key in keys(i - 1) {
                        db.delete(&mut w, &key)?;
                    }
                }
                w.commit()?;
                Ok(ns(start.elapsed()))
            }))
        }
        "redb" => {
            let (db, d) = redb_db(dir, true)?;
            Ok(Box::new(move |i| {
                let start = Instant::now();
                let mut tx = db.begin_write()?;
                tx.set_durability(d);
                {
                    let mut t = tx.open_table(TABLE)?;
                    for key in keys(i) {
                        t.insert(key, &data[..])?;
                    }
                    if i > 0 {
                        for key in keys(i - 1) {
                            t.remove(key)?;
                        }
                    }
                }
                tx.commit()?;
                Ok(ns(start.elapsed()))
            }))
        }
        "sqlite" => {
            let mut conn = sqlite(dir)?;
            Ok(Box::new(move |i| {
                let start = Instant::now();
                let tx = conn.transaction()?;
                {
                    let mut put = tx.prepare_cached("INSERT INTO t (k, v) VALUES (?1, ?2)")?;
                    for key in keys(i) {
                        put.execute(rusqlite::params![key as i64, &data[..]])?;
                    }
                }
                if i > 0 {
                    let old = keys(i - 1);
                    tx.prepare_cached("DELETE FROM t WHERE k >= ?1 AND k < ?2")?
                        .execute([old.start as i64, old.end as i64])?;
                }
                tx.commit()?;
                Ok(ns(start.elapsed()))
            }))
        }
        other => Err(format!("no system {other} in T3").into()),
    }
}

/// The timed operation of `system` in `workload`, set up in `dir` for up to
/// `cap` operations. Workloads: w1, w2, w3 (durable), w7-1, w7-2, w7-3
/// (the same without sync), t3-K (K pages in one transaction), t4 (one
/// page committed without sync).
fn make_op(workload: &str, system: &str, dir: &Path, cap: usize) -> R<Op> {
    if workload == "kv-writes" {
        return kv::write_op(system, dir);
    }
    if let Some(k) = t3_size(workload) {
        return t3_op(system, dir, k);
    }
    let sync = syncing(workload);
    let kind = match workload {
        // T4 is W7's new-data write, on every system.
        "t4" => "2",
        w => w.trim_start_matches("w7-").trim_start_matches('w'),
    };
    let pages = cap as u64 + 1024;
    let durability = if sync {
        Durability::Immediate
    } else {
        Durability::Deferred
    };
    let data = vec![0xA5u8; PAGE];
    match (kind, system) {
        (_, "raw") => raw_write_op(dir, sync),
        ("1", "ours") => {
            let mut p = ours(dir, durability, pages)?;
            Ok(Box::new(move |_| {
                let start = Instant::now();
                let id = p.alloc()?;
                let t = ns(start.elapsed());
                std::hint::black_box(id);
                Ok(t)
            }))
        }
        ("1", "seed") => {
            let mut p = seed(dir, cap + 64)?;
            Ok(Box::new(move |_| {
                let start = Instant::now();
                let id: mappedpages_seed::PageId<PAGE> = p.alloc()?;
                let t = ns(start.elapsed());
                std::hint::black_box(id);
                Ok(t)
            }))
        }
        ("2", "ours") => {
            let mut p = ours(dir, durability, pages)?;
            Ok(Box::new(move |i| {
                let start = Instant::now();
                let id: PageId<PAGE> = p.alloc()?;
                let page = id.get_mut(&mut p)?.as_bytes_mut();
                page.copy_from_slice(&data);
                page[0] = i as u8;
                if sync {
                    p.sync()?;
                }
                Ok(ns(start.elapsed()))
            }))
        }
        ("2", "ours-deferred") => {
            let mut p = ours(dir, Durability::Deferred, pages)?;
            Ok(Box::new(move |i| {
                let start = Instant::now();
                let id: PageId<PAGE> = p.alloc()?;
                let page = id.get_mut(&mut p)?.as_bytes_mut();
                page.copy_from_slice(&data);
                page[0] = i as u8;
                p.sync()?;
                Ok(ns(start.elapsed()))
            }))
        }
        ("2", "ours-txn") => {
            let mut p = ours(dir, durability, pages)?;
            Ok(Box::new(move |i| commit_one_page(&mut p, &data, i)))
        }
        ("2", "ours-sync128") => {
            // A Deferred commit writes only its own checks, whatever the
            // commits since the last sync: beside the unsynced row, this one
            // with an untimed sync() every 128 commits shows it.
            let mut p = ours(dir, Durability::Deferred, pages)?;
            Ok(Box::new(move |i| {
                if i % 128 == 0 {
                    p.sync()?;
                }
                commit_one_page(&mut p, &data, i)
            }))
        }
        ("2", "redb") => {
            let (db, d) = redb_db(dir, sync)?;
            Ok(Box::new(move |i| {
                let start = Instant::now();
                redb_put(&db, d, i, &data)?;
                Ok(ns(start.elapsed()))
            }))
        }
        ("2", "lmdb") => {
            let (env, db) = lmdb_env(dir, sync, 1 << 30)?;
            Ok(Box::new(move |i| {
                let start = Instant::now();
                let mut w = env.write_txn()?;
                db.put(&mut w, &i, &data)?;
                w.commit()?;
                Ok(ns(start.elapsed()))
            }))
        }
        ("2", "sqlite") => {
            let conn = sqlite_with(dir, sync)?;
            Ok(Box::new(move |i| {
                let start = Instant::now();
                conn.prepare_cached("INSERT INTO t (k, v) VALUES (?1, ?2)")?
                    .execute(rusqlite::params![i as i64, &data[..]])?;
                Ok(ns(start.elapsed()))
            }))
        }
        ("3", "ours") => {
            let mut p = ours(dir, durability, 1024)?;
            let id = p.alloc_protected()?;
            Ok(Box::new(move |i| {
                let start = Instant::now();
                let mut w = id.get_mut(&mut p)?;
                let page = w.page_mut().as_bytes_mut();
                page.copy_from_slice(&data);
                page[0] = i as u8;
                w.commit()?;
                Ok(ns(start.elapsed()))
            }))
        }
        ("3", "seed") => {
            let mut p = seed(dir, 64)?;
            let id: mappedpages_seed::ProtectedPageId<PAGE> = p.alloc_protected()?;
            Ok(Box::new(move |i| {
                let start = Instant::now();
                let mut w = id.get_mut(&mut p)?;
                let page = w.page_mut().as_bytes_mut();
                page.copy_from_slice(&data);
                page[0] = i as u8;
                w.commit()?;
                Ok(ns(start.elapsed()))
            }))
        }
        ("3", "lmdb") => {
            let (env, db) = lmdb_env(dir, sync, 1 << 26)?;
            Ok(Box::new(move |i| {
                let mut v = data.clone();
                v[0] = i as u8;
                let start = Instant::now();
                let mut w = env.write_txn()?;
                db.put(&mut w, &0, &v)?;
                w.commit()?;
                Ok(ns(start.elapsed()))
            }))
        }
        ("3", "redb") => {
            let (db, d) = redb_db(dir, sync)?;
            Ok(Box::new(move |i| {
                let mut v = data.clone();
                v[0] = i as u8;
                let start = Instant::now();
                redb_put(&db, d, 0, &v)?;
                Ok(ns(start.elapsed()))
            }))
        }
        _ => Err(format!("no system {system} in workload {workload}").into()),
    }
}

/// The first words of a workload title, never cutting a parenthesis.
fn short_group(title: &str) -> String {
    let mut words = Vec::new();
    let mut in_parens = false;
    for word in title.split_whitespace() {
        if words.len() >= 4 && !in_parens {
            break;
        }
        in_parens |= word.starts_with('(');
        if word.ends_with(')') {
            in_parens = false;
        }
        words.push(word);
    }
    words.join(" ").trim_end_matches(',').to_string()
}

fn label(system: &str, sync: bool) -> String {
    match (system, sync) {
        ("raw", true) => "raw 4 KiB pwrite + fdatasync".into(),
        ("raw", false) => "raw 4 KiB pwrite, no sync".into(),
        ("ours", true) => "mappedpages (this crate), Immediate".into(),
        ("ours", false) => "mappedpages (this crate), Deferred".into(),
        ("ours-deferred", _) => {
            "mappedpages (this crate), Deferred alloc + write, then sync()".into()
        }
        ("ours-txn", true) => {
            "mappedpages (this crate), Immediate, one transaction: alloc + write + commit".into()
        }
        ("ours-txn", false) => {
            "mappedpages (this crate), Deferred, one transaction: alloc + write + commit".into()
        }
        ("ours-sync128", _) => {
            "mappedpages (this crate), Deferred transaction, an untimed sync() every 128 commits"
                .into()
        }
        ("raw-t3", _) => {
            "raw: k+1 one-page pwrites (k in a row, 1 apart) + one fdatasync, overwrites".into()
        }
        ("seed", _) => "mappedpages 0.2".into(),
        ("redb", true) => "redb, Durability::Immediate".into(),
        ("redb", false) => "redb, Durability::None".into(),
        ("lmdb", true) => "LMDB (heed)".into(),
        ("lmdb", false) => "LMDB (heed), NO_SYNC".into(),
        ("sqlite", true) => "SQLite, WAL, synchronous=FULL".into(),
        ("sqlite", false) => "SQLite, WAL, synchronous=OFF".into(),
        (other, _) => other.into(),
    }
}

struct Group {
    workload: &'static str,
    title: &'static str,
    systems: &'static [&'static str],
}

const SYNC_GROUPS: &[Group] = &[
    Group {
        workload: "w1",
        title: "W1 one-page allocation, durable",
        systems: &["raw", "ours", "seed"],
    },
    Group {
        workload: "w2",
        title: "W2 durable 4 KiB write of new data",
        systems: &[
            "raw",
            "ours",
            "ours-txn",
            "ours-deferred",
            "redb",
            "lmdb",
            "sqlite",
        ],
    },
    Group {
        workload: "w3",
        title: "W3 protected-page commit (4 KiB overwrite)",
        systems: &["raw", "ours", "seed", "lmdb", "redb"],
    },
];

/// T3: one transaction writes k values of one page each and removes the k
/// the previous one wrote (this crate: k fresh pages, k freed, and a
/// protected root), durable.
const T3_GROUPS: &[Group] = &[
    Group {
        workload: "t3-1",
        title: "T3 one transaction, k = 1 page written, 1 removed, durable",
        systems: T3_SYSTEMS,
    },
    Group {
        workload: "t3-16",
        title: "T3 one transaction, k = 16 pages written, 16 removed, durable",
        systems: T3_SYSTEMS,
    },
    Group {
        workload: "t3-256",
        title: "T3 one transaction, k = 256 pages written, 256 removed, durable",
        systems: T3_SYSTEMS,
    },
];

const T3_SYSTEMS: &[&str] = &["raw-t3", "ours", "lmdb", "redb", "sqlite"];

/// T4: one page written and committed without sync.
const T4_GROUP: Group = Group {
    workload: "t4",
    title: "T4 no-sync commit of one new 4 KiB page",
    systems: &["raw", "ours-txn", "ours-sync128", "lmdb", "redb", "sqlite"],
};

const NOSYNC_GROUPS: &[Group] = &[
    Group {
        workload: "w7-1",
        title: "W7 (W1 without sync) one-page allocation",
        systems: &["raw", "ours"],
    },
    Group {
        workload: "w7-2",
        title: "W7 (W2 without sync) 4 KiB write of new data",
        systems: &["raw", "ours", "ours-txn", "redb", "lmdb"],
    },
    Group {
        workload: "w7-3",
        title: "W7 (W3 without sync) 4 KiB overwrite + commit",
        systems: &["raw", "ours", "lmdb", "redb"],
    },
];

fn run_group(g: &Group, dir: &Path, rounds: usize, warmup: usize, syncs: bool) -> R<Vec<Row>> {
    let sync = syncing(g.workload);
    let mut ops = Vec::new();
    let mut rows = Vec::new();
    for &s in g.systems {
        let sub = dir.join(format!("{}-{s}", g.workload));
        std::fs::create_dir_all(&sub)?;
        match make_op(g.workload, s, &sub, rounds + warmup) {
            Ok(op) => ops.push((s.to_string(), op)),
            Err(e) => rows.push(Row {
                group: g.title.into(),
                system: label(s, sync),
                value: Value::Failed(e.to_string()),
                syncs: String::new(),
                note: String::new(),
            }),
        }
    }
    let results = interleave(rounds, warmup, false, &mut ops)?;
    drop(ops);
    let mut out = Vec::new();
    for (&s, times) in g
        .systems
        .iter()
        .filter(|s| rows.iter().all(|r| r.system != label(s, sync)))
        .zip(&results)
    {
        let mut row = time_row(g.title, &label(s, sync), median(times), "");
        if syncs {
            row.syncs = count_syncs(g.workload, s, dir).unwrap_or_else(|e| format!("? ({e})"));
        }
        out.push(row);
    }
    out.extend(rows);
    for s in g.systems {
        let _ = std::fs::remove_dir_all(dir.join(format!("{}-{s}", g.workload)));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Sync calls under strace.

const STRACE_OPS: usize = 50;

fn strace_available() -> bool {
    Command::new("strace")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// What one traced child did: sync system calls (fsync, fdatasync,
/// `msync(MS_SYNC)`, `sync_file_range`, syncfs, sync) and writes that are
/// durable on return (through a descriptor opened with `O_DSYNC` or
/// `O_SYNC`, or a `pwritev2` with `RWF_DSYNC`/`RWF_SYNC`).
#[derive(Clone, Copy, Debug, Default)]
struct Traced {
    sync_calls: u64,
    dsync_writes: u64,
}

const TRACED: &str = "open,openat,openat2,creat,close,dup,dup2,dup3,fcntl,\
                      write,pwrite64,writev,pwritev,pwritev2,\
                      msync,fsync,fdatasync,sync_file_range,syncfs,sync";

/// Counts sync calls and synchronous writes in the output of
/// `strace -f -o FILE -e trace=TRACED` (one line per call, a pid first;
/// calls split by another thread's as `<unfinished ...>` and
/// `<... NAME resumed>` are joined first).
fn parse_strace(text: &str) -> Traced {
    use std::collections::{HashMap, HashSet};
    let mut pending: HashMap<String, String> = HashMap::new();
    let mut dsync_fds: HashSet<i64> = HashSet::new();
    let mut out = Traced::default();
    for raw in text.lines() {
        let raw = raw.trim();
        let (pid, rest) = match raw.split_once(' ') {
            Some((p, r)) if p.bytes().all(|b| b.is_ascii_digit()) => (p.to_string(), r.trim()),
            _ => (String::new(), raw),
        };
        let line = if let Some(head) = rest.strip_suffix("<unfinished ...>") {
            pending.insert(pid, head.to_string());
            continue;
        } else if rest.starts_with("<...") {
            let Some((_, tail)) = rest.split_once("resumed>") else {
                continue;
            };
            format!("{}{tail}", pending.remove(&pid).unwrap_or_default())
        } else {
            rest.to_string()
        };
        let Some(open) = line.find('(') else { continue };
        let name = &line[..open];
        // `name(args)   = ret ...`: strace pads before the `=`.
        let Some(eq) = line.rfind(" = ") else {
            continue;
        };
        let Some(head) = line[..eq].trim_end().strip_suffix(')') else {
            continue;
        };
        let Some(args) = head.get(open + 1..) else {
            continue;
        };
        let ret: i64 = line[eq + 3..]
            .split_whitespace()
            .next()
            .and_then(|r| r.parse().ok())
            .unwrap_or(-1);
        let fd: i64 = args
            .split(',')
            .next()
            .and_then(|a| a.trim().parse().ok())
            .unwrap_or(-1);
        match name {
            "open" | "openat" | "openat2" | "creat" if ret >= 0 => {
                // The flags follow the (always complete) path.
                let flags = args.rfind('"').map_or(args, |q| &args[q + 1..]);
                if flags.contains("O_DSYNC") || flags.contains("O_SYNC") {
                    dsync_fds.insert(ret);
                } else {
                    dsync_fds.remove(&ret);
                }
            }
            "close" => {
                dsync_fds.remove(&fd);
            }
            "dup" | "dup2" | "dup3" | "fcntl" if ret >= 0 => {
                let duplicates = name != "fcntl" || args.contains("F_DUPFD");
                if duplicates && ret != fd {
                    // dup3 with O_CLOEXEC or not: the file's status
                    // flags (O_DSYNC among them) are shared.
                    if dsync_fds.contains(&fd) {
                        dsync_fds.insert(ret);
                    } else {
                        dsync_fds.remove(&ret);
                    }
                }
            }
            "write" | "pwrite64" | "writev" | "pwritev" | "pwritev2"
                if ret >= 0
                    && (dsync_fds.contains(&fd)
                        || args.contains("RWF_DSYNC")
                        || args.contains("RWF_SYNC")) =>
            {
                out.dsync_writes += 1;
            }
            "msync" if args.contains("MS_SYNC") => out.sync_calls += 1,
            "fsync" | "fdatasync" | "sync_file_range" | "syncfs" | "sync" => out.sync_calls += 1,
            _ => {}
        }
    }
    out
}

fn strace_total(workload: &str, system: &str, dir: &Path, n: usize) -> R<Traced> {
    let sub = dir.join(format!("strace-{workload}-{system}-{n}"));
    std::fs::create_dir_all(&sub)?;
    let out = sub.join("strace.txt");
    let status = Command::new("strace")
        .args(["-f", "-qq", "-s", "0", "-o"])
        .arg(&out)
        .args(["-e", &format!("trace={TRACED}")])
        .arg(std::env::current_exe()?)
        .args(["child-ops", workload, system, &n.to_string()])
        .arg(&sub)
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        return Err("child failed".into());
    }
    let text = std::fs::read_to_string(&out)?;
    let _ = std::fs::remove_dir_all(&sub);
    Ok(parse_strace(&text))
}

/// Sync points per operation, (count with N ops - count with 0) / N: sync
/// calls, plus synchronous writes where there are any (the contract counts
/// an `O_DSYNC` write as a sync call).
fn count_syncs(workload: &str, system: &str, dir: &Path) -> R<String> {
    let zero = strace_total(workload, system, dir, 0)?;
    let many = strace_total(workload, system, dir, STRACE_OPS)?;
    let per = |a: u64, b: u64| (a as f64 - b as f64) / STRACE_OPS as f64;
    let calls = per(many.sync_calls, zero.sync_calls);
    let writes = per(many.dsync_writes, zero.dsync_writes);
    Ok(if writes.abs() < 0.005 {
        format!("{calls:.2}")
    } else {
        format!(
            "{:.2} ({calls:.2} sync calls + {writes:.2} O_DSYNC writes)",
            calls + writes
        )
    })
}

fn child_ops(workload: &str, system: &str, n: usize, dir: &Path) -> R<()> {
    let mut op = make_op(workload, system, dir, n)?;
    for i in 0..n {
        op(i as u64)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// W5: random page reads.

fn run_w5(cfg: &Config, dir: &Path) -> R<Vec<Row>> {
    let n = cfg.read_pages;
    let mut order: Vec<u64> = (0..n).collect();
    Rng(0x9E37_79B9_7F4A_7C15).shuffle(&mut order);
    let order = std::rc::Rc::new(order);
    let mut block = vec![0u8; PAGE];

    let pager_path = dir.join("w5.pages");
    let mut pager = Pager::<PAGE>::options()
        .initial_pages(n + 64)
        .create(&pager_path)?;
    let ids = pager.alloc_bulk(n as usize)?;
    for (i, id) in ids.iter().enumerate() {
        id.get_mut(&mut pager)?.as_bytes_mut()[..8].copy_from_slice(&(i as u64).to_le_bytes());
    }
    pager.sync()?;

    // The raw baseline maps the pager's own file a second time and reads
    // the same pages at the same offsets: the same page-cache pages, so the
    // two loops differ only in the access path. (A separately written file
    // of the same bytes can sit in differently sized folios and read faster
    // or slower for that reason alone.)
    // The same kind of map as the pager's own (shared, read-write), though
    // only read here.
    let raw_file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&pager_path)?;
    // SAFETY: a map of a file this program owns; the pager never truncates
    // it while open, nothing is written through this map, and nothing
    // writes the pages read here while the loops run.
    let map = unsafe { memmap2::MmapMut::map_mut(&raw_file)? };
    if (map.len() as u64) < pager.page_count() * PAGE as u64 {
        return Err("the second map does not cover the pager's file".into());
    }

    let lsub = dir.join("w5-lmdb");
    std::fs::create_dir_all(&lsub)?;
    let (env, ldb) = lmdb_env(&lsub, true, (n as usize * PAGE * 3).max(1 << 28))?;
    {
        let mut w = env.write_txn()?;
        for i in 0..n {
            block[..8].copy_from_slice(&i.to_le_bytes());
            ldb.put(&mut w, &i, &block)?;
        }
        w.commit()?;
    }
    let rsub = dir.join("w5-redb");
    std::fs::create_dir_all(&rsub)?;
    let (rdb, _) = redb_db(&rsub, true)?;
    {
        let tx = rdb.begin_write()?;
        {
            let mut t = tx.open_table(TABLE)?;
            for i in 0..n {
                block[..8].copy_from_slice(&i.to_le_bytes());
                t.insert(i, &block[..])?;
            }
        }
        tx.commit()?;
    }

    fn first8(b: &[u8]) -> u64 {
        u64::from_le_bytes(b[..8].try_into().unwrap())
    }
    // The byte offsets of the pages `get` reads, in the same order.
    let offsets: std::rc::Rc<Vec<usize>> = std::rc::Rc::new(
        order
            .iter()
            .map(|&i| ids[i as usize].0 as usize * PAGE)
            .collect(),
    );
    // Both paths must read the same bytes.
    for &i in order.iter().take(64) {
        let id = ids[i as usize];
        let off = id.0 as usize * PAGE;
        if first8(&map[off..off + PAGE]) != first8(id.get(&pager)?.as_bytes()) {
            return Err("the raw map and the pager read different bytes".into());
        }
    }
    /// The raw read loop: the first 8 bytes of each page, ns per page.
    fn raw_loop(m: &[u8], offsets: &[usize]) -> f64 {
        let start = Instant::now();
        let mut sum = 0u64;
        for &off in offsets {
            sum = sum.wrapping_add(first8(&m[off..off + PAGE]));
        }
        std::hint::black_box(sum);
        ns(start.elapsed()) / offsets.len() as f64
    }
    let mut ops: Vec<(String, Op)> = Vec::new();
    {
        let offsets = offsets.clone();
        ops.push((
            "raw memmap2 slice (a second map of the pager's file, same pages)".into(),
            Box::new(move |_| Ok(raw_loop(&map, &offsets))),
        ));
    }
    {
        let order = order.clone();
        let ids: Vec<PageId<PAGE>> = order.iter().map(|&i| ids[i as usize]).collect();
        ops.push((
            "mappedpages (this crate) get".into(),
            Box::new(move |_| {
                let start = Instant::now();
                let mut sum = 0u64;
                for id in &ids {
                    sum = sum.wrapping_add(first8(id.get(&pager)?.as_bytes()));
                }
                std::hint::black_box(sum);
                Ok(ns(start.elapsed()) / n as f64)
            }),
        ));
    }
    {
        let order = order.clone();
        ops.push((
            "LMDB (heed) get, one read txn per pass".into(),
            Box::new(move |_| {
                let start = Instant::now();
                let r = env.read_txn()?;
                let mut sum = 0u64;
                for &i in order.iter() {
                    let v = ldb.get(&r, &i)?.ok_or("missing")?;
                    sum = sum.wrapping_add(first8(v));
                }
                std::hint::black_box(sum);
                drop(r);
                Ok(ns(start.elapsed()) / n as f64)
            }),
        ));
    }
    {
        let order = order.clone();
        ops.push((
            "redb get, one read txn per pass".into(),
            Box::new(move |_| {
                let start = Instant::now();
                let r = rdb.begin_read()?;
                let t = r.open_table(TABLE)?;
                let mut sum = 0u64;
                for &i in order.iter() {
                    let v = t.get(i)?.ok_or("missing")?;
                    sum = sum.wrapping_add(first8(v.value()));
                }
                std::hint::black_box(sum);
                Ok(ns(start.elapsed()) / n as f64)
            }),
        ));
    }
    let results = interleave(cfg.read_passes, 2, true, &mut ops)?;
    let title = format!("W5 random 4 KiB page reads, {n} pages (per page, 8 bytes read)");
    Ok(ops
        .iter()
        .zip(&results)
        .map(|((name, _), t)| {
            time_row(
                &title,
                name,
                median(t),
                "warm page cache; each timed pass right after an untimed one of its own",
            )
        })
        .collect())
}

// ---------------------------------------------------------------------------
// W4 and W6: bulk allocation and open. Every timed call runs in a fresh
// child process, for both crates alike, the two alternating round by round
// (the order swapped every round). The 0.2 crate may panic (its file stops
// growing near 2^14 pages); a child has a time limit.

fn run_child_timed(args: &[String], limit: Duration) -> R<Result<f64, String>> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            let out = child.wait_with_output()?;
            let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
            if status.success() {
                return Ok(text.parse::<f64>().map_err(|_| text));
            }
            // The panic message, or else the last line.
            let lines: Vec<&str> = err.lines().collect();
            let last = match lines.iter().position(|l| l.contains("panicked at")) {
                // The message only: the panic location names a local path.
                Some(i) => format!(
                    "panic: {}",
                    lines.get(i + 1).unwrap_or(&"").replace('|', "/")
                ),
                None => lines.last().unwrap_or(&"").to_string(),
            };
            return Ok(Err(format!("{status}: {last}")));
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(Err(format!(
                "no result after {} s, stopped",
                limit.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Child: `alloc_bulk(count)` on a new file of 4 KiB pages at `path`, timed;
/// prints nanoseconds.
fn child_bulk(system: &str, path: &Path, count: usize) -> R<()> {
    let (t, got) = match system {
        "ours" => {
            let mut p = Pager::<PAGE>::create(path)?;
            let start = Instant::now();
            let ids = p.alloc_bulk(count)?;
            (ns(start.elapsed()), ids.len())
        }
        "seed" => {
            let mut p = mappedpages_seed::Pager::<PAGE>::create(path)?;
            let start = Instant::now();
            let ids: Vec<mappedpages_seed::PageId<PAGE>> = p.alloc_bulk(count)?;
            (ns(start.elapsed()), ids.len())
        }
        other => return Err(format!("no system {other}").into()),
    };
    if got != count {
        return Err(format!("got {got} pages").into());
    }
    println!("{t}");
    Ok(())
}

/// Child: a file of `count` allocated 1 KiB pages made by the 0.2 crate.
fn child_seed_build(path: &Path, count: usize) -> R<()> {
    let mut p = mappedpages_seed::Pager::<1024>::create(path)?;
    let ids: Vec<mappedpages_seed::PageId<1024>> = p.alloc_bulk(count)?;
    std::hint::black_box(ids);
    println!("0");
    Ok(())
}

/// Child: one open of an existing file of 1 KiB pages, the first in this
/// process (so it includes faulting in fresh heap and map pages), timed;
/// prints nanoseconds.
fn child_open(system: &str, path: &Path) -> R<()> {
    let t = match system {
        "ours" => {
            let start = Instant::now();
            let p = Pager::<1024>::open(path)?;
            let t = ns(start.elapsed());
            drop(p);
            t
        }
        "seed" => {
            let start = Instant::now();
            let p = mappedpages_seed::Pager::<1024>::open(path)?;
            let t = ns(start.elapsed());
            drop(p);
            t
        }
        other => return Err(format!("no system {other}").into()),
    };
    println!("{t}");
    Ok(())
}

/// One system's child-process runs: its label, the child's arguments, and
/// a file to remove after each run (W4's children create theirs).
struct ChildJob {
    system: String,
    args: Vec<String>,
    remove_after: Option<PathBuf>,
}

/// Runs every job's child `reps` times, alternating the jobs round by round
/// and swapping their order every round. A job whose child fails is not run
/// again. Per job: its times, or how its child failed.
fn alternate_children(
    cfg: &Config,
    reps: usize,
    jobs: &[ChildJob],
) -> R<Vec<Result<Vec<f64>, String>>> {
    let limit = Duration::from_secs(if cfg.quick { 20 } else { 30 });
    let mut out: Vec<Result<Vec<f64>, String>> = jobs.iter().map(|_| Ok(Vec::new())).collect();
    for rep in 0..reps {
        for k in 0..jobs.len() {
            let i = (k + rep) % jobs.len();
            if out[i].is_err() {
                continue;
            }
            let res = run_child_timed(&jobs[i].args, limit)?;
            if let Some(f) = &jobs[i].remove_after {
                let _ = std::fs::remove_file(f);
            }
            match (res, &mut out[i]) {
                (Ok(t), Ok(times)) => times.push(t),
                (Err(e), slot) => *slot = Err(e),
                _ => {}
            }
        }
    }
    Ok(out)
}

fn child_rows(
    title: &str,
    jobs: &[ChildJob],
    results: Vec<Result<Vec<f64>, String>>,
    note: &str,
) -> Vec<Row> {
    jobs.iter()
        .zip(results)
        .map(|(job, res)| Row {
            group: title.into(),
            system: job.system.clone(),
            value: match res {
                Ok(t) => Value::Time(median(&t)),
                Err(e) => Value::Failed(e),
            },
            syncs: String::new(),
            note: note.into(),
        })
        .collect()
}

fn run_w4(cfg: &Config, dir: &Path) -> R<Vec<Row>> {
    let mut rows = Vec::new();
    for exp in [16u32, 20] {
        let title = format!("W4 alloc_bulk(2^{exp}) in one commit, new file, growth included");
        let jobs: Vec<ChildJob> = [
            ("ours", "mappedpages (this crate)"),
            ("seed", "mappedpages 0.2"),
        ]
        .iter()
        .map(|&(s, label)| {
            let path = dir.join(format!("w4-{s}-{exp}.pages"));
            ChildJob {
                system: label.into(),
                args: vec![
                    "child-bulk".into(),
                    s.into(),
                    path.display().to_string(),
                    (1u64 << exp).to_string(),
                ],
                remove_after: Some(path),
            }
        })
        .collect();
        let results = alternate_children(cfg, cfg.bulk_reps, &jobs)?;
        rows.extend(child_rows(
            &title,
            &jobs,
            results,
            &format!(
                "each run in a new process, the two alternating; n = {}",
                cfg.bulk_reps
            ),
        ));
    }
    Ok(rows)
}

const OPEN_REPS: usize = 5;

fn run_w6(cfg: &Config, dir: &Path) -> R<Vec<Row>> {
    let mut rows = Vec::new();
    let mut exps = vec![10u32, 20];
    exps.push(cfg.open_max_exp);
    for exp in exps {
        let title = format!("W6 open, 2^{exp} allocated 1 KiB pages, warm cache");
        let path = dir.join(format!("w6-{exp}.pages"));
        {
            let mut p = Pager::<1024>::options()
                .durability(Durability::Deferred)
                .preallocate(false)
                .create(&path)?;
            let mut left = 1u64 << exp;
            let chunk = 1u64 << 24;
            while left > 0 {
                let c = left.min(chunk);
                let ids = p.alloc_bulk(c as usize)?;
                std::hint::black_box(ids);
                left -= c;
            }
            p.sync()?;
        }
        let mut jobs = vec![ChildJob {
            system: "mappedpages (this crate)".into(),
            args: vec![
                "child-open".into(),
                "ours".into(),
                path.display().to_string(),
            ],
            remove_after: None,
        }];
        let spath = dir.join(format!("w6-seed-{exp}.pages"));
        let mut seed_failed = None;
        if exp <= 20 {
            // The 0.2 crate cannot make a file this large beyond 2^14 pages
            // or so; the build's failure is the row.
            let build = vec![
                "child-seed-build".to_string(),
                spath.display().to_string(),
                (1u64 << exp).to_string(),
            ];
            match run_child_timed(&build, Duration::from_secs(120))? {
                Ok(_) => jobs.push(ChildJob {
                    system: "mappedpages 0.2".into(),
                    args: vec![
                        "child-open".into(),
                        "seed".into(),
                        spath.display().to_string(),
                    ],
                    remove_after: None,
                }),
                Err(e) => seed_failed = Some(format!("building the file: {e}")),
            }
        }
        // Warm the page cache for both files before any timed open.
        let _ = std::fs::read(&path).map(std::hint::black_box);
        let results = alternate_children(cfg, OPEN_REPS, &jobs)?;
        rows.extend(child_rows(
            &title,
            &jobs,
            results,
            &format!("first open in a new process, the two alternating; n = {OPEN_REPS}"),
        ));
        if let Some(e) = seed_failed {
            rows.push(Row {
                group: title.clone(),
                system: "mappedpages 0.2".into(),
                value: Value::Failed(e),
                syncs: String::new(),
                note: String::new(),
            });
        }
        // For comparison with the figure above: the same open repeated in
        // this long-running process (heap and page tables already warm).
        let mut times = Vec::new();
        for _ in 0..OPEN_REPS {
            let start = Instant::now();
            let p = Pager::<1024>::open(&path)?;
            times.push(ns(start.elapsed()));
            drop(p);
        }
        rows.push(time_row(
            &title,
            "mappedpages (this crate), open repeated in one process (info)",
            median(&times),
            &format!("not a child: the benchmark's own process; n = {OPEN_REPS}"),
        ));
        std::fs::remove_file(&path)?;
        let _ = std::fs::remove_file(&spath);
    }
    Ok(rows)
}

// ---------------------------------------------------------------------------
// R6: readers on other threads while a writer commits.

/// Values the readers read at random (4 KiB each).
const R6_VALUES: u64 = 1 << 14;
/// A reader count meaning one thread that spins and reads nothing: it
/// keeps the second core busy, as a reader does, so that the reader's own
/// cost to the writer can be told apart from that of a busy core.
const R6_SPINNER: usize = usize::MAX;
/// Fresh values per commit; the commit before's are removed.
const R6_K: u64 = 4;
/// Reads per read transaction (snapshot) before a reader takes a new one.
const R6_BATCH: u64 = 256;
/// The key of the root value, which names the newest commit's first key.
const R6_ROOT: u64 = u64::MAX;

/// One system under R6, shared by the writer thread and the reader threads.
enum R6Sys {
    Ours {
        shared: mappedpages::ConcurrentPager<PAGE>,
        root: mappedpages::ProtectedPageId<PAGE>,
        ids: Vec<PageId<PAGE>>,
    },
    Lmdb {
        env: heed::Env,
        db: LmdbDb,
    },
    Redb {
        db: redb::Database,
    },
}

/// The writer's own state: the keys (or pages) the last commit wrote.
struct R6Writer {
    older: Vec<u64>,
    next: u64,
}

/// The `q` quantile (0 = minimum, 1 = maximum), interpolated.
fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let pos = q * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

fn first8(b: &[u8]) -> u64 {
    b.first_chunk::<8>().map_or(0, |c| u64::from_le_bytes(*c))
}

fn text<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

impl R6Sys {
    fn create(system: &str, dir: &Path) -> R<R6Sys> {
        let mut block = vec![0u8; PAGE];
        let sub = dir.join(format!("r6-{system}"));
        std::fs::create_dir_all(&sub)?;
        Ok(match system {
            "ours" => {
                let mut pager = Pager::<PAGE>::options()
                    .durability(Durability::Immediate)
                    .initial_pages(R6_VALUES + 4096)
                    .create(sub.join("r6.pages"))?;
                let ids = pager.alloc_bulk(R6_VALUES as usize)?;
                for (i, id) in ids.iter().enumerate() {
                    id.get_mut(&mut pager)?.as_bytes_mut()[..8]
                        .copy_from_slice(&(i as u64).to_le_bytes());
                }
                pager.sync()?;
                let root = pager.alloc_protected()?;
                R6Sys::Ours {
                    shared: mappedpages::ConcurrentPager::new(pager)?,
                    root,
                    ids,
                }
            }
            "lmdb" => {
                let (env, db) = lmdb_env(&sub, true, 1 << 30)?;
                let mut w = env.write_txn()?;
                for i in 0..R6_VALUES {
                    block[..8].copy_from_slice(&i.to_le_bytes());
                    db.put(&mut w, &i, &block)?;
                }
                w.commit()?;
                R6Sys::Lmdb { env, db }
            }
            _ => {
                let (db, _) = redb_db(&sub, true)?;
                let tx = db.begin_write()?;
                {
                    let mut t = tx.open_table(TABLE)?;
                    for i in 0..R6_VALUES {
                        block[..8].copy_from_slice(&i.to_le_bytes());
                        t.insert(i, &block[..])?;
                    }
                }
                tx.commit()?;
                R6Sys::Redb { db }
            }
        })
    }

    /// One durable transaction: `R6_K` fresh values written, the `R6_K` the
    /// commit before wrote removed, the root pointed at the first new one.
    fn commit(&self, w: &mut R6Writer) -> Result<(), String> {
        let mut block = vec![0u8; PAGE];
        let older = std::mem::take(&mut w.older);
        match self {
            R6Sys::Ours { shared, root, .. } => {
                let mut guard = shared.write().map_err(text)?;
                let mut txn = guard.transaction().map_err(text)?;
                let ids = txn.alloc_bulk(R6_K as usize).map_err(text)?;
                for &id in &ids {
                    let bytes = txn.get_mut(id).map_err(text)?.as_bytes_mut();
                    bytes.fill(w.next as u8);
                    bytes[..8].copy_from_slice(&id.0.to_le_bytes());
                }
                txn.free_bulk(older.into_iter().map(PageId)).map_err(text)?;
                txn.write_protected(*root).map_err(text)?.as_bytes_mut()[..8]
                    .copy_from_slice(&ids[0].0.to_le_bytes());
                txn.commit().map_err(text)?;
                // The guard's drop publishes the commit to readers.
                drop(guard);
                w.older = ids.iter().map(|id| id.0).collect();
            }
            R6Sys::Lmdb { env, db } => {
                let mut t = env.write_txn().map_err(text)?;
                let keys: Vec<u64> = (w.next..w.next + R6_K).collect();
                for &k in &keys {
                    block[..8].copy_from_slice(&k.to_le_bytes());
                    db.put(&mut t, &k, &block).map_err(text)?;
                }
                for k in older {
                    db.delete(&mut t, &k).map_err(text)?;
                }
                db.put(&mut t, &R6_ROOT, &keys[0].to_le_bytes())
                    .map_err(text)?;
                t.commit().map_err(text)?;
                w.older = keys;
            }
            R6Sys::Redb { db } => {
                let tx = db.begin_write().map_err(text)?;
                let keys: Vec<u64> = (w.next..w.next + R6_K).collect();
                {
                    let mut t = tx.open_table(TABLE).map_err(text)?;
                    for &k in &keys {
                        block[..8].copy_from_slice(&k.to_le_bytes());
                        t.insert(k, &block[..]).map_err(text)?;
                    }
                    for k in older {
                        t.remove(k).map_err(text)?;
                    }
                    t.insert(R6_ROOT, &keys[0].to_le_bytes()[..])
                        .map_err(text)?;
                }
                tx.commit().map_err(text)?;
                w.older = keys;
            }
        }
        w.next += R6_K;
        Ok(())
    }

    /// One read transaction (a snapshot): the value the root names checked,
    /// then `R6_BATCH` random values read (their first 8 bytes).
    fn read_batch(&self, rng: &mut Rng) -> Result<u64, String> {
        let mask = R6_VALUES - 1;
        let mut sum = 0u64;
        match self {
            R6Sys::Ours { shared, root, ids } => {
                let snap = shared.read().map_err(text)?;
                let newest = first8(snap.get_protected(*root).map_err(text)?.as_bytes());
                if newest != 0
                    && first8(snap.get(PageId(newest)).map_err(text)?.as_bytes()) != newest
                {
                    return Err("the root's page does not read as its commit wrote it".into());
                }
                for _ in 0..R6_BATCH {
                    let id = ids[(rng.next() & mask) as usize];
                    sum = sum.wrapping_add(first8(snap.get(id).map_err(text)?.as_bytes()));
                }
            }
            R6Sys::Lmdb { env, db } => {
                let r = env.read_txn().map_err(text)?;
                if let Some(v) = db.get(&r, &R6_ROOT).map_err(text)? {
                    let newest = first8(v);
                    let page = db.get(&r, &newest).map_err(text)?.ok_or("missing")?;
                    if first8(page) != newest {
                        return Err("the root's value is not its commit's".into());
                    }
                }
                for _ in 0..R6_BATCH {
                    let k = rng.next() & mask;
                    let v = db.get(&r, &k).map_err(text)?.ok_or("missing")?;
                    sum = sum.wrapping_add(first8(v));
                }
            }
            R6Sys::Redb { db } => {
                let r = db.begin_read().map_err(text)?;
                let t = r.open_table(TABLE).map_err(text)?;
                if let Some(v) = t.get(R6_ROOT).map_err(text)? {
                    let newest = first8(v.value());
                    let page = t.get(newest).map_err(text)?.ok_or("missing")?;
                    if first8(page.value()) != newest {
                        return Err("the root's value is not its commit's".into());
                    }
                }
                for _ in 0..R6_BATCH {
                    let k = rng.next() & mask;
                    let v = t.get(k).map_err(text)?.ok_or("missing")?;
                    sum = sum.wrapping_add(first8(v.value()));
                }
            }
        }
        Ok(sum)
    }
}

/// One window: `readers` reader threads and, with `writer`, the writer
/// committing one transaction after another, for `window`. Returns the
/// commit times and the readers' total reads per second.
fn r6_window(
    sys: &R6Sys,
    writer: Option<&mut R6Writer>,
    readers: usize,
    window: Duration,
    seed: u64,
) -> R<(Vec<f64>, f64)> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = AtomicBool::new(false);
    let stop = &stop;
    let (readers, spinner) = if readers == R6_SPINNER {
        (0, true)
    } else {
        (readers, false)
    };
    let out = std::thread::scope(|s| -> Result<(Vec<f64>, f64), String> {
        if spinner {
            s.spawn(move || {
                let mut spins = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    spins = std::hint::black_box(spins.wrapping_add(1));
                }
            });
        }
        let handles: Vec<_> = (0..readers)
            .map(|r| {
                s.spawn(move || -> Result<f64, String> {
                    let mut rng = Rng(seed.wrapping_mul(31) + r as u64 * 7919 + 1);
                    let mut reads = 0u64;
                    let mut sum = 0u64;
                    let start = Instant::now();
                    while !stop.load(Ordering::Relaxed) {
                        sum = sum.wrapping_add(sys.read_batch(&mut rng)?);
                        reads += R6_BATCH;
                    }
                    std::hint::black_box(sum);
                    Ok(reads as f64 / start.elapsed().as_secs_f64())
                })
            })
            .collect();
        let writing = writer.map(|w| {
            s.spawn(move || -> Result<Vec<f64>, String> {
                let mut times = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let start = Instant::now();
                    sys.commit(w)?;
                    times.push(ns(start.elapsed()));
                }
                Ok(times)
            })
        });
        std::thread::sleep(window);
        stop.store(true, Ordering::Relaxed);
        let commits = match writing {
            Some(h) => h.join().map_err(|_| "the writer panicked")??,
            None => Vec::new(),
        };
        let mut rate = 0.0;
        for h in handles {
            rate += h.join().map_err(|_| "a reader panicked")??;
        }
        Ok((commits, rate))
    })?;
    Ok(out)
}

/// R6 on this crate (`ConcurrentPager`), LMDB and redb: read throughput of
/// one and two reader threads while a writer commits durable transactions
/// one after another, and the writer's commit time with one reader running
/// and with none. Every (system, configuration) pair runs in a window of
/// its own, all pairs once per round in a new random order.
fn run_r6(cfg: &Config, dir: &Path) -> R<Vec<Row>> {
    const SYSTEMS: [(&str, &str); 3] = [
        ("ours", "mappedpages (this crate), ConcurrentPager"),
        ("lmdb", "LMDB (heed)"),
        ("redb", "redb"),
    ];
    // (writer, readers): the writer alone, with 1 reader, with 2; 1 and 2
    // readers without a writer; the writer beside a spinning thread.
    const CONFIGS: [(bool, usize); 6] = [
        (true, 0),
        (true, 1),
        (true, 2),
        (false, 1),
        (false, 2),
        (true, R6_SPINNER),
    ];
    let window = Duration::from_millis(if cfg.quick { 100 } else { 200 });
    let rounds = if cfg.quick { 3 } else { 7 };
    let mut systems = Vec::new();
    for (system, _) in SYSTEMS {
        systems.push((
            R6Sys::create(system, dir)?,
            R6Writer {
                older: Vec::new(),
                next: 1 << 40,
            },
        ));
    }
    let mut commits = vec![vec![Vec::new(); CONFIGS.len()]; SYSTEMS.len()];
    let mut rates = vec![vec![Vec::new(); CONFIGS.len()]; SYSTEMS.len()];
    let mut order: Vec<(usize, usize)> = (0..SYSTEMS.len())
        .flat_map(|s| (0..CONFIGS.len()).map(move |c| (s, c)))
        .collect();
    let mut rng = Rng(0x5851_F42D_4C95_7F2D);
    // The first round warms up.
    for round in 0..=rounds {
        rng.shuffle(&mut order);
        for &(s, c) in &order {
            let (writes, readers) = CONFIGS[c];
            let (sys, writer) = &mut systems[s];
            let (times, rate) = r6_window(
                sys,
                writes.then_some(writer),
                readers,
                window,
                (round * 97 + s * 13 + c) as u64,
            )?;
            if round > 0 {
                commits[s][c].extend(times);
                rates[s][c].push(rate);
            }
        }
    }
    drop(systems);
    let ms = window.as_millis();
    let per_read = |s: usize, c: usize| 1e9 / median(&rates[s][c]);
    let mut rows = Vec::new();
    let groups = [
        (1, format!("R6 reads, 1 thread, writer committing: random 4 KiB values, {R6_BATCH} per read txn, while a writer commits durable transactions (ns per read)")),
        (2, "R6 reads, 2 threads, writer committing: the same (ns per read, both threads together)".to_string()),
        (3, "R6 reads without writer, 1 thread: the same reads, no writer (ns per read)".to_string()),
    ];
    for (c, title) in groups {
        for (s, (_, name)) in SYSTEMS.iter().enumerate() {
            let (lo, hi) = (
                1e9 / percentile(&rates[s][c], 1.0),
                1e9 / percentile(&rates[s][c], 0.0),
            );
            rows.push(time_row(
                &title,
                name,
                per_read(s, c),
                &format!(
                    "{:.1} M reads/s; windows of {ms} ms: {} to {}, n = {}",
                    median(&rates[s][c]) / 1e6,
                    fmt_ns(lo),
                    fmt_ns(hi),
                    rates[s][c].len()
                ),
            ));
        }
    }
    let title =
        "R6 read scaling, writer committing: reads/s of 2 reader threads / 1 (contract: ≥ 1.8)";
    for (s, (_, name)) in SYSTEMS.iter().enumerate() {
        let (two, one) = (median(&rates[s][2]), median(&rates[s][1]));
        let per_round: Vec<f64> = rates[s][2]
            .iter()
            .zip(&rates[s][1])
            .map(|(a, b)| a / b)
            .collect();
        rows.push(Row {
            group: title.into(),
            system: (*name).into(),
            value: Value::Number(two / one, "×".into()),
            syncs: String::new(),
            note: format!(
                "no writer: {:.2}×; per round {:.2}× to {:.2}×",
                median(&rates[s][4]) / median(&rates[s][3]),
                percentile(&per_round, 0.0),
                percentile(&per_round, 1.0)
            ),
        });
    }
    let title = format!("R6 commits, 1 reader running: a durable transaction of the writer ({R6_K} values written, {R6_K} removed, a root value)");
    for (s, (_, name)) in SYSTEMS.iter().enumerate() {
        let (with, without) = (median(&commits[s][1]), median(&commits[s][0]));
        rows.push(time_row(
            &title,
            name,
            with,
            &format!(
                "{:.2}× its {} without readers (contract: ≤ 1.1×); {:.2}× its {} beside a \
                 thread spinning without reading; with 2 readers {}; n = {}, {}",
                with / without,
                fmt_ns(without),
                with / median(&commits[s][5]),
                fmt_ns(median(&commits[s][5])),
                fmt_ns(median(&commits[s][2])),
                commits[s][1].len(),
                commits[s][0].len()
            ),
        ));
    }
    Ok(rows)
}

// ---------------------------------------------------------------------------
// W8: space after churn.

fn dir_bytes(path: &Path) -> (u64, u64) {
    let mut apparent = 0;
    let mut on_disk = 0;
    let meta = |p: &Path| std::fs::metadata(p).map(|m| (m.len(), m.blocks() * 512));
    if path.is_dir() {
        for e in std::fs::read_dir(path).into_iter().flatten().flatten() {
            if let Ok((a, d)) = meta(&e.path()) {
                apparent += a;
                on_disk += d;
            }
        }
    } else if let Ok((a, d)) = meta(path) {
        apparent += a;
        on_disk += d;
    }
    (apparent, on_disk)
}

fn run_w8(cfg: &Config, dir: &Path) -> R<Vec<Row>> {
    let n = cfg.churn;
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let mut keys: Vec<u64> = (0..n).collect();
    rng.shuffle(&mut keys);
    let freed: Vec<u64> = keys[..(n / 2) as usize].to_vec();
    let again = n / 4;
    let live = ((n - n / 2 + again) * PAGE as u64) as f64;
    let data = vec![0xC3u8; PAGE];
    let title = format!(
        "W8 space after churn: 2^{} × 4 KiB written, half freed, a quarter written again (file bytes per live byte)",
        n.trailing_zeros()
    );
    let mut rows = Vec::new();
    let push = |system: &str, path: &Path, rows: &mut Vec<Row>| {
        let (apparent, on_disk) = dir_bytes(path);
        rows.push(Row {
            group: title.clone(),
            system: system.into(),
            value: Value::Number(apparent as f64 / live, "B/B".into()),
            syncs: String::new(),
            note: format!(
                "file {:.1} MiB, on disk {:.1} MiB ({:.2} B/B)",
                apparent as f64 / (1 << 20) as f64,
                on_disk as f64 / (1 << 20) as f64,
                on_disk as f64 / live
            ),
        });
    };
    // This crate: pages are the values.
    {
        let path = dir.join("w8.pages");
        let mut p = Pager::<PAGE>::options()
            .durability(Durability::Deferred)
            .create(&path)?;
        let ids = p.alloc_bulk(n as usize)?;
        for id in &ids {
            id.get_mut(&mut p)?.as_bytes_mut().copy_from_slice(&data);
        }
        p.sync()?;
        p.free_bulk(freed.iter().map(|&k| ids[k as usize]).collect())?;
        let more = p.alloc_bulk(again as usize)?;
        for id in &more {
            id.get_mut(&mut p)?.as_bytes_mut().copy_from_slice(&data);
        }
        p.sync()?;
        drop(p);
        push("mappedpages (this crate)", &path, &mut rows);
        std::fs::remove_file(&path)?;
    }
    const BATCH: u64 = 4096;
    // redb.
    {
        let sub = dir.join("w8-redb");
        std::fs::create_dir_all(&sub)?;
        let (db, _) = redb_db(&sub, true)?;
        let batch_put = |keys: &mut dyn Iterator<Item = u64>| -> R<()> {
            let tx = db.begin_write()?;
            {
                let mut t = tx.open_table(TABLE)?;
                for k in keys {
                    t.insert(k, &data[..])?;
                }
            }
            tx.commit()?;
            Ok(())
        };
        for s in (0..n).step_by(BATCH as usize) {
            batch_put(&mut (s..(s + BATCH).min(n)))?;
        }
        for c in freed.chunks(BATCH as usize) {
            let tx = db.begin_write()?;
            {
                let mut t = tx.open_table(TABLE)?;
                for &k in c {
                    t.remove(k)?;
                }
            }
            tx.commit()?;
        }
        for s in (n..n + again).step_by(BATCH as usize) {
            batch_put(&mut (s..(s + BATCH).min(n + again)))?;
        }
        drop(db);
        push("redb", &sub, &mut rows);
        std::fs::remove_dir_all(&sub)?;
    }
    // LMDB.
    {
        let sub = dir.join("w8-lmdb");
        std::fs::create_dir_all(&sub)?;
        let (env, db) = lmdb_env(&sub, true, (n as usize * PAGE * 4).max(1 << 28))?;
        let put = |keys: &mut dyn Iterator<Item = u64>| -> R<()> {
            let mut w = env.write_txn()?;
            for k in keys {
                db.put(&mut w, &k, &data)?;
            }
            w.commit()?;
            Ok(())
        };
        for s in (0..n).step_by(BATCH as usize) {
            put(&mut (s..(s + BATCH).min(n)))?;
        }
        for c in freed.chunks(BATCH as usize) {
            let mut w = env.write_txn()?;
            for &k in c {
                db.delete(&mut w, &k)?;
            }
            w.commit()?;
        }
        for s in (n..n + again).step_by(BATCH as usize) {
            put(&mut (s..(s + BATCH).min(n + again)))?;
        }
        drop(env);
        // data.mdb only: lock.mdb is not data.
        push("LMDB (heed)", &sub.join("lmdb").join("data.mdb"), &mut rows);
        std::fs::remove_dir_all(&sub)?;
    }
    // SQLite.
    {
        let sub = dir.join("w8-sqlite");
        std::fs::create_dir_all(&sub)?;
        let mut conn = sqlite(&sub)?;
        let put = |conn: &mut rusqlite::Connection, keys: &mut dyn Iterator<Item = u64>| -> R<()> {
            let tx = conn.transaction()?;
            {
                let mut st = tx.prepare_cached("INSERT INTO t (k, v) VALUES (?1, ?2)")?;
                for k in keys {
                    st.execute(rusqlite::params![k as i64, &data[..]])?;
                }
            }
            tx.commit()?;
            Ok(())
        };
        for s in (0..n).step_by(BATCH as usize) {
            put(&mut conn, &mut (s..(s + BATCH).min(n)))?;
        }
        for c in freed.chunks(BATCH as usize) {
            let tx = conn.transaction()?;
            {
                let mut st = tx.prepare_cached("DELETE FROM t WHERE k = ?1")?;
                for &k in c {
                    st.execute([k as i64])?;
                }
            }
            tx.commit()?;
        }
        for s in (n..n + again).step_by(BATCH as usize) {
            put(&mut conn, &mut (s..(s + BATCH).min(n + again)))?;
        }
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        drop(conn);
        push("SQLite (WAL, checkpointed, no VACUUM)", &sub, &mut rows);
        std::fs::remove_dir_all(&sub)?;
    }
    Ok(rows)
}

// ---------------------------------------------------------------------------
// Machine description, output file and chart.

fn machine() -> (String, String) {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split(':').nth(1))
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    (model, format!("{cores}"))
}

fn fs_type(dir: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return "unknown".into();
    };
    // SAFETY: an all-zero statfs is a valid value of this plain C struct.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is NUL-terminated; `fs` is valid and writable.
    if unsafe { libc::statfs(c.as_ptr(), &mut fs) } != 0 {
        return "unknown".into();
    }
    match fs.f_type as i64 {
        0xEF53 => "ext4".into(),
        0x5846_5342 => "xfs".into(),
        0x9123_683E => "btrfs".into(),
        0x0102_1994 => "tmpfs".into(),
        0x794C_7630 => "overlayfs".into(),
        0x2FC1_2FC1 => "zfs".into(),
        other => format!("fs-{other:x}"),
    }
}

/// The one-minute load average, as the kernel prints it.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

fn today() -> String {
    // Civil date from the system clock (UTC), days-from-epoch algorithm.
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// Horizontal bars of the headline ratios (this crate / first row of group),
/// log scale would need more text; a plain bar per group with a 1.0 line.
fn chart(rows: &[Row], path: &Path) -> R<()> {
    use plotters::prelude::*;
    // Ratio of each system to the first row of its group, for groups with
    // timings only, as (label, ratio).
    let mut bars: Vec<(String, f64)> = Vec::new();
    let mut base: Option<(String, f64)> = None;
    for r in rows {
        let Value::Time(t) = r.value else { continue };
        if base.as_ref().is_none_or(|(g, _)| *g != r.group) {
            base = Some((r.group.clone(), t));
            continue;
        }
        let (g, b) = base.as_ref().unwrap();
        let short = short_group(g);
        bars.push((format!("{short}: {}", r.system), t / b));
    }
    let h = 40 + 22 * bars.len() as u32;
    let root = SVGBackend::new(path, (1100, h)).into_drawing_area();
    root.fill(&WHITE)?;
    let max = bars.iter().map(|b| b.1).fold(1.0f64, f64::max).min(50.0);
    let x0 = 560i32;
    let width = 500.0;
    let font = ("sans-serif", 13).into_font();
    root.draw(&Text::new(
        "ratio to the first row of each group (log2 scale; line at 1×)",
        (10, 8),
        font.clone(),
    ))?;
    let lmax = (max.log2()).max(1.0);
    let lmin = bars
        .iter()
        .map(|b| b.1.log2())
        .fold(0.0f64, f64::min)
        .max(-12.0);
    let scale = |r: f64| -> i32 {
        x0 + ((r.log2().clamp(lmin, lmax) - lmin) / (lmax - lmin) * width) as i32
    };
    let one = scale(1.0);
    for (i, (label, ratio)) in bars.iter().enumerate() {
        let y = 32 + 22 * i as i32;
        root.draw(&Text::new(label.clone(), (10, y + 3), font.clone()))?;
        let (a, b) = if *ratio >= 1.0 {
            (one, scale(*ratio))
        } else {
            (scale(*ratio), one)
        };
        let color = if label.contains("this crate") {
            BLUE
        } else {
            RGBColor(150, 150, 150)
        };
        root.draw(&Rectangle::new(
            [(a, y), (b.max(a + 1), y + 16)],
            color.filled(),
        ))?;
        root.draw(&Text::new(
            format!("{ratio:.2}×"),
            (b.max(a) + 4, y + 3),
            font.clone(),
        ))?;
    }
    root.draw(&PathElement::new(
        vec![(one, 28), (one, h as i32 - 4)],
        BLACK,
    ))?;
    root.present()?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Main.

fn main() -> R<()> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    match args.first().map(String::as_str) {
        Some("child-ops") => {
            let n: usize = args.get(3).ok_or("child-ops W SYS N DIR")?.parse()?;
            return child_ops(&args[1], &args[2], n, Path::new(&args[4]));
        }
        Some("child-bulk") => {
            let n: usize = args.get(3).ok_or("child-bulk SYS PATH N")?.parse()?;
            return child_bulk(&args[1], Path::new(&args[2]), n);
        }
        Some("child-seed-build") => {
            let n: usize = args.get(2).ok_or("child-seed-build PATH N")?.parse()?;
            return child_seed_build(Path::new(&args[1]), n);
        }
        Some("child-open") => {
            let path = args.get(2).ok_or("child-open SYS PATH")?;
            return child_open(&args[1], Path::new(path));
        }
        _ => {}
    }
    let quick = std::env::var("QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    let cfg = Config::new(quick);
    let base = args
        .first()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    std::fs::create_dir_all(&base)?;
    let tmp = tempfile::Builder::new()
        .prefix("compare-")
        .tempdir_in(&base)?;
    let dir = tmp.path();
    let only: Option<Vec<String>> = std::env::var("ONLY")
        .ok()
        .filter(|s| !s.is_empty())
        .map(|s| s.split(',').map(|x| x.trim().to_lowercase()).collect());
    let on = |w: &str| only.as_ref().is_none_or(|l| l.iter().any(|x| x == w));
    let syncs_off = std::env::var("SYNCS").is_ok_and(|v| v == "0");
    let have_strace = strace_available();
    let syncs = have_strace && !syncs_off;
    let load_start = loadavg();

    let (cpu, cores) = machine();
    let fs = fs_type(dir);
    let start = Instant::now();
    let mut rows = Vec::new();
    let mut done = Vec::new();
    let step = |name: &str, rows: &mut Vec<Row>, r: R<Vec<Row>>| {
        match r {
            Ok(v) => rows.extend(v),
            Err(e) => eprintln!("{name} failed: {e}"),
        }
        eprintln!("{name} done at {:.1} s", start.elapsed().as_secs_f64());
    };
    for g in SYNC_GROUPS {
        if on(g.workload) {
            step(
                g.workload,
                &mut rows,
                run_group(g, dir, cfg.rounds, cfg.warmup, syncs),
            );
            done.push(g.workload);
        }
    }
    for g in T3_GROUPS {
        if on("t3") || on(g.workload) {
            // A transaction of 256 pages takes milliseconds: fewer rounds.
            let rounds = match t3_size(g.workload) {
                Some(k) if k > 16 => cfg.rounds / 3,
                _ => cfg.rounds,
            };
            step(
                g.workload,
                &mut rows,
                run_group(g, dir, rounds, cfg.warmup, syncs),
            );
            done.push(g.workload);
        }
    }
    if on("w5") {
        step("w5", &mut rows, run_w5(&cfg, dir));
        done.push("w5");
    }
    if on("r6") {
        step("r6", &mut rows, run_r6(&cfg, dir));
        done.push("r6");
    }
    if on("w7") {
        for g in NOSYNC_GROUPS {
            step(
                g.workload,
                &mut rows,
                run_group(g, dir, cfg.fast_rounds, cfg.warmup, syncs),
            );
        }
        done.push("w7");
    }
    if on("t4") {
        step(
            "t4",
            &mut rows,
            run_group(&T4_GROUP, dir, cfg.fast_rounds, cfg.warmup, syncs),
        );
        done.push("t4");
    }
    if on("w4") {
        step("w4", &mut rows, run_w4(&cfg, dir));
        done.push("w4");
    }
    if on("w6") {
        step("w6", &mut rows, run_w6(&cfg, dir));
        done.push("w6");
    }
    if on("w8") {
        step("w8", &mut rows, run_w8(&cfg, dir));
        done.push("w8");
    }
    if on("kv") {
        let counter = |system: &str| {
            if syncs {
                count_syncs("kv-writes", system, dir).unwrap_or_else(|e| format!("? ({e})"))
            } else {
                String::new()
            }
        };
        step("kv", &mut rows, kv::run(quick, dir, &counter));
        done.push("kv");
    }
    drop(tmp);

    let date = today();
    let sync_note = if syncs {
        format!(
            "Syncs/op (W1-W3, W7, T3, T4, KV individual writes) counted with `strace -f` in a child process that \
             repeats the workload's setup and then runs 0 or {STRACE_OPS} operations: \
             (count with {STRACE_OPS} − count with 0) / {STRACE_OPS}. Counted: fsync, \
             fdatasync, msync(MS_SYNC), sync_file_range, syncfs and sync calls, and \
             writes through a descriptor opened with O_DSYNC or O_SYNC (or pwritev2 \
             with RWF_DSYNC), which the contract counts as sync calls; where there \
             are such writes the column shows both parts."
        )
    } else if syncs_off {
        "Sync calls were not counted in this run (`SYNCS=0`): the syncs/op column \
         is empty."
            .to_string()
    } else {
        "Sync calls were not counted in this run (strace was not found): the \
         syncs/op column is empty."
            .to_string()
    };
    let mut command = String::from("cd bench/compare && ");
    for var in ["QUICK", "ONLY", "SYNCS"] {
        if let Ok(v) = std::env::var(var) {
            command.push_str(&format!("{var}={v} "));
        }
    }
    command.push_str("cargo run --release");
    let mut md = format!(
        "# mappedpages compared ({} mode, {date})\n\n\
         Command: `{command}`. Machine: {cpu}, {cores} cores; files on {fs}. \
         Workloads run: {}.\n\n\
         How it is timed: medians of repeated runs; ratios are to the first row \
         of each group. W1-W3, W5, W7, T3 and T4: the systems of a group run in this \
         one process, interleaved round by round, in a new random order \
         every round (W5: each timed pass right after an untimed pass of its \
         own, so that no system is timed just after another one swept the \
         caches). W4 and W6: every timed call runs in a new child process, for \
         both crates alike, the two alternating run by run (W6's row \
         \"open repeated in one process\" is the exception, and says so). \
         W8 measures space: one run per system, one after another. R6: every \
         (system, configuration) pair runs for a window of its own (200 ms; 100 \
         in quick mode), all pairs once per round in a new random order, after \
         one round of warm-up; read rates are medians over windows, commit \
         times medians over all commits of the windows. KV: one store per \
         system, all open side by side, the systems running one phase after \
         another in a new random order every phase; a phase's figure is its \
         time divided by its operations (reads and ranges: the median of \
         three passes, one in quick mode); ratios are to this crate's row, \
         whose note gives its ratio to the best peer. The KV sync count's \
         child loads 10 000 pairs before its commits.\n\n\
         {sync_note}\n\n\
         The machine may be shared with other work (load average over one \
         minute: {load_start} at the start, {} at the end), so single figures \
         are noisy: compare the ratios within a group, measured side by side \
         in this run, rather than figures across runs.\n\n",
        if quick { "quick" } else { "full" },
        done.join(", "),
        loadavg(),
    );
    md.push_str(&table(&rows));
    md.push_str(&format!(
        "\nTotal run time {:.0} s.\n",
        start.elapsed().as_secs_f64()
    ));
    println!("{md}");

    let results = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results");
    std::fs::create_dir_all(&results)?;
    let name = format!(
        "{date}-{}-{cores}core-{fs}{}",
        slug(&cpu),
        if quick { "-quick" } else { "" }
    );
    let md_path = results.join(format!("{name}.md"));
    std::fs::write(&md_path, &md)?;
    eprintln!("wrote {}", md_path.display());
    let svg = results.join(format!("{name}.svg"));
    match chart(&rows, &svg) {
        Ok(()) => eprintln!("wrote {}", svg.display()),
        Err(e) => eprintln!("no chart: {e}"),
    }
    Ok(())
}
