//! Every change of an index reaches replicas and the AOF as one
//! `XPROCESS.PATCH key stream payload` (see `xprocess_core::index::patch`),
//! inside the MULTI/EXEC of the call that made it.

use redis_module::{raw, Context};
use std::cell::RefCell;
use xprocess_core::index::patch::{write_payload, Change};

thread_local! {
    /// The payload buffer, reused: replicating a call allocates nothing here.
    static PAYLOAD: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Replicate `XPROCESS.PATCH key stream payload` (into the current call's
/// MULTI/EXEC). The buffers go to Redis as they are (`b` format): no
/// intermediate module strings.
pub fn replicate(ctx: &Context, key: &[u8], stream: &[u8], change: &Change) {
    PAYLOAD.with_borrow_mut(|payload| {
        payload.clear();
        write_payload(change, payload);
        // SAFETY: three (pointer, length) pairs for "bbb"; Redis copies them.
        unsafe {
            raw::RedisModule_Replicate.unwrap()(
                ctx.ctx,
                c"XPROCESS.PATCH".as_ptr(),
                c"bbb".as_ptr(),
                key.as_ptr(),
                key.len(),
                stream.as_ptr(),
                stream.len(),
                payload.as_ptr(),
                payload.len(),
            );
        }
    });
}
