//! The body kube-apiserver's webhook backend POSTs: an `audit.k8s.io/v1` `EventList`, whose
//! items become one line each — the same text the log backend writes for that event, so one
//! pipeline serves events read from a file and events received here.
//!
//! kube-apiserver 1.36 sends the items without their type (`kind`, `apiVersion`: the list has
//! them), where each line of its log file starts with `"kind":"Event","apiVersion":"audit.k8s.io/v1"`;
//! it is put back, so that the line is byte for byte the file's.

use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Deserialize)]
struct EventList<'a> {
    #[serde(default)]
    kind: String,
    #[serde(default, rename = "apiVersion")]
    api_version: String,
    #[serde(default, borrow)]
    items: Option<Vec<&'a RawValue>>,
}

/// The lines of `body`, one per event, or why it is not an audit `EventList`.
pub fn event_lines(body: &[u8]) -> Result<Vec<String>, String> {
    let list: EventList =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    if list.kind != "EventList" || list.api_version != "audit.k8s.io/v1" {
        return Err(format!(
            "the body is a {:?} of {:?}, not an EventList of audit.k8s.io/v1 (what kube-apiserver's audit webhook sends)",
            list.kind, list.api_version
        ));
    }
    let items = list.items.unwrap_or_default();
    let mut lines = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let text = item.get();
        if !text.starts_with('{') {
            return Err(format!("item {i} of the EventList is not an object"));
        }
        lines.push(typed(&compact(text))?);
    }
    Ok(lines)
}

/// What an event's type says when it has one.
#[derive(Deserialize)]
struct Type<'a> {
    #[serde(default, borrow)]
    kind: Option<std::borrow::Cow<'a, str>>,
}

/// `event` (a compact JSON object) with the type the log backend writes first, if it has none.
fn typed(event: &str) -> Result<String, String> {
    let head: Type =
        serde_json::from_str(event).map_err(|e| format!("an item of the EventList: {e}"))?;
    if head.kind.is_some() {
        return Ok(event.to_string());
    }
    const TYPE: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1""#;
    let rest = &event[1..];
    let mut line = String::with_capacity(TYPE.len() + event.len() + 1);
    line.push_str(TYPE);
    if rest != "}" {
        line.push(',');
    }
    line.push_str(rest);
    Ok(line)
}

/// `json` (valid JSON) without whitespace outside strings: one line however it was indented.
/// kube-apiserver sends each item compact, as its log backend writes it, and that is kept as it is.
fn compact(json: &str) -> String {
    if !json.contains(['\n', '\r', '\t', ' ']) {
        return json.to_string();
    }
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if !matches!(c, ' ' | '\n' | '\r' | '\t') {
            if c == '"' {
                in_string = true;
            }
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_item_is_one_line_as_sent() {
        let body = br#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[{"kind":"Event","verb":"get","user":{"username":"a b"}},
            {
              "kind": "Event",
              "requestURI": "/api?x=\" y \\",
              "verb": "list"
            }, {"level":"Metadata","verb":"watch"}, {}]}"#;
        let lines = event_lines(body).unwrap();
        assert_eq!(
            lines,
            [
                r#"{"kind":"Event","verb":"get","user":{"username":"a b"}}"#,
                r#"{"kind":"Event","requestURI":"/api?x=\" y \\","verb":"list"}"#,
                // As kube-apiserver sends items: typed as its log file has them.
                r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","verb":"watch"}"#,
                r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1"}"#,
            ]
        );
    }

    #[test]
    fn what_is_not_an_audit_event_list_says_why() {
        assert!(event_lines(b"{").unwrap_err().contains("not JSON"));
        assert!(event_lines(b"[1]").unwrap_err().contains("not JSON"));
        let pod = br#"{"kind":"Pod","apiVersion":"v1"}"#;
        assert!(event_lines(pod).unwrap_err().contains("not an EventList"));
        let items = br#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[1]}"#;
        assert!(event_lines(items).unwrap_err().contains("item 0"));
        let bad_utf8 = b"{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"items\":[{\"a\":\"\xff\"}]}";
        assert!(event_lines(bad_utf8).unwrap_err().contains("not JSON"));
        let empty =
            br#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":null}"#;
        assert_eq!(event_lines(empty).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn fuzz_audit_event_list() {
        let sample = include_str!("../../../config/sample/audit.log");
        let items: Vec<&str> = sample.lines().take(5).collect();
        let list = format!(
            r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{{}},"items":[{}]}}"#,
            items.join(",")
        );
        let small = br#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{"kind":"Event","verb":"get","user":{"username":"a b"}},{"requestURI":"/api?x=\" y \\"},{}]}"#.to_vec();
        let tokens = [
            "{",
            "}",
            "[",
            "]",
            "\"items\":",
            "\"kind\":\"EventList\"",
            "\\u0000",
            "\\ud800",
            "1e999",
            "-0",
            "null",
            "\"apiVersion\":\"audit.k8s.io/v1\"",
        ];
        crate::fuzz::run(
            "audit_event_list",
            &[list.into_bytes(), small],
            &tokens,
            |input| {
                if let Ok(lines) = event_lines(input) {
                    for line in lines {
                        // Each item is one line of JSON, as the audit log file has it (escapes such
                        // as a lone surrogate are passed on as sent: the json stage reads them, as
                        // it reads the same event from a file).
                        assert!(!line.contains('\n'), "{line}");
                        assert!(
                            serde_json::from_str::<Box<serde_json::value::RawValue>>(&line).is_ok(),
                            "{line}"
                        );
                    }
                }
            },
        );
    }
}
