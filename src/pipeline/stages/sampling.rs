//! `sampling`: keeps a random fraction `rate` of the entries; the others are dropped and counted.

use crate::config::stages::SamplingStage as Config;
use crate::pipeline::{BuildError, Processing, Stage, Verdict};

pub struct SamplingStage {
    rate: f64,
    reason: String,
}

impl SamplingStage {
    pub fn new(config: &Config) -> Result<Self, BuildError> {
        if !(0.0..=1.0).contains(&config.rate) {
            return Err(BuildError::new(
                "sampling",
                format!("rate must be between 0 and 1, not {}", config.rate),
            ));
        }
        Ok(Self {
            rate: config.rate,
            reason: config
                .drop_counter_reason
                .clone()
                .unwrap_or_else(|| "sampling_stage".into()),
        })
    }
}

impl Stage for SamplingStage {
    fn process(&self, _entry: &mut Processing) -> Verdict {
        if rand::random::<f64>() < self.rate {
            Verdict::Keep
        } else {
            Verdict::Drop(self.reason.clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::pipeline::stages::test_util::pipeline;
    use crate::pipeline::Processing;

    #[test]
    fn keeps_about_the_rate() {
        let p = pipeline("- sampling: {rate: 0.25}");
        let mut out = Vec::new();
        for i in 0..20_000 {
            p.run(
                Processing::new(Default::default(), i.to_string(), 0),
                &mut out,
            );
        }
        // 5,000 expected; 6 standard deviations (~61) either side.
        assert!((4_600..5_400).contains(&out.len()), "{}", out.len());
        let none = pipeline("- sampling: {rate: 0}");
        let mut out = Vec::new();
        none.run(Processing::new(Default::default(), "x".into(), 0), &mut out);
        assert!(out.is_empty());
    }
}
