//! Whole objects: a Secret sealed into a SealedSecret, and a SealedSecret unsealed into a Secret.

use std::collections::BTreeMap;

use base64::Engine as _;
use crds::{SealedSecret, SealedSecretSpec, SecretTemplateSpec};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{OpenError, SealError, UnsealError};
use crate::hybrid::{open_value, seal_value};
use crate::keys::{PrivateKey, PublicKey};
use crate::open::open_all;
use crate::scope::Scope;

/// Annotations that would carry the plaintext Secret into Git if copied to the template.
const PLAINTEXT_CARRYING_ANNOTATIONS: [&str; 2] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    "kubecfg.ksonnet.io/last-applied-configuration",
];

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Why a Secret could not be sealed.
#[derive(Debug, thiserror::Error)]
pub enum SealSecretError {
    #[error("the Secret has no name (set metadata.name or --name)")]
    MissingName,
    #[error(
        "Secret {name:?} has no namespace: set metadata.namespace or --namespace (needed by the {scope} scope)"
    )]
    MissingNamespace { name: String, scope: Scope },
    #[error("Secret {name:?} has no data or stringData (use --allow-empty-data to seal it anyway)")]
    Empty { name: String },
    #[error("Secret {name:?}, key {key:?}: {source}")]
    Seal {
        name: String,
        key: String,
        source: SealError,
    },
}

/// Options of [`seal_secret`].
#[derive(Clone, Debug, Default)]
pub struct SealSecretOptions {
    pub allow_empty_data: bool,
}

/// The Secret's values with `stringData` folded into `data` (it wins on equal keys), as the
/// API server would store them.
pub fn folded_data(secret: &Secret) -> BTreeMap<String, Zeroizing<Vec<u8>>> {
    let mut data: BTreeMap<String, Zeroizing<Vec<u8>>> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), Zeroizing::new(v.0.clone())))
        .collect();
    for (k, v) in secret.string_data.iter().flatten() {
        data.insert(k.clone(), Zeroizing::new(v.as_bytes().to_vec()));
    }
    data
}

/// Overwrites the Secret's plaintext in memory once it is no longer needed.
pub fn wipe_secret(secret: &mut Secret) {
    for value in secret.data.iter_mut().flat_map(|d| d.values_mut()) {
        value.0.zeroize();
    }
    for value in secret.string_data.iter_mut().flat_map(|d| d.values_mut()) {
        value.zeroize();
    }
}

/// Metadata fit for a template: no server-set fields, no owner references, no annotations that
/// hold the plaintext.
fn template_metadata(meta: &ObjectMeta) -> ObjectMeta {
    let mut meta = meta.clone();
    meta.uid = None;
    meta.resource_version = None;
    meta.generation = None;
    meta.creation_timestamp = None;
    meta.deletion_timestamp = None;
    meta.deletion_grace_period_seconds = None;
    meta.self_link = None;
    meta.managed_fields = None;
    meta.owner_references = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        for key in PLAINTEXT_CARRYING_ANNOTATIONS {
            annotations.remove(key);
        }
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
    meta
}

/// Seals a Secret for `public`, with the scope its annotations say. Name and namespace must be
/// set (the CLI fills them from flags and the kubeconfig first).
pub fn seal_secret(
    secret: &Secret,
    public: &PublicKey,
    options: &SealSecretOptions,
) -> Result<SealedSecret, SealSecretError> {
    let name = secret
        .metadata
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or(SealSecretError::MissingName)?;
    let scope = Scope::from_annotations(secret.metadata.annotations.as_ref());
    let namespace = secret.metadata.namespace.clone().unwrap_or_default();
    if namespace.is_empty() && scope != Scope::ClusterWide {
        return Err(SealSecretError::MissingNamespace { name, scope });
    }
    let data = folded_data(secret);
    if data.is_empty() && !options.allow_empty_data {
        return Err(SealSecretError::Empty { name });
    }

    let label = scope.label(&namespace, &name);
    let mut encrypted_data = BTreeMap::new();
    for (key, value) in &data {
        let sealed = seal_value(public, &label, value).map_err(|source| SealSecretError::Seal {
            name: name.clone(),
            key: key.clone(),
            source,
        })?;
        encrypted_data.insert(key.clone(), B64.encode(sealed));
    }

    let mut annotations = BTreeMap::new();
    scope.write_annotations(&mut annotations);
    let metadata = ObjectMeta {
        name: Some(name),
        namespace: (!namespace.is_empty()).then_some(namespace),
        annotations: (!annotations.is_empty()).then_some(annotations),
        ..Default::default()
    };
    let mut sealed = SealedSecret::new(
        metadata.name.as_deref().unwrap_or_default(),
        SealedSecretSpec {
            encrypted_data,
            template: SecretTemplateSpec {
                metadata: Some(template_metadata(&secret.metadata)),
                type_: secret.type_.clone(),
                immutable: secret.immutable,
                data: None,
            },
            data: None,
        },
    );
    sealed.metadata = metadata;
    Ok(sealed)
}

/// A Secret as unsealed from a SealedSecret. Values are wiped from memory when dropped.
#[derive(Debug, Default)]
pub struct UnsealedSecret {
    pub metadata: ObjectMeta,
    pub type_: String,
    pub immutable: Option<bool>,
    pub data: BTreeMap<String, Zeroizing<Vec<u8>>>,
    /// Position (in the keys given) of the key that opened the first sealed value.
    pub opened_with: Option<usize>,
    /// RSA private-key operations spent, failed tries included.
    pub rsa_operations: usize,
}

impl UnsealedSecret {
    /// The Kubernetes Secret. Its values are plain copies: wipe them with [`wipe_secret`].
    pub fn to_secret(&self) -> Secret {
        Secret {
            metadata: self.metadata.clone(),
            type_: Some(self.type_.clone()),
            immutable: self.immutable,
            data: Some(
                self.data
                    .iter()
                    .map(|(k, v)| (k.clone(), ByteString(v.to_vec())))
                    .collect(),
            ),
            ..Default::default()
        }
    }
}

/// The scope a SealedSecret was sealed in: its own annotations, else its template's.
pub fn sealed_scope(sealed: &SealedSecret) -> Scope {
    let own = Scope::from_annotations(sealed.metadata.annotations.as_ref());
    if own != Scope::Strict {
        return own;
    }
    let template = sealed
        .spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.annotations.as_ref());
    Scope::from_annotations(template)
}

/// Unseals a SealedSecret with `keys`, trying them in the order given. After the first value
/// opens, the key that opened it is tried first for the others.
pub fn unseal(sealed: &SealedSecret, keys: &[&PrivateKey]) -> Result<UnsealedSecret, UnsealError> {
    unseal_parallel(sealed, keys, 1)
}

/// Like [`unseal`], opening up to `threads` values at once once the first value has shown which
/// key to use (the strategy is [`open_all`]'s; what a failed value means is decided here).
pub fn unseal_parallel(
    sealed: &SealedSecret,
    keys: &[&PrivateKey],
    threads: usize,
) -> Result<UnsealedSecret, UnsealError> {
    let name = sealed
        .metadata
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or(UnsealError::MissingName)?;
    let namespace = sealed.metadata.namespace.clone().unwrap_or_default();
    let label = sealed_scope(sealed).label(&namespace, &name);
    let template = &sealed.spec.template;

    let mut out = UnsealedSecret {
        metadata: template
            .metadata
            .as_ref()
            .map(template_metadata)
            .unwrap_or_default(),
        type_: template.type_.clone().unwrap_or_else(|| "Opaque".into()),
        immutable: template.immutable,
        ..Default::default()
    };
    out.metadata.name = Some(name);
    out.metadata.namespace = (!namespace.is_empty()).then_some(namespace);

    let mut errors = Vec::new();
    if let Some(legacy) = &sealed.spec.data {
        if !sealed.spec.encrypted_data.is_empty() {
            return Err(UnsealError::MixedFormats);
        }
        out.data = unseal_legacy(legacy, keys, &label, &mut out)?;
    }

    let mut pending = Vec::new();
    for (key, encoded) in &sealed.spec.encrypted_data {
        match B64.decode(encoded.trim()) {
            Ok(bytes) => pending.push((key.as_str(), bytes)),
            Err(_) => errors.push(UnsealError::BadBase64 { key: key.clone() }),
        }
    }
    for (key, result) in open_all(&pending, keys, &label, threads) {
        match result {
            Ok(opened) => {
                out.rsa_operations += opened.rsa_operations;
                out.opened_with.get_or_insert(opened.key_position);
                out.data.insert(key.to_string(), opened.plaintext);
            }
            Err(source) => {
                out.rsa_operations += keys.len();
                errors.push(UnsealError::Open {
                    key: key.to_string(),
                    source,
                });
            }
        }
    }
    if let Err(e) = apply_template_data(template, sealed, &mut out.data) {
        errors.push(e);
    }
    errors.sort_by_key(|e| e.to_string());
    match errors.len() {
        0 => Ok(out),
        1 => Err(errors.remove(0)),
        _ => Err(UnsealError::Several(errors)),
    }
}

/// `spec.template.data`: a `null` removes the key; a value with `{{` is a Go template rendered
/// over the decrypted values and the plain entries; any other value is Secret data (base64, as
/// in a Secret's `data`). Sealed keys always win over template entries of the same name.
fn apply_template_data(
    template: &SecretTemplateSpec,
    sealed: &SealedSecret,
    data: &mut BTreeMap<String, Zeroizing<Vec<u8>>>,
) -> Result<(), UnsealError> {
    let Some(entries) = &template.data else {
        return Ok(());
    };
    let own = |key: &String| !sealed.spec.encrypted_data.contains_key(key);
    let is_template = |value: &str| value.contains("{{");
    for (key, value) in entries {
        if let Some(value) = value.as_deref().filter(|v| own(key) && !is_template(v)) {
            let bytes = B64
                .decode(value.trim())
                .unwrap_or_else(|_| value.as_bytes().to_vec());
            data.insert(key.clone(), Zeroizing::new(bytes));
        }
    }
    let context = data.clone();
    let mut errors = Vec::new();
    for (key, value) in entries {
        if let Some(value) = value.as_deref().filter(|v| own(key) && is_template(v)) {
            match templating::render(value, &context) {
                Ok(rendered) => {
                    data.insert(key.clone(), rendered);
                }
                Err(e) => errors.push(UnsealError::Template {
                    key: key.clone(),
                    detail: e.to_string(),
                }),
            }
        }
    }
    for (key, value) in entries {
        if value.is_none() {
            data.remove(key);
        }
    }
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => Err(UnsealError::Several(errors)),
    }
}

/// The deprecated v1 format: the whole Secret, JSON-encoded, sealed as one value in `spec.data`.
fn unseal_legacy(
    encoded: &str,
    keys: &[&PrivateKey],
    label: &[u8],
    out: &mut UnsealedSecret,
) -> Result<BTreeMap<String, Zeroizing<Vec<u8>>>, UnsealError> {
    let bytes = B64
        .decode(encoded.trim())
        .map_err(|_| UnsealError::LegacyData("not valid base64".into()))?;
    let opened = open_value(keys.iter().copied(), label, &bytes)
        .map_err(|e: OpenError| UnsealError::LegacyData(e.to_string()))?;
    out.rsa_operations += opened.rsa_operations;
    out.opened_with = Some(opened.key_index);
    let mut secret: Secret = serde_json::from_slice(&opened.plaintext)
        .map_err(|_| UnsealError::LegacyData("the sealed blob is not a Secret".into()))?;
    let data = folded_data(&secret);
    wipe_secret(&mut secret);
    Ok(data)
}
