//! xprocess: exactly-once effects for Redis Streams.
//!
//! XPROCESS checks a dedupe store keyed by entry ID, applies Redis-native
//! effects templated from the entry's fields, records the ID and XACKs,
//! atomically. What a call does is decided in the pure core
//! (`xprocess_core`); this crate is the module around it, laid out in
//! ARCHITECTURE.md. It filters no command and listens to no server event;
//! it follows stream keyspace events only once a standing processor runs:
//! it costs the commands that never call it nothing.

pub mod commands;
pub mod config;
pub mod index;
pub mod processor;
pub mod redis;
pub mod run;
pub mod server;
pub mod stats;
pub mod store;
pub mod stream;

use index::data_type::INDEX_TYPE;
use redis_module::configuration::ConfigurationFlags;
use redis_module::{redis_module, Context, RedisString, Status};

fn init(ctx: &Context, _args: &[RedisString]) -> Status {
    std::panic::set_hook(Box::new(|info| {
        redis_module::logging::log_warning(format!("xprocess: panic: {info}"));
    }));
    redis::info::register(ctx, stats::info_fields);
    redis::info::handle_io_errors(ctx);
    processor::init(ctx);
    for command in commands::ALL {
        if redis::command::register(ctx, command) == Status::Err {
            return Status::Err;
        }
    }
    Status::Ok
}

// Inside Redis, Rust allocates through Redis (so INFO memory and maxmemory see
// it). Unit tests run without Redis: the system allocator.
#[cfg(not(test))]
macro_rules! allocator {
    () => {
        redis_module::alloc::RedisAlloc
    };
}

#[cfg(test)]
macro_rules! allocator {
    () => {
        std::alloc::System
    };
}

redis_module! {
    name: "xprocess",
    version: 1,
    allocator: (allocator!(), allocator!()),
    data_types: [INDEX_TYPE],
    init: init,
    configurations: [
        i64: [
            ["default-ttl", &config::DEFAULT_TTL, 0, 0, xprocess_core::request::MAX_TTL, ConfigurationFlags::DEFAULT, None],
            ["max-ids", &config::MAX_IDS, config::DEFAULT_MAX_IDS, 1, 10_000_000, ConfigurationFlags::DEFAULT, None],
            ["key-window", &config::KEY_WINDOW, config::DEFAULT_KEY_WINDOW, 1, xprocess_core::request::MAX_WINDOW, ConfigurationFlags::DEFAULT, None],
            ["processor-budget-us", &config::PROCESSOR_BUDGET_US, config::DEFAULT_PROCESSOR_BUDGET_US, 10, 1_000_000, ConfigurationFlags::DEFAULT, None],
        ],
        string: [],
        bool: [],
        enum: [],
        module_args_as_configuration: true,
    ]
}
