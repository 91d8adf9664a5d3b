//! `--soak MINUTES`: after the first start, the same controller runs on for MINUTES with every
//! ExternalSecret refreshing each `--refresh` (1m by default here). Along the way: one target of
//! each kind is edited by hand at a third of the time (it must come back), the controller renews
//! its sealing key at half time (`--key-renew-period`, passed by the bench), and the API server
//! is restarted at two thirds. Samples RSS, CPU and API requests every 30 s and checks every
//! target Secret every 5 minutes; fails on the first wrong Secret or if the controller exits.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use e2e_tests::envtest::{Cluster, Controller};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, PostParams};

use crate::proxy::Proxy;
use crate::{Options, SYSTEM_NS, cpu_seconds, memory, namespace_of, verify};

const SAMPLE_EVERY: Duration = Duration::from_secs(30);
const VERIFY_EVERY: Duration = Duration::from_secs(300);
/// How long a hand edit may stay before the check counts it as lost.
const RESTORE_WITHIN: Duration = Duration::from_secs(90);

enum Edits {
    NotYet,
    Made(Instant),
    Restored,
}

pub struct Sample {
    at: Duration,
    rss_kib: u64,
    anon_kib: u64,
    cpu: f64,
    requests: u64,
    /// Of `requests`, lists: a new leadership term or a watch that resumes should add none.
    lists: u64,
    note: String,
}

/// The `--key-renew-period` that puts the controller's own key renewal at half time.
pub fn key_renew_flag(minutes: u64) -> String {
    format!("--key-renew-period={}s", minutes * 60 / 2)
}

pub async fn soak(
    minutes: u64,
    cluster: &Cluster,
    client: &kube::Client,
    controller: &mut Controller,
    proxy: &Proxy,
    options: &Options,
) -> Result<Vec<Sample>> {
    let total = Duration::from_secs(minutes * 60);
    let started = Instant::now();
    let pid = controller.pid();
    let keys_before = key_secrets(client).await?;
    let mut samples = Vec::new();
    let mut last_cpu = cpu_seconds(pid)?;
    let (mut edits, mut restarted, mut last_verify) = (Edits::NotYet, false, Instant::now());
    let mut note = String::new();
    proxy.take();
    while started.elapsed() < total {
        tokio::time::sleep(SAMPLE_EVERY).await;
        controller.assert_running();
        let at = started.elapsed();
        if matches!(edits, Edits::NotYet) && at >= total / 3 {
            edit_by_hand(client, options).await?;
            edits = Edits::Made(Instant::now());
            note.push_str("hand edits; ");
        }
        if !restarted && at >= total * 2 / 3 {
            let took = restart_api_server(&cluster.dir, client).await?;
            restarted = true;
            note.push_str(&format!(
                "API server restarted ({:.1} s down); ",
                took.as_secs_f64()
            ));
        }
        if let Edits::Made(when) = edits
            && when.elapsed() >= RESTORE_WITHIN
        {
            verify(client, options)
                .await
                .context("hand edits restored")?;
            edits = Edits::Restored;
            note.push_str("edits restored; ");
        }
        // Not while a hand edit may still be pending (its own check above comes first).
        if last_verify.elapsed() >= VERIFY_EVERY && !matches!(edits, Edits::Made(_)) {
            verify(client, options).await?;
            last_verify = Instant::now();
            note.push_str("all targets correct; ");
        }
        let memory = memory(pid)?;
        let cpu = cpu_seconds(pid)?;
        let requests = proxy.take();
        samples.push(Sample {
            at,
            rss_kib: memory.rss,
            anon_kib: memory.anon,
            cpu: cpu - last_cpu,
            requests: requests.values().sum(),
            lists: requests
                .iter()
                .filter(|((verb, _), _)| verb == "list")
                .map(|(_, count)| count)
                .sum(),
            note: std::mem::take(&mut note),
        });
        last_cpu = cpu;
    }
    controller.assert_running();
    verify(client, options).await?;
    let keys_after = key_secrets(client).await?;
    if keys_after <= keys_before {
        bail!(
            "no key renewal during the soak: {keys_before} sealing key Secrets before, {keys_after} after"
        );
    }
    if let Some(last) = samples.last_mut() {
        last.note.push_str(&format!(
            "end: all targets correct, sealing keys {keys_before} -> {keys_after}, same controller process"
        ));
    }
    Ok(samples)
}

pub fn print_soak(samples: &[Sample], minutes: u64) {
    println!(
        "\nSoak: {minutes} min, RSS and CPU sampled every {} s\n",
        SAMPLE_EVERY.as_secs()
    );
    println!(
        "| minute | RSS | of it heap (RssAnon) | CPU in interval | API requests in interval | of them lists | events |"
    );
    println!("|---|---|---|---|---|---|---|");
    for s in samples {
        println!(
            "| {:.1} | {:.1} MiB | {:.1} MiB | {:.2} s | {} | {} | {} |",
            s.at.as_secs_f64() / 60.0,
            s.rss_kib as f64 / 1024.0,
            s.anon_kib as f64 / 1024.0,
            s.cpu,
            s.requests,
            s.lists,
            s.note.trim_end_matches("; ")
        );
    }
    let window = |from: f64, to: f64| {
        let picked: Vec<u64> = samples
            .iter()
            .filter(|s| {
                let m = s.at.as_secs_f64() / 60.0;
                m >= from && m < to
            })
            .map(|s| s.rss_kib)
            .collect();
        (picked.iter().copied().max().unwrap_or(0) as f64) / 1024.0
    };
    let m = minutes as f64;
    println!(
        "\nRSS max in minutes 5-10: {:.1} MiB; in the last 5 minutes: {:.1} MiB",
        window(5.0, 10.0),
        window(m - 5.0, m + 1.0)
    );
}

async fn key_secrets(client: &kube::Client) -> Result<usize> {
    let keys = Api::<Secret>::namespaced(client.clone(), SYSTEM_NS)
        .list_metadata(
            &ListParams::default().labels("sealedsecrets.bitnami.com/sealed-secrets-key"),
        )
        .await?;
    Ok(keys.items.len())
}

/// Overwrites the value of the first SealedSecret's and the first ExternalSecret's target.
async fn edit_by_hand(client: &kube::Client, options: &Options) -> Result<()> {
    let ns = namespace_of(0, options);
    let api: Api<Secret> = Api::namespaced(client.clone(), &ns);
    for (name, key) in [("sealed-0", "key0"), ("external-0", "value")] {
        let mut secret = api.get(name).await?;
        secret
            .data
            .get_or_insert_with(Default::default)
            .insert(key.into(), ByteString(b"edited by hand".to_vec()));
        api.replace(name, &PostParams::default(), &secret).await?;
    }
    Ok(())
}

/// Stops the kube-apiserver of the cluster in `dir` and starts it again with the same command
/// line (same port, same certificates, same etcd); returns how long it was down.
async fn restart_api_server(dir: &Path, client: &kube::Client) -> Result<Duration> {
    let pid_file = dir.join("run/kube-apiserver.pid");
    let pid: u32 = std::fs::read_to_string(&pid_file)?.trim().parse()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))?;
    let argv: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| anyhow!("kube-apiserver {pid} has no command line"))?;
    let down = Instant::now();
    // As cluster.sh stops it: TERM, and KILL after 10 s (a graceful stop waits for watches).
    Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()?;
    let killed_at = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{pid}")).exists() {
        if Instant::now() > killed_at {
            Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status()?;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(dir.join("logs/kube-apiserver.log"))?;
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("start kube-apiserver again")?;
    // cluster.sh stops it by this file.
    std::fs::write(&pid_file, child.id().to_string())?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while client.apiserver_version().await.is_err() {
        if Instant::now() > deadline {
            bail!("kube-apiserver did not come back within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(down.elapsed())
}
