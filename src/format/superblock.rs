//! Page 0: the superblock. Written once by `create`, never rewritten, so no
//! commit can tear it. See `FORMAT.md`, "Superblock".

pub(crate) use super::layout::superblock::{
    MAGIC, OFF_CHECKSUM, OFF_MAGIC, OFF_PAGE_SIZE, OFF_VERSION, SUPERBLOCK_LEN,
};
use super::root::root_version;
use super::{checksum, read_u32, read_u64, write_u32, write_u64, FORMAT_VERSION};
use crate::error::{MappedPageError, Result};

/// Encodes the superblock for a file of `page_size`-byte pages into `page`.
pub(crate) fn encode(page: &mut [u8], page_size: u64) {
    page.fill(0);
    page[OFF_MAGIC..OFF_MAGIC + 8].copy_from_slice(&MAGIC);
    // The version of the roots this build writes for such pages: a file
    // whose roots older builds read says so.
    let version = usize::try_from(page_size).map_or(FORMAT_VERSION, root_version);
    write_u32(page, OFF_VERSION, version);
    write_u64(page, OFF_PAGE_SIZE, page_size);
    let crc = checksum(&page[..OFF_CHECKSUM]);
    write_u32(page, OFF_CHECKSUM, crc);
}

/// Checks the superblock in `bytes` (at least its first 64 bytes) and returns
/// the page size it records.
pub(crate) fn decode(bytes: &[u8]) -> Result<u64> {
    let head = bytes
        .get(..SUPERBLOCK_LEN)
        .ok_or(MappedPageError::CorruptSuperblock)?;
    if head.get(OFF_MAGIC..OFF_MAGIC + 8) != Some(&MAGIC[..]) {
        return Err(MappedPageError::CorruptSuperblock);
    }
    let stored_crc = read_u32(head, OFF_CHECKSUM).unwrap_or_default();
    let actual_crc = checksum(head.get(..OFF_CHECKSUM).unwrap_or_default());
    let version = read_u32(head, OFF_VERSION).unwrap_or_default();
    if stored_crc != actual_crc {
        return Err(MappedPageError::CorruptSuperblock);
    }
    if !(1..=FORMAT_VERSION).contains(&version) {
        return Err(MappedPageError::UnsupportedVersion {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    Ok(read_u64(head, OFF_PAGE_SIZE).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_match_format_md() {
        assert_eq!(
            (OFF_MAGIC, OFF_VERSION, OFF_PAGE_SIZE, OFF_CHECKSUM),
            (0, 8, 16, 60)
        );
    }

    #[test]
    fn round_trip_and_every_damaged_byte_is_caught() {
        let mut page = vec![0u8; 1024];
        encode(&mut page, 1024);
        assert_eq!(decode(&page).unwrap(), 1024);
        for i in 0..SUPERBLOCK_LEN {
            let mut bad = page.clone();
            bad[i] ^= 0x40;
            assert!(decode(&bad).is_err(), "flip at byte {i} went unnoticed");
        }
        assert!(decode(&page[..10]).is_err());
    }

    #[test]
    fn unknown_version_is_its_own_error() {
        let mut page = vec![0u8; 1024];
        encode(&mut page, 4096);
        write_u32(&mut page, OFF_VERSION, 99);
        let crc = checksum(&page[..OFF_CHECKSUM]);
        write_u32(&mut page, OFF_CHECKSUM, crc);
        assert!(matches!(
            decode(&page),
            Err(MappedPageError::UnsupportedVersion { found: 99, .. })
        ));
    }
}
