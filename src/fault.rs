//! Fault injection at the I/O seam, for crash-consistency tests (feature
//! `fault-injection`; without it the hook compiles to nothing).
//!
//! Every metadata write (and every write of pages a transaction wrote),
//! every sync and every growth of the file is announced to an [`IoHook`]
//! before it happens. The hook may record the file as the
//! page cache holds it (to build the images a power loss could leave), or
//! return an error, which the pager then treats as the failure of that call.
//!
//! ```
//! # #[cfg(feature = "fault-injection")]
//! # {
//! use mappedpages::fault::{IoEvent, IoHook};
//! use mappedpages::{MappedPageError, Pager};
//! let dir = tempfile::tempdir().unwrap();
//! let hook = IoHook::new(|event| match event {
//!     IoEvent::Sync { .. } => Err(std::io::Error::other("injected")),
//!     _ => Ok(()),
//! });
//! drop(Pager::<4096>::create(dir.path().join("f")).unwrap());
//! let mut pager = Pager::<4096>::options()
//!     .io_hook(hook)
//!     .open(dir.path().join("f"))
//!     .unwrap();
//! // The first commit's sync fails, so the commit does, with the injected
//! // error; the page cache is then in an unknown state, so the pager asks
//! // to be reopened.
//! assert!(matches!(pager.alloc(), Err(MappedPageError::Io(_))));
//! assert!(matches!(pager.alloc(), Err(MappedPageError::Unavailable)));
//! # }
//! ```

#[cfg(feature = "fault-injection")]
use std::sync::{Arc, Mutex};
use std::{fmt, io};

/// An I/O step the pager is about to take.
///
/// # Examples
/// ```
/// # #[cfg(feature = "fault-injection")]
/// # {
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.pages");
/// use mappedpages::fault::{IoEvent, IoHook};
/// use std::sync::{Arc, Mutex};
/// let grown = Arc::new(Mutex::new(Vec::new()));
/// let seen = Arc::clone(&grown);
/// let hook = IoHook::new(move |event| {
///     if let IoEvent::Grow { new_len, .. } = event {
///         seen.lock().expect("not poisoned").push(new_len);
///     }
///     Ok(())
/// });
/// let mut pager = mappedpages::Pager::<4096>::options().io_hook(hook).create(&path)?;
/// pager.alloc_bulk(100)?; // more than a new file holds
/// assert!(!grown.lock().expect("not poisoned").is_empty());
/// # }
/// # Ok::<(), mappedpages::MappedPageError>(())
/// ```
#[derive(Debug)]
#[cfg_attr(not(feature = "fault-injection"), allow(dead_code))]
#[non_exhaustive]
pub enum IoEvent<'a> {
    /// Bytes are about to be written at `offset` with a positional write
    /// (not yet durable): metadata, or pages a transaction wrote, which its
    /// commit writes in runs of adjacent pages.
    Write {
        /// Byte offset in the file.
        offset: u64,
        /// Number of bytes.
        len: usize,
    },
    /// A sync is about to start. `file` is the whole file as the page cache
    /// holds it now: what the disk will hold once the sync returns. (A
    /// sync shared by grouped commits runs while later commits go on; those
    /// write only pages no root written so far uses, so for every page such
    /// a root uses this is still what the disk will hold.)
    Sync {
        /// The file's bytes.
        file: &'a [u8],
    },
    /// The file is about to grow to `new_len` bytes. The steps of the growth
    /// follow: [`IoEvent::Reserve`] (or [`IoEvent::SetLen`] without
    /// preallocation), then [`IoEvent::Map`]. A growth that fails at any step
    /// is undone with a [`IoEvent::SetLen`] back to the old length.
    Grow {
        /// The new length in bytes.
        new_len: u64,
    },
    /// Disk blocks for bytes `offset..offset + len` are about to be reserved
    /// (`fallocate`), which also extends the file to cover them.
    Reserve {
        /// Byte offset of the first reserved byte.
        offset: u64,
        /// Number of bytes.
        len: u64,
    },
    /// The file's length is about to be set to `len` bytes: a growth without
    /// reserved blocks, or a cut that gives back the tail of a failed growth.
    SetLen {
        /// The new length in bytes.
        len: u64,
    },
    /// The first `len` bytes of the file are about to be mapped (after a
    /// growth, or shorter before a cut).
    Map {
        /// The length of the new map in bytes.
        len: u64,
    },
}

/// A callback told of every [`IoEvent`]; an `Err` it returns fails the step.
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.pages");
/// use mappedpages::fault::IoHook;
/// let hook = IoHook::new(|_event| Ok(()));
/// let pager = mappedpages::Pager::<4096>::options().io_hook(hook.clone()).create(&path)?;
/// # drop((pager, hook));
/// # Ok::<(), mappedpages::MappedPageError>(())
/// ```
#[cfg(feature = "fault-injection")]
#[derive(Clone)]
pub struct IoHook(Arc<Mutex<HookFn>>);

#[cfg(feature = "fault-injection")]
type HookFn = dyn FnMut(IoEvent<'_>) -> io::Result<()> + Send;

#[cfg(feature = "fault-injection")]
impl IoHook {
    /// Wraps a callback.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// use mappedpages::fault::{IoEvent, IoHook};
    /// use mappedpages::{MappedPageError, Pager};
    /// drop(Pager::<4096>::create(&path)?);
    /// // Fail every metadata write: the commit fails and changes nothing durable.
    /// let hook = IoHook::new(|event| match event {
    ///     IoEvent::Write { .. } => Err(std::io::Error::other("injected")),
    ///     _ => Ok(()),
    /// });
    /// let mut pager = Pager::<4096>::options().io_hook(hook).open(&path)?;
    /// assert!(matches!(pager.alloc(), Err(MappedPageError::Io(_))));
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn new(hook: impl FnMut(IoEvent<'_>) -> io::Result<()> + Send + 'static) -> IoHook {
        IoHook(Arc::new(Mutex::new(hook)))
    }
}

#[cfg(feature = "fault-injection")]
impl fmt::Debug for IoHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IoHook")
    }
}

/// The hook slot the storage carries: empty unless a test installed one.
#[derive(Clone, Default)]
pub(crate) struct HookSlot {
    #[cfg(feature = "fault-injection")]
    pub hook: Option<IoHook>,
}

impl fmt::Debug for HookSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HookSlot")
    }
}

impl HookSlot {
    /// Announces `event`; the hook's error, if any, fails the step.
    #[inline]
    pub fn fire(&self, event: IoEvent<'_>) -> io::Result<()> {
        #[cfg(feature = "fault-injection")]
        if let Some(IoHook(hook)) = &self.hook {
            let mut hook = hook
                .lock()
                .map_err(|_| io::Error::other("I/O hook panicked"))?;
            return hook(event);
        }
        let _ = event;
        Ok(())
    }
}
