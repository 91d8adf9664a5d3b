//! Command-line flags: Bitnami's names and defaults, each also read from `SEALED_SECRETS_<FLAG>`.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use sealing::Scope;

const ABOUT: &str =
    "Seal Kubernetes Secrets into SealedSecrets that only the cluster's controller can open.";

const LONG_ABOUT: &str = "\
kubeseal reads a Kubernetes Secret (YAML or JSON, from stdin or -f) and writes a SealedSecret
that is safe to commit to Git: every value is encrypted with the cluster's public key, and only
the controller holding the private key can turn it back into a Secret.

The public key comes from --cert (a file or an http(s) URL), or is fetched from the controller
through the Kubernetes API using your kubeconfig.";

const EXAMPLES: &str = "\
Examples:
  # Seal a Secret with a certificate kept in the repository
  kubectl create secret generic db --from-literal=password=s3cret --dry-run=client -o yaml \\
    | kubeseal --cert sealing-cert.pem -o yaml > db-sealed.yaml

  # Fetch the controller's certificate once, for offline sealing
  kubeseal --fetch-cert > sealing-cert.pem

  # Seal for two clusters at once: writes sealed/db-prod.yaml and sealed/db-staging.yaml
  kubeseal --cert prod.pem --cert staging.pem -w 'sealed/db-{cert}.yaml' < db-secret.yaml

  # Seal one value to paste into an existing SealedSecret
  echo -n s3cret | kubeseal --raw --cert sealing-cert.pem --namespace default --name db

  # Add or replace a key in an existing SealedSecret file, in place
  kubeseal --cert sealing-cert.pem --merge-into db-sealed.yaml < new-key-secret.yaml

  # Back up the cluster's sealing keys, encrypted to an age key (never a plaintext key file)
  kubeseal --backup-keys sealing-keys.age -r age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p

  # Disaster recovery: open SealedSecrets with backed-up private keys, no cluster needed
  kubeseal --recovery-unseal --recovery-private-key sealing-keys.age \
    --recovery-identity ~/.config/age/key.txt < db-sealed.yaml";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Json,
    Yaml,
}

#[derive(Debug, Parser)]
#[command(
    name = "kubeseal",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = EXAMPLES,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub args: Args,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a shell completion script (bash, zsh or fish).
    Completion { shell: clap_complete::Shell },
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Certificate or public key to seal with: a file path, file:// or http(s):// URL.
    /// Without it, the certificate is fetched from the controller. Repeat it to seal for several
    /// clusters: one SealedSecret per certificate, each written to the -w name with {index}
    /// (1, 2, ...) or {cert} (the certificate's file name without extension) filled in.
    #[arg(long, env = "SEALED_SECRETS_CERT", value_name = "FILE|URL")]
    pub cert: Vec<String>,

    /// Output format for sealed secrets and recovered secrets.
    #[arg(
        short = 'o',
        long,
        value_enum,
        default_value = "json",
        env = "SEALED_SECRETS_FORMAT"
    )]
    pub format: Format,

    /// Secret file to read (default: stdin).
    #[arg(
        short = 'f',
        long = "secret-file",
        env = "SEALED_SECRETS_SECRET_FILE",
        value_name = "FILE"
    )]
    pub secret_file: Option<PathBuf>,

    /// File to write the output to, atomically (default: stdout). A .yaml/.yml name implies -o yaml.
    /// With --cert, {index} and {cert} in the name are replaced (needed when --cert is repeated).
    #[arg(
        short = 'w',
        long = "sealed-secret-file",
        env = "SEALED_SECRETS_SEALED_SECRET_FILE",
        value_name = "FILE"
    )]
    pub sealed_secret_file: Option<PathBuf>,

    /// Sealing scope: strict (bound to namespace and name), namespace-wide or cluster-wide.
    /// Without it, the Secret's sealedsecrets.bitnami.com/* annotations decide.
    #[arg(long, env = "SEALED_SECRETS_SCOPE", value_name = "SCOPE")]
    pub scope: Option<Scope>,

    /// Name of the Secret (overrides the input's metadata.name; needed by --raw in strict scope).
    #[arg(long, env = "SEALED_SECRETS_NAME")]
    pub name: Option<String>,

    /// Namespace of the Secret when the input has none (default: the kubeconfig's).
    #[arg(short = 'n', long, env = "SEALED_SECRETS_NAMESPACE")]
    pub namespace: Option<String>,

    /// Encrypt one value (from stdin or --from-file) and print only its sealed base64 form.
    #[arg(long, env = "SEALED_SECRETS_RAW")]
    pub raw: bool,

    /// With --raw: the value to seal, as [key=]path (one only; /dev/stdin works).
    #[arg(long = "from-file", value_name = "[KEY=]PATH")]
    pub from_file: Vec<String>,

    /// Seal the input Secret's keys into this existing SealedSecret file (under its name, namespace
    /// and scope), editing it in place: only the merged values and labels/annotations change;
    /// comments and formatting are kept.
    #[arg(
        long = "merge-into",
        env = "SEALED_SECRETS_MERGE_INTO",
        value_name = "FILE"
    )]
    pub merge_into: Option<PathBuf>,

    /// Allow sealing a Secret that has no data.
    #[arg(long = "allow-empty-data", env = "SEALED_SECRETS_ALLOW_EMPTY_DATA")]
    pub allow_empty_data: bool,

    /// Print the sealing certificate (from --cert or the controller) and exit. A certificate from
    /// the controller is cached under $XDG_CACHE_HOME/kubeseal, with a warning on stderr when it
    /// changed since the last fetch.
    #[arg(long = "fetch-cert", env = "SEALED_SECRETS_FETCH_CERT")]
    pub fetch_cert: bool,

    /// Ask the controller whether each input SealedSecret can be decrypted. With --cert, check
    /// offline instead what the certificate alone can tell (every value well-formed and sealed
    /// to a key of the certificate's size, name, namespace and scope annotations consistent),
    /// naming every problem.
    #[arg(long, env = "SEALED_SECRETS_VALIDATE")]
    pub validate: bool,

    /// Re-encrypt SealedSecrets with the newest sealing key. Without PATHs: the SealedSecrets of
    /// stdin (or -f) through the controller, printed (or written back to -f). With PATHs: every
    /// SealedSecret in those files and directories, each file rewritten in place with only its
    /// sealed values changed; through the controller, or offline with --recovery-private-key
    /// (sealing to --cert, else to the backup's newest key).
    #[arg(
        long = "re-encrypt",
        alias = "rotate",
        env = "SEALED_SECRETS_RE_ENCRYPT"
    )]
    pub re_encrypt: bool,

    /// Decrypt SealedSecrets offline with --recovery-private-key and print the Secrets.
    #[arg(long = "recovery-unseal", env = "SEALED_SECRETS_RECOVERY_UNSEAL")]
    pub recovery_unseal: bool,

    /// Private keys for --recovery-unseal: PEM files, key Secrets (YAML/JSON), a List of them,
    /// or an encrypted backup from --backup-keys (opened with --recovery-identity). Repeat the
    /// flag or separate files with commas.
    #[arg(
        long = "recovery-private-key",
        value_delimiter = ',',
        env = "SEALED_SECRETS_RECOVERY_PRIVATE_KEY",
        value_name = "FILE"
    )]
    pub recovery_private_key: Vec<PathBuf>,

    /// age identity file opening encrypted --recovery-private-key backups (AGE-SECRET-KEY-1...
    /// lines, or an unencrypted SSH private key). Repeatable. Without it: $SOPS_AGE_KEY_FILE,
    /// then $SOPS_AGE_KEY.
    #[arg(
        long = "recovery-identity",
        env = "SEALED_SECRETS_RECOVERY_IDENTITY",
        value_delimiter = ',',
        value_name = "FILE"
    )]
    pub recovery_identity: Vec<PathBuf>,

    /// Back up every sealing key into FILE, encrypted with age to --recipient/--recipients-file.
    /// The keys are the sealedsecrets.bitnami.com/sealed-secrets-key Secrets of
    /// --controller-namespace (read through the Kubernetes API), or the key files given with
    /// --backup-keys-from. `age -d -i KEY FILE | kubectl apply -f -` restores them.
    #[arg(long = "backup-keys", value_name = "FILE")]
    pub backup_keys: Option<PathBuf>,

    /// With --backup-keys: back up these key files or directories (`secrets-controller keygen`
    /// output, PEM keys, key Secrets) instead of the cluster's keys. Repeatable.
    #[arg(long = "backup-keys-from", value_name = "FILE|DIR")]
    pub backup_keys_from: Vec<PathBuf>,

    /// With --backup-keys: who can open the backup, an age public key (age1...) or an SSH public
    /// key (ssh-ed25519 ..., ssh-rsa ...). Repeatable.
    #[arg(short = 'r', long = "recipient", value_name = "RECIPIENT")]
    pub recipients: Vec<String>,

    /// With --backup-keys: a file of recipients, one per line (`#` comments), as `age -R` reads.
    #[arg(short = 'R', long = "recipients-file", value_name = "FILE")]
    pub recipients_files: Vec<PathBuf>,

    /// With --re-encrypt: files and directories (searched recursively) holding SealedSecrets,
    /// also inside multi-document files and Lists.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// With --re-encrypt PATH: only files whose path below a directory argument matches this
    /// glob (repeatable; default *.yaml, *.yml, *.json).
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,

    /// With --re-encrypt PATH: skip files whose path below a directory argument matches this glob.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,

    /// With --re-encrypt PATH: list the files that would change, change nothing.
    #[arg(long = "dry-run")]
    pub dry_run: bool,

    /// Name of the controller's Service.
    #[arg(
        long = "controller-name",
        default_value = "sealed-secrets-controller",
        env = "SEALED_SECRETS_CONTROLLER_NAME"
    )]
    pub controller_name: String,

    /// Namespace of the controller's Service.
    #[arg(
        long = "controller-namespace",
        default_value = "kube-system",
        env = "SEALED_SECRETS_CONTROLLER_NAMESPACE"
    )]
    pub controller_namespace: String,

    /// Path to the kubeconfig file (default: $KUBECONFIG or ~/.kube/config).
    #[arg(long, env = "SEALED_SECRETS_KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context to use.
    #[arg(long, env = "SEALED_SECRETS_CONTEXT")]
    pub context: Option<String>,

    /// Kubeconfig cluster to use.
    #[arg(long)]
    pub cluster: Option<String>,

    /// Kubeconfig user to use.
    #[arg(long)]
    pub user: Option<String>,
}
