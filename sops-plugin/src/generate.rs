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
use crate::seal::Sealer;
use crate::stores::{self, Format};
use crate::value::{Map, Value};

/// Render options (from the plugin's environment).
#[derive(Clone, Debug)]
pub struct Options {
    /// Command that builds a kustomization given its directory as last argument.
    pub kustomize: Vec<String>,
    /// Extra arguments for the build (e.g. `--enable-helm`).
    pub kustomize_args: Vec<String>,
    /// Re-seal every rendered Secret as a SealedSecret (`--seal`).
    pub seal: Option<Sealer>,
    /// `ARGOCD_APP_SOURCE_PATH`: the app directory relative to the checkout root.
    pub source_path: Option<String>,
}

fn on_path(env: &dyn Fn(&str) -> Option<String>, prog: &str) -> bool {
    env("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
        .unwrap_or(false)
}

impl Options {
    /// `SOPS_PLUGIN_KUSTOMIZE` (a command line, e.g. `kustomize build` or `kubectl kustomize`),
    /// else `kustomize build` when on PATH, else `kubectl kustomize`. Build flags come from
    /// `ARGOCD_ENV_KUSTOMIZE_BUILD_OPTIONS`, restricted to an allow-list because application
    /// authors control every `ARGOCD_ENV_*` variable.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Self {
        let allowed = ["--enable-helm", "--load-restrictor=LoadRestrictionsNone"];
        let kustomize_args = env("ARGOCD_ENV_KUSTOMIZE_BUILD_OPTIONS")
            .map(|s| {
                s.split_whitespace()
                    .filter(|a| allowed.contains(a))
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        let kustomize = match env("SOPS_PLUGIN_KUSTOMIZE")
            .and_then(|c| shlex::split(&c))
            .filter(|v| !v.is_empty())
        {
            Some(cmd) => cmd,
            None if on_path(env, "kustomize") => vec!["kustomize".into(), "build".into()],
            None if on_path(env, "kubectl") => vec!["kubectl".into(), "kustomize".into()],
            None => vec!["kustomize".into(), "build".into()],
        };
        Options {
            kustomize,
            kustomize_args,
            seal: None,
            source_path: env("ARGOCD_APP_SOURCE_PATH"),
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            kustomize: vec!["kustomize".into(), "build".into()],
            kustomize_args: vec![],
            seal: None,
            source_path: None,
        }
    }
}

const KUSTOMIZATION_NAMES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// Error for one file: names the file, carries the library error (which holds no plaintext).
fn file_err(path: &Path, e: Error) -> Error {
    Error::InFile {
        file: path.display().to_string(),
        error: Box::new(e),
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
pub fn render_file(
    path: &Path,
    src: &[u8],
    keys: &Keyring,
    seal: Option<&Sealer>,
) -> Result<Vec<String>> {
    let format = Format::from_path(path);
    if !matches!(format, Format::Yaml | Format::Json) {
        return Ok(vec![]);
    }
    match stores::load_encrypted(format, src) {
        Ok(_) => {
            let opened = crate::open(format, src, keys, false).map_err(|e| file_err(path, e))?;
            opened
                .docs
                .iter()
                .filter(|d| is_manifest(d))
                .map(|d| emit_doc(d, seal).map_err(|e| file_err(path, e)))
                .collect()
        }
        Err(Error::MetadataNotFound) => {
            let text = std::str::from_utf8(src)
                .map_err(|_| file_err(path, Error::parse("YAML", "not UTF-8")))?;
            let docs = stores::load_plain(format, src).map_err(|e| file_err(path, e))?;
            if seal.is_some() && docs.iter().any(Sealer::is_secret) {
                // A plain Secret in Git is sealed too: its plaintext should not reach Argo CD's cache.
                docs.iter()
                    .filter(|d| is_manifest(d))
                    .map(|d| emit_doc(d, seal).map_err(|e| file_err(path, e)))
                    .collect()
            } else if docs.iter().any(is_manifest) {
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
        // A plain manifest our parser refuses (YAML that go-yaml tolerates, or text that is not
        // YAML at all) carries no SOPS data: hand it to Argo CD as it is, and let Argo CD judge.
        Err(Error::Parse { .. }) if seal.is_none() && !looks_encrypted(src) => {
            if !looks_like_manifest(src) {
                return Ok(vec![]);
            }
            let mut t = String::from_utf8_lossy(src).into_owned();
            if !t.ends_with('\n') {
                t.push('\n');
            }
            Ok(vec![t])
        }
        Err(e) => Err(file_err(path, e)),
    }
}

fn looks_encrypted(src: &[u8]) -> bool {
    src.windows(15).any(|w| w == b"ENC[AES256_GCM,")
}

fn looks_like_manifest(src: &[u8]) -> bool {
    let t = String::from_utf8_lossy(src);
    t.lines().any(|l| l.starts_with("apiVersion:")) && t.lines().any(|l| l.starts_with("kind:"))
}

/// One document as YAML, sealed first when it is a Secret and sealing is on.
fn emit_doc(doc: &Map, seal: Option<&Sealer>) -> Result<String> {
    match seal {
        Some(s) if Sealer::is_secret(doc) => Ok(stores::yaml::emit(&[s.seal(doc)?])),
        _ => Ok(stores::yaml::emit(std::slice::from_ref(doc))),
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
        docs.extend(render_file(&f, &src, keys, opts.seal.as_ref())?);
    }
    Ok(join(docs))
}

/// Upper bound of what one render copies (a guard against copying a huge monorepo per render).
const COPY_LIMIT_BYTES: u64 = 256 << 20;

/// Copies regular files (no symlinks, no hidden directories such as `.git`); returns the bytes
/// copied so far.
fn copy_tree(from: &Path, to: &Path, mut copied: u64) -> Result<u64> {
    std::fs::create_dir_all(to).map_err(|e| io_err(to, e))?;
    for e in std::fs::read_dir(from).map_err(|e| io_err(from, e))? {
        let e = e.map_err(|er| io_err(from, er))?;
        let ft = e.file_type().map_err(|er| io_err(&e.path(), er))?;
        let dest = to.join(e.file_name());
        if ft.is_dir() {
            if !e.file_name().to_string_lossy().starts_with('.') {
                copied = copy_tree(&e.path(), &dest, copied)?;
            }
        } else if ft.is_file() {
            copied += std::fs::copy(e.path(), &dest).map_err(|er| io_err(&e.path(), er))?;
            if copied > COPY_LIMIT_BYTES {
                return Err(Error::Unsupported(format!(
                    "the repository is larger than {} MiB; point the Application at a smaller repository",
                    COPY_LIMIT_BYTES >> 20
                )));
            }
        }
    }
    Ok(copied)
}

/// The checkout root: the application directory minus `ARGOCD_APP_SOURCE_PATH` (what Argo CD
/// hands the plugin), else the nearest ancestor with `.git`, else the directory itself.
fn repo_root(abs_dir: &Path, source_path: Option<&str>) -> PathBuf {
    if let Some(sp) = source_path
        .map(|s| s.trim_matches('/'))
        .filter(|s| !s.is_empty() && *s != ".")
    {
        let sp = Path::new(sp);
        let n = sp.components().count();
        if abs_dir.ends_with(sp)
            && let Some(root) = abs_dir.ancestors().nth(n)
        {
            return root.to_path_buf();
        }
    }
    abs_dir
        .ancestors()
        .find(|a| a.join(".git").exists())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| abs_dir.to_path_buf())
}

fn render_kustomize(dir: &Path, keys: &Keyring, opts: &Options) -> Result<Vec<u8>> {
    // Bases outside the app directory (../base) are common, so copy from the checkout root.
    let abs_dir = dir.canonicalize().map_err(|e| io_err(dir, e))?;
    let root = repo_root(&abs_dir, opts.source_path.as_deref());
    let rel = abs_dir
        .strip_prefix(&root)
        .unwrap_or(Path::new(""))
        .to_path_buf();
    // Plaintext lives only in this private directory (0700), removed when rendering ends.
    let tmp = tempfile::Builder::new()
        .prefix("sops-plugin-")
        .tempdir()
        .map_err(|e| Error::Unsupported(format!("cannot create a temporary directory: {e}")))?;
    let work = tmp.path().join("src");
    copy_tree(&root, &work, 0)?;
    let app = work.join(&rel);
    let mut files = vec![];
    walk(&work, &mut files)?;
    for f in files {
        let src = std::fs::read(&f).map_err(|e| io_err(&f, e))?;
        let format = Format::from_path(&f);
        if format == Format::Binary
            && !(src.first() == Some(&b'{') && src.windows(6).any(|w| w == b"\"sops\""))
        {
            continue;
        }
        if !stores::has_metadata(format, &src) {
            continue;
        }
        let shown = f.strip_prefix(&work).unwrap_or(&f).to_path_buf();
        match crate::decrypt(format, format, &src, keys, false) {
            Ok(plain) => std::fs::write(&f, plain.as_slice()).map_err(|e| io_err(&shown, e))?,
            // Files of other applications may be encrypted for other keys: leave them; if the
            // kustomization uses one, the check on the output below fails the render.
            Err(Error::DataKey(_)) if !f.starts_with(&app) => {}
            Err(e) => return Err(file_err(&shown, e)),
        }
    }
    let (prog, pre) = opts
        .kustomize
        .split_first()
        .ok_or_else(|| Error::Config("empty kustomize command".into()))?;
    let out = Command::new(prog)
        .args(pre)
        .args(&opts.kustomize_args)
        .arg(&app)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| {
            Error::Unsupported(format!(
                "{}: a kustomization is present but '{}' could not be run: {e} (install kustomize in the plugin image or set SOPS_PLUGIN_KUSTOMIZE)",
                dir.display(),
                opts.kustomize.join(" ")
            ))
        })?;
    if !out.status.success() {
        // kustomize's messages may quote file content, now plaintext: report only the status.
        return Err(Error::Unsupported(format!(
            "{}: '{}' failed with {}",
            dir.display(),
            opts.kustomize.join(" "),
            out.status
        )));
    }
    let text = String::from_utf8(out.stdout)
        .map_err(|_| Error::Unsupported("kustomize output is not UTF-8".into()))?;
    let parsed = stores::yaml::parse(&text);
    let still_encrypted = parsed
        .as_ref()
        .map(|docs| {
            docs.iter()
                .any(|d| Value::Map(d.clone()).get("sops").is_some())
        })
        .unwrap_or(false);
    if still_encrypted {
        return Err(Error::Unsupported(format!(
            "{}: the rendered output still contains a SOPS-encrypted resource (no key for it here)",
            dir.display()
        )));
    }
    if let Some(sealer) = &opts.seal {
        let docs =
            parsed.map_err(|e| Error::Unsupported(format!("cannot read kustomize output: {e}")))?;
        let mut out = vec![];
        for d in docs.iter().filter(|d| !d.is_empty()) {
            out.push(emit_doc(d, Some(sealer))?);
        }
        return Ok(join(out));
    }
    Ok(text.into_bytes())
}

/// CMP discovery: the first SOPS-encrypted file below `dir` (YAML, JSON, dotenv or INI), if any.
pub fn discover(dir: &Path) -> Result<Option<PathBuf>> {
    let mut files = vec![];
    walk(dir, &mut files)?;
    for f in files {
        let format = Format::from_path(&f);
        if format == Format::Binary {
            continue;
        }
        if let Ok(src) = std::fs::read(&f) {
            // Cheap pre-filter before parsing: the metadata always names its mac.
            if src.windows(3).any(|w| w == b"mac") && stores::has_metadata(format, &src) {
                return Ok(Some(f));
            }
        }
    }
    Ok(None)
}
