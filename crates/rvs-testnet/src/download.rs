//! A gated HTTP download for tests that must act while a transfer is in
//! flight, whatever the speed of the datapath: a Python client in a
//! namespace with a small receive buffer (so the server cannot push the
//! whole file into the client's socket and close early) reads at a
//! bounded rate and stops reading at a hold point until the test
//! releases it. The body goes to a file as it arrives, so the test sees
//! how much has been received; the client checks the status line and
//! `Content-Length` and exits non-zero unless the body is whole.

use crate::nat::python3;
use crate::netns::{unique_prefix, Netns, Spawned};
use crate::TestnetError;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long the client waits for the connection, the headers, or the
/// next bytes (socket timeout), in seconds.
const IO_TIMEOUT_S: u32 = 20;

/// argv: addr port path out gate rate hold max_wait.
/// Exit status 0 only when the whole body arrived.
const CLIENT: &str = r#"
import os, socket, sys, time
addr, port, path, out, gate = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
rate, hold, max_wait, io_timeout = int(sys.argv[6]), int(sys.argv[7]), float(sys.argv[8]), float(sys.argv[9])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
s.settimeout(io_timeout)
s.connect((addr, port))
s.sendall(("GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" % (path, addr)).encode())
head = b""
while b"\r\n\r\n" not in head:
    chunk = s.recv(4096)
    if not chunk:
        sys.exit("connection closed inside the headers")
    head += chunk
header, body = head.split(b"\r\n\r\n", 1)
lines = header.decode("latin-1").split("\r\n")
if lines[0].split()[1:2] != ["200"]:
    sys.exit("status: " + lines[0])
length = None
for l in lines[1:]:
    k, _, v = l.partition(":")
    if k.strip().lower() == "content-length":
        length = int(v.strip())
if length is None:
    sys.exit("no Content-Length")
f = open(out, "wb")
f.write(body)
f.flush()
got = len(body)
start = time.monotonic()
held_since = None
while got < length:
    released = os.path.exists(gate)
    if not released:
        if got >= hold:
            if held_since is None:
                held_since = time.monotonic()
            if time.monotonic() - held_since > max_wait:
                sys.exit("held at %d bytes for %.0f s, never released" % (got, max_wait))
            time.sleep(0.02)
            continue
        ahead = got / rate - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(min(ahead, 0.05))
            continue
    want = length - got
    if not released:
        want = min(want, 4096, max(hold - got, 1))
    chunk = s.recv(min(want, 65536))
    if not chunk:
        break
    f.write(chunk)
    f.flush()
    got += len(chunk)
f.close()
if got != length:
    sys.exit("got %d of %d bytes" % (got, length))
"#;

/// A running gated download (see the module doc).
#[derive(Debug)]
pub struct GatedDownload {
    pub pid: Spawned,
    /// Where the body is written as it arrives.
    pub out: PathBuf,
    /// The client's stderr (why it failed).
    pub log: PathBuf,
    gate: PathBuf,
}

impl GatedDownload {
    /// Bytes of the body received so far.
    pub fn received(&self) -> u64 {
        std::fs::metadata(&self.out).map(|m| m.len()).unwrap_or(0)
    }

    /// Let the client read the rest at full speed.
    pub fn release(&self) -> Result<(), TestnetError> {
        std::fs::write(&self.gate, b"go")?;
        Ok(())
    }

    /// The client's error output so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Start downloading `http://addr:port<path>` from `ns` into a file under
/// `dir`, at most `rate` bytes/s and never past `hold` bytes of body
/// until [`GatedDownload::release`]; the client gives up (non-zero exit)
/// if it is held longer than `max_hold`. Waits until the first body
/// bytes arrived.
pub fn start_gated_download(
    ns: &Netns,
    dir: &Path,
    (addr, port): (Ipv4Addr, u16),
    path: &str,
    rate: u64,
    hold: u64,
    max_hold: Duration,
) -> Result<GatedDownload, TestnetError> {
    let tag = unique_prefix("dl");
    let out = dir.join(format!("{tag}.body"));
    let gate = dir.join(format!("{tag}.go"));
    let log = dir.join(format!("{tag}.log"));
    let args = [
        addr.to_string(),
        port.to_string(),
        path.to_string(),
        out.to_string_lossy().to_string(),
        gate.to_string_lossy().to_string(),
        rate.max(1).to_string(),
        hold.to_string(),
        max_hold.as_secs().to_string(),
        IO_TIMEOUT_S.to_string(),
    ];
    let mut argv = vec![python3(), "-c", CLIENT];
    argv.extend(args.iter().map(String::as_str));
    let pid = ns.spawn(&argv, &[], Some(&log))?;
    let d = GatedDownload {
        pid,
        out,
        log,
        gate,
    };
    let started = Netns::wait_for(
        &format!("first bytes of http://{addr}:{port}{path}"),
        Duration::from_secs(u64::from(IO_TIMEOUT_S)),
        || d.received() > 0 || !ns.is_running(d.pid),
    );
    match started {
        Ok(()) if d.received() > 0 => Ok(d),
        Ok(()) => Err(TestnetError::Failed {
            command: format!("download http://{addr}:{port}{path}"),
            status: "exited".into(),
            stderr: d.log_text(),
        }),
        Err(e) => Err(e),
    }
}
