//! The controller image works without a base image: deploy/images/build-rootfs.sh assembles the
//! root the Dockerfile copies into `FROM scratch`, and the binary runs in it under chroot as the
//! non-root user 65532, also under Bitnami's command name `controller`.
//! Needs root for chroot (as CI and containers have); prints a clear skip otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;

fn build_rootfs() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/images/build-rootfs.sh");
    let status = Command::new(script)
        .args(["--binary", env!("CARGO_BIN_EXE_secrets-controller")])
        .args([
            "--name",
            "secrets-controller",
            "--alias",
            "controller",
            "--out",
        ])
        .arg(root.path())
        .status()
        .unwrap();
    assert!(status.success());
    root
}

fn files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() && !path.is_symlink() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    out
}

/// chroot as uid/gid 65532; `None` when this process may not chroot.
fn chroot(root: &Path, args: &[&str]) -> Option<std::process::Output> {
    // By full path: with PATH set for the child, Command looks the program up in that PATH.
    let chroot = std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join("chroot"))
                .find(|p| p.is_file())
        })
        .expect("chroot (coreutils) is on PATH");
    let out = Command::new(chroot)
        .arg("--userspec=65532:65532")
        .arg(root)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/local/bin")
        .output()
        .ok()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("Operation not permitted") && stderr.contains("chroot") {
        return None;
    }
    Some(out)
}

#[test]
fn the_root_holds_only_the_binary_its_libraries_and_identity_files() {
    let root = build_rootfs();
    for path in files(root.path()) {
        let text = path.display().to_string();
        let expected = text.starts_with("usr/local/bin/")
            || text.starts_with("lib")
            || text.starts_with("usr/lib")
            || matches!(
                text.as_str(),
                "etc/ssl/certs/ca-certificates.crt"
                    | "etc/passwd"
                    | "etc/group"
                    | "etc/nsswitch.conf"
                    | "etc/hosts"
            );
        assert!(expected, "unexpected file in the image root: {text}");
    }
    let passwd = std::fs::read_to_string(root.path().join("etc/passwd")).unwrap();
    assert!(passwd.contains("nonroot:x:65532:65532:"), "{passwd}");
    let ca =
        std::fs::read_to_string(root.path().join("etc/ssl/certs/ca-certificates.crt")).unwrap();
    assert!(ca.contains("BEGIN CERTIFICATE"));
    let alias = std::fs::read_link(root.path().join("usr/local/bin/controller")).unwrap();
    assert_eq!(alias, Path::new("secrets-controller"));
}

#[test]
fn it_runs_in_the_empty_root_as_non_root_and_as_controller() {
    let root = build_rootfs();
    let Some(out) = chroot(root.path(), &["controller", "--print-config"]) else {
        eprintln!("skipped: chroot needs root (CAP_SYS_CHROOT)");
        return;
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Invoked as `controller` (Bitnami's chart command): the SealedSecrets role.
    assert!(stdout.contains("sealed-secrets: true\n"), "{stdout}");
    assert!(stdout.contains("external-secrets: false\n"), "{stdout}");

    // Real work in the root as uid 65532: a 2048-bit key pair written under /tmp.
    let out = chroot(
        root.path(),
        &[
            "secrets-controller",
            "keygen",
            "--out-dir",
            "/tmp/keys",
            "--key-size",
            "2048",
        ],
    )
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = root.path().join("tmp/keys/tls.key");
    use std::os::unix::fs::MetadataExt as _;
    assert_eq!(
        std::fs::metadata(&key).unwrap().uid(),
        65532,
        "written as the non-root user"
    );
}
