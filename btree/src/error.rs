//! What can go wrong: the pager's errors, arguments past the limits, and
//! pages that do not read as a tree.

use std::fmt;

use mappedpages::MappedPageError;

use crate::node::{MAX_KEY, MAX_VALUE};

/// An error of the store.
///
/// ```
/// use mappedpages_btree::{Db, Error, MAX_KEY};
/// # let dir = tempfile::tempdir()?;
/// let mut db = Db::create(dir.path().join("store.db"))?;
/// let mut txn = db.write()?;
/// let refused = txn.insert(&vec![0; MAX_KEY + 1], b"value");
/// assert!(matches!(refused, Err(Error::KeyTooLarge(_))));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The pager failed (I/O, a file that is not a page file, ...).
    Pager(MappedPageError),
    /// A key longer than [`MAX_KEY`] bytes; nothing changed.
    KeyTooLarge(usize),
    /// A value longer than [`MAX_VALUE`] bytes; nothing changed.
    ValueTooLarge(usize),
    /// A page of the tree does not hold what the tree's shape says it
    /// must: the file is damaged (or is not a tree). Every read and walk
    /// returns this instead of following such a page further.
    Corrupt(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Pager(e) => write!(f, "{e}"),
            Error::KeyTooLarge(n) => write!(f, "a key of {n} bytes (at most {MAX_KEY})"),
            Error::ValueTooLarge(n) => write!(f, "a value of {n} bytes (at most {MAX_VALUE})"),
            Error::Corrupt(what) => write!(f, "damaged tree: {what}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Pager(e) => Some(e),
            _ => None,
        }
    }
}

impl From<MappedPageError> for Error {
    fn from(e: MappedPageError) -> Self {
        Error::Pager(e)
    }
}

/// The result of the store's calls.
pub type Result<T> = std::result::Result<T, Error>;
