//! The Sprig functions ESO keeps (all but env, expandenv, getHostByName), with Sprig's
//! semantics: argument order made for pipes, lenient conversions, nil-tolerant defaults.

use std::collections::BTreeMap;

use base64::Engine as _;

use super::{R, arity, at_least, count, int, string, text};
use crate::budget::Budget;
use crate::gofmt;
use crate::value::{Value, deep_equal};

pub(super) const NAMES: &[&str] = &[
    // strings
    "hello",
    "trim",
    "trimAll",
    "trimall",
    "trimPrefix",
    "trimSuffix",
    "upper",
    "lower",
    "title",
    "untitle",
    "substr",
    "repeat",
    "nospace",
    "trunc",
    "abbrev",
    "abbrevboth",
    "initials",
    "wrap",
    "wrapWith",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "quote",
    "squote",
    "cat",
    "indent",
    "nindent",
    "replace",
    "plural",
    "snakecase",
    "camelcase",
    "kebabcase",
    "swapcase",
    "shuffle",
    "toString",
    "randAlphaNum",
    "randAlpha",
    "randAscii",
    "randNumeric",
    "uuidv4",
    "fail",
    "sha1sum",
    "sha256sum",
    "sha512sum",
    "adler32sum",
    // string lists
    "split",
    "splitList",
    "splitn",
    "toStrings",
    "join",
    "sortAlpha",
    // conversion and math
    "atoi",
    "int",
    "int64",
    "float64",
    "toDecimal",
    "seq",
    "until",
    "untilStep",
    "add1",
    "add",
    "sub",
    "div",
    "mod",
    "mul",
    "max",
    "min",
    "biggest",
    "maxf",
    "minf",
    "floor",
    "ceil",
    "round",
    "add1f",
    "addf",
    "subf",
    "mulf",
    "divf",
    // defaults and encoding
    "default",
    "empty",
    "coalesce",
    "all",
    "any",
    "compact",
    "mustCompact",
    "ternary",
    "fromJson",
    "mustFromJson",
    "toJson",
    "mustToJson",
    "toPrettyJson",
    "mustToPrettyJson",
    "toRawJson",
    "mustToRawJson",
    "deepCopy",
    "mustDeepCopy",
    "b64enc",
    "b64dec",
    "b32enc",
    "b32dec",
    "toYaml",
    "fromYaml",
    "hexdec",
    // reflection
    "typeOf",
    "typeIs",
    "typeIsLike",
    "kindOf",
    "kindIs",
    "deepEqual",
    // paths
    "base",
    "dir",
    "clean",
    "ext",
    "isAbs",
    "osBase",
    "osClean",
    "osDir",
    "osExt",
    "osIsAbs",
    // lists
    "list",
    "tuple",
    "append",
    "push",
    "mustAppend",
    "mustPush",
    "prepend",
    "mustPrepend",
    "first",
    "mustFirst",
    "rest",
    "mustRest",
    "last",
    "mustLast",
    "initial",
    "mustInitial",
    "reverse",
    "mustReverse",
    "uniq",
    "mustUniq",
    "without",
    "mustWithout",
    "has",
    "mustHas",
    "concat",
    "chunk",
    "mustChunk",
    "slice",
    "mustSlice",
    // dicts
    "dict",
    "get",
    "set",
    "unset",
    "hasKey",
    "pluck",
    "keys",
    "pick",
    "omit",
    "merge",
    "mergeOverwrite",
    "mustMerge",
    "mustMergeOverwrite",
    "values",
    "dig",
    // regular expressions
    "regexMatch",
    "mustRegexMatch",
    "regexFindAll",
    "mustRegexFindAll",
    "regexFind",
    "mustRegexFind",
    "regexReplaceAll",
    "mustRegexReplaceAll",
    "regexReplaceAllLiteral",
    "mustRegexReplaceAllLiteral",
    "regexSplit",
    "mustRegexSplit",
    "regexQuoteMeta",
];

fn s(b: impl Into<Vec<u8>>) -> R<Value> {
    Ok(Value::str(b))
}

/// Sprig's strval: strings as they are, anything else as `%v` prints it.
pub(crate) fn strval(v: &Value) -> Vec<u8> {
    match v {
        Value::Str(b) => b.to_vec(),
        other => {
            let mut out = Vec::new();
            gofmt::write_value(&mut out, other);
            out
        }
    }
}

/// Sprig's empty: nil, zero numbers, false and empty strings/collections.
pub(crate) fn empty(v: &Value) -> bool {
    !v.truth()
}

/// cast.ToInt64: numbers truncate, strings parse (0 when they do not), bools are 0/1.
fn to_int64(v: &Value) -> i64 {
    match v {
        Value::Int(i) | Value::Int64(i) => *i,
        Value::Float(f) => *f as i64,
        Value::Bool(b) => i64::from(*b),
        Value::Str(b) => {
            let t = String::from_utf8_lossy(b);
            let t = t.trim_end_matches('0');
            let t = if let Some(x) = t.strip_suffix('.') {
                x
            } else {
                &String::from_utf8_lossy(b)
            };
            parse_int_base0(t).unwrap_or(0)
        }
        _ => 0,
    }
}

fn parse_int_base0(t: &str) -> Option<i64> {
    let (neg, body) = match t.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d.to_string())
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d.to_string())
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d.to_string())
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string())
    } else {
        (10, lower.clone())
    };
    let digits = digits.replace('_', "");
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    let v = i64::from_str_radix(&digits, radix).ok()?;
    Some(if neg { v.wrapping_neg() } else { v })
}

fn to_float64(v: &Value) -> f64 {
    match v {
        Value::Int(i) | Value::Int64(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Str(b) => String::from_utf8_lossy(b).trim().parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// Sprig's strslice: a list's non-nil elements as strings; a scalar as a one-element list.
fn strslice(v: &Value) -> Vec<Vec<u8>> {
    match v {
        Value::List(l) => l
            .iter()
            .filter(|x| !matches!(x, Value::Nil))
            .map(strval)
            .collect(),
        Value::Nil => Vec::new(),
        other => vec![strval(other)],
    }
}

fn list_arg<'a>(name: &str, v: &'a Value) -> R<&'a [Value]> {
    match v {
        Value::List(l) => Ok(l),
        other => Err(format!("Cannot {name} on type {}", kind_name(other))),
    }
}

fn dict_arg(v: &Value) -> R<std::cell::Ref<'_, crate::value::Map>> {
    match v {
        Value::Map(m) => Ok(m.borrow()),
        other => Err(format!(
            "wrong type for value; expected map[string]interface {{}}; got {}",
            other.type_name()
        )),
    }
}

fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "invalid",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Int64(_) => "int64",
        Value::Float(_) => "float64",
        Value::Str(_) => "string",
        Value::List(_) => "slice",
        Value::Map(_) => "map",
        Value::Object(o) if o.type_name().starts_with('*') => "ptr",
        Value::Object(_) => "struct",
    }
}

fn key_of(v: &Value) -> String {
    String::from_utf8_lossy(&strval(v)).into_owned()
}

fn regex(pattern: &[u8]) -> R<regex::bytes::Regex> {
    let p = std::str::from_utf8(pattern).map_err(|_| "regexp: pattern is not UTF-8".to_string())?;
    regex::bytes::RegexBuilder::new(p)
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .build()
        .map_err(|_| "error parsing regexp: invalid pattern".to_string())
}

pub(super) fn call(name: &str, args: Vec<Value>, budget: &mut Budget) -> R<Value> {
    let a = &args;
    match name {
        "hello" => s("Hello!"),
        "toString" => {
            arity(name, a, 1)?;
            s(strval(&a[0]))
        }
        "fail" => {
            arity(name, a, 1)?;
            Err(text(&a[0])?)
        }
        "trim" => {
            arity(name, a, 1)?;
            s(text(&a[0])?.trim())
        }
        "trimAll" | "trimall" => {
            arity(name, a, 2)?;
            let cut: Vec<char> = text(&a[0])?.chars().collect();
            s(text(&a[1])?.trim_matches(|c| cut.contains(&c)))
        }
        "trimPrefix" => {
            arity(name, a, 2)?;
            let (p, v) = (string(&a[0])?, string(&a[1])?);
            s(v.strip_prefix(p).unwrap_or(v))
        }
        "trimSuffix" => {
            arity(name, a, 2)?;
            let (p, v) = (string(&a[0])?, string(&a[1])?);
            s(v.strip_suffix(p).unwrap_or(v))
        }
        "upper" => {
            arity(name, a, 1)?;
            s(text(&a[0])?.to_uppercase())
        }
        "lower" => {
            arity(name, a, 1)?;
            s(text(&a[0])?.to_lowercase())
        }
        "title" => {
            arity(name, a, 1)?;
            let mut prev_sep = true;
            let out: String = text(&a[0])?
                .chars()
                .map(|c| {
                    let r = if prev_sep {
                        c.to_uppercase().next().unwrap_or(c)
                    } else {
                        c
                    };
                    prev_sep = !(c.is_alphanumeric() || c == '_' || c == '\'');
                    r
                })
                .collect();
            s(out)
        }
        "untitle" => {
            arity(name, a, 1)?;
            let mut prev_space = true;
            let out: String = text(&a[0])?
                .chars()
                .map(|c| {
                    let r = if prev_space && !c.is_whitespace() {
                        c.to_lowercase().next().unwrap_or(c)
                    } else {
                        c
                    };
                    prev_space = c.is_whitespace();
                    r
                })
                .collect();
            s(out)
        }
        "substr" => {
            arity(name, a, 3)?;
            let (start, end, v) = (int(&a[0])?, int(&a[1])?, string(&a[2])?);
            let len = v.len() as i64;
            let range = if start < 0 {
                0..end
            } else if end < 0 || end > len {
                start..len
            } else {
                start..end
            };
            if range.start < 0 || range.end > len || range.start > range.end {
                return Err(format!(
                    "slice bounds out of range [{}:{}]",
                    range.start, range.end
                ));
            }
            s(&v[range.start as usize..range.end as usize])
        }
        "repeat" => {
            arity(name, a, 2)?;
            let v = string(&a[1])?;
            let n = int(&a[0])?;
            if n < 0 {
                return Err("strings: negative Repeat count".into());
            }
            let n = count(&a[0], budget, name, v.len())?;
            s(v.repeat(n))
        }
        "nospace" => {
            arity(name, a, 1)?;
            s(text(&a[0])?
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>())
        }
        "trunc" => {
            arity(name, a, 2)?;
            let (c, v) = (int(&a[0])?, string(&a[1])?);
            let len = v.len() as i64;
            if c < 0 && len + c > 0 {
                return s(&v[(len + c) as usize..]);
            }
            if c >= 0 && len > c {
                return s(&v[..c as usize]);
            }
            s(v)
        }
        "abbrev" => {
            arity(name, a, 2)?;
            let (w, v) = (int(&a[0])?, string(&a[1])?);
            if w < 4 || v.len() as i64 <= w {
                return s(v);
            }
            let mut out = v[..(w - 3) as usize].to_vec();
            out.extend_from_slice(b"...");
            s(out)
        }
        "abbrevboth" => {
            arity(name, a, 3)?;
            let (left, right, v) = (int(&a[0])?, int(&a[1])?, string(&a[2])?);
            if right < 4 || (left > 0 && right < 7) {
                return s(v);
            }
            s(abbreviate_full(v, left, right))
        }
        "initials" => {
            arity(name, a, 1)?;
            let t = text(&a[0])?;
            s(t.split_whitespace()
                .filter_map(|w| w.chars().next())
                .collect::<String>())
        }
        "wrap" => {
            arity(name, a, 2)?;
            s(wrap_custom(string(&a[1])?, int(&a[0])?, b"\n", false))
        }
        "wrapWith" => {
            arity(name, a, 3)?;
            s(wrap_custom(
                string(&a[2])?,
                int(&a[0])?,
                string(&a[1])?,
                true,
            ))
        }
        "contains" | "hasPrefix" | "hasSuffix" => {
            arity(name, a, 2)?;
            let (needle, hay) = (string(&a[0])?, string(&a[1])?);
            Ok(Value::Bool(match name {
                "contains" => needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle),
                "hasPrefix" => hay.starts_with(needle),
                _ => hay.ends_with(needle),
            }))
        }
        "quote" | "squote" => {
            let mut out = Vec::new();
            for v in a.iter().filter(|v| !matches!(v, Value::Nil)) {
                if !out.is_empty() {
                    out.push(b' ');
                }
                let sv = strval(v);
                if name == "quote" {
                    out.extend_from_slice(&gofmt::quote(&sv, b'"', false));
                } else {
                    out.push(b'\'');
                    out.extend_from_slice(&sv);
                    out.push(b'\'');
                }
            }
            s(out)
        }
        "cat" => {
            let mut out = Vec::new();
            for v in a.iter().filter(|v| !matches!(v, Value::Nil)) {
                out.extend_from_slice(&strval(v));
                out.push(b' ');
            }
            s(String::from_utf8_lossy(&out).trim().as_bytes())
        }
        "indent" | "nindent" => {
            arity(name, a, 2)?;
            let v = string(&a[1])?;
            let lines = v.iter().filter(|&&c| c == b'\n').count() + 1;
            let n = count(&a[0], budget, name, lines)?;
            budget.fits(
                name,
                v.len()
                    .saturating_add(n.saturating_mul(lines))
                    .saturating_add(1),
            )?;
            let pad = vec![b' '; n];
            let mut out = Vec::with_capacity(v.len() + n * lines + 1);
            if name == "nindent" {
                out.push(b'\n');
            }
            out.extend_from_slice(&pad);
            for &c in v.iter() {
                out.push(c);
                if c == b'\n' {
                    out.extend_from_slice(&pad);
                }
            }
            s(out)
        }
        "replace" => {
            arity(name, a, 3)?;
            let (old, new, src) = (string(&a[0])?, string(&a[1])?, string(&a[2])?);
            s(replace_all(src, old, new, budget)?)
        }
        "plural" => {
            arity(name, a, 3)?;
            let n = int(&a[2])?;
            Ok(if n == 1 { a[0].clone() } else { a[1].clone() })
        }
        "snakecase" | "kebabcase" => {
            arity(name, a, 1)?;
            let sep = if name == "snakecase" { "_" } else { "-" };
            s(split_words(&text(&a[0])?).join(sep))
        }
        "camelcase" => {
            arity(name, a, 1)?;
            let t = text(&a[0])?;
            let mut out = String::new();
            for part in t.split('_').filter(|p| !p.is_empty()) {
                let mut cs = part.chars();
                if let Some(c) = cs.next() {
                    out.extend(c.to_uppercase());
                    out.push_str(cs.as_str());
                }
            }
            s(out)
        }
        "swapcase" => {
            arity(name, a, 1)?;
            let out: String = text(&a[0])?
                .chars()
                .flat_map(|c| {
                    if c.is_uppercase() {
                        c.to_lowercase().collect::<Vec<_>>()
                    } else {
                        c.to_uppercase().collect::<Vec<_>>()
                    }
                })
                .collect();
            s(out)
        }
        "shuffle" => {
            arity(name, a, 1)?;
            use rand::seq::SliceRandom;
            let mut chars: Vec<char> = text(&a[0])?.chars().collect();
            chars.shuffle(&mut rand::rng());
            s(chars.into_iter().collect::<String>())
        }
        "randAlphaNum" | "randAlpha" | "randAscii" | "randNumeric" => {
            arity(name, a, 1)?;
            let n = count(&a[0], budget, name, 1)?;
            let set: Vec<u8> = match name {
                "randAlphaNum" => (b'a'..=b'z')
                    .chain(b'A'..=b'Z')
                    .chain(b'0'..=b'9')
                    .collect(),
                "randAlpha" => (b'a'..=b'z').chain(b'A'..=b'Z').collect(),
                "randNumeric" => (b'0'..=b'9').collect(),
                _ => (32u8..=126).collect(),
            };
            use rand::Rng;
            let mut rng = rand::rng();
            s((0..n)
                .map(|_| set[rng.random_range(0..set.len())])
                .collect::<Vec<u8>>())
        }
        "uuidv4" => {
            arity(name, a, 0)?;
            let mut b: [u8; 16] = rand::random();
            b[6] = (b[6] & 0x0f) | 0x40;
            b[8] = (b[8] & 0x3f) | 0x80;
            let h = hex::encode(b);
            s(format!(
                "{}-{}-{}-{}-{}",
                &h[0..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..32]
            ))
        }
        "sha1sum" | "sha256sum" | "sha512sum" => {
            arity(name, a, 1)?;
            let alg = match name {
                "sha1sum" => &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
                "sha256sum" => &aws_lc_rs::digest::SHA256,
                _ => &aws_lc_rs::digest::SHA512,
            };
            s(hex::encode(aws_lc_rs::digest::digest(alg, string(&a[0])?)))
        }
        "adler32sum" => {
            arity(name, a, 1)?;
            let (mut x, mut y) = (1u32, 0u32);
            for &c in string(&a[0])? {
                x = (x + u32::from(c)) % 65521;
                y = (y + x) % 65521;
            }
            s(((y << 16) | x).to_string())
        }
        "split" | "splitn" => {
            let (sep, orig, n) = if name == "split" {
                arity(name, a, 2)?;
                (string(&a[0])?, string(&a[1])?, -1)
            } else {
                arity(name, a, 3)?;
                (string(&a[0])?, string(&a[2])?, int(&a[1])?)
            };
            let parts = split_bytes(orig, sep, n);
            let m: BTreeMap<String, Value> = parts
                .into_iter()
                .enumerate()
                .map(|(i, p)| (format!("_{i}"), Value::str(p)))
                .collect();
            Ok(Value::map(m))
        }
        "splitList" => {
            arity(name, a, 2)?;
            let parts = split_bytes(string(&a[1])?, string(&a[0])?, -1);
            Ok(Value::list(parts.into_iter().map(Value::str).collect()))
        }
        "toStrings" => {
            arity(name, a, 1)?;
            Ok(Value::list(
                strslice(&a[0]).into_iter().map(Value::str).collect(),
            ))
        }
        "join" => {
            arity(name, a, 2)?;
            let sep = string(&a[0])?;
            s(strslice(&a[1]).join(sep))
        }
        "sortAlpha" => {
            arity(name, a, 1)?;
            let mut items = match &a[0] {
                Value::List(_) => strslice(&a[0]),
                other => vec![strval(other)],
            };
            items.sort();
            Ok(Value::list(items.into_iter().map(Value::str).collect()))
        }
        "atoi" => {
            arity(name, a, 1)?;
            let t = text(&a[0])?;
            let digits = t.strip_prefix(['+', '-']).unwrap_or(&t);
            let ok = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
            Ok(Value::Int(if ok { t.parse().unwrap_or(0) } else { 0 }))
        }
        "int" => {
            arity(name, a, 1)?;
            Ok(Value::Int(to_int64(&a[0])))
        }
        "int64" => {
            arity(name, a, 1)?;
            Ok(Value::Int64(to_int64(&a[0])))
        }
        "float64" => {
            arity(name, a, 1)?;
            Ok(Value::Float(to_float64(&a[0])))
        }
        "toDecimal" => {
            arity(name, a, 1)?;
            let t = String::from_utf8_lossy(&strval(&a[0])).into_owned();
            Ok(Value::Int64(i64::from_str_radix(&t, 8).unwrap_or(0)))
        }
        "until" => {
            arity(name, a, 1)?;
            let n = int(&a[0])?;
            until_step(0, n, if n < 0 { -1 } else { 1 }, budget)
        }
        "untilStep" => {
            arity(name, a, 3)?;
            until_step(int(&a[0])?, int(&a[1])?, int(&a[2])?, budget)
        }
        "seq" => {
            let nums = a.iter().map(int).collect::<R<Vec<i64>>>()?;
            let (start, step, end) = match nums.as_slice() {
                [] => return s(""),
                [end] => (1, if *end < 1 { -1 } else { 1 }, *end),
                [start, end] => (*start, if end < start { -1 } else { 1 }, *end),
                [start, step, end] => {
                    if *step == 0 || (end > start && *step < 0) || (end < start && *step > 0) {
                        return s("");
                    }
                    (*start, *step, *end)
                }
                _ => return Err("seq: too many arguments".into()),
            };
            let stop = if step > 0 {
                end.saturating_add(1)
            } else {
                end.saturating_sub(1)
            };
            let list = until_step(start, stop, step, budget)?;
            let Value::List(items) = list else {
                return s("");
            };
            let parts: Vec<String> = items
                .iter()
                .map(|v| String::from_utf8_lossy(&strval(v)).into_owned())
                .collect();
            s(parts.join(" "))
        }
        "add1" => {
            arity(name, a, 1)?;
            Ok(Value::Int64(to_int64(&a[0]).wrapping_add(1)))
        }
        "add" => Ok(Value::Int64(
            a.iter().map(to_int64).fold(0i64, i64::wrapping_add),
        )),
        "sub" | "div" | "mod" => {
            arity(name, a, 2)?;
            let (x, y) = (to_int64(&a[0]), to_int64(&a[1]));
            if name != "sub" && y == 0 {
                return Err("runtime error: integer divide by zero".into());
            }
            Ok(Value::Int64(match name {
                "sub" => x.wrapping_sub(y),
                "div" => x.wrapping_div(y),
                _ => x.wrapping_rem(y),
            }))
        }
        "mul" => {
            at_least(name, a, 1)?;
            Ok(Value::Int64(
                a.iter().map(to_int64).fold(1i64, i64::wrapping_mul),
            ))
        }
        "max" | "biggest" | "min" => {
            at_least(name, a, 1)?;
            let it = a.iter().map(to_int64);
            Ok(Value::Int64(if name == "min" {
                it.min().unwrap_or(0)
            } else {
                it.max().unwrap_or(0)
            }))
        }
        "maxf" | "minf" => {
            at_least(name, a, 1)?;
            let it = a.iter().map(to_float64);
            Ok(Value::Float(if name == "minf" {
                it.fold(f64::INFINITY, f64::min)
            } else {
                it.fold(f64::NEG_INFINITY, f64::max)
            }))
        }
        "floor" | "ceil" => {
            arity(name, a, 1)?;
            let f = to_float64(&a[0]);
            Ok(Value::Float(if name == "floor" {
                f.floor()
            } else {
                f.ceil()
            }))
        }
        "round" => {
            at_least(name, a, 2)?;
            let (x, places) = (to_float64(&a[0]), to_int64(&a[1]));
            let half = a.get(2).map_or(0.5, to_float64);
            let pow = 10f64.powi(places.clamp(-300, 300) as i32);
            let digit = pow * x;
            let (int_part, frac) = (digit.trunc(), digit.fract());
            let r = if frac.abs() >= half {
                int_part + frac.signum()
            } else {
                int_part
            };
            Ok(Value::Float(r / pow))
        }
        "add1f" => {
            arity(name, a, 1)?;
            Ok(Value::Float(decimal_op(
                &[a[0].clone(), Value::Int(1)],
                '+',
            )))
        }
        "addf" => Ok(Value::Float(decimal_op(
            &std::iter::once(Value::Float(0.0))
                .chain(a.iter().cloned())
                .collect::<Vec<_>>(),
            '+',
        ))),
        "subf" | "mulf" | "divf" => {
            at_least(name, a, 1)?;
            let op = match name {
                "subf" => '-',
                "mulf" => '*',
                _ => '/',
            };
            Ok(Value::Float(decimal_op(a, op)))
        }
        "default" => {
            at_least(name, a, 1)?;
            match a.get(1) {
                Some(given) if !empty(given) => Ok(given.clone()),
                _ => Ok(a[0].clone()),
            }
        }
        "empty" => {
            arity(name, a, 1)?;
            Ok(Value::Bool(empty(&a[0])))
        }
        "coalesce" => Ok(a.iter().find(|v| !empty(v)).cloned().unwrap_or(Value::Nil)),
        "all" => Ok(Value::Bool(a.iter().all(|v| !empty(v)))),
        "any" => Ok(Value::Bool(a.iter().any(|v| !empty(v)))),
        "compact" | "mustCompact" => {
            arity(name, a, 1)?;
            let l = list_arg("compact", &a[0])?;
            Ok(Value::list(
                l.iter().filter(|v| !empty(v)).cloned().collect(),
            ))
        }
        "ternary" => {
            arity(name, a, 3)?;
            match &a[2] {
                Value::Bool(true) => Ok(a[0].clone()),
                Value::Bool(false) => Ok(a[1].clone()),
                other => Err(format!(
                    "wrong type for value; expected bool; got {}",
                    other.type_name()
                )),
            }
        }
        "fromJson" | "mustFromJson" => {
            arity(name, a, 1)?;
            match serde_json::from_slice::<serde_json::Value>(string(&a[0])?) {
                Ok(v) => Ok(Value::from_json(v)),
                Err(_) if name == "fromJson" => Ok(Value::Nil),
                Err(_) => Err("value is not valid JSON".into()),
            }
        }
        "toJson" | "mustToJson" | "toRawJson" | "mustToRawJson" => {
            arity(name, a, 1)?;
            let mut out = Vec::new();
            crate::json::encode(&mut out, &a[0], !name.contains("Raw"), None, 0);
            s(out)
        }
        "toPrettyJson" | "mustToPrettyJson" => {
            arity(name, a, 1)?;
            let mut out = Vec::new();
            crate::json::encode(&mut out, &a[0], true, Some("  "), 0);
            s(out)
        }
        "toYaml" => {
            arity(name, a, 1)?;
            s(crate::json::to_yaml(&a[0]))
        }
        "fromYaml" => {
            arity(name, a, 1)?;
            crate::json::from_yaml(string(&a[0])?)
        }
        "deepCopy" | "mustDeepCopy" => {
            arity(name, a, 1)?;
            Ok(deep_copy(&a[0]))
        }
        "b64enc" => {
            arity(name, a, 1)?;
            s(base64::engine::general_purpose::STANDARD.encode(string(&a[0])?))
        }
        "b64dec" => {
            arity(name, a, 1)?;
            // Sprig returns the decoder's message in place of the value; it names a position.
            match base64::engine::general_purpose::STANDARD.decode(string(&a[0])?) {
                Ok(b) => s(b),
                Err(e) => s(go_base64_error(&e)),
            }
        }
        "b32enc" => {
            arity(name, a, 1)?;
            s(base32_encode(string(&a[0])?))
        }
        "b32dec" => {
            arity(name, a, 1)?;
            match base32_decode(string(&a[0])?) {
                Ok(b) => s(b),
                Err(pos) => s(format!("illegal base32 data at input byte {pos}")),
            }
        }
        "hexdec" => {
            arity(name, a, 1)?;
            hex::decode(string(&a[0])?)
                .map(Value::str)
                .map_err(|_| "encoding/hex: invalid byte".to_string())
        }
        "typeOf" => {
            arity(name, a, 1)?;
            s(a[0].type_name())
        }
        "typeIs" | "typeIsLike" => {
            arity(name, a, 2)?;
            let want = text(&a[0])?;
            let got = a[1].type_name();
            Ok(Value::Bool(
                want == got || (name == "typeIsLike" && want == format!("*{got}")),
            ))
        }
        "kindOf" => {
            arity(name, a, 1)?;
            s(kind_name(&a[0]))
        }
        "kindIs" => {
            arity(name, a, 2)?;
            Ok(Value::Bool(text(&a[0])? == kind_name(&a[1])))
        }
        "deepEqual" => {
            arity(name, a, 2)?;
            Ok(Value::Bool(deep_equal(&a[0], &a[1])))
        }
        "base" | "osBase" => {
            arity(name, a, 1)?;
            s(path_base(string(&a[0])?))
        }
        "dir" | "osDir" => {
            arity(name, a, 1)?;
            let p = string(&a[0])?;
            let cut = p.iter().rposition(|&c| c == b'/').map_or(0, |i| i + 1);
            s(path_clean(&p[..cut]))
        }
        "clean" | "osClean" => {
            arity(name, a, 1)?;
            s(path_clean(string(&a[0])?))
        }
        "ext" | "osExt" => {
            arity(name, a, 1)?;
            let p = string(&a[0])?;
            let mut out: &[u8] = b"";
            for i in (0..p.len()).rev() {
                if p[i] == b'/' {
                    break;
                }
                if p[i] == b'.' {
                    out = &p[i..];
                    break;
                }
            }
            s(out)
        }
        "isAbs" | "osIsAbs" => {
            arity(name, a, 1)?;
            Ok(Value::Bool(string(&a[0])?.starts_with(b"/")))
        }
        "list" | "tuple" => Ok(Value::list(args)),
        "append" | "push" | "mustAppend" | "mustPush" => {
            arity(name, a, 2)?;
            let mut l = list_arg("append", &a[0])?.to_vec();
            l.push(a[1].clone());
            Ok(Value::list(l))
        }
        "prepend" | "mustPrepend" => {
            arity(name, a, 2)?;
            let mut l = vec![a[1].clone()];
            l.extend_from_slice(list_arg("prepend", &a[0])?);
            Ok(Value::list(l))
        }
        "first" | "mustFirst" | "last" | "mustLast" => {
            arity(name, a, 1)?;
            let l = list_arg(
                if name.contains("irst") {
                    "first"
                } else {
                    "last"
                },
                &a[0],
            )?;
            Ok(if name.contains("irst") {
                l.first()
            } else {
                l.last()
            }
            .cloned()
            .unwrap_or(Value::Nil))
        }
        "rest" | "mustRest" | "initial" | "mustInitial" => {
            arity(name, a, 1)?;
            let l = list_arg(
                if name.contains("est") {
                    "rest"
                } else {
                    "initial"
                },
                &a[0],
            )?;
            if l.is_empty() {
                return Ok(Value::Nil);
            }
            Ok(Value::list(if name.contains("est") {
                l[1..].to_vec()
            } else {
                l[..l.len() - 1].to_vec()
            }))
        }
        "reverse" | "mustReverse" => {
            arity(name, a, 1)?;
            let mut l = list_arg("reverse", &a[0])?.to_vec();
            l.reverse();
            Ok(Value::list(l))
        }
        "uniq" | "mustUniq" => {
            arity(name, a, 1)?;
            let l = list_arg("uniq", &a[0])?;
            let mut out: Vec<Value> = Vec::new();
            for v in l {
                budget.step(out.len() as u64 / 64)?;
                if !out.iter().any(|x| deep_equal(x, v)) {
                    out.push(v.clone());
                }
            }
            Ok(Value::list(out))
        }
        "without" | "mustWithout" => {
            at_least(name, a, 1)?;
            let l = list_arg("without", &a[0])?;
            let omit = &a[1..];
            budget.step((l.len() as u64).saturating_mul(omit.len() as u64) / 64)?;
            Ok(Value::list(
                l.iter()
                    .filter(|v| !omit.iter().any(|o| deep_equal(o, v)))
                    .cloned()
                    .collect(),
            ))
        }
        "has" | "mustHas" => {
            arity(name, a, 2)?;
            match &a[1] {
                Value::Nil => Ok(Value::Bool(false)),
                hay => Ok(Value::Bool(
                    list_arg("find has", hay)?
                        .iter()
                        .any(|v| deep_equal(v, &a[0])),
                )),
            }
        }
        "concat" => {
            let mut out = Vec::new();
            for l in a {
                out.extend_from_slice(list_arg("concat", l)?);
            }
            Ok(Value::list(out))
        }
        "chunk" | "mustChunk" => {
            arity(name, a, 2)?;
            let size = int(&a[0])?;
            let l = list_arg("chunk", &a[1])?;
            if size <= 0 {
                return Err("chunk size must be positive".into());
            }
            Ok(Value::list(
                l.chunks(size as usize)
                    .map(|c| Value::list(c.to_vec()))
                    .collect(),
            ))
        }
        // Sprig's slice replaces Go's builtin in ESO's function map: lists only, indexes
        // converted as cast.ToInt does, an empty list gives nil.
        "slice" | "mustSlice" => {
            at_least(name, a, 1)?;
            let Value::List(l) = &a[0] else {
                return Err(format!(
                    "list should be type of slice or array but {}",
                    kind_name(&a[0])
                ));
            };
            if l.is_empty() {
                return Ok(Value::Nil);
            }
            let len = l.len() as i64;
            let start = a.get(1).map_or(0, to_int64);
            let end = a.get(2).map_or(len, to_int64);
            if start < 0 || end < start || end > len {
                return Err("reflect.Value.Slice: slice index out of bounds".into());
            }
            Ok(Value::list(l[start as usize..end as usize].to_vec()))
        }
        "dict" => {
            let mut m = BTreeMap::new();
            for pair in a.chunks(2) {
                let v = pair.get(1).cloned().unwrap_or_else(|| Value::str(""));
                m.insert(key_of(&pair[0]), v);
            }
            Ok(Value::map(m))
        }
        "get" => {
            arity(name, a, 2)?;
            let key = text(&a[1])?;
            Ok(dict_arg(&a[0])?
                .entries
                .get(&key)
                .cloned()
                .unwrap_or_else(|| Value::str("")))
        }
        "set" => {
            arity(name, a, 3)?;
            let key = text(&a[1])?;
            let Value::Map(m) = &a[0] else {
                return Err(dict_arg(&a[0]).err().unwrap_or_default());
            };
            // A dict inside itself would be a cycle: Go prints it forever, we refuse.
            if contains_map(&a[2], m, budget.limits.max_depth) {
                return Err("set: a dict cannot contain itself".into());
            }
            m.borrow_mut().entries.insert(key, a[2].clone());
            Ok(a[0].clone())
        }
        "unset" => {
            arity(name, a, 2)?;
            let key = text(&a[1])?;
            let Value::Map(m) = &a[0] else {
                return Err(dict_arg(&a[0]).err().unwrap_or_default());
            };
            m.borrow_mut().entries.remove(&key);
            Ok(a[0].clone())
        }
        "hasKey" => {
            arity(name, a, 2)?;
            let key = text(&a[1])?;
            Ok(Value::Bool(dict_arg(&a[0])?.entries.contains_key(&key)))
        }
        "pluck" => {
            at_least(name, a, 1)?;
            let key = text(&a[0])?;
            let mut out = Vec::new();
            for d in &a[1..] {
                if let Some(v) = dict_arg(d)?.entries.get(&key) {
                    out.push(v.clone());
                }
            }
            Ok(Value::list(out))
        }
        "keys" => {
            let mut out = Vec::new();
            for d in a {
                out.extend(
                    dict_arg(d)?
                        .entries
                        .keys()
                        .map(|k| Value::str(k.as_bytes())),
                );
            }
            Ok(Value::list(out))
        }
        "values" => {
            arity(name, a, 1)?;
            Ok(Value::list(
                dict_arg(&a[0])?.entries.values().cloned().collect(),
            ))
        }
        "pick" | "omit" => {
            at_least(name, a, 1)?;
            let names: Vec<String> = a[1..].iter().map(text).collect::<R<_>>()?;
            let d = dict_arg(&a[0])?;
            let m = d
                .entries
                .iter()
                .filter(|(k, _)| names.contains(k) == (name == "pick"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            Ok(Value::map(m))
        }
        "merge" | "mustMerge" | "mergeOverwrite" | "mustMergeOverwrite" => {
            at_least(name, a, 1)?;
            let overwrite = name.contains("Overwrite");
            let Value::Map(dst) = &a[0] else {
                return Err(dict_arg(&a[0]).err().unwrap_or_default());
            };
            for src in &a[1..] {
                let Value::Map(src) = src else {
                    return Err(dict_arg(src).err().unwrap_or_default());
                };
                if std::rc::Rc::ptr_eq(dst, src) {
                    continue;
                }
                merge_into(
                    &mut dst.borrow_mut().entries,
                    &src.borrow().entries,
                    overwrite,
                    0,
                )?;
            }
            Ok(a[0].clone())
        }
        "dig" => {
            at_least(name, a, 3)?;
            let dict = &a[a.len() - 1];
            let default = &a[a.len() - 2];
            let keys: Vec<String> = a[..a.len() - 2].iter().map(text).collect::<R<_>>()?;
            let mut cur = dict.clone();
            for k in keys {
                let next = match &cur {
                    Value::Map(m) => m.borrow().entries.get(&k).cloned(),
                    _ => return Err("dig: not a dict".into()),
                };
                match next {
                    Some(v) => cur = v,
                    None => return Ok(default.clone()),
                }
            }
            Ok(cur)
        }
        "regexMatch" | "mustRegexMatch" => {
            arity(name, a, 2)?;
            match regex(string(&a[0])?) {
                Ok(re) => Ok(Value::Bool(re.is_match(string(&a[1])?))),
                Err(_) if name == "regexMatch" => Ok(Value::Bool(false)),
                Err(e) => Err(e),
            }
        }
        "regexFindAll" | "mustRegexFindAll" => {
            arity(name, a, 3)?;
            let re = regex(string(&a[0])?)?;
            let n = int(&a[2])?;
            let hay = string(&a[1])?;
            let it = re.find_iter(hay).map(|m| Value::str(m.as_bytes()));
            Ok(Value::list(if n < 0 {
                it.collect()
            } else {
                it.take(n as usize).collect()
            }))
        }
        "regexFind" | "mustRegexFind" => {
            arity(name, a, 2)?;
            let re = regex(string(&a[0])?)?;
            s(re.find(string(&a[1])?)
                .map(|m| m.as_bytes().to_vec())
                .unwrap_or_default())
        }
        "regexReplaceAll"
        | "mustRegexReplaceAll"
        | "regexReplaceAllLiteral"
        | "mustRegexReplaceAllLiteral" => {
            arity(name, a, 3)?;
            let re = regex(string(&a[0])?)?;
            let (src, repl) = (string(&a[1])?, string(&a[2])?);
            let matches = re.find_iter(src).count();
            budget.fits(
                name,
                src.len()
                    .saturating_add(matches.saturating_mul(repl.len().saturating_mul(4).max(1))),
            )?;
            let out = if name.contains("Literal") {
                re.replace_all(src, regex::bytes::NoExpand(repl))
                    .into_owned()
            } else {
                re.replace_all(src, repl).into_owned()
            };
            s(out)
        }
        "regexSplit" | "mustRegexSplit" => {
            arity(name, a, 3)?;
            let re = regex(string(&a[0])?)?;
            let n = int(&a[2])?;
            let hay = string(&a[1])?;
            let parts: Vec<Value> = if n == 0 {
                Vec::new()
            } else if n < 0 {
                re.split(hay).map(Value::str).collect()
            } else {
                re.splitn(hay, n as usize).map(Value::str).collect()
            };
            Ok(Value::list(parts))
        }
        "regexQuoteMeta" => {
            arity(name, a, 1)?;
            s(regex::escape(&text(&a[0])?))
        }
        other => Err(format!("function {other:?} not defined")),
    }
}

fn contains_map(
    v: &Value,
    target: &std::rc::Rc<std::cell::RefCell<crate::value::Map>>,
    depth: usize,
) -> bool {
    if depth == 0 {
        return true;
    }
    match v {
        Value::Map(m) => {
            std::rc::Rc::ptr_eq(m, target)
                || m.borrow()
                    .entries
                    .values()
                    .any(|x| contains_map(x, target, depth - 1))
        }
        Value::List(l) => l.iter().any(|x| contains_map(x, target, depth - 1)),
        _ => false,
    }
}

/// mergo's Merge: missing or empty destination values take the source's; nested dicts merge.
fn merge_into(
    dst: &mut BTreeMap<String, Value>,
    src: &BTreeMap<String, Value>,
    overwrite: bool,
    depth: usize,
) -> R<()> {
    if depth > 100 {
        return Err("merge: dicts nested too deeply".into());
    }
    for (k, sv) in src {
        match dst.get_mut(k) {
            None => {
                dst.insert(k.clone(), deep_copy(sv));
            }
            Some(Value::Map(dm)) if matches!(sv, Value::Map(_)) => {
                let Value::Map(sm) = sv else { continue };
                if std::rc::Rc::ptr_eq(dm, sm) {
                    continue;
                }
                merge_into(
                    &mut dm.borrow_mut().entries,
                    &sm.borrow().entries,
                    overwrite,
                    depth + 1,
                )?;
            }
            Some(dv) => {
                if overwrite && !empty(sv) || empty(dv) {
                    *dv = deep_copy(sv);
                }
            }
        }
    }
    Ok(())
}

fn deep_copy(v: &Value) -> Value {
    match v {
        Value::List(l) => Value::list(l.iter().map(deep_copy).collect()),
        Value::Map(m) => {
            let m = m.borrow();
            let copy = Value::map(
                m.entries
                    .iter()
                    .map(|(k, v)| (k.clone(), deep_copy(v)))
                    .collect(),
            );
            if let Value::Map(c) = &copy {
                c.borrow_mut().string_values = m.string_values;
            }
            copy
        }
        other => other.clone(),
    }
}

fn replace_all(src: &[u8], old: &[u8], new: &[u8], budget: &Budget) -> R<Vec<u8>> {
    if old.is_empty() {
        // Go inserts `new` before every UTF-8 sequence and at the end.
        let mut positions = Vec::new();
        let mut i = 0;
        while i < src.len() {
            positions.push(i);
            i += gofmt::decode_rune(&src[i..]).1;
        }
        budget.fits(
            "replace",
            src.len()
                .saturating_add((positions.len() + 1).saturating_mul(new.len())),
        )?;
        let mut out = Vec::new();
        let mut last = 0;
        for p in positions {
            out.extend_from_slice(&src[last..p]);
            out.extend_from_slice(new);
            last = p;
        }
        out.extend_from_slice(&src[last..]);
        out.extend_from_slice(new);
        return Ok(out);
    }
    let mut hits = Vec::new();
    let mut i = 0;
    while i + old.len() <= src.len() {
        if &src[i..i + old.len()] == old {
            hits.push(i);
            i += old.len();
        } else {
            i += 1;
        }
    }
    budget.fits(
        "replace",
        src.len()
            .saturating_add(hits.len().saturating_mul(new.len())),
    )?;
    let mut out = Vec::with_capacity(src.len());
    let mut last = 0;
    for h in hits {
        out.extend_from_slice(&src[last..h]);
        out.extend_from_slice(new);
        last = h + old.len();
    }
    out.extend_from_slice(&src[last..]);
    Ok(out)
}

/// strings.SplitN (n < 0: all) on bytes; an empty separator splits after each UTF-8 sequence.
fn split_bytes(s: &[u8], sep: &[u8], n: i64) -> Vec<Vec<u8>> {
    if n == 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    if sep.is_empty() {
        let mut i = 0;
        while i < s.len() {
            if n > 0 && out.len() as i64 == n - 1 {
                out.push(s[i..].to_vec());
                return out;
            }
            let size = gofmt::decode_rune(&s[i..]).1;
            out.push(s[i..i + size].to_vec());
            i += size;
        }
        return out;
    }
    let mut start = 0;
    let mut i = 0;
    while i + sep.len() <= s.len() {
        if n > 0 && out.len() as i64 == n - 1 {
            break;
        }
        if &s[i..i + sep.len()] == sep {
            out.push(s[start..i].to_vec());
            i += sep.len();
            start = i;
        } else {
            i += 1;
        }
    }
    out.push(s[start..].to_vec());
    out
}

fn until_step(start: i64, stop: i64, step: i64, budget: &Budget) -> R<Value> {
    let count = if stop < start {
        if step >= 0 {
            0
        } else {
            ((start as i128 - stop as i128 + (-step as i128) - 1) / (-step as i128)) as u128
        }
    } else if step <= 0 {
        0
    } else {
        ((stop as i128 - start as i128 + step as i128 - 1) / step as i128) as u128
    };
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    budget.fits("until", count.saturating_mul(9))?;
    Ok(Value::list(
        (0..count)
            .map(|k| Value::Int(start.wrapping_add((k as i64).wrapping_mul(step))))
            .collect(),
    ))
}

/// Sprig's float math goes through shopspring/decimal: exact for + - *, so 0.1+0.2 is 0.3.
fn decimal_op(args: &[Value], op: char) -> f64 {
    let mut it = args.iter().map(to_float64);
    let Some(first) = it.next() else { return 0.0 };
    let mut acc = Decimal::from_f64(first);
    for x in it {
        let d = Decimal::from_f64(x);
        acc = match (op, &acc, &d) {
            ('/', _, _) => {
                let (a, b) = (acc.to_f64(), d.to_f64());
                Decimal::from_f64(format!("{:.16}", a / b).parse().unwrap_or(f64::NAN))
            }
            _ => acc.apply(&d, op),
        };
    }
    acc.to_f64()
}

/// mantissa × 10^-scale, when both fit; NaN-ish values fall back to plain f64 math.
#[derive(Clone)]
enum Decimal {
    Exact(i128, u32),
    Float(f64),
}

impl Decimal {
    fn from_f64(f: f64) -> Decimal {
        if !f.is_finite() {
            return Decimal::Float(f);
        }
        let s = format!("{f}");
        let (int_part, frac) = s.split_once('.').unwrap_or((&s, ""));
        let digits = format!("{int_part}{frac}");
        match (digits.parse::<i128>(), u32::try_from(frac.len())) {
            (Ok(m), Ok(scale)) if scale <= 30 => Decimal::Exact(m, scale),
            _ => Decimal::Float(f),
        }
    }

    fn to_f64(&self) -> f64 {
        match self {
            Decimal::Exact(m, scale) => {
                let s = m.unsigned_abs().to_string();
                let scale = *scale as usize;
                let padded = format!("{:0>width$}", s, width = scale + 1);
                let (i, f) = padded.split_at(padded.len() - scale);
                let sign = if *m < 0 { "-" } else { "" };
                format!("{sign}{i}.{f}0").parse().unwrap_or(0.0)
            }
            Decimal::Float(f) => *f,
        }
    }

    fn apply(&self, other: &Decimal, op: char) -> Decimal {
        if let (Decimal::Exact(a, sa), Decimal::Exact(b, sb)) = (self, other) {
            let r = match op {
                '+' | '-' => {
                    let scale = (*sa).max(*sb);
                    let a2 = 10i128
                        .checked_pow(scale - sa)
                        .and_then(|p| a.checked_mul(p));
                    let b2 = 10i128
                        .checked_pow(scale - sb)
                        .and_then(|p| b.checked_mul(p));
                    match (a2, b2) {
                        (Some(x), Some(y)) => if op == '+' {
                            x.checked_add(y)
                        } else {
                            x.checked_sub(y)
                        }
                        .map(|m| (m, scale)),
                        _ => None,
                    }
                }
                _ => a.checked_mul(*b).map(|m| (m, sa + sb)),
            };
            if let Some((m, scale)) = r
                && scale <= 30
            {
                return Decimal::Exact(m, scale);
            }
        }
        let (x, y) = (self.to_f64(), other.to_f64());
        Decimal::Float(match op {
            '+' => x + y,
            '-' => x - y,
            _ => x * y,
        })
    }
}

fn split_words(t: &str) -> Vec<String> {
    let chars: Vec<char> = t.chars().collect();
    let mut words: Vec<String> = Vec::new();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c == '_' || c == '-' || c == ' ' || c == '.' {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if c.is_uppercase() && !cur.is_empty() {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if prev.is_lowercase() || prev.is_ascii_digit() || (prev.is_uppercase() && next_lower) {
                words.push(std::mem::take(&mut cur));
            }
        }
        cur.extend(c.to_lowercase());
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

fn abbreviate_full(v: &[u8], offset: i64, max: i64) -> Vec<u8> {
    let len = v.len() as i64;
    if v.is_empty() || len <= max {
        return v.to_vec();
    }
    let mut offset = offset.min(len);
    if len - offset < max - 3 {
        offset = len - (max - 3);
    }
    let marker = b"...";
    if offset <= 4 {
        let mut out = v[..(max - 3) as usize].to_vec();
        out.extend_from_slice(marker);
        return out;
    }
    if offset + max - 3 < len {
        let rest = &v[offset as usize..];
        let w = max - 3;
        let mut out = marker.to_vec();
        if rest.len() as i64 <= w || w < 4 {
            out.extend_from_slice(rest);
        } else {
            out.extend_from_slice(&rest[..(w - 3) as usize]);
            out.extend_from_slice(marker);
        }
        return out;
    }
    let mut out = marker.to_vec();
    out.extend_from_slice(&v[(len - (max - 3)) as usize..]);
    out
}

/// goutils.WrapCustom.
fn wrap_custom(s: &[u8], wrap_len: i64, newline: &[u8], wrap_long: bool) -> Vec<u8> {
    if s.is_empty() {
        return Vec::new();
    }
    let newline: &[u8] = if newline.is_empty() { b"\n" } else { newline };
    let wrap_len = wrap_len.max(1) as usize;
    let len = s.len();
    let mut offset = 0usize;
    let mut out = Vec::new();
    while len - offset > wrap_len {
        if s[offset] == b' ' {
            offset += 1;
            continue;
        }
        let end = (wrap_len + offset + 1).min(len);
        let space = s[offset..end].iter().rposition(|&c| c == b' ');
        if let Some(sp) = space {
            out.extend_from_slice(&s[offset..offset + sp]);
            out.extend_from_slice(newline);
            offset += sp + 1;
        } else if wrap_long {
            out.extend_from_slice(&s[offset..offset + wrap_len]);
            out.extend_from_slice(newline);
            offset += wrap_len;
        } else {
            let end = wrap_len + offset;
            match s[end..].iter().position(|&c| c == b' ') {
                None => {
                    out.extend_from_slice(&s[offset..]);
                    offset = len;
                }
                Some(i) => {
                    out.extend_from_slice(&s[offset..end + i]);
                    out.extend_from_slice(newline);
                    offset = end + i + 1;
                }
            }
        }
    }
    out.extend_from_slice(&s[offset.min(len)..]);
    out
}

fn path_base(p: &[u8]) -> Vec<u8> {
    if p.is_empty() {
        return b".".to_vec();
    }
    let trimmed: &[u8] = {
        let mut end = p.len();
        while end > 0 && p[end - 1] == b'/' {
            end -= 1;
        }
        &p[..end]
    };
    if trimmed.is_empty() {
        return b"/".to_vec();
    }
    match trimmed.iter().rposition(|&c| c == b'/') {
        Some(i) => trimmed[i + 1..].to_vec(),
        None => trimmed.to_vec(),
    }
}

/// path.Clean: lexical, as Go's.
fn path_clean(p: &[u8]) -> Vec<u8> {
    if p.is_empty() {
        return b".".to_vec();
    }
    let rooted = p[0] == b'/';
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in p.split(|&c| c == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                if parts.last().is_some_and(|l| *l != b"..") {
                    parts.pop();
                } else if !rooted {
                    parts.push(part);
                }
            }
            other => parts.push(other),
        }
    }
    let mut out = Vec::new();
    if rooted {
        out.push(b'/');
    }
    out.extend_from_slice(&parts.join(&b'/'));
    if out.is_empty() {
        return b".".to_vec();
    }
    out
}

fn go_base64_error(e: &base64::DecodeError) -> String {
    let pos = match e {
        base64::DecodeError::InvalidByte(p, _) | base64::DecodeError::InvalidLastSymbol(p, _) => *p,
        base64::DecodeError::InvalidLength(p) => *p,
        base64::DecodeError::InvalidPadding => 0,
    };
    format!("illegal base64 data at input byte {pos}")
}

const B32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn base32_encode(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len().div_ceil(5) * 8);
    for chunk in data.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let bits = u64::from_be_bytes([0, 0, 0, buf[0], buf[1], buf[2], buf[3], buf[4]]);
        let chars = match chunk.len() {
            1 => 2,
            2 => 4,
            3 => 5,
            4 => 7,
            _ => 8,
        };
        for k in 0..8 {
            if k < chars {
                out.push(B32[((bits >> (35 - 5 * k)) & 31) as usize]);
            } else {
                out.push(b'=');
            }
        }
    }
    out
}

fn base32_decode(data: &[u8]) -> Result<Vec<u8>, usize> {
    let data: Vec<u8> = data
        .iter()
        .copied()
        .filter(|&c| c != b'\n' && c != b'\r')
        .collect();
    if !data.len().is_multiple_of(8) {
        return Err(data.len() / 8 * 8);
    }
    let mut out = Vec::new();
    for (ci, chunk) in data.chunks(8).enumerate() {
        let mut bits: u64 = 0;
        let mut n = 0;
        for (k, &c) in chunk.iter().enumerate() {
            if c == b'=' {
                if chunk[k..].iter().any(|&x| x != b'=') || (ci + 1) * 8 != data.len() {
                    return Err(ci * 8 + k);
                }
                break;
            }
            let v = B32.iter().position(|&x| x == c).ok_or(ci * 8 + k)?;
            bits |= (v as u64) << (35 - 5 * k);
            n += 1;
        }
        let bytes = match n {
            8 => 5,
            7 => 4,
            5 => 3,
            4 => 2,
            2 => 1,
            _ => return Err(ci * 8 + n),
        };
        let all = bits.to_be_bytes();
        out.extend_from_slice(&all[3..3 + bytes]);
    }
    Ok(out)
}
