//! Standing processors: the server runs a group's definition by itself
//! (XPROCESS.START), exactly as `XPROCESS key group CONSUMER consumer READ
//! COUNT n [CLAIM ms]` by a worker would, batch after batch, each batch
//! one atomic unit.
//!
//! When they run: on the turn of the event loop after an XADD to a stream
//! with a running processor (a keyspace-event subscription), then on the
//! next turns while a backlog is left, and every `HEARTBEAT_MS` for the
//! rest: entries idle for CLAIM, a replica just promoted. Only on a primary
//! that is not loading. The subscription and the heartbeat start when the
//! first running processor becomes known (started, replicated or loaded),
//! never at load, and the heartbeat ends with the last one: a server
//! without processors pays nothing for them, not even a turn of its event
//! loop. Each turn they hold the server for about
//! `xprocess.processor-budget-us` at most: batches are sized from what an
//! entry took lately.

mod batch;
pub mod status;

use crate::config;
use crate::redis::call::Redis;
use crate::redis::events;
use crate::redis::key::select_db;
use crate::redis::timer;
use crate::stats::{self, processors};
use crate::store::definition;
use batch::Batch;
use processors::Name;
use redis_module::{Context, ContextFlags};
use std::cell::Cell;
use std::time::{Duration, Instant};
use xprocess_core::definition::{Definition, Processor};
use xprocess_core::errors::{ErrorKind, ReplyError};

thread_local! {
    static TICK_PENDING: Cell<bool> = const { Cell::new(false) };
    static HEARTBEAT_PENDING: Cell<bool> = const { Cell::new(false) };
    /// Whether stream events are followed (from the first running processor on).
    static FOLLOWING: Cell<bool> = const { Cell::new(false) };
    /// Where the next turn starts in the list, so a busy processor does not
    /// starve the ones after it.
    static ROUND: Cell<usize> = const { Cell::new(0) };
}

/// The first batch of a processor whose cost is not known yet, and the
/// smallest batch a turn starts after its first.
const SMALLEST_BATCH: u64 = 10;

/// How often running processors look for work no XADD announced.
const HEARTBEAT_MS: u64 = 100;

/// At load: start the heartbeat whenever a running processor becomes known.
pub fn init(ctx: &Context) {
    timer::init(ctx);
    processors::on_running(|| timer::after_detached(0, &HEARTBEAT_PENDING, heartbeat));
}

/// Run the processors on the next turn of the event loop.
pub fn wake(ctx: &Context) {
    timer::after(ctx, 0, &TICK_PENDING, tick);
}

/// Every `HEARTBEAT_MS` while a processor runs (on replicas too, so that a
/// promoted one starts at once).
fn heartbeat(ctx: &Context) {
    if !FOLLOWING.replace(true) {
        events::on_stream_event(ctx, stream_event);
    }
    // A busy processor's next turn is due anyway: one turn, one budget.
    if !TICK_PENDING.get() {
        tick(ctx);
    }
    if processors::any_running() {
        timer::after(ctx, HEARTBEAT_MS, &HEARTBEAT_PENDING, heartbeat);
    }
}

fn stream_event(ctx: &Context, event: &[u8], key: &[u8]) {
    if event == b"xadd" && processors::any_running_on(key) {
        timer::after(ctx, 0, &TICK_PENDING, tick);
    }
}

fn may_run(ctx: &Context) -> bool {
    let flags = ctx.get_flags();
    flags.contains(ContextFlags::MASTER) && !flags.contains(ContextFlags::LOADING)
}

/// One turn: the processors in turn, within the budget.
fn tick(ctx: &Context) {
    let names = processors::names();
    if names.is_empty() || !may_run(ctx) {
        return;
    }
    let until = Instant::now() + config::processor_budget();
    let first = ROUND.get() % names.len();
    ROUND.set(first + 1);
    let mut more = false;
    for name in names.iter().cycle().skip(first).take(names.len()) {
        if Instant::now() >= until {
            more = true;
            break;
        }
        more |= step(ctx, name, until);
    }
    if more {
        timer::next_turn(&TICK_PENDING, tick);
    }
}

/// Run `name`'s batches until it is caught up or the time is `until`.
/// Returns whether it has more to do.
fn step(ctx: &Context, name: &Name, until: Instant) -> bool {
    let definition = match select_db(ctx, name.db) {
        true => definition::load(ctx, &name.stream, &name.group)
            .ok()
            .flatten(),
        false => None,
    };
    let Some(definition) = definition.filter(|d| d.processor.is_some()) else {
        processors::forget(name); // the data says it is gone
        return false;
    };
    let Some(processor) = definition.processor.as_ref().filter(|p| p.running) else {
        return false;
    };
    let redis = Redis::new(ctx);
    let mut first = true;
    loop {
        let count = batch_size(name, processor, until);
        // A batch's own cost (the call, the group's read and ack) is paid
        // per batch: when the time left fits only a few entries, the next
        // turn takes them.
        if count < SMALLEST_BATCH.min(processor.count) && !first {
            return true;
        }
        first = false;
        let count = count.max(1);
        let started = Instant::now();
        match batch::run(&redis, &name.stream, &name.group, processor, count) {
            Err(e) => {
                failed(ctx, name, &definition, e);
                return false;
            }
            Ok(done) => {
                ran(name, &done, started.elapsed());
                if done.taken < count || done.failed == done.taken {
                    return false;
                }
            }
        }
        if Instant::now() >= until {
            return true;
        }
    }
}

/// As many entries as fit the time left, by what one took lately (up to
/// COUNT; 0 when none fits).
fn batch_size(name: &Name, processor: &Processor, until: Instant) -> u64 {
    let entry_ns = processors::entry_ns(name);
    let left = until.saturating_duration_since(Instant::now()).as_nanos() as u64;
    let fits = match entry_ns {
        0 => SMALLEST_BATCH,
        ns => left / ns,
    };
    fits.min(processor.count)
}

fn ran(name: &Name, done: &Batch, took: Duration) {
    processors::update(name, |k| {
        let c = &mut k.counters;
        c.processed += done.processed;
        c.duplicates += done.duplicates;
        c.dead_lettered += done.dead_lettered;
        c.errors += done.failed;
        if let Some((id, e)) = &done.last_error {
            c.last_error = Some((Some(id.clone()), e.clone()));
        }
        if let Some(ns) = (took.as_nanos() as u64).checked_div(done.taken) {
            // Follow changes quickly, without jumping at one slow batch.
            k.entry_ns = match k.entry_ns {
                0 => ns,
                old => (old * 3 + ns) / 4,
            };
        }
    });
    stats::update(|s| {
        s.processor_batches += 1;
        s.processor_entries += done.taken;
        s.processor_errors += done.failed;
    });
}

/// A batch failed whole. When its group (or stream) is gone, the processor
/// stops, and says why; other errors (a slot moving away, a key of the
/// wrong type) are retried.
fn failed(ctx: &Context, name: &Name, definition: &Definition, e: ReplyError) {
    processors::update(name, |k| {
        k.counters.errors += 1;
        k.counters.last_error = Some((None, e.as_str().to_string()));
    });
    stats::update(|s| s.processor_errors += 1);
    if e.kind() != ErrorKind::NoGroup {
        return;
    }
    let mut stopped = definition.clone();
    if let Some(p) = stopped.processor.as_mut() {
        p.running = false;
    }
    if let Err(e) = definition::save(ctx, &name.stream, &name.group, Some(stopped)) {
        ctx.log_warning(&format!(
            "xprocess: could not stop a processor: {}",
            e.as_str()
        ));
    }
    stats::update(|s| s.processor_stops += 1);
}
