//! The sidecar image works without a base image: deploy/images/build-rootfs.sh assembles the root
//! deploy/images/sops-plugin.Dockerfile copies into `FROM scratch` (the plugin, a kustomize, the
//! CA bundle, Argo CD's user 999), and in it, under chroot as 999 with the sidecar's environment
//! from deploy/argocd/repo-server-patch.yaml, the plugin discovers and renders a repository: a
//! plain SOPS-encrypted manifest, and a kustomization holding one, leaving no plaintext behind.
//!
//! The image installs kustomize v5.5.0 (`go install`); no package installs kustomize on this
//! machine, so when it is not on PATH the root gets kubectl instead, whose built-in kustomize is
//! the same engine and which the plugin falls back to (`kubectl kustomize`) when `kustomize` is
//! missing. helm (`--enable-helm`) is not tested here.
//! Needs root for chroot (as CI and containers have); prints a clear skip otherwise.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

const CANARY: &str = canary::CANARY;
/// Argo CD's sidecar user (the Dockerfile's `USER 999:999`, the patch's `runAsUser: 999`).
const ARGOCD: u32 = 999;
const HOME: &str = "/home/argocd";
const KEY_FILE: &str = "/home/argocd/sops/age/keys.txt";

fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// The image root, and the kustomize it holds (`kustomize` or, standing in, `kubectl`).
fn build_rootfs() -> (tempfile::TempDir, &'static str) {
    let root = tempfile::tempdir().unwrap();
    let (tool, name) = match on_path("kustomize") {
        Some(p) => (p, "kustomize"),
        None => (
            on_path("kubectl").expect(
                "neither kustomize nor kubectl is on PATH: install one (kubectl has `kubectl kustomize`)",
            ),
            "kubectl",
        ),
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/images/build-rootfs.sh");
    let status = Command::new(script)
        .args(["--binary", env!("CARGO_BIN_EXE_sops-plugin")])
        .args(["--name", "sops-plugin", "--user", "argocd:999", "--extra"])
        .arg(&tool)
        .arg("--out")
        .arg(root.path())
        .status()
        .unwrap();
    assert!(status.success());
    // The container runtime provides /dev; the plugin gives kustomize /dev/null as stdin.
    std::fs::create_dir(root.path().join("dev")).unwrap();
    let null = root.path().join("dev/null");
    let made = Command::new("mknod")
        .args(["-m", "666"])
        .arg(&null)
        .args(["c", "1", "3"])
        .status();
    assert!(
        made.is_ok_and(|s| s.success()) || !is_root(),
        "mknod {}",
        null.display()
    );
    (root, name)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

fn write(root: &Path, rel: &str, content: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

/// Encrypts `rel` under `root` in place with the real sops (what users keep in Git).
fn sops_encrypt(root: &Path, rel: &str) {
    let path = root.join(rel);
    let (dir, name) = (path.parent().unwrap(), path.file_name().unwrap());
    let recipients = format!("{R1},{R2}");
    let enc = sops_ok(
        dir,
        &["encrypt", "--age", &recipients, name.to_str().unwrap()],
    );
    std::fs::write(&path, enc).unwrap();
}

/// `sops-plugin ARGS` in the root as Argo CD's user with the sidecar's environment only;
/// `None` when this process may not chroot.
fn in_root(root: &Path, args: &[&str]) -> Option<Output> {
    // By full path: with PATH set for the child, Command looks the program up in that PATH.
    let chroot = on_path("chroot").expect("chroot (coreutils) is on PATH");
    let out = Command::new(chroot)
        .arg(format!("--userspec={ARGOCD}:{ARGOCD}"))
        .arg(root)
        .arg("sops-plugin")
        .args(args)
        .env_clear()
        .env("PATH", "/usr/local/bin")
        .env("HOME", HOME)
        .env("SOPS_AGE_KEY_FILE", KEY_FILE)
        .env("TMPDIR", "/tmp")
        .output()
        .ok()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("Operation not permitted") && stderr.contains("chroot") {
        return None;
    }
    canary::assert_absent("sops-plugin's stderr in the image root", &out.stderr);
    assert!(
        out.status.success(),
        "sops-plugin {args:?} in the image root failed: {stderr}"
    );
    Some(out)
}

/// Files under `dir` whose bytes contain the canary.
fn holding_canary(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_symlink() {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if canary::find(&std::fs::read(&path).unwrap()).is_some() {
                out.push(path);
            }
        }
    }
    out
}

#[test]
fn the_sidecar_root_renders_sops_files_and_kustomizations_as_argocd() {
    let (root, kustomize) = build_rootfs();
    let r = root.path();
    for program in ["sops-plugin", kustomize] {
        assert!(r.join("usr/local/bin").join(program).is_file(), "{program}");
    }
    let passwd = std::fs::read_to_string(r.join("etc/passwd")).unwrap();
    assert!(passwd.contains("argocd:x:999:999:"), "{passwd}");

    // The age identities, mounted from the Secret sops-age-key.
    let key = std::fs::read_to_string(fx("keys.txt")).unwrap();
    write(r, KEY_FILE.trim_start_matches('/'), &key);
    // A checkout: a plain app and a kustomize overlay, each with an encrypted Secret.
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n";
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n    name: db\ntype: Opaque\nstringData:\n    password: {CANARY}\n"
    );
    let repo = "home/argocd/repo";
    write(r, &format!("{repo}/plain/deploy.yaml"), deployment);
    write(r, &format!("{repo}/plain/db.enc.yaml"), &secret);
    sops_encrypt(r, &format!("{repo}/plain/db.enc.yaml"));
    write(r, &format!("{repo}/overlay/deploy.yaml"), deployment);
    write(r, &format!("{repo}/overlay/db.enc.yaml"), &secret);
    sops_encrypt(r, &format!("{repo}/overlay/db.enc.yaml"));
    write(
        r,
        &format!("{repo}/overlay/kustomization.yaml"),
        "resources: [deploy.yaml, db.enc.yaml]\nnamePrefix: prod-\n",
    );
    // Only these are writable by user 999 in the root.
    let writable = [r.join("tmp"), r.join("home")];
    let leftovers =
        || -> Vec<PathBuf> { writable.iter().flat_map(|d| holding_canary(d)).collect() };
    assert!(leftovers().is_empty(), "the checkout is encrypted");

    let Some(found) = in_root(r, &["discover", "/home/argocd/repo/plain"]) else {
        eprintln!("skipped: chroot needs root (CAP_SYS_CHROOT)");
        return;
    };
    assert_eq!(
        String::from_utf8_lossy(&found.stdout).trim(),
        "/home/argocd/repo/plain/db.enc.yaml"
    );

    // Plain SOPS file: decrypted, no sops metadata left. (Output never goes into a message: it
    // holds the plaintext.)
    let out = in_root(r, &["generate", "/home/argocd/repo/plain"]).unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(&format!("password: {CANARY}")));
    assert!(text.contains("kind: Deployment"));
    assert!(!text.contains("sops:") && !text.contains("ENC["));

    // Kustomization: decrypted, then rendered by the kustomize in the root.
    let out = in_root(r, &["generate", "/home/argocd/repo/overlay"]).unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(&format!("password: {CANARY}")));
    assert!(
        text.contains("name: prod-db") && text.contains("name: prod-web"),
        "kustomize's namePrefix applied"
    );
    assert!(!text.contains("sops:") && !text.contains("ENC["));

    // Nothing decrypted stays behind in the root (scratch copies lived under /tmp).
    let left = leftovers();
    assert!(
        left.is_empty(),
        "plaintext left in the image root: {left:?}"
    );
    assert_eq!(
        std::fs::read_dir(r.join("tmp")).unwrap().count(),
        0,
        "/tmp emptied"
    );
}
