//! Choosing a store: which SecretStore / ClusterSecretStore an ExternalSecret may use, which
//! provider it configures, and the tenant boundary for every namespace its auth refs name
//! ([`ResolvedStore::ref_namespace`]). Reading the credentials is `credentials.rs`; the
//! provider clients are kept in `registry.rs`.

use crds::external_secrets::{
    AwsProvider as AwsSpec, ClusterSecretStore, ExternalSecret, FakeProvider as FakeSpec,
    SecretStore, SecretStoreProvider, StoreSpec, VaultProvider as VaultSpec,
};
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::runtime::reflector::{self, ObjectRef};
use std::sync::Arc;

use super::provider::ProviderError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} {name:?} not found")]
    NotFound { kind: String, name: String },
    #[error("{0}")]
    NotAllowed(String),
    #[error("invalid store: {0}")]
    Invalid(String),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

/// A store as an ExternalSecret sees it.
#[derive(Clone, Debug)]
pub struct ResolvedStore {
    /// `SecretStore/<ns>/<name>` or `ClusterSecretStore/<name>`: the metrics label.
    pub id: String,
    pub kind: String,
    pub name: String,
    /// Namespace whose Secrets the auth refs read by default.
    pub secrets_namespace: String,
    pub cluster: bool,
    pub spec: StoreSpec,
}

impl ResolvedStore {
    /// The store as its own status reconciler sees it: a SecretStore reads its namespace, a
    /// ClusterSecretStore only the namespaces its refs name.
    pub fn standalone(
        kind: &str,
        namespace: Option<String>,
        name: String,
        spec: StoreSpec,
    ) -> Self {
        ResolvedStore {
            id: match &namespace {
                Some(ns) => format!("{kind}/{ns}/{name}"),
                None => format!("{kind}/{name}"),
            },
            kind: kind.to_string(),
            cluster: namespace.is_none(),
            secrets_namespace: namespace.unwrap_or_default(),
            name,
            spec,
        }
    }

    /// The tenant boundary, written once: a namespaced store reads only its own namespace
    /// (whatever a ref says); a cluster store reads the namespace a ref names, else the
    /// namespace of the ExternalSecret using it. `what` names the ref in the error.
    pub fn ref_namespace(&self, named: Option<&str>, what: &str) -> Result<String, StoreError> {
        let ns = match named {
            Some(n) if self.cluster && !n.is_empty() => n,
            _ => self.secrets_namespace.as_str(),
        };
        if ns.is_empty() {
            return Err(StoreError::Invalid(format!(
                "{what} of a ClusterSecretStore needs a namespace"
            )));
        }
        Ok(ns.to_string())
    }

    /// The one provider the store configures.
    pub fn provider(&self) -> Result<SelectedProvider<'_>, StoreError> {
        SelectedProvider::of(&self.spec.provider)
    }
}

/// The provider a store configures, tested once.
#[derive(Clone, Copy, Debug)]
pub enum SelectedProvider<'a> {
    Vault(&'a VaultSpec),
    Aws(&'a AwsSpec),
    Fake(&'a FakeSpec),
}

impl<'a> SelectedProvider<'a> {
    pub fn of(provider: &'a SecretStoreProvider) -> Result<Self, StoreError> {
        let kind = provider.kind().map_err(StoreError::Invalid)?;
        match (kind, &provider.vault, &provider.aws, &provider.fake) {
            ("vault", Some(v), _, _) => Ok(SelectedProvider::Vault(v)),
            ("aws", _, Some(a), _) => Ok(SelectedProvider::Aws(a)),
            ("fake", _, _, Some(f)) => Ok(SelectedProvider::Fake(f)),
            (other, ..) => Err(StoreError::Invalid(format!(
                "unsupported provider configuration {other:?}"
            ))),
        }
    }

    /// `vault`, `aws` or `fake`: the metrics label.
    pub fn name(self) -> &'static str {
        match self {
            SelectedProvider::Vault(_) => "vault",
            SelectedProvider::Aws(_) => "aws",
            SelectedProvider::Fake(_) => "fake",
        }
    }
}

/// The stores as the ExternalSecret controller's own store watches hold them: the same watches
/// wake the ExternalSecrets of a changed store, after the copy here is updated.
#[derive(Clone)]
pub struct WatchedStores {
    pub namespaced: reflector::Store<SecretStore>,
    pub cluster: reflector::Store<ClusterSecretStore>,
}

/// The store `r` from the watch, else from the API server: a store the watch has not delivered
/// yet (created a moment before its ExternalSecret) is not taken for missing.
async fn lookup<K>(
    watched: Option<&reflector::Store<K>>,
    api: &Api<K>,
    r: ObjectRef<K>,
) -> Result<Option<Arc<K>>, kube::Error>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    if let Some(found) = watched.and_then(|w| w.get(&r)) {
        return Ok(Some(found));
    }
    Ok(api.get_opt(&r.name).await?.map(Arc::new))
}

/// Looks up the store an ExternalSecret refers to and checks that its namespace may use it.
pub async fn resolve_store(
    client: &kube::Client,
    watched: Option<&WatchedStores>,
    es: &ExternalSecret,
) -> Result<ResolvedStore, StoreError> {
    let ns = es.metadata.namespace.clone().unwrap_or_default();
    let r = &es.spec.secret_store_ref;
    if r.kind == "ClusterSecretStore" {
        let api: Api<ClusterSecretStore> = Api::all(client.clone());
        let store = lookup(watched.map(|w| &w.cluster), &api, ObjectRef::new(&r.name))
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: r.kind.clone(),
                name: r.name.clone(),
            })?;
        check_cluster_conditions(client, &store.spec.store, &r.name, &ns).await?;
        Ok(ResolvedStore {
            id: format!("ClusterSecretStore/{}", r.name),
            kind: r.kind.clone(),
            name: r.name.clone(),
            secrets_namespace: ns,
            cluster: true,
            spec: store.spec.store.clone(),
        })
    } else if r.kind == "SecretStore" || r.kind.is_empty() {
        let api: Api<SecretStore> = Api::namespaced(client.clone(), &ns);
        let store = lookup(
            watched.map(|w| &w.namespaced),
            &api,
            ObjectRef::new(&r.name).within(&ns),
        )
        .await?
        .ok_or_else(|| StoreError::NotFound {
            kind: "SecretStore".into(),
            name: r.name.clone(),
        })?;
        Ok(ResolvedStore {
            id: format!("SecretStore/{ns}/{}", r.name),
            kind: "SecretStore".into(),
            name: r.name.clone(),
            secrets_namespace: ns,
            cluster: false,
            spec: store.spec.store.clone(),
        })
    } else {
        Err(StoreError::Invalid(format!(
            "secretStoreRef.kind {:?} must be SecretStore or ClusterSecretStore",
            r.kind
        )))
    }
}

/// `spec.conditions[]` of a ClusterSecretStore: any one matching condition allows the
/// namespace; no conditions allow every namespace.
async fn check_cluster_conditions(
    client: &kube::Client,
    spec: &StoreSpec,
    store: &str,
    ns: &str,
) -> Result<(), StoreError> {
    let labels = if spec
        .conditions
        .iter()
        .any(|c| c.namespace_selector.is_some())
    {
        let api: Api<Namespace> = Api::all(client.clone());
        api.get_opt(ns)
            .await?
            .and_then(|n| n.metadata.labels)
            .unwrap_or_default()
    } else {
        Default::default()
    };
    if conditions_allow(spec, ns, &labels)? {
        Ok(())
    } else {
        Err(StoreError::NotAllowed(format!(
            "using cluster store {store:?} is not allowed from namespace {ns:?}: denied by spec.conditions"
        )))
    }
}

/// The decision of [`check_cluster_conditions`] given the namespace's labels.
pub fn conditions_allow(
    spec: &StoreSpec,
    ns: &str,
    labels: &std::collections::BTreeMap<String, String>,
) -> Result<bool, StoreError> {
    if spec.conditions.is_empty() {
        return Ok(true);
    }
    for c in &spec.conditions {
        if c.namespaces.iter().any(|n| n == ns) {
            return Ok(true);
        }
        for pattern in &c.namespace_regexes {
            let re = regex::Regex::new(pattern)
                .map_err(|e| StoreError::Invalid(format!("namespaceRegexes: {e}")))?;
            if re.is_match(ns) {
                return Ok(true);
            }
        }
        if let Some(sel) = &c.namespace_selector {
            let labels_ok = sel
                .match_labels
                .iter()
                .all(|(k, v)| labels.get(k) == Some(v));
            let exprs_ok = sel.match_expressions.iter().all(|e| {
                let has = labels.get(&e.key);
                match e.operator.as_str() {
                    "In" => has.is_some_and(|v| e.values.contains(v)),
                    "NotIn" => has.is_none_or(|v| !e.values.contains(v)),
                    "Exists" => has.is_some(),
                    "DoesNotExist" => has.is_none(),
                    _ => false,
                }
            });
            if labels_ok && exprs_ok {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cluster_store_conditions() {
        let spec: StoreSpec = serde_yaml::from_str(
            "provider: {fake: {data: []}}
conditions:
- namespaces: [a]
- namespaceRegexes: ['^team-']
- namespaceSelector:
    matchLabels: {env: prod}
    matchExpressions: [{key: tier, operator: In, values: [web]}]
",
        )
        .unwrap();
        let none = Default::default();
        assert!(conditions_allow(&spec, "a", &none).unwrap());
        assert!(conditions_allow(&spec, "team-x", &none).unwrap());
        assert!(!conditions_allow(&spec, "b", &none).unwrap());
        let labels = [
            ("env".to_string(), "prod".to_string()),
            ("tier".to_string(), "web".to_string()),
        ]
        .into();
        assert!(conditions_allow(&spec, "b", &labels).unwrap());
        let labels = [("env".to_string(), "prod".to_string())].into();
        assert!(!conditions_allow(&spec, "b", &labels).unwrap());
        let open: StoreSpec = serde_yaml::from_str("provider: {fake: {data: []}}").unwrap();
        assert!(conditions_allow(&open, "any", &none).unwrap());
    }

    fn cluster(secrets_namespace: &str) -> ResolvedStore {
        let spec: StoreSpec = serde_yaml::from_str("provider: {fake: {data: []}}").unwrap();
        ResolvedStore {
            secrets_namespace: secrets_namespace.into(),
            ..ResolvedStore::standalone("ClusterSecretStore", None, "c".into(), spec)
        }
    }

    #[test]
    fn namespaced_store_reads_only_its_own_namespace() {
        let spec: StoreSpec = serde_yaml::from_str("provider: {fake: {data: []}}").unwrap();
        let s = ResolvedStore::standalone("SecretStore", Some("team-a".into()), "s".into(), spec);
        assert_eq!(s.ref_namespace(None, "x").unwrap(), "team-a");
        assert_eq!(s.ref_namespace(Some("team-b"), "x").unwrap(), "team-a");
        assert_eq!(s.ref_namespace(Some(""), "x").unwrap(), "team-a");
    }

    #[test]
    fn cluster_store_reads_the_named_namespace_else_the_users() {
        let used_from_app = cluster("app");
        assert_eq!(used_from_app.ref_namespace(None, "x").unwrap(), "app");
        assert_eq!(
            used_from_app
                .ref_namespace(Some("vault-auth"), "x")
                .unwrap(),
            "vault-auth"
        );
        // Validating the store itself: no ExternalSecret, so a ref must name its namespace.
        let alone = cluster("");
        assert_eq!(alone.ref_namespace(Some("ns"), "x").unwrap(), "ns");
        let e = alone
            .ref_namespace(None, "auth Secret \"tok\"")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "invalid store: auth Secret \"tok\" of a ClusterSecretStore needs a namespace"
        );
        assert!(alone.ref_namespace(Some(""), "x").is_err());
    }

    #[test]
    fn one_provider_is_selected() {
        let spec: StoreSpec = serde_yaml::from_str("provider: {fake: {data: []}}").unwrap();
        assert_eq!(SelectedProvider::of(&spec.provider).unwrap().name(), "fake");
        let spec: StoreSpec = serde_yaml::from_str("provider: {gcpsm: {}}").unwrap();
        assert!(SelectedProvider::of(&spec.provider).is_err());
    }
}
