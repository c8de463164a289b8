//! rvs-demo: the seed's walkthroughs.
//!
//! ```text
//! rvs-demo [--mode nat|dr|tun] [--bin-dir DIR]   real packets in network namespaces (root)
//! rvs-demo --engine                               frames through the engine, no root
//! ```
//! The default is the seed's LVS-NAT walkthrough with real packets
//! (`walk.rs`); `--engine` is the same walkthrough fed to an in-process
//! engine (`engine.rs`). `--bin-dir` is where rvsd, rvsadm and
//! rvs-realserver are (default: beside this program).

#![forbid(unsafe_code)]

mod engine;
mod walk;

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rvs-demo: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let mut mode = walk::Mode::Nat;
    let mut engine_only = false;
    let mut bin_dir: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--engine" => engine_only = true,
            "--mode" => {
                mode = match args.next().as_deref() {
                    Some("nat") => walk::Mode::Nat,
                    Some("dr") => walk::Mode::Dr,
                    Some("tun") => walk::Mode::Tun,
                    other => bail!(
                        "--mode takes nat, dr or tun, not {}",
                        other.unwrap_or("nothing")
                    ),
                }
            }
            "--bin-dir" => {
                bin_dir = Some(args.next().context("--bin-dir needs a directory")?.into())
            }
            "-h" | "--help" => {
                println!("usage: rvs-demo [--mode nat|dr|tun] [--bin-dir DIR] | --engine");
                return Ok(());
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    if engine_only {
        return engine::run();
    }
    let dir = match bin_dir {
        Some(d) => d,
        None => std::env::current_exe()?
            .parent()
            .context("no directory of this program")?
            .to_path_buf(),
    };
    walk::run(mode, &walk::Bins::in_dir(&dir)?)
}
