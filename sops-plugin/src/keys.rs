//! age master keys: unwrapping and wrapping the data key, Shamir key groups, and identity
//! discovery the way sops looks for keys (this module is the only one that reads files or runs
//! commands, and only when asked to).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::armor::{ArmoredReader, ArmoredWriter, Format as ArmorFormat};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::metadata::{AgeKey, KeyGroup, Metadata};
use crate::shamir;

type Identities = Vec<Box<dyn age::Identity + Send + Sync>>;

/// Most runs of `SOPS_AGE_KEY_CMD` in one process: recipients come from repository files, and
/// their author must not decide how often the operator's key command runs.
pub const MAX_KEY_CMD_RUNS: usize = 8;

/// What `SOPS_AGE_KEY_CMD` printed so far, per recipient it was run for.
#[derive(Default)]
struct KeyCmdState {
    by_recipient: std::collections::HashMap<String, std::sync::Arc<Identities>>,
    runs: usize,
    /// Public keys of the X25519 identities it returned (a later recipient among them needs no run).
    publics: Vec<String>,
    material: Vec<Material>,
}

/// Private key text an output must never contain, and where it was loaded from.
pub(crate) type Material = (Zeroizing<String>, String);

/// A set of age identities and a record of where they were looked for.
#[derive(Default)]
pub struct Keyring {
    identities: Identities,
    /// Public keys of the X25519 identities.
    publics: Vec<String>,
    /// Private key text of every identity, for [`Keyring::check_output`].
    material: Vec<Material>,
    /// `SOPS_AGE_KEY_CMD`, run per recipient (with `SOPS_AGE_RECIPIENT` set) when needed.
    key_cmd: Option<String>,
    /// Recipients the operator allows `SOPS_AGE_KEY_CMD` to be run for
    /// (`SOPS_AGE_KEY_CMD_RECIPIENTS`); `None`: any valid recipient.
    key_cmd_recipients: Option<Vec<String>>,
    cmd_state: std::sync::Mutex<KeyCmdState>,
    /// Human-readable places that were searched (for error messages).
    pub searched: Vec<String>,
    /// Keys found but not usable (e.g. passphrase-protected SSH keys, plugins).
    pub skipped: Vec<String>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("identities", &self.identities.len())
            .field("searched", &self.searched)
            .finish()
    }
}

impl Keyring {
    /// An empty keyring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of usable identities.
    pub fn len(&self) -> usize {
        self.identities.len()
    }

    /// Whether no identity is loaded.
    pub fn is_empty(&self) -> bool {
        self.identities.is_empty()
    }

    /// Adds identities from text in `keys.txt` format (several per line allowed, `#` comments),
    /// or a whole OpenSSH/PEM private key. `source` names where it came from.
    pub fn add_text(&mut self, text: &str, source: &str) -> Result<usize> {
        let trimmed = text.trim_start();
        if trimmed.starts_with("-----BEGIN") {
            return self.add_ssh(text.as_bytes(), source);
        }
        let mut n = 0;
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            for tok in line.split_whitespace() {
                if tok.starts_with("AGE-SECRET-KEY-1") {
                    let id = age::x25519::Identity::from_str(tok)
                        .map_err(|_| Error::Config(format!("{source}: invalid age identity")))?;
                    self.publics.push(id.to_public().to_string());
                    self.material
                        .push((Zeroizing::new(tok.to_string()), source.to_string()));
                    self.identities.push(Box::new(id));
                    n += 1;
                } else if tok.starts_with("AGE-") {
                    self.skipped.push(format!(
                        "{source}: unsupported identity type (plugin or post-quantum)"
                    ));
                } else {
                    return Err(Error::Config(format!("{source}: not an age identity file")));
                }
            }
        }
        Ok(n)
    }

    /// Adds an SSH private key (ed25519 or RSA, without passphrase).
    pub fn add_ssh(&mut self, pem: &[u8], source: &str) -> Result<usize> {
        let id = age::ssh::Identity::from_buffer(pem, Some(source.to_string()))
            .map_err(|e| Error::Config(format!("{source}: cannot read SSH key: {e}")))?;
        match id {
            age::ssh::Identity::Unencrypted(_) => {
                self.material
                    .extend(pem_secret_lines(pem).map(|l| (Zeroizing::new(l), source.to_string())));
                self.identities.push(Box::new(id));
                Ok(1)
            }
            age::ssh::Identity::Encrypted(_) => {
                self.skipped.push(format!(
                    "{source}: passphrase-protected SSH keys are not supported"
                ));
                Ok(0)
            }
            age::ssh::Identity::Unsupported(_) => {
                self.skipped
                    .push(format!("{source}: unsupported SSH key type"));
                Ok(0)
            }
        }
    }

    /// Loads identities from every source sops uses, combined: `SOPS_AGE_SSH_PRIVATE_KEY_FILE`
    /// (or `~/.ssh/id_ed25519`, `~/.ssh/id_rsa`), `SOPS_AGE_KEY`, `SOPS_AGE_KEY_FILE`,
    /// `SOPS_AGE_KEY_CMD` and the default `<config dir>/sops/age/keys.txt`.
    /// `env` looks up a variable, so callers (and tests) decide what the environment is.
    pub fn discover(env: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        let mut k = Keyring::new();
        let home = env("HOME").map(PathBuf::from);
        match env("SOPS_AGE_SSH_PRIVATE_KEY_FILE").filter(|s| !s.is_empty()) {
            Some(p) => {
                k.searched
                    .push(format!("SOPS_AGE_SSH_PRIVATE_KEY_FILE ({p})"));
                let data = read_secret(Path::new(&p))?;
                k.add_ssh(&data, &p)?;
            }
            None => {
                if let Some(h) = &home {
                    for name in ["id_ed25519", "id_rsa"] {
                        let p = h.join(".ssh").join(name);
                        k.searched.push(p.display().to_string());
                        if p.is_file()
                            && let Ok(data) = read_secret(&p)
                        {
                            // A default SSH key that age cannot use is not an error.
                            let _ = k.add_ssh(&data, &p.display().to_string());
                        }
                    }
                }
            }
        }
        k.searched.push("SOPS_AGE_KEY".into());
        if let Some(v) = env("SOPS_AGE_KEY").filter(|s| !s.is_empty()) {
            let v = Zeroizing::new(v);
            k.add_text(&v, "SOPS_AGE_KEY")?;
        }
        match env("SOPS_AGE_KEY_FILE").filter(|s| !s.is_empty()) {
            Some(p) => {
                k.searched.push(format!("SOPS_AGE_KEY_FILE ({p})"));
                let data = read_secret(Path::new(&p))?;
                let text = Zeroizing::new(String::from_utf8_lossy(&data).into_owned());
                k.add_text(&text, &p)?;
            }
            None => k.searched.push("SOPS_AGE_KEY_FILE".into()),
        }
        k.searched.push("SOPS_AGE_KEY_CMD".into());
        if let Some(cmd) = env("SOPS_AGE_KEY_CMD").filter(|s| !s.is_empty()) {
            // Like sops, run it per recipient being decrypted (SOPS_AGE_RECIPIENT), lazily.
            if shlex::split(&cmd).is_none_or(|v| v.is_empty()) {
                return Err(Error::Config("SOPS_AGE_KEY_CMD cannot be parsed".into()));
            }
            k.key_cmd = Some(cmd);
            k.key_cmd_recipients = env("SOPS_AGE_KEY_CMD_RECIPIENTS")
                .filter(|s| !s.trim().is_empty())
                .map(|s| {
                    s.split([',', ' ', '\n'])
                        .map(str::trim)
                        .filter(|r| !r.is_empty())
                        .map(String::from)
                        .collect()
                });
        }
        let cfg = env("XDG_CONFIG_HOME")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".config")));
        if let Some(c) = cfg {
            let p = c.join("sops").join("age").join("keys.txt");
            k.searched.push(p.display().to_string());
            if p.is_file() {
                let data = read_secret(&p)?;
                let text = Zeroizing::new(String::from_utf8_lossy(&data).into_owned());
                k.add_text(&text, &p.display().to_string())?;
            }
        }
        Ok(k)
    }

    /// Identities `SOPS_AGE_KEY_CMD` prints for `recipient`. The command runs at most once per
    /// distinct recipient and [`MAX_KEY_CMD_RUNS`] times per process, only for well-formed
    /// recipients (never for arbitrary text from a file), only for the operator's list when
    /// `SOPS_AGE_KEY_CMD_RECIPIENTS` is set, and not for a recipient whose identity it already
    /// returned.
    fn cmd_identities(
        &self,
        recipient: &str,
    ) -> std::result::Result<Vec<std::sync::Arc<Identities>>, String> {
        let Some(cmd) = &self.key_cmd else {
            return Ok(vec![]);
        };
        let recipient = recipient.trim();
        if parse_recipient(recipient).is_err() {
            return Err("not a valid recipient; SOPS_AGE_KEY_CMD not run for it".into());
        }
        if let Some(allowed) = &self.key_cmd_recipients
            && !allowed.iter().any(|a| a == recipient)
        {
            return Err("not in SOPS_AGE_KEY_CMD_RECIPIENTS; SOPS_AGE_KEY_CMD not run".into());
        }
        let mut st = self
            .cmd_state
            .lock()
            .map_err(|_| "SOPS_AGE_KEY_CMD state is poisoned".to_string())?;
        if let Some(ids) = st.by_recipient.get(recipient) {
            return Ok(vec![ids.clone()]);
        }
        if st.publics.iter().any(|p| p == recipient) {
            // An earlier run returned this recipient's identity: those identities are tried.
            return Ok(st.by_recipient.values().cloned().collect());
        }
        if st.runs >= MAX_KEY_CMD_RUNS {
            return Err(format!(
                "SOPS_AGE_KEY_CMD already ran {MAX_KEY_CMD_RUNS} times; not run for more recipients"
            ));
        }
        st.runs += 1;
        let out = run_key_cmd(cmd, recipient).map_err(|e| e.to_string())?;
        let text = Zeroizing::new(String::from_utf8_lossy(&out).into_owned());
        let mut k = Keyring::new();
        k.add_text(&text, "SOPS_AGE_KEY_CMD")
            .map_err(|e| e.to_string())?;
        st.publics.append(&mut k.publics);
        st.material.append(&mut k.material);
        let ids = std::sync::Arc::new(std::mem::take(&mut k.identities));
        st.by_recipient.insert(recipient.to_string(), ids.clone());
        Ok(vec![ids])
    }

    /// Unwraps one age stanza with `ids`; the error text is age's, never key material.
    fn unwrap_stanza(
        enc: &str,
        ids: &[&dyn age::Identity],
    ) -> std::result::Result<Zeroizing<Vec<u8>>, String> {
        let mut armored = enc.trim_end().to_string();
        armored.push('\n');
        let dec = age::Decryptor::new_buffered(ArmoredReader::new(armored.as_bytes()))
            .map_err(|e| format!("cannot read age header: {e}"))?;
        let mut r = dec
            .decrypt(ids.iter().copied())
            .map_err(|e| e.to_string())?;
        let mut out = Zeroizing::new(vec![]);
        r.read_to_end(&mut out)
            .map_err(|e| format!("cannot read age payload: {e}"))?;
        Ok(out)
    }

    /// One group's data key (or share): every stanza with the loaded identities first, then
    /// `SOPS_AGE_KEY_CMD` per stanza, within its bounds.
    fn unwrap_group(
        &self,
        g: &KeyGroup,
        failures: &mut Vec<String>,
        gi: usize,
    ) -> Option<Zeroizing<Vec<u8>>> {
        let loaded: Vec<&dyn age::Identity> = self
            .identities
            .iter()
            .map(|i| i.as_ref() as &dyn age::Identity)
            .collect();
        for a in g.age.iter().filter(|_| !loaded.is_empty()) {
            match Self::unwrap_stanza(&a.enc, &loaded) {
                Ok(k) => return Some(k),
                Err(e) => failures.push(format!(
                    "group {gi}: {}: {e}",
                    shown_recipient(&a.recipient)
                )),
            }
        }
        self.key_cmd.as_ref()?;
        for a in &g.age {
            let from_cmd = match self.cmd_identities(&a.recipient) {
                Ok(ids) => ids,
                Err(e) => {
                    failures.push(format!(
                        "group {gi}: {}: {e}",
                        shown_recipient(&a.recipient)
                    ));
                    continue;
                }
            };
            let ids: Vec<&dyn age::Identity> = from_cmd
                .iter()
                .flat_map(|set| set.iter())
                .map(|i| i.as_ref() as &dyn age::Identity)
                .collect();
            if ids.is_empty() {
                continue;
            }
            match Self::unwrap_stanza(&a.enc, &ids) {
                Ok(k) => return Some(k),
                Err(e) => failures.push(format!(
                    "group {gi}: {} (SOPS_AGE_KEY_CMD): {e}",
                    shown_recipient(&a.recipient)
                )),
            }
        }
        None
    }

    /// Fails when `output` contains private key text of any identity loaded so far (raw, or
    /// base64 at any alignment): the last guard before a render reaches Argo CD.
    pub fn check_output(&self, output: &[u8]) -> Result<()> {
        let mut needles = crate::leak::Needles::default();
        let cmd_material = self.cmd_state.lock().map(|s| {
            s.material
                .iter()
                .map(|(m, src)| (m.clone(), src.clone()))
                .collect::<Vec<_>>()
        });
        let cmd_material = cmd_material.unwrap_or_default();
        for (m, source) in self.material.iter().chain(cmd_material.iter()) {
            needles.add(m.as_bytes(), source.clone());
        }
        if needles.is_empty() {
            return Ok(());
        }
        match needles.build().find(output) {
            Some(source) => Err(Error::Unsupported(format!(
                "the rendered output contains private key material of an identity this plugin \
                 loaded (from {source}); refusing to print it. A repository file or setting \
                 makes the render read the plugin's own keys"
            ))),
            None => Ok(()),
        }
    }

    /// Recovers the data key from the metadata: one group's key, or Shamir shares of groups.
    pub fn data_key(&self, md: &Metadata) -> Result<Zeroizing<[u8; 32]>> {
        let mut failures = vec![];
        let mut parts: Vec<Zeroizing<Vec<u8>>> = vec![];
        let threshold = md.shamir_threshold.unwrap_or(md.key_groups.len()).max(1);
        for (gi, g) in md.key_groups.iter().enumerate() {
            let got = self.unwrap_group(g, &mut failures, gi);
            if g.age.is_empty() {
                let kinds: Vec<&str> = g.other.iter().map(|(k, _)| k.as_str()).collect();
                failures.push(format!(
                    "group {gi}: no age key (has: {})",
                    kinds.join(", ")
                ));
            }
            if let Some(k) = got {
                parts.push(k);
                if md.key_groups.len() == 1 || parts.len() >= threshold {
                    break;
                }
            }
        }
        let key = if md.key_groups.len() <= 1 {
            parts.pop()
        } else if parts.len() >= threshold {
            Some(shamir::combine(&parts)?)
        } else {
            None
        };
        match key {
            Some(k) if k.len() == 32 => {
                let mut out = Zeroizing::new([0u8; 32]);
                out.copy_from_slice(&k);
                Ok(out)
            }
            Some(_) => Err(Error::DataKey(
                "the unwrapped data key is not 32 bytes".into(),
            )),
            None => {
                let mut msg = String::new();
                if md.key_groups.len() > 1 {
                    msg.push_str(&format!(
                        "needed {threshold} of {} key groups, unwrapped {}\n",
                        md.key_groups.len(),
                        parts.len()
                    ));
                }
                let recipients = md.age_recipients();
                let shown: Vec<String> = recipients
                    .iter()
                    .take(MAX_LISTED_FAILURES)
                    .map(|r| shown_recipient(r))
                    .collect();
                msg.push_str(&format!(
                    "the file's age recipients: {}{}\n",
                    shown.join(", "),
                    if recipients.len() > shown.len() {
                        ", ..."
                    } else {
                        ""
                    }
                ));
                msg.push_str(&format!("identities loaded: {}\n", self.identities.len()));
                // A file may list thousands of stanzas: the message stays bounded.
                for f in failures.iter().take(MAX_LISTED_FAILURES) {
                    msg.push_str(&format!("  {f}\n"));
                }
                if failures.len() > MAX_LISTED_FAILURES {
                    msg.push_str(&format!(
                        "  ... and {} more\n",
                        failures.len() - MAX_LISTED_FAILURES
                    ));
                }
                if self.key_cmd.is_some() {
                    let runs = self.cmd_state.lock().map(|s| s.runs).unwrap_or(0);
                    msg.push_str(&format!(
                        "  SOPS_AGE_KEY_CMD ran {runs} times (at most {MAX_KEY_CMD_RUNS} per process)\n"
                    ));
                }
                for s in &self.skipped {
                    msg.push_str(&format!("  skipped {s}\n"));
                }
                msg.push_str(&format!("looked for keys in: {}", self.searched.join(", ")));
                Err(Error::DataKey(msg))
            }
        }
    }
}

/// Failures listed in a data-key error at most.
const MAX_LISTED_FAILURES: usize = 20;

/// A recipient as an error may show it: file text, so cut to a sane length.
fn shown_recipient(r: &str) -> String {
    let r = r.trim();
    match r.char_indices().nth(120) {
        Some((i, _)) => format!("{}...", &r[..i]),
        None => r.to_string(),
    }
}

/// The base64 lines of a PEM private key that carry key material (all but the first, which is
/// the same for every key of a type), for [`Keyring::check_output`].
fn pem_secret_lines(pem: &[u8]) -> impl Iterator<Item = String> + '_ {
    let text = std::str::from_utf8(pem).unwrap_or("");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("-----") && !l.contains(':'))
        .skip(1)
        .filter(|l| l.len() >= 20)
        .map(String::from)
}

fn read_secret(p: &Path) -> Result<Zeroizing<Vec<u8>>> {
    std::fs::read(p)
        .map(Zeroizing::new)
        .map_err(|e| Error::Config(format!("cannot read key file {}: {e}", p.display())))
}

fn run_key_cmd(cmd: &str, recipient: &str) -> Result<Zeroizing<Vec<u8>>> {
    let argv = shlex::split(cmd)
        .ok_or_else(|| Error::Config("SOPS_AGE_KEY_CMD cannot be parsed".into()))?;
    let (prog, args) = argv
        .split_first()
        .ok_or_else(|| Error::Config("SOPS_AGE_KEY_CMD is empty".into()))?;
    let out = std::process::Command::new(prog)
        .args(args)
        .env("SOPS_AGE_RECIPIENT", recipient)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| Error::Config(format!("SOPS_AGE_KEY_CMD: cannot run {prog}: {e}")))?;
    if !out.status.success() {
        return Err(Error::Config(format!(
            "SOPS_AGE_KEY_CMD: {prog} exited with {}",
            out.status
        )));
    }
    Ok(Zeroizing::new(out.stdout))
}

/// Parses a recipient: `age1…` (X25519) or an SSH public key (`ssh-ed25519`, `ssh-rsa`).
pub fn parse_recipient(r: &str) -> Result<Box<dyn age::Recipient + Send>> {
    let r = r.trim();
    if let Some(data) = r.strip_prefix("age1") {
        if data.contains('1') {
            // Bech32 data never contains '1': a second separator means a plugin (or hybrid
            // post-quantum) recipient.
            return Err(Error::Config(format!(
                "age plugin and post-quantum recipients are not supported: {r}"
            )));
        }
        return age::x25519::Recipient::from_str(r)
            .map(|x| Box::new(x) as Box<dyn age::Recipient + Send>)
            .map_err(|e| Error::Config(format!("invalid age recipient {r}: {e}")));
    }
    if r.starts_with("ssh-") {
        return age::ssh::Recipient::from_str(r)
            .map(|x| Box::new(x) as Box<dyn age::Recipient + Send>)
            .map_err(|_| Error::Config(format!("invalid or unsupported SSH recipient {r}")));
    }
    Err(Error::Config(format!(
        "unsupported recipient '{r}' (expected age1… or ssh-…)"
    )))
}

/// Encrypts `secret` to one recipient, ASCII-armored as sops stores it.
pub fn wrap_for(recipient: &str, secret: &[u8]) -> Result<String> {
    let r = parse_recipient(recipient)?;
    let enc = age::Encryptor::with_recipients(std::iter::once(r.as_ref() as &dyn age::Recipient))
        .map_err(|e| Error::KeyEncrypt(e.to_string()))?;
    let mut out = vec![];
    let armor = ArmoredWriter::wrap_output(&mut out, ArmorFormat::AsciiArmor)
        .map_err(|e| Error::KeyEncrypt(e.to_string()))?;
    let mut w = enc
        .wrap_output(armor)
        .map_err(|e| Error::KeyEncrypt(e.to_string()))?;
    w.write_all(secret)
        .map_err(|e| Error::KeyEncrypt(e.to_string()))?;
    w.finish()
        .and_then(|a| a.finish())
        .map_err(|e| Error::KeyEncrypt(e.to_string()))?;
    String::from_utf8(out).map_err(|e| Error::KeyEncrypt(e.to_string()))
}

/// Builds key groups for a data key: each recipient of a single group wraps the whole key;
/// with several groups the key is split (threshold default: all groups) and each group's
/// recipients wrap that group's share. `others` carries non-age keys per group untouched.
pub fn make_groups(
    data_key: &[u8; 32],
    recipients: &[Vec<String>],
    others: &[Vec<(String, crate::value::Value)>],
    threshold: Option<usize>,
) -> Result<(Vec<KeyGroup>, Option<usize>)> {
    if recipients.is_empty() || recipients.iter().all(|g| g.is_empty()) {
        return Err(Error::Config(
            "no age recipients to encrypt the data key for".into(),
        ));
    }
    let other_of = |i: usize| others.get(i).cloned().unwrap_or_default();
    if recipients.len() == 1 {
        let age = recipients[0]
            .iter()
            .map(|r| {
                Ok(AgeKey {
                    recipient: r.clone(),
                    enc: wrap_for(r, data_key)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        return Ok((
            vec![KeyGroup {
                age,
                other: other_of(0),
            }],
            None,
        ));
    }
    let t = threshold.unwrap_or(recipients.len());
    let shares = shamir::split(data_key, recipients.len(), t)?;
    let mut groups = vec![];
    for (i, (g, share)) in recipients.iter().zip(shares.iter()).enumerate() {
        let age = g
            .iter()
            .map(|r| {
                Ok(AgeKey {
                    recipient: r.clone(),
                    enc: wrap_for(r, share)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        groups.push(KeyGroup {
            age,
            other: other_of(i),
        });
    }
    Ok((groups, Some(t)))
}
