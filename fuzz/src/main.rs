//! `cargo run -p fuzz --release -- TARGET --seconds 600`: fuzz one target (or `all`, one after
//! the other) for a time budget; findings land in `fuzz/findings/TARGET/`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;
use fuzz::engine::{self, Options};
use fuzz::targets::{TARGETS, find};

#[derive(Parser, Debug)]
#[command(
    about = "Fuzz the parsers that read tenant input (stable Rust, no coverage feedback)",
    after_help = "Targets: sealed-value, sealed-secret, v1-body, template, duration, sops-yaml, sops-json, sops-ini, sops-dotenv; `all` runs each in turn for --seconds; `list` describes them.\nA panic is saved and fuzzing goes on; a hang, memory blow-up or abort is saved and the worker restarts."
)]
struct Cli {
    /// Target name, `all` or `list`.
    target: String,
    /// Time budget (per target with `all`).
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// One input running longer than this is a hang.
    #[arg(long, default_value_t = 2000)]
    timeout_ms: u64,
    /// Resident memory above this is a memory blow-up.
    #[arg(long, default_value_t = 1024)]
    rss_limit_mb: u64,
    /// Seed of the mutation RNG (a run is reproducible for a given seed, timing aside).
    #[arg(long, default_value_t = 1)]
    rng_seed: u64,
    /// Where findings are saved (one directory per target).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/findings"))]
    findings: PathBuf,
    /// Stop after this many hangs, memory blow-ups or aborts.
    #[arg(long, default_value_t = 5)]
    max_fatal: usize,
    /// Run the target once on this saved input and print what happened.
    #[arg(long)]
    replay: Option<PathBuf>,
    /// Internal: the child process that does the fuzzing.
    #[arg(long, hide = true)]
    worker: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let opts = Options {
        seconds: cli.seconds,
        timeout: Duration::from_millis(cli.timeout_ms),
        rss_limit_mb: cli.rss_limit_mb,
        rng_seed: cli.rng_seed,
        findings: cli.findings.clone(),
        max_fatal: cli.max_fatal.max(1),
    };
    if cli.target == "list" {
        for t in TARGETS {
            println!("{:<14} {}", t.name, t.about);
        }
        return Ok(());
    }
    let chosen: Vec<_> = if cli.target == "all" {
        TARGETS.iter().collect()
    } else {
        match find(&cli.target) {
            Some(t) => vec![t],
            None => bail!("unknown target {:?}; `list` shows them", cli.target),
        }
    };
    if let Some(path) = &cli.replay {
        let input =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        for t in chosen {
            println!("{}: {}", t.name, engine::replay(t, input.clone())?);
        }
        return Ok(());
    }
    if cli.worker {
        return engine::work(chosen[0], &opts);
    }
    let mut failed = false;
    for t in chosen {
        println!("[{}] fuzzing for {} s", t.name, cli.seconds);
        let s = engine::supervise(t, &opts)?;
        println!(
            "[{}] {:.0} s, {} executions ({:.0}/s), corpus {}, slowest input {} ms, {} distinct panics, {} hangs/memory/aborts",
            t.name,
            s.seconds,
            s.execs,
            s.execs as f64 / s.seconds.max(1e-9),
            s.corpus,
            s.slowest_ms,
            s.panics,
            s.fatal.len()
        );
        failed |= s.panics > 0 || !s.fatal.is_empty();
    }
    if failed {
        bail!("findings saved under {}", cli.findings.display());
    }
    Ok(())
}
