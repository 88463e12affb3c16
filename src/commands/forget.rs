//! XPROCESS.FORGET: make processed entries processable again.

use crate::redis::call::Redis;
use crate::redis::command::{entry_point, key, Arg, ArgKind, Begin, Command, Docs, KeySpec};
use crate::redis::replicate::replicate;
use crate::redis::reply;
use crate::store::{DedupeKey, Holds};
use crate::stream::reader;
use redis_module::{CallReply, Context};
use xprocess_core::errors::{self, ReplyError};
use xprocess_core::id::StreamId;
use xprocess_core::index::patch;
use xprocess_core::index::ranges::{Index, Touched};
use xprocess_core::parse::stream_ids;
use xprocess_core::request::StoreKind;

entry_point!(entry, forget);

pub const COMMAND: Command = Command {
    name: c"xprocess.forget",
    entry,
    flags: c"write deny-oom",
    acl: c"write",
    arity: -3,
    docs: Docs {
        summary: c"Makes processed entry IDs processable again; replies how many were processed",
        complexity: c"O(N (log R + R)) for N IDs and R ranges of an index",
        since: c"0.2.0",
        key_specs: &[KeySpec {
            notes: c"the dedupe key",
            flags: key::RW | key::DELETE,
            begin: Begin::Index(1),
            unknown: false,
        }],
        args: &[
            Arg::new(c"dedupe-key", ArgKind::Key).key(0),
            Arg::new(c"id", ArgKind::String).multiple(),
        ],
    },
};

/// XPROCESS.FORGET dedupe-key id [id ...]
///
/// Make the IDs processable again; replies how many of them were processed.
pub fn forget(ctx: &Context, argv: &[&[u8]]) -> Result<(), ReplyError> {
    let [_, key, ids @ ..] = argv else {
        return Err(errors::SYNTAX.into());
    };
    let ids = stream_ids(ids)?;
    let mut open = DedupeKey::open(ctx, key, true);
    let forgotten = match open.holds() {
        Holds::Missing => 0,
        Holds::Store(StoreKind::Index) => {
            let index = open.index().ok_or(errors::INTERNAL)?;
            forget_in_index(ctx, key, index, &ids)
        }
        Holds::Store(StoreKind::Set) => {
            drop(open);
            match Redis::new(ctx).with_ids(true, "SREM", &[key], &ids)? {
                CallReply::I64(n) => n.to_i64(),
                _ => return Err(errors::INTERNAL.into()),
            }
        }
        Holds::Other => return Err(errors::WRONGTYPE.into()),
    };
    reply::integer(ctx, forgotten);
    Ok(())
}

fn forget_in_index(ctx: &Context, key: &[u8], index: &mut Index, ids: &[StreamId]) -> i64 {
    let mut touched = Touched::default();
    let mut forgotten = 0;
    for &id in ids {
        let in_stream = reader::contains(ctx, &index.stream, id);
        if index.forget(id, in_stream, &mut touched) {
            forgotten += 1;
        }
    }
    index.shrink_if_sparse();
    if let Some(p) = index.patch(&touched) {
        let change = patch::Change {
            ranges: Some(p),
            ..patch::Change::default()
        };
        replicate(ctx, key, &index.stream, &change);
    }
    forgotten
}
