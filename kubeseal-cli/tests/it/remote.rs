//! `--fetch-cert`, sealing without `--cert`, `--validate` and `--re-encrypt` against a local
//! HTTP server that answers like the Kubernetes API server's service proxy in front of the
//! controller.

use crate::common;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use common::*;

const PROXY: &str = "http:sealed-secrets-controller:http";

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<String>>>);

fn unseal_body(body: &[u8]) -> Option<sealing::UnsealedSecret> {
    let sealed: crds::SealedSecret = serde_json::from_slice(body).ok()?;
    let keys = keys();
    sealing::unseal(&sealed, &keys.iter().collect::<Vec<_>>()).ok()
}

async fn service(
    State(seen): State<Seen>,
    Path((ns, name)): Path<(String, String)>,
) -> (StatusCode, String) {
    seen.0
        .lock()
        .unwrap()
        .push(format!("GET service {ns}/{name}"));
    if ns == "kube-system" && name == "sealed-secrets-controller" {
        (StatusCode::OK, r#"{"kind":"Service","apiVersion":"v1","spec":{"ports":[{"name":"http","port":8080}]}}"#.into())
    } else {
        (
            StatusCode::NOT_FOUND,
            r#"{"kind":"Status","code":404}"#.into(),
        )
    }
}

async fn cert(
    State(seen): State<Seen>,
    Path((_, proxy)): Path<(String, String)>,
) -> (StatusCode, String) {
    seen.0.lock().unwrap().push(format!("GET {proxy} cert.pem"));
    (StatusCode::OK, read_fixture("keys/key2.crt"))
}

async fn verify(Path((_, proxy)): Path<(String, String)>, body: Bytes) -> StatusCode {
    assert_eq!(proxy, PROXY);
    if unseal_body(&body).is_some() {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    }
}

async fn rotate(body: Bytes) -> (StatusCode, String) {
    let Some(unsealed) = unseal_body(&body) else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "cannot decrypt".into());
    };
    let mut secret = unsealed.to_secret();
    let annotations = serde_json::from_slice::<crds::SealedSecret>(&body)
        .unwrap()
        .metadata
        .annotations;
    secret.metadata.annotations = annotations;
    let key2 = keys().remove(1);
    let sealed = sealing::seal_secret(&secret, key2.public_key(), &Default::default()).unwrap();
    (StatusCode::OK, serde_json::to_string(&sealed).unwrap())
}

/// The sealing-key Secrets of a namespace, as `kubectl get secret -l ...` lists them.
async fn secrets(
    State(seen): State<Seen>,
    Path(ns): Path<String>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> (StatusCode, String) {
    seen.0
        .lock()
        .unwrap()
        .push(format!("LIST secrets {ns} {}", query.unwrap_or_default()));
    let mut list: serde_json::Value =
        serde_json::from_str(&read_fixture("keys/all-keys-list.json")).unwrap();
    list["kind"] = "SecretList".into();
    list["metadata"] = serde_json::json!({"resourceVersion": "1"});
    for item in list["items"].as_array_mut().unwrap() {
        item["metadata"]["uid"] = "0a1b".into();
        item["metadata"]["resourceVersion"] = "42".into();
    }
    (StatusCode::OK, list.to_string())
}

struct ApiServer {
    port: u16,
    seen: Seen,
    _runtime: tokio::runtime::Runtime,
}

fn start_api_server() -> ApiServer {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let seen = Seen::default();
    let app = Router::new()
        .route("/api/v1/namespaces/{ns}/services/{name}", get(service))
        .route("/api/v1/namespaces/{ns}/secrets", get(secrets))
        .route(
            "/published/cert.pem",
            get(|| async { read_fixture("keys/key2.crt") }),
        )
        .route(
            "/api/v1/namespaces/{ns}/services/{proxy}/proxy/v1/cert.pem",
            get(cert),
        )
        .route(
            "/api/v1/namespaces/{ns}/services/{proxy}/proxy/v1/verify",
            post(verify),
        )
        .route(
            "/api/v1/namespaces/{ns}/services/{proxy}/proxy/v1/rotate",
            post(rotate),
        )
        .with_state(seen.clone());
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
    ApiServer {
        port,
        seen,
        _runtime: runtime,
    }
}

fn write_kubeconfig(dir: &std::path::Path, port: u16) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: local\nclusters:\n- name: local\n  cluster: {{server: 'http://127.0.0.1:{port}'}}\ncontexts:\n- name: local\n  context: {{cluster: local, user: me, namespace: apps}}\nusers:\n- name: me\n  user: {{}}\n"
        ),
    )
    .unwrap();
    path
}

#[test]
fn fetch_cert_and_seal_through_the_service_proxy() {
    let server = start_api_server();
    let home = tempfile::tempdir().unwrap();
    let kubeconfig = write_kubeconfig(home.path(), server.port);

    let mut cmd = kubeseal(home.path());
    cmd.arg("--fetch-cert").arg("--kubeconfig").arg(&kubeconfig);
    assert_eq!(stdout(&run(cmd, "")), read_fixture("keys/key2.crt"));
    assert!(
        server
            .seen
            .0
            .lock()
            .unwrap()
            .contains(&format!("GET {PROXY} cert.pem"))
    );

    // No --cert: sealed with the fetched certificate (key2), namespace from the kubeconfig.
    let mut cmd = kubeseal(home.path());
    cmd.env("KUBECONFIG", &kubeconfig);
    let out = stdout(&run(
        cmd,
        &read_fixture("input-secrets/no-namespace-strict.yaml"),
    ));
    let unsealed = unseal_text(&out);
    assert_eq!(unsealed.opened_with, Some(1));
    assert_eq!(unsealed.metadata.namespace.as_deref(), Some("apps"));

    let mut cmd = kubeseal(home.path());
    cmd.args([
        "--fetch-cert",
        "--controller-name",
        "sealed-secrets",
        "--kubeconfig",
    ])
    .arg(&kubeconfig);
    let err = stderr(&run(cmd, ""));
    assert!(
        err.contains("kube-system/sealed-secrets") && err.contains("--controller-name"),
        "{err}"
    );
}

#[test]
fn validate_reports_undecryptable_sealed_secrets() {
    let server = start_api_server();
    let home = tempfile::tempdir().unwrap();
    let kubeconfig = write_kubeconfig(home.path(), server.port);

    let mut cmd = kubeseal(home.path());
    cmd.arg("--validate").arg("--kubeconfig").arg(&kubeconfig);
    let out = run(cmd, &read_fixture("sealedsecrets/basic.yaml"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut cmd = kubeseal(home.path());
    cmd.arg("--validate").arg("--kubeconfig").arg(&kubeconfig);
    let err = stderr(&run(
        cmd,
        &read_fixture("sealedsecrets/negative-renamed.yaml"),
    ));
    assert!(
        err.contains("unable to decrypt sealed secret: renamed"),
        "{err}"
    );
}

#[test]
fn re_encrypt_rewrites_the_input_file_with_the_newest_key() {
    let server = start_api_server();
    let home = tempfile::tempdir().unwrap();
    let kubeconfig = write_kubeconfig(home.path(), server.port);
    let file = home.path().join("ss.yaml");
    std::fs::write(&file, read_fixture("sealedsecrets/namespace-wide.yaml")).unwrap();
    let before = unseal_text(&read_fixture("sealedsecrets/namespace-wide.yaml"));

    let mut cmd = kubeseal(home.path());
    cmd.args(["--re-encrypt", "-o", "yaml", "--kubeconfig"])
        .arg(&kubeconfig)
        .arg("-f")
        .arg(&file);
    let out = run(cmd, "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = unseal_text(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(after.opened_with, Some(1), "now sealed with key2");
    assert_eq!(
        after.data.keys().collect::<Vec<_>>(),
        before.data.keys().collect::<Vec<_>>()
    );
    for (key, value) in &before.data {
        assert_eq!(&after.data[key], value);
    }
}

#[test]
fn re_encrypting_a_tree_falls_back_to_one_object_per_request_for_bitnamis_controller() {
    // The stand-in answers /v1/rotate as Bitnami's controller: one SealedSecret per request,
    // an error for our List batches.
    let server = start_api_server();
    let home = tempfile::tempdir().unwrap();
    let kubeconfig = write_kubeconfig(home.path(), server.port);
    let tree = home.path().join("repo");
    std::fs::create_dir(&tree).unwrap();
    let names = ["namespace-wide.yaml", "basic.yaml", "cluster-wide.yaml"];
    for name in names {
        std::fs::copy(fixture(&format!("sealedsecrets/{name}")), tree.join(name)).unwrap();
    }

    let mut cmd = kubeseal(home.path());
    cmd.arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--re-encrypt")
        .arg(&tree);
    let out = run(cmd, "");
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{said}");
    assert!(said.contains("3 rewritten"), "{said}");
    for name in names {
        let before = unseal_text(&read_fixture(&format!("sealedsecrets/{name}")));
        let after = unseal_text(&std::fs::read_to_string(tree.join(name)).unwrap());
        assert_eq!(after.opened_with, Some(1), "{name} now sealed with key2");
        assert_eq!(after.data, before.data, "{name}");
    }
}

#[test]
fn cert_can_be_an_http_url() {
    let server = start_api_server();
    let home = tempfile::tempdir().unwrap();
    let mut cmd = kubeseal(home.path());
    cmd.args([
        "--cert",
        &format!("http://127.0.0.1:{}/published/cert.pem", server.port),
    ]);
    let out = stdout(&run(cmd, &read_fixture("input-secrets/opaque.yaml")));
    assert_eq!(
        unseal_text(&out).opened_with,
        Some(1),
        "sealed with key2 from the URL"
    );

    let mut cmd = kubeseal(home.path());
    cmd.args([
        "--cert",
        &format!("http://127.0.0.1:{}/missing.pem", server.port),
    ]);
    let err = stderr(&run(cmd, &read_fixture("input-secrets/opaque.yaml")));
    assert!(err.contains("404"), "{err}");
}

fn cert_fingerprint(rel: &str) -> String {
    let (_, cert) = sealing::parse_sealing_key(&read_fixture(rel)).unwrap();
    cert.unwrap().sha256_fingerprint()
}

#[test]
fn fetched_certificates_are_cached_and_a_changed_one_is_reported() {
    let server = start_api_server();
    let home = tempfile::tempdir().unwrap();
    let kubeconfig = write_kubeconfig(home.path(), server.port);
    let xdg = home.path().join("xdg");
    let fetch_with_cache = |cache: &std::path::Path| {
        let mut cmd = kubeseal(home.path());
        cmd.env("XDG_CACHE_HOME", cache)
            .arg("--fetch-cert")
            .arg("--kubeconfig")
            .arg(&kubeconfig);
        let out = run(cmd, "");
        assert_eq!(stdout(&out), read_fixture("keys/key2.crt"));
        String::from_utf8(out.stderr).unwrap()
    };
    let fetch = || fetch_with_cache(&xdg);
    let cached = xdg.join("kubeseal/certs/local_kube-system_sealed-secrets-controller.pem");

    assert_eq!(fetch(), "", "nothing to compare with on the first fetch");
    assert_eq!(
        std::fs::read_to_string(&cached).unwrap(),
        read_fixture("keys/key2.crt")
    );
    assert_eq!(fetch(), "", "unchanged certificate");

    // The cluster's certificate was key1 at the last fetch and is key2 now.
    std::fs::write(&cached, read_fixture("keys/key1.crt")).unwrap();
    let warning = fetch();
    let (old, new) = (
        cert_fingerprint("keys/key1.crt"),
        cert_fingerprint("keys/key2.crt"),
    );
    assert!(
        warning.contains("controller kube-system/sealed-secrets-controller (context local)")
            && warning.contains(&format!("was SHA256 {old}, now SHA256 {new}")),
        "{warning}"
    );
    assert_eq!(
        std::fs::read_to_string(&cached).unwrap(),
        read_fixture("keys/key2.crt"),
        "the cache follows the cluster"
    );
    assert_eq!(fetch(), "", "warned once");

    // Sealing without --cert fetches too; without XDG_CACHE_HOME the cache is under ~/.cache.
    let mut cmd = kubeseal(home.path());
    cmd.env("KUBECONFIG", &kubeconfig);
    stdout(&run(cmd, &read_fixture("input-secrets/opaque.yaml")));
    assert!(
        home.path()
            .join(".cache/kubeseal/certs/local_kube-system_sealed-secrets-controller.pem")
            .exists()
    );

    // An unwritable cache is a warning, not a failure.
    let blocked = home.path().join("blocked");
    std::fs::write(&blocked, "a file, not a directory").unwrap();
    let err = fetch_with_cache(&blocked);
    assert!(
        err.contains("warning: cannot create the cache directory"),
        "{err}"
    );
}

/// `--backup-keys` without key files lists the labelled Secrets of the controller's namespace
/// and writes them, without server-set fields, into one age file that recovery opens.
#[test]
fn backup_keys_reads_the_clusters_key_secrets() {
    let keygen = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("age-keygen"))
        .find(|p| p.is_file());
    let Some(keygen) = keygen else {
        eprintln!(
            "SKIPPED: age-keygen is not on PATH (scripts/install-peers.sh installs Debian's age)"
        );
        return;
    };
    let server = start_api_server();
    let home = tempfile::tempdir().unwrap();
    let kubeconfig = write_kubeconfig(home.path(), server.port);
    let identity = home.path().join("key.txt");
    assert!(
        std::process::Command::new(&keygen)
            .arg("-o")
            .arg(&identity)
            .output()
            .unwrap()
            .status
            .success()
    );
    let public = std::process::Command::new(&keygen)
        .arg("-y")
        .arg(&identity)
        .output()
        .unwrap();
    let recipient = String::from_utf8(public.stdout).unwrap().trim().to_string();
    let out = home.path().join("cluster-keys.age");

    let mut cmd = kubeseal(home.path());
    cmd.arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--backup-keys")
        .arg(&out)
        .args(["--recipient", &recipient]);
    let made = run(cmd, "");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let seen = server.seen.0.lock().unwrap().clone();
    assert_eq!(
        seen,
        ["LIST secrets kube-system &labelSelector=sealedsecrets.bitnami.com%2Fsealed-secrets-key"]
    );

    let mut cmd = kubeseal(home.path());
    cmd.args(["--recovery-unseal", "-o", "yaml", "--recovery-private-key"])
        .arg(&out)
        .arg("--recovery-identity")
        .arg(&identity);
    let secret = stdout(&run(cmd, &read_fixture("sealedsecrets/basic.yaml")));
    assert!(secret.contains("name: mysecret"), "{secret}");
}
