//! rvsd running inside a director namespace, driven through `rvsadm`
//! exactly as an operator would (`RVS_SOCKET` names its private control
//! socket). Used by the end-to-end tests and the demo.

use crate::netns::{Netns, Spawned};
use crate::TestnetError;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

/// How long rvsd may take to serve its control socket.
const START_WAIT: Duration = Duration::from_secs(20);

/// A running rvsd in `ns`; stopped (SIGKILL) when the namespace is
/// dropped, or cleanly with [`Rvsd::stop`].
#[derive(Debug)]
pub struct Rvsd<'a> {
    pub ns: &'a Netns,
    pub socket: String,
    pub log: PathBuf,
    pub pid: Spawned,
    pub rvsadm: PathBuf,
}

impl<'a> Rvsd<'a> {
    /// Start `rvsd` in `ns` with its socket and log under `dir`, plus
    /// `extra` arguments, and wait until it answers `rvsadm -L -n`.
    pub fn start(
        ns: &'a Netns,
        rvsd: &Path,
        rvsadm: &Path,
        dir: &Path,
        extra: &[&str],
    ) -> Result<Rvsd<'a>, TestnetError> {
        Rvsd::start_wrapped(ns, &[], rvsd, rvsadm, dir, extra)
    }

    /// Like [`Rvsd::start`], with rvsd run through `wrapper` (a command
    /// that execs its arguments in place, such as `env -u VAR` or
    /// `setpriv --bounding-set ... --`, so the PID stays rvsd's).
    pub fn start_wrapped(
        ns: &'a Netns,
        wrapper: &[&str],
        rvsd: &Path,
        rvsadm: &Path,
        dir: &Path,
        extra: &[&str],
    ) -> Result<Rvsd<'a>, TestnetError> {
        let socket = dir.join("rvsd.sock").to_string_lossy().to_string();
        let log = dir.join("rvsd.log");
        let exe = rvsd.to_string_lossy().to_string();
        let mut argv = wrapper.to_vec();
        argv.extend_from_slice(&[exe.as_str(), "--socket", socket.as_str()]);
        argv.extend_from_slice(extra);
        let pid = ns.spawn(&argv, &[], Some(&log))?;
        let d = Rvsd {
            ns,
            socket,
            log,
            pid,
            rvsadm: rvsadm.to_path_buf(),
        };
        let waited = Netns::wait_for("rvsd control socket", START_WAIT, || {
            d.try_ipvsadm(&["-L", "-n"])
                .is_ok_and(|o| o.status.success())
        });
        if let Err(e) = waited {
            return Err(TestnetError::Timeout {
                what: format!("{e}; rvsd log:\n{}", d.log_text()),
                waited_ms: START_WAIT.as_millis(),
            });
        }
        Ok(d)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Run rvsadm with `args` in the director namespace, whatever its
    /// exit status.
    pub fn try_ipvsadm(&self, args: &[&str]) -> Result<Output, TestnetError> {
        let exe = self.rvsadm.to_string_lossy().to_string();
        let mut argv = vec![exe.as_str()];
        argv.extend_from_slice(args);
        self.ns.output(&argv, &[("RVS_SOCKET", &self.socket)])
    }

    /// Run `ipvsadm <line>` (split on whitespace); its stdout, or an
    /// error with its stderr and rvsd's log.
    pub fn ipvsadm(&self, line: &str) -> Result<String, TestnetError> {
        let args: Vec<&str> = line.split_whitespace().collect();
        let out = self.try_ipvsadm(&args)?;
        if !out.status.success() {
            return Err(TestnetError::Failed {
                command: format!("ipvsadm {line}"),
                status: out.status.to_string(),
                stderr: format!(
                    "{}\nrvsd log:\n{}",
                    String::from_utf8_lossy(&out.stderr).trim(),
                    self.log_text()
                ),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Wait until rvsd's log says it steers `services` services and
    /// `nat` NAT sources (the last such line).
    pub fn wait_steering(&self, services: usize, nat: usize) -> Result<(), TestnetError> {
        let want = format!("steering {services} service(s), {nat} NAT source(s)");
        Netns::wait_for(&want, Duration::from_secs(10), || {
            self.log_text()
                .lines()
                .rev()
                .filter_map(|l| l.split("datapath: ").nth(1))
                .find(|l| l.starts_with("steering "))
                .is_some_and(|l| l.starts_with(&want))
        })
    }

    /// Wait until `ipvsadm <args>` prints exactly `expected`; the last
    /// output otherwise.
    pub fn wait_output(&self, args: &str, expected: &str) -> Result<(), String> {
        let mut last = String::new();
        let ok = Netns::wait_for(&format!("ipvsadm {args}"), Duration::from_secs(10), || {
            last = self.ipvsadm(args).unwrap_or_else(|e| e.to_string());
            last == expected
        });
        ok.map_err(|_| {
            format!(
                "ipvsadm {args}:\n{last}\nexpected:\n{expected}\nrvsd log:\n{}",
                self.log_text()
            )
        })
    }

    /// SIGTERM, then SIGKILL after `grace`; the exit status text.
    pub fn stop(&self, grace: Duration) -> Option<String> {
        self.ns.stop(self.pid, grace)
    }
}

/// A workspace binary beside `sibling` (another binary of the same
/// target directory), built with `cargo build -p <package>` when absent.
pub fn workspace_bin(sibling: &Path, package: &str, name: &str) -> Result<PathBuf, TestnetError> {
    let path = sibling.with_file_name(name);
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = std::process::Command::new(&cargo)
            .args(["build", "-p", package, "--bin", name])
            .output()
            .map_err(|source| TestnetError::Spawn {
                command: format!("{cargo} build -p {package}"),
                source,
            })?;
        crate::check(format!("cargo build -p {package} --bin {name}"), out)?;
    }
    Ok(path)
}
