//! Whole objects: SealedSecrets made by other implementations unseal to the expected Secrets,
//! and what we seal opens with an independent reference implementation.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use k8s_openapi::api::core::v1::Secret;
use sealing::secret::{sealed_scope, wipe_secret};
use sealing::{Scope, SealSecretOptions, UnsealError, seal_secret, unseal};
use test_kit::sealed_secrets::{private_key as key, read, sealed_secret as sealed_fixture};

#[test]
fn every_sealed_secret_fixture_unseals_to_its_expected_secret() {
    let (key1, key2) = (key("key1"), key("key2"));
    let names = [
        "basic",
        "cluster-wide",
        "empty-value",
        "immutable-plain-data",
        "mixed-keys",
        "namespace-wide",
        "tls-typed",
    ];
    for name in names {
        let unsealed = unseal(&sealed_fixture(name), &[&key1, &key2])
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let expected: Secret =
            serde_yaml::from_str(&read(&format!("expected-secrets/{name}.yaml"))).unwrap();
        let got = unsealed.to_secret();
        assert_eq!(got.type_, expected.type_, "{name}: type");
        assert_eq!(got.immutable, expected.immutable, "{name}: immutable");
        assert_eq!(got.data, expected.data, "{name}: data");
        assert_eq!(got.metadata.name, expected.metadata.name, "{name}: name");
        assert_eq!(
            got.metadata.namespace, expected.metadata.namespace,
            "{name}"
        );
        assert_eq!(
            got.metadata.labels, expected.metadata.labels,
            "{name}: labels"
        );
        assert_eq!(
            got.metadata.annotations, expected.metadata.annotations,
            "{name}: annotations"
        );
        assert!(unsealed.opened_with.is_some(), "{name}");
    }
}

#[test]
fn negative_sealed_secret_fixtures_fail_naming_the_key() {
    let (key1, key2) = (key("key1"), key("key2"));
    let err = unseal(&sealed_fixture("negative-bad-base64"), &[&key1, &key2]).unwrap_err();
    assert!(
        matches!(&err, UnsealError::BadBase64 { key } if key == "x"),
        "{err}"
    );
    assert_eq!(err.to_string(), "key \"x\": value is not valid base64");

    let err = unseal(&sealed_fixture("negative-renamed"), &[&key1, &key2]).unwrap_err();
    assert_eq!(err.to_string(), "key \"k\": no key could decrypt secret");
}

#[test]
fn template_data_renders_go_templates_drops_nulls_and_names_the_key_on_errors() {
    let (key1, key2) = (key("key1"), key("key2"));
    let mut sealed = sealed_fixture("mixed-keys");
    let entries = [
        ("a", None),
        (
            "dsn",
            Some("user={{ .a }} pass={{ index . \"b\" | upper }}"),
        ),
        ("json", Some("{{ toJson .b }}")),
        ("plain", Some("aGVsbG8=")),
        ("greeting", Some("{{ .plain }} world")),
    ];
    sealed.spec.template.data = Some(
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect(),
    );
    let unsealed = unseal(&sealed, &[&key1, &key2]).unwrap();
    let text = |k: &str| String::from_utf8(unsealed.data[k].to_vec()).unwrap();
    assert!(
        !unsealed.data.contains_key("a"),
        "null drops the sealed key"
    );
    assert_eq!(text("dsn"), "user=1 pass=2");
    assert_eq!(text("json"), "\"2\"");
    assert_eq!(text("plain"), "hello");
    assert_eq!(text("greeting"), "hello world");

    let mut broken = sealed_fixture("mixed-keys");
    broken.spec.template.data = Some(BTreeMap::from([(
        "bad".to_string(),
        Some("{{ .a | nosuchfunction }}".to_string()),
    )]));
    let err = unseal(&broken, &[&key1, &key2]).unwrap_err().to_string();
    assert!(
        err.contains("\"bad\"") && err.contains("nosuchfunction"),
        "{err}"
    );
    assert!(!err.contains("=1"), "no values in errors");
}

fn input_secret(name: &str) -> Secret {
    serde_yaml::from_str(&read(&format!("input-secrets/{name}.yaml"))).unwrap()
}

#[test]
fn sealing_folds_string_data_strips_plaintext_annotations_and_round_trips() {
    let (key1, key2) = (key("key1"), key("key2"));
    let secret = input_secret("opaque");
    let sealed = seal_secret(&secret, key2.public_key(), &SealSecretOptions::default()).unwrap();
    assert_eq!(
        sealed.spec.encrypted_data.keys().collect::<Vec<_>>(),
        vec!["password", "username"]
    );
    let template_meta = sealed.spec.template.metadata.as_ref().unwrap();
    assert!(template_meta.annotations.is_none(), "last-applied must go");
    assert_eq!(sealed.spec.template.type_.as_deref(), Some("Opaque"));
    let unsealed = unseal(&sealed, &[&key1, &key2]).unwrap();
    assert_eq!(&*unsealed.data["username"], b"admin");
    assert_eq!(&*unsealed.data["password"], b"hunter2");
    assert_eq!(unsealed.opened_with, Some(1));
    // The second value is opened with the key that opened the first: one RSA operation each
    // after the first miss.
    assert_eq!(unsealed.rsa_operations, 3);
}

#[test]
fn sealing_follows_the_scope_annotations() {
    let key1 = key("key1");
    let secret = input_secret("namespace-wide");
    let sealed = seal_secret(&secret, key1.public_key(), &SealSecretOptions::default()).unwrap();
    assert_eq!(sealed_scope(&sealed), Scope::NamespaceWide);
    // A namespace-wide value opens under another name in the same namespace.
    let mut renamed = sealed.clone();
    renamed.metadata.name = Some("other".into());
    assert_eq!(&*unseal(&renamed, &[&key1]).unwrap().data["token"], b"abc");
    let mut moved = sealed;
    moved.metadata.namespace = Some("team-b".into());
    assert!(unseal(&moved, &[&key1]).is_err());
}

#[test]
fn sealing_refuses_missing_names_namespaces_and_empty_data() {
    let key1 = key("key1");
    let no_ns = input_secret("no-namespace-strict");
    let err = seal_secret(&no_ns, key1.public_key(), &SealSecretOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("\"nons\" has no namespace"),
        "{err}"
    );

    let mut empty = input_secret("opaque");
    empty.data = None;
    empty.string_data = None;
    let err = seal_secret(&empty, key1.public_key(), &SealSecretOptions::default()).unwrap_err();
    assert!(err.to_string().contains("--allow-empty-data"), "{err}");
    let allowed = SealSecretOptions {
        allow_empty_data: true,
    };
    assert!(seal_secret(&empty, key1.public_key(), &allowed).is_ok());

    let mut wiped = input_secret("opaque");
    wipe_secret(&mut wiped);
    let data = wiped.data.unwrap();
    assert!(data["password"].0.iter().all(|&b| b == 0));
}

fn reference_python() -> PathBuf {
    let home = std::env::var("PEERS_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/gitops-secrets/peers")
        });
    let python = home.join("venv/bin/python");
    assert!(
        python.exists(),
        "{} not found: run scripts/install-peers.sh",
        python.display()
    );
    python
}

#[test]
fn values_we_seal_open_with_the_reference_procedure() {
    let key1 = key("key1");
    let key_pem = read("keys/key1.pem");
    let plaintexts: [&[u8]; 4] = [b"", b"x", "ünïcode ✓".as_bytes(), &[0u8, 255, 7, 10, 13]];
    let mut cases = Vec::new();
    let mut lines = String::new();
    for scope in [Scope::Strict, Scope::NamespaceWide, Scope::ClusterWide] {
        for plain in plaintexts {
            let label = scope.label("team-a", "db");
            let sealed = sealing::seal_value(key1.public_key(), &label, plain).unwrap();
            lines.push_str(
                &serde_json::json!({
                    "key_pem": key_pem,
                    "label_b64": B64.encode(&label),
                    "sealed_b64": B64.encode(&sealed),
                })
                .to_string(),
            );
            lines.push('\n');
            cases.push(B64.encode(plain));
        }
    }
    // A value opened under the wrong label must fail there too, or the check proves nothing.
    let wrong = sealing::seal_value(key1.public_key(), b"team-a/db", b"x").unwrap();
    lines.push_str(
        &serde_json::json!({"key_pem": key_pem, "label_b64": B64.encode("team-a"),
            "sealed_b64": B64.encode(&wrong)})
        .to_string(),
    );
    lines.push('\n');

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference_open.py");
    let mut child = Command::new(reference_python())
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let results: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(results.len(), cases.len() + 1);
    assert_eq!(&results[..cases.len()], &cases[..]);
    assert!(
        results[cases.len()].starts_with("ERROR"),
        "{:?}",
        results.last()
    );
}

#[test]
fn parallel_unsealing_gives_the_same_secret_with_one_rsa_operation_per_value_after_the_first() {
    let (key1, key2) = (key("key1"), key("key2"));
    let mut secret = input_secret("opaque");
    let mut data = std::collections::BTreeMap::new();
    for i in 0..9 {
        data.insert(
            format!("k{i}"),
            k8s_openapi::ByteString(vec![b'a' + i as u8; 10 + i]),
        );
    }
    secret.data = Some(data);
    secret.string_data = None;
    let sealed = seal_secret(&secret, key2.public_key(), &SealSecretOptions::default()).unwrap();
    let sequential = unseal(&sealed, &[&key1, &key2]).unwrap();
    let parallel = sealing::secret::unseal_parallel(&sealed, &[&key1, &key2], 4).unwrap();
    assert_eq!(sequential.data, parallel.data);
    assert_eq!(parallel.opened_with, Some(1));
    // 2 operations for the first value (key1 misses), then 1 per value.
    assert_eq!(parallel.rsa_operations, 2 + 8);
    assert_eq!(sequential.rsa_operations, 2 + 8);

    let derived = key1.derive_secret(b"purpose");
    assert_eq!(derived, key1.derive_secret(b"purpose"));
    assert_ne!(derived, key2.derive_secret(b"purpose"));
    assert_ne!(derived, key1.derive_secret(b"other"));
}
