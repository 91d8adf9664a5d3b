//! The manifests a user applies: every CRD file and everything in deploy/ goes through
//! `kubectl apply` unchanged, with kubectl's client-side validation on (what kubectl does against
//! a 1.24 API server, which has no server-side field validation).

use std::path::{Path, PathBuf};

use super::setup;

/// Runs kubectl; returns a failure description, if any.
fn try_kubectl(cluster: &e2e_tests::envtest::Cluster, args: &[&str]) -> Option<String> {
    let out = cluster.kubectl(args);
    (!out.status.success()).then(|| {
        format!(
            "kubectl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )
    })
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        // Hidden files (.sops.yaml) are tool configuration, not manifests.
        .filter(|p| {
            p.extension().is_some_and(|e| e == "yaml")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_crd_file_applies_with_client_side_validation() {
    let Some(cluster) = setup("deploy::every_crd_file_applies_with_client_side_validation") else {
        return;
    };
    let files = yaml_files(&cluster.workspace.join("crds/yaml"));
    assert!(files.len() >= 4, "CRD files: {files:?}");
    let failures: Vec<String> = files
        .iter()
        .filter_map(|f| {
            try_kubectl(
                cluster,
                &["apply", "--validate=true", "-f", &f.to_string_lossy()],
            )
        })
        .collect();
    assert!(
        failures.is_empty(),
        "CRDs rejected:\n{}",
        failures.join("\n")
    );
}

#[test]
fn everything_in_deploy_applies_unchanged() {
    let Some(cluster) = setup("deploy::everything_in_deploy_applies_unchanged") else {
        return;
    };
    let _applying = super::deploy_apply_lock();
    let deploy = cluster.workspace.join("deploy");
    // The Argo CD plugin's objects go to the argocd namespace Argo CD's install makes.
    cluster.apply("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: argocd\n");
    let mut failures = Vec::new();
    failures.extend(try_kubectl(
        cluster,
        &["apply", "--validate=true", "-k", &deploy.to_string_lossy()],
    ));

    // Every kustomization (components only render inside one) and every manifest on its own.
    let mut dirs = vec![deploy.clone()];
    let mut applied = 0;
    while let Some(dir) = dirs.pop() {
        // The example overlay holds SOPS-encrypted files only the plugin renders.
        if dir.ends_with("argocd/example/overlay") {
            continue;
        }
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            if entry.path().is_dir() {
                dirs.push(entry.path());
            }
        }
        let kustomization =
            std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap_or_default();
        // A kustomize component (and what it holds) only means something inside a kustomization.
        if kustomization.contains("kind: Component") {
            continue;
        }
        if !kustomization.is_empty() {
            failures.extend(try_kubectl(
                cluster,
                &["apply", "--validate=true", "-k", &dir.to_string_lossy()],
            ));
            applied += 1;
        }
        for file in yaml_files(&dir) {
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            // Patches are not objects; the repo-server patch is checked below the way its
            // header says to use it.
            if name == "kustomization.yaml" || name.ends_with("-patch.yaml") {
                continue;
            }
            failures.extend(try_kubectl(
                cluster,
                &["apply", "--validate=true", "-f", &file.to_string_lossy()],
            ));
            applied += 1;
        }
    }
    assert!(
        applied >= 10,
        "only {applied} kustomizations/files found under deploy/"
    );

    // `kubectl -n argocd patch deployment argocd-repo-server --patch-file repo-server-patch.yaml`
    // onto a stand-in for Argo CD's repo-server Deployment, with the volumes Argo CD's own has
    // (the CMP server binary and plugin sockets are shared through them).
    let patch = deploy.join("argocd/repo-server-patch.yaml");
    if patch.exists() {
        cluster.apply(
            "apiVersion: apps/v1
kind: Deployment
metadata:
  name: argocd-repo-server
  namespace: argocd
spec:
  selector:
    matchLabels: {app.kubernetes.io/name: argocd-repo-server}
  template:
    metadata:
      labels: {app.kubernetes.io/name: argocd-repo-server}
    spec:
      containers:
        - name: argocd-repo-server
          image: quay.io/argoproj/argocd:v2.13.0
          volumeMounts:
            - {name: var-files, mountPath: /var/run/argocd}
            - {name: plugins, mountPath: /home/argocd/cmp-server/plugins}
      volumes:
        - {name: var-files, emptyDir: {}}
        - {name: plugins, emptyDir: {}}
",
        );
        if let Some(failure) = try_kubectl(
            cluster,
            &[
                "-n",
                "argocd",
                "patch",
                "deployment",
                "argocd-repo-server",
                "--patch-file",
                &patch.to_string_lossy(),
            ],
        ) {
            panic!("{failure}\nalso:\n{}", failures.join("\n"));
        }
        let containers = cluster.kubectl_ok(&[
            "-n",
            "argocd",
            "get",
            "deployment",
            "argocd-repo-server",
            "-o",
            "jsonpath={.spec.template.spec.containers[*].name}",
        ]);
        assert!(
            containers.contains("sops-plugin"),
            "patched containers: {containers}"
        );
    }
    assert!(
        failures.is_empty(),
        "deploy/ rejected:\n{}",
        failures.join("\n")
    );

    // What `kubectl apply -k deploy/` made is what the controller needs.
    for (kind, name) in [
        ("crd", "sealedsecrets.bitnami.com"),
        ("crd", "externalsecrets.external-secrets.io"),
        ("crd", "secretstores.external-secrets.io"),
        ("crd", "clustersecretstores.external-secrets.io"),
        ("clusterrole", "secrets-unsealer"),
        ("clusterrole", "secrets-controller-external-secrets"),
    ] {
        cluster.kubectl_ok(&["get", kind, name]);
    }
    for (kind, name) in [
        ("serviceaccount", "secrets-controller"),
        ("deployment", "secrets-controller"),
        ("service", "sealed-secrets-controller"),
    ] {
        cluster.kubectl_ok(&["-n", "kube-system", "get", kind, name]);
    }
}
