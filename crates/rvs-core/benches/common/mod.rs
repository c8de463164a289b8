//! Shared set-up for the rvs-core benchmarks: directors built through
//! `Command`s as rvsadm would, and frames built with rvs-wire's test-frame
//! builder. Nothing here is timed.
#![allow(dead_code)]

use rvs_core::conn::EngineTime;
use rvs_core::{
    Command, DestConfig, Engine, FwdMethod, PacketMeta, Protocol, ServiceConfig, ServiceKey,
    TunnelCsum, TunnelKind, Verdict,
};
use rvs_wire::testframe::FrameBuilder;
use rvs_wire::TcpFlags;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The seed's VIP.
pub const VIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
/// The director's address on the real-server side (tunnel source).
pub const DIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
/// One client for single-flow benchmarks.
pub const CIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);

/// The one time every benchmark runs at (timers are never ticked).
pub const NOW: EngineTime = EngineTime::from_secs(10);

/// Metadata of every benchmark frame: no fwmark, ingress 0.
pub fn meta() -> PacketMeta {
    PacketMeta::default()
}

pub const IPIP: FwdMethod = FwdMethod::Tunnel {
    kind: TunnelKind::Ipip,
    csum: TunnelCsum::NoCsum,
};

pub fn key() -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: IpAddr::V4(VIP),
        port: 80,
    }
}

/// Real server `i` (0-based): 203.0.113.11, .12, ... then 203.0.114.x.
pub fn rip(i: usize) -> Ipv4Addr {
    let n = u32::from(Ipv4Addr::new(203, 0, 113, 11)) + i as u32;
    Ipv4Addr::from(n)
}

/// Client `i`: distinct (address, port) pairs from 10.0.0.0/8.
pub fn client(i: usize) -> SocketAddr {
    let n = 0x0a00_0000u32 + (i as u32 / 16);
    SocketAddr::new(IpAddr::V4(Ipv4Addr::from(n)), 20_000 + (i % 16) as u16)
}

/// A director with one TCP service VIP:80 using `sched` over `n` real
/// servers reached by `fwd` (weight 1 each).
pub fn director(sched: &str, n: usize, fwd: FwdMethod) -> Engine {
    let mut e = Engine::new();
    e.set_tunnel_source(DIP);
    let mut svc = ServiceConfig::new(key());
    svc.scheduler = sched.to_string();
    let mut batch = vec![Command::AddService(svc)];
    for i in 0..n {
        let mut d = DestConfig::new(IpAddr::V4(rip(i)), 80);
        d.fwd = fwd;
        d.weight = 1;
        batch.push(Command::AddDest {
            service: key(),
            dest: d,
        });
    }
    e.apply_all(batch).expect("benchmark director is valid");
    e
}

/// A TCP frame with `flags` and `payload` bytes of data.
pub fn tcp(src: SocketAddr, dst: SocketAddr, flags: TcpFlags, payload: usize) -> Vec<u8> {
    FrameBuilder::tcp(src, dst)
        .flags(flags)
        .payload(vec![0x5a; payload])
        .build()
}

pub fn vip80() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(VIP), 80)
}

/// The real server a forwarded frame goes to.
pub fn next_hop(v: &Verdict) -> IpAddr {
    match v {
        Verdict::Forward(tx) => match tx.route {
            rvs_core::Route::Routed { next_hop } | rvs_core::Route::Direct { next_hop } => next_hop,
        },
        other => panic!("benchmark set-up expected Forward, got {other:?}"),
    }
}

/// Processes a copy of `frame` and insists it was forwarded.
pub fn forward(e: &mut Engine, frame: &[u8]) -> IpAddr {
    let mut f = frame.to_vec();
    let v = e.process(&mut f, meta(), NOW);
    next_hop(&v)
}

/// Current and peak resident set size, bytes, from /proc/self/status.
pub fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}
