//! The exactly-once step, for each ID of a call, in order:
//! duplicate? -> owned by CONSUMER? -> read entry -> plan effects -> apply
//! -> record in the dedupe store; then one commit of the records and one
//! XACK for every applied, duplicate or dead-lettered ID. An entry that fails
//! after it was delivered DEADLETTER's AFTER times goes to the dead-letter
//! stream instead, and counts as processed.
//!
//! Written against [`Backend`] and [`DedupeStore`] so the logic is tested in
//! memory; `execute` supplies the Redis implementations.

use crate::business_key::{key_hash, Fingerprinter};
use crate::entry::{Entry, Fields};
use crate::errors::ReplyError;
use crate::id::StreamId;
use crate::plan::{plan_entry, KeyRules, Op};
use crate::request::{BusinessKey, DeadLetter, Request};
use crate::state::{KeyKind, State};
use crate::store::DedupeStore;
use std::borrow::Cow;

/// What the command needs from the server, beyond the planning view.
pub trait Backend: State {
    /// The consumer that entry `id` is pending for, `None` if not pending.
    fn pending_owner(&mut self, id: StreamId) -> Result<Option<Cow<'_, [u8]>>, ReplyError>;
    /// The field/value pairs of entry `id`, `None` if it is not in the stream.
    /// The dedupe store will then count the entries from `count_from` to
    /// `id` (see `DedupeStore::recorded_below`): a reader may count them in
    /// the same pass.
    fn read_entry(&mut self, id: StreamId, count_from: Option<StreamId>) -> Option<Fields>;
    /// Perform one planned write.
    fn apply(&mut self, op: &Op) -> Result<(), ReplyError>;
    /// How many times entry `id` was delivered (the PEL's count; 0 when it
    /// is not pending).
    fn deliveries(&mut self, id: StreamId) -> Result<u64, ReplyError>;
    /// Append entry `id` to the dead-letter stream, with why and its fields.
    fn dead_letter(&mut self, key: &[u8], poison: &Poison) -> Result<(), ReplyError>;
    /// Acknowledge `ids` in the group.
    fn ack(&mut self, ids: &[StreamId]) -> Result<(), ReplyError>;
    /// Entries `ids` failed: each must stay (or now be) pending for the
    /// consumer (a reader that kept an entry out of the PEL puts it there).
    fn leave_pending(&mut self, _ids: &[StreamId]) -> Result<(), ReplyError> {
        Ok(())
    }
    /// Report a broken invariant (a write failing after validation).
    fn warn(&mut self, message: &str);
    /// Write whatever `apply` deferred (before the records and the XACK).
    fn finish(&mut self) {}
    /// How many entries of the call follow the one about to be processed
    /// (a hint for bulk reads).
    fn entries_after(&mut self, _n: usize) {}
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// Recorded and acked, but no effect's conditions held (replies `1`).
    NoEffect,
    Duplicate,
    /// Failed once too often: moved to the dead-letter stream, never applied.
    DeadLettered,
    Failed(ReplyError),
}

/// An entry on its way to the dead-letter stream.
pub struct Poison<'p> {
    pub id: StreamId,
    pub error: &'p ReplyError,
    pub deliveries: u64,
    /// `None` when the entry is no longer in the stream.
    pub fields: Option<&'p Fields>,
}

/// Run the whole call. Whole-call checks are done before; nothing here fails
/// the call, so no entry is ever left half-done by an early return.
pub fn process<B: Backend, D: DedupeStore>(
    req: &Request,
    ids: &[StreamId],
    backend: &mut B,
    store: &mut D,
    reserved: &[(&[u8], KeyKind)],
) -> Vec<Outcome> {
    // A bulk dedupe lookup is only safe when no effect writes the dedupe set.
    let writes_dedupe = req.effects.iter().any(|e| {
        reserved
            .iter()
            .any(|(key, _)| e.keys().iter().any(|k| k.literal() == Some(*key)))
    });
    if !writes_dedupe {
        store.prefetch(ids);
    }
    let keys = req
        .business_key
        .as_ref()
        .map(|bk| (bk, Fingerprinter::of(req, &bk.fingerprint)));
    // Only a templated key can hit these: a call without one allocates nothing.
    let mut forbidden: Vec<&[u8]> = Vec::new();
    if req
        .effects
        .iter()
        .any(|e| e.keys().iter().any(|k| k.literal().is_none()))
    {
        forbidden.push(req.stream);
        forbidden.extend(reserved.iter().map(|(key, _)| *key));
        forbidden.extend(req.dead_letter.as_ref().map(|dl| dl.key));
    }
    let rules = KeyRules {
        reserved,
        forbidden: &forbidden,
    };
    let mut acks = Vec::with_capacity(ids.len());
    let mut failed = Vec::new();
    let outcomes = ids
        .iter()
        .enumerate()
        .map(|(n, &id)| {
            backend.entries_after(ids.len() - n - 1);
            let outcome = process_one(req, id, keys.as_ref(), backend, store, &rules);
            match outcome {
                Outcome::Failed(_) => failed.push(id),
                _ => acks.push(id),
            }
            outcome
        })
        .collect();
    backend.finish();
    if let Err(e) = store.commit() {
        backend.warn(&format!("dedupe commit failed: {e}"));
    }
    if !acks.is_empty() {
        if let Err(e) = backend.ack(&acks) {
            backend.warn(&format!("XACK failed: {e}"));
        }
    }
    if !failed.is_empty() {
        if let Err(e) = backend.leave_pending(&failed) {
            backend.warn(&format!("leaving failed entries pending failed: {e}"));
        }
    }
    outcomes
}

/// A call's `KEY` and what its fingerprints cover.
type Keys<'k, 'a> = Option<&'k (&'k BusinessKey<'a>, Fingerprinter<'a>)>;

fn process_one<B: Backend, D: DedupeStore>(
    req: &Request,
    id: StreamId,
    keys: Keys,
    backend: &mut B,
    store: &mut D,
    rules: &KeyRules,
) -> Outcome {
    let text = id.text();
    let id_text = text.as_str();
    let outcome = match store.contains(id) {
        Ok(true) => return Outcome::Duplicate,
        Ok(false) => check_owner(req, id, id_text, backend),
        Err(e) => Err(e),
    };
    if let Err(e) = outcome {
        return Outcome::Failed(e); // not the entry's fault: never dead-lettered
    }
    let count_from = store.recorded_below(id).and_then(StreamId::next);
    let Some(owned) = backend.read_entry(id, count_from) else {
        let error = ReplyError::entry_not_found(id_text);
        return dead_letter_or_fail(req, id, error, None, backend, store);
    };
    // Entries rarely have more than a few fields: those need no allocation.
    let mut inline: [(&[u8], &[u8]); INLINE_FIELDS] = [(&[], &[]); INLINE_FIELDS];
    let many: Vec<(&[u8], &[u8])>;
    let pairs = owned.iter();
    let fields: &[(&[u8], &[u8])] = match owned.len() <= INLINE_FIELDS {
        true => {
            for (slot, pair) in inline.iter_mut().zip(pairs) {
                *slot = pair;
            }
            &inline[..owned.len()]
        }
        false => {
            many = pairs.collect();
            &many
        }
    };
    let entry = Entry {
        id: id_text,
        fields,
    };
    match apply_entry(req, &entry, id, keys, backend, store, rules) {
        Ok(outcome) => outcome,
        Err(e) => dead_letter_or_fail(req, id, e, Some(&owned), backend, store),
    }
}

/// Fields of an entry viewed without allocating.
const INLINE_FIELDS: usize = 8;

/// CONSUMER fencing: the entry must be pending for this consumer.
fn check_owner<B: Backend>(
    req: &Request,
    id: StreamId,
    id_text: &str,
    backend: &mut B,
) -> Result<(), ReplyError> {
    let Some(consumer) = req.consumer else {
        return Ok(());
    };
    let owner = backend.pending_owner(id)?;
    if owner.as_deref() != Some(consumer) {
        return Err(ReplyError::not_owner(id_text, consumer, owner.as_deref()));
    }
    Ok(())
}

/// Plan and apply one read entry's effects, and record it.
fn apply_entry<B: Backend, D: DedupeStore>(
    req: &Request,
    entry: &Entry,
    id: StreamId,
    keys: Keys,
    backend: &mut B,
    store: &mut D,
    rules: &KeyRules,
) -> Result<Outcome, ReplyError> {
    let new_key = match keys {
        Some((bk, fingerprinter)) => match check_key(bk, fingerprinter, entry, store)? {
            KeyCheck::New(key, fp) => Some((key, fp)),
            KeyCheck::Retry => {
                store.insert(id);
                return Ok(Outcome::Duplicate);
            }
        },
        None => None,
    };
    let ops = plan_entry(&req.effects, &req.when, entry, backend, rules)?;
    for (n, op) in ops.iter().enumerate() {
        if let Err(e) = backend.apply(op) {
            if !op.validated() {
                return Err(e); // a function's own error: the entry's
            }
            // Validation should make this unreachable: say so loudly.
            backend.warn(&format!(
                "entry {}: effect {} failed after validation, {n} applied: {e}",
                entry.id,
                n + 1
            ));
            return Err(e);
        }
    }
    store.insert(id);
    if let Some((key, fp)) = new_key {
        store.record_key(key, fp, id);
    }
    Ok(match ops.is_empty() {
        true => Outcome::NoEffect,
        false => Outcome::Applied,
    })
}

/// A failed entry: dead-lettered (and recorded as processed) when DEADLETTER
/// is given and it was delivered AFTER times or more, else left pending.
fn dead_letter_or_fail<B: Backend, D: DedupeStore>(
    req: &Request,
    id: StreamId,
    error: ReplyError,
    fields: Option<&Fields>,
    backend: &mut B,
    store: &mut D,
) -> Outcome {
    let Some(DeadLetter { key, after }) = req.dead_letter else {
        return Outcome::Failed(error);
    };
    let deliveries = match backend.deliveries(id) {
        Ok(n) if n >= after => n,
        _ => return Outcome::Failed(error),
    };
    let poison = Poison {
        id,
        error: &error,
        deliveries,
        fields,
    };
    match backend.dead_letter(key, &poison) {
        Ok(()) => {
            store.insert(id);
            Outcome::DeadLettered
        }
        Err(e) => {
            backend.warn(&format!("entry {id}: dead-lettering failed: {e}"));
            Outcome::Failed(error)
        }
    }
}

enum KeyCheck {
    /// Not seen in the window: apply, then remember (key hash, fingerprint).
    New(u128, u32),
    /// Seen with the same payload: a producer's retry, already applied.
    Retry,
}

/// The entry's business key against the store: new, a retry, or (seen with
/// another payload) a CONFLICT error.
fn check_key<D: DedupeStore>(
    bk: &BusinessKey,
    fingerprinter: &Fingerprinter,
    entry: &Entry,
    store: &mut D,
) -> Result<KeyCheck, ReplyError> {
    let name = bk.template.expand(entry)?;
    let (key, fp) = (key_hash(&name), fingerprinter.fingerprint(entry)?);
    match store.key(key) {
        None => Ok(KeyCheck::New(key, fp)),
        Some((seen, _)) if seen == fp => Ok(KeyCheck::Retry),
        Some((_, other)) => {
            store.conflict();
            Err(ReplyError::conflict(entry.id, &name, other))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::ErrorKind;
    use crate::memory_store::MemoryStore;
    use crate::parse::parse;
    use std::collections::HashMap;

    /// A stream with one group, and hashes, in memory.
    #[derive(Default)]
    struct Mem {
        entries: HashMap<StreamId, Fields>,
        pel: HashMap<StreamId, Vec<u8>>,
        hashes: HashMap<(Vec<u8>, Vec<u8>), i64>,
        acked: Vec<StreamId>,
        applied: usize,
        deliveries: HashMap<StreamId, u64>,
        /// (id, error, deliveries, number of fields) of each dead letter.
        dead: Vec<(StreamId, String, u64, Option<usize>)>,
    }

    impl State for Mem {
        fn kind(&self, key: &[u8]) -> KeyKind {
            match self.hashes.keys().any(|(k, _)| k == key) {
                true => KeyKind::Hash,
                false => KeyKind::Missing,
            }
        }
        fn hash_field(&self, key: &[u8], field: &[u8]) -> Option<Vec<u8>> {
            let v = self.hashes.get(&(key.to_vec(), field.to_vec()))?;
            Some(v.to_string().into_bytes())
        }
        fn stream_last_id(&self, _key: &[u8]) -> StreamId {
            StreamId { ms: 0, seq: 0 }
        }
    }

    impl Backend for Mem {
        fn pending_owner(&mut self, id: StreamId) -> Result<Option<Cow<'_, [u8]>>, ReplyError> {
            Ok(self.pel.get(&id).map(|o| Cow::Borrowed(o.as_slice())))
        }
        fn read_entry(&mut self, id: StreamId, _: Option<StreamId>) -> Option<Fields> {
            self.entries.get(&id).cloned()
        }
        fn apply(&mut self, op: &Op) -> Result<(), ReplyError> {
            if let Op::HIncrBy {
                key, field, incr, ..
            } = op
            {
                let by: i64 = std::str::from_utf8(incr).unwrap().parse().unwrap();
                *self
                    .hashes
                    .entry((key.to_vec(), field.to_vec()))
                    .or_default() += by;
            }
            self.applied += 1;
            Ok(())
        }
        fn deliveries(&mut self, id: StreamId) -> Result<u64, ReplyError> {
            Ok(self.deliveries.get(&id).copied().unwrap_or(0))
        }
        fn dead_letter(&mut self, _key: &[u8], p: &Poison) -> Result<(), ReplyError> {
            let fields = p.fields.map(Fields::len);
            self.dead
                .push((p.id, p.error.to_string(), p.deliveries, fields));
            Ok(())
        }
        fn ack(&mut self, ids: &[StreamId]) -> Result<(), ReplyError> {
            for id in ids {
                self.pel.remove(id);
            }
            self.acked.extend_from_slice(ids);
            Ok(())
        }
        fn warn(&mut self, message: &str) {
            panic!("unexpected warning: {message}");
        }
    }

    fn id(ms: u64) -> StreamId {
        StreamId { ms, seq: 0 }
    }

    /// Entries 1..=3 pending for `alice`, each with `amount` = its number;
    /// entry 3 has no `cust`.
    fn mem() -> Mem {
        let mut m = Mem::default();
        for n in 1..=3u64 {
            let mut fields = Fields::new();
            fields.push(b"amount", n.to_string().as_bytes());
            if n < 3 {
                fields.push(b"cust", b"c");
            }
            m.entries.insert(id(n), fields);
            m.pel.insert(id(n), b"alice".to_vec());
        }
        m
    }

    fn run(cmd: &str, m: &mut Mem, store: &mut MemoryStore) -> Vec<Outcome> {
        let argv: Vec<&[u8]> = cmd.split(' ').map(str::as_bytes).collect();
        let req = parse(&argv).unwrap();
        process(&req, &req.ids, m, store, &[])
    }

    fn total(m: &Mem) -> i64 {
        m.hashes[&(b"t".to_vec(), b"c".to_vec())]
    }

    const CALL: &str = "XPROCESS s g HINCRBY t $cust $amount IDS 4 1 2 3 9";

    #[test]
    fn applies_each_entry_once_and_retries_are_duplicates() {
        let (mut m, mut store) = (mem(), MemoryStore::default());
        let first = run(CALL, &mut m, &mut store);
        assert_eq!(first[..2], [Outcome::Applied, Outcome::Applied]);
        assert_eq!(
            first[2],
            Outcome::Failed(ReplyError::err("ERR entry 3-0 has no field 'cust'"))
        );
        assert_eq!(
            first[3],
            Outcome::Failed(ReplyError::entry_not_found("9-0"))
        );
        assert_eq!(total(&m), 3);
        assert_eq!(m.acked, vec![id(1), id(2)]);
        assert!(m.pel.contains_key(&id(3)), "a failed entry stays pending");

        let again = run(CALL, &mut m, &mut store);
        assert_eq!(again[..2], [Outcome::Duplicate, Outcome::Duplicate]);
        assert_eq!(total(&m), 3, "a retried call changes no effect");
        assert_eq!(store.committed.len(), 2);
    }

    #[test]
    fn entries_with_many_fields_are_templated_as_those_with_few() {
        let (mut m, mut store) = (mem(), MemoryStore::default());
        let mut fields: Fields = (0..12).map(|n| (format!("f{n}"), n.to_string())).collect();
        fields.push(b"cust", b"c");
        m.entries.insert(id(5), fields);
        m.pel.insert(id(5), b"alice".to_vec());
        let out = run(
            "XPROCESS s g HINCRBY t $cust $f11 IDS 2 5 1",
            &mut m,
            &mut store,
        );
        assert_eq!(
            out,
            vec![
                Outcome::Applied,
                Outcome::Failed(ReplyError::err("ERR entry 1-0 has no field 'f11'"))
            ]
        );
        assert_eq!(total(&m), 11);
    }

    #[test]
    fn the_same_id_twice_in_one_call_is_a_duplicate() {
        let (mut m, mut store) = (mem(), MemoryStore::default());
        let out = run(
            "XPROCESS s g HINCRBY t c $amount IDS 2 1 1",
            &mut m,
            &mut store,
        );
        assert_eq!(out, vec![Outcome::Applied, Outcome::Duplicate]);
        assert_eq!(total(&m), 1);
    }

    #[test]
    fn consumer_fencing_refuses_entries_owned_by_others() {
        let (mut m, mut store) = (mem(), MemoryStore::default());
        m.pel.insert(id(2), b"bob".to_vec());
        m.pel.remove(&id(1));
        let out = run(
            "XPROCESS s g CONSUMER alice HINCRBY t c 1 IDS 2 1 2",
            &mut m,
            &mut store,
        );
        assert!(matches!(&out[0], Outcome::Failed(e) if e.as_str().contains("is not pending")));
        assert!(matches!(&out[1], Outcome::Failed(e) if e.kind() == ErrorKind::NotOwner));
        assert_eq!(m.applied, 0);
        assert!(m.acked.is_empty());

        // Once bob has processed it, alice's retry is a harmless duplicate.
        run(
            "XPROCESS s g CONSUMER bob HINCRBY t c 1 IDS 1 2",
            &mut m,
            &mut store,
        );
        let retry = run(
            "XPROCESS s g CONSUMER alice HINCRBY t c 1 IDS 1 2",
            &mut m,
            &mut store,
        );
        assert_eq!(retry, vec![Outcome::Duplicate]);
        assert_eq!(total(&m), 1);
    }

    /// Entries 11..=14 pending for alice: 11 and 12 are one payment (the
    /// producer retried, with another `sent`), 13 reuses the key with
    /// another amount, 14 has no key field.
    fn payments() -> Mem {
        let mut m = Mem::default();
        let rows: [&[(&[u8], &[u8])]; 4] = [
            &[(b"pid", b"p1"), (b"amount", b"5"), (b"sent", b"1")],
            &[(b"pid", b"p1"), (b"amount", b"5"), (b"sent", b"2")],
            &[(b"pid", b"p1"), (b"amount", b"6")],
            &[(b"amount", b"7")],
        ];
        for (n, row) in rows.iter().enumerate() {
            let fields = row.iter().copied().collect();
            m.entries.insert(id(11 + n as u64), fields);
            m.pel.insert(id(11 + n as u64), b"alice".to_vec());
        }
        m
    }

    #[test]
    fn a_retried_payment_applies_once_and_a_changed_one_conflicts() {
        let (mut m, mut store) = (payments(), MemoryStore::default());
        let out = run(
            "XPROCESS s g KEY $pid HINCRBY t c $amount IDS 4 11 12 13 14",
            &mut m,
            &mut store,
        );
        assert_eq!(out[..2], [Outcome::Applied, Outcome::Duplicate]);
        assert_eq!(
            out[2],
            Outcome::Failed(ReplyError::new(
                ErrorKind::Conflict,
                "CONFLICT entry 13-0 has business key 'p1' already applied by entry 11-0 with a different payload"
            ))
        );
        assert_eq!(
            out[3],
            Outcome::Failed(ReplyError::missing_field("14-0", b"pid"))
        );
        assert_eq!(total(&m), 5, "one charge");
        assert_eq!(
            m.acked,
            vec![id(11), id(12)],
            "the retry is acked, the conflict is not"
        );
        assert!(
            store.committed.contains(&id(12)),
            "the retry counts as processed"
        );
        assert_eq!(store.conflicts, 1);
    }

    #[test]
    fn the_fingerprint_covers_what_it_is_told_to() {
        // With FINGERPRINT ENTRY the differing `sent` makes entry 12 a conflict.
        let (mut m, mut store) = (payments(), MemoryStore::default());
        let out = run(
            "XPROCESS s g KEY $pid FINGERPRINT ENTRY HINCRBY t c $amount IDS 2 11 12",
            &mut m,
            &mut store,
        );
        assert!(matches!(&out[1], Outcome::Failed(e) if e.kind() == ErrorKind::Conflict));
        // Fingerprinting only `pid`, entry 13 (another amount) is a retry.
        let (mut m, mut store) = (payments(), MemoryStore::default());
        let out = run(
            "XPROCESS s g KEY $pid FINGERPRINT 1 pid HINCRBY t c $amount IDS 2 11 13",
            &mut m,
            &mut store,
        );
        assert_eq!(out, vec![Outcome::Applied, Outcome::Duplicate]);
    }

    #[test]
    fn an_invalid_second_effect_applies_nothing() {
        let (mut m, mut store) = (mem(), MemoryStore::default());
        let out = run(
            "XPROCESS s g HINCRBY t c 1 HINCRBY t d x IDS 1 1",
            &mut m,
            &mut store,
        );
        assert!(matches!(&out[0], Outcome::Failed(_)));
        assert_eq!(m.applied, 0);
        assert!(store.committed.is_empty());
    }

    #[test]
    fn a_poison_entry_is_dead_lettered_at_the_after_th_delivery() {
        let (mut m, mut store) = (mem(), MemoryStore::default());
        m.pel.insert(id(9), b"alice".to_vec()); // pending, not in the stream
        let call =
            "XPROCESS s g CONSUMER alice DEADLETTER dl AFTER 3 HINCRBY t $cust $amount IDS 3 1 3 9";
        for n in 1..=2 {
            m.deliveries.insert(id(3), n);
            m.deliveries.insert(id(9), n);
            let out = run(call, &mut m, &mut store);
            assert!(matches!(&out[1], Outcome::Failed(_)), "delivery {n}");
            assert!(m.dead.is_empty());
        }
        m.deliveries.insert(id(3), 3);
        m.deliveries.insert(id(9), 4);
        let out = run(call, &mut m, &mut store);
        assert_eq!(
            out,
            vec![
                Outcome::Duplicate,
                Outcome::DeadLettered,
                Outcome::DeadLettered
            ]
        );
        assert_eq!(
            m.dead,
            vec![
                (
                    id(3),
                    "ERR entry 3-0 has no field 'cust'".into(),
                    3,
                    Some(1)
                ),
                (
                    id(9),
                    "ERR entry 9-0 not found in the stream".into(),
                    4,
                    None
                ),
            ]
        );
        assert!(!m.pel.contains_key(&id(3)), "acked");
        assert!(store.committed.contains(&id(3)), "recorded as processed");
        assert_eq!(total(&m), 1, "entry 1 only: 3 was never applied");
        let again = run(call, &mut m, &mut store);
        assert_eq!(again[1], Outcome::Duplicate);
    }

    #[test]
    fn fencing_errors_are_never_dead_lettered() {
        let (mut m, mut store) = (mem(), MemoryStore::default());
        m.pel.insert(id(1), b"bob".to_vec());
        m.deliveries.insert(id(1), 10);
        let out = run(
            "XPROCESS s g CONSUMER alice DEADLETTER dl AFTER 1 HINCRBY t c 1 IDS 1 1",
            &mut m,
            &mut store,
        );
        assert!(matches!(&out[0], Outcome::Failed(e) if e.kind() == ErrorKind::NotOwner));
        assert!(m.dead.is_empty());
    }
}
