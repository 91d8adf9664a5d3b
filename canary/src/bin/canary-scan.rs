//! `canary-scan PATH...`: lists every file under the paths that contains the test canary in any
//! form, and exits 1 if there is one. Symbolic links are not followed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn scan(path: &Path, leaks: &mut Vec<String>, scanned: &mut usize) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if meta.is_dir() {
        let Ok(entries) = std::fs::read_dir(path) else {
            leaks.push(format!("{}: cannot be listed", path.display()));
            return;
        };
        let mut children: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        children.sort();
        for child in children {
            scan(&child, leaks, scanned);
        }
    } else if meta.is_file() {
        *scanned += 1;
        match std::fs::read(path) {
            Ok(bytes) => {
                if let Some((at, form)) = canary::find(&bytes) {
                    leaks.push(format!("{}: {form} form at byte {at}", path.display()));
                }
            }
            // A file the scan cannot read (e.g. mode 0000) could hide a leak.
            Err(e) => leaks.push(format!("{}: cannot be read ({e})", path.display())),
        }
    }
}

fn main() -> ExitCode {
    let paths: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if paths.is_empty() {
        eprintln!("usage: canary-scan PATH...");
        return ExitCode::from(2);
    }
    let mut leaks = Vec::new();
    let mut scanned = 0;
    for p in &paths {
        scan(p, &mut leaks, &mut scanned);
    }
    if leaks.is_empty() {
        println!("canary-scan: {scanned} files, no trace of the secret canary");
        return ExitCode::SUCCESS;
    }
    eprintln!("canary-scan: the secret canary leaked:");
    for l in &leaks {
        eprintln!("  {l}");
    }
    ExitCode::FAILURE
}
