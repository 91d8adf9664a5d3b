//! Encrypted key backups (`--backup-keys`) against the Go `age` CLI: what we write, `age -d`
//! opens; what `age` encrypts, our recovery path opens; a wrong identity is a clear error.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// The Go `age` and `age-keygen` binaries (Debian's `age`, installed by scripts/install-peers.sh).
fn go_age() -> Option<(PathBuf, PathBuf)> {
    let find = |name: &str| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|candidate| candidate.is_file())
        })
    };
    match (find("age"), find("age-keygen")) {
        (Some(age), Some(keygen)) => Some((age, keygen)),
        _ => {
            eprintln!(
                "SKIPPED: the Go `age` CLI is not on PATH (scripts/install-peers.sh installs Debian's age)"
            );
            None
        }
    }
}

/// A new age identity file made by `age-keygen`, and its recipient.
fn age_identity(keygen: &Path, dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let made = Command::new(keygen).arg("-o").arg(&path).output().unwrap();
    assert!(made.status.success(), "{made:?}");
    let public = Command::new(keygen).arg("-y").arg(&path).output().unwrap();
    assert!(public.status.success(), "{public:?}");
    (
        path,
        String::from_utf8(public.stdout).unwrap().trim().to_string(),
    )
}

fn public_keys(text: &str) -> Vec<String> {
    sealing::load_private_keys(text)
        .unwrap()
        .iter()
        .map(|pair| pair.private.public_key().fingerprint())
        .collect()
}

fn fixture_keys() -> Vec<String> {
    keys()
        .iter()
        .map(|k| k.public_key().fingerprint())
        .collect()
}

/// key1 as a key Secret, key2 as a keygen-style directory (tls.key and tls.crt).
fn key_sources(dir: &Path) -> (PathBuf, PathBuf) {
    let key2_dir = dir.join("keygen-out");
    std::fs::create_dir(&key2_dir).unwrap();
    std::fs::copy(fixture("keys/key2.pem"), key2_dir.join("tls.key")).unwrap();
    std::fs::copy(fixture("keys/key2.crt"), key2_dir.join("tls.crt")).unwrap();
    (fixture("keys/key1-secret.yaml"), key2_dir)
}

fn backup(home: &Path, out: &Path, recipient: &str) {
    let (key1, key2_dir) = key_sources(home);
    let mut cmd = kubeseal(home);
    cmd.arg("--backup-keys")
        .arg(out)
        .args(["-r", recipient, "--backup-keys-from"])
        .arg(&key1)
        .arg("--backup-keys-from")
        .arg(&key2_dir);
    let output = run(cmd, "");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("wrote 2 sealing key(s)"), "{said}");
}

#[test]
fn go_age_opens_our_backup_and_we_open_it_to_unseal() {
    let Some((age, keygen)) = go_age() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let (identity, recipient) = age_identity(&keygen, home.path(), "key.txt");
    let out = home.path().join("sealing-keys.age");
    backup(home.path(), &out, &recipient);

    let written = std::fs::read_to_string(&out).unwrap();
    assert!(written.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
    assert!(!written.contains("PRIVATE KEY"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "a new backup is readable by its owner only"
        );
    }

    // The Go CLI decrypts it to a List of key Secrets, ready for `kubectl apply -f -`.
    let opened = Command::new(&age)
        .arg("-d")
        .arg("-i")
        .arg(&identity)
        .arg(&out)
        .output()
        .unwrap();
    assert!(opened.status.success(), "{opened:?}");
    let plain = String::from_utf8(opened.stdout).unwrap();
    let list: serde_yaml::Value = serde_yaml::from_str(&plain).unwrap();
    assert_eq!(list["kind"].as_str(), Some("List"));
    let items = list["items"].as_sequence().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(
        items[0]["metadata"]["name"].as_str(),
        Some("sealed-secrets-keyabcde")
    );
    assert_eq!(
        items[1]["metadata"]["labels"]["sealedsecrets.bitnami.com/sealed-secrets-key"].as_str(),
        Some("active")
    );
    assert_eq!(public_keys(&plain), fixture_keys());

    // Our recovery path opens the same file and unseals with it (every fixture object).
    for (name, env) in [("flag", false), ("SOPS_AGE_KEY_FILE", true)] {
        for sealed in ["basic.yaml", "namespace-wide.yaml"] {
            let mut cmd = kubeseal(home.path());
            cmd.args(["--recovery-unseal", "-o", "yaml", "--recovery-private-key"])
                .arg(&out);
            if env {
                cmd.env("SOPS_AGE_KEY_FILE", &identity);
            } else {
                cmd.arg("--recovery-identity").arg(&identity);
            }
            let secret = stdout(&run(cmd, &read_fixture(&format!("sealedsecrets/{sealed}"))));
            let got: serde_yaml::Value = serde_yaml::from_str(&secret).unwrap();
            let want: serde_yaml::Value =
                serde_yaml::from_str(&read_fixture(&format!("expected-secrets/{sealed}"))).unwrap();
            assert_eq!(got["data"], want["data"], "{name}: {sealed}");
        }
    }
}

#[test]
fn we_open_what_go_age_encrypts_and_refuse_the_wrong_identity_clearly() {
    let Some((age, keygen)) = go_age() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let (identity, recipient) = age_identity(&keygen, home.path(), "key.txt");
    let (stranger, _) = age_identity(&keygen, home.path(), "stranger.txt");
    // `kubectl get secret -l ... -o json | age -r ... > keys.age`, the backup a user may already have.
    let out = home.path().join("keys.age");
    let made = Command::new(&age)
        .args(["-r", &recipient, "-o"])
        .arg(&out)
        .arg(fixture("keys/all-keys-list.json"))
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");

    let unseal = |identity: Option<&Path>| {
        let mut cmd = kubeseal(home.path());
        cmd.args(["--recovery-unseal", "-o", "yaml", "--recovery-private-key"])
            .arg(&out)
            .env_remove("SOPS_AGE_KEY_FILE")
            .env_remove("SOPS_AGE_KEY");
        if let Some(identity) = identity {
            cmd.arg("--recovery-identity").arg(identity);
        }
        run(cmd, &read_fixture("sealedsecrets/basic.yaml"))
    };
    let secret = stdout(&unseal(Some(&identity)));
    assert!(secret.contains("kind: Secret"), "{secret}");

    let wrong = stderr(&unseal(Some(&stranger)));
    assert!(wrong.contains(&out.display().to_string()), "{wrong}");
    assert!(
        wrong.contains("none of the age identities from") && wrong.contains("stranger.txt"),
        "{wrong}"
    );
    let none = stderr(&unseal(None));
    assert!(none.contains(&out.display().to_string()), "{none}");
    assert!(none.contains("--recovery-identity"), "{none}");

    // A bad recipient is refused before any key is read.
    let mut cmd = kubeseal(home.path());
    cmd.arg("--backup-keys")
        .arg(home.path().join("never.age"))
        .args(["-r", "age1notakey", "--backup-keys-from"])
        .arg(fixture("keys/key1-secret.yaml"));
    let bad = stderr(&run(cmd, ""));
    assert!(
        bad.contains("--recipient #1: not an age recipient"),
        "{bad}"
    );
    assert!(!home.path().join("never.age").exists());
}

#[test]
fn a_key_without_its_certificate_is_not_backed_up_silently() {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = kubeseal(home.path());
    cmd.arg("--backup-keys")
        .arg(home.path().join("k.age"))
        .args([
            "-r",
            "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p",
            "--backup-keys-from",
        ])
        .arg(fixture("keys/key1.pem"));
    let error = stderr(&run(cmd, ""));
    assert!(error.contains("no certificate next to it"), "{error}");
    assert!(!home.path().join("k.age").exists());
}
