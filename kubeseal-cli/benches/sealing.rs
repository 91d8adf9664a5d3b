//! Prints, in one run: per-value seal and unseal cost of our RSA-4096 against `openssl speed
//! rsa4096` on the same machine, and the whole-process time of `kubeseal` sealing a 5-key Secret
//! from a local certificate file. Run with `cargo bench -p kubeseal-cli`.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Mean time per call of `f`, repeated for at least `budget`.
fn per_call(budget: Duration, mut f: impl FnMut()) -> Duration {
    f(); // warm up
    let start = Instant::now();
    let mut calls = 0u32;
    while start.elapsed() < budget || calls < 10 {
        f();
        calls += 1;
    }
    start.elapsed() / calls
}

/// OpenSSL's RSA-4096 private (sign) and public (verify) operation times, in seconds.
fn openssl_rsa4096() -> Option<(f64, f64)> {
    let out = Command::new("openssl")
        .args(["speed", "-seconds", "3", "rsa4096"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let line = text.lines().find(|l| l.starts_with("rsa 4096 bits"))?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    let secs = |s: &str| s.trim_end_matches('s').parse::<f64>().ok();
    Some((secs(fields.get(3)?)?, secs(fields.get(4)?)?))
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let key = test_kit::sealed_secrets::private_key("key1");
    let public = key.public_key().clone();
    let label = b"default/bench";
    let value = vec![7u8; 64];
    let budget = Duration::from_secs(3);

    let seal = per_call(budget, || {
        sealing::seal_value(&public, label, &value).unwrap();
    });
    let sealed = sealing::seal_value(&public, label, &value).unwrap();
    let unseal = per_call(budget, || {
        sealing::open_value([&key], label, &sealed).unwrap();
    });

    let secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: bench, namespace: default}\nstringData: {a: '1', b: '2', c: '3', d: '4', e: '5'}\n";
    let cert = test_kit::sealed_secrets::path("keys/key1.crt");
    let mut runs = Vec::new();
    for _ in 0..31 {
        let start = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_kubeseal"))
            .arg("--cert")
            .arg(&cert)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), secret.as_bytes()).unwrap();
        assert!(child.wait().unwrap().success());
        runs.push(start.elapsed());
    }
    let whole = median(runs);

    println!("| measurement | ours | openssl speed rsa4096 | ours / openssl |");
    println!("|---|---|---|---|");
    let ms = |d: f64| format!("{:.3} ms", d * 1e3);
    match openssl_rsa4096() {
        Some((private_op, public_op)) => {
            println!(
                "| unseal one value (RSA-4096 OAEP decrypt + AES-GCM) | {} | {} (private op) | {:.2} |",
                ms(unseal.as_secs_f64()),
                ms(private_op),
                unseal.as_secs_f64() / private_op
            );
            println!(
                "| seal one value (RSA-4096 OAEP encrypt + AES-GCM) | {} | {} (public op) | {:.2} |",
                ms(seal.as_secs_f64()),
                ms(public_op),
                seal.as_secs_f64() / public_op
            );
        }
        None => {
            println!(
                "| unseal one value | {} | openssl not found | - |",
                ms(unseal.as_secs_f64())
            );
            println!(
                "| seal one value | {} | openssl not found | - |",
                ms(seal.as_secs_f64())
            );
        }
    }
    println!(
        "| kubeseal process, 5-key Secret, --cert file (median of 31) | {} | - | - |",
        ms(whole.as_secs_f64())
    );
}
