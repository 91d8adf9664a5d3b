//! `bitnami.com/v1alpha1` `SealedSecret`, field for field as Bitnami's controller serves it.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A Secret encrypted for one cluster's sealing key. Safe to commit to Git.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "bitnami.com",
    version = "v1alpha1",
    kind = "SealedSecret",
    plural = "sealedsecrets",
    shortname = "sealedsecret",
    namespaced,
    status = "SealedSecretStatus",
    derive = "Default",
    derive = "PartialEq",
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[0].message"}"#,
    printcolumn = r#"{"name":"Synced","type":"string","jsonPath":".status.conditions[0].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
pub struct SealedSecretSpec {
    /// Sealed values by Secret key: base64 of `len(2) || RSA-OAEP(session key) || AES-GCM(value)`.
    #[serde(rename = "encryptedData", default)]
    #[schemars(schema_with = "preserve_unknown_string_map")]
    pub encrypted_data: BTreeMap<String, String>,

    /// Metadata, type and plain data of the Secret that unsealing produces.
    #[serde(default, skip_serializing_if = "SecretTemplateSpec::is_empty")]
    pub template: SecretTemplateSpec,

    /// Deprecated v1 format: the whole Secret sealed as one blob (base64). Read, never written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

/// What the unsealed Secret looks like besides its sealed values.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct SecretTemplateSpec {
    /// Labels, annotations and other metadata copied to the Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "nullable_preserved_object")]
    pub metadata: Option<ObjectMeta>,

    /// The Secret's `type` (e.g. `Opaque`, `kubernetes.io/tls`).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,

    /// Makes the Secret immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,

    /// Plain (unsealed) entries of the Secret. A `null` entry removes a key from the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<BTreeMap<String, Option<String>>>,
}

impl SecretTemplateSpec {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// Status written by the controller.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct SealedSecretStatus {
    #[serde(
        rename = "observedGeneration",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<SealedSecretCondition>,
}

/// One condition; the controller writes a single `Synced` condition.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct SealedSecretCondition {
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    #[serde(
        rename = "lastUpdateTime",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub last_update_time: Option<String>,
    #[serde(
        rename = "lastTransitionTime",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub last_transition_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

fn preserve_unknown_string_map(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "additionalProperties": {"type": "string"},
        "x-kubernetes-preserve-unknown-fields": true
    })
}

fn nullable_preserved_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "nullable": true,
        "x-kubernetes-preserve-unknown-fields": true
    })
}
