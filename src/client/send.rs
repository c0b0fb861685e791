//! Sends push bodies to one Loki endpoint, with retries and backoff.
//!
//! What each answer means is [`super::retry::decide`]'s (Promtail's and Vector's rule); this
//! module makes the attempts, waits, logs Loki's answer (its first KiB) and counts the outcome.
//!
//! Unlike Promtail, lokiship does not drop a batch after `max_retries` transient failures: that would
//! lose lines that are still on disk. Past `max_retries` it logs an error and keeps retrying at
//! `max_period`; reading pauses behind the full queue, and positions stay where they are, until Loki
//! is back or lokiship is stopped. (A client with a disk queue asks for one attempt, `fail_fast`,
//! and makes the retries from its disk queue.) Only `-stdin`, whose lines nothing keeps, drops the
//! batch past `max_retries` (`give_up_after_max_retries`), and its exit code says so.

use super::answer::{Answer, MAX_ANSWER_BODY};
use super::rejection::StreamCount;
use super::retry::{self, Decision, Policy};
use crate::metrics::{metrics, DropLabels, HostLabels, RefusedLabels, RequestLabels};
use reqwest::header::{HeaderMap, AUTHORIZATION};
use std::time::{Duration, Instant};

/// Why a sender could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SenderError {
    #[error("client {host}: {message}")]
    Config { host: String, message: String },
}

/// After one attempt: the push ended, or is retried after `wait` (`asked`: Loki's
/// `Retry-After`, not jittered).
enum Next {
    Done(Outcome),
    Retry { wait: Duration, asked: bool },
}

/// How a push ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Loki refused it for good; the reason is the `reason` label of the dropped metrics.
    Dropped(&'static str),
    /// Shutdown came before delivery; the lines were not acknowledged.
    Abandoned,
    /// The first attempt failed and the caller asked not to retry (`fail_fast`): it has a disk
    /// queue to keep the lines in while Loki is failing. The retry is due after this wait
    /// (backoff, or the 429's `Retry-After`).
    Failed(Duration),
}

pub struct Sender {
    http: reqwest::Client,
    url: reqwest::Url,
    host: String,
    /// How long a push may take (`timeout`), and a stop's push.
    timeout: Duration,
    policy: Policy,
    /// `backoff_config.max_retries`: past it, an error is logged (and the push goes on, unless
    /// `give_up`).
    max_retries: u32,
    give_up: bool,
    credentials: Option<super::auth::Credentials>,
    static_headers: HeaderMap,
    health: std::sync::Arc<super::health::ClientHealth>,
}

impl Sender {
    /// The sender of a compiled client; builds its HTTP client (reading TLS files).
    pub fn new(settings: &super::settings::Settings) -> Result<Self, SenderError> {
        let http =
            super::http::client(settings.timeout, &settings.connection).map_err(|message| {
                SenderError::Config {
                    host: settings.host.clone(),
                    message,
                }
            })?;
        let health = std::sync::Arc::new(super::health::ClientHealth::new(
            settings.host.clone(),
            settings.unhealthy_after,
        ));
        Ok(Self {
            http,
            url: settings.url.clone(),
            host: settings.host.clone(),
            timeout: settings.timeout,
            policy: settings.policy,
            max_retries: settings.max_retries,
            give_up: settings.give_up_after_max_retries,
            credentials: settings.credentials.clone(),
            static_headers: settings.headers.clone(),
            health,
        })
    }

    /// Whether this client is failing, for `/ready`.
    pub fn health(&self) -> std::sync::Arc<super::health::ClientHealth> {
        self.health.clone()
    }

    /// The `host` label of this client's metrics.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Pushes `body` for `tenant` until it is delivered or refused for good. Once `shutdown` is set,
    /// attempts continue for at most the client `timeout`, then the batch is abandoned (unacknowledged,
    /// so its lines are read again after the restart). With `fail_fast`, a failed attempt that would
    /// be retried ends it instead ([`Outcome::Failed`]).
    pub async fn send(
        &self,
        body: Vec<u8>,
        tenant: &str,
        streams: &[StreamCount],
        shutdown: &crate::shutdown::StopSignal,
        fail_fast: bool,
    ) -> Outcome {
        let mut deadline = shutdown.is_stopped().then(|| Instant::now() + self.timeout);
        let host = HostLabels {
            host: self.host.clone(),
        };
        let m = metrics();
        m.encoded_bytes
            .get_or_create(&host)
            .inc_by(body.len() as u64);
        let body = bytes::Bytes::from(body);
        let mut attempt: u32 = 0;
        loop {
            let started = Instant::now();
            let result = self.request(body.clone(), tenant).await;
            let status = result.as_ref().ok().map(|a| a.status.as_u16());
            self.observe(started, status);
            let (wait, asked) = match self.judge(&result, attempt, tenant, streams) {
                Next::Done(outcome) => return outcome,
                Next::Retry { wait, asked } => (wait, asked),
            };
            if deadline.is_none() && shutdown.is_stopped() {
                deadline = Some(Instant::now() + self.timeout);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Outcome::Abandoned;
            }
            attempt += 1;
            m.batch_retries.get_or_create(&host).inc();
            if attempt == self.max_retries && self.give_up {
                let entries: usize = streams.iter().map(|s| s.entries).sum();
                let bytes: usize = streams.iter().map(|s| s.bytes).sum();
                tracing::error!(host = %self.host, attempts = attempt, entries,
                    "Loki still not accepting after max_retries; dropping the batch (its lines cannot be read again)");
                return self.dropped("ingester_error", tenant, entries, bytes);
            }
            if attempt == self.max_retries {
                tracing::error!(host = %self.host, attempts = attempt,
                    "Loki still not accepting after max_retries; lokiship keeps retrying and holds positions so nothing is lost");
            }
            // Loki's Retry-After is what it asked for; a backoff is jittered.
            let mut wait = if asked {
                wait
            } else {
                retry::jittered(wait, rand::random::<f64>())
            };
            if let Some(d) = deadline {
                wait = wait.min(d.saturating_duration_since(Instant::now()));
            }
            if fail_fast {
                return Outcome::Failed(wait);
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.stopped(), if deadline.is_none() => {
                    // Shutting down: one more attempt, bounded by the client timeout.
                    deadline = Some(Instant::now() + self.timeout);
                }
            }
        }
    }

    /// Counts one attempt: its duration by status, and the client's health for `/ready`.
    fn observe(&self, started: Instant, status: Option<u16>) {
        metrics()
            .request_duration
            .get_or_create(&RequestLabels {
                status_code: status.map_or_else(|| "error".to_string(), |s| s.to_string()),
                host: self.host.clone(),
            })
            .observe(started.elapsed().as_secs_f64());
        if status.is_none_or(|s| s == 429 || s >= 500) {
            self.health.failed();
        } else {
            self.health.answered();
        }
    }

    /// What attempt `attempt`'s answer (or error) means for the batch ([`retry::decide`]),
    /// counted and logged.
    fn judge(
        &self,
        result: &Result<Answer, reqwest::Error>,
        attempt: u32,
        tenant: &str,
        streams: &[StreamCount],
    ) -> Next {
        let entries: usize = streams.iter().map(|s| s.entries).sum();
        let line_bytes: usize = streams.iter().map(|s| s.bytes).sum();
        let status = result.as_ref().ok().map(|a| a.status.as_u16());
        let no_headers = HeaderMap::new();
        let headers = result.as_ref().map_or(&no_headers, |a| &a.headers);
        match (
            retry::decide(status, headers, attempt, &self.policy),
            result,
        ) {
            (Decision::Delivered, _) => {
                let host = HostLabels {
                    host: self.host.clone(),
                };
                let m = metrics();
                m.sent_entries.get_or_create(&host).inc_by(entries as u64);
                m.sent_bytes.get_or_create(&host).inc_by(line_bytes as u64);
                self.health.delivered();
                Next::Done(Outcome::Delivered)
            }
            (Decision::PartlyRefused, Ok(answer)) => {
                self.health.error(describe(answer, "partly refused"));
                Next::Done(self.refused_400(answer, tenant, streams))
            }
            (Decision::Drop { reason }, Ok(answer)) => {
                self.health
                    .error(describe(answer, &format!("dropped: {reason}")));
                if reason == "rate_limited" {
                    tracing::warn!(host = %self.host, body = %answer.excerpt(), "Loki rate-limited a batch; dropping it (drop_rate_limited_batches)");
                } else {
                    tracing::error!(host = %self.host, status = answer.status.as_u16(), body = %answer.excerpt(), entries, "Loki refused a batch; dropping it (not retried)");
                    self.count_refused(answer.status.as_u16(), tenant, entries);
                }
                Next::Done(self.dropped(reason, tenant, entries, line_bytes))
            }
            (Decision::Retry { wait, asked }, Ok(answer)) => {
                self.health.error(describe(answer, "retried"));
                if answer.status.as_u16() == 429 {
                    tracing::warn!(host = %self.host, attempt, body = %answer.excerpt(), "Loki rate-limited a batch (429); retrying");
                } else {
                    tracing::warn!(host = %self.host, attempt, status = answer.status.as_u16(), body = %answer.excerpt(), "Loki failed a push; retrying");
                }
                Next::Retry { wait, asked }
            }
            (Decision::Retry { wait, asked }, Err(e)) => {
                self.health.error(format!("{} (retried)", error_chain(e)));
                tracing::warn!(host = %self.host, attempt, error = %error_chain(e), "push failed; retrying");
                Next::Retry { wait, asked }
            }
            // Without an answer there is nothing but a retry to decide.
            (_, Err(_)) => Next::Retry {
                wait: self.policy.backoff(attempt),
                asked: false,
            },
        }
    }

    fn dropped(
        &self,
        reason: &'static str,
        tenant: &str,
        entries: usize,
        line_bytes: usize,
    ) -> Outcome {
        let labels = DropLabels {
            host: self.host.clone(),
            reason: reason.into(),
            tenant: tenant.to_string(),
        };
        metrics()
            .dropped_entries
            .get_or_create(&labels)
            .inc_by(entries as u64);
        metrics()
            .dropped_bytes
            .get_or_create(&labels)
            .inc_by(line_bytes as u64);
        Outcome::Dropped(reason)
    }

    async fn request(&self, body: bytes::Bytes, tenant: &str) -> Result<Answer, reqwest::Error> {
        let mut req = self
            .http
            .post(self.url.clone())
            .headers(self.static_headers.clone())
            .body(body);
        if !tenant.is_empty() {
            req = req.header("X-Scope-OrgID", tenant);
        }
        if let Some(auth) = self.authorization() {
            req = req.header(AUTHORIZATION, auth);
        }
        let mut resp = req.send().await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let mut body = Vec::new();
        let mut complete = true;
        if !status.is_success() {
            // Read up to MAX_ANSWER_BODY: a 400 names every refused entry (Loki 3: 28 KB for
            // 200 entries), and accounting needs all of it; a longer body is not read on.
            loop {
                match resp.chunk().await {
                    Ok(Some(chunk)) if body.len() + chunk.len() <= MAX_ANSWER_BODY => {
                        body.extend_from_slice(&chunk)
                    }
                    Ok(Some(_)) | Err(_) => {
                        complete = false;
                        break;
                    }
                    Ok(None) => break,
                }
            }
        }
        Ok(Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            complete,
        })
    }

    /// Counts entries Loki refused with a 4xx (other than 429).
    fn count_refused(&self, status: u16, tenant: &str, entries: usize) {
        metrics()
            .refused_entries
            .get_or_create(&RefusedLabels {
                host: self.host.clone(),
                status_code: status.to_string(),
                tenant: tenant.to_string(),
            })
            .inc_by(entries as u64);
    }

    /// A 400: Loki stored the valid streams of the push; what its body says it refused is
    /// dropped, by reason, and the rest counts as sent.
    fn refused_400(&self, answer: &Answer, tenant: &str, streams: &[StreamCount]) -> Outcome {
        let entries: usize = streams.iter().map(|s| s.entries).sum();
        let line_bytes: usize = streams.iter().map(|s| s.bytes).sum();
        let refused = super::rejection::refused(&answer.body, answer.complete, streams);
        let reasons: Vec<String> = refused
            .by_reason
            .iter()
            .map(|r| format!("{}={}", r.reason, r.entries))
            .collect();
        tracing::error!(host = %self.host, status = 400, body = %answer.excerpt(), body_bytes = answer.body.len(),
            body_complete = answer.complete, entries, refused = refused.entries(), reasons = %reasons.join(","),
            "Loki refused entries of a batch; they are dropped (not retried)");
        let host = HostLabels {
            host: self.host.clone(),
        };
        let m = metrics();
        let sent = entries.saturating_sub(refused.entries());
        m.sent_entries.get_or_create(&host).inc_by(sent as u64);
        m.sent_bytes
            .get_or_create(&host)
            .inc_by(line_bytes.saturating_sub(refused.bytes()) as u64);
        self.count_refused(400, tenant, refused.entries());
        let mut outcome = Outcome::Delivered;
        for r in &refused.by_reason {
            outcome = self.dropped(r.reason, tenant, r.entries, r.bytes);
        }
        outcome
    }

    /// The Authorization header, reading credential files on every request so rotated secrets apply.
    fn authorization(&self) -> Option<String> {
        self.credentials.as_ref()?.header()
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

/// An answer for the status page: `503 Service Unavailable (retried): <body>`.
fn describe(answer: &Answer, what: &str) -> String {
    let body = answer.excerpt();
    if body.is_empty() {
        format!("{} ({what})", answer.status)
    } else {
        format!("{} ({what}): {body}", answer.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::ClientConfig;

    fn sender(yaml: &str) -> Sender {
        let config: ClientConfig = serde_yaml_ng::from_str(yaml).unwrap();
        Sender::new(&super::super::settings::Settings::compile(&config).unwrap()).unwrap()
    }

    #[test]
    fn every_auth_mode_makes_its_header() {
        use base64::Engine as _;
        let s = sender(
            "{url: 'http://127.0.0.1:1/loki/api/v1/push', basic_auth: {username: u, password: p}}",
        );
        let want = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("u:p")
        );
        assert_eq!(s.authorization(), Some(want));

        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "first\n").unwrap();
        let s = sender(&format!(
            "{{url: 'http://127.0.0.1:1/loki/api/v1/push', bearer_token_file: {}}}",
            token.display()
        ));
        assert_eq!(s.authorization().as_deref(), Some("Bearer first"));
        // A rotated service-account token applies to the next request.
        std::fs::write(&token, "second").unwrap();
        assert_eq!(s.authorization().as_deref(), Some("Bearer second"));

        let s = sender("{url: 'http://127.0.0.1:1/loki/api/v1/push', bearer_token: inline}");
        assert_eq!(s.authorization().as_deref(), Some("Bearer inline"));
        let s = sender(&format!(
            "{{url: 'http://127.0.0.1:1/loki/api/v1/push', authorization: {{type: Token, credentials_file: {}}}}}",
            token.display()
        ));
        assert_eq!(s.authorization().as_deref(), Some("Token second"));
        let s =
            sender("{url: 'http://127.0.0.1:1/loki/api/v1/push', authorization: {credentials: c}}");
        assert_eq!(
            s.authorization().as_deref(),
            Some("Bearer c"),
            "type defaults to Bearer"
        );
        let s = sender("{url: 'http://127.0.0.1:1/loki/api/v1/push'}");
        assert_eq!(s.authorization(), None);
    }
}
