//! Consistent copies of a live file (contract C3): a snapshot's state
//! written to a new file while the writer goes on.
//!
//! The copy is built in a file of its own beside the destination, under a
//! name no other copy or program uses (made with `create_new`): a new file
//! of the snapshot's length up to its last page in use, the bytes of every
//! page the state uses (allocated regular pages, protected copies) written
//! at the same page numbers in runs (free pages are left as holes), then one
//! commit whose root describes exactly that state, with both page trees
//! written whole into its free pages, and a sync. Only then does the file
//! get the destination's name, by a hard link, which fails rather than
//! replace a file that took the name meanwhile; then the temporary name is
//! removed and the directory synced. So a crash during a copy leaves no
//! file at the destination that looks complete, and two copies to one
//! destination never mix: the second to finish is refused. Every way out
//! of a copy that did not finish, a panic in its progress callback
//! included, removes its file.
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::engine::FreeMap;
use crate::engine::{Core, Settings};
use crate::error::{MappedPageError, Result};
use crate::fault::HookSlot;
use crate::format::FIRST_DATA_PAGE;
use crate::io::Storage;
use crate::options::Durability;
use crate::snapshot::Frozen;

/// The largest write a copy makes at once: long runs of pages are written
/// in pieces this size, so a copy needs no more memory than the map.
const COPY_CHUNK: usize = 8 << 20;

impl Frozen {
    /// Writes this state to a new file at `path` (see the module docs);
    /// `progress(done, total)` is told the pages written so far.
    pub(crate) fn copy_to(&self, path: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<()> {
        if path.file_name().is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a copy's destination must name a file",
            )
            .into());
        }
        // Checked up front only to fail before the work; the link at the
        // end is what refuses a file that appears meanwhile.
        if std::fs::symlink_metadata(path).is_ok() {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists).into());
        }
        let settings = self.copy_settings();
        let (temp, core) = TempCopy::create(path, |temp| Core::create(temp, settings.clone()))?;
        self.write_copy(core, progress)?;
        temp.publish(path)
    }

    /// How to create the copy's file: as long as the state's last page in
    /// use, and synced as it is written.
    fn copy_settings(&self) -> Settings {
        // Up to the last page the state names: its pages, and both copies
        // of each protected page (the other copy is named, not copied).
        let copies = self
            .directory()
            .iter()
            .filter(|entry| entry.in_use())
            .flat_map(|entry| entry.copies);
        let total = self
            .used_pages()
            .iter()
            .map(|&(start, count)| start + count - 1)
            .chain(copies)
            .max()
            .map_or(FIRST_DATA_PAGE, |last| last + 1)
            .max(FIRST_DATA_PAGE + 1)
            .max(self.directory().len() as u64 * 2);
        Settings {
            page_size: self.page_size(),
            durability: Durability::Immediate,
            max_growth_pages: u64::MAX,
            shrink_threshold_pages: None,
            preallocate: false,
            initial_pages: total,
            hook: HookSlot::default(),
        }
    }

    /// Fills `core`, a new file made with [`Frozen::copy_settings`], with
    /// this state, and commits it. The file is closed when this returns or
    /// unwinds, before its name is given or removed.
    fn write_copy(&self, mut core: Core, progress: &mut dyn FnMut(u64, u64)) -> Result<()> {
        let page_size = self.page_size();
        let used = self.used_pages();
        let total = core.map.total_pages();
        let pages_to_copy: u64 = used.iter().map(|&(_, count)| count).sum();
        let mut done = 0u64;
        let pages_per_chunk = (COPY_CHUNK / page_size).max(1) as u64;
        for &(start, count) in &used {
            let mut page = start;
            while page < start + count {
                let n = pages_per_chunk.min(start + count - page);
                let bytes = self.pages(page, n)?;
                core.store.write_at(page * page_size as u64, bytes)?;
                page += n;
                done += n;
                progress(done, pages_to_copy);
            }
        }
        // The source's length, cut to the copy's (nothing is set past it).
        let mut regular = self.regular_bits().clone();
        regular.truncate(total);
        regular.grow(total);
        let map = FreeMap::from_parts(
            regular,
            self.directory().to_vec(),
            self.directory().len() as u64,
            [],
        )
        .map_err(|_| MappedPageError::CorruptMetadata)?;
        core.map = map;
        core.journal.root_total = total;
        // One commit of the whole state; its sync makes the pages written
        // above durable with it.
        core.commit_trees_whole()
    }
}

/// Tells apart the temporary files of the copies one process makes.
static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

/// A copy's file under its temporary name, removed when dropped unless
/// [`TempCopy::publish`] gave it its name.
#[derive(Debug)]
struct TempCopy {
    path: PathBuf,
    /// Linked to its destination: the file is no longer ours to remove.
    published: bool,
}

impl TempCopy {
    /// Makes the copy's file with `make`, which must fail with
    /// `AlreadyExists` rather than open a file that exists, under a new
    /// name beside `dest`: `dest`'s name, the process id, a counter of
    /// this process and the time. A name taken (a file a crashed process
    /// left) is passed over for the next.
    fn create<T>(dest: &Path, mut make: impl FnMut(&Path) -> Result<T>) -> Result<(TempCopy, T)> {
        const ATTEMPTS: u32 = 16;
        let name = dest.file_name().unwrap_or_default();
        for _ in 0..ATTEMPTS {
            let stamp = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |since| since.subsec_nanos());
            let mut temp = name.to_os_string();
            temp.push(format!(
                ".{}-{}-{stamp:08x}.partial",
                std::process::id(),
                NEXT_TEMP.fetch_add(1, Ordering::Relaxed)
            ));
            let temp = dest.with_file_name(temp);
            match make(&temp) {
                Ok(made) => {
                    let temp = TempCopy {
                        path: temp,
                        published: false,
                    };
                    return Ok((temp, made));
                }
                Err(MappedPageError::Io(err)) if err.kind() == io::ErrorKind::AlreadyExists => {}
                Err(err) => return Err(err),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "no free temporary name beside the copy's destination",
        )
        .into())
    }

    /// Gives the finished file the name `dest`, unless a file has it: a
    /// hard link fails with `AlreadyExists` where a rename would replace.
    /// Then the temporary name goes and the directory is synced.
    fn publish(mut self, dest: &Path) -> Result<()> {
        std::fs::hard_link(&self.path, dest)?;
        self.published = true;
        // The copy is complete under `dest` now: a temporary name that
        // cannot be removed is one more link to it, not a reason to fail.
        let _ = std::fs::remove_file(&self.path);
        Storage::sync_parent_dir(dest)?;
        Ok(())
    }
}

impl Drop for TempCopy {
    fn drop(&mut self) {
        if !self.published {
            // Ours since `create_new` made it; nothing else counts on it.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
