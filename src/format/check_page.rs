//! Check pages: the page checks of a commit that do not fit in its root.
//! See `FORMAT.md`, "Check pages".
//!
//! A root lists, for every page its commit wrote without a prior sync, the
//! page and its CRC-32C (a [`PageCheck`]); open rejects the root if one does
//! not match. A transaction may write more pages than the root has room for,
//! so the checks then go to a chain of check pages, each referenced with
//! its own CRC by the root or by the page before it.
//!
//! A check page:
//!
//! | offset | size | field                                          |
//! |-------:|-----:|------------------------------------------------|
//! | 0      | 8    | magic `MPCHECK\0`                              |
//! | 8      | 8    | next check page (0: this is the last)          |
//! | 16     | 4    | CRC-32C of the next check page's whole bytes   |
//! | 20     | 4    | number of checks in this page                  |
//! | 24     | 24·n | the checks, encoded as in the root's log area  |
//!
//! The rest of the page is zero.

pub(crate) use super::layout::check_page::{MAGIC, OFF_CHECKS, OFF_COUNT, OFF_NEXT, OFF_NEXT_CRC};
use super::record::{PageCheck, RECORD_LEN};
use super::tree_node::NodeRef;
use super::{read_u32, read_u64, write_u32, write_u64};

/// How many checks one check page holds.
pub(crate) const fn checks_per_page(page_size: usize) -> usize {
    (page_size - OFF_CHECKS) / RECORD_LEN
}

/// How many check pages `checks` checks take.
pub(crate) fn pages_for(page_size: usize, checks: usize) -> u64 {
    checks.div_ceil(checks_per_page(page_size)) as u64
}

/// Encodes `checks` (at most [`checks_per_page`]) into `page`, followed by
/// the reference to the next check page.
pub(crate) fn encode(page: &mut [u8], checks: &[PageCheck], next: NodeRef) {
    page.fill(0);
    page[..8].copy_from_slice(&MAGIC);
    write_u64(page, OFF_NEXT, next.page);
    write_u32(page, OFF_NEXT_CRC, next.crc);
    write_u32(page, OFF_COUNT, checks.len() as u32);
    let slots = page[OFF_CHECKS..].chunks_exact_mut(RECORD_LEN);
    for (check, slot) in checks.iter().zip(slots) {
        check.encode(slot);
    }
}

/// Decodes a check page whose CRC the referrer vouched for: its checks and
/// the reference to the next page.
pub(crate) fn decode(page: &[u8]) -> Result<(Vec<PageCheck>, NodeRef), &'static str> {
    if page.get(..8) != Some(&MAGIC[..]) {
        return Err("a check page has no magic");
    }
    let next = NodeRef {
        page: read_u64(page, OFF_NEXT).ok_or("short check page")?,
        crc: read_u32(page, OFF_NEXT_CRC).ok_or("short check page")?,
    };
    let count = read_u32(page, OFF_COUNT).ok_or("short check page")? as usize;
    if count == 0 || count > checks_per_page(page.len()) {
        return Err("a check page claims more checks than it holds");
    }
    let checks = page[OFF_CHECKS..]
        .chunks_exact(RECORD_LEN)
        .take(count)
        .map(|slot| PageCheck::decode(slot).ok_or("malformed check in a check page"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((checks, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_format_md_and_round_trips() {
        assert_eq!(
            (OFF_NEXT, OFF_NEXT_CRC, OFF_COUNT, OFF_CHECKS),
            (8, 16, 20, 24)
        );
        assert_eq!((checks_per_page(1024), checks_per_page(4096)), (41, 169));
        assert_eq!(
            (
                pages_for(4096, 0),
                pages_for(4096, 169),
                pages_for(4096, 170)
            ),
            (0, 1, 2)
        );
        let checks: Vec<PageCheck> = (0..41)
            .map(|i| PageCheck {
                page: 100 + i,
                crc: i as u32 * 7,
            })
            .collect();
        let next = NodeRef { page: 9, crc: 11 };
        let mut page = vec![0xFFu8; 1024];
        encode(&mut page, &checks, next);
        assert_eq!(decode(&page), Ok((checks.clone(), next)));
        let mut bad = page.clone();
        write_u32(&mut bad, OFF_COUNT, 42);
        assert!(decode(&bad).is_err());
        write_u32(&mut bad, OFF_COUNT, 0);
        assert!(decode(&bad).is_err());
        bad[0] = 0;
        assert!(decode(&bad).is_err());
        let mut bad = page;
        bad[OFF_CHECKS + 7] ^= 0xFF; // the kind byte of the first check
        assert!(decode(&bad).is_err());
    }
}
