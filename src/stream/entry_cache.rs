//! Entries one call has read from its stream, for the rest of that call.
//!
//! Finding one entry costs a radix-tree seek plus a walk over up to 100
//! entries of its node (what `XRANGE id id` pays). A call's IDs are mostly in
//! stream order, so the first one not yet seen reads a window of the entries
//! up to the call's last ID, and the others take theirs from it: one seek per
//! window, not per entry. READ's new entries are such a window too. The
//! dedupe index asks the window how many entries lie between two IDs; those
//! between its last record and the window's first entry were counted on
//! the way there (the `Lead`), so that question needs no second seek.
//!
//! The window lives only while its call runs (`Scope`), so nothing outside
//! the call can remove or replace an entry under it: no keyspace event or
//! server event is needed to keep it honest, and the module costs commands
//! that never call it nothing. Inside the call, the only writes
//! to the source stream are the call's own XADD effects, which `forget` it.
//! A window ends at the last entry seen, so entries appended later never
//! fall inside it.

use std::cell::RefCell;
use xprocess_core::entry::Fields;
use xprocess_core::fast_map::FastMap;
use xprocess_core::id::StreamId;

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
    /// How many entries lie just before `from`, counted on the way to it.
    lead: Option<Lead>,
}

/// `count` entries have IDs in `from..` the window's first ID (exclusive).
/// The index asks how many entries lie between the last ID it recorded and
/// the one it records now: counting them while seeking to the new one saves
/// a second seek.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lead {
    pub from: StreamId,
    pub count: u64,
}

impl Window {
    fn of(&self, db: i32, key: &[u8]) -> bool {
        self.db == db && self.key == key
    }
}

/// What the cache knows about one entry.
#[derive(Debug, PartialEq)]
pub enum Lookup {
    Hit(Fields),
    /// Inside the window, so certainly not in the stream.
    Missing,
    Unknown,
}

thread_local! {
    // Redis calls modules from its main thread only. Borrows never outlive a
    // function here.
    static WINDOW: RefCell<Option<Window>> = const { RefCell::new(None) };
}

/// The running call's window: begun empty, dropped when the call ends. A
/// call nested in another (a script's XPROCESS run by a module hook) gets
/// its own, and the outer call's comes back afterwards.
pub struct Scope {
    outer: Option<Window>,
}

pub fn scope() -> Scope {
    Scope {
        outer: WINDOW.with_borrow_mut(Option::take),
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        let outer = self.outer.take();
        WINDOW.with_borrow_mut(|w| *w = outer);
    }
}

/// Take entry `id` of stream `key` in database `db` from the window.
pub fn take(db: i32, key: &[u8], id: StreamId) -> Lookup {
    WINDOW.with_borrow_mut(|window| {
        let Some(w) = window
            .as_mut()
            .filter(|w| w.of(db, key) && w.from <= id && id <= w.to)
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
/// `before`, if the window holds every entry of that span (the dedupe index
/// asks this for each ID it records: the window answers without a seek).
pub fn count_between(db: i32, key: &[u8], after: StreamId, before: StreamId) -> Option<u64> {
    let (Some(lo), Some(hi)) = (after.next(), before.prev()) else {
        return Some(0);
    };
    if lo > hi {
        return Some(0);
    }
    WINDOW.with_borrow(|window| {
        let w = window.as_ref().filter(|w| w.of(db, key) && hi <= w.to)?;
        let last = w.ids.partition_point(|id| *id <= hi) as u64;
        if w.from <= lo {
            return Some(last - w.ids.partition_point(|id| *id < lo) as u64);
        }
        // From the lead's start over all of it: hi reaches the window.
        let lead = w
            .lead
            .filter(|l| l.from == lo && hi.next() >= Some(w.from))?;
        Some(lead.count + last)
    })
}

/// Remember `entries`, every entry of the stream from `from` up to the last
/// of them, and the `lead` counted before `from`. Replaces the previous
/// window.
pub fn store(
    db: i32,
    key: &[u8],
    lead: Option<Lead>,
    from: StreamId,
    entries: Vec<(StreamId, Fields)>,
) {
    let Some(&(to, _)) = entries.last() else {
        return; // nothing seen: an ID past the end may still be added
    };
    let window = Window {
        db,
        key: key.to_vec(),
        from,
        to,
        lead: lead.filter(|l| l.from < from),
        ids: entries.iter().map(|(id, _)| *id).collect(),
        entries: entries
            .into_iter()
            .map(|(id, fields)| (id, Slot::Present(fields)))
            .collect(),
    };
    WINDOW.with_borrow_mut(|w| *w = Some(window));
}

/// The call wrote to stream `key` (an XADD effect, which may trim it).
pub fn forget(db: i32, key: &[u8]) {
    WINDOW.with_borrow_mut(|window| {
        if window.as_ref().is_some_and(|w| w.of(db, key)) {
            *window = None;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: u64) -> StreamId {
        StreamId { ms, seq: 0 }
    }

    fn fields(n: u64) -> Fields {
        [(b"n".to_vec(), n.to_string().into_bytes())]
            .into_iter()
            .collect()
    }

    #[test]
    fn a_window_serves_entries_once_and_knows_gaps() {
        let _call = scope();
        store(
            0,
            b"s",
            None,
            id(5),
            vec![(id(5), fields(5)), (id(7), fields(7))],
        );
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
        let _call = scope();
        store(
            0,
            b"s",
            None,
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
    fn a_lead_answers_counts_from_its_start_over_all_of_it() {
        let _call = scope();
        let lead = Lead {
            from: id(2),
            count: 3,
        };
        let entries = vec![(id(8), fields(8)), (id(9), fields(9))];
        store(0, b"s", Some(lead), id(8), entries);
        let just_below = |ms: u64| StreamId {
            ms: ms - 1,
            seq: u64::MAX,
        };
        // after 1-max (so from 2-0) up to 8-0 (exclusive): the lead only.
        assert_eq!(count_between(0, b"s", just_below(2), id(8)), Some(3));
        assert_eq!(count_between(0, b"s", just_below(2), id(9)), Some(4));
        assert_eq!(
            count_between(0, b"s", just_below(2), id(7)),
            None,
            "not over all of the lead: 7-x may hold some of it"
        );
        assert_eq!(
            count_between(0, b"s", id(2), id(8)),
            None,
            "not from the lead's start: 2-0 itself may be one of the 3"
        );
        assert_eq!(take(0, b"s", id(5)), Lookup::Unknown, "no fields kept");
        assert_eq!(take(0, b"s", id(8)), Lookup::Hit(fields(8)));
    }

    #[test]
    fn a_window_ends_with_its_call_and_a_nested_call_has_its_own() {
        let call = scope();
        store(
            0,
            b"s",
            None,
            id(1),
            vec![(id(1), fields(1)), (id(2), fields(2))],
        );
        {
            let _nested = scope();
            assert_eq!(take(0, b"s", id(1)), Lookup::Unknown);
            store(0, b"s", None, id(9), vec![(id(9), fields(9))]);
        }
        assert_eq!(take(0, b"s", id(9)), Lookup::Unknown, "the nested window");
        assert_eq!(take(0, b"s", id(1)), Lookup::Hit(fields(1)));
        drop(call);
        let _next = scope();
        assert_eq!(take(0, b"s", id(2)), Lookup::Unknown, "the last call's");
    }

    #[test]
    fn a_write_to_the_stream_forgets_its_window_only() {
        let _call = scope();
        store(
            0,
            b"s",
            None,
            id(1),
            vec![(id(1), fields(1)), (id(3), fields(3))],
        );
        forget(0, b"other");
        forget(1, b"s");
        assert_eq!(count_between(0, b"s", id(1), id(3)), Some(0));
        forget(0, b"s");
        assert_eq!(take(0, b"s", id(1)), Lookup::Unknown);
        assert_eq!(count_between(0, b"s", id(1), id(3)), None);
    }

    #[test]
    fn an_empty_read_stores_nothing() {
        let _call = scope();
        store(0, b"empty", None, id(1), Vec::new());
        assert_eq!(take(0, b"empty", id(1)), Lookup::Unknown);
    }
}
