//! Reading Kubernetes objects from files and stdin: YAML (one or many documents) or JSON (one
//! object or several concatenated).

use std::io::IsTerminal as _;
use std::path::Path;

use anyhow::{Context as _, Result, anyhow, bail};
use base64::Engine as _;
use sealing::documents::{Document, documents, read_bounded, redact};
use serde_json::Value;
use zeroize::Zeroizing;

/// Where input came from, for error messages.
pub fn source_name(path: Option<&Path>) -> String {
    path.map_or_else(|| "stdin".to_string(), |p| p.display().to_string())
}

/// Reads the whole input (at most [`sealing::documents::MAX_INPUT_BYTES`]): the file, or stdin (with a hint when
/// stdin is a terminal).
pub fn read_input(path: Option<&Path>) -> Result<Zeroizing<String>> {
    match path {
        Some(path) => std::fs::File::open(path)
            .and_then(read_bounded)
            .with_context(|| format!("cannot read {}", path.display())),
        None => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                eprintln!("(tty detected: expecting a JSON or YAML Kubernetes resource on stdin)");
            }
            read_bounded(stdin).context("cannot read stdin")
        }
    }
}

/// Parses every document of `text`; empty documents are skipped.
pub fn parse_documents(text: &str, source: &str) -> Result<Vec<Document>> {
    documents(text)
        .map(|document| {
            document
                .map(|(_, document)| document)
                .map_err(|e| anyhow!("{source}: {e}"))
        })
        .collect()
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
        // A number or boolean in stringData would be quoted back by serde's "invalid type" error.
        if let Some(string_data) = doc.get("stringData").and_then(Value::as_object) {
            for (key, value) in string_data {
                if !value.is_string() && !value.is_null() {
                    bail!("{what}: stringData key {key:?} is not a string (quote the value)");
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
    fn json_and_yaml_streams_split_into_documents() -> Result<()> {
        let json = r#"{"kind":"Secret"} {"kind":"Secret","metadata":{"name":"b"}}"#;
        assert_eq!(parse_documents(json, "x")?.len(), 2);
        let yaml = "---\nkind: Secret\n---\n---\nkind: Secret\n";
        assert_eq!(parse_documents(yaml, "x")?.len(), 2);
        Ok(())
    }
}
