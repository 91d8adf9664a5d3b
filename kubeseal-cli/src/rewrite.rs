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

/// A YAML node with the byte range of each scalar and collection.
pub(crate) enum Node {
    Scalar {
        value: String,
        style: ScalarStyle,
        /// The scalar's own text: quotes included, a block scalar's lines from its first content
        /// line (saphyr's spans of quoted scalars run on over spaces and comments; cut here).
        range: Range<usize>,
        /// It carries an anchor or a tag, which `range` may include.
        decorated: bool,
    },
    Mapping {
        entries: Vec<(Node, Node)>,
        flow: bool,
        /// A flow mapping from `{` to after `}`; a block mapping from its first key to the end of
        /// its last value.
        range: Range<usize>,
    },
    Sequence {
        items: Vec<Node>,
        range: Range<usize>,
    },
    Alias {
        range: Range<usize>,
    },
}

impl Node {
    pub(crate) fn start(&self) -> usize {
        match self {
            Node::Scalar { range, .. }
            | Node::Mapping { range, .. }
            | Node::Sequence { range, .. }
            | Node::Alias { range } => range.start,
        }
    }

    /// Where the node's text ends: for a block scalar, after its last content character (its
    /// span runs on over line breaks and the next line's indentation).
    pub(crate) fn end(&self, text: &str) -> usize {
        match self {
            Node::Scalar {
                style: ScalarStyle::Literal | ScalarStyle::Folded,
                range,
                ..
            } => text
                .get(range.clone())
                .map_or(range.end, |own| range.start + own.trim_end().len()),
            Node::Scalar { range, .. }
            | Node::Mapping { range, .. }
            | Node::Sequence { range, .. }
            | Node::Alias { range } => range.end,
        }
    }
}

/// Character index (saphyr's markers) to byte offset, never past the end of the text.
struct Offsets {
    base: usize,
    len: usize,
    chars: Option<Vec<usize>>,
}

impl Offsets {
    fn new(text: &str, base: usize) -> Self {
        let chars = (!text.is_ascii()).then(|| {
            let mut offsets: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
            offsets.push(text.len());
            offsets
        });
        Self {
            base,
            len: text.len(),
            chars,
        }
    }

    fn byte(&self, char_index: usize) -> usize {
        let offset = match &self.chars {
            None => char_index.min(self.len),
            Some(offsets) => offsets.get(char_index).copied().unwrap_or(self.len),
        };
        self.base + offset
    }
}

/// Deeper YAML is refused (as serde_yaml does) rather than risking the stack.
const MAX_DEPTH: usize = 128;

/// The end of the quoted scalar that starts at `start` in `text`, after its closing quote.
fn quoted_end(text: &str, start: usize, quote: u8) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut at = start + 1;
    while at < bytes.len() {
        match bytes[at] {
            b'\\' if quote == b'"' => at += 2,
            b'\'' if quote == b'\'' && bytes.get(at + 1) == Some(&b'\'') => at += 2,
            byte if byte == quote => return Some(at + 1),
            _ => at += 1,
        }
    }
    None
}

struct Builder<'t> {
    events: std::vec::IntoIter<(Event<'t>, Span)>,
    offsets: Offsets,
    /// The whole file: offsets are into it.
    text: &'t str,
    /// Collections open around the node being built.
    depth: usize,
}

impl<'t> Builder<'t> {
    fn range(&self, span: &Span) -> Range<usize> {
        self.offsets.byte(span.start.index())..self.offsets.byte(span.end.index())
    }

    fn node(&mut self, first: Event<'t>, span: Span) -> Result<Node, String> {
        let collection = matches!(first, Event::SequenceStart(..) | Event::MappingStart(..));
        if !collection {
            return self.collection_or_scalar(first, span);
        }
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("the YAML nests deeper than {MAX_DEPTH} levels"));
        }
        let node = self.collection_or_scalar(first, span);
        self.depth -= 1;
        node
    }

    fn collection_or_scalar(&mut self, first: Event<'t>, span: Span) -> Result<Node, String> {
        let start = self.range(&span);
        Ok(match first {
            Event::Scalar(value, style, anchor, tag) => {
                let mut range = start;
                let quote = match style {
                    ScalarStyle::DoubleQuoted => Some(b'"'),
                    ScalarStyle::SingleQuoted => Some(b'\''),
                    _ => None,
                };
                if let Some(quote) = quote
                    && anchor == 0
                    && tag.is_none()
                {
                    range.end = quoted_end(self.text, range.start, quote)
                        .filter(|&end| end <= range.end)
                        .ok_or("a quoted scalar's end cannot be located")?;
                }
                Node::Scalar {
                    value: value.into_owned(),
                    style,
                    range,
                    decorated: anchor != 0 || tag.is_some(),
                }
            }
            Event::Alias(_) => Node::Alias { range: start },
            Event::SequenceStart(..) => {
                let mut items = Vec::new();
                let end = loop {
                    match self.next()? {
                        (Event::SequenceEnd, span) => break self.range(&span),
                        (event, span) => items.push(self.node(event, span)?),
                    }
                };
                // Only a flow collection's end event has a span of its own: from the bracket on
                // over spaces and a comment.
                let flow = !end.is_empty();
                let end = end.start + 1;
                let end = match items.last() {
                    Some(last) if !flow => last.end(self.text),
                    _ => end,
                };
                Node::Sequence {
                    items,
                    range: start.start..end,
                }
            }
            Event::MappingStart(..) => {
                let mut entries = Vec::new();
                let end = loop {
                    match self.next()? {
                        (Event::MappingEnd, span) => break self.range(&span),
                        (event, span) => {
                            let key = self.node(event, span)?;
                            let (event, span) = self.next()?;
                            entries.push((key, self.node(event, span)?));
                        }
                    }
                };
                let flow = !end.is_empty();
                let end = end.start + 1;
                let end = match entries.last() {
                    Some((_, last)) if !flow => last.end(self.text),
                    _ => end,
                };
                Node::Mapping {
                    entries,
                    flow,
                    range: start.start..end,
                }
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

pub(crate) fn to_json(node: &Node) -> Value {
    match node {
        Node::Scalar { value, style, .. } => scalar_value(value, *style),
        Node::Sequence { items, .. } => Value::Array(items.iter().map(to_json).collect()),
        Node::Mapping { entries, .. } => Value::Object(
            entries
                .iter()
                .filter_map(|(k, v)| match k {
                    Node::Scalar { value, .. } => Some((value.clone(), to_json(v))),
                    _ => None,
                })
                .collect(),
        ),
        Node::Alias { .. } => Value::Null,
    }
}

fn get<'n>(node: &'n Node, key: &str) -> Option<&'n Node> {
    let Node::Mapping { entries, .. } = node else {
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

pub(crate) fn has_alias(node: &Node) -> bool {
    match node {
        Node::Alias { .. } => true,
        Node::Scalar { .. } => false,
        Node::Sequence { items, .. } => items.iter().any(has_alias),
        Node::Mapping { entries, .. } => entries.iter().any(|(k, v)| has_alias(k) || has_alias(v)),
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
    if let Some(Node::Mapping { entries, .. }) =
        get(node, "spec").and_then(|s| get(s, "encryptedData"))
    {
        for (key, value) in entries {
            match (key, value) {
                (
                    Node::Scalar { value: key, .. },
                    Node::Scalar {
                        value,
                        style,
                        range,
                        decorated: false,
                    },
                ) => values.push(ValueSpan {
                    key: key.clone(),
                    value: value.clone(),
                    range: range.clone(),
                    style: *style,
                }),
                (Node::Scalar { value: key, .. }, Node::Scalar { .. }) => {
                    return Err(format!(
                        "{place}: encryptedData key {key:?} has a YAML anchor or tag; re-encrypt it on its own (kubeseal --re-encrypt < file)"
                    ));
                }
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
    let documents = documents(text)?;
    sealed_secret_nodes(&documents)
        .into_iter()
        .map(|(place, _, node)| sealed_secret(node, place))
        .collect()
}

/// The SealedSecrets among `documents`: where each is, the index of its document, its node.
pub(crate) fn sealed_secret_nodes(documents: &[(usize, Node)]) -> Vec<(String, usize, &Node)> {
    let mut found = Vec::new();
    for (index, (document, root)) in documents.iter().enumerate() {
        if is_kind(root, "SealedSecret") {
            found.push((format!("document {document}"), index, root));
        } else if matches!(get(root, "kind"), Some(Node::Scalar { value, .. }) if value.ends_with("List"))
            && let Some(Node::Sequence { items, .. }) = get(root, "items")
        {
            for (item_index, item) in items.iter().enumerate() {
                if is_kind(item, "SealedSecret") {
                    found.push((
                        format!("document {document}, item {}", item_index + 1),
                        index,
                        item,
                    ));
                }
            }
        }
    }
    found
}

/// Every document of `text` with its number (from 1), as nodes whose ranges are into `text`.
pub(crate) fn documents(text: &str) -> Result<Vec<(usize, Node)>, String> {
    let mut documents = Vec::new();
    if !text.trim_start().starts_with('{') {
        yaml_documents(text, 0..text.len(), &mut documents)?;
        return Ok(documents);
    }
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<serde::de::IgnoredAny>();
    let mut start = 0;
    while let Some(next) = stream.next() {
        next.map_err(|e| format!("JSON error at line {}, column {}", e.line(), e.column()))?;
        let end = stream.byte_offset();
        yaml_documents(text, start..end, &mut documents)?;
        start = end;
    }
    Ok(documents)
}

/// The documents of the YAML stream at `part` of `text`, numbered on from those in `documents`.
fn yaml_documents(
    text: &str,
    part: Range<usize>,
    documents: &mut Vec<(usize, Node)>,
) -> Result<(), String> {
    let mut document = documents.last().map_or(0, |(number, _)| *number);
    let stream = &text[part.clone()];
    let mut events = Vec::new();
    for event in Parser::new_from_str(stream) {
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
        offsets: Offsets::new(stream, part.start),
        text,
        depth: 0,
    };
    while let Some((event, span)) = builder.events.next() {
        match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
            Event::DocumentStart(_) => document += 1,
            event => documents.push((document, builder.node(event, span)?)),
        }
    }
    Ok(())
}

/// `value` as a scalar a YAML (1.1 or 1.2) or JSON reader takes for that string: plain when
/// nothing in it can be read as something else, else double-quoted (JSON's escapes are valid in
/// YAML double quotes). Keys and values alike: `a.b` stays bare, `on`, `yes`, `123`, `#x` and
/// `: x` are quoted.
pub(crate) fn scalar(value: &str, json: bool) -> String {
    if !json && plain_is_safe(value) {
        value.to_string()
    } else {
        serde_json::Value::String(value.to_string()).to_string()
    }
}

/// Conservative: letters, digits and a few marks, starting with a letter, `_`, `/` or `.`, and
/// no word any YAML version resolves to null, a boolean or a number.
fn plain_is_safe(value: &str) -> bool {
    let Some(first) = value.chars().next() else {
        return false;
    };
    let lower = value.to_ascii_lowercase();
    (first.is_ascii_alphabetic() || matches!(first, '_' | '/' | '.'))
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./+=-@~()".contains(c))
        && !matches!(
            lower.as_str(),
            "null" | "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | ".inf" | ".nan"
        )
        && !(first == '.' && value[1..].starts_with(|c: char| c.is_ascii_digit()))
}

/// The text that puts `new` where the scalar `original` (of `style`) was, keeping its style where
/// `new` allows; `None` for a block scalar when `new` is not a single word. A block scalar keeps
/// its line breaks, so it reads back as `new` and a line break.
pub(crate) fn replacement(original: &str, style: ScalarStyle, new: &str) -> Option<String> {
    let word = !new.is_empty() && !new.chars().any(|c| c.is_whitespace() || c.is_control());
    Some(match style {
        ScalarStyle::DoubleQuoted => scalar(new, true),
        ScalarStyle::SingleQuoted if !new.chars().any(char::is_control) => {
            format!("'{}'", new.replace('\'', "''"))
        }
        ScalarStyle::Literal | ScalarStyle::Folded if word => {
            format!("{new}{}", &original[original.trim_end().len()..])
        }
        ScalarStyle::Literal | ScalarStyle::Folded => return None,
        _ => scalar(new, false),
    })
}

/// `text` with each range of `edits` replaced (an empty range is an insertion; insertions at one
/// place keep their order in `edits`).
pub(crate) fn splice(text: &str, mut edits: Vec<(Range<usize>, String)>) -> Result<String, String> {
    edits.sort_by_key(|(range, _)| range.start);
    let mut out = String::with_capacity(text.len() + 256);
    let mut at = 0;
    for (range, new) in &edits {
        let kept = (range.start >= at)
            .then(|| text.get(at..range.start))
            .flatten()
            .ok_or("two edits overlap in the text")?;
        out.push_str(kept);
        out.push_str(new);
        at = range.end;
    }
    out.push_str(
        text.get(at..)
            .ok_or("an edit runs past the end of the text")?,
    );
    Ok(out)
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
                let original = text.get(value.range.clone());
                let new = original
                    .and_then(|original| replacement(original, value.style, new))
                    .ok_or_else(|| {
                        format!("{}: cannot locate key {:?}", object.place, value.key)
                    })?;
                edits.push((value.range.clone(), new));
            }
        }
    }
    let out = splice(text, edits)?;

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

    /// saphyr's span of a quoted scalar runs on over spaces and a comment, and a block scalar's
    /// over the next line's indentation: a re-encryption dropped `# why` or broke the file.
    #[test]
    fn comments_after_quoted_values_and_keys_after_block_scalars_are_kept() -> Result<(), String> {
        let text = "kind: SealedSecret\r\nspec:\r\n  encryptedData:\r\n    a: \"AAA=\"   # why\r\n    b: 'B''B'  # and\r\n    c: |\r\n      CCC=\r\n    d: DDD=\r\n";
        let found = find(text)?;
        let changes = vec![
            [("a", "X1"), ("b", "X2"), ("c", "X3"), ("d", "12")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ];
        let out = apply(text, &found, &changes)?;
        let want = text
            .replace("AAA=", "X1")
            .replace("B''B", "X2")
            .replace("CCC=", "X3")
            .replace("DDD=", "\"12\"");
        assert_eq!(out, want);
        Ok(())
    }

    #[test]
    fn the_quoting_helper_quotes_what_would_read_as_something_else() {
        for bare in [
            "a.b",
            "tls.crt",
            ".dockerconfigjson",
            "AgBy3i4OJSWK+PiTySYZZA==",
            "_x-y/z",
        ] {
            assert_eq!(scalar(bare, false), bare);
        }
        for quoted in [
            "on", "yes", "No", "123", "1.5", "#x", ": x", "", "-1", ".5", "~", "a b", "x: y",
        ] {
            assert_eq!(scalar(quoted, false), format!("{quoted:?}"));
        }
        assert_eq!(scalar("a.b", true), "\"a.b\"");
    }

    #[test]
    fn yaml_errors_and_aliases_are_reported() {
        assert!(find("kind: SealedSecret\n  bad: [\n").is_err());
        let aliased = "kind: SealedSecret\nmetadata: {name: a}\nspec:\n  encryptedData:\n    k: &v AAA\n    l: *v\n";
        let error = find(aliased).map(|_| ()).expect_err("aliases are refused");
        assert!(error.contains("aliases"), "{error}");
        let deep = format!("kind: SealedSecret\nspec:\n{}x\n", "- ".repeat(100_000));
        let error = find(&deep).map(|_| ()).expect_err("too deep");
        assert!(error.contains("deeper than"), "{error}");
        let anchored = "kind: SealedSecret\nspec:\n  encryptedData:\n    k: !!str AAA\n";
        let error = find(anchored).map(|_| ()).expect_err("tags are refused");
        assert!(error.contains("anchor or tag"), "{error}");
    }
}
