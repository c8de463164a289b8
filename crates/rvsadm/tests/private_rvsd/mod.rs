//! A control-plane-only rvsd on a private socket for rvsadm's end-to-end
//! tests: started with `--no-datapath` (it runs in the host's namespace
//! and must not steer packets there), killed by PID and its temporary
//! directory removed when the guard drops.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running rvsd; everything it made goes when this drops.
pub struct Daemon {
    child: Child,
    /// Its temporary directory (socket, log, and whatever the test adds).
    pub dir: PathBuf,
    pub socket: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The rvsd binary built beside rvsadm, if the workspace built it.
pub fn rvsd_path() -> Option<PathBuf> {
    let rvsd = PathBuf::from(env!("CARGO_BIN_EXE_rvsadm")).with_file_name("rvsd");
    if rvsd.exists() {
        Some(rvsd)
    } else {
        eprintln!(
            "skipping: {} not built (run the workspace tests)",
            rvsd.display()
        );
        None
    }
}

/// Start rvsd in a fresh `<tmp>/<tag>-<pid>` directory and wait
/// (bounded, generous for a loaded machine) until it accepts connections:
/// the socket file appears at bind(2), a moment before listen(2), so only
/// a successful connect says rvsd is serving. `None` if rvsd is not built.
pub fn start(tag: &str) -> Option<Daemon> {
    let rvsd = rvsd_path()?;
    let dir = std::env::temp_dir().join(format!("{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let socket = dir.join("rvsd.sock");
    let log = dir.join("rvsd.log");
    let child = Command::new(&rvsd)
        .arg("--no-datapath")
        .arg("--socket")
        .arg(&socket)
        .env_remove("RVSD_DATAPATH")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("rvsd log"))
        .spawn()
        .expect("start rvsd");
    let mut daemon = Daemon { child, dir, socket };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::os::unix::net::UnixStream::connect(&daemon.socket).is_err() {
        let log_text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Ok(Some(status)) = daemon.child.try_wait() {
            panic!("rvsd exited ({status}):\n{log_text}");
        }
        assert!(
            Instant::now() < deadline,
            "rvsd does not serve {} after 30 s:\n{log_text}",
            daemon.socket.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(daemon)
}

/// Link the rvsadm binary as `<daemon dir>/<name>` and return the link.
pub fn link_rvsadm(daemon: &Daemon, name: &str) -> PathBuf {
    let link = daemon.dir.join(name);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_rvsadm"), &link).expect("symlink");
    link
}
