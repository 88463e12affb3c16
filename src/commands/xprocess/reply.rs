//! XPROCESS' replies: an outcome per entry, per-entry errors in their slots.

use crate::redis::reply::{array, bytes, error, integer};
use crate::run::Done;
use redis_module::Context;
use xprocess_core::process::Outcome;

/// With IDS, one outcome per ID; with READ, an `[id, outcome]` pair per
/// entry taken (the client did not know the IDs).
pub fn done(ctx: &Context, done: &Done, read: bool) {
    let outcomes = &done.outcomes;
    array(ctx, outcomes.len());
    for (n, outcome) in outcomes.iter().enumerate() {
        if read {
            array(ctx, 2);
            bytes(ctx, done.taken[n].text().as_bytes());
        }
        match outcome {
            Outcome::Applied | Outcome::NoEffect => integer(ctx, 1),
            Outcome::Duplicate => integer(ctx, 0),
            Outcome::DeadLettered => integer(ctx, 2),
            Outcome::Failed(e) => error(ctx, e),
        }
    }
}

/// An empty array: READ found nothing to do.
pub fn nothing(ctx: &Context) {
    array(ctx, 0);
}
