//! Argo CD config management plugin `generate`: render an application directory as one YAML
//! stream with every SOPS file decrypted.
//!
//! Without a kustomization, every `.yaml/.yml/.json` file below the directory (sorted, hidden
//! directories skipped) contributes its Kubernetes documents (those with `apiVersion` and
//! `kind`): plain files pass through byte for byte, SOPS files are decrypted. With a
//! `kustomization.yaml` at the top, the directory is copied to a private temporary directory,
//! every SOPS file in the copy (any format, so `secretGenerator` env/ini files work too) is
//! replaced by its plaintext, and `kustomize build` renders the copy. Decrypting *before*
//! kustomize keeps the MAC valid (kustomize re-orders keys and adds labels, which would break
//! decryption of its output) and needs no exec plugin or `--enable-alpha-plugins`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result};
use crate::keys::Keyring;
use crate::stores::{self, Format};
use crate::value::{Map, Value};

/// Render options (from the plugin's environment).
#[derive(Clone, Debug)]
pub struct Options {
    /// The kustomize binary to run when a kustomization is present.
    pub kustomize: String,
    /// Extra arguments for `kustomize build` (e.g. `--enable-helm`).
    pub kustomize_args: Vec<String>,
}

impl Options {
    /// Reads `SOPS_PLUGIN_KUSTOMIZE` (binary) and `ARGOCD_ENV_KUSTOMIZE_BUILD_OPTIONS` (only
    /// a small allow-list of flags, since app authors control `ARGOCD_ENV_*`).
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Self {
        let allowed = [
            "--enable-helm",
            "--load-restrictor=LoadRestrictionsNone",
            "--enable-alpha-plugins",
        ];
        let kustomize_args = env("ARGOCD_ENV_KUSTOMIZE_BUILD_OPTIONS")
            .map(|s| {
                s.split_whitespace()
                    .filter(|a| allowed.contains(a))
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        Options {
            kustomize: env("SOPS_PLUGIN_KUSTOMIZE").unwrap_or_else(|| "kustomize".into()),
            kustomize_args,
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            kustomize: "kustomize".into(),
            kustomize_args: vec![],
        }
    }
}

const KUSTOMIZATION_NAMES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// Error for one file: names the file, carries the library error (which holds no plaintext).
fn file_err(path: &Path, e: Error) -> Error {
    match e {
        Error::Parse { format, reason } => Error::Parse {
            format,
            reason: format!("{}: {reason}", path.display()),
        },
        other => Error::Unsupported(format!("{}: {other}", path.display())),
    }
}

fn io_err(path: &Path, e: std::io::Error) -> Error {
    Error::Unsupported(format!("{}: {e}", path.display()))
}

/// Lists files below `dir`, sorted, skipping hidden entries and symlinks leaving the tree.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| io_err(dir, e))?
        .filter_map(|e| e.ok())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let ft = e.file_type().map_err(|er| io_err(&e.path(), er))?;
        if ft.is_dir() {
            walk(&e.path(), out)?;
        } else if ft.is_file() {
            out.push(e.path());
        }
    }
    Ok(())
}

fn is_manifest(doc: &Map) -> bool {
    let v = Value::Map(doc.clone());
    v.get("apiVersion").is_some() && v.get("kind").is_some()
}

/// Renders one file's Kubernetes documents (decrypted if it is a SOPS file).
pub fn render_file(path: &Path, src: &[u8], keys: &Keyring) -> Result<Vec<String>> {
    let format = Format::from_path(path);
    if !matches!(format, Format::Yaml | Format::Json) {
        return Ok(vec![]);
    }
    match stores::load_encrypted(format, src) {
        Ok(_) => {
            let opened = crate::open(format, src, keys, false).map_err(|e| file_err(path, e))?;
            Ok(opened
                .docs
                .iter()
                .filter(|d| is_manifest(d))
                .map(|d| stores::yaml::emit(std::slice::from_ref(d)))
                .collect())
        }
        Err(Error::MetadataNotFound) => {
            let text = std::str::from_utf8(src)
                .map_err(|_| file_err(path, Error::parse("YAML", "not UTF-8")))?;
            let docs = stores::load_plain(format, src).map_err(|e| file_err(path, e))?;
            if docs.iter().any(is_manifest) {
                // Pass the text through untouched; documents are separated by the caller.
                let mut t = text.to_string();
                if !t.ends_with('\n') {
                    t.push('\n');
                }
                Ok(vec![t])
            } else {
                Ok(vec![])
            }
        }
        Err(e) => Err(file_err(path, e)),
    }
}

/// Joins rendered documents into one stream.
fn join(docs: Vec<String>) -> Vec<u8> {
    let mut out = String::new();
    for d in docs {
        let d = d.strip_prefix("---\n").unwrap_or(&d);
        if d.trim().is_empty() {
            continue;
        }
        out.push_str("---\n");
        out.push_str(d);
    }
    out.into_bytes()
}

/// Renders the application directory (see the module docs).
pub fn render_dir(dir: &Path, keys: &Keyring, opts: &Options) -> Result<Vec<u8>> {
    if KUSTOMIZATION_NAMES.iter().any(|n| dir.join(n).is_file()) {
        return render_kustomize(dir, keys, opts);
    }
    let mut files = vec![];
    walk(dir, &mut files)?;
    let mut docs = vec![];
    for f in files {
        let src = std::fs::read(&f).map_err(|e| io_err(&f, e))?;
        docs.extend(render_file(&f, &src, keys)?);
    }
    Ok(join(docs))
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(|e| io_err(to, e))?;
    for e in std::fs::read_dir(from).map_err(|e| io_err(from, e))? {
        let e = e.map_err(|er| io_err(from, er))?;
        let ft = e.file_type().map_err(|er| io_err(&e.path(), er))?;
        let dest = to.join(e.file_name());
        if ft.is_dir() {
            if e.file_name() != ".git" {
                copy_tree(&e.path(), &dest)?;
            }
        } else if ft.is_file() {
            std::fs::copy(e.path(), &dest).map_err(|er| io_err(&e.path(), er))?;
        }
    }
    Ok(())
}

fn render_kustomize(dir: &Path, keys: &Keyring, opts: &Options) -> Result<Vec<u8>> {
    // Bases outside the app directory (../base) are common, so copy from the repository root
    // Argo CD checked out: the nearest ancestor with .git, else the directory itself.
    let root = dir
        .canonicalize()
        .map_err(|e| io_err(dir, e))?
        .ancestors()
        .find(|a| a.join(".git").exists())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.to_path_buf());
    let abs_dir = dir.canonicalize().map_err(|e| io_err(dir, e))?;
    let rel = abs_dir
        .strip_prefix(&root)
        .unwrap_or(Path::new(""))
        .to_path_buf();
    let tmp = tempfile::Builder::new()
        .prefix("sops-plugin-")
        .tempdir()
        .map_err(|e| Error::Unsupported(format!("cannot create a temporary directory: {e}")))?;
    let work = tmp.path().join("src");
    copy_tree(&root, &work)?;
    let mut files = vec![];
    walk(&work, &mut files)?;
    for f in files {
        let src = std::fs::read(&f).map_err(|e| io_err(&f, e))?;
        let format = Format::from_path(&f);
        if matches!(format, Format::Binary) && !f.to_string_lossy().contains(".enc") {
            // Binary SOPS files are JSON envelopes; only look at them when they say so.
            continue;
        }
        if stores::has_metadata(format, &src) {
            let shown = f.strip_prefix(&work).unwrap_or(&f).to_path_buf();
            let plain = crate::decrypt(format, format, &src, keys, false)
                .map_err(|e| file_err(&shown, e))?;
            std::fs::write(&f, plain.as_slice()).map_err(|e| io_err(&shown, e))?;
        }
    }
    let out = Command::new(&opts.kustomize)
        .arg("build")
        .args(&opts.kustomize_args)
        .arg(work.join(&rel))
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| {
            Error::Unsupported(format!(
                "{} found but '{}' could not be run: {e} (install kustomize in the plugin image or set SOPS_PLUGIN_KUSTOMIZE)",
                dir.join("kustomization.yaml").display(),
                opts.kustomize
            ))
        })?;
    if !out.status.success() {
        // kustomize's stderr may quote file content (now plaintext); report only the status.
        return Err(Error::Unsupported(format!(
            "kustomize build {} failed with {}",
            rel.display(),
            out.status
        )));
    }
    Ok(out.stdout)
}
