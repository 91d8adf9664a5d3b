//! Splitting input text into Kubernetes objects: YAML (one or many documents) or JSON (one object
//! or several concatenated). Every tool that reads SealedSecrets, Secrets or key Secrets from a
//! file goes through here, so that size limits and error handling are the same everywhere.
//!
//! Not a YAML parser of its own: serde_yaml and serde_json do the parsing.

use std::io::Read;

use serde_json::Value;
use zeroize::{Zeroize as _, Zeroizing};

/// The most input read at once (16 MiB): an API server stores objects of at most 1.5 MiB, so this
/// leaves room for files of many objects while bounding the memory a hostile file can take.
pub const MAX_INPUT_BYTES: usize = 16 << 20;

/// Why the input could not be split into documents. Never quotes the input.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("the input is larger than {} MiB", MAX_INPUT_BYTES >> 20)]
    TooLarge,
    #[error("document {index}: invalid {format}: {detail}")]
    Syntax {
        /// 1-based position of the document in the input, empty documents included.
        index: usize,
        format: &'static str,
        detail: String,
    },
}

/// Reads all of `reader`, refusing more than [`MAX_INPUT_BYTES`] without reading further.
pub fn read_bounded(reader: impl Read) -> std::io::Result<Zeroizing<String>> {
    let mut text = Zeroizing::new(String::new());
    let limit = u64::try_from(MAX_INPUT_BYTES).unwrap_or(u64::MAX);
    reader.take(limit + 1).read_to_string(&mut text)?;
    if text.len() > MAX_INPUT_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            DocumentError::TooLarge,
        ));
    }
    Ok(text)
}

/// A parsed document. Its strings (a Secret's values among them) are wiped when it is dropped.
pub struct Document(pub Value);

impl std::fmt::Debug for Document {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the values.
        f.write_str("Document(..)")
    }
}

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

enum Parser<'a> {
    Yaml(serde_yaml::Deserializer<'a>),
    Json(serde_json::StreamDeserializer<'a, serde_json::de::StrRead<'a>, Value>),
    TooLarge,
    Done,
}

/// The documents of a text, in order, with their 1-based position; empty YAML documents are
/// skipped (but counted). Ends after the first error: serde_yaml's iterator cannot resume after
/// a syntax error and would yield the same error forever.
pub struct Documents<'a> {
    parser: Parser<'a>,
    index: usize,
}

impl std::fmt::Debug for Documents<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Documents(at {})", self.index)
    }
}

/// Splits `text` into documents: a JSON stream when it starts with `{`, YAML otherwise.
pub fn documents(text: &str) -> Documents<'_> {
    let parser = if text.len() > MAX_INPUT_BYTES {
        Parser::TooLarge
    } else if text.trim_start().starts_with('{') {
        Parser::Json(serde_json::Deserializer::from_str(text).into_iter())
    } else {
        Parser::Yaml(serde_yaml::Deserializer::from_str(text))
    };
    Documents { parser, index: 0 }
}

impl Iterator for Documents<'_> {
    type Item = Result<(usize, Document), DocumentError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let parsed = match &mut self.parser {
                Parser::Done => return None,
                Parser::TooLarge => Err(DocumentError::TooLarge),
                Parser::Json(stream) => {
                    let value = stream.next()?;
                    self.index += 1;
                    value.map_err(|e| syntax(self.index, "JSON", &e.to_string()))
                }
                Parser::Yaml(stream) => {
                    let document = stream.next()?;
                    self.index += 1;
                    <Value as serde::Deserialize>::deserialize(document)
                        .map_err(|e| syntax(self.index, "YAML", &e.to_string()))
                }
            };
            match parsed {
                Ok(Value::Null) => continue,
                Ok(value) => return Some(Ok((self.index, Document(value)))),
                Err(e) => {
                    self.parser = Parser::Done;
                    return Some(Err(e));
                }
            }
        }
    }
}

impl std::iter::FusedIterator for Documents<'_> {}

fn syntax(index: usize, format: &'static str, detail: &str) -> DocumentError {
    DocumentError::Syntax {
        index,
        format,
        detail: redact(detail),
    }
}

/// Parser and deserializer messages may quote the offending input, which can be a secret value:
/// text between `"…"` or `` `…` `` (serde's quoting of strings and of numbers and booleans) is cut.
pub fn redact(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut open: Option<char> = None;
    for c in message.chars() {
        match open {
            Some(quote) if c == quote => {
                out.push('…');
                out.push(c);
                open = None;
            }
            Some(_) => {}
            None => {
                out.push(c);
                if c == '"' || c == '`' {
                    open = Some(c);
                }
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn wipe_clears_every_string() {
        let mut doc = serde_json::json!({"data": {"k": "c2VjcmV0"}, "list": ["x", 1]});
        wipe(&mut doc);
        assert_eq!(doc, serde_json::json!({"data": {"k": ""}, "list": ["", 1]}));
    }

    #[test]
    fn redact_hides_quoted_and_backticked_text() {
        assert_eq!(
            redact(r#"invalid value: string "hunter2", expected base64"#),
            "invalid value: string \"…\", expected base64"
        );
        assert_eq!(
            redact("invalid type: integer `31337`, expected a string"),
            "invalid type: integer `…`, expected a string"
        );
    }

    #[test]
    fn json_and_yaml_streams_split_into_documents() {
        let json = r#"{"kind":"Secret"} {"kind":"Secret","metadata":{"name":"b"}}"#;
        assert_eq!(documents(json).count(), 2);
        let yaml = "---\nkind: Secret\n---\n---\nkind: Secret\n";
        let indexes: Vec<usize> = documents(yaml)
            .map(|d| d.map(|(i, _)| i).unwrap_or(0))
            .collect();
        assert_eq!(indexes, vec![1, 3]);
    }

    /// Regression: `secrets-controller unseal` looped forever (and grew without bound) on any
    /// YAML syntax error, because serde_yaml's iterator repeats its error.
    #[test]
    fn a_syntax_error_ends_the_documents() {
        for text in [
            "kind: Secret\n---\nkey: [unclosed\n---\nkind: Secret\n",
            "a: b: c\n",
            "{\"kind\": \"Secret\"} {\"kind\": ",
        ] {
            let items: Vec<_> = documents(text).take(100).collect();
            let errors = items.iter().filter(|d| d.is_err()).count();
            assert_eq!(errors, 1, "{text:?}: {items:?}");
            assert!(items.last().is_some_and(Result::is_err), "{text:?}");
        }
    }

    #[test]
    fn oversized_text_is_refused_before_parsing() {
        let text = "#".repeat(MAX_INPUT_BYTES + 1);
        let items: Vec<_> = documents(&text).collect();
        assert!(matches!(items.as_slice(), [Err(DocumentError::TooLarge)]));
        let read = read_bounded(text.as_bytes()).unwrap_err();
        assert!(read.to_string().contains("larger than 16 MiB"), "{read}");
        assert_eq!(
            read_bounded(&b"kind: Secret\n"[..]).unwrap().as_str(),
            "kind: Secret\n"
        );
    }
}
