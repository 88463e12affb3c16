//! The pure core of xprocess: everything that decides what an XPROCESS call
//! does, without Redis. It parses a call into a [`request::Request`], plans
//! each entry's effects against a [`plan::State`] (validating all of them
//! before any runs), and runs the per-entry loop ([`process::process`])
//! against two traits, [`process::Backend`] (the server) and
//! [`store::DedupeStore`] (where processed IDs are recorded). The dedupe
//! index's structures (ranges, business keys, their bytes and patches) live
//! here too, so the fuzz targets and unit tests need no server.
//!
//! It depends on no Redis crate, and its crate lints (the workspace's,
//! in the top-level Cargo.toml) forbid raw-pointer code: the module crate
//! implements the traits.

pub mod business_key;
pub mod condition;
pub mod definition;
pub mod entry;
pub mod errors;
pub mod fast_map;
pub mod group_read;
pub mod id;
pub mod index;
pub mod key_name;
#[cfg(test)]
mod memory_store;
pub mod numbers;
pub mod parse;
pub mod plan;
pub mod process;
pub mod request;
pub mod state;
pub mod store;
pub mod template;
