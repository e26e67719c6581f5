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

use crate::engine::{Core, Frozen};
use crate::error::{MappedPageError, Result};
use crate::io::Storage;

/// Writes `state` to a new file at `path` (see the module docs);
/// `progress(done, total)` is told the pages written so far.
pub(crate) fn copy_state(
    state: &Frozen,
    path: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<()> {
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
    let settings = state.copy_settings();
    let (temp, core) = TempCopy::create(path, |temp| Core::create(temp, settings.clone()))?;
    core.fill_with_copy_of(state, progress)?;
    temp.publish(path)
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
