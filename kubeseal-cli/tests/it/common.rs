//! Helpers shared by the CLI tests: running the binary, and the test kit's Sealed Secrets fixtures
//! under the names these tests use.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

pub use test_kit::sealed_secrets::{path as fixture, private_keys as keys, read as read_fixture};

/// A `kubeseal` command isolated from the user's kubeconfig and SEALED_SECRETS_* variables.
pub fn kubeseal(home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kubeseal"));
    for (key, _) in std::env::vars() {
        if key.starts_with("SEALED_SECRETS_") || key == "KUBECONFIG" || key == "XDG_CACHE_HOME" {
            cmd.env_remove(key);
        }
    }
    cmd.env("HOME", home)
        .env("KUBECONFIG", home.join("no-kubeconfig"));
    cmd
}

pub fn run(mut cmd: Command, stdin: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let written = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    // kubeseal may fail (e.g. on a missing certificate) before it reads its input.
    if let Err(e) = written {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    let output = child.wait_with_output().unwrap();
    canary::assert_absent("kubeseal's stderr", &output.stderr);
    output
}

pub fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "kubeseal failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

pub fn stderr(output: &Output) -> String {
    assert!(!output.status.success(), "kubeseal should have failed");
    String::from_utf8(output.stderr.clone()).unwrap()
}

pub fn unseal_text(sealed_text: &str) -> sealing::UnsealedSecret {
    let sealed: crds::SealedSecret = serde_yaml::from_str(sealed_text).unwrap();
    let keys = keys();
    sealing::unseal(&sealed, &keys.iter().collect::<Vec<_>>()).unwrap()
}
