//! Executes one command line against a [`Director`]: parse, apply or list,
//! print ipvsadm's output and return ipvsadm's exit code.

use crate::cli::{parse_args, Invocation, ListTarget};
use crate::format;
use crate::resolve::Resolver;
use crate::restore::parse_restore;
use crate::save::save;
use crate::usage::{help_text, VERSION_LINE};
use rvs_api::{Director, DirectorError};
use std::io::{Read, Write};

/// The second line of the "can't reach the director" message.
pub const INIT_HINT: &str =
    "Are you sure that rvsd is running and its control socket is reachable?";

/// ipvsadm's text and exit code for a director failure. `Transport`
/// messages should name the control socket; they are printed in ipvsadm's
/// "Can't initialize ipvs" form with rc 2.
pub fn director_error_text(error: &DirectorError) -> (String, i32) {
    match error {
        DirectorError::Apply { error, .. } => (error.to_string(), 255),
        DirectorError::Transport(msg) => (format!("Can't initialize ipvs: {msg}\n{INIT_HINT}"), 2),
        DirectorError::PermissionDenied => (
            format!("Can't initialize ipvs: Permission denied (you must be root)\n{INIT_HINT}"),
            2,
        ),
    }
}

fn fail(stderr: &mut dyn Write, message: &str, code: i32) -> i32 {
    let _ = writeln!(stderr, "{message}");
    code
}

fn director_fail(stderr: &mut dyn Write, error: &DirectorError) -> i32 {
    let (text, code) = director_error_text(error);
    fail(stderr, &text, code)
}

/// Runs one invocation. `args` excludes the program name; `program` is the
/// name ipvsadm would print in its try-help line (its `argv[0]`).
/// Returns the process exit code.
#[allow(clippy::too_many_arguments)]
pub fn run(
    args: &[String],
    program: &str,
    director: &mut dyn Director,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    resolver: &dyn Resolver,
) -> i32 {
    let invocation = match parse_args(args, program, resolver) {
        Ok(i) => i,
        Err(e) => return fail(stderr, &e.message, e.exit_code),
    };
    match invocation {
        Invocation::Help => {
            let _ = stdout.write_all(help_text(program).as_bytes());
            0
        }
        Invocation::Version => {
            let _ = writeln!(stdout, "{VERSION_LINE}");
            0
        }
        Invocation::Apply(commands) => match director.apply(commands) {
            Ok(()) => 0,
            Err(e) => director_fail(stderr, &e),
        },
        Invocation::List(opts) => match opts.target {
            ListTarget::Connections => match director.connections() {
                Ok(conns) => {
                    let text = if opts.json {
                        format::json::list_connections(&conns)
                    } else {
                        format::list_connections(&conns, &opts, resolver)
                    };
                    let _ = stdout.write_all(text.as_bytes());
                    0
                }
                Err(e) => director_fail(stderr, &e),
            },
            ListTarget::Timeouts => match director.timeouts() {
                Ok(t) => {
                    let text = if opts.json {
                        format::json::list_timeouts(&t)
                    } else {
                        format::list_timeouts(&t)
                    };
                    let _ = stdout.write_all(text.as_bytes());
                    0
                }
                Err(e) => director_fail(stderr, &e),
            },
            ListTarget::Daemons => {
                // rvs runs no connection sync daemon: nothing to list.
                if opts.json {
                    let _ = stdout.write_all(format::json::list_daemons().as_bytes());
                }
                0
            }
            ListTarget::All | ListTarget::Service(_) => match director.table() {
                Ok(table) => match format::render_table_listing(&table, &opts, resolver) {
                    Some(text) => {
                        let _ = stdout.write_all(text.as_bytes());
                        0
                    }
                    None => fail(stderr, "No such service", 1),
                },
                Err(e) => director_fail(stderr, &e),
            },
        },
        Invocation::Save { numeric } => {
            let table = match director.table() {
                Ok(t) => t,
                Err(e) => return director_fail(stderr, &e),
            };
            let timeouts = match director.timeouts() {
                Ok(t) => t,
                Err(e) => return director_fail(stderr, &e),
            };
            let _ = stdout.write_all(save(&table, Some(&timeouts), numeric, resolver).as_bytes());
            0
        }
        Invocation::Restore => {
            let mut bytes = Vec::new();
            if let Err(e) = stdin.read_to_end(&mut bytes) {
                return fail(stderr, &format!("cannot read standard input: {e}"), 2);
            }
            let text = String::from_utf8_lossy(&bytes);
            let script = match parse_restore(&text, program, resolver) {
                Ok(s) => s,
                Err(e) => return fail(stderr, &e.to_string(), e.error.exit_code),
            };
            if script.commands.is_empty() {
                return 0;
            }
            match director.apply(script.commands) {
                Ok(()) => 0,
                Err(DirectorError::Apply { index, error }) => {
                    let line = script.lines.get(index).copied().unwrap_or(0);
                    fail(stderr, &format!("line {line}: {error}"), 255)
                }
                Err(e) => director_fail(stderr, &e),
            }
        }
        Invocation::StartDaemon(_) => fail(
            stderr,
            "Protocol not available (rvs has no connection sync daemon)",
            255,
        ),
        // ipvsadm's text for stop_daemon ESRCH; rvs never runs one.
        Invocation::StopDaemon { .. } => fail(stderr, "No daemon is running", 255),
        Invocation::ShowSysctl { .. } => fail(
            stderr,
            "reading IPVS settings is not supported by this director yet; use --sysctl name=value",
            1,
        ),
    }
}
