//! Turning provider values into Secret keys: `property` selection, `decodingStrategy`,
//! `dataFrom.extract` explosion and `rewrite`. Errors name keys and properties, never values.

use std::collections::BTreeMap;

use base64::Engine as _;
use crds::external_secrets::{DecodingStrategy, ExternalSecretRewrite};
use zeroize::Zeroizing;

pub type SecretBytes = Zeroizing<Vec<u8>>;
pub type SecretMap = BTreeMap<String, SecretBytes>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DataError {
    #[error("key {key:?}: property {property:?} not found")]
    PropertyNotFound { key: String, property: String },
    #[error(
        "key {key:?}: value is not a JSON object or array, so property {property:?} cannot be read"
    )]
    NotJsonForProperty { key: String, property: String },
    #[error("key {key:?}: value is not a JSON object, so it cannot be extracted into keys")]
    NotJsonForExtract { key: String },
    #[error("secret key {key:?}: value is not valid {strategy}")]
    Decode { key: String, strategy: &'static str },
    #[error("rewrite: invalid regexp {pattern:?}: {reason}")]
    BadRegexp { pattern: String, reason: String },
    #[error("rewrite: only regexp rewrites are supported (transform is not)")]
    UnsupportedRewrite,
    #[error(
        "secret key {key:?} is not a valid Secret key (alphanumerics, '-', '_' or '.', at most 253 characters)"
    )]
    InvalidKey { key: String },
}

/// Renders a JSON value as a Secret value: strings raw, everything else as JSON text.
fn json_to_bytes(v: &serde_json::Value) -> SecretBytes {
    match v {
        serde_json::Value::String(s) => Zeroizing::new(s.as_bytes().to_vec()),
        other => Zeroizing::new(other.to_string().into_bytes()),
    }
}

/// Selects `property` from a provider value as ESO does: a top-level key equal to the whole
/// property wins (keys may contain dots), otherwise it is a gjson path (`a.b`, `a\.b`,
/// `arr.0`, `arr.#.name`, `#(name=="x").value`, wildcards, `@this`; see `gjson`). Strings come
/// out raw, everything else as JSON.
pub fn select_property(
    key: &str,
    value: &[u8],
    property: Option<&str>,
) -> Result<SecretBytes, DataError> {
    let Some(property) = property.filter(|p| !p.is_empty()) else {
        return Ok(Zeroizing::new(value.to_vec()));
    };
    let parsed = match serde_json::from_slice(value) {
        Ok(v @ (serde_json::Value::Object(_) | serde_json::Value::Array(_))) => ZeroizingJson(v),
        _ => {
            return Err(DataError::NotJsonForProperty {
                key: key.to_string(),
                property: property.to_string(),
            });
        }
    };
    if let Some(v) = parsed.0.get(property) {
        return Ok(json_to_bytes(v));
    }
    super::gjson::get(&parsed.0, property)
        .map(ZeroizingJson)
        .map(|v| json_to_bytes(&v.0))
        .ok_or_else(|| DataError::PropertyNotFound {
            key: key.to_string(),
            property: property.to_string(),
        })
}

/// A parsed JSON document holding secret material; its strings are wiped on drop.
struct ZeroizingJson(serde_json::Value);

impl Drop for ZeroizingJson {
    fn drop(&mut self) {
        fn wipe(v: &mut serde_json::Value) {
            match v {
                serde_json::Value::String(s) => zeroize::Zeroize::zeroize(s),
                serde_json::Value::Array(a) => a.iter_mut().for_each(wipe),
                serde_json::Value::Object(o) => o.values_mut().for_each(wipe),
                _ => {}
            }
        }
        wipe(&mut self.0)
    }
}

/// `dataFrom.extract`: every top-level field of a JSON object becomes a key.
pub fn extract_map(
    key: &str,
    value: &[u8],
    property: Option<&str>,
) -> Result<SecretMap, DataError> {
    let selected = select_property(key, value, property)?;
    match serde_json::from_slice(&selected) {
        Ok(serde_json::Value::Object(map)) => {
            let doc = ZeroizingJson(serde_json::Value::Object(map));
            let mut out = SecretMap::new();
            if let serde_json::Value::Object(m) = &doc.0 {
                for (k, v) in m {
                    out.insert(k.clone(), json_to_bytes(v));
                }
            }
            Ok(out)
        }
        _ => Err(DataError::NotJsonForExtract {
            key: key.to_string(),
        }),
    }
}

/// Applies `decodingStrategy` to one value.
pub fn decode(
    secret_key: &str,
    value: SecretBytes,
    strategy: DecodingStrategy,
) -> Result<SecretBytes, DataError> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
    let err = |strategy| DataError::Decode {
        key: secret_key.to_string(),
        strategy,
    };
    match strategy {
        DecodingStrategy::None => Ok(value),
        DecodingStrategy::Base64 => STANDARD
            .decode(value.trim_ascii())
            .map(Zeroizing::new)
            .map_err(|_| err("base64")),
        DecodingStrategy::Base64Url => URL_SAFE
            .decode(value.trim_ascii())
            .or_else(|_| URL_SAFE_NO_PAD.decode(value.trim_ascii()))
            .map(Zeroizing::new)
            .map_err(|_| err("base64url")),
        // Auto: try standard, then URL-safe base64; otherwise keep the value as it is.
        DecodingStrategy::Auto => Ok(STANDARD
            .decode(value.trim_ascii())
            .or_else(|_| URL_SAFE.decode(value.trim_ascii()))
            .map(Zeroizing::new)
            .unwrap_or(value)),
    }
}

/// Applies `rewrite[]` in order to the keys of a `dataFrom` result.
pub fn rewrite_keys(
    map: SecretMap,
    rewrites: &[ExternalSecretRewrite],
) -> Result<SecretMap, DataError> {
    if rewrites.is_empty() {
        return Ok(map);
    }
    let mut compiled = Vec::new();
    for rw in rewrites {
        let Some(re) = &rw.regexp else {
            return Err(DataError::UnsupportedRewrite);
        };
        let regex = regex::Regex::new(&re.source).map_err(|e| DataError::BadRegexp {
            pattern: re.source.clone(),
            reason: e.to_string(),
        })?;
        compiled.push((regex, re.target.as_str()));
    }
    Ok(map
        .into_iter()
        .map(|(k, v)| {
            let key = compiled.iter().fold(k, |k, (re, target)| {
                re.replace_all(&k, *target).into_owned()
            });
            (key, v)
        })
        .collect())
}

/// ESO's default key conversion for `dataFrom.find` results: characters a Secret key cannot
/// hold become `_`.
pub fn secret_key_from_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-._".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Kubernetes Secret key syntax.
pub fn validate_key(key: &str) -> Result<(), DataError> {
    let ok = !key.is_empty()
        && key.len() <= 253
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(DataError::InvalidKey {
            key: key.to_string(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crds::external_secrets::RewriteRegexp;

    fn s(b: &SecretBytes) -> &str {
        std::str::from_utf8(b).unwrap()
    }

    #[test]
    fn properties() {
        let v =
            br#"{"user":"u","a.b":"literal","nested":{"x":{"y":"deep"},"n":1},"list":["p","q"]}"#;
        assert_eq!(s(&select_property("k", v, Some("user")).unwrap()), "u");
        assert_eq!(s(&select_property("k", v, Some("a.b")).unwrap()), "literal");
        assert_eq!(
            s(&select_property("k", v, Some("nested.x.y")).unwrap()),
            "deep"
        );
        assert_eq!(s(&select_property("k", v, Some("nested.n")).unwrap()), "1");
        assert_eq!(s(&select_property("k", v, Some("list.1")).unwrap()), "q");
        assert_eq!(
            s(&select_property("k", v, Some("nested.x")).unwrap()),
            r#"{"y":"deep"}"#
        );
        assert_eq!(s(&select_property("k", v, None).unwrap()).len(), v.len());
        assert_eq!(
            select_property("k", v, Some("nope")).unwrap_err(),
            DataError::PropertyNotFound {
                key: "k".into(),
                property: "nope".into()
            }
        );
        // ESO's Secrets Manager example (friendslist) and gjson paths beyond dotted ones.
        let friends = br#"{"name":{"first":"Tom"},"friends":[{"first":"Dale","last":"Murphy"},{"first":"Roger","last":"Craig"}]}"#;
        let at = |p| s(&select_property("k", friends, Some(p)).unwrap()).to_string();
        assert_eq!(at("name.first"), "Tom");
        assert_eq!(at("friends.1.first"), "Roger");
        assert_eq!(at("friends.#"), "2");
        assert_eq!(at("friends.#.first"), r#"["Dale","Roger"]"#);
        assert_eq!(at(r#"friends.#(last=="Craig").first"#), "Roger");
        let e = select_property("k", b"CANARY plain text", Some("p")).unwrap_err();
        assert!(!e.to_string().contains("CANARY"));
    }

    #[test]
    fn extract() {
        let m = extract_map("k", br#"{"a":"1","b":{"c":2},"d":true}"#, None).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(s(&m["a"]), "1");
        assert_eq!(s(&m["b"]), r#"{"c":2}"#);
        assert_eq!(s(&m["d"]), "true");
        let m = extract_map("k", br#"{"inner":{"x":"y"}}"#, Some("inner")).unwrap();
        assert_eq!(s(&m["x"]), "y");
        assert!(matches!(
            extract_map("k", b"plain", None),
            Err(DataError::NotJsonForExtract { .. })
        ));
    }

    #[test]
    fn decoding() {
        let z = |t: &str| Zeroizing::new(t.as_bytes().to_vec());
        assert_eq!(
            s(&decode("k", z("aGk="), DecodingStrategy::Base64).unwrap()),
            "hi"
        );
        assert_eq!(
            s(&decode("k", z("aGk="), DecodingStrategy::None).unwrap()),
            "aGk="
        );
    }

    #[test]
    fn decoding_strategies() {
        let z = |t: &[u8]| Zeroizing::new(t.to_vec());
        assert_eq!(
            decode("k", z(b"_-8="), DecodingStrategy::Base64Url)
                .unwrap()
                .to_vec(),
            vec![0xff, 0xef]
        );
        assert_eq!(
            decode("k", z(b"_-8"), DecodingStrategy::Base64Url)
                .unwrap()
                .to_vec(),
            vec![0xff, 0xef]
        );
        assert_eq!(
            decode("k", z(b"aGk="), DecodingStrategy::Auto)
                .unwrap()
                .to_vec(),
            b"hi".to_vec()
        );
        assert_eq!(
            decode("k", z(b"not base64!"), DecodingStrategy::Auto)
                .unwrap()
                .to_vec(),
            b"not base64!".to_vec()
        );
        let e = decode("k", z(b"CANARY!"), DecodingStrategy::Base64).unwrap_err();
        assert!(!e.to_string().contains("CANARY"));
    }

    #[test]
    fn rewrites_apply_in_order() {
        let mut m = SecretMap::new();
        m.insert("db/user".into(), Zeroizing::new(b"u".to_vec()));
        m.insert("db/pass".into(), Zeroizing::new(b"p".to_vec()));
        let rw = |source: &str, target: &str| ExternalSecretRewrite {
            regexp: Some(RewriteRegexp {
                source: source.into(),
                target: target.into(),
            }),
            transform: None,
        };
        let out = rewrite_keys(m, &[rw("^db/", "app_"), rw("_(.*)$", "-$1")]).unwrap();
        assert_eq!(out.keys().collect::<Vec<_>>(), vec!["app-pass", "app-user"]);
        assert!(
            rewrite_keys(
                [("a".to_string(), Zeroizing::new(vec![]))].into(),
                &[rw("(", "")]
            )
            .is_err()
        );
        assert!(validate_key("app-user.x_1").is_ok());
        assert!(validate_key("a/b").is_err());
        assert!(validate_key("").is_err());
    }
}
