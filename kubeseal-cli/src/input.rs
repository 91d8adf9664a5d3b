//! Reading Kubernetes objects from files and stdin: YAML (one or many documents) or JSON (one
//! object or several concatenated).

use std::io::{IsTerminal as _, Read as _};
use std::path::Path;

use anyhow::{Context as _, Result, anyhow, bail};
use base64::Engine as _;
use serde_json::Value;
use zeroize::{Zeroize as _, Zeroizing};

/// Where input came from, for error messages.
pub fn source_name(path: Option<&Path>) -> String {
    path.map_or_else(|| "stdin".to_string(), |p| p.display().to_string())
}

/// Reads the whole input: the file, or stdin (with a hint when stdin is a terminal).
pub fn read_input(path: Option<&Path>) -> Result<Zeroizing<String>> {
    let mut text = Zeroizing::new(String::new());
    match path {
        Some(path) => {
            std::fs::File::open(path)
                .and_then(|mut f| f.read_to_string(&mut text))
                .with_context(|| format!("cannot read {}", path.display()))?;
        }
        None => {
            let mut stdin = std::io::stdin();
            if stdin.is_terminal() {
                eprintln!("(tty detected: expecting a JSON or YAML Kubernetes resource on stdin)");
            }
            stdin
                .read_to_string(&mut text)
                .context("cannot read stdin")?;
        }
    }
    Ok(text)
}

/// A parsed document. Its strings (a Secret's values among them) are wiped when it is dropped.
pub struct Document(pub Value);

impl Drop for Document {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

fn wipe(value: &mut Value) {
    match value {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        Value::Object(map) => map.values_mut().for_each(wipe),
        _ => {}
    }
}

/// Parses every document of `text`; empty documents are skipped.
pub fn parse_documents(text: &str, source: &str) -> Result<Vec<Document>> {
    let mut documents = Vec::new();
    if text.trim_start().starts_with('{') {
        for (index, doc) in serde_json::Deserializer::from_str(text)
            .into_iter::<Value>()
            .enumerate()
        {
            let doc = doc.map_err(|e| {
                anyhow!(
                    "{source}: document {}: invalid JSON: {}",
                    index + 1,
                    redact(&e.to_string())
                )
            })?;
            documents.push(Document(doc));
        }
    } else {
        for (index, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
            let doc = <Value as serde::Deserialize>::deserialize(doc).map_err(|e| {
                anyhow!(
                    "{source}: document {}: invalid YAML: {}",
                    index + 1,
                    redact(&e.to_string())
                )
            })?;
            if !doc.is_null() {
                documents.push(Document(doc));
            }
        }
    }
    Ok(documents)
}

/// Error texts from parsers may quote the offending input, which can be a secret value.
pub fn redact(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut in_quotes = false;
    for c in message.chars() {
        if c == '"' {
            if in_quotes {
                out.push_str("…\"");
            } else {
                out.push('"');
            }
            in_quotes = !in_quotes;
        } else if !in_quotes {
            out.push(c);
        }
    }
    out
}

fn describe(doc: &Value, index: usize, source: &str) -> String {
    match doc.pointer("/metadata/name").and_then(Value::as_str) {
        Some(name) => format!("{source}: document {} ({name})", index + 1),
        None => format!("{source}: document {}", index + 1),
    }
}

fn kind_of(doc: &Value) -> &str {
    doc.get("kind").and_then(Value::as_str).unwrap_or("")
}

/// Secrets from the input, with a description of each for errors.
pub fn secrets(
    documents: Vec<Document>,
    source: &str,
) -> Result<Vec<(String, k8s_openapi::api::core::v1::Secret)>> {
    let mut out = Vec::new();
    for (index, document) in documents.iter().enumerate() {
        let doc = &document.0;
        let what = describe(doc, index, source);
        if kind_of(doc) != "Secret" {
            bail!("{what}: expected a Secret, found kind {:?}", kind_of(doc));
        }
        // Check base64 ourselves so that the error names the key and never echoes the value.
        if let Some(data) = doc.get("data").and_then(Value::as_object) {
            for (key, value) in data {
                let valid = value
                    .as_str()
                    .is_some_and(|v| base64::engine::general_purpose::STANDARD.decode(v).is_ok());
                if !valid && !value.is_null() {
                    bail!("{what}: data key {key:?} is not valid base64");
                }
            }
        }
        // Deserializing from a reference leaves no unwiped copy of the strings behind.
        let secret = serde::Deserialize::deserialize(doc).map_err(|e: serde_json::Error| {
            anyhow!("{what}: not a valid Secret: {}", redact(&e.to_string()))
        })?;
        out.push((what, secret));
    }
    if out.is_empty() {
        bail!("{source}: no Secret found in the input");
    }
    Ok(out)
}

/// SealedSecrets from the input, with a description of each for errors.
pub fn sealed_secrets(
    documents: Vec<Document>,
    source: &str,
) -> Result<Vec<(String, crds::SealedSecret)>> {
    let mut out = Vec::new();
    for (index, document) in documents.iter().enumerate() {
        let doc = &document.0;
        let what = describe(doc, index, source);
        if kind_of(doc) != "SealedSecret" {
            bail!(
                "{what}: expected a SealedSecret, found kind {:?}",
                kind_of(doc)
            );
        }
        let sealed = serde::Deserialize::deserialize(doc).map_err(|e: serde_json::Error| {
            anyhow!(
                "{what}: not a valid SealedSecret: {}",
                redact(&e.to_string())
            )
        })?;
        out.push((what, sealed));
    }
    if out.is_empty() {
        bail!("{source}: no SealedSecret found in the input");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wipe_clears_every_string() {
        let mut doc = serde_json::json!({"data": {"k": "c2VjcmV0"}, "list": ["x", 1]});
        wipe(&mut doc);
        assert_eq!(doc, serde_json::json!({"data": {"k": ""}, "list": ["", 1]}));
    }

    #[test]
    fn redact_hides_quoted_text() {
        assert_eq!(
            redact(r#"invalid value: string "hunter2", expected base64"#),
            "invalid value: string \"…\", expected base64"
        );
    }

    #[test]
    fn json_and_yaml_streams_split_into_documents() -> Result<()> {
        let json = r#"{"kind":"Secret"} {"kind":"Secret","metadata":{"name":"b"}}"#;
        assert_eq!(parse_documents(json, "x")?.len(), 2);
        let yaml = "---\nkind: Secret\n---\n---\nkind: Secret\n";
        assert_eq!(parse_documents(yaml, "x")?.len(), 2);
        Ok(())
    }
}
