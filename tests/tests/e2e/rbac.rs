//! The controller under deploy/'s ServiceAccount and RBAC, with a TokenRequest token: every
//! feature exercised without one 403 (the RBAC suffices), and every verb deploy/ grants seen in
//! the controller's own request log (the RBAC is least).

use std::collections::BTreeSet;

use e2e_tests::envtest::{Cluster, data, eventually, secret_data, wait_secret};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use serde::Deserialize as _;
use test_kit::moto::Moto;
use test_kit::vault_standin::VaultStandin;

use super::{ACT, b64, seal, sealed_secret_yaml, setup};

pub(super) const ACCOUNT: (&str, &str) = ("kube-system", "secrets-controller");

/// (apiGroup, resource[/subresource], verb)
type Permission = (String, String, String);

/// What deploy/'s Roles and ClusterRoles grant the controller's ServiceAccount.
fn granted(cluster: &Cluster) -> BTreeSet<Permission> {
    let mut docs = Vec::new();
    let mut dirs = vec![cluster.workspace.join("deploy")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml")
                && !path.to_string_lossy().contains("/release/")
            {
                let text = std::fs::read_to_string(&path).unwrap();
                for doc in serde_yaml::Deserializer::from_str(&text) {
                    if let Ok(v) = serde_yaml::Value::deserialize(doc) {
                        docs.push(v);
                    }
                }
            }
        }
    }
    let s = |v: &serde_yaml::Value| v.as_str().unwrap_or_default().to_string();
    let bound: BTreeSet<(String, String)> = docs
        .iter()
        .filter(|d| {
            matches!(
                d["kind"].as_str(),
                Some("RoleBinding" | "ClusterRoleBinding")
            )
        })
        .filter(|d| {
            d["subjects"]
                .as_sequence()
                .into_iter()
                .flatten()
                .any(|sub| {
                    s(&sub["kind"]) == "ServiceAccount"
                        && s(&sub["namespace"]) == ACCOUNT.0
                        && s(&sub["name"]) == ACCOUNT.1
                })
        })
        .map(|d| (s(&d["roleRef"]["kind"]), s(&d["roleRef"]["name"])))
        .collect();
    let mut out = BTreeSet::new();
    for role in docs
        .iter()
        .filter(|d| bound.contains(&(s(&d["kind"]), s(&d["metadata"]["name"]))))
    {
        for rule in role["rules"].as_sequence().into_iter().flatten() {
            let list = |k: &str| {
                rule[k]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .map(s)
                    .collect::<Vec<_>>()
            };
            for group in list("apiGroups") {
                for resource in list("resources") {
                    for verb in list("verbs") {
                        out.insert((group.clone(), resource.clone(), verb));
                    }
                }
            }
        }
    }
    out
}

/// The permission one request needs, from kube-client's `HTTP{http.method=.. http.url=..}` span.
fn permission(line: &str) -> Option<Permission> {
    let field = |name: &str| -> Option<&str> {
        let start = line.find(name)? + name.len();
        line[start..].split([' ', '}']).next()
    };
    let method = field("http.method=")?;
    let url = field("http.url=")?;
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let path = &path[path.find("/api")?..];
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest) = match segments.as_slice() {
        ["api", _version, rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => return None,
    };
    let (resource, name, sub) = match rest {
        ["namespaces", _ns, resource, tail @ ..] => (*resource, tail.first(), tail.get(1)),
        [resource, tail @ ..] => (*resource, tail.first(), tail.get(1)),
        [] => return None,
    };
    let resource = match sub {
        Some(sub) => format!("{resource}/{sub}"),
        None => resource.to_string(),
    };
    let verb = match (method, name) {
        ("GET", _)
            if query
                .split('&')
                .any(|q| q == "watch=true" || q == "watch=1") =>
        {
            "watch"
        }
        ("GET", None) => "list",
        ("GET", Some(_)) => "get",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", None) => "deletecollection",
        ("DELETE", Some(_)) => "delete",
        _ => return None,
    };
    Some((group.to_string(), resource, verb.to_string()))
}

/// Installs deploy/ as a user does (validation is the deploy tests' subject) and writes to
/// `path` a kubeconfig for its ServiceAccount, with a TokenRequest token.
pub(super) fn install_deploy_as_account(cluster: &Cluster, path: &std::path::Path) {
    {
        let _applying = super::deploy_apply_lock();
        cluster.kubectl_ok(&[
            "apply",
            "--validate=false",
            "-k",
            &cluster.workspace.join("deploy").to_string_lossy(),
        ]);
    }
    account_kubeconfig(cluster, path);
}

/// The lines of a controller log that report a refused request.
pub(super) fn forbidden_lines(log: &str) -> Vec<String> {
    // (A bare "403" would also match resourceVersions in the request log.)
    log.lines()
        .filter(|l| {
            l.to_lowercase().contains("forbidden")
                || l.contains("code: 403")
                || l.contains("status 403")
        })
        .map(String::from)
        .collect()
}

/// A kubeconfig at `path` for the ServiceAccount, with a TokenRequest token.
fn account_kubeconfig(cluster: &Cluster, path: &std::path::Path) {
    let token = cluster.kubectl_ok(&[
        "-n",
        ACCOUNT.0,
        "create",
        "token",
        ACCOUNT.1,
        "--duration=2h",
    ]);
    let admin = std::fs::read_to_string(&cluster.kubeconfig).unwrap();
    let admin: serde_yaml::Value = serde_yaml::from_str(&admin).unwrap();
    let server = admin["clusters"][0]["cluster"]["server"].as_str().unwrap();
    let ca = admin["clusters"][0]["cluster"]["certificate-authority-data"]
        .as_str()
        .unwrap();
    std::fs::write(
        path,
        format!(
            "apiVersion: v1
kind: Config
clusters: [{{name: envtest, cluster: {{server: '{server}', certificate-authority-data: '{ca}'}}}}]
users: [{{name: sa, user: {{token: '{}'}}}}]
contexts: [{{name: sa, context: {{cluster: envtest, user: sa}}}}]
current-context: sa
",
            token.trim()
        ),
    )
    .unwrap();
}

/// What one run under the ServiceAccount produced.
struct Run {
    /// Log lines that report a refused request.
    forbidden: Vec<String>,
    used: BTreeSet<Permission>,
    granted: BTreeSet<Permission>,
}

/// Installs deploy/, runs the controller as its ServiceAccount through every feature, and
/// returns what its log shows. `all_store_options` adds store options whose extra permissions
/// deploy/ lacks today (a caProvider ConfigMap). Each run has its own Lease.
async fn run_as_service_account(cluster: &Cluster, lease: &str, all_store_options: bool) -> Run {
    let kubeconfig = cluster.dir.join(format!("{lease}-sa.kubeconfig"));
    install_deploy_as_account(cluster, &kubeconfig);
    let client = cluster.client().await;
    let team = format!("{lease}-{}", std::process::id());
    let ns = cluster
        .namespace(&client, lease, &[("e2e-team", &team)])
        .await;

    // Peers for the credentials paths that need the account's extra verbs: Vault Kubernetes auth
    // (serviceaccounts/token) and AWS web identity (serviceaccounts get, the role annotation).
    let vault = VaultStandin::start(&[]).await.unwrap();
    vault.add_kubernetes_role_for("kubernetes", "e2e", &ns, "vault-reader");
    vault.put_kv2("", "secret", "rbac", serde_json::json!({"v": "from-vault"}));
    let moto = Moto::start();
    moto.create_secret("rbac", r#"{"v":"from-aws"}"#).await;
    let store = format!("e2e-{lease}-{}", std::process::id());
    cluster.apply(&format!(
        "apiVersion: v1
kind: ServiceAccount
metadata: {{name: vault-reader, namespace: {ns}}}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: irsa
  namespace: {ns}
  annotations: {{eks.amazonaws.com/role-arn: 'arn:aws:iam::123456789012:role/e2e'}}
---
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {{name: fake, namespace: {ns}}}
spec:
  controller: {lease}
  provider:
    fake:
      data: [{{key: a, value: one}}, {{key: gone, value: soon}}]
---
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {{name: another-class, namespace: {ns}}}
spec:
  controller: {lease}-other
  provider:
    fake:
      data: [{{key: a, value: one}}]
---
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {{name: vault, namespace: {ns}}}
spec:
  controller: {lease}
  provider:
    vault:
      server: {vault}
      path: secret
      version: v2
      auth:
        kubernetes:
          mountPath: kubernetes
          role: e2e
          serviceAccountRef: {{name: vault-reader}}
---
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {{name: aws, namespace: {ns}}}
spec:
  controller: {lease}
  provider:
    aws:
      service: SecretsManager
      region: us-east-1
      auth:
        jwt:
          serviceAccountRef: {{name: irsa}}
---
apiVersion: external-secrets.io/v1
kind: ClusterSecretStore
metadata: {{name: {store}}}
spec:
  controller: {lease}
  conditions: [{{namespaceSelector: {{matchLabels: {{e2e-team: {team}}}}}}}]
  provider:
    fake:
      data: [{{key: c, value: cluster}}]
",
        vault = vault.addr
    ));

    if all_store_options {
        // Vault's CA from a ConfigMap (caProvider type ConfigMap).
        cluster.apply(&format!(
            "apiVersion: v1
kind: ConfigMap
metadata: {{name: vault-ca, namespace: {ns}}}
data:
  ca.crt: |
{}
---
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {{name: vault-ca, namespace: {ns}}}
spec:
  controller: {lease}
  provider:
    vault:
      server: {}
      path: secret
      version: v2
      caProvider: {{type: ConfigMap, name: vault-ca, key: ca.crt}}
      auth:
        kubernetes:
          mountPath: kubernetes
          role: e2e
          serviceAccountRef: {{name: vault-reader}}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {{name: vault-ca, namespace: {ns}}}
spec:
  refreshInterval: 1s
  secretStoreRef: {{kind: SecretStore, name: vault-ca}}
  target: {{name: vault-ca}}
  data: [{{secretKey: v, remoteRef: {{key: rbac, property: v}}}}]
",
            super::key_file("key1.crt")
                .lines()
                .map(|l| format!("    {l}"))
                .collect::<Vec<_>>()
                .join("\n"),
            vault.addr
        ));
    }

    let mut controller = cluster
        .controller(ACCOUNT.0)
        .unscoped()
        .kubeconfig(&kubeconfig)
        .arg("--all-namespaces=false")
        .arg(&format!("--additional-namespaces={ns}"))
        .arg(&format!("--external-secrets-namespace={ns}"))
        .arg("--external-secrets-provider-timeout=5s")
        .arg(&format!("--leader-election-id={lease}"))
        // Its own store class: other tests' controllers leave these stores alone.
        .arg(&format!("--external-secrets-controller-class={lease}"))
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        // kube-client logs every request it sends at debug level: the request log compared below.
        .env("RUST_LOG", "info,controller=debug,kube_client=debug")
        .start();
    controller.ready().await;
    let cert = eventually("the controller's key", ACT, || {
        controller.get("/v1/cert.pem")
    })
    .await;

    // SealedSecrets: create, update, two undecryptable updates (events created, then patched).
    let unrelated = super::key_file("unrelated.crt");
    let ss = |v: &str, c: &str| {
        sealed_secret_yaml(&ns, "sealed", &[("v", &seal(c, &ns, "sealed", v))], "")
    };
    cluster.apply(&ss("s1", &cert));
    wait_secret(&client, &ns, "sealed", &data(&[("v", "s1")]), ACT).await;
    cluster.apply(&ss("s2", &cert));
    wait_secret(&client, &ns, "sealed", &data(&[("v", "s2")]), ACT).await;
    cluster.apply(&ss("x1", &unrelated));
    cluster.apply(&ss("x2", &unrelated));

    // ExternalSecrets: every store kind, a Delete policy whose value goes away, a Merge.
    let es = |name: &str, kind: &str, store: &str, key: &str, target: &str| {
        // Vault and AWS hold JSON objects: read one property.
        let property = if matches!(store, "vault" | "aws") {
            ", property: v"
        } else {
            ""
        };
        format!(
            "apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {{name: {name}, namespace: {ns}}}
spec:
  refreshInterval: 1s
  secretStoreRef: {{kind: {kind}, name: {store}}}
  target: {{name: {name}{target}}}
  data: [{{secretKey: v, remoteRef: {{key: {key}{property}}}}}]
---
"
        )
    };
    cluster.apply(&[
        es("fake", "SecretStore", "fake", "a", ""),
        es("deleted", "SecretStore", "fake", "gone", ", deletionPolicy: Delete"),
        es("vault", "SecretStore", "vault", "rbac", ""),
        es("aws", "SecretStore", "aws", "rbac", ""),
        es("cluster", "ClusterSecretStore", &store, "c", ""),
        // A store no watch has delivered is read from the API server (here: it does not exist).
        es("no-store", "ClusterSecretStore", "absent", "c", ""),
        es("no-namespaced-store", "SecretStore", "absent", "a", ""),
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: merged, namespace: {ns}}}\ndata: {{own: {}}}\n",
            b64(b"x")
        ),
    ]
    .concat());
    cluster.apply(&es(
        "merged",
        "SecretStore",
        "fake",
        "a",
        ", creationPolicy: Merge",
    ));
    for (name, value) in [("fake", "one"), ("deleted", "soon"), ("cluster", "cluster")] {
        wait_secret(&client, &ns, name, &data(&[("v", value)]), ACT).await;
    }
    wait_secret(
        &client,
        &ns,
        "merged",
        &data(&[("own", "x"), ("v", "one")]),
        ACT,
    )
    .await;
    let vault_synced = eventually("the Vault ExternalSecret", ACT, || async {
        secret_data(&client, &ns, "vault").await
    })
    .await;
    assert_eq!(vault_synced, data(&[("v", "from-vault")]));
    let aws_synced = eventually("the AWS ExternalSecret", ACT, || async {
        secret_data(&client, &ns, "aws").await
    })
    .await;
    assert_eq!(aws_synced, data(&[("v", "from-aws")]));
    cluster.apply(&format!(
        "apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {{name: fake, namespace: {ns}}}
spec:
  controller: {lease}
  provider:
    fake:
      data: [{{key: a, value: one}}]
"
    ));
    eventually(
        "deletionPolicy Delete to delete its Secret",
        ACT,
        || async {
            secret_data(&client, &ns, "deleted")
                .await
                .is_none()
                .then_some(())
        },
    )
    .await;

    // Every store validated (their status written).
    for (kind, namespace, name) in [
        ("clustersecretstore", None, store.as_str()),
        ("secretstore", Some(ns.as_str()), "fake"),
    ] {
        eventually(format!("{kind} {name} to be validated"), ACT, || async {
            let mut args = vec![
                "get",
                kind,
                name,
                "-o",
                "jsonpath={.status.conditions[0].status}",
            ];
            if let Some(namespace) = namespace {
                args.extend(["-n", namespace]);
            }
            (cluster.kubectl(&args).stdout == b"True").then_some(())
        })
        .await;
    }

    if all_store_options {
        // Synced or not: what matters is the log.
        eventually(
            "the caProvider ExternalSecret to be reconciled",
            ACT,
            || async {
                let out = cluster.kubectl(&[
                    "-n",
                    &ns,
                    "get",
                    "externalsecret",
                    "vault-ca",
                    "-o",
                    "jsonpath={.status.conditions[0].status}",
                ]);
                (!out.stdout.is_empty()).then_some(())
            },
        )
        .await;
    }

    // The Lease is renewed at least once.
    let leases: Api<Lease> = Api::namespaced(client.clone(), ACCOUNT.0);
    let renewed = |l: Lease| l.spec.and_then(|s| s.renew_time).map(|t| t.0);
    let first = eventually("the Lease", ACT, || async {
        leases.get_opt(lease).await.ok().flatten().and_then(renewed)
    })
    .await;
    eventually("a Lease renewal", ACT, || async {
        leases
            .get_opt(lease)
            .await
            .ok()
            .flatten()
            .and_then(renewed)
            .filter(|t| *t != first)
    })
    .await;
    // A store of another controller class is left alone (ESO's --controller-class): by now,
    // seconds after our stores were validated, it would have a status too.
    let other = cluster.kubectl_ok(&[
        "-n",
        &ns,
        "get",
        "secretstore",
        "another-class",
        "-o",
        "jsonpath={.status}",
    ]);
    assert!(
        other.trim().is_empty(),
        "a store of another controller class got a status: {other}"
    );
    controller.terminate().await;

    let log = controller.log_text();
    let forbidden = forbidden_lines(&log);
    let used: BTreeSet<Permission> = log
        .lines()
        .filter(|l| l.contains("requesting"))
        .filter_map(permission)
        .collect();
    assert!(
        used.len() >= 10,
        "the request log holds too few requests: {used:?}"
    );
    Run {
        forbidden,
        used,
        granted: granted(cluster),
    }
}

#[tokio::test]
async fn controller_under_deploy_rbac_gets_no_403() {
    let Some(cluster) = setup("rbac::controller_under_deploy_rbac_gets_no_403") else {
        return;
    };
    let run = run_as_service_account(cluster, "rbac", false).await;
    assert!(
        run.forbidden.is_empty(),
        "the deploy/ RBAC refused requests:\n{}",
        run.forbidden.join("\n")
    );
    let missing: Vec<&Permission> = run.used.difference(&run.granted).collect();
    assert!(
        missing.is_empty(),
        "requests deploy/ does not grant: {missing:?}"
    );
}

#[tokio::test]
async fn deploy_rbac_is_least_and_covers_every_store_option() {
    let Some(cluster) = setup("rbac::deploy_rbac_is_least_and_covers_every_store_option") else {
        return;
    };
    let run = run_as_service_account(cluster, "rbac-least", true).await;
    let missing: Vec<&Permission> = run.used.difference(&run.granted).collect();
    let unused: Vec<&Permission> = run.granted.difference(&run.used).collect();
    assert!(
        run.forbidden.is_empty() && missing.is_empty() && unused.is_empty(),
        "deploy/ RBAC refused: {:?}\nrequests it does not grant: {missing:?}\ngrants never used: {unused:?}",
        run.forbidden
    );
}
