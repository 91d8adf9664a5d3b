//! `canary-scan` fails on a planted leak, wherever it hides, and passes on clean files.

use std::process::Command;

fn scan(path: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_canary-scan"))
        .arg(path)
        .output()
        .expect("canary-scan runs")
}

#[test]
fn clean_tree_passes() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("log"), "reconciled default/db\n").expect("write");
    let out = scan(dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn planted_leak_in_a_nested_file_fails_naming_the_file() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().expect("temp dir");
    let nested = dir.path().join("a/b");
    std::fs::create_dir_all(&nested).expect("mkdir");
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("x{}", canary::CANARY));
    std::fs::write(
        nested.join("secret.yaml"),
        format!("data:\n  k: {encoded}\n"),
    )
    .expect("write");
    let out = scan(dir.path());
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("a/b/secret.yaml: base64 form"), "{stderr}");
    canary::assert_absent("canary-scan's own report", &out.stderr);
}
