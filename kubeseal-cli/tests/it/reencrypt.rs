//! `kubeseal --re-encrypt PATH...` over a generated tree, through the controller's real
//! /v1/rotate (rate limit included) and offline from a key backup: only the sealed values change,
//! they open with the new key to the same plaintext, failed files stay as they were.

use crate::common;
use crate::tree;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{kubeseal, run};
use tree::*;

const OBJECTS: usize = 12;
const FILES: usize = 6;

struct Repo {
    dir: tempfile::TempDir,
    ledger: Ledger,
    before: BTreeMap<PathBuf, String>,
}

/// The generated tree plus: a file that is not a SealedSecret, a broken one, a hidden directory.
fn repo() -> Repo {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    let ledger = generate(&root, key("key1").public_key(), OBJECTS, FILES);
    std::fs::write(
        root.join("deployment.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}  # not ours\n",
    )
    .unwrap();
    let broken = std::fs::read_to_string(root.join("team-0/app-0/sealed.yaml")).unwrap();
    std::fs::write(
        root.join("broken.yaml"),
        format!("{broken}\n  - [unclosed\n"),
    )
    .unwrap();
    std::fs::create_dir(root.join(".git")).unwrap();
    std::fs::write(root.join(".git/sealed.yaml"), &broken).unwrap();
    let before = files(&root);
    Repo {
        dir,
        ledger,
        before,
    }
}

fn files(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                out.insert(path.clone(), std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    out
}

/// Every generated file changed in its values only; the others did not change at all.
fn assert_re_encrypted(repo: &Repo, new_key: &sealing::PrivateKey) {
    let root = repo.dir.path().join("repo");
    let after = files(&root);
    let mut values = 0;
    for (path, before) in &repo.before {
        let name = path
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .to_string();
        if name.starts_with("team-") {
            assert_ne!(&after[path], before, "{name} was not rewritten");
            values += assert_only_values_changed(before, &after[path], &repo.ledger, new_key);
        } else {
            assert_eq!(&after[path], before, "{name} must be left untouched");
        }
    }
    assert_eq!(values, OBJECTS * 2);
    assert_eq!(after.len(), repo.before.len(), "no stray temporary files");
}

#[test]
fn a_tree_is_re_encrypted_through_the_controllers_rotate_endpoint() {
    // The controller's default rate limit (2/s, burst 2): kubeseal must pace itself, not fail.
    let cluster = start_cluster(&["key1", "key2"], 2.0, 2);
    let repo = repo();
    let kubeconfig = write_kubeconfig(repo.dir.path(), cluster.api_port);

    let mut dry = kubeseal(repo.dir.path());
    dry.arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--re-encrypt", "--dry-run"])
        .arg(repo.dir.path().join("repo"));
    let output = run(dry, "");
    let said = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(said.contains("would be re-encrypted"), "{said}");
    assert_eq!(
        files(&repo.dir.path().join("repo")),
        repo.before,
        "--dry-run changed files"
    );

    let mut cmd = kubeseal(repo.dir.path());
    cmd.arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--re-encrypt")
        .arg(repo.dir.path().join("repo"));
    let output = run(cmd, "");
    let said = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(
        !output.status.success(),
        "the broken file must fail the run: {said}"
    );
    assert!(
        said.contains("broken.yaml: YAML error at line"),
        "the broken file is named with its problem: {said}"
    );
    assert!(
        said.contains(&format!(
            "8 file(s) scanned, {FILES} rewritten; {OBJECTS} SealedSecret(s), {} value(s) re-encrypted",
            OBJECTS * 2
        )),
        "{said}"
    );
    assert!(said.contains("1 file(s) failed (left untouched)"), "{said}");
    assert_re_encrypted(&repo, &key("key2"));
    // The dry run and the run each send every object in one batch (a List per /v1/rotate
    // request, 64 values at most), not one request per object.
    assert_eq!(
        cluster
            .rotate_requests
            .load(std::sync::atomic::Ordering::Relaxed),
        2 * (OBJECTS * 2).div_ceil(64)
    );
}

/// Replaces one value of team-1/app-1/list.yml with one sealed (for the same object) to a key
/// nobody holds; the file's path and its new text.
fn seal_one_value_to_an_unknown_key(repo: &Repo) -> (PathBuf, String) {
    let path = repo.dir.path().join("repo/team-1/app-1/list.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    let victim = repo
        .ledger
        .keys()
        .find(|v| text.contains(v.as_str()))
        .unwrap();
    let label = &repo.ledger[victim].0;
    let foreign = sealing::seal_value(key("unrelated").public_key(), label, b"x").unwrap();
    let foreign = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, foreign);
    let tampered = text.replace(victim.as_str(), &foreign);
    std::fs::write(&path, &tampered).unwrap();
    (path, tampered)
}

#[test]
fn a_batch_refused_for_one_object_is_retried_one_by_one_and_only_its_file_fails() {
    let cluster = start_cluster(&["key1", "key2"], 0.0, 1);
    let repo = repo();
    let root = repo.dir.path().join("repo");
    let (path, tampered) = seal_one_value_to_an_unknown_key(&repo);
    std::fs::remove_file(root.join("broken.yaml")).unwrap();

    let mut cmd = kubeseal(repo.dir.path());
    cmd.arg("--kubeconfig")
        .arg(write_kubeconfig(repo.dir.path(), cluster.api_port))
        .arg("--re-encrypt")
        .arg(&root);
    let output = run(cmd, "");
    let said = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(!output.status.success(), "{said}");
    assert!(
        said.contains("list.yml: document 1, item ") && said.contains("HTTP 409"),
        "the object is named: {said}"
    );
    assert!(said.contains("1 file(s) failed (left untouched)"), "{said}");
    assert!(
        said.contains(&format!("{} rewritten", FILES - 1)),
        "the other files are: {said}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), tampered);
}

#[test]
fn a_tree_is_re_encrypted_offline_from_a_key_backup_skipping_current_values() {
    let repo = repo();
    let root = repo.dir.path().join("repo");
    // One value already sealed to the newest key stays as it is.
    let current_path = root.join("team-0/app-0/sealed.yaml");
    let text = std::fs::read_to_string(&current_path).unwrap();
    let mut ledger = repo.ledger.clone();
    let old = ledger
        .keys()
        .find(|v| text.contains(v.as_str()))
        .unwrap()
        .clone();
    let (label, plaintext) = ledger[&old].clone();
    let sealed =
        sealing::seal_value(key("key2").public_key(), &label, plaintext.as_bytes()).unwrap();
    let current = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, sealed);
    std::fs::write(&current_path, text.replace(&old, &current)).unwrap();
    ledger.remove(&old);
    let mut before = repo.before.clone();
    before.insert(current_path.clone(), text.replace(&old, &current));
    let repo = Repo {
        before,
        ledger,
        ..repo
    };

    let mut cmd = kubeseal(repo.dir.path());
    cmd.args(["--re-encrypt", "--recovery-private-key"])
        .arg(fixture("keys/all-keys-list.json"))
        .args(["--exclude", "broken.yaml"])
        .arg(&root);
    let output = run(cmd, "");
    let said = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(output.status.success(), "{said}");
    assert!(
        said.contains(&format!(
            "7 file(s) scanned, {FILES} rewritten; {OBJECTS} SealedSecret(s), {} value(s) re-encrypted, 1 already sealed to the newest key (skipped); 0 file(s) failed",
            OBJECTS * 2 - 1
        )),
        "{said}"
    );
    let after = std::fs::read_to_string(&current_path).unwrap();
    assert!(
        after.contains(&current),
        "the current value is kept byte for byte"
    );

    let root_files = files(&root);
    let mut values = 0;
    for (path, before) in &repo.before {
        if path.to_string_lossy().contains("/team-") {
            values +=
                assert_only_values_changed(before, &root_files[path], &repo.ledger, &key("key2"));
        } else {
            assert_eq!(&root_files[path], before);
        }
    }
    assert_eq!(values, OBJECTS * 2 - 1);
}

#[test]
fn a_file_with_a_value_no_key_opens_is_reported_and_left_untouched() {
    let repo = repo();
    let root = repo.dir.path().join("repo");
    let (path, tampered) = seal_one_value_to_an_unknown_key(&repo);

    let mut cmd = kubeseal(repo.dir.path());
    cmd.args(["--re-encrypt", "--recovery-private-key"])
        .arg(fixture("keys/all-keys-list.json"))
        .arg(&path)
        .arg(root.join("team-2"));
    let output = run(cmd, "");
    let said = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(!output.status.success());
    assert!(
        said.contains("list.yml: document 1, item ") && said.contains("no key could decrypt"),
        "{said}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), tampered);
    assert!(
        said.contains("1 rewritten"),
        "the other file still is: {said}"
    );
}
