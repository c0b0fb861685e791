//! Where Go's YAML library (which Promtail uses) reads text that libyaml, and so serde_yaml_ng,
//! refuses: the text is made to mean to serde what it means to Promtail before it is parsed.
//!
//! The one case known: a key with no value in a flow mapping, `labels: {ts:}` or `{a:, b:}`: Go
//! reads `ts` with a null value (a label named after the extracted value); libyaml stops at
//! "found unexpected ':'". Only the places the parser reports are changed (a space after the
//! colon), so a `:}` inside a quoted string is left alone, and line numbers stay as written.

/// `text` with each `key:` directly followed by `}` or `,` that the parser stops at given a space.
pub fn empty_flow_values(mut text: String) -> String {
    // Each round fixes one place; a config has few.
    for _ in 0..1000 {
        let Err(e) = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&text) else {
            return text;
        };
        if !e.to_string().contains("found unexpected ':'") {
            return text;
        }
        let Some(at) = e.location().map(|l| l.index()) else {
            return text;
        };
        let bytes = text.as_bytes();
        let colon = (at.saturating_sub(1)..=at.min(bytes.len().saturating_sub(1)))
            .find(|&i| bytes[i] == b':' && matches!(bytes.get(i + 1), Some(b'}' | b',')));
        match colon {
            Some(i) => text.insert(i + 1, ' '),
            None => return text,
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::empty_flow_values;

    #[test]
    fn a_key_without_a_value_in_a_flow_mapping_reads_as_go_reads_it() {
        let text = "labels: {ts:}\nother: {a:, b: x, c:}\nq: \"{x:}\"\n".to_string();
        let fixed = empty_flow_values(text);
        assert_eq!(
            fixed,
            "labels: {ts: }\nother: {a: , b: x, c: }\nq: \"{x:}\"\n"
        );
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&fixed).unwrap();
        assert!(v["labels"]["ts"].is_null());
        assert_eq!(v["q"].as_str(), Some("{x:}"), "quoted text is not touched");
    }

    #[test]
    fn other_errors_are_left_to_the_parser() {
        let text = "a: [unclosed\n".to_string();
        assert_eq!(empty_flow_values(text.clone()), text);
    }
}
