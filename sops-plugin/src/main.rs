//! `sops-plugin`: decrypt/encrypt SOPS files with age keys and render Argo CD applications.
//!
//! - `cli`: the flags of every subcommand
//! - `commands`: one function per subcommand

mod cli;
mod commands;

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

use cli::{Cli, Cmd};

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Decrypt(a) => commands::decrypt(a),
        Cmd::Encrypt(a) => commands::encrypt(a),
        Cmd::Set(a) => commands::set(a),
        Cmd::Unset(a) => commands::unset(a),
        Cmd::Updatekeys(a) => commands::updatekeys(a),
        Cmd::Rotate(a) => commands::rotate(a),
        Cmd::Krm => commands::krm(),
        Cmd::Discover(a) => commands::discover(a),
        Cmd::Generate(a) => commands::generate(a),
    }
}

fn main() -> ExitCode {
    // Installed under the name `ksops`, the binary is a drop-in KRM exec function.
    let as_ksops = std::env::args_os()
        .next()
        .and_then(|a| Path::new(&a).file_name().map(|n| n == "ksops"))
        .unwrap_or(false);
    let result = if as_ksops {
        commands::krm()
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
