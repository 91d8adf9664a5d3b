//! One function per subcommand; flags are parsed in cli.rs, errors reported in main.rs.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use sops_plugin::{EncryptOptions, Format, Keyring, config, generate};
use zeroize::Zeroizing;

use crate::cli::{
    DecryptArgs, DiscoverArgs, EncryptArgs, GenerateArgs, RotateArgs, SetArgs, Types, UnsetArgs,
    UpdatekeysArgs,
};

/// The input and output formats: from the flags, else from the file name.
fn formats(types: &Types, file: &Path) -> Result<(Format, Format)> {
    let input = fmt_of(&types.input_type, file)?;
    let output = match &types.output_type {
        Some(_) => fmt_of(&types.output_type, file)?,
        None => input,
    };
    Ok((input, output))
}

/// Opens a SOPS file for editing with the keys from the environment.
fn open_for_edit(file: &Path, types: &Types) -> Result<(Format, sops_plugin::Opened)> {
    let f = fmt_of(&types.input_type, file)?;
    let o = sops_plugin::open(f, &read(file)?, &keyring()?, false)
        .with_context(|| format!("{}", file.display()))?;
    Ok((f, o))
}

fn stdout_all(data: &[u8]) -> Result<()> {
    let mut so = std::io::stdout().lock();
    so.write_all(data)?;
    so.flush()?;
    Ok(())
}

pub fn decrypt(a: DecryptArgs) -> Result<()> {
    let (inf, outf) = formats(&a.types, &a.file)?;
    let src = read(&a.file)?;
    let keys = keyring()?;
    let plain = match a.extract {
        Some(p) => {
            let path =
                sops_plugin::value::parse_index_path(&p).map_err(|e| anyhow!("--extract: {e}"))?;
            let o = sops_plugin::open(inf, &src, &keys, a.ignore_mac)
                .with_context(|| format!("{}", a.file.display()))?;
            sops_plugin::extract(outf, &o.docs, &path)
                .with_context(|| format!("{}", a.file.display()))?
        }
        None => sops_plugin::decrypt(inf, outf, &src, &keys, a.ignore_mac)
            .with_context(|| format!("{}", a.file.display()))?,
    };
    match a.output {
        Some(o) => write_atomic(&o, &plain),
        None => stdout_all(&plain),
    }
}

pub fn encrypt(a: EncryptArgs) -> Result<()> {
    let (inf, outf) = formats(&a.types, &a.file)?;
    let mut opts = encrypt_options(&a.file, a.config, a.age)?;
    let cli_sel = a.encrypted_regex.is_some()
        || a.unencrypted_regex.is_some()
        || a.encrypted_suffix.is_some()
        || a.unencrypted_suffix.is_some()
        || a.encrypted_comment_regex.is_some()
        || a.unencrypted_comment_regex.is_some();
    if cli_sel {
        opts.encrypted_regex = a.encrypted_regex;
        opts.unencrypted_regex = a.unencrypted_regex;
        opts.encrypted_suffix = a.encrypted_suffix;
        opts.unencrypted_suffix = a.unencrypted_suffix;
        opts.encrypted_comment_regex = a.encrypted_comment_regex;
        opts.unencrypted_comment_regex = a.unencrypted_comment_regex;
    }
    opts.mac_only_encrypted |= a.mac_only_encrypted;
    if a.shamir_secret_sharing_threshold.is_some() {
        opts.shamir_threshold = a.shamir_secret_sharing_threshold;
    }
    let src = Zeroizing::new(read(&a.file)?);
    let out = sops_plugin::encrypt(inf, outf, &src, &opts)
        .with_context(|| format!("{}", a.file.display()))?;
    if a.in_place {
        write_atomic(&a.file, &out)
    } else if let Some(o) = a.output {
        write_atomic(&o, &out)
    } else {
        std::io::stdout().lock().write_all(&out)?;
        Ok(())
    }
}

pub fn set(a: SetArgs) -> Result<()> {
    let (f, mut o) = open_for_edit(&a.file, &a.types)?;
    let (path, value) = match a.value {
        Some(v) => (a.path, v),
        None => split_set_arg(&a.path).ok_or_else(|| anyhow!("expected PATH VALUE"))?,
    };
    let v =
        sops_plugin::stores::json::parse_json_value(&value).map_err(|e| anyhow!("VALUE: {e}"))?;
    let p = sops_plugin::value::parse_index_path(&path).map_err(|e| anyhow!("PATH: {e}"))?;
    let doc = o
        .docs
        .first_mut()
        .ok_or_else(|| anyhow!("{}: empty file", a.file.display()))?;
    sops_plugin::value::set_path(doc, &p, v).map_err(|e| anyhow!("{}: {e}", a.file.display()))?;
    write_atomic(&a.file, &o.seal(f)?)
}

pub fn unset(a: UnsetArgs) -> Result<()> {
    let (f, mut o) = open_for_edit(&a.file, &a.types)?;
    let p = sops_plugin::value::parse_index_path(&a.path).map_err(|e| anyhow!("PATH: {e}"))?;
    let doc = o
        .docs
        .first_mut()
        .ok_or_else(|| anyhow!("{}: empty file", a.file.display()))?;
    sops_plugin::value::unset_path(doc, &p).map_err(|e| anyhow!("{}: {e}", a.file.display()))?;
    write_atomic(&a.file, &o.seal(f)?)
}

pub fn updatekeys(a: UpdatekeysArgs) -> Result<()> {
    let (f, mut o) = open_for_edit(&a.file, &a.types)?;
    let opts = encrypt_options(&a.file, a.config, None)?;
    o.set_recipients(&opts.key_groups, opts.shamir_threshold)?;
    write_atomic(&a.file, &o.seal(f)?)?;
    eprintln!(
        "{}: data key re-wrapped for {} key group(s)",
        a.file.display(),
        opts.key_groups.len()
    );
    Ok(())
}

pub fn rotate(a: RotateArgs) -> Result<()> {
    let (f, mut o) = open_for_edit(&a.file, &a.types)?;
    o.rotate()?;
    write_atomic(&a.file, &o.seal(f)?)
}

pub fn discover(a: DiscoverArgs) -> Result<()> {
    let dir = a.dir.unwrap_or_else(|| PathBuf::from("."));
    if let Some(f) = generate::discover(&dir)? {
        println!("{}", f.display());
    }
    Ok(())
}

pub fn generate(a: GenerateArgs) -> Result<()> {
    sops_plugin::scratch::remove_on_signals()?;
    let dir = a.dir.unwrap_or_else(|| PathBuf::from("."));
    let keys = generate_keyring()?;
    let mut opts = generate::Options::from_env(&env_var);
    // The operator (SOPS_PLUGIN_SEAL) or an Application (plugin parameter `seal`, which
    // Argo CD passes as PARAM_SEAL) can turn sealing on; neither can turn it off.
    let on = |k: &str| env_var(k).is_some_and(|v| v == "true" || v == "1");
    if a.seal || on("SOPS_PLUGIN_SEAL") || on("PARAM_SEAL") {
        let cert = a
            .cert
            .ok_or_else(|| anyhow!("--seal needs --cert FILE (or SOPS_PLUGIN_SEAL_CERT)"))?;
        let pem = std::fs::read_to_string(&cert)
            .with_context(|| format!("cannot read {}", cert.display()))?;
        opts.seal = Some(sops_plugin::seal::Sealer::from_pem(
            &pem,
            env_var("ARGOCD_APP_NAMESPACE"),
        )?);
    }
    stdout_all(&generate::render_dir(&dir, &keys, &opts)?)
}

pub fn krm() -> Result<()> {
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
