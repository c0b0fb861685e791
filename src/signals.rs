//! The command's signals and reloads: SIGINT and SIGTERM stop lokiship; SIGHUP and
//! `POST /reload` read the config file again. A new config that loads and compiles ends the
//! running one for a restart of the parts with it (see `run`) — unless it is the running one (the
//! same sections as YAML, and the same contents of the files it names: certificates, keys), as when
//! logrotate's `postrotate` sends SIGHUP: then nothing restarts. One that does not load is logged
//! and counted (`promtail_config_reload_fail_total`, `lokiship_config_last_reload_successful` 0),
//! and the running config goes on.

use lokiship::config::compile::Compiled;
use lokiship::reload::Request;
use lokiship::run::Ending;
use tokio::sync::mpsc;

/// What a signal asks for.
enum Signal {
    Stop,
    Reload,
}

/// The signal handlers, installed once for every run.
pub struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    hangup: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    /// Installs the handlers; call in the runtime's context, before anything runs (SIGHUP's
    /// default action would end the process at once).
    pub fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Self {
                term: signal(SignalKind::terminate()).ok(),
                hangup: signal(SignalKind::hangup()).ok(),
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    async fn next(&mut self) -> Signal {
        #[cfg(unix)]
        {
            let term = async {
                match self.term.as_mut() {
                    Some(t) => t.recv().await,
                    None => std::future::pending().await,
                }
            };
            let hangup = async {
                match self.hangup.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => Signal::Stop,
                _ = term => Signal::Stop,
                _ = hangup => Signal::Reload,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Signal::Stop
        }
    }
}

/// Waits until the run should end: a stop, or a reload whose config `load` accepted and that
/// differs from the `running` config's text and the contents of the files it named when it
/// started (`running_files`), by [`changes`]. With `reloads` false (a
/// `-dry-run` or `-exit-at-eof` job) a reload is refused and said so.
pub async fn next_ending(
    signals: &mut Signals,
    requests: &mut mpsc::Receiver<Request>,
    reloads: bool,
    running: &std::sync::Mutex<String>,
    running_files: &[u8],
    load: impl Fn() -> anyhow::Result<Compiled>,
) -> Ending {
    loop {
        let reply = tokio::select! {
            signal = signals.next() => match signal {
                Signal::Stop => return Ending::Stop,
                Signal::Reload => {
                    tracing::info!("SIGHUP received: reloading the config");
                    None
                }
            },
            Some(request) = requests.recv() => Some(request.reply),
        };
        let answer = if reloads {
            load().map_err(|e| format!("{e:#}"))
        } else {
            Err("a -dry-run or -exit-at-eof run does not reload".into())
        };
        let m = lokiship::metrics::metrics();
        match answer {
            Ok(compiled) => {
                m.config_reloads.inc();
                m.config_last_reload_successful.set(1);
                m.config_last_reload_success_seconds.set(unix_now());
                if let Some(reply) = reply {
                    let _ = reply.send(Ok(()));
                }
                // Read now, not when the wait began: a run that could not apply the last
                // reload entirely empties it, so that this one restarts everything.
                let text = running.lock().unwrap_or_else(|e| e.into_inner()).clone();
                match changes(&text, running_files, &compiled.text) {
                    None => {
                        tracing::info!("the config is unchanged: everything keeps running");
                        continue;
                    }
                    Some(what) => tracing::info!(changed = %what, "the config changed"),
                }
                return Ending::Reload(Box::new(compiled));
            }
            Err(why) => {
                m.config_reload_failures.inc();
                m.config_last_reload_successful.set(0);
                tracing::error!(error = %why, "the config was not reloaded; the running config is kept");
                if let Some(reply) = reply {
                    let _ = reply.send(Err(why));
                }
            }
        }
    }
}

/// Seconds since the epoch, for the reload timestamp gauge.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// What differs between the running config (its text, and the named files' contents) and `new`:
/// `None` when nothing does — the same sections as YAML (a reflowed file is the same) and the
/// same contents of the files they name.
fn changes(running: &str, running_files: &[u8], new: &str) -> Option<String> {
    match lokiship::config::diff::changes(running, new) {
        Some(c) if c.is_empty() && lokiship::config::diff::named_files(new) == running_files => {
            None
        }
        Some(c) => Some(c.to_string()),
        None => Some("the whole file".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::changes;
    use lokiship::config::diff::named_files;

    #[test]
    fn a_renewed_certificate_is_a_change_a_reflowed_config_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("tls.crt");
        std::fs::write(&cert, "old").unwrap();
        let text = format!(
            "clients:\n  - url: http://x\n    tls_config: {{cert_file: '{}', key_file: /none}}\n",
            cert.display()
        );
        let files = named_files(&text);
        let reflowed = text.replace("  - url: http://x\n    ", "  - url: 'http://x'\n    ");
        assert_eq!(changes(&text, &files, &reflowed), None);
        assert_eq!(
            changes(&text, &files, &text.replace("http://x", "http://y")).as_deref(),
            Some("clients")
        );
        std::fs::write(&cert, "renewed").unwrap();
        assert_eq!(
            changes(&text, &files, &text).as_deref(),
            Some("no section (a file the config names changed)")
        );
    }
}
