//! ipvsadm's command line: argv -> [`Invocation`], or a [`CliError`] with
//! ipvsadm's exact message and exit code.
//!
//! [`popt`] scans options like libpopt, [`parse`] applies them in argv
//! order the way ipvsadm's option loop does (so errors come out in the same
//! order), and [`validate`] does the legality table, the semantic checks
//! and builds the result.

mod parse;
mod popt;
mod validate;

use crate::resolve::Resolver;
use rvs_core::{Command, ServiceKey};
use std::fmt;
use std::net::IpAddr;

/// What one ipvsadm command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// Configuration changes (`-A -E -D -C -a -e -d -Z --set`, and
    /// `--sysctl name=value`), applied as one batch.
    Apply(Vec<Command>),
    /// `-L`/`-l` and its variants (also an empty argv).
    List(ListOptions),
    /// `-S [-n]`.
    Save { numeric: bool },
    /// `-R`: restore commands from standard input.
    Restore,
    /// `-h`.
    Help,
    /// `-v`.
    Version,
    /// `--start-daemon master|backup [daemon options]`.
    StartDaemon(DaemonConfig),
    /// `--stop-daemon master|backup [--syncid N]`.
    StopDaemon {
        role: DaemonRole,
        syncid: Option<u8>,
    },
    /// rvs extension: `--sysctl` or `--sysctl name` shows settings.
    ShowSysctl { name: Option<String> },
}

/// What `-L` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListTarget {
    /// Every service (with the version header).
    All,
    /// One service (`-L -t addr:port`), no header.
    Service(ServiceKey),
    /// `-L -c`.
    Connections,
    /// `-L --timeout`.
    Timeouts,
    /// `-L --daemon`.
    Daemons,
}

/// Which columns a listing shows; when several are asked for, ipvsadm's
/// precedence applies (stats > rate > thresholds > persistent-conn >
/// tun-info).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListView {
    Normal,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    TunInfo,
}

/// Options of a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListOptions {
    pub target: ListTarget,
    pub view: ListView,
    /// `-n`: no name lookups.
    pub numeric: bool,
    /// `--exact`: no K/M/G/T abbreviations.
    pub exact: bool,
    /// `--nosort`: the director's order.
    pub nosort: bool,
    /// rvs extension `--json`.
    pub json: bool,
}

impl ListOptions {
    /// `ipvsadm` without arguments: everything, with names.
    pub fn default_all() -> ListOptions {
        ListOptions {
            target: ListTarget::All,
            view: ListView::Normal,
            numeric: false,
            exact: false,
            nosort: false,
            json: false,
        }
    }
}

/// Sync daemon role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaemonRole {
    Master,
    Backup,
}

/// `--start-daemon` parameters, with ipvsadm's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonConfig {
    pub role: DaemonRole,
    /// `--mcast-interface`, default `eth0`.
    pub mcast_interface: String,
    /// `--syncid`, default 0.
    pub syncid: u8,
    pub sync_maxlen: Option<u16>,
    pub mcast_group: Option<IpAddr>,
    pub mcast_port: Option<u16>,
    pub mcast_ttl: Option<u8>,
}

/// A command line ipvsadm would refuse: the exact text it prints on stderr
/// (without the final newline) and its exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    pub message: String,
    pub exit_code: i32,
}

impl CliError {
    /// ipvsadm's `fail(2, ...)`.
    pub(crate) fn usage(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            exit_code: 2,
        }
    }

    /// ipvsadm's try-help exit (rc 255).
    pub(crate) fn try_help(program: &str) -> CliError {
        CliError {
            message: format!("Try `{program} -h' or '{program} --help' for more information."),
            exit_code: 255,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// Parses one command line. `args` excludes the program name; `program` is
/// what the try-help message names (ipvsadm prints its `argv[0]`).
/// An empty `args` lists everything with names, as ipvsadm does.
pub fn parse_args(
    args: &[String],
    program: &str,
    resolver: &dyn Resolver,
) -> Result<Invocation, CliError> {
    if args.is_empty() {
        return Ok(Invocation::List(ListOptions::default_all()));
    }
    parse::parse(args, program, resolver, false)
}

/// Parses one line of a restore stream (`-R` is refused there, as in
/// ipvsadm, which would otherwise loop).
pub(crate) fn parse_restore_line(
    args: &[String],
    program: &str,
    resolver: &dyn Resolver,
) -> Result<Invocation, CliError> {
    parse::parse(args, program, resolver, true)
}
