//! Warnings and errors, rate-limited: one line per cause per minute, then a count of what was not
//! written — so that a Loki that fails for a day, or a file that cannot be read, cannot fill the
//! node's disk with lokiship's own log.
//!
//! A cause is where the event is logged (its callsite) and what it is about: the values of its
//! [`IDENTITY_FIELDS`] (`host`, `path`, …), not its error text, which often carries numbers that
//! change. Info and debug lines pass as they are.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tracing::callsite::{DefaultCallsite, Identifier};
use tracing::field::{Field, FieldSet, Visit};
use tracing::metadata::Kind;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// The fields that say what an event is about.
pub const IDENTITY_FIELDS: [&str; 10] = [
    "host", "path", "job", "url", "peer", "dir", "file", "tenant", "reason", "listen",
];

/// How often one cause is written.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Causes remembered at most; beyond, the oldest windows are forgotten.
const MAX_CAUSES: usize = 10_000;

/// When each cause was last written, and how many of its events were not since.
#[derive(Default)]
pub struct Limiter {
    window: Duration,
    causes: HashMap<String, (Instant, u64)>,
}

/// What to do with an event.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Write it; `suppressed` events of its cause were not written since the last one.
    Write {
        suppressed: u64,
    },
    Suppress,
}

impl Limiter {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            causes: HashMap::new(),
        }
    }

    pub fn decide(&mut self, cause: &str, now: Instant) -> Decision {
        if let Some((written, suppressed)) = self.causes.get_mut(cause) {
            if now.duration_since(*written) < self.window {
                *suppressed += 1;
                return Decision::Suppress;
            }
            let before = std::mem::take(suppressed);
            *written = now;
            return Decision::Write { suppressed: before };
        }
        if self.causes.len() >= MAX_CAUSES {
            let window = self.window;
            self.causes
                .retain(|_, (t, _)| now.duration_since(*t) < window);
        }
        self.causes.insert(cause.to_string(), (now, 0));
        Decision::Write { suppressed: 0 }
    }
}

/// `inner` (the log's format layer) with its warnings and errors rate-limited.
pub struct RateLimited<L> {
    inner: L,
    limiter: Mutex<Limiter>,
}

impl<L> RateLimited<L> {
    pub fn new(inner: L, window: Duration) -> Self {
        Self {
            inner,
            limiter: Mutex::new(Limiter::new(window)),
        }
    }
}

/// The cause of `event`: its callsite and identity fields.
fn cause(event: &Event<'_>) -> String {
    struct Identity(String);
    impl Visit for Identity {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if IDENTITY_FIELDS.contains(&field.name()) {
                let _ = write!(self.0, " {}={value:?}", field.name());
            }
        }
        fn record_str(&mut self, field: &Field, value: &str) {
            if IDENTITY_FIELDS.contains(&field.name()) {
                let _ = write!(self.0, " {}={value}", field.name());
            }
        }
    }
    let meta = event.metadata();
    let mut identity = Identity(format!(
        "{}:{}:{}",
        meta.file().unwrap_or(""),
        meta.line().unwrap_or(0),
        meta.name()
    ));
    event.record(&mut identity);
    identity.0
}

/// The callsite of the line that says how many were not written. Built by hand rather than with
/// `tracing::warn!`: an event dispatched from inside the subscriber is dropped by tracing.
static COUNT_CALLSITE: DefaultCallsite = DefaultCallsite::new(&COUNT_META);
static COUNT_META: Metadata<'static> = Metadata::new(
    "suppressed log lines",
    "lokiship::log_limit",
    Level::WARN,
    Some(file!()),
    Some(line!()),
    Some(module_path!()),
    FieldSet::new(
        &["message", "suppressed", "of"],
        Identifier(&COUNT_CALLSITE),
    ),
    Kind::EVENT,
);

/// Calls `write` with an event saying that `suppressed` lines of a cause logged by `target` were
/// not written.
fn with_count_event(suppressed: u64, target: &str, write: impl FnOnce(&Event<'_>)) {
    let fields = COUNT_META.fields();
    let (Some(message), Some(count), Some(of)) = (
        fields.field("message"),
        fields.field("suppressed"),
        fields.field("of"),
    ) else {
        return;
    };
    let text = format!(
        "the next line's cause was logged {suppressed} more times in the last minute; not written (one line per cause per minute)"
    );
    let values: [(&Field, Option<&dyn tracing::Value>); 3] = [
        (&message, Some(&text as &dyn tracing::Value)),
        (&count, Some(&suppressed as &dyn tracing::Value)),
        (&of, Some(&target as &dyn tracing::Value)),
    ];
    write(&Event::new(&COUNT_META, &fields.value_set(&values)));
}

impl<S: Subscriber, L: Layer<S>> Layer<S> for RateLimited<L> {
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let level = *event.metadata().level();
        if level > Level::WARN {
            return self.inner.on_event(event, ctx);
        }
        let decision = self
            .limiter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .decide(&cause(event), Instant::now());
        let Decision::Write { suppressed } = decision else {
            return;
        };
        if suppressed > 0 {
            with_count_event(suppressed, event.metadata().target(), |count| {
                self.inner.on_event(count, ctx.clone())
            });
        }
        self.inner.on_event(event, ctx);
    }

    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        self.inner.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.inner.on_layer(subscriber);
    }

    fn register_callsite(
        &self,
        metadata: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        self.inner.register_callsite(metadata)
    }

    fn enabled(&self, metadata: &tracing::Metadata<'_>, ctx: Context<'_, S>) -> bool {
        self.inner.enabled(metadata, ctx)
    }

    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        self.inner.on_new_span(attrs, id, ctx);
    }

    fn on_record(
        &self,
        span: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: Context<'_, S>,
    ) {
        self.inner.on_record(span, values, ctx);
    }

    fn on_enter(&self, id: &tracing::span::Id, ctx: Context<'_, S>) {
        self.inner.on_enter(id, ctx);
    }

    fn on_exit(&self, id: &tracing::span::Id, ctx: Context<'_, S>) {
        self.inner.on_exit(id, ctx);
    }

    fn on_close(&self, id: tracing::span::Id, ctx: Context<'_, S>) {
        self.inner.on_close(id, ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn one_line_per_cause_per_window_then_the_count() {
        let mut limiter = Limiter::new(WINDOW);
        let t0 = Instant::now();
        assert_eq!(limiter.decide("a", t0), Decision::Write { suppressed: 0 });
        for s in 1..=59 {
            let at = t0 + Duration::from_secs(s);
            assert_eq!(limiter.decide("a", at), Decision::Suppress);
        }
        assert_eq!(
            limiter.decide("b", t0 + Duration::from_secs(1)),
            Decision::Write { suppressed: 0 },
            "another cause has its own minute"
        );
        assert_eq!(
            limiter.decide("a", t0 + Duration::from_secs(60)),
            Decision::Write { suppressed: 59 }
        );
        assert_eq!(
            limiter.decide("a", t0 + Duration::from_secs(61)),
            Decision::Suppress
        );
    }

    /// Collects the messages that reach it.
    struct Lines(Arc<Mutex<Vec<String>>>);

    impl<S: Subscriber> Layer<S> for Lines {
        fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
            struct Message(String);
            impl Visit for Message {
                fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
                    let _ = write!(self.0, "{}={value:?} ", field.name());
                }
            }
            let mut m = Message(String::new());
            event.record(&mut m);
            self.0.lock().unwrap().push(m.0);
        }
    }

    #[test]
    fn a_failing_loki_writes_one_error_per_host_and_info_passes() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let subscriber =
            tracing_subscriber::registry().with(RateLimited::new(Lines(lines.clone()), WINDOW));
        tracing::subscriber::with_default(subscriber, || {
            for attempt in 0..1000 {
                tracing::error!(host = "loki-a:3100", attempt, error = %format!("status 500 after {attempt} ms"), "push failed");
                tracing::error!(host = "loki-b:3100", "push failed");
                tracing::info!(attempt, "progress");
            }
        });
        let lines = lines.lock().unwrap();
        let errors: Vec<_> = lines.iter().filter(|l| l.contains("push failed")).collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("loki-a") && errors[1].contains("loki-b"));
        assert_eq!(
            lines.iter().filter(|l| l.contains("progress")).count(),
            1000
        );
    }

    #[test]
    fn after_the_window_the_count_of_what_was_not_written_comes_first() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(RateLimited::new(
            Lines(lines.clone()),
            Duration::from_millis(50),
        ));
        let deadline = Instant::now() + Duration::from_secs(20);
        tracing::subscriber::with_default(subscriber, || {
            while !lines
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("suppressed="))
            {
                assert!(Instant::now() < deadline, "no count was written");
                tracing::warn!(path = "/var/log/x.log", "cannot read");
            }
        });
        let lines = lines.lock().unwrap();
        let at = lines
            .iter()
            .position(|l| l.contains("suppressed="))
            .unwrap();
        assert!(lines[at + 1].contains("cannot read"), "{lines:?}");
        assert!(!lines[at].contains("suppressed=0"), "{}", lines[at]);
    }
}
