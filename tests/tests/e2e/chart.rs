//! The argument lists Bitnami's and ESO's Helm charts render (controller/tests/fixtures/
//! chart-args.yaml) run the real binary against the real API server, and it does its job under
//! each: serves its API and metrics on the chart's ports, keeps keys under the chart's prefix,
//! unseals a SealedSecret or syncs an ExternalSecret. The lists run as recorded, with one scope
//! flag added when a list has none (`--all-namespaces=false` for Bitnami's, ESO's own
//! `--namespace`), so that the controller stays out of the other tests' namespaces.

use e2e_tests::envtest::{Cluster, data, eventually, wait_secret};

use super::external::{external_secret, fake_store};
use super::{ACT, seal, sealed_secret_yaml, setup};

#[derive(serde::Deserialize)]
struct Case {
    name: String,
    #[serde(default)]
    program: Option<String>,
    args: Vec<String>,
}

#[derive(serde::Deserialize)]
struct Fixtures {
    bitnami: Vec<Case>,
    eso: Vec<Case>,
}

fn fixtures() -> Fixtures {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../controller/tests/fixtures/chart-args.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap()
}

/// The value the list gives `flag` (`--flag=v` or `--flag v`).
fn value_of<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let long = format!("--{flag}");
    args.iter().enumerate().find_map(|(i, arg)| {
        if let Some(value) = arg.strip_prefix(&format!("{long}=")) {
            Some(value)
        } else if *arg == long {
            args.get(i + 1).map(String::as_str)
        } else {
            None
        }
    })
}

/// The list with ESO's `--namespace` pointed at `namespace` (added when the list has none).
fn eso_scoped(args: &[String], namespace: &str) -> Vec<String> {
    let mut scoped: Vec<String> = args
        .iter()
        .map(|arg| match arg.strip_prefix("--namespace=") {
            Some(_) => format!("--namespace={namespace}"),
            None => arg.clone(),
        })
        .collect();
    if value_of(args, "namespace").is_none() {
        scoped.push(format!("--namespace={namespace}"));
    }
    scoped
}

async fn bitnami_case(cluster: &Cluster, client: &kube::Client, case: &Case) {
    let ns = cluster.namespace(client, "chart-ss", &[]).await;
    let mut args = case.args.clone();
    if value_of(&args, "all-namespaces").is_none() {
        args.push("--all-namespaces=false".into());
    }
    let mut controller = cluster
        .controller(&ns)
        .chart_args(case.program.as_deref(), &args)
        .start();
    controller.ready().await;
    let cert = eventually(
        format!("{}: /v1/cert.pem on the chart's port", case.name),
        ACT,
        || controller.get("/v1/cert.pem"),
    )
    .await;
    let prefix = value_of(&args, "key-prefix").unwrap_or("sealed-secrets-key");
    let keys = cluster.kubectl_ok(&["-n", &ns, "get", "secrets", "-o", "name"]);
    assert!(
        keys.lines()
            .any(|l| l.starts_with(&format!("secret/{prefix}"))),
        "{}: a key Secret named {prefix}…, found {keys}",
        case.name
    );
    // A SealedSecret the list's label selector (a single `k=v` in the fixtures) lets through.
    let labels = value_of(&args, "label-selector")
        .and_then(|selector| selector.split_once('='))
        .map(|(k, v)| format!("  labels:\n    {k}: \"{v}\"\n"))
        .unwrap_or_default();
    let value = seal(&cert, &ns, "db", "chart-value");
    cluster.apply(&sealed_secret_yaml(
        &ns,
        "db",
        &[("password", &value)],
        &labels,
    ));
    wait_secret(
        client,
        &ns,
        "db",
        &data(&[("password", "chart-value")]),
        ACT,
    )
    .await;
    let unsealed = controller
        .metric("sealed_secrets_controller_unseal_requests_total", &[])
        .await;
    assert!(
        unsealed >= 1.0,
        "{}: /metrics on the chart's port",
        case.name
    );
    controller.assert_running();
}

async fn eso_case(cluster: &Cluster, client: &kube::Client, case: &Case) {
    let ns = cluster.namespace(client, "chart-es", &[]).await;
    let args = eso_scoped(&case.args, &ns);
    let mut controller = cluster
        .controller(&ns)
        .chart_args(case.program.as_deref(), &args)
        .start();
    controller.ready().await;
    let mut store = fake_store(&ns, "fake", &[("db", "from-the-store")]);
    if let Some(class) = value_of(&args, "controller-class") {
        store = store.replace("spec:\n", &format!("spec:\n  controller: {class}\n"));
    }
    cluster.apply(&store);
    cluster.apply(&external_secret(
        &ns,
        "db",
        ("SecretStore", "fake"),
        "1h",
        "",
        &[("password", "db", None)],
    ));
    wait_secret(
        client,
        &ns,
        "db",
        &data(&[("password", "from-the-store")]),
        ACT,
    )
    .await;
    let label = "name=\"db\"";
    let synced = controller
        .metric("externalsecret_sync_calls", &[label])
        .await
        + controller
            .metric("externalsecret_sync_calls_total", &[label])
            .await;
    assert!(synced >= 1.0, "{}: /metrics on the chart's port", case.name);
    if value_of(&args, "enable-leader-election") == Some("true") {
        let holder = cluster.kubectl_ok(&[
            "-n",
            &ns,
            "get",
            "lease",
            "external-secrets-controller",
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ]);
        assert_eq!(holder, controller.name, "{}: ESO's Lease", case.name);
    }
    controller.assert_running();
}

#[tokio::test]
async fn bitnami_chart_argument_lists_run_against_the_api_server() {
    let Some(cluster) = setup("chart::bitnami_chart_argument_lists_run_against_the_api_server")
    else {
        return;
    };
    let client = cluster.client().await;
    for case in &fixtures().bitnami {
        bitnami_case(cluster, &client, case).await;
    }
}

#[tokio::test]
async fn eso_chart_argument_lists_run_against_the_api_server() {
    let Some(cluster) = setup("chart::eso_chart_argument_lists_run_against_the_api_server") else {
        return;
    };
    let client = cluster.client().await;
    for case in &fixtures().eso {
        eso_case(cluster, &client, case).await;
    }
}

#[test]
fn scope_flags_are_added_only_when_missing() {
    let args = |list: &[&str]| list.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    assert_eq!(
        eso_scoped(&args(&["--namespace=apps", "--concurrent=1"]), "e2e-1"),
        args(&["--namespace=e2e-1", "--concurrent=1"])
    );
    assert_eq!(
        eso_scoped(&args(&["--concurrent=1"]), "e2e-1"),
        args(&["--concurrent=1", "--namespace=e2e-1"])
    );
    assert_eq!(
        value_of(
            &args(&["--key-prefix", "k", "--rate-limit=5"]),
            "key-prefix"
        ),
        Some("k")
    );
}
