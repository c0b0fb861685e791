//! The sprig functions Promtail's template stage offers (sprig v3's text function map), as sprig
//! computes them — recorded from Promtail 3.6.15 in `tests/data/differential/`. Some of sprig's
//! string functions work on bytes, not characters (`substr`, `trunc`, `abbrev`, `initials`,
//! `nospace`); they do so here too, and a cut inside a character gives U+FFFD where Go would ship
//! the broken bytes.
//!
//! Not here (a template naming one is refused when the config loads): dates, dicts, semver,
//! crypto beyond the checksums, random strings, `env`, paths, the case conversions
//! (`snakecase`, `camelcase`, `kebabcase`, `swapcase`) and `wrap`.

use super::codecs::{adler32, b64dec, base32_decode, base32_encode};
use super::functions::Args;
use super::gofmt::{hex, quote};
use super::value::Value;
use super::TemplateError;

pub const NAMES: &[&str] = &[
    "trim",
    "trimAll",
    "trimPrefix",
    "trimSuffix",
    "upper",
    "lower",
    "title",
    "untitle",
    "repeat",
    "substr",
    "nospace",
    "trunc",
    "abbrev",
    "initials",
    "quote",
    "squote",
    "cat",
    "indent",
    "nindent",
    "replace",
    "plural",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "default",
    "empty",
    "coalesce",
    "ternary",
    "toString",
    "atoi",
    "int",
    "int64",
    "float64",
    "add",
    "add1",
    "sub",
    "mul",
    "div",
    "mod",
    "max",
    "min",
    "floor",
    "ceil",
    "round",
    "addf",
    "add1f",
    "subf",
    "mulf",
    "divf",
    "maxf",
    "minf",
    "regexMatch",
    "regexFind",
    "regexFindAll",
    "regexSplit",
    "regexQuoteMeta",
    "b64enc",
    "b64dec",
    "b32enc",
    "b32dec",
    "sha1sum",
    "sha256sum",
    "sha512sum",
    "adler32sum",
    "toJson",
    "list",
    "splitList",
    "join",
    "first",
    "last",
    "rest",
    "initial",
    "has",
    "sortAlpha",
    "reverse",
    "uniq",
    "compact",
    "slice",
];

pub type Called = Option<Result<Value, TemplateError>>;

pub fn call(a: &Args) -> Called {
    strings(a)
        .or_else(|| defaults(a))
        .or_else(|| super::numbers::call(a))
        .or_else(|| regexes_and_encodings(a))
        .or_else(|| super::lists::call(a))
}

fn text(r: Result<String, TemplateError>) -> Called {
    Some(r.map(Value::Str))
}

/// `strval`: a string as it is, anything else as `%v` prints it.
pub fn strval(v: &Value) -> String {
    v.text()
}

/// Bytes cut out of a string, as Go's `s[a:b]` (a cut inside a character becomes U+FFFD).
fn bytes(s: &str, from: usize, to: usize) -> String {
    String::from_utf8_lossy(&s.as_bytes()[from..to]).into_owned()
}

fn strings(a: &Args) -> Called {
    match a.name {
        "trim" => text(a.arity(1).and_then(|()| Ok(a.str(0)?.trim().to_string()))),
        "trimAll" => text(a.arity(2).and_then(|()| {
            let cutset = a.str(0)?;
            Ok(a.str(1)?.trim_matches(|c| cutset.contains(c)).to_string())
        })),
        "trimPrefix" | "trimSuffix" => text(a.arity(2).and_then(|()| {
            let (cut, s) = (a.str(0)?, a.str(1)?);
            let kept = if a.name == "trimPrefix" {
                s.strip_prefix(cut)
            } else {
                s.strip_suffix(cut)
            };
            Ok(kept.unwrap_or(s).to_string())
        })),
        "upper" => text(a.arity(1).and_then(|()| Ok(a.str(0)?.to_uppercase()))),
        "lower" => text(a.arity(1).and_then(|()| Ok(a.str(0)?.to_lowercase()))),
        "title" => text(a.arity(1).and_then(|()| Ok(title(a.str(0)?)))),
        "untitle" => text(a.arity(1).and_then(|()| Ok(untitle(a.str(0)?)))),
        "repeat" => text(a.arity(2).and_then(|()| {
            let n = usize::try_from(a.int(0)?).map_err(|_| a.err("negative Repeat count"))?;
            Ok(a.str(1)?.repeat(n))
        })),
        "substr" => text(a.arity(3).and_then(|()| substr(a))),
        "trunc" => text(a.arity(2).and_then(|()| {
            let (c, s) = (a.int(0)?, a.str(1)?);
            let len = s.len() as i64;
            Ok(if c < 0 && len + c > 0 {
                bytes(s, (len + c) as usize, s.len())
            } else if c >= 0 && len > c {
                bytes(s, 0, c as usize)
            } else {
                s.to_string()
            })
        })),
        "abbrev" => text(a.arity(2).and_then(|()| {
            let (width, s) = (a.int(0)?, a.str(1)?);
            Ok(if width < 4 || s.len() as i64 <= width {
                s.to_string()
            } else {
                bytes(s, 0, width as usize - 3) + "..."
            })
        })),
        "initials" => text(a.arity(1).and_then(|()| {
            let mut out = String::new();
            let mut gap = true;
            for c in a.str(0)?.bytes().map(char::from) {
                if go_space(c) {
                    gap = true;
                } else if gap {
                    out.push(c);
                    gap = false;
                }
            }
            Ok(out)
        })),
        "nospace" => text(a.arity(1).and_then(|()| {
            let s = a.str(0)?;
            Ok(s.bytes()
                .map(char::from)
                .filter(|c| !go_space(*c))
                .collect())
        })),
        "quote" | "squote" => {
            let parts: Vec<String> = a
                .rest(0)
                .iter()
                .filter(|v| !matches!(v, Value::Nil))
                .map(|v| match a.name {
                    "quote" => quote(&strval(v), '"'),
                    _ => format!("'{}'", strval(v)),
                })
                .collect();
            text(Ok(parts.join(" ")))
        }
        "cat" => {
            let parts: Vec<String> = a
                .rest(0)
                .iter()
                .filter(|v| !matches!(v, Value::Nil))
                .map(strval)
                .collect();
            text(Ok(parts.join(" ")))
        }
        "indent" | "nindent" => text(a.arity(2).and_then(|()| {
            let pad = " ".repeat(usize::try_from(a.int(0)?).unwrap_or(0));
            let body = pad.clone() + &a.str(1)?.replace('\n', &format!("\n{pad}"));
            Ok(if a.name == "nindent" {
                format!("\n{body}")
            } else {
                body
            })
        })),
        "replace" => text(
            a.arity(3)
                .and_then(|()| Ok(a.str(2)?.replace(a.str(0)?, a.str(1)?))),
        ),
        "plural" => text(
            a.arity(3)
                .and_then(|()| Ok(if a.int(2)? == 1 { a.str(0)? } else { a.str(1)? }.to_string())),
        ),
        "contains" | "hasPrefix" | "hasSuffix" => Some(a.arity(2).and_then(|()| {
            let (part, s) = (a.str(0)?, a.str(1)?);
            Ok(Value::Bool(match a.name {
                "contains" => s.contains(part),
                "hasPrefix" => s.starts_with(part),
                _ => s.ends_with(part),
            }))
        })),
        _ => None,
    }
}

/// `unicode.IsSpace` of a character.
fn go_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\x0b' | '\x0c' | '\r' | ' ' | '\u{85}' | '\u{a0}'
    ) || (c > '\u{ff}' && c.is_whitespace())
}

/// `strings.Title`: the first letter of each word upper-cased; words are separated by anything
/// but ASCII letters, digits, `_` and non-ASCII letters.
fn title(s: &str) -> String {
    let separator = |c: char| {
        if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else {
            c.is_whitespace()
        }
    };
    let mut out = String::with_capacity(s.len());
    let mut previous = ' ';
    for c in s.chars() {
        if separator(previous) {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        previous = c;
    }
    out
}

/// The first letter of each whitespace-separated word lower-cased.
fn untitle(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut next = true;
    for c in s.chars() {
        if go_space(c) {
            next = true;
            out.push(c);
        } else if next {
            out.extend(c.to_lowercase());
            next = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn substr(a: &Args) -> Result<String, TemplateError> {
    let (start, end, s) = (a.int(0)?, a.int(1)?, a.str(2)?);
    let len = s.len() as i64;
    let (from, to) = if start < 0 {
        (0, end)
    } else if end < 0 || end > len {
        (start, len)
    } else {
        (start, end)
    };
    if from > to || to > len || from < 0 {
        return Err(a.err(format!(
            "runtime error: slice bounds out of range [{from}:{to}]"
        )));
    }
    Ok(bytes(s, from as usize, to as usize))
}

/// sprig's `empty`: nil and every zero value.
pub fn empty(v: &Value) -> bool {
    !v.truthy()
}

fn defaults(a: &Args) -> Called {
    Some(Ok(match a.name {
        "default" => {
            if let Err(e) = a.at_least(1) {
                return Some(Err(e));
            }
            match a.rest(1).first() {
                Some(given) if !empty(given) => given.clone(),
                _ => a.any(0),
            }
        }
        "empty" => match a.arity(1) {
            Ok(()) => Value::Bool(empty(&a.any(0))),
            Err(e) => return Some(Err(e)),
        },
        "coalesce" => a
            .rest(0)
            .into_iter()
            .find(|v| !empty(v))
            .unwrap_or(Value::Nil),
        "ternary" => {
            return Some(
                a.arity(3)
                    .and_then(|()| Ok(if a.bool(2)? { a.any(0) } else { a.any(1) })),
            )
        }
        "toString" => match a.arity(1) {
            Ok(()) => Value::Str(strval(&a.any(0))),
            Err(e) => return Some(Err(e)),
        },
        _ => return None,
    }))
}

fn regexes_and_encodings(a: &Args) -> Called {
    let compile = |i: usize| crate::config::go_regex::compile(a.str(i)?).map_err(|e| a.err(e));
    match a.name {
        "regexMatch" => Some(a.arity(2).and_then(|()| {
            // A bad expression matches nothing (sprig ignores the compile error).
            let s = a.str(1)?;
            let re = crate::config::go_regex::compile(a.str(0)?);
            Ok(Value::Bool(re.is_ok_and(|re| re.is_match(s))))
        })),
        "regexFind" => text(a.arity(2).and_then(|()| {
            Ok(compile(0)?
                .find(a.str(1)?)
                .map_or(String::new(), |m| m.as_str().to_string()))
        })),
        "regexFindAll" => Some(a.arity(3).and_then(|()| {
            let (re, s) = (compile(0)?, a.str(1)?);
            let limit = usize::try_from(a.int(2)?).unwrap_or(usize::MAX);
            let found = re
                .find_iter(s)
                .take(limit)
                .map(|m| Value::Str(m.as_str().to_string()));
            Ok(Value::List(found.collect()))
        })),
        "regexSplit" => Some(a.arity(3).and_then(|()| {
            Ok(Value::List(
                split(&compile(0)?, a.str(1)?, a.int(2)?)
                    .into_iter()
                    .map(Value::Str)
                    .collect(),
            ))
        })),
        "regexQuoteMeta" => text(a.arity(1).and_then(|()| {
            let mut out = String::new();
            for c in a.str(0)?.chars() {
                if r"\.+*?()|[]{}^$".contains(c) {
                    out.push('\\');
                }
                out.push(c);
            }
            Ok(out)
        })),
        "b64enc" => text(a.arity(1).and_then(|()| {
            Ok(base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                a.str(0)?,
            ))
        })),
        "b64dec" => text(a.arity(1).and_then(|()| Ok(b64dec(a.str(0)?)))),
        "b32enc" => text(
            a.arity(1)
                .and_then(|()| Ok(base32_encode(a.str(0)?.as_bytes()))),
        ),
        "b32dec" => text(a.arity(1).and_then(|()| {
            Ok(match base32_decode(a.str(0)?) {
                Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                Err(at) => format!("illegal base32 data at input byte {at}"),
            })
        })),
        "sha1sum" => text(
            a.arity(1)
                .and_then(|()| Ok(hex(&<sha1::Sha1 as sha2::Digest>::digest(a.str(0)?)))),
        ),
        "sha256sum" => text(
            a.arity(1)
                .and_then(|()| Ok(hex(&<sha2::Sha256 as sha2::Digest>::digest(a.str(0)?)))),
        ),
        "sha512sum" => text(
            a.arity(1)
                .and_then(|()| Ok(hex(&<sha2::Sha512 as sha2::Digest>::digest(a.str(0)?)))),
        ),
        "adler32sum" => text(
            a.arity(1)
                .and_then(|()| Ok(adler32(a.str(0)?.as_bytes()).to_string())),
        ),
        "toJson" => text(a.arity(1).map(|()| a.any(0).json())),
        _ => None,
    }
}

/// Go's `Regexp.Split`.
fn split(re: &regex::Regex, s: &str, n: i64) -> Vec<String> {
    if n == 0 {
        return Vec::new();
    }
    if !re.as_str().is_empty() && s.is_empty() {
        return vec![String::new()];
    }
    let limit = usize::try_from(n).unwrap_or(usize::MAX);
    let mut parts = Vec::new();
    let (mut begin, mut end) = (0, 0);
    for m in re.find_iter(s) {
        if parts.len() + 1 == limit {
            break;
        }
        end = m.start();
        if m.end() != 0 {
            parts.push(s[begin..end].to_string());
        }
        begin = m.end();
    }
    if end != s.len() {
        parts.push(s[begin..].to_string());
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sprig_helpers_compute_what_sprig_computes() {
        assert_eq!(title("hello bob_x the-World b"), "Hello Bob_x The-World B");
        assert_eq!(untitle("Hello Bob the-World"), "hello bob the-World");
        let re = regex::Regex::new("b").unwrap();
        assert_eq!(
            split(&re, "Hello bob_x the-World b", -1),
            ["Hello ", "o", "_x the-World ", ""]
        );
    }
}
