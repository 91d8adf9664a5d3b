//! `external-secrets.io/v1` `ExternalSecret`, `SecretStore` and `ClusterSecretStore`, with the
//! field names, enum spellings and defaults of External Secrets Operator, so that manifests
//! written for ESO apply unchanged.
//!
//! Only the providers this controller implements (`vault`, `aws`, `fake`) are typed; any other
//! provider key is kept in [`SecretStoreProvider::other`] so that the store still parses and the
//! controller can report "unsupported provider" in its status instead of failing to decode it.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const GROUP: &str = "external-secrets.io";
pub const VERSION: &str = "v1";

// ---------------------------------------------------------------------------------------------
// ExternalSecret
// ---------------------------------------------------------------------------------------------

/// Describes which provider data to fetch and how to write it into a Kubernetes Secret.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "external-secrets.io",
    version = "v1",
    kind = "ExternalSecret",
    derive = "Default",
    derive = "PartialEq",
    plural = "externalsecrets",
    shortname = "es",
    category = "external-secrets",
    namespaced,
    status = "ExternalSecretStatus",
    printcolumn = r#"{"name":"StoreType","type":"string","jsonPath":".spec.secretStoreRef.kind"}"#,
    printcolumn = r#"{"name":"Store","type":"string","jsonPath":".spec.secretStoreRef.name"}"#,
    printcolumn = r#"{"name":"Refresh Interval","type":"string","jsonPath":".spec.refreshInterval"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Last Sync","type":"date","jsonPath":".status.refreshTime"}"#
)]
pub struct ExternalSecretSpec {
    #[serde(rename = "secretStoreRef", default)]
    pub secret_store_ref: SecretStoreRef,

    #[serde(default)]
    pub target: ExternalSecretTarget,

    /// `CreatedOnce`, `Periodic` (default behaviour) or `OnChange`.
    #[serde(
        rename = "refreshPolicy",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub refresh_policy: Option<RefreshPolicy>,

    /// Go duration string (`1h`, `15m30s`); `0` fetches once.
    #[serde(
        rename = "refreshInterval",
        default = "default_refresh_interval",
        skip_serializing_if = "Option::is_none"
    )]
    pub refresh_interval: Option<String>,

    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<ExternalSecretData>,

    #[serde(rename = "dataFrom", default, skip_serializing_if = "Vec::is_empty")]
    pub data_from: Vec<ExternalSecretDataFromRemoteRef>,
}

fn default_refresh_interval() -> Option<String> {
    Some("1h0m0s".to_string())
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum RefreshPolicy {
    CreatedOnce,
    #[default]
    Periodic,
    OnChange,
}

/// Reference to the store an ExternalSecret reads from.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct SecretStoreRef {
    #[serde(default)]
    pub name: String,
    /// `SecretStore` (default) or `ClusterSecretStore`.
    #[serde(default = "default_store_kind")]
    pub kind: String,
}

fn default_store_kind() -> String {
    "SecretStore".to_string()
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum CreationPolicy {
    /// Create the Secret with an owner reference to the ExternalSecret.
    #[default]
    Owner,
    /// Create the Secret without an owner reference; it survives the ExternalSecret.
    Orphan,
    /// Only merge our keys into an existing Secret; never create it.
    Merge,
    /// Create if missing, merge if present, no owner reference.
    CreateOrMerge,
    /// Do not write anything; only report.
    None,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DeletionPolicy {
    /// Keep the Secret when the provider data disappears (ExternalSecret reports an error).
    #[default]
    Retain,
    /// Delete the Secret when all provider data is gone.
    Delete,
    /// Remove our keys from the Secret, keep the Secret.
    Merge,
}

/// Where and how the Secret is written.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ExternalSecretTarget {
    /// Secret name; defaults to the ExternalSecret's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "creationPolicy", default)]
    pub creation_policy: CreationPolicy,
    #[serde(rename = "deletionPolicy", default)]
    pub deletion_policy: DeletionPolicy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<ExternalSecretTemplate>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub immutable: bool,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum TemplateMergePolicy {
    #[default]
    Replace,
    Merge,
}

/// Shape of the written Secret: type, metadata and templated data.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ExternalSecretTemplate {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// Only `v2` exists in `external-secrets.io/v1`.
    #[serde(rename = "engineVersion", default = "default_engine_version")]
    pub engine_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<TemplateMetadata>,
    #[serde(rename = "mergePolicy", default)]
    pub merge_policy: TemplateMergePolicy,
    /// Secret key → template text (Go template syntax, `{{ .key }}`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
    /// Templates from ConfigMaps, Secrets and literals, applied in order before `data`.
    #[serde(
        rename = "templateFrom",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub template_from: Vec<TemplateFrom>,
}

fn default_engine_version() -> String {
    "v2".to_string()
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct TemplateMetadata {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finalizers: Vec<String>,
}

/// One `templateFrom` entry: templates read from a ConfigMap or Secret in the ExternalSecret's
/// namespace, or given inline (`literal`), rendered into `target`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct TemplateFrom {
    #[serde(rename = "configMap", default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<TemplateRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<TemplateRef>,
    /// A template rendering to a YAML map of keys to values (as `templateAs: KeysAndValues`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub literal: Option<String>,
    /// `Data` (default), `Annotations` or `Labels`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// A ConfigMap or Secret holding templates, and which of its keys to use.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct TemplateRef {
    pub name: String,
    #[serde(default)]
    pub items: Vec<TemplateRefItem>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct TemplateRefItem {
    pub key: String,
    #[serde(rename = "templateAs", default)]
    pub template_as: TemplateScope,
}

/// How a `templateFrom` item is used: `Values` renders the item into the key of the same
/// name; `KeysAndValues` renders it into a YAML map whose entries become keys.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum TemplateScope {
    #[default]
    Values,
    KeysAndValues,
}

/// One Secret key filled from one provider value.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ExternalSecretData {
    #[serde(rename = "secretKey")]
    pub secret_key: String,
    #[serde(rename = "remoteRef")]
    pub remote_ref: ExternalSecretDataRemoteRef,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum MetadataPolicy {
    #[default]
    None,
    Fetch,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum ConversionStrategy {
    #[default]
    Default,
    Unicode,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum DecodingStrategy {
    Auto,
    Base64,
    #[serde(rename = "Base64URL")]
    Base64Url,
    #[default]
    None,
}

/// Address of one provider value.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub struct ExternalSecretDataRemoteRef {
    pub key: String,
    #[serde(rename = "metadataPolicy", default)]
    pub metadata_policy: MetadataPolicy,
    /// A field of a JSON value; dotted paths reach nested fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
    /// Provider-specific version (Vault KV v2 version number; AWS stage or `uuid/<id>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(rename = "conversionStrategy", default)]
    pub conversion_strategy: ConversionStrategy,
    #[serde(rename = "decodingStrategy", default)]
    pub decoding_strategy: DecodingStrategy,
}

/// One `dataFrom` entry: exactly one of `extract` or `find`, plus optional key rewrites.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ExternalSecretDataFromRemoteRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extract: Option<ExternalSecretDataRemoteRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub find: Option<ExternalSecretFind>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rewrite: Vec<ExternalSecretRewrite>,
}

/// Selects many provider secrets by path, name regexp and tags.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ExternalSecretFind {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<FindName>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    #[serde(rename = "conversionStrategy", default)]
    pub conversion_strategy: ConversionStrategy,
    #[serde(rename = "decodingStrategy", default)]
    pub decoding_strategy: DecodingStrategy,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct FindName {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regexp: Option<String>,
}

/// Renames keys of a `dataFrom` result.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ExternalSecretRewrite {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regexp: Option<RewriteRegexp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<RewriteTransform>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct RewriteRegexp {
    pub source: String,
    pub target: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct RewriteTransform {
    pub template: String,
}

/// Status written by the controller.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ExternalSecretStatus {
    /// Last successful fetch and write (RFC 3339).
    #[serde(
        rename = "refreshTime",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub refresh_time: Option<String>,
    /// `<generation>-<hash of labels and annotations>` of the last synced object.
    #[serde(
        rename = "syncedResourceVersion",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub synced_resource_version: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<StatusCondition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<LocalObjectReference>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct LocalObjectReference {
    #[serde(default)]
    pub name: String,
}

/// A status condition (`Ready`, `Deleted`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct StatusCondition {
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(
        rename = "lastTransitionTime",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub last_transition_time: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// SecretStore / ClusterSecretStore
// ---------------------------------------------------------------------------------------------

/// A namespaced store: where and how to reach one provider.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "external-secrets.io",
    version = "v1",
    kind = "SecretStore",
    derive = "Default",
    derive = "PartialEq",
    plural = "secretstores",
    shortname = "ss",
    category = "external-secrets",
    namespaced,
    status = "SecretStoreStatus",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Capabilities","type":"string","jsonPath":".status.capabilities"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#
)]
pub struct SecretStoreSpec {
    #[serde(flatten)]
    pub store: StoreSpec,
}

/// A cluster-wide store, usable from the namespaces its `conditions` allow.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "external-secrets.io",
    version = "v1",
    kind = "ClusterSecretStore",
    derive = "Default",
    derive = "PartialEq",
    plural = "clustersecretstores",
    shortname = "css",
    category = "external-secrets",
    status = "SecretStoreStatus",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Capabilities","type":"string","jsonPath":".status.capabilities"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#
)]
pub struct ClusterSecretStoreSpec {
    #[serde(flatten)]
    pub store: StoreSpec,
}

/// The fields shared by `SecretStore` and `ClusterSecretStore`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct StoreSpec {
    /// Controller class that handles this store (`--controller-class`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<String>,
    pub provider: SecretStoreProvider,
    #[serde(
        rename = "retrySettings",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub retry_settings: Option<RetrySettings>,
    /// Store re-validation period in seconds (0 = controller default).
    #[serde(
        rename = "refreshInterval",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub refresh_interval: Option<i64>,
    /// ClusterSecretStore only: which namespaces may use the store.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ClusterSecretStoreCondition>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct RetrySettings {
    #[serde(
        rename = "maxRetries",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_retries: Option<i32>,
    #[serde(
        rename = "retryInterval",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub retry_interval: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ClusterSecretStoreCondition {
    #[serde(
        rename = "namespaceSelector",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub namespace_selector: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    #[serde(
        rename = "namespaceRegexes",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub namespace_regexes: Vec<String>,
}

/// Kubernetes label selector (`matchLabels`, `matchExpressions`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct LabelSelector {
    #[serde(
        rename = "matchLabels",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub match_labels: BTreeMap<String, String>,
    #[serde(
        rename = "matchExpressions",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct LabelSelectorRequirement {
    pub key: String,
    /// `In`, `NotIn`, `Exists`, `DoesNotExist`.
    pub operator: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// Exactly one provider. Unknown providers are preserved in `other` and reported by the
/// controller as unsupported.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct SecretStoreProvider {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault: Option<VaultProvider>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsProvider>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fake: Option<FakeProvider>,
    #[serde(flatten, default)]
    #[schemars(skip)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// Reference to one key of a Secret. `namespace` is honoured only for ClusterSecretStores.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct SecretKeySelector {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ServiceAccountSelector {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct CaProvider {
    /// `Secret` or `ConfigMap`.
    #[serde(rename = "type")]
    pub type_: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

// --- Vault -------------------------------------------------------------------------------------

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum VaultKvVersion {
    #[serde(rename = "v1")]
    V1,
    #[default]
    #[serde(rename = "v2")]
    V2,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct VaultProvider {
    /// Vault address, e.g. `https://vault.example:8200`.
    pub server: String,
    /// KV mount path (e.g. `secret`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default)]
    pub version: VaultKvVersion,
    /// Vault Enterprise namespace, sent as `X-Vault-Namespace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// PEM CA bundle, base64 in the manifest.
    #[serde(rename = "caBundle", default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<String>,
    #[serde(
        rename = "caProvider",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ca_provider: Option<CaProvider>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<VaultAuth>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(flatten, default)]
    #[schemars(skip)]
    pub other: BTreeMap<String, serde_json::Value>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct VaultAuth {
    /// Namespace for the login only (overrides the provider's namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(
        rename = "tokenSecretRef",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub token_secret_ref: Option<SecretKeySelector>,
    #[serde(rename = "appRole", default, skip_serializing_if = "Option::is_none")]
    pub app_role: Option<VaultAppRole>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<VaultKubernetesAuth>,
    /// Auth methods this controller does not implement (jwt, cert, ldap, ...).
    #[serde(flatten, default)]
    #[schemars(skip)]
    pub other: BTreeMap<String, serde_json::Value>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct VaultAppRole {
    #[serde(default = "default_approle_path")]
    pub path: String,
    #[serde(rename = "roleId", default, skip_serializing_if = "Option::is_none")]
    pub role_id: Option<String>,
    #[serde(rename = "roleRef", default, skip_serializing_if = "Option::is_none")]
    pub role_ref: Option<SecretKeySelector>,
    #[serde(rename = "secretRef")]
    pub secret_ref: SecretKeySelector,
}

fn default_approle_path() -> String {
    "approle".to_string()
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct VaultKubernetesAuth {
    #[serde(rename = "mountPath", default = "default_kubernetes_path")]
    pub mount_path: String,
    pub role: String,
    #[serde(
        rename = "serviceAccountRef",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub service_account_ref: Option<ServiceAccountSelector>,
    #[serde(rename = "secretRef", default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeySelector>,
}

fn default_kubernetes_path() -> String {
    "kubernetes".to_string()
}

// --- AWS ---------------------------------------------------------------------------------------

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct AwsProvider {
    /// `SecretsManager` (the only service this controller implements) or `ParameterStore`.
    pub service: String,
    pub region: String,
    /// Role ARN to assume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(
        rename = "externalID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub external_id: Option<String>,
    /// Prepended to every key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AwsAuth>,
    #[serde(flatten, default)]
    #[schemars(skip)]
    pub other: BTreeMap<String, serde_json::Value>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct AwsAuth {
    #[serde(rename = "secretRef", default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<AwsAuthSecretRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<AwsJwtAuth>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct AwsAuthSecretRef {
    #[serde(rename = "accessKeyIDSecretRef")]
    pub access_key_id_secret_ref: SecretKeySelector,
    #[serde(rename = "secretAccessKeySecretRef")]
    pub secret_access_key_secret_ref: SecretKeySelector,
    #[serde(
        rename = "sessionTokenSecretRef",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub session_token_secret_ref: Option<SecretKeySelector>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct AwsJwtAuth {
    #[serde(
        rename = "serviceAccountRef",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub service_account_ref: Option<ServiceAccountSelector>,
}

// --- fake --------------------------------------------------------------------------------------

/// Static data inside the store itself, for demos and tests.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct FakeProvider {
    #[serde(default)]
    pub data: Vec<FakeProviderData>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct FakeProviderData {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// Store status.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct SecretStoreStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<StatusCondition>,
    /// `ReadOnly`, `WriteOnly` or `ReadWrite`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<String>,
}

impl SecretStoreProvider {
    /// Name of the configured provider, or an error text naming every key present.
    pub fn kind(&self) -> Result<&'static str, String> {
        let mut known = Vec::new();
        if self.vault.is_some() {
            known.push("vault");
        }
        if self.aws.is_some() {
            known.push("aws");
        }
        if self.fake.is_some() {
            known.push("fake");
        }
        match (known.as_slice(), self.other.is_empty()) {
            ([one], true) => Ok(one),
            ([], true) => Err("spec.provider is empty: exactly one provider must be set".into()),
            ([], false) => Err(format!(
                "unsupported provider {}: this controller implements vault, aws and fake",
                self.other.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
            _ => Err(format!(
                "spec.provider sets several providers ({}): exactly one must be set",
                known
                    .iter()
                    .map(|s| s.to_string())
                    .chain(self.other.keys().cloned())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_esos() {
        let es: ExternalSecret = serde_yaml::from_str(
            "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {name: x}\n\
             spec:\n  secretStoreRef: {name: s}\n  data:\n  - secretKey: a\n    remoteRef: {key: k}\n",
        )
        .unwrap();
        assert_eq!(es.spec.refresh_interval.as_deref(), Some("1h0m0s"));
        assert_eq!(es.spec.secret_store_ref.kind, "SecretStore");
        assert_eq!(es.spec.target.creation_policy, CreationPolicy::Owner);
        assert_eq!(es.spec.target.deletion_policy, DeletionPolicy::Retain);
        let r = &es.spec.data[0].remote_ref;
        assert_eq!(r.decoding_strategy, DecodingStrategy::None);
        assert_eq!(r.metadata_policy, MetadataPolicy::None);
    }

    #[test]
    fn unknown_provider_parses_and_is_reported() {
        let ss: SecretStore = serde_yaml::from_str(
            "apiVersion: external-secrets.io/v1\nkind: SecretStore\nmetadata: {name: x}\n\
             spec:\n  provider:\n    gcpsm: {projectID: p}\n",
        )
        .unwrap();
        let err = ss.spec.store.provider.kind().unwrap_err();
        assert!(err.contains("unsupported provider gcpsm"), "{err}");
        let ss: SecretStore = serde_yaml::from_str(
            "apiVersion: external-secrets.io/v1\nkind: SecretStore\nmetadata: {name: x}\n\
             spec:\n  provider:\n    vault: {server: 'http://v:8200', path: secret, auth: {jwt: {path: jwt}}}\n",
        )
        .unwrap();
        let vault = ss.spec.store.provider.vault.as_ref().unwrap();
        assert_eq!(vault.version, VaultKvVersion::V2);
        assert!(vault.auth.as_ref().unwrap().other.contains_key("jwt"));
        assert_eq!(ss.spec.store.provider.kind(), Ok("vault"));
    }

    #[test]
    fn decoding_strategy_spellings() {
        for (text, want) in [
            ("Auto", DecodingStrategy::Auto),
            ("Base64", DecodingStrategy::Base64),
            ("Base64URL", DecodingStrategy::Base64Url),
            ("None", DecodingStrategy::None),
        ] {
            let got: DecodingStrategy = serde_json::from_value(text.into()).unwrap();
            assert_eq!(got, want);
        }
    }
}
