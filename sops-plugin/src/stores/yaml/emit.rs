//! Emission as go-yaml v3 does it with sops' settings (4-space indent, sequences indented under
//! their key, go-yaml's quoting rules), so decrypted output matches `sops decrypt` byte for byte.

use super::resolve::{is_base60_float, is_old_bool, resolves_to_str};
use crate::gonum::format_float_g;
use crate::value::{Key, Map, Value};

const INDENT: usize = 4;

/// Emits documents as sops (go-yaml v3, indent 4) does, separated by `---`.
pub fn emit(docs: &[Map]) -> String {
    let mut out = String::new();
    for (i, d) in docs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        if d.is_empty() {
            out.push_str("{}\n");
        } else {
            emit_map(&mut out, d, 0);
        }
    }
    out
}

fn pad(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push(' ');
    }
}

fn emit_map(out: &mut String, m: &[(Key, Value)], indent: usize) {
    let mut first = true;
    for (k, v) in m {
        if !first {
            pad(out, indent);
        }
        first = false;
        match k {
            Key::Comment(c) => {
                out.push('#');
                out.push_str(c);
                out.push('\n');
            }
            Key::Str(k) if k.len() > 128 || k.contains('\n') => {
                // Not a simple key for go-yaml: the explicit `? key` / `: value` form.
                out.push_str("? ");
                out.push_str(&scalar_str(k, false, align(indent)));
                out.push('\n');
                pad(out, indent);
                out.push(':');
                match v {
                    Value::Map(m) if !m.is_empty() => {
                        pad(out, INDENT - 1);
                        emit_map(out, m, align(indent));
                    }
                    Value::Seq(s) if !s.is_empty() => {
                        pad(out, INDENT - 1);
                        emit_seq(out, s, align(indent));
                    }
                    other => {
                        out.push(' ');
                        out.push_str(&scalar(other, align(indent)));
                        out.push('\n');
                    }
                }
            }
            Key::Str(k) => {
                out.push_str(&scalar_str(k, true, indent));
                out.push(':');
                emit_value_after_key(out, v, indent);
            }
        }
    }
}

/// Emits one value on its own, as `sops decrypt --extract` prints a non-string value.
pub fn emit_value(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Map(m) if !m.is_empty() => emit_map(&mut out, m, 0),
        Value::Seq(s) if !s.is_empty() => emit_seq(&mut out, s, 0),
        other => {
            out.push_str(&scalar(other, INDENT));
            out.push('\n');
        }
    }
    out
}

/// go-yaml v3 aligns nested block content to the next multiple of the indent.
fn align(indent: usize) -> usize {
    INDENT * ((indent + INDENT) / INDENT)
}

fn emit_value_after_key(out: &mut String, v: &Value, indent: usize) {
    let inner = align(indent);
    match v {
        Value::Map(m) if !m.is_empty() => {
            out.push('\n');
            pad(out, inner);
            emit_map(out, m, inner);
        }
        Value::Seq(s) if !s.is_empty() => {
            out.push('\n');
            pad(out, inner);
            emit_seq(out, s, inner);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other, inner));
            out.push('\n');
        }
    }
}

fn emit_seq(out: &mut String, s: &[Value], indent: usize) {
    // Content of an item starts right after "- " (go-yaml's first indent in a sequence).
    let inner = indent + 2;
    let mut first = true;
    for v in s {
        if !first {
            pad(out, indent);
        }
        first = false;
        match v {
            Value::Comment(c) => {
                out.push('#');
                out.push_str(c);
                out.push('\n');
            }
            Value::Map(m) if !m.is_empty() => {
                // Comments heading the map are written above its dash, as go-yaml does.
                let lead = m
                    .iter()
                    .take_while(|(k, _)| matches!(k, Key::Comment(_)))
                    .count();
                for (k, _) in &m[..lead] {
                    if let Key::Comment(c) = k {
                        out.push('#');
                        out.push_str(c);
                        out.push('\n');
                        pad(out, indent);
                    }
                }
                if lead == m.len() {
                    out.push_str("- {}\n");
                } else {
                    out.push_str("- ");
                    emit_map(out, &m[lead..], inner);
                }
            }
            Value::Seq(items) if !items.is_empty() => {
                out.push_str("- ");
                emit_seq(out, items, inner);
            }
            other => {
                out.push_str("- ");
                out.push_str(&scalar(other, inner));
                out.push('\n');
            }
        }
    }
}

fn scalar(v: &Value, block_indent: usize) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => format_float_g(*f),
        Value::Str(s) => scalar_str(s, false, block_indent),
        Value::Bytes(b) => scalar_str(&String::from_utf8_lossy(b), false, block_indent),
        Value::Time(t) => t.clone(),
        Value::Comment(c) => scalar_str(c, false, block_indent),
        Value::Map(_) => "{}".into(),
        Value::Seq(_) => "[]".into(),
    }
}

#[derive(PartialEq, Clone, Copy)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

fn is_printable(c: char) -> bool {
    let u = c as u32;
    u == 0x0A
        || (0x20..=0x7E).contains(&u)
        || (0xA0..=0xD7FF).contains(&u)
        || ((0xE000..=0xFFFD).contains(&u) && u != 0xFEFF)
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// libyaml's `analyze_scalar` restricted to what block context needs:
/// (block_plain_allowed, single_quoted_allowed, block_allowed, multiline).
fn analyze(s: &str) -> (bool, bool, bool, bool) {
    if s.is_empty() {
        return (true, true, false, false);
    }
    let chars: Vec<char> = s.chars().collect();
    let mut block_ind = s.starts_with("---") || s.starts_with("...");
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break, mut special, mut line_breaks) =
        (false, false, false, false);
    let (mut prev_space, mut prev_break) = (false, false);
    let blankz = |c: Option<&char>| match c {
        None => true,
        Some(c) => *c == ' ' || *c == '\t' || is_break(*c),
    };
    let mut preceded_ws = true;
    let n = chars.len();
    for i in 0..n {
        let c = chars[i];
        let followed_ws = blankz(chars.get(i + 1));
        if i == 0 {
            if "#,[]{}&*!|>'\"%@`".contains(c) {
                block_ind = true;
            }
            if (c == '?' || c == ':') && followed_ws {
                block_ind = true;
            }
            if c == '-' && followed_ws {
                block_ind = true;
            }
        } else {
            if c == ':' && followed_ws {
                block_ind = true;
            }
            if c == '#' && preceded_ws {
                block_ind = true;
            }
        }
        if !is_printable(c) {
            special = true;
        }
        if is_break(c) {
            line_breaks = true;
        }
        if c == ' ' {
            if i == 0 {
                leading_space = true;
            }
            if i == n - 1 {
                trailing_space = true;
            }
            if prev_break {
                break_space = true;
            }
            prev_space = true;
            prev_break = false;
        } else if is_break(c) {
            if i == 0 {
                leading_break = true;
            }
            if i == n - 1 {
                trailing_break = true;
            }
            if prev_space {
                space_break = true;
            }
            prev_break = true;
            prev_space = false;
        } else {
            prev_space = false;
            prev_break = false;
        }
        preceded_ws = blankz(Some(&c));
    }
    let mut block_plain = true;
    let mut single = true;
    let mut block = true;
    if leading_space || leading_break || trailing_space || trailing_break {
        block_plain = false;
    }
    if trailing_space {
        block = false;
    }
    if break_space {
        block_plain = false;
        single = false;
    }
    if space_break || special {
        block_plain = false;
        single = false;
        block = false;
    }
    if line_breaks {
        block_plain = false;
    }
    if block_ind {
        block_plain = false;
    }
    (block_plain, single, block, line_breaks)
}

/// Renders a string as go-yaml v3 would (style choice of its encoder, then its emitter).
pub(super) fn scalar_str(s: &str, is_key: bool, block_indent: usize) -> String {
    let can_plain = resolves_to_str(s) && !is_base60_float(s) && !is_old_bool(s);
    let mut style = if s.contains('\n') {
        Style::Literal
    } else if can_plain {
        Style::Plain
    } else {
        Style::Double
    };
    let (block_plain, single_ok, block_ok, multiline) = analyze(s);
    if style == Style::Plain && (!block_plain || (s.is_empty() && is_key) || (multiline && is_key))
    {
        style = Style::Single;
    }
    if style == Style::Single && !single_ok {
        style = Style::Double;
    }
    if style == Style::Literal && (!block_ok || is_key) {
        style = Style::Double;
    }
    match style {
        Style::Plain => s.to_string(),
        Style::Single => format!("'{}'", s.replace('\'', "''")),
        Style::Double => double_quoted(s),
        Style::Literal => literal(s, block_indent),
    }
}

fn double_quoted(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '\0' => o.push_str("\\0"),
            '\x07' => o.push_str("\\a"),
            '\x08' => o.push_str("\\b"),
            '\t' => o.push_str("\\t"),
            '\n' => o.push_str("\\n"),
            '\x0b' => o.push_str("\\v"),
            '\x0c' => o.push_str("\\f"),
            '\r' => o.push_str("\\r"),
            '\x1b' => o.push_str("\\e"),
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\u{85}' => o.push_str("\\N"),
            '\u{a0}' => o.push_str("\\_"),
            '\u{2028}' => o.push_str("\\L"),
            '\u{2029}' => o.push_str("\\P"),
            c if !is_printable(c) || c == '\u{feff}' => {
                let u = c as u32;
                if u <= 0xFF {
                    o.push_str(&format!("\\x{u:02X}"));
                } else if u <= 0xFFFF {
                    o.push_str(&format!("\\u{u:04X}"));
                } else {
                    o.push_str(&format!("\\U{u:08X}"));
                }
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn literal(s: &str, indent: usize) -> String {
    let mut o = String::from("|");
    if s.starts_with(' ') || s.starts_with('\n') {
        o.push_str(&INDENT.to_string());
    }
    let trailing = s.len() - s.trim_end_matches('\n').len();
    match trailing {
        0 => o.push('-'),
        1 => {}
        _ => o.push('+'),
    }
    let body = if trailing == 1 { &s[..s.len() - 1] } else { s };
    let body = if trailing > 1 {
        &body[..body.len() - 1]
    } else {
        body
    };
    for line in body.split('\n') {
        o.push('\n');
        if !line.is_empty() {
            for _ in 0..indent {
                o.push(' ');
            }
            o.push_str(line);
        }
    }
    o
}
