//! The built binary under other names: `ipvsadm-save`, `rvsadm-save`,
//! `ipvsadm-restore`, `rvsadm-restore` (symlinks in a temp dir), plus
//! `--sysctl` and `--save-rules` / `--load-rules`, against a real rvsd on a
//! private socket.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod private_rvsd;

use private_rvsd::Daemon;

/// Starts rvsd on `<tmp>/rvsd.sock` and links the rvsadm binary under
/// every personality name in `<tmp>`.
fn start() -> Option<(Daemon, PathBuf)> {
    let daemon = private_rvsd::start("rvs-save-restore-e2e")?;
    for name in [
        "ipvsadm",
        "ipvsadm-save",
        "ipvsadm-restore",
        "rvsadm-save",
        "rvsadm-restore",
    ] {
        private_rvsd::link_rvsadm(&daemon, name);
    }
    let dir = daemon.dir.clone();
    Some((daemon, dir))
}

/// Runs `<dir>/<name> args` with stdin; returns (stdout, stderr, rc).
fn run(dir: &Path, name: &str, args: &[&str], stdin: &[u8]) -> (String, String, i32) {
    use std::io::Write;
    let mut child = Command::new(dir.join(name))
        .args(args)
        .env("RVS_SOCKET", dir.join("rvsd.sock"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run");
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

const SEED_SAVE: &str = "-A -t 198.51.100.10:80 -s wrr
-a -t 198.51.100.10:80 -r 203.0.113.11:80 -m -w 3
-a -t 198.51.100.10:80 -r 203.0.113.12:80 -m -w 1
";

#[test]
fn personalities_sysctl_and_rules_files_against_rvsd() {
    let Some((_daemon, dir)) = start() else {
        return;
    };
    let ok = |name: &str, args: &[&str], stdin: &[u8]| {
        let (out, err, rc) = run(&dir, name, args, stdin);
        assert_eq!((err.as_str(), rc), ("", 0), "{name} {args:?}");
        out
    };

    // ipvsadm-restore into an empty director; the saves agree.
    assert_eq!(ok("ipvsadm-restore", &[], SEED_SAVE.as_bytes()), "");
    assert_eq!(ok("ipvsadm-save", &["-n"], b""), SEED_SAVE);
    assert_eq!(ok("rvsadm-save", &["-n"], b""), SEED_SAVE);
    assert_eq!(ok("ipvsadm", &["-S", "-n"], b""), SEED_SAVE);

    // Knobs over the socket: set, read, list, save.
    assert_eq!(ok("ipvsadm", &["--sysctl", "sloppy_tcp=1"], b""), "");
    assert_eq!(
        ok("ipvsadm", &["--sysctl", "sloppy_tcp"], b""),
        "sloppy_tcp=1\n"
    );
    let all = ok("ipvsadm", &["--sysctl"], b"");
    assert_eq!(all.lines().count(), 11, "{all}");
    assert!(all.contains("\nsloppy_tcp=1\n") || all.ends_with("sloppy_tcp=1\n"));
    let (out, err, rc) = run(&dir, "ipvsadm", &["--sysctl", "bogus"], b"");
    assert_eq!(
        (out.as_str(), err.as_str(), rc),
        ("", "unknown IPVS setting `bogus'\n", 255)
    );
    let with_knob = format!("--sysctl sloppy_tcp=1\n{SEED_SAVE}");
    assert_eq!(ok("rvsadm-save", &["-n"], b""), with_knob);

    // A failing rvsadm-restore leaves rules and knobs alone.
    let bad = b"--sysctl sloppy_tcp=0\n-A -t 192.0.2.1:80 -s rr\n-A -t 192.0.2.1:80 -s rr\n";
    let (_, err, rc) = run(&dir, "rvsadm-restore", &[], bad);
    assert_eq!(
        (err.as_str(), rc),
        ("line 3: Service already exists\n", 255)
    );
    assert_eq!(ok("ipvsadm-save", &["-n"], b""), with_knob);

    // --save-rules / --load-rules round trip through a file.
    let rules = dir.join("state").join("rules");
    let rules_s = rules.to_string_lossy().into_owned();
    assert_eq!(ok("ipvsadm", &["--save-rules", &rules_s], b""), "");
    assert_eq!(
        std::fs::read_to_string(&rules).expect("rules file"),
        with_knob
    );
    assert_eq!(ok("ipvsadm", &["-C"], b""), "");
    assert_eq!(ok("ipvsadm", &["--sysctl", "sloppy_tcp=0"], b""), "");
    assert_eq!(ok("ipvsadm-save", &["-n"], b""), "");
    assert_eq!(ok("ipvsadm", &["--load-rules", &rules_s], b""), "");
    assert_eq!(ok("ipvsadm-save", &["-n"], b""), with_knob);

    // A successful restore replaces: the file's table, not a merge.
    let other = "-A -u 192.0.2.53:53 -s rr\n";
    assert_eq!(ok("rvsadm-restore", &[], other.as_bytes()), "");
    assert_eq!(
        ok("ipvsadm-save", &["-n"], b""),
        format!("--sysctl sloppy_tcp=1\n{other}")
    );
}
