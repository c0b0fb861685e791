//! A fuzzing harness that runs on stable Rust, as part of `cargo test`: each target is a test
//! next to the code it fuzzes (`fuzz_*`), which feeds that code mutations of valid inputs — bit
//! flips, interesting bytes, tokens of the format, deleted, repeated and spliced stretches — for a
//! time budget, and fails on the first panic, keeping the input in `target/fuzz-crashes/`.
//!
//! It is not coverage-guided (cargo-fuzz needs a nightly compiler): mutating valid inputs with the
//! format's own tokens reaches deep instead. `cargo test` gives each target
//! `LOKISHIP_FUZZ_SECONDS` (default 1); a long run is
//! `LOKISHIP_FUZZ_SECONDS=600 cargo test --release --lib fuzz_ -- --nocapture --test-threads=2`,
//! which prints the executions per target. `LOKISHIP_FUZZ_SEED` repeats a run.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// Inputs are kept below this: the targets' own size limits are tested elsewhere.
const MAX_INPUT: usize = 64 << 10;

/// Bytes that matter to most formats.
const INTERESTING: &[u8] = b"\0\x01\x7f\x80\xff\"'\\{}[]:,=\n\r\t <>%$#&*!|-.0123456789";

/// What a run did, for the long run's report.
#[derive(Debug)]
pub struct Report {
    pub executions: u64,
    pub slowest: Duration,
}

/// Feeds `target` mutations of `seeds` (each seed as it is first) until the budget is spent;
/// `tokens` are strings of the format worth inserting whole.
pub fn run(
    name: &str,
    seeds: &[Vec<u8>],
    tokens: &[&str],
    mut target: impl FnMut(&[u8]),
) -> Report {
    let budget = std::env::var("LOKISHIP_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(1.0);
    let seed = std::env::var("LOKISHIP_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    let mut rng = Rng(seed | 1);
    let deadline = Instant::now() + Duration::from_secs_f64(budget);
    let mut report = Report {
        executions: 0,
        slowest: Duration::ZERO,
    };
    let mut input = Vec::new();
    while report.executions < seeds.len() as u64 || Instant::now() < deadline {
        input.clear();
        match seeds.get(report.executions as usize) {
            Some(first) => input.extend_from_slice(first),
            None => mutate(&mut rng, seeds, tokens, &mut input),
        }
        let started = Instant::now();
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| target(&input))) {
            crashed(name, seed, &input, panic);
        }
        report.slowest = report.slowest.max(started.elapsed());
        report.executions += 1;
    }
    println!(
        "fuzz {name}: {} executions in {budget} s (LOKISHIP_FUZZ_SEED={seed}), slowest {:?}",
        report.executions, report.slowest
    );
    report
}

fn crashed(name: &str, seed: u64, input: &[u8], panic: Box<dyn std::any::Any + Send>) -> ! {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-crashes");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{name}-{seed}.bin"));
    let _ = std::fs::write(&path, input);
    let why = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    panic!(
        "fuzz {name}: panicked ({why}) on the input kept in {} (LOKISHIP_FUZZ_SEED={seed}): {:?}",
        path.display(),
        String::from_utf8_lossy(&input[..input.len().min(300)])
    );
}

/// One to eight mutations of a random seed into `out`.
fn mutate(rng: &mut Rng, seeds: &[Vec<u8>], tokens: &[&str], out: &mut Vec<u8>) {
    let seed: &Vec<u8> = rng.pick(seeds);
    out.extend_from_slice(seed);
    for _ in 0..1 + rng.below(8) {
        let len = out.len();
        let at = rng.below(len + 1);
        match rng.below(9) {
            0 if len > 0 => out[at.min(len - 1)] ^= 1 << rng.below(8),
            1 if len > 0 => out[at.min(len - 1)] = *rng.pick(INTERESTING),
            2 => out.insert(at, *rng.pick(INTERESTING)),
            3 if !tokens.is_empty() => {
                let token = rng.pick(tokens).as_bytes();
                out.splice(at..at, token.iter().copied());
            }
            4 => {
                let end = (at + 1 + rng.below(64)).min(len);
                out.drain(at.min(end)..end);
            }
            5 => {
                // A stretch repeated: deep nesting, long runs, many fields.
                let end = (at + 1 + rng.below(32)).min(len);
                let piece = out[at.min(end)..end].to_vec();
                for _ in 0..1 + rng.below(64) {
                    out.splice(at..at, piece.iter().copied());
                }
            }
            6 => {
                // Another seed's stretch spliced in.
                let other: &Vec<u8> = rng.pick(seeds);
                let from = rng.below(other.len() + 1);
                let to = (from + rng.below(256)).min(other.len());
                out.splice(at..at, other[from..to].iter().copied());
            }
            7 => out.truncate(at),
            _ => out.insert(at, rng.below(256) as u8),
        }
        out.truncate(MAX_INPUT);
    }
}

/// xorshift64*: fast, and a seed repeats a run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_panicking_target_is_reported_with_its_input() {
        let seeds = [b"ab".to_vec()];
        let caught = std::panic::catch_unwind(|| {
            super::run("self-test", &seeds, &["boom"], |input| {
                assert!(!input.windows(4).any(|w| w == b"boom"), "found it");
            })
        });
        let message = caught.expect_err("the panic is found");
        let text = message
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(text.contains("found it") && text.contains("boom"), "{text}");
    }
}
