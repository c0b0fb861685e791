//! Counts a thread's pipelines leave out: backfill's check runs the lines through the pipeline
//! before they are shipped, and what its stages drop is counted once, when they are.

thread_local! {
    /// Set while this thread runs a pipeline whose entries are not shipped (backfill's check).
    static MUTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Until the guard is dropped, lines this thread's pipelines drop are not counted: they are
/// counted when the same lines are shipped.
pub fn mute_pipeline_counts() -> MutedGuard {
    MUTED.with(|m| m.set(true));
    MutedGuard
}

pub struct MutedGuard;

impl Drop for MutedGuard {
    fn drop(&mut self) {
        MUTED.with(|m| m.set(false));
    }
}

/// Whether this thread's pipeline drops are left uncounted now.
pub(super) fn is_muted() -> bool {
    MUTED.with(|m| m.get())
}
