//! Benchmark (issue item 6): render an application of N SOPS+age files with M values each in
//! one `generate`, against the Go `age` CLI unwrapping the same N data keys one process per
//! file; and the per-value decrypt cost against raw AES-GCM throughput on this machine.
//!
//! Run: `cargo run --release -p sops-plugin --bin sops-plugin-bench -- [--files 200] [--values 20]`

use std::process::Command;
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use age::secrecy::ExposeSecret;
use anyhow::{Context, Result, bail};
use sops_plugin::generate::{Options, render_dir};
use sops_plugin::{EncryptOptions, Format, Keyring, Value, cipher};

fn arg(name: &str, default: usize) -> Result<usize> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        Some(i) => Ok(args.get(i + 1).context("missing value")?.parse()?),
        None => Ok(default),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() -> Result<()> {
    let files = arg("--files", 200)?;
    let values = arg("--values", 20)?;
    let dir = tempfile::tempdir()?;
    let app = dir.path().join("app");
    std::fs::create_dir_all(&app)?;

    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let key_file = dir.path().join("keys.txt");
    std::fs::write(
        &key_file,
        format!("{}\n", identity.to_string().expose_secret()),
    )?;
    let mut keys = Keyring::new();
    keys.add_text(&std::fs::read_to_string(&key_file)?, "bench")?;

    let opts = EncryptOptions {
        key_groups: vec![vec![recipient]],
        encrypted_regex: Some("^(data|stringData)$".into()),
        ..Default::default()
    };
    let t = Instant::now();
    let mut stanzas = vec![];
    for f in 0..files {
        let mut y =
            format!("apiVersion: v1\nkind: Secret\nmetadata:\n    name: s{f}\nstringData:\n");
        for v in 0..values {
            y.push_str(&format!("    key{v}: value-{f}-{v}-0123456789abcdef\n"));
        }
        let enc = sops_plugin::encrypt(Format::Yaml, Format::Yaml, y.as_bytes(), &opts)?;
        let (_, meta) = sops_plugin::stores::load_encrypted(Format::Yaml, &enc)?;
        let md = sops_plugin::Metadata::from_value(&meta)?;
        stanzas.push(md.key_groups[0].age[0].enc.clone());
        std::fs::write(app.join(format!("s{f:04}.enc.yaml")), enc)?;
    }
    println!(
        "prepared {files} files x {values} values in {:.0} ms",
        ms(t.elapsed())
    );

    // 1. One generate over the whole application (in process: parse, unwrap, decrypt, MAC, emit).
    let t = Instant::now();
    let out = render_dir(&app, &keys, &Options::default())?;
    let render = t.elapsed();
    let docs = out.windows(4).filter(|w| w == b"---\n").count();
    if docs != files {
        bail!("rendered {docs} documents, expected {files}");
    }
    println!(
        "sops-plugin generate: {:.1} ms for {files} files ({:.3} ms/file)",
        ms(render),
        ms(render) / files as f64
    );

    // 2. The Go age CLI unwrapping each data key in its own process, as sops-per-file tools do.
    let stanza_dir = dir.path().join("stanzas");
    std::fs::create_dir_all(&stanza_dir)?;
    for (i, s) in stanzas.iter().enumerate() {
        std::fs::write(stanza_dir.join(format!("{i}.age")), s)?;
    }
    match Command::new("age").arg("--version").output() {
        Ok(_) => {
            let t = Instant::now();
            for i in 0..files {
                let out = Command::new("age")
                    .arg("-d")
                    .arg("-i")
                    .arg(&key_file)
                    .arg(stanza_dir.join(format!("{i}.age")))
                    .output()?;
                if !out.status.success() || out.stdout.len() != 32 {
                    bail!("age -d failed on stanza {i}");
                }
            }
            let age_t = t.elapsed();
            println!(
                "Go age CLI, one process per file, unwrap only: {:.1} ms ({:.3} ms/file)",
                ms(age_t),
                ms(age_t) / files as f64
            );
            println!(
                "ratio: full render is {:.1}x faster than just unwrapping the keys with age per file",
                age_t.as_secs_f64() / render.as_secs_f64()
            );
        }
        Err(_) => println!("Go age CLI not installed (Debian package age): skipped the comparison"),
    }

    // 3. Per-value decrypt cost vs raw AES-GCM throughput.
    let key = [7u8; 32];
    let n = files * values;
    let encs: Vec<String> = (0..n)
        .map(|i| {
            cipher::encrypt_value(
                &key,
                &Value::Str(format!("value-{i}-0123456789abcdef")),
                "stringData:key:",
                None,
            )
            .unwrap_or_default()
        })
        .collect();
    let t = Instant::now();
    let mut ok = 0usize;
    for e in &encs {
        if cipher::decrypt_value(&key, e, "stringData:key:").is_ok() {
            ok += 1;
        }
    }
    let per_value = t.elapsed().as_secs_f64() / n as f64;
    if ok != n {
        bail!("value decryption failed");
    }
    let raw = Aes256Gcm::new((&key).into());
    // 16 MiB for the full run; less for smoke runs (debug builds are slow).
    let buf = vec![0u8; (n * 4096).clamp(64 << 10, 16 << 20)];
    let nonce = Nonce::from_slice(&[0u8; 12]);
    let ct = raw
        .encrypt(
            nonce,
            Payload {
                msg: &buf,
                aad: b"",
            },
        )
        .map_err(|_| anyhow::anyhow!("aes-gcm failed"))?;
    let t = Instant::now();
    let pt = raw
        .decrypt(nonce, Payload { msg: &ct, aad: b"" })
        .map_err(|_| anyhow::anyhow!("aes-gcm failed"))?;
    let raw_t = t.elapsed().as_secs_f64();
    let mbps = pt.len() as f64 / raw_t / 1e6;
    let value_len = 32.0;
    let raw_per_value = value_len / (mbps * 1e6);
    println!(
        "per-value decrypt (parse ENC, base64, 32-byte-nonce GCM, type): {:.2} us; raw AES-256-GCM: {mbps:.0} MB/s = {:.3} us per {value_len:.0}-byte value ({:.0}x; fixed per-call cost dominates small values)",
        per_value * 1e6,
        raw_per_value * 1e6,
        per_value / raw_per_value
    );
    Ok(())
}
