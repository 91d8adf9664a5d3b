//! JSON as Go's encoding/json writes it (sorted keys, HTML escaping unless raw, Go's float
//! format) and YAML as ESO's toYaml/fromYaml (sigs.k8s.io/yaml: via JSON).

use crate::value::Value;

pub(crate) fn encode(
    out: &mut Vec<u8>,
    v: &Value,
    escape_html: bool,
    indent: Option<&str>,
    level: usize,
) {
    let newline = |out: &mut Vec<u8>, level: usize| {
        if let Some(ind) = indent {
            out.push(b'\n');
            for _ in 0..level {
                out.extend_from_slice(ind.as_bytes());
            }
        }
    };
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Int(i) | Value::Int64(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Value::Float(f) => out.extend_from_slice(float(*f).as_bytes()),
        Value::Str(s) => string(out, s, escape_html),
        Value::Object(o) => encode(
            out,
            &Value::from_json(o.to_json()),
            escape_html,
            indent,
            level,
        ),
        Value::List(l) => {
            out.push(b'[');
            if l.is_empty() {
                out.push(b']');
                return;
            }
            for (i, item) in l.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                newline(out, level + 1);
                encode(out, item, escape_html, indent, level + 1);
            }
            newline(out, level);
            out.push(b']');
        }
        Value::Map(m) => {
            let m = m.borrow();
            out.push(b'{');
            if m.entries.is_empty() {
                out.push(b'}');
                return;
            }
            for (i, (k, item)) in m.entries.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                newline(out, level + 1);
                string(out, k.as_bytes(), escape_html);
                out.push(b':');
                if indent.is_some() {
                    out.push(b' ');
                }
                encode(out, item, escape_html, indent, level + 1);
            }
            newline(out, level);
            out.push(b'}');
        }
    }
}

/// encoding/json's float format: %f between 1e-6 and 1e21, else %e with a short exponent.
fn float(f: f64) -> String {
    if !f.is_finite() {
        return "null".into();
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = crate::gofmt::format_float(f, 'e', None);
        // e-07 → e-7, e+07 → e+7
        if let Some(pos) = s.find('e') {
            let (mant, exp) = s.split_at(pos);
            let sign = &exp[1..2];
            let digits = exp[2..].trim_start_matches('0');
            return format!(
                "{mant}e{sign}{}",
                if digits.is_empty() { "0" } else { digits }
            );
        }
        return s;
    }
    crate::gofmt::format_float(f, 'f', None)
}

fn string(out: &mut Vec<u8>, s: &[u8], escape_html: bool) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c < 0x80 {
            match c {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                8 => out.extend_from_slice(b"\\b"),
                12 => out.extend_from_slice(b"\\f"),
                b'<' | b'>' | b'&' if escape_html => {
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[(c >> 4) as usize]);
                    out.push(HEX[(c & 15) as usize]);
                }
                c if c < 0x20 => {
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[(c >> 4) as usize]);
                    out.push(HEX[(c & 15) as usize]);
                }
                c => out.push(c),
            }
            i += 1;
            continue;
        }
        let (r, size) = crate::gofmt::decode_rune(&s[i..]);
        if r == '\u{FFFD}' && size == 1 {
            out.extend_from_slice(b"\\ufffd");
        } else if r == '\u{2028}' || r == '\u{2029}' {
            out.extend_from_slice(format!("\\u{:04x}", r as u32).as_bytes());
        } else {
            out.extend_from_slice(&s[i..i + size]);
        }
        i += size;
    }
    out.push(b'"');
}

fn to_serde(v: &Value) -> serde_json::Value {
    match v {
        Value::Nil => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(i) | Value::Int64(i) => serde_json::Value::from(*i),
        // JSON has no int/float distinction: YAML gets `3`, not `3.0`, as from sigs.k8s.io/yaml.
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
            serde_json::Value::from(*f as i64)
        }
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        Value::Str(s) => serde_json::Value::String(String::from_utf8_lossy(s).into_owned()),
        Value::List(l) => serde_json::Value::Array(l.iter().map(to_serde).collect()),
        Value::Object(o) => o.to_json(),
        Value::Map(m) => serde_json::Value::Object(
            m.borrow()
                .entries
                .iter()
                .map(|(k, v)| (k.clone(), to_serde(v)))
                .collect(),
        ),
    }
}

/// ESO's toYaml: the YAML document without its final newline.
pub(crate) fn to_yaml(v: &Value) -> Vec<u8> {
    match serde_yaml::to_string(&to_serde(v)) {
        Ok(s) => s.strip_suffix('\n').unwrap_or(&s).as_bytes().to_vec(),
        Err(_) => Vec::new(),
    }
}

/// ESO's fromYaml: a dict; a document that is not one gives {"Error": …} as in Helm.
pub(crate) fn from_yaml(input: &[u8]) -> Result<Value, String> {
    match serde_yaml::from_slice::<serde_json::Value>(input) {
        Ok(serde_json::Value::Object(o)) => Ok(Value::from_json(serde_json::Value::Object(o))),
        Ok(serde_json::Value::Null) => Ok(Value::map(Default::default())),
        _ => {
            let mut m = std::collections::BTreeMap::new();
            m.insert(
                "Error".to_string(),
                Value::str("error unmarshaling YAML: not a mapping"),
            );
            Ok(Value::map(m))
        }
    }
}
