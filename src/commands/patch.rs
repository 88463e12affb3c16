//! XPROCESS.PATCH: an index change replayed on a replica or from the AOF.

use crate::redis::command::{entry_point, key, Arg, ArgKind, Begin, Command, Docs, KeySpec};
use crate::redis::key::selected_db;
use crate::redis::reply;
use crate::stats::processors;
use crate::store::{DedupeKey, Holds};
use redis_module::{Context, ContextFlags};
use xprocess_core::errors::{self, ErrorKind, Fixed, ReplyError};
use xprocess_core::index::patch;
use xprocess_core::request::StoreKind;

entry_point!(entry, patch);

pub const COMMAND: Command = Command {
    name: c"xprocess.patch",
    entry,
    flags: c"write deny-oom",
    acl: c"write",
    arity: 4,
    docs: Docs {
        summary: c"Internal: replays a change of a dedupe index (sent by primaries and written to the AOF; refused from clients)",
        complexity: c"O(R) for R ranges",
        since: c"0.2.0",
        key_specs: &[KeySpec {
            notes: c"the dedupe index",
            flags: key::RW | key::UPDATE,
            begin: Begin::Index(1),
            unknown: false,
        }],
        args: &[Arg::new(c"dedupe-key", ArgKind::Key).key(0)],
    },
};

pub const PATCH_INTERNAL: Fixed = Fixed::new(
    ErrorKind::Err,
    "ERR XPROCESS.PATCH is internal: only a primary's replication stream and AOF loading may call it",
);

/// XPROCESS.PATCH key stream recorded lost lo hi [start end gap ...]
///
/// Internal (see `patch`): refused unless it comes from the primary or the
/// AOF. Replicated as it is, so a replica's own AOF and replicas get it too.
pub fn patch(ctx: &Context, argv: &[&[u8]]) -> Result<(), ReplyError> {
    let allowed = ContextFlags::REPLICATED | ContextFlags::LOADING;
    if !ctx.get_flags().intersects(allowed) {
        return Err(PATCH_INTERNAL.into());
    }
    let parsed = patch::parse(&argv[1..]).map_err(ReplyError::err)?;
    let mut open = DedupeKey::open(ctx, parsed.key, true);
    match open.holds() {
        Holds::Missing => {
            if !open.create_index(parsed.stream) {
                return Err(errors::INTERNAL.into());
            }
        }
        Holds::Store(StoreKind::Index) => {}
        _ => return Err(errors::WRONGTYPE.into()),
    }
    let index = open.index().ok_or(errors::INTERNAL)?;
    if index.stream != parsed.stream {
        return Err(ReplyError::index_of_other_stream(
            parsed.key,
            &index.stream,
            parsed.stream,
        ));
    }
    // Only a definition change needs the old one (to follow its processor).
    let old = parsed
        .change
        .definition
        .as_ref()
        .and_then(|_| index.definition.clone());
    if let Err(why) = patch::apply(index, &parsed.change) {
        ctx.log_warning(&format!("xprocess: XPROCESS.PATCH refused: {why}"));
        return Err(ReplyError::err(format!(
            "ERR XPROCESS.PATCH refused: {why}"
        )));
    }
    if parsed.change.definition.is_some() {
        let new = index.definition.as_deref();
        processors::track(selected_db(ctx), parsed.stream, old.as_deref(), new);
    }
    ctx.replicate_verbatim();
    reply::ok(ctx);
    Ok(())
}
