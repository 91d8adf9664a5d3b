//! The offline commands: `keygen` makes keys the rest of the toolkit reads, `unseal` shows what
//! the controller would create without showing values.

use std::process::Command;

use test_kit::sealed_secrets::path as fixture;

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

/// Runs the command, failing the test (not hanging it) if it takes longer than a minute.
fn output_within_a_minute(mut command: Command) -> std::process::Output {
    use std::process::Stdio;
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > std::time::Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("the command did not finish within a minute");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Regression (issue 8 item 5): a YAML syntax error made `unseal` loop forever, growing its
/// memory without bound; now the file is reported once and the documents before it still count.
#[test]
fn unseal_reports_a_yaml_syntax_error_once_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.yaml");
    let good = std::fs::read_to_string(fixture("sealedsecrets/basic.yaml")).unwrap();
    std::fs::write(
        &file,
        format!("{good}\n---\nkind: SealedSecret\nspec: [unclosed\n---\n{good}"),
    )
    .unwrap();
    let mut command = controller();
    command
        .args(["unseal", "--keys"])
        .arg(fixture("keys"))
        .arg("-f")
        .arg(&file);
    let out = output_within_a_minute(command);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.matches("invalid YAML").count(), 1, "{err}");
    assert!(
        err.contains("broken.yaml: document 2: invalid YAML"),
        "{err}"
    );
    assert!(
        err.contains("1 SealedSecret(s) could not be unsealed"),
        "{err}"
    );
    let shown = String::from_utf8(out.stdout).unwrap();
    assert_eq!(shown.matches("kind: Secret").count(), 1, "{shown}");
}

#[test]
fn unseal_refuses_input_over_the_size_limit() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("huge.yaml");
    let comment = "#".repeat(1 << 20);
    let mut text = String::new();
    for _ in 0..17 {
        text.push_str(&comment);
        text.push('\n');
    }
    std::fs::write(&file, text).unwrap();
    let mut command = controller();
    command
        .args(["unseal", "--keys"])
        .arg(fixture("keys"))
        .arg("-f")
        .arg(&file);
    let out = output_within_a_minute(command);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("larger than 16 MiB"), "{err}");
}

/// keygen never replaces a file: not a key backup (data loss), not a symlink planted in the
/// output directory (the private key would land wherever it points), not a world-readable file.
#[test]
fn keygen_never_overwrites_or_follows_existing_files() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = dir.path().join("elsewhere");
    std::fs::write(&elsewhere, "untouched\n").unwrap();
    let out_dir = dir.path().join("keys");
    std::fs::create_dir(&out_dir).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(&elsewhere, out_dir.join("tls.key")).unwrap();
    #[cfg(not(unix))]
    std::fs::write(out_dir.join("tls.key"), "untouched\n").unwrap();
    let out = controller()
        .args(["keygen", "--key-size", "2048", "--name", "k1", "--out-dir"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("tls.key already exists"), "{err}");
    assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "untouched\n");
    assert!(!out_dir.join("tls.crt").exists() && !out_dir.join("k1.yaml").exists());
}

/// `unseal --keys` opens an age-encrypted key backup (here one the Go `age` CLI made) with
/// `--identity` or `SOPS_AGE_KEY_FILE`, and names the file when the identity does not fit.
#[test]
fn unseal_opens_an_age_encrypted_key_backup() {
    let find = |name: &str| {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    };
    let (Some(age), Some(keygen)) = (find("age"), find("age-keygen")) else {
        eprintln!(
            "SKIPPED: the Go `age` CLI is not on PATH (scripts/install-peers.sh installs Debian's age)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let identity = |name: &str| {
        let path = dir.path().join(name);
        assert!(
            Command::new(&keygen)
                .arg("-o")
                .arg(&path)
                .output()
                .unwrap()
                .status
                .success()
        );
        let public = Command::new(&keygen).arg("-y").arg(&path).output().unwrap();
        (
            path,
            String::from_utf8(public.stdout).unwrap().trim().to_string(),
        )
    };
    let (ours, recipient) = identity("ours.txt");
    let (theirs, _) = identity("theirs.txt");
    let backup = dir.path().join("keys.age");
    let made = Command::new(&age)
        .args(["-a", "-r", &recipient, "-o"])
        .arg(&backup)
        .arg(fixture("keys/all-keys-list.json"))
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");

    let unseal = |identity: &std::path::Path, by_env: bool| {
        let mut cmd = controller();
        cmd.args(["unseal", "--keys"])
            .arg(&backup)
            .arg("-f")
            .arg(fixture("sealedsecrets/basic.yaml"))
            .env_remove("SOPS_AGE_KEY")
            .env_remove("SOPS_AGE_KEY_FILE");
        if by_env {
            cmd.env("SOPS_AGE_KEY_FILE", identity);
        } else {
            cmd.arg("--identity").arg(identity);
        }
        cmd.output().unwrap()
    };
    for by_env in [false, true] {
        let out = unseal(&ours, by_env);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8(out.stdout)
                .unwrap()
                .contains("name: mysecret")
        );
    }
    let wrong = unseal(&theirs, false);
    assert!(!wrong.status.success());
    let err = String::from_utf8(wrong.stderr).unwrap();
    assert!(err.contains(&backup.display().to_string()), "{err}");
    assert!(err.contains("none of the age identities from"), "{err}");
}
