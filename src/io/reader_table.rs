//! The reader table: which committed states readers in other processes are
//! reading, so that the writer reuses no page one of them may still read.
//!
//! # Where it lives, and why not in the data file
//! In a file of its own beside the data file, named after it with
//! `-readers` appended (`data.pages-readers`), mapped shared by every
//! process that opens it. Not a region of the data file: readers write their
//! entries many times a second, and those writes would then share the data
//! file's syncs and its page cache writeback, and a data file on read-only
//! media could not be read this way at all. Nothing in the table needs to
//! survive a restart of the machine (every reader is gone then), so it is
//! never synced; a table left by processes that died is valid, and its
//! entries are cleared as their owners are found dead.
//!
//! # Format (version 1; integers little-endian, every word 8-byte aligned)
//! | bytes | field |
//! |---|---|
//! | 0..8 | magic `MPREADRS` |
//! | 8..12 | table version (1) |
//! | 12..16 | number of slots (126) |
//! | 16..24 | the writer's reuse horizon (see below) |
//! | 24..128 | reserved, zero |
//! | 128 + 64 × i .. | slot `i`: |
//! | +0..8 | the generation the reader reads; 0: none |
//! | +8..16 | the pages that generation's state counts (the file's length it relies on) |
//! | +16..24 | the reader's process id (shown to users, never trusted alone) |
//! | +24..32 | a random token of the reader's process |
//! | +32..40 | when the generation was registered, milliseconds since the Unix epoch |
//! | +40..64 | reserved, zero |
//!
//! The table is 8 KiB. A file that is empty (or whose magic is all zeros: a
//! creation cut short) is set up by the next process to open it; one with
//! other bytes there is refused, not overwritten.
//!
//! # Who holds a slot: a lock, not a process id
//! A process holds slot `i` while it holds an exclusive lock on byte
//! `2^30 + 1 + i` of the table's file (past its end; `fcntl` locks on Unix,
//! owned by the open file description on Linux, `LockFileEx` on Windows).
//! The OS releases a lock when its holder dies, however it dies, so a slot
//! whose lock anyone else can take belongs to nobody, whatever its process
//! id says: a recycled process id is never mistaken for a live reader, and
//! no timeout is needed. Within one process the table is opened once (see
//! [`ReaderTable::open`]) and the slots it holds are known without a lock,
//! because a process's own locks do not exclude it.
//!
//! # The race between a reader registering and the writer reusing pages
//! A reader reads the newest root (generation `g`), then registers `g` in
//! its slot, then reads the horizon: if the horizon is past `g` it must
//! read the roots again and register anew. Before the writer gives back
//! pages freed by commits up to generation `f`, it raises the horizon to at
//! least `f`, then reads every slot. All of these are sequentially
//! consistent atomic operations on the shared map, so in their single order
//! either the writer's read of the slot comes after the reader's
//! registration (the writer sees `g` and keeps every page freed after it),
//! or it comes before, and then the writer's raise came before the reader's
//! read of the horizon, which the reader sees: if `f > g` it retries, and if
//! `f <= g` the pages given back were freed by commits up to `g`, so the
//! state of `g` does not use them. (LMDB closes the same race by reading
//! its meta page again after registering.)

use std::collections::HashMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use memmap2::{MmapOptions, MmapRaw};

use super::platform;

/// The first bytes of a reader table.
pub(crate) const TABLE_MAGIC: [u8; 8] = *b"MPREADRS";
/// The table's format version.
pub(crate) const TABLE_VERSION: u32 = 1;
/// How many readers may hold a snapshot at once, over all processes.
pub(crate) const SLOTS: usize = 126;
const HEADER_BYTES: usize = 128;
const SLOT_BYTES: usize = 64;
/// The table's length in bytes.
pub(crate) const TABLE_BYTES: usize = HEADER_BYTES + SLOTS * SLOT_BYTES;

const HORIZON_AT: usize = 16;
const GENERATION_AT: usize = 0;
const PAGES_AT: usize = 8;
const PID_AT: usize = 16;
const TOKEN_AT: usize = 24;
const SINCE_AT: usize = 32;

/// The byte whose lock serialises setting up a new table.
const SETUP_LOCK: u32 = 1 << 30;
/// The byte whose lock holds slot 0; slot `i` is this plus `i`. Past the
/// table, and below 2^31 for targets whose `off_t` is 32 bits.
const SLOT_LOCK_BASE: u32 = SETUP_LOCK + 1;

/// Why a table cannot be used.
#[derive(Debug)]
pub(crate) enum TableError {
    Io(io::Error),
    /// The file beside the data file holds something else.
    NotATable,
    /// Every slot is held by a live reader.
    Full,
}

impl From<io::Error> for TableError {
    fn from(err: io::Error) -> Self {
        TableError::Io(err)
    }
}

/// What a slot says about its reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReaderEntry {
    pub(crate) slot: usize,
    pub(crate) generation: u64,
    pub(crate) pages: u64,
    pub(crate) pid: u64,
    pub(crate) since_ms: u64,
    /// Held by this process.
    pub(crate) ours: bool,
}

/// A process's view of one reader table.
#[derive(Debug)]
pub(crate) struct ReaderTable {
    file: File,
    map: MmapRaw,
    /// The slots this process holds (a process's own locks do not exclude
    /// it, so they are tracked here); every take and test of a slot's lock
    /// happens under this mutex.
    held: Mutex<HeldSlots>,
}

/// The slots a process holds, and one it keeps when no reader uses it.
#[derive(Debug)]
struct HeldSlots {
    held: Vec<bool>,
    /// A held slot that registers nothing, kept for the next reader: a
    /// reader that takes a snapshot of each commit then takes its slot
    /// without a system call. It pins nothing and is not listed.
    spare: Option<usize>,
}

/// The path of the reader table of the data file at `data`.
pub(crate) fn table_path(data: &Path) -> PathBuf {
    let mut name = data.as_os_str().to_owned();
    name.push("-readers");
    PathBuf::from(name)
}

/// The tables this process has open, by their canonical path: each is
/// opened once per process, so that closing a second descriptor can never
/// release the locks of the first (Unix locks without open-file-description
/// ownership are the process's and go with any close).
fn open_tables() -> &'static Mutex<HashMap<PathBuf, Weak<ReaderTable>>> {
    static TABLES: OnceLock<Mutex<HashMap<PathBuf, Weak<ReaderTable>>>> = OnceLock::new();
    TABLES.get_or_init(Default::default)
}

/// A random number fixed for this process: with the process id, it tells
/// this process's slots from those of a dead process whose id was reused.
fn process_token() -> u64 {
    static TOKEN: OnceLock<u64> = OnceLock::new();
    *TOKEN.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        hasher.write_u128(now_ms().into());
        hasher.finish() | 1
    })
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl ReaderTable {
    /// Opens the reader table of the data file at `data`, making it if there
    /// is none and `make` asks for it (else `NotFound`). A process shares
    /// one `ReaderTable` per table file.
    pub(crate) fn open(data: &Path, make: bool) -> Result<Arc<ReaderTable>, TableError> {
        let path = table_path(data);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(make)
            .truncate(false)
            .open(&path)?;
        let key = std::fs::canonicalize(&path)?;
        let mut tables = open_tables().lock().unwrap_or_else(|p| p.into_inner());
        if let Some(table) = tables.get(&key).and_then(Weak::upgrade) {
            return Ok(table);
        }
        set_up(&file)?;
        let map = MmapOptions::new().len(TABLE_BYTES).map_raw(&file)?;
        let table = Arc::new(ReaderTable {
            file,
            map,
            held: Mutex::new(HeldSlots {
                held: vec![false; SLOTS],
                spare: None,
            }),
        });
        tables.retain(|_, table| table.strong_count() > 0);
        tables.insert(key, Arc::downgrade(&table));
        Ok(table)
    }

    /// The word at byte `at` of the table.
    fn word(&self, at: usize) -> &AtomicU64 {
        assert!(at.is_multiple_of(8) && at + 8 <= TABLE_BYTES);
        // SAFETY: the map is `TABLE_BYTES` long and page-aligned, and lives
        // as long as `self`; `at` is 8-aligned and inside it, so the pointer
        // is valid and aligned for an `AtomicU64`. Other processes change
        // these bytes concurrently, always as whole aligned words through
        // atomics of their own; this process only ever reaches them through
        // this function, as atomics, so no plain reference to them exists.
        unsafe { &*(self.map.as_mut_ptr().add(at) as *const AtomicU64) }
    }

    fn slot_word(&self, slot: usize, field: usize) -> &AtomicU64 {
        self.word(HEADER_BYTES + slot * SLOT_BYTES + field)
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HeldSlots> {
        // A panic while it was held left no half-made change behind.
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a free slot for a reader of this process: the first whose lock
    /// nobody holds (a slot a dead process left is free, and is cleared).
    pub(crate) fn claim(self: &Arc<Self>) -> Result<ReaderSlot, TableError> {
        let mut slots = self.held();
        if let Some(slot) = slots.spare.take() {
            return Ok(ReaderSlot {
                table: Arc::clone(self),
                slot,
            });
        }
        for slot in 0..SLOTS {
            if slots.held[slot] {
                continue;
            }
            match platform::try_lock_byte(&self.file, SLOT_LOCK_BASE + slot as u32) {
                Ok(()) => {
                    slots.held[slot] = true;
                    self.clear(slot);
                    self.slot_word(slot, PID_AT)
                        .store(u64::from(std::process::id()), SeqCst);
                    self.slot_word(slot, TOKEN_AT)
                        .store(process_token(), SeqCst);
                    return Ok(ReaderSlot {
                        table: Arc::clone(self),
                        slot,
                    });
                }
                Err(TryLockError::WouldBlock) => continue,
                Err(TryLockError::Error(err)) => return Err(err.into()),
            }
        }
        Err(TableError::Full)
    }

    fn clear(&self, slot: usize) {
        for field in [GENERATION_AT, PAGES_AT, PID_AT, TOKEN_AT, SINCE_AT] {
            self.slot_word(slot, field).store(0, SeqCst);
        }
    }

    /// Whether `slot` belongs to a live reader: one of this process, or one
    /// whose lock another process holds. A slot found without a holder is
    /// cleared. Called with `held` locked.
    fn is_live(&self, held: &[bool], slot: usize) -> io::Result<bool> {
        if held[slot] {
            return Ok(true);
        }
        let lock = SLOT_LOCK_BASE + slot as u32;
        match platform::try_lock_byte(&self.file, lock) {
            Ok(()) => {
                self.clear(slot);
                platform::unlock_byte(&self.file, lock)?;
                Ok(false)
            }
            Err(TryLockError::WouldBlock) => Ok(true),
            Err(TryLockError::Error(err)) => Err(err),
        }
    }

    /// Hands `visit` the entry of each live reader registering a generation
    /// that `wanted` picks, in slot order, until it breaks. Only those
    /// slots' locks are tried (a system call each), and the slots of dead
    /// readers found on the way are cleared.
    fn scan(
        &self,
        wanted: impl Fn(u64) -> bool,
        mut visit: impl FnMut(ReaderEntry) -> ControlFlow<()>,
    ) -> io::Result<()> {
        let slots = self.held();
        for slot in 0..SLOTS {
            let generation = self.slot_word(slot, GENERATION_AT).load(SeqCst);
            if generation == 0 || !wanted(generation) || !self.is_live(&slots.held, slot)? {
                continue;
            }
            let entry = ReaderEntry {
                slot,
                generation,
                pages: self.slot_word(slot, PAGES_AT).load(SeqCst),
                pid: self.slot_word(slot, PID_AT).load(SeqCst),
                since_ms: self.slot_word(slot, SINCE_AT).load(SeqCst),
                ours: slots.held[slot],
            };
            if visit(entry).is_break() {
                break;
            }
        }
        Ok(())
    }

    /// The entries of every live reader that registers a generation.
    pub(crate) fn readers(&self) -> io::Result<Vec<ReaderEntry>> {
        let mut entries = Vec::new();
        self.scan(
            |_| true,
            |entry| {
                entries.push(entry);
                ControlFlow::Continue(())
            },
        )?;
        Ok(entries)
    }

    /// Whether a live reader registers some generation.
    pub(crate) fn any_reader(&self) -> io::Result<bool> {
        let mut found = false;
        self.scan(
            |_| true,
            |_| {
                found = true;
                ControlFlow::Break(())
            },
        )?;
        Ok(found)
    }

    /// The writer's side of the race in the module docs: raises the horizon
    /// to `freed_through`, the newest generation whose freed pages it is
    /// about to give back, then returns the oldest generation a live reader
    /// reads if it is older than `freed_through` (`None`: no reader is),
    /// the bound for those pages. A reader of `freed_through` or newer
    /// reads no page those commits freed, so its liveness is not tried:
    /// readers that follow the writer cost it no system call.
    pub(crate) fn before_reuse(&self, freed_through: u64) -> io::Result<Option<u64>> {
        self.word(HORIZON_AT).fetch_max(freed_through, SeqCst);
        let mut oldest: Option<u64> = None;
        self.scan(
            |generation| generation < freed_through,
            |entry| {
                oldest = Some(oldest.map_or(entry.generation, |o| o.min(entry.generation)));
                ControlFlow::Continue(())
            },
        )?;
        Ok(oldest)
    }

    /// The writer's horizon: pages freed by commits up to it may have been
    /// reused.
    pub(crate) fn horizon(&self) -> u64 {
        self.word(HORIZON_AT).load(SeqCst)
    }

    /// The most pages a live reader's state counts (0: no reader): the file
    /// must not be cut below them.
    pub(crate) fn pages_in_use(&self) -> io::Result<u64> {
        Ok(self.readers()?.iter().map(|e| e.pages).max().unwrap_or(0))
    }
}

/// Makes `file` a reader table if it is empty, or checks that it is one.
fn set_up(file: &File) -> Result<(), TableError> {
    lock_waiting(file, SETUP_LOCK)?;
    let checked = check_or_make(file);
    let unlocked = platform::unlock_byte(file, SETUP_LOCK);
    checked?;
    unlocked?;
    Ok(())
}

fn check_or_make(file: &File) -> Result<(), TableError> {
    let len = file.metadata()?.len();
    if len > TABLE_BYTES as u64 {
        return Err(TableError::NotATable);
    }
    let mut bytes = vec![0u8; len as usize];
    platform::read_exact_at(file, &mut bytes, 0)?;
    if bytes.starts_with(&TABLE_MAGIC) {
        let word = |at: usize| {
            bytes
                .get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u32::from_le_bytes)
        };
        let whole = bytes.len() == TABLE_BYTES;
        return if whole && word(8) == TABLE_VERSION && word(12) as usize == SLOTS {
            Ok(())
        } else {
            Err(TableError::NotATable)
        };
    }
    if bytes.iter().any(|&byte| byte != 0) {
        return Err(TableError::NotATable);
    }
    // Empty, or made by a process that died before writing its header (the
    // header goes last, so a table with a magic is whole).
    file.set_len(TABLE_BYTES as u64)?;
    let mut header = [0u8; 16];
    header[..8].copy_from_slice(&TABLE_MAGIC);
    header[8..12].copy_from_slice(&TABLE_VERSION.to_le_bytes());
    header[12..16].copy_from_slice(&(SLOTS as u32).to_le_bytes());
    platform::write_all_at(file, &header, 0)?;
    Ok(())
}

/// Takes the lock on `byte`, waiting for it (a process setting up the table
/// holds it for a moment); gives up with an error after 10 s.
fn lock_waiting(file: &File, byte: u32) -> io::Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match platform::try_lock_byte(file, byte) {
            Ok(()) => return Ok(()),
            Err(TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(TryLockError::WouldBlock) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the reader table is being set up by another process",
                ))
            }
            Err(TryLockError::Error(err)) => return Err(err),
        }
    }
}

/// A slot held by a reader of this process, given back when dropped.
#[derive(Debug)]
pub(crate) struct ReaderSlot {
    table: Arc<ReaderTable>,
    slot: usize,
}

impl ReaderSlot {
    /// The slot's index in the table.
    #[cfg(test)]
    pub(crate) fn index(&self) -> usize {
        self.slot
    }

    /// The reader's side of the race in the module docs: records that it
    /// reads the state of `generation`, which counts `pages` pages, and says
    /// whether it may. `false`: the writer may already reuse pages that
    /// state uses; the slot is cleared, and the reader must read a newer
    /// root and register again.
    pub(crate) fn register(&self, generation: u64, pages: u64) -> bool {
        debug_assert!(generation > 0);
        let table = &self.table;
        table.slot_word(self.slot, PAGES_AT).store(pages, SeqCst);
        table.slot_word(self.slot, SINCE_AT).store(now_ms(), SeqCst);
        table
            .slot_word(self.slot, GENERATION_AT)
            .store(generation, SeqCst);
        if table.horizon() > generation {
            self.unregister();
            return false;
        }
        true
    }

    /// The generation this slot registers, if any.
    pub(crate) fn registered(&self) -> Option<u64> {
        let generation = self.table.slot_word(self.slot, GENERATION_AT).load(SeqCst);
        (generation != 0).then_some(generation)
    }

    /// The reader reads no state now: its pages may be reused.
    pub(crate) fn unregister(&self) {
        self.table
            .slot_word(self.slot, GENERATION_AT)
            .store(0, SeqCst);
    }
}

impl Drop for ReaderSlot {
    fn drop(&mut self) {
        let mut slots = self.table.held();
        if slots.spare.is_none() {
            self.unregister();
            slots.spare = Some(self.slot);
            return;
        }
        self.table.clear(self.slot);
        // Best effort: a lock that stays is released when the table's file
        // is closed, and until then the slot reads as free but taken.
        let _ = platform::unlock_byte(&self.table.file, SLOT_LOCK_BASE + self.slot as u32);
        slots.held[self.slot] = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    fn data_path(dir: &tempfile::TempDir) -> PathBuf {
        dir.path().join("data.pages")
    }

    #[test]
    fn slots_are_taken_once_and_given_back_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let table = ReaderTable::open(&data_path(&dir), true).unwrap();
        assert!(Arc::ptr_eq(
            &table,
            &ReaderTable::open(&data_path(&dir), true).unwrap()
        ));
        let slots: Vec<ReaderSlot> = (0..SLOTS).map(|_| table.claim().unwrap()).collect();
        let mut indexes: Vec<usize> = slots.iter().map(ReaderSlot::index).collect();
        indexes.dedup();
        assert_eq!(indexes.len(), SLOTS);
        assert!(matches!(table.claim(), Err(TableError::Full)));
        let freed = slots[40].index();
        drop(slots);
        assert_eq!(table.claim().unwrap().index(), 0);
        assert!(freed > 0);
    }

    /// Only readers older than the commits whose pages are to be reused
    /// bound them; one of those commits or newer bounds nothing.
    #[test]
    fn readers_at_or_past_the_freed_commits_bound_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let table = ReaderTable::open(&data_path(&dir), true).unwrap();
        assert!(!table.any_reader().unwrap());
        let (old, new) = (table.claim().unwrap(), table.claim().unwrap());
        assert!(old.register(7, 10) && new.register(9, 10));
        assert!(table.any_reader().unwrap());
        assert_eq!(table.before_reuse(7).unwrap(), None);
        assert_eq!(table.before_reuse(8).unwrap(), Some(7));
        assert_eq!(table.before_reuse(12).unwrap(), Some(7));
        old.unregister();
        assert_eq!(table.before_reuse(12).unwrap(), Some(9));
        new.unregister();
        assert!(!table.any_reader().unwrap());
    }

    #[test]
    fn a_registration_the_horizon_passed_is_refused_and_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let table = ReaderTable::open(&data_path(&dir), true).unwrap();
        let slot = table.claim().unwrap();
        assert_eq!(table.before_reuse(5).unwrap(), None);
        assert!(!slot.register(4, 10), "pages freed after 4 may be reused");
        assert!(table.readers().unwrap().is_empty());
        assert!(slot.register(5, 10));
        assert_eq!(table.before_reuse(9).unwrap(), Some(5));
        let entries = table.readers().unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!((entries[0].generation, entries[0].pages), (5, 10));
        assert!(entries[0].ours);
        assert_eq!(entries[0].pid, u64::from(std::process::id()));
        assert_eq!(table.pages_in_use().unwrap(), 10);
        slot.unregister();
        assert_eq!(table.before_reuse(9).unwrap(), None);
        assert_eq!(table.horizon(), 9);
    }

    #[test]
    fn a_foreign_file_is_refused_and_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let data = data_path(&dir);
        let path = table_path(&data);
        std::fs::write(&path, b"not a reader table").unwrap();
        assert!(matches!(
            ReaderTable::open(&data, true),
            Err(TableError::NotATable)
        ));
        assert_eq!(std::fs::read(&path).unwrap(), b"not a reader table");
    }

    #[test]
    fn a_table_whose_setup_was_cut_short_is_set_up() {
        let dir = tempfile::tempdir().unwrap();
        let data = data_path(&dir);
        std::fs::write(table_path(&data), vec![0u8; TABLE_BYTES]).unwrap();
        let table = ReaderTable::open(&data, true).unwrap();
        assert!(table.claim().unwrap().register(1, 1));
        let bytes = std::fs::read(table_path(&data)).unwrap();
        assert_eq!(bytes[..8], TABLE_MAGIC);
    }

    const CHILD_ENV: &str = "MAPPEDPAGES_READER_TABLE_CHILD";

    /// The child: holds a slot registered at generation 7 until killed.
    #[test]
    fn child_holds_a_slot() {
        let Some(data) = std::env::var_os(CHILD_ENV) else {
            return;
        };
        let table = ReaderTable::open(Path::new(&data), true).unwrap();
        let slot = table.claim().unwrap();
        assert!(slot.register(7, 33));
        println!("HELD {}", slot.index());
        std::thread::sleep(Duration::from_secs(600));
    }

    /// A reader in another process is seen live while it runs, and its slot
    /// is cleared and taken again once it was killed: the lock, not its
    /// process id, says whether it lives.
    #[test]
    fn a_killed_reader_process_is_found_dead_and_its_slot_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let data = data_path(&dir);
        let table = ReaderTable::open(&data, true).unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "io::reader_table::tests::child_holds_a_slot"])
            .args(["--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &data)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let slot: usize = loop {
            let line = lines.next().expect("the child ended early").unwrap();
            // The harness prints the test's name on the same line first.
            if let Some((_, index)) = line.split_once("HELD ") {
                break index.trim().parse().unwrap();
            }
        };
        let entries = table.readers().unwrap();
        assert_eq!(entries.len(), 1, "{entries:?}");
        let entry = entries[0];
        assert_eq!((entry.slot, entry.generation, entry.pages), (slot, 7, 33));
        assert_eq!(entry.pid, u64::from(child.id()));
        assert!(!entry.ours);
        assert_eq!(table.before_reuse(20).unwrap(), Some(7));
        // The slot is taken: a claim here gets another one (held to the
        // end, so that it is not kept as this process's spare).
        let other = table.claim().unwrap();
        assert_ne!(other.index(), slot);

        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(
            table.before_reuse(20).unwrap(),
            None,
            "the dead reader pins nothing"
        );
        assert!(table.readers().unwrap().is_empty());
        assert_eq!(
            table.claim().unwrap().index(),
            slot,
            "the dead reader's slot is free"
        );
        drop(other);
    }

    /// A dropped slot is kept, registering nothing, for the next claim of
    /// this process; a second dropped one is given back to every process.
    #[test]
    fn one_dropped_slot_is_kept_for_the_next_reader() {
        let dir = tempfile::tempdir().unwrap();
        let table = ReaderTable::open(&data_path(&dir), true).unwrap();
        let (a, b) = (table.claim().unwrap(), table.claim().unwrap());
        assert!(a.register(3, 8) && b.register(4, 8));
        let (kept, given_back) = (a.index(), b.index());
        drop(a);
        drop(b);
        assert!(
            table.readers().unwrap().is_empty(),
            "a kept slot pins nothing"
        );
        assert!(table.held().held[kept] && !table.held().held[given_back]);
        let again = table.claim().unwrap();
        assert_eq!(again.index(), kept);
        assert_eq!(again.registered(), None);
        assert_eq!(table.claim().unwrap().index(), given_back);
    }
}
