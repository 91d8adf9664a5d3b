//! Hostile repositories and Application settings (issue 8): `generate` never prints the
//! plugin's keys, never reads outside the checkout, leaves no plaintext behind when stopped,
//! keeps `--seal`'s promise on its output, and bounds what file text can make it do.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use base64::Engine as _;
use common::*;

const CANARY: &str = "CANARY-8d1f0a-do-not-print";

fn write(d: &Path, name: &str, content: &str) {
    let p = d.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

fn b64(s: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn ours_in(d: &Path, args: &[&str]) {
    let out = ours(d, args, Some("keys.txt"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sops_encrypt(d: &Path, name: &str, extra: &[&str]) {
    let recips = format!("{R1},{R2}");
    let mut args = vec!["encrypt", "--age", recips.as_str()];
    args.extend_from_slice(extra);
    args.push(name);
    let enc = sops_ok(d, &args);
    std::fs::write(d.join(name), enc).unwrap();
}

/// The sidecar: its key file lives outside the repository, as in the Deployment.
struct Sidecar {
    _dir: tempfile::TempDir,
    root: PathBuf,
    key_file: PathBuf,
    key_text: String,
}

fn sidecar() -> Sidecar {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let key_file = root.join("sidecar/keys.txt");
    std::fs::create_dir_all(key_file.parent().unwrap()).unwrap();
    std::fs::copy(fx("keys.txt"), &key_file).unwrap();
    let key_text = std::fs::read_to_string(&key_file).unwrap();
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    Sidecar {
        _dir: dir,
        root,
        key_file,
        key_text,
    }
}

impl Sidecar {
    fn repo(&self) -> PathBuf {
        let r = self.root.join("repo");
        std::fs::create_dir_all(r.join(".git")).unwrap();
        r
    }

    fn generate(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sops-plugin"));
        c.arg("generate")
            .args(args)
            .current_dir(self.repo())
            .env_remove("SOPS_AGE_KEY")
            .env_remove("SOPS_AGE_KEY_CMD")
            .env_remove("SOPS_AGE_SSH_PRIVATE_KEY_FILE")
            .env_remove("ARGOCD_ENV_KUSTOMIZE_BUILD_OPTIONS")
            .env_remove("SOPS_PLUGIN_KUSTOMIZE_BUILD_OPTIONS")
            .env_remove("PWD")
            .env("HOME", &self.root)
            .env("TMPDIR", self.root.join("tmp"))
            .env("ARGOCD_APP_NAMESPACE", "prod")
            .env("SOPS_AGE_KEY_FILE", &self.key_file);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    /// Every form of the sidecar's private keys an output could carry.
    fn assert_no_key(&self, out: &Output) {
        let text = String::from_utf8_lossy(&out.stdout);
        let err = String::from_utf8_lossy(&out.stderr);
        for line in self
            .key_text
            .lines()
            .filter(|l| l.starts_with("AGE-SECRET-KEY-"))
        {
            assert!(
                !text.contains(line) && !err.contains(line),
                "raw key in output"
            );
        }
        assert!(
            !text.contains(&b64(self.key_text.as_bytes())),
            "base64 key in output"
        );
    }
}

fn kustomize_available() -> bool {
    ["kustomize", "kubectl"].iter().any(|p| {
        std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).any(|d| d.join(p).is_file()))
            .unwrap_or(false)
    })
}

#[test]
fn application_settings_cannot_make_kustomize_read_the_sidecar_key() {
    assert!(kustomize_available(), "kustomize (or kubectl) is needed");
    let s = sidecar();
    let repo = s.repo();
    let key = s.key_file.display().to_string();
    write(
        &repo,
        "app/secret.enc.yaml",
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n    name: db\nstringData:\n    password: {CANARY}\n"
        ),
    );
    sops_encrypt(&repo.join("app"), "secret.enc.yaml", &[]);
    for generator in ["configMapGenerator", "secretGenerator"] {
        write(
            &repo,
            "app/kustomization.yaml",
            &format!(
                "resources: [secret.enc.yaml]\n{generator}:\n  - name: loot\n    files: [key={key}]\n"
            ),
        );
        let out = s.generate(
            &["app"],
            &[(
                "ARGOCD_ENV_KUSTOMIZE_BUILD_OPTIONS",
                "--enable-helm --load-restrictor=LoadRestrictionsNone",
            )],
        );
        assert!(!out.status.success(), "{generator}: the render must fail");
        s.assert_no_key(&out);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("points outside the repository"), "{err}");
    }
    // Even the operator's own flag does not open paths outside the checkout.
    let out = s.generate(
        &["app"],
        &[(
            "SOPS_PLUGIN_KUSTOMIZE_BUILD_OPTIONS",
            "--load-restrictor=LoadRestrictionsNone",
        )],
    );
    assert!(!out.status.success());
    s.assert_no_key(&out);
}

#[test]
fn kustomization_paths_may_not_leave_the_checkout() {
    assert!(kustomize_available(), "kustomize (or kubectl) is needed");
    let s = sidecar();
    let repo = s.repo();
    // Another render's plaintext copy, or any kustomization elsewhere on the sidecar.
    let outside = s.root.join("tmp/other-render");
    write(&outside, "kustomization.yaml", "resources: [cm.yaml]\n");
    write(
        &outside,
        "cm.yaml",
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\ndata:\n  k: {CANARY}\n"
        ),
    );
    write(&repo, "base/kustomization.yaml", "resources: [cm.yaml]\n");
    write(
        &repo,
        "base/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: base\n",
    );
    let abs = outside.display().to_string();
    // The copy sits at $TMPDIR/sops-plugin-*/src/: four levels up from app/ is $TMPDIR.
    for bad in [
        format!("resources: [{abs}]\n"),
        "resources: [../../../other-render]\n".to_string(),
        format!("configMapGenerator:\n  - name: x\n    envs: [{abs}/cm.yaml]\n"),
        "configMapGenerator:\n  - name: x\n    files: [k=../../../other-render/cm.yaml]\n"
            .to_string(),
        format!("resources: [file://{abs}]\n"),
        format!("components: [{abs}]\n"),
    ] {
        write(&repo, "app/kustomization.yaml", &bad);
        let out = s.generate(&["app"], &[]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{bad}: {text}");
        assert!(!text.contains(CANARY), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("points outside the repository"),
            "{bad}: {err}"
        );
    }
    // A base inside the checkout stays fine.
    write(&repo, "app/kustomization.yaml", "resources: [../base]\n");
    let out = s.generate(&["app"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("name: base"));
}

#[test]
fn a_symlinked_application_directory_is_not_followed() {
    let s = sidecar();
    let repo = s.repo();
    let elsewhere = s.root.join("elsewhere");
    write(
        &elsewhere,
        "secret.yaml",
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\nstringData:\n  k: {CANARY}\n"
        ),
    );
    std::os::unix::fs::symlink(&elsewhere, repo.join("app")).unwrap();
    std::fs::create_dir_all(repo.join("real")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, repo.join("real/below")).unwrap();
    for app in ["app", "real/below"] {
        let out = s.generate(&[app], &[]);
        assert!(!out.status.success(), "{app}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains(CANARY));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("symlink"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Argo CD runs `generate .` inside the directory: PWD still shows the link.
    let out = Command::new(env!("CARGO_BIN_EXE_sops-plugin"))
        .args(["generate", "."])
        .current_dir(repo.join("app"))
        .env("PWD", repo.join("app"))
        .env("ARGOCD_APP_SOURCE_PATH", "app")
        .env("HOME", &s.root)
        .env("SOPS_AGE_KEY_FILE", &s.key_file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains(CANARY));
}

#[test]
fn output_holding_a_loaded_identity_fails_the_render() {
    let s = sidecar();
    let repo = s.repo();
    let age_line = s
        .key_text
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap()
        .to_string();
    // Raw in a manifest, and the whole key file base64-encoded in a Secret's data.
    let cases = [
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: {age_line}\n"),
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: b\ndata:\n  keys.txt: {}\n",
            b64(s.key_text.as_bytes())
        ),
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: c\ndata:\n  k: {}\n",
            b64(format!("x{age_line}").as_bytes())
        ),
    ];
    for case in cases {
        write(&repo, "app/leak.yaml", &case);
        let out = s.generate(&["app"], &[]);
        assert!(!out.status.success(), "{case}");
        assert!(out.stdout.is_empty());
        s.assert_no_key(&out);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("private key material"), "{err}");
    }
}

/// A stand-in for kustomize that records what the scratch directory looks like, says it is
/// running, then waits to be stopped.
fn slow_kustomize(d: &Path) -> String {
    let script = d.join("slow-kustomize.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nfind \"$TMPDIR\" -mindepth 1 -exec stat -c '%a %F' {} + > \"$TMPDIR/../modes\"\ntouch \"$TMPDIR/../running\"\nexec sleep 30\n",
    )
    .unwrap();
    format!("sh {}", script.display())
}

#[test]
fn plaintext_on_disk_is_private_and_removed_when_stopped() {
    for (signal, code) in [("TERM", 143), ("INT", 130), ("HUP", 129)] {
        let s = sidecar();
        let repo = s.repo();
        write(
            &repo,
            "app/secret.enc.yaml",
            &format!(
                "apiVersion: v1\nkind: Secret\nmetadata:\n    name: db\nstringData:\n    password: {CANARY}\n"
            ),
        );
        sops_encrypt(&repo.join("app"), "secret.enc.yaml", &[]);
        write(
            &repo,
            "app/kustomization.yaml",
            "resources: [secret.enc.yaml]\n",
        );
        // A render killed earlier (SIGKILL) left a directory behind: the next render sweeps it.
        let stale = s.root.join("tmp/sops-plugin-999999999-dead");
        write(&stale, "src/secret.yaml", CANARY);
        let child = Command::new(env!("CARGO_BIN_EXE_sops-plugin"))
            .args(["generate", "app"])
            .current_dir(&repo)
            .env("HOME", &s.root)
            .env("TMPDIR", s.root.join("tmp"))
            .env("SOPS_AGE_KEY_FILE", &s.key_file)
            .env("SOPS_PLUGIN_KUSTOMIZE", slow_kustomize(&s.root))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let running = s.root.join("running");
        let start = std::time::Instant::now();
        while !running.exists() {
            assert!(start.elapsed().as_secs() < 60, "kustomize never started");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let modes = std::fs::read_to_string(s.root.join("modes")).unwrap();
        assert!(modes.contains("600 regular file"), "{modes}");
        for line in modes.lines() {
            assert!(
                line == "700 directory" || line == "600 regular file",
                "{signal}: not private: {line}"
            );
        }
        assert!(!stale.exists(), "a dead render's directory was not swept");
        let killed = Command::new("kill")
            .args([format!("-{signal}"), child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(code), "{signal}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains(CANARY));
        let left: Vec<_> = std::fs::read_dir(s.root.join("tmp"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "{signal}: left behind: {left:?}");
    }
}

fn sealing_cert(d: &Path) -> (sealing::PrivateKey, PathBuf) {
    let key = sealing::PrivateKey::generate(2048).unwrap();
    let cert =
        sealing::Certificate::self_signed(&key, "t", std::time::Duration::from_secs(600)).unwrap();
    let p = d.join("cert.pem");
    std::fs::write(&p, cert.to_pem()).unwrap();
    (key, p)
}

fn assert_seal_refuses(s: &Sidecar, cert: &Path, what: &str) {
    let cert = cert.display().to_string();
    let out = s.generate(&["--seal", "--cert", &cert, "app"], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{what}: rendered: {text}");
    assert!(
        !text.contains(CANARY) && !text.contains(&b64(CANARY.as_bytes())),
        "{what}"
    );
    assert!(!err.contains(CANARY), "{what}: {err}");
    assert!(err.contains("outside a SealedSecret"), "{what}: {err}");
}

#[test]
fn seal_lets_no_decrypted_value_out_through_kustomize() {
    assert!(kustomize_available(), "kustomize (or kubectl) is needed");
    let s = sidecar();
    let repo = s.repo();
    let (_key, cert) = sealing_cert(&s.root);
    // configMapGenerator envs from a SOPS dotenv file.
    write(&repo, "app/app.enc.env", &format!("API_KEY={CANARY}\n"));
    sops_encrypt(&repo.join("app"), "app.enc.env", &[]);
    write(
        &repo,
        "app/kustomization.yaml",
        "configMapGenerator:\n  - name: cfg\n    envs: [app.enc.env]\n",
    );
    assert_seal_refuses(&s, &cert, "configMapGenerator envs");
    // replacements copying a Secret value into a ConfigMap.
    write(
        &repo,
        "app/secret.enc.yaml",
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n    name: db\nstringData:\n    password: {CANARY}\n"
        ),
    );
    sops_encrypt(&repo.join("app"), "secret.enc.yaml", &[]);
    write(
        &repo,
        "app/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: copy\ndata:\n  v: placeholder\n",
    );
    write(
        &repo,
        "app/kustomization.yaml",
        "resources: [secret.enc.yaml, cm.yaml]\nreplacements:\n  - source: {kind: Secret, name: db, fieldPath: stringData.password}\n    targets:\n      - select: {kind: ConfigMap, name: copy}\n        fieldPaths: [data.v]\n",
    );
    assert_seal_refuses(&s, &cert, "replacements");
    // Without the copy the same kustomization seals fine.
    write(
        &repo,
        "app/kustomization.yaml",
        "resources: [secret.enc.yaml, cm.yaml]\n",
    );
    let out = s.generate(
        &["--seal", "--cert", &cert.display().to_string(), "app"],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains(CANARY));
}

#[test]
fn seal_lets_no_decrypted_value_out_of_plain_directories() {
    let s = sidecar();
    let repo = s.repo();
    let (key, cert) = sealing_cert(&s.root);
    // A mac_only_encrypted Secret whose (clear) kind was edited after encryption.
    write(
        &repo,
        "app/secret.yaml",
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n    name: db\nstringData:\n    password: {CANARY}\n"
        ),
    );
    // (sops 3.11 has no flag for it; ours writes the same format.)
    ours_in(
        &repo.join("app"),
        &[
            "encrypt",
            "-i",
            "--age",
            R1,
            "--mac-only-encrypted",
            "--encrypted-regex",
            "^(data|stringData)$",
            "secret.yaml",
        ],
    );
    let enc = std::fs::read_to_string(repo.join("app/secret.yaml")).unwrap();
    std::fs::write(
        repo.join("app/secret.yaml"),
        enc.replace("kind: Secret", "kind: ConfigMap"),
    )
    .unwrap();
    assert_seal_refuses(&s, &cert, "edited kind");
    // A SOPS file holding a List of Secrets: each item leaves sealed.
    write(
        &repo,
        "app/secret.yaml",
        &format!(
            "apiVersion: v1\nkind: List\nitems:\n    - apiVersion: v1\n      kind: Secret\n      metadata:\n        name: one\n      stringData:\n        password: {CANARY}\n"
        ),
    );
    sops_encrypt(&repo.join("app"), "secret.yaml", &[]);
    let out = s.generate(
        &["--seal", "--cert", &cert.display().to_string(), "app"],
        &[],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains(CANARY), "{text}");
    let docs = sops_plugin::stores::yaml::parse(&text).unwrap();
    assert_eq!(docs.len(), 1);
    let json = sops_plugin::stores::json::emit(&docs[0]);
    let sealed = serde_json::from_str(&json).unwrap();
    let opened = sealing::unseal(&sealed, &[&key]).unwrap();
    assert_eq!(opened.data["password"].as_slice(), CANARY.as_bytes());
}

#[test]
fn key_cmd_runs_once_per_distinct_valid_recipient_and_at_most_eight_times() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "s.yaml", &format!("password: {CANARY}\n"));
    sops_encrypt(d, "s.yaml", &[]);
    // The attacker adds stanzas: 300 garbage recipients and 30 well-formed ones nobody holds.
    let enc = std::fs::read(d.join("s.yaml")).unwrap();
    let (docs, meta) =
        sops_plugin::stores::load_encrypted(sops_plugin::Format::Yaml, &enc).unwrap();
    let mut md = sops_plugin::Metadata::from_value(&meta).unwrap();
    let real = md.key_groups[0].age.clone();
    let template = real[0].clone();
    let mut forged = vec![];
    for i in 0..300 {
        let mut a = template.clone();
        a.recipient = format!("$(touch /tmp/pwned) attacker text {i}");
        forged.push(a);
    }
    for _ in 0..30 {
        let mut a = template.clone();
        a.recipient = age::x25519::Identity::generate().to_public().to_string();
        forged.push(a);
    }
    forged.extend(real);
    md.key_groups[0].age = forged;
    let out = sops_plugin::stores::emit_encrypted(sops_plugin::Format::Yaml, &docs, &md.to_value())
        .unwrap();
    std::fs::write(d.join("s.yaml"), out).unwrap();
    let log = d.join("runs.log");
    // Like a real key service: it hands out only the key the recipient asks for.
    let cmd = format!(
        "sh -c 'echo \"$SOPS_AGE_RECIPIENT\" >> {}; if [ \"$SOPS_AGE_RECIPIENT\" = {R1} ]; then cat {}; fi'",
        log.display(),
        fx("keys.txt").display()
    );
    let run = |allowed: Option<&str>| {
        let _ = std::fs::remove_file(&log);
        let mut c = Command::new(env!("CARGO_BIN_EXE_sops-plugin"));
        c.args(["decrypt", "s.yaml"])
            .current_dir(d)
            .env_remove("SOPS_AGE_KEY_FILE")
            .env_remove("SOPS_AGE_KEY")
            .env("HOME", d)
            .env("SOPS_AGE_KEY_CMD", &cmd);
        if let Some(a) = allowed {
            c.env("SOPS_AGE_KEY_CMD_RECIPIENTS", a);
        }
        let out = c.output().unwrap();
        let runs = std::fs::read_to_string(&log).unwrap_or_default();
        (out, runs)
    };
    let (out, runs) = run(None);
    let runs: Vec<&str> = runs.lines().collect();
    assert!(runs.len() <= 8, "{} runs", runs.len());
    assert!(runs.iter().all(|r| r.starts_with("age1")), "{runs:?}");
    // Past the cap the file's real recipients are not reached: a clear error, bounded in size.
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("SOPS_AGE_KEY_CMD ran 8 times (at most 8"),
        "{err}"
    );
    assert!(err.len() < 10_000, "{} bytes of error", err.len());
    // The operator names the recipients its keys serve: one run, and the file decrypts.
    let (out, runs) = run(Some(&format!("{R1},{R2}")));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{}",
        &err[err.len().saturating_sub(1500)..]
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(CANARY));
    assert_eq!(runs.lines().count(), 1, "{runs}");
}

#[test]
fn ini_key_with_a_backtick_round_trips_through_both_tools() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let plain = "[s]\nkey`tick = v1\nplain = v2\n";
    write(d, "a.ini", plain);
    let enc = ours_ok(d, &["encrypt", "--age", R1, "a.ini"]);
    write(d, "enc.ini", std::str::from_utf8(&enc).unwrap());
    let ours_dec = ours_ok(d, &["decrypt", "enc.ini"]);
    let sops_dec = sops_ok(d, &["decrypt", "enc.ini"]);
    assert_eq!(
        String::from_utf8_lossy(&ours_dec),
        String::from_utf8_lossy(&sops_dec)
    );
    assert!(String::from_utf8_lossy(&ours_dec).contains("v1"));
}

#[test]
fn flattened_metadata_cannot_ask_for_billions_of_entries() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "a.env", &format!("K={CANARY}\n"));
    sops_encrypt(d, "a.env", &[]);
    let mut text = std::fs::read_to_string(d.join("a.env")).unwrap();
    text.push_str("sops_age__list_100000000__map_recipient=x\n");
    std::fs::write(d.join("a.env"), text).unwrap();
    // Before the bound this line allocated 100 million entries; 1 GB of address space is ample.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v 1000000; exec {} decrypt a.env",
            env!("CARGO_BIN_EXE_sops-plugin")
        ))
        .current_dir(d)
        .env("HOME", d)
        .env("SOPS_AGE_KEY_FILE", fx("keys.txt"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("list position 100000000"), "{err}");
}

#[test]
fn oversized_files_fail_with_the_limit_named() {
    let s = sidecar();
    let repo = s.repo();
    // A SOPS-looking file above the per-file limit for decryption.
    let mut big = String::from("apiVersion: v1\nkind: Secret\nstringData:\n");
    while big.len() < 9 << 20 {
        big.push_str("    k: ENC[AES256_GCM,data:AAAA,iv:AAAA,tag:AAAA,type:str]\n");
    }
    big.push_str("sops:\n    mac: x\n");
    write(&repo, "app/big.yaml", &big);
    let out = s.generate(&["app"], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("8 MiB"), "{err}");
}
