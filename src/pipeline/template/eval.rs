//! Running a parsed template: values, functions, control flow.

use super::functions::call;
use super::parse::{Arg, Node, Pipeline};
use super::value::Value;
use super::TemplateError;
use std::collections::BTreeMap;

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
                        // Go unwraps a function's nil `interface{}` result to no value.
                        None if matches!(v, Value::Missing | Value::Nil) => {
                            out.push_str("<no value>")
                        }
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
                    let items: Vec<(Value, Value)> = match self.pipeline(over)? {
                        Value::Data => self
                            .data
                            .fields
                            .iter()
                            .map(|(k, v)| (Value::Str(k.clone()), Value::Str(v.clone())))
                            .collect(),
                        Value::List(items) => items
                            .into_iter()
                            .enumerate()
                            .map(|(i, v)| (Value::Int(i as i64), v))
                            .collect(),
                        Value::Nil | Value::Missing => Vec::new(),
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
                            self.vars.push((name.clone(), k));
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
