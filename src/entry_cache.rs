//! Read-ahead cache of source entries, and of consumer groups known to
//! exist, shared by all calls.
//!
//! Finding one entry costs a radix-tree seek plus a walk over up to 100
//! entries of its node (what `XRANGE id id` pays). Consumers process entries
//! in ID order, so a miss reads ahead a window of the entries that follow and
//! later calls take theirs from it: one seek per window, not per entry.
//!
//! Correctness rests on two facts. Stream entries never change: they are only
//! added, always above the stream's last ID, or removed. And every removal or
//! replacement of a stream raises a keyspace event (xdel, xtrim, del,
//! expired, evicted, rename_from, restore, ...) or a server event (flush,
//! swapdb, loading), on which the window is dropped. A window ends at the last
//! entry seen, so entries added later can never fall inside it. (A module
//! that deletes stream entries through the low-level API without notifying
//! would escape this; Redis' own commands all notify.)

use crate::fingerprint::FastMap;
use crate::parse::StreamId;
use crate::process::Fields;
use std::cell::RefCell;

/// At most this many streams have a window at a time.
const MAX_WINDOWS: usize = 32;

enum Slot {
    Present(Fields),
    /// Handed out already; a second read goes to the stream again.
    Taken,
}

struct Window {
    db: i32,
    key: Vec<u8>,
    /// Every entry with an ID in `from..=to` is in `entries`, and in `ids`
    /// in order.
    from: StreamId,
    to: StreamId,
    entries: FastMap<StreamId, Slot>,
    ids: Vec<StreamId>,
}

/// What the cache knows about one entry.
#[derive(Debug, PartialEq)]
pub enum Lookup {
    Hit(Fields),
    /// Inside a window, so certainly not in the stream.
    Missing,
    Unknown,
}

/// A consumer group known to exist: (db, stream key, group).
type Group = (i32, Vec<u8>, Vec<u8>);

thread_local! {
    // Redis calls modules from its main thread only. Borrows never outlive a
    // function here, so an event raised while a command runs can still drop
    // a window.
    static WINDOWS: RefCell<Vec<Window>> = const { RefCell::new(Vec::new()) };
    static GROUPS: RefCell<Vec<Group>> = const { RefCell::new(Vec::new()) };
}

/// Whether `group` of stream `key` was seen to exist, with no event since
/// that could have removed it.
pub fn group_known(db: i32, key: &[u8], group: &[u8]) -> bool {
    GROUPS.with_borrow(|groups| {
        groups
            .iter()
            .any(|(d, k, g)| *d == db && k == key && g == group)
    })
}

pub fn remember_group(db: i32, key: &[u8], group: &[u8]) {
    GROUPS.with_borrow_mut(|groups| {
        if groups.len() >= MAX_WINDOWS {
            groups.remove(0);
        }
        groups.push((db, key.to_vec(), group.to_vec()));
    });
}

/// Take entry `id` of stream `key` in database `db` from the cache.
pub fn take(db: i32, key: &[u8], id: StreamId) -> Lookup {
    WINDOWS.with_borrow_mut(|windows| {
        let Some(w) = windows
            .iter_mut()
            .find(|w| w.db == db && w.key == key && w.from <= id && id <= w.to)
        else {
            return Lookup::Unknown;
        };
        match w.entries.get_mut(&id) {
            None => Lookup::Missing,
            Some(slot) => match std::mem::replace(slot, Slot::Taken) {
                Slot::Present(fields) => Lookup::Hit(fields),
                Slot::Taken => Lookup::Unknown,
            },
        }
    })
}

/// How many entries of stream `key` lie strictly between `after` and
/// `before`, if a window holds every entry of that span (the dedupe index
/// asks this for each ID it records: a window answers without a seek).
pub fn count_between(db: i32, key: &[u8], after: StreamId, before: StreamId) -> Option<u64> {
    let (Some(lo), Some(hi)) = (after.next(), before.prev()) else {
        return Some(0);
    };
    if lo > hi {
        return Some(0);
    }
    WINDOWS.with_borrow(|windows| {
        let w = windows
            .iter()
            .find(|w| w.db == db && w.key == key && w.from <= lo && hi <= w.to)?;
        let first = w.ids.partition_point(|id| *id < lo);
        let last = w.ids.partition_point(|id| *id <= hi);
        Some((last - first) as u64)
    })
}

/// Remember `entries`, every entry of the stream from `from` up to the last
/// of them. Replaces the stream's previous window.
pub fn store(db: i32, key: &[u8], from: StreamId, entries: Vec<(StreamId, Fields)>) {
    let Some(&(to, _)) = entries.last() else {
        return; // nothing seen: an ID past the end may still be added
    };
    let window = Window {
        db,
        key: key.to_vec(),
        from,
        to,
        ids: entries.iter().map(|(id, _)| *id).collect(),
        entries: entries
            .into_iter()
            .map(|(id, fields)| (id, Slot::Present(fields)))
            .collect(),
    };
    WINDOWS.with_borrow_mut(|windows| {
        windows.retain(|w| !(w.db == db && w.key == key));
        if windows.len() >= MAX_WINDOWS {
            windows.remove(0); // the oldest
        }
        windows.push(window);
    });
}

/// Events that cannot remove or replace an existing entry.
const HARMLESS: [&str; 9] = [
    "xadd",
    "xgroup-create",
    "xgroup-createconsumer",
    "xgroup-delconsumer",
    "xgroup-destroy",
    "xgroup-setid",
    "xsetid",
    "xclaim",
    "xautoclaim",
];

/// Events that cannot remove a consumer group.
const HARMLESS_TO_GROUPS: [&str; 8] = [
    "xadd",
    "xtrim",
    "xdel",
    "xgroup-create",
    "xgroup-createconsumer",
    "xgroup-delconsumer",
    "xclaim",
    "xautoclaim",
];

/// A keyspace event on `key` in `db`.
pub fn on_keyspace_event(db: i32, event: &str, key: &[u8]) {
    if !HARMLESS_TO_GROUPS.contains(&event) {
        GROUPS.with_borrow_mut(|groups| {
            if !groups.is_empty() {
                groups.retain(|(d, k, _)| !(*d == db && k == key));
            }
        });
    }
    if HARMLESS.contains(&event) {
        return;
    }
    WINDOWS.with_borrow_mut(|windows| {
        if !windows.is_empty() {
            windows.retain(|w| !(w.db == db && w.key == key));
        }
    });
}

/// Forget everything (flush, swapdb, loading).
pub fn clear() {
    WINDOWS.with_borrow_mut(Vec::clear);
    GROUPS.with_borrow_mut(Vec::clear);
}

/// Number of streams with a window.
#[cfg(test)]
fn windows() -> usize {
    WINDOWS.with_borrow(Vec::len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: u64) -> StreamId {
        StreamId { ms, seq: 0 }
    }

    fn fields(n: u64) -> Fields {
        vec![(b"n".to_vec(), n.to_string().into_bytes())]
    }

    #[test]
    fn a_window_serves_entries_once_and_knows_gaps() {
        clear();
        store(0, b"s", id(5), vec![(id(5), fields(5)), (id(7), fields(7))]);
        assert_eq!(take(0, b"s", id(7)), Lookup::Hit(fields(7)));
        assert_eq!(take(0, b"s", id(7)), Lookup::Unknown, "handed out once");
        assert_eq!(take(0, b"s", id(6)), Lookup::Missing);
        assert_eq!(
            take(0, b"s", id(8)),
            Lookup::Unknown,
            "past the last entry seen"
        );
        assert_eq!(take(0, b"s", id(4)), Lookup::Unknown);
        assert_eq!(take(1, b"s", id(5)), Lookup::Unknown, "another database");
        assert_eq!(take(0, b"t", id(5)), Lookup::Unknown, "another stream");
    }

    #[test]
    fn a_window_counts_entries_between_ids_it_covers() {
        clear();
        store(
            0,
            b"s",
            id(5),
            vec![(id(5), fields(5)), (id(7), fields(7)), (id(9), fields(9))],
        );
        assert_eq!(count_between(0, b"s", id(5), id(9)), Some(1));
        let just_below_5 = StreamId {
            ms: 4,
            seq: u64::MAX,
        };
        let just_above_9 = StreamId { ms: 9, seq: 1 };
        assert_eq!(count_between(0, b"s", just_below_5, just_above_9), Some(3));
        assert_eq!(count_between(0, b"s", id(4), id(9)), None, "4-1 may exist");
        assert_eq!(count_between(0, b"s", id(7), id(8)), Some(0));
        assert_eq!(count_between(0, b"s", id(3), id(6)), None, "4-x may exist");
        assert_eq!(
            count_between(0, b"s", id(8), id(11)),
            None,
            "10-0 may exist"
        );
        assert_eq!(count_between(0, b"t", id(5), id(7)), None);
        assert_eq!(count_between(0, b"s", id(9), id(9)), Some(0));
    }

    #[test]
    fn events_that_may_remove_entries_drop_the_window() {
        clear();
        store(0, b"s", id(1), vec![(id(1), fields(1))]);
        on_keyspace_event(0, "xadd", b"s");
        on_keyspace_event(1, "del", b"s");
        on_keyspace_event(0, "del", b"other");
        assert_eq!(windows(), 1);
        on_keyspace_event(0, "xdel", b"s");
        assert_eq!(windows(), 0);
        assert_eq!(take(0, b"s", id(1)), Lookup::Unknown);
    }

    #[test]
    fn group_knowledge_survives_appends_but_not_destroy() {
        clear();
        remember_group(0, b"s", b"g");
        on_keyspace_event(0, "xadd", b"s");
        on_keyspace_event(0, "xdel", b"s");
        assert!(group_known(0, b"s", b"g"));
        assert!(!group_known(0, b"s", b"h"));
        assert!(!group_known(1, b"s", b"g"));
        on_keyspace_event(0, "xgroup-destroy", b"s");
        assert!(!group_known(0, b"s", b"g"));
        remember_group(0, b"s", b"g");
        clear();
        assert!(!group_known(0, b"s", b"g"));
    }

    #[test]
    fn windows_are_bounded_and_an_empty_read_stores_nothing() {
        clear();
        for n in 0..(MAX_WINDOWS as u64 + 5) {
            store(0, n.to_string().as_bytes(), id(1), vec![(id(1), fields(1))]);
        }
        assert_eq!(windows(), MAX_WINDOWS);
        assert_eq!(take(0, b"0", id(1)), Lookup::Unknown, "oldest evicted");
        store(0, b"empty", id(1), Vec::new());
        assert_eq!(take(0, b"empty", id(1)), Lookup::Unknown);
    }
}
