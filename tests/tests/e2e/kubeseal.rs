//! The real `kubeseal` binary against the real API server and controller, as users run it:
//! the certificate, sealing, `--validate` and `--re-encrypt` through the API server's service
//! proxy; `--backup-keys` from the cluster's key Secrets, opened by the Go `age` CLI and by
//! `--recovery-unseal`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use e2e_tests::envtest::{Cluster, data, eventually, host_address, kubeseal_bin, wait_secret};

use super::{ACT, key_file, key_secret_yaml, seal, sealed_secret_yaml, setup};

fn kubeseal(cluster: &Cluster, home: &Path, args: &[&str], stdin: &str) -> Output {
    let bin = kubeseal_bin().unwrap_or_else(|e| panic!("{e}"));
    let mut child = Command::new(bin)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("KUBECONFIG", &cluster.kubeconfig)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut input, stdin.as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn ok(output: Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The controller as the API server's service proxy sees a Deployment's pod: a Service, a Pod
/// object whose status carries `address`'s IP (there is no kubelet; the proxy only forwards to
/// addresses that are pods' IPs), and Endpoints naming that pod.
fn expose_controller(cluster: &Cluster, namespace: &str, address: &str) {
    let (host, port) = address.rsplit_once(':').unwrap();
    cluster.apply(&format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: sealed-secrets-controller
  namespace: {namespace}
spec:
  containers:
    - name: controller
      image: secrets-controller
"
    ));
    cluster.kubectl_ok(&[
        "-n",
        namespace,
        "patch",
        "pod",
        "sealed-secrets-controller",
        "--subresource=status",
        "--type=merge",
        "-p",
        &format!(r#"{{"status":{{"podIP":"{host}","podIPs":[{{"ip":"{host}"}}]}}}}"#),
    ]);
    cluster.apply(&format!(
        "apiVersion: v1
kind: Service
metadata:
  name: sealed-secrets-controller
  namespace: {namespace}
spec:
  ports:
    - name: http
      port: 8080
      targetPort: {port}
---
apiVersion: v1
kind: Endpoints
metadata:
  name: sealed-secrets-controller
  namespace: {namespace}
subsets:
  - addresses:
      - ip: {host}
        targetRef:
          kind: Pod
          name: sealed-secrets-controller
          namespace: {namespace}
    ports:
      - name: http
        port: {port}
"
    ));
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

#[tokio::test]
async fn kubeseal_through_the_service_proxy_and_key_backups_from_the_cluster() {
    let Some(cluster) =
        setup("kubeseal::kubeseal_through_the_service_proxy_and_key_backups_from_the_cluster")
    else {
        return;
    };
    let client = cluster.client().await;
    let ns = cluster.namespace(&client, "kubeseal", &[]).await;
    let home = tempfile::tempdir().unwrap();
    for (name, key) in [
        ("sealed-secrets-keyaaaaa", "key1"),
        ("sealed-secrets-keybbbbb", "key2"),
    ] {
        cluster.apply(&key_secret_yaml(
            &ns,
            name,
            &key_file(&format!("{key}.pem")),
            &key_file(&format!("{key}.crt")),
        ));
    }

    let host = host_address();
    // No renewal: the fixture keys are older than the default 30 days, and a key made at start
    // would change the certificate under the test's feet.
    let mut builder = cluster.controller(&ns).arg("--key-renew-period=0");
    if let Some(host) = host {
        builder = builder.listen_on(host);
    }
    let mut controller = builder.start();
    controller.ready().await;
    // The newest of the two keys, once the controller has loaded both.
    let der = |pem: &str| {
        sealing::Certificate::from_pem(pem)
            .map(|c| c.der().to_vec())
            .ok()
    };
    let newest = der(&key_file("key2.crt"));
    let served = eventually(
        "the controller to serve key2's certificate",
        ACT,
        || async {
            controller
                .get("/v1/cert.pem")
                .await
                .filter(|cert| der(cert) == newest)
        },
    )
    .await;

    let tree = home.path().join("repo");
    if host.is_none() {
        eprintln!(
            "kubeseal: SKIPPED the service-proxy half: no global IPv4 address here, and the API \
             server refuses to proxy to loopback"
        );
    } else {
        let address = controller.http.trim_start_matches("http://").to_string();
        expose_controller(cluster, &ns, &address);
        let args = with_ns(&ns, &["--fetch-cert"]);
        let fetched = ok(kubeseal(cluster, home.path(), &args, ""), "--fetch-cert");
        assert_eq!(
            fetched.trim(),
            served.trim(),
            "the certificate through the proxy"
        );

        // Sealing without --cert fetches the certificate through the proxy too.
        let secret = format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: {ns}\nstringData:\n  password: through-the-proxy\n"
        );
        let args = with_ns(&ns, &["-o", "yaml"]);
        let sealed = ok(kubeseal(cluster, home.path(), &args, &secret), "sealing");
        cluster.apply(&sealed);
        wait_secret(
            &client,
            &ns,
            "db",
            &data(&[("password", "through-the-proxy")]),
            ACT,
        )
        .await;

        let sealed_file = home.path().join("db-sealed.yaml");
        std::fs::write(&sealed_file, &sealed).unwrap();
        let file = sealed_file.to_string_lossy().to_string();
        let args = with_ns(&ns, &["--validate", "-f", &file]);
        ok(kubeseal(cluster, home.path(), &args, ""), "--validate");
        let foreign = sealed_secret_yaml(&ns, "db", &[("password", "AgBhZA==")], "");
        let refused = kubeseal(
            cluster,
            home.path(),
            &with_ns(&ns, &["--validate"]),
            &foreign,
        );
        assert!(
            !refused.status.success(),
            "--validate of a value no key opens"
        );

        // A tree sealed to the older key, re-encrypted in one command: comments stay.
        std::fs::create_dir(&tree).unwrap();
        let key1_cert = key_file("key1.crt");
        for i in 0..3 {
            let name = format!("app-{i}");
            let value = seal(&key1_cert, &ns, &name, &format!("value-{i}"));
            let text = format!(
                "# app {i}: owned by team a\n{}",
                sealed_secret_yaml(&ns, &name, &[("token", &value)], "")
            );
            std::fs::write(tree.join(format!("{name}.yaml")), text).unwrap();
        }
        let dir = tree.to_string_lossy().to_string();
        let args = with_ns(&ns, &["--re-encrypt", &dir]);
        let output = kubeseal(cluster, home.path(), &args, "");
        let said = String::from_utf8_lossy(&output.stderr).to_string();
        assert!(output.status.success(), "--re-encrypt: {said}");
        assert!(said.contains("3 rewritten"), "{said}");
        for i in 0..3 {
            let name = format!("app-{i}");
            let text = std::fs::read_to_string(tree.join(format!("{name}.yaml"))).unwrap();
            assert!(
                text.starts_with(&format!("# app {i}: owned by team a\n")),
                "{text}"
            );
            cluster.apply(&text);
            wait_secret(
                &client,
                &ns,
                &name,
                &data(&[("token", &format!("value-{i}"))]),
                ACT,
            )
            .await;
        }
    }

    // Backups read the key Secrets through the API: the two Bitnami keys and any the
    // controller made.
    let Some((age, keygen)) = find_on_path("age").zip(find_on_path("age-keygen")) else {
        eprintln!("kubeseal: SKIPPED the backup half: the Go `age` CLI is not on PATH");
        return;
    };
    let identity = home.path().join("identity.txt");
    let made = Command::new(&keygen)
        .arg("-o")
        .arg(&identity)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let recipient = Command::new(&keygen)
        .arg("-y")
        .arg(&identity)
        .output()
        .unwrap();
    let recipient = String::from_utf8(recipient.stdout)
        .unwrap()
        .trim()
        .to_string();
    let backup = home.path().join("keys.age");
    let backup_text = backup.to_string_lossy().to_string();
    let args = with_ns(&ns, &["--backup-keys", &backup_text, "-r", &recipient]);
    let output = kubeseal(cluster, home.path(), &args, "");
    let said = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(output.status.success(), "--backup-keys: {said}");
    let opened = Command::new(&age)
        .arg("-d")
        .arg("-i")
        .arg(&identity)
        .arg(&backup)
        .output()
        .unwrap();
    assert!(opened.status.success(), "age -d: {opened:?}");
    let keys = sealing::load_private_keys(&String::from_utf8(opened.stdout).unwrap()).unwrap();
    let fingerprints: Vec<String> = keys
        .iter()
        .map(|pair| pair.private.public_key().fingerprint())
        .collect();
    let served_fingerprint = sealing::Certificate::from_pem(&served)
        .unwrap()
        .public_key()
        .fingerprint();
    for (what, fingerprint) in [
        (
            "key1",
            sealing::PrivateKey::from_pem(&key_file("key1.pem"))
                .unwrap()
                .public_key()
                .fingerprint(),
        ),
        (
            "key2",
            sealing::PrivateKey::from_pem(&key_file("key2.pem"))
                .unwrap()
                .public_key()
                .fingerprint(),
        ),
        ("the key the controller serves", served_fingerprint),
    ] {
        assert!(
            fingerprints.contains(&fingerprint),
            "{what} is in the backup"
        );
    }
    if host.is_some() {
        // The backup opens what the controller re-encrypted, offline.
        let file = tree.join("app-0.yaml").to_string_lossy().to_string();
        let identity_text = identity.to_string_lossy().to_string();
        let args = [
            "--recovery-unseal",
            "--recovery-private-key",
            &backup_text,
            "--recovery-identity",
            &identity_text,
            "-f",
            &file,
            "-o",
            "yaml",
        ];
        let secret = ok(
            kubeseal(cluster, home.path(), &args, ""),
            "--recovery-unseal",
        );
        let secret: k8s_openapi::api::core::v1::Secret = serde_yaml::from_str(&secret).unwrap();
        assert_eq!(
            secret.data.unwrap()["token"].0,
            b"value-0".to_vec(),
            "opened from the backup"
        );
    }
}

/// `args` for the controller in `ns`.
fn with_ns<'a>(ns: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["--controller-namespace", ns];
    all.extend_from_slice(args);
    all
}
