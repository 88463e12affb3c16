//! Parsing: XPROCESS argv -> [`Request`], without touching Redis.
//!
//! ```text
//! XPROCESS key group [CONSUMER consumer] [DEDUPE dedupe-key]
//!          [STORE INDEX | SET] [TTL milliseconds]
//!          [KEY template [WINDOW milliseconds]
//!           [FINGERPRINT numfields field [field ...] | FINGERPRINT ENTRY]]
//!          [DEADLETTER dead-letter-key AFTER deliveries]
//!          effect [effect ...]
//!          (IDS numids id [id ...] |
//!           READ [COUNT count] [CLAIM min-idle-milliseconds] [BLOCK milliseconds]
//!                [REPLY COUNTS])
//! ```
//! Positional arguments first, then a case-insensitive option loop, then the
//! effects, then IDS or READ. Everything borrows from argv: parsing allocates only the
//! vectors of effects and IDs.

use crate::condition::Condition;
use crate::errors::{self, Fixed, ReplyError};
use crate::id::StreamId;
use crate::numbers::parse_i64;
use crate::request::{
    Beats, BusinessKey, DeadLetter, Delete, Effect, End, Exists, FcallArg, FingerprintOf, Pairs,
    Read, Request, StoreKind, Trim, MAX_TTL, MAX_WINDOW,
};
use crate::template::Arg;

/// A cursor over argv; positions count the command name as 0.
struct Args<'a, 'v> {
    argv: &'v [&'a [u8]],
    pos: usize,
}

impl<'a> Args<'a, '_> {
    fn next(&mut self) -> Result<&'a [u8], ReplyError> {
        let arg = self.argv.get(self.pos).ok_or(errors::SYNTAX)?;
        self.pos += 1;
        Ok(arg)
    }

    fn peek(&self) -> Option<&'a [u8]> {
        self.argv.get(self.pos).copied()
    }

    fn remaining(&self) -> usize {
        self.argv.len() - self.pos
    }

    fn next_template(&mut self) -> Result<Arg<'a>, ReplyError> {
        Arg::parse(self.next()?)
    }

    fn next_number(&mut self) -> Result<Arg<'a>, ReplyError> {
        Arg::parse_number(self.next()?)
    }

    /// A count that may be 0 (numkeys, numargs).
    fn next_size(&mut self, err: Fixed) -> Result<usize, ReplyError> {
        match parse_i64(self.next()?) {
            Some(n) if n >= 0 => Ok(n as usize),
            _ => Err(err.into()),
        }
    }

    /// A positive count (numids, numpairs).
    fn next_count(&mut self, err: Fixed) -> Result<usize, ReplyError> {
        match parse_i64(self.next()?) {
            Some(n) if n > 0 => Ok(n as usize),
            _ => Err(err.into()),
        }
    }
}

fn is(arg: &[u8], token: &str) -> bool {
    arg.eq_ignore_ascii_case(token.as_bytes())
}

/// Parse a whole XPROCESS argv (argv[0] is the command name).
pub fn parse<'a>(argv: &[&'a [u8]]) -> Result<Request<'a>, ReplyError> {
    let mut args = Args { argv, pos: 1 };
    let mut req = shell(args.next()?, args.next()?);
    parse_options(&mut args, &mut req)?;
    parse_effects(&mut args, &mut req, Until::IdsOrRead)?;
    check_fcall_alone(&req)?;
    parse_tail(&mut args, &mut req)?;
    Ok(req)
}

/// Parse `key group options effects` (XPROCESS.DEFINE's argv, or a stored
/// definition's): a call without CONSUMER, STORE, TTL, IDS or READ, which
/// those of each call complete.
pub fn parse_definition<'a>(argv: &[&'a [u8]]) -> Result<Request<'a>, ReplyError> {
    let mut args = Args { argv, pos: 1 };
    let mut req = shell(args.next()?, args.next()?);
    parse_options(&mut args, &mut req)?;
    if req.consumer.is_some() || req.store.is_some() || req.ttl.is_some() {
        return Err(errors::NOT_IN_DEFINITION.into());
    }
    parse_effects(&mut args, &mut req, Until::End)?;
    check_fcall_alone(&req)?;
    Ok(req)
}

/// A call that runs the group's definition: `XPROCESS key group [CONSUMER
/// consumer] (IDS ... | READ ...)`, with no option and no effect. `None`
/// when argv is not of that shape.
pub fn parse_defined_call<'a>(argv: &[&'a [u8]]) -> Option<Result<Request<'a>, ReplyError>> {
    let consumer = argv.get(3).is_some_and(|a| is(a, "CONSUMER"));
    let tail = if consumer { 5 } else { 3 };
    let token = argv.get(tail)?;
    if !is(token, "IDS") && !is(token, "READ") {
        return None;
    }
    let mut req = shell(argv[1], argv[2]);
    req.consumer = consumer.then(|| argv[4]);
    let mut args = Args { argv, pos: tail };
    Some(parse_tail(&mut args, &mut req).map(|()| req))
}

/// A request of `stream` and `group` with nothing else yet.
fn shell<'a>(stream: &'a [u8], group: &'a [u8]) -> Request<'a> {
    Request {
        stream,
        group,
        consumer: None,
        dedupe: None,
        store: None,
        ttl: None,
        business_key: None,
        dead_letter: None,
        delete: None,
        effects: Vec::new(),
        when: Vec::new(),
        ids: Vec::new(),
        read: None,
        key_positions: vec![1],
    }
}

fn check_fcall_alone(req: &Request) -> Result<(), ReplyError> {
    let fcall = |e: &Effect| matches!(e, Effect::FCall { .. });
    match req.effects.len() > 1 && req.effects.iter().any(fcall) {
        true => Err(errors::FCALL_NOT_ALONE.into()),
        false => Ok(()),
    }
}

/// `IDS ...` or `READ ...`, to the end of argv.
fn parse_tail(args: &mut Args, req: &mut Request) -> Result<(), ReplyError> {
    if is(args.next()?, "IDS") {
        parse_ids(args, req)
    } else {
        req.read = Some(parse_read(args)?);
        match req.consumer {
            Some(_) => Ok(()),
            None => Err(errors::READ_NEEDS_CONSUMER.into()),
        }
    }
}

/// Where the effects end: at IDS or READ (a call), or with argv (a
/// definition).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Until {
    IdsOrRead,
    End,
}

fn parse_options<'a>(args: &mut Args<'a, '_>, req: &mut Request<'a>) -> Result<(), ReplyError> {
    while let Some(token) = args.peek() {
        if is(token, "CONSUMER") && req.consumer.is_none() {
            args.pos += 1;
            req.consumer = Some(args.next()?);
        } else if is(token, "DEDUPE") && req.dedupe.is_none() {
            args.pos += 1;
            req.key_positions.push(args.pos);
            req.dedupe = Some(args.next()?);
        } else if is(token, "STORE") && req.store.is_none() {
            args.pos += 1;
            let kind = args.next()?;
            req.store = Some(if is(kind, "INDEX") {
                StoreKind::Index
            } else if is(kind, "SET") {
                StoreKind::Set
            } else {
                return Err(errors::BAD_STORE.into());
            });
        } else if is(token, "TTL") && req.ttl.is_none() {
            args.pos += 1;
            let ttl = parse_i64(args.next()?).filter(|t| (0..=MAX_TTL).contains(t));
            req.ttl = Some(ttl.ok_or_else(|| ReplyError::bad_ttl(MAX_TTL))? as u64);
        } else if is(token, "KEY") && req.business_key.is_none() {
            args.pos += 1;
            req.business_key = Some(parse_business_key(args)?);
        } else if is(token, "DELETE") && req.delete.is_none() {
            args.pos += 1;
            req.delete = Some(match args.peek() {
                Some(t) if is(t, "ACKED") => {
                    args.pos += 1;
                    Delete::Acked
                }
                _ => Delete::All,
            });
        } else if is(token, "DEADLETTER") && req.dead_letter.is_none() {
            args.pos += 1;
            req.key_positions.push(args.pos);
            let key = args.next()?;
            if !is(args.next()?, "AFTER") {
                return Err(errors::SYNTAX.into());
            }
            let after = args.next_count(errors::BAD_AFTER)? as u64;
            req.dead_letter = Some(DeadLetter { key, after });
        } else {
            return Ok(());
        }
    }
    Ok(())
}

/// After `KEY`: `template [WINDOW ms] [FINGERPRINT (numfields field ... | ENTRY)]`.
fn parse_business_key<'a>(args: &mut Args<'a, '_>) -> Result<BusinessKey<'a>, ReplyError> {
    let mut key = BusinessKey {
        template: args.next_template()?,
        window: None,
        fingerprint: FingerprintOf::Read,
    };
    let mut fingerprint_given = false;
    while let Some(token) = args.peek() {
        if is(token, "WINDOW") && key.window.is_none() {
            args.pos += 1;
            let window = parse_i64(args.next()?).filter(|w| (1..=MAX_WINDOW).contains(w));
            key.window = Some(window.ok_or_else(|| ReplyError::bad_window(MAX_WINDOW))? as u64);
        } else if is(token, "FINGERPRINT") && !fingerprint_given {
            args.pos += 1;
            fingerprint_given = true;
            if args.peek().is_some_and(|t| is(t, "ENTRY")) {
                args.pos += 1;
                key.fingerprint = FingerprintOf::Entry;
            } else {
                let n = args.next_count(errors::BAD_NUMFIELDS)?;
                let fields = (0..n).map(|_| args.next()).collect::<Result<_, _>>()?;
                key.fingerprint = FingerprintOf::Fields(fields);
            }
        } else {
            break;
        }
    }
    Ok(key)
}

fn parse_effects<'a>(
    args: &mut Args<'a, '_>,
    req: &mut Request<'a>,
    until: Until,
) -> Result<(), ReplyError> {
    let mut when = Vec::new();
    loop {
        let Some(token) = args.peek() else {
            return Err(if !when.is_empty() {
                errors::WHEN_WITHOUT_EFFECT
            } else if req.effects.is_empty() && until == Until::End {
                errors::DEFINITION_NO_EFFECT
            } else if req.effects.is_empty() {
                errors::NO_EFFECT
            } else if until == Until::End {
                return Ok(());
            } else {
                errors::NO_IDS
            }
            .into());
        };
        if is(token, "WHEN") {
            let (condition, used) = Condition::parse(&args.argv[args.pos + 1..])?;
            when.push(condition);
            args.pos += 1 + used;
            continue;
        }
        let ids_or_read = is(token, "IDS") || is(token, "READ");
        if ids_or_read && until == Until::End {
            return Err(errors::IDS_IN_DEFINITION.into());
        }
        if !when.is_empty() && ids_or_read {
            return Err(errors::WHEN_WITHOUT_EFFECT.into());
        }
        if ids_or_read {
            return match req.effects.is_empty() {
                true => Err(errors::NO_EFFECT.into()),
                false => Ok(()),
            };
        }
        args.pos += 1;
        let key_pos = args.pos;
        let effect = parse_effect(token, args)?;
        // A templated key is known per entry only: like a Lua script's
        // undeclared keys, it is checked then (slot, ACL), not reported.
        // FCALL's keys follow its function name and numkeys.
        let first = match effect {
            Effect::FCall { .. } => key_pos + 2,
            _ => key_pos,
        };
        for (n, key) in effect.keys().iter().enumerate() {
            if key.literal().is_some() {
                req.key_positions.push(first + n);
            }
        }
        req.effects.push(effect);
        if !when.is_empty() {
            // Calls without WHEN keep `req.when` empty: no allocation.
            req.when.resize_with(req.effects.len(), Vec::new);
            req.when[req.effects.len() - 1] = std::mem::take(&mut when);
        }
    }
}

/// One effect, after its name.
fn parse_effect<'a>(name: &[u8], args: &mut Args<'a, '_>) -> Result<Effect<'a>, ReplyError> {
    let upper = name.to_ascii_uppercase();
    Ok(match upper.as_slice() {
        b"HINCRBY" => Effect::HIncrBy {
            key: args.next_template()?,
            field: args.next_template()?,
            incr: args.next_number()?,
        },
        b"HINCRBYFLOAT" => Effect::HIncrByFloat {
            key: args.next_template()?,
            field: args.next_template()?,
            incr: args.next_number()?,
        },
        b"HSET" => Effect::HSet {
            key: args.next_template()?,
            pairs: parse_pairs(args)?,
        },
        b"HSETNX" => Effect::HSetNx {
            key: args.next_template()?,
            field: args.next_template()?,
            value: args.next_template()?,
        },
        b"HDEL" => Effect::HDel {
            key: args.next_template()?,
            field: args.next_template()?,
        },
        b"SET" => parse_set(args)?,
        b"INCRBY" => Effect::IncrBy {
            key: args.next_template()?,
            incr: args.next_number()?,
        },
        b"INCRBYFLOAT" => Effect::IncrByFloat {
            key: args.next_template()?,
            incr: args.next_number()?,
        },
        b"DEL" => Effect::Del {
            key: args.next_template()?,
        },
        b"SADD" => Effect::SAdd {
            key: args.next_template()?,
            member: args.next_template()?,
        },
        b"SREM" => Effect::SRem {
            key: args.next_template()?,
            member: args.next_template()?,
        },
        b"ZADD" => parse_zadd(args)?,
        b"ZINCRBY" => Effect::ZIncrBy {
            key: args.next_template()?,
            incr: args.next_number()?,
            member: args.next_template()?,
        },
        b"ZREM" => Effect::ZRem {
            key: args.next_template()?,
            member: args.next_template()?,
        },
        b"PFADD" => Effect::PfAdd {
            key: args.next_template()?,
            element: args.next_template()?,
        },
        b"LPUSH" | b"RPUSH" => Effect::Push {
            end: if upper[0] == b'L' {
                End::Left
            } else {
                End::Right
            },
            key: args.next_template()?,
            value: args.next_template()?,
        },
        b"PEXPIRE" => Effect::PExpire {
            key: args.next_template()?,
            ms: args.next_number()?,
        },
        b"PUBLISH" => Effect::Publish {
            channel: args.next_template()?,
            message: args.next_template()?,
        },
        b"XADD" => parse_xadd(args)?,
        b"FCALL" => parse_fcall(args)?,
        _ => return Err(errors::SYNTAX.into()),
    })
}

/// `FCALL function numkeys key [key ...] numargs arg [arg ...]`.
fn parse_fcall<'a>(args: &mut Args<'a, '_>) -> Result<Effect<'a>, ReplyError> {
    let function = args.next()?;
    let numkeys = args.next_size(errors::BAD_NUMKEYS)?;
    if numkeys > args.remaining() {
        return Err(errors::BAD_NUMKEYS.into());
    }
    let keys = (0..numkeys)
        .map(|_| args.next_template())
        .collect::<Result<_, _>>()?;
    let numargs = args.next_size(errors::BAD_NUMARGS)?;
    if numargs > args.remaining() {
        return Err(errors::BAD_NUMARGS.into());
    }
    let fargs = (0..numargs)
        .map(|_| match args.next()? {
            b"$@entry" => Ok(FcallArg::Entry),
            arg => Arg::parse(arg).map(FcallArg::Arg),
        })
        .collect::<Result<_, _>>()?;
    Ok(Effect::FCall {
        function,
        keys,
        args: fargs,
    })
}

/// `SET key value [NX | XX] [PX milliseconds]`, options in any order.
fn parse_set<'a>(args: &mut Args<'a, '_>) -> Result<Effect<'a>, ReplyError> {
    let (key, value) = (args.next_template()?, args.next_template()?);
    let (mut exists, mut px) = (None, None);
    while let Some(token) = args.peek() {
        let given = if is(token, "NX") || is(token, "XX") {
            let this = if is(token, "NX") {
                Exists::Nx
            } else {
                Exists::Xx
            };
            exists.replace(this).is_some_and(|e| e != this)
        } else if is(token, "PX") && px.is_none() {
            args.pos += 1;
            px = Some(args.next_number()?);
            continue;
        } else {
            break;
        };
        if given {
            return Err(errors::SYNTAX.into()); // NX and XX
        }
        args.pos += 1;
    }
    Ok(Effect::Set {
        key,
        value,
        exists,
        px,
    })
}

/// `ZADD key [NX | XX] [GT | LT] score member`, options in any order.
fn parse_zadd<'a>(args: &mut Args<'a, '_>) -> Result<Effect<'a>, ReplyError> {
    let key = args.next_template()?;
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    while let Some(token) = args.peek() {
        let flag = if is(token, "NX") {
            &mut nx
        } else if is(token, "XX") {
            &mut xx
        } else if is(token, "GT") {
            &mut gt
        } else if is(token, "LT") {
            &mut lt
        } else {
            break;
        };
        *flag = true;
        args.pos += 1;
    }
    if nx && xx {
        return Err(errors::ZADD_NX_XX.into());
    }
    if (nx && (gt || lt)) || (gt && lt) {
        return Err(errors::ZADD_GT_LT_NX.into());
    }
    let score = args.next_number()?;
    Ok(Effect::ZAdd {
        key,
        exists: (nx || xx).then_some(if nx { Exists::Nx } else { Exists::Xx }),
        beats: (gt || lt).then_some(if gt { Beats::Gt } else { Beats::Lt }),
        score,
        member: args.next_template()?,
    })
}

/// `XADD key [MAXLEN [~|=] count] (FIELDS numpairs field value ... | ENTRY)`
fn parse_xadd<'a>(args: &mut Args<'a, '_>) -> Result<Effect<'a>, ReplyError> {
    let key = args.next_template()?;
    let mut trim = None;
    if args.peek().is_some_and(|t| is(t, "MAXLEN")) {
        args.pos += 1;
        let mut approx = false;
        if let Some(op @ (b"~" | b"=")) = args.peek() {
            approx = op == b"~";
            args.pos += 1;
        }
        let count = parse_i64(args.next()?).filter(|c| *c >= 0);
        trim = Some(Trim {
            approx,
            count: count.ok_or(errors::BAD_MAXLEN)?,
        });
    }
    let pairs = parse_pairs(args)?;
    Ok(Effect::XAdd { key, trim, pairs })
}

/// `FIELDS numpairs field value [field value ...]` or `ENTRY`.
fn parse_pairs<'a>(args: &mut Args<'a, '_>) -> Result<Pairs<'a>, ReplyError> {
    let token = args.next()?;
    if is(token, "ENTRY") {
        return Ok(Pairs::Entry);
    }
    if !is(token, "FIELDS") {
        return Err(errors::SYNTAX.into());
    }
    let numpairs = args.next_count(errors::BAD_NUMPAIRS)?;
    if numpairs > args.remaining() / 2 {
        return Err(errors::NUMPAIRS_MISMATCH.into());
    }
    let mut pairs = Vec::with_capacity(numpairs);
    for _ in 0..numpairs {
        pairs.push((args.next_template()?, args.next_template()?));
    }
    Ok(Pairs::Fields(pairs))
}

fn parse_ids(args: &mut Args<'_, '_>, req: &mut Request<'_>) -> Result<(), ReplyError> {
    let numids = args.next_count(errors::BAD_NUMIDS)?;
    if numids != args.remaining() {
        return Err(errors::NUMIDS_MISMATCH.into());
    }
    req.ids.reserve_exact(numids);
    while let Some(id) = args.peek() {
        args.pos += 1;
        req.ids
            .push(StreamId::parse(id).ok_or(errors::BAD_STREAM_ID)?);
    }
    Ok(())
}

/// After `READ`: `[COUNT count] [CLAIM min-idle-ms] [BLOCK ms] [REPLY
/// COUNTS]`, to the end.
fn parse_read(args: &mut Args<'_, '_>) -> Result<Read, ReplyError> {
    let mut read = Read::default();
    while let Some(token) = args.peek() {
        args.pos += 1;
        if is(token, "COUNT") && read.count.is_none() {
            read.count = Some(args.next_count(errors::BAD_COUNT)?);
        } else if is(token, "CLAIM") && read.claim.is_none() {
            let idle = parse_i64(args.next()?).filter(|n| *n >= 0);
            read.claim = Some(idle.ok_or(errors::BAD_MIN_IDLE)? as u64);
        } else if is(token, "REPLY") && !read.counts {
            if !is(args.next()?, "COUNTS") {
                return Err(errors::SYNTAX.into());
            }
            read.counts = true;
        } else if is(token, "BLOCK") && read.block.is_none() {
            read.block = Some(match parse_i64(args.next()?) {
                Some(ms) if ms < 0 => return Err(errors::NEGATIVE_TIMEOUT.into()),
                Some(ms) => ms as u64,
                None => return Err(errors::BAD_TIMEOUT.into()),
            });
        } else {
            return Err(errors::SYNTAX.into());
        }
    }
    Ok(read)
}

/// IDs given one per argument (the dedupe stores' commands), each strict.
pub fn stream_ids(args: &[&[u8]]) -> Result<Vec<StreamId>, ReplyError> {
    args.iter()
        .map(|a| StreamId::parse(a).ok_or_else(|| errors::BAD_STREAM_ID.into()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::{Meta, Part};

    fn argv(s: &str) -> Vec<&[u8]> {
        s.split(' ').map(str::as_bytes).collect()
    }

    fn err(s: &str) -> String {
        parse(&argv(s)).unwrap_err().to_string()
    }

    #[test]
    fn parses_every_effect_and_option() {
        let a = argv(
            "XPROCESS s g consumer c DEDUPE d store set ttl 500 \
             HINCRBY h $cust $amount HINCRBYFLOAT h f 1.5 SADD st $@id \
             XADD out MAXLEN ~ 10 FIELDS 2 a $a b $$b XADD out2 ENTRY IDS 2 1-1 7",
        );
        let r = parse(&a).unwrap();
        assert_eq!(r.stream, b"s");
        assert_eq!(r.consumer, Some(&b"c"[..]));
        assert_eq!(r.dedupe, Some(&b"d"[..]));
        assert_eq!(r.ttl, Some(500));
        assert_eq!(r.store, Some(StoreKind::Set));
        assert_eq!(r.effects.len(), 5);
        assert_eq!(
            r.effects[0],
            Effect::HIncrBy {
                key: Arg::Literal(b"h"),
                field: Arg::Field(b"cust"),
                incr: Arg::Field(b"amount")
            }
        );
        assert_eq!(
            r.effects[2],
            Effect::SAdd {
                key: Arg::Literal(b"st"),
                member: Arg::Meta(Meta::Id)
            }
        );
        assert_eq!(
            r.effects[3],
            Effect::XAdd {
                key: Arg::Literal(b"out"),
                trim: Some(Trim {
                    approx: true,
                    count: 10
                }),
                pairs: Pairs::Fields(vec![
                    (Arg::Literal(b"a"), Arg::Field(b"a")),
                    (
                        Arg::Literal(b"b"),
                        Arg::Interpolated(vec![Part::Literal(b"$b")])
                    ),
                ])
            }
        );
        assert_eq!(
            r.ids,
            vec![StreamId { ms: 1, seq: 1 }, StreamId { ms: 7, seq: 0 }]
        );
        // s, d, then the key of each effect.
        assert_eq!(r.key_positions, vec![1, 6, 12, 16, 20, 23, 34]);
    }

    #[test]
    fn whole_call_errors() {
        assert_eq!(err("XPROCESS s g IDS 1 1-1"), errors::NO_EFFECT);
        assert_eq!(err("XPROCESS s g SADD k m"), errors::NO_IDS);
        assert_eq!(err("XPROCESS s g BOGUS SADD k m IDS 1 1-1"), errors::SYNTAX);
        assert_eq!(err("XPROCESS s g SADD k m IDS 0"), errors::BAD_NUMIDS);
        assert_eq!(err("XPROCESS s g SADD k m IDS -1 1-1"), errors::BAD_NUMIDS);
        assert_eq!(err("XPROCESS s g SADD k m IDS x 1-1"), errors::BAD_NUMIDS);
        assert_eq!(
            err("XPROCESS s g SADD k m IDS 2 1-1"),
            errors::NUMIDS_MISMATCH
        );
        assert_eq!(
            err("XPROCESS s g SADD k m IDS 1 1-1 2"),
            errors::NUMIDS_MISMATCH
        );
        assert_eq!(err("XPROCESS s g SADD k m IDS 1 +"), errors::BAD_STREAM_ID);
        assert_eq!(
            err("XPROCESS s g SADD k m IDS 1 1-x"),
            errors::BAD_STREAM_ID
        );
        let bad_ttl = ReplyError::bad_ttl(MAX_TTL).to_string();
        assert_eq!(err("XPROCESS s g TTL -1 SADD k m IDS 1 1"), bad_ttl);
        assert_eq!(
            err("XPROCESS s g STORE BTREE SADD k m IDS 1 1"),
            errors::BAD_STORE
        );
        assert_eq!(
            err("XPROCESS s g STORE SET STORE SET SADD k m IDS 1 1"),
            errors::SYNTAX
        );
        assert_eq!(
            parse(&argv("XPROCESS s g sToRe InDeX SADD k m IDS 1 1"))
                .unwrap()
                .store,
            Some(StoreKind::Index)
        );
        assert_eq!(
            err("XPROCESS s g TTL 9223372036854775807 SADD k m IDS 1 1"),
            bad_ttl
        );
        assert!(parse(&argv(
            "XPROCESS s g TTL 4611686018427387903 SADD k m IDS 1 1"
        ))
        .is_ok());
        assert_eq!(
            err("XPROCESS s g TTL 1 TTL 2 SADD k m IDS 1 1"),
            errors::SYNTAX
        );
        assert_eq!(
            err("XPROCESS s g SADD k $@ts IDS 1 1"),
            errors::UNKNOWN_METADATA
        );
        assert_eq!(
            err("XPROCESS s g XADD o MAXLEN -1 ENTRY IDS 1 1"),
            errors::BAD_MAXLEN
        );
        assert_eq!(
            err("XPROCESS s g XADD o FIELDS 0 IDS 1 1"),
            errors::BAD_NUMPAIRS
        );
        assert_eq!(
            err("XPROCESS s g XADD o FIELDS 9 a b IDS 1 1"),
            errors::NUMPAIRS_MISMATCH
        );
        assert_eq!(err("XPROCESS s g XADD o BODY IDS 1 1"), errors::SYNTAX);
        assert_eq!(err("XPROCESS s g HINCRBY h f"), errors::SYNTAX);
        assert_eq!(err("XPROCESS s"), errors::SYNTAX);
    }

    #[test]
    fn definitions_and_calls_that_use_them() {
        let def = |s: &'static str| parse_definition(&argv(s));
        let d = def("XPROCESS.DEFINE s g DEDUPE d KEY $o DEADLETTER dl AFTER 2 DELETE SADD k $id")
            .unwrap();
        assert_eq!(d.dedupe, Some(&b"d"[..]));
        assert_eq!(d.effects.len(), 1);
        assert_eq!(d.key_positions, vec![1, 4, 8, 13]);
        let e = |s: &'static str| def(s).unwrap_err().as_str().to_string();
        assert_eq!(e("D s g"), errors::DEFINITION_NO_EFFECT.text);
        assert_eq!(e("D s g DEDUPE d"), errors::DEFINITION_NO_EFFECT.text);
        assert_eq!(
            e("D s g CONSUMER c SADD k m"),
            errors::NOT_IN_DEFINITION.text
        );
        assert_eq!(
            e("D s g STORE SET SADD k m"),
            errors::NOT_IN_DEFINITION.text
        );
        assert_eq!(e("D s g TTL 5 SADD k m"), errors::NOT_IN_DEFINITION.text);
        assert_eq!(
            e("D s g SADD k m IDS 1 1-1"),
            errors::IDS_IN_DEFINITION.text
        );
        assert_eq!(e("D s g SADD k m READ"), errors::IDS_IN_DEFINITION.text);
        assert_eq!(
            e("D s g SADD k m WHEN $a = 1"),
            errors::WHEN_WITHOUT_EFFECT.text
        );
        assert_eq!(
            e("D s g SADD k m FCALL f 0 0"),
            errors::FCALL_NOT_ALONE.text
        );
        assert!(
            def("D s g SADD k IDS").is_ok(),
            "IDS as an effect's argument"
        );

        let call = |s: &'static str| parse_defined_call(&argv(s));
        let c = call("XPROCESS s g CONSUMER c READ COUNT 5")
            .unwrap()
            .unwrap();
        assert_eq!(c.consumer, Some(&b"c"[..]));
        assert_eq!(c.read.unwrap().count, Some(5));
        let c = call("XPROCESS s g IDS 2 1-1 2-2").unwrap().unwrap();
        assert_eq!(c.ids.len(), 2);
        assert_eq!(
            call("XPROCESS s g READ").unwrap().unwrap_err().as_str(),
            errors::READ_NEEDS_CONSUMER.text
        );
        assert!(call("XPROCESS s g CONSUMER c IDS 2 1-1").unwrap().is_err());
        assert!(call("XPROCESS s g SADD k m IDS 1 1-1").is_none());
        assert!(call("XPROCESS s g CONSUMER c TTL 5 IDS 1 1").is_none());
        assert!(call("XPROCESS s g").is_none());
    }

    #[test]
    fn options_after_effects_are_syntax_errors() {
        assert_eq!(err("XPROCESS s g SADD k m TTL 5 IDS 1 1"), errors::SYNTAX);
    }

    #[test]
    fn read_and_dead_letter() {
        let a = argv("XPROCESS s g CONSUMER c DEADLETTER dl AFTER 3 SADD k m READ count 10 CLAIM 0 block 500");
        let r = parse(&a).unwrap();
        assert_eq!(
            r.read,
            Some(Read {
                count: Some(10),
                claim: Some(0),
                block: Some(500),
                counts: false,
            })
        );
        assert!(r.ids.is_empty());
        assert_eq!(
            r.dead_letter,
            Some(DeadLetter {
                key: b"dl",
                after: 3
            })
        );
        assert_eq!(r.key_positions, vec![1, 6, 10]);
        let counts = parse(&argv(
            "XPROCESS s g CONSUMER c SADD k m READ reply counts COUNT 5",
        ));
        assert!(counts.unwrap().read.unwrap().counts);
        let c = "XPROCESS s g CONSUMER c SADD k m READ REPLY";
        assert_eq!(err(c), errors::SYNTAX);
        assert_eq!(err(&format!("{c} PAIRS")), errors::SYNTAX);
        assert_eq!(err(&format!("{c} COUNTS REPLY COUNTS")), errors::SYNTAX);
        let bare = parse(&argv("XPROCESS s g CONSUMER c SADD k m READ")).unwrap();
        assert_eq!(bare.read, Some(Read::default()));

        assert_eq!(
            err("XPROCESS s g SADD k m READ"),
            errors::READ_NEEDS_CONSUMER
        );
        let c = "XPROCESS s g CONSUMER c SADD k m READ";
        assert_eq!(err(&format!("{c} COUNT 0")), errors::BAD_COUNT);
        assert_eq!(err(&format!("{c} CLAIM -1")), errors::BAD_MIN_IDLE);
        assert_eq!(err(&format!("{c} BLOCK -1")), errors::NEGATIVE_TIMEOUT);
        assert_eq!(err(&format!("{c} BLOCK x")), errors::BAD_TIMEOUT);
        assert_eq!(err(&format!("{c} COUNT 1 COUNT 2")), errors::SYNTAX);
        assert_eq!(err(&format!("{c} IDS 1 1")), errors::SYNTAX);
        assert_eq!(err(&format!("{c} COUNT")), errors::SYNTAX);
        let d = "XPROCESS s g DEADLETTER dl";
        assert_eq!(
            err(&format!("{d} AFTER 0 SADD k m IDS 1 1")),
            errors::BAD_AFTER
        );
        assert_eq!(
            err(&format!("{d} BEFORE 1 SADD k m IDS 1 1")),
            errors::SYNTAX
        );
        assert_eq!(
            err(&format!(
                "{d} AFTER 1 DEADLETTER x AFTER 1 SADD k m IDS 1 1"
            )),
            errors::SYNTAX
        );
    }

    #[test]
    fn stream_ids_are_strict_and_canonical() {
        assert_eq!(StreamId::parse(b"0-0"), Some(StreamId { ms: 0, seq: 0 }));
        assert_eq!(
            StreamId::parse(b"18446744073709551615-18446744073709551615"),
            Some(StreamId::MAX)
        );
        for bad in [
            "",
            "-",
            "+",
            "$",
            ">",
            "1-",
            "-1",
            "1-2-3",
            "18446744073709551616",
            " 1",
        ] {
            assert_eq!(StreamId::parse(bad.as_bytes()), None, "{bad:?}");
        }
        assert_eq!(StreamId::parse(b"007-01").unwrap().to_string(), "7-1");
        assert_eq!(
            StreamId::MAX.text().as_str(),
            "18446744073709551615-18446744073709551615"
        );
        assert_eq!(StreamId { ms: 0, seq: 10 }.text().as_bytes(), b"0-10");
        assert_eq!(StreamId::MAX.next(), None);
        assert_eq!(
            StreamId {
                ms: 3,
                seq: u64::MAX
            }
            .next(),
            Some(StreamId { ms: 4, seq: 0 })
        );
    }
}
