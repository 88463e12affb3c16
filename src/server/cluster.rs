//! Redis Cluster: the derived dedupe key during slot migration.
//!
//! Redis routes XPROCESS by the keys it reports, and the derived dedupe key
//! is not among them (it is not in argv). While its slot migrates, MIGRATE
//! moves keys one at a time, so the stream can be on one node and its dedupe
//! set on the other; a node must then not take the missing set for an empty
//! one, or it would apply entries again. Such a call gets TRYAGAIN, as Redis
//! answers a multi-key command whose keys are split by a migration.

use crate::redis::call::Redis;
use crate::redis::key::{Key, KeyType};
use redis_module::{CallReply, Context, ContextFlags};
use xprocess_core::errors::{self, ReplyError};

/// Whether this server runs in a cluster.
pub fn in_cluster(ctx: &Context) -> bool {
    ctx.get_flags().contains(ContextFlags::CLUSTER)
}

/// The cluster slot of `key` (CRC16 of its hash tag, or of the whole key).
pub fn key_slot(key: &[u8]) -> u16 {
    let hashed = xprocess_core::key_name::hash_tag(key).unwrap_or(key);
    crc16(hashed) % 16384
}

/// CRC16-CCITT (XModem), the checksum Redis Cluster uses.
fn crc16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |mut crc, &b| {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
        crc
    })
}

/// Keys a call uses that Redis did not route by (a definition's keys are
/// not in the call's argv): while the stream's slot migrates, a missing one
/// may already be on the other node, so the call gets TRYAGAIN, as a
/// multi-key command with some keys missing does.
pub fn check_unrouted_keys<'k>(
    ctx: &Context,
    stream: &[u8],
    keys: impl IntoIterator<Item = &'k [u8]>,
) -> Result<(), ReplyError> {
    if !in_cluster(ctx) {
        return Ok(());
    }
    let missing = |key: &[u8]| Key::open(ctx, key, false).key_type() == KeyType::Empty;
    if keys.into_iter().any(missing) && slot_in_migration(&Redis::new(ctx), key_slot(stream)) {
        return Err(errors::TRYAGAIN_UNROUTED.into());
    }
    Ok(())
}

/// Whether this node is importing or migrating `slot` (CLUSTER NODES marks
/// them `[slot-<-node]` and `[slot->-node]` on its own line).
pub fn slot_in_migration(redis: &Redis, slot: u16) -> bool {
    let Ok(CallReply::String(nodes)) = redis.read("CLUSTER", &[b"NODES"]) else {
        return false;
    };
    let nodes = String::from_utf8_lossy(nodes.as_bytes()).into_owned();
    let Some(myself) = nodes.lines().find(|line| line.contains("myself")) else {
        return false;
    };
    let prefix = format!("[{slot}-");
    myself
        .split(' ')
        .any(|field| field.starts_with(&prefix) && (field.contains("->-") || field.contains("-<-")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // Values from CLUSTER KEYSLOT on Redis 7.0.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b""), 0);
        assert_eq!(crc16(b"123456789"), 0x31C3);
    }
}
