//! SecretStore / ClusterSecretStore resolution: which store an ExternalSecret may use, the
//! credentials its auth section points at, and one long-lived provider client per store
//! (rebuilt only when the store's spec or its credentials change).

use std::collections::HashMap;
use std::sync::Arc;

use crds::external_secrets::{
    ClusterSecretStore, ExternalSecret, SecretKeySelector, SecretStore, StoreSpec,
};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use kube::Api;
use kube::api::PostParams;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::cache::Coalescer;
use super::metrics::Metrics;
use super::provider::aws::{AwsCredentialSource, AwsOptions, AwsProvider, StaticCredentials};
use super::provider::fake::FakeProvider;
use super::provider::vault::{JwtSource, VaultLogin, VaultOptions, VaultProvider};
use super::provider::{CallRecorder, ProviderError, SecretProvider};

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

/// Options every provider client is built with.
#[derive(Clone, Debug, Default)]
pub struct ProviderOptions {
    pub aws: AwsOptions,
    pub vault: VaultOptions,
    /// The controller's own service-account token, for Vault Kubernetes auth without refs.
    pub kube_token_path: Option<std::path::PathBuf>,
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

/// Looks up the store an ExternalSecret refers to and checks that its namespace may use it.
pub async fn resolve_store(
    client: &kube::Client,
    es: &ExternalSecret,
) -> Result<ResolvedStore, StoreError> {
    let ns = es.metadata.namespace.clone().unwrap_or_default();
    let r = &es.spec.secret_store_ref;
    if r.kind == "ClusterSecretStore" {
        let api: Api<ClusterSecretStore> = Api::all(client.clone());
        let store = api
            .get_opt(&r.name)
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
            spec: store.spec.store,
        })
    } else if r.kind == "SecretStore" || r.kind.is_empty() {
        let api: Api<SecretStore> = Api::namespaced(client.clone(), &ns);
        let store = api
            .get_opt(&r.name)
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
            spec: store.spec.store,
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
}

async fn secret_value(
    client: &kube::Client,
    store: &ResolvedStore,
    sel: &SecretKeySelector,
    default_key: &str,
) -> Result<Zeroizing<String>, StoreError> {
    // A namespaced store may only read its own namespace; a cluster store the named one.
    let ns = match (&sel.namespace, store.cluster) {
        (Some(n), true) => n.clone(),
        _ => store.secrets_namespace.clone(),
    };
    if ns.is_empty() {
        return Err(StoreError::Invalid(format!(
            "auth Secret {:?} of a ClusterSecretStore needs a namespace",
            sel.name
        )));
    }
    let key = sel.key.clone().unwrap_or_else(|| default_key.to_string());
    let api: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let secret = api
        .get_opt(&sel.name)
        .await?
        .ok_or_else(|| StoreError::Invalid(format!("auth Secret {ns}/{} not found", sel.name)))?;
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(&key))
        .map(|b| b.0.clone())
        .ok_or_else(|| {
            StoreError::Invalid(format!("auth Secret {ns}/{} has no key {key:?}", sel.name))
        })?;
    String::from_utf8(bytes)
        .map(|s| Zeroizing::new(s.trim_end_matches(['\n', '\r']).to_string()))
        .map_err(|_| {
            StoreError::Invalid(format!(
                "auth Secret {ns}/{} key {key:?} is not text",
                sel.name
            ))
        })
}

/// Credentials read from Kubernetes, kept only as long as the provider is built.
enum Creds {
    None,
    Aws(StaticCredentials),
    /// IRSA through a referenced service account.
    AwsWeb {
        role_arn: String,
        /// The store's own `role` when it is assumed after the web identity.
        then_assume: Option<String>,
        namespace: String,
        service_account: String,
        audiences: Vec<String>,
    },
    Vault(VaultLogin),
}

impl Creds {
    fn fingerprint(&self, h: &mut Sha256) {
        match self {
            Creds::None => h.update(b"none"),
            Creds::Aws(c) => {
                h.update(c.access_key_id.as_bytes());
                h.update(c.secret_access_key.as_bytes());
                if let Some(t) = &c.session_token {
                    h.update(t.as_bytes());
                }
            }
            Creds::AwsWeb {
                role_arn,
                then_assume,
                namespace,
                service_account,
                audiences,
            } => {
                h.update(role_arn.as_bytes());
                h.update(then_assume.as_deref().unwrap_or_default().as_bytes());
                h.update(namespace.as_bytes());
                h.update(service_account.as_bytes());
                h.update(audiences.join(",").as_bytes());
            }
            Creds::Vault(VaultLogin::Token(t)) => h.update(t.as_bytes()),
            Creds::Vault(VaultLogin::AppRole {
                mount,
                role_id,
                secret_id,
            }) => {
                h.update(mount.as_bytes());
                h.update(role_id.as_bytes());
                h.update(secret_id.as_bytes());
            }
            // The JWT rotates on every TokenRequest: fingerprint the role, not the token.
            Creds::Vault(VaultLogin::Kubernetes { mount, role, .. }) => {
                h.update(mount.as_bytes());
                h.update(role.as_bytes());
            }
        }
    }
}

async fn read_creds(
    client: &kube::Client,
    store: &ResolvedStore,
    options: &ProviderOptions,
) -> Result<Creds, StoreError> {
    let provider = &store.spec.provider;
    provider.kind().map_err(StoreError::Invalid)?;
    if let Some(aws) = &provider.aws {
        if let Some(sa) = aws
            .auth
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .and_then(|j| j.service_account_ref.as_ref())
        {
            let ns = match (&sa.namespace, store.cluster) {
                (Some(n), true) => n.clone(),
                _ => store.secrets_namespace.clone(),
            };
            let api: Api<ServiceAccount> = Api::namespaced(client.clone(), &ns);
            let account = api.get_opt(&sa.name).await?.ok_or_else(|| {
                StoreError::Invalid(format!("service account {ns}/{} not found", sa.name))
            })?;
            let annotated = account
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("eks.amazonaws.com/role-arn"))
                .cloned();
            let (role_arn, then_assume) = match (annotated, aws.role.clone()) {
                (Some(a), role) => (a, role.filter(|r| !r.is_empty())),
                (None, Some(role)) if !role.is_empty() => (role, None),
                _ => {
                    return Err(StoreError::Invalid(format!(
                        "service account {ns}/{} has no eks.amazonaws.com/role-arn annotation and the store no role",
                        sa.name
                    )));
                }
            };
            return Ok(Creds::AwsWeb {
                role_arn,
                then_assume,
                namespace: ns,
                service_account: sa.name.clone(),
                audiences: if sa.audiences.is_empty() {
                    vec!["sts.amazonaws.com".to_string()]
                } else {
                    sa.audiences.clone()
                },
            });
        }
        let Some(sr) = aws.auth.as_ref().and_then(|a| a.secret_ref.as_ref()) else {
            return Ok(Creds::None);
        };
        return Ok(Creds::Aws(StaticCredentials {
            access_key_id: secret_value(client, store, &sr.access_key_id_secret_ref, "").await?,
            secret_access_key: secret_value(client, store, &sr.secret_access_key_secret_ref, "")
                .await?,
            session_token: match &sr.session_token_secret_ref {
                Some(s) => Some(secret_value(client, store, s, "").await?),
                None => None,
            },
        }));
    }
    if let Some(vault) = &provider.vault {
        let Some(auth) = &vault.auth else {
            return Err(StoreError::Invalid("vault.auth is required".into()));
        };
        if let Some(t) = &auth.token_secret_ref {
            return Ok(Creds::Vault(VaultLogin::Token(
                secret_value(client, store, t, "token").await?,
            )));
        }
        if let Some(ar) = &auth.app_role {
            let role_id = match (&ar.role_id, &ar.role_ref) {
                (Some(id), _) if !id.is_empty() => Zeroizing::new(id.clone()),
                (_, Some(r)) => secret_value(client, store, r, "roleId").await?,
                _ => {
                    return Err(StoreError::Invalid(
                        "vault.auth.appRole needs roleId or roleRef".into(),
                    ));
                }
            };
            return Ok(Creds::Vault(VaultLogin::AppRole {
                mount: ar.path.clone(),
                role_id,
                secret_id: secret_value(client, store, &ar.secret_ref, "secretId").await?,
            }));
        }
        if let Some(k) = &auth.kubernetes {
            let jwt = if let Some(sr) = &k.secret_ref {
                JwtSource::Static(secret_value(client, store, sr, "token").await?)
            } else if let Some(sa) = &k.service_account_ref {
                let ns = match (&sa.namespace, store.cluster) {
                    (Some(n), true) => n.clone(),
                    _ => store.secrets_namespace.clone(),
                };
                let audiences = if sa.audiences.is_empty() {
                    vec!["vault".to_string()]
                } else {
                    sa.audiences.clone()
                };
                JwtSource::Dynamic(service_account_token(
                    client.clone(),
                    ns,
                    sa.name.clone(),
                    audiences,
                    600,
                ))
            } else {
                let path = options.kube_token_path.clone().unwrap_or_else(|| {
                    "/var/run/secrets/kubernetes.io/serviceaccount/token".into()
                });
                // Re-read at each login: the kubelet rotates the projected token.
                JwtSource::Dynamic(Arc::new(move || {
                    let path = path.clone();
                    Box::pin(async move {
                        tokio::fs::read_to_string(&path)
                            .await
                            .map(|t| Zeroizing::new(t.trim().to_string()))
                            .map_err(|e| {
                                ProviderError::Config(format!(
                                    "vault kubernetes auth: reading {}: {e}",
                                    path.display()
                                ))
                            })
                    })
                }))
            };
            return Ok(Creds::Vault(VaultLogin::Kubernetes {
                mount: k.mount_path.clone(),
                role: k.role.clone(),
                jwt,
            }));
        }
        let others: Vec<String> = auth.other.keys().cloned().collect();
        return Err(StoreError::Invalid(if others.is_empty() {
            "vault.auth needs tokenSecretRef, appRole or kubernetes".into()
        } else {
            format!(
                "vault auth method {} is not supported (tokenSecretRef, appRole, kubernetes are)",
                others.join(", ")
            )
        }));
    }
    Ok(Creds::None)
}

/// `vault.caProvider`: the PEM bundle from a Secret or ConfigMap key (namespace only honoured
/// for ClusterSecretStores).
async fn vault_ca_from_provider(
    client: &kube::Client,
    store: &ResolvedStore,
) -> Result<Option<String>, StoreError> {
    let Some(cp) = store
        .spec
        .provider
        .vault
        .as_ref()
        .and_then(|v| v.ca_provider.as_ref())
    else {
        return Ok(None);
    };
    let ns = match (&cp.namespace, store.cluster) {
        (Some(n), true) => n.clone(),
        _ => store.secrets_namespace.clone(),
    };
    let key = cp.key.clone().unwrap_or_else(|| "ca.crt".to_string());
    let missing = || {
        StoreError::Invalid(format!(
            "caProvider {} {ns}/{} has no key {key:?}",
            cp.type_, cp.name
        ))
    };
    let pem = match cp.type_.as_str() {
        "Secret" => {
            let api: Api<Secret> = Api::namespaced(client.clone(), &ns);
            let s = api.get_opt(&cp.name).await?.ok_or_else(missing)?;
            let bytes = s
                .data
                .and_then(|d| d.get(&key).map(|b| b.0.clone()))
                .ok_or_else(missing)?;
            String::from_utf8(bytes).map_err(|_| missing())?
        }
        "ConfigMap" => {
            let api: Api<k8s_openapi::api::core::v1::ConfigMap> =
                Api::namespaced(client.clone(), &ns);
            let c = api.get_opt(&cp.name).await?.ok_or_else(missing)?;
            c.data
                .and_then(|d| d.get(&key).cloned())
                .ok_or_else(missing)?
        }
        other => {
            return Err(StoreError::Invalid(format!(
                "caProvider.type {other:?} must be Secret or ConfigMap"
            )));
        }
    };
    Ok(Some(pem))
}

/// Requests a short-lived token of a service account (TokenRequest) each time it is called.
fn service_account_token(
    client: kube::Client,
    namespace: String,
    name: String,
    audiences: Vec<String>,
    expiration_seconds: i64,
) -> super::provider::TokenSource {
    Arc::new(move || {
        let client = client.clone();
        let namespace = namespace.clone();
        let name = name.clone();
        let audiences = audiences.clone();
        Box::pin(async move {
            let api: Api<ServiceAccount> = Api::namespaced(client, &namespace);
            let req = TokenRequest {
                spec: Some(TokenRequestSpec {
                    audiences: Some(audiences),
                    expiration_seconds: Some(expiration_seconds),
                    ..Default::default()
                }),
                ..Default::default()
            };
            let tr = api
                .create_token_request(&name, &PostParams::default(), &req)
                .await
                .map_err(|e| {
                    ProviderError::Unauthorized(format!("TokenRequest {namespace}/{name}: {e}"))
                })?;
            tr.status
                .and_then(|s| s.token)
                .map(Zeroizing::new)
                .ok_or_else(|| {
                    ProviderError::Unauthorized(format!(
                        "TokenRequest {namespace}/{name} returned no token"
                    ))
                })
        })
    })
}

/// A provider client bound to one store configuration.
pub struct StoreClient {
    /// Cache namespace: store id plus configuration fingerprint.
    pub cache_key: String,
    pub provider: Arc<dyn SecretProvider>,
}

/// One provider client per store, reused across reconciles.
#[derive(Default)]
pub struct StoreRegistry {
    entries: tokio::sync::Mutex<HashMap<String, Arc<StoreClient>>>,
}

impl StoreRegistry {
    pub async fn client_for(
        &self,
        client: &kube::Client,
        store: &ResolvedStore,
        options: &ProviderOptions,
        metrics: &Metrics,
        cache: &Coalescer,
    ) -> Result<Arc<StoreClient>, StoreError> {
        let creds = read_creds(client, store, options).await?;
        let vault_ca = vault_ca_from_provider(client, store).await?;
        let mut h = Sha256::new();
        h.update(serde_json::to_vec(&store.spec.provider).unwrap_or_default());
        creds.fingerprint(&mut h);
        h.update(vault_ca.as_deref().unwrap_or_default().as_bytes());
        let cache_key = format!("{}#{}", store.id, hex::encode(&h.finalize()[..12]));
        let mut entries = self.entries.lock().await;
        if let Some(existing) = entries.get(&store.id) {
            if existing.cache_key == cache_key {
                return Ok(existing.clone());
            }
            cache.forget_store(&existing.cache_key);
        }
        let calls = CallRecorder {
            metrics: metrics.clone(),
            store: store.id.clone(),
            provider: store.spec.provider.kind().map_err(StoreError::Invalid)?,
        };
        let provider: Arc<dyn SecretProvider> = match (&store.spec.provider, creds) {
            (p, _) if p.fake.is_some() => Arc::new(FakeProvider::new(
                p.fake
                    .as_ref()
                    .ok_or_else(|| StoreError::Invalid("fake".into()))?,
                calls,
            )),
            (p, creds) if p.aws.is_some() => {
                let mut spec = p
                    .aws
                    .clone()
                    .ok_or_else(|| StoreError::Invalid("aws".into()))?;
                let source = match creds {
                    Creds::Aws(c) => AwsCredentialSource::Static(c),
                    Creds::AwsWeb {
                        role_arn,
                        then_assume,
                        namespace,
                        service_account,
                        audiences,
                    } => {
                        spec.role = then_assume;
                        AwsCredentialSource::WebIdentity {
                            role_arn,
                            token: service_account_token(
                                client.clone(),
                                namespace,
                                service_account,
                                audiences,
                                3600,
                            ),
                        }
                    }
                    _ => AwsCredentialSource::Default,
                };
                Arc::new(AwsProvider::with_source(&spec, source, &options.aws, calls).await?)
            }
            (p, Creds::Vault(login)) if p.vault.is_some() => {
                let mut spec = p
                    .vault
                    .clone()
                    .ok_or_else(|| StoreError::Invalid("vault".into()))?;
                if let Some(pem) = vault_ca {
                    use base64::Engine as _;
                    spec.ca_bundle = Some(base64::engine::general_purpose::STANDARD.encode(pem));
                }
                Arc::new(VaultProvider::new(&spec, login, &options.vault, calls)?)
            }
            _ => {
                return Err(StoreError::Invalid(
                    "unsupported provider configuration".into(),
                ));
            }
        };
        let entry = Arc::new(StoreClient {
            cache_key,
            provider,
        });
        entries.insert(store.id.clone(), entry.clone());
        Ok(entry)
    }
}
