//! The fuzzing loop. A supervisor process restarts a worker process that mutates inputs and
//! runs the target on them:
//! - a panic is caught (`catch_unwind`), saved once per distinct message, and fuzzing goes on;
//! - a hang (one input running longer than the timeout) or a memory blow-up (resident memory
//!   over the limit) is noticed by a watchdog thread, which ends the worker with a known code;
//! - an abort (stack overflow, failed allocation) kills the worker.
//!
//! Before each run the worker writes the input to `<findings>/<target>/.current`, so the
//! supervisor can save whatever input ended the worker, then starts a new one for the rest of
//! the time budget. There is no coverage feedback (stable Rust has no sanitizer coverage);
//! inputs that produce a new outcome (a new error message shape) join the corpus instead.

use std::collections::HashSet;
use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::mutate::{Rng, mutate};

/// One fuzz target: a parser fed with hostile bytes.
#[derive(Clone, Copy)]
pub struct Target {
    pub name: &'static str,
    pub about: &'static str,
    /// Inputs to start from (project fixtures and `fuzz/seeds/<name>/`).
    pub seeds: fn() -> Vec<Vec<u8>>,
    /// Tokens of the input format, inserted by the mutator.
    pub dictionary: &'static [&'static str],
    pub max_len: usize,
    /// Stack the target runs on: what the code gets in production (tokio workers: 2 MiB).
    pub stack_bytes: usize,
    /// Runs the parser; returns the shape of its outcome (inputs with a new shape are kept).
    pub run: fn(&[u8]) -> String,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub seconds: u64,
    pub timeout: Duration,
    pub rss_limit_mb: u64,
    pub rng_seed: u64,
    pub findings: PathBuf,
    /// Stop after this many hangs, aborts or memory blow-ups (each restarts the worker).
    pub max_fatal: usize,
}

/// Worker exit codes the supervisor understands.
const EXIT_HANG: i32 = 70;
const EXIT_MEMORY: i32 = 71;
const CORPUS_LIMIT: usize = 4096;

#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub execs: u64,
    pub corpus: usize,
    pub panics: usize,
    pub slowest_ms: u64,
}

impl Stats {
    fn line(&self) -> String {
        format!(
            "STATS execs={} corpus={} panics={} slowest_ms={}",
            self.execs, self.corpus, self.panics, self.slowest_ms
        )
    }

    fn parse(line: &str) -> Option<Stats> {
        let mut s = Stats::default();
        for field in line.strip_prefix("STATS ")?.split(' ') {
            let (k, v) = field.split_once('=')?;
            match k {
                "execs" => s.execs = v.parse().ok()?,
                "corpus" => s.corpus = v.parse().ok()?,
                "panics" => s.panics = v.parse().ok()?,
                "slowest_ms" => s.slowest_ms = v.parse().ok()?,
                _ => {}
            }
        }
        Some(s)
    }
}

/// What a whole campaign found.
#[derive(Debug, Default)]
pub struct Summary {
    pub seconds: f64,
    pub execs: u64,
    pub corpus: usize,
    pub slowest_ms: u64,
    pub panics: usize,
    /// (kind, saved file) of hangs, memory blow-ups and aborts.
    pub fatal: Vec<(String, PathBuf)>,
}

fn target_dir(opts: &Options, target: &Target) -> PathBuf {
    opts.findings.join(target.name)
}

/// Runs the campaign: workers in child processes until the time budget is spent.
pub fn supervise(target: &Target, opts: &Options) -> anyhow::Result<Summary> {
    let dir = target_dir(opts, target);
    std::fs::create_dir_all(&dir)?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(opts.seconds);
    let mut summary = Summary::default();
    let mut rng_seed = opts.rng_seed;
    while let Some(left) = deadline
        .checked_duration_since(Instant::now())
        .filter(|d| d.as_secs() >= 1)
    {
        let mut child = Command::new(std::env::current_exe()?)
            .arg(target.name)
            .arg("--worker")
            .args(["--seconds", &left.as_secs().to_string()])
            .args(["--timeout-ms", &opts.timeout.as_millis().to_string()])
            .args(["--rss-limit-mb", &opts.rss_limit_mb.to_string()])
            .args(["--rng-seed", &rng_seed.to_string()])
            .arg("--findings")
            .arg(&opts.findings)
            .stdout(Stdio::piped())
            .spawn()?;
        let mut last = Stats::default();
        if let Some(out) = child.stdout.take() {
            for line in BufReader::new(out).lines() {
                let line = line?;
                match Stats::parse(&line) {
                    Some(s) => last = s,
                    None => println!("{line}"),
                }
            }
        }
        let status = child.wait()?;
        summary.execs += last.execs;
        summary.corpus = summary.corpus.max(last.corpus);
        summary.panics += last.panics;
        summary.slowest_ms = summary.slowest_ms.max(last.slowest_ms);
        let kind = match status.code() {
            Some(0) => break,
            Some(EXIT_HANG) => "hang",
            Some(EXIT_MEMORY) => "memory",
            _ => "abort",
        };
        let input = read_current(&dir)?;
        let path = save_finding(&dir, kind, &input)?;
        println!(
            "[{}] {kind} ({status}); input saved to {}",
            target.name,
            path.display()
        );
        summary.fatal.push((kind.to_string(), path));
        if summary.fatal.len() >= opts.max_fatal {
            println!(
                "[{}] stopping: {} fatal findings",
                target.name, opts.max_fatal
            );
            break;
        }
        rng_seed = rng_seed.wrapping_add(0x9E37_79B9);
    }
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

fn read_current(dir: &Path) -> std::io::Result<Vec<u8>> {
    let raw = std::fs::read(dir.join(".current"))?;
    let Some((len, rest)) = raw.split_first_chunk::<8>() else {
        return Ok(Vec::new());
    };
    let len = usize::try_from(u64::from_le_bytes(*len)).unwrap_or(usize::MAX);
    Ok(rest[..len.min(rest.len())].to_vec())
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn save_finding(dir: &Path, kind: &str, input: &[u8]) -> std::io::Result<PathBuf> {
    let path = dir.join(format!("{kind}-{:016x}", fnv(input)));
    std::fs::write(&path, input)?;
    Ok(path)
}

static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Records panic messages instead of printing each one: the worker reports distinct ones.
fn install_quiet_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic".into());
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(format!("{message} at {location}"));
    }));
}

/// Runs the target once on `input`: the outcome shape, or the panic message.
fn run_catching(target: &Target, input: &[u8]) -> Result<String, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (target.run)(input))).map_err(|_| {
        LAST_PANIC
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_else(|| "panic".into())
    })
}

/// Runs `work` on a thread with the target's stack size.
fn on_target_stack<T: Send + 'static>(
    target: &Target,
    work: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<T> {
    std::thread::Builder::new()
        .name(format!("fuzz-{}", target.name))
        .stack_size(target.stack_bytes)
        .spawn(work)?
        .join()
        .map_err(|_| anyhow::anyhow!("the fuzzing thread panicked outside a target run"))
}

fn resident_mb() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096 / (1024 * 1024))
}

/// Ends the process when one input runs too long or memory grows past the limit.
fn start_watchdog(epoch: Instant, running_since_ms: Arc<AtomicU64>, opts: &Options) {
    let timeout_ms = u64::try_from(opts.timeout.as_millis()).unwrap_or(u64::MAX);
    let rss_limit_mb = opts.rss_limit_mb;
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(10));
            let since = running_since_ms.load(Ordering::SeqCst);
            let now = u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
            if since != 0
                && now.saturating_sub(since) > timeout_ms
                && running_since_ms.load(Ordering::SeqCst) == since
            {
                eprintln!("one input ran longer than {timeout_ms} ms");
                std::process::exit(EXIT_HANG);
            }
            if resident_mb().is_some_and(|mb| mb > rss_limit_mb) {
                eprintln!("resident memory passed {rss_limit_mb} MiB");
                std::process::exit(EXIT_MEMORY);
            }
        }
    });
}

/// The worker: seeds first, then mutated inputs until the budget is spent. Prints `STATS`
/// lines for the supervisor.
pub fn work(target: &'static Target, opts: &Options) -> anyhow::Result<()> {
    let dir = target_dir(opts, target);
    std::fs::create_dir_all(&dir)?;
    let current = std::fs::File::create(dir.join(".current"))?;
    install_quiet_panic_hook();
    let epoch = Instant::now();
    let running_since_ms = Arc::new(AtomicU64::new(0));
    start_watchdog(epoch, running_since_ms.clone(), opts);
    let opts = opts.clone();
    on_target_stack(target, move || -> anyhow::Result<()> {
        let deadline = epoch + Duration::from_secs(opts.seconds);
        let mut rng = Rng::new(opts.rng_seed);
        let mut corpus = (target.seeds)();
        if corpus.is_empty() {
            corpus.push(Vec::new());
        }
        let mut shapes = HashSet::new();
        let mut panics_seen = HashSet::new();
        let mut stats = Stats::default();
        let mut last_report = Instant::now();
        let mut header = Vec::new();
        let seeds = corpus.len();
        let mut next = 0usize;
        while Instant::now() < deadline {
            let is_seed = next < seeds;
            let input = if is_seed {
                next += 1;
                corpus[next - 1].clone()
            } else {
                let base = &corpus[rng.below(corpus.len())];
                let other = &corpus[rng.below(corpus.len())];
                mutate(&mut rng, base, other, target.dictionary, target.max_len)
            };
            header.clear();
            header.extend_from_slice(&(input.len() as u64).to_le_bytes());
            header.extend_from_slice(&input);
            current.write_at(&header, 0)?;
            let started = Instant::now();
            running_since_ms.store(
                u64::try_from(epoch.elapsed().as_millis())
                    .unwrap_or(u64::MAX)
                    .max(1),
                Ordering::SeqCst,
            );
            let outcome = run_catching(target, &input);
            running_since_ms.store(0, Ordering::SeqCst);
            let took = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            stats.slowest_ms = stats.slowest_ms.max(took);
            stats.execs += 1;
            let shape = match outcome {
                Ok(shape) => shape,
                Err(message) => {
                    // Messages that differ only in positions or lengths are one finding.
                    let folded: String = message
                        .chars()
                        .map(|c| if c.is_ascii_digit() { '#' } else { c })
                        .collect();
                    if panics_seen.insert(folded) {
                        let path = save_finding(&dir, "panic", &input)?;
                        std::fs::write(path.with_extension("txt"), &message)?;
                        println!(
                            "[{}] panic: {message}; input {}",
                            target.name,
                            path.display()
                        );
                        stats.panics += 1;
                    }
                    format!("panic {message}")
                }
            };
            if shapes.insert(shape) && !is_seed && corpus.len() < CORPUS_LIMIT {
                corpus.push(input);
            }
            if last_report.elapsed() >= Duration::from_secs(1) {
                stats.corpus = corpus.len();
                println!("{}", stats.line());
                std::io::stdout().flush()?;
                last_report = Instant::now();
            }
        }
        stats.corpus = corpus.len();
        println!("{}", stats.line());
        Ok(())
    })?
}

/// Runs the seeds and `mutations` mutated inputs in this process; the first panic is an error.
/// For the test suite: checks cheaply that every target still builds, loads its seeds and runs.
pub fn smoke(target: &'static Target, mutations: usize, rng_seed: u64) -> Result<usize, String> {
    on_target_stack(target, move || {
        let corpus = (target.seeds)();
        let mut rng = Rng::new(rng_seed);
        let mut runs = 0;
        let mut check = |input: &[u8]| {
            runs += 1;
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (target.run)(input)))
                .map(|_| ())
                .map_err(|_| {
                    format!(
                        "{} panicked on input {:?}",
                        target.name,
                        String::from_utf8_lossy(input)
                    )
                })
        };
        for seed in &corpus {
            check(seed)?;
        }
        for _ in 0..mutations {
            let base = corpus
                .get(rng.below(corpus.len()))
                .cloned()
                .unwrap_or_default();
            let other = corpus
                .get(rng.below(corpus.len()))
                .cloned()
                .unwrap_or_default();
            let input = mutate(&mut rng, &base, &other, target.dictionary, target.max_len);
            check(&input)?;
        }
        Ok(runs)
    })
    .map_err(|e| e.to_string())?
}

/// Runs the target once on a saved input and tells what happened (to reproduce a finding).
pub fn replay(target: &'static Target, input: Vec<u8>) -> anyhow::Result<String> {
    install_quiet_panic_hook();
    on_target_stack(target, move || {
        let started = Instant::now();
        let outcome = run_catching(target, &input);
        let took = started.elapsed();
        match outcome {
            Ok(shape) => format!("ok in {took:?}: {shape}"),
            Err(message) => format!("PANIC in {took:?}: {message}"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_lines_round_trip() {
        let s = Stats {
            execs: 12,
            corpus: 3,
            panics: 1,
            slowest_ms: 40,
        };
        let back = Stats::parse(&s.line()).expect("parses");
        assert_eq!(
            (back.execs, back.corpus, back.panics, back.slowest_ms),
            (12, 3, 1, 40)
        );
        assert!(Stats::parse("[x] panic: boom").is_none());
    }
}
