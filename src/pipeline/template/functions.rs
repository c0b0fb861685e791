//! The functions a template may call, as Promtail's template stage has them: Go's builtins,
//! Promtail's own (`ToLower` … `regexReplaceAllLiteral`) and sprig's (`sprig.rs`).
//!
//! Arguments are checked as Go checks them: a function taking a string refuses a number or a
//! missing key ("invalid value; expected string"), one taking anything gets nil for a missing key.
//! A refused call fails the whole template, and the stage leaves its value as it was — as
//! Promtail does.

use super::gofmt::{hex, sprint, sprintf};
use super::sprig;
use super::value::Value;
use super::TemplateError;
use std::cmp::Ordering;

const GO: &[&str] = &[
    "and", "or", "not", "len", "index", "print", "printf", "println", "html", "js", "urlquery",
    "eq", "ne", "lt", "le", "gt", "ge",
];

const PROMTAIL: &[&str] = &[
    "ToLower",
    "ToUpper",
    "Replace",
    "Trim",
    "TrimLeft",
    "TrimRight",
    "TrimPrefix",
    "TrimSuffix",
    "TrimSpace",
    "Hash",
    "Sha2Hash",
    "regexReplaceAll",
    "regexReplaceAllLiteral",
];

/// The function's name as the parser keeps it, or None: "function not defined".
pub fn known(name: &str) -> Option<&'static str> {
    [GO, PROMTAIL, sprig::NAMES]
        .iter()
        .flat_map(|names| names.iter())
        .find(|f| **f == name)
        .copied()
}

/// A call's arguments, read as the types the function declares.
pub struct Args<'a> {
    pub name: &'a str,
    pub values: Vec<Value>,
}

impl Args<'_> {
    pub fn err(&self, message: impl std::fmt::Display) -> TemplateError {
        TemplateError(format!("error calling {}: {message}", self.name))
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn arity(&self, n: usize) -> Result<(), TemplateError> {
        if self.values.len() == n {
            Ok(())
        } else {
            Err(TemplateError(format!(
                "wrong number of args for {}: want {n} got {}",
                self.name,
                self.values.len()
            )))
        }
    }

    pub fn at_least(&self, n: usize) -> Result<(), TemplateError> {
        if self.values.len() >= n {
            Ok(())
        } else {
            Err(TemplateError(format!(
                "wrong number of args for {}: want at least {n} got {}",
                self.name,
                self.values.len()
            )))
        }
    }

    fn wrong(&self, want: &str, got: &Value) -> TemplateError {
        match got {
            Value::Missing => TemplateError(format!("invalid value; expected {want}")),
            other => TemplateError(format!(
                "wrong type for value; expected {want}; got {}",
                other.type_name()
            )),
        }
    }

    pub fn str(&self, i: usize) -> Result<&str, TemplateError> {
        match &self.values[i] {
            Value::Str(s) => Ok(s),
            other => Err(self.wrong("string", other)),
        }
    }

    pub fn int(&self, i: usize) -> Result<i64, TemplateError> {
        match &self.values[i] {
            Value::Int(n) => Ok(*n),
            other => Err(self.wrong("int", other)),
        }
    }

    pub fn bool(&self, i: usize) -> Result<bool, TemplateError> {
        match &self.values[i] {
            Value::Bool(b) => Ok(*b),
            other => Err(self.wrong("bool", other)),
        }
    }

    /// An `interface{}` parameter: anything, a missing key as nil.
    pub fn any(&self, i: usize) -> Value {
        self.values[i].clone().or_nil()
    }

    /// The arguments from `i` on, as a variadic `...interface{}` takes them.
    pub fn rest(&self, i: usize) -> Vec<Value> {
        self.values[i..]
            .iter()
            .cloned()
            .map(Value::or_nil)
            .collect()
    }
}

pub fn call(name: &str, values: Vec<Value>) -> Result<Value, TemplateError> {
    let args = Args { name, values };
    if let Some(result) = go(&args).or_else(|| promtail(&args)) {
        return result;
    }
    sprig::call(&args)
        .unwrap_or_else(|| Err(TemplateError(format!("function \"{name}\" not defined"))))
}

fn go(a: &Args) -> Option<Result<Value, TemplateError>> {
    let v = &a.values;
    Some(Ok(match a.name {
        "and" => v
            .iter()
            .find(|x| !x.truthy())
            .or(v.last())
            .cloned()
            .unwrap_or(Value::Nil),
        "or" => v
            .iter()
            .find(|x| x.truthy())
            .or(v.last())
            .cloned()
            .unwrap_or(Value::Nil),
        "not" => match a.arity(1) {
            Ok(()) => Value::Bool(!v[0].truthy()),
            Err(e) => return Some(Err(e)),
        },
        "len" => return Some(a.arity(1).and_then(|()| length(a))),
        "index" => return Some(index(a)),
        "print" => Value::Str(sprint(&a.rest(0))),
        "println" => {
            let texts: Vec<String> = a.rest(0).iter().map(Value::text).collect();
            Value::Str(texts.join(" ") + "\n")
        }
        "printf" => {
            return Some(
                a.at_least(1)
                    .and_then(|()| Ok(Value::Str(sprintf(a.str(0)?, &a.rest(1))))),
            )
        }
        "html" => Value::Str(html(&escaped_text(a))),
        "js" => Value::Str(js(&escaped_text(a))),
        "urlquery" => Value::Str(query_escape(&escaped_text(a))),
        "eq" | "ne" => return Some(equal(a)),
        "lt" | "le" | "gt" | "ge" => return Some(order(a)),
        _ => return None,
    }))
}

/// What `html`, `js` and `urlquery` escape: the one string argument, or the arguments printed.
fn escaped_text(a: &Args) -> String {
    match a.values.as_slice() {
        [Value::Str(s)] => s.clone(),
        _ => sprint(&a.rest(0)),
    }
}

fn length(a: &Args) -> Result<Value, TemplateError> {
    match &a.values[0] {
        Value::Str(s) => Ok(Value::Int(s.len() as i64)),
        Value::List(l) => Ok(Value::Int(l.len() as i64)),
        Value::Nil | Value::Missing => Err(a.err("len of nil pointer")),
        other => Err(a.err(format!("len of type {}", other.type_name()))),
    }
}

fn index(a: &Args) -> Result<Value, TemplateError> {
    a.at_least(1)?;
    let mut item = a.values[0].clone();
    for i in 1..a.len() {
        let at = a.int(i)?;
        let out_of_range = || a.err(format!("index out of range: {at}"));
        item = match &item {
            Value::Str(s) => {
                let byte = usize::try_from(at).ok().and_then(|i| s.as_bytes().get(i));
                Value::Int(i64::from(*byte.ok_or_else(out_of_range)?))
            }
            Value::List(l) => usize::try_from(at)
                .ok()
                .and_then(|i| l.get(i))
                .cloned()
                .ok_or_else(out_of_range)?,
            Value::Nil | Value::Missing => return Err(a.err("index of untyped nil")),
            other => return Err(a.err(format!("can't index item of type {}", other.type_name()))),
        };
    }
    Ok(item)
}

/// Go's `eq`: values of one kind compare; nil equals nothing but nil; other mixes are errors.
fn equal(a: &Args) -> Result<Value, TemplateError> {
    a.at_least(2)?;
    let first = &a.values[0];
    let mut truth = false;
    for other in &a.values[1..] {
        let same = match (first, other) {
            (Value::Str(x), Value::Str(y)) => x == y,
            (Value::Int(x), Value::Int(y)) => x == y,
            (Value::Float(x), Value::Float(y)) => x == y,
            (Value::Bool(x), Value::Bool(y)) => x == y,
            (Value::Nil | Value::Missing, Value::Nil | Value::Missing) => true,
            (Value::Nil | Value::Missing, _) | (_, Value::Nil | Value::Missing) => false,
            (Value::List(_), _) | (_, Value::List(_)) => {
                return Err(a.err("non-comparable type"));
            }
            _ => return Err(a.err("incompatible types for comparison")),
        };
        if same {
            truth = true;
            break;
        }
    }
    Ok(Value::Bool(truth == (a.name == "eq")))
}

fn order(a: &Args) -> Result<Value, TemplateError> {
    a.arity(2)?;
    let ord = match (&a.values[0], &a.values[1]) {
        (Value::Str(x), Value::Str(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y).unwrap_or(Ordering::Equal),
        (x, y) if std::mem::discriminant(x) == std::mem::discriminant(y) => {
            return Err(a.err("invalid type for comparison"))
        }
        (
            Value::Str(_) | Value::Int(_) | Value::Float(_),
            Value::Str(_) | Value::Int(_) | Value::Float(_),
        ) => return Err(a.err("incompatible types for comparison")),
        _ => return Err(a.err("invalid type for comparison")),
    };
    Ok(Value::Bool(match a.name {
        "lt" => ord.is_lt(),
        "le" => ord.is_le(),
        "gt" => ord.is_gt(),
        _ => ord.is_ge(),
    }))
}

fn promtail(a: &Args) -> Option<Result<Value, TemplateError>> {
    let text = |f: fn(&Args) -> Result<String, TemplateError>| Some(f(a).map(Value::Str));
    match a.name {
        "ToLower" => text(|a| Ok(a.str(0)?.to_lowercase())),
        "ToUpper" => text(|a| Ok(a.str(0)?.to_uppercase())),
        "TrimSpace" => text(|a| Ok(a.str(0)?.trim().to_string())),
        "Replace" => text(|a| {
            a.arity(4)?;
            let (s, old, new, n) = (a.str(0)?, a.str(1)?, a.str(2)?, a.int(3)?);
            Ok(match usize::try_from(n) {
                Ok(n) => s.replacen(old, new, n),
                Err(_) => s.replace(old, new),
            })
        }),
        "Trim" | "TrimLeft" | "TrimRight" => text(|a| {
            a.arity(2)?;
            let (s, cutset) = (a.str(0)?, a.str(1)?);
            let cut = |c: char| cutset.contains(c);
            Ok(match a.name {
                "Trim" => s.trim_matches(cut),
                "TrimLeft" => s.trim_start_matches(cut),
                _ => s.trim_end_matches(cut),
            }
            .to_string())
        }),
        "TrimPrefix" => text(|a| {
            a.arity(2)?;
            let s = a.str(0)?;
            Ok(s.strip_prefix(a.str(1)?).unwrap_or(s).to_string())
        }),
        "TrimSuffix" => text(|a| {
            a.arity(2)?;
            let s = a.str(0)?;
            Ok(s.strip_suffix(a.str(1)?).unwrap_or(s).to_string())
        }),
        "Hash" | "Sha2Hash" => text(|a| {
            a.arity(2)?;
            let input = a.str(0)?.to_string() + a.str(1)?;
            Ok(if a.name == "Hash" {
                hex(&<sha3::Sha3_256 as sha3::Digest>::digest(input.as_bytes()))
            } else {
                hex(&<sha2::Sha256 as sha2::Digest>::digest(input.as_bytes()))
            })
        }),
        "regexReplaceAll" | "regexReplaceAllLiteral" => text(|a| {
            a.arity(3)?;
            let re = crate::config::go_regex::compile(a.str(0)?).map_err(|e| a.err(e))?;
            let (s, with) = (a.str(1)?, a.str(2)?);
            Ok(if a.name == "regexReplaceAll" {
                re.replace_all(s, with).into_owned()
            } else {
                re.replace_all(s, regex::NoExpand(with)).into_owned()
            })
        }),
        _ => None,
    }
}

/// `template.HTMLEscapeString`.
fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&#39;"),
            '"' => out.push_str("&#34;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// `url.QueryEscape`: unreserved bytes kept, a space as `+`, the rest as `%XX`.
fn query_escape(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            b => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// `template.JSEscapeString`.
fn js(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' | '>' | '&' | '=' => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c if (c as u32) < 0x20 || c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}
