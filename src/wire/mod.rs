//! Loki's push API on the wire, both ways: the protobuf `PushRequest` snappy-compressed in the raw
//! block format (Loki rejects the framed format), and the JSON body ([`json`]). The client encodes
//! with it, the push receiver and the tests' fake Loki decode with it.

pub mod json;

/// The Loki push API messages generated from `proto/push.proto`.
pub mod logproto {
    #![allow(missing_docs, clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/logproto.rs"));
}

use logproto::{EntryAdapter, PushRequest, StreamAdapter};
use prost::Message;

/// Encodes `streams` (label selector, entries in order) into a snappy-compressed `PushRequest`.
pub fn encode_push(streams: Vec<StreamAdapter>) -> Vec<u8> {
    encode_request(&PushRequest { streams })
}

/// [`encode_push`] of a request the caller keeps (its entries are needed again if the push is
/// abandoned).
pub fn encode_request(request: &PushRequest) -> Vec<u8> {
    match SCRATCH.try_lock() {
        Ok(mut scratch) => {
            let (raw, compressed) = &mut *scratch;
            let body = encode_with(request, raw, compressed);
            if raw.capacity() > KEEP_SCRATCH_BYTES {
                *scratch = (Vec::new(), Vec::new());
            }
            body
        }
        // Another client is encoding at this moment: use buffers of its own.
        Err(_) => encode_with(request, &mut Vec::new(), &mut Vec::new()),
    }
}

fn encode_with(request: &PushRequest, raw: &mut Vec<u8>, compressed: &mut Vec<u8>) -> Vec<u8> {
    raw.clear();
    raw.reserve(request.encoded_len());
    // Encoding into a buffer with enough capacity cannot fail.
    let _ = request.encode(raw);
    let max = snap::raw::max_compress_len(raw.len());
    if compressed.len() < max {
        compressed.resize(max, 0);
    }
    // Compressing an in-memory buffer can only fail for inputs over ~4 GiB, which batches never reach.
    let n = snap::raw::Encoder::new()
        .compress(raw, compressed)
        .unwrap_or(0);
    compressed[..n].to_vec()
}

/// The uncompressed protobuf and the compressor's output are written into buffers kept between
/// pushes: fresh ones per batch (1 MiB, and snappy's zeroed worst case) are returned to the OS
/// between batches and faulted in again, which at 10,000 lines/s cost a quarter of lokiship's CPU.
static SCRATCH: std::sync::Mutex<(Vec<u8>, Vec<u8>)> =
    std::sync::Mutex::new((Vec::new(), Vec::new()));

/// Buffers grown past this (a large `batchsize`) are not kept between pushes.
const KEEP_SCRATCH_BYTES: usize = 8 << 20;

/// The most a push body may decompress to: a small body that claims more is refused before
/// anything is allocated.
pub const MAX_DECOMPRESSED: usize = 512 << 20;

/// Decodes a push body (the push receiver's, and the tests' fake Loki's).
pub fn decode_push(body: &[u8]) -> Result<PushRequest, String> {
    let claimed = snap::raw::decompress_len(body).map_err(|e| format!("snappy: {e}"))?;
    if claimed > MAX_DECOMPRESSED {
        return Err(format!(
            "snappy: the body claims {claimed} bytes decompressed, more than {MAX_DECOMPRESSED}"
        ));
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| format!("snappy: {e}"))?;
    PushRequest::decode(raw.as_slice()).map_err(|e| format!("protobuf: {e}"))
}

/// Decodes a push body as Loki does: JSON when `content_type` says so, else snappy protobuf;
/// gunzipped first when `gzip` (the `Content-Encoding`), never past [`MAX_DECOMPRESSED`].
pub fn decode_body(content_type: &str, gzip: bool, body: &[u8]) -> Result<PushRequest, String> {
    let body = if gzip {
        use std::io::Read as _;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(body)
            .take(MAX_DECOMPRESSED as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| format!("gzip: {e}"))?;
        if out.len() > MAX_DECOMPRESSED {
            return Err(format!(
                "gzip: more than {MAX_DECOMPRESSED} bytes once decompressed"
            ));
        }
        std::borrow::Cow::Owned(out)
    } else {
        std::borrow::Cow::Borrowed(body)
    };
    if content_type.starts_with("application/json") {
        json::decode(&body)
    } else {
        decode_push(&body)
    }
}

/// Nanoseconds since the epoch of a protobuf timestamp (the inverse of [`entry_adapter`]'s).
pub fn timestamp_ns(ts: Option<prost_types::Timestamp>) -> i64 {
    let ts = ts.unwrap_or_default();
    ts.seconds
        .saturating_mul(1_000_000_000)
        .saturating_add(i64::from(ts.nanos))
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
            .map(|(name, value)| logproto::LabelPairAdapter { name, value })
            .collect(),
    }
}

/// The parts of a protobuf entry: the inverse of [`entry_adapter`].
pub fn entry_parts(e: EntryAdapter) -> (i64, String, Vec<(String, String)>) {
    (
        timestamp_ns(e.timestamp),
        e.line,
        e.structured_metadata
            .into_iter()
            .map(|p| (p.name, p.value))
            .collect(),
    )
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
