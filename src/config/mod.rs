//! Configuration: Promtail's YAML schema, read in two phases (as ripgrep does with its flags).
//!
//! 1. [`schema`]: the raw text, optionally `${ENV}`-expanded ([`expand`]), is deserialized into serde
//!    structs that mirror Promtail's schema. Typos, wrong types, bad durations, bad regexes and options
//!    lokiship does not implement are errors naming the line ([`error`]).
//!    [`load`] then checks what spans several keys, section by section.
//! 2. [`compile`] turns the loaded file, once, into what run time uses: each job's pipeline,
//!    relabel rules, decompression and targets, with errors naming the line; nothing starts unless
//!    the whole configuration is usable.
//!
//! `compile` sits above the rest of lokiship (it builds sources and pipelines); every other module
//! here is raw configuration, below them all.

pub mod backfill;
pub mod compile;
pub mod diff;
pub mod error;
pub mod expand;
pub mod go_regex;
mod introspect;
pub mod load;
pub mod print;
pub mod schema;
pub mod stages;
mod unknown;
pub mod values;
mod yaml_compat;

pub use error::ConfigError;
pub use load::{load_file, load_str, LoadOptions, Loaded};
pub use schema::Config;
