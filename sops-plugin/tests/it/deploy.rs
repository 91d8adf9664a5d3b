//! The Argo CD manifests in deploy/argocd parse and point at commands this binary has.

use std::path::Path;
use std::process::Command;

use sops_plugin::stores::yaml;
use sops_plugin::value::Value;

fn deploy(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/argocd")
        .join(name);
    std::fs::read_to_string(p).unwrap()
}

fn root(text: &str) -> Value {
    Value::Map(yaml::parse(text).unwrap().into_iter().next().unwrap())
}

fn strs(v: &Value) -> Vec<String> {
    match v {
        Value::Seq(s) => s.iter().filter_map(|x| x.scalar_text()).collect(),
        _ => vec![],
    }
}

#[test]
fn plugin_config_uses_real_subcommands() {
    let cm = root(&deploy("plugin.yaml"));
    let inner = cm
        .get("data")
        .unwrap()
        .get("plugin.yaml")
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    let plugin = root(&inner);
    assert_eq!(
        plugin.get("kind").unwrap().as_str(),
        Some("ConfigManagementPlugin")
    );
    let spec = plugin.get("spec").unwrap();
    let generate = strs(spec.get("generate").unwrap().get("command").unwrap());
    let discover = strs(
        spec.get("discover")
            .unwrap()
            .get("find")
            .unwrap()
            .get("command")
            .unwrap(),
    );
    for cmd in [generate, discover] {
        assert_eq!(cmd[0], "sops-plugin");
        let out = Command::new(env!("CARGO_BIN_EXE_sops-plugin"))
            .args([&cmd[1], "--help"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{cmd:?}");
    }
}

#[test]
fn sidecar_patch_mounts_key_and_sets_key_file() {
    let patch = root(&deploy("repo-server-patch.yaml"));
    let spec = patch
        .get("spec")
        .unwrap()
        .get("template")
        .unwrap()
        .get("spec")
        .unwrap();
    let Value::Seq(containers) = spec.get("containers").unwrap() else {
        panic!()
    };
    let c = &containers[0];
    assert_eq!(
        strs(c.get("command").unwrap()),
        vec!["/var/run/argocd/argocd-cmp-server"]
    );
    let sc = c.get("securityContext").unwrap();
    assert_eq!(sc.get("runAsUser"), Some(&Value::Int(999)));
    let Value::Seq(env) = c.get("env").unwrap() else {
        panic!()
    };
    let key_file = env
        .iter()
        .find(|e| e.get("name").and_then(Value::as_str) == Some("SOPS_AGE_KEY_FILE"))
        .and_then(|e| e.get("value"))
        .and_then(Value::as_str)
        .unwrap()
        .to_string();
    let Value::Seq(mounts) = c.get("volumeMounts").unwrap() else {
        panic!()
    };
    let key_mount = mounts
        .iter()
        .find(|m| m.get("name").and_then(Value::as_str) == Some("sops-age-key"))
        .unwrap();
    let dir = key_mount.get("mountPath").unwrap().as_str().unwrap();
    assert_eq!(key_file, format!("{dir}/keys.txt"));
    let text = deploy("repo-server-patch.yaml");
    assert!(text.contains("secretName: sops-age-key"));
}

#[test]
fn example_application_renders_with_the_test_keys() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/argocd/example");
    let keys = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sops-age/keys.txt");
    let run = |seal: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sops-plugin"));
        c.arg("generate");
        if seal {
            let key = sealing::PrivateKey::generate(2048).unwrap();
            let cert =
                sealing::Certificate::self_signed(&key, "t", std::time::Duration::from_secs(600))
                    .unwrap();
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("cert.pem");
            std::fs::write(&p, cert.to_pem()).unwrap();
            c.arg("--seal").arg("--cert").arg(&p);
            std::mem::forget(dir);
        }
        // As Argo CD runs it: in the app directory, with the path relative to the checkout.
        let out = c
            .current_dir(example.join("overlay"))
            .env("ARGOCD_APP_SOURCE_PATH", "overlay")
            .env("ARGOCD_APP_NAMESPACE", "web")
            .env("SOPS_AGE_KEY_FILE", &keys)
            .env("HOME", &example)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let text = run(false);
    assert!(
        text.contains("password: example-password-not-secret"),
        "{text}"
    );
    assert!(
        text.contains("API_TOKEN: ZXhhbXBsZS10b2tlbi1ub3Qtc2VjcmV0"),
        "{text}"
    );
    assert!(text.contains("kind: Deployment") && text.contains("namespace: web"));
    let sealed = run(true);
    assert!(
        !sealed.contains("example-password-not-secret")
            && !sealed.contains("ZXhhbXBsZS10b2tlbi1ub3Qtc2VjcmV0")
    );
    assert_eq!(sealed.matches("kind: SealedSecret").count(), 2);
    // The example really is encrypted in Git.
    let enc = std::fs::read_to_string(example.join("overlay/db-secret.enc.yaml")).unwrap();
    assert!(!enc.contains("example-password-not-secret") && enc.contains("password: ENC["));
}
