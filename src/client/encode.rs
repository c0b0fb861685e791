//! Encodes a batch as Loki's push body: a protobuf `PushRequest`, snappy-compressed in the raw block
//! format (Loki rejects the framed format).

use crate::logproto::{EntryAdapter, PushRequest, StreamAdapter};
use prost::Message;

/// Encodes `streams` (label selector, entries in order) into a snappy-compressed `PushRequest`.
pub fn encode_push(streams: Vec<StreamAdapter>) -> Vec<u8> {
    let request = PushRequest { streams };
    let raw = request.encode_to_vec();
    // Compressing an in-memory buffer can only fail for inputs over ~4 GiB, which batches never reach.
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .unwrap_or_default()
}

/// Decodes a push body; for tests and tools.
pub fn decode_push(body: &[u8]) -> Result<PushRequest, String> {
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| format!("snappy: {e}"))?;
    PushRequest::decode(raw.as_slice()).map_err(|e| format!("protobuf: {e}"))
}

/// One protobuf entry.
pub fn entry_adapter(
    timestamp_ns: i64,
    line: String,
    structured_metadata: Vec<(String, String)>,
) -> EntryAdapter {
    EntryAdapter {
        timestamp: Some(prost_types::Timestamp {
            seconds: timestamp_ns.div_euclid(1_000_000_000),
            nanos: timestamp_ns.rem_euclid(1_000_000_000) as i32,
        }),
        line,
        structured_metadata: structured_metadata
            .into_iter()
            .map(|(name, value)| crate::logproto::LabelPairAdapter { name, value })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_snappy_and_protobuf() {
        let streams = vec![StreamAdapter {
            labels: r#"{job="audit"}"#.into(),
            entries: vec![entry_adapter(
                1_795_514_400_123_456_000,
                "line".into(),
                vec![("a".into(), "b".into())],
            )],
            hash: 0,
        }];
        let body = encode_push(streams.clone());
        let decoded = decode_push(&body).unwrap();
        assert_eq!(decoded.streams, streams);
        let ts = decoded.streams[0].entries[0].timestamp.unwrap();
        assert_eq!((ts.seconds, ts.nanos), (1_795_514_400, 123_456_000));
    }

    #[test]
    fn negative_timestamps_keep_nanos_positive() {
        let e = entry_adapter(-1, String::new(), Vec::new());
        let ts = e.timestamp.unwrap();
        assert_eq!((ts.seconds, ts.nanos), (-1, 999_999_999));
    }
}
