//! Differential test: every template of tests/corpus runs through this engine and through Go's
//! own text/template (tests/gotemplate-ref, built with the `go` that scripts/install-peers.sh
//! installs). Outputs must match byte for byte; errors match as a class (both fail).
//!
//! Without `go` on PATH the test is skipped, loudly.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use templating::{Options, render_with};
use zeroize::Zeroizing;

/// A case being read: name, delimiters, body lines.
type Pending<'a> = (String, Option<(String, String)>, Vec<&'a str>);

struct Case {
    name: String,
    body: String,
    delims: Option<(String, String)>,
}

/// The corpus format: `=== name [left right]` starts a case; its body runs to the next header.
fn cases(dir: &Path) -> Vec<Case> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tmpl"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let file = f.file_name().unwrap().to_string_lossy().into_owned();
        let mut lines: Vec<&str> = text.split('\n').collect();
        if lines.last() == Some(&"") {
            lines.pop();
        }
        let mut current: Option<Pending> = None;
        let mut flush = |c: Option<Pending>| {
            if let Some((name, delims, body)) = c {
                out.push(Case {
                    name: format!("{file}/{name}"),
                    body: body.join("\n"),
                    delims,
                });
            }
        };
        for line in lines {
            if let Some(header) = line.strip_prefix("=== ") {
                flush(current.take());
                let fields: Vec<&str> = header.split_whitespace().collect();
                let delims =
                    (fields.len() == 3).then(|| (fields[1].to_string(), fields[2].to_string()));
                current = Some((fields[0].to_string(), delims, Vec::new()));
            } else if let Some((_, _, body)) = current.as_mut() {
                body.push(line);
            }
        }
        flush(current.take());
    }
    out
}

fn data(dir: &Path) -> BTreeMap<String, Zeroizing<Vec<u8>>> {
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("data.json")).unwrap()).unwrap();
    let mut out = BTreeMap::new();
    for (k, v) in spec["text"].as_object().unwrap() {
        out.insert(
            k.clone(),
            Zeroizing::new(v.as_str().unwrap().as_bytes().to_vec()),
        );
    }
    for (k, v) in spec["base64"].as_object().unwrap() {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        out.insert(k.clone(), Zeroizing::new(bytes));
    }
    out
}

/// Builds and runs the Go reference program; None when `go` is not installed.
fn go_results(corpus: &Path) -> Option<BTreeMap<String, Option<Vec<u8>>>> {
    if Command::new("go").arg("version").output().is_err() {
        return None;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("gotemplate-ref");
    std::fs::create_dir_all(&work).unwrap();
    let binary = work.join("gotemplate-ref");
    let status = Command::new("go")
        .args(["build", "-o"])
        .arg(&binary)
        .arg(root.join("tests/gotemplate-ref/main.go"))
        .env("GOCACHE", work.join("cache"))
        .env("GOPATH", work.join("gopath"))
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GO111MODULE", "on")
        .status()
        .unwrap();
    assert!(status.success(), "building the Go reference program failed");
    let out = Command::new(&binary).arg(corpus).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut results = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let name = v["name"].as_str().unwrap().to_string();
        let output = v["ok"].as_bool().unwrap().then(|| {
            base64::engine::general_purpose::STANDARD
                .decode(v["out"].as_str().unwrap())
                .unwrap()
        });
        results.insert(name, output);
    }
    Some(results)
}

#[test]
fn corpus_matches_go_text_template() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let all = cases(&corpus);
    assert!(
        all.len() >= 200,
        "the corpus has only {} templates",
        all.len()
    );
    let Some(go) = go_results(&corpus) else {
        eprintln!(
            "SKIPPED corpus_matches_go_text_template: `go` is not installed \
             (scripts/install-peers.sh installs it); {} templates not compared",
            all.len()
        );
        return;
    };
    let data = data(&corpus);
    let mut mismatches = Vec::new();
    for case in &all {
        let mut options = Options::default();
        if let Some((l, r)) = &case.delims {
            options.left_delim = l.clone();
            options.right_delim = r.clone();
        }
        let ours = render_with(&case.body, &data, &options);
        let theirs = go
            .get(&case.name)
            .unwrap_or_else(|| panic!("Go did not run {}", case.name));
        match (&ours, theirs) {
            (Ok(a), Some(b)) if a.as_slice() == b.as_slice() => {}
            (Err(_), None) => {}
            _ => mismatches.push(format!(
                "{}:\n  ours: {:?}\n  go:   {:?}",
                case.name,
                ours.as_ref()
                    .map(|o| String::from_utf8_lossy(o).into_owned()),
                theirs
                    .as_ref()
                    .map(|o| String::from_utf8_lossy(o).into_owned()),
            )),
        }
    }
    eprintln!(
        "differential corpus: {} templates, {} match Go byte for byte (or both fail)",
        all.len(),
        all.len() - mismatches.len()
    );
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
