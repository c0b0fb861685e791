//! sprig's conversions and arithmetic: `atoi`, `int`, `int64`, `float64`; `add` … `round` on
//! 64-bit integers (every operand converted as the `cast` library converts it: a string is
//! parsed, `"1.0"` is 1, `"0x10"` is 16, anything unreadable 0); `addf` … `minf` on floats, the
//! first four exact in decimal as sprig computes them (`addf 0.1 0.2` is 0.3).

use super::functions::Args;
use super::value::Value;
use super::TemplateError;

/// `cast.ToInt64`.
pub fn to_i64(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        Value::Float(f) => *f as i64,
        Value::Bool(b) => i64::from(*b),
        Value::Str(s) => parse_int(trim_zero_decimal(s)).unwrap_or(0),
        _ => 0,
    }
}

/// `cast.ToFloat64`.
pub fn to_f64(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Str(s) => s.parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// `"1.000"` → `"1"`: what `cast` does before reading a string as an integer.
fn trim_zero_decimal(s: &str) -> &str {
    let mut found_zero = false;
    for (i, c) in s.char_indices().rev() {
        match c {
            '.' if found_zero => return &s[..i],
            '.' => {}
            '0' => found_zero = true,
            _ => return s,
        }
    }
    s
}

/// `strconv.ParseInt(s, 0, 64)`: a sign, then `0x`, `0o`, `0b` or a leading `0` (octal) for the
/// base; `_` between digits.
fn parse_int(s: &str) -> Option<i64> {
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, body) = if let Some(b) = lower.strip_prefix("0x") {
        (16, b)
    } else if let Some(b) = lower.strip_prefix("0o") {
        (8, b)
    } else if let Some(b) = lower.strip_prefix("0b") {
        (2, b)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    let body = body.replace('_', "");
    if body.is_empty() || body.starts_with(['+', '-']) {
        return None;
    }
    let magnitude = i128::from_str_radix(&body, radix).ok()?;
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

/// `a op b` computed exactly on the shortest decimal forms of both, as sprig's decimal
/// arithmetic does; where the exact form does not fit, the float operation.
fn decimal_op(a: f64, b: f64, op: char) -> f64 {
    let exact = || -> Option<f64> {
        let (ma, ea) = decimal(a)?;
        let (mb, eb) = decimal(b)?;
        let (m, e) = match op {
            '+' | '-' => {
                let e = ea.min(eb);
                let ma = ma.checked_mul(10i128.checked_pow((ea - e) as u32)?)?;
                let mb = mb.checked_mul(10i128.checked_pow((eb - e) as u32)?)?;
                (
                    if op == '+' {
                        ma.checked_add(mb)?
                    } else {
                        ma.checked_sub(mb)?
                    },
                    e,
                )
            }
            _ => (ma.checked_mul(mb)?, ea + eb),
        };
        format!("{m}e{e}").parse().ok()
    };
    match op {
        '/' => {
            // sprig divides to 16 decimal places.
            let q = a / b;
            if q.is_finite() {
                format!("{q:.16}").parse().unwrap_or(q)
            } else {
                q
            }
        }
        _ => exact().unwrap_or(match op {
            '+' => a + b,
            '-' => a - b,
            _ => a * b,
        }),
    }
}

/// The shortest decimal form of `f`: mantissa and power of ten.
fn decimal(f: f64) -> Option<(i128, i32)> {
    if !f.is_finite() {
        return None;
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e')?;
    let exp: i32 = exp.parse().ok()?;
    let fraction = mantissa.split_once('.').map_or(0, |(_, f)| f.len() as i32);
    let m: i128 = mantissa.replace('.', "").parse().ok()?;
    Some((m, exp - fraction))
}

pub fn call(a: &Args) -> Option<Result<Value, TemplateError>> {
    let all = a.rest(0);
    let int_of = |i: usize| to_i64(&all[i]);
    let float_of = |i: usize| to_f64(&all[i]);
    let need = |n: usize| a.at_least(n);
    let int = |r: Result<i64, TemplateError>| Some(r.map(Value::Int));
    let float = |r: Result<f64, TemplateError>| Some(r.map(Value::Float));
    match a.name {
        "atoi" => int(a.arity(1).and_then(|()| Ok(a.str(0)?.parse().unwrap_or(0)))),
        "int" | "int64" => int(a.arity(1).map(|()| int_of(0))),
        "float64" => float(a.arity(1).map(|()| float_of(0))),
        "add" => int(Ok(all.iter().map(to_i64).fold(0i64, i64::wrapping_add))),
        "add1" => int(a.arity(1).map(|()| int_of(0).wrapping_add(1))),
        "sub" => int(a.arity(2).map(|()| int_of(0).wrapping_sub(int_of(1)))),
        "mul" => int(need(1).map(|()| all.iter().map(to_i64).fold(1i64, i64::wrapping_mul))),
        "div" | "mod" => int(a.arity(2).and_then(|()| {
            let (x, y) = (int_of(0), int_of(1));
            let result = if a.name == "div" {
                x.checked_div(y)
            } else {
                x.checked_rem(y)
            };
            result.ok_or_else(|| a.err("runtime error: integer divide by zero"))
        })),
        "max" | "min" => int(need(1).map(|()| {
            let values = all.iter().map(to_i64);
            if a.name == "max" {
                values.max()
            } else {
                values.min()
            }
            .unwrap_or(0)
        })),
        "floor" => float(a.arity(1).map(|()| float_of(0).floor())),
        "ceil" => float(a.arity(1).map(|()| float_of(0).ceil())),
        "round" => float(need(2).and_then(|()| {
            let places = a.int(1)?;
            let on = all.get(2).map_or(0.5, to_f64);
            let pow = 10f64.powi(places as i32);
            let digit = pow * float_of(0);
            let rounded = if digit.fract() >= on {
                digit.ceil()
            } else {
                digit.floor()
            };
            Ok(rounded / pow)
        })),
        "addf" => float(Ok(all
            .iter()
            .map(to_f64)
            .fold(0.0, |x, y| decimal_op(x, y, '+')))),
        "add1f" => float(a.arity(1).map(|()| decimal_op(float_of(0), 1.0, '+'))),
        "subf" | "mulf" | "divf" => float(need(1).map(|()| {
            let op = match a.name {
                "subf" => '-',
                "mulf" => '*',
                _ => '/',
            };
            all[1..]
                .iter()
                .map(to_f64)
                .fold(float_of(0), |x, y| decimal_op(x, y, op))
        })),
        "maxf" | "minf" => float(need(1).map(|()| {
            let values = all.iter().map(to_f64);
            if a.name == "maxf" {
                values.fold(f64::NEG_INFINITY, f64::max)
            } else {
                values.fold(f64::INFINITY, f64::min)
            }
        })),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_convert_as_cast_converts_them() {
        let s = |t: &str| to_i64(&Value::Str(t.into()));
        assert_eq!(s("12"), 12);
        assert_eq!(s("1.0"), 1);
        assert_eq!(s("1.5"), 0);
        assert_eq!(s("0x10"), 16);
        assert_eq!(s("-3"), -3);
        assert_eq!(s("010"), 8);
        assert_eq!(s(""), 0);
        assert_eq!(s("x y"), 0);
        assert_eq!(decimal_op(0.1, 0.2, '+'), 0.3);
        assert_eq!(decimal_op(5.0, 1.25, '-'), 3.75);
        assert_eq!(decimal_op(1.0, 3.0, '/'), 0.3333333333333333);
    }
}
