//! A KRM exec function in the style of KSOPS, for teams that keep a `kind: ksops` generator in
//! their kustomizations: `sops-plugin krm` (or the binary invoked as `ksops`) reads a
//! ResourceList on stdin and returns it with the generated resources appended.
//!
//! functionConfig fields: `files` (whole SOPS-encrypted manifests) and `secretFrom[]`
//! (`metadata`, `type`, `files` as `[key=]path`, `binaryFiles`, `envs`), paths relative to the
//! working directory kustomize runs the function in.

use std::io::Read;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::error::{Error, Result};
use crate::generate::MAX_SOPS_FILE_BYTES;
use crate::keys::Keyring;
use crate::stores::{self, Format};
use crate::value::{Key, Map, Value, sorted_map};

fn cfg_err(msg: impl Into<String>) -> Error {
    Error::Config(format!("ksops functionConfig: {}", msg.into()))
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Seq(items)) => items.iter().filter_map(Value::scalar_text).collect(),
        _ => vec![],
    }
}

fn read(dir: &Path, rel: &str) -> Result<Vec<u8>> {
    let p = Path::new(rel);
    if p.is_absolute()
        || p.components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        // Same restriction kustomize applies to its own loader by default.
        return Err(cfg_err(format!(
            "'{rel}' must be a relative path inside the kustomization"
        )));
    }
    // A symlink may point anywhere: the file's real location must be inside too.
    let io = |e: std::io::Error| Error::Unsupported(format!("{rel}: {e}"));
    let root = dir.canonicalize().map_err(io)?;
    let real = dir.join(p).canonicalize().map_err(io)?;
    if !real.starts_with(&root) {
        return Err(cfg_err(format!(
            "'{rel}' is a symlink to a file outside the kustomization; it is not followed"
        )));
    }
    let f = std::fs::File::open(&real).map_err(io)?;
    let mut buf = vec![];
    f.take(MAX_SOPS_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(io)?;
    if buf.len() as u64 > MAX_SOPS_FILE_BYTES {
        return Err(cfg_err(format!(
            "'{rel}' is larger than {} MiB",
            MAX_SOPS_FILE_BYTES >> 20
        )));
    }
    Ok(buf)
}

fn decrypt_file(dir: &Path, rel: &str, format: Format, keys: &Keyring) -> Result<Vec<u8>> {
    let src = read(dir, rel)?;
    crate::decrypt(format, format, &src, keys, false)
        .map(|z| z.to_vec())
        .map_err(|e| Error::InFile {
            file: rel.to_string(),
            error: Box::new(e),
        })
}

/// Runs the function on a ResourceList (YAML text); returns the output ResourceList.
pub fn run(input: &str, dir: &Path, keys: &Keyring) -> Result<String> {
    let docs = stores::yaml::parse(input)?;
    let list = Value::Map(docs.into_iter().next().unwrap_or_default());
    let config = list
        .get("functionConfig")
        .ok_or_else(|| cfg_err("missing"))?;
    let mut items: Vec<Value> = match list.get("items") {
        Some(Value::Seq(s)) => s.clone(),
        _ => vec![],
    };
    for rel in strings(config.get("files")) {
        let plain = decrypt_file(dir, &rel, Format::from_path(Path::new(&rel)), keys)?;
        let fmt = Format::from_path(Path::new(&rel));
        for d in stores::load_plain(fmt, &plain).map_err(|e| Error::InFile {
            file: rel.clone(),
            error: Box::new(e),
        })? {
            if !d.is_empty() {
                items.push(Value::Map(d));
            }
        }
    }
    if let Some(Value::Seq(gens)) = config.get("secretFrom") {
        for g in gens {
            items.push(secret_from(g, dir, keys)?);
        }
    }
    let out = Map(vec![
        (
            Key::Str("apiVersion".into()),
            Value::Str("config.kubernetes.io/v1".into()),
        ),
        (Key::Str("kind".into()), Value::Str("ResourceList".into())),
        (Key::Str("items".into()), Value::Seq(items)),
    ]);
    Ok(stores::yaml::emit(&[out]))
}

fn secret_from(g: &Value, dir: &Path, keys: &Keyring) -> Result<Value> {
    let metadata = g
        .get("metadata")
        .cloned()
        .ok_or_else(|| cfg_err("secretFrom entry without metadata"))?;
    if metadata
        .get("name")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(cfg_err("secretFrom entry without metadata.name"));
    }
    let mut data: Vec<(String, Value)> = vec![];
    let mut add = |k: String, v: &[u8]| -> Result<()> {
        if data.iter().any(|(kk, _)| *kk == k) {
            return Err(cfg_err(format!("key '{k}' generated twice")));
        }
        data.push((k, Value::Str(B64.encode(v))));
        Ok(())
    };
    for (spec, binary) in strings(g.get("files"))
        .into_iter()
        .map(|s| (s, false))
        .chain(strings(g.get("binaryFiles")).into_iter().map(|s| (s, true)))
    {
        let (key, rel) = match spec.split_once('=') {
            Some((k, p)) => (k.to_string(), p.to_string()),
            None => (
                Path::new(&spec)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| spec.clone()),
                spec.clone(),
            ),
        };
        let format = if binary {
            Format::Binary
        } else {
            Format::from_path(Path::new(&rel))
        };
        let plain = decrypt_file(dir, &rel, format, keys)?;
        add(key, &plain)?;
    }
    for rel in strings(g.get("envs")) {
        let plain = decrypt_file(dir, &rel, Format::Dotenv, keys)?;
        let docs = stores::load_plain(Format::Dotenv, &plain)?;
        for (k, v) in docs.into_iter().next().unwrap_or_default() {
            if let (Key::Str(k), Some(t)) = (k, v.scalar_text()) {
                add(k, t.as_bytes())?;
            }
        }
    }
    data.sort_by(|a, b| a.0.cmp(&b.0));
    let mut secret = vec![
        ("apiVersion".to_string(), Value::Str("v1".into())),
        ("kind".to_string(), Value::Str("Secret".into())),
        ("metadata".to_string(), metadata),
        ("data".to_string(), sorted_map(data)),
    ];
    if let Some(t) = g.get("type").and_then(Value::as_str) {
        secret.push(("type".to_string(), Value::Str(t.to_string())));
    }
    Ok(Value::Map(
        secret.into_iter().map(|(k, v)| (Key::Str(k), v)).collect(),
    ))
}
