//! Which namespace and name a sealed value is bound to.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

pub const ANNOTATION_NAMESPACE_WIDE: &str = "sealedsecrets.bitnami.com/namespace-wide";
pub const ANNOTATION_CLUSTER_WIDE: &str = "sealedsecrets.bitnami.com/cluster-wide";

/// The sealing scope. The OAEP label makes a value open only under the same scope.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Bound to namespace and name (label `namespace/name`).
    #[default]
    Strict,
    /// Bound to the namespace only; the Secret may be renamed (label `namespace`).
    NamespaceWide,
    /// Opens anywhere under any name (empty label).
    ClusterWide,
}

impl Scope {
    /// Reads the scope from annotations. Cluster-wide wins when both are set, as in Bitnami's.
    pub fn from_annotations(annotations: Option<&BTreeMap<String, String>>) -> Self {
        let is_true = |key: &str| {
            annotations
                .and_then(|a| a.get(key))
                .is_some_and(|v| v == "true")
        };
        if is_true(ANNOTATION_CLUSTER_WIDE) {
            Scope::ClusterWide
        } else if is_true(ANNOTATION_NAMESPACE_WIDE) {
            Scope::NamespaceWide
        } else {
            Scope::Strict
        }
    }

    /// The OAEP label for an object in this scope.
    pub fn label(self, namespace: &str, name: &str) -> Vec<u8> {
        match self {
            Scope::Strict => format!("{namespace}/{name}").into_bytes(),
            Scope::NamespaceWide => namespace.as_bytes().to_vec(),
            Scope::ClusterWide => Vec::new(),
        }
    }

    /// Sets (or, for strict, removes) the scope annotations, as `kubeseal --scope` does.
    pub fn write_annotations(self, annotations: &mut BTreeMap<String, String>) {
        annotations.remove(ANNOTATION_NAMESPACE_WIDE);
        annotations.remove(ANNOTATION_CLUSTER_WIDE);
        match self {
            Scope::Strict => {}
            Scope::NamespaceWide => {
                annotations.insert(ANNOTATION_NAMESPACE_WIDE.into(), "true".into());
            }
            Scope::ClusterWide => {
                annotations.insert(ANNOTATION_CLUSTER_WIDE.into(), "true".into());
            }
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scope::Strict => "strict",
            Scope::NamespaceWide => "namespace-wide",
            Scope::ClusterWide => "cluster-wide",
        })
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "strict" => Ok(Scope::Strict),
            "namespace-wide" => Ok(Scope::NamespaceWide),
            "cluster-wide" => Ok(Scope::ClusterWide),
            other => Err(format!(
                "unknown scope {other:?}: use strict, namespace-wide or cluster-wide"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_the_scope() {
        assert_eq!(Scope::Strict.label("ns", "n"), b"ns/n");
        assert_eq!(Scope::NamespaceWide.label("ns", "n"), b"ns");
        assert!(Scope::ClusterWide.label("ns", "n").is_empty());
    }

    #[test]
    fn cluster_wide_wins_over_namespace_wide() {
        let mut a = BTreeMap::new();
        a.insert(ANNOTATION_NAMESPACE_WIDE.to_string(), "true".to_string());
        assert_eq!(Scope::from_annotations(Some(&a)), Scope::NamespaceWide);
        a.insert(ANNOTATION_CLUSTER_WIDE.to_string(), "true".to_string());
        assert_eq!(Scope::from_annotations(Some(&a)), Scope::ClusterWide);
        a.insert(ANNOTATION_CLUSTER_WIDE.to_string(), "yes".to_string());
        assert_eq!(Scope::from_annotations(Some(&a)), Scope::NamespaceWide);
    }

    #[test]
    fn write_annotations_round_trips() {
        for scope in [Scope::Strict, Scope::NamespaceWide, Scope::ClusterWide] {
            let mut a = BTreeMap::new();
            Scope::ClusterWide.write_annotations(&mut a);
            scope.write_annotations(&mut a);
            assert_eq!(Scope::from_annotations(Some(&a)), scope);
            assert_eq!(scope.to_string().parse::<Scope>(), Ok(scope));
        }
    }
}
