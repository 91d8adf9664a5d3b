//! dotenv store: `KEY=VALUE` lines, `#` comments, `\n` escapes; metadata as `sops_*` keys.

use crate::error::{Error, Result};
use crate::stores::flat;
use crate::value::{Key, Map, Value};

/// Parses dotenv text into the tree and the flattened metadata pairs (prefix removed).
pub fn parse(src: &[u8]) -> Result<(Map, Vec<(String, String)>)> {
    let text =
        std::str::from_utf8(src).map_err(|_| Error::parse("dotenv", "input is not UTF-8"))?;
    let mut m: Map = Map::default();
    let mut meta = vec![];
    for (n, line) in text.split('\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        if let Some(c) = line.strip_prefix('#') {
            m.push((Key::Comment(c.to_string()), Value::Null));
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| Error::parse("dotenv", format!("line {} has no '='", n + 1)))?;
        let v = v.replace("\\n", "\n");
        if let Some(mk) = k.strip_prefix("sops_") {
            meta.push((mk.to_string(), v));
        } else {
            m.push((Key::Str(k.to_string()), Value::Str(v)));
        }
    }
    Ok((m, meta))
}

/// Emits the tree (and metadata, if any) as dotenv text.
pub fn emit(m: &Map, meta: Option<&Value>) -> Result<Vec<u8>> {
    let mut out = String::new();
    for (k, v) in m {
        match k {
            Key::Comment(c) => {
                out.push('#');
                out.push_str(c);
                out.push('\n');
            }
            Key::Str(k) => {
                let t = match v {
                    Value::Null => String::new(),
                    other => other.scalar_text().ok_or_else(|| {
                        Error::Unsupported(format!("dotenv cannot hold the nested value of '{k}'"))
                    })?,
                };
                out.push_str(k);
                out.push('=');
                out.push_str(&t.replace('\n', "\\n"));
                out.push('\n');
            }
        }
    }
    if let Some(meta) = meta {
        for (k, v) in flat::flatten(meta) {
            out.push_str("sops_");
            out.push_str(&k);
            out.push('=');
            out.push_str(&v.replace('\n', "\\n"));
            out.push('\n');
        }
    }
    Ok(out.into_bytes())
}
