//! The B+tree store of `mappedpages-btree` at work: each write transaction
//! is one pager transaction (one sync at its commit), readers read
//! snapshots from other threads while the writer goes on, a range of keys
//! goes in one walk, compaction gives the space of removed pairs back, and
//! durable write transactions from many threads share syncs.
//!
//! Run it with `cargo run --release --example btree [PATH]` (default: a file
//! in a temporary directory).

use std::error::Error;
use std::thread;

use mappedpages_btree::{Db, WriteTxn};

const PAIRS: u64 = 10_000;
const PER_TXN: u64 = 2_000;
const WRITERS: u64 = 4;
const WRITES_EACH: u64 = 50;

/// Key `i`, in an order unrelated to `i` (7919 is prime to `PAIRS`).
fn key(i: u64) -> Vec<u8> {
    format!("key{:08}", i * 7919 % PAIRS).into_bytes()
}

fn value(i: u64) -> Vec<u8> {
    format!("value of pair {i}, ")
        .repeat(1 + (i % 8) as usize)
        .into_bytes()
}

/// Runs `work` in one write transaction and tells how many syncs it took.
fn write(
    db: &mut Db,
    what: &str,
    work: impl FnOnce(&mut WriteTxn) -> mappedpages_btree::Result<()>,
) -> mappedpages_btree::Result<()> {
    let syncs = db.pager().sync_count();
    let mut txn = db.write()?;
    work(&mut txn)?;
    txn.commit()?;
    let syncs = db.pager().sync_count() - syncs;
    println!("{what}: {syncs} sync(s)");
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let path = std::env::args_os()
        .nth(1)
        .map_or_else(|| dir.path().join("btree.db"), Into::into);
    let mut db = Db::create(&path)?;

    for start in (0..PAIRS).step_by(PER_TXN as usize) {
        write(
            &mut db,
            &format!("insert pairs {start}..{}", start + PER_TXN),
            |txn| {
                for i in start..start + PER_TXN {
                    txn.insert(&key(i), &value(i))?;
                }
                Ok(())
            },
        )?;
    }

    let read = db.read()?;
    for i in 0..PAIRS {
        assert_eq!(
            read.get(&key(i))?.as_deref(),
            Some(&value(i)[..]),
            "pair {i}"
        );
    }
    println!("read back {} pairs", read.len());
    let scan = read.range(&b"key00000100"[..]..&b"key00000105"[..])?;
    for entry in scan {
        let (k, v) = entry?;
        println!("  {}: {} bytes", String::from_utf8_lossy(k), v.len());
    }

    // A value longer than a leaf's limit lies in overflow pages; replacing
    // it frees them.
    let big = vec![7; 300 * 1024];
    write(&mut db, "a value of 300 KiB, replaced", |txn| {
        txn.insert(b"big", &big)?;
        assert_eq!(txn.insert(b"big", &big[..1000])?.as_deref(), Some(&big[..]));
        Ok(())
    })?;

    // A reader on another thread counts the pairs of the commit it was
    // given while the writer removes a third of them.
    let reader = thread::spawn(move || read.iter().map(|entries| entries.count()));
    write(&mut db, "remove every third pair", |txn| {
        for i in (0..PAIRS).step_by(3) {
            assert!(txn.remove(&key(i))?.is_some());
        }
        // The transaction reads its own changes.
        assert_eq!(txn.get(&key(0))?, None);
        assert_eq!(txn.range::<&[u8]>(..)?.count() as u64, txn.len());
        Ok(())
    })?;
    println!(
        "the reader's snapshot still had {} pairs",
        reader.join().map_err(|_| "reader panicked")??
    );

    drop(db);
    let mut db = Db::open(&path)?;
    let read = db.read()?;
    for i in 0..PAIRS {
        let expected = (i % 3 != 0).then(|| value(i));
        assert_eq!(
            read.get(&key(i))?.as_deref(),
            expected.as_deref(),
            "pair {i} after reopening"
        );
    }
    let reached = read.check()?.len() as u64;
    let allocated = db.pager().allocated_page_count();
    println!(
        "reopened: {} pairs after {} commits, {reached} tree pages, {allocated} allocated, file {} KiB",
        read.len(),
        read.version(),
        std::fs::metadata(&path)?.len() / 1024
    );
    assert_eq!(reached, allocated, "every allocated page is in the tree");
    drop(read);

    // A range of keys goes in one walk: the leaves inside it are freed
    // without being copied. Compaction then gives their space back.
    let mut removed = 0;
    write(&mut db, "remove the keys from key00005000 on", |txn| {
        removed = txn.remove_range(&b"key00005000"[..]..)?;
        Ok(())
    })?;
    let compaction = db.compact()?;
    println!(
        "{removed} pairs removed; compaction: {} pages moved in {} round(s), file {} KiB -> {} KiB",
        compaction.pages_moved,
        compaction.rounds,
        compaction.file_pages_before * 4,
        compaction.file_bytes_after() / 1024
    );
    let pairs = db.read()?.len();

    // Durable writes from several threads at once: each thread's write
    // transaction returns once it is durable, and the transactions made
    // while one sync runs share the next.
    let shared = db.into_shared()?;
    let syncs = shared.sync_count()?;
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let shared = shared.clone();
            thread::spawn(move || -> mappedpages_btree::Result<()> {
                for i in 0..WRITES_EACH {
                    let k = format!("thread {w} write {i}").into_bytes();
                    shared.write_durably(|txn| txn.insert(&k, b"durable").map(drop))?;
                }
                Ok(())
            })
        })
        .collect();
    for writer in writers {
        writer.join().map_err(|_| "writer panicked")??;
    }
    let durable = WRITERS * WRITES_EACH;
    println!(
        "{durable} durable write transactions from {WRITERS} threads: {} syncs",
        shared.sync_count()? - syncs
    );
    assert_eq!(shared.read()?.len(), pairs + durable);
    Ok(())
}
