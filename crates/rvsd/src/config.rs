//! `rvsd --config FILE [--config-format toml|keepalived]`: reading the
//! file (errors name the file and line, notices are logged) and reloading
//! it on SIGHUP.
//!
//! Precedence: `--config` and `--state-file` together are refused. The
//! configuration file is the desired state; a state file would be a
//! second source of truth.

use crate::health::{HealthHandle, Msg};
use anyhow::Context;
use rvs_config::{Config, Format, Notice};
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

/// Where the configuration comes from.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    pub path: PathBuf,
    pub format: Format,
}

impl ConfigSource {
    /// `--config-format`, else `keepalived` for files named `*.conf` whose
    /// name contains `keepalived`, else TOML.
    pub fn new(path: PathBuf, format: Option<&str>) -> anyhow::Result<ConfigSource> {
        let format = match format {
            Some(f) => f.parse::<Format>().map_err(anyhow::Error::msg)?,
            None => {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if name.contains("keepalived") && name.ends_with(".conf") {
                    Format::Keepalived
                } else {
                    Format::Toml
                }
            }
        };
        Ok(ConfigSource { path, format })
    }
}

/// Read and parse the file.
pub fn load(source: &ConfigSource) -> anyhow::Result<(Config, Vec<Notice>)> {
    let text = std::fs::read_to_string(&source.path)
        .with_context(|| format!("cannot read {}", source.path.display()))?;
    rvs_config::parse(&text, source.format)
        .map_err(|e| anyhow::anyhow!("{}: {e}", source.path.display()))
}

/// Load the file for startup, logging its notices.
pub fn load_logged(source: &ConfigSource) -> anyhow::Result<Config> {
    let (config, notices) = load(source)?;
    for n in notices {
        crate::log(&format!("{}: {n}", source.path.display()));
    }
    Ok(config)
}

/// On SIGHUP, ask the health thread to reload the file.
pub fn reload_on_sighup(health: &HealthHandle) -> anyhow::Result<()> {
    let (mut rx, tx) = UnixStream::pair().context("cannot create the SIGHUP pipe")?;
    signal_hook::low_level::pipe::register(signal_hook::consts::SIGHUP, tx)
        .context("cannot handle SIGHUP")?;
    let sender = health.tx.clone();
    std::thread::Builder::new()
        .name("rvsd-sighup".into())
        .spawn(move || {
            let mut buf = [0u8; 64];
            loop {
                match rx.read(&mut buf) {
                    Ok(0) => return,
                    Ok(_) => {
                        crate::log("SIGHUP: reloading the configuration");
                        let msg = Msg::Reload {
                            clear_overrides: false,
                            reply: None,
                        };
                        if sender.send(msg).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => return,
                }
            }
        })?;
    Ok(())
}

/// Everything `--config` starts: refuse a state file next to it, apply the
/// file, start health checking, SIGHUP reload and the metrics endpoint
/// (`--metrics-listen`, else the file's `metrics_listen`, else
/// 127.0.0.1:9617; without `--config` only when `--metrics-listen` is given).
pub fn launch(
    shared: &std::sync::Arc<crate::server::Shared>,
    config: Option<&PathBuf>,
    format: Option<&str>,
    metrics_listen: Option<&str>,
) -> anyhow::Result<Option<HealthHandle>> {
    let metrics_flag: Option<std::net::SocketAddr> = metrics_listen
        .map(|a| {
            a.parse()
                .with_context(|| format!("bad --metrics-listen address `{a}'"))
        })
        .transpose()?;
    let Some(path) = config else {
        if format.is_some() {
            anyhow::bail!("--config-format needs --config");
        }
        if let Some(addr) = metrics_flag {
            let local = crate::metrics::start(addr, std::sync::Arc::clone(shared), None)?;
            crate::log(&format!("metrics on http://{local}/metrics"));
        }
        return Ok(None);
    };
    if shared.state_file.is_some() {
        anyhow::bail!(
            "--config and --state-file cannot be used together: the configuration file is the desired state"
        );
    }
    let source = ConfigSource::new(path.clone(), format)?;
    let config = load_logged(&source)?;
    let metrics_addr = match metrics_flag {
        Some(a) => Some(a),
        None if config.global.metrics_disabled => None,
        None => Some(config.global.metrics_listen.unwrap_or_else(|| {
            rvs_config::DEFAULT_METRICS_LISTEN
                .parse()
                .unwrap_or_else(|_| std::net::SocketAddr::from(([127, 0, 0, 1], 9617)))
        })),
    };
    let n = config.services.len();
    let health = crate::health::start(std::sync::Arc::clone(shared), source, config)
        .with_context(|| format!("cannot apply {}", path.display()))?;
    crate::log(&format!(
        "configuration {} applied: {n} service(s)",
        path.display()
    ));
    reload_on_sighup(&health)?;
    if let Some(addr) = metrics_addr {
        let local =
            crate::metrics::start(addr, std::sync::Arc::clone(shared), Some(health.clone()))?;
        crate::log(&format!("metrics on http://{local}/metrics"));
    }
    Ok(Some(health))
}
