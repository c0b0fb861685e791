//! What a template computes with, and how Go prints it.
//!
//! Promtail hands its templates strings only (every extracted value, `.Value`, `.Entry`), so a
//! value from the data is a `Str`; numbers, booleans and lists come from literals and functions.
//! A key the data does not have is `Missing`: Go's invalid value, printed `<no value>`, an error
//! where a function wants a string, nil where it takes anything.

use crate::pipeline::go_json::{float_in_json, write_string};

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    Missing,
    List(Vec<Value>),
    /// The dot at the top level: the data itself.
    Data,
}

impl Value {
    /// Go's truth: the zero value of its kind is false.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Str(s) => !s.is_empty(),
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Bool(b) => *b,
            Value::Nil | Value::Missing => false,
            Value::List(l) => !l.is_empty(),
            Value::Data => true,
        }
    }

    /// The value as `fmt.Sprint` writes it.
    pub fn text(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => go_float(*f),
            Value::Bool(b) => b.to_string(),
            Value::Nil | Value::Missing => "<nil>".into(),
            Value::List(items) => {
                let texts: Vec<String> = items.iter().map(Value::text).collect();
                format!("[{}]", texts.join(" "))
            }
            Value::Data => "map[…]".into(),
        }
    }

    /// Go's name of the value's type, as `fmt` writes it in `%!d(string=x)`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Bool(_) => "bool",
            Value::Nil | Value::Missing => "<nil>",
            Value::List(_) => "[]interface {}",
            Value::Data => "map[string]interface {}",
        }
    }

    /// Missing becomes nil: what a function taking `interface{}` receives.
    pub fn or_nil(self) -> Value {
        match self {
            Value::Missing => Value::Nil,
            v => v,
        }
    }

    /// The value as JSON, as Go's `json.Marshal` writes it.
    pub fn json(&self) -> String {
        match self {
            Value::Str(s) => {
                let mut out = String::with_capacity(s.len() + 2);
                write_string(s, &mut out);
                out
            }
            Value::Int(i) => i.to_string(),
            Value::Float(f) => float_in_json(*f),
            Value::Bool(b) => b.to_string(),
            Value::Nil | Value::Missing => "null".into(),
            Value::List(items) => {
                let parts: Vec<String> = items.iter().map(Value::json).collect();
                format!("[{}]", parts.join(","))
            }
            Value::Data => "{}".into(),
        }
    }
}

/// A float as Go's `%v` writes it (`strconv.FormatFloat(f, 'g', -1, 64)`): the shortest digits
/// that read back, in exponent form when the exponent is below -4 or 6 and above (`1e+06`,
/// `1.234567e+06`, `1e-05`).
pub fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "1.234567e6".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    format!("{f}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_go_prints_them() {
        for (f, go) in [
            (1.5, "1.5"),
            (3.0, "3"),
            (1e7, "1e+07"),
            (1e6, "1e+06"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (0.00001, "1e-05"),
            (0.0001, "0.0001"),
            (1.0 / 3.0, "0.3333333333333333"),
            (-2.5, "-2.5"),
            (1e21, "1e+21"),
        ] {
            assert_eq!(go_float(f), go, "{f}");
        }
    }
}
