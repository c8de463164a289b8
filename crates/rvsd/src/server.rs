//! The control socket: binding it safely, accepting clients, serving their
//! requests against the shared engine, and stopping on a signal.
//!
//! One thread per client; the engine sits behind a mutex in [`Shared`], so
//! requests are served one at a time and an `Apply` plus the state-file
//! write that follows it happen under one lock. Shutdown marks the shared
//! state closed under that lock, so no batch is half-applied or applied
//! without being saved, and clients that race the shutdown are told so.
//!
//! Panics (always a bug): the hook installed by [`install_panic_hook`]
//! logs every panic with its thread. A thread that serves one client, one
//! scrape, one probe or one notify command ends alone and rvsd goes on.
//! Any other thread (housekeeping tick, health checker, SIGHUP, metrics
//! acceptor, datapath, main) is part of what keeps the director working:
//! its death would leave a daemon that looks alive and silently stopped
//! expiring connections, checking servers or moving packets, so rvsd
//! exits with status 70 instead and its supervisor restarts it (the rules
//! come back from the state or configuration file; the datapath fails
//! open meanwhile). A panic while the engine lock is held may leave the
//! engine half-changed: the next thread to take the lock sees it poisoned
//! and rvsd exits with status 70 as well.

use crate::drain::{DrainEnd, DrainTable};
use crate::health::HealthHandle;
use crate::state;
use anyhow::{bail, Context};
use rustix::event::{PollFd, PollFlags};
use rvs_api::protocol::{
    decode_request, encode_response, handle_request, read_line, LineRead, Request, Response,
    MAX_REQUEST_LINE,
};
use rvs_api::{DirectorError, DrainReason, HealthReport};
use rvs_core::{Command, Engine, ServiceKey};
use std::fs;
use std::io::{self, BufReader, Write};
use std::net::IpAddr;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// A client that sends nothing for this long is disconnected, so idle
/// connections do not pin threads forever.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// A client that does not read its answer for this long is disconnected
/// (a large connection listing to a stuck client must not pin a thread
/// forever).
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// Limits for peers that may only ping and ask the version (another
/// user, when the socket's mode lets one connect): their requests are a
/// few bytes, so a long line, a long silence or many connections at once
/// are refused early instead of holding memory and threads.
const UNPRIVILEGED_MAX_LINE: usize = 4096;
const UNPRIVILEGED_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_UNPRIVILEGED_CLIENTS: usize = 16;

/// What the engine lock guards.
#[derive(Debug)]
pub struct Director {
    pub engine: Engine,
    /// Set at shutdown; requests that arrive later are refused.
    pub closed: bool,
    /// Real servers listed with weight 0 until their connections end.
    pub drains: DrainTable,
}

/// State shared by the accept loop, client threads and (later) the
/// datapath and housekeeping threads.
#[derive(Debug)]
pub struct Shared {
    pub director: Mutex<Director>,
    pub state_file: Option<PathBuf>,
    /// The daemon's effective uid; peers with this uid or root may change it.
    pub owner_uid: u32,
    /// Time base of the drain table.
    pub started: Instant,
    /// The health checker, when rvsd runs with `--config`.
    pub health: OnceLock<HealthHandle>,
    /// Connections of unprivileged peers being served.
    unprivileged_clients: AtomicUsize,
}

impl Shared {
    pub fn new(engine: Engine, state_file: Option<PathBuf>) -> Shared {
        Shared {
            director: Mutex::new(Director {
                engine,
                closed: false,
                drains: DrainTable::new(),
            }),
            state_file,
            owner_uid: rustix::process::geteuid().as_raw(),
            started: Instant::now(),
            health: OnceLock::new(),
            unprivileged_clients: AtomicUsize::new(0),
        }
    }

    /// Time on the drain table's clock.
    pub fn now(&self) -> Duration {
        self.started.elapsed()
    }

    /// End drains that are over (no connection left, or timed out) and
    /// delete their servers. Called from the housekeeping tick.
    pub fn poll_drains(&self) {
        let mut director = self.lock();
        if director.drains.is_empty() {
            return;
        }
        let now = self.now();
        let snapshot = director.engine.snapshot();
        let (commands, ended) = director.drains.poll(&snapshot, now);
        if commands.is_empty() && ended.is_empty() {
            // Nothing changed: no state-file write (this runs every second
            // while a drain waits for its connections).
            return;
        }
        if !commands.is_empty() {
            if let Err((index, error)) = director.engine.apply_all(commands) {
                crate::log(&format!(
                    "drain: removing drained servers refused at command {index} ({error})"
                ));
            }
        }
        for (e, end) in ended {
            let who = format!(
                "{}, {}",
                crate::health::service_name(&e.service),
                server_text(e.addr, e.port)
            );
            let what = match end {
                DrainEnd::Empty => "drained: no connection left, removed".to_string(),
                DrainEnd::TimedOut { active, inactive } => format!(
                    "drain timeout passed with {active} active and {inactive} inactive connection(s): removed"
                ),
                DrainEnd::Gone => "drain ended: the server was removed by someone else".to_string(),
                DrainEnd::Changed => {
                    "drain abandoned: its weight was changed by hand".to_string()
                }
            };
            crate::log(&format!("{who} {what}"));
        }
        self.save_state(&director);
    }

    /// Write the state file (if any) from the engine.
    fn save_state(&self, director: &Director) {
        if let Some(path) = &self.state_file {
            let commands = state::commands_from_engine(&director.engine);
            if let Err(e) = state::save(path, &commands) {
                crate::log(&format!("ERROR: rules applied but not saved: {e:#}"));
            }
        }
    }

    /// `rvsadm --drain`: weight 0, templates invalidated, deleted later.
    fn drain(
        &self,
        service: ServiceKey,
        addr: IpAddr,
        port: u16,
        timeout_secs: Option<u64>,
    ) -> Response {
        let mut director = self.lock();
        if director.closed {
            return shutting_down();
        }
        let now = self.now();
        let snapshot = director.engine.snapshot();
        let timeout = timeout_secs.map(Duration::from_secs);
        let d = &mut *director;
        let started = d.drains.get(&service, addr, port).is_none();
        let cmd = match d.drains.start(
            &snapshot,
            (service, addr, port),
            DrainReason::Operator,
            timeout,
            now,
        ) {
            Ok(cmd) => cmd,
            Err(error) => return Response::Error(DirectorError::Apply { index: 0, error }),
        };
        if let Some(cmd) = cmd {
            if let Err((index, error)) = d.engine.apply_all(vec![cmd]) {
                d.drains.cancel(&service, addr, port);
                return Response::Error(DirectorError::Apply { index, error });
            }
        }
        let invalidated = d.engine.invalidate_templates_of(&service, addr, port);
        let snapshot = d.engine.snapshot();
        let Some(entry) = d.drains.get(&service, addr, port) else {
            return Response::Error(DirectorError::Transport("drain vanished".into()));
        };
        let status = d.drains.one(entry, &snapshot, now);
        if started {
            crate::log(&format!(
                "{}, {} draining (operator): weight 0, {invalidated} template(s) invalidated, {} active / {} inactive connection(s){}",
                crate::health::service_name(&service),
                server_text(addr, port),
                status.active,
                status.inactive,
                match timeout_secs {
                    Some(t) => format!(", timeout {t}s"),
                    None => String::new(),
                }
            ));
        }
        self.save_state(&director);
        Response::Draining(status)
    }

    /// The health listing (empty without `--config`) and the drains.
    fn health_report(&self) -> Response {
        let (snapshot, drains) = {
            let director = self.lock();
            let snapshot = director.engine.snapshot();
            let drains = director.drains.status(&snapshot, self.now());
            (snapshot, drains)
        };
        let _ = snapshot;
        let (checking, services) = match self.health.get() {
            Some(h) => (true, crate::health::report(h)),
            None => (false, Vec::new()),
        };
        Response::Health(HealthReport {
            checking,
            services,
            drains,
        })
    }

    /// `rvsadm --clear-override`: with `--config`, the health checker
    /// takes the server back (and any drain of it ends); without, an
    /// operator drain is cancelled and the weight it had restored.
    fn clear_override(&self, service: ServiceKey, addr: IpAddr, port: u16) -> Response {
        if let Some(h) = self.health.get() {
            return match h.request(|reply| crate::health::Msg::ClearOverride {
                service,
                addr,
                port,
                reply,
            }) {
                Ok(()) => Response::OverrideCleared,
                Err(e) => Response::Error(DirectorError::Transport(e)),
            };
        }
        let mut director = self.lock();
        if director.closed {
            return shutting_down();
        }
        let Some(entry) = director.drains.cancel(&service, addr, port) else {
            return Response::Error(DirectorError::Transport(format!(
                "{} is not overridden or draining (rvsd runs without --config)",
                server_text(addr, port)
            )));
        };
        let restore = Command::EditDest {
            service,
            dest: entry.previous,
        };
        if let Err((index, error)) = director.engine.apply_all(vec![restore]) {
            return Response::Error(DirectorError::Apply { index, error });
        }
        crate::log(&format!(
            "{}, {} drain cancelled: weight restored",
            crate::health::service_name(&service),
            server_text(addr, port)
        ));
        self.save_state(&director);
        Response::OverrideCleared
    }

    /// `rvsadm --reload`.
    fn reload(&self, clear_overrides: bool) -> Response {
        let Some(h) = self.health.get() else {
            return Response::Error(DirectorError::Transport(
                "rvsd runs without --config: nothing to reload".to_string(),
            ));
        };
        match h.request(|reply| crate::health::Msg::Reload {
            clear_overrides,
            reply: Some(reply),
        }) {
            Ok(summary) => Response::Reloaded(summary),
            Err(e) => Response::Error(DirectorError::Transport(e)),
        }
    }

    /// Lock the director. A thread that panicked while holding the lock
    /// may have left the engine half-changed (a batch is validated before
    /// it is applied, but packet processing and timers change the
    /// connection table in place), so a poisoned lock ends rvsd (see the
    /// module doc) rather than serve from a table nobody can vouch for.
    pub fn lock(&self) -> MutexGuard<'_, Director> {
        self.director.lock().unwrap_or_else(|_| {
            crate::log(
                "FATAL: a thread panicked while holding the engine lock; the engine may be inconsistent, exiting",
            );
            std::process::exit(EXIT_PANIC)
        })
    }

    /// Serve one decoded request from a peer.
    pub fn serve(&self, req: Request) -> Response {
        // rvs extensions that talk to the health thread must not hold the
        // engine lock while they wait for it.
        let req = match req {
            Request::Reload { clear_overrides } => return self.reload(clear_overrides),
            Request::HealthStatus => return self.health_report(),
            Request::Drain {
                service,
                addr,
                port,
                timeout_secs,
            } => return self.drain(service, addr, port, timeout_secs),
            Request::ClearOverride {
                service,
                addr,
                port,
            } => return self.clear_override(service, addr, port),
            other => other,
        };
        let mut director = self.lock();
        if director.closed {
            return shutting_down();
        }
        let batch_len = match &req {
            Request::Apply(cmds) => Some(cmds.len()),
            _ => None,
        };
        let resp = handle_request(&mut director.engine, req);
        if let Some(n) = batch_len {
            match &resp {
                Response::Applied => {
                    crate::log(&format!("applied {n} command(s)"));
                    if let Some(path) = &self.state_file {
                        let commands = state::commands_from_engine(&director.engine);
                        if let Err(e) = state::save(path, &commands) {
                            // The rules are live; only their persistence
                            // failed. Say so loudly rather than undo them.
                            crate::log(&format!("ERROR: rules applied but not saved: {e:#}"));
                        }
                    }
                }
                Response::Error(e) => crate::log(&format!("refused a batch of {n}: {e:?}")),
                _ => {}
            }
        }
        resp
    }

    /// Stop serving: wait for any request in progress, then refuse new ones.
    pub fn close(&self) {
        self.lock().closed = true;
    }
}

/// Exit status of rvsd after a fatal panic (`EX_SOFTWARE`).
pub const EXIT_PANIC: i32 = 70;

/// Threads whose panic ends only themselves: each serves one client
/// connection, one scrape, one health probe or waits for one notify
/// command. Every other thread is essential.
const EXPENDABLE_THREADS: [&str; 4] = ["rvsd-client", "rvsd-scrape", "rvsd-probe", "rvsd-notify"];

/// Does a panic in the thread named `name` end rvsd?
pub fn panic_is_fatal(name: Option<&str>) -> bool {
    !name.is_some_and(|n| EXPENDABLE_THREADS.contains(&n))
}

/// Log every panic with its thread; exit with [`EXIT_PANIC`] when the
/// thread is essential (module doc).
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        let thread = std::thread::current();
        let name = thread.name();
        let shown = name.unwrap_or("unnamed");
        if panic_is_fatal(name) {
            crate::log(&format!(
                "FATAL: essential thread {shown} panicked ({info}); exiting with status {EXIT_PANIC} so that a supervisor restarts rvsd"
            ));
            std::process::exit(EXIT_PANIC);
        }
        crate::log(&format!(
            "BUG: thread {shown} panicked ({info}); that thread ended, rvsd goes on"
        ));
    }));
}

fn shutting_down() -> Response {
    Response::Error(DirectorError::Transport(
        "rvsd is shutting down".to_string(),
    ))
}

/// `IP:port` / `[IPv6]:port`.
pub fn server_text(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// May a peer with this uid change the director?
pub fn peer_allowed(peer_uid: u32, owner_uid: u32) -> bool {
    peer_uid == 0 || peer_uid == owner_uid
}

/// The bound control socket. Dropping it removes the socket file, but only
/// if the file is still the one this process created.
#[derive(Debug)]
pub struct ControlSocket {
    pub listener: UnixListener,
    path: PathBuf,
    identity: (u64, u64),
}

impl ControlSocket {
    /// Bind `path` with mode 0600. An existing socket file nobody listens
    /// on is stale and replaced; one with a listener means another rvsd is
    /// running, and anything that is not a socket is left alone.
    pub fn bind(path: &Path) -> anyhow::Result<ControlSocket> {
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() {
                fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create directory {}", parent.display()))?;
            }
        }
        match fs::symlink_metadata(path) {
            Ok(meta) => {
                if !meta.file_type().is_socket() {
                    bail!(
                        "{} exists and is not a socket; refusing to replace it",
                        path.display()
                    );
                }
                match UnixStream::connect(path) {
                    Ok(_) => bail!(
                        "another rvsd is already listening on {}; refusing to start",
                        path.display()
                    ),
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                        fs::remove_file(path).with_context(|| {
                            format!("cannot remove stale socket {}", path.display())
                        })?;
                        crate::log(&format!("removed stale socket {}", path.display()));
                    }
                    Err(e) => {
                        return Err(e).with_context(|| {
                            format!("cannot check existing socket {}", path.display())
                        })
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot stat {}", path.display())),
        }
        // Create the socket file without group/other bits from the start,
        // so there is no window in which anyone else could connect.
        let old_mask = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
        let bound = UnixListener::bind(path);
        rustix::process::umask(old_mask);
        let listener = bound.with_context(|| format!("cannot bind {}", path.display()))?;
        let meta = fs::symlink_metadata(path);
        let meta = match meta {
            Ok(m) => m,
            Err(e) => {
                let _ = fs::remove_file(path);
                return Err(e).with_context(|| format!("cannot stat {}", path.display()));
            }
        };
        // From here on, dropping `socket` removes the file on any error.
        let socket = ControlSocket {
            listener,
            path: path.to_path_buf(),
            identity: (meta.dev(), meta.ino()),
        };
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot chmod {}", path.display()))?;
        socket
            .listener
            .set_nonblocking(true)
            .context("cannot make the listener non-blocking")?;
        Ok(socket)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let ours = fs::symlink_metadata(&self.path)
            .map(|m| (m.dev(), m.ino()) == self.identity)
            .unwrap_or(false);
        if ours {
            if let Err(e) = fs::remove_file(&self.path) {
                crate::log(&format!("cannot remove {}: {e}", self.path.display()));
            }
        }
    }
}

/// Accept clients until `stop` becomes readable (a signal arrived).
pub fn run(socket: &ControlSocket, stop: &UnixStream, shared: &Arc<Shared>) -> anyhow::Result<()> {
    loop {
        let (listener_ready, stop_ready) = {
            let mut fds = [
                PollFd::new(&socket.listener, PollFlags::IN),
                PollFd::new(stop, PollFlags::IN),
            ];
            match rustix::event::poll(&mut fds, None) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(io::Error::from(e)).context("poll on the control socket"),
            }
            (!fds[0].revents().is_empty(), !fds[1].revents().is_empty())
        };
        if stop_ready {
            return Ok(());
        }
        if listener_ready {
            accept_all(socket, shared);
        }
    }
}

fn accept_all(socket: &ControlSocket, shared: &Arc<Shared>) {
    loop {
        match socket.listener.accept() {
            Ok((stream, _)) => {
                let shared = Arc::clone(shared);
                let spawned = std::thread::Builder::new()
                    .name("rvsd-client".into())
                    .spawn(move || serve_client(stream, &shared));
                if let Err(e) = spawned {
                    crate::log(&format!("cannot start a client thread: {e}"));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                // Out of descriptors or similar: back off instead of spinning.
                crate::log(&format!("accept failed: {e}"));
                std::thread::sleep(Duration::from_millis(100));
                return;
            }
        }
    }
}

/// An unprivileged connection being served; the count goes down when it
/// ends, panics included.
struct UnprivilegedSlot<'a>(&'a AtomicUsize);

impl<'a> UnprivilegedSlot<'a> {
    fn take(count: &'a AtomicUsize) -> Option<UnprivilegedSlot<'a>> {
        if count.fetch_add(1, Ordering::SeqCst) >= MAX_UNPRIVILEGED_CLIENTS {
            count.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(UnprivilegedSlot(count))
    }
}

impl Drop for UnprivilegedSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn serve_client(mut stream: UnixStream, shared: &Shared) {
    let allowed = match rustix::net::sockopt::socket_peercred(&stream) {
        Ok(cred) => peer_allowed(cred.uid.as_raw(), shared.owner_uid),
        Err(e) => {
            crate::log(&format!("cannot read peer credentials: {e}"));
            false
        }
    };
    let _slot = if allowed {
        None
    } else {
        match UnprivilegedSlot::take(&shared.unprivileged_clients) {
            Some(slot) => Some(slot),
            None => {
                let resp = Response::Error(DirectorError::Transport(
                    "too many unprivileged connections".to_string(),
                ));
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
                let _ = stream.write_all(&encode_response(&resp));
                return;
            }
        }
    };
    if let Err(e) = serve_connection(stream, allowed, shared) {
        if !matches!(
            e.kind(),
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
        ) {
            crate::log(&format!("client connection ended: {e}"));
        }
    }
}

fn serve_connection(stream: UnixStream, allowed: bool, shared: &Shared) -> io::Result<()> {
    let (max_line, idle) = if allowed {
        (MAX_REQUEST_LINE, IDLE_TIMEOUT)
    } else {
        (UNPRIVILEGED_MAX_LINE, UNPRIVILEGED_IDLE_TIMEOUT)
    };
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(idle))?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let line = match read_line(&mut reader, max_line) {
            Ok(LineRead::Line(line)) => line,
            Ok(LineRead::Eof) => return Ok(()),
            Ok(LineRead::TooLong) => {
                let resp = Response::Error(DirectorError::Transport(format!(
                    "request longer than {max_line} bytes"
                )));
                writer.write_all(&encode_response(&resp))?;
                return Ok(());
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(())
            }
            Err(e) => return Err(e),
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let resp = match decode_request(&line) {
            Err(e) => Response::Error(e),
            Ok(req) if req.needs_privilege() && !allowed => {
                Response::Error(DirectorError::PermissionDenied)
            }
            Ok(req) => shared.serve(req),
        };
        writer.write_all(&encode_response(&resp))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_root_and_the_owner_may_change_the_director() {
        assert!(peer_allowed(0, 0));
        assert!(!peer_allowed(1000, 0));
        assert!(!peer_allowed(65534, 0));
        // An rvsd run by an ordinary user for testing serves that user.
        assert!(peer_allowed(1000, 1000));
        assert!(peer_allowed(0, 1000));
        assert!(!peer_allowed(1001, 1000));
    }

    /// Serve one end of a socket pair on a thread as a peer that is
    /// (`allowed`) or is not privileged; the other end.
    fn pair(shared: &Arc<Shared>, allowed: bool) -> (UnixStream, std::thread::JoinHandle<()>) {
        let (server, client) = UnixStream::pair().expect("socket pair");
        let shared = Arc::clone(shared);
        let t = std::thread::spawn(move || {
            let _ = serve_connection(server, allowed, &shared);
        });
        client
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        (client, t)
    }

    fn answer(client: &mut UnixStream) -> String {
        let mut out = Vec::new();
        let _ = std::io::Read::read_to_end(client, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn an_unprivileged_peer_gets_short_lines_only() {
        let shared = Arc::new(Shared::new(Engine::new(), None));
        // Over 4 KiB without a newline: refused and disconnected, without
        // waiting for the rest (a privileged peer may send 16 MiB).
        let (mut c, t) = pair(&shared, false);
        c.write_all(&[b' '; UNPRIVILEGED_MAX_LINE + 1])
            .expect("send");
        let a = answer(&mut c);
        assert!(a.contains("request longer than 4096 bytes"), "{a}");
        t.join().expect("server thread");
        // The same bytes from a privileged peer are just blank space,
        // then a ping is answered.
        let (mut c, t) = pair(&shared, true);
        c.write_all(&[b' '; UNPRIVILEGED_MAX_LINE + 1])
            .expect("send");
        c.write_all(b"\n").expect("send");
        let ping = rvs_api::protocol::encode_request(&Request::Ping).expect("encode");
        c.write_all(&ping).expect("send");
        c.shutdown(std::net::Shutdown::Write).expect("shutdown");
        assert_eq!(
            answer(&mut c).into_bytes(),
            encode_response(&Response::Pong)
        );
        t.join().expect("server thread");
    }

    #[test]
    fn unprivileged_connections_are_capped_and_slots_come_back() {
        let count = AtomicUsize::new(0);
        let slots: Vec<_> = (0..MAX_UNPRIVILEGED_CLIENTS)
            .map(|_| UnprivilegedSlot::take(&count).expect("a slot"))
            .collect();
        assert!(UnprivilegedSlot::take(&count).is_none());
        assert_eq!(count.load(Ordering::SeqCst), MAX_UNPRIVILEGED_CLIENTS);
        drop(slots);
        assert_eq!(count.load(Ordering::SeqCst), 0);
        assert!(UnprivilegedSlot::take(&count).is_some());
    }

    #[test]
    fn only_per_request_threads_may_panic_without_ending_rvsd() {
        for name in ["rvsd-client", "rvsd-scrape", "rvsd-probe", "rvsd-notify"] {
            assert!(!panic_is_fatal(Some(name)), "{name}");
        }
        for name in [
            "main",
            "rvsd-tick",
            "rvsd-health",
            "rvsd-sighup",
            "rvsd-metrics",
            "rvsd-rx",
            "rvsd-sync",
            "rvsd-client2",
        ] {
            assert!(panic_is_fatal(Some(name)), "{name}");
        }
        assert!(panic_is_fatal(None));
    }

    #[test]
    fn a_closed_director_refuses_requests() {
        let shared = Shared::new(Engine::new(), None);
        assert_eq!(shared.serve(Request::Ping), Response::Pong);
        shared.close();
        assert_eq!(
            shared.serve(Request::Ping),
            Response::Error(DirectorError::Transport("rvsd is shutting down".into()))
        );
    }
}
