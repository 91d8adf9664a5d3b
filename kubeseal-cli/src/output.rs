//! Rendering objects as Bitnami's kubeseal does (Go field order in JSON, sorted keys in YAML
//! after `---`), and writing files atomically.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result};
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

/// Replaces `path` with `contents` all at once: a temporary file in the same directory, synced,
/// then renamed over the target. A failure leaves the old file as it was.
pub fn write_atomically(path: &Path, contents: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".kubeseal-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file next to {}", path.display()))?;
    if let Ok(meta) = std::fs::metadata(path) {
        // Keep the permissions the user gave the file.
        let _ = temp.as_file().set_permissions(meta.permissions());
    }
    temp.write_all(contents)
        .and_then(|()| temp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    temp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
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
