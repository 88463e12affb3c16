//! Key names: the derived dedupe key and Redis' hash-tag rule.

use crate::errors::{self, ReplyError};

/// The hash tag of `key` as Redis Cluster reads it: the bytes between the
/// first `{` and the first `}` after it, when not empty.
pub fn hash_tag(key: &[u8]) -> Option<&[u8]> {
    let open = key.iter().position(|&b| b == b'{')?;
    let rest = &key[open + 1..];
    let close = rest.iter().position(|&b| b == b'}')?;
    (close > 0).then(|| &rest[..close])
}

/// The dedupe key used when DEDUPE is not given. It always hashes to the
/// stream's slot: `<key>:xprocess:<group>` keeps the key's own hash tag,
/// `{<key>}:xprocess:<group>` makes the whole key the tag (not for an empty
/// key: `{}` is no tag, so that name would hash elsewhere).
pub fn derived_dedupe_key(stream: &[u8], group: &[u8]) -> Result<Vec<u8>, ReplyError> {
    let mut out = Vec::with_capacity(stream.len() + group.len() + 12);
    if hash_tag(stream).is_some() {
        out.extend_from_slice(stream);
    } else if !stream.is_empty() && !stream.contains(&b'}') {
        out.push(b'{');
        out.extend_from_slice(stream);
        out.push(b'}');
    } else {
        return Err(errors::NEED_DEDUPE.into());
    }
    out.extend_from_slice(b":xprocess:");
    out.extend_from_slice(group);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_tags_follow_the_cluster_rule() {
        assert_eq!(hash_tag(b"orders{eu}"), Some(&b"eu"[..]));
        assert_eq!(hash_tag(b"{a}{b}"), Some(&b"a"[..]));
        assert_eq!(hash_tag(b"a{}b{c}"), None);
        assert_eq!(hash_tag(b"a{b"), None);
        assert_eq!(hash_tag(b"a}b{c}"), Some(&b"c"[..]));
    }

    #[test]
    fn derived_keys_share_the_stream_slot() {
        let derive =
            |k: &str| derived_dedupe_key(k.as_bytes(), b"g").map(|v| String::from_utf8(v).unwrap());
        assert_eq!(derive("orders").unwrap(), "{orders}:xprocess:g");
        assert_eq!(derive("orders{eu}").unwrap(), "orders{eu}:xprocess:g");
        assert_eq!(derive("a{b").unwrap(), "{a{b}:xprocess:g");
        assert_eq!(derive("a}b").unwrap_err().as_str(), errors::NEED_DEDUPE);
        assert_eq!(derive("{}x").unwrap_err().as_str(), errors::NEED_DEDUPE);
        assert_eq!(derive("").unwrap_err().as_str(), errors::NEED_DEDUPE);
    }
}
