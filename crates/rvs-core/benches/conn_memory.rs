//! Memory per tracked connection: creates 1 M NAT connections through
//! `Engine::process` (one SYN from each of 1 M distinct clients, rr over 2
//! real servers) and reports the growth of the process's resident set
//! (VmRSS and its peak VmHWM from /proc/self/status) divided by the number
//! of connections; then the same for a bare `ConnTable` filled with 1 M
//! entries. DESIGN.md's target is at most 256 bytes per connection.
//!
//! Not a criterion benchmark: a plain program run by `cargo bench -p
//! rvs-core --bench conn_memory`. Under `cargo test --benches` (no
//! `--bench` argument) it runs a 10 000-connection smoke version.

#[path = "common/mod.rs"]
mod common;

use common::*;
use rvs_core::conn::{ConnTable, ConnTableConfig, EngineTime, InKey, NewConn};
use rvs_core::snapshot::ConnProtocol;
use rvs_core::{DestId, FwdMethod};
use rvs_wire::TcpFlags;
use std::net::IpAddr;

fn report(what: &str, n: usize, before: (u64, u64), after: (u64, u64)) {
    let rss = after.0.saturating_sub(before.0);
    let peak = after.1.saturating_sub(before.0);
    println!(
        "{what}: {n} connections, RSS +{:.1} MiB = {:.0} bytes/conn (peak +{:.1} MiB = {:.0} bytes/conn)",
        rss as f64 / 1048576.0,
        rss as f64 / n as f64,
        peak as f64 / 1048576.0,
        peak as f64 / n as f64,
    );
}

fn engine_conns(n: usize) {
    let mut e = director("rr", 2, FwdMethod::Masq);
    // Build the frames one at a time into one reused buffer so that frame
    // memory does not count.
    let mut buf = Vec::with_capacity(2048);
    let warm = tcp(client(n + 1), vip80(), TcpFlags::SYN, 0);
    buf.extend_from_slice(&warm);
    forward(&mut e, &warm);
    let before = rss();
    for i in 0..n {
        let f = tcp(client(i), vip80(), TcpFlags::SYN, 0);
        buf.clear();
        buf.extend_from_slice(&f);
        drop(f);
        next_hop(&e.process(&mut buf, meta(), NOW));
    }
    let after = rss();
    assert_eq!(e.conn_count(), n + 1);
    report("Engine (NAT SYNs via process)", n, before, after);
    drop(e);
}

fn table_conns(n: usize) {
    let mut t = ConnTable::new(ConnTableConfig {
        max_entries: 4 << 20,
        hash_seed: 1,
    });
    let before = rss();
    for i in 0..n {
        let SocketAddrParts(caddr, cport) = parts(i);
        let key = InKey {
            protocol: ConnProtocol::Tcp,
            caddr,
            cport,
            vaddr: IpAddr::V4(VIP),
            vport: 80,
        };
        let nc = NewConn::connection(
            key,
            IpAddr::V4(rip(i % 2)),
            80,
            Some(DestId((i % 2) as u64 + 1)),
            FwdMethod::Masq,
        );
        t.insert(nc, EngineTime::from_secs(0)).expect("room");
    }
    let after = rss();
    assert_eq!(t.len(), n);
    report("ConnTable (insert)", n, before, after);
    drop(t);
}

struct SocketAddrParts(IpAddr, u16);

fn parts(i: usize) -> SocketAddrParts {
    let c = client(i);
    SocketAddrParts(c.ip(), c.port())
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n = if full { 1_000_000 } else { 10_000 };
    println!(
        "size_of Conn = {} bytes, NewConn = {} bytes",
        std::mem::size_of::<rvs_core::conn::Conn>(),
        std::mem::size_of::<NewConn>()
    );
    engine_conns(n);
    table_conns(n);
}
