//! Flattening of the metadata block for dotenv and INI (`age__list_0__map_enc`).

use crate::error::{Error, Result};
use crate::value::{Key, Map, Value};

/// Highest list position a flattened metadata key may name. File text chooses the position,
/// and the list is filled up to it: without a bound one line could ask for billions of entries.
const MAX_LIST_INDEX: usize = 10_000;

/// Flattens a metadata map into `name = text` pairs, sorted by name (as sops writes them).
pub fn flatten(meta: &Value) -> Vec<(String, String)> {
    let mut out = vec![];
    if let Value::Map(m) = meta {
        for (k, v) in m {
            if let Key::Str(k) = k {
                walk(v, k, &mut out);
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn walk(v: &Value, prefix: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Map(m) => {
            for (k, v) in m {
                if let Key::Str(k) = k {
                    walk(v, &format!("{prefix}__map_{k}"), out);
                }
            }
        }
        Value::Seq(s) => {
            for (i, v) in s.iter().enumerate() {
                walk(v, &format!("{prefix}__list_{i}"), out);
            }
        }
        Value::Null => {}
        other => {
            if let Some(t) = other.scalar_text() {
                out.push((prefix.to_string(), t));
            }
        }
    }
}

enum Seg {
    Map(String),
    List(usize),
}

fn segments(name: &str) -> Result<Vec<Seg>> {
    let mut segs = vec![];
    let (head, mut rest) = match name
        .find("__map_")
        .into_iter()
        .chain(name.find("__list_"))
        .min()
    {
        Some(p) => (&name[..p], &name[p..]),
        None => (name, ""),
    };
    segs.push(Seg::Map(head.to_string()));
    while !rest.is_empty() {
        let (is_map, body) = if let Some(b) = rest.strip_prefix("__map_") {
            (true, b)
        } else if let Some(b) = rest.strip_prefix("__list_") {
            (false, b)
        } else {
            break;
        };
        let end = body
            .find("__map_")
            .into_iter()
            .chain(body.find("__list_"))
            .min()
            .unwrap_or(body.len());
        let part = &body[..end];
        rest = &body[end..];
        if is_map {
            segs.push(Seg::Map(part.to_string()));
        } else {
            let i = part.parse().unwrap_or(0);
            if i > MAX_LIST_INDEX {
                return Err(Error::Metadata(format!(
                    "metadata key '{}' names list position {i} (at most {MAX_LIST_INDEX})",
                    name.chars().take(100).collect::<String>()
                )));
            }
            segs.push(Seg::List(i));
        }
    }
    Ok(segs)
}

/// Nodes the whole metadata block may grow to while list gaps are filled.
const MAX_NODES: usize = 100_000;

fn insert(node: &mut Value, segs: &[Seg], val: &str, budget: &mut usize) -> Result<()> {
    let Some((first, rest)) = segs.split_first() else {
        *node = Value::Str(val.to_string());
        return Ok(());
    };
    let next_default = || match rest.first() {
        Some(Seg::List(_)) => Value::Seq(vec![]),
        Some(Seg::Map(_)) => Value::Map(Map::default()),
        None => Value::Null,
    };
    match first {
        Seg::Map(k) => {
            if !matches!(node, Value::Map(_)) {
                *node = Value::Map(Map::default());
            }
            if let Value::Map(m) = node {
                let pos = match m
                    .iter()
                    .position(|(kk, _)| matches!(kk, Key::Str(s) if s == k))
                {
                    Some(p) => p,
                    None => {
                        m.push((Key::Str(k.clone()), next_default()));
                        m.len() - 1
                    }
                };
                insert(&mut m[pos].1, rest, val, budget)?;
            }
        }
        Seg::List(i) => {
            if !matches!(node, Value::Seq(_)) {
                *node = Value::Seq(vec![]);
            }
            if let Value::Seq(s) = node {
                while s.len() <= *i {
                    *budget = budget.checked_sub(1).ok_or_else(|| {
                        Error::Metadata(format!(
                            "the metadata block needs more than {MAX_NODES} entries"
                        ))
                    })?;
                    s.push(next_default());
                }
                insert(&mut s[*i], rest, val, budget)?;
            }
        }
    }
    Ok(())
}

/// Rebuilds the metadata map from flattened pairs (values stay strings).
pub fn unflatten(pairs: &[(String, String)]) -> Result<Value> {
    let mut root = Value::Map(Map::default());
    let mut budget = MAX_NODES;
    for (k, v) in pairs {
        insert(&mut root, &segments(k)?, v, &mut budget)?;
    }
    Ok(root)
}
