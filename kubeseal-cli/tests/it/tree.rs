//! For the re-encryption tests and benchmark: a generated repository of SealedSecrets, and the
//! controller's real HTTP API (its /v1/rotate, rate limiter and limits) served in-process behind
//! a stand-in for the API server's service proxy.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{Method, StatusCode};
use axum::routing::{any, get};
use base64::Engine as _;

pub use test_kit::sealed_secrets::{path as fixture, private_key as key};

/// Every sealed value written: value -> (label, plaintext).
pub type Ledger = BTreeMap<String, (Vec<u8>, String)>;

fn seal(public: &sealing::PublicKey, label: &[u8], plaintext: &str, ledger: &mut Ledger) -> String {
    let sealed = sealing::seal_value(public, label, plaintext.as_bytes()).unwrap();
    let value = base64::engine::general_purpose::STANDARD.encode(sealed);
    ledger.insert(value.clone(), (label.to_vec(), plaintext.to_string()));
    value
}

/// A SealedSecret in block YAML, `indent` spaces in; `style` quotes the values.
fn sealed_yaml(
    public: &sealing::PublicKey,
    name: &str,
    values: usize,
    indent: &str,
    style: &str,
    ledger: &mut Ledger,
) -> String {
    let label = format!("apps/{name}");
    let mut out = format!(
        "{indent}apiVersion: bitnami.com/v1alpha1\n{indent}kind: SealedSecret\n{indent}metadata:\n{indent}  name: {name}  # the app's credentials\n{indent}  namespace: apps\n{indent}spec:\n{indent}  encryptedData:\n"
    );
    for v in 0..values {
        let value = seal(
            public,
            label.as_bytes(),
            &format!("{name}-value-{v}"),
            ledger,
        );
        out.push_str(&format!("{indent}    key{v}: {style}{value}{style}\n"));
    }
    out.push_str(&format!(
        "{indent}  template:\n{indent}    metadata:\n{indent}      name: {name}\n{indent}      namespace: apps\n{indent}    type: Opaque\n"
    ));
    out
}

/// `objects` SealedSecrets in `files` files under `root`, sealed with `public`, in every shape
/// a repository has: single documents with comments, multi-document files with a ConfigMap
/// between, `kind: List` files, JSON, quoted values. Returns the ledger of values.
pub fn generate(root: &Path, public: &sealing::PublicKey, objects: usize, files: usize) -> Ledger {
    let mut ledger = Ledger::new();
    let per_file = objects.div_ceil(files);
    let mut made = 0;
    for f in 0..files {
        let count = per_file.min(objects - made);
        if count == 0 {
            break;
        }
        let dir = root
            .join(format!("team-{}", f % 7))
            .join(format!("app-{f}"));
        std::fs::create_dir_all(&dir).unwrap();
        let names: Vec<String> = (made..made + count)
            .map(|i| format!("secret-{i}"))
            .collect();
        made += count;
        let (file, text) = match f % 4 {
            0 => {
                let mut text =
                    String::from("# Sealed credentials; edit with kubeseal --merge-into\n");
                for (i, name) in names.iter().enumerate() {
                    text.push_str("---\n");
                    text.push_str(&sealed_yaml(public, name, 2, "", "", &mut ledger));
                    if i == 0 {
                        text.push_str("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata:\n  mode: \"fast\"  # not a secret\n");
                    }
                }
                ("sealed.yaml", text)
            }
            1 => {
                let mut text = String::from("apiVersion: v1\nkind: List\nitems:\n");
                for name in &names {
                    let doc = sealed_yaml(public, name, 2, "  ", "\"", &mut ledger);
                    text.push_str(&doc.replacen("  apiVersion", "- apiVersion", 1));
                }
                text.push_str("# end of list\n");
                ("list.yml", text)
            }
            2 => {
                let items: Vec<String> = names
                    .iter()
                    .map(|name| {
                        let label = format!("apps/{name}");
                        let a = seal(public, label.as_bytes(), &format!("{name}-value-0"), &mut ledger);
                        let b = seal(public, label.as_bytes(), &format!("{name}-value-1"), &mut ledger);
                        format!(
                            "{{\n  \"apiVersion\": \"bitnami.com/v1alpha1\",\n  \"kind\": \"SealedSecret\",\n  \"metadata\": {{\"name\": \"{name}\", \"namespace\": \"apps\"}},\n  \"spec\": {{\n    \"encryptedData\": {{\"key0\": \"{a}\", \"key1\": \"{b}\"}},\n    \"template\": {{\"metadata\": {{\"name\": \"{name}\", \"namespace\": \"apps\"}}}}\n  }}\n}}\n"
                        )
                    })
                    .collect();
                ("sealed.json", items.join(""))
            }
            _ => {
                let mut text = String::new();
                for name in &names {
                    text.push_str("---\n# single-quoted values\n");
                    text.push_str(&sealed_yaml(public, name, 2, "", "'", &mut ledger));
                }
                ("sealed-secret.yaml", text)
            }
        };
        std::fs::write(dir.join(file), text).unwrap();
    }
    ledger
}

/// Checks that `after` is `before` with sealed values (from `ledger`) replaced, and nothing else;
/// each new value opens with `key` to the old value's plaintext. Returns the values changed.
pub fn assert_only_values_changed(
    before: &str,
    after: &str,
    ledger: &Ledger,
    key: &sealing::PrivateKey,
) -> usize {
    let (old_lines, new_lines): (Vec<&str>, Vec<&str>) =
        (before.split('\n').collect(), after.split('\n').collect());
    assert_eq!(old_lines.len(), new_lines.len(), "line count changed");
    let mut changed = 0;
    for (old, new) in old_lines.iter().zip(&new_lines) {
        if old == new {
            continue;
        }
        let mut rest_old: &str = old;
        let mut rest_new: &str = new;
        // A line may hold several values (JSON): walk them left to right.
        loop {
            let Some((at, value)) = ledger
                .keys()
                .filter_map(|v| rest_old.find(v.as_str()).map(|at| (at, v)))
                .min_by_key(|(at, _)| *at)
            else {
                assert_eq!(rest_old, rest_new, "a change outside the sealed values");
                break;
            };
            assert_eq!(
                &rest_old[..at],
                &rest_new[..at],
                "a change outside the sealed values"
            );
            let new_value: String = rest_new[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='))
                .collect();
            let (label, plaintext) = &ledger[value];
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(&new_value)
                .unwrap();
            let opened = sealing::open_value([key], label, &bytes).unwrap();
            assert_eq!(&opened.plaintext[..], plaintext.as_bytes());
            changed += 1;
            rest_old = &rest_old[at + value.len()..];
            rest_new = &rest_new[at + new_value.len()..];
        }
    }
    changed
}

/// The controller's HTTP API with `keys` (newest by certificate), and in front of it an API
/// server stand-in that answers the Service lookup and forwards `.../proxy/...` to it.
pub struct Cluster {
    pub api_port: u16,
    /// Requests forwarded to `/v1/rotate` so far.
    pub rotate_requests: Arc<AtomicUsize>,
    _runtime: tokio::runtime::Runtime,
}

#[derive(Clone)]
struct Proxy {
    controller: String,
    rotate_requests: Arc<AtomicUsize>,
}

async fn service() -> (StatusCode, &'static str) {
    (
        StatusCode::OK,
        r#"{"kind":"Service","apiVersion":"v1","spec":{"ports":[{"name":"http","port":8080}]}}"#,
    )
}

async fn forward(
    State(proxy): State<Proxy>,
    UrlPath((_, _, rest)): UrlPath<(String, String, String)>,
    method: Method,
    body: Bytes,
) -> (StatusCode, Vec<u8>) {
    if rest == "v1/rotate" {
        proxy.rotate_requests.fetch_add(1, Ordering::Relaxed);
    }
    let controller = proxy.controller;
    let client = reqwest::Client::new();
    let response = client
        .request(method, format!("{controller}/{rest}"))
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
    (status, response.bytes().await.unwrap().to_vec())
}

pub fn start_cluster(keys: &[&str], rate: f64, burst: u32) -> Cluster {
    use controller::sealed::http;
    use controller::sealed::keyring::{KeyOrder, KeyRing, SealingKey};
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let ring = KeyRing::new(KeyOrder::CertNotBefore);
    for name in keys {
        let certificate = sealing::Certificate::from_pem(
            &std::fs::read_to_string(fixture(&format!("keys/{name}.crt"))).unwrap(),
        )
        .unwrap();
        ring.insert(SealingKey::new(
            key(name),
            certificate,
            format!("sealed-secrets-{name}"),
            None,
        ));
    }
    let state = http::HttpState::new(
        ring,
        Arc::new(prometheus_client::registry::Registry::default()),
        http::RateLimiter::new(rate, burst),
    );
    let rotate_requests = Arc::new(AtomicUsize::new(0));
    let api_port = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let controller = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(http::serve(
            listener,
            http::router(state),
            std::future::pending(),
        ));
        let app = Router::new()
            .route("/api/v1/namespaces/{ns}/services/{name}", get(service))
            .route(
                "/api/v1/namespaces/{ns}/services/{proxy}/proxy/{*rest}",
                any(forward),
            )
            .with_state(Proxy {
                controller,
                rotate_requests: Arc::clone(&rotate_requests),
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        port
    });
    Cluster {
        api_port,
        rotate_requests,
        _runtime: runtime,
    }
}

pub fn write_kubeconfig(dir: &Path, port: u16) -> PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: local\nclusters:\n- name: local\n  cluster: {{server: 'http://127.0.0.1:{port}'}}\ncontexts:\n- name: local\n  context: {{cluster: local, user: me}}\nusers:\n- name: me\n  user: {{}}\n"
        ),
    )
    .unwrap();
    path
}
