//! Re-encrypting a repository of 500 SealedSecrets (1,000 values) in 200 files, as
//! `kubeseal --re-encrypt DIR` does it through the controller's /v1/rotate and offline from a key
//! backup, against the reference measured in the same run: Bitnami's documented approach, a
//! shell loop running one `kubeseal --re-encrypt` process per SealedSecret file.
//! Run with `cargo bench -p kubeseal-cli --bench re_encrypt` (add `--profile dev` to skip the
//! release build; both sides use the same build, so the ratio holds).
#![allow(clippy::unwrap_used)]

#[path = "../tests/it/tree.rs"]
mod tree;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const OBJECTS: usize = 500;
const FILES: usize = 200;

fn kubeseal(home: &Path, kubeconfig: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kubeseal"));
    for (key, _) in std::env::vars() {
        if key.starts_with("SEALED_SECRETS_") || key == "KUBECONFIG" {
            cmd.env_remove(key);
        }
    }
    cmd.env("HOME", home).arg("--kubeconfig").arg(kubeconfig);
    cmd
}

fn timed(mut cmd: Command) -> Duration {
    let start = Instant::now();
    let out = cmd.output().unwrap();
    let elapsed = start.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    elapsed
}

/// The same objects one per file, as a per-object loop needs them.
fn split_tree(root: &Path, public: &sealing::PublicKey) -> Vec<std::path::PathBuf> {
    let _ = tree::generate(root, public, OBJECTS, OBJECTS);
    let mut files = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                // Bitnami's single-object mode takes SealedSecrets only: drop the ConfigMap.
                let text = std::fs::read_to_string(&path).unwrap();
                let kept = text.replace("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata:\n  mode: \"fast\"  # not a secret\n", "");
                // Nor Lists: the one item becomes the document.
                let kept = match kept.strip_prefix("apiVersion: v1\nkind: List\nitems:\n- ") {
                    Some(item) => item.replace("\n  ", "\n").replace("# end of list\n", ""),
                    None => kept,
                };
                std::fs::write(&path, kept).unwrap();
                files.push(path);
            }
        }
    }
    files
}

fn main() {
    let key1 = tree::key("key1");
    // The rate limit off: the bench measures the client, not the controller's configured pace
    // (at the default 2 requests/s any client needs OBJECTS / 2 seconds).
    let cluster = tree::start_cluster(&["key1", "key2"], 0.0, 1);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = tree::write_kubeconfig(dir.path(), cluster.api_port);

    let online = dir.path().join("online");
    tree::generate(&online, key1.public_key(), OBJECTS, FILES);
    let mut cmd = kubeseal(dir.path(), &kubeconfig);
    cmd.arg("--re-encrypt").arg(&online);
    let ours_online = timed(cmd);

    // At the controller's default limit (2 requests/s, burst 2), batches keep the pace up.
    let limited_cluster = tree::start_cluster(&["key1", "key2"], 2.0, 2);
    let limited_kubeconfig = dir.path().join("limited");
    std::fs::create_dir(&limited_kubeconfig).unwrap();
    let limited_kubeconfig = tree::write_kubeconfig(&limited_kubeconfig, limited_cluster.api_port);
    let limited = dir.path().join("limited-tree");
    tree::generate(&limited, key1.public_key(), OBJECTS, FILES);
    let mut cmd = kubeseal(dir.path(), &limited_kubeconfig);
    cmd.arg("--re-encrypt").arg(&limited);
    let ours_limited = timed(cmd);

    let offline = dir.path().join("offline");
    tree::generate(&offline, key1.public_key(), OBJECTS, FILES);
    let mut cmd = kubeseal(dir.path(), &kubeconfig);
    cmd.args(["--re-encrypt", "--recovery-private-key"])
        .arg(tree::fixture("keys/all-keys-list.json"))
        .arg(&offline);
    let ours_offline = timed(cmd);

    let single = dir.path().join("single");
    let files = split_tree(&single, key1.public_key());
    let start = Instant::now();
    for file in &files {
        let mut cmd = kubeseal(dir.path(), &kubeconfig);
        cmd.args(["--re-encrypt", "-o", "yaml", "-f"]).arg(file);
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let loop_time = start.elapsed();

    let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1e3);
    let ratio = |d: Duration| format!("{:.3}", d.as_secs_f64() / loop_time.as_secs_f64());
    println!(
        "Re-encrypting {OBJECTS} SealedSecrets ({} values) in {FILES} files",
        OBJECTS * 2
    );
    println!();
    println!("| run | time | per object | vs per-object loop |");
    println!("|---|---|---|---|");
    for (name, time) in [
        ("kubeseal --re-encrypt DIR, through /v1/rotate", ours_online),
        (
            "kubeseal --re-encrypt DIR, through /v1/rotate at its default rate limit (2/s)",
            ours_limited,
        ),
        (
            "kubeseal --re-encrypt DIR, offline from the key backup",
            ours_offline,
        ),
        (
            "reference: one kubeseal --re-encrypt -f process per object (500 files)",
            loop_time,
        ),
    ] {
        println!(
            "| {name} | {} | {:.2} ms | {} |",
            ms(time),
            time.as_secs_f64() * 1e3 / OBJECTS as f64,
            ratio(time)
        );
    }
}
