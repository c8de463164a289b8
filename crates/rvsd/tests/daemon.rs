//! End-to-end tests of the rvsd binary: start it on a socket in a fresh
//! temp dir, talk to it through `SocketDirector` (or raw lines), and stop
//! it with signals. Every daemon is owned by a guard that kills it on any
//! exit path.

use rvs_api::protocol::{decode_response, KnobValue, Response, SocketDirector};
use rvs_api::{Director, DirectorError};
use rvs_core::snapshot::Timeouts;
use rvs_core::{ApplyError, Command, DestConfig, FwdMethod, Protocol, ServiceConfig, ServiceKey};
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const STARTUP: Duration = Duration::from_secs(20);
const SHUTDOWN: Duration = Duration::from_secs(20);

/// A running rvsd, killed when dropped.
struct Daemon {
    child: Option<Child>,
    socket: PathBuf,
    stderr: PathBuf,
}

impl Daemon {
    /// Spawn rvsd with `args` (stderr to `<dir>/<tag>.stderr`) without
    /// waiting for it.
    fn spawn(dir: &Path, tag: &str, args: &[&str], env: &[(&str, &Path)]) -> Daemon {
        let stderr = dir.join(format!("{tag}.stderr"));
        let file = fs::File::create(&stderr).expect("stderr file");
        let mut cmd = Process::new(env!("CARGO_BIN_EXE_rvsd"));
        // Control-plane tests: never touch this namespace's netfilter.
        cmd.arg("--no-datapath");
        cmd.args(args)
            .env_remove("RVS_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn rvsd");
        Daemon {
            child: Some(child),
            socket: PathBuf::new(),
            stderr,
        }
    }

    /// Start rvsd on `socket` and wait until it answers.
    fn start(dir: &Path, tag: &str, socket: &Path, extra: &[&str]) -> Daemon {
        let mut args = vec!["--socket", socket.to_str().expect("utf-8 path")];
        args.extend_from_slice(extra);
        let mut d = Daemon::spawn(dir, tag, &args, &[]);
        d.socket = socket.to_path_buf();
        d.wait_ready();
        d
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + STARTUP;
        loop {
            if let Ok(mut dir) = SocketDirector::connect(&self.socket) {
                if dir.ping().is_ok() {
                    return;
                }
            }
            if let Some(status) = self.try_status() {
                panic!("rvsd exited early ({status}): {}", self.stderr_text());
            }
            assert!(
                Instant::now() < deadline,
                "rvsd did not come up: {}",
                self.stderr_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn try_status(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().expect("try_wait"))
    }

    /// Wait for the process to exit by itself.
    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + SHUTDOWN;
        loop {
            if let Some(status) = self.try_status() {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "rvsd did not exit: {}",
                self.stderr_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&mut self, sig: rustix::process::Signal) -> ExitStatus {
        let child = self.child.as_ref().expect("running");
        rustix::process::kill_process(rustix::process::Pid::from_child(child), sig).expect("kill");
        self.wait_exit()
    }

    fn stderr_text(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn director(&self) -> SocketDirector {
        let d = SocketDirector::connect(&self.socket).expect("connect");
        d.set_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        d
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn ip(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn web() -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: ip(192, 168, 10, 100),
        port: 80,
    }
}

fn web_config() -> ServiceConfig {
    let mut c = ServiceConfig::new(web());
    c.scheduler = "rr".to_string();
    c
}

fn masq(last: u8, weight: i32) -> DestConfig {
    let mut d = DestConfig::new(ip(192, 168, 20, last), 8080);
    d.fwd = FwdMethod::Masq;
    d.weight = weight;
    d
}

fn web_rules() -> Vec<Command> {
    vec![
        Command::AddService(web_config()),
        Command::AddDest {
            service: web(),
            dest: masq(1, 1),
        },
        Command::AddDest {
            service: web(),
            dest: masq(2, 3),
        },
    ]
}

/// The (service config, dest configs) view of a table, dests in list order.
fn rules_of(dir: &mut SocketDirector) -> Vec<(ServiceConfig, Vec<DestConfig>)> {
    dir.table()
        .expect("table")
        .services
        .into_iter()
        .map(|s| (s.config, s.dests.into_iter().map(|d| d.config).collect()))
        .collect()
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn applied_batch_reads_back_newest_dest_first() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sock = tmp.path().join("run/rvsd.sock");
    let d = Daemon::start(tmp.path(), "d", &sock, &[]);
    let mut dir = d.director();
    let v = dir.version().expect("version");
    assert_eq!(v.protocol, 1);
    assert!(dir.table().expect("table").services.is_empty());

    dir.apply(web_rules()).expect("apply");
    let table = dir.table().expect("table");
    assert_eq!(table.conn_table_size, 4096);
    // ipvsadm lists real servers newest first.
    assert_eq!(
        rules_of(&mut dir),
        vec![(web_config(), vec![masq(2, 3), masq(1, 1)])]
    );
    assert_eq!(
        dir.timeouts().expect("timeouts"),
        Timeouts {
            tcp: 900,
            tcpfin: 120,
            udp: 300
        }
    );
    assert!(dir.connections().expect("connections").is_empty());

    // Another client sees the same table.
    let mut other = d.director();
    assert_eq!(rules_of(&mut other).len(), 1);

    // The socket is private to its owner.
    let mode = fs::metadata(&sock).expect("socket").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn failing_batch_changes_nothing_and_names_the_command() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sock = tmp.path().join("rvsd.sock");
    let d = Daemon::start(tmp.path(), "d", &sock, &[]);
    let mut dir = d.director();
    dir.apply(web_rules()).expect("apply");
    let before = dir.table().expect("table");

    let dns = ServiceKey::Addr {
        protocol: Protocol::Udp,
        addr: ip(192, 168, 10, 100),
        port: 53,
    };
    let ghost = ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: ip(192, 168, 10, 101),
        port: 80,
    };
    let err = dir
        .apply(vec![
            Command::AddService(ServiceConfig::new(dns)),
            Command::EditDest {
                service: web(),
                dest: masq(1, 7),
            },
            Command::AddDest {
                service: ghost,
                dest: masq(3, 1),
            },
        ])
        .expect_err("third command must fail");
    assert_eq!(
        err,
        DirectorError::Apply {
            index: 2,
            error: ApplyError::ServiceNotDefined
        }
    );
    assert_eq!(err.to_string(), "Service not defined");
    assert_eq!(dir.table().expect("table"), before);

    let err = dir
        .apply(vec![Command::AddDest {
            service: web(),
            dest: masq(2, 1),
        }])
        .expect_err("duplicate");
    assert_eq!(
        err,
        DirectorError::Apply {
            index: 0,
            error: ApplyError::DestExists
        }
    );
    assert_eq!(dir.table().expect("table"), before);
}

#[test]
fn state_file_survives_a_restart() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sock = tmp.path().join("rvsd.sock");
    let state = tmp.path().join("lib/rvs/rules.json");
    let args = ["--state-file", path_str(&state)];
    let mut d = Daemon::start(tmp.path(), "first", &sock, &args);
    let mut dir = d.director();
    let mut rules = web_rules();
    rules.push(Command::SetTimeouts {
        tcp: 600,
        tcpfin: 0,
        udp: 45,
    });
    rules.push(Command::SetKnob {
        name: "sloppy_tcp".to_string(),
        value: 1,
    });
    dir.apply(rules).expect("apply");
    // A refused batch must not touch the saved rules either.
    dir.apply(vec![
        Command::DeleteService(web()),
        Command::Clear,
        Command::Zero(Some(web())),
    ])
    .expect_err("zeroing a deleted service fails");
    assert!(state.exists(), "state file written after apply");
    drop(dir);

    let status = d.signal(rustix::process::Signal::TERM);
    assert_eq!(status.code(), Some(0), "{}", d.stderr_text());
    assert!(!sock.exists(), "socket removed on SIGTERM");

    let d2 = Daemon::start(tmp.path(), "second", &sock, &args);
    let mut dir = d2.director();
    assert_eq!(
        rules_of(&mut dir),
        vec![(web_config(), vec![masq(2, 3), masq(1, 1)])]
    );
    assert_eq!(
        dir.timeouts().expect("timeouts"),
        Timeouts {
            tcp: 600,
            tcpfin: 120,
            udp: 45
        }
    );
    let knobs = dir.knobs().expect("knobs");
    assert!(knobs.contains(&KnobValue {
        name: "sloppy_tcp".into(),
        value: 1
    }));
    assert!(knobs.contains(&KnobValue {
        name: "pmtu_disc".into(),
        value: 1
    }));
    assert_eq!(knobs.len(), 11);

    // Deleting everything is saved too.
    dir.apply(vec![Command::Clear]).expect("clear");
    drop(dir);
    drop(d2);
    let d3 = Daemon::start(tmp.path(), "third", &sock, &args);
    assert!(rules_of(&mut d3.director()).is_empty());
}

#[test]
fn sigint_also_stops_cleanly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sock = tmp.path().join("rvsd.sock");
    let mut d = Daemon::start(tmp.path(), "d", &sock, &[]);
    // An idle connected client must not hold up the shutdown.
    let _idle = d.director();
    let status = d.signal(rustix::process::Signal::INT);
    assert_eq!(status.code(), Some(0), "{}", d.stderr_text());
    assert!(!sock.exists());
}

#[test]
fn missing_socket_is_a_transport_error_with_the_os_text() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let err = SocketDirector::connect(tmp.path().join("nope.sock")).expect_err("no socket");
    assert_eq!(
        err,
        DirectorError::Transport("No such file or directory".to_string())
    );
    // A socket file nobody listens on.
    let stale = tmp.path().join("stale.sock");
    drop(UnixListener::bind(&stale).expect("bind"));
    let err = SocketDirector::connect(&stale).expect_err("nobody listening");
    assert_eq!(
        err,
        DirectorError::Transport("Connection refused".to_string())
    );
}

fn read_response(reader: &mut BufReader<UnixStream>) -> Response {
    let mut line = String::new();
    reader.read_line(&mut line).expect("read");
    assert!(line.ends_with('\n'), "{line:?}");
    decode_response(line.trim_end().as_bytes()).expect("well-formed response")
}

#[test]
fn garbage_gets_an_error_response_and_the_daemon_keeps_serving() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sock = tmp.path().join("rvsd.sock");
    let d = Daemon::start(tmp.path(), "d", &sock, &[]);
    let mut raw = UnixStream::connect(&sock).expect("connect");
    raw.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut reader = BufReader::new(raw.try_clone().expect("clone"));

    for garbage in [
        &b"this is not json\n"[..],
        b"{\"v\":1,\"req\":\"Shutdown\"}\n",
        b"\xff\xfe\xfd\n",
        b"{\"v\":1,\"req\":{\"Apply\":[{\"AddService\":42}]}}\n",
    ] {
        raw.write_all(garbage).expect("write");
        match read_response(&mut reader) {
            Response::Error(DirectorError::Transport(msg)) => {
                assert!(msg.starts_with("malformed request"), "{msg}")
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    raw.write_all(b"{\"v\":7,\"req\":\"Ping\"}\n")
        .expect("write");
    assert_eq!(
        read_response(&mut reader),
        Response::Error(DirectorError::Transport(
            "control protocol version mismatch: request speaks 7, this side speaks 1".into()
        ))
    );
    // Blank lines are skipped; the same connection still works.
    raw.write_all(b"\n{\"v\":1,\"req\":\"Ping\"}\n")
        .expect("write");
    assert_eq!(read_response(&mut reader), Response::Pong);

    // So does a fresh client.
    let mut dir = d.director();
    dir.apply(web_rules()).expect("apply after garbage");
    assert_eq!(rules_of(&mut dir).len(), 1);
}

#[test]
fn oversized_request_is_refused_and_the_connection_closed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sock = tmp.path().join("rvsd.sock");
    let d = Daemon::start(tmp.path(), "d", &sock, &[]);
    let mut raw = UnixStream::connect(&sock).expect("connect");
    raw.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    // One byte over the 16 MiB limit, no newline.
    let big = vec![b'a'; 16 * 1024 * 1024 + 1];
    raw.write_all(&big).expect("write");
    let mut reader = BufReader::new(raw.try_clone().expect("clone"));
    assert_eq!(
        read_response(&mut reader),
        Response::Error(DirectorError::Transport(
            "request longer than 16777216 bytes".into()
        ))
    );
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).expect("eof");
    assert!(rest.is_empty());
    d.director().ping().expect("still serving");
}

#[test]
fn second_daemon_on_the_same_socket_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sock = tmp.path().join("rvsd.sock");
    let d = Daemon::start(tmp.path(), "first", &sock, &[]);
    let mut second = Daemon::spawn(tmp.path(), "second", &["--socket", path_str(&sock)], &[]);
    let status = second.wait_exit();
    assert_eq!(status.code(), Some(1));
    let err = second.stderr_text();
    assert!(
        err.contains(&format!(
            "another rvsd is already listening on {}",
            sock.display()
        )),
        "{err}"
    );
    // The first one keeps its socket.
    d.director().ping().expect("first still serving");
}

#[test]
fn stale_socket_file_is_replaced() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sock = tmp.path().join("rvsd.sock");
    drop(UnixListener::bind(&sock).expect("bind"));
    assert!(sock.exists());
    let d = Daemon::start(tmp.path(), "d", &sock, &[]);
    d.director().ping().expect("serving");
    assert!(d.stderr_text().contains("removed stale socket"));
}

#[test]
fn a_regular_file_in_the_way_is_left_alone() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sock = tmp.path().join("rvsd.sock");
    fs::write(&sock, b"precious").expect("write");
    let mut d = Daemon::spawn(tmp.path(), "d", &["--socket", path_str(&sock)], &[]);
    assert_eq!(d.wait_exit().code(), Some(1));
    assert!(
        d.stderr_text().contains("is not a socket"),
        "{}",
        d.stderr_text()
    );
    assert_eq!(fs::read(&sock).expect("still there"), b"precious");
}

#[test]
fn corrupt_state_file_refuses_to_start_and_is_kept() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sock = tmp.path().join("rvsd.sock");
    let state = tmp.path().join("rules.json");
    let corrupt = b"{\"rvsd_state\":1,\"commands\":[{\"AddServ";
    fs::write(&state, corrupt).expect("write");
    let mut d = Daemon::spawn(
        tmp.path(),
        "d",
        &[
            "--socket",
            path_str(&sock),
            "--state-file",
            path_str(&state),
        ],
        &[],
    );
    assert_eq!(d.wait_exit().code(), Some(1));
    let err = d.stderr_text();
    assert!(
        err.contains(&format!("state file {} is corrupt", state.display())),
        "{err}"
    );
    assert_eq!(fs::read(&state).expect("kept"), corrupt.to_vec());
    assert!(!sock.exists(), "no socket left behind");
}

#[test]
fn socket_path_comes_from_rvs_socket() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sock = tmp.path().join("from-env.sock");
    let mut d = Daemon::spawn(tmp.path(), "d", &[], &[("RVS_SOCKET", &sock)]);
    d.socket = sock.clone();
    d.wait_ready();
    d.director().ping().expect("serving on the env path");
}

#[test]
fn bad_flags_exit_2() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut d = Daemon::spawn(tmp.path(), "d", &["--bogus"], &[]);
    assert_eq!(d.wait_exit().code(), Some(2));
    assert!(d.stderr_text().contains("usage: rvsd"));
}

/// Environment variable that turns [`peer_helper`] into a client run by the
/// test below under another uid.
const PEER_ENV: &str = "RVSD_TEST_PEER_SOCKET";

/// Not a test by itself: a client that [`non_root_peer_is_refused`] runs
/// as user `nobody` by re-executing this test binary.
#[test]
fn peer_helper() {
    let Some(sock) = std::env::var_os(PEER_ENV) else {
        return;
    };
    println!("PEER-READY");
    match SocketDirector::connect(&sock) {
        Err(e) => println!("PEER-CONNECT: {e:?}"),
        Ok(mut dir) => {
            println!("PEER-PING: {:?}", dir.ping());
            println!("PEER-TABLE: {:?}", dir.table().map(|_| ()));
            println!("PEER-APPLY: {:?}", dir.apply(vec![Command::Clear]));
        }
    }
}

fn run_peer(sock: &Path) -> Option<String> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().expect("test binary");
    let out = Process::new(exe)
        .args(["--exact", "peer_helper", "--nocapture", "--test-threads=1"])
        .env(PEER_ENV, sock)
        .uid(65534)
        .gid(65534)
        .stdin(Stdio::null())
        .output();
    let out = match out {
        Ok(out) => out,
        Err(e) => {
            eprintln!("skipping: cannot run the test binary as nobody: {e}");
            return None;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !text.contains("PEER-READY") {
        eprintln!(
            "skipping: the test binary did not run as nobody: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    Some(text)
}

#[test]
fn non_root_peer_is_refused() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipping: needs root to run a client as another user");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).expect("chmod dir");
    let sock = tmp.path().join("rvsd.sock");
    let d = Daemon::start(tmp.path(), "d", &sock, &[]);
    d.director().apply(web_rules()).expect("root may apply");

    // Mode 0600 keeps others from connecting at all.
    let Some(out) = run_peer(&sock) else { return };
    assert!(
        out.contains("PEER-CONNECT: Transport(\"Permission denied\")"),
        "{out}"
    );

    // With the mode opened up, peer credentials still refuse changes and
    // listings, but answer pings.
    fs::set_permissions(&sock, fs::Permissions::from_mode(0o666)).expect("chmod socket");
    let Some(out) = run_peer(&sock) else { return };
    assert!(out.contains("PEER-PING: Ok(())"), "{out}");
    assert!(out.contains("PEER-TABLE: Err(PermissionDenied)"), "{out}");
    assert!(out.contains("PEER-APPLY: Err(PermissionDenied)"), "{out}");
    assert_eq!(rules_of(&mut d.director()).len(), 1, "nothing cleared");
}
