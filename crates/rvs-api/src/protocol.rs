//! The control protocol between front ends (rvsadm, future APIs) and rvsd.
//!
//! Framing: one JSON object per line over a Unix stream socket, both ways.
//! A request line is `{"v":1,"req":<Request>}` and the answer to it is one
//! line `{"v":1,"resp":<Response>}`; a connection may carry any number of
//! request/answer pairs, strictly in turn. Lines are bounded
//! ([`MAX_REQUEST_LINE`]); a line that is not a request, or speaks another
//! protocol version, is answered with [`Response::Error`] and the
//! connection stays usable.
//!
//! This module holds the message types, their encoding, the client
//! ([`SocketDirector`]) and the server-side dispatch ([`handle_request`]),
//! so that the daemon itself is only sockets, threads and files. It does
//! not decide who may connect; the daemon checks peer credentials.

use crate::health::{DrainStatus, HealthReport, ReloadSummary};
use crate::{Director, DirectorError};
use rvs_core::knobs::{Knobs, KNOB_NAMES};
use rvs_core::snapshot::{ConnSnapshot, TableSnapshot, Timeouts};
use rvs_core::{Command, Engine, ServiceKey};
use serde::{Deserialize, Serialize};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Version of the framing and message set; both ends put it in every line.
pub const PROTOCOL_VERSION: u32 = 1;

/// Where rvsd listens unless told otherwise.
pub const DEFAULT_SOCKET_PATH: &str = "/run/rvs/rvsd.sock";

/// Environment variable naming the control socket (overridden by `--socket`).
pub const SOCKET_ENV: &str = "RVS_SOCKET";

/// Longest request line the server reads (16 MiB, newline excluded): room
/// for a restore of tens of thousands of services, small enough that a
/// stray client cannot make the daemon allocate without bound.
pub const MAX_REQUEST_LINE: usize = 16 * 1024 * 1024;

/// Longest response line the client reads (256 MiB): listings of big tables
/// and connection lists are much larger than any request.
pub const MAX_RESPONSE_LINE: usize = 256 * 1024 * 1024;

/// The control socket path: an explicit `--socket` value first, then a
/// non-empty `RVS_SOCKET`, then [`DEFAULT_SOCKET_PATH`].
pub fn socket_path(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    match std::env::var_os(SOCKET_ENV) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from(DEFAULT_SOCKET_PATH),
    }
}

/// What a client asks of the director.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Liveness check; answered with [`Response::Pong`].
    Ping,
    /// Protocol and software version; answered with [`Response::Version`].
    Version,
    /// Apply a batch atomically; answered with [`Response::Applied`].
    Apply(Vec<Command>),
    /// Services and real servers; [`Response::Table`].
    Table,
    /// Connections and templates; [`Response::Connections`].
    Connections,
    /// `--set` timeouts; [`Response::Timeouts`].
    Timeouts,
    /// Every IPVS knob with its value; [`Response::Knobs`].
    Knobs,
    /// rvs extension: re-read the `--config` file and apply the difference
    /// (as SIGHUP does, but answered); [`Response::Reloaded`]. With
    /// `clear_overrides`, every operator override is handed back to the
    /// health checker as well.
    Reload {
        #[serde(default)]
        clear_overrides: bool,
    },
    /// rvs extension: the health status listing and the drains in
    /// progress; [`Response::Health`].
    HealthStatus,
    /// rvs extension: drain one real server (weight 0, its persistence
    /// templates invalidated, removed when its connections reach zero or
    /// after `timeout_secs`); [`Response::Draining`].
    Drain {
        service: ServiceKey,
        addr: IpAddr,
        port: u16,
        timeout_secs: Option<u64>,
    },
    /// rvs extension: hand a real server changed by an operator (or
    /// drained) back to the configuration and its health checks;
    /// [`Response::OverrideCleared`].
    ClearOverride {
        service: ServiceKey,
        addr: IpAddr,
        port: u16,
    },
}

impl Request {
    /// Whether only a privileged peer may send this request. Everything
    /// but `Ping` and `Version` is, as with ipvsadm, where even listing
    /// needs root.
    pub fn needs_privilege(&self) -> bool {
        !matches!(self, Request::Ping | Request::Version)
    }
}

/// Versions reported by [`Request::Version`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// [`PROTOCOL_VERSION`] of the server.
    pub protocol: u32,
    /// The server's package version (`0.1.0`).
    pub software: String,
}

/// One IPVS knob and its current value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnobValue {
    pub name: String,
    pub value: i64,
}

/// The director's answer to one [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    Pong,
    Version(VersionInfo),
    Applied,
    Table(TableSnapshot),
    Connections(Vec<ConnSnapshot>),
    Timeouts(Timeouts),
    /// In [`KNOB_NAMES`] order.
    Knobs(Vec<KnobValue>),
    /// The reload was applied.
    Reloaded(ReloadSummary),
    Health(HealthReport),
    /// The drain started (or was already running); its state now.
    Draining(DrainStatus),
    /// The server is the checker's again.
    OverrideCleared,
    /// The request failed; for `Apply`, nothing of the batch was applied.
    Error(DirectorError),
}

#[derive(Serialize)]
struct RequestOut<'a> {
    v: u32,
    req: &'a Request,
}

#[derive(Deserialize)]
struct RequestIn {
    req: Request,
}

#[derive(Serialize)]
struct ResponseOut<'a> {
    v: u32,
    resp: &'a Response,
}

#[derive(Deserialize)]
struct ResponseIn {
    resp: Response,
}

/// Just the version field, read before the rest so that a peer speaking
/// another version gets a clear message rather than a parse error.
#[derive(Deserialize)]
struct VersionProbe {
    v: u32,
}

fn bad_line(what: &str, e: &serde_json::Error) -> DirectorError {
    DirectorError::Transport(format!("malformed {what}: {e}"))
}

fn check_version(line: &[u8], what: &str) -> Result<(), DirectorError> {
    let probe: VersionProbe = serde_json::from_slice(line).map_err(|e| bad_line(what, &e))?;
    if probe.v != PROTOCOL_VERSION {
        return Err(DirectorError::Transport(format!(
            "control protocol version mismatch: {what} speaks {}, this side speaks {PROTOCOL_VERSION}",
            probe.v
        )));
    }
    Ok(())
}

/// One request as a line, newline included.
pub fn encode_request(req: &Request) -> Result<Vec<u8>, DirectorError> {
    let mut line = serde_json::to_vec(&RequestOut {
        v: PROTOCOL_VERSION,
        req,
    })
    .map_err(|e| DirectorError::Transport(format!("cannot encode request: {e}")))?;
    line.push(b'\n');
    Ok(line)
}

/// Parse one request line (without its newline).
pub fn decode_request(line: &[u8]) -> Result<Request, DirectorError> {
    check_version(line, "request")?;
    let frame: RequestIn = serde_json::from_slice(line).map_err(|e| bad_line("request", &e))?;
    Ok(frame.req)
}

/// One response as a line, newline included. Never fails: a response that
/// cannot be encoded is replaced by an error response saying so.
pub fn encode_response(resp: &Response) -> Vec<u8> {
    let encoded = serde_json::to_vec(&ResponseOut {
        v: PROTOCOL_VERSION,
        resp,
    });
    let mut line = match encoded {
        Ok(line) => line,
        Err(e) => {
            let fallback = Response::Error(DirectorError::Transport(format!(
                "rvsd cannot encode its response: {e}"
            )));
            serde_json::to_vec(&ResponseOut {
                v: PROTOCOL_VERSION,
                resp: &fallback,
            })
            .unwrap_or_else(|_| b"{}".to_vec())
        }
    };
    line.push(b'\n');
    line
}

/// Parse one response line (without its newline).
pub fn decode_response(line: &[u8]) -> Result<Response, DirectorError> {
    check_version(line, "response")?;
    let frame: ResponseIn = serde_json::from_slice(line).map_err(|e| bad_line("response", &e))?;
    Ok(frame.resp)
}

/// Outcome of reading one bounded line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineRead {
    /// A line, newline stripped. A last line without a newline counts too.
    Line(Vec<u8>),
    /// The peer closed the stream before sending anything more.
    Eof,
    /// More than `max` bytes came without a newline; the rest of that line
    /// is still unread, so the stream cannot be resynchronised.
    TooLong,
}

/// Read one line of at most `max` bytes (newline excluded).
pub fn read_line<R: BufRead>(reader: &mut R, max: usize) -> io::Result<LineRead> {
    let mut buf = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let n = reader.by_ref().take(limit).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(LineRead::Eof);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        return Ok(LineRead::Line(buf));
    }
    if buf.len() > max {
        return Ok(LineRead::TooLong);
    }
    Ok(LineRead::Line(buf))
}

/// Every knob, in [`KNOB_NAMES`] order.
pub fn knob_values(knobs: &Knobs) -> Vec<KnobValue> {
    KNOB_NAMES
        .iter()
        .filter_map(|name| {
            knobs.get(name).map(|value| KnobValue {
                name: (*name).to_string(),
                value,
            })
        })
        .collect()
}

/// Serve one request against an engine. Permission checks are the
/// caller's (see [`Request::needs_privilege`]).
pub fn handle_request(engine: &mut Engine, req: Request) -> Response {
    match req {
        Request::Ping => Response::Pong,
        Request::Version => Response::Version(VersionInfo {
            protocol: PROTOCOL_VERSION,
            software: env!("CARGO_PKG_VERSION").to_string(),
        }),
        Request::Apply(commands) => match engine.apply_all(commands) {
            Ok(()) => Response::Applied,
            Err((index, error)) => Response::Error(DirectorError::Apply { index, error }),
        },
        Request::Table => Response::Table(engine.snapshot()),
        Request::Connections => Response::Connections(engine.connections()),
        Request::Timeouts => Response::Timeouts(engine.timeouts()),
        Request::Knobs => Response::Knobs(knob_values(engine.knobs())),
        // Health checking and draining live in the daemon, not the engine.
        Request::Reload { .. }
        | Request::HealthStatus
        | Request::Drain { .. }
        | Request::ClearOverride { .. } => Response::Error(DirectorError::Transport(
            "this director has no health checker or drain table".to_string(),
        )),
    }
}

/// The operating system's text for an I/O error, without Rust's
/// ` (os error N)` suffix: `No such file or directory`, `Connection
/// refused`, `Permission denied`, as ipvsadm would print them.
pub fn os_error_text(e: &io::Error) -> String {
    let text = e.to_string();
    match e.raw_os_error() {
        Some(code) => text
            .strip_suffix(&format!(" (os error {code})"))
            .map(str::to_string)
            .unwrap_or(text),
        None => text,
    }
}

fn transport(e: &io::Error) -> DirectorError {
    DirectorError::Transport(os_error_text(e))
}

fn unexpected(resp: &Response) -> DirectorError {
    let kind = match resp {
        Response::Pong => "Pong",
        Response::Version(_) => "Version",
        Response::Applied => "Applied",
        Response::Table(_) => "Table",
        Response::Connections(_) => "Connections",
        Response::Timeouts(_) => "Timeouts",
        Response::Knobs(_) => "Knobs",
        Response::Reloaded(_) => "Reloaded",
        Response::Health(_) => "Health",
        Response::Draining(_) => "Draining",
        Response::OverrideCleared => "OverrideCleared",
        Response::Error(_) => "Error",
    };
    DirectorError::Transport(format!("unexpected {kind} response from rvsd"))
}

/// A director reached over the control socket: one connection, requests
/// answered in turn.
#[derive(Debug)]
pub struct SocketDirector {
    path: PathBuf,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl SocketDirector {
    /// Connect to rvsd at `path`. A missing socket gives
    /// `Transport("No such file or directory")`, a socket nobody listens on
    /// `Transport("Connection refused")`.
    pub fn connect(path: impl AsRef<Path>) -> Result<SocketDirector, DirectorError> {
        let path = path.as_ref().to_path_buf();
        let writer = UnixStream::connect(&path).map_err(|e| transport(&e))?;
        let reader = BufReader::new(writer.try_clone().map_err(|e| transport(&e))?);
        Ok(SocketDirector {
            path,
            reader,
            writer,
        })
    }

    /// The socket this director was reached through.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bound how long one request may wait for the socket (`None`: forever,
    /// the default).
    pub fn set_timeout(&self, timeout: Option<Duration>) -> Result<(), DirectorError> {
        self.writer
            .set_read_timeout(timeout)
            .and_then(|()| self.writer.set_write_timeout(timeout))
            .map_err(|e| transport(&e))
    }

    /// Send one request and wait for its answer. `Response::Error` is
    /// returned as a response here; the typed methods turn it into `Err`.
    pub fn request(&mut self, req: &Request) -> Result<Response, DirectorError> {
        let line = encode_request(req)?;
        self.writer.write_all(&line).map_err(|e| transport(&e))?;
        self.writer.flush().map_err(|e| transport(&e))?;
        match read_line(&mut self.reader, MAX_RESPONSE_LINE).map_err(|e| transport(&e))? {
            LineRead::Line(line) => decode_response(&line),
            LineRead::Eof => Err(DirectorError::Transport(
                "rvsd closed the connection".to_string(),
            )),
            LineRead::TooLong => Err(DirectorError::Transport(format!(
                "rvsd response longer than {MAX_RESPONSE_LINE} bytes"
            ))),
        }
    }

    fn call(&mut self, req: &Request) -> Result<Response, DirectorError> {
        match self.request(req)? {
            Response::Error(e) => Err(e),
            resp => Ok(resp),
        }
    }

    /// Check that rvsd answers.
    pub fn ping(&mut self) -> Result<(), DirectorError> {
        match self.call(&Request::Ping)? {
            Response::Pong => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// The server's protocol and software versions.
    pub fn version(&mut self) -> Result<VersionInfo, DirectorError> {
        match self.call(&Request::Version)? {
            Response::Version(v) => Ok(v),
            other => Err(unexpected(&other)),
        }
    }

    /// Every IPVS knob with its current value, in [`KNOB_NAMES`] order.
    pub fn knobs(&mut self) -> Result<Vec<KnobValue>, DirectorError> {
        match self.call(&Request::Knobs)? {
            Response::Knobs(k) => Ok(k),
            other => Err(unexpected(&other)),
        }
    }

    /// Reload the configuration file (rvs extension).
    pub fn reload(&mut self, clear_overrides: bool) -> Result<ReloadSummary, DirectorError> {
        match self.call(&Request::Reload { clear_overrides })? {
            Response::Reloaded(s) => Ok(s),
            other => Err(unexpected(&other)),
        }
    }

    /// The health status listing and drains (rvs extension).
    pub fn health(&mut self) -> Result<HealthReport, DirectorError> {
        match self.call(&Request::HealthStatus)? {
            Response::Health(h) => Ok(h),
            other => Err(unexpected(&other)),
        }
    }

    /// Drain one real server (rvs extension).
    pub fn drain(
        &mut self,
        service: ServiceKey,
        addr: IpAddr,
        port: u16,
        timeout_secs: Option<u64>,
    ) -> Result<DrainStatus, DirectorError> {
        let req = Request::Drain {
            service,
            addr,
            port,
            timeout_secs,
        };
        match self.call(&req)? {
            Response::Draining(d) => Ok(d),
            other => Err(unexpected(&other)),
        }
    }

    /// Hand an overridden real server back to its checks (rvs extension).
    pub fn clear_override(
        &mut self,
        service: ServiceKey,
        addr: IpAddr,
        port: u16,
    ) -> Result<(), DirectorError> {
        match self.call(&Request::ClearOverride {
            service,
            addr,
            port,
        })? {
            Response::OverrideCleared => Ok(()),
            other => Err(unexpected(&other)),
        }
    }
}

impl Director for SocketDirector {
    fn apply(&mut self, commands: Vec<Command>) -> Result<(), DirectorError> {
        match self.call(&Request::Apply(commands))? {
            Response::Applied => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    fn table(&mut self) -> Result<TableSnapshot, DirectorError> {
        match self.call(&Request::Table)? {
            Response::Table(t) => Ok(t),
            other => Err(unexpected(&other)),
        }
    }

    fn connections(&mut self) -> Result<Vec<ConnSnapshot>, DirectorError> {
        match self.call(&Request::Connections)? {
            Response::Connections(c) => Ok(c),
            other => Err(unexpected(&other)),
        }
    }

    fn timeouts(&mut self) -> Result<Timeouts, DirectorError> {
        match self.call(&Request::Timeouts)? {
            Response::Timeouts(t) => Ok(t),
            other => Err(unexpected(&other)),
        }
    }

    fn knobs(&mut self) -> Result<Vec<KnobValue>, DirectorError> {
        SocketDirector::knobs(self)
    }

    fn reload(&mut self, clear_overrides: bool) -> Result<ReloadSummary, DirectorError> {
        SocketDirector::reload(self, clear_overrides)
    }

    fn health(&mut self) -> Result<HealthReport, DirectorError> {
        SocketDirector::health(self)
    }

    fn drain(
        &mut self,
        service: ServiceKey,
        addr: IpAddr,
        port: u16,
        timeout_secs: Option<u64>,
    ) -> Result<DrainStatus, DirectorError> {
        SocketDirector::drain(self, service, addr, port, timeout_secs)
    }

    fn clear_override(
        &mut self,
        service: ServiceKey,
        addr: IpAddr,
        port: u16,
    ) -> Result<(), DirectorError> {
        SocketDirector::clear_override(self, service, addr, port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_core::{ApplyError, DestConfig, Protocol, ServiceConfig};
    use std::io::Cursor;
    use std::net::Ipv4Addr;

    fn key() -> ServiceKey {
        ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            port: 80,
        }
    }

    #[test]
    fn request_line_is_versioned_json_ending_in_newline() {
        let line = encode_request(&Request::Ping).expect("encodes");
        assert_eq!(line, b"{\"v\":1,\"req\":\"Ping\"}\n".to_vec());
        let line = encode_request(&Request::Apply(vec![Command::Clear])).expect("encodes");
        assert_eq!(
            line,
            b"{\"v\":1,\"req\":{\"Apply\":[\"Clear\"]}}\n".to_vec()
        );
    }

    #[test]
    fn requests_round_trip() {
        let reqs = vec![
            Request::Ping,
            Request::Version,
            Request::Apply(vec![
                Command::AddService(ServiceConfig::new(key())),
                Command::AddDest {
                    service: key(),
                    dest: DestConfig::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 80),
                },
                Command::SetKnob {
                    name: "sloppy_tcp".into(),
                    value: 1,
                },
            ]),
            Request::Table,
            Request::Connections,
            Request::Timeouts,
            Request::Knobs,
            Request::Reload {
                clear_overrides: true,
            },
            Request::HealthStatus,
            Request::Drain {
                service: key(),
                addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
                port: 80,
                timeout_secs: Some(30),
            },
            Request::ClearOverride {
                service: key(),
                addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
                port: 80,
            },
        ];
        for req in reqs {
            let mut line = encode_request(&req).expect("encodes");
            assert_eq!(line.pop(), Some(b'\n'));
            assert!(!line.contains(&b'\n'));
            assert_eq!(decode_request(&line), Ok(req));
        }
    }

    #[test]
    fn garbage_and_foreign_versions_are_errors_not_panics() {
        for garbage in [
            &b"hello"[..],
            b"",
            b"{}",
            b"{\"v\":1}",
            b"{\"v\":1,\"req\":\"Nope\"}",
            b"{\"v\":\"one\",\"req\":\"Ping\"}",
            b"\xff\xfe\x00",
            b"[1,2,3]",
        ] {
            assert!(
                matches!(decode_request(garbage), Err(DirectorError::Transport(_))),
                "{garbage:?}"
            );
        }
        let err = decode_request(b"{\"v\":2,\"req\":\"Ping\"}").expect_err("v2 refused");
        assert_eq!(
            err,
            DirectorError::Transport(
                "control protocol version mismatch: request speaks 2, this side speaks 1".into()
            )
        );
    }

    #[test]
    fn responses_round_trip_including_errors() {
        let resps = vec![
            Response::Pong,
            Response::Applied,
            Response::Error(DirectorError::Apply {
                index: 3,
                error: ApplyError::DestExists,
            }),
            Response::Error(DirectorError::PermissionDenied),
            Response::Timeouts(Timeouts {
                tcp: 1,
                tcpfin: 2,
                udp: 3,
            }),
            Response::Knobs(vec![KnobValue {
                name: "pmtu_disc".into(),
                value: 1,
            }]),
        ];
        for resp in resps {
            let mut line = encode_response(&resp);
            assert_eq!(line.pop(), Some(b'\n'));
            assert_eq!(decode_response(&line), Ok(resp));
        }
    }

    #[test]
    fn read_line_bounds_and_splits() {
        let mut r = Cursor::new(b"abc\n\nabcdef\nxy".to_vec());
        assert_eq!(
            read_line(&mut r, 5).expect("io"),
            LineRead::Line(b"abc".to_vec())
        );
        assert_eq!(
            read_line(&mut r, 5).expect("io"),
            LineRead::Line(Vec::new())
        );
        // 6 bytes before the newline: over the limit of 5.
        assert_eq!(read_line(&mut r, 5).expect("io"), LineRead::TooLong);

        // Exactly at the limit is fine, last line without newline too.
        let mut r = Cursor::new(b"abcde\nxy".to_vec());
        assert_eq!(
            read_line(&mut r, 5).expect("io"),
            LineRead::Line(b"abcde".to_vec())
        );
        assert_eq!(
            read_line(&mut r, 5).expect("io"),
            LineRead::Line(b"xy".to_vec())
        );
        assert_eq!(read_line(&mut r, 5).expect("io"), LineRead::Eof);
    }

    #[test]
    fn handle_request_applies_atomically_and_reports_the_index() {
        let mut engine = Engine::new();
        let bad = Request::Apply(vec![
            Command::AddService(ServiceConfig::new(key())),
            Command::DeleteService(ServiceKey::Fwmark {
                mark: 7,
                family: rvs_core::Family::V4,
            }),
        ]);
        assert_eq!(
            handle_request(&mut engine, bad),
            Response::Error(DirectorError::Apply {
                index: 1,
                error: ApplyError::NoSuchService
            })
        );
        assert!(engine.snapshot().services.is_empty());
        let good = Request::Apply(vec![Command::AddService(ServiceConfig::new(key()))]);
        assert_eq!(handle_request(&mut engine, good), Response::Applied);
        assert_eq!(engine.snapshot().services.len(), 1);
    }

    #[test]
    fn knobs_listed_in_name_order_with_kernel_defaults() {
        let mut engine = Engine::new();
        let Response::Knobs(knobs) = handle_request(&mut engine, Request::Knobs) else {
            panic!("knobs answer expected");
        };
        let pairs: Vec<(&str, i64)> = knobs.iter().map(|k| (k.name.as_str(), k.value)).collect();
        assert_eq!(
            pairs,
            vec![
                ("cache_bypass", 0),
                ("conn_reuse_mode", 1),
                ("expire_nodest_conn", 0),
                ("expire_quiescent_template", 0),
                ("lblc_expiration", 86400),
                ("lblcr_expiration", 86400),
                ("nat_icmp_send", 0),
                ("pmtu_disc", 1),
                ("schedule_icmp", 0),
                ("sloppy_sctp", 0),
                ("sloppy_tcp", 0),
            ]
        );
    }

    #[test]
    fn os_error_text_drops_the_rust_suffix() {
        let e = io::Error::from_raw_os_error(2);
        assert_eq!(os_error_text(&e), "No such file or directory");
        let e = io::Error::from_raw_os_error(111);
        assert_eq!(os_error_text(&e), "Connection refused");
        let e = io::Error::other("plain");
        assert_eq!(os_error_text(&e), "plain");
    }

    #[test]
    fn socket_path_prefers_the_flag() {
        assert_eq!(
            socket_path(Some(Path::new("/tmp/x.sock"))),
            PathBuf::from("/tmp/x.sock")
        );
    }
}
