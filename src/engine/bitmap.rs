//! In-memory bit sets: a plain one, and one with a summary hierarchy that
//! finds a zero bit in a few word operations however large or fragmented the
//! set is (contract S3). No I/O here.

const WORD_BITS: u64 = 64;

fn words_for(bits: u64) -> usize {
    bits.div_ceil(WORD_BITS) as usize
}

/// An empty vector with room for `words` words; `None` if the memory is not
/// there.
fn level_with_room(words: usize) -> Option<Vec<u64>> {
    let mut level = Vec::new();
    level.try_reserve_exact(words).ok()?;
    Some(level)
}

/// A growable set of bits, all zero when created.
#[derive(Clone, Debug, Default)]
pub(crate) struct BitVec {
    words: Vec<u64>,
    len: u64,
}

impl BitVec {
    pub(super) fn new(len: u64) -> BitVec {
        BitVec {
            words: vec![0; words_for(len)],
            len,
        }
    }

    /// As [`BitVec::new`], or `None` when the memory cannot be had: for sets
    /// sized from a count read from a file, which must not abort the process.
    pub(super) fn try_new(len: u64) -> Option<BitVec> {
        let count = usize::try_from(len.div_ceil(WORD_BITS)).ok()?;
        let mut words = Vec::new();
        words.try_reserve_exact(count).ok()?;
        words.resize(count, 0);
        Some(BitVec { words, len })
    }

    pub(super) fn len(&self) -> u64 {
        self.len
    }

    /// Extends the set to `len` bits; the new bits are zero.
    pub(super) fn grow(&mut self, len: u64) {
        if len > self.len {
            self.words.resize(words_for(len), 0);
            self.len = len;
        }
    }

    /// Cuts the set to its first `len` bits (when shorter than it is).
    pub(super) fn truncate(&mut self, len: u64) {
        if len < self.len {
            self.words.truncate(words_for(len));
            if !len.is_multiple_of(WORD_BITS) {
                if let Some(last) = self.words.last_mut() {
                    *last &= (1u64 << (len % WORD_BITS)) - 1;
                }
            }
            self.len = len;
        }
    }

    #[inline]
    pub(super) fn get(&self, bit: u64) -> bool {
        self.words
            .get((bit / WORD_BITS) as usize)
            .is_some_and(|w| w & (1 << (bit % WORD_BITS)) != 0)
    }

    pub(super) fn set(&mut self, bit: u64, value: bool) {
        if let Some(word) = self.words.get_mut((bit / WORD_BITS) as usize) {
            let mask = 1 << (bit % WORD_BITS);
            if value {
                *word |= mask;
            } else {
                *word &= !mask;
            }
        }
    }

    pub(super) fn words(&self) -> &[u64] {
        &self.words
    }

    pub(super) fn words_mut(&mut self) -> &mut [u64] {
        &mut self.words
    }

    /// Calls `f` with each word index and the mask of bits in `start..end`.
    fn for_each_word(start: u64, end: u64, mut f: impl FnMut(usize, u64)) {
        let mut bit = start;
        while bit < end {
            let offset = bit % WORD_BITS;
            let span = (WORD_BITS - offset).min(end - bit);
            let mask = if span == WORD_BITS {
                !0
            } else {
                ((1u64 << span) - 1) << offset
            };
            f((bit / WORD_BITS) as usize, mask);
            bit += span;
        }
    }

    /// Whether every bit in `start..end` equals `value` (false past the end).
    pub(super) fn range_is(&self, start: u64, end: u64, value: bool) -> bool {
        if end > self.len || start > end {
            return false;
        }
        let mut all = true;
        Self::for_each_word(start, end, |index, mask| {
            let word = self.words.get(index).copied().unwrap_or_default();
            let expect = if value { mask } else { 0 };
            all &= word & mask == expect;
        });
        all
    }

    /// Sets every bit in `start..end` (clamped to the length) to `value`.
    pub(super) fn set_range(&mut self, start: u64, end: u64, value: bool) {
        let end = end.min(self.len);
        let words = &mut self.words;
        Self::for_each_word(start, end, |index, mask| {
            if let Some(word) = words.get_mut(index) {
                if value {
                    *word |= mask;
                } else {
                    *word &= !mask;
                }
            }
        });
    }

    /// The lowest set bit at or after `from`.
    pub(crate) fn next_one(&self, from: u64) -> Option<u64> {
        if from >= self.len {
            return None;
        }
        let mut index = (from / WORD_BITS) as usize;
        let mut word = self.words.get(index)? & (!0u64 << (from % WORD_BITS));
        loop {
            if word != 0 {
                let bit = index as u64 * WORD_BITS + u64::from(word.trailing_zeros());
                return (bit < self.len).then_some(bit);
            }
            index += 1;
            word = *self.words.get(index)?;
        }
    }

    /// The highest set bit below `before`, if any.
    pub(super) fn prev_one(&self, before: u64) -> Option<u64> {
        let end = before.min(self.len);
        if end == 0 {
            return None;
        }
        let last = end - 1;
        let mut index = (last / WORD_BITS) as usize;
        let keep = last % WORD_BITS;
        let mut word = self.words.get(index)? & (!0u64 >> (WORD_BITS - 1 - keep));
        loop {
            if word != 0 {
                return Some(index as u64 * WORD_BITS + u64::from(63 - word.leading_zeros()));
            }
            index = index.checked_sub(1)?;
            word = *self.words.get(index)?;
        }
    }
}

/// A bit set that answers "lowest zero bit" in `O(log64 n)` word operations.
///
/// Level 0 is the set itself; bit `j` of level `k + 1` is one when word `j`
/// of level `k` is full. Bits past the end read as one, so they are never
/// found free.
#[derive(Clone, Debug)]
pub(crate) struct SummaryBitVec {
    levels: Vec<Vec<u64>>,
    len: u64,
    zeros: u64,
}

impl SummaryBitVec {
    /// A set of `len` zero bits.
    pub(super) fn new(len: u64) -> SummaryBitVec {
        let mut set = SummaryBitVec {
            levels: vec![Vec::new()],
            len: 0,
            zeros: 0,
        };
        set.grow(len);
        set
    }

    /// A set whose first `len` bits are the bits of `words`; `None` if the
    /// memory of its summary levels is not there (open reports it, rather
    /// than the process aborting on a file that claims a huge length).
    pub(super) fn from_words(mut words: Vec<u64>, len: u64) -> Option<SummaryBitVec> {
        let need = words_for(len);
        words
            .try_reserve_exact(need.saturating_sub(words.len()))
            .ok()?;
        words.resize(need, 0);
        let mut set = SummaryBitVec {
            levels: vec![words],
            len,
            zeros: 0,
        };
        set.try_rebuild()?;
        Some(set)
    }

    pub(super) fn len(&self) -> u64 {
        self.len
    }

    /// How many bits are zero.
    pub(super) fn zeros(&self) -> u64 {
        self.zeros
    }

    /// Extends the set to `len` bits; the new bits are zero.
    pub(super) fn grow(&mut self, len: u64) {
        if len <= self.len && !self.levels[0].is_empty() {
            return;
        }
        let old_len = self.len;
        let base = &mut self.levels[0];
        // Clear the padding of the old last word, which read as ones.
        if !old_len.is_multiple_of(WORD_BITS) {
            if let Some(last) = base.last_mut() {
                *last &= (1u64 << (old_len % WORD_BITS)) - 1;
            }
        }
        base.resize(words_for(len).max(1), 0);
        self.len = len;
        self.rebuild();
    }

    /// Cuts the set to its first `len` bits (when shorter than it is). One
    /// pass over the words: for the rare undo of a growth, not a hot path.
    pub(super) fn truncate(&mut self, len: u64) {
        if len >= self.len {
            return;
        }
        self.levels[0].truncate(words_for(len).max(1));
        self.len = len;
        self.rebuild();
    }

    /// [`SummaryBitVec::try_rebuild`] where running out of memory ends the
    /// process, as it does for any growth of a `Vec`.
    fn rebuild(&mut self) {
        if self.try_rebuild().is_none() {
            let words = self.levels[0].len().div_ceil(64);
            let layout =
                std::alloc::Layout::array::<u64>(words).unwrap_or(std::alloc::Layout::new::<u64>());
            std::alloc::handle_alloc_error(layout);
        }
    }

    /// Recomputes padding, the summary levels and the zero count from level 0.
    /// One pass over the words (this runs on open, over up to 2^32 bits).
    /// `None`, with the summary levels gone, if their memory is not there.
    fn try_rebuild(&mut self) -> Option<()> {
        let len = self.len;
        let base = &mut self.levels[0];
        if base.is_empty() {
            base.push(0);
        }
        let used_words = words_for(len);
        for word in base.iter_mut().skip(used_words) {
            *word = !0;
        }
        if !len.is_multiple_of(WORD_BITS) {
            if let Some(last) = base.get_mut(used_words - 1) {
                *last |= !0u64 << (len % WORD_BITS);
            }
        }
        let mut zeros = 0u64;
        self.levels.truncate(1);
        let base = &self.levels[0];
        let mut level = level_with_room(base.len().div_ceil(64))?;
        for chunk in base.chunks(64) {
            let mut full = !0u64;
            for (i, &word) in chunk.iter().enumerate() {
                zeros += u64::from(word.count_zeros());
                if word != !0 {
                    full &= !(1u64 << i);
                }
            }
            level.push(full);
        }
        let more_than_one_word = base.len() > 1;
        self.zeros = zeros;
        if more_than_one_word {
            self.levels.push(level);
        }
        while self.levels.last().is_some_and(|l| l.len() > 1) {
            let below = self.levels.last().map(Vec::as_slice).unwrap_or_default();
            let mut level = level_with_room(below.len().div_ceil(64))?;
            level.resize(below.len().div_ceil(64), !0u64);
            for (i, word) in below.iter().enumerate() {
                if *word != !0 {
                    level[i / 64] &= !(1u64 << (i % 64));
                }
            }
            self.levels.push(level);
        }
        Some(())
    }

    pub(super) fn get(&self, bit: u64) -> bool {
        bit < self.len
            && self.levels[0]
                .get((bit / WORD_BITS) as usize)
                .is_some_and(|w| w & (1 << (bit % WORD_BITS)) != 0)
    }

    /// Sets `bit` to one. Returns false (and changes nothing) if it was one.
    pub(super) fn set(&mut self, bit: u64) -> bool {
        if bit >= self.len || self.get(bit) {
            return false;
        }
        let mut index = bit as usize;
        for level in &mut self.levels {
            let word = &mut level[index / 64];
            *word |= 1 << (index % 64);
            if *word != !0 {
                break;
            }
            index /= 64;
        }
        self.zeros -= 1;
        true
    }

    /// Sets `bit` to zero. Returns false (and changes nothing) if it was zero.
    pub(super) fn clear(&mut self, bit: u64) -> bool {
        if !self.get(bit) {
            return false;
        }
        let mut index = bit as usize;
        for level in &mut self.levels {
            let word = &mut level[index / 64];
            let was_full = *word == !0;
            *word &= !(1 << (index % 64));
            if !was_full {
                break;
            }
            index /= 64;
        }
        self.zeros += 1;
        true
    }

    /// The highest one bit, if any. Scans words from the end, so its cost
    /// grows with the run of zeros at the end of the set.
    pub(super) fn last_one(&self) -> Option<u64> {
        let words = self.levels.first()?;
        let used = words_for(self.len);
        for index in (0..used).rev() {
            let mut word = words[index];
            if index + 1 == used && !self.len.is_multiple_of(WORD_BITS) {
                // The padding past the end reads as ones.
                word &= (1u64 << (self.len % WORD_BITS)) - 1;
            }
            if word != 0 {
                return Some(index as u64 * WORD_BITS + u64::from(63 - word.leading_zeros()));
            }
        }
        None
    }

    /// The lowest zero bit, if any.
    pub(super) fn first_zero(&self) -> Option<u64> {
        let mut index = 0usize;
        for level in self.levels.iter().rev() {
            let word = *level.get(index)?;
            if word == !0 {
                return None;
            }
            index = index * 64 + word.trailing_ones() as usize;
        }
        Some(index as u64).filter(|&bit| bit < self.len)
    }

    /// The lowest start of a run of `len` zero bits (1 to 64), looking at
    /// no more than `max_words` words from the lowest zero bit: the search
    /// of a placement that must stay cheap in a fragmented set.
    pub(super) fn first_zero_run(&self, len: u64, max_words: usize) -> Option<u64> {
        debug_assert!((1..=WORD_BITS).contains(&len));
        let first = self.first_zero()?;
        let words = &self.levels[0];
        let start_index = (first / WORD_BITS) as usize;
        let end_index = words.len().min(start_index.saturating_add(max_words));
        // Zero bits at the top of the words before, which a run may extend.
        let mut carry = 0u64;
        for (index, &word) in words.iter().enumerate().take(end_index).skip(start_index) {
            let free = !word;
            let base = index as u64 * WORD_BITS;
            if carry > 0 {
                let low = u64::from(free.trailing_ones());
                if carry + low >= len {
                    return Some(base - carry);
                }
            }
            // Bit i of `runs` stays set when bits i to i + len - 1 are free.
            let (mut runs, mut covered) = (free, 1u64);
            while covered < len {
                let shift = covered.min(len - covered);
                runs &= runs >> shift;
                covered += shift;
            }
            if runs != 0 {
                return Some(base + u64::from(runs.trailing_zeros()));
            }
            carry = if free == !0 {
                carry + WORD_BITS
            } else {
                u64::from(free.leading_ones())
            };
        }
        None
    }

    /// Sets the `count` lowest zero bits to one and returns them in ascending
    /// order, or `None` (changing nothing) if fewer than `count` are zero.
    /// Works a word at a time.
    pub(super) fn take_lowest_zeros(&mut self, count: u64) -> Option<Vec<u64>> {
        if count > self.zeros {
            return None;
        }
        let mut taken = Vec::with_capacity(usize::try_from(count).ok()?);
        while (taken.len() as u64) < count {
            let first = self.first_zero()?;
            let index = (first / WORD_BITS) as usize;
            let word = self.levels[0][index];
            let mut free = !word;
            let mut take = 0u64;
            while free != 0 && (taken.len() as u64) < count {
                let low = free & free.wrapping_neg();
                take |= low;
                free ^= low;
                taken.push(index as u64 * WORD_BITS + u64::from(low.trailing_zeros()));
            }
            self.levels[0][index] = word | take;
            self.zeros -= u64::from(take.count_ones());
            if word | take == !0 {
                self.propagate_full(index);
            }
        }
        Some(taken)
    }

    /// Records in the summary that word `index` of level 0 became full.
    fn propagate_full(&mut self, mut index: usize) {
        for level in self.levels.iter_mut().skip(1) {
            let word = &mut level[index / 64];
            *word |= 1 << (index % 64);
            if *word != !0 {
                break;
            }
            index /= 64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lowest run of `len` zero bits, found bit by bit.
    fn first_run_by_bits(set: &SummaryBitVec, len: u64) -> Option<u64> {
        (0..set.len()).find(|&start| {
            start + len <= set.len() && (start..start + len).all(|bit| !set.get(bit))
        })
    }

    #[test]
    fn zero_runs_are_found_within_and_across_words() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for round in 0..200u64 {
            let len = 1 + round % 300;
            let mut set = SummaryBitVec::new(len);
            let density = round % 7;
            for bit in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                if state % 8 < density {
                    set.set(bit);
                }
            }
            for run in [1, 2, 3, 5, 8, 17, 31, 63, 64] {
                assert_eq!(
                    set.first_zero_run(run, usize::MAX),
                    first_run_by_bits(&set, run),
                    "run of {run} in a set of {len} (density {density}/8)"
                );
            }
        }
    }

    #[test]
    fn highest_bits_are_found_from_the_end() {
        let mut bits = BitVec::new(200);
        assert_eq!(bits.prev_one(200), None);
        for b in [0u64, 63, 64, 130] {
            bits.set(b, true);
        }
        assert_eq!(bits.prev_one(200), Some(130));
        assert_eq!(bits.prev_one(130), Some(64));
        assert_eq!(bits.prev_one(64), Some(63));
        assert_eq!(bits.prev_one(1), Some(0));
        assert_eq!(bits.prev_one(0), None);
        let mut set = SummaryBitVec::new(130);
        assert_eq!(set.last_one(), None, "padding is not a bit");
        set.set(3);
        set.set(70);
        assert_eq!(set.last_one(), Some(70));
        set.clear(70);
        assert_eq!(set.last_one(), Some(3));
    }
    use proptest::prelude::*;

    #[test]
    fn padding_is_never_free_and_growth_frees_it() {
        let mut set = SummaryBitVec::new(3);
        assert_eq!(set.zeros(), 3);
        assert_eq!(set.take_lowest_zeros(3), Some(vec![0, 1, 2]));
        assert_eq!(set.first_zero(), None);
        assert_eq!(set.take_lowest_zeros(1), None);
        set.grow(200);
        assert_eq!(set.first_zero(), Some(3));
        assert_eq!(set.zeros(), 197);
    }

    #[test]
    fn truncate_forgets_the_tail_and_growth_brings_it_back_free() {
        let mut set = SummaryBitVec::new(300);
        assert!(set.set(5) && set.set(250));
        set.truncate(100);
        assert_eq!((set.len(), set.zeros()), (100, 99));
        assert!(!set.get(250));
        assert_eq!(set.take_lowest_zeros(99).map(|v| v.len()), Some(99));
        assert_eq!(set.first_zero(), None);
        set.grow(300);
        assert_eq!((set.zeros(), set.first_zero()), (200, Some(100)));

        let mut bits = BitVec::new(130);
        bits.set_range(0, 130, true);
        bits.truncate(70);
        assert_eq!(
            (bits.len(), bits.next_one(69), bits.next_one(70)),
            (70, Some(69), None)
        );
        bits.grow(130);
        assert_eq!(bits.next_one(70), None);
    }

    #[test]
    fn deep_hierarchy_finds_the_one_hole() {
        let len = 64 * 64 * 64 * 3 + 17;
        let mut words = vec![!0u64; words_for(len)];
        let hole = len - 5;
        words[(hole / 64) as usize] &= !(1 << (hole % 64));
        let set = SummaryBitVec::from_words(words, len).unwrap();
        assert_eq!(set.first_zero(), Some(hole));
        assert_eq!(set.zeros(), 1);
    }

    proptest! {
        #[test]
        fn behaves_like_a_vec_of_bools(
            len in 1u64..5000,
            ops in prop::collection::vec((0u8..4, 0u64..5000), 1..200),
        ) {
            let mut set = SummaryBitVec::new(len);
            let mut model = vec![false; len as usize];
            for (op, arg) in ops {
                let bit = arg % len;
                match op {
                    0 => prop_assert_eq!(set.set(bit), !std::mem::replace(&mut model[bit as usize], true)),
                    1 => prop_assert_eq!(set.clear(bit), std::mem::replace(&mut model[bit as usize], false)),
                    2 => {
                        let n = arg % 70;
                        let expect: Vec<u64> = (0..len).filter(|&b| !model[b as usize]).take(n as usize).collect();
                        let got = set.take_lowest_zeros(n);
                        if (expect.len() as u64) < n {
                            prop_assert_eq!(got, None);
                        } else {
                            for &b in &expect { model[b as usize] = true; }
                            prop_assert_eq!(got, Some(expect));
                        }
                    }
                    _ => prop_assert_eq!(set.first_zero(), model.iter().position(|b| !b).map(|p| p as u64)),
                }
                prop_assert_eq!(set.zeros(), model.iter().filter(|b| !**b).count() as u64);
            }
        }

        #[test]
        fn bitvec_ranges_match_scan(
            bits in prop::collection::vec(any::<bool>(), 1..300),
            a in 0u64..310, b in 0u64..310, value: bool,
        ) {
            let mut v = BitVec::new(bits.len() as u64);
            for (i, x) in bits.iter().enumerate() { v.set(i as u64, *x); }
            let (start, end) = (a.min(b), a.max(b));
            let expect = end <= bits.len() as u64
                && (start..end).all(|i| bits[i as usize] == value);
            prop_assert_eq!(v.range_is(start, end, value), expect);
            v.set_range(start, end, value);
            for i in 0..bits.len() as u64 {
                let want = if (start..end).contains(&i) { value } else { bits[i as usize] };
                prop_assert_eq!(v.get(i), want);
            }
        }

        #[test]
        fn bitvec_next_one_matches_scan(bits in prop::collection::vec(any::<bool>(), 0..300), from in 0u64..320) {
            let mut v = BitVec::new(bits.len() as u64);
            for (i, b) in bits.iter().enumerate() { v.set(i as u64, *b); }
            let expect = (from..bits.len() as u64).find(|&i| bits[i as usize]);
            prop_assert_eq!(v.next_one(from), expect);
        }
    }
}
