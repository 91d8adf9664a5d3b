//! `kubeseal --re-encrypt PATH...`: every SealedSecret in a tree of files re-encrypted to the
//! newest key, through the controller's `/v1/rotate` or offline from a key backup, each file
//! rewritten in place with only its sealed values changed.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use base64::Engine as _;
use globset::{Glob, GlobSet, GlobSetBuilder};
use sealing::secret::sealed_scope;
use sealing::{PrivateKey, PublicKey};

use crate::cli::Args;
use crate::output::write_atomically;
use crate::remote::{Controller, RotateOutcome, block_on};
use crate::rewrite::{self, Found};

/// Patterns a directory is searched with when no --include is given.
const DEFAULT_INCLUDE: [&str; 3] = ["*.yaml", "*.yml", "*.json"];

/// Most attempts at one object when the controller says "slow down" (429) or "busy" (503).
const MAX_ATTEMPTS: u32 = 120;

/// A file holding SealedSecrets, and what becomes of it.
struct FileJob {
    path: PathBuf,
    text: zeroize::Zeroizing<String>,
    found: Vec<Found>,
    sealed: Vec<crds::SealedSecret>,
    /// Per object: key to new sealed value (base64).
    changes: Vec<BTreeMap<String, String>>,
    failure: Option<String>,
}

#[derive(Default)]
struct Summary {
    files_scanned: usize,
    files_changed: usize,
    objects: usize,
    values: usize,
    current: usize,
    failures: Vec<String>,
}

fn globs(patterns: &[String], flag: &str) -> Result<GlobSet> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        builder.add(Glob::new(pattern).with_context(|| format!("{flag} {pattern}"))?);
    }
    Ok(builder.build()?)
}

/// The files to look at: each file argument, and the files under each directory (recursively,
/// hidden directories such as .git skipped, symlinked directories not followed) whose path
/// relative to it matches --include (default *.yaml, *.yml, *.json) and not --exclude.
fn collect_files(args: &Args) -> Result<Vec<PathBuf>> {
    let include = if args.include.is_empty() {
        globs(&DEFAULT_INCLUDE.map(String::from), "--include")?
    } else {
        globs(&args.include, "--include")?
    };
    let exclude = globs(&args.exclude, "--exclude")?;
    let mut files = Vec::new();
    for root in &args.paths {
        let meta =
            std::fs::metadata(root).with_context(|| format!("cannot read {}", root.display()))?;
        if !meta.is_dir() {
            files.push(root.clone());
            continue;
        }
        let mut pending = vec![root.clone()];
        while let Some(dir) = pending.pop() {
            let mut entries: Vec<_> = std::fs::read_dir(&dir)
                .with_context(|| format!("cannot read {}", dir.display()))?
                .filter_map(|e| e.ok())
                .collect();
            entries.sort_by_key(|e| e.file_name());
            for entry in entries {
                let path = entry.path();
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                let relative = path.strip_prefix(root).unwrap_or(&path);
                if kind.is_dir() {
                    if !entry.file_name().to_string_lossy().starts_with('.') {
                        pending.push(path);
                    }
                } else if (kind.is_file() || (kind.is_symlink() && path.is_file()))
                    && include.is_match(relative)
                    && !exclude.is_match(relative)
                {
                    files.push(path);
                }
            }
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

/// Reads and parses one file; `None` when it holds no SealedSecret.
fn load(path: &Path) -> Option<FileJob> {
    let text = match std::fs::File::open(path).and_then(sealing::documents::read_bounded) {
        Ok(text) => text,
        Err(e) => return Some(failed(path, format!("cannot read: {e}"))),
    };
    if !text.contains("SealedSecret") {
        return None;
    }
    let found = match rewrite::find(&text) {
        Ok(found) if found.is_empty() => return None,
        Ok(found) => found,
        Err(e) => return Some(failed(path, e)),
    };
    let mut sealed = Vec::new();
    for object in &found {
        let parsed: crds::SealedSecret = match serde_json::from_value(object.object.clone()) {
            Ok(parsed) => parsed,
            Err(e) => {
                let e = sealing::documents::redact(&e.to_string());
                return Some(failed(
                    path,
                    format!("{}: not a valid SealedSecret: {e}", object.place),
                ));
            }
        };
        if parsed.spec.data.is_some() {
            return Some(failed(
                path,
                format!(
                    "{}: uses the deprecated spec.data; re-encrypt it on its own (kubeseal --re-encrypt < file)",
                    object.place
                ),
            ));
        }
        sealed.push(parsed);
    }
    Some(FileJob {
        path: path.to_path_buf(),
        text,
        changes: vec![BTreeMap::new(); found.len()],
        found,
        sealed,
        failure: None,
    })
}

fn failed(path: &Path, reason: String) -> FileJob {
    FileJob {
        path: path.to_path_buf(),
        text: Default::default(),
        found: Vec::new(),
        sealed: Vec::new(),
        changes: Vec::new(),
        failure: Some(reason),
    }
}

/// Progress on a terminal (a bar), or nothing: the per-file lines say enough in a log.
fn progress(objects: usize) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(objects as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} re-encrypting [{bar:30}] {pos}/{len} objects, {eta} left",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Offline: the key backup's keys and the key to seal to (--cert, else the backup's newest).
struct OfflineKeys {
    private: Vec<PrivateKey>,
    target: PublicKey,
}

fn offline_keys(args: &Args) -> Result<OfflineKeys> {
    let pairs = crate::key_sources::recovery_key_pairs(args)?;
    let target = match args.cert.first() {
        Some(_) => crate::key_sources::sealing_key(args)?,
        None => pairs
            .iter()
            .filter_map(|pair| pair.certificate.as_ref())
            .max_by_key(|certificate| certificate.not_before())
            .map(|certificate| certificate.public_key().clone())
            .ok_or_else(|| {
                anyhow!(
                    "no certificate among the --recovery-private-key keys tells which is newest: give the key to seal to with --cert"
                )
            })?,
    };
    // The target first: values already sealed to it open on the first try.
    let mut private: Vec<PrivateKey> = pairs.into_iter().map(|pair| pair.private).collect();
    private.sort_by_key(|key| key.public_key() != &target);
    Ok(OfflineKeys { private, target })
}

/// New values for one object, sealing only values not already sealed to the target key.
fn reseal_offline(
    sealed: &crds::SealedSecret,
    keys: &OfflineKeys,
) -> Result<(BTreeMap<String, String>, usize)> {
    let scope = sealed_scope(sealed);
    let label = scope.label(
        sealed.metadata.namespace.as_deref().unwrap_or(""),
        sealed.metadata.name.as_deref().unwrap_or(""),
    );
    let engine = base64::engine::general_purpose::STANDARD;
    let mut changes = BTreeMap::new();
    let mut current = 0;
    for (key, value) in &sealed.spec.encrypted_data {
        let bytes = engine
            .decode(value)
            .map_err(|_| anyhow!("key {key:?}: the value is not valid base64"))?;
        let opened = sealing::open_value(&keys.private, &label, &bytes)
            .map_err(|e| anyhow!("key {key:?}: {e}"))?;
        if keys.private[opened.key_index].public_key() == &keys.target {
            current += 1;
            continue;
        }
        let resealed = sealing::seal_value(&keys.target, &label, &opened.plaintext)
            .map_err(|e| anyhow!("key {key:?}: {e}"))?;
        changes.insert(key.clone(), engine.encode(resealed));
    }
    Ok((changes, current))
}

fn run_offline(
    jobs: &mut [FileJob],
    bar: &indicatif::ProgressBar,
    summary: &mut Summary,
    args: &Args,
) -> Result<()> {
    let keys = offline_keys(args)?;
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut work: Vec<&mut FileJob> = jobs.iter_mut().filter(|j| j.failure.is_none()).collect();
    // Files are shared out among threads whole: a file's objects stay together.
    let chunk = work.len().div_ceil(workers).max(1);
    let currents: Vec<usize> = std::thread::scope(|scope| {
        let handles: Vec<_> = work
            .chunks_mut(chunk)
            .map(|chunk| {
                let keys = &keys;
                scope.spawn(move || {
                    let mut current = 0;
                    for job in chunk.iter_mut() {
                        for index in 0..job.sealed.len() {
                            match reseal_offline(&job.sealed[index], keys) {
                                Ok((changes, skipped)) => {
                                    job.changes[index] = changes;
                                    current += skipped;
                                }
                                Err(e) => {
                                    job.failure =
                                        Some(format!("{}: {e:#}", job.found[index].place));
                                    break;
                                }
                            }
                            bar.inc(1);
                        }
                    }
                    current
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).collect()
    });
    summary.current += currents.iter().sum::<usize>();
    Ok(())
}

/// Values per `/v1/rotate` batch: the controller spends at most 128 RSA operations on one
/// request, and a value sealed to an older key costs one more for each newer key tried first.
const BATCH_VALUES: usize = 64;

/// An object's place: (file, object in that file).
type Place = (usize, usize);

/// What the controller made of one request, once it stopped asking us to wait.
enum Rotated {
    Answer(Vec<u8>),
    Refused(http::StatusCode, String),
}

async fn rotate_with_retries(controller: &Controller, body: Vec<u8>) -> Result<Rotated> {
    for _ in 0..MAX_ATTEMPTS {
        match controller.rotate_once(body.clone()).await? {
            RotateOutcome::Done(answer) => return Ok(Rotated::Answer(answer)),
            // The controller's rate limit refills a token every 1/rate seconds (0.5 s by default).
            RotateOutcome::SlowDown => tokio::time::sleep(Duration::from_millis(500)).await,
            RotateOutcome::Busy(wait) => tokio::time::sleep(wait).await,
            RotateOutcome::Refused(status, reason) => return Ok(Rotated::Refused(status, reason)),
        }
    }
    bail!("the controller kept refusing (rate limit or busy) after {MAX_ATTEMPTS} attempts")
}

/// The objects with sealed values, in file order, packed into batches of at most
/// [`BATCH_VALUES`] values (an object with more travels alone).
fn batches(jobs: &[FileJob]) -> Vec<Vec<Place>> {
    let mut batches: Vec<Vec<Place>> = Vec::new();
    let mut values = 0;
    for (file, job) in jobs.iter().enumerate() {
        if job.failure.is_some() {
            continue;
        }
        for (object, sealed) in job.sealed.iter().enumerate() {
            let count = sealed.spec.encrypted_data.len();
            if count == 0 {
                continue;
            }
            match batches.last_mut() {
                Some(batch) if values + count <= BATCH_VALUES => batch.push((file, object)),
                _ => {
                    batches.push(vec![(file, object)]);
                    values = 0;
                }
            }
            values += count;
        }
    }
    batches
}

/// Takes the controller's re-encryption of one object, or marks its file failed.
fn accept(job: &mut FileJob, index: usize, answer: crds::SealedSecret) {
    let sealed = &job.sealed[index];
    let mut changes = answer.spec.encrypted_data;
    changes.retain(|key, _| sealed.spec.encrypted_data.contains_key(key));
    if changes.len() == sealed.spec.encrypted_data.len() {
        job.changes[index] = changes;
    } else {
        job.failure = Some(format!(
            "{}: the controller's answer lacks some keys",
            job.found[index].place
        ));
    }
}

async fn rotate_alone(controller: &Controller, job: &mut FileJob, index: usize) -> Result<()> {
    let body = serde_json::to_vec(&job.sealed[index])?;
    let answer = match rotate_with_retries(controller, body).await? {
        Rotated::Answer(answer) => serde_json::from_slice::<crds::SealedSecret>(&answer)
            .map_err(|_| "the controller's answer is not a SealedSecret".to_string()),
        Rotated::Refused(status, reason) => Err(format!(
            "the controller could not re-encrypt the SealedSecret: HTTP {status}: {reason}"
        )),
    };
    match answer {
        Ok(answer) => accept(job, index, answer),
        Err(reason) => job.failure = Some(format!("{}: {reason}", job.found[index].place)),
    }
    Ok(())
}

/// The items of a `List` answer, when it has exactly `expected` SealedSecrets.
fn list_items(answer: &[u8], expected: usize) -> Option<Vec<crds::SealedSecret>> {
    #[derive(serde::Deserialize)]
    struct List {
        kind: String,
        items: Vec<crds::SealedSecret>,
    }
    let list: List = serde_json::from_slice(answer).ok()?;
    (list.kind == "List" && list.items.len() == expected).then_some(list.items)
}

/// Sends the objects in batches (a `List` per request, our controller's extension of
/// `/v1/rotate`), and one by one to a controller that takes only one (Bitnami's), to pin down
/// the object a batch was refused for, and when a batch holds one object.
fn run_controller(jobs: &mut [FileJob], bar: &indicatif::ProgressBar, args: &Args) -> Result<()> {
    let mut queue: std::collections::VecDeque<Vec<Place>> = batches(jobs).into();
    let with_values: usize = queue.iter().map(Vec::len).sum();
    let all: usize = jobs.iter().map(|j| j.sealed.len()).sum();
    bar.inc((all - with_values) as u64);
    block_on(async {
        let controller = Controller::connect(args).await?;
        let mut batching = true;
        while let Some(batch) = queue.pop_front() {
            let batch: Vec<Place> = batch
                .into_iter()
                .filter(|&(file, _)| jobs[file].failure.is_none())
                .collect();
            if batch.len() < 2 || !batching {
                for (file, object) in batch {
                    rotate_alone(&controller, &mut jobs[file], object).await?;
                    bar.inc(1);
                }
                continue;
            }
            let items: Vec<&crds::SealedSecret> = batch
                .iter()
                .map(|&(file, object)| &jobs[file].sealed[object])
                .collect();
            let body = serde_json::to_vec(
                &serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}),
            )?;
            match rotate_with_retries(&controller, body).await? {
                Rotated::Answer(answer) => match list_items(&answer, batch.len()) {
                    Some(answers) => {
                        for (&(file, object), answer) in batch.iter().zip(answers) {
                            accept(&mut jobs[file], object, answer);
                            bar.inc(1);
                        }
                    }
                    None => {
                        batching = false;
                        queue.push_front(batch);
                    }
                },
                Rotated::Refused(http::StatusCode::PAYLOAD_TOO_LARGE, _) => {
                    let (first, second) = batch.split_at(batch.len() / 2);
                    queue.push_front(second.to_vec());
                    queue.push_front(first.to_vec());
                }
                Rotated::Refused(http::StatusCode::CONFLICT, _) => {
                    for place in batch.into_iter().rev() {
                        queue.push_front(vec![place]);
                    }
                }
                Rotated::Refused(..) => {
                    batching = false;
                    queue.push_front(batch);
                }
            }
        }
        Ok::<_, anyhow::Error>(())
    })?
}

/// Rewrites (or, with --dry-run, lists) every file; failures are collected, not fatal.
fn finish(jobs: Vec<FileJob>, dry_run: bool, summary: &mut Summary, bar: &indicatif::ProgressBar) {
    for job in jobs {
        let path = job.path.display().to_string();
        if let Some(reason) = job.failure {
            summary.failures.push(format!("{path}: {reason}"));
            continue;
        }
        let values: usize = job.changes.iter().map(BTreeMap::len).sum();
        summary.objects += job.found.len();
        if values == 0 {
            continue;
        }
        let rewritten = match rewrite::apply(&job.text, &job.found, &job.changes) {
            Ok(text) => text,
            Err(e) => {
                summary.failures.push(format!("{path}: {e}"));
                continue;
            }
        };
        let line = format!(
            "{path}: {} object(s), {values} value(s) {}",
            job.found.len(),
            if dry_run {
                "would be re-encrypted"
            } else {
                "re-encrypted"
            }
        );
        if !dry_run && let Err(e) = write_atomically(&job.path, rewritten.as_bytes()) {
            summary.failures.push(format!("{path}: {e:#}"));
            continue;
        }
        bar.suspend(|| eprintln!("{line}"));
        summary.files_changed += 1;
        summary.values += values;
    }
}

pub fn re_encrypt_paths(args: &Args) -> Result<()> {
    let offline = !args.recovery_private_key.is_empty();
    let files = collect_files(args)?;
    let mut summary = Summary {
        files_scanned: files.len(),
        ..Default::default()
    };
    let mut jobs: Vec<FileJob> = files.iter().filter_map(|path| load(path)).collect();
    let objects: usize = jobs.iter().map(|j| j.sealed.len()).sum();
    let bar = progress(objects);
    if objects > 0 {
        if offline {
            run_offline(&mut jobs, &bar, &mut summary, args)?;
        } else {
            run_controller(&mut jobs, &bar, args)?;
        }
    }
    bar.finish_and_clear();
    finish(jobs, args.dry_run, &mut summary, &bar);
    for failure in &summary.failures {
        eprintln!("error: {failure}");
    }
    eprintln!(
        "{} file(s) scanned, {} {}; {} SealedSecret(s), {} value(s) re-encrypted, {} already sealed to the newest key (skipped){}; {} file(s) failed (left untouched)",
        summary.files_scanned,
        summary.files_changed,
        if args.dry_run {
            "would change"
        } else {
            "rewritten"
        },
        summary.objects,
        summary.values,
        summary.current,
        if offline { "" } else { " (only known offline)" },
        summary.failures.len()
    );
    if !summary.failures.is_empty() {
        bail!(
            "{} file(s) could not be re-encrypted",
            summary.failures.len()
        );
    }
    Ok(())
}
