//! Running a parsed template: values, functions, control flow.

use super::parse::{Arg, Node, Pipeline};
use super::TemplateError;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// What `.` is: `.Value`, `.Entry` and the extracted values by name.
#[derive(Debug, Clone, Default)]
pub struct Data {
    fields: BTreeMap<String, String>,
}

impl Data {
    /// `value` is the stage's source value (absent when not extracted), `entry` the log line.
    pub fn new(value: Option<String>, entry: String) -> Self {
        let mut fields = BTreeMap::new();
        if let Some(v) = value {
            fields.insert("Value".to_string(), v);
        }
        fields.insert("Entry".to_string(), entry);
        Self { fields }
    }

    /// Sets `.Value` (the replace stage renders once per captured group).
    pub fn set_value(&mut self, value: String) {
        self.fields.insert("Value".to_string(), value);
    }

    /// Adds an extracted value; `Value` and `Entry` are not overwritten.
    pub fn insert(&mut self, name: &str, value: String) {
        if name != "Value" && name != "Entry" {
            self.fields.insert(name.to_string(), value);
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    /// A key the data does not have: printed as Go prints it, `<no value>`; an empty string
    /// where a function takes it.
    Missing,
    /// The dot at the top level: the data itself.
    Data,
}

impl Value {
    fn truthy(&self) -> bool {
        match self {
            Value::Str(s) => !s.is_empty(),
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Bool(b) => *b,
            Value::Nil | Value::Missing => false,
            Value::Data => true,
        }
    }

    fn text(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Nil => "<nil>".into(),
            Value::Missing => String::new(),
            Value::Data => "map[…]".into(),
        }
    }

    fn number(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

/// Every function a template may call; the parser refuses other names.
pub const FUNCTIONS: &[&str] = &[
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "and",
    "or",
    "not",
    "len",
    "print",
    "printf",
    "println",
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
    "contains",
    "hasPrefix",
    "hasSuffix",
];

pub fn render(nodes: &[Node], data: &Data) -> Result<String, TemplateError> {
    let mut ctx = Ctx {
        data,
        vars: vec![("$".to_string(), Value::Data)],
        dot: Value::Data,
    };
    let mut out = String::new();
    ctx.nodes(nodes, &mut out)?;
    Ok(out)
}

struct Ctx<'a> {
    data: &'a Data,
    vars: Vec<(String, Value)>,
    dot: Value,
}

impl Ctx<'_> {
    fn nodes(&mut self, nodes: &[Node], out: &mut String) -> Result<(), TemplateError> {
        let scope = self.vars.len();
        for node in nodes {
            match node {
                Node::Text(t) => out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipeline(p)?;
                    match &p.declare {
                        Some(name) => self.vars.push((name.clone(), v)),
                        None if matches!(v, Value::Missing) => out.push_str("<no value>"),
                        None => out.push_str(&v.text()),
                    }
                }
                Node::If {
                    branches,
                    otherwise,
                } => {
                    let mut taken = false;
                    for (cond, body) in branches {
                        if self.pipeline(cond)?.truthy() {
                            self.nodes(body, out)?;
                            taken = true;
                            break;
                        }
                    }
                    if !taken {
                        self.nodes(otherwise, out)?;
                    }
                }
                Node::Range {
                    key,
                    value,
                    over,
                    body,
                    otherwise,
                } => {
                    let items: Vec<(String, Value)> = match self.pipeline(over)? {
                        Value::Data => self
                            .data
                            .fields
                            .iter()
                            .map(|(k, v)| (k.clone(), Value::Str(v.clone())))
                            .collect(),
                        Value::Nil => Vec::new(),
                        other => {
                            return Err(TemplateError(format!(
                                "range can't iterate over {}",
                                other.text()
                            )))
                        }
                    };
                    if items.is_empty() {
                        self.nodes(otherwise, out)?;
                    }
                    let outer_dot = self.dot.clone();
                    for (k, v) in items {
                        let inner = self.vars.len();
                        if let Some(name) = key {
                            self.vars.push((name.clone(), Value::Str(k)));
                        }
                        if let Some(name) = value {
                            self.vars.push((name.clone(), v.clone()));
                        }
                        self.dot = v;
                        self.nodes(body, out)?;
                        self.vars.truncate(inner);
                    }
                    self.dot = outer_dot;
                }
            }
        }
        self.vars.truncate(scope);
        Ok(())
    }

    fn pipeline(&mut self, p: &Pipeline) -> Result<Value, TemplateError> {
        let mut piped: Option<Value> = None;
        for command in &p.commands {
            piped = Some(self.command(command, piped)?);
        }
        Ok(piped.unwrap_or(Value::Nil))
    }

    fn command(&mut self, args: &[Arg], piped: Option<Value>) -> Result<Value, TemplateError> {
        if let Some(Arg::Func(name)) = args.first() {
            let mut values = args[1..]
                .iter()
                .map(|a| self.operand(a))
                .collect::<Result<Vec<_>, _>>()?;
            values.extend(piped);
            return call(name, values);
        }
        if args.len() > 1 || piped.is_some() {
            return Err(TemplateError(
                "can't give arguments to a value that is not a function".into(),
            ));
        }
        self.operand(&args[0])
    }

    fn operand(&mut self, arg: &Arg) -> Result<Value, TemplateError> {
        Ok(match arg {
            Arg::Field(name) if name.is_empty() => self.dot.clone(),
            Arg::Field(name) => match self.dot {
                Value::Data => self
                    .data
                    .fields
                    .get(name.as_str())
                    .map_or(Value::Missing, |v| Value::Str(v.clone())),
                _ => Value::Str(String::new()),
            },
            Arg::Var(name) => self
                .vars
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map_or(Value::Nil, |(_, v)| v.clone()),
            Arg::Str(s) => Value::Str(s.clone()),
            Arg::Int(i) => Value::Int(*i),
            Arg::Float(f) => Value::Float(*f),
            Arg::Bool(b) => Value::Bool(*b),
            Arg::Nil => Value::Nil,
            Arg::Func(name) => call(name, Vec::new())?,
            Arg::Sub(p) => self.pipeline(p)?,
        })
    }
}

fn call(name: &str, args: Vec<Value>) -> Result<Value, TemplateError> {
    let arity = |n: usize| -> Result<(), TemplateError> {
        if args.len() == n {
            Ok(())
        } else {
            Err(TemplateError(format!(
                "{name}: wants {n} arguments, got {}",
                args.len()
            )))
        }
    };
    let s = |i: usize| args[i].text();
    let int = |i: usize| -> Result<i64, TemplateError> {
        match &args[i] {
            Value::Int(n) => Ok(*n),
            other => other
                .text()
                .parse()
                .map_err(|_| TemplateError(format!("{name}: {} is not an integer", other.text()))),
        }
    };
    Ok(match name {
        "eq" | "ne" => {
            if args.len() < 2 {
                return Err(TemplateError(format!("{name}: wants 2 arguments")));
            }
            let equal = args[1..].iter().any(|b| same(&args[0], b));
            Value::Bool(equal == (name == "eq"))
        }
        "lt" | "le" | "gt" | "ge" => {
            arity(2)?;
            let ord = match (args[0].number(), args[1].number()) {
                (Some(a), Some(b)) => a.partial_cmp(&b),
                _ => Some(s(0).cmp(&s(1))),
            };
            let ord = ord.ok_or_else(|| TemplateError(format!("{name}: not comparable")))?;
            Value::Bool(match name {
                "lt" => ord.is_lt(),
                "le" => ord.is_le(),
                "gt" => ord.is_gt(),
                _ => ord.is_ge(),
            })
        }
        "and" => args
            .iter()
            .find(|v| !v.truthy())
            .or(args.last())
            .cloned()
            .unwrap_or(Value::Nil),
        "or" => args
            .iter()
            .find(|v| v.truthy())
            .or(args.last())
            .cloned()
            .unwrap_or(Value::Nil),
        "not" => {
            arity(1)?;
            Value::Bool(!args[0].truthy())
        }
        "len" => {
            arity(1)?;
            Value::Int(s(0).len() as i64)
        }
        "print" => Value::Str(sprint(&args)),
        "println" => Value::Str(args.iter().map(Value::text).collect::<Vec<_>>().join(" ") + "\n"),
        "printf" => {
            if args.is_empty() {
                return Err(TemplateError("printf: wants a format".into()));
            }
            Value::Str(sprintf(&s(0), &args[1..]))
        }
        "ToLower" => {
            arity(1)?;
            Value::Str(s(0).to_lowercase())
        }
        "ToUpper" => {
            arity(1)?;
            Value::Str(s(0).to_uppercase())
        }
        "Replace" => {
            arity(4)?;
            let n = int(3)?;
            let (text, old, new) = (s(0), s(1), s(2));
            Value::Str(if n < 0 {
                text.replace(&old, &new)
            } else {
                text.replacen(&old, &new, n as usize)
            })
        }
        "Trim" | "TrimLeft" | "TrimRight" => {
            arity(2)?;
            let cutset = s(1);
            let cut = |c: char| cutset.contains(c);
            let text = s(0);
            Value::Str(
                match name {
                    "Trim" => text.trim_matches(cut),
                    "TrimLeft" => text.trim_start_matches(cut),
                    _ => text.trim_end_matches(cut),
                }
                .to_string(),
            )
        }
        "TrimPrefix" => {
            arity(2)?;
            let text = s(0);
            Value::Str(text.strip_prefix(&s(1)).unwrap_or(&text).to_string())
        }
        "TrimSuffix" => {
            arity(2)?;
            let text = s(0);
            Value::Str(text.strip_suffix(&s(1)).unwrap_or(&text).to_string())
        }
        "TrimSpace" => {
            arity(1)?;
            Value::Str(s(0).trim().to_string())
        }
        "Hash" | "Sha2Hash" => {
            arity(2)?;
            let input = s(0) + &s(1);
            Value::Str(if name == "Hash" {
                hex(&<sha3::Sha3_256 as sha3::Digest>::digest(input.as_bytes()))
            } else {
                hex(&<sha2::Sha256 as sha2::Digest>::digest(input.as_bytes()))
            })
        }
        "regexReplaceAll" | "regexReplaceAllLiteral" => {
            arity(3)?;
            let re = crate::config::go_regex::compile(&s(0))
                .map_err(|e| TemplateError(format!("{name}: {e}")))?;
            let text = s(1);
            let with = s(2);
            Value::Str(if name == "regexReplaceAll" {
                re.replace_all(&text, with.as_str()).into_owned()
            } else {
                re.replace_all(&text, regex::NoExpand(&with)).into_owned()
            })
        }
        "contains" => {
            arity(2)?;
            Value::Bool(s(1).contains(&s(0)))
        }
        "hasPrefix" => {
            arity(2)?;
            Value::Bool(s(1).starts_with(&s(0)))
        }
        "hasSuffix" => {
            arity(2)?;
            Value::Bool(s(1).ends_with(&s(0)))
        }
        other => return Err(TemplateError(format!("function \"{other}\" not defined"))),
    })
}

/// Go's `eq`: values of one kind compare directly; extracted values are strings, so a number
/// literal compares with a string by its text (Promtail's JSON numbers are floats there).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Nil, Value::Nil) => true,
        (x, y) => match (x.number(), y.number()) {
            (Some(p), Some(q)) => p == q,
            _ => x.text() == y.text(),
        },
    }
}

/// `fmt.Sprint`: a space between operands when neither is a string.
fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, v) in args.iter().enumerate() {
        let is_str = |v: &Value| matches!(v, Value::Str(_));
        if i > 0 && !is_str(v) && !is_str(&args[i - 1]) {
            out.push(' ');
        }
        out.push_str(&v.text());
    }
    out
}

/// `fmt.Sprintf` for the verbs templates use: %s %v %d %q %f %x %%.
fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut next = args.iter();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = next.next() else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        match verb {
            'd' => match arg.number() {
                Some(n) => {
                    let _ = write!(out, "{}", n as i64);
                }
                None => {
                    let _ = write!(out, "%!d({})", arg.text());
                }
            },
            'f' => {
                let _ = write!(out, "{:.6}", arg.number().unwrap_or(0.0));
            }
            'q' => {
                let _ = write!(out, "{:?}", arg.text());
            }
            'x' => out.push_str(&hex(arg.text().as_bytes())),
            _ => out.push_str(&arg.text()),
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}
