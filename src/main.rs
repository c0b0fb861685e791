//! The `lokiship` command: Promtail's flags, logging, signals. Everything else lives in the library.

use anyhow::Context;
use clap::{ArgAction, Parser};
use lokiship::config::{self, LoadOptions};
use lokiship::run::{run, RunOptions};
use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: every line is allocated on the file thread and freed on a
/// client thread, and glibc serializes those cross-thread frees on its arena lock (a third of the
/// file thread's time in futex wake-ups in the end-to-end bench).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A log shipper for Grafana Loki that runs Promtail configuration files.
///
/// Flags use Promtail's single-dash form (-config.file=x); two dashes work too.
#[derive(Parser, Debug)]
#[command(name = "lokiship", disable_version_flag = true)]
struct Cli {
    /// Configuration file (Promtail's YAML schema).
    #[arg(long = "config.file", value_name = "PATH")]
    config_file: Option<String>,
    /// Replace ${VAR} and ${VAR:-default} in the config file with environment values.
    #[arg(long = "config.expand-env", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true, default_value = "false")]
    expand_env: bool,
    /// Unknown options inside pipeline stages are errors instead of warnings.
    #[arg(long = "config.strict", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true, default_value = "false")]
    strict: bool,
    /// Read and process, print entries to stdout, send nothing and write no positions.
    #[arg(long = "dry-run", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true, default_value = "false")]
    dry_run: bool,
    /// Validate the config file and exit.
    #[arg(long = "check-syntax", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true, default_value = "false")]
    check_syntax: bool,
    /// Print the configuration (after ${VAR} expansion, secrets masked) to stderr at start.
    #[arg(long = "print-config-stderr", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true, default_value = "false")]
    print_config_stderr: bool,
    /// Accepted for compatibility with Promtail (lokiship prints the config as written).
    #[arg(long = "log-config-reverse-order", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true, default_value = "false")]
    log_config_reverse_order: bool,
    /// Stop once every file was read to its end and delivered (lokiship's own flag; for backfills).
    #[arg(long = "exit-at-eof", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true, default_value = "false")]
    exit_at_eof: bool,
    /// Read standard input (not supported yet).
    #[arg(long = "stdin", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true, default_value = "false")]
    stdin: bool,
    /// Print how each stage changes each entry, to stderr (use with -dry-run).
    #[arg(long = "inspect", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true, default_value = "false")]
    inspect: bool,
    /// Log level: debug, info, warn, error.
    #[arg(long = "log.level", value_name = "LEVEL")]
    log_level: Option<String>,
    /// Log format: logfmt or json.
    #[arg(long = "log.format", value_name = "FORMAT")]
    log_format: Option<String>,
    /// Overrides server.http_listen_port.
    #[arg(long = "server.http-listen-port", value_name = "PORT")]
    http_listen_port: Option<u16>,
    /// Overrides the URL of the first client (or adds a client).
    #[arg(long = "client.url", value_name = "URL")]
    client_url: Option<String>,
    /// Overrides the tenant of the first client.
    #[arg(long = "client.tenant-id", value_name = "TENANT")]
    client_tenant_id: Option<String>,
    /// Adds external labels to the first client: k=v,k2=v2.
    #[arg(long = "client.external-labels", value_name = "LABELS")]
    client_external_labels: Option<String>,
    /// Overrides positions.filename.
    #[arg(long = "positions.file", value_name = "PATH")]
    positions_file: Option<String>,
    /// Print the version and exit.
    #[arg(long = "version", action = ArgAction::SetTrue)]
    version: bool,
}

/// Promtail's flags have one dash (`-config.file`); clap wants two for long flags.
fn normalize_args(args: impl Iterator<Item = String>) -> Vec<String> {
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

fn init_logging(level: &str, format: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(match level {
        "warn" | "warning" => "warn",
        l => l,
    })
    .with_context(|| format!("invalid -log.level {level:?}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    match format {
        "json" => builder.json().init(),
        "logfmt" | "" => builder.event_format(lokiship::logfmt::Logfmt).init(),
        other => anyhow::bail!("invalid -log.format {other:?}: use logfmt or json"),
    }
    Ok(())
}

/// mimalloc's `mi_option_purge_delay` (its position in `mi_option_t`, the same in mimalloc 2 and 3).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long freed memory stays committed before mimalloc returns it to the OS. mimalloc 3's default
/// (1 s) kept 10-25 MB of freed batches resident at full throughput; 10 ms keeps peak RSS at
/// 45 MB on the 1,000,000-line bench. `MIMALLOC_PURGE_DELAY` still overrides it.
const PURGE_DELAY_MS: std::os::raw::c_long = 10;

fn main() -> ExitCode {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets an integer option of the allocator; mimalloc reads it at each purge.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }
    let cli = Cli::parse_from(normalize_args(std::env::args()));
    if cli.version {
        println!("lokiship, version {}", lokiship::VERSION);
        return ExitCode::SUCCESS;
    }
    match real_main(cli) {
        Ok(Some(summary)) if summary.lost_anything() => {
            eprintln!(
                "lokiship: not every line was shipped: {} refused by Loki, {} dropped by the clients ({}), {} file errors ({}); see the summary above",
                summary.refused,
                summary.dropped_total(),
                join_counts(&summary.dropped),
                summary.unreadable(),
                join_counts(&summary.file_errors),
            );
            ExitCode::from(EXIT_LOST)
        }
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lokiship: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// The exit code of a `-dry-run` or `-exit-at-eof` run that refused, dropped or could not read lines.
const EXIT_LOST: u8 = 3;

fn join_counts(counts: &std::collections::BTreeMap<String, u64>) -> String {
    let parts: Vec<String> = counts.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

/// Runs the command; the run's summary when it is a job that ends by itself (`-dry-run`,
/// `-exit-at-eof`), whose exit code says whether lines were lost.
fn real_main(cli: Cli) -> anyhow::Result<Option<lokiship::summary::Summary>> {
    let Some(path) = cli.config_file.clone() else {
        anyhow::bail!("-config.file is required");
    };
    if cli.stdin {
        anyhow::bail!("-stdin is not supported yet");
    }
    if cli.inspect {
        lokiship::pipeline::inspect::enable();
    }
    let opts = LoadOptions {
        expand_env: cli.expand_env,
        strict: cli.strict,
    };
    let mut loaded = config::load_file(&path, &opts)?;
    let cfg = &mut loaded.config;
    let level = cli
        .log_level
        .clone()
        .or(cfg.server.log_level.clone())
        .unwrap_or_else(|| "info".into());
    let format = cli
        .log_format
        .clone()
        .or(cfg.server.log_format.clone())
        .unwrap_or_else(|| "logfmt".into());
    init_logging(&level, &format)?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    if cli.print_config_stderr {
        let text = std::fs::read_to_string(&path)?;
        let text = if cli.expand_env {
            config::expand::expand(&text, |n| std::env::var(n).ok())
        } else {
            text
        };
        eprintln!("{}", config::expand::mask_secrets(&text));
    }
    if cli.check_syntax {
        println!("Valid config file! No syntax issues found");
        return Ok(None);
    }
    apply_overrides(&cli, &mut loaded.config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let run_opts = RunOptions {
        dry_run: cli.dry_run,
        exit_at_eof: cli.exit_at_eof,
    };
    let job = cli.dry_run || cli.exit_at_eof;
    let signals = {
        let _context = runtime.enter();
        stop_signal()
    };
    let summary = runtime.block_on(run(loaded, run_opts, signals))?;
    Ok(job.then_some(summary))
}

fn apply_overrides(cli: &Cli, cfg: &mut config::Config) -> anyhow::Result<()> {
    if let Some(port) = cli.http_listen_port {
        cfg.server.http_listen_port = port;
    }
    if let Some(file) = &cli.positions_file {
        cfg.positions.filename = file.clone();
    }
    if let Some(url) = &cli.client_url {
        match cfg.clients.first_mut() {
            Some(c) => c.url = url.clone(),
            None => cfg
                .clients
                .push(serde_yaml_ng::from_str(&format!("url: {url:?}"))?),
        }
    }
    if let Some(client) = cfg.clients.first_mut() {
        if let Some(t) = &cli.client_tenant_id {
            client.tenant_id = t.clone();
        }
        if let Some(labels) = &cli.client_external_labels {
            for pair in labels.split(',').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').with_context(|| {
                    format!("-client.external-labels: {pair:?} is not name=value")
                })?;
                if !config::values::is_valid_label_name(k) {
                    anyhow::bail!("-client.external-labels: invalid label name {k:?}");
                }
                client
                    .external_labels
                    .insert(config::values::LabelName(k.to_string()), v.to_string());
            }
        }
    }
    Ok(())
}

/// Resolves on SIGINT or SIGTERM. SIGHUP, which logrotate's `postrotate` scripts written for
/// Promtail send, is logged and ignored: its default action would end the process at once.
/// The handlers are installed when this is called (in the runtime's context), before anything runs.
fn stop_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    use tokio::signal::unix::{signal, SignalKind};
    #[cfg(unix)]
    let (term, hangup) = (
        signal(SignalKind::terminate()).ok(),
        signal(SignalKind::hangup()).ok(),
    );
    async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let (Some(mut term), mut hangup) = (term, hangup) else {
                let _ = ctrl_c.await;
                return;
            };
            tokio::pin!(ctrl_c);
            loop {
                tokio::select! {
                    _ = &mut ctrl_c => return,
                    _ = term.recv() => return,
                    Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => None } } => {
                        tracing::info!("SIGHUP received: ignored (lokiship does not reload its config yet; files rotated by logrotate are followed without a signal)");
                    }
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
        }
    }
}
