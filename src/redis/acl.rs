//! ACL checks of the calling user.

use redis_module::{raw, AclPermissions, Context, RedisString};
use std::ptr;

/// The calling user, looked up once: one call may check many keys. `None`
/// without a client (replication, AOF loading), where anything goes.
pub struct Caller(Option<RedisString>);

impl Caller {
    pub fn of(ctx: &Context) -> Caller {
        // SAFETY: a live context; the name is ours (freed by RedisString).
        let user = unsafe { raw::RedisModule_GetCurrentUserName.unwrap()(ctx.ctx) };
        Caller(
            (!user.is_null()).then(|| RedisString::from_redis_module_string(ptr::null_mut(), user)),
        )
    }

    /// Whether the caller may write `key` (read it, add to it, change it).
    pub fn may_write(&self, ctx: &Context, key: &[u8]) -> bool {
        let perms = AclPermissions::ACCESS | AclPermissions::INSERT | AclPermissions::UPDATE;
        self.may(ctx, key, perms)
    }

    /// Whether the caller may read `key`.
    pub fn may_read(&self, ctx: &Context, key: &[u8]) -> bool {
        self.may(ctx, key, AclPermissions::ACCESS)
    }

    fn may(&self, ctx: &Context, key: &[u8], perms: AclPermissions) -> bool {
        let Some(user) = &self.0 else {
            return true;
        };
        let key_name = RedisString::create_from_slice(ptr::null_mut(), key);
        ctx.acl_check_key_permission(user, &key_name, &perms)
            .is_ok()
    }
}
