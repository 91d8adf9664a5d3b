//! `kubeseal` as a user runs it, offline: sealing, raw values, merging, recovery, errors.

use crate::common;

use std::path::Path;
use std::process::Output;

use common::*;

const CANARY: &str = canary::CANARY;

fn cert() -> String {
    fixture("keys/key1.crt").display().to_string()
}

#[test]
fn seals_a_secret_as_bitnami_json_that_opens_to_the_input() {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = kubeseal(home.path());
    cmd.args(["--cert", &cert()]);
    let out = stdout(&run(cmd, &read_fixture("input-secrets/opaque.yaml")));
    assert!(out.starts_with("{\n  \"kind\": \"SealedSecret\",\n  \"apiVersion\": \"bitnami.com/v1alpha1\",\n  \"metadata\": {\n    \"name\": \"mysecret\",\n    \"namespace\": \"default\",\n    \"creationTimestamp\": null\n  },\n  \"spec\": {\n    \"template\": {"), "{out}");
    assert!(out.ends_with("}\n"));
    assert!(!out.contains("last-applied-configuration"));
    let unsealed = unseal_text(&out);
    assert_eq!(&*unsealed.data["username"], b"admin");
    assert_eq!(&*unsealed.data["password"], b"hunter2");
    assert_eq!(unsealed.type_, "Opaque");
}

#[test]
fn yaml_output_scope_flag_and_multiple_documents() {
    let home = tempfile::tempdir().unwrap();
    let input = format!(
        "{}---\n{}",
        read_fixture("input-secrets/opaque.yaml"),
        read_fixture("input-secrets/namespace-wide.yaml")
    );
    let mut cmd = kubeseal(home.path());
    cmd.args(["--cert", &cert(), "-o", "yaml", "--scope", "cluster-wide"]);
    let out = stdout(&run(cmd, &input));
    let docs: Vec<&str> = out.split("---\n").filter(|d| !d.is_empty()).collect();
    assert_eq!(docs.len(), 2);
    for doc in docs {
        assert!(doc.starts_with("apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n  annotations:\n    sealedsecrets.bitnami.com/cluster-wide: 'true'\n"), "{doc}");
        let mut sealed: crds::SealedSecret = serde_yaml::from_str(doc).unwrap();
        // Cluster-wide values open under any name and namespace.
        sealed.metadata.name = Some("elsewhere".into());
        sealed.metadata.namespace = Some("other".into());
        let keys = keys();
        assert!(sealing::unseal(&sealed, &keys.iter().collect::<Vec<_>>()).is_ok());
    }
}

#[test]
fn a_secret_without_namespace_needs_one() {
    let home = tempfile::tempdir().unwrap();
    let input = read_fixture("input-secrets/no-namespace-strict.yaml");
    let mut cmd = kubeseal(home.path());
    cmd.args(["--cert", &cert()]);
    let err = stderr(&run(cmd, &input));
    assert!(
        err.contains("has no namespace") && err.contains("--namespace"),
        "{err}"
    );

    let mut cmd = kubeseal(home.path());
    cmd.args(["--cert", &cert(), "-n", "team-x"]);
    assert_eq!(
        unseal_text(&stdout(&run(cmd, &input)))
            .metadata
            .namespace
            .as_deref(),
        Some("team-x")
    );

    let kubeconfig = home.path().join("config");
    std::fs::write(&kubeconfig, "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts:\n- name: c\n  context: {cluster: x, user: u, namespace: from-kubeconfig}\nclusters: []\nusers: []\n").unwrap();
    let mut cmd = kubeseal(home.path());
    cmd.args(["--cert", &cert(), "--kubeconfig"])
        .arg(&kubeconfig);
    assert_eq!(
        unseal_text(&stdout(&run(cmd, &input)))
            .metadata
            .namespace
            .as_deref(),
        Some("from-kubeconfig")
    );

    let mut cmd = kubeseal(home.path());
    cmd.args(["--cert", &cert(), "-n", "other"]);
    let err = stderr(&run(cmd, &read_fixture("input-secrets/opaque.yaml")));
    assert!(err.contains("differs from --namespace"), "{err}");
}

#[test]
fn raw_seals_one_value_for_the_scope_label() {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = kubeseal(home.path());
    cmd.args([
        "--raw",
        "--cert",
        &cert(),
        "--namespace",
        "ns",
        "--name",
        "db",
    ]);
    let out = stdout(&run(cmd, "s3cret"));
    assert!(!out.ends_with('\n') && out.starts_with("Ag"), "{out}");
    let sealed = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &out).unwrap();
    let keys = keys();
    let opened = sealing::open_value(&keys, b"ns/db", &sealed).unwrap();
    assert_eq!(&*opened.plaintext, b"s3cret");

    let value_file = home.path().join("value");
    std::fs::write(&value_file, "from-file").unwrap();
    let mut cmd = kubeseal(home.path());
    cmd.args([
        "--raw",
        "--cert",
        &cert(),
        "--scope",
        "namespace-wide",
        "-n",
        "ns",
    ])
    .arg(format!("--from-file=password={}", value_file.display()));
    let sealed = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        stdout(&run(cmd, "")),
    )
    .unwrap();
    assert_eq!(
        &*sealing::open_value(&keys, b"ns", &sealed)
            .unwrap()
            .plaintext,
        b"from-file"
    );

    let mut cmd = kubeseal(home.path());
    cmd.args(["--raw", "--cert", &cert(), "--namespace", "ns"]);
    assert!(stderr(&run(cmd, "x")).contains("--raw needs --name"));
}

fn opens_only_with(sealed_text: &str, key: usize) {
    let sealed: crds::SealedSecret = serde_yaml::from_str(sealed_text).unwrap();
    let keys = keys();
    let unsealed = sealing::unseal(&sealed, &[&keys[key]]).unwrap();
    assert_eq!(&*unsealed.data["password"], b"hunter2");
    assert!(sealing::unseal(&sealed, &[&keys[1 - key]]).is_err());
}

#[test]
fn repeated_cert_writes_one_sealed_secret_file_per_certificate() {
    let home = tempfile::tempdir().unwrap();
    let key2 = fixture("keys/key2.crt").display().to_string();
    let two_certs = |cmd: &mut std::process::Command| {
        cmd.args(["--cert", &cert(), "--cert", &key2]);
    };

    // {cert}: the certificate's file name without extension.
    let mut cmd = kubeseal(home.path());
    two_certs(&mut cmd);
    cmd.arg("-w").arg(home.path().join("out/db-{cert}.yaml"));
    std::fs::create_dir(home.path().join("out")).unwrap();
    stdout(&run(cmd, &read_fixture("input-secrets/opaque.yaml")));
    let first = std::fs::read_to_string(home.path().join("out/db-key1.yaml")).unwrap();
    let second = std::fs::read_to_string(home.path().join("out/db-key2.yaml")).unwrap();
    assert!(first.starts_with("---\n"), ".yaml implies YAML");
    opens_only_with(&first, 0);
    opens_only_with(&second, 1);

    // {index}: the certificate's position, from 1.
    let mut cmd = kubeseal(home.path());
    two_certs(&mut cmd);
    cmd.arg("-w").arg(home.path().join("sealed-{index}.json"));
    stdout(&run(cmd, &read_fixture("input-secrets/opaque.yaml")));
    opens_only_with(
        &std::fs::read_to_string(home.path().join("sealed-1.json")).unwrap(),
        0,
    );
    opens_only_with(
        &std::fs::read_to_string(home.path().join("sealed-2.json")).unwrap(),
        1,
    );

    // One output for several certificates is refused before anything is written.
    let mut cmd = kubeseal(home.path());
    two_certs(&mut cmd);
    let err = stderr(&run(cmd, &read_fixture("input-secrets/opaque.yaml")));
    assert!(
        err.contains("one SealedSecret file per certificate"),
        "{err}"
    );
    let single = home.path().join("single.yaml");
    let mut cmd = kubeseal(home.path());
    two_certs(&mut cmd);
    cmd.arg("-w").arg(&single);
    let err = stderr(&run(cmd, &read_fixture("input-secrets/opaque.yaml")));
    assert!(err.contains("{index} or {cert}"), "{err}");
    assert!(!single.exists());

    // A bad second certificate: no file is written for the first either.
    let mut cmd = kubeseal(home.path());
    cmd.args(["--cert", &cert(), "--cert", "/nonexistent/b.pem", "-w"])
        .arg(home.path().join("never-{index}.yaml"));
    let err = stderr(&run(cmd, &read_fixture("input-secrets/opaque.yaml")));
    assert!(err.contains("/nonexistent/b.pem"), "{err}");
    assert!(!home.path().join("never-1.yaml").exists());

    // Same file name from both certificates.
    let mut cmd = kubeseal(home.path());
    cmd.args(["--cert", &cert(), "--cert", &cert(), "-w"])
        .arg(home.path().join("{cert}.yaml"));
    let err = stderr(&run(cmd, &read_fixture("input-secrets/opaque.yaml")));
    assert!(err.contains("the same file for two certificates"), "{err}");

    // Other modes take one certificate.
    let mut cmd = kubeseal(home.path());
    two_certs(&mut cmd);
    cmd.arg("--validate");
    let err = stderr(&run(cmd, ""));
    assert!(err.contains("not with --validate"), "{err}");
}

#[test]
fn write_flag_replaces_the_file_and_a_failure_leaves_it_untouched() {
    let home = tempfile::tempdir().unwrap();
    let target = home.path().join("sealed.yaml");
    std::fs::write(&target, "previous content\n").unwrap();

    let mut bad = kubeseal(home.path());
    bad.args(["--cert", "/nonexistent/cert.pem", "-w"])
        .arg(&target);
    let err = stderr(&run(bad, &read_fixture("input-secrets/opaque.yaml")));
    assert!(err.contains("/nonexistent/cert.pem"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "previous content\n"
    );

    // Second document is broken: nothing is written, not even the first SealedSecret.
    let input = format!(
        "{}---\nkind: ConfigMap\n",
        read_fixture("input-secrets/opaque.yaml")
    );
    let mut bad = kubeseal(home.path());
    bad.args(["--cert", &cert(), "-w"]).arg(&target);
    let err = stderr(&run(bad, &input));
    assert!(
        err.contains("stdin: document 2: expected a Secret"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "previous content\n"
    );

    let mut good = kubeseal(home.path());
    good.args(["--cert", &cert(), "-w"]).arg(&target);
    stdout(&run(good, &read_fixture("input-secrets/opaque.yaml")));
    let written = std::fs::read_to_string(&target).unwrap();
    assert!(
        written.starts_with("---\napiVersion: bitnami.com/v1alpha1\n"),
        ".yaml implies YAML"
    );
    assert_eq!(&*unseal_text(&written).data["password"], b"hunter2");
    let leftovers: Vec<_> = std::fs::read_dir(home.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind");
}

fn seal_into(home: &Path, target: &Path) -> Output {
    let mut cmd = kubeseal(home);
    cmd.args(["--cert", &cert(), "-w"]).arg(target);
    run(cmd, &read_fixture("input-secrets/opaque.yaml"))
}

fn merge_into(home: &Path, target: &Path) -> Output {
    let mut cmd = kubeseal(home);
    cmd.args(["--cert", &cert(), "--merge-into"]).arg(target);
    run(
        cmd,
        "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\nstringData: {ca.crt: new-ca}\n",
    )
}

/// Regression (issue 8 item 10): `-w` and `--merge-into` replaced a symlink with a regular file,
/// leaving the file it pointed to (e.g. in a checked-out repository) as it was.
#[cfg(unix)]
#[test]
fn write_and_merge_into_follow_symlinks_and_keep_them() {
    let home = tempfile::tempdir().unwrap();
    let repo = home.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    let real = repo.join("sealed.yaml");
    std::fs::write(&real, "previous content\n").unwrap();
    let link = home.path().join("link.yaml");
    std::os::unix::fs::symlink("repo/sealed.yaml", &link).unwrap();

    stdout(&seal_into(home.path(), &link));
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let written = std::fs::read_to_string(&real).unwrap();
    assert_eq!(&*unseal_text(&written).data["password"], b"hunter2");

    stdout(&merge_into(home.path(), &link));
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let merged = std::fs::read_to_string(&real).unwrap();
    assert_eq!(&*unseal_text(&merged).data["ca.crt"], b"new-ca");
    assert_eq!(&*unseal_text(&merged).data["password"], b"hunter2");

    // A dangling link creates the file it names, as `>` does.
    let dangling = home.path().join("dangling.yaml");
    std::os::unix::fs::symlink("repo/new.yaml", &dangling).unwrap();
    stdout(&seal_into(home.path(), &dangling));
    assert!(
        std::fs::symlink_metadata(&dangling)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(repo.join("new.yaml").is_file());
    let leftovers: Vec<_> = std::fs::read_dir(&repo)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind");
}

/// Regression (issue 8 item 10): read-only files were silently replaced; other files lost their
/// mode. Now a read-only file is refused (even for root, whom the OS would let write) and left
/// as it was, and a replaced file keeps its mode.
#[cfg(unix)]
#[test]
fn read_only_targets_are_refused_and_modes_are_kept() {
    use std::os::unix::fs::PermissionsExt as _;
    let home = tempfile::tempdir().unwrap();
    let previous = read_fixture("sealedsecrets/tls-typed.yaml");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;

    let read_only = home.path().join("ro.yaml");
    std::fs::write(&read_only, &previous).unwrap();
    std::fs::set_permissions(&read_only, std::fs::Permissions::from_mode(0o444)).unwrap();
    for output in [
        seal_into(home.path(), &read_only),
        merge_into(home.path(), &read_only),
    ] {
        let err = stderr(&output);
        assert!(err.contains("ro.yaml is read-only: not replaced"), "{err}");
        assert_eq!(
            std::fs::read_to_string(&read_only).unwrap(),
            previous.as_str()
        );
        assert_eq!(mode(&read_only), 0o444);
    }

    let private = home.path().join("private.yaml");
    std::fs::write(&private, &previous).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o640)).unwrap();
    stdout(&seal_into(home.path(), &private));
    assert_eq!(mode(&private), 0o640);
    stdout(&merge_into(home.path(), &private));
    assert_eq!(mode(&private), 0o640);
}

/// Regression (issue 8 item 10): a rename split hard links (the other name kept the old
/// content). Such a file is now refused and left as it was.
#[cfg(unix)]
#[test]
fn hard_linked_targets_are_refused() {
    let home = tempfile::tempdir().unwrap();
    let previous = read_fixture("sealedsecrets/tls-typed.yaml");
    let first = home.path().join("a.yaml");
    let second = home.path().join("b.yaml");
    std::fs::write(&first, &previous).unwrap();
    std::fs::hard_link(&first, &second).unwrap();
    for output in [
        seal_into(home.path(), &first),
        merge_into(home.path(), &second),
    ] {
        let err = stderr(&output);
        assert!(err.contains("has 2 hard links: not replaced"), "{err}");
    }
    for path in [&first, &second] {
        assert_eq!(std::fs::read_to_string(path).unwrap(), previous.as_str());
    }
}

/// `-w /dev/null` and the like write into the device: there is no file to replace.
#[cfg(unix)]
#[test]
fn write_to_a_device_writes_through() {
    use std::os::unix::fs::FileTypeExt as _;
    let home = tempfile::tempdir().unwrap();
    stdout(&seal_into(home.path(), Path::new("/dev/null")));
    assert!(
        std::fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device()
    );
}

#[test]
fn merge_into_adds_keys_and_keeps_the_rest_of_the_file() {
    let home = tempfile::tempdir().unwrap();
    let target = home.path().join("ss.yaml");
    let original = read_fixture("sealedsecrets/tls-typed.yaml");
    std::fs::write(&target, &original).unwrap();
    let before: crds::SealedSecret = serde_yaml::from_str(&original).unwrap();

    let new_key = "apiVersion: v1\nkind: Secret\nmetadata: {name: ignored, labels: {tier: edge}}\nstringData: {ca.crt: new-ca}\n";
    let mut cmd = kubeseal(home.path());
    cmd.args(["--cert", &cert(), "--merge-into"]).arg(&target);
    stdout(&run(cmd, new_key));

    let after_text = std::fs::read_to_string(&target).unwrap();
    let after: crds::SealedSecret = serde_yaml::from_str(&after_text).unwrap();
    assert_eq!(after.metadata, before.metadata);
    for key in ["tls.crt", "tls.key"] {
        assert_eq!(
            after.spec.encrypted_data[key],
            before.spec.encrypted_data[key]
        );
    }
    let unsealed = unseal_text(&after_text);
    assert_eq!(&*unsealed.data["ca.crt"], b"new-ca");
    assert_eq!(unsealed.metadata.labels.as_ref().unwrap()["tier"], "edge");
    assert_eq!(unsealed.metadata.labels.as_ref().unwrap()["app"], "web");

    // A failure (no such certificate) leaves the file exactly as it was.
    let mut bad = kubeseal(home.path());
    bad.args(["--cert", "/nonexistent.pem", "--merge-into"])
        .arg(&target);
    stderr(&run(bad, new_key));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), after_text);
}

#[test]
fn recovery_unseal_reads_key_backups_in_every_format() {
    let home = tempfile::tempdir().unwrap();
    let sealed = read_fixture("sealedsecrets/basic.yaml");
    let expected: k8s_openapi::api::core::v1::Secret =
        serde_yaml::from_str(&read_fixture("expected-secrets/basic.yaml")).unwrap();
    let backups = [
        fixture("keys/all-keys-list.json").display().to_string(),
        format!(
            "{},{}",
            fixture("keys/key1-secret.yaml").display(),
            fixture("keys/key2.pkcs8.pem").display()
        ),
    ];
    for backup in backups {
        let mut cmd = kubeseal(home.path());
        cmd.args([
            "--recovery-unseal",
            "-o",
            "yaml",
            "--recovery-private-key",
            &backup,
        ]);
        let out = stdout(&run(cmd, &sealed));
        assert!(out.starts_with("---\napiVersion: v1\n"), "{out}");
        let secret: k8s_openapi::api::core::v1::Secret = serde_yaml::from_str(&out).unwrap();
        assert_eq!(secret.data, expected.data);
    }

    let mut cmd = kubeseal(home.path());
    cmd.args(["--recovery-unseal", "--recovery-private-key"])
        .arg(fixture("keys/unrelated.pem"));
    let err = stderr(&run(cmd, &sealed));
    assert!(err.contains("no key could decrypt secret"), "{err}");
}

#[test]
fn errors_never_show_secret_values() {
    let home = tempfile::tempdir().unwrap();
    let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, CANARY);
    let cases = [
        format!("kind: Secret\nmetadata: {{name: a, namespace: x}}\ndata: {{k: '{CANARY}!'}}\n"),
        format!("kind: Secret\nmetadata: {{name: a}}\ndata: {{k: {encoded}}}\n"),
        format!(
            "kind: Secret\nmetadata: {{name: a, namespace: b}}\nstringData: {{k: [{CANARY}]}}\n"
        ),
        format!("{{\"kind\": \"Secret\", \"data\": {{\"k\": \"{CANARY}\"}}"),
    ];
    for input in cases {
        let mut cmd = kubeseal(home.path());
        cmd.args(["--cert", &cert()]);
        let output = run(cmd, &input);
        let err = stderr(&output);
        assert!(!err.contains(CANARY) && !err.contains(&encoded), "{err}");
        assert!(output.stdout.is_empty());
    }
}

/// Regression (issue 8 item 10): numbers and booleans in `stringData` were quoted back in the
/// "invalid type" error.
#[test]
fn numeric_and_boolean_string_data_values_are_not_echoed() {
    let home = tempfile::tempdir().unwrap();
    for (value, shown) in [("31337", "31337"), ("true", "true"), ("2.5e3", "2500")] {
        let input = format!(
            "kind: Secret\nmetadata: {{name: a, namespace: b}}\nstringData: {{pin: {value}}}\n"
        );
        let mut cmd = kubeseal(home.path());
        cmd.args(["--cert", &cert()]);
        let output = run(cmd, &input);
        let err = stderr(&output);
        assert!(
            err.contains("stringData key \"pin\" is not a string"),
            "{err}"
        );
        assert!(!err.contains(shown), "{value} echoed: {err}");
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn an_expired_certificate_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let key = sealing::PrivateKey::generate(2048).unwrap();
    let cert =
        sealing::Certificate::self_signed(&key, "old", std::time::Duration::from_secs(1)).unwrap();
    let path = home.path().join("old.pem");
    std::fs::write(&path, cert.to_pem()).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let mut cmd = kubeseal(home.path());
    cmd.arg("--cert").arg(&path);
    let err = stderr(&run(cmd, &read_fixture("input-secrets/opaque.yaml")));
    assert!(err.contains("expired"), "{err}");
}

#[test]
fn flags_come_from_the_environment_too() {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = kubeseal(home.path());
    cmd.env("SEALED_SECRETS_CERT", cert())
        .env("SEALED_SECRETS_FORMAT", "yaml");
    let out = stdout(&run(cmd, &read_fixture("input-secrets/opaque.yaml")));
    assert!(out.starts_with("---\n"));
}

#[test]
fn usage_errors_version_and_completions() {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = kubeseal(home.path());
    cmd.args(["--raw", "--validate"]);
    assert!(stderr(&run(cmd, "")).contains("--validate and --raw cannot be used together"));

    let mut cmd = kubeseal(home.path());
    cmd.args(["--from-file", "x", "--cert", &cert()]);
    assert!(stderr(&run(cmd, "")).contains("--from-file is only used with --raw"));

    let mut cmd = kubeseal(home.path());
    cmd.arg("--version");
    assert!(stdout(&run(cmd, "")).starts_with("kubeseal "));

    for shell in ["bash", "zsh", "fish"] {
        let mut cmd = kubeseal(home.path());
        cmd.args(["completion", shell]);
        assert!(stdout(&run(cmd, "")).contains("recovery-unseal"), "{shell}");
    }
}

fn validate_offline(home: &Path, input: &str) -> Output {
    let mut cmd = kubeseal(home);
    cmd.args(["--validate", "--cert", &cert()]);
    run(cmd, input)
}

#[test]
fn offline_validate_accepts_the_positive_vectors() {
    let home = tempfile::tempdir().unwrap();
    for file in [
        "basic.yaml",
        "cluster-wide.yaml",
        "empty-value.yaml",
        "immutable-plain-data.yaml",
        "mixed-keys.yaml",
        "namespace-wide.yaml",
        "tls-typed.yaml",
    ] {
        let input = read_fixture(&format!("sealedsecrets/{file}"));
        let output = validate_offline(home.path(), &input);
        assert!(
            output.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(err.contains("1 SealedSecret(s) well-formed"), "{err}");
    }
}

/// Issue 13 item 3: each negative vector that the public key alone can expose is rejected, by
/// document and key, in one run; the others (tampered inside their framing, sealed for another
/// name or scope or to another key of the same size) need the private key.
#[test]
fn offline_validate_rejects_the_negative_vectors_the_certificate_can_tell() {
    let home = tempfile::tempdir().unwrap();
    let vectors: Vec<serde_json::Value> =
        serde_json::from_str(&read_fixture("negative.json")).unwrap();
    let mut input = String::new();
    for vector in &vectors {
        let text = |field: &str| vector[field].as_str().unwrap().to_string();
        let annotations = match text("scope").as_str() {
            "namespace-wide" => "{sealedsecrets.bitnami.com/namespace-wide: 'true'}",
            "cluster-wide" => "{sealedsecrets.bitnami.com/cluster-wide: 'true'}",
            _ => "{}",
        };
        input.push_str(&format!(
            "---\napiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata: {{name: {}, namespace: {}, annotations: {annotations}}}\nspec:\n  encryptedData:\n    v: '{}'\n",
            text("id"),
            text("namespace"),
            text("sealed_b64")
        ));
    }
    let output = validate_offline(home.path(), &input);
    let err = stderr(&output);
    let detectable = [
        ("empty", "the sealed value is empty"),
        ("truncated-1", "SealedSecret data is too short"),
        ("truncated-in-rsa", "SealedSecret data is too short"),
        ("truncated-no-aes", "shorter than its 16-byte tag"),
        (
            "zero-len-prefix",
            "the RSA part is 0 bytes but the certificate's 4096-bit key makes 512",
        ),
        ("len-prefix-511", "the RSA part is 511 bytes"),
    ];
    for (id, why) in detectable {
        let line = err
            .lines()
            .find(|l| l.contains(&format!("({id}): key \"v\": ")))
            .unwrap_or_else(|| panic!("{id} not reported: {err}"));
        assert!(line.starts_with("stdin: document "), "{line}");
        assert!(line.contains(why), "{id}: {line}");
    }
    for vector in &vectors {
        let id = vector["id"].as_str().unwrap();
        if !detectable.iter().any(|(d, _)| *d == id) {
            assert!(!err.contains(&format!("({id})")), "{id} flagged: {err}");
        }
    }
    assert!(err.contains("stdin: 6 problem(s) found"), "{err}");

    let bad_base64 = validate_offline(
        home.path(),
        &read_fixture("sealedsecrets/negative-bad-base64.yaml"),
    );
    let err = stderr(&bad_base64);
    assert!(
        err.contains("(bad-base64): key \"x\": value is not valid base64"),
        "{err}"
    );
}

#[test]
fn offline_validate_reports_every_problem_of_every_document() {
    let home = tempfile::tempdir().unwrap();
    let basic: crds::SealedSecret =
        serde_yaml::from_str(&read_fixture("sealedsecrets/basic.yaml")).unwrap();
    let mut conflicting = basic.clone();
    conflicting.metadata.annotations = Some(
        [(
            "sealedsecrets.bitnami.com/cluster-wide".to_string(),
            "true".to_string(),
        )]
        .into(),
    );
    let template = conflicting.spec.template.metadata.get_or_insert_default();
    template.annotations = Some(
        [(
            "sealedsecrets.bitnami.com/namespace-wide".to_string(),
            "true".to_string(),
        )]
        .into(),
    );
    let mut renamed = basic.clone();
    renamed.metadata.name = Some("new-name".into());

    // Sealed to a 2048-bit key, checked against the 4096-bit certificate.
    let small = sealing::PrivateKey::generate(2048).unwrap();
    let value = sealing::seal_value(small.public_key(), b"default/mysecret", b"x").unwrap();
    let mut other_key = basic.clone();
    other_key.spec.encrypted_data.insert(
        "password".into(),
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, value),
    );

    let mut input = String::new();
    for sealed in [&conflicting, &renamed, &other_key] {
        input.push_str(&format!("---\n{}", serde_yaml::to_string(sealed).unwrap()));
    }
    input.push_str("---\nkind: ConfigMap\nmetadata: {name: cm}\n");
    let err = stderr(&validate_offline(home.path(), &input));
    for expected in [
        "stdin: document 1 (mysecret): metadata says the cluster-wide scope, spec.template.metadata the namespace-wide scope",
        "stdin: document 2 (new-name): metadata.name \"new-name\" differs from spec.template.metadata.name \"mysecret\"",
        "stdin: document 3 (mysecret): key \"password\": the RSA part is 256 bytes but the certificate's 4096-bit key makes 512",
        "stdin: document 4 (cm): expected a SealedSecret, found kind \"ConfigMap\"",
        "stdin: 4 problem(s) found",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in {err}");
    }
}
