//! `LiveReader`: reading a file that a writer in another process (or this
//! one) goes on writing, through snapshots of its newest commit.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::engine::{load_state_of_root, table_error, Chosen, Frozen};
use crate::error::{MappedPageError, Result};
use crate::format::root::{Root, OFF_GENERATION};
use crate::format::{read_u64, superblock, ROOT_PAGES};
use crate::io::reader_table::{ReaderEntry, ReaderTable, TableError};
use crate::io::{LiveFile, MapRegion};
use crate::snapshot::Snapshot;

/// How many times a snapshot reads the roots again when the writer moved
/// on under it (a root torn by a write in progress, or pages reused before
/// the reader registered) before it gives up.
const ATTEMPTS: usize = 1000;

/// A reader that follows a live writer: each [`LiveReader::snapshot`] is the
/// newest commit of the file at that moment, read while a
/// [`Pager`](crate::Pager) in another process (or in this one) goes on
/// writing it. A snapshot reads exactly as its commit left the file for as
/// long as it lives, whatever the writer does meanwhile, and neither side
/// waits for the other.
///
/// The file must have a reader table, which a writer makes when it opens
/// the file with [`PagerOptions::process_readers`](crate::PagerOptions::process_readers):
/// each snapshot registers there the commit it reads, and the writer
/// reuses none of that commit's pages until the snapshot is dropped. A
/// reader process that dies releases its registrations with it.
///
/// Which reader to pick: a [`ReadOnlyPager`](crate::ReadOnlyPager) keeps
/// writers out and needs no reader table, so it reads files on read-only
/// media; a `LiveReader` reads alongside a writer; a
/// [`Snapshot`] taken from the writer's own [`Pager`](crate::Pager) is the
/// cheapest within one process. While a `LiveReader`'s snapshot lives, the
/// writer writes no page in place (`PageId::get_mut` returns
/// `InUseBySnapshot`): it cannot tell which pages that snapshot reads, so a
/// writer followed by other processes writes through transactions.
///
/// ```
/// use mappedpages::{LiveReader, Pager};
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.pages");
/// let mut writer = Pager::<4096>::options().process_readers(true).create(&path)?;
/// let id = writer.alloc()?;
///
/// // Usually in another process:
/// let reader = LiveReader::<4096>::open(&path)?;
/// let before = reader.snapshot()?;
///
/// let mut txn = writer.transaction()?;
/// let new = txn.alloc()?;
/// txn.get_mut(new)?.as_bytes_mut()[0] = 7;
/// txn.free(id)?;
/// txn.commit()?;
///
/// assert!(before.get(id).is_ok()); // the snapshot reads its commit
/// assert!(before.get(new).is_err());
/// let after = reader.snapshot()?; // and the next one the newest
/// assert_eq!(after.get(new)?.as_bytes()[0], 7);
/// # Ok::<(), mappedpages::MappedPageError>(())
/// ```
#[derive(Debug)]
pub struct LiveReader<const PAGE_SIZE: usize> {
    path: PathBuf,
    file: LiveFile,
    table: Arc<ReaderTable>,
    zero_page: Arc<[u8]>,
    alive: Arc<AtomicUsize>,
    /// The file's mapping and the newest state read, shared by snapshots
    /// of the same commit.
    latest: Mutex<Latest>,
}

/// A root read from the file: its slot, what it says, and its bytes.
struct NewestRoot {
    slot: usize,
    generation: u64,
    total_pages: u64,
    bytes: Vec<u8>,
    /// The root decoded; `None` for the root of the state loaded last
    /// ([`Latest::loaded`]), read again unchanged and not decoded again.
    decoded: Option<Root>,
}

#[derive(Debug, Default)]
struct Latest {
    region: Option<Arc<MapRegion>>,
    state: Weak<Frozen>,
    /// The state last loaded from the file, kept after its snapshots are
    /// dropped: a reader that takes a snapshot of the same commit again
    /// (the writer has not committed since) registers it anew and skips
    /// reading its page trees.
    loaded: Option<LoadedRoot>,
}

/// A root and the state loaded from it.
struct LoadedRoot {
    slot: usize,
    root: Vec<u8>,
    chosen: Chosen,
}

impl std::fmt::Debug for LoadedRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedRoot")
            .field("slot", &self.slot)
            .field("generation", &self.chosen.root().generation)
            .finish_non_exhaustive()
    }
}

/// A reader registered in a file's reader table: what
/// [`LiveReader::readers`] and [`Pager::readers`](crate::Pager::readers)
/// list.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReaderInfo {
    /// Its slot in the table.
    pub slot: usize,
    /// The id of its process (shown, never trusted: a reader is known to
    /// live by the lock it holds).
    pub process_id: u64,
    /// Whether it belongs to this process.
    pub in_this_process: bool,
    /// The generation of the commit it reads.
    pub generation: u64,
    /// How many commits the file has had since (at the moment of the list).
    pub behind: u64,
    /// The pages its commit counts: the file is not cut below them.
    pub pages: u64,
    /// The freed pages the writer keeps from reuse because a reader as old
    /// as this one may read them (those freed by later commits and synced
    /// since): what it costs the file. Known to the writer only: `Some`
    /// from [`Pager::readers`](crate::Pager::readers), `None` from
    /// [`LiveReader::readers`].
    pub pins: Option<u64>,
    /// When it began reading that commit.
    pub since: SystemTime,
}

impl ReaderInfo {
    /// The table's entries as shown to users; `pins(generation)` gives the
    /// pages a reader of that generation keeps from reuse, where known.
    pub(crate) fn listed(
        entries: Vec<ReaderEntry>,
        newest: u64,
        pins: impl Fn(u64) -> Option<u64>,
    ) -> Vec<ReaderInfo> {
        entries
            .into_iter()
            .map(|entry| ReaderInfo {
                slot: entry.slot,
                process_id: entry.pid,
                in_this_process: entry.ours,
                generation: entry.generation,
                behind: newest.saturating_sub(entry.generation),
                pages: entry.pages,
                pins: pins(entry.generation),
                since: UNIX_EPOCH + Duration::from_millis(entry.since_ms),
            })
            .collect()
    }
}

impl<const PAGE_SIZE: usize> LiveReader<PAGE_SIZE> {
    /// Opens `path` to follow its writer. Nothing is read but the
    /// superblock until the first snapshot.
    ///
    /// # Errors
    /// `NoReaderTable` if the file has none (its writer must open it with
    /// [`PagerOptions::process_readers`](crate::PagerOptions::process_readers));
    /// `NotAReaderTable` if the file in its place is something else; the
    /// errors of [`Pager::open`](crate::Pager::open) for a file that is not
    /// a page file of this page size.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = LiveFile::open(path)?;
        let mut first = vec![0u8; superblock::SUPERBLOCK_LEN];
        match file.read_at(&mut first, 0) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(MappedPageError::IncompleteCreate)
            }
            Err(err) => return Err(err.into()),
        }
        if superblock::decode(&first)? != PAGE_SIZE as u64 {
            return Err(MappedPageError::InvalidPageSize);
        }
        let table = match ReaderTable::open(path, false) {
            Ok(table) => table,
            Err(TableError::Io(err)) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(MappedPageError::NoReaderTable {
                    path: path.to_path_buf(),
                })
            }
            Err(err) => return Err(table_error(err, path)),
        };
        Ok(LiveReader {
            path: path.to_path_buf(),
            file,
            table,
            zero_page: vec![0u8; PAGE_SIZE].into(),
            alive: Arc::default(),
            latest: Mutex::default(),
        })
    }

    /// The path the reader was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A snapshot of the newest commit in the file now (or of the one
    /// before it, if the writer is writing the newest root at this very
    /// moment). Snapshots of the same commit share their state; each
    /// distinct commit read holds one slot of the reader table while any
    /// snapshot of it lives.
    ///
    /// # Errors
    /// `ReaderTableFull` if every slot is held (126 commits read at once,
    /// over all processes); `CorruptMetadata` if no root of the file is
    /// valid; `Io` on a failed read or map.
    pub fn snapshot(&self) -> Result<Snapshot<PAGE_SIZE>> {
        let mut latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        let mut last_error = MappedPageError::CorruptMetadata;
        for _ in 0..ATTEMPTS {
            let Some(NewestRoot {
                slot,
                generation,
                total_pages,
                bytes,
                decoded,
            }) = self.newest_root(latest.region.as_deref(), latest.loaded.as_ref())?
            else {
                continue;
            };
            if let Some(state) = latest.state.upgrade() {
                if state.generation() == generation {
                    return Ok(Snapshot { state });
                }
            }
            let registration = self
                .table
                .claim()
                .map_err(|err| table_error(err, &self.path))?;
            if !registration.register(generation, total_pages) {
                // The writer may have reused pages of that commit already.
                continue;
            }
            let need = total_pages.saturating_mul(PAGE_SIZE as u64);
            let region = match &latest.region {
                Some(region) if region.len() as u64 >= need => Arc::clone(region),
                _ => {
                    let len = self.file.len()?;
                    if len < need {
                        continue;
                    }
                    let region = Arc::new(self.file.map(len)?);
                    latest.region = Some(Arc::clone(&region));
                    region
                }
            };
            // The same root bytes name the same state, and the registration
            // that just succeeded keeps every page of it from reuse, so a
            // state loaded from them before (unregistered since) is still
            // the file's; a new root's trees are read under the new one.
            if let Some(root) = decoded {
                let file = region.registered_pages(&registration);
                match load_state_of_root(file, PAGE_SIZE, slot, root) {
                    Ok(chosen) => {
                        latest.loaded = Some(LoadedRoot {
                            slot,
                            root: bytes,
                            chosen,
                        })
                    }
                    Err(err) => {
                        last_error = err;
                        continue;
                    }
                }
            }
            let Some(loaded) = &latest.loaded else {
                continue;
            };
            let state = Frozen::new(
                generation,
                loaded.chosen.map(),
                Arc::clone(&region),
                Arc::clone(&self.zero_page),
                &self.alive,
            )
            .registered_by(registration);
            let state = Arc::new(state);
            latest.state = Arc::downgrade(&state);
            return Ok(Snapshot { state });
        }
        Err(last_error)
    }

    /// The newest valid root, copied; `None` if neither root is valid now
    /// (both being written at once cannot happen, so they are read again;
    /// a file whose roots stay invalid fails after [`ATTEMPTS`]). The roots
    /// are copied through `region` when there is one (no system call),
    /// else read from the file. `known`, the root of the state loaded
    /// last, is valid without being decoded again where its bytes are read
    /// unchanged.
    fn newest_root(
        &self,
        region: Option<&MapRegion>,
        known: Option<&LoadedRoot>,
    ) -> Result<Option<NewestRoot>> {
        let mut pages = Vec::with_capacity(ROOT_PAGES.len());
        for &page in &ROOT_PAGES {
            let mut bytes = vec![0u8; PAGE_SIZE];
            let offset = page * PAGE_SIZE as u64;
            let copied = region.is_some_and(|region| {
                usize::try_from(offset).is_ok_and(|offset| region.copy_changing(offset, &mut bytes))
            });
            if !copied {
                self.file.read_at(&mut bytes, offset)?;
            }
            pages.push(bytes);
        }
        let mut newest: Option<NewestRoot> = None;
        if let Some(known) = known.filter(|known| pages[known.slot] == known.root) {
            let root = known.chosen.root();
            newest = Some(NewestRoot {
                slot: known.slot,
                generation: root.generation,
                total_pages: root.total_pages,
                bytes: std::mem::take(&mut pages[known.slot]),
                decoded: None,
            });
        }
        for (slot, bytes) in pages.into_iter().enumerate() {
            // A root that claims no newer generation than a valid one
            // found cannot be the newest valid root: not decoded.
            let claimed = read_u64(&bytes, OFF_GENERATION);
            let beaten =
                |n: &NewestRoot| n.slot == slot || claimed.is_none_or(|c| c <= n.generation);
            if newest.as_ref().is_some_and(beaten) {
                continue;
            }
            if let Ok(root) = Root::decode(&bytes, PAGE_SIZE) {
                if newest
                    .as_ref()
                    .is_none_or(|n| root.generation > n.generation)
                {
                    newest = Some(NewestRoot {
                        slot,
                        generation: root.generation,
                        total_pages: root.total_pages,
                        bytes,
                        decoded: Some(root),
                    });
                }
            }
        }
        Ok(newest)
    }

    /// The readers registered in the file's reader table, in every process
    /// (this one's included), with how far each is behind the newest
    /// commit. Readers found dead on the way are cleared.
    ///
    /// # Errors
    /// `Io` if the table or the roots cannot be read.
    ///
    /// # Examples
    /// ```
    /// use mappedpages::{LiveReader, Pager};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut writer = Pager::<4096>::options().process_readers(true).create(&path)?;
    /// let reader = LiveReader::<4096>::open(&path)?;
    /// let snapshot = reader.snapshot()?;
    /// writer.alloc()?;
    /// let listed = reader.readers()?;
    /// assert_eq!(listed.len(), 1);
    /// assert_eq!(listed[0].generation, snapshot.generation());
    /// assert_eq!(listed[0].behind, 1);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn readers(&self) -> Result<Vec<ReaderInfo>> {
        let newest = self
            .newest_root(None, None)?
            .map_or(0, |root| root.generation);
        Ok(ReaderInfo::listed(self.table.readers()?, newest, |_| None))
    }
}
