//! SQLite (rusqlite, bundled): for the page workloads in WAL mode,
//! `synchronous=FULL` (or `OFF` without sync), an integer-keyed table; for
//! KV its defaults, as redb's benchmark opens it, and a blob-keyed table.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Engine, Work};
use crate::support::stats::ns;
use crate::support::PAGE;
use crate::workloads::group::{text, Committer, GroupStore, Stamped, THREADS};
use crate::workloads::kv::{pop_alternately, KvConnection, KvRead, KvStore, Pair, SortedPair, KEY};
use crate::workloads::w8::{Churn, CHURN_BATCH};
use crate::{Op, R};

pub struct Sqlite;

/// A connection in WAL mode, `synchronous=FULL` (or `OFF` without `sync`).
fn open(path: &Path, sync: bool) -> R<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path)?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(format!("SQLite journal mode {mode}, not WAL").into());
    }
    conn.pragma_update(None, "synchronous", if sync { "FULL" } else { "OFF" })?;
    Ok(conn)
}

/// The page workloads' database, its table made.
fn create(dir: &Path, sync: bool) -> R<rusqlite::Connection> {
    let conn = open(&dir.join("sqlite.db"), sync)?;
    conn.execute(
        "CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v BLOB NOT NULL)",
        [],
    )?;
    Ok(conn)
}

impl Engine for Sqlite {
    fn id(&self) -> &'static str {
        "sqlite"
    }

    fn label(&self, work: Work) -> String {
        if work.sync() {
            "SQLite, WAL, synchronous=FULL".into()
        } else {
            "SQLite, WAL, synchronous=OFF".into()
        }
    }

    fn op(&self, work: Work, dir: &Path, _cap: usize) -> R<Op> {
        let data = vec![0xA5u8; PAGE];
        match work {
            Work::Write { sync } => {
                let conn = create(dir, sync)?;
                Ok(Box::new(move |i| {
                    let start = Instant::now();
                    conn.prepare_cached("INSERT INTO t (k, v) VALUES (?1, ?2)")?
                        .execute(rusqlite::params![i as i64, &data[..]])?;
                    Ok(ns(start.elapsed()))
                }))
            }
            Work::Txn { k } => {
                let keys = move |i: u64| (i * k as u64)..((i + 1) * k as u64);
                let mut conn = create(dir, true)?;
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
            _ => Err(format!("no system sqlite in {work:?}").into()),
        }
    }

    fn churn(&self, dir: &Path, churn: &Churn) -> R<(String, PathBuf)> {
        let (n, again) = (churn.n, churn.again);
        let mut conn = create(dir, true)?;
        let put = |conn: &mut rusqlite::Connection, keys: &mut dyn Iterator<Item = u64>| -> R<()> {
            let tx = conn.transaction()?;
            {
                let mut st = tx.prepare_cached("INSERT INTO t (k, v) VALUES (?1, ?2)")?;
                for k in keys {
                    st.execute(rusqlite::params![k as i64, &churn.data[..]])?;
                }
            }
            tx.commit()?;
            Ok(())
        };
        for s in (0..n).step_by(CHURN_BATCH) {
            put(&mut conn, &mut (s..(s + CHURN_BATCH as u64).min(n)))?;
        }
        for c in churn.freed.chunks(CHURN_BATCH) {
            let tx = conn.transaction()?;
            {
                let mut st = tx.prepare_cached("DELETE FROM t WHERE k = ?1")?;
                for &k in c {
                    st.execute([k as i64])?;
                }
            }
            tx.commit()?;
        }
        for s in (n..n + again).step_by(CHURN_BATCH) {
            put(&mut conn, &mut (s..(s + CHURN_BATCH as u64).min(n + again)))?;
        }
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok((
            "SQLite (WAL, checkpointed, no VACUUM)".into(),
            dir.to_path_buf(),
        ))
    }

    fn group(&self, dir: &Path) -> R<Vec<Box<dyn GroupStore>>> {
        // A row for every thread number, which its commits overwrite.
        let mut conn = create(dir, true)?;
        let tx = conn.transaction()?;
        {
            let mut st = tx.prepare("INSERT INTO t (k, v) VALUES (?1, ?2)")?;
            for thread in 0..THREADS.iter().copied().max().unwrap_or(1) {
                st.execute(rusqlite::params![thread as i64, &[0u8; PAGE][..]])?;
            }
        }
        tx.commit()?;
        Ok(vec![Box::new(SqliteGroup(dir.join("sqlite.db")))])
    }

    fn kv(&self, dir: &Path) -> R<Box<dyn KvStore>> {
        // As redb's benchmark opens it: SQLite's defaults, checked so that
        // the label says what ran.
        let path = dir.join("kv.sqlite");
        let conn = rusqlite::Connection::open(&path)?;
        let journal: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        let sync: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
        if !journal.eq_ignore_ascii_case("delete") || sync != 2 {
            return Err(format!("SQLite defaults: journal {journal}, synchronous {sync}").into());
        }
        conn.execute("CREATE TABLE kv (key BLOB PRIMARY KEY, value BLOB)", [])?;
        Ok(Box::new(SqliteKv { conn, path }))
    }
}

/// G: a connection per thread (WAL, `synchronous=FULL`, a busy timeout,
/// which a writer waits on while another connection writes), every commit
/// one `UPDATE` of the thread's own row.
struct SqliteGroup(PathBuf);

/// How long a connection waits for another's write to end.
const BUSY: Duration = Duration::from_secs(30);

impl GroupStore for SqliteGroup {
    fn label(&self) -> &'static str {
        "SQLite, WAL, synchronous=FULL, a connection per thread, busy timeout 30 s"
    }

    fn short(&self) -> &'static str {
        "SQLite"
    }

    fn committer(&self, thread: usize) -> Result<Box<dyn Committer + '_>, String> {
        let conn = rusqlite::Connection::open(&self.0).map_err(text)?;
        conn.busy_timeout(BUSY).map_err(text)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .map_err(text)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(format!("SQLite journal mode {mode}, not WAL"));
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(text)?;
        Ok(Box::new(SqliteCommitter {
            conn,
            key: thread as i64,
            value: Stamped::new(thread),
        }))
    }
}

struct SqliteCommitter {
    conn: rusqlite::Connection,
    key: i64,
    value: Stamped,
}

impl Committer for SqliteCommitter {
    fn commit(&mut self) -> Result<(), String> {
        let changed = self
            .conn
            .prepare_cached("UPDATE t SET v = ?2 WHERE k = ?1")
            .map_err(text)?
            .execute(rusqlite::params![self.key, self.value.next()])
            .map_err(text)?;
        if changed != 1 {
            return Err("a thread's row was missing".into());
        }
        Ok(())
    }
}

struct SqliteKv {
    conn: rusqlite::Connection,
    /// The database, which reader threads open connections of their own to.
    path: PathBuf,
}

impl SqliteKv {
    /// One write transaction doing `work`, committed.
    fn write<T>(&mut self, work: impl FnOnce(&rusqlite::Transaction) -> R<T>) -> R<T> {
        let tx = self.conn.transaction()?;
        let done = work(&tx)?;
        tx.commit()?;
        Ok(done)
    }
}

/// Inserts `pairs` with redb's adapter's statement.
fn insert_all<'a>(
    tx: &rusqlite::Transaction,
    pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>,
) -> R<()> {
    let mut st = tx.prepare_cached("INSERT OR REPLACE INTO kv (key, value) VALUES (?1, ?2)")?;
    for (k, v) in pairs {
        st.execute([k, v])?;
    }
    Ok(())
}

/// Deletes the rows `pick` takes from those `select` gives (key, value), as
/// redb's adapter does SQLite's retain and extract_if: the keys gathered in
/// order, then deleted one by one. How many it deleted.
fn delete_picked(
    tx: &rusqlite::Transaction,
    select: &str,
    params: impl rusqlite::Params,
    pick: &mut dyn FnMut(&[u8], &[u8]) -> bool,
) -> R<u64> {
    let mut picked = Vec::new();
    {
        let mut st = tx.prepare_cached(select)?;
        let mut rows = st.query(params)?;
        while let Some(row) = rows.next()? {
            let key = row.get_ref(0)?.as_blob()?;
            if pick(key, row.get_ref(1)?.as_blob()?) {
                picked.push(key.to_vec());
            }
        }
    }
    let mut st = tx.prepare_cached("DELETE FROM kv WHERE key = ?1")?;
    for key in &picked {
        st.execute([key])?;
    }
    Ok(picked.len() as u64)
}

impl KvStore for SqliteKv {
    fn label(&self) -> &'static str {
        "SQLite, defaults (rollback journal, synchronous=FULL)"
    }

    fn short(&self) -> &'static str {
        "SQLite"
    }

    fn insert(&mut self, pairs: &mut dyn Iterator<Item = Pair>) -> R<()> {
        self.write(|tx| {
            for (k, v) in pairs {
                insert_all(tx, std::iter::once((&k[..], &v[..])))?;
            }
            Ok(())
        })
    }

    fn insert_sorted(&mut self, pairs: &[SortedPair]) -> R<()> {
        self.write(|tx| insert_all(tx, pairs.iter().map(|(k, v)| (&k[..], &v[..]))))
    }

    fn sorted_by(&self) -> &'static str {
        "plain inserts"
    }

    fn unsynced_by(&self) -> &'static str {
        "synchronous=OFF"
    }

    fn set_sync(&mut self, sync: bool) -> R<()> {
        let mode = if sync { "FULL" } else { "OFF" };
        self.conn.pragma_update(None, "synchronous", mode)?;
        Ok(())
    }

    fn remove(&mut self, keys: &mut dyn Iterator<Item = [u8; KEY]>) -> R<u64> {
        self.write(|tx| {
            let mut st = tx.prepare_cached("DELETE FROM kv WHERE key = ?1")?;
            let mut found = 0;
            for k in keys {
                found += st.execute([&k[..]])? as u64;
            }
            Ok(found)
        })
    }

    fn retain(&mut self, keep: &mut dyn FnMut(&[u8], &[u8]) -> bool) -> R<u64> {
        self.write(|tx| {
            let all = "SELECT key, value FROM kv ORDER BY key";
            delete_picked(tx, all, [], &mut |k, v| !keep(k, v))
        })
    }

    fn extract_if(
        &mut self,
        from: &[u8],
        to: &[u8],
        pick: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> R<u64> {
        self.write(|tx| {
            let range = "SELECT key, value FROM kv WHERE key >= ?1 AND key < ?2 ORDER BY key";
            delete_picked(tx, range, [from, to], pick)
        })
    }

    fn pop(&mut self, count: usize) -> R<()> {
        self.write(|tx| {
            let mut del = tx.prepare_cached("DELETE FROM kv WHERE rowid = ?1")?;
            pop_alternately(count, |first| {
                let order = if first { "ASC" } else { "DESC" };
                let mut edge = tx.prepare_cached(&format!(
                    "SELECT rowid, key, value FROM kv ORDER BY key {order} LIMIT 1"
                ))?;
                let rowid: i64 = edge.query_row([], |r| r.get(0))?;
                Ok(del.execute([rowid])? == 1)
            })
        })
    }

    fn connect(&self) -> R<Box<dyn KvConnection + '_>> {
        Ok(Box::new(SqliteConnection(rusqlite::Connection::open(
            &self.path,
        )?)))
    }

    fn compact(&mut self) -> R<()> {
        self.conn.execute("VACUUM", [])?;
        Ok(())
    }
}

/// A connection of its own, as redb's benchmark gives each reader.
struct SqliteConnection(rusqlite::Connection);

impl KvConnection for SqliteConnection {
    fn begin(&self) -> R<Box<dyn KvRead + '_>> {
        // No transaction: redb's adapter reads in autocommit statements.
        Ok(Box::new(SqliteRead {
            get: self.0.prepare("SELECT value FROM kv WHERE key = ?1")?,
            range: self
                .0
                .prepare("SELECT key, value FROM kv WHERE key >= ?1 ORDER BY key")?,
            len: self.0.prepare("SELECT COUNT(*) FROM kv")?,
        }))
    }
}

struct SqliteRead<'a> {
    get: rusqlite::Statement<'a>,
    range: rusqlite::Statement<'a>,
    len: rusqlite::Statement<'a>,
}

impl KvRead for SqliteRead<'_> {
    fn len(&mut self) -> R<u64> {
        Ok(self.len.query_row([], |r| r.get::<_, i64>(0))? as u64)
    }

    fn first_byte(&mut self, key: &[u8]) -> R<Option<u8>> {
        use rusqlite::OptionalExtension;
        Ok(self
            .get
            .query_row([key], |r| Ok(r.get_ref(0)?.as_blob()?[0]))
            .optional()?)
    }

    fn scan(&mut self, from: &[u8], len: usize) -> R<u64> {
        let mut rows = self.range.query([from])?;
        let mut sum = 0;
        for _ in 0..len {
            let Some(row) = rows.next()? else { break };
            sum += u64::from(row.get_ref(1)?.as_blob()?[0]);
        }
        Ok(sum)
    }
}
