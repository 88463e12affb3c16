//! XPROCESS: parse the call (in the core), run it against Redis (`crate::run`),
//! reply (`reply`), or wait for entries (`block`).

pub mod block;
pub mod reply;

use crate::redis::acl::Caller;
use crate::redis::command::{entry_point, key, Arg, ArgKind, Begin, Command, Docs, KeySpec};
use crate::run;
use crate::server::cluster;
use crate::store::definition;
use redis_module::Context;
use xprocess_core::errors::{self, ReplyError};
use xprocess_core::parse;
use xprocess_core::request::Request;

entry_point!(entry, xprocess);

/// Effects put keys at positions no key spec can describe, so the specs are
/// documentation (the stream, DEDUPE, DEADLETTER, then an "unknown" spec
/// for effect keys) and Redis takes the actual keys from the getkeys-api
/// (`report_keys`).
pub const COMMAND: Command = Command {
    name: c"xprocess",
    entry,
    flags: c"write deny-oom getkeys-api",
    acl: c"write stream",
    // `XPROCESS key group CONSUMER consumer READ` (the group's definition): 6 at least.
    arity: -6,
    docs: Docs {
        summary: c"Applies effects of stream entries exactly once: dedupe by entry ID, apply, record and XACK, atomically",
        complexity: c"O(N*E) where N is the number of IDs (or of entries READ takes) and E the number of effects",
        since: c"0.1.0",
        key_specs: &KEY_SPECS,
        args: &ARGS,
    },
};

/// The keys of XPROCESS and XPROCESS.DEFINE (a definition names the same
/// keys a call does).
pub(crate) const KEY_SPECS: [KeySpec; 4] = [
        KeySpec {
            notes: c"the source stream: entries read, acknowledged in the group (deleted with DELETE)",
            flags: key::RW | key::ACCESS | key::UPDATE,
            begin: Begin::Index(1),
            unknown: false,
        },
        KeySpec {
            notes: c"the dedupe store (index or Set), when DEDUPE is given (else derived in the stream's slot)",
            flags: key::RW | key::ACCESS | key::INSERT | key::INCOMPLETE,
            begin: Begin::Keyword(c"DEDUPE", 3),
            unknown: false,
        },
        KeySpec {
            notes: c"the dead-letter stream, when DEADLETTER is given",
            flags: key::RW | key::INSERT | key::INCOMPLETE,
            begin: Begin::Keyword(c"DEADLETTER", 3),
            unknown: false,
        },
        KeySpec {
            notes: c"the key of every effect, reported through the getkeys-api",
            flags: key::RW | key::UPDATE | key::INCOMPLETE,
            begin: Begin::Unknown,
            unknown: true,
        },
    ];

/// Key spec indexes, referenced by key arguments.
pub(crate) const SPEC_STREAM: i32 = 0;
const SPEC_DEDUPE: i32 = 1;
const SPEC_DEAD_LETTER: i32 = 2;
const SPEC_EFFECTS: i32 = 3;

const fn string(name: &'static std::ffi::CStr) -> Arg {
    Arg::new(name, ArgKind::String)
}

const fn integer(name: &'static std::ffi::CStr) -> Arg {
    Arg::new(name, ArgKind::Integer)
}

const fn effect_key() -> Arg {
    Arg::new(c"key", ArgKind::Key).key(SPEC_EFFECTS)
}

const INCR_ARGS: [Arg; 3] = [effect_key(), string(c"field"), string(c"increment")];

/// `FIELDS numpairs field value [field value ...] | ENTRY` (HSET, XADD).
const PAIRS: Arg = Arg::new(c"pairs", ArgKind::OneOf).sub(&[
    Arg::new(c"fields", ArgKind::Block).token(c"FIELDS").sub(&[
        integer(c"numpairs"),
        Arg::new(c"data", ArgKind::Block)
            .multiple()
            .sub(&[string(c"field"), string(c"value")]),
    ]),
    Arg::new(c"entry", ArgKind::Token).token(c"ENTRY"),
]);

const fn one_of(name: &'static std::ffi::CStr, tokens: &'static [Arg]) -> Arg {
    Arg::new(name, ArgKind::OneOf).optional().sub(tokens)
}

const fn token(name: &'static std::ffi::CStr, token: &'static std::ffi::CStr) -> Arg {
    Arg::new(name, ArgKind::Token).token(token)
}

const EXISTS: [Arg; 2] = [token(c"nx", c"NX"), token(c"xx", c"XX")];

const XADD_ARGS: [Arg; 3] = [
    effect_key(),
    Arg::new(c"trim", ArgKind::Block)
        .token(c"MAXLEN")
        .optional()
        .sub(&[
            one_of(
                c"strategy",
                &[token(c"approximately", c"~"), token(c"equal", c"=")],
            ),
            integer(c"count"),
        ]),
    PAIRS,
];

/// An effect named `token` taking `args`.
const fn effect(name: &'static std::ffi::CStr, args: &'static [Arg]) -> Arg {
    Arg::new(name, ArgKind::Block).token(name).sub(args)
}

const EFFECTS: [Arg; 21] = [
    effect(c"HINCRBY", &INCR_ARGS),
    effect(c"HINCRBYFLOAT", &INCR_ARGS),
    effect(c"HSET", &[effect_key(), PAIRS]),
    effect(
        c"HSETNX",
        &[effect_key(), string(c"field"), string(c"value")],
    ),
    effect(c"HDEL", &[effect_key(), string(c"field")]),
    effect(
        c"SET",
        &[
            effect_key(),
            string(c"value"),
            one_of(c"condition", &EXISTS),
            integer(c"milliseconds").token(c"PX").optional(),
        ],
    ),
    effect(c"INCRBY", &[effect_key(), integer(c"increment")]),
    effect(
        c"INCRBYFLOAT",
        &[effect_key(), Arg::new(c"increment", ArgKind::Double)],
    ),
    effect(c"DEL", &[effect_key()]),
    effect(c"SADD", &[effect_key(), string(c"member")]),
    effect(c"SREM", &[effect_key(), string(c"member")]),
    effect(
        c"ZADD",
        &[
            effect_key(),
            one_of(c"condition", &EXISTS),
            one_of(c"comparison", &[token(c"gt", c"GT"), token(c"lt", c"LT")]),
            Arg::new(c"score", ArgKind::Double),
            string(c"member"),
        ],
    ),
    effect(
        c"ZINCRBY",
        &[
            effect_key(),
            Arg::new(c"increment", ArgKind::Double),
            string(c"member"),
        ],
    ),
    effect(c"ZREM", &[effect_key(), string(c"member")]),
    effect(c"PFADD", &[effect_key(), string(c"element")]),
    effect(c"LPUSH", &[effect_key(), string(c"value")]),
    effect(c"RPUSH", &[effect_key(), string(c"value")]),
    effect(c"PEXPIRE", &[effect_key(), integer(c"milliseconds")]),
    effect(c"XADD", &XADD_ARGS),
    effect(c"PUBLISH", &[string(c"channel"), string(c"message")]),
    effect(
        c"FCALL",
        &[
            string(c"function"),
            integer(c"numkeys"),
            effect_key().optional().multiple(),
            integer(c"numargs"),
            string(c"arg").optional().multiple(),
        ],
    ),
];

/// `WHEN` conditions: a field compared, a field or a key present or not.
const CONDITIONS: [Arg; 3] = [
    Arg::new(c"comparison", ArgKind::Block).sub(&[
        string(c"field"),
        Arg::new(c"operator", ArgKind::OneOf).sub(&[
            Arg::new(c"eq", ArgKind::Token).token(c"="),
            Arg::new(c"ne", ArgKind::Token).token(c"!="),
            Arg::new(c"lt", ArgKind::Token).token(c"<"),
            Arg::new(c"le", ArgKind::Token).token(c"<="),
            Arg::new(c"gt", ArgKind::Token).token(c">"),
            Arg::new(c"ge", ArgKind::Token).token(c">="),
        ]),
        string(c"value"),
    ]),
    Arg::new(c"field-present", ArgKind::Block).sub(&[string(c"field"), PRESENCE]),
    Arg::new(c"key-present", ArgKind::Block)
        .token(c"KEY")
        .sub(&[Arg::new(c"key", ArgKind::Key).key(SPEC_EFFECTS), PRESENCE]),
];

const PRESENCE: Arg = Arg::new(c"presence", ArgKind::OneOf).sub(&[
    Arg::new(c"exists", ArgKind::Token).token(c"EXISTS"),
    Arg::new(c"missing", ArgKind::Token).token(c"MISSING"),
]);

pub(crate) const DEDUPE: Arg = Arg::new(c"dedupe-key", ArgKind::Key)
    .token(c"DEDUPE")
    .optional()
    .key(SPEC_DEDUPE);

pub(crate) const BUSINESS_KEY: Arg = Arg::new(c"business-key", ArgKind::Block)
    .token(c"KEY")
    .optional()
    .sub(&[
        string(c"template"),
        integer(c"milliseconds").token(c"WINDOW").optional(),
        Arg::new(c"fingerprint", ArgKind::OneOf)
            .token(c"FINGERPRINT")
            .optional()
            .sub(&[
                Arg::new(c"fields", ArgKind::Block)
                    .sub(&[integer(c"numfields"), string(c"field").multiple()]),
                Arg::new(c"entry", ArgKind::Token).token(c"ENTRY"),
            ]),
    ]);

pub(crate) const DELETE: Arg = Arg::new(c"delete", ArgKind::Block)
    .token(c"DELETE")
    .optional()
    .sub(&[Arg::new(c"acked", ArgKind::Token)
        .token(c"ACKED")
        .optional()]);

pub(crate) const DEAD_LETTER: Arg = Arg::new(c"dead-letter", ArgKind::Block)
    .token(c"DEADLETTER")
    .optional()
    .sub(&[
        Arg::new(c"dead-letter-key", ArgKind::Key).key(SPEC_DEAD_LETTER),
        integer(c"deliveries").token(c"AFTER"),
    ]);

/// `[WHEN condition ...] effect`, one or more.
pub(crate) const EFFECT: Arg = Arg::new(c"effect", ArgKind::Block).multiple().sub(&[
    Arg::new(c"condition", ArgKind::Block)
        .token(c"WHEN")
        .optional()
        .multiple()
        .sub(&[Arg::new(c"condition", ArgKind::OneOf).sub(&CONDITIONS)]),
    Arg::new(c"effect", ArgKind::OneOf).sub(&EFFECTS),
]);

const ARGS: [Arg; 11] = [
    Arg::new(c"key", ArgKind::Key).key(SPEC_STREAM),
    string(c"group"),
    string(c"consumer").token(c"CONSUMER").optional(),
    DEDUPE,
    Arg::new(c"store", ArgKind::OneOf)
        .token(c"STORE")
        .optional()
        .sub(&[
            Arg::new(c"index", ArgKind::Token).token(c"INDEX"),
            Arg::new(c"set", ArgKind::Token).token(c"SET"),
        ]),
    integer(c"milliseconds").token(c"TTL").optional(),
    BUSINESS_KEY,
    DELETE,
    DEAD_LETTER,
    EFFECT,
    Arg::new(c"source", ArgKind::OneOf).sub(&[
        Arg::new(c"ids", ArgKind::Block)
            .token(c"IDS")
            .sub(&[integer(c"numids"), string(c"id").multiple()]),
        Arg::new(c"read", ArgKind::Block).token(c"READ").sub(&[
            integer(c"count").token(c"COUNT").optional(),
            integer(c"min-idle-time").token(c"CLAIM").optional(),
            integer(c"milliseconds").token(c"BLOCK").optional(),
            Arg::new(c"reply", ArgKind::Block)
                .token(c"REPLY")
                .optional()
                .sub(&[Arg::new(c"counts", ArgKind::Token).token(c"COUNTS")]),
        ]),
    ]),
];

/// XPROCESS key group [CONSUMER consumer] [DEDUPE dedupe-key]
///          [STORE INDEX | SET] [TTL milliseconds] [KEY template ...]
///          [DEADLETTER dead-letter-key AFTER deliveries]
///          effect [effect ...]
///          (IDS numids id [id ...] | READ [COUNT n] [CLAIM ms] [BLOCK ms])
pub fn xprocess(ctx: &Context, argv: &[&[u8]]) -> Result<(), ReplyError> {
    if ctx.is_keys_position_request() {
        report_keys(ctx, argv);
        return Ok(());
    }
    if let Some(call) = parse::parse_defined_call(argv) {
        let call = call?;
        let definition = definition::load(ctx, call.stream, call.group)?;
        let definition = definition.ok_or(errors::NO_DEFINITION)?;
        let mut req = definition.request(call.stream)?;
        check_definition_keys(ctx, &req)?;
        req.consumer = call.consumer;
        req.ids = call.ids;
        req.read = call.read;
        return execute(ctx, &req, true);
    }
    execute(ctx, &parse::parse(argv)?, false)
}

fn execute(ctx: &Context, req: &Request, defined: bool) -> Result<(), ReplyError> {
    let done = run::run(ctx, req, defined)?;
    match req.read.and_then(|read| read.block) {
        Some(timeout) if done.outcomes.is_empty() && block::can_block(ctx) => {
            block::wait(ctx, req.stream, timeout)
        }
        _ => reply::done(ctx, &done, req.read),
    }
    Ok(())
}

/// The keys a definition names are not in the call's argv, so neither
/// Redis' ACL check nor its cluster routing covers them: the caller needs
/// write access to each, and each must be on this node.
fn check_definition_keys(ctx: &Context, req: &Request) -> Result<(), ReplyError> {
    let caller = Caller::of(ctx);
    let effect_keys = req.effects.iter().flat_map(|e| e.keys());
    let literal = effect_keys.filter_map(|k| k.literal());
    let keys: Vec<&[u8]> = (req.dedupe.into_iter())
        .chain(req.dead_letter.map(|dl| dl.key))
        .chain(literal)
        .collect();
    if !keys.iter().all(|key| caller.may_write(ctx, key)) {
        return Err(errors::NOPERM_KEY.into());
    }
    cluster::check_unrouted_keys(ctx, req.stream, keys)
}

/// getkeys-api: the stream, the DEDUPE key and every effect target.
fn report_keys(ctx: &Context, argv: &[&[u8]]) {
    let positions = match parse::parse(argv) {
        Ok(req) => req.key_positions,
        Err(_) => vec![1], // the call will fail; route it by its stream
    };
    for pos in positions {
        ctx.key_at_pos(pos as i32);
    }
}
