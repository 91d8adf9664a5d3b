//! Finding SealedSecrets in a file's text with the place of every sealed value, and replacing
//! those values in the text: everything else (comments, order, quoting, other documents) stays
//! byte for byte as it was.

use std::ops::Range;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use serde_json::Value;

/// One `spec.encryptedData` value: its key and the bytes of its scalar in the text.
#[derive(Debug)]
pub struct ValueSpan {
    pub key: String,
    pub value: String,
    range: Range<usize>,
    style: ScalarStyle,
}

/// A SealedSecret found in a file: where it is, the object, and its values' places.
#[derive(Debug)]
pub struct Found {
    /// "document 2" or "document 1, item 3", with the name when there is one.
    pub place: String,
    pub object: Value,
    pub values: Vec<ValueSpan>,
}

/// A YAML node with the byte range of each scalar.
enum Node {
    Scalar {
        value: String,
        style: ScalarStyle,
        range: Range<usize>,
    },
    Mapping(Vec<(Node, Node)>),
    Sequence(Vec<Node>),
    Alias,
}

/// Character index (saphyr's markers) to byte offset.
struct Offsets {
    base: usize,
    chars: Option<Vec<usize>>,
}

impl Offsets {
    fn new(text: &str, base: usize) -> Self {
        let chars = (!text.is_ascii()).then(|| {
            let mut offsets: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
            offsets.push(text.len());
            offsets
        });
        Self { base, chars }
    }

    fn byte(&self, char_index: usize) -> usize {
        let offset = match &self.chars {
            None => char_index,
            Some(offsets) => offsets
                .get(char_index)
                .copied()
                .unwrap_or(usize::MAX - self.base),
        };
        self.base + offset
    }
}

struct Builder<'t> {
    events: std::vec::IntoIter<(Event<'t>, Span)>,
    offsets: Offsets,
}

impl<'t> Builder<'t> {
    fn node(&mut self, first: Event<'t>, span: Span) -> Result<Node, String> {
        Ok(match first {
            Event::Scalar(value, style, _, _) => Node::Scalar {
                value: value.into_owned(),
                style,
                range: self.offsets.byte(span.start.index())..self.offsets.byte(span.end.index()),
            },
            Event::Alias(_) => Node::Alias,
            Event::SequenceStart(..) => {
                let mut items = Vec::new();
                loop {
                    match self.next()? {
                        (Event::SequenceEnd, _) => break,
                        (event, span) => items.push(self.node(event, span)?),
                    }
                }
                Node::Sequence(items)
            }
            Event::MappingStart(..) => {
                let mut entries = Vec::new();
                loop {
                    match self.next()? {
                        (Event::MappingEnd, _) => break,
                        (event, span) => {
                            let key = self.node(event, span)?;
                            let (event, span) = self.next()?;
                            entries.push((key, self.node(event, span)?));
                        }
                    }
                }
                Node::Mapping(entries)
            }
            other => return Err(format!("unexpected YAML event {other:?}")),
        })
    }

    fn next(&mut self) -> Result<(Event<'t>, Span), String> {
        self.events
            .next()
            .ok_or_else(|| "the YAML ends inside a collection".to_string())
    }
}

/// The YAML meaning of a plain scalar, as far as a Kubernetes object needs it.
fn scalar_value(value: &str, style: ScalarStyle) -> Value {
    if style != ScalarStyle::Plain {
        return Value::String(value.to_string());
    }
    match value {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        _ => value
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(value.to_string())),
    }
}

fn to_json(node: &Node) -> Value {
    match node {
        Node::Scalar { value, style, .. } => scalar_value(value, *style),
        Node::Sequence(items) => Value::Array(items.iter().map(to_json).collect()),
        Node::Mapping(entries) => Value::Object(
            entries
                .iter()
                .filter_map(|(k, v)| match k {
                    Node::Scalar { value, .. } => Some((value.clone(), to_json(v))),
                    _ => None,
                })
                .collect(),
        ),
        Node::Alias => Value::Null,
    }
}

fn get<'n>(node: &'n Node, key: &str) -> Option<&'n Node> {
    let Node::Mapping(entries) = node else {
        return None;
    };
    entries.iter().find_map(|(k, v)| match k {
        Node::Scalar { value, .. } if value == key => Some(v),
        _ => None,
    })
}

fn is_kind(node: &Node, kind: &str) -> bool {
    matches!(get(node, "kind"), Some(Node::Scalar { value, .. }) if value == kind)
}

fn has_alias(node: &Node) -> bool {
    match node {
        Node::Alias => true,
        Node::Scalar { .. } => false,
        Node::Sequence(items) => items.iter().any(has_alias),
        Node::Mapping(entries) => entries.iter().any(|(k, v)| has_alias(k) || has_alias(v)),
    }
}

fn sealed_secret(node: &Node, place: String) -> Result<Found, String> {
    let object = to_json(node);
    let place = match object.pointer("/metadata/name").and_then(Value::as_str) {
        Some(name) => format!("{place} ({name})"),
        None => place,
    };
    if has_alias(node) {
        return Err(format!(
            "{place}: uses YAML aliases; re-encrypt it on its own (kubeseal --re-encrypt < file)"
        ));
    }
    let mut values = Vec::new();
    if let Some(Node::Mapping(entries)) = get(node, "spec").and_then(|s| get(s, "encryptedData")) {
        for (key, value) in entries {
            match (key, value) {
                (
                    Node::Scalar { value: key, .. },
                    Node::Scalar {
                        value,
                        style,
                        range,
                    },
                ) => values.push(ValueSpan {
                    key: key.clone(),
                    value: value.clone(),
                    range: range.clone(),
                    style: *style,
                }),
                (Node::Scalar { value: key, .. }, _) => {
                    return Err(format!(
                        "{place}: encryptedData key {key:?} is not a string"
                    ));
                }
                _ => {
                    return Err(format!(
                        "{place}: encryptedData has a key that is not a string"
                    ));
                }
            }
        }
    }
    Ok(Found {
        place,
        object,
        values,
    })
}

/// Every SealedSecret in `text`: top-level documents and the items of `List` documents. A YAML
/// error fails the whole file (nothing after it can be located reliably). JSON objects one after
/// another (as `kubeseal -o json` writes several) are documents too.
pub fn find(text: &str) -> Result<Vec<Found>, String> {
    if !text.trim_start().starts_with('{') {
        return find_yaml(text, 0, 0);
    }
    let mut found = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<serde::de::IgnoredAny>();
    let mut start = 0;
    let mut document = 0;
    while let Some(next) = stream.next() {
        next.map_err(|e| format!("JSON error at line {}, column {}", e.line(), e.column()))?;
        let end = stream.byte_offset();
        found.extend(find_yaml(&text[start..end], start, document)?);
        document += 1;
        start = end;
    }
    Ok(found)
}

/// [`find`] for one YAML stream found at byte `base` of the file, after `documents_before` others.
fn find_yaml(text: &str, base: usize, documents_before: usize) -> Result<Vec<Found>, String> {
    let mut events = Vec::new();
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| {
            format!(
                "YAML error at line {}, column {}: {}",
                e.marker().line(),
                e.marker().col() + 1,
                e.info()
            )
        })?;
        events.push((event, span));
    }
    let mut builder = Builder {
        events: events.into_iter(),
        offsets: Offsets::new(text, base),
    };
    let mut found = Vec::new();
    let mut document = documents_before;
    while let Some((event, span)) = builder.events.next() {
        match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
            Event::DocumentStart(_) => document += 1,
            event => {
                let root = builder.node(event, span)?;
                if is_kind(&root, "SealedSecret") {
                    found.push(sealed_secret(&root, format!("document {document}"))?);
                } else if matches!(get(&root, "kind"), Some(Node::Scalar { value, .. }) if value.ends_with("List"))
                    && let Some(Node::Sequence(items)) = get(&root, "items")
                {
                    for (index, item) in items.iter().enumerate() {
                        if is_kind(item, "SealedSecret") {
                            found.push(sealed_secret(
                                item,
                                format!("document {document}, item {}", index + 1),
                            )?);
                        }
                    }
                }
            }
        }
    }
    Ok(found)
}

/// The scalar text that puts `new` where `old` was, in `old`'s style. Sealed values are base64,
/// which needs no escaping in any style.
fn replacement(original: &str, style: ScalarStyle, new: &str) -> String {
    match style {
        ScalarStyle::DoubleQuoted => format!("\"{new}\""),
        ScalarStyle::SingleQuoted => format!("'{new}'"),
        // A block scalar's span runs from its first content line to its last line break.
        ScalarStyle::Literal | ScalarStyle::Folded if original.ends_with('\n') => {
            format!("{new}\n")
        }
        _ => new.to_string(),
    }
}

/// `text` with the values of `changes` (per found object, key to new value) put in place. The
/// result is parsed again and must hold the same objects with exactly the new values.
pub fn apply(
    text: &str,
    found: &[Found],
    changes: &[std::collections::BTreeMap<String, String>],
) -> Result<String, String> {
    let mut edits: Vec<(Range<usize>, String)> = Vec::new();
    for (object, new_values) in found.iter().zip(changes) {
        for value in &object.values {
            if let Some(new) = new_values.get(&value.key) {
                let original = text.get(value.range.clone()).ok_or_else(|| {
                    format!("{}: cannot locate key {:?}", object.place, value.key)
                })?;
                edits.push((value.range.clone(), replacement(original, value.style, new)));
            }
        }
    }
    edits.sort_by_key(|(range, _)| range.start);
    let mut out = String::with_capacity(text.len() + 64);
    let mut at = 0;
    for (range, new) in &edits {
        if range.start < at {
            return Err("two values overlap in the text".into());
        }
        out.push_str(&text[at..range.start]);
        out.push_str(new);
        at = range.end;
    }
    out.push_str(&text[at..]);

    let again = find(&out).map_err(|e| format!("the rewritten text does not parse: {e}"))?;
    let same = again.len() == found.len()
        && again
            .iter()
            .zip(found)
            .zip(changes)
            .all(|((after, before), new_values)| {
                after.values.len() == before.values.len()
                    && after.values.iter().zip(&before.values).all(|(a, b)| {
                        a.key == b.key
                            && a.value.trim_end()
                                == new_values.get(&b.key).map_or(b.value.trim_end(), |v| v)
                    })
            });
    if !same {
        return Err("the rewritten text does not read back as the new values".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_replaced_in_their_own_style_and_nothing_else_moves() -> Result<(), String> {
        let text = "# top comment\n---\napiVersion: v1\nkind: List\nitems:\n- kind: SealedSecret\n  metadata: {name: a, namespace: n}\n  spec:\n    encryptedData:\n      plain: AAA=  # why\n      quoted: \"BBB=\"\n      single: 'CCC='\n      block: |\n        DDD=\n---\nkind: ConfigMap\ndata: {x: \"é\"}\n---\n{\"kind\": \"SealedSecret\", \"metadata\": {\"name\": \"ü\"}, \"spec\": {\"encryptedData\": {\"k\": \"EEE=\"}}}\n";
        let found = find(text)?;
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].place, "document 1, item 1 (a)");
        assert_eq!(found[1].place, "document 3 (ü)");
        let changes = vec![
            [
                ("plain", "X1"),
                ("quoted", "X2"),
                ("single", "X3"),
                ("block", "X4"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            [("k".to_string(), "X5".to_string())].into_iter().collect(),
        ];
        let out = apply(text, &found, &changes)?;
        let want = text
            .replace("AAA=", "X1")
            .replace("BBB=", "X2")
            .replace("CCC=", "X3")
            .replace("DDD=", "X4")
            .replace("EEE=", "X5");
        assert_eq!(out, want);
        Ok(())
    }

    #[test]
    fn yaml_errors_and_aliases_are_reported() {
        assert!(find("kind: SealedSecret\n  bad: [\n").is_err());
        let aliased = "kind: SealedSecret\nmetadata: {name: a}\nspec:\n  encryptedData:\n    k: &v AAA\n    l: *v\n";
        let error = find(aliased).map(|_| ()).expect_err("aliases are refused");
        assert!(error.contains("aliases"), "{error}");
    }
}
