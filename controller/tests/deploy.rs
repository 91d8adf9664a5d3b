//! deploy/ renders, type-checks, and goes through `kubectl apply -k deploy/ --dry-run=client`
//! against a local stand-in for the API server's discovery endpoints (kubectl needs discovery to
//! map kinds to resources, even for a client-side dry run).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use axum::Router;
use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;
use serde_json::json;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn kubectl() -> Command {
    let mut cmd = Command::new("kubectl");
    cmd.current_dir(root());
    cmd
}

#[test]
fn committed_crd_copies_in_deploy_match_crds_yaml() {
    let file = "bitnami.com_sealedsecrets.yaml";
    let generated = std::fs::read_to_string(root().join("crds/yaml").join(file)).unwrap();
    let copy =
        std::fs::read_to_string(root().join("deploy/sealed-secrets/crds").join(file)).unwrap();
    assert!(
        copy == generated,
        "deploy/sealed-secrets/crds/{file} is stale: copy crds/yaml/{file} over it"
    );
}

fn rendered() -> Vec<serde_json::Value> {
    let out = kubectl()
        .args(["kustomize", "deploy/"])
        .output()
        .expect("kubectl is installed (scripts/install-peers.sh)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_yaml::Deserializer::from_slice(&out.stdout)
        .map(|d| <serde_json::Value as serde::Deserialize>::deserialize(d).unwrap())
        .collect()
}

#[test]
fn the_kustomization_renders_well_typed_objects() {
    use k8s_openapi::api::{apps::v1::Deployment, core::v1::Service};
    let docs = rendered();
    let kind = |k: &'static str| docs.iter().filter(move |d| d["kind"] == k);
    let deployment: Deployment =
        serde_json::from_value(kind("Deployment").next().unwrap().clone()).unwrap();
    let pod = deployment.spec.unwrap().template.spec.unwrap();
    let container = &pod.containers[0];
    let security = container.security_context.as_ref().unwrap();
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(pod.security_context.unwrap().run_as_non_root, Some(true));
    let service: Service = serde_json::from_value(kind("Service").next().unwrap().clone()).unwrap();
    assert_eq!(
        service.metadata.name.as_deref(),
        Some("sealed-secrets-controller")
    );
    assert_eq!(service.metadata.namespace.as_deref(), Some("kube-system"));
    let crds: Vec<String> = kind("CustomResourceDefinition")
        .map(|c| c["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert!(
        crds.contains(&"sealedsecrets.bitnami.com".to_string()),
        "{crds:?}"
    );
    for role in kind("ClusterRole") {
        let rules = role["rules"].as_array().unwrap();
        assert!(
            rules
                .iter()
                .all(|r| r["verbs"].as_array().unwrap().iter().all(|v| v != "*")),
            "no wildcard verbs"
        );
    }
}

fn resource_list(group_version: &str, resources: &[(&str, &str, bool)]) -> serde_json::Value {
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources.iter().map(|(name, kind, namespaced)| json!({
            "name": name, "singularName": "", "namespaced": namespaced, "kind": kind,
            "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]
        })).collect::<Vec<_>>()
    })
}

async fn discovery(uri: Uri) -> axum::response::Response {
    let groups = [
        ("apps", "v1"),
        ("rbac.authorization.k8s.io", "v1"),
        ("apiextensions.k8s.io", "v1"),
        ("coordination.k8s.io", "v1"),
    ];
    let body = match uri.path() {
        "/api" => json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}),
        "/apis" => json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups.iter().map(|(g, v)| json!({
            "name": g, "versions": [{"groupVersion": format!("{g}/{v}"), "version": v}],
            "preferredVersion": {"groupVersion": format!("{g}/{v}"), "version": v}
        })).collect::<Vec<_>>()}),
        "/api/v1" => resource_list("v1", &[("services", "Service", true), ("serviceaccounts", "ServiceAccount", true), ("secrets", "Secret", true), ("namespaces", "Namespace", false)]),
        "/apis/apps/v1" => resource_list("apps/v1", &[("deployments", "Deployment", true)]),
        "/apis/rbac.authorization.k8s.io/v1" => resource_list("rbac.authorization.k8s.io/v1", &[("clusterroles", "ClusterRole", false), ("clusterrolebindings", "ClusterRoleBinding", false), ("roles", "Role", true), ("rolebindings", "RoleBinding", true)]),
        "/apis/apiextensions.k8s.io/v1" => resource_list("apiextensions.k8s.io/v1", &[("customresourcedefinitions", "CustomResourceDefinition", false)]),
        "/apis/coordination.k8s.io/v1" => resource_list("coordination.k8s.io/v1", &[("leases", "Lease", true)]),
        // Every object is new to this "cluster".
        _ => return (StatusCode::NOT_FOUND, axum::Json(json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}))).into_response(),
    };
    axum::Json(body).into_response()
}

#[test]
fn kubectl_apply_dry_run_client_accepts_deploy() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    runtime.spawn(async move {
        axum::serve(listener, Router::new().fallback(discovery))
            .await
            .unwrap()
    });

    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("config");
    std::fs::write(&kubeconfig, format!("apiVersion: v1\nkind: Config\ncurrent-context: stub\nclusters:\n- name: stub\n  cluster: {{server: 'http://127.0.0.1:{port}'}}\ncontexts:\n- name: stub\n  context: {{cluster: stub, user: stub}}\nusers:\n- name: stub\n  user: {{}}\n")).unwrap();
    let out = kubectl()
        .args([
            "apply",
            "-k",
            "deploy/",
            "--dry-run=client",
            "--validate=false",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .env("HOME", dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("deployment.apps/secrets-controller created (dry run)"),
        "{stdout}"
    );
    assert!(stdout.contains("customresourcedefinition.apiextensions.k8s.io/sealedsecrets.bitnami.com created (dry run)"), "{stdout}");
}
