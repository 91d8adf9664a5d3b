//! INI store (go-ini as sops uses it): sections become maps, `;`/`#` comments, aligned `=`,
//! `"""` multi-line values; metadata in a `[sops]` section with flattened keys.

use crate::error::{Error, Result};
use crate::stores::flat;
use crate::value::{Key, Map, Value};

const DEFAULT: &str = "DEFAULT";

fn unquote(v: &str) -> String {
    let v = v.trim();
    for q in ['"', '`', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return v[1..v.len() - 1].to_string();
        }
    }
    v.to_string()
}

/// Parses INI text into sections (as a map of maps) and the `[sops]` pairs.
pub fn parse(src: &[u8]) -> Result<(Map, Vec<(String, String)>)> {
    let text = std::str::from_utf8(src).map_err(|_| Error::parse("INI", "input is not UTF-8"))?;
    let mut sections: Vec<(String, Map)> = vec![];
    let mut pending: Vec<String> = vec![];
    let mut lines = text.split('\n').enumerate();
    while let Some((n, raw)) = lines.next() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(c) = line.strip_prefix(';').or_else(|| line.strip_prefix('#')) {
            pending.push(c.trim().to_string());
            continue;
        }
        if line.starts_with('[') {
            let name = line
                .strip_prefix('[')
                .and_then(|l| l.strip_suffix(']'))
                .ok_or_else(|| {
                    Error::parse("INI", format!("bad section header at line {}", n + 1))
                })?
                .trim()
                .to_string();
            let mut m: Map = vec![];
            for c in pending.drain(..) {
                m.push((Key::Comment(c), Value::Null));
            }
            sections.push((name, m));
            continue;
        }
        let (k, v) = match (line.find('='), line.find(':')) {
            (Some(e), Some(c)) if c < e => line.split_at(c),
            (Some(e), _) => line.split_at(e),
            (None, Some(c)) => line.split_at(c),
            (None, None) => {
                return Err(Error::parse(
                    "INI",
                    format!("line {} is not key = value", n + 1),
                ));
            }
        };
        let k = k.trim().to_string();
        let mut v = v[1..].trim().to_string();
        if let Some(rest) = v.strip_prefix("\"\"\"") {
            let mut acc = rest.to_string();
            while !acc.ends_with("\"\"\"") {
                let (_, next) = lines.next().ok_or_else(|| {
                    Error::parse(
                        "INI",
                        format!("unterminated \"\"\" value for key at line {}", n + 1),
                    )
                })?;
                acc.push('\n');
                acc.push_str(next.trim_end_matches('\r'));
            }
            acc.truncate(acc.len() - 3);
            v = acc;
        } else {
            v = unquote(&v);
        }
        if sections.is_empty() {
            sections.push((DEFAULT.to_string(), vec![]));
        }
        if let Some((_, m)) = sections.last_mut() {
            for c in pending.drain(..) {
                m.push((Key::Comment(c), Value::Null));
            }
            m.push((Key::Str(k), Value::Str(v)));
        }
    }
    let mut meta = vec![];
    let mut tree: Map = vec![];
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
    if !pending.is_empty() {
        // Comments after everything: keep them with the last section.
        if let Some((_, Value::Map(m))) = tree.last_mut() {
            for c in pending {
                m.push((Key::Comment(c), Value::Null));
            }
        }
    }
    Ok((tree, meta))
}

fn quote_value(v: &str) -> String {
    if v.contains('\n') || v.contains('`') {
        format!("\"\"\"{v}\"\"\"")
    } else if v.contains(['#', ';']) || v.starts_with(' ') || v.ends_with(' ') {
        format!("`{v}`")
    } else {
        v.to_string()
    }
}

/// A key and its value, or a comment (value `None`).
type Entry = (String, Option<String>);

fn emit_section(out: &mut String, name: &str, items: &[Entry]) {
    // Comments before the first key are the section's comment, written above its header.
    let mut i = 0;
    while i < items.len() && items[i].1.is_none() {
        for line in items[i].0.split('\n') {
            out.push_str("; ");
            out.push_str(line);
            out.push('\n');
        }
        i += 1;
    }
    if name != DEFAULT {
        out.push('[');
        out.push_str(name);
        out.push_str("]\n");
    }
    let width = items
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    for (k, v) in &items[i..] {
        match v {
            None => {
                for line in k.split('\n') {
                    out.push_str("; ");
                    out.push_str(line);
                    out.push('\n');
                }
            }
            Some(v) => {
                out.push_str(k);
                for _ in k.chars().count()..width {
                    out.push(' ');
                }
                out.push_str(" = ");
                out.push_str(&quote_value(v));
                out.push('\n');
            }
        }
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
    for (i, (name, items)) in sections.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        emit_section(&mut out, name, items);
    }
    Ok(out.into_bytes())
}
