//! Executes one command line against a [`Director`]: parse, apply or list,
//! print ipvsadm's output and return ipvsadm's exit code. The program name
//! picks the personality first (`ipvsadm-save`, `ipvsadm-restore`, see
//! [`crate::rules`]), and `--save-rules` / `--load-rules` are handled before
//! ipvsadm's parser sees the arguments.

use crate::cli::{parse_args, Invocation, ListTarget};
use crate::format;
use crate::resolve::Resolver;
use crate::restore::parse_restore;
use crate::rules::{self, Personality, RulesOp};
use crate::save::save;
use crate::usage::{help_text, VERSION_LINE};
use rvs_api::protocol::os_error_text;
use rvs_api::{Director, DirectorError};
use rvs_core::ApplyError;
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

/// The whole of standard input as text.
fn read_all(stdin: &mut dyn Read) -> Result<String, String> {
    let mut bytes = Vec::new();
    stdin
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read standard input: {e}"))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The save text with everything rvs saves (timeouts, knobs).
fn save_text(
    director: &mut dyn Director,
    numeric: bool,
    resolver: &dyn Resolver,
) -> Result<String, DirectorError> {
    let table = director.table()?;
    let timeouts = director.timeouts()?;
    let knobs = director.knobs()?;
    Ok(save(&table, Some(&timeouts), &knobs, numeric, resolver))
}

/// `--save-rules` / `--load-rules`.
fn run_rules(
    op: RulesOp,
    program: &str,
    director: &mut dyn Director,
    stderr: &mut dyn Write,
    resolver: &dyn Resolver,
) -> i32 {
    match op {
        RulesOp::Save(path) => {
            let text = match save_text(director, true, resolver) {
                Ok(t) => t,
                Err(e) => return director_fail(stderr, &e),
            };
            match rules::write_atomically(&path, text.as_bytes()) {
                Ok(()) => 0,
                Err(e) => fail(
                    stderr,
                    &format!("cannot write {}: {}", path.display(), os_error_text(&e)),
                    2,
                ),
            }
        }
        RulesOp::Load(path) => match std::fs::read(&path) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                let origin = path.display().to_string();
                rules::replace_from_text(&text, program, Some(&origin), director, stderr, resolver)
            }
            Err(e) => fail(
                stderr,
                &format!("cannot read {}: {}", path.display(), os_error_text(&e)),
                2,
            ),
        },
    }
}

/// Runs one invocation. `args` excludes the program name; `program` is the
/// name ipvsadm would print in its try-help line (its `argv[0]`); its base
/// name also selects the `ipvsadm-save` / `ipvsadm-restore` behaviour.
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
    match rules::personality(program) {
        Personality::Ipvsadm => {}
        Personality::Save => {
            let mut with_save = Vec::with_capacity(args.len() + 1);
            with_save.push("-S".to_string());
            with_save.extend_from_slice(args);
            return run_ipvsadm(
                &with_save, program, director, stdin, stdout, stderr, resolver,
            );
        }
        Personality::Restore => {
            if !args.is_empty() {
                return fail(
                    stderr,
                    &format!(
                        "{program} takes no arguments; it reads the rules from standard input"
                    ),
                    2,
                );
            }
            return match read_all(stdin) {
                Ok(text) => {
                    rules::replace_from_text(&text, program, None, director, stderr, resolver)
                }
                Err(msg) => fail(stderr, &msg, 2),
            };
        }
    }
    // rvs extensions: --reload, --health, --drain, --clear-override.
    match crate::health::parse_health_op(args, program, resolver) {
        Some(Ok(op)) => {
            let poll = std::time::Duration::from_secs(1);
            return crate::health::run_health_op(op, director, stdout, stderr, poll);
        }
        Some(Err(msg)) => return fail(stderr, &msg, 2),
        None => {}
    }
    match rules::parse_rules_op(args) {
        Some(Ok(op)) => run_rules(op, program, director, stderr, resolver),
        Some(Err(msg)) => fail(stderr, &msg, 2),
        None => run_ipvsadm(args, program, director, stdin, stdout, stderr, resolver),
    }
}

/// ipvsadm's own command line.
#[allow(clippy::too_many_arguments)]
fn run_ipvsadm(
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
        Invocation::Save { numeric } => match save_text(director, numeric, resolver) {
            Ok(text) => {
                let _ = stdout.write_all(text.as_bytes());
                0
            }
            Err(e) => director_fail(stderr, &e),
        },
        Invocation::Restore => {
            let text = match read_all(stdin) {
                Ok(t) => t,
                Err(msg) => return fail(stderr, &msg, 2),
            };
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
        Invocation::ShowSysctl { name } => match director.knobs() {
            Ok(knobs) => match name {
                None => {
                    let text: String = knobs
                        .iter()
                        .map(|k| format!("{}={}\n", k.name, k.value))
                        .collect();
                    let _ = stdout.write_all(text.as_bytes());
                    0
                }
                Some(name) => match knobs.iter().find(|k| k.name == name) {
                    Some(k) => {
                        let _ = writeln!(stdout, "{}={}", k.name, k.value);
                        0
                    }
                    None => fail(stderr, &ApplyError::UnknownKnob(name).to_string(), 255),
                },
            },
            Err(e) => director_fail(stderr, &e),
        },
    }
}
