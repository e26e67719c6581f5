//! A small persistent key-value store on top of `mappedpages`: what the crate
//! is for. It survives a kill at any moment and never leaks a page or a
//! sub-page.
//!
//! The store is a hash table of 256 buckets. Each bucket is a chain of
//! regular pages holding fixed-size records, one per key: the key, and where
//! its value is. Values live out of line, each in a durable sub-page
//! (`SubPage`) of the smallest size that holds it, from 64 bytes to 2 KiB:
//! a ten-byte value takes 64 bytes of the file, not a page, and rewriting a
//! bucket copies its small records, never the values of the keys it keeps.
//! The table's root (the entry count and every bucket's first page) lives
//! in a protected page. Each batch of changes is one transaction, written
//! copy-on-write:
//!
//! 1. every value the batch puts is written to a freshly allocated sub-page
//!    (a committed sub-page is never written again);
//! 2. every bucket the batch changes is written to freshly allocated pages,
//!    filled straight from its old pages (which are only read, so the
//!    committed table stays intact until the commit);
//! 3. the old pages, and the sub-pages of the values the batch replaces or
//!    deletes, are freed, and the root is repointed at the new pages;
//! 4. the commit publishes all of it atomically, with one sync: the pages,
//!    the sub-pages, which ones are allocated, and the root.
//!
//! A kill before the commit leaves the table of the batch before, with this
//! batch's allocations undone; a kill after it, the new table with the old
//! pages and values freed. No page or sub-page is ever allocated that the
//! table does not reach, so opening has nothing to clean up.
//!
//! Run it with `cargo run --release --example kv_store [PATH]` (default: a
//! file in a temporary directory).

use std::collections::BTreeMap;
use std::error::Error;
use std::path::Path;
use std::time::Instant;

use mappedpages::{PageId, Pager, ProtectedPageId, SubPage, Transaction};

const PAGE: usize = 4096;
const BUCKETS: usize = 256;
const ROOT_MAGIC: &[u8; 8] = b"KVSTORE2";
/// Root page: magic, entry count, then the first page of each bucket (0: empty).
const ROOT_HEADS: usize = 16;
/// Bucket page: next page of the chain (0: last), record count, records.
const NODE_HEADER: usize = 16;
pub const MAX_KEY: usize = 32;
/// The largest value: the largest sub-page, half a page.
pub const MAX_VALUE: usize = 64 << (CLASSES - 1);
/// Record: key length, value class, value length (2 bytes), 4 unused bytes,
/// the value's sub-page id (8 bytes), the key's bytes.
const RECORD: usize = 16 + MAX_KEY;
const PER_PAGE: usize = (PAGE - NODE_HEADER) / RECORD;
/// Value classes: a value of class `c` lives in a sub-page of `64 << c`
/// bytes, the smallest that holds it.
pub const CLASSES: u8 = 6;

pub type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// One change of a batch.
#[derive(Clone, Debug)]
pub enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
}

pub struct KvStore {
    pub pager: Pager<PAGE>,
    root: ProtectedPageId<PAGE>,
}

/// Where a value is: its class, its length and its sub-page's id.
#[derive(Clone, Copy, Debug)]
struct Value {
    class: u8,
    len: u16,
    id: u64,
}

/// What a batch leaves of each key it names, by bucket: `None` for deleted.
type Changes<'a> = BTreeMap<usize, BTreeMap<&'a [u8], Option<&'a [u8]>>>;

fn bucket_of(key: &[u8]) -> usize {
    // FNV-1a: stable across runs and Rust versions, unlike `DefaultHasher`.
    let hash = key.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % BUCKETS as u64) as usize
}

/// The class of a value of `len` bytes: the smallest sub-page that holds it.
fn class_of(len: usize) -> u8 {
    len.div_ceil(64).next_power_of_two().trailing_zeros() as u8
}

/// Evaluates `$body` with `$size` the sub-page size of value class
/// `$class`, as a constant: the crate takes a sub-page's size as a const
/// generic, and the store reads the class from a record.
macro_rules! with_class_size {
    ($class:expr, $size:ident => $body:expr) => {{
        let result: Result<_> = match $class {
            0 => {
                const $size: usize = 64;
                $body
            }
            1 => {
                const $size: usize = 128;
                $body
            }
            2 => {
                const $size: usize = 256;
                $body
            }
            3 => {
                const $size: usize = 512;
                $body
            }
            4 => {
                const $size: usize = 1024;
                $body
            }
            5 => {
                const $size: usize = 2048;
                $body
            }
            class => Err(format!("damaged record: no value class {class}").into()),
        };
        result
    }};
}

/// Allocates a sub-page of the value's class and writes the value into it.
fn write_value(txn: &mut Transaction<'_, PAGE>, bytes: &[u8]) -> Result<Value> {
    let class = class_of(bytes.len());
    let id = with_class_size!(class, SIZE => {
        let id = txn.alloc_sub_page::<SIZE>()?;
        txn.sub_page_mut(id)?[..bytes.len()].copy_from_slice(bytes);
        Ok(id.0)
    })?;
    let len = bytes.len() as u16;
    Ok(Value { class, len, id })
}

/// Frees a value's sub-page: snapshots and the committed table still read
/// it until the commit.
fn free_value(txn: &mut Transaction<'_, PAGE>, value: Value) -> Result<()> {
    with_class_size!(value.class, SIZE => {
        Ok(txn.free_sub_page(SubPage::<SIZE>(value.id))?)
    })
}

fn read_value(pager: &Pager<PAGE>, value: Value) -> Result<Vec<u8>> {
    with_class_size!(value.class, SIZE => {
        let bytes = pager.sub_page(SubPage::<SIZE>(value.id))?;
        Ok(bytes[..usize::from(value.len)].to_vec())
    })
}

/// The ids of the allocated sub-pages of one class, as the file lists them.
fn allocated_of_class(pager: &Pager<PAGE>, class: u8) -> Result<Vec<u64>> {
    with_class_size!(class, SIZE => {
        Ok(pager.iter_sub_pages::<SIZE>().map(|id| id.0).collect())
    })
}

fn u64_at(bytes: &[u8], at: usize) -> Result<u64> {
    let raw = bytes.get(at..at + 8).ok_or("short page")?;
    Ok(u64::from_le_bytes(raw.try_into()?))
}

/// The record slots in use in a bucket page.
fn records(page: &[u8]) -> impl Iterator<Item = &[u8]> {
    let count = usize::from(u16::from_le_bytes([page[8], page[9]])).min(PER_PAGE);
    page[NODE_HEADER..].chunks_exact(RECORD).take(count)
}

/// A record's key and where its value is.
fn decode(record: &[u8]) -> Result<(&[u8], Value)> {
    let key_len = usize::from(record[0]);
    let value = Value {
        class: record[1],
        len: u16::from_le_bytes([record[2], record[3]]),
        id: u64_at(record, 8)?,
    };
    if key_len > MAX_KEY || value.class >= CLASSES || usize::from(value.len) > 64 << value.class {
        return Err("damaged record".into());
    }
    Ok((&record[16..16 + key_len], value))
}

fn encode(slot: &mut [u8], key: &[u8], value: Value) {
    slot.fill(0);
    slot[0] = key.len() as u8;
    slot[1] = value.class;
    slot[2..4].copy_from_slice(&value.len.to_le_bytes());
    slot[8..16].copy_from_slice(&value.id.to_le_bytes());
    slot[16..16 + key.len()].copy_from_slice(key);
}

impl KvStore {
    /// Creates a new, empty store in a new file.
    pub fn create(path: &Path) -> Result<KvStore> {
        let mut pager = Pager::<PAGE>::create(path)?;
        let mut txn = pager.transaction()?;
        let root = txn.alloc_protected()?;
        txn.write_protected(root)?.as_bytes_mut()[..8].copy_from_slice(ROOT_MAGIC);
        txn.commit()?;
        Ok(KvStore { pager, root })
    }

    /// Opens a store. Nothing to repair: every commit is a whole batch.
    pub fn open(path: &Path) -> Result<KvStore> {
        let pager = Pager::<PAGE>::open(path)?;
        let root = pager
            .iter_allocated_protected_pages()
            .next()
            .ok_or("no root page: not a key-value store")?;
        if root.get(&pager)?.as_bytes().get(..8) != Some(&ROOT_MAGIC[..]) {
            return Err("the root page holds no key-value store".into());
        }
        Ok(KvStore { pager, root })
    }

    fn root(&self) -> Result<&[u8]> {
        Ok(self.root.get(&self.pager)?.as_bytes())
    }

    /// Number of entries.
    pub fn len(&self) -> Result<u64> {
        u64_at(self.root()?, 8)
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// The value of `key`, if any.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        for id in self.chain(bucket_of(key))? {
            for record in records(id.get(&self.pager)?.as_bytes()) {
                let (k, value) = decode(record)?;
                if k == key {
                    return read_value(&self.pager, value).map(Some);
                }
            }
        }
        Ok(None)
    }

    /// Every record's key and where its value is, in no particular order.
    fn all_records(&self) -> Result<Vec<(Vec<u8>, Value)>> {
        let mut all = Vec::new();
        for bucket in 0..BUCKETS {
            for id in self.chain(bucket)? {
                for record in records(id.get(&self.pager)?.as_bytes()) {
                    let (key, value) = decode(record)?;
                    all.push((key.to_vec(), value));
                }
            }
        }
        Ok(all)
    }

    /// Every entry, in no particular order.
    pub fn entries(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.all_records()?
            .into_iter()
            .map(|(key, value)| Ok((key, read_value(&self.pager, value)?)))
            .collect()
    }

    /// The pages of `bucket`'s chain.
    pub fn chain(&self, bucket: usize) -> Result<Vec<PageId<PAGE>>> {
        let mut pages = Vec::new();
        let mut next = u64_at(self.root()?, ROOT_HEADS + 8 * bucket)?;
        while next != 0 {
            if pages.len() as u64 > self.pager.page_count() {
                return Err("bucket chain loops".into());
            }
            pages.push(PageId(next));
            next = u64_at(PageId::<PAGE>(next).get(&self.pager)?.as_bytes(), 0)?;
        }
        Ok(pages)
    }

    /// How many pages the table reaches from its root.
    pub fn pages_in_use(&self) -> Result<u64> {
        let mut pages = 0;
        for bucket in 0..BUCKETS {
            pages += self.chain(bucket)?.len() as u64;
        }
        Ok(pages)
    }

    /// The sub-pages the table's records name, as (class, id), sorted.
    pub fn sub_pages_in_use(&self) -> Result<Vec<(u8, u64)>> {
        let mut used: Vec<(u8, u64)> = self
            .all_records()?
            .into_iter()
            .map(|(_, value)| (value.class, value.id))
            .collect();
        used.sort_unstable();
        Ok(used)
    }

    /// The sub-pages allocated in the file, as (class, id), sorted: the same
    /// as [`KvStore::sub_pages_in_use`] when nothing leaked.
    pub fn sub_pages_allocated(&self) -> Result<Vec<(u8, u64)>> {
        let mut all = Vec::new();
        for class in 0..CLASSES {
            let ids = allocated_of_class(&self.pager, class)?;
            all.extend(ids.into_iter().map(|id| (class, id)));
        }
        Ok(all)
    }

    /// Applies `batch` as one transaction: after a crash, all of it or none.
    pub fn apply(&mut self, batch: &[Op]) -> Result<()> {
        let mut changes = Changes::new();
        for op in batch {
            let (key, value) = match op {
                Op::Put(k, v) if k.len() > MAX_KEY || v.len() > MAX_VALUE => {
                    return Err("key or value too long".into())
                }
                Op::Put(k, v) => (&k[..], Some(&v[..])),
                Op::Delete(k) => (&k[..], None),
            };
            changes
                .entry(bucket_of(key))
                .or_default()
                .insert(key, value);
        }

        // Each changed bucket's old pages and record count after the batch,
        // counted first: pages cannot be allocated while some are lent out.
        let mut len = self.len()?;
        let mut plans = Vec::new();
        for (&bucket, changed) in &changes {
            let old = self.chain(bucket)?;
            let (mut before, mut kept) = (0, 0);
            for &id in &old {
                for record in records(id.get(&self.pager)?.as_bytes()) {
                    before += 1;
                    kept += usize::from(!changed.contains_key(decode(record)?.0));
                }
            }
            let count = kept + changed.values().flatten().count();
            len = len + count as u64 - before;
            plans.push((bucket, changed, old, count));
        }

        let mut txn = self.pager.transaction()?;
        let needed = plans
            .iter()
            .map(|(.., count)| count.div_ceil(PER_PAGE))
            .sum();
        let mut fresh = txn.alloc_bulk(needed)?.into_iter();
        let mut heads = Vec::new();
        for (bucket, changed, old, count) in plans {
            // The values put, each in a fresh sub-page.
            let mut put = Vec::new();
            for (&key, value) in changed {
                if let Some(value) = value {
                    put.push((key, write_value(&mut txn, value)?));
                }
            }
            let new: Vec<PageId<PAGE>> = fresh.by_ref().take(count.div_ceil(PER_PAGE)).collect();
            // The old pages readable and the new ones writable at once: the
            // kept records go from one to the other without a buffer.
            let pages = txn.pages();
            let mut slots = Vec::new();
            for (i, &id) in new.iter().enumerate() {
                let page = pages.get_mut(id)?.as_bytes_mut();
                page.fill(0);
                page[..8].copy_from_slice(&new.get(i + 1).map_or(0, |p| p.0).to_le_bytes());
                let here = (count - i * PER_PAGE).min(PER_PAGE) as u16;
                page[8..10].copy_from_slice(&here.to_le_bytes());
                slots.extend(
                    page[NODE_HEADER..]
                        .chunks_exact_mut(RECORD)
                        .take(here.into()),
                );
            }
            let mut slots = slots.into_iter();
            let mut replaced = Vec::new();
            for &id in &old {
                for record in records(pages.get(id)?.as_bytes()) {
                    let (key, value) = decode(record)?;
                    if changed.contains_key(key) {
                        replaced.push(value); // put again or deleted
                    } else {
                        slots
                            .next()
                            .ok_or("more records than counted")?
                            .copy_from_slice(record);
                    }
                }
            }
            for (key, value) in put {
                encode(slots.next().ok_or("more records than counted")?, key, value);
            }
            txn.free_bulk(old)?;
            for value in replaced {
                free_value(&mut txn, value)?;
            }
            heads.push((bucket, new.first().map_or(0, |p| p.0)));
        }
        let root = txn.write_protected(self.root)?.as_bytes_mut();
        root[8..16].copy_from_slice(&len.to_le_bytes());
        for (bucket, head) in heads {
            let at = ROOT_HEADS + 8 * bucket;
            root[at..at + 8].copy_from_slice(&head.to_le_bytes());
        }
        txn.commit()?; // one sync: pages, sub-pages, frees and the root
        Ok(())
    }
}

/// The demo workload's `i`-th key.
pub fn key(i: usize) -> Vec<u8> {
    format!("key-{i:06}").into_bytes()
}

/// Applies `ops` in batches of `batch` and prints what a batch cost.
fn run(store: &mut KvStore, what: &str, ops: &[Op], batch: usize) -> Result<()> {
    let (syncs, started) = (store.pager.sync_count(), Instant::now());
    for ops in ops.chunks(batch) {
        store.apply(ops)?;
    }
    let batches = ops.len().div_ceil(batch);
    let seconds = started.elapsed().as_secs_f64();
    let syncs = store.pager.sync_count() - syncs;
    println!(
        "{what} {} keys in {batches} batches of {batch}: {:.2} syncs per batch, {:.0} batches per second",
        ops.len(),
        syncs as f64 / batches as f64,
        batches as f64 / seconds
    );
    Ok(())
}

fn main() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = std::env::args_os()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.path().join("kv_store.pages"));
    let _ = std::fs::remove_file(&path);
    const KEYS: usize = 5000;

    let inserts: Vec<Op> = (0..KEYS)
        .map(|i| Op::Put(key(i), format!("value {i}").into_bytes()))
        .collect();
    // Longer values, of every class up to 2 KiB.
    let updates: Vec<Op> = (0..KEYS)
        .step_by(3)
        .map(|i| {
            Op::Put(
                key(i),
                format!("updated {i}; ").repeat(1 + i % 140).into_bytes(),
            )
        })
        .collect();
    let deletes: Vec<Op> = (0..KEYS).step_by(5).map(|i| Op::Delete(key(i))).collect();
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for op in inserts.iter().chain(&updates).chain(&deletes) {
        match op {
            Op::Put(k, v) => model.insert(k.clone(), v.clone()),
            Op::Delete(k) => model.remove(k),
        };
    }

    let mut store = KvStore::create(&path)?;
    run(&mut store, "inserted", &inserts, 250)?;
    run(&mut store, "updated", &updates, 10)?;
    run(&mut store, "deleted", &deletes, 250)?;
    drop(store);

    let t = Instant::now();
    let store = KvStore::open(&path)?;
    println!("reopened {} in {:?}", path.display(), t.elapsed());
    for i in 0..KEYS {
        let k = key(i);
        if store.get(&k)? != model.get(&k).cloned() {
            return Err(format!("key {i} has the wrong value after reopening").into());
        }
    }
    if store.len()? != model.len() as u64 {
        return Err("wrong entry count after reopening".into());
    }
    let (allocated, reached) = (store.pager.allocated_page_count(), store.pages_in_use()?);
    let values = store.sub_pages_in_use()?;
    let mut by_size = BTreeMap::new();
    for &(class, _) in &values {
        *by_size.entry(64 << class).or_insert(0) += 1;
    }
    println!(
        "verified {KEYS} lookups, {} entries; {allocated} pages allocated, {reached} reached by \
         the table; values in sub-pages of (bytes: count) {by_size:?}",
        store.len()?
    );
    if allocated != reached {
        return Err("pages leaked".into());
    }
    if values != store.sub_pages_allocated()? {
        return Err("sub-pages leaked".into());
    }
    Ok(())
}
