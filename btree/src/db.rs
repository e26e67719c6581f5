//! The store: a file of tree pages, its options, and its shared form.

use std::path::Path;

use mappedpages::{ConcurrentPager, Durability, MappedPageError, Pager, PagerOptions};

use crate::error::{Error, Result};
use crate::meta::{Meta, META};
use crate::node::PAGE;
use crate::read::ReadTxn;
use crate::write::WriteTxn;

/// A store in one file: one writer at a time ([`Db::write`]) and readers
/// of the last commit on any thread ([`Db::read`]).
///
/// ```
/// use mappedpages_btree::Db;
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("store.db");
/// let mut db = Db::create(&path)?;
/// let mut txn = db.write()?;
/// txn.insert(b"hello", b"world")?;
/// txn.commit()?; // durable, one sync
/// drop(db);
/// let db = Db::open(&path)?;
/// assert_eq!(db.read()?.get(b"hello")?.as_deref(), Some(&b"world"[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Db {
    pub(crate) pager: Pager<PAGE>,
}

/// How a store is created or opened, made with [`Db::options`].
///
/// ```
/// use mappedpages_btree::{Db, Durability};
/// # let dir = tempfile::tempdir()?;
/// let mut db = Db::options()
///     .durability(Durability::Deferred)
///     .create(dir.path().join("store.db"))?;
/// let syncs = db.pager().sync_count();
/// let mut txn = db.write()?;
/// txn.insert(b"key", b"value")?;
/// txn.commit()?; // atomic, survives a killed process, no sync
/// assert_eq!(db.pager().sync_count(), syncs);
/// db.sync()?; // survives a power loss too
/// assert!(db.pager().sync_count() > syncs);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct DbOptions {
    durability: Durability,
    transaction_memory: Option<usize>,
}

impl DbOptions {
    /// The defaults: [`Durability::Immediate`].
    pub fn new() -> DbOptions {
        DbOptions::default()
    }

    /// When commits become durable: [`Durability::Immediate`] (the
    /// default) syncs at every commit; [`Durability::Deferred`] does not,
    /// and [`Db::sync`] (or dropping the store) makes every commit before
    /// it durable. In both modes each commit is atomic and a killed
    /// process loses none; a power loss may take back the deferred commits
    /// since the last sync, never part of one. The mode is chosen at every
    /// open; the file does not record it.
    pub fn durability(mut self, durability: Durability) -> DbOptions {
        self.durability = durability;
        self
    }

    /// The most bytes of changed pages a write transaction holds in memory
    /// before it writes them to the file early, default the pager's
    /// ([`DEFAULT_TRANSACTION_MEMORY`](mappedpages::DEFAULT_TRANSACTION_MEMORY)).
    /// A transaction that changes more pages than that (a load of
    /// millions of unsorted keys) writes out what it holds and copies back
    /// each page it changes again: a bound that holds the pages it changes
    /// made a load of 5 M pairs almost twice as fast. Memory is taken only
    /// as pages are changed; like the durability, it is chosen at every
    /// open.
    ///
    /// ```
    /// use mappedpages_btree::Db;
    /// # let dir = tempfile::tempdir()?;
    /// let mut db = Db::options()
    ///     .transaction_memory(1 << 30)
    ///     .create(dir.path().join("store.db"))?;
    /// let mut txn = db.write()?;
    /// for i in 0..10_000u32 {
    ///     txn.insert(&i.wrapping_mul(2_654_435_761).to_be_bytes(), b"value")?;
    /// }
    /// txn.commit()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn transaction_memory(mut self, bytes: usize) -> DbOptions {
        self.transaction_memory = Some(bytes);
        self
    }

    fn pager(&self) -> PagerOptions<PAGE> {
        let options = Pager::<PAGE>::options().durability(self.durability);
        match self.transaction_memory {
            Some(bytes) => options.transaction_memory(bytes),
            None => options,
        }
    }

    /// A new, empty store in a new file; fails if the file exists.
    pub fn create(&self, path: impl AsRef<Path>) -> Result<Db> {
        let mut pager = self.pager().create(path)?;
        let mut txn = pager.transaction()?;
        if txn.alloc_protected()? != META {
            return Err(Error::Corrupt(
                "the new file's first protected page is not slot 0",
            ));
        }
        Meta::default().write(txn.write_protected(META)?.as_bytes_mut());
        txn.commit()?;
        Ok(Db { pager })
    }

    /// Opens a store as its last commit left it.
    ///
    /// # Errors
    /// The pager's, or [`Error::Corrupt`] for a page file that holds no
    /// tree.
    pub fn open(&self, path: impl AsRef<Path>) -> Result<Db> {
        let pager = self.pager().open(path)?;
        Meta::read(META.get(&pager)?.as_bytes(), pager.page_count())?;
        Ok(Db { pager })
    }
}

impl Db {
    /// A new, empty store in a new file, with the default options
    /// ([`DbOptions`]); fails if the file exists.
    pub fn create(path: impl AsRef<Path>) -> Result<Db> {
        DbOptions::new().create(path)
    }

    /// Opens a store as its last commit left it, with the default options.
    pub fn open(path: impl AsRef<Path>) -> Result<Db> {
        DbOptions::new().open(path)
    }

    /// Options to create or open a store with.
    pub fn options() -> DbOptions {
        DbOptions::new()
    }

    /// Starts a write transaction; dropping it undoes it.
    pub fn write(&mut self) -> Result<WriteTxn<'_>> {
        WriteTxn::begin(&mut self.pager)
    }

    /// A read transaction on the last commit, for any thread.
    pub fn read(&self) -> Result<ReadTxn> {
        ReadTxn::of(self.pager.snapshot()?)
    }

    /// The pager underneath, for its figures (syncs, pages, file size).
    pub fn pager(&self) -> &Pager<PAGE> {
        &self.pager
    }

    /// When commits become durable ([`DbOptions::durability`]).
    pub fn durability(&self) -> Durability {
        self.pager.durability()
    }

    /// Makes every commit so far durable: one sync, or none when nothing
    /// is waiting for one. What a store opened with
    /// [`Durability::Deferred`] calls when its commits must survive a power
    /// loss.
    pub fn sync(&mut self) -> Result<()> {
        Ok(self.pager.sync()?)
    }

    /// The store shared between threads.
    pub fn into_shared(self) -> Result<SharedDb> {
        Ok(SharedDb {
            pager: ConcurrentPager::new(self.pager)?,
        })
    }
}

/// A store shared between threads (`Clone`): one write transaction at a
/// time, readers that never wait for it, and durable writes from many
/// threads that share their syncs.
///
/// ```
/// use mappedpages_btree::Db;
/// # let dir = tempfile::tempdir()?;
/// let shared = Db::create(dir.path().join("store.db"))?.into_shared()?;
/// let writers: Vec<_> = (0..4u8)
///     .map(|i| {
///         let shared = shared.clone();
///         std::thread::spawn(move || shared.write_durably(|txn| txn.insert(&[i], b"v")))
///     })
///     .collect();
/// for writer in writers {
///     writer.join().unwrap()?;
/// }
/// assert_eq!(shared.read()?.len(), 4);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct SharedDb {
    pager: ConcurrentPager<PAGE>,
}

impl SharedDb {
    /// Runs `work` in one write transaction, commits it, and returns once
    /// the commit is durable. Write transactions of many threads share a
    /// sync: while one sync runs, the transactions of the others are
    /// applied, and the next sync covers them all (the pager's group
    /// commit). A failing `work` commits nothing.
    pub fn write_durably<T>(&self, work: impl FnOnce(&mut WriteTxn<'_>) -> Result<T>) -> Result<T> {
        let mut failure = None;
        let done = self.pager.write_and_sync(|pager| {
            let outcome = WriteTxn::begin(pager).and_then(|mut txn| {
                let value = work(&mut txn)?;
                txn.commit()?;
                Ok(value)
            });
            match outcome {
                Ok(value) => Ok(Some(value)),
                Err(Error::Pager(err)) => Err(err),
                // Not the pager's error: kept here, the transaction undone.
                Err(other) => {
                    failure = Some(other);
                    Ok(None)
                }
            }
        })?;
        done.ok_or_else(|| failure.unwrap_or(Error::Corrupt("a write failed without an error")))
    }

    /// A read transaction on the last published commit; never waits for a
    /// writer.
    pub fn read(&self) -> Result<ReadTxn> {
        ReadTxn::of(self.pager.read().map_err(MappedPageError::from)?)
    }

    /// Syncs of the file so far.
    pub fn sync_count(&self) -> Result<u64> {
        let writer = self.pager.write().map_err(MappedPageError::from)?;
        Ok(writer.sync_count())
    }

    /// Makes every commit so far durable ([`Db::sync`]); waits for the
    /// writer.
    pub fn sync(&self) -> Result<()> {
        let mut writer = self.pager.write().map_err(MappedPageError::from)?;
        Ok(writer.sync()?)
    }
}
