//! The format-neutral tree every store reads into and writes from (mirrors sops' TreeBranch).

/// A map key: a string, or a comment sitting between entries.
#[derive(Clone, Debug, PartialEq)]
pub enum Key {
    Str(String),
    Comment(String),
}

/// Ordered map entries; a `Key::Comment` entry carries `Value::Null`. Derefs to its entries,
/// and looks keys up in place (no copy of the map to ask a question).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Map(pub Vec<(Key, Value)>);

impl Map {
    /// The value of a string key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find_map(|(k, v)| match k {
            Key::Str(s) if s == key => Some(v),
            _ => None,
        })
    }

    /// Removes a string key and returns its value.
    pub fn take(&mut self, key: &str) -> Option<Value> {
        let pos = self
            .0
            .iter()
            .position(|(k, _)| matches!(k, Key::Str(s) if s == key))?;
        Some(self.0.remove(pos).1)
    }

    /// Sets a string key, appending it when absent.
    pub fn set(&mut self, key: &str, value: Value) {
        for (k, v) in self.0.iter_mut() {
            if matches!(k, Key::Str(s) if s == key) {
                *v = value;
                return;
            }
        }
        self.0.push((Key::Str(key.to_string()), value));
    }
}

impl std::ops::Deref for Map {
    type Target = Vec<(Key, Value)>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Map {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl From<Vec<(Key, Value)>> for Map {
    fn from(entries: Vec<(Key, Value)>) -> Self {
        Map(entries)
    }
}

impl FromIterator<(Key, Value)> for Map {
    fn from_iter<I: IntoIterator<Item = (Key, Value)>>(iter: I) -> Self {
        Map(iter.into_iter().collect())
    }
}

impl IntoIterator for Map {
    type Item = (Key, Value);
    type IntoIter = std::vec::IntoIter<(Key, Value)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Map {
    type Item = &'a (Key, Value);
    type IntoIter = std::slice::Iter<'a, (Key, Value)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// One node of a document.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// A string that is not valid UTF-8 (binary files).
    Bytes(Vec<u8>),
    /// A YAML timestamp, kept in Go's RFC 3339 (nanosecond) text form (sops type `time`).
    Time(String),
    /// A comment stored as a sequence element.
    Comment(String),
    Map(Map),
    Seq(Vec<Value>),
}

impl Value {
    /// Looks up a string key in a map value.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(m) => m.get(key),
            _ => None,
        }
    }

    /// The string content of a scalar (numbers and bools rendered), if scalar.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A scalar rendered as text, as dotenv/INI flattening does.
    pub fn scalar_text(&self) -> Option<String> {
        match self {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(crate::gonum::format_float_f(*f)),
            Value::Bool(b) => Some(b.to_string()),
            Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Value::Time(t) => Some(t.clone()),
            _ => None,
        }
    }
}

/// Builds a map from string keys, sorted as sops 3.13 writes its metadata.
pub fn sorted_map(mut entries: Vec<(String, Value)>) -> Value {
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Value::Map(entries.into_iter().map(|(k, v)| (Key::Str(k), v)).collect())
}

/// One step of a `set`/`unset` path such as `["a"][0]["b"]`.
#[derive(Clone, Debug, PartialEq)]
pub enum PathSeg {
    Key(String),
    Index(usize),
}

/// Parses sops' index path syntax: `["key"]` (or `['key']`) and `[0]` steps.
pub fn parse_index_path(s: &str) -> Result<Vec<PathSeg>, String> {
    let mut out = vec![];
    let mut rest = s.trim();
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[').ok_or("expected '['")?;
        if let Some(q) = inner.chars().next().filter(|c| *c == '"' || *c == '\'') {
            let body = &inner[1..];
            let mut key = String::new();
            let mut chars = body.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                if c == '\\' {
                    if let Some((_, n)) = chars.next() {
                        key.push(n);
                    }
                } else if c == q {
                    end = Some(i);
                    break;
                } else {
                    key.push(c);
                }
            }
            let end = end.ok_or("unterminated quoted key")?;
            rest = body[end + 1..]
                .strip_prefix(']')
                .ok_or("expected ']' after key")?;
            out.push(PathSeg::Key(key));
        } else {
            let close = inner.find(']').ok_or("expected ']'")?;
            let idx = inner[..close]
                .trim()
                .parse::<usize>()
                .map_err(|_| "index must be a number")?;
            out.push(PathSeg::Index(idx));
            rest = &inner[close + 1..];
        }
        rest = rest.trim_start();
    }
    if out.is_empty() {
        return Err("empty path".into());
    }
    Ok(out)
}

/// Sets the value at `path`, creating maps on the way; `[len]` appends to a list.
pub fn set_path(doc: &mut Map, path: &[PathSeg], v: Value) -> Result<(), String> {
    let mut root = Value::Map(std::mem::take(doc));
    let r = set_in(&mut root, path, v);
    if let Value::Map(m) = root {
        *doc = m;
    }
    r
}

fn set_in(node: &mut Value, path: &[PathSeg], v: Value) -> Result<(), String> {
    let Some((first, rest)) = path.split_first() else {
        *node = v;
        return Ok(());
    };
    match first {
        PathSeg::Key(k) => {
            if !matches!(node, Value::Map(_)) {
                *node = Value::Map(Map::default());
            }
            let Value::Map(m) = node else {
                return Err("not a map".into());
            };
            let pos = match m
                .iter()
                .position(|(kk, _)| matches!(kk, Key::Str(s) if s == k))
            {
                Some(p) => p,
                None => {
                    m.push((Key::Str(k.clone()), Value::Null));
                    m.len() - 1
                }
            };
            set_in(&mut m[pos].1, rest, v)
        }
        PathSeg::Index(i) => {
            let Value::Seq(s) = node else {
                return Err(format!("index [{i}] used on something that is not a list"));
            };
            let real: Vec<usize> = (0..s.len())
                .filter(|j| !matches!(s[*j], Value::Comment(_)))
                .collect();
            match real.get(*i) {
                Some(j) => set_in(&mut s[*j], rest, v),
                None if *i == real.len() => {
                    s.push(Value::Null);
                    let last = s.len() - 1;
                    set_in(&mut s[last], rest, v)
                }
                None => Err(format!("index [{i}] is out of range")),
            }
        }
    }
}

/// Removes the value at `path`.
pub fn unset_path(doc: &mut Map, path: &[PathSeg]) -> Result<(), String> {
    let mut root = Value::Map(std::mem::take(doc));
    let r = unset_in(&mut root, path);
    if let Value::Map(m) = root {
        *doc = m;
    }
    r
}

fn unset_in(node: &mut Value, path: &[PathSeg]) -> Result<(), String> {
    let Some((first, rest)) = path.split_first() else {
        return Err("empty path".into());
    };
    match (first, node) {
        (PathSeg::Key(k), Value::Map(m)) => {
            let pos = m
                .iter()
                .position(|(kk, _)| matches!(kk, Key::Str(s) if s == k))
                .ok_or_else(|| format!("key '{k}' not found"))?;
            if rest.is_empty() {
                m.remove(pos);
                Ok(())
            } else {
                unset_in(&mut m[pos].1, rest)
            }
        }
        (PathSeg::Index(i), Value::Seq(s)) => {
            let real: Vec<usize> = (0..s.len())
                .filter(|j| !matches!(s[*j], Value::Comment(_)))
                .collect();
            let j = *real
                .get(*i)
                .ok_or_else(|| format!("index [{i}] is out of range"))?;
            if rest.is_empty() {
                s.remove(j);
                Ok(())
            } else {
                unset_in(&mut s[j], rest)
            }
        }
        _ => Err("path does not match the document".into()),
    }
}

/// Overwrites every string in a tree (decrypted values, comments, keys) before it is freed.
pub fn wipe_map(m: &mut Map) {
    use zeroize::Zeroize;
    for (k, v) in m.iter_mut() {
        match k {
            Key::Str(s) | Key::Comment(s) => s.zeroize(),
        }
        wipe(v);
    }
}

/// Overwrites the strings of one value (see [`wipe_map`]).
pub fn wipe(v: &mut Value) {
    use zeroize::Zeroize;
    match v {
        Value::Str(s) | Value::Comment(s) | Value::Time(s) => s.zeroize(),
        Value::Bytes(b) => b.zeroize(),
        Value::Map(m) => wipe_map(m),
        Value::Seq(items) => items.iter_mut().for_each(wipe),
        Value::Int(i) => *i = 0,
        Value::Float(f) => *f = 0.0,
        Value::Bool(b) => *b = false,
        Value::Null => {}
    }
}
