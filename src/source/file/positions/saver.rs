//! The thread that writes the positions to disk while lokiship runs.

use super::Positions;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How soon after an acknowledgement the positions file is written (at most this often).
const ACK_WRITE_INTERVAL: Duration = Duration::from_millis(100);

/// Saves the positions on its own thread until `stop` fires: within [`ACK_WRITE_INTERVAL`] of an
/// acknowledgement that moved a position, and every `period` regardless. The last write, once the
/// clients have finished, is the caller's ([`Positions::save`]).
// A thread that cannot be spawned at start (no memory, no threads left) is fatal, and early.
#[allow(clippy::expect_used)]
pub fn spawn_saver(
    positions: Arc<Positions>,
    period: Duration,
    stop: crate::shutdown::StopSignal,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("positions".into())
        .spawn(move || {
            let mut last = Instant::now();
            while !stop.wait(ACK_WRITE_INTERVAL.min(period)) {
                if positions.changed.swap(false, Ordering::Relaxed) || last.elapsed() >= period {
                    last = Instant::now();
                    if let Err(e) = positions.save() {
                        crate::metrics::metrics().positions_write_errors.inc();
                        tracing::error!(error = %e, "cannot write the positions file");
                    }
                }
            }
        })
        .expect("spawning the positions thread")
}
