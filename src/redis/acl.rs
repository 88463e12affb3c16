//! ACL checks of the calling user.

use redis_module::{raw, AclPermissions, Context, RedisString};
use std::cell::Cell;
use std::os::raw::c_int;

/// The calling user, looked up once: one call may check many keys.
pub enum Caller {
    /// No client (replication, AOF loading): anything goes.
    Anyone,
    /// The user, ours until dropped.
    User(*mut raw::RedisModuleUser),
    /// A client whose user cannot be found: nothing is allowed.
    Unknown,
}

thread_local! {
    static AS_SERVER: Cell<bool> = const { Cell::new(false) };
}

/// Run `f` as the server itself, not as a user: what a standing processor
/// runs (through RedisModule_Call from a timer, where the calling client
/// has no user, and asking for its name would crash Redis 7.0).
pub fn as_server<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            AS_SERVER.set(self.0);
        }
    }
    let _restore = Restore(AS_SERVER.replace(true));
    f()
}

impl Caller {
    pub fn of(ctx: &Context) -> Caller {
        if AS_SERVER.get() {
            return Caller::Anyone;
        }
        // SAFETY: a live context; the name string and the user are ours,
        // the name freed here, the user on drop.
        unsafe {
            let name = raw::RedisModule_GetCurrentUserName.unwrap()(ctx.ctx);
            if name.is_null() {
                return Caller::Anyone;
            }
            let user = raw::RedisModule_GetModuleUserFromUserName.unwrap()(name);
            raw::RedisModule_FreeString.unwrap()(ctx.ctx, name);
            match user.is_null() {
                true => Caller::Unknown,
                false => Caller::User(user),
            }
        }
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
        let key = RedisString::create_from_slice(ctx.ctx, key);
        // SAFETY: a user we hold and a key string that lives across the call.
        self.allows(|user| unsafe {
            raw::RedisModule_ACLCheckKeyPermissions.unwrap()(user, key.inner, perms.bits() as c_int)
        })
    }

    /// Whether the caller may publish to `channel`.
    pub fn may_publish(&self, ctx: &Context, channel: &[u8]) -> bool {
        let channel = RedisString::create_from_slice(ctx.ctx, channel);
        let flags = raw::REDISMODULE_CMD_CHANNEL_PUBLISH as c_int;
        // SAFETY: a user we hold and a channel string that lives across the call.
        self.allows(|user| unsafe {
            raw::RedisModule_ACLCheckChannelPermissions.unwrap()(user, channel.inner, flags)
        })
    }

    /// What `check` says of the user, as anyone or nobody would be answered.
    fn allows(&self, check: impl FnOnce(*mut raw::RedisModuleUser) -> c_int) -> bool {
        match self {
            Caller::Anyone => true,
            Caller::Unknown => false,
            Caller::User(user) => check(*user) == raw::REDISMODULE_OK as c_int,
        }
    }
}

impl Drop for Caller {
    fn drop(&mut self) {
        if let Caller::User(user) = self {
            // SAFETY: looked up in `of`, freed once.
            unsafe { raw::RedisModule_FreeModuleUser.unwrap()(*user) };
        }
    }
}
