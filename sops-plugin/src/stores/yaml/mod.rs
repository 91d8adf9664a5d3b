//! YAML store. Parsing uses saphyr-parser's event stream (with source spans) for structure and a
//! small lexical pass for comments, which serde-based YAML libraries drop. Emission is our own,
//! following go-yaml v3 as sops configures it (4-space indent, sequences indented under their
//! key, go-yaml's quoting rules), so decrypted output matches `sops decrypt` byte for byte on
//! ordinary files.
//!
//! - [`node`]: the node tree both of the next two work on
//! - [`parse`]: events to a node tree, aliases, plain values
//! - [`comments`]: finding comments and attaching them where go-yaml does
//! - [`resolve`]: go-yaml's scalar resolution (plain scalars to types, and back)
//! - [`emit`]: the go-yaml emitter
//!
//! [`split_documents`] cuts a stream at its `---` lines, so that a large one is parsed one
//! document at a time.

mod comments;
mod emit;
mod node;
mod parse;
mod resolve;

pub use emit::{emit, emit_value};
pub use parse::{parse, top_level_kinds};

/// Splits a YAML stream at its `---` lines (one document each, parsed one at a time).
pub fn split_documents(text: &str) -> impl Iterator<Item = &str> {
    let mut starts = vec![0];
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        if pos > 0 && (line.trim_end() == "---" || line.starts_with("--- ")) {
            starts.push(pos);
        }
        pos += line.len();
    }
    starts.push(text.len());
    let bounds: Vec<(usize, usize)> = starts.windows(2).map(|w| (w[0], w[1])).collect();
    bounds.into_iter().map(move |(a, b)| &text[a..b])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;
    use emit::scalar_str;
    use resolve::resolve_plain;

    #[test]
    fn timestamp_like_scalars_never_panic() {
        for s in [
            "2001-12-14é",
            "2001-12-14T",
            "2001-12-14 1:2",
            "2001-13-01",
            "2001-02-29",
            "2000-02-29",
        ] {
            let docs = parse(&format!("a: {s}\n"));
            assert!(docs.is_ok(), "{s}");
        }
        assert_eq!(
            resolve_plain("2000-02-29"),
            Value::Time("2000-02-29T00:00:00Z".into())
        );
        assert_eq!(resolve_plain("2001-02-29"), Value::Str("2001-02-29".into()));
    }

    #[test]
    fn a_lone_carriage_return_ends_a_comment() {
        // Found by the sops-yaml fuzz target: the comment swallowed the key, which was then
        // written twice (once inside the comment) and the written file no longer parsed.
        let docs = parse("#note\rkey: 1\n").unwrap_or_default();
        let written = emit(&docs);
        assert_eq!(written, "#note\nkey: 1\n");
        assert_eq!(parse(&written).map(|d| d.len()).ok(), Some(1));
    }

    #[test]
    fn hostile_inputs_are_refused() {
        let deep = "a: ".to_string() + &"[".repeat(10_000);
        assert!(parse(&deep).is_err());
        let mut laughs = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            laughs.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        let err = parse(&laughs)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("too many nodes"), "{err}");
    }

    #[test]
    fn quoting_like_go_yaml() {
        assert_eq!(scalar_str("y", false, 4), "\"y\"");
        assert_eq!(scalar_str("p@ss: w0rd", false, 4), "'p@ss: w0rd'");
        assert_eq!(scalar_str("", false, 4), "\"\"");
        assert_eq!(
            scalar_str("2026-11-24T17:49:19Z", false, 4),
            "\"2026-11-24T17:49:19Z\""
        );
        assert_eq!(scalar_str("3.11.0", false, 4), "3.11.0");
        assert_eq!(scalar_str("Grüße 🌍", false, 4), "\"Grüße \\U0001F30D\"");
        assert_eq!(scalar_str("a\nb\n", false, 4), "|\n    a\n    b");
    }
}
