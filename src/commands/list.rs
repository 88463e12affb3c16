//! XPROCESS.LIST: the standing processors of this server.

use crate::processor::status;
use crate::redis::command::{entry_point, Command, Docs};
use crate::redis::key::{select_db, selected_db};
use crate::redis::reply::{self, Value};
use crate::stats::processors::{self, Name};
use crate::store::definition;
use redis_module::Context;
use xprocess_core::definition::Definition;
use xprocess_core::errors::ReplyError;

entry_point!(entry, list);

pub const COMMAND: Command = Command {
    name: c"xprocess.list",
    entry,
    flags: c"readonly",
    acl: c"read stream",
    arity: 1,
    docs: Docs {
        summary: c"Lists the standing processors of this server: key, group, consumer, state, lag, what each processed, its errors and last error",
        complexity: c"O(N) for N processors",
        since: c"0.3.0",
        key_specs: &[],
        args: &[],
    },
};

/// XPROCESS.LIST
///
/// One map per processor (a flat field/value array in RESP2), in the
/// order they became known.
pub fn list(ctx: &Context, _argv: &[&[u8]]) -> Result<(), ReplyError> {
    let selected = selected_db(ctx);
    let mut found = Vec::new();
    for known in processors::all() {
        let name = known.name;
        let defined = match select_db(ctx, name.db) {
            true => definition::load(ctx, &name.stream, &name.group)
                .ok()
                .flatten(),
            false => None,
        };
        match defined.filter(|d| d.processor.is_some()) {
            Some(d) => found.push(fields(ctx, &name, &d)),
            None => processors::forget(&name),
        }
    }
    select_db(ctx, selected);
    reply::array(ctx, found.len());
    for f in &found {
        reply::fields(ctx, f);
    }
    Ok(())
}

fn fields(ctx: &Context, name: &Name, d: &Definition) -> Vec<(&'static str, Value)> {
    let consumer = d.processor.as_ref().map(|p| p.consumer.clone());
    let mut fields = vec![
        ("key", Value::Text(name.stream.clone())),
        ("group", Value::Text(name.group.clone())),
        ("db", Value::Int(i64::from(name.db))),
        ("consumer", consumer.map_or(Value::Nil, Value::Text)),
    ];
    fields.extend(status::fields(ctx, name.db, &name.stream, d));
    fields
}
