//! `start`, `stop` and `status` of a DR/TUN real server.
//!
//! `start` is idempotent (a second start adds VIPs and restarts a dead
//! decapsulator, and never overwrites the values saved by the first);
//! `stop` restores the saved sysctls, removes the VIPs and stops the
//! decapsulator; `status` reports each item and says whether everything
//! is in place (exit code 0, else 3 as an LSB init script's status).

use crate::setup::{
    decapsulator_alive, desired_sysctls, lo_addrs, load_state, read_sysctl, run_ip, state_path,
    store_state, write_sysctl, Mode, State,
};
use crate::SetupError;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Default directory of state files and decapsulator logs.
pub const DEFAULT_RUN_DIR: &str = "/run/rvs";
/// Default name of the decapsulator's TUN device.
pub const DEFAULT_DEVICE: &str = "rvstun0";
/// How long `start` waits for the decapsulator's device to appear.
const DEVICE_WAIT: Duration = Duration::from_secs(5);

/// Options shared by the service commands.
#[derive(Debug, Clone)]
pub struct Options {
    pub vips: Vec<Ipv4Addr>,
    pub mode: Option<Mode>,
    pub device: String,
    pub run_dir: PathBuf,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            vips: Vec::new(),
            mode: None,
            device: DEFAULT_DEVICE.to_string(),
            run_dir: PathBuf::from(DEFAULT_RUN_DIR),
        }
    }
}

fn device_exists(dev: &str) -> bool {
    run_ip(&["-o", "link", "show", "dev", dev]).is_ok()
}

/// Set the real server up; returns what was done, one line per item.
pub fn start(opts: &Options) -> Result<String, SetupError> {
    if opts.vips.is_empty() {
        return Err(SetupError::Invalid("start needs at least one --vip".into()));
    }
    let mode = opts.mode.unwrap_or(Mode::Dr);
    let path = state_path(&opts.run_dir)?;
    let mut state = load_state(&path)?;
    let mut report = String::new();
    for (key, value) in desired_sysctls(mode) {
        let old = read_sysctl(key)?;
        state.save_once(key, &old);
        if old != value {
            write_sysctl(key, value)?;
        }
        let _ = writeln!(report, "{key} = {value}");
    }
    let present = lo_addrs()?;
    for vip in &opts.vips {
        if !present.iter().any(|(a, _)| a == vip) {
            run_ip(&["addr", "add", &format!("{vip}/32"), "dev", "lo"])?;
        }
        if !state.vips.contains(vip) {
            state.vips.push(*vip);
        }
        let _ = writeln!(report, "VIP {vip}/32 on lo");
    }
    state.mode = Some(mode);
    store_state(&path, &state)?;
    if mode == Mode::Tun {
        let running = state.pid.filter(|p| decapsulator_alive(*p));
        let pid = match running {
            Some(p) => p,
            None => spawn_decapsulator(opts, &state.vips)?,
        };
        state.pid = Some(pid);
        state.device = Some(opts.device.clone());
        store_state(&path, &state)?;
        let _ = writeln!(
            report,
            "IPIP decapsulator running (pid {pid}, device {})",
            opts.device
        );
    }
    Ok(report)
}

/// Start `rvs-realserver tunnel` in the background (its own process
/// group, so a terminal's Ctrl-C does not reach it) and wait for its
/// device.
fn spawn_decapsulator(opts: &Options, vips: &[Ipv4Addr]) -> Result<u32, SetupError> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().map_err(|e| SetupError::io("current executable", e))?;
    let log = opts
        .run_dir
        .join(format!("realserver-net{}.log", crate::setup::netns_id()?));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(|e| SetupError::io(log.display().to_string(), e))?;
    let err = file
        .try_clone()
        .map_err(|e| SetupError::io(log.display().to_string(), e))?;
    let mut cmd = Command::new(exe);
    cmd.arg("tunnel").args(["--device", &opts.device]);
    for v in vips {
        cmd.args(["--vip", &v.to_string()]);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|e| SetupError::io("start the decapsulator", e))?;
    let deadline = Instant::now() + DEVICE_WAIT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(SetupError::Invalid(format!(
                "the decapsulator exited ({status}): {}",
                text.lines().last().unwrap_or("")
            )));
        }
        if device_exists(&opts.device) {
            return Ok(child.id());
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(SetupError::Invalid(format!(
                "device {} did not appear within {} s",
                opts.device,
                DEVICE_WAIT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Undo `start`: stop the decapsulator, remove the VIPs, restore the
/// saved sysctls. VIPs default to those `start` added.
pub fn stop(opts: &Options) -> Result<String, SetupError> {
    let path = state_path(&opts.run_dir)?;
    let state = load_state(&path)?;
    let mut report = String::new();
    if let Some(pid) = state.pid.filter(|p| decapsulator_alive(*p)) {
        // SIGTERM, then SIGKILL if it is still there after 3 s; the PID
        // is re-checked before each signal (it must still be our
        // decapsulator, not a reused PID).
        let mut stopped = false;
        for (signal, wait) in [("-TERM", 3), ("-KILL", 2)] {
            if !decapsulator_alive(pid) {
                stopped = true;
                break;
            }
            let _ = Command::new("kill")
                .args([signal, &pid.to_string()])
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(wait);
            while decapsulator_alive(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if !stopped && decapsulator_alive(pid) {
            return Err(SetupError::Invalid(format!(
                "the IPIP decapsulator (pid {pid}) does not stop; nothing else was changed"
            )));
        }
        let _ = writeln!(report, "IPIP decapsulator stopped (pid {pid})");
    }
    let vips = if opts.vips.is_empty() {
        state.vips.clone()
    } else {
        opts.vips.clone()
    };
    let present = lo_addrs()?;
    for vip in &vips {
        if let Some((_, len)) = present.iter().find(|(a, _)| a == vip) {
            run_ip(&["addr", "del", &format!("{vip}/{len}"), "dev", "lo"])?;
            let _ = writeln!(report, "VIP {vip} removed from lo");
        }
    }
    let remaining: Vec<Ipv4Addr> = state
        .vips
        .iter()
        .filter(|v| !vips.contains(v))
        .copied()
        .collect();
    if remaining.is_empty() {
        for (key, value) in &state.saved {
            write_sysctl(key, value)?;
            let _ = writeln!(report, "{key} = {value} (restored)");
        }
        let _ = std::fs::remove_file(&path);
    } else {
        let kept = State {
            vips: remaining,
            pid: None,
            ..state
        };
        store_state(&path, &kept)?;
    }
    Ok(report)
}

/// Report the real server's setup; `Ok((text, true))` when everything
/// `start` sets up is in place.
pub fn status(opts: &Options) -> Result<(String, bool), SetupError> {
    let path = state_path(&opts.run_dir)?;
    let state = load_state(&path)?;
    let mode = opts.mode.or(state.mode).unwrap_or(Mode::Dr);
    let vips = if opts.vips.is_empty() {
        state.vips.clone()
    } else {
        opts.vips.clone()
    };
    let mut ok = !vips.is_empty();
    let mut report = format!("mode: {}\n", mode.name());
    let present = lo_addrs()?;
    if vips.is_empty() {
        report.push_str("no VIP configured\n");
    }
    for vip in &vips {
        let up = present.iter().any(|(a, _)| a == vip);
        ok &= up;
        let _ = writeln!(
            report,
            "VIP {vip}/32 on lo: {}",
            if up { "up" } else { "missing" }
        );
    }
    for (key, want) in desired_sysctls(mode) {
        let got = read_sysctl(key).unwrap_or_else(|_| "?".into());
        let good = got == want;
        ok &= good;
        let _ = writeln!(
            report,
            "{key} = {got}{}",
            if good {
                String::new()
            } else {
                format!(" (want {want})")
            }
        );
    }
    if mode == Mode::Tun {
        match state.pid.filter(|p| decapsulator_alive(*p)) {
            Some(pid) => {
                let dev = state.device.as_deref().unwrap_or(DEFAULT_DEVICE);
                let _ = writeln!(
                    report,
                    "IPIP decapsulator: running (pid {pid}, device {dev})"
                );
            }
            None => {
                ok = false;
                report.push_str("IPIP decapsulator: not running\n");
            }
        }
    }
    Ok((report, ok))
}

/// Where state files go by default, overridable for tests and for
/// hosts whose `/run` is read-only.
pub fn run_dir_from_env() -> PathBuf {
    std::env::var_os("RVS_RUN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(DEFAULT_RUN_DIR).to_path_buf())
}
