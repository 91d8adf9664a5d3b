//! `sops-plugin`: decrypt/encrypt SOPS files with age keys and render Argo CD applications.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use clap::{Parser, Subcommand};
use sops_plugin::{EncryptOptions, Format, Keyring, config, generate};
use zeroize::Zeroizing;

#[derive(Parser)]
#[command(
    name = "sops-plugin",
    version,
    about = "SOPS files encrypted for age: decrypt, encrypt and render for Argo CD"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone)]
struct Types {
    /// Input format (yaml, json, dotenv, ini, binary); default from the file extension.
    #[arg(long)]
    input_type: Option<String>,
    /// Output format; default: the input format.
    #[arg(long)]
    output_type: Option<String>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Decrypt a file to stdout (or --output).
    Decrypt {
        file: PathBuf,
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Do not verify the MAC (only for recovering damaged files).
        #[arg(long)]
        ignore_mac: bool,
        /// Print only the value at this path, e.g. '["stringData"]["password"]'.
        #[arg(long)]
        extract: Option<String>,
        #[command(flatten)]
        types: Types,
    },
    /// Encrypt a file with the recipients of the matching .sops.yaml creation rule (or --age).
    Encrypt {
        file: PathBuf,
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Overwrite the input file.
        #[arg(long, short)]
        in_place: bool,
        /// Comma-separated age recipients (instead of .sops.yaml); also SOPS_AGE_RECIPIENTS.
        #[arg(long, env = "SOPS_AGE_RECIPIENTS")]
        age: Option<String>,
        /// Path of .sops.yaml (default: searched upwards from the current directory).
        #[arg(long, env = "SOPS_CONFIG")]
        config: Option<PathBuf>,
        #[arg(long)]
        encrypted_regex: Option<String>,
        #[arg(long)]
        unencrypted_regex: Option<String>,
        #[arg(long)]
        encrypted_suffix: Option<String>,
        #[arg(long)]
        unencrypted_suffix: Option<String>,
        #[arg(long)]
        encrypted_comment_regex: Option<String>,
        #[arg(long)]
        unencrypted_comment_regex: Option<String>,
        #[arg(long)]
        mac_only_encrypted: bool,
        #[arg(long)]
        shamir_secret_sharing_threshold: Option<usize>,
        #[command(flatten)]
        types: Types,
    },
    /// Set one value: PATH is like '["a"]["b"]' or '["list"][0]', VALUE is JSON
    /// (or both in one argument: '["a"]["b"] "value"', as sops --set takes it).
    Set {
        file: PathBuf,
        path: String,
        value: Option<String>,
        #[command(flatten)]
        types: Types,
    },
    /// Remove one value at PATH.
    Unset {
        file: PathBuf,
        path: String,
        #[command(flatten)]
        types: Types,
    },
    /// Re-wrap the data key for the recipients of the current .sops.yaml rule.
    Updatekeys {
        file: PathBuf,
        #[arg(long, env = "SOPS_CONFIG")]
        config: Option<PathBuf>,
        #[command(flatten)]
        types: Types,
    },
    /// Re-encrypt the file with a new data key.
    Rotate {
        file: PathBuf,
        #[command(flatten)]
        types: Types,
    },
    /// KRM exec function (KSOPS-style `kind: ksops` generator): ResourceList on stdin, out on
    /// stdout. Also what runs when the binary is invoked as `ksops`.
    Krm,
    /// Argo CD CMP discover: print the first SOPS file below DIR (nothing if none).
    Discover {
        /// Application directory (default: current directory).
        dir: Option<PathBuf>,
    },
    /// Argo CD CMP generate: render the application directory to a YAML stream on stdout.
    Generate {
        /// Application directory (default: current directory).
        dir: Option<PathBuf>,
        /// Re-seal every rendered Secret as a SealedSecret for --cert (also SOPS_PLUGIN_SEAL=true).
        #[arg(long)]
        seal: bool,
        /// Sealing certificate (PEM, as `kubeseal --fetch-cert` prints); also SOPS_PLUGIN_SEAL_CERT.
        #[arg(long, env = "SOPS_PLUGIN_SEAL_CERT")]
        cert: Option<PathBuf>,
    },
}

fn fmt_of(name: &Option<String>, path: &Path) -> Result<Format> {
    match name {
        Some(n) => Format::from_name(n).ok_or_else(|| anyhow!("unknown format '{n}'")),
        None => Ok(Format::from_path(path)),
    }
}

fn env_var(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

fn keyring() -> Result<Keyring> {
    Ok(Keyring::discover(&env_var)?)
}

/// Keys for `generate`. With `SOPS_PLUGIN_KEYS_DIR` (set by the operator), each Argo CD project
/// gets only its own identities, `<dir>/<ARGOCD_APP_PROJECT_NAME>.txt`: the project name comes
/// from Argo CD itself, unlike `ARGOCD_ENV_*`, which application authors control.
fn generate_keyring() -> Result<Keyring> {
    let Some(dir) = env_var("SOPS_PLUGIN_KEYS_DIR").filter(|d| !d.is_empty()) else {
        return keyring();
    };
    let project = env_var("ARGOCD_APP_PROJECT_NAME").unwrap_or_default();
    let valid = !project.is_empty()
        && project.len() <= 253
        && project
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !project.starts_with('.');
    if !valid {
        return Err(anyhow!(
            "SOPS_PLUGIN_KEYS_DIR is set but ARGOCD_APP_PROJECT_NAME is missing or not a valid project name"
        ));
    }
    let file = Path::new(&dir).join(format!("{project}.txt"));
    if !file.is_file() {
        return Err(anyhow!(
            "no age key for project '{project}' ({} does not exist)",
            file.display()
        ));
    }
    let file = file.display().to_string();
    let only = move |k: &str| (k == "SOPS_AGE_KEY_FILE").then(|| file.clone());
    Ok(Keyring::discover(&only)?)
}

/// Writes through a temporary file in the same directory and renames it into place.
fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(tmp.path(), meta.permissions());
    }
    tmp.persist(path)
        .map_err(|e| anyhow!("cannot write {}: {}", path.display(), e.error))?;
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn encrypt_options(
    file: &Path,
    config_path: Option<PathBuf>,
    age: Option<String>,
) -> Result<EncryptOptions> {
    if let Some(a) = age.filter(|a| !a.trim().is_empty()) {
        return Ok(EncryptOptions {
            key_groups: vec![
                a.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect(),
            ],
            ..Default::default()
        });
    }
    let cwd = std::env::current_dir()?;
    let cfg = match config_path {
        Some(p) => p,
        None => config::find_config(&cwd).ok_or_else(|| {
            anyhow!("config file not found (.sops.yaml) and no --age recipients given")
        })?,
    };
    let text =
        std::fs::read_to_string(&cfg).with_context(|| format!("cannot read {}", cfg.display()))?;
    let abs = if file.is_absolute() {
        file.to_path_buf()
    } else {
        cwd.join(file)
    };
    let base = cfg
        .parent()
        .map(|p| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                cwd.join(p)
            }
        })
        .unwrap_or(cwd);
    let rel = abs.strip_prefix(&base).unwrap_or(&abs);
    let rel = rel.to_string_lossy().replace('\\', "/");
    config::rule_for(&text, &rel).with_context(|| format!("{}", cfg.display()))
}

/// Splits sops' one-argument form `["a"]["b"] "value"` into path and value.
fn split_set_arg(s: &str) -> Option<(String, String)> {
    for (i, c) in s.char_indices() {
        if c == ']' {
            let rest = s[i + 1..].trim_start();
            if !rest.is_empty() && !rest.starts_with('[') {
                return Some((s[..=i].to_string(), rest.to_string()));
            }
        }
    }
    None
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Decrypt {
            file,
            output,
            ignore_mac,
            extract,
            types,
        } => {
            let inf = fmt_of(&types.input_type, &file)?;
            let outf = match &types.output_type {
                Some(_) => fmt_of(&types.output_type, &file)?,
                None => inf,
            };
            let src = read(&file)?;
            let keys = keyring()?;
            let plain = match extract {
                Some(p) => {
                    let path = sops_plugin::value::parse_index_path(&p)
                        .map_err(|e| anyhow!("--extract: {e}"))?;
                    let o = sops_plugin::open(inf, &src, &keys, ignore_mac)
                        .with_context(|| format!("{}", file.display()))?;
                    sops_plugin::extract(outf, &o.docs, &path)
                        .with_context(|| format!("{}", file.display()))?
                }
                None => sops_plugin::decrypt(inf, outf, &src, &keys, ignore_mac)
                    .with_context(|| format!("{}", file.display()))?,
            };
            match output {
                Some(o) => write_atomic(&o, &plain)?,
                None => {
                    let mut so = std::io::stdout().lock();
                    so.write_all(&plain)?;
                    so.flush()?;
                }
            }
        }
        Cmd::Encrypt {
            file,
            output,
            in_place,
            age,
            config,
            encrypted_regex,
            unencrypted_regex,
            encrypted_suffix,
            unencrypted_suffix,
            encrypted_comment_regex,
            unencrypted_comment_regex,
            mac_only_encrypted,
            shamir_secret_sharing_threshold,
            types,
        } => {
            let inf = fmt_of(&types.input_type, &file)?;
            let outf = match &types.output_type {
                Some(_) => fmt_of(&types.output_type, &file)?,
                None => inf,
            };
            let mut opts = encrypt_options(&file, config, age)?;
            let cli_sel = encrypted_regex.is_some()
                || unencrypted_regex.is_some()
                || encrypted_suffix.is_some()
                || unencrypted_suffix.is_some()
                || encrypted_comment_regex.is_some()
                || unencrypted_comment_regex.is_some();
            if cli_sel {
                opts.encrypted_regex = encrypted_regex;
                opts.unencrypted_regex = unencrypted_regex;
                opts.encrypted_suffix = encrypted_suffix;
                opts.unencrypted_suffix = unencrypted_suffix;
                opts.encrypted_comment_regex = encrypted_comment_regex;
                opts.unencrypted_comment_regex = unencrypted_comment_regex;
            }
            opts.mac_only_encrypted |= mac_only_encrypted;
            if shamir_secret_sharing_threshold.is_some() {
                opts.shamir_threshold = shamir_secret_sharing_threshold;
            }
            let src = Zeroizing::new(read(&file)?);
            let out = sops_plugin::encrypt(inf, outf, &src, &opts)
                .with_context(|| format!("{}", file.display()))?;
            if in_place {
                write_atomic(&file, &out)?;
            } else if let Some(o) = output {
                write_atomic(&o, &out)?;
            } else {
                std::io::stdout().lock().write_all(&out)?;
            }
        }
        Cmd::Set {
            file,
            path,
            value,
            types,
        } => {
            let f = fmt_of(&types.input_type, &file)?;
            let mut o = sops_plugin::open(f, &read(&file)?, &keyring()?, false)
                .with_context(|| format!("{}", file.display()))?;
            let (path, value) = match value {
                Some(v) => (path, v),
                None => split_set_arg(&path).ok_or_else(|| anyhow!("expected PATH VALUE"))?,
            };
            let v =
                sops_plugin::value::parse_json_value(&value).map_err(|e| anyhow!("VALUE: {e}"))?;
            let p =
                sops_plugin::value::parse_index_path(&path).map_err(|e| anyhow!("PATH: {e}"))?;
            let doc = o
                .docs
                .first_mut()
                .ok_or_else(|| anyhow!("{}: empty file", file.display()))?;
            sops_plugin::value::set_path(doc, &p, v)
                .map_err(|e| anyhow!("{}: {e}", file.display()))?;
            write_atomic(&file, &o.seal(f)?)?;
        }
        Cmd::Unset { file, path, types } => {
            let f = fmt_of(&types.input_type, &file)?;
            let mut o = sops_plugin::open(f, &read(&file)?, &keyring()?, false)
                .with_context(|| format!("{}", file.display()))?;
            let p =
                sops_plugin::value::parse_index_path(&path).map_err(|e| anyhow!("PATH: {e}"))?;
            let doc = o
                .docs
                .first_mut()
                .ok_or_else(|| anyhow!("{}: empty file", file.display()))?;
            sops_plugin::value::unset_path(doc, &p)
                .map_err(|e| anyhow!("{}: {e}", file.display()))?;
            write_atomic(&file, &o.seal(f)?)?;
        }
        Cmd::Updatekeys {
            file,
            config,
            types,
        } => {
            let f = fmt_of(&types.input_type, &file)?;
            let mut o = sops_plugin::open(f, &read(&file)?, &keyring()?, false)
                .with_context(|| format!("{}", file.display()))?;
            let opts = encrypt_options(&file, config, None)?;
            o.set_recipients(&opts.key_groups, opts.shamir_threshold)?;
            write_atomic(&file, &o.seal(f)?)?;
            eprintln!(
                "{}: data key re-wrapped for {} key group(s)",
                file.display(),
                opts.key_groups.len()
            );
        }
        Cmd::Rotate { file, types } => {
            let f = fmt_of(&types.input_type, &file)?;
            let mut o = sops_plugin::open(f, &read(&file)?, &keyring()?, false)
                .with_context(|| format!("{}", file.display()))?;
            o.rotate()?;
            write_atomic(&file, &o.seal(f)?)?;
        }
        Cmd::Krm => run_krm()?,
        Cmd::Discover { dir } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from("."));
            if let Some(f) = generate::discover(&dir)? {
                println!("{}", f.display());
            }
        }
        Cmd::Generate { dir, seal, cert } => {
            sops_plugin::scratch::remove_on_signals()?;
            let dir = dir.unwrap_or_else(|| PathBuf::from("."));
            let keys = generate_keyring()?;
            let mut opts = generate::Options::from_env(&env_var);
            // The operator (SOPS_PLUGIN_SEAL) or an Application (plugin parameter `seal`, which
            // Argo CD passes as PARAM_SEAL) can turn sealing on; neither can turn it off.
            let on = |k: &str| env_var(k).is_some_and(|v| v == "true" || v == "1");
            let seal = seal || on("SOPS_PLUGIN_SEAL") || on("PARAM_SEAL");
            if seal {
                let cert = cert.ok_or_else(|| {
                    anyhow!("--seal needs --cert FILE (or SOPS_PLUGIN_SEAL_CERT)")
                })?;
                let pem = std::fs::read_to_string(&cert)
                    .with_context(|| format!("cannot read {}", cert.display()))?;
                opts.seal = Some(sops_plugin::seal::Sealer::from_pem(
                    &pem,
                    env_var("ARGOCD_APP_NAMESPACE"),
                )?);
            }
            let out = generate::render_dir(&dir, &keys, &opts)?;
            let mut so = std::io::stdout().lock();
            so.write_all(&out)?;
            so.flush()?;
        }
    }
    Ok(())
}

fn run_krm() -> Result<()> {
    use std::io::Read;
    let mut input = String::new();
    std::io::stdin()
        .take(sops_plugin::generate::MAX_RENDER_BYTES)
        .read_to_string(&mut input)
        .context("cannot read the ResourceList from stdin")?;
    let keys = keyring()?;
    let out = Zeroizing::new(sops_plugin::krm::run(&input, Path::new("."), &keys)?);
    keys.check_output(out.as_bytes())?;
    let mut so = std::io::stdout().lock();
    so.write_all(out.as_bytes())?;
    so.flush()?;
    Ok(())
}

fn main() -> ExitCode {
    // Installed under the name `ksops`, the binary is a drop-in KRM exec function.
    let as_ksops = std::env::args_os()
        .next()
        .and_then(|a| Path::new(&a).file_name().map(|n| n == "ksops"))
        .unwrap_or(false);
    let result = if as_ksops {
        run_krm()
    } else {
        run(Cli::parse())
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A render stopped by a signal fails here too; the signal thread ends the process.
            sops_plugin::scratch::wait_if_stopping();
            eprintln!("sops-plugin: {e:#}");
            let code = e
                .chain()
                .find_map(|c| c.downcast_ref::<sops_plugin::Error>())
                .map(|e| e.exit_code())
                .unwrap_or(1);
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
    }
}
