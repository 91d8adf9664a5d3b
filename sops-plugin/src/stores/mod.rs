//! The five sops stores behind one interface: parse into documents plus raw metadata, emit back.

pub mod dotenv;
pub mod flat;
pub mod ini;
pub mod json;
pub mod yaml;

use std::path::Path;

use crate::error::{Error, Result};
use crate::value::{Key, Map, Value};

/// A sops store format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
    Dotenv,
    Ini,
    Binary,
}

impl Format {
    /// Format by file extension, as sops decides (`.yaml/.yml`, `.json`, `.env`, `.ini`, else binary).
    pub fn from_path(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some("yaml") | Some("yml") => Format::Yaml,
            Some("json") => Format::Json,
            Some("env") => Format::Dotenv,
            Some("ini") => Format::Ini,
            _ => Format::Binary,
        }
    }

    /// Parses a `--input-type`/`--output-type` name.
    pub fn from_name(name: &str) -> Option<Format> {
        Some(match name {
            "yaml" | "yml" => Format::Yaml,
            "json" => Format::Json,
            "dotenv" | "env" => Format::Dotenv,
            "ini" => Format::Ini,
            "binary" => Format::Binary,
            _ => return None,
        })
    }
}

/// YAML text: UTF-8 (a BOM is dropped) or UTF-16 with a BOM, as go-yaml accepts.
fn yaml_text(src: &[u8]) -> Result<std::borrow::Cow<'_, str>> {
    let utf16 = |le: bool| -> Result<String> {
        let units: Vec<u16> = src[2..]
            .chunks(2)
            .map(|c| {
                let pair = [c[0], *c.get(1).unwrap_or(&0)];
                if le {
                    u16::from_le_bytes(pair)
                } else {
                    u16::from_be_bytes(pair)
                }
            })
            .collect();
        String::from_utf16(&units).map_err(|_| Error::parse("YAML", "invalid UTF-16"))
    };
    if let Some(rest) = src.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return std::str::from_utf8(rest)
            .map(std::borrow::Cow::Borrowed)
            .map_err(|_| Error::parse("YAML", "input is not UTF-8"));
    }
    if src.starts_with(&[0xFF, 0xFE]) {
        return utf16(true).map(std::borrow::Cow::Owned);
    }
    if src.starts_with(&[0xFE, 0xFF]) {
        return utf16(false).map(std::borrow::Cow::Owned);
    }
    std::str::from_utf8(src)
        .map(std::borrow::Cow::Borrowed)
        .map_err(|_| Error::parse("YAML", "input is not UTF-8"))
}

/// Parses an encrypted file: its documents and the raw `sops` metadata map.
pub fn load_encrypted(format: Format, src: &[u8]) -> Result<(Vec<Map>, Value)> {
    match format {
        Format::Yaml => {
            let mut docs = yaml::parse(&yaml_text(src)?)?;
            let mut meta = None;
            for d in docs.iter_mut() {
                if let Some(m) = d.take("sops") {
                    meta.get_or_insert(m);
                }
            }
            Ok((docs, meta.ok_or(Error::MetadataNotFound)?))
        }
        Format::Json | Format::Binary => {
            let mut m = json::parse(src)?;
            let meta = m.take("sops").ok_or(Error::MetadataNotFound)?;
            if format == Format::Binary
                && !matches!(m.first(), Some((Key::Str(k), Value::Str(_))) if k == "data")
            {
                return Err(Error::parse(
                    "binary",
                    "the envelope has no string 'data' entry",
                ));
            }
            Ok((vec![m], meta))
        }
        Format::Dotenv => {
            let (m, meta) = dotenv::parse(src)?;
            if meta.is_empty() {
                return Err(Error::MetadataNotFound);
            }
            Ok((vec![m], flat::unflatten(&meta)?))
        }
        Format::Ini => {
            let (m, meta) = ini::parse(src)?;
            if meta.is_empty() {
                return Err(Error::MetadataNotFound);
            }
            Ok((vec![m], flat::unflatten(&meta)?))
        }
    }
}

/// Whether the bytes already carry a sops metadata block in this format.
pub fn has_metadata(format: Format, src: &[u8]) -> bool {
    load_encrypted(format, src).is_ok()
}

/// Whether the bytes may hold sops metadata, judged from the text alone (no parse, so a large
/// plain file costs no tree): a top-level `sops` key in YAML or JSON (binary files are JSON
/// envelopes), `sops_` keys in dotenv, a `[sops]` section in INI.
pub fn may_be_sops(format: Format, src: &[u8]) -> bool {
    let has = |needle: &[u8]| src.windows(needle.len()).any(|w| w == needle);
    let line_starts = |prefix: &[u8]| {
        src.split(|b| *b == b'\n')
            .any(|l| l.trim_ascii_start().starts_with(prefix))
    };
    match format {
        Format::Yaml => {
            line_starts(b"sops:")
                || line_starts(b"\"sops\"")
                || line_starts(b"'sops'")
                || has(b"{sops:")
                || has(b"{\"sops\"")
                || (has(b"sops") && src.trim_ascii_start().starts_with(b"{"))
        }
        Format::Json | Format::Binary => {
            src.trim_ascii_start().starts_with(b"{") && has(b"\"sops\"")
        }
        Format::Dotenv => line_starts(b"sops_"),
        Format::Ini => line_starts(b"[sops]"),
    }
}

/// The one decision "is this a SOPS file": the cheap text test, then the metadata parse.
pub fn is_sops(format: Format, src: &[u8]) -> bool {
    may_be_sops(format, src) && has_metadata(format, src)
}

/// Parses a plaintext file into documents.
pub fn load_plain(format: Format, src: &[u8]) -> Result<Vec<Map>> {
    match format {
        Format::Yaml => yaml::parse(&yaml_text(src)?),
        Format::Json => Ok(vec![json::parse(src)?]),
        Format::Dotenv => Ok(vec![dotenv::parse(src)?.0]),
        Format::Ini => Ok(vec![ini::parse(src)?.0]),
        Format::Binary => {
            let v = match std::str::from_utf8(src) {
                Ok(s) => Value::Str(s.to_string()),
                Err(_) => Value::Bytes(src.to_vec()),
            };
            Ok(vec![Map(vec![(Key::Str("data".into()), v)])])
        }
    }
}

/// Single-document formats take the first document, as sops does for multi-document YAML.
fn single(docs: &[Map]) -> Result<Map> {
    Ok(docs.first().cloned().unwrap_or_default())
}

/// Emits documents with the metadata block appended as sops lays it out.
pub fn emit_encrypted(format: Format, docs: &[Map], meta: &Value) -> Result<Vec<u8>> {
    match format {
        Format::Yaml => {
            let with: Vec<Map> = docs
                .iter()
                .map(|d| {
                    let mut d = d.clone();
                    d.push((Key::Str("sops".into()), meta.clone()));
                    d
                })
                .collect();
            Ok(yaml::emit(&with).into_bytes())
        }
        Format::Json | Format::Binary => {
            let mut d = single(docs)?;
            d.push((Key::Str("sops".into()), meta.clone()));
            Ok(json::emit(&d).into_bytes())
        }
        Format::Dotenv => dotenv::emit(&single(docs)?, Some(meta)),
        Format::Ini => ini::emit(&single(docs)?, Some(meta)),
    }
}

/// Emits plaintext documents.
pub fn emit_plain(format: Format, docs: &[Map]) -> Result<Vec<u8>> {
    match format {
        Format::Yaml => Ok(yaml::emit(docs).into_bytes()),
        Format::Json => Ok(json::emit(&single(docs)?).into_bytes()),
        Format::Dotenv => dotenv::emit(&single(docs)?, None),
        Format::Ini => ini::emit(&single(docs)?, None),
        Format::Binary => {
            let d = single(docs)?;
            let data = d
                .iter()
                .find_map(|(k, v)| match k {
                    Key::Str(k) if k == "data" => Some(v),
                    _ => None,
                })
                .ok_or_else(|| Error::Unsupported("binary output needs a 'data' key".into()))?;
            Ok(match data {
                Value::Str(s) => s.clone().into_bytes(),
                Value::Bytes(b) => b.clone(),
                other => other.scalar_text().unwrap_or_default().into_bytes(),
            })
        }
    }
}
