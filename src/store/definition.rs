//! A group's definition, kept in the index at the group's derived dedupe
//! key: in the stream's slot, so it persists, replicates and moves with the
//! stream, and a call finds it from `key group` alone.

use super::key::{DedupeKey, Holds};
use crate::redis::key::selected_db;
use crate::redis::replicate::replicate;
use crate::stats::processors;
use redis_module::Context;
use xprocess_core::definition::Definition;
use xprocess_core::errors::{self, ReplyError};
use xprocess_core::index::patch::Change;
use xprocess_core::key_name::derived_dedupe_key;
use xprocess_core::request::StoreKind;

/// The definition of `group` of `stream`, if it has one.
pub fn load(ctx: &Context, stream: &[u8], group: &[u8]) -> Result<Option<Definition>, ReplyError> {
    let name = derived_dedupe_key(stream, group)?;
    let mut key = DedupeKey::open(ctx, &name, false);
    Ok(in_key(&mut key, stream, group).cloned())
}

/// Whether `group` of `stream` has a definition (and a derived dedupe key).
pub fn defined(ctx: &Context, stream: &[u8], group: &[u8]) -> bool {
    let Ok(name) = derived_dedupe_key(stream, group) else {
        return false;
    };
    in_key(&mut DedupeKey::open(ctx, &name, false), stream, group).is_some()
}

/// The definition of `group` of `stream` in `key`, the group's derived
/// dedupe key, open.
pub fn in_key<'k>(key: &'k mut DedupeKey, stream: &[u8], group: &[u8]) -> Option<&'k Definition> {
    let index = key.index().filter(|index| index.stream == stream)?;
    index.definition.as_deref().filter(|d| d.group == group)
}

/// Replace the definition of `group` of `stream` (`None`: remove it), and
/// replicate the change. Returns whether there was one before.
pub fn save(
    ctx: &Context,
    stream: &[u8],
    group: &[u8],
    definition: Option<Definition>,
) -> Result<bool, ReplyError> {
    let name = derived_dedupe_key(stream, group)?;
    let mut key = DedupeKey::open(ctx, &name, false);
    let had = match key.holds() {
        Holds::Missing => false,
        Holds::Store(StoreKind::Index) => {
            let index = key.index().ok_or(errors::INTERNAL)?;
            if index.stream != stream {
                return Err(ReplyError::index_of_other_stream(
                    &name,
                    &index.stream,
                    stream,
                ));
            }
            index.definition.is_some()
        }
        _ => return Err(ReplyError::definition_key_type(&name)),
    };
    if !had && definition.is_none() {
        return Ok(false);
    }
    key.reopen_for_writing(ctx);
    if key.holds() == Holds::Missing && !key.create_index(stream) {
        return Err(errors::INTERNAL.into());
    }
    let index = key.index().ok_or(errors::INTERNAL)?;
    let old = index.definition.as_deref();
    processors::track(selected_db(ctx), stream, old, definition.as_ref());
    index.definition = definition.map(Box::new);
    let change = Change {
        definition: Some(index.definition.as_deref().cloned()),
        ..Change::default()
    };
    replicate(ctx, &name, stream, &change);
    Ok(had)
}
