//! The `lokiship` command: Promtail's flags, logging, signals. Everything else lives in the library.

// The one unsafe call is the allocator's option (see `set_purge_delay`).
#![deny(unsafe_code)]

use anyhow::Context;
use clap::Parser;
use cli::{apply_overrides, normalize_args, Cli};
use lokiship::config::{self, LoadOptions};
use lokiship::run::{run, Ending, Endings, RunOptions};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

mod backfill_command;
mod cli;
mod signals;

/// mimalloc instead of glibc's malloc: every line is allocated on the file thread and freed on a
/// client thread, and glibc serializes those cross-thread frees on its arena lock (a third of the
/// file thread's time in futex wake-ups in the end-to-end bench).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The HTTP stack's crates: their debug logs (every connection, every TLS record) drown
/// lokiship's own at `-log.level=debug`, and are shown only at `trace`.
const QUIET_AT_DEBUG: &[&str] = &[
    "hyper",
    "hyper_util",
    "reqwest",
    "rustls",
    "h2",
    "tower",
    "axum",
];

fn init_logging(level: &str, format: &str) -> anyhow::Result<()> {
    let directives = match level {
        "warn" | "warning" => "warn".to_string(),
        "debug" => std::iter::once("debug".to_string())
            .chain(QUIET_AT_DEBUG.iter().map(|c| format!("{c}=info")))
            .collect::<Vec<_>>()
            .join(","),
        l => l.to_string(),
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&directives)
        .with_context(|| format!("invalid -log.level {level:?}"))?;
    // Warnings and errors rate-limited per cause (lokiship::log_limit); info and debug as is.
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let window = lokiship::log_limit::WINDOW;
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        "json" => registry
            .with(lokiship::log_limit::RateLimited::new(fmt.json(), window))
            .init(),
        "logfmt" | "" => registry
            .with(lokiship::log_limit::RateLimited::new(
                fmt.event_format(lokiship::logfmt::Logfmt),
                window,
            ))
            .init(),
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

/// Sets mimalloc's purge delay. Unsafe only as an FFI call: measured necessary (RSS, above), no
/// safe wrapper has the option, and the index is checked against mimalloc's own name for it by
/// a test, so a mimalloc that renumbers its options fails the build's tests, not production.
#[allow(unsafe_code)]
fn set_purge_delay(ms: std::os::raw::c_long) {
    // SAFETY: sets an integer option of the allocator; mimalloc reads it at each purge.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, ms) };
}

fn main() -> ExitCode {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        set_purge_delay(PURGE_DELAY_MS);
    }
    let cli = Cli::parse_from(normalize_args(std::env::args()));
    if cli.version {
        println!("lokiship, version {}", lokiship::VERSION);
        return ExitCode::SUCCESS;
    }
    match real_main(cli) {
        Ok(Some(summary)) if summary.lost_anything() => {
            eprintln!(
                "lokiship: not every line was shipped: {}; see the summary above",
                summary.loss()
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

/// The exit code of a `-dry-run`, `-exit-at-eof` or `-stdin` run that refused, dropped or could not read lines.
const EXIT_LOST: u8 = 3;

/// Runs the command; the run's summary when it is a job that ends by itself (`-dry-run`,
/// `-exit-at-eof`, `-stdin`), whose exit code says whether lines were lost.
fn real_main(cli: Cli) -> anyhow::Result<Option<lokiship::summary::Summary>> {
    let backfill = backfill_command::files(&cli)?;
    // `-stdin` runs without a config file, as Promtail's: `-client.url` says where to push.
    let path = cli.config_file.clone();
    if path.is_none() && !cli.stdin {
        anyhow::bail!("-config.file is required");
    }
    if cli.inspect {
        lokiship::pipeline::inspect::enable();
    }
    let opts = LoadOptions {
        expand_env: cli.expand_env,
        strict: cli.strict,
    };
    let load = || match &path {
        Some(path) => config::load_file(path, &opts),
        None => config::load_str("(no -config.file)", "{}", &opts),
    };
    let loaded = load()?;
    start_logging(&cli, &loaded.config)?;
    // `target_config.stdin: true` is what Promtail's `-stdin` sets.
    let stdin = cli.stdin || loaded.config.target_config.stdin;
    if cli.print_config_stderr {
        let text = match &path {
            Some(path) => std::fs::read_to_string(path)?,
            None => String::new(),
        };
        let text = if cli.expand_env {
            config::expand::expand(&text, |n| std::env::var(n).ok())
        } else {
            text
        };
        match config::print::printed(&text, env!("CARGO_PKG_VERSION")) {
            Some(printed) => eprintln!("{printed}"),
            None => eprintln!("{}", config::expand::mask_secrets(&text)),
        }
    }
    let mut run_opts = RunOptions {
        dry_run: cli.dry_run,
        exit_at_eof: cli.exit_at_eof || stdin || backfill.is_some(),
        stdin,
        server_optional: stdin || backfill.is_some(),
        adopt_orphaned_queues: cli.adopt_orphaned_queues,
        reload_requests: None,
    };
    let compiled = compile(&cli, loaded, &run_opts, backfill.as_deref())?;
    if cli.check_syntax {
        println!("Valid config file! No syntax issues found");
        return Ok(None);
    }
    let together = match &backfill {
        Some(_) => backfill_command::files_together(&cli, &compiled)?,
        None => true,
    };
    let progress = backfill
        .as_ref()
        .map(|files| lokiship::run::backfill::Progress::start(files.clone()));
    // A backfill whose files share a stream (the audit preset drops `filename`) reads them one
    // after the other, in the order given: together they would interleave hours apart, and Loki
    // refuses what is more than its ordering window behind the newest entry of a stream.
    let mut pending: std::collections::VecDeque<String> = match &backfill {
        Some(files) if !together => files.clone().into(),
        _ => Default::default(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let job = cli.dry_run || cli.exit_at_eof || stdin || backfill.is_some();
    let mut signals = {
        let _context = runtime.enter();
        signals::Signals::install()
    };
    let (requests, mut reload_requests) = tokio::sync::mpsc::channel(4);
    run_opts.reload_requests = Some(requests);
    let m = lokiship::metrics::metrics();
    m.config_last_reload_successful.set(1);
    m.config_last_reload_success_seconds
        .set(signals::unix_now());
    let load_again = || compile(&cli, load()?, &run_opts, backfill.as_deref());
    let backfill_run = |file: String| compile(&cli, load()?, &run_opts, Some(&[file]));
    let (send, receive) = tokio::sync::mpsc::channel(1);
    let mut endings = Endings {
        receive,
        running: Arc::new(Mutex::new(compiled.text.clone())),
    };
    let running = endings.running.clone();
    // Signals and reload requests become endings the run takes: a stop, or a reload the run
    // applies in place or restarts for. The running config's text is what the next reload is
    // compared with.
    let mut files = config::diff::named_files(&compiled.text);
    let signal_side = async {
        loop {
            let ending = signals::next_ending(
                &mut signals,
                &mut reload_requests,
                !job,
                &running,
                &files,
                load_again,
            )
            .await;
            if let Ending::Reload(next) = &ending {
                *running.lock().unwrap_or_else(|e| e.into_inner()) = next.text.clone();
                files = config::diff::named_files(&next.text);
            }
            if send.send(ending).await.is_err() {
                return;
            }
        }
    };
    let run_side = async {
        let mut compiled = match pending.pop_front() {
            Some(first) => backfill_run(first)?,
            None => compiled,
        };
        loop {
            let end = run(compiled, run_opts.clone(), &mut endings).await?;
            compiled = match (end.next, pending.pop_front()) {
                (Some(next), _) => *next,
                (None, Some(file)) if !end.signalled => backfill_run(file)?,
                (None, _) => return anyhow::Ok(job.then_some(end.summary)),
            };
        }
    };
    let started = std::time::Instant::now();
    let end = runtime.block_on(async {
        tokio::select! {
            end = run_side => end,
            () = signal_side => anyhow::bail!("the signal handling ended"),
        }
    });
    if let Some(progress) = progress {
        progress.finish(started.elapsed());
    }
    end
}

/// Logging at the level and in the format the flags say, else the config file's `server`.
fn start_logging(cli: &Cli, cfg: &config::Config) -> anyhow::Result<()> {
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
    init_logging(&level, &format)
}

/// The config `loaded` with the command line's overrides (and made the backfill of `backfill`'s
/// files), compiled, and checked to be runnable; its warnings logged.
fn compile(
    cli: &Cli,
    mut loaded: config::Loaded,
    run_opts: &RunOptions,
    backfill: Option<&[String]>,
) -> anyhow::Result<config::compile::Compiled> {
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    apply_overrides(cli, &mut loaded.config)?;
    if let Some(files) = backfill {
        config::backfill::for_backfill(&mut loaded.config, cli.job.as_deref(), files)?;
    }
    let mut compiled = config::compile::compile(loaded)?;
    lokiship::run::check_runnable(&compiled.config, run_opts)?;
    if backfill.is_some() && cli.restamp {
        backfill_command::restamp(&mut compiled)?;
    }
    Ok(if run_opts.stdin {
        compiled.into_stdin()
    } else {
        compiled
    })
}

#[cfg(test)]
mod allocator_tests {
    use std::ffi::{c_char, c_void, CStr};

    type Output = extern "C" fn(*const c_char, *mut c_void);
    #[allow(unsafe_code)]
    extern "C" {
        /// mimalloc's own listing of its options, by name (exported by the linked library).
        fn mi_options_print_out(out: Option<Output>, arg: *mut c_void);
    }

    #[allow(unsafe_code)]
    extern "C" fn collect(message: *const c_char, arg: *mut c_void) {
        // SAFETY: mimalloc passes a NUL-terminated message and the `arg` given below, a live
        // String on the caller's stack for the duration of the call.
        let (text, out) = unsafe { (CStr::from_ptr(message), &mut *arg.cast::<String>()) };
        out.push_str(&text.to_string_lossy());
    }

    #[test]
    #[allow(unsafe_code)]
    fn the_option_set_is_mimallocs_purge_delay() {
        super::set_purge_delay(4321);
        let mut listing = String::new();
        // SAFETY: `collect` matches mimalloc's output function; `listing` outlives the call.
        unsafe { mi_options_print_out(Some(collect), (&mut listing as *mut String).cast()) };
        assert!(listing.contains("option 'purge_delay': 4321"), "{listing}");
        super::set_purge_delay(super::PURGE_DELAY_MS);
    }
}
