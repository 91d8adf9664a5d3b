//! `--merge-into`: set values in a SealedSecret file by editing its text, so that everything the
//! merge does not change (comments, quoting, order, blank lines, document markers, line endings,
//! other documents) stays byte for byte as it was.

use std::collections::BTreeMap;
use std::ops::Range;

use saphyr_parser::ScalarStyle;
use serde_json::Value;

use crate::rewrite::{self, Node};

/// What a merge sets under one key: a string, or entries of a mapping (created when missing).
#[derive(Debug, Clone)]
pub enum Change {
    Set(String),
    Merge(Changes),
}

pub type Changes = BTreeMap<String, Change>;

/// Why a file cannot be merged into.
#[derive(Debug)]
pub enum Refusal {
    /// Not exactly one SealedSecret, or not readable: the merge must fail.
    Invalid(String),
    /// A valid SealedSecret whose text this module does not edit (YAML aliases, anchors or tags
    /// where it would write, a value that is not a mapping where one is needed, a block scalar
    /// to replace): it can still be merged by re-serialising the document.
    NotInPlace(String),
}

/// The one SealedSecret of a file.
pub struct Target {
    pub object: Value,
    documents: Vec<(usize, Node)>,
    /// Index into `documents` of the document holding the SealedSecret.
    document: usize,
}

/// Finds the SealedSecret to merge into: the file must hold exactly one (other documents are
/// left alone).
pub fn find_target(text: &str) -> Result<Target, Refusal> {
    let documents = rewrite::documents(text).map_err(Refusal::Invalid)?;
    let found = rewrite::sealed_secret_nodes(&documents);
    let (document, object, aliased) = match found.as_slice() {
        [(_, document, node)] => (*document, rewrite::to_json(node), rewrite::has_alias(node)),
        [] => return Err(Refusal::Invalid("no SealedSecret in the file".into())),
        more => {
            return Err(Refusal::Invalid(format!(
                "{} SealedSecrets in the file; --merge-into needs exactly one",
                more.len()
            )));
        }
    };
    if aliased {
        return Err(Refusal::NotInPlace("it uses YAML aliases".into()));
    }
    Ok(Target {
        object,
        documents,
        document,
    })
}

/// `object` with `changes` applied: what the merged file must read back as.
fn apply_to_value(object: &mut Value, changes: &Changes) {
    if !object.is_object() {
        *object = Value::Object(Default::default());
    }
    let Value::Object(map) = object else {
        return;
    };
    for (key, change) in changes {
        match change {
            Change::Set(value) => {
                map.insert(key.clone(), Value::String(value.clone()));
            }
            Change::Merge(inner) => {
                apply_to_value(map.entry(key.clone()).or_insert(Value::Null), inner)
            }
        }
    }
}

/// `text` with `changes` made to its SealedSecret in place. The result is parsed again: its
/// SealedSecret must read back as the object with the changes applied, and the other documents
/// as they were.
pub fn merge(text: &str, target: &Target, changes: &Changes) -> Result<String, Refusal> {
    let not_in_place = Refusal::NotInPlace;
    let node = rewrite::sealed_secret_nodes(&target.documents)
        .into_iter()
        .map(|(_, _, node)| node)
        .next()
        .ok_or_else(|| not_in_place("the SealedSecret is gone".into()))?;
    let mut editor = Editor {
        text,
        eol: if text.contains("\r\n") { "\r\n" } else { "\n" },
        json: text.trim_start().starts_with('{'),
        step: indent_step(text, node).unwrap_or(2),
        edits: Vec::new(),
    };
    editor.merge_mapping(node, None, changes)?;
    let out = rewrite::splice(text, editor.edits).map_err(not_in_place)?;

    let mut expected = target.object.clone();
    apply_to_value(&mut expected, changes);
    let check = || -> Result<(), String> {
        let again = find_target(&out).map_err(|e| match e {
            Refusal::Invalid(e) | Refusal::NotInPlace(e) => e,
        })?;
        if again.object != expected {
            return Err("the edited SealedSecret does not read back as the merged one".into());
        }
        let others = |target: &Target| -> Vec<Value> {
            (target.documents.iter().enumerate())
                .filter(|(index, _)| *index != target.document)
                .map(|(_, (number, node))| serde_json::json!([number, rewrite::to_json(node)]))
                .collect()
        };
        if again.document != target.document || others(&again) != others(target) {
            return Err("the edit changed another document".into());
        }
        Ok(())
    };
    check().map_err(|e| not_in_place(format!("editing the text in place failed: {e}")))?;
    Ok(out)
}

/// Edits to `text`, made at once at the end.
struct Editor<'t> {
    text: &'t str,
    eol: &'static str,
    /// JSON: new keys and values are double-quoted.
    json: bool,
    /// How many spaces each nesting level of block mappings indents by in this file.
    step: usize,
    /// Replaced ranges (empty for insertions), in the order they were planned.
    edits: Vec<(Range<usize>, String)>,
}

/// Refuses to edit this node in place.
fn refuse<T>(why: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal::NotInPlace(why.into()))
}

fn is_null(node: &Node) -> bool {
    matches!(node, Node::Scalar { value, style: ScalarStyle::Plain, decorated: false, .. }
        if matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL"))
}

fn key_of(node: &Node) -> Option<&str> {
    match node {
        Node::Scalar { value, .. } => Some(value),
        _ => None,
    }
}

impl Editor<'_> {
    fn merge_mapping(
        &mut self,
        node: &Node,
        parent_key: Option<&Node>,
        changes: &Changes,
    ) -> Result<(), Refusal> {
        let Node::Mapping { entries, flow, .. } = node else {
            return refuse("a value to merge into is not a mapping");
        };
        let mut new = Vec::new();
        for (key, change) in changes {
            let Some((found_key, value)) = entries.iter().find(|(k, _)| key_of(k) == Some(key))
            else {
                new.push((key, change));
                continue;
            };
            match (change, value) {
                (
                    Change::Set(_),
                    Node::Scalar {
                        decorated: true, ..
                    },
                ) => {
                    return refuse(format!("{key:?} has a YAML anchor or tag"));
                }
                (
                    Change::Set(_),
                    Node::Scalar {
                        style: ScalarStyle::Literal | ScalarStyle::Folded,
                        ..
                    },
                ) => return refuse(format!("{key:?} is a block scalar")),
                // `key:` with nothing after it: the value goes after the colon.
                (Change::Set(new_value), Node::Scalar { range, .. }) if range.is_empty() => {
                    let rest = self.text.get(range.start..).unwrap_or_default();
                    let colon = (rest.find(':'))
                        .filter(|&at| rest[..at].trim().is_empty())
                        .ok_or_else(|| Refusal::NotInPlace(format!("cannot locate {key:?}")))?;
                    let at = range.start + colon + 1;
                    self.edits
                        .push((at..at, format!(" {}", self.scalar(new_value))));
                }
                (Change::Set(new_value), Node::Scalar { style, range, .. }) => {
                    let text = (self.text.get(range.clone()))
                        .and_then(|original| rewrite::replacement(original, *style, new_value))
                        .ok_or_else(|| Refusal::NotInPlace(format!("cannot locate {key:?}")))?;
                    self.edits.push((range.clone(), text));
                }
                (Change::Merge(inner), Node::Mapping { entries, .. })
                    if !entries.is_empty() || *flow =>
                {
                    self.merge_mapping(value, Some(found_key), inner)?;
                }
                (Change::Merge(inner), _)
                    if is_null(value) || matches!(value, Node::Mapping { .. }) =>
                {
                    self.fill(found_key, value, *flow, inner)?;
                }
                _ => return refuse(format!("{key:?} holds something else than expected")),
            }
        }
        self.insert(node, parent_key, &new)
    }

    /// Puts `changes` as the value of `key`, whose value is null or an empty flow mapping.
    fn fill(
        &mut self,
        key: &Node,
        value: &Node,
        in_flow: bool,
        changes: &Changes,
    ) -> Result<(), Refusal> {
        let value_range = match value {
            Node::Scalar { range, .. } | Node::Mapping { range, .. } => range.clone(),
            _ => return refuse("unexpected value"),
        };
        if in_flow {
            if value_range.is_empty() {
                return refuse("an empty value in a flow mapping");
            }
            let flow = self.flow_mapping(changes);
            self.edits.push((value_range, flow));
            return Ok(());
        }
        let key_end = key.end(self.text);
        let mut after = key_end;
        if !value_range.is_empty() {
            // `key: ~` or `key: {}` becomes `key:`, the entries follow on their own lines.
            if self.text.get(key_end..value_range.start).map(str::trim) != Some(":") {
                return refuse("a tag or anchor between a key and its value");
            }
            self.edits.push((key_end..value_range.end, ":".into()));
            after = value_range.end;
        }
        let indent = self.column(key.start()) + self.step;
        let lines = self.block_lines(changes, indent);
        self.insert_lines(self.line_end(after), lines);
        Ok(())
    }

    /// Adds the `new` entries to `mapping`: where they keep sorted keys sorted (as kubeseal and
    /// Bitnami's kubeseal write them), else after the last entry. A new entry goes right after
    /// the entry it follows, so a comment above an existing key stays above that key.
    fn insert(
        &mut self,
        mapping: &Node,
        parent_key: Option<&Node>,
        new: &[(&String, &Change)],
    ) -> Result<(), Refusal> {
        let Node::Mapping {
            entries,
            flow,
            range,
        } = mapping
        else {
            return refuse("not a mapping");
        };
        if new.is_empty() {
            return Ok(());
        }
        let keys: Vec<Option<&str>> = entries.iter().map(|(k, _)| key_of(k)).collect();
        let sorted = keys.windows(2).all(|pair| match pair {
            [Some(a), Some(b)] => a < b,
            _ => false,
        }) && keys.iter().all(Option::is_some);
        let follows = |key: &str| -> Option<usize> {
            if sorted {
                keys.iter().rposition(|k| k.is_some_and(|k| k < key))
            } else {
                entries.len().checked_sub(1)
            }
        };
        let Some((first_key, _)) = entries.first() else {
            if !flow {
                return refuse("an empty block mapping");
            }
            let changes: Changes = new
                .iter()
                .map(|(k, c)| ((*k).clone(), (*c).clone()))
                .collect();
            let flow = self.flow_mapping(&changes);
            self.edits.push((range.clone(), flow));
            return Ok(());
        };
        if *flow {
            // One line per entry when the first entry has a line of its own (pretty JSON).
            let separator = if self.line_start(first_key.start()) > range.start {
                format!("{}{}", self.eol, " ".repeat(self.column(first_key.start())))
            } else {
                " ".into()
            };
            for (key, change) in new {
                let entry = self.flow_entry(key, change);
                match follows(key) {
                    Some(index) => self.edits.push((
                        entries[index].1.end(self.text)..entries[index].1.end(self.text),
                        format!(",{separator}{entry}"),
                    )),
                    None => self.edits.push((
                        first_key.start()..first_key.start(),
                        format!("{entry},{separator}"),
                    )),
                }
            }
            return Ok(());
        }
        let column = self.column(first_key.start());
        let first_line = self.line_start(first_key.start());
        for (key, change) in new {
            let lines = self.block_entry(key, change, column);
            let at = match (follows(key), parent_key) {
                (Some(index), _) => self.line_end(self.entry_end(&entries[index])),
                // Before the first entry: right under the parent key, above any comment that
                // belongs to the first entry.
                (None, Some(parent)) => self.line_end(parent.end(self.text)),
                (None, None) if self.text[first_line..first_key.start()].trim().is_empty() => {
                    first_line
                }
                (None, None) => self.line_end(self.entry_end(&entries[0])),
            };
            self.insert_lines(at, lines);
        }
        Ok(())
    }

    /// Where an entry's text ends (an empty value ends with its key).
    fn entry_end(&self, (key, value): &(Node, Node)) -> usize {
        match value {
            Node::Scalar { value, range, .. } if value.is_empty() && range.is_empty() => {
                key.end(self.text)
            }
            value => value.end(self.text).max(key.end(self.text)),
        }
    }

    fn line_start(&self, at: usize) -> usize {
        self.text[..at].rfind('\n').map_or(0, |i| i + 1)
    }

    /// After the line break that ends the line `at` is on (the end of the text if none).
    fn line_end(&self, at: usize) -> usize {
        self.text[at..]
            .find('\n')
            .map_or(self.text.len(), |i| at + i + 1)
    }

    /// Characters from the start of the line to `at` (YAML indents by characters).
    fn column(&self, at: usize) -> usize {
        self.text[self.line_start(at)..at].chars().count()
    }

    fn insert_lines(&mut self, at: usize, lines: Vec<String>) {
        let text = if at == self.text.len() && !self.text.ends_with('\n') {
            lines.iter().map(|l| format!("{}{l}", self.eol)).collect()
        } else {
            lines.iter().map(|l| format!("{l}{}", self.eol)).collect()
        };
        self.edits.push((at..at, text));
    }

    fn scalar(&self, value: &str) -> String {
        rewrite::scalar(value, self.json)
    }

    fn block_entry(&self, key: &str, change: &Change, column: usize) -> Vec<String> {
        let key = format!("{}{}:", " ".repeat(column), self.scalar(key));
        match change {
            Change::Set(value) => vec![format!("{key} {}", self.scalar(value))],
            Change::Merge(inner) => {
                let mut lines = vec![key];
                lines.extend(self.block_lines(inner, column + self.step));
                lines
            }
        }
    }

    fn block_lines(&self, changes: &Changes, column: usize) -> Vec<String> {
        (changes.iter())
            .flat_map(|(key, change)| self.block_entry(key, change, column))
            .collect()
    }

    fn flow_entry(&self, key: &str, change: &Change) -> String {
        let value = match change {
            Change::Set(value) => self.scalar(value),
            Change::Merge(inner) => self.flow_mapping(inner),
        };
        format!("{}: {value}", self.scalar(key))
    }

    fn flow_mapping(&self, changes: &Changes) -> String {
        let entries: Vec<String> = (changes.iter())
            .map(|(key, change)| self.flow_entry(key, change))
            .collect();
        format!("{{{}}}", entries.join(", "))
    }
}

/// The file's indentation step: how much deeper a block mapping's entries sit than the key
/// holding it, at the first such place in the SealedSecret.
fn indent_step(text: &str, node: &Node) -> Option<usize> {
    let Node::Mapping {
        entries,
        flow: false,
        ..
    } = node
    else {
        return None;
    };
    let column = |at: usize| {
        text[..at]
            .rsplit('\n')
            .next()
            .map_or(0, |l| l.chars().count())
    };
    entries.iter().find_map(|(key, value)| match value {
        Node::Mapping {
            entries: inner,
            flow: false,
            ..
        } => match inner.first() {
            Some((inner_key, _)) => {
                let (outer, inner) = (column(key.start()), column(inner_key.start()));
                let own_line = (text.get(key.start()..inner_key.start()))
                    .is_some_and(|between| between.contains('\n'));
                (inner > outer && own_line)
                    .then(|| inner - outer)
                    .or_else(|| indent_step(text, value))
            }
            None => None,
        },
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(entries: &[(&str, &str)]) -> Changes {
        (entries.iter())
            .map(|(k, v)| (k.to_string(), Change::Set(v.to_string())))
            .collect()
    }

    fn values(entries: &[(&str, &str)]) -> Changes {
        Changes::from([(
            "spec".into(),
            Change::Merge(Changes::from([(
                "encryptedData".into(),
                Change::Merge(set(entries)),
            )])),
        )])
    }

    fn merged(text: &str, changes: &Changes) -> Result<String, String> {
        let target = find_target(text).map_err(|e| format!("{e:?}"))?;
        merge(text, &target, changes).map_err(|e| format!("{e:?}"))
    }

    #[test]
    fn flow_mappings_get_entries_inline() -> Result<(), String> {
        let text = "kind: SealedSecret\nspec: {encryptedData: {b: B, d: D}}  # one line\n";
        let out = merged(text, &values(&[("a", "A"), ("c", "C"), ("e", "on")]))?;
        assert_eq!(
            out,
            "kind: SealedSecret\nspec: {encryptedData: {a: A, b: B, c: C, d: D, e: \"on\"}}  # one line\n"
        );
        Ok(())
    }

    #[test]
    fn unsorted_keys_get_new_ones_at_the_end_and_list_items_are_found() -> Result<(), String> {
        let text = "kind: List\nitems:\n- kind: SealedSecret\n  spec:\n    encryptedData:\n      z: Z\n      a: A\n    # after\n";
        let out = merged(text, &values(&[("m", "M"), ("a", "A2")]))?;
        assert_eq!(
            out,
            "kind: List\nitems:\n- kind: SealedSecret\n  spec:\n    encryptedData:\n      z: Z\n      a: A2\n      m: M\n    # after\n"
        );
        Ok(())
    }

    #[test]
    fn missing_spec_and_null_values_are_filled() -> Result<(), String> {
        let out = merged(
            "kind: SealedSecret\nmetadata: {name: n}\n",
            &values(&[("k", "V")]),
        )?;
        assert_eq!(
            out,
            "kind: SealedSecret\nmetadata: {name: n}\nspec:\n  encryptedData:\n    k: V\n"
        );
        let out = merged(
            "kind: SealedSecret\nspec:\n   encryptedData: ~ # later\n   x: 1\n",
            &values(&[("k", "V")]),
        )?;
        assert_eq!(
            out,
            "kind: SealedSecret\nspec:\n   encryptedData: # later\n      k: V\n   x: 1\n"
        );
        let out = merged(
            "kind: SealedSecret\nspec:\n  encryptedData:\n    k:   # empty\n    z: Z\n",
            &values(&[("k", "V")]),
        )?;
        assert_eq!(
            out,
            "kind: SealedSecret\nspec:\n  encryptedData:\n    k: V   # empty\n    z: Z\n"
        );
        Ok(())
    }

    #[test]
    fn what_cannot_be_edited_in_place_is_said() {
        let refused = |text: &str| match find_target(text)
            .and_then(|target| merge(text, &target, &values(&[("k", "V")])))
        {
            Err(Refusal::NotInPlace(why)) => why,
            other => panic!("{other:?}"),
        };
        let block = refused("kind: SealedSecret\nspec:\n  encryptedData:\n    k: |\n      OLD\n");
        assert!(block.contains("block scalar"), "{block}");
        let list = refused("kind: SealedSecret\nspec:\n  encryptedData: []\n");
        assert!(list.contains("something else"), "{list}");
        assert!(matches!(
            find_target("kind: ConfigMap\n"),
            Err(Refusal::Invalid(_))
        ));
    }
}
