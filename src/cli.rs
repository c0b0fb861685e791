//! The command line: Promtail's flags (one dash or two), and how they override the config file
//! (after it is read, as in Promtail: a flag wins over the file).

use anyhow::Context;
use clap::{ArgAction, Parser};
use lokiship::config;
use std::time::Duration;

fn duration(text: &str) -> Result<Duration, String> {
    config::values::parse_duration(text)
}

fn byte_size(text: &str) -> Result<u64, String> {
    config::values::parse_byte_size(text)
}

/// A log shipper for Grafana Loki that runs Promtail configuration files.
///
/// Flags use Promtail's single-dash form (-config.file=x); two dashes work too.
#[derive(Parser, Debug)]
#[command(name = "lokiship", disable_version_flag = true)]
pub struct Cli {
    /// Configuration file (Promtail's YAML schema).
    #[arg(long = "config.file", value_name = "PATH")]
    pub config_file: Option<String>,
    /// Replace ${VAR} and ${VAR:-default} in the config file with environment values.
    #[arg(long = "config.expand-env", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true, default_value = "false")]
    pub expand_env: bool,
    /// Unknown options inside pipeline stages are errors instead of warnings.
    #[arg(long = "config.strict", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true, default_value = "false")]
    pub strict: bool,
    /// Read and process, print entries to stdout, send nothing and write no positions.
    #[arg(long = "dry-run", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true, default_value = "false")]
    pub dry_run: bool,
    /// Validate the config file and exit.
    #[arg(long = "check-syntax", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true, default_value = "false")]
    pub check_syntax: bool,
    /// Print the configuration (after ${VAR} expansion, secrets masked) to stderr at start.
    #[arg(long = "print-config-stderr", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true, default_value = "false")]
    pub print_config_stderr: bool,
    /// Accepted for compatibility with Promtail (lokiship prints the config as written).
    #[arg(long = "log-config-reverse-order", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true, default_value = "false")]
    pub log_config_reverse_order: bool,
    /// `backfill FILE...`: ship these files once through a job's pipeline (lokiship's own
    /// command; plain, gzip, zstd, bzip2 or xz files, told by content), then exit.
    #[arg(value_name = "COMMAND")]
    pub command: Vec<String>,
    /// backfill: the scrape config whose pipeline and labels the files get (default: the first).
    #[arg(long = "job", value_name = "NAME")]
    pub job: Option<String>,
    /// backfill: send every entry with the time it is sent, its own kept in structured metadata
    /// `original_timestamp` (for entries Loki would refuse as too old or out of order).
    #[arg(long = "restamp", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true, default_value = "false")]
    pub restamp: bool,
    /// backfill: send the entries as they are, even those Loki will refuse.
    #[arg(long = "force", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true, default_value = "false")]
    pub force: bool,
    /// Stop once every file was read to its end and delivered (lokiship's own flag; for backfills).
    #[arg(long = "exit-at-eof", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true, default_value = "false")]
    pub exit_at_eof: bool,
    /// Send disk queues left behind by clients whose URL or name changed through the client now
    /// at their place in `clients` (lokiship's own flag).
    #[arg(long = "wal.adopt-orphaned-queues", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true, default_value = "false")]
    pub adopt_orphaned_queues: bool,
    /// Read standard input (not supported yet).
    #[arg(long = "stdin", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true, default_value = "false")]
    pub stdin: bool,
    /// Print how each stage changes each entry, to stderr (use with -dry-run).
    #[arg(long = "inspect", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true, default_value = "false")]
    pub inspect: bool,
    /// Log level: debug, info, warn, error.
    #[arg(long = "log.level", value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Log format: logfmt or json.
    #[arg(long = "log.format", value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Overrides server.http_listen_port.
    #[arg(long = "server.http-listen-port", value_name = "PORT")]
    pub http_listen_port: Option<u16>,
    /// Overrides the URL of the first client (or adds a client).
    #[arg(long = "client.url", value_name = "URL")]
    pub client_url: Option<String>,
    /// Overrides the tenant of the first client.
    #[arg(long = "client.tenant-id", value_name = "TENANT")]
    pub client_tenant_id: Option<String>,
    /// Adds external labels to the first client: k=v,k2=v2.
    #[arg(long = "client.external-labels", value_name = "LABELS")]
    pub client_external_labels: Option<String>,
    /// Overrides positions.filename.
    #[arg(long = "positions.file", value_name = "PATH")]
    pub positions_file: Option<String>,
    /// Overrides clients[0].batchwait.
    #[arg(long = "client.batch-wait", value_name = "DURATION", value_parser = duration)]
    pub client_batch_wait: Option<Duration>,
    /// Overrides clients[0].batchsize (bytes).
    #[arg(long = "client.batch-size-bytes", value_name = "BYTES", value_parser = byte_size)]
    pub client_batch_size_bytes: Option<u64>,
    /// Overrides clients[0].timeout.
    #[arg(long = "client.timeout", value_name = "DURATION", value_parser = duration)]
    pub client_timeout: Option<Duration>,
    /// Overrides clients[0].backoff_config.min_period.
    #[arg(long = "client.min-backoff", value_name = "DURATION", value_parser = duration)]
    pub client_min_backoff: Option<Duration>,
    /// Overrides clients[0].backoff_config.max_period.
    #[arg(long = "client.max-backoff", value_name = "DURATION", value_parser = duration)]
    pub client_max_backoff: Option<Duration>,
    /// Overrides clients[0].backoff_config.max_retries.
    #[arg(long = "client.max-retries", value_name = "N")]
    pub client_max_retries: Option<u32>,
    /// Overrides clients[0].drop_rate_limited_batches.
    #[arg(long = "client.drop-rate-limited-batches", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub client_drop_rate_limited_batches: Option<bool>,
    /// Overrides positions.sync_period.
    #[arg(long = "positions.sync-period", value_name = "DURATION", value_parser = duration)]
    pub positions_sync_period: Option<Duration>,
    /// Overrides positions.ignore_invalid_yaml.
    #[arg(long = "positions.ignore-invalid-yaml", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub positions_ignore_invalid_yaml: Option<bool>,
    /// Overrides target_config.sync_period.
    #[arg(long = "target.sync-period", value_name = "DURATION", value_parser = duration)]
    pub target_sync_period: Option<Duration>,
    /// Overrides global.file_watch_config.min_poll_frequency.
    #[arg(long = "file-watch.min_poll_frequency", value_name = "DURATION", value_parser = duration)]
    pub min_poll_frequency: Option<Duration>,
    /// Overrides global.file_watch_config.max_poll_frequency.
    #[arg(long = "file-watch.max_poll_frequency", value_name = "DURATION", value_parser = duration)]
    pub max_poll_frequency: Option<Duration>,
    /// Overrides limits_config.readline_rate_enabled.
    #[arg(long = "limit.readline-rate-enabled", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub readline_rate_enabled: Option<bool>,
    /// Overrides limits_config.readline_rate (lines per second).
    #[arg(long = "limit.readline-rate", value_name = "RATE")]
    pub readline_rate: Option<f64>,
    /// Overrides limits_config.readline_burst.
    #[arg(long = "limit.readline-burst", value_name = "N")]
    pub readline_burst: Option<u32>,
    /// Overrides limits_config.readline_rate_drop.
    #[arg(long = "limit.readline-rate-drop", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub readline_rate_drop: Option<bool>,
    /// Overrides limits_config.max_line_size (bytes, or 256KB).
    #[arg(long = "max-line-size", value_name = "SIZE", value_parser = byte_size)]
    pub max_line_size: Option<u64>,
    /// Overrides limits_config.max_line_size_truncate.
    #[arg(long = "max-line-size-truncate", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub max_line_size_truncate: Option<bool>,
    /// Overrides limits_config.max_streams.
    #[arg(long = "max-streams", value_name = "N")]
    pub max_streams: Option<usize>,
    /// Overrides server.http_listen_address.
    #[arg(long = "server.http-listen-address", value_name = "ADDRESS")]
    pub http_listen_address: Option<String>,
    /// Overrides server.disable.
    #[arg(long = "server.disable", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub server_disable: Option<bool>,
    /// Accepted for compatibility (lokiship serves no gRPC).
    #[arg(long = "server.grpc-listen-port", value_name = "PORT")]
    pub grpc_listen_port: Option<u16>,
    /// Accepted for compatibility (lokiship serves no gRPC).
    #[arg(long = "server.grpc-listen-address", value_name = "ADDRESS")]
    pub grpc_listen_address: Option<String>,
    /// Accepted for compatibility (no reload yet).
    #[arg(long = "server.enable-runtime-reload", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub enable_runtime_reload: Option<bool>,
    /// Print the version and exit.
    #[arg(long = "version", action = ArgAction::SetTrue)]
    pub version: bool,
}

/// Promtail's flags have one dash (`-config.file`); clap wants two for long flags.
pub fn normalize_args(args: impl Iterator<Item = String>) -> Vec<String> {
    args.enumerate()
        .map(|(i, a)| {
            if i > 0 && a.starts_with('-') && !a.starts_with("--") && a.len() > 2 {
                format!("-{a}")
            } else {
                a
            }
        })
        .collect()
}

/// Applies the flags that override options of the config file. The `-client.*` tuning flags apply
/// to the first client (Promtail's: to the `client` block, or the client `-client.url` adds).
pub fn apply_overrides(cli: &Cli, cfg: &mut config::Config) -> anyhow::Result<()> {
    use config::values::{ByteSize, GoDuration};
    fn set<T: Clone>(target: &mut T, value: &Option<T>) {
        if let Some(v) = value {
            *target = v.clone();
        }
    }
    fn set_duration(target: &mut GoDuration, value: &Option<Duration>) {
        if let Some(d) = value {
            *target = GoDuration(*d);
        }
    }
    let server = &mut cfg.server;
    set(&mut server.http_listen_port, &cli.http_listen_port);
    set(&mut server.http_listen_address, &cli.http_listen_address);
    set(&mut server.disable, &cli.server_disable);
    set(&mut server.grpc_listen_port, &cli.grpc_listen_port);
    set(&mut server.grpc_listen_address, &cli.grpc_listen_address);
    set(
        &mut server.enable_runtime_reload,
        &cli.enable_runtime_reload,
    );
    set(&mut cfg.positions.filename, &cli.positions_file);
    set_duration(&mut cfg.positions.sync_period, &cli.positions_sync_period);
    set(
        &mut cfg.positions.ignore_invalid_yaml,
        &cli.positions_ignore_invalid_yaml,
    );
    set_duration(&mut cfg.target_config.sync_period, &cli.target_sync_period);
    let watch = &mut cfg.global.file_watch_config;
    set_duration(&mut watch.min_poll_frequency, &cli.min_poll_frequency);
    set_duration(&mut watch.max_poll_frequency, &cli.max_poll_frequency);
    let limits = &mut cfg.limits_config;
    set(
        &mut limits.readline_rate_enabled,
        &cli.readline_rate_enabled,
    );
    set(&mut limits.readline_rate, &cli.readline_rate);
    set(&mut limits.readline_burst, &cli.readline_burst);
    set(&mut limits.readline_rate_drop, &cli.readline_rate_drop);
    set(&mut limits.max_line_size, &cli.max_line_size.map(ByteSize));
    set(
        &mut limits.max_line_size_truncate,
        &cli.max_line_size_truncate,
    );
    set(&mut limits.max_streams, &cli.max_streams);
    if let Some(url) = &cli.client_url {
        match cfg.clients.first_mut() {
            Some(c) => c.url = url.clone(),
            None => cfg
                .clients
                .push(serde_yaml_ng::from_str(&format!("url: {url:?}"))?),
        }
    }
    let Some(client) = cfg.clients.first_mut() else {
        return Ok(());
    };
    set(&mut client.tenant_id, &cli.client_tenant_id);
    set_duration(&mut client.batchwait, &cli.client_batch_wait);
    set(
        &mut client.batchsize,
        &cli.client_batch_size_bytes.map(ByteSize),
    );
    set_duration(&mut client.timeout, &cli.client_timeout);
    set_duration(
        &mut client.backoff_config.min_period,
        &cli.client_min_backoff,
    );
    set_duration(
        &mut client.backoff_config.max_period,
        &cli.client_max_backoff,
    );
    set(
        &mut client.backoff_config.max_retries,
        &cli.client_max_retries,
    );
    set(
        &mut client.drop_rate_limited_batches,
        &cli.client_drop_rate_limited_batches,
    );
    if let Some(labels) = &cli.client_external_labels {
        for pair in labels.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .with_context(|| format!("-client.external-labels: {pair:?} is not name=value"))?;
            if !config::values::is_valid_label_name(k) {
                anyhow::bail!("-client.external-labels: invalid label name {k:?}");
            }
            client
                .external_labels
                .insert(config::values::LabelName(k.to_string()), v.to_string());
        }
    }
    Ok(())
}
