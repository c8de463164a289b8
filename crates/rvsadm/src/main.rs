//! The `rvsadm` binary (also installed as `ipvsadm`): reads argv, picks the
//! control socket (`--socket PATH`, else `RVS_SOCKET`, else the default) and
//! hands everything to [`rvsadm::run`].

#![forbid(unsafe_code)]

use rvs_api::protocol::{socket_path, SocketDirector};
use rvs_api::{Director, DirectorError, DrainStatus, HealthReport, KnobValue, ReloadSummary};
use rvs_core::snapshot::{ConnSnapshot, TableSnapshot, Timeouts};
use rvs_core::{Command, ServiceKey};
use rvsadm::resolve::SystemResolver;
use std::net::IpAddr;

/// The director behind the control socket, or why it cannot be reached.
enum Connection {
    Connected(SocketDirector),
    Failed { socket: String, error: String },
}

impl Connection {
    fn open(socket: &str) -> Connection {
        match SocketDirector::connect(socket) {
            Ok(d) => Connection::Connected(d),
            Err(e) => Connection::Failed {
                socket: socket.to_string(),
                error: e.to_string(),
            },
        }
    }

    fn director(&mut self) -> Result<&mut SocketDirector, DirectorError> {
        match self {
            Connection::Connected(d) => Ok(d),
            Connection::Failed { socket, error } => Err(DirectorError::Transport(format!(
                "{error} (control socket {socket}; is rvsd running? start it with `rvsd --socket {socket}`)"
            ))),
        }
    }
}

impl Director for Connection {
    fn apply(&mut self, commands: Vec<Command>) -> Result<(), DirectorError> {
        self.director()?.apply(commands)
    }
    fn table(&mut self) -> Result<TableSnapshot, DirectorError> {
        self.director()?.table()
    }
    fn connections(&mut self) -> Result<Vec<ConnSnapshot>, DirectorError> {
        self.director()?.connections()
    }
    fn timeouts(&mut self) -> Result<Timeouts, DirectorError> {
        self.director()?.timeouts()
    }
    fn knobs(&mut self) -> Result<Vec<KnobValue>, DirectorError> {
        Director::knobs(self.director()?)
    }
    fn reload(&mut self, clear_overrides: bool) -> Result<ReloadSummary, DirectorError> {
        Director::reload(self.director()?, clear_overrides)
    }
    fn health(&mut self) -> Result<HealthReport, DirectorError> {
        Director::health(self.director()?)
    }
    fn drain(
        &mut self,
        service: ServiceKey,
        addr: IpAddr,
        port: u16,
        timeout_secs: Option<u64>,
    ) -> Result<DrainStatus, DirectorError> {
        Director::drain(self.director()?, service, addr, port, timeout_secs)
    }
    fn clear_override(
        &mut self,
        service: ServiceKey,
        addr: IpAddr,
        port: u16,
    ) -> Result<(), DirectorError> {
        Director::clear_override(self.director()?, service, addr, port)
    }
}

fn main() {
    let mut argv = std::env::args();
    let program = argv.next().unwrap_or_else(|| "ipvsadm".to_string());
    let args: Vec<String> = argv.collect();
    let (socket, args) = rvsadm::take_socket_arg(&args);
    let socket = socket_path(socket.as_deref().map(std::path::Path::new));
    let mut director = Connection::open(&socket.to_string_lossy());
    let resolver = SystemResolver::system();
    let code = rvsadm::run(
        &args,
        &program,
        &mut director,
        &mut std::io::stdin().lock(),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
        &resolver,
    );
    std::process::exit(code);
}
