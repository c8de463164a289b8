//! The seed's rule-management steps, run through a symlink named `ipvsadm`
//! against a real rvsd on a private socket. Expected outputs are the real
//! kernel's (`shared/refvm/captures/seed-nat/transcript.txt`) for the steps
//! without traffic; with no packets here, ActiveConn/InActConn stay 0.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Daemon {
    child: Child,
    dir: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn rvsd_path() -> PathBuf {
    let adm = PathBuf::from(env!("CARGO_BIN_EXE_rvsadm"));
    adm.with_file_name("rvsd")
}

fn start() -> Option<(Daemon, PathBuf, PathBuf)> {
    let rvsd = rvsd_path();
    if !rvsd.exists() {
        eprintln!(
            "skipping: {} not built (run the workspace tests)",
            rvsd.display()
        );
        return None;
    }
    let dir = std::env::temp_dir().join(format!("rvs-seed-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let socket = dir.join("rvsd.sock");
    let log = dir.join("rvsd.log");
    let child = Command::new(&rvsd)
        .arg("--no-datapath")
        .arg("--socket")
        .arg(&socket)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("rvsd log"))
        .spawn()
        .expect("start rvsd");
    let mut daemon = Daemon { child, dir };
    let link = daemon.dir.join("ipvsadm");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_rvsadm"), &link).expect("symlink");
    wait_ready(&mut daemon.child, &socket, &log);
    Some((daemon, link, socket))
}

/// Wait (bounded, generous for a loaded machine) until rvsd accepts
/// connections on `socket`. The socket file appears at bind(2), a moment
/// before listen(2); only a successful connect says rvsd is serving.
fn wait_ready(child: &mut Child, socket: &Path, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if std::os::unix::net::UnixStream::connect(socket).is_ok() {
            return;
        }
        let log_text = || std::fs::read_to_string(log).unwrap_or_default();
        if let Ok(Some(status)) = child.try_wait() {
            panic!("rvsd exited ({status}):\n{}", log_text());
        }
        assert!(
            Instant::now() < deadline,
            "rvsd does not serve {} after 30 s:\n{}",
            socket.display(),
            log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ipvsadm(link: &Path, socket: &Path, args: &[&str], stdin: &[u8]) -> (String, String, i32) {
    use std::io::Write;
    let mut child = Command::new(link)
        .args(args)
        .env("RVS_SOCKET", socket)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ipvsadm");
    if let Some(mut i) = child.stdin.take() {
        i.write_all(stdin).expect("stdin");
    }
    let out = child.wait_with_output().expect("wait");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

const HEADER: &str = "IP Virtual Server version 1.2.1 (size=4096)\n\
Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";

#[test]
fn seed_rule_management_through_an_ipvsadm_symlink() {
    let Some((_daemon, link, sock)) = start() else {
        return;
    };
    let ok = |args: &[&str]| {
        let (out, err, rc) = ipvsadm(&link, &sock, args, b"");
        assert_eq!((rc, err.as_str()), (0, ""), "ipvsadm {args:?}");
        out
    };
    assert_eq!(ok(&["-A", "-t", "198.51.100.10:80", "-s", "rr"]), "");
    assert_eq!(
        ok(&["-a", "-t", "198.51.100.10:80", "-r", "203.0.113.11", "-m"]),
        ""
    );
    assert_eq!(
        ok(&["-a", "-t", "198.51.100.10:80", "-r", "203.0.113.12", "-m"]),
        ""
    );
    assert_eq!(
        ok(&["-L", "-n"]),
        format!(
            "{HEADER}TCP  198.51.100.10:80 rr\n  -> 203.0.113.11:80              Masq    1      0          0         \n  -> 203.0.113.12:80              Masq    1      0          0         \n"
        )
    );
    ok(&["-E", "-t", "198.51.100.10:80", "-s", "wrr"]);
    ok(&[
        "-e",
        "-t",
        "198.51.100.10:80",
        "-r",
        "203.0.113.11",
        "-m",
        "-w",
        "3",
    ]);
    ok(&[
        "-e",
        "-t",
        "198.51.100.10:80",
        "-r",
        "203.0.113.12",
        "-m",
        "-w",
        "1",
    ]);
    let listed = format!(
        "{HEADER}TCP  198.51.100.10:80 wrr\n  -> 203.0.113.11:80              Masq    3      0          0         \n  -> 203.0.113.12:80              Masq    1      0          0         \n"
    );
    assert_eq!(ok(&["-Ln"]), listed, "bundled -Ln");
    let saved = ok(&["-S", "-n"]);
    assert_eq!(
        saved,
        "-A -t 198.51.100.10:80 -s wrr\n-a -t 198.51.100.10:80 -r 203.0.113.11:80 -m -w 3\n-a -t 198.51.100.10:80 -r 203.0.113.12:80 -m -w 1\n"
    );
    assert_eq!(ok(&["-C"]), "");
    assert_eq!(ok(&["-L", "-n"]), HEADER);
    let (out, err, rc) = ipvsadm(&link, &sock, &["-R"], saved.as_bytes());
    assert_eq!((out.as_str(), err.as_str(), rc), ("", "", 0));
    assert_eq!(ok(&["-L", "-n"]), listed);
    // Errors keep ipvsadm's words and exit codes, and change nothing.
    let (_, err, rc) = ipvsadm(
        &link,
        &sock,
        &["-A", "-t", "198.51.100.10:80", "-s", "rr"],
        b"",
    );
    assert_eq!((err.as_str(), rc), ("Service already exists\n", 255));
    let (_, err, rc) = ipvsadm(&link, &sock, &["-L", "-t", "198.51.100.10:81"], b"");
    assert_eq!((err.as_str(), rc), ("No such service\n", 1));
    let bad = b"-A -t 198.51.100.20:80 -s rr\n-a -t 198.51.100.99:80 -r 203.0.113.11 -m\n";
    let (_, err, rc) = ipvsadm(&link, &sock, &["-R"], bad);
    assert_ne!(rc, 0);
    assert!(err.contains("line 2"), "{err}");
    assert_eq!(
        ok(&["-L", "-n"]),
        listed,
        "a failed restore changes nothing"
    );
}

#[test]
fn without_rvsd_ipvsadm_fails_like_without_the_kernel_module() {
    let dir = std::env::temp_dir().join(format!("rvs-nodaemon-{}", std::process::id()));
    let sock = dir.join("missing.sock");
    let (out, err, rc) = ipvsadm(
        Path::new(env!("CARGO_BIN_EXE_rvsadm")),
        &sock,
        &["-L", "-n"],
        b"",
    );
    assert_eq!((out.as_str(), rc), ("", 2));
    assert!(
        err.starts_with("Can't initialize ipvs: No such file or directory"),
        "{err}"
    );
    assert!(
        err.contains(&sock.display().to_string()),
        "names the socket: {err}"
    );
}
