//! `generate` (Argo CD CMP): plain manifests pass through, SOPS files are decrypted, a
//! kustomization is rendered after decryption, failures name the file and leak nothing.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::*;

const CANARY: &str = canary::CANARY;

fn write(d: &Path, name: &str, content: &str) {
    let p = d.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

const DEPLOY: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web # keep me\nspec:\n  replicas: 1\n";

fn secret(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n    name: {name}\ntype: Opaque\nstringData:\n    password: {CANARY}\n"
    )
}

/// Encrypts `name` in `d` with the real sops (what users have in Git).
fn sops_encrypt(d: &Path, name: &str, extra: &[&str]) {
    let recips = format!("{R1},{R2}");
    let mut args = vec!["encrypt", "--age", recips.as_str()];
    args.extend_from_slice(extra);
    args.push(name);
    let enc = sops_ok(d, &args);
    std::fs::write(d.join(name), enc).unwrap();
}

#[test]
fn renders_plain_and_encrypted_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "app/deploy.yaml", DEPLOY);
    write(d, "app/secrets/db.enc.yaml", &secret("db"));
    sops_encrypt(
        &d.join("app/secrets"),
        "db.enc.yaml",
        &["--encrypted-regex", "^(data|stringData)$"],
    );
    write(d, "app/values.yaml", "replicas: 3\n");
    write(d, "app/.sops.yaml", "creation_rules: []\n");
    write(
        d,
        "app/other.json",
        "{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {\"name\": \"cm\"}}\n",
    );
    let out = ours_ok(d, &["generate", "app"]);
    let text = String::from_utf8(out).unwrap();
    // Plain manifests verbatim (comments included), sorted by path, values.yaml skipped.
    let expected = format!(
        "---\n{DEPLOY}---\n{{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {{\"name\": \"cm\"}}}}\n---\n{}",
        secret("db")
    );
    assert_eq!(text, expected);
    assert!(!text.contains("replicas: 3"));
    assert!(!text.contains("sops:"));
}

#[test]
fn a_file_that_fails_fails_the_render_without_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "deploy.yaml", DEPLOY);
    write(d, "secret.yaml", &secret("s"));
    sops_encrypt(d, "secret.yaml", &[]);
    // Wrong key: error names the file and the recipients, exit 128, nothing on stdout.
    let out = ours(d, &["generate", "."], Some("unrelated-key.txt"));
    assert_eq!(out.status.code(), Some(128));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("secret.yaml") && err.contains(R1), "{err}");
    assert!(!err.contains(CANARY));
    // Tampered value: same, and the canary never shows.
    let enc = std::fs::read_to_string(d.join("secret.yaml")).unwrap();
    let tampered = enc.replacen(
        "password: ENC[AES256_GCM,data:",
        "password: ENC[AES256_GCM,data:AA",
        1,
    );
    std::fs::write(d.join("secret.yaml"), tampered).unwrap();
    let out = ours(d, &["generate", "."], Some("keys.txt"));
    assert_eq!(out.status.code(), Some(25));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("secret.yaml") && err.contains("stringData:password"),
        "{err}"
    );
    assert!(!err.contains(CANARY) && !String::from_utf8_lossy(&out.stdout).contains(CANARY));
}

#[test]
fn decrypt_errors_never_print_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "s.yaml", &format!("a: {CANARY}\nb: {CANARY}-2\n"));
    sops_encrypt(d, "s.yaml", &[]);
    let enc = std::fs::read_to_string(d.join("s.yaml")).unwrap();
    // Swap the two values: each fails GCM (the key path is the AAD).
    let lines: Vec<&str> = enc.lines().collect();
    let a = lines.iter().position(|l| l.starts_with("a: ")).unwrap();
    let b = lines.iter().position(|l| l.starts_with("b: ")).unwrap();
    let mut swapped: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
    swapped[a] = format!("a: {}", &lines[b][3..]);
    swapped[b] = format!("b: {}", &lines[a][3..]);
    std::fs::write(d.join("s.yaml"), swapped.join("\n") + "\n").unwrap();
    for args in [
        vec!["decrypt", "s.yaml"],
        vec!["decrypt", "--ignore-mac", "s.yaml"],
        vec!["generate", "."],
    ] {
        let out = ours(d, &args, Some("keys.txt"));
        assert!(!out.status.success());
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains(CANARY), "{args:?}: {all}");
    }
    // MAC mismatch: replace a with a valid ciphertext of another value made by `set`.
    write(d, "m.yaml", &format!("a: {CANARY}\n"));
    sops_encrypt(d, "m.yaml", &[]);
    let orig = std::fs::read_to_string(d.join("m.yaml")).unwrap();
    ours_ok(d, &["set", "m.yaml", r#"["a"]"#, r#""other""#]);
    let changed = std::fs::read_to_string(d.join("m.yaml")).unwrap();
    let new_a = changed
        .lines()
        .find(|l| l.starts_with("a: "))
        .unwrap()
        .to_string();
    let forged: String = orig
        .lines()
        .map(|l| {
            if l.starts_with("a: ") {
                new_a.clone()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    std::fs::write(d.join("m.yaml"), forged).unwrap();
    let out = ours(d, &["decrypt", "m.yaml"], Some("keys.txt"));
    assert_eq!(out.status.code(), Some(51));
    assert!(String::from_utf8_lossy(&out.stderr).contains("MAC mismatch"));
    assert!(out.stdout.is_empty());
}

fn kustomize_available() -> bool {
    ["kustomize", "kubectl"].iter().any(|p| {
        std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).any(|d| d.join(p).is_file()))
            .unwrap_or(false)
    })
}

#[test]
fn kustomization_is_built_after_decryption() {
    assert!(
        kustomize_available(),
        "neither kustomize nor kubectl is on PATH: install one (kubectl has `kubectl kustomize`)"
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "base/deploy.yaml", DEPLOY);
    write(
        d,
        "base/kustomization.yaml",
        "resources:\n  - deploy.yaml\n",
    );
    write(d, "overlay/secret.enc.yaml", &secret("db"));
    sops_encrypt(&d.join("overlay"), "secret.enc.yaml", &[]);
    write(d, "overlay/app.enc.env", &format!("API_KEY={CANARY}\n"));
    sops_encrypt(&d.join("overlay"), "app.enc.env", &[]);
    write(
        d,
        "overlay/kustomization.yaml",
        "resources:\n  - ../base\n  - secret.enc.yaml\nnamespace: prod\ncommonLabels:\n  team: a\nsecretGenerator:\n  - name: api\n    envs: [app.enc.env]\n",
    );
    std::fs::create_dir_all(d.join(".git")).unwrap();
    let out = ours_ok(d, &["generate", "overlay"]);
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("kind: Deployment") && text.contains("namespace: prod"),
        "{text}"
    );
    assert!(text.contains(&format!("password: {CANARY}")), "{text}");
    // secretGenerator base64-encodes the decrypted dotenv value.
    let b64 = base64_of(CANARY);
    assert!(text.contains(&b64), "{text}");
    assert!(!text.contains("ENC[") && !text.contains("sops"));
    // With --seal, both the decrypted Secret and the generated one leave as SealedSecrets.
    let key = sealing::PrivateKey::generate(2048).unwrap();
    let cert =
        sealing::Certificate::self_signed(&key, "t", std::time::Duration::from_secs(600)).unwrap();
    std::fs::write(d.join("cert.pem"), cert.to_pem()).unwrap();
    let out = ours_ok(d, &["generate", "--seal", "--cert", "cert.pem", "overlay"]);
    let text = String::from_utf8(out).unwrap();
    assert!(!text.contains(CANARY) && !text.contains(&b64), "{text}");
    assert_eq!(text.matches("kind: SealedSecret").count(), 2, "{text}");
    assert!(text.contains("kind: Deployment"));
}

fn base64_of(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn seal_turns_every_secret_into_a_sealed_secret() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = sealing::PrivateKey::generate(2048).unwrap();
    let cert =
        sealing::Certificate::self_signed(&key, "test", std::time::Duration::from_secs(3600))
            .unwrap();
    std::fs::write(d.join("cert.pem"), cert.to_pem()).unwrap();
    write(d, "app/deploy.yaml", DEPLOY);
    write(d, "app/secret.yaml", &secret("db"));
    sops_encrypt(&d.join("app"), "secret.yaml", &[]);
    write(
        d,
        "app/plain-secret.yaml",
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: plain\nstringData:\n  k: {CANARY}-plain\n"
        ),
    );
    // As the plugin parameter `seal` arrives from Argo CD, with the operator's certificate.
    let out = Command::new(env!("CARGO_BIN_EXE_sops-plugin"))
        .arg("generate")
        .arg(d.join("app"))
        .env("PARAM_SEAL", "true")
        .env("SOPS_PLUGIN_SEAL_CERT", d.join("cert.pem"))
        .env("SOPS_AGE_KEY_FILE", fx("keys.txt"))
        .env("ARGOCD_APP_NAMESPACE", "prod")
        .env("HOME", d)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains(CANARY), "plaintext in sealed output");
    assert!(text.contains("kind: Deployment"));
    let docs = sops_plugin::stores::yaml::parse(&text).unwrap();
    let sealed: Vec<_> = docs
        .iter()
        .filter(|d| {
            sops_plugin::Value::Map((*d).clone())
                .get("kind")
                .and_then(|k| k.as_str().map(String::from))
                == Some("SealedSecret".into())
        })
        .collect();
    assert_eq!(sealed.len(), 2);
    for doc in sealed {
        let json = sops_plugin::stores::json::emit(doc);
        let parsed = serde_json::from_str(&json).unwrap();
        let opened = sealing::unseal(&parsed, &[&key]).unwrap();
        assert_eq!(opened.metadata.namespace.as_deref(), Some("prod"));
        let v = opened.data.values().next().unwrap();
        assert!(String::from_utf8_lossy(v).starts_with(CANARY));
    }
}

#[test]
fn per_project_keys_come_from_argocd_not_from_the_app() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "app/secret.yaml", &secret("db"));
    sops_encrypt(&d.join("app"), "secret.yaml", &[]);
    let keys = d.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::copy(fx("identity1.txt"), keys.join("team-a.txt")).unwrap();
    std::fs::copy(fx("unrelated-key.txt"), keys.join("team-b.txt")).unwrap();
    let run = |project: &str| {
        Command::new(env!("CARGO_BIN_EXE_sops-plugin"))
            .args(["generate", "app"])
            .current_dir(d)
            .env("HOME", d)
            // Ignored when SOPS_PLUGIN_KEYS_DIR is set: only the project's file counts.
            .env("SOPS_AGE_KEY_FILE", fx("keys.txt"))
            .env("ARGOCD_ENV_SOPS_AGE_KEY_FILE", fx("keys.txt"))
            .env("SOPS_PLUGIN_KEYS_DIR", &keys)
            .env("ARGOCD_APP_PROJECT_NAME", project)
            .output()
            .unwrap()
    };
    let ok = run("team-a");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains(CANARY));
    let wrong = run("team-b");
    assert_eq!(wrong.status.code(), Some(128));
    for bad in ["team-c", "../keys/team-a", ""] {
        let out = run(bad);
        assert!(!out.status.success(), "{bad}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn plain_yaml_our_parser_refuses_passes_through() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // go-yaml accepts a closing bracket at the key's indentation; YAML 1.2 parsers do not.
    let odd =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: odd\ndata:\n  list: [\n    a\n  ]\n";
    write(d, "odd.yaml", odd);
    write(d, "notes.yaml", "{{ not yaml\n");
    let out = ours_ok(d, &["generate", "."]);
    assert_eq!(String::from_utf8_lossy(&out), format!("---\n{odd}"));
    // An encrypted file that does not parse still fails the render.
    write(
        d,
        "bad.yaml",
        "apiVersion: v1\nkind: Secret\nstringData:\n  a: ENC[AES256_GCM,data:x\n  - ]\n",
    );
    assert!(
        !ours(d, &["generate", "."], Some("keys.txt"))
            .status
            .success()
    );
}
