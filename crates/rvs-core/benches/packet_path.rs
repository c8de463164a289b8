//! `Engine::process` per packet: a NAT SYN that creates a connection (rr
//! over 2 and 64 real servers), an established NAT packet (lookup and
//! destination rewrite), a NAT reply (reverse lookup and source rewrite),
//! and established DR and TUN (IPIP) packets.
//!
//! `process` rewrites the frame in place, so every iteration first copies
//! the original frame into a reused buffer; `copy_only` measures that copy
//! alone. Run with `cargo bench -p rvs-core --bench packet_path`.

#[path = "common/mod.rs"]
mod common;

use common::*;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use rvs_core::FwdMethod;
use rvs_wire::TcpFlags;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Distinct SYNs per fresh engine in the connection-creating benchmark.
const SYN_BATCH: usize = 1 << 16;

/// Data packets carry this many payload bytes.
const PAYLOAD: usize = 64;

fn copy_only(c: &mut Criterion) {
    let frame = tcp(client(0), vip80(), TcpFlags::ACK | TcpFlags::PSH, PAYLOAD);
    let mut buf = Vec::with_capacity(2048);
    let mut g = c.benchmark_group("process");
    g.throughput(Throughput::Elements(1));
    g.bench_function("copy_only", |b| {
        b.iter(|| {
            buf.clear();
            buf.extend_from_slice(black_box(&frame));
            black_box(buf.len())
        })
    });
    g.finish();
}

/// SYNs from `SYN_BATCH` distinct clients; each creates a connection. The
/// table starts empty for every batch of `SYN_BATCH` packets, so the cost
/// includes the table growing from 0 to 64 Ki entries.
fn nat_syn(c: &mut Criterion) {
    let frames: Vec<Vec<u8>> = (0..SYN_BATCH)
        .map(|i| tcp(client(i), vip80(), TcpFlags::SYN, 0))
        .collect();
    let mut g = c.benchmark_group("process");
    g.throughput(Throughput::Elements(1));
    for n in [2usize, 64] {
        // Set-up check, not timed: every SYN is forwarded and tracked.
        let mut e = director("rr", n, FwdMethod::Masq);
        for f in frames.iter().take(1000) {
            forward(&mut e, f);
        }
        assert_eq!(e.conn_count(), 1000);

        g.bench_function(format!("nat_syn_new_conn/rr_{n}_dests"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters as usize;
                let mut buf = Vec::with_capacity(2048);
                while left > 0 {
                    let k = left.min(SYN_BATCH);
                    let mut e = director("rr", n, FwdMethod::Masq);
                    let start = Instant::now();
                    for f in &frames[..k] {
                        buf.clear();
                        buf.extend_from_slice(f);
                        black_box(e.process(&mut buf, meta(), NOW));
                    }
                    total += start.elapsed();
                    left -= k;
                    drop(e);
                }
                total
            })
        });
    }
    g.finish();
}

/// A director with one flow from `CIP:40000` through the handshake, and
/// the real server it went to.
fn one_flow(fwd: FwdMethod) -> (rvs_core::Engine, IpAddr) {
    let mut e = director("rr", 2, fwd);
    let c = SocketAddr::new(IpAddr::V4(CIP), 40000);
    let rs = forward(&mut e, &tcp(c, vip80(), TcpFlags::SYN, 0));
    if fwd == FwdMethod::Masq {
        forward(
            &mut e,
            &tcp(SocketAddr::new(rs, 80), c, TcpFlags::SYN | TcpFlags::ACK, 0),
        );
    }
    forward(&mut e, &tcp(c, vip80(), TcpFlags::ACK, 0));
    assert_eq!(e.conn_count(), 1);
    (e, rs)
}

fn bench_flow_packet(c: &mut Criterion, name: &str, fwd: FwdMethod, reply: bool) {
    let (mut e, rs) = one_flow(fwd);
    let cl = SocketAddr::new(IpAddr::V4(CIP), 40000);
    let frame = if reply {
        tcp(
            SocketAddr::new(rs, 80),
            cl,
            TcpFlags::ACK | TcpFlags::PSH,
            PAYLOAD,
        )
    } else {
        tcp(cl, vip80(), TcpFlags::ACK | TcpFlags::PSH, PAYLOAD)
    };
    // Set-up check: the packet is forwarded and the flow stays the only one.
    forward(&mut e, &frame);
    assert_eq!(e.conn_count(), 1);
    let mut buf = Vec::with_capacity(2048);
    let mut g = c.benchmark_group("process");
    g.throughput(Throughput::Elements(1));
    g.bench_function(name, |b| {
        b.iter(|| {
            buf.clear();
            buf.extend_from_slice(&frame);
            black_box(e.process(&mut buf, meta(), NOW))
        })
    });
    g.finish();
}

fn established(c: &mut Criterion) {
    bench_flow_packet(c, "nat_established", FwdMethod::Masq, false);
    bench_flow_packet(c, "nat_reply", FwdMethod::Masq, true);
    bench_flow_packet(c, "dr_established", FwdMethod::Route, false);
    bench_flow_packet(c, "tun_ipip_established", IPIP, false);
}

criterion_group!(benches, copy_only, nat_syn, established);
criterion_main!(benches);
