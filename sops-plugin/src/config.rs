//! `.sops.yaml`: find the file and pick the first creation rule matching a path.

use std::path::{Path, PathBuf};

use regex::Regex;

use crate::EncryptOptions;
use crate::error::{Error, Result};
use crate::stores::yaml;
use crate::value::Value;

/// Walks up from `start` (at most 100 levels) to find `.sops.yaml` (or `.sops.yml`).
pub fn find_config(start: &Path) -> Option<PathBuf> {
    let mut dir = Some(start);
    for _ in 0..100 {
        let d = dir?;
        for name in [".sops.yaml", ".sops.yml"] {
            let p = d.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
        dir = d.parent();
    }
    None
}

fn str_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Str(s)) => s
            .split(',')
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
            .collect(),
        Some(Value::Seq(items)) => items
            .iter()
            .filter_map(|i| i.scalar_text())
            .flat_map(|s| {
                s.split(',')
                    .map(|x| x.trim().to_string())
                    .collect::<Vec<_>>()
            })
            .filter(|x| !x.is_empty())
            .collect(),
        _ => vec![],
    }
}

fn opt_str(v: Option<&Value>) -> Option<String> {
    v.and_then(|v| v.scalar_text()).filter(|s| !s.is_empty())
}

/// Selects the creation rule for `rel_path` (relative to the config's directory, `/`-separated)
/// in the config text and turns it into encryption options.
pub fn rule_for(config_text: &str, rel_path: &str) -> Result<EncryptOptions> {
    let docs = yaml::parse(config_text).map_err(|e| Error::Config(format!(".sops.yaml: {e}")))?;
    let root = Value::Map(docs.into_iter().next().unwrap_or_default());
    let Some(Value::Seq(rules)) = root.get("creation_rules") else {
        return Err(Error::Config(".sops.yaml has no creation_rules".into()));
    };
    for rule in rules {
        if let Some(re) = opt_str(rule.get("path_regex")) {
            let re = Regex::new(&re)
                .map_err(|e| Error::Config(format!(".sops.yaml: invalid path_regex: {e}")))?;
            if !re.is_match(rel_path) {
                continue;
            }
        }
        let mut o = EncryptOptions {
            unencrypted_suffix: opt_str(rule.get("unencrypted_suffix")),
            encrypted_suffix: opt_str(rule.get("encrypted_suffix")),
            unencrypted_regex: opt_str(rule.get("unencrypted_regex")),
            encrypted_regex: opt_str(rule.get("encrypted_regex")),
            unencrypted_comment_regex: opt_str(rule.get("unencrypted_comment_regex")),
            encrypted_comment_regex: opt_str(rule.get("encrypted_comment_regex")),
            mac_only_encrypted: matches!(rule.get("mac_only_encrypted"), Some(Value::Bool(true))),
            shamir_threshold: match rule.get("shamir_threshold") {
                Some(Value::Int(i)) => usize::try_from(*i).ok(),
                _ => None,
            },
            ..Default::default()
        };
        if let Some(Value::Seq(groups)) = rule.get("key_groups") {
            for g in groups {
                o.key_groups.push(str_list(g.get("age")));
            }
        } else {
            let age = str_list(rule.get("age"));
            if !age.is_empty() {
                o.key_groups.push(age);
            }
        }
        if o.key_groups.iter().all(|g| g.is_empty()) {
            return Err(Error::Config(
                "the matching creation rule has no age recipients (other key types are not supported)".into(),
            ));
        }
        return Ok(o);
    }
    Err(Error::Config(format!(
        "no matching creation rules found for {rel_path}"
    )))
}
