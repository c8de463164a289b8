//! Test helpers: a fake Director that records applied batches and serves a
//! canned table, refvm capture loading, and small table builders.
#![allow(dead_code)]

use rvs_api::{Director, DirectorError, KnobValue};
use rvs_core::model::*;
use rvs_core::snapshot::{ConnSnapshot, DestSnapshot, ServiceSnapshot, TableSnapshot, Timeouts};
use rvs_core::{ApplyError, Command};
use rvsadm::Resolver;
use std::net::IpAddr;

/// Records every batch; answers with canned data or a canned error.
#[derive(Debug)]
pub struct FakeDirector {
    pub table: TableSnapshot,
    pub conns: Vec<ConnSnapshot>,
    pub timeouts: Timeouts,
    /// Answer to `knobs()`: the kernel defaults unless a test changes them.
    pub knobs: Vec<KnobValue>,
    pub applied: Vec<Vec<Command>>,
    pub apply_error: Option<DirectorError>,
}

impl FakeDirector {
    pub fn new(table: TableSnapshot) -> FakeDirector {
        FakeDirector {
            table,
            conns: Vec::new(),
            timeouts: Timeouts::default(),
            knobs: rvs_api::protocol::knob_values(&rvs_core::knobs::Knobs::default()),
            applied: Vec::new(),
            apply_error: None,
        }
    }

    pub fn empty() -> FakeDirector {
        FakeDirector::new(TableSnapshot {
            conn_table_size: 4096,
            services: Vec::new(),
        })
    }
}

impl Director for FakeDirector {
    fn apply(&mut self, commands: Vec<Command>) -> Result<(), DirectorError> {
        self.applied.push(commands);
        match &self.apply_error {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }
    fn table(&mut self) -> Result<TableSnapshot, DirectorError> {
        Ok(self.table.clone())
    }
    fn connections(&mut self) -> Result<Vec<ConnSnapshot>, DirectorError> {
        Ok(self.conns.clone())
    }
    fn timeouts(&mut self) -> Result<Timeouts, DirectorError> {
        Ok(self.timeouts)
    }
    fn knobs(&mut self) -> Result<Vec<KnobValue>, DirectorError> {
        Ok(self.knobs.clone())
    }
}

/// Runs `ipvsadm <args>` against `d`; returns (stdout, stderr, rc).
pub fn run(
    args: &[&str],
    d: &mut FakeDirector,
    stdin: &str,
    resolver: &dyn Resolver,
) -> (String, String, i32) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let mut input = stdin.as_bytes();
    let mut out = Vec::new();
    let mut err = Vec::new();
    let rc = rvsadm::run(
        &args, "ipvsadm", d, &mut input, &mut out, &mut err, resolver,
    );
    (
        String::from_utf8(out).expect("utf8 stdout"),
        String::from_utf8(err).expect("utf8 stderr"),
        rc,
    )
}

/// One captured invocation from a refvm `cases.jsonl`.
#[derive(Debug, Clone)]
pub struct Case {
    pub n: u64,
    pub slug: String,
    pub argv: Vec<String>,
    pub stdin: Option<String>,
    pub stdout: String,
    pub stderr: String,
    pub rc: i32,
}

pub fn load_cases(path: &str) -> Vec<Case> {
    let full = format!("{}/{path}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&full).expect("fixture present");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json line");
            let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
            Case {
                n: v["n"].as_u64().unwrap_or(0),
                slug: s("slug"),
                argv: v["argv"]
                    .as_array()
                    .expect("argv")
                    .iter()
                    .map(|a| a.as_str().expect("str").to_string())
                    .collect(),
                stdin: v["stdin"].as_str().map(str::to_string),
                stdout: s("stdout"),
                stderr: s("stderr"),
                rc: v["rc"].as_i64().expect("rc") as i32,
            }
        })
        .collect()
}

/// ApplyError whose Display equals `text`, if any.
pub fn apply_error_for(text: &str) -> Option<ApplyError> {
    [
        ApplyError::ServiceExists,
        ApplyError::SchedulerNotFound,
        ApplyError::NoSuchService,
        ApplyError::ServiceNotDefined,
        ApplyError::DestExists,
        ApplyError::NoSuchDest,
        ApplyError::OutOfRange,
        ApplyError::Invalid,
        ApplyError::AddressFamily,
    ]
    .into_iter()
    .find(|e| e.to_string() == text)
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip literal")
}

pub fn tcp(addr: &str, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: ip(addr),
        port,
    }
}

pub fn udp(addr: &str, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Udp,
        addr: ip(addr),
        port,
    }
}

pub fn sctp(addr: &str, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Sctp,
        addr: ip(addr),
        port,
    }
}

pub fn fwm(mark: u32, family: Family) -> ServiceKey {
    ServiceKey::Fwmark { mark, family }
}

pub fn svc(key: ServiceKey, sched: &str) -> ServiceSnapshot {
    let mut config = ServiceConfig::new(key);
    config.scheduler = sched.to_string();
    ServiceSnapshot {
        config,
        stats: Counters::default(),
        rates: Rates::default(),
        dests: Vec::new(),
    }
}

pub fn dest(addr: &str, port: u16, fwd: FwdMethod, weight: i32) -> DestSnapshot {
    let mut config = DestConfig::new(ip(addr), port);
    config.fwd = fwd;
    config.weight = weight;
    DestSnapshot {
        config,
        active: 0,
        inactive: 0,
        persist: 0,
        overloaded: false,
        stats: Counters::default(),
        rates: Rates::default(),
    }
}

pub fn tunnel(kind: TunnelKind, csum: TunnelCsum) -> FwdMethod {
    FwdMethod::Tunnel { kind, csum }
}

pub const IPIP: FwdMethod = FwdMethod::Tunnel {
    kind: TunnelKind::Ipip,
    csum: TunnelCsum::NoCsum,
};
