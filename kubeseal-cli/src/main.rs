//! `kubeseal`: seal Secrets for a cluster, check and re-encrypt SealedSecrets, and recover them
//! offline from backed-up keys. Flags and output follow Bitnami's kubeseal.

mod cert_cache;
mod cli;
mod commands;
mod input;
mod key_sources;
mod merge;
mod output;
mod reencrypt;
mod remote;
mod rewrite;

use std::process::ExitCode;

use clap::{CommandFactory as _, Parser as _};

fn main() -> ExitCode {
    // One TLS backend for kube and reqwest, whatever features their crates enable.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = cli::Cli::parse();
    if let Some(cli::Command::Completion { shell }) = cli.command {
        clap_complete::generate(
            shell,
            &mut cli::Cli::command(),
            "kubeseal",
            &mut std::io::stdout(),
        );
        return ExitCode::SUCCESS;
    }
    match commands::run(&cli.args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
