//! `kubeseal --merge-into FILE`: the file is edited in place, only the merged values change.

use crate::common;

use std::path::Path;

use common::*;

fn cert() -> String {
    fixture("keys/key1.crt").display().to_string()
}

/// The two sealed values of the fixture (sealed for web/site-tls) and what they open to.
fn fixture_values() -> (String, String, sealing::UnsealedSecret) {
    let text = read_fixture("sealedsecrets/tls-typed.yaml");
    let sealed: crds::SealedSecret = serde_yaml::from_str(&text).unwrap();
    let values = &sealed.spec.encrypted_data;
    (
        values["tls.crt"].clone(),
        values["tls.key"].clone(),
        unseal_text(&text),
    )
}

/// Merges the Secret `input` into `target` with the test certificate; returns the file after.
fn merge(home: &Path, target: &Path, input: &str) -> String {
    let mut cmd = kubeseal(home);
    cmd.args(["--cert", &cert(), "--merge-into"]).arg(target);
    let output = run(cmd, input);
    stdout(&output);
    let warnings = String::from_utf8(output.stderr).unwrap();
    assert!(!warnings.contains("re-serialised"), "{warnings}");
    std::fs::read_to_string(target).unwrap()
}

fn sealed_values(text: &str) -> std::collections::BTreeMap<String, String> {
    let sealed: crds::SealedSecret = serde_yaml::from_str(text).unwrap();
    sealed.spec.encrypted_data
}

const SECRET: &str = "apiVersion: v1
kind: Secret
metadata:
  name: ignored
  labels: {tier: edge}
  annotations: {\"on\": \"true\"}
stringData: {tls.key: new-key, tls.dh: dh-params, \"yes\": agreed}
";

/// Issue 13 item 1: `--merge-into` re-serialised the file, losing comments, quoting, blank
/// lines and the document marker. Now the file is byte-identical except the changed value and
/// the inserted lines, in LF and CRLF files alike.
#[test]
fn merge_into_keeps_comments_quoting_and_markers_byte_for_byte() {
    let (crt, key, before) = fixture_values();
    let template = "# Sealed for the web team; regenerate with `make seal`
---
apiVersion: bitnami.com/v1alpha1
kind: SealedSecret
metadata:
  name: site-tls
  namespace: web   # production
spec:
  # values sealed to the cluster key
  encryptedData:
    # the certificate, from the CA
    tls.crt: \"CRT\"
{DH}    tls.key: KEY  # rotated yearly
{YES}
  template:
    metadata:
{ANNOTATIONS}      labels:
        app: 'web'
{TIER}    type: kubernetes.io/tls
# trailing comment
";
    let original = template
        .replace("CRT", &crt)
        .replace("KEY", &key)
        .replace("{DH}", "")
        .replace("{YES}", "")
        .replace("{ANNOTATIONS}", "")
        .replace("{TIER}", "");
    for eol in ["\n", "\r\n"] {
        let home = tempfile::tempdir().unwrap();
        let target = home.path().join("sealed.yaml");
        std::fs::write(&target, original.replace('\n', eol)).unwrap();

        let after = merge(home.path(), &target, SECRET);

        let values = sealed_values(&after);
        assert_ne!(values["tls.key"], key);
        let expected = template
            .replace("CRT", &crt)
            .replace("KEY", &values["tls.key"])
            .replace("{DH}", &format!("    tls.dh: {}\n", values["tls.dh"]))
            .replace("{YES}", &format!("    \"yes\": {}\n", values["yes"]))
            .replace(
                "{ANNOTATIONS}",
                "      annotations:\n        \"on\": \"true\"\n",
            )
            .replace("{TIER}", "        tier: edge\n")
            .replace('\n', eol);
        assert_eq!(after, expected);

        let unsealed = unseal_text(&after);
        assert_eq!(unsealed.data["tls.crt"], before.data["tls.crt"]);
        assert_eq!(&*unsealed.data["tls.key"], b"new-key");
        assert_eq!(&*unsealed.data["tls.dh"], b"dh-params");
        assert_eq!(&*unsealed.data["yes"], b"agreed");
        let labels = unsealed.metadata.labels.as_ref().unwrap();
        assert_eq!(
            (labels["app"].as_str(), labels["tier"].as_str()),
            ("web", "edge")
        );
        assert_eq!(
            unsealed.metadata.annotations.as_ref().unwrap()["on"],
            "true"
        );
    }
}

/// `encryptedData: {}` becomes a block mapping, and a missing template is created, both indented
/// as the file indents (4 spaces here), also at the end of a file without a final line break.
#[test]
fn merge_into_creates_missing_mappings_with_the_files_indentation() {
    let home = tempfile::tempdir().unwrap();
    let target = home.path().join("sealed.yaml");
    let original = "apiVersion: bitnami.com/v1alpha1
kind: SealedSecret
metadata:
    name: site-tls
    namespace: web
spec:
    encryptedData: {}   # nothing yet";
    std::fs::write(&target, original).unwrap();
    let input =
        "kind: Secret\nmetadata: {name: x, labels: {tier: edge}}\nstringData: {ca.crt: new-ca}\n";

    let after = merge(home.path(), &target, input);

    let value = &sealed_values(&after)["ca.crt"];
    let expected = format!(
        "{}:   # nothing yet\n        ca.crt: {value}\n    template:\n        metadata:\n            labels:\n                tier: edge",
        original.trim_end_matches(": {}   # nothing yet")
    );
    assert_eq!(after, expected);
    let unsealed = unseal_text(&after);
    assert_eq!(&*unsealed.data["ca.crt"], b"new-ca");
    assert_eq!(unsealed.metadata.labels.as_ref().unwrap()["tier"], "edge");
}

/// A JSON SealedSecret is edited in place too: the new entry goes on its own line, at the
/// indentation of the others, and the file stays JSON.
#[test]
fn merge_into_edits_json_in_place() {
    let home = tempfile::tempdir().unwrap();
    let target = home.path().join("sealed.json");
    let object: serde_json::Value =
        serde_yaml::from_str(&read_fixture("sealedsecrets/tls-typed.yaml")).unwrap();
    let original = format!("{}\n", serde_json::to_string_pretty(&object).unwrap());
    std::fs::write(&target, &original).unwrap();

    let after = merge(
        home.path(),
        &target,
        "kind: Secret\nmetadata: {name: x}\nstringData: {ca.crt: new-ca}\n",
    );

    let value = &sealed_values(&after)["ca.crt"];
    let line = original
        .lines()
        .find(|l| l.contains("\"tls.crt\""))
        .unwrap();
    let indent = &line[..line.len() - line.trim_start().len()];
    let expected = original.replacen(
        line,
        &format!("{indent}\"ca.crt\": \"{value}\",\n{line}"),
        1,
    );
    assert_eq!(after, expected);
    serde_json::from_str::<serde_json::Value>(&after).unwrap();
    assert_eq!(&*unseal_text(&after).data["ca.crt"], b"new-ca");
}

/// Other documents of the file are kept as they are; the file must hold exactly one SealedSecret.
#[test]
fn merge_into_needs_exactly_one_sealed_secret_and_keeps_other_documents() {
    let home = tempfile::tempdir().unwrap();
    let target = home.path().join("sealed.yaml");
    let sealed = read_fixture("sealedsecrets/tls-typed.yaml");
    let config_map = "---\n# unrelated\nkind: ConfigMap\ndata: {a: \"1\"}  # kept\n";
    let original = format!("{sealed}{config_map}");
    std::fs::write(&target, &original).unwrap();
    let input = "kind: Secret\nmetadata: {name: x}\nstringData: {ca.crt: new-ca}\n";

    let after = merge(home.path(), &target, input);
    assert!(after.ends_with(config_map), "{after}");
    assert_eq!(
        &*unseal_text(after.split("---\n").next().unwrap()).data["ca.crt"],
        b"new-ca"
    );

    let two = format!("{sealed}---\n{sealed}");
    std::fs::write(&target, &two).unwrap();
    let mut cmd = kubeseal(home.path());
    cmd.args(["--cert", &cert(), "--merge-into"]).arg(&target);
    let error = stderr(&run(cmd, input));
    assert!(error.contains("2 SealedSecrets in the file"), "{error}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), two);
}

/// A file whose text cannot be edited in place (YAML aliases) is still merged, re-serialised,
/// and the user is told that its formatting was not kept.
#[test]
fn merge_into_a_file_with_aliases_re_serialises_it_and_says_so() {
    let home = tempfile::tempdir().unwrap();
    let target = home.path().join("sealed.yaml");
    let original = read_fixture("sealedsecrets/tls-typed.yaml")
        .replacen("name: site-tls", "name: &name site-tls # the name", 1)
        .replacen("name: site-tls", "name: *name", 1);
    std::fs::write(&target, &original).unwrap();

    let mut cmd = kubeseal(home.path());
    cmd.args(["--cert", &cert(), "--merge-into"]).arg(&target);
    let output = run(
        cmd,
        "kind: Secret\nmetadata: {name: x}\nstringData: {ca.crt: new-ca}\n",
    );
    stdout(&output);
    let warning = String::from_utf8(output.stderr).unwrap();
    assert!(
        warning.contains(
            "re-serialised, its comments and formatting are not kept: it uses YAML aliases"
        ),
        "{warning}"
    );
    let after = std::fs::read_to_string(&target).unwrap();
    assert!(!after.contains("# the name"));
    assert_eq!(&*unseal_text(&after).data["ca.crt"], b"new-ca");
}
