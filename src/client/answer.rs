//! Loki's answer to a push: its status, headers, and the body of an error answer, read whole up
//! to a bound (a 400 lists every refused entry, and counting needs all of it).

/// The most of an error answer's body that is read (a 400 lists the refused entries).
pub const MAX_ANSWER_BODY: usize = 1 << 20;

/// The part of an error body that goes into a log line.
const EXCERPT_BYTES: usize = 1024;

/// Loki's answer to a push.
pub struct Answer {
    pub status: reqwest::StatusCode,
    pub headers: reqwest::header::HeaderMap,
    /// The body of an error answer, up to [`MAX_ANSWER_BODY`].
    pub body: String,
    /// Whether `body` is all of it.
    pub complete: bool,
}

impl Answer {
    /// The start of the body, for the log.
    pub fn excerpt(&self) -> String {
        let text = self.body.trim_end();
        if text.len() <= EXCERPT_BYTES {
            return text.to_string();
        }
        let mut cut = EXCERPT_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}… ({} bytes)", &text[..cut], text.len())
    }
}
