//! Pages of a file read on demand, without a map and without `unsafe`.
//!
//! The loader borrows every page it verifies until it is done, so the pages
//! must stay at stable addresses while more are read. An append-only arena
//! gives that safely: chunk `k` holds `2^k` cells, each filled once, so a cell
//! never moves and memory grows with the pages read, not with the file.

use std::cell::{Cell, OnceCell, RefCell};
use std::fs::File;
use std::io;

use crate::io::read_exact_at;

/// Chunks `0..CHUNKS` hold `2^CHUNKS - 1` pages, more than any file has.
const CHUNKS: usize = 48;

type Chunk = Box<[OnceCell<Box<[u8]>>]>;

/// Reads pages of one file on demand and keeps them until it is dropped.
pub(super) struct PageReader<'f> {
    file: &'f File,
    file_len: u64,
    page_size: usize,
    chunks: [OnceCell<Chunk>; CHUNKS],
    read: Cell<u64>,
    error: RefCell<Option<io::Error>>,
    on_read: RefCell<&'f mut dyn FnMut(u64)>,
}

impl<'f> PageReader<'f> {
    /// A reader of `file` (`file_len` bytes long) that calls `on_read` with
    /// the number of pages read so far after each read.
    pub fn new(
        file: &'f File,
        file_len: u64,
        page_size: usize,
        on_read: &'f mut dyn FnMut(u64),
    ) -> Self {
        PageReader {
            file,
            file_len,
            page_size,
            chunks: std::array::from_fn(|_| OnceCell::new()),
            read: Cell::new(0),
            error: RefCell::new(None),
            on_read: RefCell::new(on_read),
        }
    }

    /// Page `n`, or `None` if it lies past the end of the file or cannot be
    /// read (the I/O error is kept for [`PageReader::take_error`]).
    pub fn page(&self, n: u64) -> Option<&[u8]> {
        let ps = self.page_size as u64;
        let start = n.checked_mul(ps)?;
        if start.checked_add(ps)? > self.file_len {
            return None;
        }
        let mut buf = vec![0u8; self.page_size].into_boxed_slice();
        if let Err(err) = read_exact_at(self.file, &mut buf, start) {
            self.error.borrow_mut().get_or_insert(err);
            return None;
        }
        let index = self.read.get();
        self.read.set(index + 1);
        if let Ok(mut on_read) = self.on_read.try_borrow_mut() {
            on_read(index + 1);
        }
        // Cell `index` lives in chunk `floor(log2(index + 1))`.
        let position = usize::try_from(index).ok()?.checked_add(1)?;
        let chunk_index = (usize::BITS - 1 - position.leading_zeros()) as usize;
        let chunk = self.chunks.get(chunk_index)?.get_or_init(|| {
            (0..1usize << chunk_index)
                .map(|_| OnceCell::new())
                .collect()
        });
        let cell = chunk.get(position - (1usize << chunk_index))?;
        Some(cell.get_or_init(|| buf))
    }

    /// How many pages were read.
    pub fn pages_read(&self) -> u64 {
        self.read.get()
    }

    /// The first I/O error a read met, if any.
    pub fn take_error(&self) -> Option<io::Error> {
        self.error.borrow_mut().take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn pages_stay_put_while_more_are_read() {
        let mut file = tempfile::tempfile().unwrap();
        for n in 0..100u8 {
            file.write_all(&[n; 64]).unwrap();
        }
        let mut seen = 0;
        let mut count = |n| seen = n;
        let reader = PageReader::new(&file, 6400, 64, &mut count);
        let pages: Vec<&[u8]> = (0..100).map(|n| reader.page(n).unwrap()).collect();
        for (n, page) in pages.iter().enumerate() {
            assert_eq!(page, &[n as u8; 64]);
        }
        assert!(reader.page(100).is_none());
        assert!(reader.page(u64::MAX).is_none());
        assert_eq!(reader.pages_read(), 100);
        assert!(reader.take_error().is_none());
        drop(reader);
        assert_eq!(seen, 100);
    }
}
