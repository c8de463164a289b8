//! The `rvsadm` binary (also installed as `ipvsadm`): reads argv, picks the
//! control socket (`--socket PATH`, else `RVS_SOCKET`, else the default) and
//! hands everything to [`rvsadm::run`].

use rvs_api::{Director, DirectorError};
use rvs_core::snapshot::{ConnSnapshot, TableSnapshot, Timeouts};
use rvs_core::Command;
use rvsadm::FileResolver;

/// Default control socket path of rvsd.
const DEFAULT_SOCKET: &str = "/run/rvsd.sock";

/// Placeholder director until the control-socket client exists.
///
/// TODO(rvs-api protocol): replace with the rvsd client from
/// `rvs_api::protocol` connected to `socket`; every request fails until then.
struct UnconnectedDirector {
    socket: String,
}

impl UnconnectedDirector {
    fn error(&self) -> DirectorError {
        DirectorError::Transport(format!(
            "rvsd connection not implemented yet (control socket {})",
            self.socket
        ))
    }
}

impl Director for UnconnectedDirector {
    fn apply(&mut self, _commands: Vec<Command>) -> Result<(), DirectorError> {
        Err(self.error())
    }
    fn table(&mut self) -> Result<TableSnapshot, DirectorError> {
        Err(self.error())
    }
    fn connections(&mut self) -> Result<Vec<ConnSnapshot>, DirectorError> {
        Err(self.error())
    }
    fn timeouts(&mut self) -> Result<Timeouts, DirectorError> {
        Err(self.error())
    }
}

fn main() {
    let mut argv = std::env::args();
    let program = argv.next().unwrap_or_else(|| "ipvsadm".to_string());
    let args: Vec<String> = argv.collect();
    let (socket, args) = rvsadm::take_socket_arg(&args);
    let socket = socket
        .or_else(|| std::env::var("RVS_SOCKET").ok())
        .unwrap_or_else(|| DEFAULT_SOCKET.to_string());
    // --- connection to rvsd goes here (rvs_api::protocol client) ---
    let mut director = UnconnectedDirector { socket };
    let resolver = FileResolver::system();
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
