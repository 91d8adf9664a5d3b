//! The parser of Go's text/template (parse/parse.go): the same tree, the same parse-time
//! checks (undefined functions and variables, misplaced `end`/`else`/`break`).

use std::collections::HashMap;

use crate::TemplateError;
use crate::lex::{Keyword, Tok, Token};

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Text(Vec<u8>),
    Action(Pipe),
    If(Control),
    Range(Control),
    With(Control),
    Template { name: String, pipe: Option<Pipe> },
    Break,
    Continue,
}

#[derive(Debug, Clone)]
pub(crate) struct Control {
    pub pipe: Pipe,
    pub list: Vec<Node>,
    pub else_list: Option<Vec<Node>>,
}

#[derive(Debug, Clone)]
pub(crate) struct Pipe {
    pub line: usize,
    pub is_assign: bool,
    pub decl: Vec<String>,
    pub cmds: Vec<Command>,
}

#[derive(Debug, Clone)]
pub(crate) struct Command {
    pub args: Vec<Arg>,
}

#[derive(Debug, Clone)]
pub(crate) enum Number {
    Int(i64),
    Float(f64),
    /// Fits no int64 (e.g. 18446744073709551615): an error wherever it is used.
    Overflow,
}

#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Dot,
    Nil,
    Bool(bool),
    Number(Number, String),
    Str(Vec<u8>),
    /// `.a.b`
    Field(Vec<String>),
    /// `$x.a.b`: the name and then the fields.
    Variable(String, Vec<String>),
    Identifier(String),
    Pipe(Box<Pipe>),
    /// `(pipe).a.b` or `fn.a`
    Chain(Box<Arg>, Vec<String>),
}

#[derive(Debug, Default)]
pub(crate) struct Tree {
    pub root: Vec<Node>,
    pub defines: HashMap<String, Vec<Node>>,
}

pub(crate) fn parse(
    tokens: Vec<Token>,
    max_depth: usize,
    has_function: &dyn Fn(&str) -> bool,
) -> Result<Tree, TemplateError> {
    let mut p = Parser {
        tokens,
        pos: 0,
        vars: vec!["$".into()],
        range_depth: 0,
        depth: 0,
        max_depth,
        has_function,
        tree: Tree::default(),
    };
    p.parse()?;
    Ok(p.tree)
}

struct Parser<'a> {
    tokens: Vec<Token>,
    pos: usize,
    vars: Vec<String>,
    range_depth: usize,
    depth: usize,
    max_depth: usize,
    has_function: &'a dyn Fn(&str) -> bool,
    tree: Tree,
}

enum Item {
    Node(Node),
    End,
    Else,
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Text(_) => "text".into(),
        Tok::LeftDelim => "left delim".into(),
        Tok::RightDelim => "right delim".into(),
        Tok::Space => "space".into(),
        Tok::Pipe => "\"|\"".into(),
        Tok::Declare => "\":=\"".into(),
        Tok::Assign => "\"=\"".into(),
        Tok::LeftParen => "\"(\"".into(),
        Tok::RightParen => "\")\"".into(),
        Tok::Char(c) => format!("{c:?}"),
        Tok::Str(_) | Tok::RawStr(_) => "quoted string".into(),
        Tok::CharConst(_) => "character constant".into(),
        Tok::Number(n) => format!("number {n:?}"),
        Tok::Bool(b) => b.to_string(),
        Tok::Nil => "nil".into(),
        Tok::Dot => "\".\"".into(),
        Tok::Field(f) => format!("field .{f}"),
        Tok::Variable(v) => format!("variable {v}"),
        Tok::Identifier(i) => format!("identifier {i:?}"),
        Tok::Keyword(k) => format!("<{}>", format!("{k:?}").to_lowercase()),
        Tok::Eof => "EOF".into(),
    }
}

impl Parser<'_> {
    fn line(&self) -> usize {
        self.tokens
            .get(self.pos.min(self.tokens.len().saturating_sub(1)))
            .map_or(0, |t| t.line)
    }

    fn err<T>(&self, msg: impl std::fmt::Display) -> Result<T, TemplateError> {
        Err(TemplateError(format!("line {}: {msg}", self.line())))
    }

    fn peek(&self) -> &Tok {
        self.tokens.get(self.pos).map_or(&Tok::Eof, |t| &t.tok)
    }

    fn next(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn skip_space(&mut self) {
        while *self.peek() == Tok::Space {
            self.pos += 1;
        }
    }

    fn peek_non_space(&mut self) -> Tok {
        self.skip_space();
        self.peek().clone()
    }

    fn next_non_space(&mut self) -> Tok {
        self.skip_space();
        self.next()
    }

    fn enter(&mut self) -> Result<(), TemplateError> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return self.err(format!(
                "template nested deeper than the limit of {}",
                self.max_depth
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn parse(&mut self) -> Result<(), TemplateError> {
        loop {
            match self.peek() {
                Tok::Eof => return Ok(()),
                Tok::LeftDelim => {
                    let save = self.pos;
                    self.next();
                    if self.next_non_space() == Tok::Keyword(Keyword::Define) {
                        self.definition()?;
                        continue;
                    }
                    self.pos = save;
                }
                _ => {}
            }
            match self.text_or_action()? {
                Item::Node(n) => self.tree.root.push(n),
                Item::End => return self.err("unexpected {{end}}"),
                Item::Else => return self.err("unexpected {{else}}"),
            }
        }
    }

    /// As Go: an empty (or blank) definition never replaces a body; two bodies are an error.
    fn add_define(&mut self, name: String, list: Vec<Node>) -> Result<(), TemplateError> {
        let blank = |l: &[Node]| {
            l.iter()
                .all(|n| matches!(n, Node::Text(t) if t.iter().all(u8::is_ascii_whitespace)))
        };
        match self.tree.defines.get(&name) {
            Some(existing) if !blank(existing) => {
                if !blank(&list) {
                    return self.err(format!("multiple definition of template {name:?}"));
                }
                Ok(())
            }
            _ => {
                self.tree.defines.insert(name, list);
                Ok(())
            }
        }
    }

    fn definition(&mut self) -> Result<(), TemplateError> {
        let name = match self.next_non_space() {
            Tok::Str(s) => self.unquote_name(&s)?,
            Tok::RawStr(s) => s,
            other => return self.err(format!("unexpected {} in define clause", describe(&other))),
        };
        self.expect_right_delim("define clause")?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let (list, next) = self.item_list()?;
        self.vars = saved_vars;
        if !matches!(next, Item::End) {
            return self.err("unexpected {{else}} in define clause");
        }
        self.add_define(name, list)
    }

    fn unquote_name(&self, s: &str) -> Result<String, TemplateError> {
        let raw = unquote(s).or_else(|e| self.err(e))?;
        String::from_utf8(raw).or_else(|_| self.err("template name is not UTF-8"))
    }

    fn expect_right_delim(&mut self, context: &str) -> Result<(), TemplateError> {
        match self.next_non_space() {
            Tok::RightDelim => Ok(()),
            other => self.err(format!("unexpected {} in {context}", describe(&other))),
        }
    }

    fn item_list(&mut self) -> Result<(Vec<Node>, Item), TemplateError> {
        let mut list = Vec::new();
        loop {
            if self.peek_non_space() == Tok::Eof {
                return self.err("unexpected EOF");
            }
            match self.text_or_action()? {
                Item::Node(n) => list.push(n),
                other => return Ok((list, other)),
            }
        }
    }

    fn text_or_action(&mut self) -> Result<Item, TemplateError> {
        match self.next_non_space() {
            Tok::Text(t) => Ok(Item::Node(Node::Text(t.into_bytes()))),
            Tok::LeftDelim => self.action(),
            other => self.err(format!("unexpected {} in input", describe(&other))),
        }
    }

    fn action(&mut self) -> Result<Item, TemplateError> {
        let line = self.line();
        match self.peek_non_space() {
            Tok::Keyword(k) => {
                self.next();
                match k {
                    Keyword::Block => self.block_control().map(Item::Node),
                    Keyword::Break | Keyword::Continue => {
                        if self.range_depth == 0 {
                            return self.err(format!(
                                "{{{{{}}}}} outside {{{{range}}}}",
                                if k == Keyword::Break {
                                    "break"
                                } else {
                                    "continue"
                                }
                            ));
                        }
                        self.expect_right_delim(if k == Keyword::Break {
                            "break"
                        } else {
                            "continue"
                        })?;
                        Ok(Item::Node(if k == Keyword::Break {
                            Node::Break
                        } else {
                            Node::Continue
                        }))
                    }
                    Keyword::Else => Ok(Item::Else),
                    Keyword::End => {
                        self.expect_right_delim("end")?;
                        Ok(Item::End)
                    }
                    Keyword::If => self.control("if", true).map(|c| Item::Node(Node::If(c))),
                    Keyword::Range => self
                        .control("range", false)
                        .map(|c| Item::Node(Node::Range(c))),
                    Keyword::With => self
                        .control("with", true)
                        .map(|c| Item::Node(Node::With(c))),
                    Keyword::Template => self.template_control().map(Item::Node),
                    Keyword::Define => self.err("unexpected <define> in command"),
                }
            }
            _ => {
                let mut pipe = self.pipeline("command", true)?;
                pipe.line = line;
                Ok(Item::Node(Node::Action(pipe)))
            }
        }
    }

    /// if / range / with; `else if` and `else with` chain with one shared `end`.
    fn control(&mut self, context: &str, allow_else_chain: bool) -> Result<Control, TemplateError> {
        self.enter()?;
        let vars_mark = self.vars.len();
        let pipe = self.pipeline(context, true)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let (list, next) = self.item_list()?;
        if context == "range" {
            self.range_depth -= 1;
        }
        let mut else_list = None;
        if let Item::Else = next {
            let chained = match self.peek_non_space() {
                Tok::Keyword(Keyword::If) if allow_else_chain && context == "if" => Some("if"),
                Tok::Keyword(Keyword::With) if allow_else_chain && context == "with" => {
                    Some("with")
                }
                _ => None,
            };
            if let Some(kind) = chained {
                self.next();
                let inner = self.control(kind, true)?;
                else_list = Some(vec![if kind == "if" {
                    Node::If(inner)
                } else {
                    Node::With(inner)
                }]);
            } else {
                self.expect_right_delim("else")?;
                let (list, next) = self.item_list()?;
                if !matches!(next, Item::End) {
                    return self.err("expected end; found {{else}}");
                }
                else_list = Some(list);
            }
        }
        self.vars.truncate(vars_mark);
        self.leave();
        Ok(Control {
            pipe,
            list,
            else_list,
        })
    }

    fn template_control(&mut self) -> Result<Node, TemplateError> {
        let name = match self.next_non_space() {
            Tok::Str(s) => self.unquote_name(&s)?,
            Tok::RawStr(s) => s,
            other => {
                return self.err(format!(
                    "unexpected {} in template clause",
                    describe(&other)
                ));
            }
        };
        let pipe = if self.peek_non_space() == Tok::RightDelim {
            self.next();
            None
        } else {
            Some(self.pipeline("template clause", true)?)
        };
        Ok(Node::Template { name, pipe })
    }

    fn block_control(&mut self) -> Result<Node, TemplateError> {
        let name = match self.next_non_space() {
            Tok::Str(s) => self.unquote_name(&s)?,
            Tok::RawStr(s) => s,
            other => return self.err(format!("unexpected {} in block clause", describe(&other))),
        };
        let pipe = self.pipeline("block clause", true)?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let saved_range = std::mem::replace(&mut self.range_depth, 0);
        self.enter()?;
        let (list, next) = self.item_list()?;
        self.leave();
        self.vars = saved_vars;
        self.range_depth = saved_range;
        if !matches!(next, Item::End) {
            return self.err("unexpected {{else}} in block clause");
        }
        self.add_define(name.clone(), list)?;
        Ok(Node::Template {
            name,
            pipe: Some(pipe),
        })
    }

    /// A pipeline up to the right delimiter (`at_delim`) or a right parenthesis.
    fn pipeline(&mut self, context: &str, at_delim: bool) -> Result<Pipe, TemplateError> {
        let mut pipe = Pipe {
            line: self.line(),
            is_assign: false,
            decl: Vec::new(),
            cmds: Vec::new(),
        };
        // Declarations: `$x :=`, `$x =`, `$i, $v :=` (range).
        while let Tok::Variable(name) = self.peek_non_space() {
            let save = self.pos;
            self.next();
            let next = self.peek_non_space();
            match next {
                Tok::Declare | Tok::Assign => {
                    pipe.is_assign = next == Tok::Assign;
                    self.next();
                    if pipe.is_assign && !self.vars.contains(&name) {
                        return self.err(format!("undefined variable {name:?}"));
                    }
                    pipe.decl.push(name.clone());
                    self.vars.push(name);
                    break;
                }
                Tok::Char(',') => {
                    self.next();
                    pipe.decl.push(name.clone());
                    self.vars.push(name);
                    if context == "range" && pipe.decl.len() < 2 {
                        match self.peek_non_space() {
                            Tok::Variable(_) | Tok::RightDelim | Tok::RightParen => continue,
                            _ => return self.err("range can only initialize variables"),
                        }
                    }
                    return self.err(format!("too many declarations in {context}"));
                }
                _ => {
                    self.pos = save;
                    break;
                }
            }
        }
        loop {
            match self.peek_non_space() {
                Tok::RightDelim if at_delim => {
                    self.next();
                    break;
                }
                Tok::RightParen if !at_delim => {
                    self.next();
                    break;
                }
                Tok::Bool(_)
                | Tok::CharConst(_)
                | Tok::Dot
                | Tok::Field(_)
                | Tok::Identifier(_)
                | Tok::Number(_)
                | Tok::Nil
                | Tok::RawStr(_)
                | Tok::Str(_)
                | Tok::Variable(_)
                | Tok::LeftParen => {
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                other => return self.err(format!("unexpected {} in {context}", describe(&other))),
            }
        }
        if pipe.cmds.is_empty() {
            return self.err(format!("missing value for {context}"));
        }
        for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
            if matches!(
                c.args.first(),
                Some(Arg::Bool(_) | Arg::Dot | Arg::Nil | Arg::Number(..) | Arg::Str(_))
            ) {
                return self.err(format!(
                    "non executable command in pipeline stage {}",
                    i + 1
                ));
            }
        }
        Ok(pipe)
    }

    fn command(&mut self) -> Result<Command, TemplateError> {
        let mut args = Vec::new();
        loop {
            self.skip_space();
            if let Some(a) = self.operand()? {
                args.push(a);
            }
            match self.peek().clone() {
                Tok::Space => continue,
                Tok::RightDelim | Tok::RightParen => break,
                Tok::Pipe => {
                    self.next();
                    break;
                }
                other => return self.err(format!("unexpected {} in operand", describe(&other))),
            }
        }
        if args.is_empty() {
            return self.err("empty command");
        }
        Ok(Command { args })
    }

    fn operand(&mut self) -> Result<Option<Arg>, TemplateError> {
        let Some(term) = self.term()? else {
            return Ok(None);
        };
        let mut fields = Vec::new();
        while let Tok::Field(f) = self.peek() {
            fields.push(f.clone());
            self.next();
        }
        if fields.is_empty() {
            return Ok(Some(term));
        }
        Ok(Some(match term {
            Arg::Field(mut f) => {
                f.extend(fields);
                Arg::Field(f)
            }
            Arg::Variable(v, mut f) => {
                f.extend(fields);
                Arg::Variable(v, f)
            }
            Arg::Bool(_) | Arg::Str(_) | Arg::Number(..) | Arg::Nil | Arg::Dot => {
                return self.err("unexpected . after term");
            }
            other => Arg::Chain(Box::new(other), fields),
        }))
    }

    fn term(&mut self) -> Result<Option<Arg>, TemplateError> {
        let tok = self.peek_non_space();
        let arg = match tok {
            Tok::Identifier(name) => {
                if !(self.has_function)(&name) {
                    return self.err(format!("function {name:?} not defined"));
                }
                Arg::Identifier(name)
            }
            Tok::Dot => Arg::Dot,
            Tok::Nil => Arg::Nil,
            Tok::Variable(name) => {
                if !self.vars.contains(&name) {
                    return self.err(format!("undefined variable {name:?}"));
                }
                Arg::Variable(name, Vec::new())
            }
            Tok::Field(f) => Arg::Field(vec![f]),
            Tok::Bool(b) => Arg::Bool(b),
            Tok::CharConst(s) => {
                let raw = unquote(&s).or_else(|e| self.err(e))?;
                let text =
                    String::from_utf8(raw).or_else(|_| self.err("malformed character constant"))?;
                let mut chars = text.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => Arg::Number(Number::Int(c as i64), s),
                    _ => return self.err(format!("malformed character constant: {s}")),
                }
            }
            Tok::Number(s) => Arg::Number(parse_number(&s).or_else(|e| self.err(e))?, s),
            Tok::LeftParen => {
                self.next();
                self.enter()?;
                let pipe = self.pipeline("parenthesized pipeline", false)?;
                self.leave();
                return Ok(Some(Arg::Pipe(Box::new(pipe))));
            }
            Tok::Str(s) => Arg::Str(unquote(&s).or_else(|e| self.err(e))?),
            Tok::RawStr(s) => Arg::Str(s.into_bytes()),
            _ => return Ok(None),
        };
        self.next();
        Ok(Some(arg))
    }
}

/// Go's number constants: ints (decimal, 0x, 0o, 0b, underscores), floats, char constants.
fn parse_number(text: &str) -> Result<Number, String> {
    let bad = || format!("illegal number syntax: {text:?}");
    if text.ends_with('i') {
        return Err("complex constants are not supported".into());
    }
    let (neg, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if body.is_empty() {
        return Err(bad());
    }
    if body.starts_with('_') || body.ends_with('_') || body.contains("__") {
        return Err(bad());
    }
    let clean: String = body.chars().filter(|&c| c != '_').collect();
    let lower = clean.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') && lower.bytes().all(|b| b.is_ascii_digit())
    {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if radix != 10 || digits.bytes().all(|b| b.is_ascii_digit()) {
        if radix == 16 && (digits.contains('.') || digits.contains('p')) {
            return Err("hexadecimal floating-point constants are not supported".into());
        }
        return match u128::from_str_radix(digits, radix) {
            Ok(u) => {
                let signed = if neg { -(u as i128) } else { u as i128 };
                match i64::try_from(signed) {
                    Ok(i) => Ok(Number::Int(i)),
                    Err(_) => Ok(Number::Overflow),
                }
            }
            Err(_) if !digits.is_empty() && digits.bytes().all(|b| (b as char).is_digit(radix)) => {
                Ok(Number::Overflow)
            }
            Err(_) => Err(bad()),
        };
    }
    // A float: digits, one '.', an exponent.
    let valid = {
        let (mant, exp) = match lower.split_once('e') {
            Some((m, e)) => (m, Some(e)),
            None => (lower.as_str(), None),
        };
        let mant_ok = !mant.is_empty()
            && mant != "."
            && mant.bytes().filter(|&b| b == b'.').count() <= 1
            && mant.bytes().all(|b| b.is_ascii_digit() || b == b'.');
        let exp_ok = exp.is_none_or(|e| {
            let e = e.strip_prefix(['+', '-']).unwrap_or(e);
            !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
        });
        mant_ok && exp_ok
    };
    if !valid {
        return Err(bad());
    }
    match lower.parse::<f64>() {
        Ok(f) if f.is_finite() => Ok(Number::Float(if neg { -f } else { f })),
        _ => Err(bad()),
    }
}

/// strconv.Unquote for "…" (Go escapes, may yield any bytes), `…` and '…'.
pub(crate) fn unquote(s: &str) -> Result<Vec<u8>, String> {
    let bad = || "invalid syntax in quoted string".to_string();
    let b = s.as_bytes();
    if b.len() < 2 {
        return Err(bad());
    }
    let q = b[0];
    if b[b.len() - 1] != q {
        return Err(bad());
    }
    let body = &s[1..s.len() - 1];
    if q == b'`' {
        return Ok(body.replace('\r', "").into_bytes());
    }
    let mut out = Vec::with_capacity(body.len());
    let mut chars = body.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c as u32 == q as u32 {
            return Err(bad());
        }
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let Some((_, e)) = chars.next() else {
            return Err(bad());
        };
        let mut hex = |n: usize| -> Result<u32, String> {
            let mut v = 0u32;
            for _ in 0..n {
                let (_, d) = chars.next().ok_or_else(bad)?;
                v = v * 16 + d.to_digit(16).ok_or_else(bad)?;
            }
            Ok(v)
        };
        match e {
            'a' => out.push(7),
            'b' => out.push(8),
            'f' => out.push(12),
            'n' => out.push(b'\n'),
            'r' => out.push(b'\r'),
            't' => out.push(b'\t'),
            'v' => out.push(11),
            '\\' => out.push(b'\\'),
            '\'' | '"' if e as u32 == q as u32 => out.push(q),
            'x' => out.push(hex(2)? as u8),
            'u' | 'U' => {
                let v = hex(if e == 'u' { 4 } else { 8 })?;
                let c = char::from_u32(v).ok_or_else(bad)?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            '0'..='7' => {
                let mut v = e as u32 - '0' as u32;
                for _ in 0..2 {
                    let (_, d) = chars.next().ok_or_else(bad)?;
                    v = v * 8 + d.to_digit(8).ok_or_else(bad)?;
                }
                if v > 255 {
                    return Err(bad());
                }
                out.push(v as u8);
            }
            _ => return Err(bad()),
        }
    }
    if q == b'\'' {
        // A char constant holds exactly one character; \x and octal give a byte value.
        return Ok(out);
    }
    Ok(out)
}
