//! rvsadm: the ipvsadm 1.31 command line for rvs.
//!
//! It turns an ipvsadm argv into [`rvs_core::Command`]s or a listing
//! request ([`cli`]), prints listings and save files byte for byte as
//! ipvsadm does ([`format`], [`save`]), validates whole restore streams
//! before applying them ([`restore`]), and runs all that against any
//! [`rvs_api::Director`] ([`run()`]). Name lookups go through a
//! [`resolve::Resolver`]: the binary asks the C library (nsswitch, as
//! ipvsadm does); tests inject file-based or numeric resolvers.
//! As `ipvsadm-save` / `ipvsadm-restore` (by program name) and with
//! `--save-rules` / `--load-rules` it saves and restores whole tables
//! ([`rules`]). It holds no state of its own; its only network use is the C library's
//! name lookups when listing without `-n`.

#![forbid(unsafe_code)]

pub mod addr;
pub mod cli;
pub mod format;
pub mod health;
pub mod resolve;
pub mod restore;
pub mod rules;
pub mod run;
pub mod save;
pub mod usage;

pub use cli::{parse_args, CliError, Invocation, ListOptions, ListTarget, ListView};
pub use resolve::{FileResolver, NumericResolver, Resolver};
pub use run::run;

/// Removes rvs's own `--socket PATH` / `--socket=PATH` from an argv
/// (without program name) and returns the path, so the rest is pure ipvsadm
/// syntax. Only the first occurrence is taken.
pub fn take_socket_arg(args: &[String]) -> (Option<String>, Vec<String>) {
    let mut rest = Vec::with_capacity(args.len());
    let mut socket = None;
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if socket.is_none() {
            if let Some(path) = a.strip_prefix("--socket=") {
                socket = Some(path.to_string());
                i += 1;
                continue;
            }
            if a == "--socket" {
                if let Some(path) = args.get(i + 1) {
                    socket = Some(path.clone());
                    i += 2;
                    continue;
                }
            }
        }
        rest.push(a.clone());
        i += 1;
    }
    (socket, rest)
}
