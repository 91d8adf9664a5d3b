//! The offline commands: `keygen` makes keys the rest of the toolkit reads, `unseal` shows what
//! the controller would create without showing values.
#![allow(clippy::unwrap_used)]

mod sealed_common;

use std::process::Command;

use sealed_common::fixture;

fn controller() -> Command {
    Command::new(env!("CARGO_BIN_EXE_secrets-controller"))
}

#[test]
fn keygen_writes_a_key_secret_a_cert_and_a_pkcs1_key_that_belong_together() {
    let dir = tempfile::tempdir().unwrap();
    let out = controller()
        .args([
            "keygen",
            "--key-size",
            "2048",
            "--my-cn",
            "demo",
            "--name",
            "k1",
            "--out-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
    let key = sealing::PrivateKey::from_pem(&read("tls.key")).unwrap();
    assert!(read("tls.key").starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
    let cert = sealing::Certificate::from_pem(&read("tls.crt")).unwrap();
    assert_eq!(cert.public_key(), key.public_key());
    let from_secret = sealing::load_private_keys(&read("k1.yaml")).unwrap();
    assert_eq!(from_secret[0].private.public_key(), key.public_key());
    assert_eq!(from_secret[0].origin, "Secret k1");
    assert!(read("k1.yaml").contains("sealedsecrets.bitnami.com/sealed-secrets-key: active"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("tls.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "private key readable by others");
    }
}

#[test]
fn unseal_hides_values_unless_asked_and_reports_failures() {
    let keys = fixture("keys/all-keys-list.json");
    let out = controller()
        .args(["unseal", "--keys"])
        .arg(&keys)
        .arg("-f")
        .arg(fixture("sealedsecrets/tls-typed.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("tls.crt: '<redacted: "), "{text}");
    assert!(text.contains("type: kubernetes.io/tls"));

    let shown = controller()
        .args(["unseal", "--show-values", "--keys"])
        .arg(&keys)
        .arg("-f")
        .arg(fixture("sealedsecrets/basic.yaml"))
        .output()
        .unwrap();
    let secret: k8s_openapi::api::core::v1::Secret = serde_yaml::from_slice(&shown.stdout).unwrap();
    let expected: k8s_openapi::api::core::v1::Secret = serde_yaml::from_str(
        &std::fs::read_to_string(fixture("expected-secrets/basic.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(secret.data, expected.data);

    let failed = controller()
        .args(["unseal", "--keys"])
        .arg(fixture("keys"))
        .arg("-f")
        .arg(fixture("sealedsecrets/negative-renamed.yaml"))
        .arg("-f")
        .arg(fixture("sealedsecrets/mixed-keys.yaml"))
        .output()
        .unwrap();
    assert!(!failed.status.success());
    let err = String::from_utf8(failed.stderr).unwrap();
    assert!(
        err.contains("(default/renamed): key \"k\": no key could decrypt secret"),
        "{err}"
    );
    assert!(
        String::from_utf8(failed.stdout)
            .unwrap()
            .contains("name: mixed")
    );
}
