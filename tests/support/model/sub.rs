//! Sub-pages for code generic over the page size: the model names a
//! sub-page by its size in bytes and its raw id, and these calls pick the
//! `SubPage<SIZE>` type for that size at run time (a size the file's pages
//! cannot be cut into is the crate's `InvalidSubPageSize`).

use mappedpages::{MappedPageError, Pager, Snapshot, SubPage, Transaction};

/// A sub-page as the model names it: (size in bytes, raw id).
pub type SubKey = (usize, u64);

/// The sizes the model uses in a file of `page_size`-byte pages: the
/// smallest sub-page, an eighth and a half of a page.
pub fn sizes(page_size: usize) -> [usize; 3] {
    [page_size / 64, page_size / 8, page_size / 2]
}

/// Runs `$body` with `$size` bound to the const `S` equal to `$bytes`.
macro_rules! with_size {
    ($bytes:expr, |S| $body:expr) => {
        match $bytes {
            16 => {
                const S: usize = 16;
                $body
            }
            32 => {
                const S: usize = 32;
                $body
            }
            64 => {
                const S: usize = 64;
                $body
            }
            128 => {
                const S: usize = 128;
                $body
            }
            256 => {
                const S: usize = 256;
                $body
            }
            512 => {
                const S: usize = 512;
                $body
            }
            1024 => {
                const S: usize = 1024;
                $body
            }
            2048 => {
                const S: usize = 2048;
                $body
            }
            4096 => {
                const S: usize = 4096;
                $body
            }
            8192 => {
                const S: usize = 8192;
                $body
            }
            16384 => {
                const S: usize = 16384;
                $body
            }
            32768 => {
                const S: usize = 32768;
                $body
            }
            65536 => {
                const S: usize = 65536;
                $body
            }
            131072 => {
                const S: usize = 131072;
                $body
            }
            262144 => {
                const S: usize = 262144;
                $body
            }
            524288 => {
                const S: usize = 524288;
                $body
            }
            1048576 => {
                const S: usize = 1048576;
                $body
            }
            2097152 => {
                const S: usize = 2097152;
                $body
            }
            other => panic!("no sub-page size {other} in the model"),
        }
    };
}

pub fn alloc<const N: usize>(
    txn: &mut Transaction<'_, N>,
    size: usize,
    count: usize,
) -> Result<Vec<u64>, MappedPageError> {
    with_size!(size, |S| Ok(txn
        .alloc_sub_pages::<S>(count)?
        .into_iter()
        .map(|id| id.0)
        .collect()))
}

pub fn free<const N: usize>(
    txn: &mut Transaction<'_, N>,
    size: usize,
    raws: &[u64],
) -> Result<(), MappedPageError> {
    with_size!(size, |S| {
        let ids: Vec<SubPage<S>> = raws.iter().map(|&raw| SubPage(raw)).collect();
        txn.free_sub_pages(&ids)
    })
}

pub fn write<'a, const N: usize>(
    txn: &'a mut Transaction<'_, N>,
    (size, raw): SubKey,
) -> Result<&'a mut [u8], MappedPageError> {
    with_size!(size, |S| txn.sub_page_mut(SubPage::<S>(raw)))
}

pub fn read_in<'a, const N: usize>(
    txn: &'a Transaction<'_, N>,
    (size, raw): SubKey,
) -> Result<&'a [u8], MappedPageError> {
    with_size!(size, |S| txn.sub_page(SubPage::<S>(raw)))
}

pub fn read<const N: usize>(
    pager: &Pager<N>,
    (size, raw): SubKey,
) -> Result<&[u8], MappedPageError> {
    with_size!(size, |S| pager.sub_page(SubPage::<S>(raw)))
}

pub fn write_in_place<const N: usize>(
    pager: &mut Pager<N>,
    (size, raw): SubKey,
) -> Result<&mut [u8], MappedPageError> {
    with_size!(size, |S| pager.sub_page_mut(SubPage::<S>(raw)))
}

pub fn read_snapshot<const N: usize>(
    snapshot: &Snapshot<N>,
    (size, raw): SubKey,
) -> Result<&[u8], MappedPageError> {
    with_size!(size, |S| snapshot.sub_page(SubPage::<S>(raw)))
}

/// Every sub-page of the model's sizes allocated in `pager`, ascending.
pub fn list<const N: usize>(pager: &Pager<N>) -> Vec<SubKey> {
    list_of(N, |size| {
        with_size!(size, |S| pager
            .iter_sub_pages::<S>()
            .map(|id| id.0)
            .collect())
    })
}

/// [`list`] of a snapshot.
pub fn list_snapshot<const N: usize>(snapshot: &Snapshot<N>) -> Vec<SubKey> {
    list_of(N, |size| {
        with_size!(size, |S| snapshot
            .iter_sub_pages::<S>()
            .map(|id| id.0)
            .collect())
    })
}

/// The sub-pages of every size of the model, from `ids_of(size)`, ascending.
fn list_of(page_size: usize, ids_of: impl Fn(usize) -> Vec<u64>) -> Vec<SubKey> {
    let mut keys: Vec<SubKey> = sizes(page_size)
        .into_iter()
        .flat_map(|size| ids_of(size).into_iter().map(move |raw| (size, raw)))
        .collect();
    keys.sort_unstable();
    keys
}

/// The bytes the model writes into a new sub-page of `len` bytes.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    super::ops::fill(&mut bytes, seed);
    bytes
}
