//! The shared SOPS+age vectors: every positive file decrypts to sops' output, every negative
//! file fails with the right error and without plaintext.

use sops_plugin::{Error, Format, decrypt};

use crate::common::{format_of, fx, keyring};

fn manifest() -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(fx("manifest.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    match v {
        serde_json::Value::Array(a) => a,
        serde_json::Value::Object(o) => o
            .get("files")
            .or_else(|| o.get("positive"))
            .and_then(|f| f.as_array().cloned())
            .unwrap(),
        _ => panic!("unexpected manifest"),
    }
}

#[test]
fn positive_vectors_decrypt_exactly_like_sops() {
    let entries = manifest();
    assert!(
        entries.len() >= 16,
        "manifest lists {} files",
        entries.len()
    );
    let mut failures = vec![];
    for e in &entries {
        let file = e["file"].as_str().unwrap();
        let format = format_of(e["format"].as_str().unwrap());
        let expected = std::fs::read(fx(e["expected_plaintext"].as_str().unwrap())).unwrap();
        let src = std::fs::read(fx(file)).unwrap();
        for keys in ["keys.txt", "identity1.txt", "identity2.txt"] {
            match decrypt(format, format, &src, &keyring(keys), false) {
                Ok(out) => {
                    if out.as_slice() != expected.as_slice() {
                        failures.push(format!(
                            "{file} ({keys}): output differs\n--- ours\n{}\n--- sops\n{}",
                            String::from_utf8_lossy(&out),
                            String::from_utf8_lossy(&expected)
                        ));
                    }
                }
                Err(err) => failures.push(format!("{file} ({keys}): {err}")),
            }
        }
        match decrypt(format, format, &src, &keyring("unrelated-key.txt"), false) {
            Err(Error::DataKey(msg)) => {
                assert!(
                    msg.contains("age1avlg5anckrt8s0fdk0grn8fg8g25ffdysvm23hn8vqcs3w728cysah3gc5"),
                    "{msg}"
                );
                assert!(
                    msg.contains("looked for keys") || msg.contains("identities loaded"),
                    "{msg}"
                );
            }
            other => failures.push(format!(
                "{file}: unrelated key gave {:?}",
                other.map(|_| ())
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn negative_vectors_fail_with_sops_error_class() {
    let text = std::fs::read_to_string(fx("negative/negatives.json")).unwrap();
    let entries: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(entries.len(), 13);
    // Plaintext words that occur in the source files of the negatives.
    let canaries = [
        "hello world",
        "p@ss: w0rd",
        "hunter2",
        "attacker-chosen",
        "admin",
        "s3cr3t",
    ];
    for e in &entries {
        let file = e["file"].as_str().unwrap();
        let format = format_of(e["format"].as_str().unwrap());
        let code = e["sops_3_11_exit_code"].as_i64().unwrap() as i32;
        let keys = e["identities"].as_str().unwrap();
        let src = std::fs::read(fx(file)).unwrap();
        let err = match decrypt(format, format, &src, &keyring(keys), false) {
            Ok(_) => panic!("{file}: decrypted although it must fail"),
            Err(err) => err,
        };
        assert_eq!(err.exit_code(), code, "{file}: {err}");
        let msg = err.to_string();
        for c in canaries {
            assert!(!msg.contains(c), "{file}: error leaks '{c}': {msg}");
        }
        let sops_msg = e["sops_3_11_error"].as_str().unwrap();
        if sops_msg.starts_with("MAC mismatch") {
            // The digests themselves must agree with sops.
            let computed = sops_msg.split("computed ").nth(1).unwrap();
            assert!(msg.contains(&computed[..64]), "{file}: {msg} vs {sops_msg}");
        }
    }
}

#[test]
fn ignore_mac_opens_mac_failures_only() {
    let k = keyring("keys.txt");
    for f in [
        "negative/mac-mismatch.enc.yaml",
        "negative/mac-removed.enc.yaml",
        "negative/tampered-mac.enc.yaml",
        "negative/lastmodified-changed.enc.yaml",
    ] {
        let src = std::fs::read(fx(f)).unwrap();
        decrypt(Format::Yaml, Format::Yaml, &src, &k, true).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
    let src = std::fs::read(fx("negative/tampered-value.enc.yaml")).unwrap();
    assert!(decrypt(Format::Yaml, Format::Yaml, &src, &k, true).is_err());
}
