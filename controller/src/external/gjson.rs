//! gjson path syntax (github.com/tidwall/gjson), as ESO resolves `remoteRef.property` and
//! `dataFrom.extract.property`: `a.b`, `a\.b` (escaped dot), `arr.0`, `arr.#` (length),
//! `arr.#.name` (map over elements), `#(name=="x").value` and `#(age>40)#` (first / every
//! match; `== != < <= > >= %` like-match and `!%`), `*` and `?` wildcards in keys, `@this`,
//! and `|` as a separator. Not supported (no match): other `@` modifiers, nested queries,
//! multipaths (`{..}`, `[..]`) and literals (`!true`). Wildcards see object keys in sorted
//! order (serde_json's), where gjson sees document order.
//!
//! Bounded for hostile paths: at most [`MAX_PATH`] bytes and [`MAX_DEPTH`] nested queries.
//! Pure: no I/O, no logging; values never reach an error.

use serde_json::Value;

/// Longest path accepted (a property is a short string in a spec).
pub const MAX_PATH: usize = 4096;
/// Deepest nesting of `#.` maps and queries.
pub const MAX_DEPTH: usize = 16;

/// The value at `path` in `root`, or `None` when nothing matches.
pub fn get(root: &Value, path: &str) -> Option<Value> {
    if path.len() > MAX_PATH {
        return None;
    }
    let parts = split(path)?;
    walk(root, &parts, 0)
}

/// One path component.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    /// A key (unescaped), possibly with wildcards; on arrays also an index.
    Key {
        text: String,
        wild: bool,
    },
    /// `#`: the length, or with more parts, the rest mapped over every element.
    Count,
    /// `#(...)` (first match) or `#(...)#` (every match).
    Query {
        query: Query,
        all: bool,
    },
    This,
}

#[derive(Debug, Clone, PartialEq)]
struct Query {
    /// Path inside the element (empty: the element itself).
    path: Vec<Part>,
    /// Operator and literal; `None` checks only that `path` exists.
    test: Option<(Op, Value)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    NotLike,
}

/// Splits a path at unescaped `.` and `|`, keeping `#(...)` queries whole.
fn split(path: &str) -> Option<Vec<Part>> {
    let mut parts = Vec::new();
    let chars: Vec<char> = path.chars().collect();
    let mut i = 0;
    while i <= chars.len() {
        if chars.get(i) == Some(&'#') && chars.get(i + 1) == Some(&'(') {
            let (query, end) = query(&chars, i + 2)?;
            let all = chars.get(end) == Some(&'#');
            let next = if all { end + 1 } else { end };
            parts.push(Part::Query { query, all });
            match chars.get(next) {
                None => return Some(parts),
                Some('.') | Some('|') => i = next + 1,
                Some(_) => return None,
            }
            continue;
        }
        let mut text = String::new();
        let mut wild = false;
        while let Some(&c) = chars.get(i) {
            match c {
                '\\' => {
                    i += 1;
                    if let Some(&e) = chars.get(i) {
                        text.push(e);
                    }
                }
                '.' | '|' => break,
                '*' | '?' => {
                    wild = true;
                    text.push(c);
                }
                _ => text.push(c),
            }
            i += 1;
        }
        parts.push(match text.as_str() {
            "#" if !wild => Part::Count,
            "@this" => Part::This,
            _ => Part::Key { text, wild },
        });
        i += 1;
    }
    Some(parts)
}

/// Parses the inside of `#(` ... `)` starting at `start`; returns the query and the index
/// after the closing parenthesis.
fn query(chars: &[char], start: usize) -> Option<(Query, usize)> {
    // Find the closing parenthesis outside quotes.
    let mut i = start;
    let mut in_str = false;
    while let Some(&c) = chars.get(i) {
        match c {
            '\\' if in_str => i += 1,
            '"' => in_str = !in_str,
            ')' if !in_str => break,
            '(' if !in_str => return None, // nested queries are not supported
            _ => {}
        }
        i += 1;
    }
    if chars.get(i) != Some(&')') {
        return None;
    }
    let inner: String = chars[start..i].iter().collect();
    let ops = [
        ("!%", Op::NotLike),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("<", Op::Lt),
        (">", Op::Gt),
        ("%", Op::Like),
        ("=", Op::Eq),
    ];
    let found = ops
        .iter()
        .filter_map(|(tok, op)| inner.find(tok).map(|at| (at, *tok, *op)))
        .min_by_key(|(at, tok, _)| (*at, std::cmp::Reverse(tok.len())));
    let (path_text, test) = match found {
        Some((at, tok, op)) => {
            let literal = inner[at + tok.len()..].trim();
            let value: Value = serde_json::from_str(literal).ok()?;
            (inner[..at].trim().to_string(), Some((op, value)))
        }
        None => (inner.trim().to_string(), None),
    };
    let path = if path_text.is_empty() {
        Vec::new()
    } else {
        split(&path_text)?
    };
    Some((Query { path, test }, i + 1))
}

fn walk(cur: &Value, parts: &[Part], depth: usize) -> Option<Value> {
    if depth > MAX_DEPTH {
        return None;
    }
    let Some((part, rest)) = parts.split_first() else {
        return Some(cur.clone());
    };
    match part {
        Part::This => walk(cur, rest, depth),
        Part::Key { text, wild } => {
            let next = match cur {
                Value::Object(m) if *wild => {
                    m.iter().find(|(k, _)| like(k, text)).map(|(_, v)| v)?
                }
                Value::Object(m) => m.get(text)?,
                Value::Array(a) if !*wild => a.get(text.parse::<usize>().ok()?)?,
                _ => return None,
            };
            walk(next, rest, depth)
        }
        Part::Count => {
            let Value::Array(a) = cur else { return None };
            if rest.is_empty() {
                return Some(Value::from(a.len()));
            }
            let mapped = a.iter().filter_map(|v| walk(v, rest, depth + 1)).collect();
            Some(Value::Array(mapped))
        }
        Part::Query { query, all } => {
            let Value::Array(a) = cur else { return None };
            let mut hits = a.iter().filter(|v| matches(v, query, depth + 1));
            if *all {
                let mapped = hits.filter_map(|v| walk(v, rest, depth + 1)).collect();
                Some(Value::Array(mapped))
            } else {
                walk(hits.next()?, rest, depth)
            }
        }
    }
}

fn matches(elem: &Value, q: &Query, depth: usize) -> bool {
    let Some(found) = walk(elem, &q.path, depth) else {
        return false;
    };
    let Some((op, literal)) = &q.test else {
        return true;
    };
    match (&found, literal) {
        (Value::String(a), Value::String(b)) => match op {
            Op::Eq => a == b,
            Op::Ne => a != b,
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Like => like(a, b),
            Op::NotLike => !like(a, b),
        },
        (Value::Number(a), Value::Number(b)) => {
            let (Some(a), Some(b)) = (a.as_f64(), b.as_f64()) else {
                return false;
            };
            match op {
                Op::Eq => a == b,
                Op::Ne => a != b,
                Op::Lt => a < b,
                Op::Le => a <= b,
                Op::Gt => a > b,
                Op::Ge => a >= b,
                Op::Like | Op::NotLike => false,
            }
        }
        (a, b) => match op {
            Op::Eq => a == b,
            Op::Ne => a != b,
            _ => false,
        },
    }
}

/// gjson's wildcard match: `*` any run, `?` one character. Iterative, so no pattern can make
/// it recurse or backtrack exponentially.
fn like(text: &str, pattern: &str) -> bool {
    let t: Vec<char> = text.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    let (mut ti, mut pi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                ti += 1;
                pi += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The example document and paths of gjson's README (the syntax ESO's docs point to).
    const DOC: &str = r#"{
  "name": {"first": "Tom", "last": "Anderson"},
  "age":37,
  "children": ["Sara","Alex","Jack"],
  "fav.movie": "Deer Hunter",
  "friends": [
    {"first": "Dale", "last": "Murphy", "age": 44, "nets": ["ig", "fb", "tw"]},
    {"first": "Roger", "last": "Craig", "age": 68, "nets": ["fb", "tw"]},
    {"first": "Jane", "last": "Murphy", "age": 47, "nets": ["ig", "tw"]}
  ]
}"#;

    fn at(path: &str) -> Option<String> {
        let doc: Value = serde_json::from_str(DOC).unwrap();
        get(&doc, path).map(|v| match v {
            Value::String(s) => s,
            other => other.to_string(),
        })
    }

    #[test]
    fn readme_path_table() {
        let table: &[(&str, Option<&str>)] = &[
            ("name.last", Some("Anderson")),
            ("age", Some("37")),
            ("children", Some(r#"["Sara","Alex","Jack"]"#)),
            ("children.#", Some("3")),
            ("children.1", Some("Alex")),
            ("child*.2", Some("Jack")),
            ("c?ildren.0", Some("Sara")),
            ("fav\\.movie", Some("Deer Hunter")),
            ("friends.#.first", Some(r#"["Dale","Roger","Jane"]"#)),
            ("friends.1.last", Some("Craig")),
            (r#"friends.#(last=="Murphy").first"#, Some("Dale")),
            (
                r#"friends.#(last=="Murphy")#.first"#,
                Some(r#"["Dale","Jane"]"#),
            ),
            ("friends.#(age>45)#.last", Some(r#"["Craig","Murphy"]"#)),
            (r#"friends.#(first%"D*").last"#, Some("Murphy")),
            (r#"friends.#(first!%"D*").last"#, Some("Craig")),
            ("name.@this.first", Some("Tom")),
            ("@this.age", Some("37")),
            ("name|first", Some("Tom")),
            ("friends.#(age)#.age", Some("[44,68,47]")),
            ("name.middle", None),
            ("children.9", None),
            ("friends.#(last==\"Nobody\").first", None),
            ("friends.#(nets.#(==\"fb\"))#.first", None),
        ];
        for (path, want) in table {
            assert_eq!(at(path).as_deref(), *want, "path {path}");
        }
    }

    #[test]
    fn hostile_paths_are_bounded() {
        let doc: Value = serde_json::from_str(DOC).unwrap();
        assert!(get(&doc, &"a.".repeat(MAX_PATH)).is_none());
        let deep = "#.".repeat(MAX_DEPTH + 2) + "x";
        let nested: Value = serde_json::from_str(&"[".repeat(40)).unwrap_or(Value::Null);
        assert!(get(&nested, &deep).is_none());
        assert!(get(&doc, "friends.#(").is_none());
        assert!(get(&doc, "friends.#(first==unquoted)").is_none());
        assert!(like(&"a".repeat(2000), &"*a".repeat(500)));
        assert!(!like(&"a".repeat(2000), &("*a".repeat(500) + "b")));
    }
}
