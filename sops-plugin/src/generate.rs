//! Argo CD config management plugin `generate`: render an application directory as one YAML
//! stream with every SOPS file decrypted.
//!
//! Without a kustomization, every `.yaml/.yml/.json` file below the directory (sorted, hidden
//! directories skipped) contributes its Kubernetes documents (those with `apiVersion` and
//! `kind`): plain files pass through byte for byte, SOPS files are decrypted. With a
//! `kustomization.yaml` at the top, the checkout is copied to a private scratch directory
//! ([`crate::scratch`]), every SOPS file in the copy (any format, so `secretGenerator` env/ini
//! files work too) is replaced by its plaintext, and `kustomize build` renders the copy.
//!
//! What the repository may make the plugin read is bounded: nothing outside the checkout
//! (symlinks are not followed, kustomization paths may not leave it, application settings
//! cannot widen kustomize's load restrictor), sizes per file and per render (see the `MAX_*`
//! constants), and two last checks on the output: no private key text of a loaded identity
//! ([`Keyring::check_output`]) and, with `--seal`, no decrypted value outside a SealedSecret
//! ([`crate::seal::Plaintexts`]).
//!
//! Decrypting *before* kustomize keeps the MAC valid (kustomize re-orders keys and adds labels,
//! which would break decryption of its output) and needs no exec plugin or
//! `--enable-alpha-plugins`.

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::keys::Keyring;
use crate::scratch::Scratch;
use crate::seal::{Plaintexts, Sealer};
use crate::stores::{self, Format};
use crate::value::{Map, Value};

/// Largest SOPS file a render decrypts: its tree is held in memory, several times its size.
pub const MAX_SOPS_FILE_BYTES: u64 = 8 << 20;
/// Largest plain file a render reads (plain manifests pass through without a tree).
pub const MAX_FILE_BYTES: u64 = 64 << 20;
/// Most bytes a render reads from the repository (without a kustomization) or takes from
/// kustomize's output: the rendered stream is held in memory for the output checks.
pub const MAX_RENDER_BYTES: u64 = 128 << 20;
/// Most bytes copied for a kustomize render (streamed to the scratch directory, not held; the
/// Deployment gives it a 64Mi memory-backed `/tmp`).
pub const MAX_COPY_BYTES: u64 = 48 << 20;
/// Deepest directory nesting walked.
const MAX_DEPTH: usize = 64;

/// Flags an Application may pass to kustomize through `ARGOCD_ENV_KUSTOMIZE_BUILD_OPTIONS`:
/// none of them widens what kustomize reads (`--load-restrictor` is operator-only).
pub const APP_KUSTOMIZE_FLAGS: [&str; 1] = ["--enable-helm"];

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
    /// else `kustomize build` when on PATH, else `kubectl kustomize`. Build flags: the
    /// operator's `SOPS_PLUGIN_KUSTOMIZE_BUILD_OPTIONS` (any flag, e.g.
    /// `--load-restrictor=LoadRestrictionsNone`), then the Application's
    /// `ARGOCD_ENV_KUSTOMIZE_BUILD_OPTIONS` restricted to [`APP_KUSTOMIZE_FLAGS`], because
    /// application authors control every `ARGOCD_ENV_*` variable.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Self {
        let mut kustomize_args: Vec<String> = env("SOPS_PLUGIN_KUSTOMIZE_BUILD_OPTIONS")
            .and_then(|s| shlex::split(&s))
            .unwrap_or_default();
        kustomize_args.extend(
            env("ARGOCD_ENV_KUSTOMIZE_BUILD_OPTIONS")
                .map(|s| {
                    s.split_whitespace()
                        .filter(|a| APP_KUSTOMIZE_FLAGS.contains(a))
                        .map(String::from)
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default(),
        );
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

/// Lists regular files below `dir`, sorted, skipping hidden entries and symlinks.
fn walk(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(Error::Unsupported(format!(
            "{}: directories nested deeper than {MAX_DEPTH} levels",
            dir.display()
        )));
    }
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
        // The entry's own type: a symlink is neither a directory nor a file here.
        let ft = e.file_type().map_err(|er| io_err(&e.path(), er))?;
        if ft.is_dir() {
            walk(&e.path(), out, depth + 1)?;
        } else if ft.is_file() {
            out.push(e.path());
        }
    }
    Ok(())
}

/// Reads a file the repository names, refusing it above `limit` or when the render's
/// running total would pass [`MAX_RENDER_BYTES`].
fn read_bounded(path: &Path, limit: u64, total: &mut u64) -> Result<Vec<u8>> {
    let f = std::fs::File::open(path).map_err(|e| io_err(path, e))?;
    let mut buf = vec![];
    f.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| io_err(path, e))?;
    if buf.len() as u64 > limit {
        return Err(Error::Unsupported(format!(
            "{}: larger than {} MiB, the limit for one file",
            path.display(),
            limit >> 20
        )));
    }
    *total += buf.len() as u64;
    if *total > MAX_RENDER_BYTES {
        return Err(Error::Unsupported(format!(
            "{}: the application's files add up to more than {} MiB, the limit for one render",
            path.display(),
            MAX_RENDER_BYTES >> 20
        )));
    }
    Ok(buf)
}

fn is_manifest(doc: &Map) -> bool {
    doc.get("apiVersion").is_some() && doc.get("kind").is_some()
}

/// A `kind: List` (or `SecretList`...) document's items; with `--seal` each is sealed on its
/// own, so Secrets inside a List are not passed through.
fn expand_lists(doc: &Map) -> Vec<Map> {
    let is_list = doc
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k.ends_with("List"));
    match (is_list, doc.get("items")) {
        (true, Some(Value::Seq(items))) => items
            .iter()
            .filter_map(|i| match i {
                Value::Map(m) => Some(m.clone()),
                _ => None,
            })
            .collect(),
        _ => vec![doc.clone()],
    }
}

/// Renders one file's Kubernetes documents into `out` (decrypted if it is a SOPS file; values
/// decrypted are recorded in `seen`).
pub fn render_file(
    path: &Path,
    src: &[u8],
    keys: &Keyring,
    seal: Option<&Sealer>,
    seen: &mut Plaintexts,
    out: &mut Vec<u8>,
) -> Result<()> {
    let format = Format::from_path(path);
    if !matches!(format, Format::Yaml | Format::Json) {
        return Ok(());
    }
    if stores::may_be_sops(format, src) {
        if src.len() as u64 > MAX_SOPS_FILE_BYTES && looks_encrypted(src) {
            return Err(file_err(path, too_large_sops()));
        }
        match stores::load_encrypted(format, src) {
            Ok(_) => {
                let opened =
                    crate::open(format, src, keys, false).map_err(|e| file_err(path, e))?;
                seen.add_opened(&path.display().to_string(), &opened);
                for d in opened.docs.iter().filter(|d| is_manifest(d)) {
                    let docs = match seal {
                        Some(_) => expand_lists(d),
                        None => vec![d.clone()],
                    };
                    for d in docs.iter().filter(|d| is_manifest(d)) {
                        push_doc(out, &emit_doc(d, seal).map_err(|e| file_err(path, e))?);
                    }
                }
                return Ok(());
            }
            Err(Error::MetadataNotFound) => {}
            Err(e) if seal.is_some() || looks_encrypted(src) => return Err(file_err(path, e)),
            Err(_) => {}
        }
    }
    let text =
        std::str::from_utf8(src).map_err(|_| file_err(path, Error::parse("YAML", "not UTF-8")))?;
    let kinds = match stores::yaml::top_level_kinds(text) {
        Ok(k) => k,
        // A plain manifest our parser refuses (YAML that go-yaml tolerates, or text that is not
        // YAML at all) carries no SOPS data: hand it to Argo CD as it is, and let Argo CD judge.
        Err(e) if seal.is_some() || looks_encrypted(src) => return Err(file_err(path, e)),
        Err(_) => {
            if looks_like_manifest(src) {
                push_doc(out, text);
            }
            return Ok(());
        }
    };
    let manifests = kinds.iter().any(|(a, k)| a.is_some() && k.is_some());
    let secret_inside = kinds.iter().any(|(a, k)| {
        k.as_deref() == Some("Secret") && a.as_deref() == Some("v1")
            || k.as_deref().is_some_and(|k| k.ends_with("List"))
    });
    if seal.is_some() && secret_inside {
        // A plain Secret in Git is sealed too: its plaintext should not reach Argo CD's cache.
        let docs = stores::load_plain(format, src).map_err(|e| file_err(path, e))?;
        for d in docs.iter().flat_map(expand_lists).filter(is_manifest) {
            push_doc(out, &emit_doc(&d, seal).map_err(|e| file_err(path, e))?);
        }
    } else if manifests {
        // Passed through untouched; documents are separated by `push_doc`.
        push_doc(out, text);
    }
    Ok(())
}

fn too_large_sops() -> Error {
    Error::Unsupported(format!(
        "a SOPS file larger than {} MiB is not decrypted (the limit for one file)",
        MAX_SOPS_FILE_BYTES >> 20
    ))
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

/// Appends one rendered document (or file of documents) to the stream, `---` first.
fn push_doc(out: &mut Vec<u8>, d: &str) {
    let d = d.strip_prefix("---\n").unwrap_or(d);
    if d.trim().is_empty() {
        return;
    }
    out.extend_from_slice(b"---\n");
    out.extend_from_slice(d.as_bytes());
    if !d.ends_with('\n') {
        out.push(b'\n');
    }
}

/// Where the application lives: the checkout root and the application directory, both with
/// symlinks resolved, and the application's path inside the checkout.
#[derive(Debug)]
struct AppDir {
    root: PathBuf,
    app: PathBuf,
    rel: PathBuf,
}

/// `path` made absolute without resolving symlinks (`..` removed lexically). For the working
/// directory, `PWD` is used when it names it: the kernel's answer has symlinks resolved already.
fn absolute_lexical(path: &Path) -> Result<PathBuf> {
    let cwd = std::env::current_dir().map_err(|e| io_err(path, e))?;
    let base = std::env::var_os("PWD")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute() && same_file(p, &cwd))
        .unwrap_or(cwd);
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Ok(out)
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
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

impl AppDir {
    /// Refuses an application directory that is, or lies below, a symlink inside the checkout,
    /// and one whose real location is outside the checkout.
    fn resolve(dir: &Path, source_path: Option<&str>) -> Result<Self> {
        let lexical = absolute_lexical(dir)?;
        let root_lex = repo_root(&lexical, source_path);
        let symlink = |p: &Path| {
            std::fs::symlink_metadata(p)
                .map(|m| m.file_type().is_symlink())
                .unwrap_or(false)
        };
        let refuse = || {
            Error::Unsupported(format!(
                "{}: the application directory is a symlink (or lies below one); it is not followed",
                dir.display()
            ))
        };
        if symlink(&lexical) {
            return Err(refuse());
        }
        let mut p = root_lex.clone();
        for c in lexical
            .strip_prefix(&root_lex)
            .unwrap_or(Path::new(""))
            .components()
        {
            p.push(c);
            if symlink(&p) {
                return Err(refuse());
            }
        }
        let app = lexical.canonicalize().map_err(|e| io_err(dir, e))?;
        let root = root_lex.canonicalize().map_err(|e| io_err(&root_lex, e))?;
        let rel = app.strip_prefix(&root).map_err(|_| refuse())?.to_path_buf();
        Ok(AppDir { root, app, rel })
    }
}

/// Renders the application directory (see the module docs) and checks the output.
pub fn render_dir(dir: &Path, keys: &Keyring, opts: &Options) -> Result<Vec<u8>> {
    let app = AppDir::resolve(dir, opts.source_path.as_deref())?;
    let mut seen = Plaintexts::default();
    let out = if KUSTOMIZATION_NAMES
        .iter()
        .any(|n| app.app.join(n).is_file())
    {
        render_kustomize(&app, keys, opts, &mut seen)?
    } else {
        let mut files = vec![];
        walk(&app.app, &mut files, 0)?;
        let mut out = vec![];
        let mut total = 0;
        for f in files {
            if !matches!(Format::from_path(&f), Format::Yaml | Format::Json) {
                continue;
            }
            let src = read_bounded(&f, MAX_FILE_BYTES, &mut total)?;
            render_file(&f, &src, keys, opts.seal.as_ref(), &mut seen, &mut out)?;
        }
        out
    };
    keys.check_output(&out)?;
    if opts.seal.is_some() {
        seen.check_output(&out)?;
    }
    Ok(out)
}

/// Where a kustomize render is at while copying: bytes so far, decrypted values.
struct Copy<'a> {
    scratch: &'a Scratch,
    keys: &'a Keyring,
    seen: &'a mut Plaintexts,
    app_rel: &'a Path,
    copied: u64,
}

impl Copy<'_> {
    /// Copies regular files (no symlinks, no hidden directories such as `.git`), decrypting SOPS
    /// files and checking kustomization files on the way. `rel` is the path inside the checkout.
    fn tree(&mut self, from: &Path, to: &Path, rel: &Path, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(Error::Unsupported(format!(
                "{}: directories nested deeper than {MAX_DEPTH} levels",
                rel.display()
            )));
        }
        self.scratch.create_dir(to)?;
        for e in std::fs::read_dir(from).map_err(|e| io_err(from, e))? {
            let e = e.map_err(|er| io_err(from, er))?;
            let ft = e.file_type().map_err(|er| io_err(&e.path(), er))?;
            let name = e.file_name();
            let (dest, rel) = (to.join(&name), rel.join(&name));
            if ft.is_dir() {
                if !name.to_string_lossy().starts_with('.') {
                    self.tree(&e.path(), &dest, &rel, depth + 1)?;
                }
            } else if ft.is_file() {
                self.file(&e.path(), &dest, &rel)?;
            }
        }
        Ok(())
    }

    fn file(&mut self, from: &Path, dest: &Path, rel: &Path) -> Result<()> {
        let len = std::fs::metadata(from).map_err(|e| io_err(rel, e))?.len();
        self.copied += len;
        if self.copied > MAX_COPY_BYTES {
            return Err(Error::Unsupported(format!(
                "the repository is larger than {} MiB; point the Application at a smaller repository",
                MAX_COPY_BYTES >> 20
            )));
        }
        if len > MAX_SOPS_FILE_BYTES {
            return self.stream(from, dest, rel);
        }
        let src = std::fs::read(from).map_err(|e| io_err(rel, e))?;
        if KUSTOMIZATION_NAMES
            .iter()
            .any(|n| rel.file_name() == Some(n.as_ref()))
        {
            check_kustomization(rel, &src)?;
        }
        let format = Format::from_path(rel);
        if !stores::is_sops(format, &src) {
            return self.scratch.write(dest, &src);
        }
        match crate::open(format, &src, self.keys, false) {
            Ok(opened) => {
                self.seen.add_opened(&rel.display().to_string(), &opened);
                let plain = Zeroizing::new(
                    stores::emit_plain(format, &opened.docs).map_err(|e| file_err(rel, e))?,
                );
                self.scratch.write(dest, &plain)
            }
            // Files of other applications may be encrypted for other keys: leave them; if the
            // kustomization uses one, the check on the output fails the render.
            Err(Error::DataKey(_)) if !rel.starts_with(self.app_rel) => {
                self.scratch.write(dest, &src)
            }
            Err(e) => Err(file_err(rel, e)),
        }
    }

    /// Copies a file too large to be a SOPS file the plugin decrypts, refusing one that is.
    fn stream(&mut self, from: &Path, dest: &Path, rel: &Path) -> Result<()> {
        const MARK: &[u8] = b"ENC[AES256_GCM,";
        let mut input = std::fs::File::open(from).map_err(|e| io_err(rel, e))?;
        let mut output = self.scratch.create(dest)?;
        let mut buf = vec![0u8; 1 << 20];
        let mut tail: Vec<u8> = vec![];
        loop {
            let n = input.read(&mut buf).map_err(|e| io_err(rel, e))?;
            if n == 0 {
                return Ok(());
            }
            tail.extend_from_slice(&buf[..n]);
            if tail.windows(MARK.len()).any(|w| w == MARK) {
                return Err(file_err(rel, too_large_sops()));
            }
            output.write_all(&buf[..n]).map_err(|e| io_err(dest, e))?;
            tail.drain(..tail.len().saturating_sub(MARK.len()));
        }
    }
}

/// Kustomization fields that name files or directories: lists of paths, maps whose `path`
/// does, and generator entries.
const PATH_LISTS: [&str; 9] = [
    "resources",
    "bases",
    "components",
    "crds",
    "configurations",
    "generators",
    "transformers",
    "validators",
    "patchesStrategicMerge",
];
const PATH_ENTRY_LISTS: [&str; 3] = ["patches", "patchesJson6902", "replacements"];

/// Refuses a kustomization that names a path outside the checkout: absolute, `file://`, or with
/// more `..` than it has directories above it. Checked on every kustomization in the copy, so
/// bases and components are covered too; kustomize's own load restrictor then keeps each one
/// inside its directory.
fn check_kustomization(rel: &Path, src: &[u8]) -> Result<()> {
    let docs = stores::load_plain(Format::Yaml, src).map_err(|e| file_err(rel, e))?;
    let dir = rel.parent().unwrap_or(Path::new(""));
    let mut paths: Vec<(String, String)> = vec![];
    let strs = |v: Option<&Value>| -> Vec<String> {
        match v {
            Some(Value::Seq(items)) => items.iter().filter_map(Value::scalar_text).collect(),
            Some(v) => v.scalar_text().into_iter().collect(),
            None => vec![],
        }
    };
    for doc in &docs {
        for field in PATH_LISTS {
            for p in strs(doc.get(field)) {
                paths.push((field.to_string(), p));
            }
        }
        for field in PATH_ENTRY_LISTS {
            if let Some(Value::Seq(items)) = doc.get(field) {
                for i in items {
                    for p in strs(i.get("path")) {
                        paths.push((format!("{field}.path"), p));
                    }
                }
            }
        }
        for field in ["configMapGenerator", "secretGenerator"] {
            if let Some(Value::Seq(items)) = doc.get(field) {
                for i in items {
                    for p in strs(i.get("files")) {
                        let p = p.split_once('=').map_or(p.as_str(), |(_, p)| p).to_string();
                        paths.push((format!("{field}.files"), p));
                    }
                    for key in ["envs", "env"] {
                        for p in strs(i.get(key)) {
                            paths.push((format!("{field}.{key}"), p));
                        }
                    }
                }
            }
        }
        if let Some(Value::Seq(items)) = doc.get("helmCharts") {
            for i in items {
                for key in ["valuesFile", "additionalValuesFiles"] {
                    for p in strs(i.get(key)) {
                        paths.push((format!("helmCharts.{key}"), p));
                    }
                }
            }
        }
        if let Some(g) = doc.get("helmGlobals") {
            for key in ["chartHome", "configHome"] {
                for p in strs(g.get(key)) {
                    paths.push((format!("helmGlobals.{key}"), p));
                }
            }
        }
        if let Some(o) = doc.get("openapi") {
            for p in strs(o.get("path")) {
                paths.push(("openapi.path".into(), p));
            }
        }
    }
    for (field, p) in paths {
        if !stays_inside(dir, &p) {
            return Err(Error::Unsupported(format!(
                "{}: {field} entry '{}' points outside the repository; a kustomization may only \
                 read files of its own repository",
                rel.display(),
                p.chars().take(200).collect::<String>()
            )));
        }
    }
    Ok(())
}

/// Whether a kustomization path, relative to its directory `dir` inside the checkout, stays
/// inside the checkout. Inline content (a patch or generator written in place) and remote
/// URLs other than `file://` read nothing local.
fn stays_inside(dir: &Path, p: &str) -> bool {
    let p = p.trim();
    if p.contains('\n') {
        return true;
    }
    if let Some((scheme, _)) = p.split_once("://") {
        return !scheme.eq_ignore_ascii_case("file");
    }
    if p.starts_with('/') || p.starts_with('~') {
        return false;
    }
    let mut depth = dir.components().count() as i64;
    for part in p.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => depth += 1,
        }
    }
    true
}

fn render_kustomize(
    app: &AppDir,
    keys: &Keyring,
    opts: &Options,
    seen: &mut Plaintexts,
) -> Result<Vec<u8>> {
    // Bases outside the app directory (../base) are common, so copy from the checkout root.
    let scratch = Scratch::new()?;
    let work = scratch.path().join("src");
    Copy {
        scratch: &scratch,
        keys,
        seen,
        app_rel: &app.rel,
        copied: 0,
    }
    .tree(&app.root, &work, Path::new(""), 0)?;
    let shown = app.app.display();
    let (prog, pre) = opts
        .kustomize
        .split_first()
        .ok_or_else(|| Error::Config("empty kustomize command".into()))?;
    let mut child = Command::new(prog)
        .args(pre)
        .args(&opts.kustomize_args)
        .arg(work.join(&app.rel))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            Error::Unsupported(format!(
                "{shown}: a kustomization is present but '{}' could not be run: {e} (install kustomize in the plugin image or set SOPS_PLUGIN_KUSTOMIZE)",
                opts.kustomize.join(" ")
            ))
        })?;
    crate::scratch::set_child(Some(child.id()));
    let mut text = vec![];
    let read = child
        .stdout
        .take()
        .map(|o| o.take(MAX_RENDER_BYTES + 1).read_to_end(&mut text));
    if text.len() as u64 > MAX_RENDER_BYTES {
        let _ = child.kill();
    }
    let status = child.wait();
    crate::scratch::set_child(None);
    drop(scratch);
    if text.len() as u64 > MAX_RENDER_BYTES {
        return Err(Error::Unsupported(format!(
            "{shown}: kustomize printed more than {} MiB, the limit for one render",
            MAX_RENDER_BYTES >> 20
        )));
    }
    let status = status.map_err(|e| io_err(&app.app, e))?;
    if let Some(Err(e)) = read {
        return Err(io_err(&app.app, e));
    }
    if !status.success() {
        // kustomize's messages may quote file content, now plaintext: report only the status.
        return Err(Error::Unsupported(format!(
            "{shown}: '{}' failed with {status}",
            opts.kustomize.join(" ")
        )));
    }
    let text = String::from_utf8(text)
        .map_err(|_| Error::Unsupported("kustomize output is not UTF-8".into()))?;
    // kustomize writes block YAML with top-level keys in column 0.
    if text.lines().any(|l| l.starts_with("sops:")) {
        return Err(Error::Unsupported(format!(
            "{shown}: the rendered output still contains a SOPS-encrypted resource (no key for it here)"
        )));
    }
    if let Some(sealer) = &opts.seal {
        let mut out = vec![];
        for chunk in stores::yaml::split_documents(&text) {
            let docs = stores::yaml::parse(chunk)
                .map_err(|e| Error::Unsupported(format!("cannot read kustomize output: {e}")))?;
            for d in docs.iter().filter(|d| !d.is_empty()) {
                push_doc(&mut out, &emit_doc(d, Some(sealer))?);
            }
        }
        return Ok(out);
    }
    Ok(text.into_bytes())
}

/// CMP discovery: the first SOPS-encrypted file below `dir` (YAML, JSON, dotenv or INI), if any.
pub fn discover(dir: &Path) -> Result<Option<PathBuf>> {
    let mut files = vec![];
    walk(dir, &mut files, 0)?;
    for f in files {
        let format = Format::from_path(&f);
        if format == Format::Binary {
            continue;
        }
        let mut total = 0;
        if let Ok(src) = read_bounded(&f, MAX_SOPS_FILE_BYTES, &mut total)
            && stores::is_sops(format, &src)
        {
            return Ok(Some(f));
        }
    }
    Ok(None)
}
