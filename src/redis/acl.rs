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

    /// Whether the caller may publish to `channel`.
    pub fn may_publish(&self, ctx: &Context, channel: &[u8]) -> bool {
        let Some(name) = &self.0 else {
            return true;
        };
        let channel = RedisString::create_from_slice(ctx.ctx, channel);
        // SAFETY: the user looked up by name is ours until freed here; a
        // user deleted since the call began is refused.
        unsafe {
            let user = raw::RedisModule_GetModuleUserFromUserName.unwrap()(name.inner);
            if user.is_null() {
                return false;
            }
            let flags = raw::REDISMODULE_CMD_CHANNEL_PUBLISH as i32;
            let status =
                raw::RedisModule_ACLCheckChannelPermissions.unwrap()(user, channel.inner, flags);
            raw::RedisModule_FreeModuleUser.unwrap()(user);
            status == raw::REDISMODULE_OK as i32
        }
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
