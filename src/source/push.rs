//! `loki_push_api`: a Loki push endpoint that other shippers (Promtail, Docker's Loki driver,
//! another lokiship) send to; what arrives runs through the job's pipeline and goes to the clients.
//!
//! `POST /loki/api/v1/push` takes Loki's bodies (snappy-compressed protobuf, or JSON, gzip'ed or
//! not); `POST /loki/api/v1/raw` takes plain lines, one entry each, labelled with `labels` only.
//!
//! A pushed line cannot be read again: once the sender got its 204 it forgets it. So the receiver
//! answers 204 only when every client has the request's entries safe — on its disk queue
//! (fsync'd; every client has one unless `wal.enabled: false`), or delivered
//! to Loki ([`super::hand_over`]). What cannot be made safe within its timeout gets a 503, and the sender retries
//! (the entries may then arrive twice: at least once, never lost). A body Loki would refuse gets a
//! 400 that says why. Both are counted in `lokiship_push_errors{reason}`.

use super::hand_over::DurableHandOver;
use crate::entry::Labels;
use crate::pipeline::Processing;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;

/// The largest request body taken (compressed), as Loki's default `grpc_server_max_recv_msg_size`.
const MAX_BODY: usize = 100 << 20;

/// One `loki_push_api` scrape config.
pub struct PushReceiver {
    /// Set on every entry, over the pushed labels.
    pub labels: Labels,
    pub use_incoming_timestamp: bool,
    pub hand_over: Arc<DurableHandOver>,
    /// Checked before a body is read.
    pub credentials: super::receiver_auth::Credentials,
}

/// One pushed entry, before the pipeline.
#[derive(Debug)]
struct Pushed {
    labels: Labels,
    timestamp_ns: i64,
    line: String,
    structured_metadata: Vec<(String, String)>,
}

/// Serves `receiver` on `addr` (HTTPS with `tls`) within `limits` until `stop` fires; returns the
/// bound address.
pub async fn serve(
    receiver: Arc<PushReceiver>,
    addr: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: super::http_receiver::Limits,
    stop: crate::shutdown::StopSignal,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let app = Router::new()
        .route("/loki/api/v1/push", post(push))
        .route("/loki/api/v1/raw", post(raw))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .route_layer(axum::middleware::from_fn_with_state(
            receiver.clone(),
            authenticate,
        ))
        .route("/ready", get(|| async { "ready" }))
        .with_state(receiver);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let refused: super::http_receiver::Refused = Arc::new(push_error);
    let drain = super::hand_over::STORE_TIMEOUT + std::time::Duration::from_secs(5);
    let handle = tokio::spawn(super::http_receiver::serve(
        listener, app, tls, limits, stop, drain, refused,
    ));
    Ok((bound, handle))
}

/// Lets a request with the credentials through, before anything of its body is read.
async fn authenticate(
    State(r): State<Arc<PushReceiver>>,
    axum::extract::Extension(peer): axum::extract::Extension<super::receiver_auth::Peer>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match r.credentials.check(peer, request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refusal) => {
            push_error(refusal.reason());
            tracing::warn!(
                reason = refusal.reason(),
                "push receiver: refused a request without credentials"
            );
            refusal.response()
        }
    }
}

/// Counts a refused request in `lokiship_push_errors{reason}`.
fn push_error(reason: &str) {
    crate::metrics::metrics()
        .push_errors
        .get_or_create(&crate::metrics::ReasonLabels {
            reason: reason.into(),
        })
        .inc();
}

async fn push(State(r): State<Arc<PushReceiver>>, headers: HeaderMap, body: Bytes) -> Response {
    match decode(&headers, &body) {
        Ok(entries) => r.store(entries).await,
        Err(why) => bad_request(why),
    }
}

async fn raw(State(r): State<Arc<PushReceiver>>, body: Bytes) -> Response {
    let Ok(text) = std::str::from_utf8(&body) else {
        return bad_request("the body is not UTF-8".into());
    };
    let now = crate::entry::now_ns();
    let entries = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(|line| Pushed {
            labels: Labels::default(),
            timestamp_ns: now,
            line: line.to_string(),
            structured_metadata: Vec::new(),
        })
        .collect();
    r.store(entries).await
}

fn bad_request(why: String) -> Response {
    push_error("bad_request");
    tracing::warn!(error = %why, "push receiver: refused a request");
    (StatusCode::BAD_REQUEST, why + "\n").into_response()
}

impl PushReceiver {
    /// Runs `entries` through the pipeline, hands them to the clients, and answers once every
    /// client has them safe.
    async fn store(self: Arc<Self>, entries: Vec<Pushed>) -> Response {
        crate::metrics::metrics()
            .push_received_entries
            .inc_by(entries.len() as u64);
        let now = crate::entry::now_ns();
        let entries = entries
            .into_iter()
            .map(|e| {
                let mut labels = e.labels;
                for (name, value) in self.labels.iter() {
                    labels.insert(name, value);
                }
                let ts = if self.use_incoming_timestamp {
                    e.timestamp_ns
                } else {
                    now
                };
                let mut p = Processing::new(labels, e.line, ts);
                p.structured_metadata = e.structured_metadata;
                p
            })
            .collect();
        match self.hand_over.store(entries).await {
            Ok(()) => StatusCode::NO_CONTENT.into_response(),
            Err(why) => unavailable(why.reason()),
        }
    }
}

fn unavailable(why: &str) -> Response {
    crate::metrics::metrics()
        .push_errors
        .get_or_create(&crate::metrics::ReasonLabels {
            reason: "unavailable".into(),
        })
        .inc();
    tracing::warn!(why, "push receiver: answering 503, the sender will retry");
    (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response()
}

/// The entries of a push body: protobuf (snappy) unless the content type says JSON.
fn decode(headers: &HeaderMap, body: &[u8]) -> Result<Vec<Pushed>, String> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/x-protobuf");
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let request = crate::wire::decode_body(content_type, gzip, body)?;
    let mut out = Vec::new();
    for stream in request.streams {
        let labels = stream_labels(&stream.labels)?;
        for e in stream.entries {
            let (timestamp_ns, line, structured_metadata) = crate::wire::entry_parts(e);
            out.push(Pushed {
                labels: labels.clone(),
                timestamp_ns,
                line,
                structured_metadata,
            });
        }
    }
    Ok(out)
}

fn stream_labels(text: &str) -> Result<Labels, String> {
    let labels = crate::pipeline::selector::parse_labels(text)
        .map_err(|e| format!("stream labels {text:?}: {e}"))?;
    if labels.is_empty() {
        return Err(format!("stream labels {text:?}: a stream needs a label"));
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protobuf_and_json_bodies_decode_to_the_same_entries() {
        let adapter = crate::wire::entry_adapter(
            1_700_000_000_123_456_789,
            "hello".into(),
            vec![("trace_id".into(), "abc".into())],
        );
        let body = crate::wire::encode_push(vec![crate::wire::logproto::StreamAdapter {
            labels: r#"{job="app", msg="a \"quoted\" value"}"#.into(),
            entries: vec![adapter],
            hash: 0,
        }]);
        let from_proto = decode(&HeaderMap::new(), &body).unwrap();
        let json = br#"{"streams":[{"stream":{"job":"app","msg":"a \"quoted\" value"},
            "values":[["1700000000123456789","hello",{"trace_id":"abc"}]]}]}"#;
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        let from_json = decode(&headers, json).unwrap();
        for got in [&from_proto[0], &from_json[0]] {
            assert_eq!(
                got.labels.render(),
                r#"{job="app", msg="a \"quoted\" value"}"#
            );
            assert_eq!(got.timestamp_ns, 1_700_000_000_123_456_789);
            assert_eq!(got.line, "hello");
            assert_eq!(
                got.structured_metadata,
                vec![("trace_id".to_string(), "abc".to_string())]
            );
        }
    }

    #[test]
    fn bodies_loki_would_refuse_say_why() {
        let json = |b: &[u8]| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
            decode(&h, b).unwrap_err()
        };
        assert!(decode(&HeaderMap::new(), b"not snappy")
            .unwrap_err()
            .starts_with("snappy"));
        // A 5-byte body whose header claims 4 GiB is refused, not allocated.
        let bomb = [0xff, 0xff, 0xff, 0xff, 0x0f];
        assert!(decode(&HeaderMap::new(), &bomb)
            .unwrap_err()
            .contains("claims"));
        assert!(json(b"{").starts_with("JSON"));
        assert!(json(br#"{"streams":[{"stream":{},"values":[]}]}"#).contains("no labels"));
        assert!(
            json(br#"{"streams":[{"stream":{"a":"b"},"values":[["soon","x"]]}]}"#)
                .contains("not nanoseconds")
        );
        let body = crate::wire::encode_push(vec![crate::wire::logproto::StreamAdapter {
            labels: "{job=unquoted}".into(),
            entries: vec![],
            hash: 0,
        }]);
        assert!(decode(&HeaderMap::new(), &body)
            .unwrap_err()
            .contains("stream labels"));
    }

    #[test]
    fn fuzz_push_decoder() {
        let adapter = crate::wire::entry_adapter(
            1_700_000_000_123_456_789,
            "hello \u{1b}[0m \u{0}".into(),
            vec![("trace_id".into(), "abc".into())],
        );
        let body = crate::wire::encode_push(vec![crate::wire::logproto::StreamAdapter {
            labels: r#"{job="app", msg="a \"quoted\" value"}"#.into(),
            entries: vec![adapter.clone(), adapter],
            hash: 0,
        }]);
        let protobuf = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
        let json = br#"{"streams":[{"stream":{"job":"app","msg":"a \"quoted\" value"},
            "values":[["1700000000123456789","hello",{"trace_id":"abc"}],["1","x"]]}]}"#
            .to_vec();
        let mut as_json = HeaderMap::new();
        as_json.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        let mut as_gzip_json = as_json.clone();
        as_gzip_json.insert(header::CONTENT_ENCODING, "gzip".parse().unwrap());
        let tokens = [
            "{",
            "}",
            "[",
            "]",
            "\"streams\"",
            "\"values\"",
            "\"stream\"",
            "\\u0000",
            "=\"",
            "\", ",
            "9999999999999999999999",
        ];
        crate::fuzz::run("push_decoder", &[protobuf, json], &tokens, |input| {
            // The input as sent, and wrapped so that the inner parsers see it: snappy around
            // protobuf, gzip around JSON.
            let _ = decode(&HeaderMap::new(), input);
            if let Ok(snappy) = snap::raw::Encoder::new().compress_vec(input) {
                let _ = decode(&HeaderMap::new(), &snappy);
            }
            let _ = decode(&as_json, input);
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut gz, input).unwrap();
            let _ = decode(&as_gzip_json, &gz.finish().unwrap());
            let _ = decode(&as_gzip_json, input);
        });
    }
}
