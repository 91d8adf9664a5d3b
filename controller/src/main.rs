//! `secrets-controller`: runs in the cluster to unseal SealedSecrets and sync ExternalSecrets;
//! its subcommands make sealing keys and check SealedSecrets offline.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use controller::duration::parse_go_duration;

#[derive(Debug, Parser)]
#[command(
    name = "secrets-controller",
    version,
    about = "Keeps Kubernetes Secrets in step with SealedSecrets and ExternalSecrets."
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    run: controller::run::RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Make a sealing key pair like the controller does: tls.key, tls.crt and the key Secret
    /// manifest, ready for `kubectl apply` (bring your own key) or `kubeseal --cert tls.crt`.
    Keygen {
        /// Directory to write the files to.
        #[arg(long, value_name = "DIR")]
        out_dir: PathBuf,
        /// RSA key size in bits.
        #[arg(long, default_value_t = 4096)]
        key_size: usize,
        /// Common name of the certificate.
        #[arg(long, default_value = "")]
        my_cn: String,
        /// Certificate validity (Go duration).
        #[arg(long, default_value = "87600h")]
        key_ttl: String,
        /// Name of the key Secret.
        #[arg(long, default_value = "sealed-secrets-key")]
        name: String,
        /// Namespace of the key Secret (the controller's namespace).
        #[arg(long, default_value = "kube-system")]
        namespace: String,
    },
    /// Print the Secrets the controller would create from SealedSecret files, values hidden
    /// unless --show-values. Exits non-zero when any SealedSecret cannot be unsealed.
    Unseal {
        /// Private keys: a file (PEM, key Secret YAML/JSON, a List, or an age-encrypted key
        /// backup made by `kubeseal --backup-keys`) or a directory of them.
        #[arg(long, value_name = "DIR|FILE")]
        keys: PathBuf,
        /// age identity file (AGE-SECRET-KEY-1... lines, or an SSH private key) that opens an
        /// encrypted --keys backup; repeatable. Default: $SOPS_AGE_KEY_FILE, then $SOPS_AGE_KEY.
        #[arg(long = "identity", short = 'i', value_name = "FILE")]
        identities: Vec<PathBuf>,
        /// SealedSecret files to read (default: stdin).
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Print the secret values instead of their sizes.
        #[arg(long)]
        show_values: bool,
    },
}

// `--features dhat`: a heap profile of the whole run, written to dhat-heap.json on exit.
#[cfg(feature = "dhat")]
#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn main() -> ExitCode {
    // One TLS backend for kube, reqwest and the AWS SDK, whatever features their crates enable.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let result = match cli.command {
        Some(Command::Keygen {
            out_dir,
            key_size,
            my_cn,
            key_ttl,
            name,
            namespace,
        }) => (|| {
            let ttl = parse_go_duration(&key_ttl).context("--key-ttl")?;
            for path in
                controller::offline::keygen(&out_dir, key_size, &my_cn, ttl, &name, &namespace)?
            {
                println!("wrote {}", path.display());
            }
            Ok(())
        })(),
        Some(Command::Unseal {
            keys,
            identities,
            files,
            show_values,
        }) => unseal(
            &keys,
            &sealing::backup::IdentitySource { files: identities },
            &files,
            show_values,
        ),
        None => {
            // Bitnami's chart runs the binary as `controller`; argv[0] picks the chart role.
            let program = std::env::args().next().unwrap_or_default();
            let mut args = cli.run;
            let warnings = controller::chart_args::resolve(&mut args, &matches, &program);
            if args.print_config {
                for warning in &warnings {
                    eprintln!("warning: {warning}");
                }
                print!("{}", controller::chart_args::describe(&args));
                Ok(())
            } else {
                run(args, &warnings)
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: controller::run::RunArgs, warnings: &[String]) -> Result<()> {
    #[cfg(feature = "dhat")]
    let _profiler = dhat::Profiler::new_heap();
    controller::run::init_logging(&args);
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(controller::run::run(args))
}

fn unseal(
    keys: &std::path::Path,
    identities: &sealing::backup::IdentitySource,
    files: &[PathBuf],
    show_values: bool,
) -> Result<()> {
    let pairs = controller::offline::load_keys(keys, identities)?;
    let key_refs: Vec<&sealing::PrivateKey> = pairs.iter().map(|p| &p.private).collect();
    let inputs: Vec<(String, zeroize::Zeroizing<String>)> = if files.is_empty() {
        vec![("stdin".to_string(), controller::offline::read_input(None)?)]
    } else {
        files
            .iter()
            .map(|f| {
                Ok((
                    f.display().to_string(),
                    controller::offline::read_input(Some(f))?,
                ))
            })
            .collect::<Result<_>>()?
    };
    let mut failures = Vec::new();
    for (source, text) in &inputs {
        let (out, failed) =
            controller::offline::unseal_documents(text, source, &key_refs, show_values)?;
        print!("{}", zeroize::Zeroizing::new(out).as_str());
        failures.extend(failed);
    }
    for failure in &failures {
        eprintln!("error: {failure}");
    }
    if !failures.is_empty() {
        anyhow::bail!("{} SealedSecret(s) could not be unsealed", failures.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory as _;
        super::Cli::command().debug_assert();
    }
}
