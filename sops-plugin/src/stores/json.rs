//! JSON store: an order-keeping parser and an emitter matching Go's `json.MarshalIndent`
//! with a tab (sops' default), including Go's HTML-safe escaping and float formatting.

use crate::error::{Error, Result};
use crate::gonum::go_json_float;
use crate::value::{Key, Map, Value};

fn perr(msg: impl Into<String>) -> Error {
    Error::parse("JSON", msg)
}

struct P<'a> {
    b: &'a [u8],
    i: usize,
}

impl P<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn err(&self, what: &str) -> Error {
        let line = self.b[..self.i.min(self.b.len())]
            .iter()
            .filter(|c| **c == b'\n')
            .count()
            + 1;
        perr(format!("{what} at line {line}"))
    }

    fn value(&mut self, depth: usize) -> Result<Value> {
        if depth > 512 {
            return Err(self.err("nesting too deep"));
        }
        self.ws();
        match self.b.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut m: Map = Map::default();
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(Value::Map(m));
                }
                loop {
                    self.ws();
                    let k = self.string()?;
                    self.ws();
                    if self.b.get(self.i) != Some(&b':') {
                        return Err(self.err("expected ':'"));
                    }
                    self.i += 1;
                    let v = self.value(depth + 1)?;
                    if m.iter().any(|(kk, _)| matches!(kk, Key::Str(s) if *s == k)) {
                        return Err(self.err("duplicate key"));
                    }
                    m.push((Key::Str(k), v));
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Value::Map(m));
                        }
                        _ => return Err(self.err("expected ',' or '}'")),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut s = vec![];
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Value::Seq(s));
                }
                loop {
                    s.push(self.value(depth + 1)?);
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Value::Seq(s));
                        }
                        _ => return Err(self.err("expected ',' or ']'")),
                    }
                }
            }
            Some(b'"') => Ok(Value::Str(self.string()?)),
            Some(b't') if self.b[self.i..].starts_with(b"true") => {
                self.i += 4;
                Ok(Value::Bool(true))
            }
            Some(b'f') if self.b[self.i..].starts_with(b"false") => {
                self.i += 5;
                Ok(Value::Bool(false))
            }
            Some(b'n') if self.b[self.i..].starts_with(b"null") => {
                self.i += 4;
                Ok(Value::Null)
            }
            Some(c) if *c == b'-' || c.is_ascii_digit() => self.number(),
            _ => Err(self.err("unexpected character")),
        }
    }

    fn number(&mut self) -> Result<Value> {
        let st = self.i;
        while self.i < self.b.len()
            && matches!(
                self.b[self.i],
                b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
            )
        {
            self.i += 1;
        }
        let t = std::str::from_utf8(&self.b[st..self.i]).map_err(|_| self.err("bad number"))?;
        if !t.contains(['.', 'e', 'E'])
            && let Ok(i) = t.parse::<i64>()
        {
            return Ok(Value::Int(i));
        }
        t.parse::<f64>()
            .map(Value::Float)
            .map_err(|_| self.err("bad number"))
    }

    fn string(&mut self) -> Result<String> {
        if self.b.get(self.i) != Some(&b'"') {
            return Err(self.err("expected a string"));
        }
        self.i += 1;
        let mut out: Vec<u8> = vec![];
        loop {
            let c = *self
                .b
                .get(self.i)
                .ok_or_else(|| self.err("unterminated string"))?;
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let e = *self.b.get(self.i).ok_or_else(|| self.err("bad escape"))?;
                    self.i += 1;
                    match e {
                        b'"' => out.push(b'"'),
                        b'\\' => out.push(b'\\'),
                        b'/' => out.push(b'/'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let mut cp = self.hex4()?;
                            if (0xD800..0xDC00).contains(&cp)
                                && self.b[self.i..].starts_with(b"\\u")
                            {
                                self.i += 2;
                                let lo = self.hex4()?;
                                if (0xDC00..0xE000).contains(&lo) {
                                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                                } else {
                                    out.extend_from_slice("\u{fffd}".as_bytes());
                                    cp = lo;
                                }
                            }
                            let ch = char::from_u32(cp).unwrap_or('\u{fffd}');
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => return Err(self.err("bad escape")),
                    }
                }
                c => out.push(c),
            }
        }
        String::from_utf8(out).map_err(|_| self.err("invalid UTF-8 in string"))
    }

    fn hex4(&mut self) -> Result<u32> {
        let h = self
            .b
            .get(self.i..self.i + 4)
            .ok_or_else(|| self.err("bad \\u escape"))?;
        let s = std::str::from_utf8(h).map_err(|_| self.err("bad \\u escape"))?;
        self.i += 4;
        u32::from_str_radix(s, 16).map_err(|_| self.err("bad \\u escape"))
    }
}

/// Parses one JSON document whose top level is an object.
pub fn parse(src: &[u8]) -> Result<Map> {
    let mut p = P { b: src, i: 0 };
    let v = p.value(0)?;
    p.ws();
    if p.i != src.len() {
        return Err(p.err("trailing data"));
    }
    match v {
        Value::Map(m) => Ok(m),
        _ => Err(perr("the top level of a JSON document must be an object")),
    }
}

/// Parses a `set` value written as JSON (`"text"`, `42`, `{"a": 1}`...).
pub fn parse_json_value(s: &str) -> std::result::Result<Value, String> {
    parse_value(s.trim().as_bytes()).map_err(|e| e.to_string())
}

/// Parses any JSON value (used for `set` values).
pub fn parse_value(src: &[u8]) -> Result<Value> {
    let mut p = P { b: src, i: 0 };
    let v = p.value(0)?;
    p.ws();
    if p.i != src.len() {
        return Err(p.err("trailing data"));
    }
    Ok(v)
}

fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_map(out: &mut String, m: &Map, depth: usize) {
    let entries: Vec<_> = m
        .iter()
        .filter_map(|(k, v)| match k {
            Key::Str(k) => Some((k, v)),
            Key::Comment(_) => None,
        })
        .collect();
    if entries.is_empty() {
        out.push_str("{}");
        return;
    }
    out.push_str("{\n");
    for (i, (k, v)) in entries.iter().enumerate() {
        indent(out, depth + 1);
        write_str(out, k);
        out.push_str(": ");
        write_value(out, v, depth + 1);
        if i + 1 < entries.len() {
            out.push(',');
        }
        out.push('\n');
    }
    indent(out, depth);
    out.push('}');
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push('\t');
    }
}

fn write_value(out: &mut String, v: &Value, depth: usize) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Float(f) => out.push_str(&go_json_float(*f)),
        Value::Str(s) | Value::Comment(s) | Value::Time(s) => write_str(out, s),
        Value::Bytes(b) => write_str(out, &String::from_utf8_lossy(b)),
        Value::Map(m) => write_map(out, m, depth),
        Value::Seq(s) => {
            // JSON has no comments: sops drops them here too.
            let items: Vec<_> = s
                .iter()
                .filter(|v| !matches!(v, Value::Comment(_)))
                .collect();
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push_str("[\n");
            for (i, v) in items.iter().enumerate() {
                indent(out, depth + 1);
                write_value(out, v, depth + 1);
                if i + 1 < items.len() {
                    out.push(',');
                }
                out.push('\n');
            }
            indent(out, depth);
            out.push(']');
        }
    }
}

/// Emits one value as sops' JSON store does for `--extract` (maps end with a newline).
pub fn emit_value(v: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v, 0);
    if matches!(v, Value::Map(_)) {
        out.push('\n');
    }
    out
}

/// Emits a map as sops' JSON store does (tab indent, trailing newline).
pub fn emit(m: &Map) -> String {
    let mut out = String::new();
    write_map(&mut out, m, 0);
    out.push('\n');
    out
}
