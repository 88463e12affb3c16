//! XPROCESS' replies: an outcome per entry, per-entry errors in their slots.

use crate::redis::reply::{array, bytes, error, integer, map, simple};
use crate::run::Done;
use redis_module::Context;
use xprocess_core::process::Outcome;
use xprocess_core::request::Read;

/// With IDS, one outcome per ID; with READ, an `[id, outcome]` pair per
/// entry taken (the client did not know the IDs), or with `REPLY COUNTS`
/// how many had each outcome. An empty READ is an empty array either way.
pub fn done(ctx: &Context, done: &Done, read: Option<Read>) {
    match read {
        Some(read) if read.counts && !done.outcomes.is_empty() => counts(ctx, done),
        _ => outcomes(ctx, done, read.is_some()),
    }
}

fn outcomes(ctx: &Context, done: &Done, read: bool) {
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

/// `applied`, `duplicates`, `dead-lettered`, `failed` (counts), then
/// `errors`: an `[id, error]` pair per failed entry. A map (a flat
/// field/value array in RESP2).
fn counts(ctx: &Context, done: &Done) {
    let count = |f: fn(&Outcome) -> bool| done.outcomes.iter().filter(|o| f(o)).count() as i64;
    let failed: Vec<usize> = (done.outcomes.iter().enumerate())
        .filter(|(_, o)| matches!(o, Outcome::Failed(_)))
        .map(|(n, _)| n)
        .collect();
    map(ctx, 5);
    simple(ctx, c"applied");
    integer(
        ctx,
        count(|o| matches!(o, Outcome::Applied | Outcome::NoEffect)),
    );
    simple(ctx, c"duplicates");
    integer(ctx, count(|o| *o == Outcome::Duplicate));
    simple(ctx, c"dead-lettered");
    integer(ctx, count(|o| *o == Outcome::DeadLettered));
    simple(ctx, c"failed");
    integer(ctx, failed.len() as i64);
    simple(ctx, c"errors");
    array(ctx, failed.len());
    for n in failed {
        array(ctx, 2);
        bytes(ctx, done.taken[n].text().as_bytes());
        if let Outcome::Failed(e) = &done.outcomes[n] {
            error(ctx, e);
        }
    }
}

/// An empty array: READ found nothing to do.
pub fn nothing(ctx: &Context) {
    array(ctx, 0);
}
