//! lokiship: a log shipper for Grafana Loki that reads Promtail's configuration.
//!
//! Data flows one way, **source → pipeline → client**, and acknowledgements flow back: a source's
//! position advances only for lines that Loki accepted, that wait on a disk queue, or that were
//! dropped for a permanent reason. The modules import only downwards (`tests/architecture.rs`):
//!
//! - [`entry`], [`durable`], [`shutdown`], [`logfmt`], [`process_metrics`]: what every layer
//!   shares — the entry, its acknowledgement, the sink trait sources hand entries to; fsync'd
//!   writes; the stop token.
//! - [`wire`], [`metrics`]: Loki's push format both ways; every exported metric.
//! - [`config`]: Promtail's YAML schema, `${ENV}` expansion, validation with line numbers
//!   (its `compile` phase sits at the top: it builds sources and pipelines).
//! - [`client`] and [`pipeline`], which know nothing of each other: the hand-over from the
//!   sources, batching, sending with retries, the disk queue; Promtail's stages.
//! - [`source`]: where lines come from (files, the push receiver), running the pipeline.
//! - [`server`], [`summary`], [`run`]: `/metrics` and `/ready`, what a run did, the wiring.

// No unsafe code in the library: system calls go through rustix, reverse DNS through dns-lookup.
#![forbid(unsafe_code)]
// No panics on input: unwrap and expect only in tests, or where a comment says why they hold.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod client;
pub mod config;
pub mod durable;
pub mod entry;
#[cfg(test)]
mod fuzz;
pub mod log_limit;
pub mod logfmt;
pub mod metrics;
pub mod pipeline;
pub mod process_metrics;
pub mod reload;
pub mod run;
pub mod server;
pub mod shutdown;
pub mod source;
pub mod summary;
pub mod wire;

/// The version reported by `-version` and in the `User-Agent` header.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
