//! SQLite (rusqlite, bundled) in WAL mode, `synchronous=FULL` (or `OFF`
//! without sync): an integer-keyed table for the page workloads, a
//! blob-keyed one for KV.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Engine, Work};
use crate::support::stats::ns;
use crate::support::PAGE;
use crate::workloads::group::{text, Committer, GroupStore, Stamped, THREADS};
use crate::workloads::kv::{print, KvReader, KvStore, Pair, KEY};
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

/// A connection to the KV database, with a page cache as large as redb's
/// default (1 GiB), so that neither reads its file through a smaller cache
/// than the other.
fn open_kv(path: &Path) -> R<rusqlite::Connection> {
    let conn = open(path, true)?;
    conn.pragma_update(None, "cache_size", -(1i64 << 20))?;
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
        let path = dir.join("kv.sqlite");
        let conn = open_kv(&path)?;
        conn.execute("CREATE TABLE kv (k BLOB PRIMARY KEY, v BLOB NOT NULL)", [])?;
        Ok(Box::new(SqliteKv {
            conn,
            path,
            dir: dir.to_path_buf(),
        }))
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
    /// Its files: the database, its WAL and shared memory.
    dir: PathBuf,
}

impl KvStore for SqliteKv {
    fn label(&self) -> &'static str {
        "SQLite, WAL, synchronous=FULL"
    }

    fn short(&self) -> &'static str {
        "SQLite"
    }

    fn put(&mut self, pairs: &[Pair]) -> R<()> {
        let tx = self.conn.transaction()?;
        {
            let mut st = tx.prepare_cached("INSERT INTO kv (k, v) VALUES (?1, ?2)")?;
            for (k, v) in pairs {
                st.execute(rusqlite::params![&k[..], &v[..]])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn remove(&mut self, keys: &[[u8; KEY]]) -> R<()> {
        let tx = self.conn.transaction()?;
        {
            let mut st = tx.prepare_cached("DELETE FROM kv WHERE k = ?1")?;
            for k in keys {
                if st.execute([&k[..]])? != 1 {
                    return Err("a removed key was missing".into());
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn reader(&self) -> R<Box<dyn KvReader + '_>> {
        Ok(Box::new(SqliteReader(&self.path)))
    }

    fn ranges(&self, starts: &[[u8; KEY]], len: usize) -> R<(u64, usize)> {
        let (mut sum, mut count) = (0u64, 0usize);
        let mut conn = open_kv(&self.path)?;
        let tx = conn.transaction()?;
        {
            let mut st = tx.prepare_cached("SELECT v FROM kv WHERE k >= ?1 ORDER BY k LIMIT ?2")?;
            for s in starts {
                let mut rows = st.query(rusqlite::params![&s[..], len as i64])?;
                while let Some(row) = rows.next()? {
                    sum += print(row.get_ref(0)?.as_blob()?);
                    count += 1;
                }
            }
        }
        tx.commit()?;
        Ok((sum, count))
    }

    fn settle(&mut self) -> R<()> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    fn files(&self) -> PathBuf {
        self.dir.clone()
    }
}

#[derive(Clone, Copy)]
struct SqliteReader<'a>(&'a Path);

impl KvReader for SqliteReader<'_> {
    fn get(&self, keys: &[[u8; KEY]]) -> R<u64> {
        let mut sum = 0u64;
        let mut conn = open_kv(self.0)?;
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
        Ok(sum)
    }

    fn twin(&self) -> Box<dyn KvReader + '_> {
        Box::new(*self)
    }
}
