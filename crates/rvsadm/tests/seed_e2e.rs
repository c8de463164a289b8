//! The seed's rule-management steps, run through a symlink named `ipvsadm`
//! against a real rvsd on a private socket. Expected outputs are the real
//! kernel's (`shared/refvm/captures/seed-nat/transcript.txt`) for the steps
//! without traffic; with no packets here, ActiveConn/InActConn stay 0.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod private_rvsd;

use private_rvsd::Daemon;

fn start() -> Option<(Daemon, PathBuf, PathBuf)> {
    let daemon = private_rvsd::start("rvs-seed-e2e")?;
    let link = private_rvsd::link_rvsadm(&daemon, "ipvsadm");
    let socket = daemon.socket.clone();
    Some((daemon, link, socket))
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
