//! rvs-config: the desired state of the director as a file.
//!
//! * [`toml_file`]: rvs's own TOML format (typed, every key documented with
//!   its default, unknown keys refused, errors name the line);
//! * [`keepalived`]: the LVS half of keepalived.conf (`virtual_server`,
//!   `real_server`, checkers), both keyword spellings, unsupported parts
//!   reported by name as [`Notice`]s;
//! * [`diff()`]: the engine commands between two configurations, touching
//!   only what changed.
//!
//! This crate reads text and computes commands; it opens no file, socket
//! or clock.

#![forbid(unsafe_code)]

pub mod common;
pub mod diff;
pub mod keepalived;
pub mod model;
pub mod toml_file;

pub use common::{ConfigError, Notice};
pub use diff::{diff, diff_reals, diff_services};
pub use model::{
    CheckDef, Config, DrainPolicy, Global, RealDef, ServiceDef, DEFAULT_DRAIN_TIMEOUT,
    DEFAULT_METRICS_LISTEN,
};

/// Which reader to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Toml,
    Keepalived,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "toml" => Ok(Format::Toml),
            "keepalived" => Ok(Format::Keepalived),
            _ => Err(format!("unknown config format `{s}' (toml or keepalived)")),
        }
    }
}

/// Parse `text` in `format`; notices (unsupported keywords) come back
/// beside the configuration.
pub fn parse(text: &str, format: Format) -> Result<(Config, Vec<Notice>), ConfigError> {
    match format {
        Format::Toml => toml_file::parse(text).map(|c| (c, Vec::new())),
        Format::Keepalived => keepalived::parse(text),
    }
}
