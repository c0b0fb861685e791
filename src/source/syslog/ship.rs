//! The shipper of a syslog job: received messages get their labels (the job's, over the meta
//! labels through `relabel_configs`), go through the pipeline, and are handed to the clients.
//!
//! One task per job takes the batches of all its connections, so that one hand-over (one fsync on
//! a disk queue) serves many messages; it runs the pipeline and the hand-over on a blocking thread.

use super::listen::Received;
use super::message::Outcome;
use super::SyslogJob;
use crate::entry::sink::{EntrySink, TrySendError};
use crate::entry::Entry;
use crate::pipeline::Processing;
use crate::shutdown::StopSignal;
use crate::source::relabel;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::Receiver;

/// Batches the connections may queue before they stop reading.
pub const QUEUE_BATCHES: usize = 8;
/// The most messages handed over in one go.
const MAX_MESSAGES: usize = 4096;
/// After a stop, how long the clients get to make room before what is left is given up.
const ROOM_AT_STOP: Duration = Duration::from_secs(5);

/// Ships what `rx` brings until every connection and the listener let go of it.
pub async fn run(
    job: Arc<SyslogJob>,
    mut rx: Receiver<Vec<Received>>,
    sink: Arc<dyn EntrySink>,
    stop: StopSignal,
) {
    loop {
        let batch = match job.pipeline.next_deadline() {
            Some(at) => tokio::select! {
                b = rx.recv() => b,
                _ = tokio::time::sleep_until(at.into()) => Some(Vec::new()),
            },
            None => rx.recv().await,
        };
        let Some(mut batch) = batch else { break };
        while batch.len() < MAX_MESSAGES {
            match rx.try_recv() {
                Ok(more) => batch.extend(more),
                Err(_) => break,
            }
        }
        let (j, s, st) = (job.clone(), sink.clone(), stop.clone());
        let shipped = tokio::task::spawn_blocking(move || ship(&j, batch, false, &*s, &st)).await;
        if !matches!(shipped, Ok(true)) {
            return;
        }
    }
    // Entries a stage still holds (multiline) leave with the receiver.
    let _ = tokio::task::spawn_blocking(move || ship(&job, Vec::new(), true, &*sink, &stop)).await;
}

/// Labels, pipeline and hand-over of `batch`; `false` once the clients are gone.
fn ship(
    job: &SyslogJob,
    batch: Vec<Received>,
    flush_all: bool,
    sink: &dyn EntrySink,
    stop: &StopSignal,
) -> bool {
    let mut out = Vec::with_capacity(batch.len());
    for received in batch {
        if let Some(p) = to_processing(job, received) {
            job.pipeline.run(p, &mut out);
        }
    }
    job.pipeline.flush(flush_all, &mut out);
    if out.is_empty() {
        return true;
    }
    hand_over(
        sink,
        out.into_iter().map(Processing::into_entry).collect(),
        stop,
    )
}

fn to_processing(job: &SyslogJob, r: Received) -> Option<Processing> {
    let (meta, line, timestamp) = match r.outcome {
        Outcome::Message(p) => (p.meta, p.line, p.timestamp_ns),
        Outcome::Unparsed(line) => (Vec::new(), line, None),
        Outcome::Empty => return None,
    };
    let timestamp = match timestamp {
        Some(t) if job.use_incoming_timestamp => t,
        _ => r.received_ns,
    };
    let peer = &r.peer;
    let meta = move || {
        let mut all: BTreeMap<String, String> = meta.into_iter().collect();
        all.insert("__syslog_connection_ip_address".into(), peer.ip.clone());
        if let Some(hostname) = &peer.hostname {
            all.insert("__syslog_connection_hostname".into(), hostname.clone());
        }
        all
    };
    let Some(labels) = relabel::entry_labels(&job.labels, &job.relabel, meta) else {
        dropped("empty_labels", 1);
        return None;
    };
    Some(Processing::new(labels, line, timestamp))
}

/// Hands `chunk` over, waiting for room; after a stop, for at most [`ROOM_AT_STOP`].
fn hand_over(sink: &dyn EntrySink, mut chunk: Vec<Entry>, stop: &StopSignal) -> bool {
    let mut give_up: Option<Instant> = None;
    loop {
        match sink.try_send_unrereadable(chunk) {
            Ok(()) => return true,
            Err(TrySendError::Closed) => return false,
            Err(TrySendError::Full(back)) => {
                if stop.is_stopped() {
                    let at = *give_up.get_or_insert_with(|| Instant::now() + ROOM_AT_STOP);
                    if Instant::now() >= at {
                        tracing::error!(messages = back.len(),
                            "syslog: stopping with the clients' queues full; these messages are lost");
                        dropped("queues_full_at_stop", back.len() as u64);
                        return true;
                    }
                }
                chunk = back;
                sink.wait_for_room(Duration::from_millis(100));
            }
        }
    }
}

fn dropped(reason: &str, n: u64) {
    crate::metrics::metrics()
        .os
        .syslog_dropped
        .get_or_create(&crate::metrics::ReasonLabels {
            reason: reason.into(),
        })
        .inc_by(n);
}
