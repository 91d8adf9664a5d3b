//! Differential test: every template of tests/corpus runs through this engine and through Go's
//! own text/template (tests/gotemplate-ref, built with the `go` that scripts/install-peers.sh
//! installs). Outputs must match byte for byte; errors match as a class (both fail).
//!
//! Without `go` on PATH the test is skipped, loudly.

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

/// Which build of the Go reference program runs a corpus.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reference {
    /// text/template alone, built in module mode.
    Std,
    /// With Sprig, built in GOPATH mode against Debian's golang-github-masterminds-sprig-dev.
    Sprig,
}

const DEBIAN_GOPATH: &str = "/usr/share/gocode";

/// Why the reference cannot run here, if it cannot.
fn missing(reference: Reference) -> Option<&'static str> {
    if Command::new("go").arg("version").output().is_err() {
        return Some("`go` is not installed");
    }
    let sprig = Path::new(DEBIAN_GOPATH).join("src/github.com/Masterminds/sprig");
    if reference == Reference::Sprig && !sprig.exists() {
        return Some("golang-github-masterminds-sprig-dev is not installed");
    }
    None
}

/// Builds and runs the Go reference program over a corpus: each case's output, None if it failed.
fn go_results(corpus: &Path, reference: Reference) -> BTreeMap<String, Option<Vec<u8>>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let src = root.join("tests/gotemplate-ref");
    let name = match reference {
        Reference::Std => "gotemplate-ref",
        Reference::Sprig => "gotemplate-sprig-ref",
    };
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&work).unwrap();
    let binary = work.join(name);
    let mut build = Command::new("go");
    build
        .args(["build", "-o"])
        .arg(&binary)
        .arg(src.join("main.go"))
        .env("GOCACHE", work.join("cache"))
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local");
    match reference {
        Reference::Std => build
            .env("GOPATH", work.join("gopath"))
            .env("GO111MODULE", "on"),
        Reference::Sprig => build
            .arg(src.join("sprig.go"))
            .env("GOPATH", DEBIAN_GOPATH)
            .env("GO111MODULE", "off"),
    };
    let status = build.status().unwrap();
    assert!(status.success(), "building the Go reference program failed");
    // The controller's container has no local zone: Go's Local is UTC there.
    let out = Command::new(&binary)
        .arg(corpus)
        .env("TZ", "UTC")
        .output()
        .unwrap();
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
    results
}

/// Runs every case of `corpus` through both engines; the mismatches, described.
fn compare(corpus: &Path, all: &[Case], go: &BTreeMap<String, Option<Vec<u8>>>) -> Vec<String> {
    let data = data(corpus);
    let mut mismatches = Vec::new();
    for case in all {
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
    mismatches
}

/// Compares a corpus of at least `min_cases` templates with the Go reference, or skips loudly.
fn check_corpus(test: &str, dir: &str, min_cases: usize, reference: Reference) {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let all = cases(&corpus);
    assert!(
        all.len() >= min_cases,
        "{dir} has only {} templates",
        all.len()
    );
    if let Some(why) = missing(reference) {
        eprintln!(
            "SKIPPED {test}: {why} (scripts/install-peers.sh installs it); \
             {} templates not compared",
            all.len()
        );
        return;
    }
    let go = go_results(&corpus, reference);
    let mismatches = compare(&corpus, &all, &go);
    eprintln!(
        "{dir}: {} templates, {} match Go byte for byte (or both fail)",
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

#[test]
fn corpus_matches_go_text_template() {
    check_corpus(
        "corpus_matches_go_text_template",
        "tests/corpus",
        200,
        Reference::Std,
    );
}

/// The Sprig functions against Sprig itself (v3.2.3, as Debian packages it; ESO uses v3),
/// with the process zone UTC as in ESO's container. Functions with random or time-dependent
/// output are compared through what is deterministic about them (length, prefix, parse).
#[test]
fn sprig_corpus_matches_go_sprig() {
    check_corpus(
        "sprig_corpus_matches_go_sprig",
        "tests/corpus-sprig",
        100,
        Reference::Sprig,
    );
}
