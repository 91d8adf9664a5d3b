//! Go's builtin template functions (funcs.go), `and`/`or` aside: the executor short-circuits
//! those.

use super::{R, arity, at_least};
use crate::budget::Budget;
use crate::gofmt;
use crate::value::Value;

pub(super) const NAMES: &[&str] = &[
    "not", "len", "index", "print", "printf", "println", "eq", "ne", "lt", "le", "gt", "ge",
    "html", "js", "urlquery", "call",
];

pub(super) fn call(name: &str, args: Vec<Value>, budget: &mut Budget) -> R<Value> {
    match name {
        "not" => {
            arity(name, &args, 1)?;
            Ok(Value::Bool(!args[0].truth()))
        }
        "len" => {
            arity(name, &args, 1)?;
            match &args[0] {
                Value::Str(s) => Ok(Value::Int(s.len() as i64)),
                Value::List(l) => Ok(Value::Int(l.len() as i64)),
                Value::Map(m) => Ok(Value::Int(m.borrow().entries.len() as i64)),
                other => Err(format!("len of type {}", other.type_name())),
            }
        }
        "index" => {
            at_least(name, &args, 1)?;
            let mut it = args.into_iter();
            let mut item = it.next().unwrap_or(Value::Nil);
            if matches!(item, Value::Nil) {
                return Err("index of untyped nil".into());
            }
            for key in it {
                item = match item {
                    Value::List(l) => {
                        let i = index_arg(&key, l.len())?;
                        l.get(i)
                            .cloned()
                            .ok_or_else(|| format!("index out of range: {i}"))?
                    }
                    Value::Str(s) => {
                        let i = index_arg(&key, s.len())?;
                        s.get(i)
                            .map(|b| Value::Int(i64::from(*b)))
                            .ok_or_else(|| format!("index out of range: {i}"))?
                    }
                    Value::Map(m) => {
                        let k = match &key {
                            Value::Str(k) => String::from_utf8_lossy(k).into_owned(),
                            Value::Nil => {
                                return Err("value is nil; should be of type string".into());
                            }
                            other => {
                                return Err(format!(
                                    "value has type {}; should be string",
                                    other.type_name()
                                ));
                            }
                        };
                        let m = m.borrow();
                        match m.entries.get(&k) {
                            Some(v) => v.clone(),
                            None if m.string_values => Value::str(Vec::new()),
                            None => Value::Nil,
                        }
                    }
                    other => return Err(format!("can't index item of type {}", other.type_name())),
                };
            }
            Ok(item)
        }
        "print" => Ok(Value::str(gofmt::sprint(&args))),
        "println" => Ok(Value::str(gofmt::sprintln(&args))),
        "printf" => {
            at_least(name, &args, 1)?;
            let format = super::string(&args[0])?.to_vec();
            // Widths are capped by fmt itself; the result is checked by the caller.
            budget.charge_bytes(format.len())?;
            Ok(Value::str(gofmt::sprintf(&format, &args[1..])))
        }
        "html" => Ok(Value::str(html_escape(&eval_args(&args)))),
        "js" => Ok(Value::str(js_escape(&eval_args(&args)))),
        "urlquery" => Ok(Value::str(query_escape(&eval_args(&args)))),
        "eq" => {
            at_least(name, &args, 1)?;
            if args.len() < 2 {
                return Err("missing argument for comparison".into());
            }
            for other in &args[1..] {
                if eq(&args[0], other)? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        "ne" => {
            arity(name, &args, 2)?;
            Ok(Value::Bool(!eq(&args[0], &args[1])?))
        }
        "lt" => {
            arity(name, &args, 2)?;
            Ok(Value::Bool(lt(&args[0], &args[1])?))
        }
        "le" => {
            arity(name, &args, 2)?;
            Ok(Value::Bool(
                lt(&args[0], &args[1])? || eq(&args[0], &args[1])?,
            ))
        }
        "gt" => {
            arity(name, &args, 2)?;
            Ok(Value::Bool(
                !(lt(&args[0], &args[1])? || eq(&args[0], &args[1])?),
            ))
        }
        "ge" => {
            arity(name, &args, 2)?;
            Ok(Value::Bool(!lt(&args[0], &args[1])?))
        }
        "call" => {
            at_least(name, &args, 1)?;
            Err(format!("non-function of type {}", args[0].type_name()))
        }
        other => Err(format!("function {other:?} not defined")),
    }
}

fn index_arg(v: &Value, cap: usize) -> R<usize> {
    match v {
        Value::Int(i) | Value::Int64(i) => {
            if *i < 0 || *i as u64 > cap as u64 {
                return Err(format!("index out of range: {i}"));
            }
            Ok(*i as usize)
        }
        Value::Nil => Err("cannot index slice/array with nil".into()),
        other => Err(format!(
            "cannot index slice/array with type {}",
            other.type_name()
        )),
    }
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Kind {
    Bool,
    Int,
    Float,
    Str,
    Invalid,
}

fn kind(v: &Value) -> Kind {
    match v {
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) | Value::Int64(_) => Kind::Int,
        Value::Float(_) => Kind::Float,
        Value::Str(_) => Kind::Str,
        _ => Kind::Invalid,
    }
}

fn eq(a: &Value, b: &Value) -> R<bool> {
    let (k1, k2) = (kind(a), kind(b));
    if k1 != k2 {
        if !matches!(a, Value::Nil) && !matches!(b, Value::Nil) {
            return Err("incompatible types for comparison".into());
        }
        return Ok(false);
    }
    Ok(match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x) | Value::Int64(x), Value::Int(y) | Value::Int64(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => x[..] == y[..],
        (Value::Nil, Value::Nil) => true,
        (Value::Nil, _) | (_, Value::Nil) => false,
        (Value::List(_), Value::List(_)) | (Value::Map(_), Value::Map(_)) => {
            return Err(format!("non-comparable type {}", b.type_name()));
        }
        _ => {
            return Err(format!(
                "non-comparable types {}, {}",
                a.type_name(),
                b.type_name()
            ));
        }
    })
}

fn lt(a: &Value, b: &Value) -> R<bool> {
    let (k1, k2) = (kind(a), kind(b));
    if k1 == Kind::Invalid || k2 == Kind::Invalid {
        return Err("invalid type for comparison".into());
    }
    if k1 != k2 {
        return Err("incompatible types for comparison".into());
    }
    match (a, b) {
        (Value::Int(x) | Value::Int64(x), Value::Int(y) | Value::Int64(y)) => Ok(x < y),
        (Value::Float(x), Value::Float(y)) => Ok(x < y),
        (Value::Str(x), Value::Str(y)) => Ok(x[..] < y[..]),
        _ => Err("invalid type for comparison".into()),
    }
}

/// The text html/js/urlquery escape: one string as is, anything else as fmt.Sprint would
/// print it, with nil as `<no value>`.
fn eval_args(args: &[Value]) -> Vec<u8> {
    if let [Value::Str(s)] = args {
        return s.to_vec();
    }
    let mut out = Vec::new();
    let mut prev_string = false;
    for (i, a) in args.iter().enumerate() {
        let is_string = matches!(a, Value::Str(_)) || matches!(a, Value::Nil);
        if i > 0 && !is_string && !prev_string {
            out.push(b' ');
        }
        match a {
            Value::Nil => out.extend_from_slice(b"<no value>"),
            other => gofmt::write_value(&mut out, other),
        }
        prev_string = is_string;
    }
    out
}

fn html_escape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for &c in s {
        match c {
            0 => out.extend_from_slice("\u{FFFD}".as_bytes()),
            b'"' => out.extend_from_slice(b"&#34;"),
            b'\'' => out.extend_from_slice(b"&#39;"),
            b'&' => out.extend_from_slice(b"&amp;"),
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            c => out.push(c),
        }
    }
    out
}

fn js_escape(s: &[u8]) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c < 0x80 {
            match c {
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\'' => out.extend_from_slice(b"\\'"),
                b'"' => out.extend_from_slice(b"\\\""),
                b'<' => out.extend_from_slice(b"\\u003C"),
                b'>' => out.extend_from_slice(b"\\u003E"),
                b'&' => out.extend_from_slice(b"\\u0026"),
                b'=' => out.extend_from_slice(b"\\u003D"),
                c if c < b' ' => {
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[(c >> 4) as usize]);
                    out.push(HEX[(c & 15) as usize]);
                }
                c => out.push(c),
            }
            i += 1;
            continue;
        }
        let (r, size) = gofmt::decode_rune(&s[i..]);
        if gofmt::is_print(r) {
            out.extend_from_slice(&s[i..i + size]);
        } else {
            out.extend_from_slice(format!("\\u{:04X}", r as u32).as_bytes());
        }
        i += size;
    }
    out
}

/// url.QueryEscape.
pub(crate) fn query_escape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for &c in s {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(c),
            b' ' => out.push(b'+'),
            c => out.extend_from_slice(format!("%{c:02X}").as_bytes()),
        }
    }
    out
}
