//! `output`: replaces the line with an extracted value. When the value was not extracted the line is
//! left as it is.

use crate::config::stages::OutputStage as Config;
use crate::pipeline::{Processing, Stage, Verdict};

pub struct OutputStage {
    source: String,
}

impl OutputStage {
    pub fn new(config: &Config) -> Self {
        Self {
            source: config.source.clone(),
        }
    }
}

impl Stage for OutputStage {
    fn process(&self, entry: &mut Processing) -> Verdict {
        if let Some(v) = entry.extracted.get(&self.source) {
            entry.line = v.to_string();
        }
        Verdict::Keep
    }
}

#[cfg(test)]
mod tests {
    use crate::pipeline::stages::test_util::run;

    #[test]
    fn replaces_the_line_with_an_extracted_value() {
        let stages = "- json: {expressions: {msg: message}}\n- output: {source: msg}";
        assert_eq!(run(stages, r#"{"message":"hello"}"#).0.line, "hello");
        assert_eq!(run(stages, r#"{"other":1}"#).0.line, r#"{"other":1}"#);
    }
}
