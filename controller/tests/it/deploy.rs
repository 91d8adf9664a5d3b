//! deploy/ renders, type-checks, and goes through `kubectl apply -k deploy/ --dry-run=client`
//! against a local stand-in for the API server's discovery endpoints (kubectl needs discovery to
//! map kinds to resources, even for a client-side dry run).

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
    assert_eq!(
        container.image.as_deref(),
        Some(
            format!(
                "gitops-secrets/secrets-controller:{}",
                env!("CARGO_PKG_VERSION")
            )
            .as_str()
        ),
        "the image deploy/images/controller.Dockerfile documents building"
    );
    let security = container.security_context.as_ref().unwrap();
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(pod.security_context.unwrap().run_as_non_root, Some(true));
    let services: Vec<Service> = kind("Service")
        .map(|s| serde_json::from_value(s.clone()).unwrap())
        .collect();
    let port_of = |name: &str| {
        let service = services
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("Service {name}"));
        assert_eq!(service.metadata.namespace.as_deref(), Some("kube-system"));
        let port = &service.spec.as_ref().unwrap().ports.as_ref().unwrap()[0];
        (port.port, port.name.clone().unwrap_or_default())
    };
    // kubeseal's default --controller-name; metrics on a Service of their own.
    assert_eq!(port_of("sealed-secrets-controller"), (8080, "http".into()));
    assert_eq!(
        port_of("secrets-controller-metrics"),
        (8081, "metrics".into())
    );
    let ports: Vec<(i32, String)> = container
        .ports
        .iter()
        .flatten()
        .map(|p| (p.container_port, p.name.clone().unwrap_or_default()))
        .collect();
    assert_eq!(
        ports,
        vec![(8080, "http".to_string()), (8081, "metrics".to_string())]
    );
    assert_eq!(kind("PodDisruptionBudget").count(), 1);
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
        ("policy", "v1"),
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
        "/apis/policy/v1" => resource_list("policy/v1", &[("poddisruptionbudgets", "PodDisruptionBudget", true)]),
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

#[test]
fn the_release_files_are_rendered_from_deploy() {
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(root().join("deploy/release/render.sh"))
        .arg(out.path())
        .status()
        .expect("deploy/release/render.sh runs (needs kubectl)");
    assert!(status.success());
    for file in [
        "secrets-controller.yaml",
        "sealed-secrets-only.yaml",
        "external-secrets-only.yaml",
    ] {
        let fresh = std::fs::read_to_string(out.path().join(file)).unwrap();
        let committed =
            std::fs::read_to_string(root().join("deploy/release").join(file)).unwrap_or_default();
        assert!(
            committed == fresh,
            "deploy/release/{file} is stale: run deploy/release/render.sh and commit the result"
        );
    }
}

fn kinds_and_names(path: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| <serde_json::Value as serde::Deserialize>::deserialize(d).unwrap())
        .map(|d| {
            (
                d["kind"].as_str().unwrap_or_default().to_string(),
                d["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

fn controller_env(path: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| <serde_json::Value as serde::Deserialize>::deserialize(d).unwrap())
        .filter(|d| d["kind"] == "Deployment")
        .flat_map(|d| {
            d["spec"]["template"]["spec"]["containers"][0]["env"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|e| {
            (
                e["name"].as_str().unwrap_or_default().to_string(),
                e["value"].as_str().unwrap_or("(ref)").to_string(),
            )
        })
        .collect()
}

#[test]
fn each_component_keeps_only_its_half() {
    let has = |objects: &[(String, String)], kind: &str, name: &str| {
        objects.iter().any(|(k, n)| k == kind && n == name)
    };
    let sealed_only = kinds_and_names("deploy/release/sealed-secrets-only.yaml");
    assert!(has(
        &sealed_only,
        "CustomResourceDefinition",
        "sealedsecrets.bitnami.com"
    ));
    assert!(
        !sealed_only
            .iter()
            .any(|(_, n)| n.ends_with("external-secrets.io"))
    );
    assert!(!has(
        &sealed_only,
        "ClusterRole",
        "secrets-controller-external-secrets"
    ));
    assert!(
        controller_env("deploy/release/sealed-secrets-only.yaml")
            .contains(&("ENABLE_EXTERNAL_SECRETS".into(), "false".into()))
    );

    let external_only = kinds_and_names("deploy/release/external-secrets-only.yaml");
    assert!(has(
        &external_only,
        "CustomResourceDefinition",
        "externalsecrets.external-secrets.io"
    ));
    assert!(!has(
        &external_only,
        "CustomResourceDefinition",
        "sealedsecrets.bitnami.com"
    ));
    assert!(
        !has(&external_only, "Service", "sealed-secrets-controller"),
        "no public API"
    );
    assert!(
        !external_only
            .iter()
            .any(|(_, n)| n.starts_with("sealed-secrets-"))
    );
    assert!(has(&external_only, "Service", "secrets-controller-metrics"));
    let env = controller_env("deploy/release/external-secrets-only.yaml");
    assert!(env.contains(&("ENABLE_SEALED_SECRETS".into(), "false".into())));
    assert!(env.contains(&("SEALED_SECRETS_LISTEN_ADDR".into(), "".into())));

    // Both halves keep the leader-election Lease access.
    for objects in [&sealed_only, &external_only] {
        assert!(has(objects, "Role", "secrets-controller-leader-election"));
        assert!(has(objects, "PodDisruptionBudget", "secrets-controller"));
    }
}

#[test]
fn the_servicemonitor_component_scrapes_the_metrics_service() {
    let dir = tempfile::tempdir().unwrap();
    let rel = pathdiff(dir.path(), &root().join("deploy"));
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        format!("resources: [{rel}]\ncomponents: [{rel}/components/servicemonitor]\n"),
    )
    .unwrap();
    let out = kubectl()
        .args(["kustomize", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs: Vec<serde_json::Value> = serde_yaml::Deserializer::from_slice(&out.stdout)
        .map(|d| <serde_json::Value as serde::Deserialize>::deserialize(d).unwrap())
        .collect();
    let monitor = docs.iter().find(|d| d["kind"] == "ServiceMonitor").unwrap();
    let service = docs
        .iter()
        .find(|d| d["kind"] == "Service" && d["metadata"]["name"] == "secrets-controller-metrics")
        .unwrap();
    let selector = monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap();
    for (key, value) in selector {
        assert_eq!(&service["metadata"]["labels"][key], value, "selector {key}");
    }
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
}

/// `to` relative to `from` (kustomize refuses absolute paths).
fn pathdiff(from: &Path, to: &Path) -> String {
    let from = from.canonicalize().unwrap();
    let to = to.canonicalize().unwrap();
    let common = from
        .components()
        .zip(to.components())
        .take_while(|(a, b)| a == b)
        .count();
    let ups = from.components().count() - common;
    let mut rel = PathBuf::new();
    for _ in 0..ups {
        rel.push("..");
    }
    for part in to.components().skip(common) {
        rel.push(part);
    }
    rel.display().to_string()
}
