//! Hash maps and sets keyed by page numbers, for the bookkeeping a
//! transaction does on every page it touches (which pages it allocated,
//! wrote and holds in memory). Page numbers are chosen by the pager, never
//! by an adversary, so a multiplicative hash is enough, and it costs a few
//! cycles where the standard library's `SipHash` costs tens of nanoseconds.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A hash map keyed by page number.
pub(crate) type PageMap<V> = HashMap<u64, V, BuildHasherDefault<PageHasher>>;
/// A hash set of page numbers.
pub(crate) type PageSet = HashSet<u64, BuildHasherDefault<PageHasher>>;

/// Hashes one `u64` by a 128-bit multiplication folded to 64 bits, which
/// spreads consecutive page numbers over both the low bits (the bucket) and
/// the high bits (the tag) of the hash.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PageHasher(u64);

impl Hasher for PageHasher {
    #[inline]
    fn write_u64(&mut self, value: u64) {
        let product = u128::from(self.0 ^ value) * 0x9E37_79B9_7F4A_7C15_u128;
        self.0 = (product as u64) ^ ((product >> 64) as u64);
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed here; any other input still hashes
        // every byte, eight at a time.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_pages_spread_over_buckets_and_tags() {
        let hash = |page: u64| {
            let mut hasher = PageHasher::default();
            hasher.write_u64(page);
            hasher.finish()
        };
        let low: PageSet = (0..4096).map(|page| hash(page) & 4095).collect();
        let high: PageSet = (0..4096).map(|page| hash(page) >> 57).collect();
        assert!(low.len() > 2048, "{} of 4096 buckets", low.len());
        assert_eq!(high.len(), 128, "every 7-bit tag is used");
    }

    #[test]
    fn maps_and_sets_behave_as_the_standard_ones() {
        let mut map: PageMap<u64> = PageMap::default();
        let mut set = PageSet::default();
        for page in (0..10_000u64).map(|i| i * 37 % 10_007) {
            map.insert(page, page * 2);
            set.insert(page);
        }
        assert_eq!(map.len(), 10_000);
        assert!((0..10_000u64).all(|i| map[&(i * 37 % 10_007)] == i * 37 % 10_007 * 2));
        assert!(set.contains(&0) && !set.contains(&10_007));
        assert!(map.keys().all(|page| set.contains(page)));
    }
}
