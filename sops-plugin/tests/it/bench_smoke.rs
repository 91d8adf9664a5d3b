//! The benchmark binary runs end to end on a tiny application.

use std::process::Command;

#[test]
fn bench_runs_on_a_small_app() {
    let out = Command::new(env!("CARGO_BIN_EXE_sops-plugin-bench"))
        .args(["--files", "3", "--values", "2"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("sops-plugin generate:") && text.contains("per-value decrypt"),
        "{text}"
    );
}
