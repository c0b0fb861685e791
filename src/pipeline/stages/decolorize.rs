//! `decolorize`: removes ANSI escape sequences (colours, cursor movement) from the line.

use crate::pipeline::{Processing, Stage, Verdict};

pub struct DecolorizeStage;

impl Stage for DecolorizeStage {
    fn process(&self, entry: &mut Processing) -> Verdict {
        if entry.line.contains('\x1b') {
            entry.line = strip_ansi(&entry.line);
        }
        Verdict::Keep
    }
}

/// Removes CSI sequences (`ESC [ params intermediates final`) and two-byte `ESC x` escapes.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        if chars.next() == Some('[') {
            // Parameter and intermediate bytes, then one final byte in @..~.
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::pipeline::stages::test_util::run;

    #[test]
    fn colour_codes_are_removed() {
        let (e, _) = run(
            "- decolorize: {}",
            "\x1b[0;32mINFO\x1b[0m started \x1b[1;31;4mERR\x1b[m done\x1b[2K",
        );
        assert_eq!(e.line, "INFO started ERR done");
        let (e, _) = run("- decolorize:", "plain é line");
        assert_eq!(e.line, "plain é line");
        let (e, _) = run("- decolorize:", "cut \x1b[0;3");
        assert_eq!(e.line, "cut ");
    }
}
