//! The dedupe index itself: an ordered list of disjoint ranges of stream IDs.
//!
//! A range `[start, end]` means every entry of the stream with an ID in it
//! has been processed. Between two ranges lies a *gap* holding entries of the
//! stream that are not processed yet; each range remembers how many entries
//! its gap (the one before it) held when last counted. Recording an entry
//! extends a neighbouring range, and two ranges merge as soon as their gap
//! holds no entry of the stream any more: because its entries were processed
//! (the count reaches zero) or because they left the stream unprocessed
//! (trimmed or deleted: the count is added to `lost`).
//!
//! Stream IDs only grow, so no entry can ever appear inside a gap or a range
//! later: a range may cover IDs that never existed, and that is exact. (The
//! exceptions, a stream deleted and recreated or XSETID moved back after
//! XDEL, reuse IDs; docs/reference.md says what happens then.)
//!
//! Everything here is pure: the stream is seen through [`StreamView`], so the
//! logic is unit-tested in memory and replicas replay [`Patch`]es without
//! looking at their stream at all.

use super::key_store::Keys;
use crate::definition::Definition;
use crate::id::StreamId;

/// What the index needs to know about its stream.
pub trait StreamView {
    /// How many entries have IDs strictly between `after` and `before`,
    /// counting no further than `cap`.
    fn count_between(&mut self, after: StreamId, before: StreamId, cap: u64) -> u64;
    /// The ID of the stream's first entry, `None` if it has none.
    fn first_id(&mut self) -> Option<StreamId>;
}

/// Every ID in `start..=end` is processed. `gap`: the number of unprocessed
/// entries between the previous range and this one (0 for the first range:
/// entries below it are not tracked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub start: StreamId,
    pub end: StreamId,
    pub gap: u64,
}

impl Range {
    /// Bytes of a range in the index's RDB payload and in XPROCESS.PATCH.
    pub const BYTES: usize = 5 * 8;

    /// The five numbers every format writes a range as, in this order: its
    /// RDB payload, XPROCESS.PATCH payloads and DEBUG DIGEST.
    pub fn words(&self) -> [u64; 5] {
        let (s, e) = (self.start, self.end);
        [s.ms, s.seq, e.ms, e.seq, self.gap]
    }

    fn single(id: StreamId, gap: u64) -> Range {
        Range {
            start: id,
            end: id,
            gap,
        }
    }
}

/// The bounds of the ranges a series of changes touched, as they were
/// before each change: a [`Patch`] replaces exactly the ranges inside them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Touched(Option<(StreamId, StreamId)>);

impl Touched {
    fn add(&mut self, lo: StreamId, hi: StreamId) {
        self.0 = Some(match self.0 {
            None => (lo, hi),
            Some((l, h)) => (l.min(lo), h.max(hi)),
        });
    }

    fn range(&mut self, r: &Range) {
        self.add(r.start, r.end);
    }

    pub fn bounds(&self) -> Option<(StreamId, StreamId)> {
        self.0
    }
}

/// A change of the index in replayable form: the ranges that now lie within
/// `lo..=hi` replace every range that lay within it, and the counters take
/// the given values. Deterministic: applying it needs no stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Patch {
    pub lo: StreamId,
    pub hi: StreamId,
    pub ranges: Vec<Range>,
    pub recorded: u64,
    pub lost: u64,
}

/// A dedupe index: the value of one dedupe key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Index {
    /// The stream the index belongs to.
    pub stream: Vec<u8>,
    ranges: Vec<Range>,
    /// IDs recorded since the index was created.
    pub recorded: u64,
    /// Entries that left the stream without being processed.
    pub lost: u64,
    /// The gap the next sweep checks (round robin; not persisted).
    cursor: usize,
    /// Business keys remembered for a window (`XPROCESS ... KEY`).
    pub keys: Keys,
    /// The group's definition, kept at its derived dedupe key.
    pub definition: Option<Box<Definition>>,
}

impl Index {
    pub fn new(stream: &[u8]) -> Index {
        Index {
            stream: stream.to_vec(),
            ranges: Vec::new(),
            recorded: 0,
            lost: 0,
            cursor: 0,
            keys: Keys::default(),
            definition: None,
        }
    }

    /// An index from stored parts, if they keep the invariants: every range
    /// has `start <= end`, ranges are sorted and disjoint, the first has no
    /// gap.
    pub fn from_parts(
        stream: Vec<u8>,
        ranges: Vec<Range>,
        recorded: u64,
        lost: u64,
    ) -> Result<Index, &'static str> {
        check_ranges(&ranges)?;
        if ranges.first().is_some_and(|r| r.gap != 0) {
            return Err("the first range has a gap");
        }
        Ok(Index {
            stream,
            ranges,
            recorded,
            lost,
            cursor: 0,
            keys: Keys::default(),
            definition: None,
        })
    }

    pub fn ranges(&self) -> &[Range] {
        &self.ranges
    }

    /// Gaps between ranges: entries still waiting (or stuck) between
    /// processed ones.
    pub fn holes(&self) -> usize {
        self.ranges.len().saturating_sub(1)
    }

    /// The number of ranges whose start is at most `id`.
    fn position(&self, id: StreamId) -> usize {
        self.ranges.partition_point(|r| r.start <= id)
    }

    pub fn contains(&self, id: StreamId) -> bool {
        let p = self.position(id);
        p > 0 && self.ranges[p - 1].end >= id
    }

    /// The end of the range just below `id`, if `id` is past it: recording
    /// `id` counts the stream's entries between the two.
    pub fn recorded_below(&self, id: StreamId) -> Option<StreamId> {
        let p = self.position(id);
        let end = self.ranges.get(p.checked_sub(1)?)?.end;
        (end < id).then_some(end)
    }

    /// Record `id`, an entry of the stream just processed. False if it was
    /// covered already.
    pub fn record(&mut self, id: StreamId, view: &mut impl StreamView, t: &mut Touched) -> bool {
        let p = self.position(id);
        if p > 0 && self.ranges[p - 1].end >= id {
            return false;
        }
        self.recorded += 1;
        t.add(id, id);
        let (left, right) = (p.checked_sub(1), (p < self.ranges.len()).then_some(p));
        if let Some(l) = left {
            t.range(&self.ranges[l]);
        }
        if let Some(r) = right {
            t.range(&self.ranges[r]);
        }
        match (left, right) {
            (None, None) => self.ranges.insert(p, Range::single(id, 0)),
            (Some(l), None) => match view.count_between(self.ranges[l].end, id, u64::MAX) {
                0 => self.ranges[l].end = id,
                before => self.ranges.push(Range::single(id, before)),
            },
            (None, Some(r)) => match view.count_between(id, self.ranges[r].start, u64::MAX) {
                0 => self.ranges[r].start = id,
                after => {
                    self.ranges[r].gap = after;
                    self.ranges.insert(r, Range::single(id, 0));
                }
            },
            (Some(l), Some(r)) => self.record_in_gap(id, l, r, view),
        }
        true
    }

    /// `id` falls in the gap between ranges `l` and `r = l + 1`: it splits
    /// the gap's entries into those before it (counted) and after it (the
    /// rest of the gap's count, checked when that reaches zero).
    fn record_in_gap(&mut self, id: StreamId, l: usize, r: usize, view: &mut impl StreamView) {
        let (left_end, right_start, gap) =
            (self.ranges[l].end, self.ranges[r].start, self.ranges[r].gap);
        let before = view.count_between(left_end, id, u64::MAX);
        let mut after = gap.saturating_sub(before + 1);
        if after == 0 && view.count_between(id, right_start, 1) > 0 {
            // Under-counted: the gap gained entries (reused IDs). Count again.
            after = view.count_between(id, right_start, u64::MAX);
        }
        match (before, after) {
            (0, 0) => {
                self.ranges[l].end = self.ranges[r].end;
                self.ranges.remove(r);
            }
            (0, _) => {
                self.ranges[l].end = id;
                self.ranges[r].gap = after;
            }
            (_, 0) => {
                self.ranges[r].start = id;
                self.ranges[r].gap = before;
            }
            _ => {
                self.ranges[r].gap = after;
                self.ranges.insert(r, Range::single(id, before));
            }
        }
    }

    /// Make `id` processable again. `in_stream`: whether the stream still
    /// holds that entry (it becomes one unprocessed entry of a gap). False if
    /// `id` was not covered.
    pub fn forget(&mut self, id: StreamId, in_stream: bool, t: &mut Touched) -> bool {
        let p = self.position(id);
        if p == 0 || self.ranges[p - 1].end < id {
            return false;
        }
        let i = p - 1;
        let waiting = u64::from(in_stream);
        let r = self.ranges[i];
        t.range(&r);
        if let Some(next) = self.ranges.get(i + 1) {
            t.range(next);
        }
        // Below the first range nothing is tracked, above the last neither.
        let first = i == 0;
        match (id == r.start, id == r.end) {
            (true, true) => {
                self.ranges.remove(i);
                if let Some(next) = self.ranges.get_mut(i) {
                    next.gap = if first { 0 } else { next.gap + r.gap + waiting };
                }
            }
            (true, false) => {
                let range = &mut self.ranges[i];
                range.start = id.next().unwrap_or(id);
                range.gap = if first { 0 } else { r.gap + waiting };
            }
            (false, true) => {
                self.ranges[i].end = id.prev().unwrap_or(id);
                if let Some(next) = self.ranges.get_mut(i + 1) {
                    next.gap += waiting;
                }
            }
            (false, false) => {
                self.ranges[i].end = id.prev().unwrap_or(id);
                let upper = Range {
                    start: id.next().unwrap_or(id),
                    end: r.end,
                    gap: waiting,
                };
                self.ranges.insert(i + 1, upper);
            }
        }
        true
    }

    /// Merge gaps whose entries all left the stream, counting them as lost:
    /// every gap below the stream's first entry (XTRIM, MAXLEN and MINID
    /// trim from the front), and one more gap per call, round robin, checked
    /// for entries at all (XDEL in the middle).
    pub fn sweep(&mut self, view: &mut impl StreamView, t: &mut Touched) {
        self.sweep_gaps(view, t);
        self.shrink_if_sparse();
    }

    fn sweep_gaps(&mut self, view: &mut impl StreamView, t: &mut Touched) {
        if self.ranges.len() < 2 {
            return;
        }
        let first = view.first_id();
        let k = match first {
            None => self.ranges.len(),
            Some(f) => self.position(f),
        };
        if k >= 2 {
            self.merge(0, k, t);
        }
        if self.ranges.len() < 2 {
            return;
        }
        let g = 1 + self.cursor % (self.ranges.len() - 1);
        self.cursor = self.cursor.wrapping_add(1);
        let (a, b) = (self.ranges[g - 1].end, self.ranges[g].start);
        if view.count_between(a, b, 1) == 0 {
            self.merge(g - 1, g + 1, t);
        }
    }

    /// Give memory back once most of the ranges are gone (holes filled).
    /// Halving only at a quarter keeps a growing and shrinking index from
    /// reallocating on every change.
    pub fn shrink_if_sparse(&mut self) {
        let (len, cap) = (self.ranges.len(), self.ranges.capacity());
        if cap > 8 && cap > 4 * len {
            self.ranges.shrink_to((2 * len).max(4));
        }
    }

    /// Merge ranges `from..to` into one whose gaps left the stream.
    fn merge(&mut self, from: usize, to: usize, t: &mut Touched) {
        let (first, last) = (self.ranges[from], self.ranges[to - 1]);
        t.add(first.start, last.end);
        self.lost += self.ranges[from + 1..to].iter().map(|r| r.gap).sum::<u64>();
        self.ranges[from].end = last.end;
        self.ranges.drain(from + 1..to);
    }

    /// The replayable form of the changes recorded in `t`.
    pub fn patch(&self, t: &Touched) -> Option<Patch> {
        let (lo, hi) = t.bounds()?;
        let from = self.ranges.partition_point(|r| r.end < lo);
        let to = self.ranges.partition_point(|r| r.start <= hi);
        Some(Patch {
            lo,
            hi,
            ranges: self.ranges[from..to.max(from)].to_vec(),
            recorded: self.recorded,
            lost: self.lost,
        })
    }

    /// Replay a patch (on a replica, or while loading the AOF). Refused, and
    /// nothing changed, if the result would break the invariants.
    pub fn apply(&mut self, patch: &Patch) -> Result<(), &'static str> {
        if patch.lo > patch.hi {
            return Err("the patch bounds are reversed");
        }
        if patch
            .ranges
            .iter()
            .any(|r| r.start < patch.lo || r.end > patch.hi)
        {
            return Err("a range lies outside the patch bounds");
        }
        let from = self.ranges.partition_point(|r| r.start < patch.lo);
        let to = self.ranges.partition_point(|r| r.start <= patch.hi);
        let crosses_lo = from > 0 && self.ranges[from - 1].end >= patch.lo;
        if crosses_lo || self.ranges[from..to].iter().any(|r| r.end > patch.hi) {
            return Err("a range crosses the patch bounds");
        }
        let mut ranges = Vec::with_capacity(self.ranges.len() - (to - from) + patch.ranges.len());
        ranges.extend_from_slice(&self.ranges[..from]);
        ranges.extend_from_slice(&patch.ranges);
        ranges.extend_from_slice(&self.ranges[to..]);
        check_ranges(&ranges)?;
        if let Some(first) = ranges.first_mut() {
            first.gap = 0;
        }
        self.ranges = ranges;
        self.recorded = patch.recorded;
        self.lost = patch.lost;
        self.shrink_if_sparse();
        Ok(())
    }

    /// Let `relocate` move the buffers of the stream name and the ranges
    /// (active defragmentation).
    pub fn defrag_buffers(&mut self, relocate: &mut impl Relocate) {
        relocate.relocate(&mut self.stream);
        relocate.relocate(&mut self.ranges);
    }

    /// Bytes of memory the index holds, for MEMORY USAGE.
    pub fn memory(&self) -> usize {
        std::mem::size_of::<Index>()
            + self.stream.capacity()
            + self.ranges.capacity() * std::mem::size_of::<Range>()
            + self.keys.memory()
            + self.definition.as_deref().map_or(0, Definition::memory)
    }
}

/// Moves a vector's buffer elsewhere with its contents (the allocator's
/// defragmentation), or leaves it where it is.
pub trait Relocate {
    fn relocate<T>(&mut self, v: &mut Vec<T>);
}

fn check_ranges(ranges: &[Range]) -> Result<(), &'static str> {
    if ranges.iter().any(|r| r.start > r.end) {
        return Err("a range ends before it starts");
    }
    if ranges.windows(2).any(|w| w[0].end >= w[1].start) {
        return Err("ranges overlap or are out of order");
    }
    Ok(())
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// A stream as a set of entry IDs.
    #[derive(Default)]
    pub struct MemStream(pub BTreeSet<StreamId>);

    impl StreamView for MemStream {
        fn count_between(&mut self, after: StreamId, before: StreamId, cap: u64) -> u64 {
            if after >= before {
                return 0;
            }
            let n = self
                .0
                .range(after..before)
                .filter(|id| **id != after)
                .count() as u64;
            n.min(cap)
        }
        fn first_id(&mut self) -> Option<StreamId> {
            self.0.first().copied()
        }
    }

    pub fn id(ms: u64) -> StreamId {
        StreamId { ms, seq: 0 }
    }

    fn stream(ids: impl IntoIterator<Item = u64>) -> MemStream {
        MemStream(ids.into_iter().map(id).collect())
    }

    fn spans(index: &Index) -> Vec<(u64, u64, u64)> {
        index
            .ranges()
            .iter()
            .map(|r| (r.start.ms, r.end.ms, r.gap))
            .collect()
    }

    fn record(index: &mut Index, s: &mut MemStream, ms: u64) -> bool {
        index.record(id(ms), s, &mut Touched::default())
    }

    #[test]
    fn in_order_processing_keeps_one_range() {
        let mut s = stream(1..=1000);
        let mut index = Index::new(b"s");
        for ms in 1..=1000 {
            assert!(record(&mut index, &mut s, ms));
        }
        assert_eq!(spans(&index), vec![(1, 1000, 0)]);
        assert!(!record(&mut index, &mut s, 500), "a duplicate");
        assert_eq!(index.recorded, 1000);
    }

    #[test]
    fn ids_between_entries_are_covered_and_gaps_hold_their_count() {
        // Entries at every 10 ms: a range covers the IDs in between too.
        let mut s = stream((1..=10).map(|n| n * 10));
        let mut index = Index::new(b"s");
        record(&mut index, &mut s, 10);
        record(&mut index, &mut s, 20);
        assert!(index.contains(id(15)));
        record(&mut index, &mut s, 60);
        assert_eq!(spans(&index), vec![(10, 20, 0), (60, 60, 3)]);
        record(&mut index, &mut s, 40);
        assert_eq!(spans(&index), vec![(10, 20, 0), (40, 40, 1), (60, 60, 1)]);
        record(&mut index, &mut s, 30);
        assert_eq!(spans(&index), vec![(10, 40, 0), (60, 60, 1)]);
        record(&mut index, &mut s, 50);
        assert_eq!(spans(&index), vec![(10, 60, 0)]);
    }

    #[test]
    fn below_the_first_range_counts_the_new_gap() {
        let mut s = stream(1..=10);
        let mut index = Index::new(b"s");
        record(&mut index, &mut s, 8);
        record(&mut index, &mut s, 3);
        assert_eq!(spans(&index), vec![(3, 3, 0), (8, 8, 4)]);
        record(&mut index, &mut s, 2);
        assert_eq!(spans(&index), vec![(2, 3, 0), (8, 8, 4)]);
        for ms in [7, 4, 6, 5] {
            record(&mut index, &mut s, ms);
        }
        assert_eq!(spans(&index), vec![(2, 8, 0)]);
    }

    #[test]
    fn random_order_ends_in_one_range_and_every_id_is_recorded_once() {
        let mut s = stream(1..=500);
        let mut index = Index::new(b"s");
        let mut order: Vec<u64> = (1..=500).collect();
        let mut x = 12345u64;
        for i in (1..order.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            order.swap(i, (x % (i as u64 + 1)) as usize);
        }
        for &ms in &order {
            assert!(record(&mut index, &mut s, ms));
            assert!(index.contains(id(ms)));
        }
        for &ms in &order {
            assert!(!record(&mut index, &mut s, ms));
        }
        assert_eq!(spans(&index), vec![(1, 500, 0)]);
        assert_eq!(index.lost, 0);
    }

    #[test]
    fn trimming_past_holes_merges_them_and_counts_the_lost() {
        let mut s = stream(1..=100);
        let mut index = Index::new(b"s");
        for ms in (1..=100).filter(|ms| ms % 10 != 5) {
            record(&mut index, &mut s, ms);
        }
        assert_eq!(index.holes(), 10);
        // XTRIM MINID 50: the holes at 5, 15, ..., 45 leave the stream.
        s.0.retain(|i| i.ms >= 50);
        let mut t = Touched::default();
        index.sweep(&mut s, &mut t);
        assert_eq!(index.lost, 5);
        assert_eq!(index.holes(), 5);
        assert!(!index.contains(id(55)));
        assert!(
            index.contains(id(45)),
            "left the stream: nothing left to do"
        );
        s.0.clear();
        index.sweep(&mut s, &mut t);
        assert_eq!(spans(&index), vec![(1, 100, 0)]);
        assert_eq!(index.lost, 10);
    }

    #[test]
    fn xdel_inside_a_hole_is_found_round_robin() {
        let mut s = stream(1..=20);
        let mut index = Index::new(b"s");
        for ms in (1..=20).filter(|ms| ![5, 10, 15].contains(ms)) {
            record(&mut index, &mut s, ms);
        }
        assert_eq!(index.holes(), 3);
        s.0.remove(&id(10));
        let mut t = Touched::default();
        for _ in 0..3 {
            index.sweep(&mut s, &mut t);
        }
        assert_eq!(spans(&index), vec![(1, 4, 0), (6, 14, 1), (16, 20, 1)]);
        assert_eq!(index.lost, 1);
    }

    #[test]
    fn a_gap_counted_high_after_trimming_still_counts_every_lost_entry() {
        let mut s = stream(1..=10);
        let mut index = Index::new(b"s");
        record(&mut index, &mut s, 1);
        record(&mut index, &mut s, 10); // gap of 8: entries 2..=9
        s.0.retain(|i| ![2, 3, 4].contains(&i.ms)); // XDEL three of them
        for ms in [7, 5, 6, 8, 9] {
            record(&mut index, &mut s, ms);
        }
        assert_eq!(index.holes(), 1, "the gap still counts the three deleted");
        let mut t = Touched::default();
        index.sweep(&mut s, &mut t);
        assert_eq!(spans(&index), vec![(1, 10, 0)]);
        assert_eq!(index.lost, 3);
    }

    #[test]
    fn forget_splits_and_the_id_is_processable_again() {
        let mut s = stream(1..=10);
        let mut index = Index::new(b"s");
        for ms in 1..=10 {
            record(&mut index, &mut s, ms);
        }
        let mut t = Touched::default();
        assert!(index.forget(id(5), true, &mut t));
        assert!(!index.forget(id(5), true, &mut t));
        assert!(!index.contains(id(5)));
        assert!(index.contains(id(4)) && index.contains(id(6)));
        assert!(index.forget(id(1), true, &mut t));
        assert!(index.forget(id(10), true, &mut t));
        assert!(!index.contains(id(1)) && !index.contains(id(10)));
        assert!(record(&mut index, &mut s, 5));
        assert!(record(&mut index, &mut s, 10));
        assert!(record(&mut index, &mut s, 1));
        let ranges = spans(&index);
        assert_eq!(ranges.len(), 1, "{ranges:?}");
        assert_eq!((ranges[0].0, ranges[0].2), (1, 0));
    }

    #[test]
    fn forget_of_a_whole_single_range_joins_its_gaps() {
        let mut s = stream(1..=9);
        let mut index = Index::new(b"s");
        for ms in [1, 3, 5, 7, 9] {
            record(&mut index, &mut s, ms);
        }
        let mut t = Touched::default();
        index.forget(id(5), true, &mut t);
        assert_eq!(
            spans(&index),
            vec![(1, 1, 0), (3, 3, 1), (7, 7, 3), (9, 9, 1)]
        );
        index.forget(id(1), true, &mut t);
        assert_eq!(spans(&index), vec![(3, 3, 0), (7, 7, 3), (9, 9, 1)]);
    }

    /// Replaying the patches of every change on a copy gives the same index.
    #[test]
    fn patches_replay_every_change() {
        let mut s = stream(1..=300);
        let mut primary = Index::new(b"s");
        let mut replica = Index::new(b"s");
        let mut x = 99u64;
        for call in 0..200 {
            let mut t = Touched::default();
            for _ in 0..5 {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let ms = 1 + (x >> 33) % 300;
                if call % 7 == 3 {
                    let present = s.0.contains(&id(ms));
                    primary.forget(id(ms), present, &mut t);
                } else if s.0.contains(&id(ms)) {
                    primary.record(id(ms), &mut s, &mut t);
                }
            }
            if call % 50 == 49 {
                let cut = id(call as u64);
                s.0.retain(|i| *i >= cut);
            }
            primary.sweep(&mut s, &mut t);
            if let Some(patch) = primary.patch(&t) {
                replica.apply(&patch).unwrap();
            }
            assert_eq!(replica.ranges(), primary.ranges(), "call {call}");
            assert_eq!(
                (replica.recorded, replica.lost),
                (primary.recorded, primary.lost)
            );
        }
    }

    #[test]
    fn bad_parts_and_patches_are_refused() {
        let r = |a, b, gap| Range {
            start: id(a),
            end: id(b),
            gap,
        };
        assert!(Index::from_parts(b"s".to_vec(), vec![r(5, 4, 0)], 0, 0).is_err());
        assert!(Index::from_parts(b"s".to_vec(), vec![r(1, 5, 0), r(5, 6, 1)], 0, 0).is_err());
        assert!(Index::from_parts(b"s".to_vec(), vec![r(3, 4, 0), r(1, 2, 1)], 0, 0).is_err());
        assert!(Index::from_parts(b"s".to_vec(), vec![r(1, 2, 7)], 0, 0).is_err());
        let mut index =
            Index::from_parts(b"s".to_vec(), vec![r(1, 2, 0), r(10, 20, 3)], 2, 0).unwrap();
        let before = index.clone();
        let patch = |lo, hi, ranges| Patch {
            lo: id(lo),
            hi: id(hi),
            ranges,
            recorded: 9,
            lost: 9,
        };
        assert!(
            index.apply(&patch(5, 15, vec![])).is_err(),
            "crosses a range"
        );
        assert!(
            index.apply(&patch(3, 9, vec![r(2, 4, 0)])).is_err(),
            "outside"
        );
        assert!(index.apply(&patch(9, 3, vec![])).is_err());
        assert_eq!(index, before, "a refused patch changes nothing");
        index.apply(&patch(3, 9, vec![r(4, 5, 1)])).unwrap();
        assert_eq!(index.ranges().len(), 3);
    }
}
