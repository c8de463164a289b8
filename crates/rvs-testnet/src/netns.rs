//! One network namespace owned by the caller, and the processes started
//! in it. Dropping a [`Netns`] kills those processes by PID, then any
//! process still inside the namespace (only this code puts processes
//! there), then deletes the namespace, which also removes its links.

use crate::{check, TestnetError};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name prefix unique to this process and call: `<tag><pid>x<n>`.
/// Namespace names built from it do not collide with other test
/// processes or other topologies of the same process.
pub fn unique_prefix(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{tag}{}x{n}", std::process::id())
}

/// A process started inside a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spawned {
    pub pid: u32,
}

/// A network namespace, deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
    children: Mutex<Vec<Child>>,
}

fn run_command(mut cmd: Command, display: String) -> Result<Output, TestnetError> {
    cmd.stdin(Stdio::null());
    let out = cmd.output().map_err(|source| TestnetError::Spawn {
        command: display.clone(),
        source,
    })?;
    check(display, out)
}

impl Netns {
    /// Create namespace `name` with its loopback up.
    pub fn create(name: &str) -> Result<Netns, TestnetError> {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "add", name]);
        run_command(cmd, format!("ip netns add {name}"))?;
        let ns = Netns {
            name: name.to_string(),
            children: Mutex::new(Vec::new()),
        };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n <ns> <args>`.
    pub fn ip(&self, args: &[&str]) -> Result<Output, TestnetError> {
        let mut cmd = Command::new("ip");
        cmd.arg("-n").arg(&self.name).args(args);
        run_command(cmd, format!("ip -n {} {}", self.name, args.join(" ")))
    }

    fn exec_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).args(args);
        cmd
    }

    /// Run a command inside the namespace; fail unless it exits 0.
    pub fn run(&self, args: &[&str]) -> Result<Output, TestnetError> {
        self.run_env(args, &[])
    }

    /// Like [`Netns::run`] with extra environment variables.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Result<Output, TestnetError> {
        let mut cmd = self.exec_command(args);
        cmd.envs(env.iter().copied());
        run_command(cmd, format!("[{}] {}", self.name, args.join(" ")))
    }

    /// Run a command inside the namespace and return its output whatever
    /// its exit status.
    pub fn output(&self, args: &[&str], env: &[(&str, &str)]) -> Result<Output, TestnetError> {
        let mut cmd = self.exec_command(args);
        cmd.envs(env.iter().copied()).stdin(Stdio::null());
        cmd.output().map_err(|source| TestnetError::Spawn {
            command: format!("[{}] {}", self.name, args.join(" ")),
            source,
        })
    }

    /// Like [`Netns::output`], with `input` on the command's stdin.
    pub fn output_with_input(
        &self,
        args: &[&str],
        env: &[(&str, &str)],
        input: &[u8],
    ) -> Result<Output, TestnetError> {
        use std::io::Write as _;
        let display = format!("[{}] {}", self.name, args.join(" "));
        let mut cmd = self.exec_command(args);
        cmd.envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|source| TestnetError::Spawn {
            command: display.clone(),
            source,
        })?;
        // Feed stdin from another thread while this one drains stdout and
        // stderr: a child that writes a lot before reading all its input
        // would otherwise block both sides forever. A child that exits
        // without reading everything (broken pipe) is reported by its
        // exit status and stderr, and is always reaped.
        let writer = child.stdin.take().map(|mut stdin| {
            let input = input.to_vec();
            std::thread::spawn(move || match stdin.write_all(&input) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e),
                _ => Ok(()),
            })
        });
        let out = child.wait_with_output()?;
        if let Some(w) = writer {
            match w.join() {
                Ok(r) => r?,
                Err(_) => return Err(std::io::Error::other("stdin writer panicked").into()),
            }
        }
        Ok(out)
    }

    /// Write a sysctl inside the namespace (`net.ipv4.ip_forward`, ...).
    pub fn sysctl(&self, key: &str, value: &str) -> Result<(), TestnetError> {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        let script = format!("echo {value} > {path}");
        self.run(&["sh", "-c", &script]).map(|_| ())
    }

    /// Start a long-lived process inside the namespace. Its stdout and
    /// stderr go to `log` (appended) or nowhere. It is killed when this
    /// namespace is dropped, or by [`Netns::stop`].
    pub fn spawn(
        &self,
        args: &[&str],
        env: &[(&str, &str)],
        log: Option<&Path>,
    ) -> Result<Spawned, TestnetError> {
        let mut cmd = self.exec_command(args);
        cmd.envs(env.iter().copied()).stdin(Stdio::null());
        match log {
            Some(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?;
                cmd.stdout(file.try_clone()?).stderr(file);
            }
            None => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        // `ip netns exec` execs the program in place, so the child's PID
        // is the program's.
        let child = cmd.spawn().map_err(|source| TestnetError::Spawn {
            command: format!("[{}] {}", self.name, args.join(" ")),
            source,
        })?;
        let pid = child.id();
        self.lock_children().push(child);
        Ok(Spawned { pid })
    }

    fn lock_children(&self) -> std::sync::MutexGuard<'_, Vec<Child>> {
        self.children.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Is a process this namespace started still running?
    pub fn is_running(&self, p: Spawned) -> bool {
        let mut children = self.lock_children();
        children
            .iter_mut()
            .find(|c| c.id() == p.pid)
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Send SIGTERM to a process this namespace started and wait up to
    /// `grace` for it to exit, then SIGKILL it. Returns its exit status
    /// text, if it was one of ours.
    pub fn stop(&self, p: Spawned, grace: Duration) -> Option<String> {
        let mut child = {
            let mut children = self.lock_children();
            let at = children.iter().position(|c| c.id() == p.pid)?;
            children.swap_remove(at)
        };
        if let Ok(None) = child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &p.pid.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status.to_string());
        }
        let _ = child.kill();
        child.wait().ok().map(|s| s.to_string())
    }

    /// Kill (SIGKILL) a process this namespace started, at once.
    pub fn kill(&self, p: Spawned) {
        let mut children = self.lock_children();
        if let Some(c) = children.iter_mut().find(|c| c.id() == p.pid) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Wait until `probe` succeeds, at most `timeout`.
    pub fn wait_for(
        what: &str,
        timeout: Duration,
        mut probe: impl FnMut() -> bool,
    ) -> Result<(), TestnetError> {
        let start = Instant::now();
        loop {
            if probe() {
                return Ok(());
            }
            if start.elapsed() >= timeout {
                return Err(TestnetError::Timeout {
                    what: what.to_string(),
                    waited_ms: start.elapsed().as_millis(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let mut children = std::mem::take(&mut *self.lock_children());
        for c in &mut children {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Backstop: anything still inside this namespace was started by
        // us through it (e.g. a grandchild); kill it by PID.
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                if pid.chars().all(|c| c.is_ascii_digit()) {
                    let _ = Command::new("kill")
                        .args(["-KILL", pid])
                        .stdin(Stdio::null())
                        .stderr(Stdio::null())
                        .status();
                }
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Connect two namespaces with a veth pair (`a_if` in `a`, `b_if` in
/// `b`) and bring both ends up.
pub fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) -> Result<(), TestnetError> {
    a.ip(&[
        "link",
        "add",
        a_if,
        "type",
        "veth",
        "peer",
        "name",
        b_if,
        "netns",
        b.name(),
    ])?;
    a.ip(&["link", "set", a_if, "up"])?;
    b.ip(&["link", "set", b_if, "up"])?;
    Ok(())
}

/// Turn off TX checksum offload on a veth end, so that what it sends
/// carries complete TCP/UDP checksums (a veth sender otherwise leaves them
/// partial, which XDP-based receivers cannot fix). Best effort: a missing
/// `ethtool` is not an error.
pub fn tx_checksum_off(ns: &Netns, iface: &str) {
    let _ = ns.output(&["ethtool", "-K", iface, "tx", "off"], &[]);
}

/// Create bridge `br` inside `ns` (STP off, no forward delay) and bring
/// it up: one L2 segment, like the switch of the seed's DR network.
pub fn bridge(ns: &Netns, br: &str) -> Result<(), TestnetError> {
    ns.ip(&["link", "add", br, "type", "bridge"])?;
    ns.ip(&[
        "link",
        "set",
        br,
        "type",
        "bridge",
        "stp_state",
        "0",
        "forward_delay",
        "0",
    ])?;
    ns.ip(&["link", "set", br, "up"])?;
    Ok(())
}

/// Plug `ns` into bridge `br` of `sw`: a veth pair whose end `port` in
/// `sw` is a port of `br` and whose end `iface` is in `ns`.
pub fn plug(sw: &Netns, br: &str, port: &str, ns: &Netns, iface: &str) -> Result<(), TestnetError> {
    veth(sw, port, ns, iface)?;
    sw.ip(&["link", "set", port, "master", br])?;
    Ok(())
}

/// An interface's MAC address inside `ns` (`aa:bb:cc:dd:ee:ff`).
pub fn mac_of(ns: &Netns, iface: &str) -> Result<String, TestnetError> {
    let out = ns.run(&["cat", &format!("/sys/class/net/{iface}/address")])?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
