//! Template text → nodes. Errors name what is wrong and where (byte offset into the template).

use super::functions::known;
use super::TemplateError;

#[derive(Debug, Clone)]
pub enum Node {
    Text(String),
    /// Prints the pipeline's value (or, with a declaration, only sets the variable).
    Action(Pipeline),
    If {
        branches: Vec<(Pipeline, Vec<Node>)>,
        otherwise: Vec<Node>,
    },
    Range {
        key: Option<String>,
        value: Option<String>,
        over: Pipeline,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

#[derive(Debug, Clone)]
pub struct Pipeline {
    /// `$x := …`
    pub declare: Option<String>,
    pub commands: Vec<Vec<Arg>>,
}

#[derive(Debug, Clone)]
pub enum Arg {
    /// `.Name`; the empty name is the dot itself.
    Field(String),
    Var(String),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    Func(&'static str),
    Sub(Pipeline),
}

/// One `{{ … }}` after lexing.
enum Action {
    Pipe(Pipeline),
    If(Pipeline),
    ElseIf(Pipeline),
    Else,
    End,
    Range(Option<String>, Option<String>, Pipeline),
    Comment,
}

pub fn parse(text: &str) -> Result<Vec<Node>, TemplateError> {
    let mut parser = Parser {
        text,
        pos: 0,
        vars: vec!["$".to_string()],
    };
    let (nodes, end) = parser.nodes()?;
    match end {
        None => Ok(nodes),
        Some(Action::End) => Err(parser.err("unexpected {{end}}")),
        Some(_) => Err(parser.err("unexpected {{else}}")),
    }
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    /// Variables in scope, innermost last.
    vars: Vec<String>,
}

impl Parser<'_> {
    fn err(&self, msg: impl Into<String>) -> TemplateError {
        TemplateError(format!("template: at byte {}: {}", self.pos, msg.into()))
    }

    /// Nodes up to the end of the text or an `else`/`end` action, which is returned.
    fn nodes(&mut self) -> Result<(Vec<Node>, Option<Action>), TemplateError> {
        let mut nodes = Vec::new();
        loop {
            let rest = &self.text[self.pos..];
            let Some(open) = rest.find("{{") else {
                if !rest.is_empty() {
                    nodes.push(Node::Text(rest.to_string()));
                }
                self.pos = self.text.len();
                return Ok((nodes, None));
            };
            let mut literal = &rest[..open];
            self.pos += open + 2;
            if self.text[self.pos..].starts_with("- ") || self.text[self.pos..].starts_with("-\t") {
                literal = literal.trim_end();
                self.pos += 1;
            }
            if !literal.is_empty() {
                nodes.push(Node::Text(literal.to_string()));
            }
            match self.action()? {
                Action::Comment => {}
                Action::Pipe(p) => {
                    if let Some(v) = &p.declare {
                        self.vars.push(v.clone());
                    }
                    nodes.push(Node::Action(p));
                }
                Action::If(cond) => nodes.push(self.if_node(cond)?),
                Action::Range(key, value, over) => {
                    let scope = self.vars.len();
                    self.vars.extend(key.iter().chain(value.iter()).cloned());
                    let (body, end) = self.nodes()?;
                    let otherwise = match end {
                        Some(Action::Else) => self.block_to_end()?,
                        Some(Action::End) => Vec::new(),
                        _ => return Err(self.err("{{range}} without {{end}}")),
                    };
                    self.vars.truncate(scope);
                    nodes.push(Node::Range {
                        key,
                        value,
                        over,
                        body,
                        otherwise,
                    });
                }
                end @ (Action::Else | Action::ElseIf(_) | Action::End) => {
                    return Ok((nodes, Some(end)))
                }
            }
        }
    }

    fn if_node(&mut self, first: Pipeline) -> Result<Node, TemplateError> {
        let mut branches = Vec::new();
        let mut cond = first;
        loop {
            let scope = self.vars.len();
            let (body, end) = self.nodes()?;
            self.vars.truncate(scope);
            branches.push((cond, body));
            match end {
                Some(Action::End) => {
                    return Ok(Node::If {
                        branches,
                        otherwise: Vec::new(),
                    })
                }
                Some(Action::Else) => {
                    let otherwise = self.block_to_end()?;
                    return Ok(Node::If {
                        branches,
                        otherwise,
                    });
                }
                Some(Action::ElseIf(next)) => cond = next,
                _ => return Err(self.err("{{if}} without {{end}}")),
            }
        }
    }

    /// The nodes of an `else` branch, which must end with `end`.
    fn block_to_end(&mut self) -> Result<Vec<Node>, TemplateError> {
        let scope = self.vars.len();
        let (nodes, end) = self.nodes()?;
        self.vars.truncate(scope);
        match end {
            Some(Action::End) => Ok(nodes),
            _ => Err(self.err("{{else}} without {{end}}")),
        }
    }

    /// Lexes one action; `self.pos` is just after `{{` (and its trim marker).
    fn action(&mut self) -> Result<Action, TemplateError> {
        self.skip_space();
        if self.text[self.pos..].starts_with("/*") {
            let Some(end) = self.text[self.pos..].find("*/") else {
                return Err(self.err("unclosed comment"));
            };
            self.pos += end + 2;
            self.skip_space();
            self.close()?;
            return Ok(Action::Comment);
        }
        let word = self.peek_word();
        let action = match word {
            "if" => {
                self.pos += 2;
                Action::If(self.pipeline(true)?)
            }
            "else" => {
                self.pos += 4;
                self.skip_space();
                if self.peek_word() == "if" {
                    self.pos += 2;
                    Action::ElseIf(self.pipeline(true)?)
                } else {
                    Action::Else
                }
            }
            "end" => {
                self.pos += 3;
                Action::End
            }
            "range" => {
                self.pos += 5;
                self.range()?
            }
            "with" | "define" | "template" | "block" | "break" | "continue" => {
                return Err(self.err(format!("{{{{{word}}}}} is not supported")))
            }
            _ => Action::Pipe(self.pipeline(true)?),
        };
        self.skip_space();
        self.close()?;
        Ok(action)
    }

    fn range(&mut self) -> Result<Action, TemplateError> {
        self.skip_space();
        let save = self.pos;
        let mut names = Vec::new();
        while self.text[self.pos..].starts_with('$') {
            names.push(self.variable_name());
            self.skip_space();
            if self.eat(",") {
                self.skip_space();
                continue;
            }
            break;
        }
        if !names.is_empty() && !self.eat(":=") && !self.eat("=") {
            names.clear();
            self.pos = save;
        }
        let over = self.pipeline(false)?;
        let (key, value) = match names.len() {
            0 => (None, None),
            1 => (None, names.pop()),
            2 => {
                let v = names.pop();
                (names.pop(), v)
            }
            _ => return Err(self.err("range takes at most two variables")),
        };
        Ok(Action::Range(key, value, over))
    }

    /// A pipeline; with `declare`, an optional leading `$x :=`.
    fn pipeline(&mut self, declare: bool) -> Result<Pipeline, TemplateError> {
        self.skip_space();
        let mut name = None;
        if declare && self.text[self.pos..].starts_with('$') {
            let save = self.pos;
            let v = self.variable_name();
            self.skip_space();
            if self.eat(":=") || self.eat("=") {
                name = Some(v);
            } else {
                self.pos = save;
            }
        }
        let mut commands = Vec::new();
        loop {
            let mut args = Vec::new();
            loop {
                self.skip_space();
                let rest = &self.text[self.pos..];
                if rest.is_empty() {
                    return Err(self.err("unclosed action"));
                }
                if rest.starts_with("}}") || rest.starts_with("-}}") || rest.starts_with('|') {
                    break;
                }
                if rest.starts_with(')') {
                    break;
                }
                args.push(self.operand()?);
            }
            if args.is_empty() {
                return Err(self.err("missing value in pipeline"));
            }
            commands.push(args);
            if !self.eat("|") {
                break;
            }
        }
        Ok(Pipeline {
            declare: name,
            commands,
        })
    }

    fn operand(&mut self) -> Result<Arg, TemplateError> {
        let rest = &self.text[self.pos..];
        let c = rest.chars().next().unwrap_or(' ');
        match c {
            '(' => {
                self.pos += 1;
                let p = self.pipeline(false)?;
                self.skip_space();
                if !self.eat(")") {
                    return Err(self.err("unclosed parenthesis"));
                }
                Ok(Arg::Sub(p))
            }
            '.' => {
                self.pos += 1;
                let start = self.pos;
                while let Some(c) = self.text[self.pos..].chars().next() {
                    if c.is_alphanumeric() || c == '_' || c == '.' {
                        self.pos += c.len_utf8();
                    } else {
                        break;
                    }
                }
                Ok(Arg::Field(self.text[start..self.pos].to_string()))
            }
            '$' => {
                let name = self.variable_name();
                if !self.vars.contains(&name) {
                    return Err(self.err(format!("undefined variable {name}")));
                }
                Ok(Arg::Var(name))
            }
            '"' => self.quoted().map(Arg::Str),
            '`' => {
                let Some(end) = rest[1..].find('`') else {
                    return Err(self.err("unterminated raw string"));
                };
                self.pos += end + 2;
                Ok(Arg::Str(rest[1..end + 1].to_string()))
            }
            '-' | '+' | '0'..='9' => self.number(),
            c if c.is_alphabetic() || c == '_' => {
                let word = self.peek_word().to_string();
                self.pos += word.len();
                match word.as_str() {
                    "true" => Ok(Arg::Bool(true)),
                    "false" => Ok(Arg::Bool(false)),
                    "nil" => Ok(Arg::Nil),
                    name => match known(name) {
                        Some(f) => Ok(Arg::Func(f)),
                        None => Err(self.err(format!("function \"{name}\" not defined"))),
                    },
                }
            }
            other => Err(self.err(format!("unexpected {other:?} in action"))),
        }
    }

    fn quoted(&mut self) -> Result<String, TemplateError> {
        let mut out = String::new();
        let mut chars = self.text[self.pos + 1..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 2;
                    return Ok(out);
                }
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some('\\') => out.push('\\'),
                    Some('"') => out.push('"'),
                    Some('\'') => out.push('\''),
                    Some(other) => return Err(self.err(format!("unknown escape \\{other}"))),
                    None => break,
                },
                c => out.push(c),
            }
        }
        Err(self.err("unterminated quoted string"))
    }

    fn number(&mut self) -> Result<Arg, TemplateError> {
        let rest = &self.text[self.pos..];
        let len = rest
            .char_indices()
            .find(|&(i, c)| {
                !(c.is_ascii_alphanumeric() || c == '.' || (i == 0 && "+-".contains(c)))
            })
            .map_or(rest.len(), |(i, _)| i);
        let word = &rest[..len];
        self.pos += len;
        if let Ok(i) = word.parse::<i64>() {
            Ok(Arg::Int(i))
        } else if let Ok(f) = word.parse::<f64>() {
            Ok(Arg::Float(f))
        } else {
            Err(self.err(format!("bad number {word:?}")))
        }
    }

    fn variable_name(&mut self) -> String {
        let start = self.pos;
        self.pos += 1;
        while let Some(c) = self.text[self.pos..].chars().next() {
            if c.is_alphanumeric() || c == '_' {
                self.pos += c.len_utf8();
            } else {
                break;
            }
        }
        self.text[start..self.pos].to_string()
    }

    fn peek_word(&self) -> &str {
        let rest = &self.text[self.pos..];
        let len = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        &rest[..len]
    }

    fn close(&mut self) -> Result<(), TemplateError> {
        if self.eat("-}}") {
            let rest = &self.text[self.pos..];
            self.pos += rest.len() - rest.trim_start().len();
            Ok(())
        } else if self.eat("}}") {
            Ok(())
        } else {
            Err(self.err("expected }}"))
        }
    }

    fn eat(&mut self, s: &str) -> bool {
        if self.text[self.pos..].starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    fn skip_space(&mut self) {
        let rest = &self.text[self.pos..];
        // A `-}}` trim marker is not whitespace; `- ` inside an action is (Go needs the space).
        self.pos += rest.len() - rest.trim_start().len();
    }
}
