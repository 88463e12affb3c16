//! ACL checks of the calling user.

use redis_module::{raw, AclPermissions, Context, RedisString};
use std::ptr;

/// Whether the calling user may write `key` (read it, add to it, change
/// it). Without a client (replication, AOF loading) anything goes.
pub fn may_write(ctx: &Context, key: &[u8]) -> bool {
    may(
        ctx,
        key,
        AclPermissions::ACCESS | AclPermissions::INSERT | AclPermissions::UPDATE,
    )
}

/// Whether the calling user may read `key`.
pub fn may_read(ctx: &Context, key: &[u8]) -> bool {
    may(ctx, key, AclPermissions::ACCESS)
}

fn may(ctx: &Context, key: &[u8], perms: AclPermissions) -> bool {
    // SAFETY: a live context; the name is ours (freed by RedisString).
    let user = unsafe { raw::RedisModule_GetCurrentUserName.unwrap()(ctx.ctx) };
    if user.is_null() {
        return true;
    }
    let user = RedisString::from_redis_module_string(ptr::null_mut(), user);
    let key_name = RedisString::create_from_slice(ptr::null_mut(), key);
    ctx.acl_check_key_permission(&user, &key_name, &perms)
        .is_ok()
}
