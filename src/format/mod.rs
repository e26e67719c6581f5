//! The on-disk format: pure encoders and decoders, no I/O.
//!
//! The byte-level specification, with every field's offset and the commit
//! protocol, is `FORMAT.md` at the root of the repository. `layout` is the
//! single source of those offsets; a unit test in each module pins them to
//! the numbers `FORMAT.md` gives.
//!
//! Every decoder here takes bytes that may hold anything and returns a typed
//! error instead of panicking: slices are taken with `get`, counts are checked
//! against the space they claim before use.

pub(crate) mod check_page;
pub(crate) mod layout;
pub(crate) mod record;
pub(crate) mod root;
pub(crate) mod superblock;
pub(crate) mod tree_node;

/// The newest format version this build reads and writes. It reads every
/// version from 1 up. Version 2 differs from 1 only for pages larger than
/// 4096 bytes (a root fills the first 4096 bytes of its page), so files with
/// smaller pages are still written as version 1, which older builds read.
/// Version 3 adds check pages to a root whose commit wrote more pages than
/// the root can list; only such a root is written as version 3. Version 4
/// adds sub-page parents to the directory; only roots of a file that has
/// them (or had them since the last checkpoint) are written as version 4.
pub(crate) const FORMAT_VERSION: u32 = 4;

pub(crate) use layout::pages::{FIRST_DATA_PAGE, ROOT_PAGES, SUPERBLOCK_PAGE};

/// The largest page number the format can express in a log record (56 bits).
/// Far above the 2^32 pages the contract asks for.
pub(crate) const MAX_PAGES: u64 = 1 << 56;

/// CRC-32C (Castagnoli) of `bytes`, hardware accelerated where the CPU has it.
pub(crate) fn checksum(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes)
}

/// Reads a little-endian `u32` at `offset`, or `None` past the end.
pub(crate) fn read_u32(bytes: &[u8], offset: usize) -> Option<u32> {
    let raw = bytes.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_le_bytes(raw.try_into().ok()?))
}

/// Reads a little-endian `u64` at `offset`, or `None` past the end.
pub(crate) fn read_u64(bytes: &[u8], offset: usize) -> Option<u64> {
    let raw = bytes.get(offset..offset.checked_add(8)?)?;
    Some(u64::from_le_bytes(raw.try_into().ok()?))
}

/// Writes `value` little-endian at `offset`. The callers write into buffers
/// they sized themselves from the same constants, so a miss is a bug here.
pub(crate) fn write_u32(bytes: &mut [u8], offset: usize, value: u32) {
    if let Some(dst) = bytes.get_mut(offset..offset + 4) {
        dst.copy_from_slice(&value.to_le_bytes());
    } else {
        debug_assert!(false, "write_u32 past the end of a buffer");
    }
}

/// Writes `value` little-endian at `offset` (see [`write_u32`]).
pub(crate) fn write_u64(bytes: &mut [u8], offset: usize, value: u64) {
    if let Some(dst) = bytes.get_mut(offset..offset + 8) {
        dst.copy_from_slice(&value.to_le_bytes());
    } else {
        debug_assert!(false, "write_u64 past the end of a buffer");
    }
}
