//! A consumer group's counters after a read, as the server keeps them.
//!
//! READ takes new entries straight from the stream and moves the group on
//! itself, so that entries it finishes in the same call never enter the
//! PEL. The group must then end exactly as `XREADGROUP ... >` would leave
//! it: last-delivered ID and entries-read. Servers count entries-read in
//! two ways. Each entry read past the group's last ID adds one when the
//! counter is valid and no deleted entry (tombstone) lies ahead, checked
//! from the entry (Redis 7.0, Valkey) or from the group's last ID (Redis
//! 7.4 and later); otherwise the counter is estimated from the stream's
//! totals. This module answers only when every way gives the same number,
//! so a caller can fall back to the server's own read when it cannot.

use crate::id::StreamId;

/// What `XINFO STREAM` tells of a stream's totals.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamTotals {
    pub length: u64,
    /// The first entry's ID (`None` when empty).
    pub first: Option<StreamId>,
    pub last_generated: StreamId,
    /// `0-0` when no entry was ever deleted.
    pub max_deleted: StreamId,
    pub entries_added: u64,
}

/// What `XINFO GROUPS` tells of one group.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroupPosition {
    pub last_delivered: StreamId,
    /// `None` when the server holds it invalid (nil).
    pub entries_read: Option<u64>,
    pub pending: u64,
}

const ZERO: StreamId = StreamId { ms: 0, seq: 0 };

/// entries-read after a read of `n` entries past the group's last ID, the
/// first of them `first`, when every supported server counts the same.
pub fn entries_read_after(
    stream: &StreamTotals,
    group: &GroupPosition,
    first: StreamId,
    n: u64,
) -> Option<u64> {
    let counted = group.entries_read?.checked_add(n)?;
    let deleted = stream.max_deleted;
    if stream.length == 0 || deleted == ZERO || deleted < group.last_delivered {
        return Some(counted); // no tombstone ahead, whichever way checked
    }
    if deleted > group.last_delivered {
        return None;
    }
    // A tombstone at the group's last ID: newer Redis estimates the first
    // entry's counter, then counts on; the others count on from it.
    let estimate = estimate(stream, first)?;
    (Some(estimate) == group.entries_read?.checked_add(1)).then_some(counted)
}

/// The server's estimate of how many entries were added up to `id`, when
/// it can tell (`streamEstimateDistanceFromFirstEverEntry`).
fn estimate(s: &StreamTotals, id: StreamId) -> Option<u64> {
    if s.entries_added == 0 {
        return Some(0);
    }
    if s.length == 0 && id <= s.last_generated {
        return Some(s.entries_added);
    }
    if id != ZERO && id < s.max_deleted {
        return None;
    }
    if id == s.last_generated {
        return Some(s.entries_added);
    }
    if id > s.last_generated {
        return None;
    }
    let first = s.first?;
    if s.max_deleted != ZERO && s.max_deleted >= first {
        return None;
    }
    let before = s.entries_added.checked_sub(s.length)?;
    match id.cmp(&first) {
        std::cmp::Ordering::Less => Some(before),
        std::cmp::Ordering::Equal => Some(before + 1),
        std::cmp::Ordering::Greater => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: u64) -> StreamId {
        StreamId { ms, seq: 0 }
    }

    fn stream(length: u64, first: u64, last: u64, deleted: u64, added: u64) -> StreamTotals {
        StreamTotals {
            length,
            first: (length > 0).then(|| id(first)),
            last_generated: id(last),
            max_deleted: id(deleted),
            entries_added: added,
        }
    }

    fn group(last: u64, read: Option<u64>) -> GroupPosition {
        GroupPosition {
            last_delivered: id(last),
            entries_read: read,
            pending: 0,
        }
    }

    #[test]
    fn counts_on_without_tombstones() {
        let s = stream(10, 1, 10, 0, 10);
        assert_eq!(
            entries_read_after(&s, &group(3, Some(3)), id(4), 5),
            Some(8)
        );
    }

    #[test]
    fn an_invalid_counter_is_left_to_the_server() {
        let s = stream(10, 1, 10, 0, 10);
        assert_eq!(entries_read_after(&s, &group(3, None), id(4), 5), None);
    }

    #[test]
    fn tombstones_behind_the_group_do_not_matter() {
        let s = stream(8, 1, 10, 2, 10);
        assert_eq!(
            entries_read_after(&s, &group(5, Some(5)), id(6), 2),
            Some(7)
        );
    }

    #[test]
    fn a_tombstone_ahead_is_left_to_the_server() {
        let s = stream(8, 1, 10, 7, 10);
        assert_eq!(entries_read_after(&s, &group(5, Some(5)), id(6), 2), None);
    }

    #[test]
    fn a_tombstone_at_the_group_counts_on_when_the_estimate_agrees() {
        // Everything up to 5 was read and deleted (READ ... DELETE).
        let s = stream(5, 6, 10, 5, 10);
        assert_eq!(
            entries_read_after(&s, &group(5, Some(5)), id(6), 3),
            Some(8)
        );
        // A counter that the estimate contradicts: the servers differ.
        assert_eq!(entries_read_after(&s, &group(5, Some(4)), id(6), 3), None);
        // The estimate cannot tell (the first entry is older): servers differ.
        let s = stream(6, 2, 10, 5, 10);
        assert_eq!(entries_read_after(&s, &group(5, Some(5)), id(6), 3), None);
    }

    #[test]
    fn estimates_follow_the_server() {
        let s = stream(5, 6, 10, 5, 10);
        assert_eq!(estimate(&s, id(10)), Some(10));
        assert_eq!(estimate(&s, id(11)), None);
        assert_eq!(estimate(&s, id(6)), Some(6));
        assert_eq!(estimate(&s, id(7)), None);
        assert_eq!(estimate(&s, id(4)), None); // before the tombstone
        assert_eq!(estimate(&stream(0, 0, 10, 10, 10), id(3)), Some(10));
        assert_eq!(estimate(&stream(0, 0, 0, 0, 0), id(3)), Some(0));
    }
}
