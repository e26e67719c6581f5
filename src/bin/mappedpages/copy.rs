//! `copy`: the source opened as a `ReadOnlyPager` of the page size its
//! superblock gives (or, while a writer that accepts readers of other
//! processes holds it, read through a `LiveReader` snapshot), copied with a
//! progress bar.

use std::path::Path;
use std::process::ExitCode;

use indicatif::ProgressStyle;
use mappedpages::inspect::Inspector;
use mappedpages::{LiveReader, MappedPageError, ReadOnlyPager, Snapshot};

use crate::progress::LazyBar;
use crate::{one_line, COPY_PROGRESS_FROM, EXIT_ERROR};

/// Copies with the page size read from the source's superblock; errors
/// about the source are returned (and printed with its name), errors about
/// the destination are printed here with its name.
pub(crate) fn copy(
    src: &Path,
    dst: &Path,
    force_progress: bool,
) -> Result<ExitCode, MappedPageError> {
    let page_size = Inspector::open(src)?.superblock().page_size;
    let Some(open) = opener(page_size) else {
        return Err(MappedPageError::InvalidPageSize);
    };
    let source = open(src)?;
    let mut bar = LazyBar::new(force_progress, COPY_PROGRESS_FROM, || {
        ProgressStyle::with_template(
            "copying {wide_bar} {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, {eta} left)",
        )
    });
    let result = source.copy(dst, &mut |done, total| {
        bar.update(done * page_size, total * page_size);
    });
    bar.finish(result.is_ok());
    match result {
        Ok(()) => {
            println!(
                "copied      {} to {} ({} allocated pages of {page_size} bytes, generation {})",
                src.display(),
                dst.display(),
                source.allocated(),
                source.generation()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            let why = match &err {
                MappedPageError::Io(io) if io.kind() == std::io::ErrorKind::AlreadyExists => {
                    "the destination exists; copy makes a new file and never overwrites one"
                        .to_string()
                }
                other => one_line(other),
            };
            eprintln!("mappedpages: {}: {why}", dst.display());
            Ok(ExitCode::from(EXIT_ERROR))
        }
    }
}

/// A source opened for copying, whatever its page size.
pub(crate) trait Source {
    fn copy(&self, dst: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<(), MappedPageError>;
    fn allocated(&self) -> u64;
    fn generation(&self) -> u64;
}

impl<const P: usize> Source for Snapshot<P> {
    fn copy(&self, dst: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<(), MappedPageError> {
        self.copy_to_with_progress(dst, progress)
    }

    fn allocated(&self) -> u64 {
        self.allocated_page_count()
    }

    fn generation(&self) -> u64 {
        Snapshot::generation(self)
    }
}

pub(crate) type Opener = fn(&Path) -> Result<Box<dyn Source>, MappedPageError>;

/// The source under a shared lock; while a writer holds it, a snapshot of
/// its newest commit through the file's reader table, if it has one (the
/// copy then runs beside the writer, which goes on).
pub(crate) fn open_source<const P: usize>(src: &Path) -> Result<Box<dyn Source>, MappedPageError> {
    match ReadOnlyPager::<P>::open(src) {
        Ok(pager) => Ok(Box::new(Snapshot::clone(&pager))),
        Err(MappedPageError::Locked) => match LiveReader::<P>::open(src) {
            Ok(reader) => Ok(Box::new(reader.snapshot()?)),
            Err(MappedPageError::NoReaderTable { .. }) => Err(MappedPageError::Locked),
            Err(err) => Err(err),
        },
        Err(err) => Err(err),
    }
}

/// The opener for files of `page_size`.
pub(crate) fn opener(page_size: u64) -> Option<Opener> {
    for_page_size!(page_size, open_source as Opener)
}
