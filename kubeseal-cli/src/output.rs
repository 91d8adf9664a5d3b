//! Rendering objects as Bitnami's kubeseal does (Go field order in JSON, sorted keys in YAML
//! after `---`), and writing files atomically.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use crate::cli::Format;

/// `ObjectMeta` in Go's field order, with `creationTimestamp: null` as client-go writes it.
#[derive(Serialize)]
struct GoMeta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a String>,
    #[serde(rename = "generateName", skip_serializing_if = "Option::is_none")]
    generate_name: Option<&'a String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'a String>,
    #[serde(rename = "creationTimestamp")]
    creation_timestamp: Option<()>,
    #[serde(skip_serializing_if = "Option::is_none")]
    labels: Option<&'a BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<&'a BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finalizers: Option<&'a Vec<String>>,
}

impl<'a> GoMeta<'a> {
    fn of(meta: &'a ObjectMeta) -> Self {
        let non_empty =
            |m: &'a Option<BTreeMap<String, String>>| m.as_ref().filter(|m| !m.is_empty());
        Self {
            name: meta.name.as_ref(),
            generate_name: meta.generate_name.as_ref(),
            namespace: meta.namespace.as_ref(),
            creation_timestamp: None,
            labels: non_empty(&meta.labels),
            annotations: non_empty(&meta.annotations),
            finalizers: meta.finalizers.as_ref().filter(|f| !f.is_empty()),
        }
    }
}

#[derive(Serialize)]
struct GoSealedSecret<'a> {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    metadata: GoMeta<'a>,
    spec: GoSealedSpec<'a>,
}

#[derive(Serialize)]
struct GoSealedSpec<'a> {
    template: GoTemplate<'a>,
    #[serde(rename = "encryptedData")]
    encrypted_data: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct GoTemplate<'a> {
    metadata: GoMeta<'a>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    type_: Option<&'a String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    immutable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a BTreeMap<String, Option<String>>>,
}

#[derive(Serialize)]
struct GoSecret<'a> {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    metadata: GoMeta<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    immutable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a BTreeMap<String, ByteString>>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    type_: Option<&'a String>,
}

fn render<T: Serialize>(value: &T, format: Format) -> Result<String> {
    Ok(match format {
        Format::Json => {
            let mut text = serde_json::to_string_pretty(value)?;
            text.push('\n');
            text
        }
        // Going through a sorted JSON value gives the alphabetical key order of Go's YAML.
        Format::Yaml => format!(
            "---\n{}",
            serde_yaml::to_string(&serde_json::to_value(value)?)?
        ),
    })
}

pub fn render_sealed_secret(sealed: &crds::SealedSecret, format: Format) -> Result<String> {
    let empty = ObjectMeta::default();
    let template = &sealed.spec.template;
    render(
        &GoSealedSecret {
            kind: "SealedSecret",
            api_version: "bitnami.com/v1alpha1",
            metadata: GoMeta::of(&sealed.metadata),
            spec: GoSealedSpec {
                template: GoTemplate {
                    metadata: GoMeta::of(template.metadata.as_ref().unwrap_or(&empty)),
                    type_: template.type_.as_ref(),
                    immutable: template.immutable,
                    data: template.data.as_ref(),
                },
                encrypted_data: &sealed.spec.encrypted_data,
            },
        },
        format,
    )
}

/// The rendered Secret holds plaintext (base64): the caller wipes the returned text.
pub fn render_secret(secret: &Secret, format: Format) -> Result<String> {
    render(
        &GoSecret {
            kind: "Secret",
            api_version: "v1",
            metadata: GoMeta::of(&secret.metadata),
            immutable: secret.immutable,
            data: secret.data.as_ref(),
            type_: secret.type_.as_ref(),
        },
        format,
    )
}

/// Writes `contents` to `path` as a user of `>` would expect, but all at once: a temporary file
/// in the same directory, synced, then renamed over the target, so a failure leaves the old file
/// as it was. What `path` is decides the details:
/// - a symlink: the file it points to is replaced (next to it) and the link stays a link;
/// - an existing file keeps its mode (and its owner and group, where we may set them);
/// - a read-only file (no write bit), or one the OS would not let us open for writing, is refused:
///   the rename would otherwise replace it behind the user's back, even as root;
/// - a file with other hard links is refused: a rename would split them, leaving the other
///   names with the old content;
/// - a device or FIFO (`-w /dev/stdout`) is written to directly: there is no file to replace.
pub fn write_atomically(path: &Path, contents: &[u8]) -> Result<()> {
    let target = match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => {
            let target = std::fs::canonicalize(path)
                .with_context(|| format!("cannot resolve {}", path.display()))?;
            check_replaceable(path, &target, &meta)?;
            target
        }
        Ok(meta) if meta.is_dir() => bail!("{} is a directory", path.display()),
        Ok(_) => return write_through(path, contents),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => resolve_links(path)?,
        Err(e) => return Err(e).with_context(|| format!("cannot write {}", path.display())),
    };
    replace(&target, contents).with_context(|| format!("cannot write {}", path.display()))
}

fn check_replaceable(path: &Path, target: &Path, meta: &std::fs::Metadata) -> Result<()> {
    let shown = if path == target {
        path.display().to_string()
    } else {
        format!("{} (-> {})", path.display(), target.display())
    };
    if meta.permissions().readonly() {
        bail!("{shown} is read-only: not replaced (make it writable first, e.g. chmod u+w)");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        if meta.nlink() > 1 {
            bail!(
                "{shown} has {} hard links: not replaced, as the other links would keep the old content (write to a new file, or remove the other links)",
                meta.nlink()
            );
        }
    }
    // Opening without truncating asks the OS the question `>` would, without changing anything.
    std::fs::OpenOptions::new()
        .write(true)
        .open(target)
        .with_context(|| format!("{shown} is not writable: not replaced"))?;
    Ok(())
}

/// The path a chain of symlinks ends at, for a file that does not exist yet.
fn resolve_links(path: &Path) -> Result<PathBuf> {
    let mut current = path.to_path_buf();
    // The same bound as Linux's ELOOP.
    for _ in 0..40 {
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = std::fs::read_link(&current)
                    .with_context(|| format!("cannot read the symlink {}", current.display()))?;
                current = match current.parent() {
                    Some(dir) => dir.join(link),
                    None => link,
                };
            }
            _ => return Ok(current),
        }
    }
    bail!("{}: too many levels of symbolic links", path.display())
}

fn replace(target: &Path, contents: &[u8]) -> Result<()> {
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".kubeseal-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| {
            format!(
                "cannot create a temporary file next to {}",
                target.display()
            )
        })?;
    if let Ok(meta) = std::fs::metadata(target) {
        temp.as_file()
            .set_permissions(meta.permissions())
            .context("cannot keep the file's mode")?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt as _;
            // Only root may give a file away; others keep what the OS allows.
            let _ = std::os::unix::fs::fchown(temp.as_file(), Some(meta.uid()), Some(meta.gid()));
        }
    }
    temp.write_all(contents)
        .and_then(|()| temp.as_file().sync_all())?;
    temp.persist(target).map_err(|e| e.error)?;
    Ok(())
}

fn write_through(path: &Path, contents: &[u8]) -> Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(contents).and_then(|()| f.flush()))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Writes to the -w file (atomically) or stdout.
pub fn emit(target: Option<&Path>, contents: &str) -> Result<()> {
    match target {
        Some(path) => write_atomically(path, contents.as_bytes()),
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(contents.as_bytes())
                .and_then(|()| stdout.flush())
                .context("cannot write to stdout")
        }
    }
}
