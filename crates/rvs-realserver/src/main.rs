//! `rvs-realserver`: set up (and run the IPIP side of) an LVS-DR/TUN real
//! server, like the seed's real-server service script.
//!
//! ```text
//! rvs-realserver start  --vip ADDR [--vip ADDR]... [--mode dr|tun] [--device NAME]
//! rvs-realserver stop   [--vip ADDR]... [--mode dr|tun]
//! rvs-realserver status [--vip ADDR]... [--mode dr|tun]
//! rvs-realserver tunnel --vip ADDR [--vip ADDR]... [--device NAME]
//! ```
//! `tunnel` is the decapsulator in the foreground (what `start --mode tun`
//! runs in the background; use it directly under a supervisor).

#![deny(unsafe_code)]

use anyhow::Context;
use rvs_realserver::service::{self, Options};
use rvs_realserver::setup::Mode;
use rvs_realserver::tunnel::Decapsulator;
use std::process::ExitCode;

const USAGE: &str = "\
usage: rvs-realserver start|stop|status|tunnel [options]

  start    VIP /32 on lo, arp_ignore=1, arp_announce=2 (tun: rp_filter=0 and
           the IPIP decapsulator in the background)
  stop     undo start: decapsulator stopped, VIPs removed, sysctls restored
  status   show the setup; exit 0 when complete, 3 otherwise
  tunnel   run the IPIP decapsulator in the foreground

  --vip ADDR       a virtual IPv4 address (repeatable; stop/status default to
                   the ones start configured)
  --mode dr|tun    forwarding method of the director (default dr)
  --device NAME    TUN device of the decapsulator (default rvstun0)
  --run-dir DIR    state files (default $RVS_RUN_DIR, else /run/rvs)
  -h, --help       show this help
";

enum Action {
    Start,
    Stop,
    Status,
    Tunnel,
}

fn parse() -> Result<Option<(Action, Options)>, lexopt::Error> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_env();
    let mut opts = Options {
        run_dir: service::run_dir_from_env(),
        ..Options::default()
    };
    let mut action = None;
    while let Some(arg) = parser.next()? {
        match arg {
            Value(v) if action.is_none() => {
                action = Some(match v.string()?.as_str() {
                    "start" => Action::Start,
                    "stop" => Action::Stop,
                    "status" => Action::Status,
                    "tunnel" => Action::Tunnel,
                    other => return Err(format!("unknown command {other:?}").into()),
                })
            }
            Long("vip") => opts.vips.push(parser.value()?.parse()?),
            Long("mode") => {
                let m = parser.value()?.string()?;
                opts.mode =
                    Some(Mode::parse(&m).ok_or_else(|| format!("unknown mode {m:?} (dr or tun)"))?);
            }
            Long("device") => opts.device = parser.value()?.string()?,
            Long("run-dir") => opts.run_dir = parser.value()?.into(),
            Short('h') | Long("help") => {
                print!("{USAGE}");
                return Ok(None);
            }
            _ => return Err(arg.unexpected()),
        }
    }
    match action {
        Some(a) => Ok(Some((a, opts))),
        None => Err("missing command (start, stop, status or tunnel)".into()),
    }
}

fn main() -> ExitCode {
    let (action, opts) = match parse() {
        Ok(Some(x)) => x,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rvs-realserver: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result: anyhow::Result<ExitCode> = match action {
        Action::Start => service::start(&opts)
            .map(|r| {
                print!("{r}");
                ExitCode::SUCCESS
            })
            .context("start"),
        Action::Stop => service::stop(&opts)
            .map(|r| {
                print!("{r}");
                ExitCode::SUCCESS
            })
            .context("stop"),
        Action::Status => service::status(&opts)
            .map(|(r, ok)| {
                print!("{r}");
                if ok {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(3)
                }
            })
            .context("status"),
        Action::Tunnel => tunnel(&opts),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rvs-realserver: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn tunnel(opts: &Options) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(!opts.vips.is_empty(), "tunnel needs at least one --vip");
    let mut d = Decapsulator::open(&opts.device, opts.vips.clone())?;
    eprintln!(
        "rvs-realserver: decapsulating IPIP for {} on {}",
        opts.vips
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        opts.device
    );
    d.run().context("decapsulator")?;
    Ok(ExitCode::SUCCESS)
}
