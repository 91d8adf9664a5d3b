//! The command line: every subcommand's flags, and nothing else (commands.rs runs them).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "sops-plugin",
    version,
    about = "SOPS files encrypted for age: decrypt, encrypt and render for Argo CD"
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(clap::Args, Clone)]
pub struct Types {
    /// Input format (yaml, json, dotenv, ini, binary); default from the file extension.
    #[arg(long)]
    pub input_type: Option<String>,
    /// Output format; default: the input format.
    #[arg(long)]
    pub output_type: Option<String>,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Decrypt a file to stdout (or --output).
    Decrypt(DecryptArgs),
    /// Encrypt a file with the recipients of the matching .sops.yaml creation rule (or --age).
    Encrypt(EncryptArgs),
    /// Set one value: PATH is like '["a"]["b"]' or '["list"][0]', VALUE is JSON
    /// (or both in one argument: '["a"]["b"] "value"', as sops --set takes it).
    Set(SetArgs),
    /// Remove one value at PATH.
    Unset(UnsetArgs),
    /// Re-wrap the data key for the recipients of the current .sops.yaml rule.
    Updatekeys(UpdatekeysArgs),
    /// Re-encrypt the file with a new data key.
    Rotate(RotateArgs),
    /// KRM exec function (KSOPS-style `kind: ksops` generator): ResourceList on stdin, out on
    /// stdout. Also what runs when the binary is invoked as `ksops`.
    Krm,
    /// Argo CD CMP discover: print the first SOPS file below DIR (nothing if none).
    Discover(DiscoverArgs),
    /// Argo CD CMP generate: render the application directory to a YAML stream on stdout.
    Generate(GenerateArgs),
}

/// Flags of `decrypt`.
#[derive(clap::Args)]
pub struct DecryptArgs {
    pub file: PathBuf,
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Do not verify the MAC (only for recovering damaged files).
    #[arg(long)]
    pub ignore_mac: bool,
    /// Print only the value at this path, e.g. '["stringData"]["password"]'.
    #[arg(long)]
    pub extract: Option<String>,
    #[command(flatten)]
    pub types: Types,
}

/// Flags of `encrypt`.
#[derive(clap::Args)]
pub struct EncryptArgs {
    pub file: PathBuf,
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Overwrite the input file.
    #[arg(long, short)]
    pub in_place: bool,
    /// Comma-separated age recipients (instead of .sops.yaml); also SOPS_AGE_RECIPIENTS.
    #[arg(long, env = "SOPS_AGE_RECIPIENTS")]
    pub age: Option<String>,
    /// Path of .sops.yaml (default: searched upwards from the current directory).
    #[arg(long, env = "SOPS_CONFIG")]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub encrypted_regex: Option<String>,
    #[arg(long)]
    pub unencrypted_regex: Option<String>,
    #[arg(long)]
    pub encrypted_suffix: Option<String>,
    #[arg(long)]
    pub unencrypted_suffix: Option<String>,
    #[arg(long)]
    pub encrypted_comment_regex: Option<String>,
    #[arg(long)]
    pub unencrypted_comment_regex: Option<String>,
    #[arg(long)]
    pub mac_only_encrypted: bool,
    #[arg(long)]
    pub shamir_secret_sharing_threshold: Option<usize>,
    #[command(flatten)]
    pub types: Types,
}

/// Flags of `set`.
#[derive(clap::Args)]
pub struct SetArgs {
    pub file: PathBuf,
    pub path: String,
    pub value: Option<String>,
    #[command(flatten)]
    pub types: Types,
}

/// Flags of `unset`.
#[derive(clap::Args)]
pub struct UnsetArgs {
    pub file: PathBuf,
    pub path: String,
    #[command(flatten)]
    pub types: Types,
}

/// Flags of `updatekeys`.
#[derive(clap::Args)]
pub struct UpdatekeysArgs {
    pub file: PathBuf,
    #[arg(long, env = "SOPS_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub types: Types,
}

/// Flags of `rotate`.
#[derive(clap::Args)]
pub struct RotateArgs {
    pub file: PathBuf,
    #[command(flatten)]
    pub types: Types,
}

/// Flags of `discover`.
#[derive(clap::Args)]
pub struct DiscoverArgs {
    /// Application directory (default: current directory).
    pub dir: Option<PathBuf>,
}

/// Flags of `generate`.
#[derive(clap::Args)]
pub struct GenerateArgs {
    /// Application directory (default: current directory).
    pub dir: Option<PathBuf>,
    /// Re-seal every rendered Secret as a SealedSecret for --cert (also SOPS_PLUGIN_SEAL=true).
    #[arg(long)]
    pub seal: bool,
    /// Sealing certificate (PEM, as `kubeseal --fetch-cert` prints); also SOPS_PLUGIN_SEAL_CERT.
    #[arg(long, env = "SOPS_PLUGIN_SEAL_CERT")]
    pub cert: Option<PathBuf>,
}
