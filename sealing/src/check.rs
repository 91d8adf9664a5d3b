//! Offline checks of a SealedSecret with only the public key (`kubeseal --validate --cert`):
//! every value well-formed with an RSA part of the key's size, a name and namespace to seal for,
//! scope annotations and template metadata that agree. Whether the values open, and whether they
//! were sealed for this name and scope, needs the private key: not checked here.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use crds::SealedSecret;

use crate::hybrid::check_shape;
use crate::keys::PublicKey;
use crate::scope::{ANNOTATION_CLUSTER_WIDE, ANNOTATION_NAMESPACE_WIDE, Scope};
use crate::secret::sealed_scope;

/// One thing wrong with a SealedSecret: the key of `spec.encryptedData` it concerns, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub key: Option<String>,
    pub detail: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "key {key:?}: {}", self.detail),
            None => f.write_str(&self.detail),
        }
    }
}

fn problem(key: Option<&str>, detail: impl Into<String>) -> Problem {
    Problem {
        key: key.map(str::to_string),
        detail: detail.into(),
    }
}

/// Every problem found in `sealed` for the key `public`; empty when it is well-formed.
pub fn check_sealed_secret(sealed: &SealedSecret, public: &PublicKey) -> Vec<Problem> {
    let mut problems = Vec::new();
    let name = sealed.metadata.name.as_deref().unwrap_or("");
    let namespace = sealed.metadata.namespace.as_deref().unwrap_or("");
    let scope = sealed_scope(sealed);
    if name.is_empty() {
        problems.push(problem(None, "has no metadata.name"));
    }
    if namespace.is_empty() && scope != Scope::ClusterWide {
        problems.push(problem(
            None,
            format!("has no metadata.namespace (the {scope} scope binds values to one)"),
        ));
    }
    check_scope(sealed, scope, &mut problems);

    let values = &sealed.spec.encrypted_data;
    if sealed.spec.data.is_some() && !values.is_empty() {
        problems.push(problem(
            None,
            "spec.data and spec.encryptedData are both set; use only encryptedData",
        ));
    }
    let legacy = sealed.spec.data.iter().map(|v| ("spec.data", v));
    for (key, encoded) in values.iter().map(|(k, v)| (k.as_str(), v)).chain(legacy) {
        match base64::engine::general_purpose::STANDARD.decode(encoded.trim()) {
            Ok(bytes) => {
                if let Err(e) = check_shape(public, &bytes) {
                    problems.push(problem(Some(key), e.to_string()));
                }
            }
            Err(_) => problems.push(problem(Some(key), "value is not valid base64")),
        }
    }
    problems
}

/// The scope annotations must say one thing, and the template must name the same object when
/// the scope binds values to its name or namespace.
fn check_scope(sealed: &SealedSecret, scope: Scope, problems: &mut Vec<Problem>) {
    let template = sealed.spec.template.metadata.as_ref();
    let own = sealed.metadata.annotations.as_ref();
    let template_annotations = template.and_then(|m| m.annotations.as_ref());
    for (place, annotations) in [
        ("metadata", own),
        ("spec.template.metadata", template_annotations),
    ] {
        if [ANNOTATION_CLUSTER_WIDE, ANNOTATION_NAMESPACE_WIDE]
            .iter()
            .all(|key| is_true(annotations, key))
        {
            problems.push(problem(
                None,
                format!("{place} sets both the namespace-wide and the cluster-wide annotation"),
            ));
        }
    }
    if names_scope(own) && names_scope(template_annotations) {
        let (own, templated) = (
            Scope::from_annotations(own),
            Scope::from_annotations(template_annotations),
        );
        if own != templated {
            problems.push(problem(
                None,
                format!(
                    "metadata says the {own} scope, spec.template.metadata the {templated} scope"
                ),
            ));
        }
    }
    let Some(template) = template else { return };
    let mut bound = Vec::new();
    if scope != Scope::ClusterWide {
        bound.push(("namespace", &sealed.metadata.namespace, &template.namespace));
    }
    if scope == Scope::Strict {
        bound.push(("name", &sealed.metadata.name, &template.name));
    }
    for (field, own, templated) in bound {
        let (own, templated) = (
            own.as_deref().unwrap_or(""),
            templated.as_deref().unwrap_or(""),
        );
        if !templated.is_empty() && own != templated {
            problems.push(problem(
                None,
                format!(
                    "metadata.{field} {own:?} differs from spec.template.metadata.{field} {templated:?}: values sealed for one do not open under the other in the {scope} scope"
                ),
            ));
        }
    }
}

fn is_true(annotations: Option<&BTreeMap<String, String>>, key: &str) -> bool {
    annotations
        .and_then(|a| a.get(key))
        .is_some_and(|v| v == "true")
}

fn names_scope(annotations: Option<&BTreeMap<String, String>>) -> bool {
    annotations.is_some_and(|a| {
        a.contains_key(ANNOTATION_CLUSTER_WIDE) || a.contains_key(ANNOTATION_NAMESPACE_WIDE)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::keys::PrivateKey;

    #[test]
    fn names_namespaces_and_both_scope_annotations() {
        let key = PrivateKey::generate(2048).unwrap();
        let value = crate::hybrid::seal_value(key.public_key(), b"", b"v").unwrap();
        let mut sealed = SealedSecret::new("", crds::SealedSecretSpec::default());
        sealed.metadata.name = None;
        sealed.spec.encrypted_data.insert(
            "k".into(),
            base64::engine::general_purpose::STANDARD.encode(value),
        );
        let found: Vec<String> = check_sealed_secret(&sealed, key.public_key())
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            found,
            [
                "has no metadata.name",
                "has no metadata.namespace (the strict scope binds values to one)"
            ]
        );

        sealed.metadata.name = Some("n".into());
        sealed.metadata.annotations = Some(BTreeMap::from([
            (ANNOTATION_CLUSTER_WIDE.to_string(), "true".to_string()),
            (ANNOTATION_NAMESPACE_WIDE.to_string(), "true".to_string()),
        ]));
        let found = check_sealed_secret(&sealed, key.public_key());
        assert_eq!(
            found,
            [problem(
                None,
                "metadata sets both the namespace-wide and the cluster-wide annotation"
            )]
        );
    }
}
