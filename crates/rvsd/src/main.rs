//! rvsd, the rvs director daemon: the composition root.
//!
//! It owns one `rvs_core::Engine`, loads and saves the optional state file,
//! serves the control socket (`rvs_api::protocol`) and stops cleanly on
//! SIGTERM/SIGINT. It holds no LVS rule of its own: every change is a
//! `Command` batch applied by the engine, all or nothing.
//!
//! ```text
//! rvsd [--socket PATH] [--state-file PATH] [--foreground]
//!      [--interface IFACE]... [--tunnel-source ADDR] [--queue N] [--no-datapath]
//!      [--datapath nfqueue|xdp|auto] [--xdp-mode auto|native|generic]
//!      [--xdp-fastpath]
//! ```
//! The datapath (`datapath.rs`) steers LVS packets of this network
//! namespace to the engine; without one (no privileges, no netfilter) rvsd
//! still serves the control socket.
//! It always runs in the foreground and logs to stderr (`--foreground` is
//! accepted for init scripts that pass it). The socket path comes from
//! `--socket`, then `RVS_SOCKET`, then `/run/rvs/rvsd.sock`.
//!
//! A panic in an essential thread, or while the engine lock is held, ends
//! rvsd with exit status 70 for its supervisor to restart it; a panic
//! serving one client, scrape or probe ends only that thread (`server.rs`).

#![forbid(unsafe_code)]

mod config;
mod datapath;
mod drain;
mod health;
mod metrics;
mod server;
mod state;

use anyhow::Context;
use rvs_core::Engine;
use server::{ControlSocket, Shared};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Log one line to stderr.
pub(crate) fn log(msg: &str) {
    eprintln!("rvsd: {msg}");
}

#[derive(Debug, Default)]
struct Args {
    socket: Option<PathBuf>,
    state_file: Option<PathBuf>,
    datapath: datapath::DatapathOptions,
    config: Option<PathBuf>,
    config_format: Option<String>,
    metrics_listen: Option<String>,
}

enum Parsed {
    Run(Args),
    Exit(ExitCode),
}

const USAGE: &str = "\
usage: rvsd [--socket PATH] [--state-file PATH] [--foreground]

Runs the rvs director in the foreground and serves its control socket.

  --socket PATH       control socket (default: $RVS_SOCKET, else /run/rvs/rvsd.sock)
  --state-file PATH   keep the rules in PATH across restarts
  --foreground        accepted for compatibility; rvsd never daemonizes
  --interface IFACE   steer only packets arriving on IFACE (repeatable;
                      default: every interface of the namespace)
  --tunnel-source IP  outer source of IPIP packets (default: the source of
                      the route towards the real servers)
  --queue N           NFQUEUE number of the datapath (default 7276)
  --no-datapath       serve the control socket only
  --datapath KIND     auto (default: xdp where the BPF program loads and
                      attaches, else nfqueue, logging why), xdp (XDP +
                      AF_XDP, NFQUEUE beside it for what XDP passes) or
                      nfqueue; default from $RVSD_DATAPATH when set
  --xdp-mode MODE     auto (native, else generic; default), native or generic
  --xdp-fastpath      forward established NAT/DR flows in XDP without the
                      engine (counters and timers synced every second;
                      default off)
  --config FILE       desired state (health checks, sorry servers); SIGHUP reloads
  --config-format F   toml (default) or keepalived (the LVS half of keepalived.conf)
  --metrics-listen A  Prometheus endpoint (default with --config: 127.0.0.1:9617)
  -h, --help          show this help
  -V, --version       show the version
";

fn parse_args() -> Result<Parsed, lexopt::Error> {
    use lexopt::prelude::*;
    let mut args = Args::default();
    args.datapath.queue = datapath::DEFAULT_QUEUE;
    // The default packet path can come from the environment (lets a test
    // run or a unit file pick it without changing command lines).
    if let Ok(kind) = std::env::var("RVSD_DATAPATH") {
        args.datapath.kind = kind.parse()?;
    }
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("socket") => args.socket = Some(parser.value()?.into()),
            Long("state-file") => args.state_file = Some(parser.value()?.into()),
            Long("foreground") => {}
            Long("interface") => args.datapath.interfaces.push(parser.value()?.parse()?),
            Long("tunnel-source") => args.datapath.tunnel_source = Some(parser.value()?.parse()?),
            Long("queue") => args.datapath.queue = parser.value()?.parse()?,
            Long("no-datapath") => args.datapath.disabled = true,
            Long("datapath") => args.datapath.kind = parser.value()?.parse()?,
            Long("xdp-mode") => args.datapath.xdp_mode = parser.value()?.parse()?,
            Long("xdp-fastpath") => args.datapath.xdp_fastpath = true,
            Long("config") => args.config = Some(parser.value()?.into()),
            Long("config-format") => args.config_format = Some(parser.value()?.string()?),
            Long("metrics-listen") => args.metrics_listen = Some(parser.value()?.string()?),
            Short('h') | Long("help") => {
                print!("{USAGE}");
                return Ok(Parsed::Exit(ExitCode::SUCCESS));
            }
            Short('V') | Long("version") => {
                println!("rvsd {}", env!("CARGO_PKG_VERSION"));
                return Ok(Parsed::Exit(ExitCode::SUCCESS));
            }
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(Parsed::Run(args))
}

fn load_engine(state_file: Option<&PathBuf>) -> anyhow::Result<Engine> {
    let mut engine = Engine::new();
    let Some(path) = state_file else {
        return Ok(engine);
    };
    state::prepare_dir(path)?;
    match state::load(path)? {
        None => log(&format!(
            "state file {} does not exist yet; starting empty",
            path.display()
        )),
        Some(commands) => {
            let n = commands.len();
            engine.apply_all(commands).map_err(|(index, error)| {
                anyhow::anyhow!(
                    "state file {}: command {index} refused ({error}); refusing to start",
                    path.display()
                )
            })?;
            log(&format!("restored {n} command(s) from {}", path.display()));
        }
    }
    Ok(engine)
}

fn run(args: Args) -> anyhow::Result<()> {
    server::install_panic_hook();
    let socket_path = rvs_api::protocol::socket_path(args.socket.as_deref());
    let engine = load_engine(args.state_file.as_ref())?;
    let shared = Arc::new(Shared::new(engine, args.state_file));
    let health = config::launch(
        &shared,
        args.config.as_ref(),
        args.config_format.as_deref(),
        args.metrics_listen.as_deref(),
    )?;
    if let Some(h) = health {
        let _ = shared.health.set(h);
    }

    // Signals wake the accept loop through a socket pair.
    let (stop_rx, stop_tx) = UnixStream::pair().context("cannot create the signal pipe")?;
    stop_rx
        .set_nonblocking(true)
        .context("cannot set up the signal pipe")?;
    let stop_tx2 = stop_tx
        .try_clone()
        .context("cannot set up the signal pipe")?;
    signal_hook::low_level::pipe::register(signal_hook::consts::SIGTERM, stop_tx)
        .context("cannot handle SIGTERM")?;
    signal_hook::low_level::pipe::register(signal_hook::consts::SIGINT, stop_tx2)
        .context("cannot handle SIGINT")?;

    let socket = ControlSocket::bind(&socket_path)?;
    log(&format!("listening on {}", socket.path().display()));

    // One time base for the tick thread and the datapath.
    let origin = std::time::Instant::now();
    let datapath = datapath::start(&shared, origin, &args.datapath);

    // Housekeeping: once a second, let engine time pass (connection
    // expiry, rate estimation, trash purge, scheduler GC). Engine time is
    // milliseconds on the monotonic clock since start.
    {
        let shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("rvsd-tick".into())
            .spawn(move || loop {
                let now = datapath::engine_now(origin);
                shared.lock().engine.tick(now);
                shared.poll_drains();
                std::thread::sleep(std::time::Duration::from_secs(1));
            })?;
    }

    let served = server::run(&socket, &stop_rx, &shared);
    // Let a request in progress (and its state-file write) finish, then
    // refuse everything else; the socket file goes when `socket` drops.
    shared.close();
    if let Some(d) = &datapath {
        d.stop();
    }
    drop(socket);
    served?;
    log("stopped");
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Parsed::Run(args)) => args,
        Ok(Parsed::Exit(code)) => return code,
        Err(e) => {
            eprintln!("rvsd: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log(&format!("{e:#}"));
            ExitCode::FAILURE
        }
    }
}
