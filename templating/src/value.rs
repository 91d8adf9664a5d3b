//! Template values, shaped after the Go types ESO's templates see: secret data arrives as
//! `map[string]string` (strings are byte strings, binary survives), JSON/YAML decoding gives
//! `map[string]interface{}`, `[]interface{}`, `float64`, `bool` and nil, and Sprig adds ints.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use zeroize::Zeroizing;

/// A Go string: any bytes, wiped when the last reference drops.
pub(crate) type Bytes = Rc<Zeroizing<Vec<u8>>>;

#[derive(Debug, Clone)]
pub(crate) enum Value {
    /// Go's untyped nil (an empty `interface{}`).
    Nil,
    Bool(bool),
    Int(i64),
    /// Sprig's arithmetic returns int64, which Go keeps apart from int: it prints the same but
    /// is not accepted where a function takes an `int`, and `duration` reads only int64.
    Int64(i64),
    Float(f64),
    Str(Bytes),
    List(Rc<Vec<Value>>),
    /// Shared and mutable, as a Go map: Sprig's `set` changes the dict a variable holds.
    Map(Rc<RefCell<Map>>),
    /// A Go struct a Sprig function returns: `time.Time`, `*semver.Version`, a certificate.
    Object(Rc<Object>),
}

/// Go values with fields (or field-like methods) and their own printed form.
#[derive(Debug, Clone)]
pub(crate) enum Object {
    Time(crate::objects::GoTime),
    Version(crate::objects::Version),
    /// Sprig's `certificate{Cert, Key string}`.
    Certificate {
        cert: Bytes,
        key: Bytes,
    },
}

impl Object {
    pub fn type_name(&self) -> &'static str {
        match self {
            Object::Time(_) => "time.Time",
            Object::Version(_) => "*semver.Version",
            Object::Certificate { .. } => "sprig.certificate",
        }
    }

    /// What `.Name` gives: a struct field or a method without arguments.
    pub fn field(&self, name: &str) -> Option<Value> {
        match self {
            Object::Time(t) => t.field(name),
            Object::Version(v) => v.field(name),
            Object::Certificate { cert, key } => match name {
                "Cert" => Some(Value::Str(cert.clone())),
                "Key" => Some(Value::Str(key.clone())),
                _ => None,
            },
        }
    }

    /// fmt's `%v`: the String method where Go has one, else `{field field}`.
    pub fn display(&self) -> Vec<u8> {
        match self {
            Object::Time(t) => t.to_string().into_bytes(),
            Object::Version(v) => v.to_string().into_bytes(),
            Object::Certificate { cert, key } => {
                let mut out = Vec::with_capacity(cert.len() + key.len() + 3);
                out.push(b'{');
                out.extend_from_slice(cert);
                out.push(b' ');
                out.extend_from_slice(key);
                out.push(b'}');
                out
            }
        }
    }

    /// encoding/json: times as RFC 3339, versions as their string, certificates as objects.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Object::Time(t) => serde_json::Value::String(t.rfc3339()),
            Object::Version(v) => serde_json::Value::String(v.to_string()),
            Object::Certificate { cert, key } => serde_json::json!({
                "Cert": String::from_utf8_lossy(cert),
                "Key": String::from_utf8_lossy(key),
            }),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Map {
    pub entries: BTreeMap<String, Value>,
    /// `map[string]string` (the secret data): a missing key indexes to "" rather than nil.
    pub string_values: bool,
}

impl Value {
    pub fn str(bytes: impl Into<Vec<u8>>) -> Value {
        Value::Str(Rc::new(Zeroizing::new(bytes.into())))
    }

    pub fn list(items: Vec<Value>) -> Value {
        Value::List(Rc::new(items))
    }

    pub fn map(entries: BTreeMap<String, Value>) -> Value {
        Value::Map(Rc::new(RefCell::new(Map {
            entries,
            string_values: false,
        })))
    }

    /// Go's type name, as errors and `%T` print it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Int64(_) => "int64",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::List(_) => "[]interface {}",
            Value::Map(m) if m.borrow().string_values => "map[string]string",
            Value::Map(_) => "map[string]interface {}",
            Value::Object(o) => o.type_name(),
        }
    }

    /// text/template's truth: empty strings, collections, zero numbers, false and nil are false.
    pub fn truth(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) | Value::Int64(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.borrow().entries.is_empty(),
            // Structs and non-nil pointers are always true.
            Value::Object(_) => true,
        }
    }

    /// Approximate bytes held and nesting depth, for the budget. Stops counting once `cap`
    /// bytes or `max_depth` levels are passed, so shared or cyclic values cost little to measure.
    pub fn measure(&self, cap: usize, max_depth: usize) -> (usize, usize) {
        let mut size = 0usize;
        let mut deepest = 0usize;
        self.measure_into(cap, max_depth, 1, &mut size, &mut deepest);
        (size, deepest)
    }

    fn measure_into(
        &self,
        cap: usize,
        max_depth: usize,
        depth: usize,
        size: &mut usize,
        deepest: &mut usize,
    ) {
        *deepest = (*deepest).max(depth);
        if *size > cap || depth > max_depth {
            return;
        }
        match self {
            Value::Str(b) => *size = size.saturating_add(b.len()),
            Value::Map(m) => {
                let m = m.borrow();
                *size = size.saturating_add(m.entries.len());
                for (k, v) in m.entries.iter() {
                    *size = size.saturating_add(k.len());
                    v.measure_into(cap, max_depth, depth + 1, size, deepest);
                    if *size > cap || *deepest > max_depth {
                        return;
                    }
                }
            }
            Value::List(l) => {
                *size = size.saturating_add(l.len());
                for v in l.iter() {
                    v.measure_into(cap, max_depth, depth + 1, size, deepest);
                    if *size > cap || *deepest > max_depth {
                        return;
                    }
                }
            }
            Value::Nil | Value::Bool(_) | Value::Int(_) | Value::Int64(_) | Value::Float(_) => {
                *size = size.saturating_add(8)
            }
            Value::Object(o) => *size = size.saturating_add(o.display().len()),
        }
    }

    pub fn from_json(v: serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Nil,
            serde_json::Value::Bool(b) => Value::Bool(b),
            // encoding/json decodes every number into a float64.
            serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(0.0)),
            serde_json::Value::String(s) => Value::str(s.into_bytes()),
            serde_json::Value::Array(a) => {
                Value::list(a.into_iter().map(Value::from_json).collect())
            }
            serde_json::Value::Object(o) => Value::map(
                o.into_iter()
                    .map(|(k, v)| (k, Value::from_json(v)))
                    .collect(),
            ),
        }
    }
}

/// Deep equality, as Sprig's `has`/`uniq`/`without` (reflect.DeepEqual) see it.
pub(crate) fn deep_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Nil, Value::Nil) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) | (Value::Int64(x), Value::Int64(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => x[..] == y[..],
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(a, b)| deep_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.type_name() == y.type_name() && x.display() == y.display()
        }
        (Value::Map(x), Value::Map(y)) => {
            if Rc::ptr_eq(x, y) {
                return true;
            }
            let (x, y) = (x.borrow(), y.borrow());
            x.entries.len() == y.entries.len()
                && x.entries
                    .iter()
                    .zip(y.entries.iter())
                    .all(|((ka, va), (kb, vb))| ka == kb && deep_equal(va, vb))
        }
        _ => false,
    }
}
