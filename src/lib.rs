//! lokiship: a log shipper for Grafana Loki that reads Promtail's configuration.
//!
//! Data flows one way, **source → pipeline → client**, and acknowledgements flow back: a source's
//! position advances only for lines that Loki accepted (or that were dropped for a permanent reason).
//!
//! - [`config`]: Promtail's YAML schema, `${ENV}` expansion, validation with line numbers.
//! - [`source`]: where lines come from (files) and the acknowledgement bookkeeping behind positions.
//! - [`pipeline`]: Promtail's stages turning a line into labels, metadata, a timestamp and an output line.
//! - [`client`]: batching, protobuf + snappy encoding, sending with retries and backoff.
//! - [`server`]: `/metrics` and `/ready`.

pub mod client;
pub mod config;
pub mod durable;
pub mod entry;
pub mod logfmt;
pub mod metrics;
pub mod pipeline;
pub mod process_metrics;
pub mod run;
pub mod server;
pub mod source;
pub mod summary;
pub mod wire;

/// The version reported by `-version` and in the `User-Agent` header.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
