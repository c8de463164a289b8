//! `-R`: a whole restore stream -> commands, validated before anything is
//! applied.
//!
//! Each line is tokenised like ipvsadm's config_stream: words separated by
//! spaces, tabs or carriage returns; everything from a `#` to the end of the
//! line is a comment; a leading `ipvsadm` word is dropped; lines with no
//! words are skipped. Each line is then parsed exactly like a command line.
//!
//! Deliberate difference from ipvsadm: ipvsadm applies lines one by one,
//! stops at the first parse error with half the file applied, and goes on
//! after kernel errors. rvsadm parses every line first and produces no
//! command at all if any line is wrong (`line N: <message>`); the caller then
//! applies the whole batch atomically. Only configuration commands are
//! accepted in a restore stream (ipvsadm would also run `-L`, `-S`, `-h`).
//! `#` comments are skipped; real ipvsadm 1.31 does not actually skip a
//! `# comment` line (refvm: it answers with its try-help message, rc 255),
//! which is why its `ipvsadm-restore` script filters them with grep first.

use crate::cli::{parse_restore_line, CliError, Invocation};
use crate::resolve::Resolver;
use rvs_core::Command;
use std::fmt;

/// A restore stream that failed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreError {
    /// 1-based line number.
    pub line: usize,
    pub error: CliError,
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.error.message)
    }
}

impl std::error::Error for RestoreError {}

/// The validated commands of a restore stream and the line each came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreScript {
    pub commands: Vec<Command>,
    /// `lines[i]` is the 1-based line of `commands[i]`.
    pub lines: Vec<usize>,
}

/// Splits a restore stream into (line number, words) for non-empty lines.
pub fn tokenize(text: &str) -> Vec<(usize, Vec<String>)> {
    let mut out = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.split('#').next().unwrap_or("");
        let mut words: Vec<String> = line
            .split([' ', '\t', '\r'])
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect();
        if words.first().is_some_and(|w| w == "ipvsadm") {
            words.remove(0);
        }
        if !words.is_empty() {
            out.push((i + 1, words));
        }
    }
    out
}

/// Parses and validates a whole restore stream.
pub fn parse_restore(
    text: &str,
    program: &str,
    resolver: &dyn Resolver,
) -> Result<RestoreScript, RestoreError> {
    let mut script = RestoreScript::default();
    for (line, words) in tokenize(text) {
        match parse_restore_line(&words, program, resolver) {
            Ok(Invocation::Apply(commands)) => {
                for c in commands {
                    script.commands.push(c);
                    script.lines.push(line);
                }
            }
            Ok(_) => {
                return Err(RestoreError {
                    line,
                    error: CliError {
                        message: "only configuration commands are allowed in a restore stream"
                            .to_string(),
                        exit_code: 2,
                    },
                })
            }
            Err(error) => return Err(RestoreError { line, error }),
        }
    }
    Ok(script)
}
