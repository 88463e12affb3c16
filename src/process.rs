//! The exactly-once step, for each ID of a call, in order:
//! duplicate? -> owned by CONSUMER? -> read entry -> plan effects -> apply
//! -> record in the dedupe store; then one commit of the records and one
//! XACK for every applied or duplicate ID.
//!
//! Written against [`Backend`] and [`DedupeStore`] so the logic is tested in
//! memory; `execute` supplies the Redis implementations.

use crate::dedupe::DedupeStore;
use crate::errors::ReplyError;
use crate::parse::{Request, StreamId};
use crate::plan::{plan_entry, KeyKind, Op, State};
use crate::template::Entry;

/// An entry's field/value pairs, owned.
pub type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// What the command needs from the server, beyond the planning view.
pub trait Backend: State {
    /// The consumer that entry `id` is pending for, `None` if not pending.
    fn pending_owner(&mut self, id: StreamId) -> Result<Option<Vec<u8>>, ReplyError>;
    /// The field/value pairs of entry `id`, `None` if it is not in the stream.
    fn read_entry(&mut self, id: StreamId) -> Option<Fields>;
    /// Perform one planned write.
    fn apply(&mut self, op: &Op) -> Result<(), ReplyError>;
    /// Acknowledge `ids` in the group.
    fn ack(&mut self, ids: &[StreamId]) -> Result<(), ReplyError>;
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
    Duplicate,
    Failed(ReplyError),
}

/// Run the whole call. Whole-call checks are done before; nothing here fails
/// the call, so no entry is ever left half-done by an early return.
pub fn process<B: Backend, D: DedupeStore>(
    req: &Request,
    backend: &mut B,
    store: &mut D,
    reserved: &[(&[u8], KeyKind)],
) -> Vec<Outcome> {
    // A bulk dedupe lookup is only safe when no effect writes the dedupe set.
    let writes_dedupe = req
        .effects
        .iter()
        .any(|e| reserved.iter().any(|(key, _)| *key == e.key()));
    if !writes_dedupe {
        store.prefetch(&req.ids);
    }
    let mut acks = Vec::with_capacity(req.ids.len());
    let outcomes = req
        .ids
        .iter()
        .enumerate()
        .map(|(n, &id)| {
            backend.entries_after(req.ids.len() - n - 1);
            let outcome = process_one(req, id, backend, store, reserved);
            if !matches!(outcome, Outcome::Failed(_)) {
                acks.push(id);
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
    outcomes
}

fn process_one<B: Backend, D: DedupeStore>(
    req: &Request,
    id: StreamId,
    backend: &mut B,
    store: &mut D,
    reserved: &[(&[u8], KeyKind)],
) -> Outcome {
    match try_process_one(req, id, backend, store, reserved) {
        Ok(outcome) => outcome,
        Err(e) => Outcome::Failed(e),
    }
}

fn try_process_one<B: Backend, D: DedupeStore>(
    req: &Request,
    id: StreamId,
    backend: &mut B,
    store: &mut D,
    reserved: &[(&[u8], KeyKind)],
) -> Result<Outcome, ReplyError> {
    if store.contains(id)? {
        return Ok(Outcome::Duplicate);
    }
    let text = id.text();
    let id_text = text.as_str();
    if let Some(consumer) = req.consumer {
        let owner = backend.pending_owner(id)?;
        if owner.as_deref() != Some(consumer) {
            return Err(ReplyError::not_owner(id_text, consumer, owner.as_deref()));
        }
    }
    let owned = backend
        .read_entry(id)
        .ok_or_else(|| ReplyError::entry_not_found(id_text))?;
    let fields: Vec<(&[u8], &[u8])> = owned
        .iter()
        .map(|(f, v)| (f.as_slice(), v.as_slice()))
        .collect();
    let entry = Entry {
        id: id_text,
        fields: &fields,
    };
    let ops = plan_entry(&req.effects, &entry, backend, reserved)?;
    for (n, op) in ops.iter().enumerate() {
        if let Err(e) = backend.apply(op) {
            // Validation should make this unreachable: say so loudly.
            backend.warn(&format!(
                "entry {id_text}: effect {} failed after validation, {n} applied: {e}",
                n + 1
            ));
            return Err(e);
        }
    }
    store.insert(id);
    Ok(Outcome::Applied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedupe::MemoryStore;
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
        fn pending_owner(&mut self, id: StreamId) -> Result<Option<Vec<u8>>, ReplyError> {
            Ok(self.pel.get(&id).cloned())
        }
        fn read_entry(&mut self, id: StreamId) -> Option<Fields> {
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
            let mut fields = vec![(b"amount".to_vec(), n.to_string().into_bytes())];
            if n < 3 {
                fields.push((b"cust".to_vec(), b"c".to_vec()));
            }
            m.entries.insert(id(n), fields);
            m.pel.insert(id(n), b"alice".to_vec());
        }
        m
    }

    fn run(cmd: &str, m: &mut Mem, store: &mut MemoryStore) -> Vec<Outcome> {
        let argv: Vec<&[u8]> = cmd.split(' ').map(str::as_bytes).collect();
        let req = parse(&argv).unwrap();
        process(&req, m, store, &[])
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
            Outcome::Failed(ReplyError::new("ERR entry 3-0 has no field 'cust'"))
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
        assert!(matches!(&out[1], Outcome::Failed(e) if e.as_str().starts_with("NOTOWNER")));
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
}
