//! age interop with the Go `age` CLI (Debian package `age`), SSH keys, identity discovery.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::*;
use sops_plugin::metadata::{AgeKey, KeyGroup, Metadata};
use sops_plugin::{Error, Keyring};

fn age_cli() -> &'static str {
    assert!(
        Command::new("age").arg("--version").output().is_ok(),
        "the Go age CLI is missing: run `bash scripts/install-peers.sh` (Debian package age)"
    );
    "age"
}

fn md_with(stanzas: Vec<(String, String)>) -> Metadata {
    Metadata {
        key_groups: vec![KeyGroup {
            age: stanzas
                .into_iter()
                .map(|(recipient, enc)| AgeKey { recipient, enc })
                .collect(),
            other: vec![],
        }],
        ..Default::default()
    }
}

#[test]
fn our_stanzas_open_with_go_age_and_theirs_with_ours() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key: Vec<u8> = (0u8..32)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect();
    // Ours -> Go age.
    let armored = sops_plugin::keys::wrap_for(R2, &key).unwrap();
    assert!(armored.starts_with("-----BEGIN AGE ENCRYPTED FILE-----\n"));
    assert!(armored.ends_with("-----END AGE ENCRYPTED FILE-----\n"));
    std::fs::write(d.join("k.age"), &armored).unwrap();
    let out = Command::new(age_cli())
        .args(["-d", "-i"])
        .arg(fx("identity2.txt"))
        .arg(d.join("k.age"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, key);
    // Go age -> ours.
    std::fs::write(d.join("k.bin"), &key).unwrap();
    let out = Command::new(age_cli())
        .args(["-a", "-r", R1])
        .arg(d.join("k.bin"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let enc = String::from_utf8(out.stdout).unwrap();
    let md = md_with(vec![(R1.to_string(), enc)]);
    let got = keyring("identity1.txt").data_key(&md).unwrap();
    assert_eq!(got.as_slice(), key.as_slice());
    let err = keyring("identity2.txt").data_key(&md).unwrap_err();
    assert!(matches!(err, Error::DataKey(_)));
}

#[test]
fn ssh_ed25519_and_rsa_keys_work_with_sops() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (t, bits) in [("ed25519", None), ("rsa", Some("2048"))] {
        let key = d.join(format!("id_{t}"));
        let mut c = Command::new("ssh-keygen");
        c.args(["-q", "-t", t, "-N", "", "-f"]).arg(&key);
        if let Some(b) = bits {
            c.args(["-b", b]);
        }
        assert!(
            c.status().unwrap().success(),
            "ssh-keygen must be installed (openssh-client)"
        );
        let pubkey = std::fs::read_to_string(key.with_extension("pub")).unwrap();
        let pubkey = pubkey
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        std::fs::write(d.join("s.yaml"), "a: secret\n").unwrap();
        let out = ours(d, &["encrypt", "--age", &pubkey, "s.yaml"], None);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(d.join(format!("s-{t}.yaml")), &out.stdout).unwrap();
        let name = format!("s-{t}.yaml");
        // The real sops opens it with the SSH key.
        let sops_out = Command::new(sops_bin())
            .args(["--disable-version-check", "decrypt", &name])
            .current_dir(d)
            .env_remove("SOPS_AGE_KEY_FILE")
            .env("HOME", d)
            .env("SOPS_AGE_SSH_PRIVATE_KEY_FILE", &key)
            .output()
            .unwrap();
        assert!(
            sops_out.status.success(),
            "{t}: {}",
            String::from_utf8_lossy(&sops_out.stderr)
        );
        assert_eq!(sops_out.stdout, b"a: secret\n");
        // And so do we.
        let ours_out = Command::new(env!("CARGO_BIN_EXE_sops-plugin"))
            .args(["decrypt", &name])
            .current_dir(d)
            .env_remove("SOPS_AGE_KEY_FILE")
            .env("HOME", d)
            .env("SOPS_AGE_SSH_PRIVATE_KEY_FILE", &key)
            .output()
            .unwrap();
        assert!(
            ours_out.status.success(),
            "{t}: {}",
            String::from_utf8_lossy(&ours_out.stderr)
        );
        assert_eq!(ours_out.stdout, b"a: secret\n");
    }
}

fn env_of<'a>(pairs: &'a [(&'a str, String)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
}

#[test]
fn identity_sources_are_combined() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let id1 = std::fs::read_to_string(fx("identity1.txt")).unwrap();
    let id2 = std::fs::read_to_string(fx("identity2.txt")).unwrap();
    let key_line = |t: &str| {
        t.lines()
            .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
            .unwrap()
            .to_string()
    };
    // Inline SOPS_AGE_KEY, several keys on one line.
    let pairs = [
        ("HOME", d.display().to_string()),
        (
            "SOPS_AGE_KEY",
            format!("{} {}", key_line(&id1), key_line(&id2)),
        ),
    ];
    assert_eq!(Keyring::discover(&env_of(&pairs)).unwrap().len(), 2);
    // SOPS_AGE_KEY_CMD runs when a stanza needs it, told the recipient in SOPS_AGE_RECIPIENT
    // (this one only answers for the second recipient).
    let pairs = [
        ("HOME", d.display().to_string()),
        (
            "SOPS_AGE_KEY_CMD",
            format!(
                "sh -c 'test \"$SOPS_AGE_RECIPIENT\" = {R2} && cat {}'",
                fx("identity2.txt").display()
            ),
        ),
    ];
    let k = Keyring::discover(&env_of(&pairs)).unwrap();
    let src = std::fs::read(fx("native/types.enc.yaml")).unwrap();
    let out = sops_plugin::decrypt(
        sops_plugin::Format::Yaml,
        sops_plugin::Format::Yaml,
        &src,
        &k,
        false,
    )
    .unwrap();
    assert_eq!(
        out.as_slice(),
        std::fs::read(fx("expected/native-types.yaml"))
            .unwrap()
            .as_slice()
    );
    // Default location under XDG_CONFIG_HOME, plus SOPS_AGE_KEY_FILE.
    let cfg = d.join("cfg");
    std::fs::create_dir_all(cfg.join("sops/age")).unwrap();
    std::fs::copy(fx("identity2.txt"), cfg.join("sops/age/keys.txt")).unwrap();
    let pairs = [
        ("HOME", d.display().to_string()),
        ("XDG_CONFIG_HOME", cfg.display().to_string()),
        (
            "SOPS_AGE_KEY_FILE",
            fx("identity1.txt").display().to_string(),
        ),
    ];
    let k = Keyring::discover(&env_of(&pairs)).unwrap();
    assert_eq!(k.len(), 2);
    // ~/.config fallback.
    std::fs::create_dir_all(d.join(".config/sops/age")).unwrap();
    std::fs::copy(fx("keys.txt"), d.join(".config/sops/age/keys.txt")).unwrap();
    let pairs = [("HOME", d.display().to_string())];
    let k = Keyring::discover(&env_of(&pairs)).unwrap();
    assert_eq!(k.len(), 2);
    // A missing key: the error lists recipients and every place searched.
    let pairs = [("HOME", Path::new("/nonexistent").display().to_string())];
    let k = Keyring::discover(&env_of(&pairs)).unwrap();
    let src = std::fs::read(fx("native/types.enc.yaml")).unwrap();
    let err = sops_plugin::decrypt(
        sops_plugin::Format::Yaml,
        sops_plugin::Format::Yaml,
        &src,
        &k,
        false,
    )
    .unwrap_err()
    .to_string();
    for needle in [
        R1,
        R2,
        "SOPS_AGE_KEY_FILE",
        "SOPS_AGE_KEY_CMD",
        "/nonexistent/.config/sops/age/keys.txt",
    ] {
        assert!(err.contains(needle), "missing {needle} in: {err}");
    }
}
