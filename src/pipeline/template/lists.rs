//! sprig's list functions: `list`, `splitList`, `join`, `first`, `last`, `rest`, `initial`,
//! `has`, `sortAlpha`, `reverse`, `uniq`, `compact` and `slice` (sprig's, which replaces Go's
//! and takes lists only).

use super::functions::Args;
use super::sprig::{empty, strval, Called};
use super::value::Value;
use super::TemplateError;

pub fn call(a: &Args) -> Called {
    let list_of = |i: usize| -> Result<Vec<Value>, TemplateError> {
        match a.any(i) {
            Value::List(l) => Ok(l),
            other => Err(a.err(format!(
                "Cannot find {} on type {}",
                a.name,
                other.type_name()
            ))),
        }
    };
    Some(match a.name {
        "list" => Ok(Value::List(a.rest(0))),
        "splitList" => a.arity(2).and_then(|()| {
            let (sep, s) = (a.str(0)?, a.str(1)?);
            let parts: Vec<Value> = if sep.is_empty() {
                s.chars().map(|c| Value::Str(c.to_string())).collect()
            } else {
                s.split(sep).map(|p| Value::Str(p.to_string())).collect()
            };
            Ok(Value::List(parts))
        }),
        "join" => a
            .arity(2)
            .and_then(|()| Ok(Value::Str(strings_of(&a.any(1)).join(a.str(0)?)))),
        "first" | "last" => a.arity(1).and_then(|()| {
            let l = list_of(0)?;
            Ok(if a.name == "first" {
                l.first()
            } else {
                l.last()
            }
            .cloned()
            .unwrap_or(Value::Nil))
        }),
        "rest" | "initial" => a.arity(1).and_then(|()| {
            let l = list_of(0)?;
            Ok(match (l.len(), a.name) {
                (0, _) => Value::Nil,
                (_, "rest") => Value::List(l[1..].to_vec()),
                (n, _) => Value::List(l[..n - 1].to_vec()),
            })
        }),
        "has" => a.arity(2).and_then(|()| match a.any(1) {
            Value::Nil => Ok(Value::Bool(false)),
            _ => Ok(Value::Bool(list_of(1)?.contains(&a.any(0)))),
        }),
        "sortAlpha" => a.arity(1).map(|()| {
            let mut s = strings_of(&a.any(0));
            if s.is_empty() {
                s = vec![strval(&a.any(0))];
            }
            s.sort();
            Value::List(s.into_iter().map(Value::Str).collect())
        }),
        // sprig's `slice` replaces Go's: lists only (a string is refused).
        "slice" => a.at_least(1).and_then(|()| {
            let l = list_of(0)?;
            if l.is_empty() {
                return Ok(Value::Nil);
            }
            let rest = a.rest(1);
            let start = rest.first().map_or(0, super::numbers::to_i64);
            let end = rest.get(1).map_or(l.len() as i64, super::numbers::to_i64);
            match (usize::try_from(start), usize::try_from(end)) {
                (Ok(s), Ok(e)) if s <= e && e <= l.len() => Ok(Value::List(l[s..e].to_vec())),
                _ => Err(a.err(format!("slice bounds out of range [{start}:{end}]"))),
            }
        }),
        "reverse" => a
            .arity(1)
            .and_then(|()| Ok(Value::List(list_of(0)?.into_iter().rev().collect()))),
        "uniq" => a.arity(1).and_then(|()| {
            let mut out: Vec<Value> = Vec::new();
            for v in list_of(0)? {
                if !out.contains(&v) {
                    out.push(v);
                }
            }
            Ok(Value::List(out))
        }),
        "compact" => a.arity(1).and_then(|()| {
            Ok(Value::List(
                list_of(0)?.into_iter().filter(|v| !empty(v)).collect(),
            ))
        }),
        _ => return None,
    })
}

/// sprig's `strslice`: a list's items as text (nil items left out), anything else as one item.
fn strings_of(v: &Value) -> Vec<String> {
    match v {
        Value::List(items) => items
            .iter()
            .filter(|i| !matches!(i, Value::Nil))
            .map(strval)
            .collect(),
        Value::Nil => Vec::new(),
        other => vec![strval(other)],
    }
}
