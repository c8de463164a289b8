//! Saved rules: the `ipvsadm-save` / `ipvsadm-restore` personalities and
//! the saved-rules file (`--save-rules` / `--load-rules`).
//!
//! * Invoked as `ipvsadm-save` or `rvsadm-save` (the base name of `argv[0]`,
//!   so a symlink works), rvsadm is `ipvsadm -S` with the same arguments
//!   (`-n` for numeric output), as ipvsadm's own `ipvsadm-save` script is.
//! * Invoked as `ipvsadm-restore` or `rvsadm-restore`, it reads a save
//!   stream from standard input and replaces the whole table with it. Where
//!   ipvsadm's script runs `ipvsadm -C` and then `ipvsadm -R` (a window with
//!   an empty table, and half a table after an error), rvsadm sends the
//!   clear and every command of the stream as one atomic batch: on any error
//!   the table is left as it was.
//! * `rvsadm --save-rules [FILE]` writes the numeric, lossless save of the
//!   table to FILE (default [`DEFAULT_RULES_PATH`]) atomically (a temporary
//!   file in the same directory, synced, then renamed over FILE; missing
//!   parent directories are created). `rvsadm --load-rules [FILE]` replaces
//!   the table with FILE's rules atomically, as `rvsadm-restore` does. Both
//!   must be the only option on the command line; they exist for service
//!   scripts (`save` on stop, `load` on start), like Debian's
//!   `/etc/ipvsadm.rules`.

use crate::resolve::Resolver;
use crate::restore::{parse_restore, RestoreScript};
use rvs_api::{Director, DirectorError};
use rvs_core::Command;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where `--save-rules` and `--load-rules` keep the rules by default.
pub const DEFAULT_RULES_PATH: &str = "/etc/rvs/rules";

/// What the program name asks rvsadm to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Personality {
    /// `ipvsadm`, `rvsadm`, or any other name.
    Ipvsadm,
    /// `ipvsadm-save`, `rvsadm-save`: `-S` plus the arguments.
    Save,
    /// `ipvsadm-restore`, `rvsadm-restore`: atomic clear and restore from stdin.
    Restore,
}

/// The personality for an `argv[0]` (only its base name counts).
pub fn personality(program: &str) -> Personality {
    let base = program.rsplit('/').next().unwrap_or(program);
    match base {
        "ipvsadm-save" | "rvsadm-save" => Personality::Save,
        "ipvsadm-restore" | "rvsadm-restore" => Personality::Restore,
        _ => Personality::Ipvsadm,
    }
}

/// A saved-rules request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RulesOp {
    /// `--save-rules [FILE]`.
    Save(PathBuf),
    /// `--load-rules [FILE]`.
    Load(PathBuf),
}

/// Recognises `--save-rules [FILE]`, `--save-rules=FILE`, `--load-rules
/// [FILE]`, `--load-rules=FILE` as the first argument. `None` when the
/// command line is something else; `Some(Err(message))` when extra
/// arguments follow.
pub fn parse_rules_op(args: &[String]) -> Option<Result<RulesOp, String>> {
    let first = args.first()?;
    let (save, inline) = if let Some(f) = first.strip_prefix("--save-rules=") {
        (true, Some(f))
    } else if let Some(f) = first.strip_prefix("--load-rules=") {
        (false, Some(f))
    } else if first == "--save-rules" {
        (true, None)
    } else if first == "--load-rules" {
        (false, None)
    } else {
        return None;
    };
    let option = if save { "--save-rules" } else { "--load-rules" };
    let (file, rest) = match inline {
        Some(f) => (Some(f), &args[1..]),
        None => (
            args.get(1).map(String::as_str),
            args.get(2..).unwrap_or(&[]),
        ),
    };
    if !rest.is_empty() || file.is_some_and(str::is_empty) {
        return Some(Err(format!(
            "{option} takes at most one argument, a file name (default {DEFAULT_RULES_PATH})"
        )));
    }
    let path = PathBuf::from(file.unwrap_or(DEFAULT_RULES_PATH));
    Some(Ok(if save {
        RulesOp::Save(path)
    } else {
        RulesOp::Load(path)
    }))
}

/// Applies `[Clear] + script` as one batch. Errors name the input line
/// (prefixed by `origin` when given, e.g. the rules file). Returns the exit
/// code: 0, 255 for a refused command, 2 for transport failures.
pub fn apply_replacing(
    director: &mut dyn Director,
    script: RestoreScript,
    origin: Option<&str>,
    stderr: &mut dyn Write,
) -> i32 {
    let mut batch = Vec::with_capacity(script.commands.len() + 1);
    batch.push(Command::Clear);
    batch.extend(script.commands);
    match director.apply(batch) {
        Ok(()) => 0,
        Err(DirectorError::Apply { index, error }) => {
            let line = index
                .checked_sub(1)
                .and_then(|i| script.lines.get(i))
                .copied()
                .unwrap_or(0);
            let prefix = origin.map(|o| format!("{o}: ")).unwrap_or_default();
            let _ = writeln!(stderr, "{prefix}line {line}: {error}");
            255
        }
        Err(e) => {
            let (text, code) = crate::run::director_error_text(&e);
            let _ = writeln!(stderr, "{text}");
            code
        }
    }
}

/// Parses `text` and replaces the table with it atomically (the restore
/// personality and `--load-rules`).
pub fn replace_from_text(
    text: &str,
    program: &str,
    origin: Option<&str>,
    director: &mut dyn Director,
    stderr: &mut dyn Write,
    resolver: &dyn Resolver,
) -> i32 {
    match parse_restore(text, program, resolver) {
        Ok(script) => apply_replacing(director, script, origin, stderr),
        Err(e) => {
            let prefix = origin.map(|o| format!("{o}: ")).unwrap_or_default();
            let _ = writeln!(stderr, "{prefix}{e}");
            e.error.exit_code
        }
    }
}

/// Writes `contents` to `path` so that a reader sees either the old file or
/// the complete new one: temporary file in the same directory, fsync,
/// rename, fsync of the directory. Creates missing parent directories.
pub fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)?;
    let base = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "rules".to_string());
    let tmp = dir.join(format!(".{base}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn personality_uses_the_base_name_only() {
        assert_eq!(personality("ipvsadm-save"), Personality::Save);
        assert_eq!(personality("/usr/sbin/rvsadm-save"), Personality::Save);
        assert_eq!(personality("./ipvsadm-restore"), Personality::Restore);
        assert_eq!(personality("rvsadm-restore"), Personality::Restore);
        assert_eq!(personality("/sbin/ipvsadm"), Personality::Ipvsadm);
        assert_eq!(personality("rvsadm"), Personality::Ipvsadm);
        assert_eq!(personality("ipvsadm-saved"), Personality::Ipvsadm);
        assert_eq!(
            personality("/opt/ipvsadm-save/ipvsadm"),
            Personality::Ipvsadm
        );
    }

    #[test]
    fn rules_options() {
        let p = |a: &[&str]| parse_rules_op(&strings(a));
        assert_eq!(
            p(&["--save-rules"]),
            Some(Ok(RulesOp::Save("/etc/rvs/rules".into())))
        );
        assert_eq!(
            p(&["--load-rules"]),
            Some(Ok(RulesOp::Load("/etc/rvs/rules".into())))
        );
        assert_eq!(
            p(&["--save-rules", "/tmp/r"]),
            Some(Ok(RulesOp::Save("/tmp/r".into())))
        );
        assert_eq!(
            p(&["--load-rules=/tmp/r"]),
            Some(Ok(RulesOp::Load("/tmp/r".into())))
        );
        assert!(matches!(p(&["--save-rules", "a", "b"]), Some(Err(_))));
        assert!(matches!(p(&["--load-rules=a", "b"]), Some(Err(_))));
        assert!(matches!(p(&["--save-rules="]), Some(Err(_))));
        assert_eq!(p(&["-S", "--save-rules"]), None);
        assert_eq!(p(&[]), None);
        assert_eq!(p(&["--save-rulesx"]), None);
    }

    #[test]
    fn atomic_write_replaces_and_creates_directories() {
        let dir = std::env::temp_dir().join(format!("rvsadm-rules-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("sub").join("rules");
        write_atomically(&path, b"one\n").expect("first write");
        assert_eq!(std::fs::read(&path).expect("read"), b"one\n");
        write_atomically(&path, b"two\n").expect("second write");
        assert_eq!(std::fs::read(&path).expect("read"), b"two\n");
        let names: Vec<_> = std::fs::read_dir(dir.join("sub"))
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("rules")],
            "no temp file left"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
