//! The standing processors this server knows of, and what each did since
//! the module loaded. Not persisted: the group's definition, with its
//! running state, is the truth (and travels with its key); this list is
//! where the server looks for work, refreshed from the data whenever a
//! definition is written, loaded or restored, and pruned when the data
//! says a processor is gone.

use std::cell::{Cell, RefCell};
use xprocess_core::definition::Definition;

/// A processor: the group of a stream, in a database.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Name {
    pub db: i32,
    pub stream: Vec<u8>,
    pub group: Vec<u8>,
}

/// What a processor did on this server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Entries applied, or recorded with no effect.
    pub processed: u64,
    pub duplicates: u64,
    pub dead_lettered: u64,
    /// Entries that failed (they stay pending and are retried), and batches
    /// that failed whole.
    pub errors: u64,
    /// The last error, and the entry it came from (none for a whole batch).
    pub last_error: Option<(Option<String>, String)>,
}

#[derive(Clone, Debug)]
pub struct Known {
    pub name: Name,
    /// As its definition said when last written or loaded.
    pub running: bool,
    pub counters: Counters,
    /// What one entry of its batches took lately, in nanoseconds (0: not
    /// known yet): how large a batch fits the budget.
    pub entry_ns: u64,
}

thread_local! {
    // Redis runs commands, loading and timers on its main thread only.
    static KNOWN: RefCell<Vec<Known>> = const { RefCell::new(Vec::new()) };
    /// Told when a running processor becomes known (set at load).
    static ON_RUNNING: Cell<Option<fn()>> = const { Cell::new(None) };
}

/// Call `f` whenever a processor known to run is noted (whoever notes it:
/// a command, a replicated change, a value being loaded).
pub fn on_running(f: fn()) {
    ON_RUNNING.set(Some(f));
}

/// Remember a processor (a definition with START settings was written or
/// loaded) and whether it runs; a known one keeps its counters.
pub fn note(name: Name, running: bool) {
    KNOWN.with(|known| {
        let mut known = known.borrow_mut();
        match known.iter_mut().find(|k| k.name == name) {
            Some(k) => k.running = running,
            None => known.push(Known {
                name,
                running,
                counters: Counters::default(),
                entry_ns: 0,
            }),
        }
    });
    if let Some(f) = ON_RUNNING.get().filter(|_| running) {
        f();
    }
}

/// Forget a processor: its definition is gone.
pub fn forget(name: &Name) {
    KNOWN.with(|known| known.borrow_mut().retain(|k| k.name != *name));
}

pub fn all() -> Vec<Known> {
    KNOWN.with(|known| known.borrow().clone())
}

pub fn names() -> Vec<Name> {
    KNOWN.with(|known| known.borrow().iter().map(|k| k.name.clone()).collect())
}

/// Whether any known processor runs.
pub fn any_running() -> bool {
    KNOWN.with(|known| known.borrow().iter().any(|k| k.running))
}

/// Whether a running processor of some database follows `stream`.
pub fn any_running_on(stream: &[u8]) -> bool {
    let on = |k: &Known| k.running && k.name.stream == stream;
    KNOWN.with(|known| known.borrow().iter().any(on))
}

/// Change what is known of a processor.
pub fn update(name: &Name, f: impl FnOnce(&mut Known)) {
    KNOWN.with(|known| {
        if let Some(k) = known.borrow_mut().iter_mut().find(|k| k.name == *name) {
            f(k);
        }
    });
}

/// What one entry of `name`'s batches took lately (0: not known).
pub fn entry_ns(name: &Name) -> u64 {
    KNOWN.with(|known| {
        let known = known.borrow();
        known
            .iter()
            .find(|k| k.name == *name)
            .map_or(0, |k| k.entry_ns)
    })
}

pub fn get(name: &Name) -> Option<Known> {
    KNOWN.with(|known| known.borrow().iter().find(|k| k.name == *name).cloned())
}

/// Follow a definition change of `stream` in `db`: forget the processor
/// of the old definition, remember that of the new one.
pub fn track(db: i32, stream: &[u8], old: Option<&Definition>, new: Option<&Definition>) {
    let name = |d: &Definition| Name {
        db,
        stream: stream.to_vec(),
        group: d.group.clone(),
    };
    if let Some(old) = old.filter(|d| d.processor.is_some()) {
        if new.is_none_or(|new| new.group != old.group || new.processor.is_none()) {
            forget(&name(old));
        }
    }
    if let Some(new) = new {
        if let Some(p) = &new.processor {
            note(name(new), p.running);
        }
    }
}
