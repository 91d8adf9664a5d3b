//! INI store (go-ini as sops uses it): sections become maps, `;`/`#` comments, aligned `=`,
//! `"""` multi-line values; metadata in a `[sops]` section with flattened keys.

use crate::error::{Error, Result};
use crate::stores::flat;
use crate::value::{Key, Map, Value};

const DEFAULT: &str = "DEFAULT";

/// sops' `stripCommentChar`: leading `;`/`#` and spaces go.
fn strip_comment(c: &str) -> String {
    let c = c.trim();
    if c.starts_with(';') {
        c.trim_start_matches([';', ' ']).to_string()
    } else if c.starts_with('#') {
        c.trim_start_matches(['#', ' ']).to_string()
    } else {
        c.to_string()
    }
}

/// go-ini's value reading: `"""`/backtick quoting first, then an inline comment cut at the
/// first `#` or `;`, then surrounding quotes trimmed. Returns (value, inline comment).
fn read_value(raw: &str) -> (String, Option<String>) {
    let line = raw.trim_start();
    if let Some(end) = line.strip_prefix('`').and_then(|r| r.find('`')) {
        return (line[1..=end].to_string(), None);
    }
    let mut line = line.trim().to_string();
    let mut comment = None;
    if let Some(i) = line.find(['#', ';']) {
        comment = Some(line[i..].to_string());
        line = line[..i].trim().to_string();
    }
    for q in ['"', '\''] {
        if line.len() >= 2 && line.starts_with(q) && line.ends_with(q) {
            line = line[1..line.len() - 1].to_string();
            break;
        }
    }
    (line, comment)
}

/// go-ini's `readKeyName`: a key quoted with `"""`, `"` or a backtick runs to the matching
/// quote (so it may hold `=`, `:` and the other quote characters); an unquoted key runs to the
/// first `=` or `:`. Returns the key and the text after the delimiter.
fn read_key_name(line: &str) -> Option<(String, &str)> {
    let quote = if line.starts_with("\"\"\"") && line.len() > 6 {
        "\"\"\""
    } else if line.starts_with('"') {
        "\""
    } else if line.starts_with('`') {
        "`"
    } else {
        ""
    };
    if quote.is_empty() {
        let end = line.find(['=', ':'])?;
        if end == 0 {
            return None;
        }
        return Some((line[..end].trim().to_string(), &line[end + 1..]));
    }
    let body = &line[quote.len()..];
    let close = body.find(quote)?;
    let after = &body[close + quote.len()..];
    let delim = after.find(['=', ':'])?;
    Some((body[..close].trim().to_string(), &after[delim + 1..]))
}

/// Parses INI text into sections (as a map of maps) and the `[sops]` pairs. The tree has sops'
/// shape: a section's comment first, then each key followed by its own comment.
pub fn parse(src: &[u8]) -> Result<(Map, Vec<(String, String)>)> {
    let text = std::str::from_utf8(src).map_err(|_| Error::parse("INI", "input is not UTF-8"))?;
    // go-ini always has the DEFAULT section, and sops keeps it in the tree even when empty.
    let mut sections: Vec<(String, Map)> = vec![(DEFAULT.to_string(), Map::default())];
    let mut cur = 0usize;
    let mut pending: Vec<String> = vec![];
    let mut lines = text.split('\n').enumerate();
    while let Some((n, raw)) = lines.next() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with(';') || line.starts_with('#') {
            pending.push(line.to_string());
            continue;
        }
        if line.starts_with('[') {
            let name = line
                .strip_prefix('[')
                .and_then(|l| l.split_once(']'))
                .map(|(n, _)| n)
                .ok_or_else(|| {
                    Error::parse("INI", format!("bad section header at line {}", n + 1))
                })?
                .trim()
                .to_string();
            // sops loads INI with non-unique sections allowed: a repeated header starts a new
            // section of the same name.
            sections.push((name, Map::default()));
            cur = sections.len() - 1;
            if !pending.is_empty() {
                let c = (
                    Key::Comment(strip_comment(&pending.join("\n"))),
                    Value::Null,
                );
                let m = &mut sections[cur].1;
                if matches!(m.first(), Some((Key::Comment(_), _))) {
                    m[0] = c;
                } else {
                    m.insert(0, c);
                }
                pending.clear();
            }
            continue;
        }
        let (k, v) = read_key_name(line)
            .ok_or_else(|| Error::parse("INI", format!("line {} is not key = value", n + 1)))?;
        let (value, inline) = if let Some(rest) = v.trim_start().strip_prefix("\"\"\"") {
            let mut acc = rest.to_string();
            while !acc.contains("\"\"\"") {
                let (_, next) = lines.next().ok_or_else(|| {
                    Error::parse(
                        "INI",
                        format!("unterminated \"\"\" value for the key at line {}", n + 1),
                    )
                })?;
                acc.push('\n');
                acc.push_str(next.trim_end_matches('\r'));
            }
            let end = acc.find("\"\"\"").unwrap_or(acc.len());
            acc.truncate(end);
            (acc, None)
        } else {
            read_value(v)
        };
        if let Some(c) = inline {
            pending.push(c);
        }
        let comment = (!pending.is_empty()).then(|| strip_comment(&pending.join("\n")));
        pending.clear();
        if let Some((_, m)) = sections.get_mut(cur) {
            match m
                .iter()
                .position(|(kk, _)| matches!(kk, Key::Str(s) if *s == k))
            {
                // A repeated key keeps its place and takes the new value and comment (go-ini).
                Some(p) => {
                    m[p].1 = Value::Str(value);
                    let has_comment = matches!(m.0.get(p + 1), Some((Key::Comment(_), _)));
                    match (comment, has_comment) {
                        (Some(c), true) => m[p + 1].0 = Key::Comment(c),
                        (Some(c), false) => m.insert(p + 1, (Key::Comment(c), Value::Null)),
                        (None, true) => {
                            m.remove(p + 1);
                        }
                        (None, false) => {}
                    }
                }
                None => {
                    m.push((Key::Str(k), Value::Str(value)));
                    if let Some(c) = comment {
                        m.push((Key::Comment(c), Value::Null));
                    }
                }
            }
        }
    }
    let mut meta = vec![];
    let mut tree: Map = Map::default();
    for (name, m) in sections {
        if name == "sops" {
            for (k, v) in m {
                if let (Key::Str(k), Value::Str(v)) = (k, v) {
                    // sops escapes newlines in metadata; 3.13.2 doubles the escape. Accept both.
                    meta.push((k, v.replace("\\\\n", "\n").replace("\\n", "\n")));
                }
            }
        } else {
            tree.push((Key::Str(name), Value::Map(m)));
        }
    }
    Ok((tree, meta))
}

fn quote_value(v: &str) -> String {
    if v.contains(['\n', '`']) {
        format!("\"\"\"{v}\"\"\"")
    } else if v.contains(['#', ';']) {
        format!("`{v}`")
    } else if v.trim() != v {
        format!("\"{v}\"")
    } else {
        v.to_string()
    }
}

/// A key and its value, or a comment (value `None`).
type Entry = (String, Option<String>);

fn write_comment(out: &mut String, c: &str) {
    for line in c.split('\n').map(str::trim_end) {
        if line.starts_with('#') || line.starts_with(';') {
            out.push_str(&line[..1]);
            out.push(' ');
            out.push_str(line[1..].trim());
        } else {
            out.push_str("; ");
            out.push_str(line);
        }
        out.push('\n');
    }
}

fn emit_section(out: &mut String, name: &str, items: &[Entry]) {
    // As sops hands the tree to go-ini: a leading comment is the section's comment (written above
    // the header); a comment after a key becomes that key's comment (written above the key).
    let mut first = 0;
    let mut section_comment = None;
    if let Some((c, None)) = items.first() {
        section_comment = Some(c.clone());
        first = 1;
    }
    let mut keys: Vec<(String, String, Option<String>)> = vec![];
    for (k, v) in &items[first..] {
        match v {
            Some(v) => keys.push((k.clone(), v.clone(), None)),
            None => {
                if let Some(last) = keys.last_mut() {
                    last.2 = Some(k.clone());
                }
            }
        }
    }
    if name == DEFAULT && keys.is_empty() && section_comment.is_none() {
        return;
    }
    if let Some(c) = section_comment {
        write_comment(out, &c);
    }
    if name != DEFAULT {
        out.push('[');
        out.push_str(name);
        out.push_str("]\n");
    }
    // go-ini aligns on the keys as written (quoted when needed).
    let quote_key = |k: &str| {
        if k.contains(['"', '=', ':']) {
            format!("`{k}`")
        } else if k.contains('`') {
            format!("\"\"\"{k}\"\"\"")
        } else {
            k.to_string()
        }
    };
    let width = keys
        .iter()
        .map(|(k, _, _)| quote_key(k).chars().count())
        .max()
        .unwrap_or(0);
    for (k, v, c) in &keys {
        if let Some(c) = c {
            write_comment(out, c);
        }
        // go-ini quotes keys that would not read back as themselves.
        let quoted = quote_key(k);
        out.push_str(&quoted);
        for _ in quoted.chars().count()..width {
            out.push(' ');
        }
        out.push_str(" = ");
        out.push_str(&quote_value(v));
        out.push('\n');
    }
}

/// Emits sections (a map of maps) and, if given, the metadata as a `[sops]` section.
pub fn emit(tree: &Map, meta: Option<&Value>) -> Result<Vec<u8>> {
    let mut sections: Vec<(String, Vec<Entry>)> = vec![];
    for (k, v) in tree {
        let Key::Str(name) = k else { continue };
        let Value::Map(m) = v else {
            return Err(Error::Unsupported(format!(
                "INI needs every top-level key to be a section; '{name}' is not a map"
            )));
        };
        let mut items = vec![];
        for (k, v) in m {
            match k {
                Key::Comment(c) => items.push((c.clone(), None)),
                Key::Str(k) => {
                    let t = match v {
                        Value::Null => String::new(),
                        other => other.scalar_text().ok_or_else(|| {
                            Error::Unsupported(format!(
                                "INI cannot hold the nested value of '{name}.{k}'"
                            ))
                        })?,
                    };
                    items.push((k.clone(), Some(t)));
                }
            }
        }
        sections.push((name.clone(), items));
    }
    if let Some(meta) = meta {
        let items = flat::flatten(meta)
            .into_iter()
            .map(|(k, v)| (k, Some(v.replace('\n', "\\n"))))
            .collect();
        sections.push(("sops".to_string(), items));
    }
    // DEFAULT first, as go-ini writes it.
    sections.sort_by_key(|(n, _)| n != DEFAULT);
    let mut out = String::new();
    for (name, items) in &sections {
        let mut one = String::new();
        emit_section(&mut one, name, items);
        if one.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&one);
    }
    Ok(out.into_bytes())
}
