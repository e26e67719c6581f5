//! KV: the workload redb publishes (its `lmdb_benchmark`: keys of 24 bytes,
//! values of 150 bytes, random order), on the B+tree of `examples/btree`
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
//! give the median pass.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::time::Instant;

use heed::types::Bytes;
use heed::EnvOpenOptions;
use redb::TableDefinition;

use crate::tree::Db;
use crate::{dir_bytes, median, ns, Op, Rng, Row, Value, R};

const KEY: usize = 24;
const VALUE: usize = 150;
const KV_TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");
type LmdbKv = heed::Database<Bytes, Bytes>;

pub const SYSTEMS: &[&str] = &["ours", "redb", "lmdb", "sqlite"];

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

/// `count` random pairs, one flat buffer of keys and one of values.
struct Pairs {
    keys: Vec<[u8; KEY]>,
    values: Vec<[u8; VALUE]>,
}

impl Pairs {
    fn random(count: usize, rng: &mut Rng) -> Pairs {
        let mut fill = |b: &mut [u8]| {
            for chunk in b.chunks_mut(8) {
                let r = rng.next().to_le_bytes();
                chunk.copy_from_slice(&r[..chunk.len()]);
            }
        };
        let mut keys = vec![[0u8; KEY]; count];
        let mut values = vec![[0u8; VALUE]; count];
        for (k, v) in keys.iter_mut().zip(values.iter_mut()) {
            fill(k);
            fill(v);
        }
        Pairs { keys, values }
    }

    fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.keys
            .iter()
            .zip(&self.values)
            .map(|(k, v)| (&k[..], &v[..]))
    }
}

/// A value's fingerprint, summed over reads so that every system must
/// find the same values.
fn print(v: &[u8]) -> u64 {
    u64::from(v[0]) + (u64::from(v[VALUE - 1]) << 8)
}

/// A phase's time per operation on each system (by index in `SYSTEMS`)
/// and what each one's reads summed to.
type Timed = (Vec<(usize, f64)>, Vec<u64>);

/// One store of one system.
enum Store {
    Ours(Box<Db>),
    Redb(redb::Database),
    Lmdb(heed::Env, LmdbKv),
    /// The path, so that reader threads open connections of their own.
    Sqlite(rusqlite::Connection, PathBuf),
}

fn sqlite_open(path: &Path) -> R<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path)?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(format!("SQLite journal mode {mode}, not WAL").into());
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    // A page cache as large as redb's default (1 GiB), so that neither
    // reads its file through a smaller cache than the other.
    conn.pragma_update(None, "cache_size", -(1i64 << 20))?;
    Ok(conn)
}

impl Store {
    fn create(system: &str, dir: &Path) -> R<Store> {
        let sub = dir.join(format!("kv-{system}"));
        std::fs::create_dir_all(&sub)?;
        Ok(match system {
            // Db::create: the pager's defaults, Durability::Immediate.
            "ours" => Store::Ours(Box::new(Db::create(sub.join("kv.pages"))?)),
            "redb" => {
                // redb's defaults: Durability::Immediate, a 1 GiB cache.
                let db = redb::Database::create(sub.join("kv.redb"))?;
                let tx = db.begin_write()?;
                tx.open_table(KV_TABLE)?;
                tx.commit()?;
                Store::Redb(db)
            }
            "lmdb" => {
                let mut opts = EnvOpenOptions::new();
                // Default flags: a sync at every commit.
                opts.map_size(8 << 30).max_dbs(1);
                // SAFETY: the directory is new and opened once, by this
                // process only.
                let env = unsafe { opts.open(&sub)? };
                let mut w = env.write_txn()?;
                let db: LmdbKv = env.create_database(&mut w, None)?;
                w.commit()?;
                Store::Lmdb(env, db)
            }
            "sqlite" => {
                let path = sub.join("kv.sqlite");
                let conn = sqlite_open(&path)?;
                conn.execute("CREATE TABLE kv (k BLOB PRIMARY KEY, v BLOB NOT NULL)", [])?;
                Store::Sqlite(conn, path)
            }
            other => Err(format!("no system {other} in kv"))?,
        })
    }

    /// One durable write transaction of `pairs`.
    fn put<'a>(&mut self, pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> R<()> {
        match self {
            Store::Ours(db) => {
                let mut w = db.write()?;
                for (k, v) in pairs {
                    w.insert(k, v)?;
                }
                w.commit()?;
            }
            Store::Redb(db) => {
                let tx = db.begin_write()?;
                {
                    let mut t = tx.open_table(KV_TABLE)?;
                    for (k, v) in pairs {
                        t.insert(k, v)?;
                    }
                }
                tx.commit()?;
            }
            Store::Lmdb(env, db) => {
                let mut w = env.write_txn()?;
                for (k, v) in pairs {
                    db.put(&mut w, k, v)?;
                }
                w.commit()?;
            }
            Store::Sqlite(conn, _) => {
                let tx = conn.transaction()?;
                {
                    let mut st = tx.prepare_cached("INSERT INTO kv (k, v) VALUES (?1, ?2)")?;
                    for (k, v) in pairs {
                        st.execute(rusqlite::params![k, v])?;
                    }
                }
                tx.commit()?;
            }
        }
        Ok(())
    }

    /// One durable transaction removing `keys`, all present.
    fn remove(&mut self, keys: &[[u8; KEY]]) -> R<()> {
        let missing = || -> Box<dyn std::error::Error> { "a removed key was missing".into() };
        match self {
            Store::Ours(db) => {
                let mut w = db.write()?;
                for k in keys {
                    w.remove(k)?.ok_or_else(missing)?;
                }
                w.commit()?;
            }
            Store::Redb(db) => {
                let tx = db.begin_write()?;
                {
                    let mut t = tx.open_table(KV_TABLE)?;
                    for k in keys {
                        t.remove(&k[..])?.ok_or_else(missing)?;
                    }
                }
                tx.commit()?;
            }
            Store::Lmdb(env, db) => {
                let mut w = env.write_txn()?;
                for k in keys {
                    if !db.delete(&mut w, k)? {
                        return Err(missing());
                    }
                }
                w.commit()?;
            }
            Store::Sqlite(conn, _) => {
                let tx = conn.transaction()?;
                {
                    let mut st = tx.prepare_cached("DELETE FROM kv WHERE k = ?1")?;
                    for k in keys {
                        if st.execute([&k[..]])? != 1 {
                            return Err(missing());
                        }
                    }
                }
                tx.commit()?;
            }
        }
        Ok(())
    }

    /// What a reader thread needs: this crate's read transaction (cloned
    /// to each thread: the same snapshot), the others' handles.
    fn reader(&self) -> R<Reader<'_>> {
        Ok(match self {
            Store::Ours(db) => Reader::Ours(db.read()?),
            Store::Redb(db) => Reader::Redb(db),
            Store::Lmdb(env, db) => Reader::Lmdb(env, *db),
            Store::Sqlite(_, path) => Reader::Sqlite(path),
        })
    }

    /// `len` pairs in order from each of `starts`, in one read transaction:
    /// the sum of their prints (and the count, which must be exact).
    fn ranges(&self, starts: &[[u8; KEY]], len: usize) -> R<(u64, usize)> {
        let (mut sum, mut count) = (0u64, 0usize);
        match self {
            Store::Ours(db) => {
                let r = db.read()?;
                for s in starts {
                    for e in r.range(&s[..]..)?.take(len) {
                        sum += print(&e?.1);
                        count += 1;
                    }
                }
            }
            Store::Redb(db) => {
                let r = db.begin_read()?;
                let t = r.open_table(KV_TABLE)?;
                for s in starts {
                    for e in t.range(&s[..]..)?.take(len) {
                        sum += print(e?.1.value());
                        count += 1;
                    }
                }
            }
            Store::Lmdb(env, db) => {
                let r = env.read_txn()?;
                for s in starts {
                    for e in db
                        .range(&r, &(Bound::Included(&s[..]), Bound::Unbounded))?
                        .take(len)
                    {
                        sum += print(e?.1);
                        count += 1;
                    }
                }
            }
            Store::Sqlite(_, path) => {
                let mut conn = sqlite_open(path)?;
                let tx = conn.transaction()?;
                {
                    let mut st =
                        tx.prepare_cached("SELECT v FROM kv WHERE k >= ?1 ORDER BY k LIMIT ?2")?;
                    for s in starts {
                        let mut rows = st.query(rusqlite::params![&s[..], len as i64])?;
                        while let Some(row) = rows.next()? {
                            sum += print(row.get_ref(0)?.as_blob()?);
                            count += 1;
                        }
                    }
                }
                tx.commit()?;
            }
        }
        Ok((sum, count))
    }

    /// Folds SQLite's WAL into its database, as LMDB and redb hold
    /// everything in their one file; the others have nothing to do.
    fn settle(&mut self) -> R<()> {
        if let Store::Sqlite(conn, _) = self {
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        }
        Ok(())
    }
}

/// A handle for reads, `Send` for every system.
#[derive(Clone)]
enum Reader<'a> {
    Ours(crate::tree::ReadTxn),
    Redb(&'a redb::Database),
    Lmdb(&'a heed::Env, LmdbKv),
    Sqlite(&'a Path),
}

impl Reader<'_> {
    /// Reads `keys` in one read transaction: the sum of their prints.
    fn get(&self, keys: &[[u8; KEY]]) -> R<u64> {
        let missing = || -> Box<dyn std::error::Error> { "a read key was missing".into() };
        let mut sum = 0u64;
        match self {
            Reader::Ours(r) => {
                for k in keys {
                    sum += print(&r.get(k)?.ok_or_else(missing)?);
                }
            }
            Reader::Redb(db) => {
                let r = db.begin_read()?;
                let t = r.open_table(KV_TABLE)?;
                for k in keys {
                    sum += print(t.get(&k[..])?.ok_or_else(missing)?.value());
                }
            }
            Reader::Lmdb(env, db) => {
                let r = env.read_txn()?;
                for k in keys {
                    sum += print(db.get(&r, k)?.ok_or_else(missing)?);
                }
            }
            Reader::Sqlite(path) => {
                let mut conn = sqlite_open(path)?;
                let tx = conn.transaction()?;
                {
                    let mut st = tx.prepare_cached("SELECT v FROM kv WHERE k = ?1")?;
                    for k in keys {
                        sum += st.query_row([&k[..]], |row| {
                            row.get_ref(0)?.as_blob().map(print).map_err(Into::into)
                        })?;
                    }
                }
                tx.commit()?;
            }
        }
        Ok(sum)
    }
}

fn label(system: &str) -> &'static str {
    match system {
        "ours" => "B+tree on mappedpages (this crate, examples/btree), Immediate",
        "redb" => "redb, Durability::Immediate",
        "lmdb" => "LMDB (heed), default sync",
        _ => "SQLite, WAL, synchronous=FULL",
    }
}

/// The store files of `system` in `dir` (LMDB: data.mdb only; lock.mdb is
/// not data).
fn store_files(system: &str, dir: &Path) -> PathBuf {
    let sub = dir.join(format!("kv-{system}"));
    match system {
        "ours" => sub.join("kv.pages"),
        "redb" => sub.join("kv.redb"),
        "lmdb" => sub.join("data.mdb"),
        _ => sub,
    }
}

/// The rows of one phase: the time per operation of each system, the ratio
/// to this crate's row (first), and in this crate's note its ratio to the
/// best peer.
fn phase_rows(title: &str, times: &[(usize, f64)], notes: &[String]) -> Vec<Row> {
    let best_peer = times
        .iter()
        .filter(|(s, _)| SYSTEMS[*s] != "ours")
        .min_by(|a, b| a.1.total_cmp(&b.1));
    let mut sorted: Vec<(usize, f64)> = times.to_vec();
    sorted.sort_by_key(|(s, _)| *s);
    sorted
        .iter()
        .map(|&(s, t)| {
            let mut note = notes[s].clone();
            if SYSTEMS[s] == "ours" {
                if let Some(&(b, bt)) = best_peer {
                    let ratio = format!("{:.2}× the best peer ({})", t / bt, short(SYSTEMS[b]));
                    note = if note.is_empty() {
                        ratio
                    } else {
                        format!("{ratio}; {note}")
                    };
                }
            }
            Row {
                group: title.into(),
                system: label(SYSTEMS[s]).into(),
                value: Value::Time(t),
                syncs: String::new(),
                note,
            }
        })
        .collect()
}

fn short(system: &str) -> &'static str {
    match system {
        "ours" => "this crate",
        "redb" => "redb",
        "lmdb" => "LMDB",
        _ => "SQLite",
    }
}

pub fn run(quick: bool, dir: &Path, count_syncs: &dyn Fn(&str) -> String) -> R<Vec<Row>> {
    let c = Counts::new(quick);
    let mut rng = Rng(0x0003_0003_0003_0003);
    let loaded = Pairs::random(c.n, &mut rng);
    let singles = Pairs::random(c.individual, &mut rng);
    let batched = Pairs::random(c.batches * c.batch, &mut rng);
    // Reads in an order unrelated to the load's.
    let mut reads = loaded.keys.clone();
    rng.shuffle(&mut reads);
    let starts: Vec<[u8; KEY]> = (0..c.ranges)
        .map(|_| loaded.keys[(rng.next() % c.n as u64) as usize])
        .collect();
    let mut removed = loaded.keys.clone();
    rng.shuffle(&mut removed);
    removed.truncate(c.n / 2);

    let mut stores: Vec<Store> = SYSTEMS
        .iter()
        .map(|s| Store::create(s, dir))
        .collect::<R<_>>()?;
    let mut order: Vec<usize> = (0..SYSTEMS.len()).collect();
    let mut rows = Vec::new();
    let none = vec![String::new(); SYSTEMS.len()];
    let n = c.n;

    // Runs `phase` on every store in a new random order; its time per op.
    let mut each = |rng: &mut Rng,
                    stores: &mut [Store],
                    ops: usize,
                    phase: &mut dyn FnMut(&mut Store) -> R<u64>|
     -> R<Timed> {
        rng.shuffle(&mut order);
        let mut times = Vec::new();
        let mut sums = vec![0u64; stores.len()];
        for &s in &order {
            let start = Instant::now();
            sums[s] = phase(&mut stores[s])?;
            times.push((s, ns(start.elapsed()) / ops as f64));
            eprintln!("  kv {} {}", SYSTEMS[s], crate::fmt_ns(ns(start.elapsed())));
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
    let (t, _) = each(&mut rng, &mut stores, n, &mut |st| {
        st.put(loaded.iter())?;
        Ok(0)
    })?;
    rows.extend(phase_rows(
        &format!("KV bulk load, {n} pairs in one transaction (per pair)"),
        &t,
        &none,
    ));

    eprintln!("kv individual writes");
    let mut medians = vec![String::new(); SYSTEMS.len()];
    let mut ours_syncs = 0;
    let (t, _) = each(&mut rng, &mut stores, c.individual, &mut |st| {
        let before = match st {
            Store::Ours(db) => db.pager().sync_count(),
            _ => 0,
        };
        let mut each_time = Vec::with_capacity(c.individual);
        for (k, v) in singles.iter() {
            let start = Instant::now();
            st.put(std::iter::once((k, v)))?;
            each_time.push(ns(start.elapsed()));
        }
        if let Store::Ours(db) = st {
            ours_syncs = db.pager().sync_count() - before;
        }
        let i = SYSTEMS.iter().position(|s| *s == st_name(st)).unwrap_or(0);
        medians[i] = format!("median commit {}", crate::fmt_ns(median(&each_time)));
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
        &t,
        &medians,
    );
    for (row, s) in r.iter_mut().zip(SYSTEMS) {
        row.syncs = count_syncs(s);
    }
    rows.extend(r);

    eprintln!("kv batch writes");
    let (t, _) = each(&mut rng, &mut stores, c.batches * c.batch, &mut |st| {
        for chunk in 0..c.batches {
            let range = chunk * c.batch..(chunk + 1) * c.batch;
            st.put(
                batched.keys[range.clone()]
                    .iter()
                    .zip(&batched.values[range])
                    .map(|(k, v)| (&k[..], &v[..])),
            )?;
        }
        Ok(0)
    })?;
    rows.extend(phase_rows(
        &format!(
            "KV batch writes, {} durable transactions of {} pairs (per pair)",
            c.batches, c.batch
        ),
        &t,
        &none,
    ));

    eprintln!("kv random reads");
    let mut passes: Vec<Vec<f64>> = vec![Vec::new(); SYSTEMS.len()];
    for _ in 0..c.passes {
        let (t, sums) = each(&mut rng, &mut stores, n, &mut |st| st.reader()?.get(&reads))?;
        same(&sums, "random reads")?;
        for (s, t) in t {
            passes[s].push(t);
        }
    }
    let t: Vec<(usize, f64)> = passes.iter().map(|p| median(p)).enumerate().collect();
    rows.extend(phase_rows(
        &format!("KV random reads, {n} on one thread, one read transaction (per read)"),
        &t,
        &vec![passes_note(c.passes); SYSTEMS.len()],
    ));

    eprintln!("kv random reads, two threads");
    let mut passes: Vec<Vec<f64>> = vec![Vec::new(); SYSTEMS.len()];
    for _ in 0..c.passes {
        let (t, sums) = each(&mut rng, &mut stores, n, &mut |st| {
            let reader = st.reader()?;
            let theirs_reader = reader.clone();
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
        &t,
        &vec![passes_note(c.passes); SYSTEMS.len()],
    ));

    eprintln!("kv ranges");
    let mut passes: Vec<Vec<f64>> = vec![Vec::new(); SYSTEMS.len()];
    for _ in 0..c.passes {
        let (t, sums) = each(&mut rng, &mut stores, c.ranges, &mut |st| {
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
        &t,
        &vec![passes_note(c.passes); SYSTEMS.len()],
    ));

    eprintln!("kv removals");
    let (t, _) = each(&mut rng, &mut stores, removed.len(), &mut |st| {
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
        &t,
        &none,
    ));

    // Every store's last state, its files closed (so that redb and LMDB
    // have written all they keep in memory).
    for st in &mut stores {
        st.settle()?;
    }
    drop(stores);
    let sizes: Vec<(u64, u64)> = SYSTEMS
        .iter()
        .map(|s| dir_bytes(&store_files(s, dir)))
        .collect();
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
        let lmdb = sizes[2];
        for (s, &(len, disk)) in SYSTEMS.iter().zip(&sizes) {
            let b = if pick == 0 { len } else { disk };
            let mut note = format!(
                "{:.2} bytes per live byte; file {:.1} MiB, on disk {:.1} MiB",
                b as f64 / live as f64,
                mib(len),
                mib(disk)
            );
            if *s == "ours" {
                let l = if pick == 0 { lmdb.0 } else { lmdb.1 };
                note = format!("{:.2}× LMDB's; {note}", b as f64 / l as f64);
            }
            rows.push(Row {
                group: title.clone(),
                system: label(s).into(),
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

fn st_name(st: &Store) -> &'static str {
    match st {
        Store::Ours(_) => "ours",
        Store::Redb(_) => "redb",
        Store::Lmdb(..) => "lmdb",
        Store::Sqlite(..) => "sqlite",
    }
}

/// For counting sync calls: one durable commit of one new pair per call,
/// after a load of 10 000 pairs.
pub fn write_op(system: &str, dir: &Path) -> R<Op> {
    let mut rng = Rng(0x5EED);
    let load = Pairs::random(10_000, &mut rng);
    let mut st = Store::create(system, dir)?;
    st.put(load.iter())?;
    Ok(Box::new(move |_| {
        let pair = Pairs::random(1, &mut rng);
        let start = Instant::now();
        st.put(pair.iter())?;
        Ok(ns(start.elapsed()))
    }))
}
