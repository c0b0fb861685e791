//! A batch of entries for one tenant, grouped by stream, with the acknowledgements of its lines.

use super::rejection::StreamCount;
use crate::config::schema::PushEncoding;
use crate::entry::ack::Ack;
use crate::entry::{Entry, Labels};
use crate::wire::logproto::{EntryAdapter, StreamAdapter};
use rustc_hash::FxHashMap as HashMap;
use std::time::Instant;

/// Entries waiting to be pushed together.
pub struct Batch {
    /// Keyed by label set; rendered to a stream selector once per stream when the batch is encoded.
    streams: HashMap<Labels, Vec<EntryAdapter>>,
    /// Bytes of lines and structured metadata: what `batchsize` limits.
    bytes: usize,
    entries: usize,
    acks: Vec<Ack>,
    created: Instant,
}

impl Batch {
    pub fn new() -> Self {
        Self {
            streams: HashMap::default(),
            bytes: 0,
            entries: 0,
            acks: Vec::new(),
            created: Instant::now(),
        }
    }

    /// Adds an entry to the stream `labels` (as returned by [`stream_labels`]).
    pub fn add(&mut self, labels: Labels, entry: Entry) {
        self.bytes += entry_size(&entry);
        self.entries += 1;
        if let Some(ack) = entry.ack {
            self.acks.push(ack);
        }
        let adapter =
            crate::wire::entry_adapter(entry.timestamp_ns, entry.line, entry.structured_metadata);
        self.streams.entry(labels).or_default().push(adapter);
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn entries(&self) -> usize {
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    pub fn age(&self) -> std::time::Duration {
        self.created.elapsed()
    }

    /// The encoded body, the acknowledgements to complete once it is delivered or dropped, what
    /// each stream holds (to read a partial refusal), and the entries themselves, moved back out
    /// of the request after encoding (no copy), in case the push is abandoned.
    pub fn into_body(self) -> Pushed {
        self.into_body_as(PushEncoding::Protobuf)
    }

    /// The entries and their acknowledgements, not encoded: a batch kept for the disk queue
    /// without being sent (see [`Pushed::into_entries`]).
    pub fn into_entries(self, tenant: &str, default_tenant: &str) -> (Vec<Entry>, Vec<Ack>) {
        let unsent = Pushed {
            body: Vec::new(),
            acks: Vec::new(),
            counts: Vec::new(),
            kept: self.streams.into_iter().collect(),
        };
        (unsent.into_entries(tenant, default_tenant), self.acks)
    }

    /// [`Batch::into_body`] in the client's `encoding`.
    pub fn into_body_as(self, encoding: PushEncoding) -> Pushed {
        let streams: Vec<(Labels, Vec<EntryAdapter>)> = self.streams.into_iter().collect();
        if encoding == PushEncoding::Json {
            let counts = streams
                .iter()
                .map(|(labels, entries)| stream_count(labels.render(), entries))
                .collect();
            let body = crate::wire::json::encode(&streams);
            return Pushed {
                body,
                acks: self.acks,
                counts,
                kept: streams,
            };
        }
        let mut counts = Vec::with_capacity(streams.len());
        let mut labels_kept = Vec::with_capacity(streams.len());
        let request = crate::wire::logproto::PushRequest {
            streams: streams
                .into_iter()
                .map(|(labels, entries)| {
                    let rendered = labels.render();
                    counts.push(stream_count(rendered.clone(), &entries));
                    labels_kept.push(labels);
                    StreamAdapter {
                        labels: rendered,
                        entries,
                        hash: 0,
                    }
                })
                .collect(),
        };
        let body = crate::wire::encode_request(&request);
        let kept = labels_kept
            .into_iter()
            .zip(request.streams)
            .map(|(labels, s)| (labels, s.entries))
            .collect();
        Pushed {
            body,
            acks: self.acks,
            counts,
            kept,
        }
    }
}

/// A batch ready to push.
pub struct Pushed {
    pub body: Vec<u8>,
    pub acks: Vec<Ack>,
    pub counts: Vec<StreamCount>,
    /// The entries by stream, for [`Pushed::into_entries`].
    kept: Vec<(Labels, Vec<EntryAdapter>)>,
}

impl Pushed {
    /// The entries again (without acknowledgements), to keep them in a disk queue when the push
    /// is abandoned: stream labels, plus the tenant label when it is not `default_tenant`.
    pub fn into_entries(self, tenant: &str, default_tenant: &str) -> Vec<Entry> {
        let mut out = Vec::new();
        for (mut labels, entries) in self.kept {
            if tenant != default_tenant {
                labels.insert(crate::entry::TENANT_LABEL, tenant);
            }
            for e in entries {
                let (timestamp_ns, line, structured_metadata) = crate::wire::entry_parts(e);
                out.push(Entry {
                    labels: labels.clone(),
                    timestamp_ns,
                    line,
                    structured_metadata,
                    ack: None,
                });
            }
        }
        out
    }
}

/// What one stream of a push holds.
fn stream_count(labels: String, entries: &[EntryAdapter]) -> StreamCount {
    StreamCount {
        labels,
        entries: entries.len(),
        bytes: entries
            .iter()
            .map(|e| {
                e.line.len()
                    + e.structured_metadata
                        .iter()
                        .map(|p| p.name.len() + p.value.len())
                        .sum::<usize>()
            })
            .sum(),
    }
}

impl Default for Batch {
    fn default() -> Self {
        Self::new()
    }
}

/// What an entry counts against `batchsize`.
pub fn entry_size(entry: &Entry) -> usize {
    entry.line.len()
        + entry
            .structured_metadata
            .iter()
            .map(|(n, v)| n.len() + v.len())
            .sum::<usize>()
}

/// Loki's limits on label names per stream and on their lengths (`limits_config` defaults).
pub const MAX_LABEL_NAMES: usize = 15;
pub const MAX_LABEL_NAME_LENGTH: usize = 1024;
pub const MAX_LABEL_VALUE_LENGTH: usize = 2048;

/// The labels an entry is sent under: its own without `__`-prefixed ones or empty values, plus the
/// client's external labels where the entry has none of that name. `Err` says why Loki would reject it.
pub fn stream_labels(mut labels: Labels, external: &Labels) -> Result<Labels, &'static str> {
    if labels
        .iter()
        .any(|(n, v)| n.starts_with("__") || v.is_empty())
    {
        labels.retain(|name, value| !name.starts_with("__") && !value.is_empty());
    }
    for (name, value) in external.iter() {
        if labels.get(name).is_none() {
            labels.insert(name, value);
        }
    }
    if labels.is_empty() {
        return Err("no labels");
    }
    if labels.len() > MAX_LABEL_NAMES {
        return Err("too many labels");
    }
    if labels.iter().any(|(n, _)| n.len() > MAX_LABEL_NAME_LENGTH) {
        return Err("label name longer than 1024 bytes");
    }
    if labels.iter().any(|(_, v)| v.len() > MAX_LABEL_VALUE_LENGTH) {
        return Err("label value longer than 2048 bytes");
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_internal_labels_and_adds_external_ones() {
        let labels: Labels = [("job", "audit"), ("__path__", "/x"), ("cluster", "mine")]
            .into_iter()
            .collect();
        let external: Labels = [("cluster", "prod"), ("region", "eu")]
            .into_iter()
            .collect();
        assert_eq!(
            stream_labels(labels, &external).unwrap().render(),
            r#"{cluster="mine", job="audit", region="eu"}"#
        );
    }

    #[test]
    fn refuses_what_loki_would_reject() {
        assert_eq!(
            stream_labels(Labels::new(), &Labels::new()),
            Err("no labels")
        );
        let many: Labels = (0..16)
            .map(|i| (format!("l{i}"), "v".to_string()))
            .collect();
        assert_eq!(stream_labels(many, &Labels::new()), Err("too many labels"));
        let value = "x".repeat(2049);
        let long: Labels = [("path", value.as_str())].into_iter().collect();
        assert_eq!(
            stream_labels(long, &Labels::new()),
            Err("label value longer than 2048 bytes")
        );
    }
}
