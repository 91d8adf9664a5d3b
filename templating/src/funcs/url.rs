//! Sprig's urlParse and urlJoin, with Go's net/url rules for splitting, unescaping and
//! escaping each part (which differ from the WHATWG URL standard the `url` crate follows).

use std::collections::BTreeMap;

use super::{R, arity, text, wrong_type};
use crate::value::Value;

pub(super) const NAMES: &[&str] = &["urlParse", "urlJoin"];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Path,
    Host,
    UserPassword,
    Fragment,
}

fn should_escape(c: u8, mode: Mode) -> bool {
    if c.is_ascii_alphanumeric() {
        return false;
    }
    if mode == Mode::Host
        && matches!(
            c,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'['
                | b']'
                | b'<'
                | b'>'
                | b'"'
        )
    {
        return false;
    }
    match c {
        b'-' | b'_' | b'.' | b'~' => return false,
        b'$' | b'&' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'?' | b'@' => {
            return match mode {
                Mode::Path => c == b'?',
                Mode::UserPassword => matches!(c, b'@' | b'/' | b'?' | b':'),
                Mode::Fragment => false,
                Mode::Host => true,
            };
        }
        _ => {}
    }
    !(mode == Mode::Fragment && matches!(c, b'!' | b'(' | b')' | b'*'))
}

fn escape(s: &str, mode: Mode) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s.as_bytes() {
        if should_escape(c, mode) {
            out.push_str(&format!("%{c:02X}"));
        } else {
            out.push(char::from(c));
        }
    }
    out
}

fn unescape(s: &str, mode: Mode) -> R<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()));
                let Some(hex) = hex else {
                    let end = (i + 3).min(b.len());
                    return Err(format!(
                        "invalid URL escape {:?}",
                        String::from_utf8_lossy(&b[i..end])
                    ));
                };
                let byte = u8::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
                // In a host only %25 (an IPv6 zone's '%') and escaped UTF-8 are allowed.
                if mode == Mode::Host && byte < 0x80 && byte != b'%' {
                    return Err(format!("invalid URL escape {:?}", &s[i..i + 3]));
                }
                out.push(byte);
                i += 3;
            }
            c => {
                if mode == Mode::Host && c < 0x80 && should_escape(c, Mode::Host) {
                    return Err(format!(
                        "invalid character {:?} in host name",
                        char::from(c).to_string()
                    ));
                }
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[derive(Default)]
struct Url {
    scheme: String,
    opaque: String,
    user: Option<(String, Option<String>)>,
    host: String,
    path: String,
    raw_query: String,
    fragment: String,
    force_query: bool,
}

fn user_string(user: &(String, Option<String>)) -> String {
    let mut s = escape(&user.0, Mode::UserPassword);
    if let Some(p) = &user.1 {
        s.push(':');
        s.push_str(&escape(p, Mode::UserPassword));
    }
    s
}

/// Go's url.Parse.
fn parse(raw: &str) -> R<Url> {
    let err = |e: String| format!("parse {raw:?}: {e}");
    let (rest, frag) = match raw.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (raw, None),
    };
    let mut u = Url::default();
    if rest.bytes().any(|c| c < 0x20 || c == 0x7f)
        || frag.is_some_and(|f| f.bytes().any(|c| c < 0x20 || c == 0x7f))
    {
        return Err(err("net/url: invalid control character in URL".into()));
    }
    if let Some(f) = frag {
        u.fragment = unescape(f, Mode::Fragment).map_err(err)?;
    }
    let mut rest = rest;
    // The scheme: a letter, then letters, digits, '+', '-', '.', up to ':'.
    for (i, c) in rest.bytes().enumerate() {
        if c.is_ascii_alphabetic() {
            continue;
        }
        if c.is_ascii_digit() || c == b'+' || c == b'-' || c == b'.' {
            if i == 0 {
                break;
            }
            continue;
        }
        if c == b':' {
            if i == 0 {
                return Err(err("missing protocol scheme".into()));
            }
            u.scheme = rest[..i].to_ascii_lowercase();
            rest = &rest[i + 1..];
        }
        break;
    }
    if rest.ends_with('?') && rest.matches('?').count() == 1 {
        u.force_query = true;
        rest = &rest[..rest.len() - 1];
    } else if let Some((r, q)) = rest.split_once('?') {
        u.raw_query = q.to_string();
        rest = r;
    }
    if !rest.starts_with('/') {
        if !u.scheme.is_empty() {
            u.opaque = rest.to_string();
            return Ok(u);
        }
        let segment = rest.split('/').next().unwrap_or("");
        if segment.contains(':') {
            return Err(err("first path segment in URL cannot contain colon".into()));
        }
    }
    if (!u.scheme.is_empty() || !rest.starts_with("///")) && rest.starts_with("//") {
        let after = &rest[2..];
        let (authority, path) = match after.find('/') {
            Some(i) => (&after[..i], &after[i..]),
            None => (after, ""),
        };
        let (userinfo, host) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        u.host = parse_host(host).map_err(err)?;
        if let Some(ui) = userinfo {
            let valid = |c: u8| c.is_ascii_alphanumeric() || b"-._:~!$&'()*+,;=%@".contains(&c);
            if !ui.bytes().all(valid) {
                return Err(err("net/url: invalid userinfo".into()));
            }
            u.user = Some(match ui.split_once(':') {
                Some((name, pass)) => (
                    unescape(name, Mode::UserPassword).map_err(err)?,
                    Some(unescape(pass, Mode::UserPassword).map_err(err)?),
                ),
                None => (unescape(ui, Mode::UserPassword).map_err(err)?, None),
            });
        }
        rest = path;
    }
    u.path = unescape(rest, Mode::Path).map_err(err)?;
    Ok(u)
}

fn parse_host(host: &str) -> R<String> {
    if host.starts_with('[') {
        let Some(end) = host.rfind(']') else {
            return Err("missing ']' in host".into());
        };
        let port = &host[end + 1..];
        if !port.is_empty() && !valid_port(port) {
            return Err(format!("invalid port {port:?} after host"));
        }
        return unescape(host, Mode::Host);
    }
    if let Some(i) = host.rfind(':') {
        let port = &host[i..];
        if !valid_port(port) {
            return Err(format!("invalid port {port:?} after host"));
        }
    }
    unescape(host, Mode::Host)
}

fn valid_port(port: &str) -> bool {
    port.strip_prefix(':')
        .is_some_and(|p| p.bytes().all(|c| c.is_ascii_digit()))
}

fn hostname(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    match host.rfind(':') {
        Some(i) => &host[..i],
        None => host,
    }
}

/// Go's URL.String.
fn to_string(u: &Url) -> String {
    let mut out = String::new();
    if !u.scheme.is_empty() {
        out.push_str(&u.scheme);
        out.push(':');
    }
    if !u.opaque.is_empty() {
        out.push_str(&u.opaque);
    } else {
        if !u.scheme.is_empty() || !u.host.is_empty() || u.user.is_some() {
            if !u.host.is_empty() || !u.path.is_empty() || u.user.is_some() {
                out.push_str("//");
            }
            if let Some(user) = &u.user {
                out.push_str(&user_string(user));
                out.push('@');
            }
            out.push_str(&escape(&u.host, Mode::Host));
        }
        let path = if u.path == "*" {
            "*".to_string()
        } else {
            escape(&u.path, Mode::Path)
        };
        if !path.is_empty() && !path.starts_with('/') && !u.host.is_empty() {
            out.push('/');
        }
        if out.is_empty() && path.split('/').next().is_some_and(|s| s.contains(':')) {
            out.push_str("./");
        }
        out.push_str(&path);
    }
    if u.force_query || !u.raw_query.is_empty() {
        out.push('?');
        out.push_str(&u.raw_query);
    }
    if !u.fragment.is_empty() {
        out.push('#');
        out.push_str(&escape(&u.fragment, Mode::Fragment));
    }
    out
}

fn dict_string(d: &BTreeMap<String, Value>, key: &str) -> R<String> {
    match d.get(key) {
        None => Ok(String::new()),
        Some(Value::Str(s)) => Ok(String::from_utf8_lossy(s).into_owned()),
        Some(other) => Err(format!(
            "unable to parse {key} key, must be of type string, but {} found",
            other.type_name()
        )),
    }
}

pub(super) fn call(name: &str, a: Vec<Value>) -> R<Value> {
    match name {
        "urlParse" => {
            arity(name, &a, 1)?;
            let u = parse(&text(&a[0])?).map_err(|e| format!("unable to parse url: {e}"))?;
            let mut d = BTreeMap::new();
            let mut put = |k: &str, v: &str| {
                d.insert(k.to_string(), Value::str(v.as_bytes()));
            };
            put("scheme", &u.scheme);
            put("host", &u.host);
            put("hostname", hostname(&u.host));
            put("path", &u.path);
            put("query", &u.raw_query);
            put("opaque", &u.opaque);
            put("fragment", &u.fragment);
            put(
                "userinfo",
                &u.user.as_ref().map(user_string).unwrap_or_default(),
            );
            Ok(Value::map(d))
        }
        "urlJoin" => {
            arity(name, &a, 1)?;
            let Value::Map(m) = &a[0] else {
                return Err(wrong_type("map[string]interface {}", &a[0]));
            };
            let d = m.borrow();
            let d = &d.entries;
            let mut u = Url {
                scheme: dict_string(d, "scheme")?,
                host: dict_string(d, "host")?,
                path: dict_string(d, "path")?,
                raw_query: dict_string(d, "query")?,
                opaque: dict_string(d, "opaque")?,
                fragment: dict_string(d, "fragment")?,
                ..Url::default()
            };
            let userinfo = dict_string(d, "userinfo")?;
            if !userinfo.is_empty() {
                let parsed = parse(&format!("proto://{userinfo}@host"))
                    .map_err(|e| format!("unable to parse userinfo in dict: {e}"))?;
                u.user = parsed.user;
            }
            Ok(Value::str(to_string(&u)))
        }
        _ => Err(format!("function {name:?} not defined")),
    }
}
