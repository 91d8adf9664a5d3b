//! The subset of Go `text/template` with Sprig functions that SealedSecret templates
//! (`spec.template.data`) and ESO's template engine v2 users use most: `{{ .key }}`, `index`, pipes, parentheses, and the functions b64enc, b64dec,
//! toJson, fromJson, upper, lower, trim, trimPrefix, trimSuffix, quote, squote, replace,
//! default, toString, nindent, indent. Anything else (if/range, variables, other functions)
//! is a clear error, never a silent empty output.
//!
//! Error messages name keys and functions, never values: they end up in status conditions.

use std::collections::BTreeMap;

use base64::Engine as _;
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("template: {0}")]
pub struct TemplateError(pub String);

fn terr<T>(msg: impl Into<String>) -> Result<T, TemplateError> {
    Err(TemplateError(msg.into()))
}

/// A template value. Secret data enters as `Bytes`; `fromJson` produces the other shapes.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Bytes(Zeroizing<Vec<u8>>),
    Map(BTreeMap<String, Value>),
    List(Vec<Value>),
    Number(serde_json::Number),
    Bool(bool),
    Null,
}

impl Value {
    fn from_json(v: serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => Value::Number(n),
            serde_json::Value::String(s) => Value::Bytes(Zeroizing::new(s.into_bytes())),
            serde_json::Value::Array(a) => {
                Value::List(a.into_iter().map(Value::from_json).collect())
            }
            serde_json::Value::Object(o) => Value::Map(
                o.into_iter()
                    .map(|(k, v)| (k, Value::from_json(v)))
                    .collect(),
            ),
        }
    }

    fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Bytes(b) => serde_json::Value::String(String::from_utf8_lossy(b).into_owned()),
            Value::Map(m) => {
                serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
            Value::List(l) => serde_json::Value::Array(l.iter().map(Value::to_json).collect()),
            Value::Number(n) => serde_json::Value::Number(n.clone()),
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Null => serde_json::Value::Null,
        }
    }

    /// How `{{ }}` prints a value.
    fn print(&self) -> Vec<u8> {
        match self {
            Value::Bytes(b) => b.to_vec(),
            Value::Number(n) => n.to_string().into_bytes(),
            Value::Bool(b) => b.to_string().into_bytes(),
            Value::Null => Vec::new(),
            Value::Map(_) | Value::List(_) => self.to_json().to_string().into_bytes(),
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Value::Bytes(b) => b.is_empty(),
            Value::Map(m) => m.is_empty(),
            Value::List(l) => l.is_empty(),
            Value::Number(n) => n.as_f64() == Some(0.0),
            Value::Bool(b) => !b,
            Value::Null => true,
        }
    }

    /// Approximate bytes held, for the budget.
    fn size(&self) -> usize {
        match self {
            Value::Bytes(b) => b.len(),
            Value::Map(m) => m
                .iter()
                .map(|(k, v)| k.len().saturating_add(v.size()))
                .fold(m.len(), usize::saturating_add),
            Value::List(l) => l
                .iter()
                .map(Value::size)
                .fold(l.len(), usize::saturating_add),
            Value::Number(_) | Value::Bool(_) | Value::Null => 8,
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Value::Bytes(_) => "string",
            Value::Map(_) => "map",
            Value::List(_) => "list",
            Value::Number(_) => "number",
            Value::Bool(_) => "bool",
            Value::Null => "nil",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    /// `.a.b` (fields on the root) or `.` itself (empty path).
    Dot(Vec<String>),
    Str(String),
    Number(serde_json::Number),
    Bool(bool),
    Nil,
    Func(String),
    /// `(pipeline).a.b`
    Sub(Box<Pipeline>, Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
struct Command(Vec<Operand>);

#[derive(Debug, Clone, PartialEq)]
struct Pipeline(Vec<Command>);

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Action(Pipeline),
}

const KEYWORDS: &[&str] = &[
    "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
];

/// What one template run may consume. Templates come from tenants: a run that exceeds any
/// bound fails with an error naming the bound, and the process and other objects carry on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of output, and of any single intermediate value. A Secret holds at most 1 MiB.
    pub max_output_bytes: usize,
    /// Evaluation steps: one per action, command and function call, plus one per KiB a
    /// function reads or writes, so CPU time follows the budget.
    pub max_steps: u64,
    /// Nesting of parentheses, control structures and template calls.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_output_bytes: 1 << 20,
            max_steps: 1_000_000,
            max_depth: 100,
        }
    }
}

/// Tracks one run against its [`Limits`].
struct Budget {
    limits: Limits,
    steps: u64,
}

impl Budget {
    fn step(&mut self, units: u64) -> Result<(), TemplateError> {
        self.steps = self.steps.saturating_add(units);
        if self.steps > self.limits.max_steps {
            return terr(format!(
                "evaluation exceeded the limit of {} steps",
                self.limits.max_steps
            ));
        }
        Ok(())
    }

    /// Charges the bytes a function handles and refuses a result larger than the output limit.
    fn charge_bytes(&mut self, bytes: usize) -> Result<(), TemplateError> {
        self.step((bytes / 1024) as u64)
    }

    /// Checked before allocating: `needed` may be computed with saturating arithmetic.
    fn fits(&self, what: &str, needed: usize) -> Result<(), TemplateError> {
        if needed > self.limits.max_output_bytes {
            return terr(format!(
                "{what}: result would exceed the limit of {} bytes",
                self.limits.max_output_bytes
            ));
        }
        Ok(())
    }
}

/// Renders `template` with `data` as `.`, within the default [`Limits`].
pub fn render(
    template: &str,
    data: &BTreeMap<String, Zeroizing<Vec<u8>>>,
) -> Result<Zeroizing<Vec<u8>>, TemplateError> {
    render_with_limits(template, data, &Limits::default())
}

/// Renders `template` with `data` as `.`, failing once the run exceeds `limits`.
pub fn render_with_limits(
    template: &str,
    data: &BTreeMap<String, Zeroizing<Vec<u8>>>,
    limits: &Limits,
) -> Result<Zeroizing<Vec<u8>>, TemplateError> {
    let nodes = parse(template, limits.max_depth)?;
    let root = Value::Map(
        data.iter()
            .map(|(k, v)| (k.clone(), Value::Bytes(v.clone())))
            .collect(),
    );
    let mut budget = Budget {
        limits: *limits,
        steps: 0,
    };
    let mut out = Zeroizing::new(Vec::new());
    for node in &nodes {
        budget.step(1)?;
        let piece = match node {
            Node::Text(t) => Zeroizing::new(t.as_bytes().to_vec()),
            Node::Action(p) => {
                let v = eval_pipeline(p, &root, &mut budget)?;
                Zeroizing::new(v.print())
            }
        };
        budget.fits("output", out.len().saturating_add(piece.len()))?;
        out.extend_from_slice(&piece);
    }
    Ok(out)
}

fn parse(template: &str, max_depth: usize) -> Result<Vec<Node>, TemplateError> {
    let mut nodes = Vec::new();
    let mut rest = template;
    let mut trim_next_text = false;
    while let Some(start) = rest.find("{{") {
        let mut text = &rest[..start];
        if trim_next_text {
            text = text.trim_start();
        }
        let after_open = &rest[start + 2..];
        let trim_left = after_open.starts_with("- ")
            || after_open.starts_with("-\t")
            || after_open.starts_with("-\n");
        if trim_left {
            text = text.trim_end();
        }
        if !text.is_empty() {
            nodes.push(Node::Text(text.to_string()));
        }
        let end = after_open
            .find("}}")
            .ok_or_else(|| TemplateError("unclosed action: missing \"}}\"".into()))?;
        let mut inner = &after_open[..end];
        if trim_left {
            inner = &inner[1..];
        }
        trim_next_text = false;
        if inner.ends_with(" -") || inner.ends_with("\t-") || inner.ends_with("\n-") {
            inner = &inner[..inner.len() - 1];
            trim_next_text = true;
        }
        rest = &after_open[end + 2..];
        let inner = inner.trim();
        if inner.starts_with("/*") && inner.ends_with("*/") {
            continue;
        }
        let mut lexer = Lexer {
            s: inner,
            pos: 0,
            depth: 0,
            max_depth,
        };
        let pipeline = lexer.pipeline()?;
        lexer.skip_ws();
        if lexer.pos != lexer.s.len() {
            return terr(format!("unexpected {:?} in action", &lexer.s[lexer.pos..]));
        }
        nodes.push(Node::Action(pipeline));
    }
    let text = if trim_next_text {
        rest.trim_start()
    } else {
        rest
    };
    if !text.is_empty() {
        nodes.push(Node::Text(text.to_string()));
    }
    Ok(nodes)
}

struct Lexer<'a> {
    s: &'a str,
    pos: usize,
    depth: usize,
    max_depth: usize,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                self.pos += c.len_utf8();
            } else {
                break;
            }
        }
    }

    fn pipeline(&mut self) -> Result<Pipeline, TemplateError> {
        let mut commands = vec![self.command()?];
        loop {
            self.skip_ws();
            if self.peek() == Some('|') {
                self.pos += 1;
                commands.push(self.command()?);
            } else {
                return Ok(Pipeline(commands));
            }
        }
    }

    fn command(&mut self) -> Result<Command, TemplateError> {
        let mut operands = Vec::new();
        loop {
            self.skip_ws();
            match self.peek() {
                None | Some('|') | Some(')') => break,
                _ => operands.push(self.operand()?),
            }
        }
        if operands.is_empty() {
            return terr("empty command");
        }
        Ok(Command(operands))
    }

    fn fields(&mut self) -> Vec<String> {
        let mut fields = Vec::new();
        while self.peek() == Some('.') {
            let start = self.pos + 1;
            let mut end = start;
            for c in self.s[start..].chars() {
                if c.is_alphanumeric() || c == '_' {
                    end += c.len_utf8();
                } else {
                    break;
                }
            }
            if end == start {
                break;
            }
            fields.push(self.s[start..end].to_string());
            self.pos = end;
        }
        fields
    }

    fn operand(&mut self) -> Result<Operand, TemplateError> {
        let c = self
            .peek()
            .ok_or_else(|| TemplateError("missing operand".into()))?;
        match c {
            '.' => {
                let fields = self.fields();
                if fields.is_empty() {
                    self.pos += 1; // a bare `.`
                }
                Ok(Operand::Dot(fields))
            }
            '"' => self.quoted().map(Operand::Str),
            '`' => {
                let body = &self.s[self.pos + 1..];
                let end = body
                    .find('`')
                    .ok_or_else(|| TemplateError("unterminated raw string".into()))?;
                let out = body[..end].to_string();
                self.pos += end + 2;
                Ok(Operand::Str(out))
            }
            '(' => {
                self.pos += 1;
                self.depth += 1;
                if self.depth > self.max_depth {
                    return terr(format!(
                        "parentheses nested deeper than the limit of {}",
                        self.max_depth
                    ));
                }
                let inner = self.pipeline()?;
                self.depth -= 1;
                self.skip_ws();
                if self.peek() != Some(')') {
                    return terr("unclosed parenthesis");
                }
                self.pos += 1;
                let fields = self.fields();
                Ok(Operand::Sub(Box::new(inner), fields))
            }
            '$' => terr("variables are not supported"),
            c if c.is_ascii_digit() || c == '-' => {
                let start = self.pos;
                while let Some(c) = self.peek() {
                    if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '+' {
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                let text = &self.s[start..self.pos];
                match serde_json::from_str::<serde_json::Number>(text) {
                    Ok(n) => Ok(Operand::Number(n)),
                    Err(_) => terr(format!("bad number {text:?}")),
                }
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = self.pos;
                while let Some(c) = self.peek() {
                    if c.is_alphanumeric() || c == '_' {
                        self.pos += c.len_utf8();
                    } else {
                        break;
                    }
                }
                let word = &self.s[start..self.pos];
                match word {
                    "true" => Ok(Operand::Bool(true)),
                    "false" => Ok(Operand::Bool(false)),
                    "nil" => Ok(Operand::Nil),
                    w if KEYWORDS.contains(&w) => terr(format!(
                        "{{{{{w}}}}} actions are not supported by this controller"
                    )),
                    w => Ok(Operand::Func(w.to_string())),
                }
            }
            other => terr(format!("unexpected character {other:?}")),
        }
    }

    fn quoted(&mut self) -> Result<String, TemplateError> {
        let mut out = String::new();
        let mut chars = self.s[self.pos + 1..].char_indices();
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
                    Some(other) => {
                        out.push('\\');
                        out.push(other);
                    }
                    None => break,
                },
                c => out.push(c),
            }
        }
        terr("unterminated string")
    }
}

fn field_path(mut v: Value, fields: &[String]) -> Result<Value, TemplateError> {
    for f in fields {
        v = match v {
            Value::Map(mut m) => match m.remove(f) {
                Some(x) => x,
                None => return terr(format!("map has no entry for key {f:?}")),
            },
            other => {
                return terr(format!(
                    "can't evaluate field {f} in type {}",
                    other.type_name()
                ));
            }
        };
    }
    Ok(v)
}

fn eval_pipeline(p: &Pipeline, root: &Value, budget: &mut Budget) -> Result<Value, TemplateError> {
    let mut piped: Option<Value> = None;
    for cmd in &p.0 {
        budget.step(1)?;
        piped = Some(eval_command(cmd, root, piped, budget)?);
    }
    piped.ok_or_else(|| TemplateError("empty pipeline".into()))
}

fn eval_operand(op: &Operand, root: &Value, budget: &mut Budget) -> Result<Value, TemplateError> {
    match op {
        Operand::Dot(fields) => field_path(root.clone(), fields),
        Operand::Str(s) => Ok(Value::Bytes(Zeroizing::new(s.as_bytes().to_vec()))),
        Operand::Number(n) => Ok(Value::Number(n.clone())),
        Operand::Bool(b) => Ok(Value::Bool(*b)),
        Operand::Nil => Ok(Value::Null),
        Operand::Func(name) => call(name, Vec::new(), budget),
        Operand::Sub(p, fields) => field_path(eval_pipeline(p, root, budget)?, fields),
    }
}

fn eval_command(
    cmd: &Command,
    root: &Value,
    piped: Option<Value>,
    budget: &mut Budget,
) -> Result<Value, TemplateError> {
    match cmd.0.as_slice() {
        [Operand::Func(name), args @ ..] => {
            let mut values = args
                .iter()
                .map(|a| eval_operand(a, root, budget))
                .collect::<Result<Vec<_>, _>>()?;
            values.extend(piped);
            call(name, values, budget)
        }
        [single] => {
            if piped.is_some() {
                return terr("can't give argument to non-function");
            }
            eval_operand(single, root, budget)
        }
        _ => terr("can't give arguments to non-function"),
    }
}

fn string_arg(name: &str, v: &Value) -> Result<Zeroizing<Vec<u8>>, TemplateError> {
    match v {
        Value::Bytes(b) => Ok(b.clone()),
        Value::Number(_) | Value::Bool(_) | Value::Null => Ok(Zeroizing::new(v.print())),
        other => terr(format!(
            "{name}: expected a string, got a {}",
            other.type_name()
        )),
    }
}

fn text_arg(name: &str, v: &Value) -> Result<String, TemplateError> {
    String::from_utf8(string_arg(name, v)?.to_vec())
        .map_err(|_| TemplateError(format!("{name}: value is not UTF-8 text")))
}

fn arity(name: &str, args: &[Value], n: usize) -> Result<(), TemplateError> {
    if args.len() == n {
        Ok(())
    } else {
        terr(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        ))
    }
}

/// Calls a function within the budget: its input is charged before, its result checked after.
fn call(name: &str, args: Vec<Value>, budget: &mut Budget) -> Result<Value, TemplateError> {
    budget.step(1)?;
    budget.charge_bytes(args.iter().map(Value::size).fold(0, usize::saturating_add))?;
    let result = call_unchecked(name, args, budget)?;
    let size = result.size();
    budget.fits(name, size)?;
    budget.charge_bytes(size)?;
    Ok(result)
}

fn call_unchecked(name: &str, args: Vec<Value>, budget: &Budget) -> Result<Value, TemplateError> {
    let bytes = |b: Vec<u8>| Ok(Value::Bytes(Zeroizing::new(b)));
    let text = |s: String| Ok(Value::Bytes(Zeroizing::new(s.into_bytes())));
    match name {
        "b64enc" => {
            arity(name, &args, 1)?;
            text(base64::engine::general_purpose::STANDARD.encode(&*string_arg(name, &args[0])?))
        }
        "b64dec" => {
            arity(name, &args, 1)?;
            let input = string_arg(name, &args[0])?;
            // The decoder's own message quotes the offending byte: keep it out.
            match base64::engine::general_purpose::STANDARD.decode(input.trim_ascii()) {
                Ok(b) => bytes(b),
                Err(_) => terr("b64dec: value is not valid base64"),
            }
        }
        "toString" => {
            arity(name, &args, 1)?;
            bytes(args[0].print())
        }
        "toJson" => {
            arity(name, &args, 1)?;
            text(args[0].to_json().to_string())
        }
        "fromJson" => {
            arity(name, &args, 1)?;
            match serde_json::from_slice::<serde_json::Value>(&string_arg(name, &args[0])?) {
                Ok(v) => Ok(Value::from_json(v)),
                Err(_) => terr("fromJson: value is not valid JSON"),
            }
        }
        "upper" => {
            arity(name, &args, 1)?;
            text(text_arg(name, &args[0])?.to_uppercase())
        }
        "lower" => {
            arity(name, &args, 1)?;
            text(text_arg(name, &args[0])?.to_lowercase())
        }
        "trim" => {
            arity(name, &args, 1)?;
            text(text_arg(name, &args[0])?.trim().to_string())
        }
        "trimPrefix" | "trimSuffix" => {
            arity(name, &args, 2)?;
            let affix = text_arg(name, &args[0])?;
            let s = text_arg(name, &args[1])?;
            let out = if name == "trimPrefix" {
                s.strip_prefix(affix.as_str()).unwrap_or(&s)
            } else {
                s.strip_suffix(affix.as_str()).unwrap_or(&s)
            };
            text(out.to_string())
        }
        "quote" | "squote" => {
            let parts = args
                .iter()
                .filter(|a| !matches!(a, Value::Null))
                .map(|a| {
                    let s = text_arg(name, a)?;
                    Ok(if name == "quote" {
                        serde_json::Value::String(s).to_string()
                    } else {
                        format!("'{s}'")
                    })
                })
                .collect::<Result<Vec<_>, TemplateError>>()?;
            text(parts.join(" "))
        }
        "replace" => {
            arity(name, &args, 3)?;
            let old = text_arg(name, &args[0])?;
            let new = text_arg(name, &args[1])?;
            let s = text_arg(name, &args[2])?;
            // An empty pattern matches between every character, as in Go.
            let matches = if old.is_empty() {
                s.chars().count().saturating_add(1)
            } else {
                s.matches(old.as_str()).count()
            };
            budget.fits(
                name,
                s.len().saturating_add(matches.saturating_mul(new.len())),
            )?;
            text(s.replace(old.as_str(), &new))
        }
        "default" => match args.len() {
            1 => Ok(args[0].clone()),
            2 => Ok(if args[1].is_empty() {
                args[0].clone()
            } else {
                args[1].clone()
            }),
            n => terr(format!("wrong number of args for default: want 2 got {n}")),
        },
        "indent" | "nindent" => {
            arity(name, &args, 2)?;
            let n = match &args[0] {
                Value::Number(n) => n.as_u64().unwrap_or(0),
                _ => return terr(format!("{name}: first argument must be a number")),
            };
            let s = text_arg(name, &args[1])?;
            let lines = s.split('\n').count();
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            budget.fits(
                name,
                s.len()
                    .saturating_add(lines.saturating_mul(n))
                    .saturating_add(1),
            )?;
            let pad = " ".repeat(n);
            let body = s
                .split('\n')
                .map(|l| format!("{pad}{l}"))
                .collect::<Vec<_>>()
                .join("\n");
            text(if name == "nindent" {
                format!("\n{body}")
            } else {
                body
            })
        }
        "index" => {
            let mut it = args.into_iter();
            let mut cur = it
                .next()
                .ok_or_else(|| TemplateError("index: missing collection".into()))?;
            for key in it {
                cur = match (cur, key) {
                    (Value::Map(mut m), Value::Bytes(k)) => {
                        let k = String::from_utf8_lossy(&k).into_owned();
                        m.remove(&k).unwrap_or(Value::Null)
                    }
                    (Value::List(mut l), Value::Number(n)) => match n.as_u64() {
                        Some(i) if (i as usize) < l.len() => l.swap_remove(i as usize),
                        _ => return terr("index: list index out of range"),
                    },
                    (Value::Null, _) => Value::Null,
                    (c, _) => {
                        return terr(format!("index: can't index item of type {}", c.type_name()));
                    }
                };
            }
            Ok(cur)
        }
        other => terr(format!(
            "function {other:?} not defined (supported: b64enc, b64dec, toJson, fromJson, upper, \
             lower, trim, trimPrefix, trimSuffix, quote, squote, replace, default, index, \
             toString, indent, nindent)"
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, Zeroizing<Vec<u8>>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Zeroizing::new(v.as_bytes().to_vec())))
            .collect()
    }

    fn r(t: &str, d: &[(&str, &str)]) -> Result<String, TemplateError> {
        render(t, &data(d)).map(|b| String::from_utf8(b.to_vec()).unwrap())
    }

    #[test]
    fn fields_text_and_pipes() {
        let d = [("user", "admin"), ("pass", "s3cr3t"), ("my-key", "v")];
        assert_eq!(
            r("postgres://{{ .user }}:{{ .pass }}@db:5432", &d).unwrap(),
            "postgres://admin:s3cr3t@db:5432"
        );
        assert_eq!(r("{{ .user | upper }}", &d).unwrap(), "ADMIN");
        assert_eq!(r("{{ .user | upper | lower }}", &d).unwrap(), "admin");
        assert_eq!(r(r#"{{ index . "my-key" }}"#, &d).unwrap(), "v");
        assert_eq!(r("{{- .user -}}  \n x", &d).unwrap(), "adminx");
        assert_eq!(r("a  {{- .user }}", &d).unwrap(), "aadmin");
        assert_eq!(r("{{/* comment */}}x", &d).unwrap(), "x");
        assert_eq!(r("no actions", &d).unwrap(), "no actions");
    }

    #[test]
    fn sprig_functions() {
        let d = [
            ("v", " Hello World "),
            ("b", "aGVsbG8="),
            ("j", r#"{"a":{"b":"deep"},"n":3,"l":["x","y"]}"#),
            ("empty", ""),
        ];
        assert_eq!(r("{{ .v | trim }}", &d).unwrap(), "Hello World");
        assert_eq!(r("{{ .b | b64dec }}", &d).unwrap(), "hello");
        assert_eq!(r("{{ .b | b64dec | b64enc }}", &d).unwrap(), "aGVsbG8=");
        assert_eq!(r("{{ .v | trim | quote }}", &d).unwrap(), "\"Hello World\"");
        assert_eq!(r("{{ .v | trim | squote }}", &d).unwrap(), "'Hello World'");
        assert_eq!(
            r(r#"{{ .v | trim | replace " " "-" }}"#, &d).unwrap(),
            "Hello-World"
        );
        assert_eq!(r(r#"{{ .empty | default "dflt" }}"#, &d).unwrap(), "dflt");
        assert_eq!(r(r#"{{ default "dflt" .b }}"#, &d).unwrap(), "aGVsbG8=");
        assert_eq!(r(r#"{{ (.j | fromJson).a.b }}"#, &d).unwrap(), "deep");
        assert_eq!(
            r(r#"{{ index (.j | fromJson) "a" "b" }}"#, &d).unwrap(),
            "deep"
        );
        assert_eq!(r(r#"{{ index (.j | fromJson) "n" }}"#, &d).unwrap(), "3");
        assert_eq!(r(r#"{{ index (fromJson .j) "l" 1 }}"#, &d).unwrap(), "y");
        assert_eq!(
            r(r#"{{ (.j | fromJson).a | toJson }}"#, &d).unwrap(),
            r#"{"b":"deep"}"#
        );
        assert_eq!(r("{{ .b | toJson }}", &d).unwrap(), "\"aGVsbG8=\"");
        assert_eq!(
            r(
                r#"{{ "x" | trimPrefix "x" }}{{ "ab" | trimSuffix "b" }}"#,
                &d
            )
            .unwrap(),
            "a"
        );
        assert_eq!(r("{{ .b | nindent 2 }}", &d).unwrap(), "\n  aGVsbG8=");
    }

    #[test]
    fn errors_are_clear_and_never_contain_values() {
        let d = [("canary", "CANARY-VALUE-123"), ("bad", "not base64!")];
        let e = r("{{ .canary | sha256sum }}", &d).unwrap_err();
        assert!(e.0.contains("function \"sha256sum\" not defined"), "{e}");
        let e = r("{{ .missing }}", &d).unwrap_err();
        assert!(e.0.contains("no entry for key \"missing\""), "{e}");
        let e = r("{{ if .canary }}x{{ end }}", &d).unwrap_err();
        assert!(e.0.contains("not supported"), "{e}");
        for t in [
            "{{ .bad | b64dec }}",
            "{{ .canary | fromJson }}",
            "{{ .canary | b64dec }}",
            "{{ .canary.x }}",
            "{{ .canary ",
            "{{ $x := .canary }}",
            "{{ .canary | upper 1 2 }}",
        ] {
            let e = r(t, &d).unwrap_err();
            assert!(!e.0.contains("CANARY"), "{t}: {e}");
            assert!(!e.0.contains("base64!"), "{t}: {e}");
        }
    }

    #[test]
    fn binary_values_pass_through() {
        let mut d = BTreeMap::new();
        d.insert("bin".to_string(), Zeroizing::new(vec![0u8, 159, 146, 150]));
        assert_eq!(
            render("{{ .bin }}", &d).unwrap().to_vec(),
            vec![0u8, 159, 146, 150]
        );
        assert_eq!(
            String::from_utf8(render("{{ .bin | b64enc }}", &d).unwrap().to_vec()).unwrap(),
            "AJ+Slg=="
        );
    }
}
