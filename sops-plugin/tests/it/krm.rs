//! The KSOPS-style KRM exec function: ResourceList in, generated resources out.

use crate::common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

fn run_fn(exe: &Path, dir: &Path, input: &str) -> std::process::Output {
    let mut args = vec![];
    if exe.file_name().is_some_and(|n| n != "ksops") {
        args.push("krm");
    }
    let mut child = Command::new(exe)
        .args(args)
        .current_dir(dir)
        .env("SOPS_AGE_KEY_FILE", fx("keys.txt"))
        .env("HOME", dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn ksops_generator_decrypts_files_and_builds_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let recips = format!("{R1},{R2}");
    std::fs::write(d.join("secret.enc.yaml"), "apiVersion: v1\nkind: Secret\nmetadata:\n    name: db\nstringData:\n    password: hunter2\n").unwrap();
    std::fs::write(d.join("app.enc.env"), "TOKEN=t0k3n\nURL=https://x\n").unwrap();
    std::fs::write(d.join("tls.key"), b"\x00binary key\xff").unwrap();
    for f in ["secret.enc.yaml", "app.enc.env"] {
        let out = sops_ok(d, &["encrypt", "--age", &recips, f]);
        std::fs::write(d.join(f), out).unwrap();
    }
    let out = sops_ok(
        d,
        &[
            "encrypt",
            "--age",
            &recips,
            "--input-type",
            "binary",
            "--output-type",
            "binary",
            "tls.key",
        ],
    );
    std::fs::write(d.join("tls.key.enc"), out).unwrap();
    let input = "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems: []\nfunctionConfig:\n  apiVersion: viaduct.ai/v1\n  kind: ksops\n  metadata:\n    name: gen\n  files:\n    - ./secret.enc.yaml\n  secretFrom:\n    - metadata:\n        name: api\n        annotations:\n          kustomize.config.k8s.io/needs-hash: \"true\"\n      type: Opaque\n      envs: [./app.enc.env]\n      binaryFiles: [tls.key=./tls.key.enc]\n";
    let out = run_fn(Path::new(env!("CARGO_BIN_EXE_sops-plugin")), d, input);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n"),
        "{text}"
    );
    assert!(text.contains("password: hunter2"), "{text}");
    assert!(text.contains(&format!("TOKEN: {}", b64("t0k3n"))), "{text}");
    assert!(
        text.contains("kustomize.config.k8s.io/needs-hash: \"true\""),
        "{text}"
    );
    use base64::Engine as _;
    let key_b64 = base64::engine::general_purpose::STANDARD.encode(b"\x00binary key\xff");
    assert!(text.contains(&format!("tls.key: {key_b64}")), "{text}");
    // The same binary installed as `ksops` behaves as the function without arguments.
    let ksops = d.join("ksops");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_sops-plugin"), &ksops).unwrap();
    let out2 = run_fn(&ksops, d, input);
    assert!(
        out2.status.success(),
        "{}",
        String::from_utf8_lossy(&out2.stderr)
    );
    assert_eq!(String::from_utf8(out2.stdout).unwrap(), text);
    // Paths leaving the kustomization are refused, and nothing is printed.
    let bad = input.replace("./secret.enc.yaml", "../secret.enc.yaml");
    let out3 = run_fn(Path::new(env!("CARGO_BIN_EXE_sops-plugin")), d, &bad);
    assert!(!out3.status.success() && out3.stdout.is_empty());
}
