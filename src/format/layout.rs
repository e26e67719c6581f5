//! Where every field of the on-disk format lies: the byte offsets, magic
//! numbers and record kinds that the tables of `FORMAT.md` give, and nothing
//! else. The encoders and decoders beside this file take their numbers from
//! here; the crate's tests that damage files byte by byte compile this file
//! into themselves, so they aim at the bytes the crate reads.

/// The reserved pages at the start of every file.
pub(crate) mod pages {
    /// Page number of the superblock.
    pub(crate) const SUPERBLOCK_PAGE: u64 = 0;
    /// Page numbers of the two metadata roots (copy A and copy B).
    pub(crate) const ROOT_PAGES: [u64; 2] = [1, 2];
    /// The first page that can hold data; pages below it are reserved.
    pub(crate) const FIRST_DATA_PAGE: u64 = 3;
}

/// Page 0, the superblock (`FORMAT.md`, "Superblock").
pub(crate) mod superblock {
    pub(crate) const MAGIC: [u8; 8] = *b"MAPPEDPG";
    pub(crate) const OFF_MAGIC: usize = 0;
    pub(crate) const OFF_VERSION: usize = 8;
    pub(crate) const OFF_PAGE_SIZE: usize = 16;
    pub(crate) const OFF_CHECKSUM: usize = 60;
    /// Bytes of page 0 that carry meaning; the rest of the page is zero.
    pub(crate) const SUPERBLOCK_LEN: usize = 64;
}

/// A metadata root, pages 1 and 2 (`FORMAT.md`, "Metadata root").
pub(crate) mod root {
    pub(crate) const MAGIC: [u8; 8] = *b"MPGROOT\0";
    pub(crate) const OFF_MAGIC: usize = 0;
    pub(crate) const OFF_VERSION: usize = 8;
    pub(crate) const OFF_LOG_LEN: usize = 12;
    pub(crate) const OFF_PAGE_SIZE: usize = 16;
    pub(crate) const OFF_GENERATION: usize = 24;
    pub(crate) const OFF_TOTAL_PAGES: usize = 32;
    pub(crate) const OFF_REGULAR_COUNT: usize = 40;
    pub(crate) const OFF_BITMAP_TOP: usize = 48;
    pub(crate) const OFF_BITMAP_CRC: usize = 56;
    pub(crate) const OFF_BITMAP_HEIGHT: usize = 60;
    pub(crate) const OFF_DIR_LEN: usize = 64;
    pub(crate) const OFF_DIR_TOP: usize = 72;
    pub(crate) const OFF_DIR_CRC: usize = 80;
    pub(crate) const OFF_DIR_HEIGHT: usize = 84;
    pub(crate) const OFF_FLAGS: usize = 88;
    pub(crate) const OFF_CHECK_LEN: usize = 92;
    /// Format 3: the first check page, its CRC and how many checks the chain holds.
    pub(crate) const OFF_CHECK_PAGE: usize = 96;
    pub(crate) const OFF_CHECK_PAGE_CRC: usize = 104;
    pub(crate) const OFF_CHECK_PAGES_LEN: usize = 112;
    pub(crate) const OFF_LOG: usize = 128;
    /// Size of the checksum at the very end of the page.
    pub(crate) const CHECKSUM_LEN: usize = 4;
}

/// A log record, a page check and a directory entry (`FORMAT.md`, "Log records").
pub(crate) mod record {
    /// Size of one encoded log record or page check.
    pub(crate) const RECORD_LEN: usize = 24;
    /// Size of one encoded directory entry.
    pub(crate) const DIR_ENTRY_LEN: usize = 16;
    pub(crate) const KIND_SHIFT: u32 = 56;
    pub(crate) const KIND_ALLOC: u64 = 1;
    pub(crate) const KIND_FREE: u64 = 2;
    pub(crate) const KIND_ENTRY: u64 = 3;
    pub(crate) const KIND_CHECK: u64 = 4;
    pub(crate) const STATE_SHIFT: u32 = 62;
    pub(crate) const PAGE_MASK: u64 = (1 << STATE_SHIFT) - 1;
    /// Bit 63 of a directory entry's first word marks a sub-page parent (a
    /// protected copy's page number is below 2^56); bits 56..63 hold how
    /// many ways the parent is cut, as a shift.
    pub(crate) const PARENT_MARK: u64 = 1 << 63;
    pub(crate) const PARENT_SHIFT_AT: u32 = 56;
}

/// A check page (`FORMAT.md`, "Check pages").
pub(crate) mod check_page {
    pub(crate) const MAGIC: [u8; 8] = *b"MPCHECK\0";
    pub(crate) const OFF_NEXT: usize = 8;
    pub(crate) const OFF_NEXT_CRC: usize = 16;
    pub(crate) const OFF_COUNT: usize = 20;
    pub(crate) const OFF_CHECKS: usize = 24;
}

/// A child reference in a page tree (`FORMAT.md`, "Page trees").
pub(crate) mod tree_node {
    /// Size of one encoded child reference.
    pub(crate) const NODE_REF_LEN: usize = 16;
    pub(crate) const OFF_REF_PAGE: usize = 0;
    pub(crate) const OFF_REF_CRC: usize = 8;
}
