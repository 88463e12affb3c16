//! XPROCESS.DEFINE: store a group's options and effects, so that calls
//! (and a standing processor) give only CONSUMER and IDS or READ.

use crate::commands::xprocess::{
    BUSINESS_KEY, DEAD_LETTER, DEDUPE, DELETE, EFFECT, KEY_SPECS, SPEC_STREAM,
};
use crate::redis::command::{entry_point, Arg, ArgKind, Command, Docs};
use crate::redis::reply;
use crate::run::{check_own_keys, check_write_permission};
use crate::store::definition;
use redis_module::Context;
use xprocess_core::definition::Definition;
use xprocess_core::errors::ReplyError;
use xprocess_core::key_name::derived_dedupe_key;
use xprocess_core::parse;

entry_point!(entry, define);

pub const COMMAND: Command = Command {
    name: c"xprocess.define",
    entry,
    flags: c"write deny-oom getkeys-api",
    acl: c"write stream",
    // `XPROCESS.DEFINE key group DEL key`: 5 at least.
    arity: -5,
    docs: Docs {
        summary: c"Stores a group's options and effects: XPROCESS key group [CONSUMER consumer] IDS|READ then uses them, and XPROCESS.START runs them",
        complexity: c"O(N) for N arguments",
        since: c"0.3.0",
        key_specs: &KEY_SPECS,
        args: &[
            Arg::new(c"key", ArgKind::Key).key(SPEC_STREAM),
            Arg::new(c"group", ArgKind::String),
            DEDUPE,
            BUSINESS_KEY,
            DELETE,
            DEAD_LETTER,
            EFFECT,
        ],
    },
};

/// XPROCESS.DEFINE key group [DEDUPE dedupe-key] [KEY template ...]
///     [DEADLETTER dead-letter-key AFTER deliveries] [DELETE [ACKED]]
///     effect [effect ...]
///
/// Checked as a call would be, then kept at the group's derived dedupe key;
/// a redefinition replaces the options and effects and keeps the
/// processor's settings and state.
pub fn define(ctx: &Context, argv: &[&[u8]]) -> Result<(), ReplyError> {
    if ctx.is_keys_position_request() {
        let positions = parse::parse_definition(argv).map_or(vec![1], |req| req.key_positions);
        for pos in positions {
            ctx.key_at_pos(pos as i32);
        }
        return Ok(());
    }
    let req = parse::parse_definition(argv)?;
    let derived = derived_dedupe_key(req.stream, req.group)?;
    check_write_permission(ctx, &derived)?;
    check_own_keys(ctx, &req, req.dedupe.unwrap_or(&derived))?;
    let previous = definition::load(ctx, req.stream, req.group)?;
    let defined = Definition {
        group: req.group.to_vec(),
        args: argv[3..].iter().map(|a| a.to_vec()).collect(),
        processor: previous.and_then(|d| d.processor),
    };
    definition::save(ctx, req.stream, req.group, Some(defined))?;
    reply::ok(ctx);
    Ok(())
}
