//! The binary accepts every argument list Bitnami's and ESO's charts render (recorded in
//! tests/fixtures/chart-args.yaml), applies what it implements, and names each flag it ignores
//! in a one-line warning. Runs the real binary with `--print-config` (resolve, print, exit).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

#[derive(serde::Deserialize)]
struct Case {
    name: String,
    #[serde(default)]
    program: Option<String>,
    args: Vec<String>,
    expect: BTreeMap<String, String>,
    #[serde(default)]
    ignored: Vec<String>,
}

#[derive(serde::Deserialize)]
struct Fixtures {
    bitnami: Vec<Case>,
    eso: Vec<Case>,
}

fn fixtures() -> Fixtures {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/chart-args.yaml");
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Runs the binary under `program` (a symlink, as the image provides `controller`).
fn print_config(program: Option<&str>, args: &[String]) -> (String, String) {
    let binary = Path::new(env!("CARGO_BIN_EXE_secrets-controller"));
    let dir = tempfile::tempdir().unwrap();
    let path = match program {
        Some(name) => {
            let link = dir.path().join(name);
            std::os::unix::fs::symlink(binary, &link).unwrap();
            link
        }
        None => binary.to_path_buf(),
    };
    let out = Command::new(&path)
        .args(args)
        .arg("--print-config")
        .env_clear()
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{} {args:?} failed:\n{stderr}",
        path.display()
    );
    (stdout, stderr)
}

fn check(chart: &str, case: &Case) {
    let (config, warnings) = print_config(case.program.as_deref(), &case.args);
    let settings: BTreeMap<&str, &str> =
        config.lines().filter_map(|l| l.split_once(": ")).collect();
    for (key, value) in &case.expect {
        assert_eq!(
            settings.get(key.as_str()).copied(),
            Some(value.as_str()),
            "{chart} / {}: {key}\n{config}",
            case.name
        );
    }
    for flag in &case.ignored {
        let named = warnings
            .lines()
            .filter(|l| l.starts_with(&format!("warning: --{flag}=")))
            .count();
        assert_eq!(
            named, 1,
            "{chart} / {}: one warning naming --{flag}\n{warnings}",
            case.name
        );
    }
    assert_eq!(
        warnings.lines().count(),
        case.ignored.len(),
        "{chart} / {}: a warning for each ignored flag and nothing else\n{warnings}",
        case.name
    );
}

#[test]
fn every_bitnami_chart_argument_list_is_accepted() {
    for case in &fixtures().bitnami {
        check("bitnami", case);
    }
}

#[test]
fn every_eso_chart_argument_list_is_accepted() {
    for case in &fixtures().eso {
        check("eso", case);
    }
}

#[test]
fn explicit_settings_win_over_a_chart_role() {
    // Bitnami's name with ExternalSecrets asked for explicitly.
    let (config, _) = print_config(
        Some("controller"),
        &["--enable-external-secrets=true".to_string()],
    );
    assert!(config.contains("external-secrets: true\n"), "{config}");
    // ESO's chart with SealedSecrets asked for explicitly keeps the API listener.
    let (config, _) = print_config(
        None,
        &[
            "--metrics-addr=:8080".to_string(),
            "--enable-sealed-secrets=true".to_string(),
            "--listen-addr=:9443".to_string(),
        ],
    );
    assert!(config.contains("sealed-secrets: true\n"), "{config}");
    assert!(config.contains("listen-addr: :9443\n"), "{config}");
}

#[test]
fn an_unknown_flag_is_still_an_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_secrets-controller"))
        .args(["--no-such-flag", "--print-config"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-such-flag"));
}

#[test]
fn eso_namespace_flag_leaves_the_pods_own_namespace_for_keys_and_lease() {
    let out = Command::new(env!("CARGO_BIN_EXE_secrets-controller"))
        .args(["--namespace=apps", "--metrics-addr=:8080", "--print-config"])
        .env_clear()
        .env("POD_NAMESPACE", "eso-system")
        .output()
        .unwrap();
    let config = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{config}");
    assert!(
        config.contains("external-secrets-namespace: apps\n"),
        "{config}"
    );
    assert!(config.contains("namespace: eso-system\n"), "{config}");
}
