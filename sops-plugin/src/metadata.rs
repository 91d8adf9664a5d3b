//! The `sops` metadata block: parsed for what we use, other key types carried through untouched.

use crate::error::{Error, Result};
use crate::value::{Key, Value, sorted_map};

/// The sops version our writer claims (metadata layout of 3.13: sorted keys).
pub const WRITER_VERSION: &str = "3.13.2";

/// One age stanza: the data key (or a Shamir share) encrypted to `recipient`, armored.
#[derive(Clone, Debug, PartialEq)]
pub struct AgeKey {
    pub recipient: String,
    pub enc: String,
}

/// A key group: age stanzas we use plus other master keys (pgp, kms, ...) kept verbatim.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KeyGroup {
    pub age: Vec<AgeKey>,
    pub other: Vec<(String, Value)>,
}

/// The parsed metadata block.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metadata {
    pub key_groups: Vec<KeyGroup>,
    pub shamir_threshold: Option<usize>,
    pub lastmodified: String,
    pub mac: String,
    pub unencrypted_suffix: Option<String>,
    pub encrypted_suffix: Option<String>,
    pub unencrypted_regex: Option<String>,
    pub encrypted_regex: Option<String>,
    pub unencrypted_comment_regex: Option<String>,
    pub encrypted_comment_regex: Option<String>,
    pub mac_only_encrypted: bool,
    pub version: String,
    /// Fields we do not know, written back as found.
    pub extra: Vec<(String, Value)>,
}

const KEY_TYPES: &[&str] = &[
    "pgp", "kms", "gcp_kms", "hckms", "azure_kv", "hc_vault", "age",
];

fn text(v: &Value) -> Option<String> {
    v.scalar_text()
}

fn parse_group(v: &Value) -> Result<KeyGroup> {
    let mut g = KeyGroup::default();
    let Value::Map(m) = v else {
        return Err(Error::Metadata("a key group is not a map".into()));
    };
    for (k, v) in m {
        let Key::Str(k) = k else { continue };
        if k == "age" {
            g.age = parse_age(v)?;
        } else if !matches!(v, Value::Null) {
            g.other.push((k.clone(), v.clone()));
        }
    }
    Ok(g)
}

fn parse_age(v: &Value) -> Result<Vec<AgeKey>> {
    let Value::Seq(items) = v else {
        return match v {
            Value::Null => Ok(vec![]),
            _ => Err(Error::Metadata("'age' is not a list".into())),
        };
    };
    items
        .iter()
        .filter(|i| !matches!(i, Value::Comment(_)))
        .map(|i| {
            let recipient = i.get("recipient").and_then(text).unwrap_or_default();
            let enc = i.get("enc").and_then(text).ok_or_else(|| {
                Error::Metadata(format!("age entry for '{recipient}' has no 'enc'"))
            })?;
            Ok(AgeKey { recipient, enc })
        })
        .collect()
}

impl Metadata {
    /// Reads the metadata map as found in a file (values may be strings in dotenv/INI).
    pub fn from_value(v: &Value) -> Result<Self> {
        let Value::Map(m) = v else {
            return Err(Error::Metadata("the sops block is not a map".into()));
        };
        let mut md = Metadata::default();
        let mut top = KeyGroup::default();
        let mut grouped = None;
        for (k, v) in m {
            let Key::Str(k) = k else { continue };
            let opt = || text(v).filter(|s| !s.is_empty());
            match k.as_str() {
                "key_groups" => {
                    let Value::Seq(gs) = v else {
                        return Err(Error::Metadata("'key_groups' is not a list".into()));
                    };
                    grouped = Some(gs.iter().map(parse_group).collect::<Result<Vec<_>>>()?);
                }
                "shamir_threshold" => {
                    md.shamir_threshold = match v {
                        Value::Int(i) => usize::try_from(*i).ok(),
                        other => text(other).and_then(|t| t.trim().parse().ok()),
                    }
                }
                "lastmodified" => md.lastmodified = text(v).unwrap_or_default(),
                "mac" => md.mac = text(v).unwrap_or_default(),
                "unencrypted_suffix" => md.unencrypted_suffix = opt(),
                "encrypted_suffix" => md.encrypted_suffix = opt(),
                "unencrypted_regex" => md.unencrypted_regex = opt(),
                "encrypted_regex" => md.encrypted_regex = opt(),
                "unencrypted_comment_regex" => md.unencrypted_comment_regex = opt(),
                "encrypted_comment_regex" => md.encrypted_comment_regex = opt(),
                "mac_only_encrypted" => {
                    md.mac_only_encrypted = match v {
                        Value::Bool(b) => *b,
                        other => text(other).is_some_and(|t| t == "true"),
                    }
                }
                "version" => md.version = text(v).unwrap_or_default(),
                "age" => top.age = parse_age(v)?,
                k if KEY_TYPES.contains(&k) => {
                    if !matches!(v, Value::Null) {
                        top.other.push((k.to_string(), v.clone()))
                    }
                }
                _ => md.extra.push((k.clone(), v.clone())),
            }
        }
        md.key_groups = match grouped {
            Some(g) => g,
            None => vec![top],
        };
        Ok(md)
    }

    fn group_entries(g: &KeyGroup) -> Vec<(String, Value)> {
        let mut e: Vec<(String, Value)> = g.other.clone();
        if !g.age.is_empty() {
            e.push((
                "age".into(),
                Value::Seq(
                    g.age
                        .iter()
                        .map(|a| {
                            sorted_map(vec![
                                ("recipient".into(), Value::Str(a.recipient.clone())),
                                ("enc".into(), Value::Str(a.enc.clone())),
                            ])
                        })
                        .collect(),
                ),
            ));
        }
        e
    }

    /// The metadata map as sops 3.13 writes it: empty fields omitted, keys sorted.
    pub fn to_value(&self) -> Value {
        let mut e: Vec<(String, Value)> = self.extra.clone();
        if self.key_groups.len() == 1 {
            e.extend(Self::group_entries(&self.key_groups[0]));
        } else {
            e.push((
                "key_groups".into(),
                Value::Seq(
                    self.key_groups
                        .iter()
                        .map(|g| sorted_map(Self::group_entries(g)))
                        .collect(),
                ),
            ));
        }
        if let Some(t) = self.shamir_threshold
            && self.key_groups.len() > 1
        {
            e.push(("shamir_threshold".into(), Value::Int(t as i64)));
        }
        e.push(("lastmodified".into(), Value::Str(self.lastmodified.clone())));
        e.push(("mac".into(), Value::Str(self.mac.clone())));
        for (name, v) in [
            ("unencrypted_suffix", &self.unencrypted_suffix),
            ("encrypted_suffix", &self.encrypted_suffix),
            ("unencrypted_regex", &self.unencrypted_regex),
            ("encrypted_regex", &self.encrypted_regex),
            ("unencrypted_comment_regex", &self.unencrypted_comment_regex),
            ("encrypted_comment_regex", &self.encrypted_comment_regex),
        ] {
            if let Some(v) = v {
                e.push((name.into(), Value::Str(v.clone())));
            }
        }
        if self.mac_only_encrypted {
            e.push(("mac_only_encrypted".into(), Value::Bool(true)));
        }
        e.push(("version".into(), Value::Str(self.version.clone())));
        sorted_map(e)
    }

    /// All age recipients of the file, for error messages.
    pub fn age_recipients(&self) -> Vec<String> {
        self.key_groups
            .iter()
            .flat_map(|g| g.age.iter().map(|a| a.recipient.clone()))
            .collect()
    }
}

/// Go's `time.Time.Format(time.RFC3339)` of a parsed RFC 3339 string: fraction dropped,
/// a zero offset written as `Z`. This is the MAC's additional data.
pub fn normalize_rfc3339(s: &str) -> String {
    let s = s.trim();
    let Some(tpos) = s.find(['T', 't']) else {
        return s.to_string();
    };
    let (date, rest) = s.split_at(tpos);
    let rest = &rest[1..];
    let zpos = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let (time, zone) = rest.split_at(zpos);
    let time = time.split('.').next().unwrap_or(time);
    let zone = match zone {
        "" | "z" | "Z" | "+00:00" | "-00:00" => "Z",
        z => z,
    };
    format!("{date}T{time}{zone}")
}

/// Current UTC time formatted like Go's RFC3339 (seconds precision).
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        y,
        m,
        d,
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_normalization() {
        assert_eq!(
            normalize_rfc3339("2026-05-22T20:16:23Z"),
            "2026-05-22T20:16:23Z"
        );
        assert_eq!(
            normalize_rfc3339("2026-05-22T20:16:23.123456Z"),
            "2026-05-22T20:16:23Z"
        );
        assert_eq!(
            normalize_rfc3339("2026-05-22T20:16:23+00:00"),
            "2026-05-22T20:16:23Z"
        );
        assert_eq!(
            normalize_rfc3339("2026-05-22T20:16:23+02:00"),
            "2026-05-22T20:16:23+02:00"
        );
        assert_eq!(now_rfc3339().len(), 20);
    }
}
