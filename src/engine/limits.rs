//! The bounds of a file's length, which `engine/length.rs` grows and cuts
//! it within: the fewest and the most pages a file has, a new file's
//! length, and the sizes of growth steps and of the free tail a commit
//! cuts.

use crate::error::{MappedPageError, Result};
use crate::format::{FIRST_DATA_PAGE, MAX_PAGES};
use crate::io::max_file_bytes;

/// Default cap on one growth step, in bytes (1 GiB): reached by files of
/// 8 GiB and more, whose eighth is larger.
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.pages");
/// use mappedpages::{Pager, DEFAULT_MAX_GROWTH_STEP};
/// // A file that will be large: smaller steps than the default cap.
/// let options = Pager::<4096>::options().max_growth_step(DEFAULT_MAX_GROWTH_STEP / 16);
/// # drop(options.create(&path)?);
/// # Ok::<(), mappedpages::MappedPageError>(())
/// ```
pub const DEFAULT_MAX_GROWTH_STEP: u64 = 1 << 30;
/// The smallest growth step, in bytes (4 MiB), unless
/// [`PagerOptions::max_growth_step`](crate::PagerOptions::max_growth_step) is set lower. Files smaller than 32 MiB,
/// whose eighth is less, grow by this much.
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.pages");
/// use mappedpages::{Pager, MIN_GROWTH_STEP};
/// let mut pager = Pager::<4096>::create(&path)?;
/// let before = pager.page_count();
/// pager.alloc_bulk(before as usize)?; // a small file grows by the minimum step
/// assert!(pager.page_count() >= before + MIN_GROWTH_STEP / 4096);
/// # Ok::<(), mappedpages::MappedPageError>(())
/// ```
pub const MIN_GROWTH_STEP: u64 = 4 << 20;
/// Default free tail, in bytes (64 MiB), past which a commit cuts the file
/// (when the tail is also more than a quarter of the file); see
/// [`PagerOptions::shrink_threshold`](crate::PagerOptions::shrink_threshold).
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.pages");
/// use mappedpages::{Pager, DEFAULT_SHRINK_THRESHOLD};
/// // Give free space back sooner than the default.
/// let options = Pager::<4096>::options().shrink_threshold(Some(DEFAULT_SHRINK_THRESHOLD / 4));
/// # drop(options.create(&path)?);
/// # Ok::<(), mappedpages::MappedPageError>(())
/// ```
pub const DEFAULT_SHRINK_THRESHOLD: u64 = 64 << 20;
/// A growth step is this fraction of the file (one eighth).
pub(super) const GROWTH_DIVISOR: u64 = 8;

/// The fewest pages a file has: the reserved pages and one data page.
pub(crate) const MIN_FILE_PAGES: u64 = FIRST_DATA_PAGE + 1;

/// The most pages a file of `page_size`-byte pages can have: the format's
/// page numbers and the longest file this process can map (see
/// `io::max_file_bytes`).
pub(super) fn max_total_pages(page_size: usize) -> u64 {
    MAX_PAGES.min(max_file_bytes() / page_size as u64)
}

/// The length, in pages, of a new file whose options ask for
/// `initial_pages`; `InvalidCount` if no file can be that long.
pub(super) fn new_file_pages(initial_pages: u64, page_size: usize) -> Result<u64> {
    let total = initial_pages.max(MIN_FILE_PAGES);
    if total > max_total_pages(page_size) {
        return Err(MappedPageError::InvalidCount { count: total });
    }
    Ok(total)
}
