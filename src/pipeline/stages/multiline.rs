//! `multiline`: lines of one stream are joined (with `\n`) into one entry from a line matching
//! `firstline` up to the next such line, at most `max_lines` (128) lines, and sent once no line came
//! for `max_wait_time` (3 s). The joined entry has the first line's labels, timestamp and extracted
//! values; its acknowledgement covers every line in it.

use crate::config::stages::MultilineStage as Config;
use crate::entry::Labels;
use crate::pipeline::{BuildError, Processing, Stage, Verdict};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct MultilineStage {
    firstline: regex::Regex,
    max_wait: Duration,
    max_lines: usize,
    blocks: Mutex<HashMap<Labels, Block>>,
}

struct Block {
    entry: Processing,
    lines: usize,
    last: Instant,
}

impl MultilineStage {
    pub fn new(config: &Config) -> Result<Self, BuildError> {
        let max_wait = config.max_wait_time.map_or(Duration::from_secs(3), |d| d.0);
        if max_wait.is_zero() {
            return Err(BuildError::new(
                "multiline",
                "max_wait_time must be positive",
            ));
        }
        Ok(Self {
            firstline: config.firstline.0.clone(),
            max_wait,
            max_lines: config.max_lines.unwrap_or(128).max(1) as usize,
            blocks: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Labels, Block>> {
        self.blocks.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Stage for MultilineStage {
    fn process(&self, _entry: &mut Processing) -> Verdict {
        Verdict::Keep
    }

    fn holds_entries(&self) -> bool {
        true
    }

    fn take(&self, mut entry: Processing, out: &mut Vec<Processing>) {
        let starts = self.firstline.is_match(&entry.line);
        let mut blocks = self.lock();
        let key = entry.labels.clone();
        if let Some(block) = blocks.get_mut(&key) {
            if !starts {
                block.entry.line.push('\n');
                block.entry.line.push_str(&entry.line);
                if let (Some(first), Some(ack)) = (block.entry.ack.as_mut(), entry.ack.take()) {
                    first.absorb(ack);
                }
                block.lines += 1;
                block.last = Instant::now();
                if block.lines >= self.max_lines {
                    if let Some(full) = blocks.remove(&key) {
                        out.push(full.entry);
                    }
                }
                return;
            }
            if let Some(previous) = blocks.remove(&key) {
                out.push(previous.entry);
            }
        }
        // A first line, or a line before any first line was seen: it starts a block.
        if self.max_lines == 1 {
            out.push(entry);
            return;
        }
        blocks.insert(
            key,
            Block {
                entry,
                lines: 1,
                last: Instant::now(),
            },
        );
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.lock().values().map(|b| b.last + self.max_wait).min()
    }

    fn flush(&self, all: bool, out: &mut Vec<Processing>) {
        let mut blocks = self.lock();
        let due: Vec<Labels> = blocks
            .iter()
            .filter(|(_, b)| all || b.last.elapsed() >= self.max_wait)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            if let Some(b) = blocks.remove(&key) {
                out.push(b.entry);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::entry::ack::AckTracker;
    use crate::pipeline::stages::test_util::{pipeline, run_all};
    use crate::pipeline::Processing;

    const STAGES: &str = r"- multiline: {firstline: '^\[\d{4}-\d{2}-\d{2}', max_wait_time: 3s}";

    #[test]
    fn promtail_documented_example() {
        let out = run_all(
            STAGES,
            &[
                "[2020-12-03 11:36:20] INFO: first",
                "[2020-12-03 11:36:23] ERROR: Exception",
                "Traceback (most recent call last):",
                "  File \"<stdin>\", line 1",
                "[2020-12-03 11:36:24] INFO: next",
            ],
        );
        let lines: Vec<&str> = out.iter().map(|e| e.line.as_str()).collect();
        assert_eq!(
            lines,
            vec![
                "[2020-12-03 11:36:20] INFO: first",
                "[2020-12-03 11:36:23] ERROR: Exception\nTraceback (most recent call last):\n  File \"<stdin>\", line 1",
                "[2020-12-03 11:36:24] INFO: next",
            ]
        );
    }

    #[test]
    fn the_pipeline_says_when_a_held_block_is_due_and_nothing_while_none_is_held() {
        let p = pipeline(STAGES);
        assert_eq!(
            p.next_deadline(),
            None,
            "nothing held: no reason to wake up"
        );
        let mut out = Vec::new();
        let before = std::time::Instant::now();
        p.run(
            Processing::new(Default::default(), "[2020-12-03 11:36:23] ERROR".into(), 1),
            &mut out,
        );
        assert!(
            out.is_empty(),
            "held until the next first line or max_wait_time"
        );
        let due = p.next_deadline().expect("a block is held");
        assert!(due >= before + std::time::Duration::from_secs(3));
        assert!(due <= std::time::Instant::now() + std::time::Duration::from_secs(3));
        p.flush(true, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(p.next_deadline(), None);
    }

    #[test]
    fn max_lines_and_streams_apart() {
        let out = run_all(
            r"- multiline: {firstline: '^START', max_lines: 2}",
            &["START 1", "a", "b", "START 2"],
        );
        let lines: Vec<&str> = out.iter().map(|e| e.line.as_str()).collect();
        assert_eq!(lines, vec!["START 1\na", "b", "START 2"]);

        let p = pipeline(STAGES);
        let mut out = Vec::new();
        for (file, line) in [
            ("a", "[2020-01-01 x"),
            ("b", "[2020-01-01 y"),
            ("a", " a2"),
            ("b", " b2"),
        ] {
            let labels = [("filename", file)].into_iter().collect();
            p.run(Processing::new(labels, line.into(), 0), &mut out);
        }
        p.flush(true, &mut out);
        let mut lines: Vec<&str> = out.iter().map(|e| e.line.as_str()).collect();
        lines.sort();
        assert_eq!(lines, vec!["[2020-01-01 x\n a2", "[2020-01-01 y\n b2"]);
    }

    #[test]
    fn held_lines_keep_the_position_until_the_block_is_delivered() {
        let p = pipeline(STAGES);
        let tracker = AckTracker::new(0, 1);
        let mut out = Vec::new();
        for (end, line) in [(10, "[2020-01-01 a"), (20, " more"), (30, "[2020-01-01 b")] {
            let mut e = Processing::new(Default::default(), line.into(), 0);
            e.ack = Some(tracker.register(end));
            p.run(e, &mut out);
        }
        assert_eq!(out.len(), 1, "the first block is complete, the second held");
        assert_eq!(tracker.committed(), 0);
        out.remove(0).ack.unwrap().done();
        assert_eq!(tracker.committed(), 20, "both lines of the block");
        p.flush(false, &mut out);
        assert!(out.is_empty(), "not waited long enough");
        p.flush(true, &mut out);
        out.remove(0).ack.unwrap().done();
        assert_eq!(tracker.committed(), 30);
    }
}
