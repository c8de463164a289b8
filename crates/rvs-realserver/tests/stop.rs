//! `stop` ends a decapsulator that ignores SIGTERM (SIGKILL after the
//! grace period) instead of reporting it stopped while it runs on.
//!
//! The "decapsulator" is a `sleep` renamed `rvs-realserver-...` (what
//! `stop` checks in `/proc/<pid>/cmdline`) with SIGTERM ignored, started
//! by this test in this test's namespace, and killed by PID on every exit
//! path, as is its run directory. `stop` reads `ip -o -4 addr show dev lo` and changes nothing
//! else: the state file names no VIP and no saved sysctl.

use rvs_realserver::service::{stop, Options};
use rvs_realserver::setup::{state_path, store_state, State};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The stand-in decapsulator; killed and reaped on drop.
struct Sleeper(Child);

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The run directory; removed on drop, panics included.
struct RunDir(std::path::PathBuf);

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

#[test]
fn stop_kills_a_decapsulator_that_ignores_sigterm() {
    if Command::new("bash").arg("-c").arg("true").status().is_err() {
        eprintln!("skipped: needs bash");
        return;
    }
    let run_dir =
        RunDir(std::env::temp_dir().join(format!("rvs-realserver-stop-{}", std::process::id())));
    let dir = run_dir.0.clone();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("run dir");
    // SIG_IGN survives exec; `exec -a` names the process.
    let child = Command::new("bash")
        .arg("-c")
        .arg("trap '' TERM; exec -a rvs-realserver-test-sleeper sleep 60")
        .stdin(Stdio::null())
        .spawn()
        .expect("start the sleeper");
    let mut sleeper = Sleeper(child);
    let pid = sleeper.0.id();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cmdline(pid).contains("rvs-realserver") {
        assert!(Instant::now() < deadline, "the sleeper never exec'd");
        std::thread::sleep(Duration::from_millis(10));
    }
    let state = State {
        pid: Some(pid),
        ..State::default()
    };
    store_state(&state_path(&dir).expect("state path"), &state).expect("state file");

    let opts = Options {
        run_dir: dir.clone(),
        ..Options::default()
    };
    let began = Instant::now();
    let report = stop(&opts).expect("stop");
    assert!(
        report.contains(&format!("IPIP decapsulator stopped (pid {pid})")),
        "{report}"
    );
    // Killed, not merely reported: it exits by SIGKILL (9) after the 3 s
    // SIGTERM grace.
    let status = sleeper.0.wait().expect("reap");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    assert!(
        began.elapsed() >= Duration::from_secs(3),
        "{:?}",
        began.elapsed()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
