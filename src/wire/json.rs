//! Loki's JSON push body: `{"streams":[{"stream":{labels},"values":[["<ns>","<line>",{metadata}]]}]}`.

use super::logproto::{EntryAdapter, PushRequest, StreamAdapter};
use super::{entry_adapter, timestamp_ns};
use std::collections::BTreeMap;

/// Encodes `streams` as Loki's JSON push body, gzip-compressed:
/// `{"streams":[{"stream":{labels},"values":[["<ns>","<line>",{metadata}]]}]}`.
pub fn encode(streams: &[(crate::entry::Labels, Vec<EntryAdapter>)]) -> Vec<u8> {
    use std::io::Write as _;
    let streams: Vec<serde_json::Value> = streams
        .iter()
        .map(|(labels, entries)| {
            let stream: serde_json::Map<String, serde_json::Value> = labels
                .iter()
                .map(|(k, v)| (k.to_string(), serde_json::Value::from(v)))
                .collect();
            let values: Vec<serde_json::Value> = entries
                .iter()
                .map(|e| {
                    let ns = timestamp_ns(e.timestamp);
                    let mut value = vec![
                        serde_json::Value::from(ns.to_string()),
                        serde_json::Value::from(e.line.as_str()),
                    ];
                    if !e.structured_metadata.is_empty() {
                        let meta: serde_json::Map<String, serde_json::Value> = e
                            .structured_metadata
                            .iter()
                            .map(|p| (p.name.clone(), serde_json::Value::from(p.value.as_str())))
                            .collect();
                        value.push(serde_json::Value::Object(meta));
                    }
                    serde_json::Value::Array(value)
                })
                .collect();
            serde_json::json!({"stream": stream, "values": values})
        })
        .collect();
    let body = serde_json::json!({ "streams": streams }).to_string();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = gz.write_all(body.as_bytes());
    gz.finish().unwrap_or_default()
}

#[derive(serde::Deserialize)]
struct JsonPush {
    streams: Vec<JsonStream>,
}

#[derive(serde::Deserialize)]
struct JsonStream {
    stream: BTreeMap<String, String>,
    values: Vec<JsonValue>,
}

/// `["<unix ns>", "<line>"]`, or with a third element, the structured metadata.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum JsonValue {
    Plain((String, String)),
    WithMetadata((String, String, BTreeMap<String, String>)),
}

/// Decodes an (uncompressed) JSON push body; each stream's labels are rendered as a selector, as
/// in the protobuf body.
pub fn decode(body: &[u8]) -> Result<PushRequest, String> {
    let request: JsonPush = serde_json::from_slice(body).map_err(|e| format!("JSON: {e}"))?;
    let mut streams = Vec::with_capacity(request.streams.len());
    for stream in request.streams {
        if stream.stream.is_empty() {
            return Err("a stream has no labels".into());
        }
        let labels: crate::entry::Labels = stream
            .stream
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut entries = Vec::with_capacity(stream.values.len());
        for value in stream.values {
            let (ts, line, sm) = match value {
                JsonValue::Plain((ts, line)) => (ts, line, Default::default()),
                JsonValue::WithMetadata((ts, line, sm)) => (ts, line, sm),
            };
            let ns = ts
                .parse()
                .map_err(|_| format!("timestamp {ts:?} is not nanoseconds since the epoch"))?;
            entries.push(entry_adapter(ns, line, sm.into_iter().collect()));
        }
        streams.push(StreamAdapter {
            labels: labels.render(),
            entries,
            hash: 0,
        });
    }
    Ok(PushRequest { streams })
}
