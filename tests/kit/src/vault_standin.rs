//! **Vault API stand-in for tests** — not HashiCorp Vault. No Vault server can be installed on
//! the project's machines, so this small axum server answers the subset of Vault's HTTP API
//! the ExternalSecret controller uses, with the response shapes Vault's API documentation
//! describes (and that the `vaultrs` client requires):
//!
//! * every response: `request_id`, `lease_id`, `lease_duration`, `renewable`, `data`, `auth`,
//!   `warnings`, `wrap_info`; errors as `{"errors": [...]}` (403 bad token, 404 `[]`);
//! * `auth/token/lookup-self`, `auth/token/renew-self`, `auth/<mount>/login` for AppRole
//!   (`role_id`, `secret_id`) and Kubernetes (`role`, `jwt`);
//! * KV v2 (`<mount>/data/<path>[?version=N]`, `<mount>/metadata/<path>`, `LIST` on metadata)
//!   with versions, custom metadata and soft delete; KV v1 (`<mount>/<path>`, `LIST`);
//! * `X-Vault-Namespace`: KV data lives per namespace.
//!
//! It counts logins, renewals and reads so tests can assert on call volumes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
struct Token {
    policies: Vec<String>,
    ttl: Duration,
    issued: Instant,
    renewable: bool,
}

#[derive(Debug, Clone)]
struct Version {
    data: Value,
    created: String,
    deleted: bool,
}

#[derive(Debug, Clone, Default)]
struct Kv2Secret {
    versions: Vec<Version>,
    custom_metadata: Option<BTreeMap<String, String>>,
}

#[derive(Default)]
struct State {
    tokens: HashMap<String, Token>,
    approles: HashMap<(String, String), String>,
    kube_roles: HashMap<(String, String), String>,
    /// (mount, role) → the `sub` claim a login JWT must carry (signature not checked).
    kube_role_subjects: HashMap<(String, String), String>,
    /// Every request answers 503 "Vault is sealed" while set.
    sealed: bool,
    /// (namespace, mount, path)
    kv2: BTreeMap<(String, String, String), Kv2Secret>,
    kv1: BTreeMap<(String, String, String), Value>,
    kv1_mounts: Vec<String>,
    token_ttl: Duration,
    next_id: u64,
    pub logins: usize,
    pub renewals: usize,
    pub lookups: usize,
    pub reads: usize,
    pub lists: usize,
    pub namespaces_seen: Vec<String>,
}

/// A running stand-in on 127.0.0.1; stops when dropped.
pub struct VaultStandin {
    pub addr: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for VaultStandin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Call counters of the stand-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    pub logins: usize,
    pub renewals: usize,
    pub lookups: usize,
    pub reads: usize,
    pub lists: usize,
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    match state.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl VaultStandin {
    /// Starts the stand-in on a free loopback port. `mounts_v1` names KV v1 mounts; every other
    /// mount is KV v2.
    pub async fn start(mounts_v1: &[&str]) -> std::io::Result<VaultStandin> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(Mutex::new(State {
            kv1_mounts: mounts_v1.iter().map(|s| s.to_string()).collect(),
            token_ttl: Duration::from_secs(3600),
            ..State::default()
        }));
        let shared = state.clone();
        let app = Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let state = shared.clone();
                async move { handle(&state, method, uri, headers, body) }
            },
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(VaultStandin { addr, state, task })
    }

    pub fn add_token(&self, token: &str, ttl: Duration, renewable: bool) {
        lock(&self.state).tokens.insert(
            token.to_string(),
            Token {
                policies: vec!["default".into()],
                ttl,
                issued: Instant::now(),
                renewable,
            },
        );
    }

    /// TTL of tokens issued by logins.
    pub fn set_login_ttl(&self, ttl: Duration) {
        lock(&self.state).token_ttl = ttl;
    }

    pub fn add_approle(&self, mount: &str, role_id: &str, secret_id: &str) {
        lock(&self.state).approles.insert(
            (mount.to_string(), role_id.to_string()),
            secret_id.to_string(),
        );
    }

    pub fn add_kubernetes_role(&self, mount: &str, role: &str, jwt: &str) {
        lock(&self.state)
            .kube_roles
            .insert((mount.to_string(), role.to_string()), jwt.to_string());
    }

    /// A Kubernetes-auth role that accepts any JWT whose `sub` claim is
    /// `system:serviceaccount:<namespace>:<account>`, e.g. a TokenRequest token. Real Vault also
    /// checks the token with a TokenReview; the stand-in only reads its claims.
    pub fn add_kubernetes_role_for(&self, mount: &str, role: &str, namespace: &str, account: &str) {
        lock(&self.state).kube_role_subjects.insert(
            (mount.to_string(), role.to_string()),
            format!("system:serviceaccount:{namespace}:{account}"),
        );
    }

    /// Seals (true) or unseals the stand-in: while sealed every request gets 503, as from a
    /// sealed or unreachable Vault behind a load balancer.
    pub fn set_sealed(&self, sealed: bool) {
        lock(&self.state).sealed = sealed;
    }

    /// Revokes every token (simulates expiry or a Vault restart): the next call gets 403.
    pub fn revoke_all_tokens(&self) {
        lock(&self.state).tokens.clear();
    }

    /// Writes a new KV v2 version and returns its number.
    pub fn put_kv2(&self, namespace: &str, mount: &str, path: &str, data: Value) -> u64 {
        let mut s = lock(&self.state);
        let secret = s
            .kv2
            .entry((namespace.into(), mount.into(), path.into()))
            .or_default();
        secret.versions.push(Version {
            data,
            created: "2024-01-01T00:00:00.000000Z".into(),
            deleted: false,
        });
        secret.versions.len() as u64
    }

    pub fn set_kv2_custom_metadata(
        &self,
        namespace: &str,
        mount: &str,
        path: &str,
        meta: BTreeMap<String, String>,
    ) {
        let mut s = lock(&self.state);
        if let Some(secret) = s
            .kv2
            .get_mut(&(namespace.into(), mount.into(), path.into()))
        {
            secret.custom_metadata = Some(meta);
        }
    }

    /// Soft-deletes the latest version (KV v2 `DELETE <mount>/data/<path>`).
    pub fn soft_delete_kv2(&self, namespace: &str, mount: &str, path: &str) {
        let mut s = lock(&self.state);
        if let Some(v) = s
            .kv2
            .get_mut(&(namespace.into(), mount.into(), path.into()))
            .and_then(|secret| secret.versions.last_mut())
        {
            v.deleted = true;
        }
    }

    pub fn put_kv1(&self, namespace: &str, mount: &str, path: &str, data: Value) {
        lock(&self.state)
            .kv1
            .insert((namespace.into(), mount.into(), path.into()), data);
    }

    pub fn counters(&self) -> Counters {
        let s = lock(&self.state);
        Counters {
            logins: s.logins,
            renewals: s.renewals,
            lookups: s.lookups,
            reads: s.reads,
            lists: s.lists,
        }
    }

    /// Namespaces (`X-Vault-Namespace`) seen on KV requests, in order.
    pub fn namespaces_seen(&self) -> Vec<String> {
        lock(&self.state).namespaces_seen.clone()
    }

    /// Number of live tokens (lease pile-up check).
    pub fn live_tokens(&self) -> usize {
        lock(&self.state).tokens.len()
    }
}

/// The `sub` claim of a JWT (payload decoded, signature not checked).
fn jwt_subject(jwt: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("sub")?.as_str().map(String::from)
}

fn envelope(request_id: u64, data: Value, auth: Value) -> Value {
    json!({
        "request_id": format!("standin-{request_id}"),
        "lease_id": "",
        "lease_duration": 0,
        "renewable": false,
        "data": data,
        "auth": auth,
        "warnings": null,
        "wrap_info": null,
        "mount_type": "kv"
    })
}

fn reply(status: StatusCode, body: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn error(status: StatusCode, errors: &[&str]) -> Response {
    reply(status, json!({ "errors": errors }))
}

fn auth_block(token: &str, policies: &[String], ttl: Duration, renewable: bool) -> Value {
    json!({
        "client_token": token,
        "accessor": format!("accessor-{token}"),
        "policies": policies,
        "token_policies": policies,
        "metadata": {},
        "lease_duration": ttl.as_secs(),
        "renewable": renewable,
        "entity_id": "standin-entity",
        "token_type": "service",
        "orphan": true
    })
}

fn handle(
    state: &Mutex<State>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut s = lock(state);
    s.next_id += 1;
    let id = s.next_id;
    if s.sealed {
        return error(StatusCode::SERVICE_UNAVAILABLE, &["Vault is sealed"]);
    }
    let Some(path) = uri.path().strip_prefix("/v1/") else {
        return error(StatusCode::NOT_FOUND, &[]);
    };
    let path = path.trim_end_matches('/').to_string();
    let namespace = headers
        .get("x-vault-namespace")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .trim_matches('/')
        .to_string();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let segments: Vec<&str> = path.split('/').collect();

    // Logins need no token.
    if segments.first() == Some(&"auth") && segments.last() == Some(&"login") && segments.len() == 3
    {
        let mount = segments[1].to_string();
        let ok = if let Some(role_id) = body.get("role_id").and_then(Value::as_str) {
            let secret_id = body.get("secret_id").and_then(Value::as_str).unwrap_or("");
            s.approles
                .get(&(mount.clone(), role_id.to_string()))
                .map(String::as_str)
                == Some(secret_id)
        } else if let Some(role) = body.get("role").and_then(Value::as_str) {
            let jwt = body.get("jwt").and_then(Value::as_str).unwrap_or("");
            let key = (mount.clone(), role.to_string());
            s.kube_roles.get(&key).map(String::as_str) == Some(jwt)
                || s.kube_role_subjects
                    .get(&key)
                    .is_some_and(|sub| jwt_subject(jwt).as_deref() == Some(sub.as_str()))
        } else {
            false
        };
        if !ok {
            return error(StatusCode::BAD_REQUEST, &["invalid credentials"]);
        }
        s.logins += 1;
        let token = format!("hvs.standin-{id}");
        let ttl = s.token_ttl;
        s.tokens.insert(
            token.clone(),
            Token {
                policies: vec!["default".into(), "read".into()],
                ttl,
                issued: Instant::now(),
                renewable: true,
            },
        );
        let auth = auth_block(&token, &["default".into(), "read".into()], ttl, true);
        return reply(StatusCode::OK, envelope(id, Value::Null, auth));
    }

    // Everything else needs a live token.
    let token_name = headers
        .get("x-vault-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let live = s
        .tokens
        .get(&token_name)
        .filter(|t| t.issued.elapsed() < t.ttl)
        .cloned();
    let Some(token) = live else {
        return error(StatusCode::FORBIDDEN, &["permission denied"]);
    };

    match (method.as_str(), path.as_str()) {
        ("GET", "auth/token/lookup-self") => {
            s.lookups += 1;
            let ttl = token.ttl.saturating_sub(token.issued.elapsed()).as_secs();
            let data = json!({
                "accessor": format!("accessor-{token_name}"),
                "creation_time": 1_700_000_000u64,
                "creation_ttl": token.ttl.as_secs(),
                "display_name": "token",
                "entity_id": "",
                "expire_time": null,
                "explicit_max_ttl": 0,
                "id": token_name,
                "identity_policies": null,
                "issue_time": "2024-01-01T00:00:00Z",
                "meta": null,
                "num_uses": 0,
                "orphan": true,
                "path": "auth/token/create",
                "policies": token.policies,
                "renewable": token.renewable,
                "role": null,
                "ttl": ttl
            });
            return reply(StatusCode::OK, envelope(id, data, Value::Null));
        }
        ("POST" | "PUT", "auth/token/renew-self") => {
            if !token.renewable {
                return error(StatusCode::BAD_REQUEST, &["lease is not renewable"]);
            }
            s.renewals += 1;
            if let Some(t) = s.tokens.get_mut(&token_name) {
                t.issued = Instant::now();
            }
            let auth = auth_block(&token_name, &token.policies, token.ttl, true);
            return reply(StatusCode::OK, envelope(id, Value::Null, auth));
        }
        _ => {}
    }

    let (mount, rest) = path.split_once('/').unwrap_or((path.as_str(), ""));
    s.namespaces_seen.push(namespace.clone());
    let is_list = method.as_str() == "LIST"
        || (method == Method::GET
            && uri
                .query()
                .is_some_and(|q| q.split('&').any(|kv| kv == "list=true")));
    let query_version = uri.query().and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("version="))
            .and_then(|v| v.parse::<usize>().ok())
    });

    if s.kv1_mounts.iter().any(|m| m == mount) {
        if is_list {
            s.lists += 1;
            let paths = s
                .kv1
                .keys()
                .filter(|(ns, m, _)| *ns == namespace && m == mount);
            return list_reply(id, paths.map(|(_, _, p)| p.as_str()), rest);
        }
        s.reads += 1;
        return match s.kv1.get(&(namespace, mount.to_string(), rest.to_string())) {
            Some(data) => reply(StatusCode::OK, envelope(id, data.clone(), Value::Null)),
            None => error(StatusCode::NOT_FOUND, &[]),
        };
    }

    // KV v2
    if let Some(p) = rest.strip_prefix("metadata") {
        let p = p.trim_start_matches('/');
        if is_list {
            s.lists += 1;
            let paths = s
                .kv2
                .keys()
                .filter(|(ns, m, _)| *ns == namespace && m == mount);
            return list_reply(id, paths.map(|(_, _, p)| p.as_str()), p);
        }
        s.reads += 1;
        let Some(secret) = s.kv2.get(&(namespace, mount.to_string(), p.to_string())) else {
            return error(StatusCode::NOT_FOUND, &[]);
        };
        let versions: serde_json::Map<String, Value> = secret
            .versions
            .iter()
            .enumerate()
            .map(|(i, v)| {
                (
                    (i + 1).to_string(),
                    json!({
                        "created_time": v.created,
                        "deletion_time": if v.deleted { "2024-01-02T00:00:00Z" } else { "" },
                        "destroyed": false
                    }),
                )
            })
            .collect();
        let data = json!({
            "cas_required": false,
            "created_time": "2024-01-01T00:00:00.000000Z",
            "current_version": secret.versions.len(),
            "delete_version_after": "0s",
            "max_versions": 0,
            "oldest_version": 1,
            "updated_time": "2024-01-01T00:00:00.000000Z",
            "custom_metadata": secret.custom_metadata,
            "versions": versions
        });
        return reply(StatusCode::OK, envelope(id, data, Value::Null));
    }
    if let Some(p) = rest.strip_prefix("data/") {
        s.reads += 1;
        let Some(secret) = s.kv2.get(&(namespace, mount.to_string(), p.to_string())) else {
            return error(StatusCode::NOT_FOUND, &[]);
        };
        let n = query_version.unwrap_or(secret.versions.len());
        let Some(v) = n.checked_sub(1).and_then(|i| secret.versions.get(i)) else {
            return error(StatusCode::NOT_FOUND, &[]);
        };
        let metadata = json!({
            "created_time": v.created,
            "custom_metadata": secret.custom_metadata,
            "deletion_time": if v.deleted { "2024-01-02T00:00:00Z" } else { "" },
            "destroyed": false,
            "version": n
        });
        if v.deleted {
            // Vault answers 404 for a soft-deleted version, with its metadata as data.
            return reply(
                StatusCode::NOT_FOUND,
                envelope(id, json!({"data": null, "metadata": metadata}), Value::Null),
            );
        }
        return reply(
            StatusCode::OK,
            envelope(
                id,
                json!({"data": v.data, "metadata": metadata}),
                Value::Null,
            ),
        );
    }
    error(StatusCode::NOT_FOUND, &[])
}

/// Direct children of `prefix`: leaf names, and sub-folders with a trailing `/`.
/// A `LIST` answer: the entries directly under `dir` (sub-folders end with `/`), 404 when none.
fn list_reply<'a>(id: u64, paths: impl Iterator<Item = &'a str>, dir: &str) -> Response {
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    let keys = list_keys(paths, &prefix);
    if keys.is_empty() {
        return error(StatusCode::NOT_FOUND, &[]);
    }
    reply(
        StatusCode::OK,
        envelope(id, json!({ "keys": keys }), Value::Null),
    )
}

fn list_keys<'a>(paths: impl Iterator<Item = &'a str>, prefix: &str) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for p in paths {
        let Some(rest) = p.strip_prefix(prefix) else {
            continue;
        };
        let key = match rest.split_once('/') {
            Some((dir, _)) => format!("{dir}/"),
            None => rest.to_string(),
        };
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys.sort();
    keys
}
