//! The connection table at one million entries: client-side and
//! reply-side lookups (hits in random order, misses), insert + remove of a
//! new entry while the table holds 1 M (steady churn), and filling an
//! empty table to 1 M (cost per insert while growing).
//! Run with `cargo bench -p rvs-core --bench conn_table`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use rvs_core::conn::{ConnTable, ConnTableConfig, EngineTime, InKey, NewConn, OutKey};
use rvs_core::snapshot::ConnProtocol;
use rvs_core::{DestId, FwdMethod};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

const ENTRIES: usize = 1_000_000;
const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10));

fn in_key(i: usize) -> InKey {
    InKey {
        protocol: ConnProtocol::Tcp,
        caddr: IpAddr::V4(Ipv4Addr::from(0x0a00_0000u32 + (i / 16) as u32)),
        cport: 20_000 + (i % 16) as u16,
        vaddr: VIP,
        vport: 80,
    }
}

/// Real server of entry `i` (64 of them).
fn rip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0xcb00_710bu32 + (i % 64) as u32))
}

fn out_key(i: usize) -> OutKey {
    let k = in_key(i);
    OutKey {
        protocol: k.protocol,
        daddr: rip(i),
        dport: 80,
        caddr: k.caddr,
        cport: k.cport,
    }
}

fn new_conn(i: usize) -> NewConn {
    NewConn::connection(
        in_key(i),
        rip(i),
        80,
        Some(DestId((i % 64) as u64 + 1)),
        FwdMethod::Masq,
    )
}

fn config() -> ConnTableConfig {
    ConnTableConfig {
        max_entries: 4 << 20,
        hash_seed: 0x5eed,
    }
}

fn filled() -> ConnTable {
    let mut t = ConnTable::new(config());
    for i in 0..ENTRIES {
        t.insert(new_conn(i), EngineTime::from_secs(0))
            .expect("room for 1M");
    }
    // Push every entry's deadline far out so the churn benchmark's stale
    // timer items are the only ones due (see `insert_remove`).
    for i in 0..ENTRIES {
        if let Some(id) = t.lookup_in(&in_key(i)) {
            t.set_timeout(id, 10_000_000, EngineTime::from_secs(0));
        }
    }
    t.handle_timeout(EngineTime::from_secs(5));
    assert_eq!(t.len(), ENTRIES);
    t
}

/// 64 Ki indices in 0..ENTRIES in a fixed pseudo-random order.
fn order() -> Vec<usize> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..1 << 16)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) % ENTRIES as u64) as usize
        })
        .collect()
}

fn lookups(c: &mut Criterion) {
    let t = filled();
    let idx = order();
    let in_keys: Vec<InKey> = idx.iter().map(|&i| in_key(i)).collect();
    let out_keys: Vec<OutKey> = idx.iter().map(|&i| out_key(i)).collect();
    let miss: Vec<InKey> = idx.iter().map(|&i| in_key(ENTRIES + i)).collect();
    // Set-up check: hits hit, misses miss.
    assert!(in_keys.iter().all(|k| t.lookup_in(k).is_some()));
    assert!(out_keys.iter().all(|k| t.lookup_out(k).is_some()));
    assert!(miss.iter().all(|k| t.lookup_in(k).is_none()));

    let mut g = c.benchmark_group("conn_table_1M");
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    g.bench_function("lookup_in_hit", |b| {
        b.iter(|| {
            i = (i + 1) & 0xffff;
            black_box(t.lookup_in(&in_keys[i]))
        })
    });
    g.bench_function("lookup_out_hit", |b| {
        b.iter(|| {
            i = (i + 1) & 0xffff;
            black_box(t.lookup_out(&out_keys[i]))
        })
    });
    g.bench_function("lookup_in_miss", |b| {
        b.iter(|| {
            i = (i + 1) & 0xffff;
            black_box(t.lookup_in(&miss[i]))
        })
    });
    g.finish();
}

/// Insert a new entry and remove it again while the table holds 1 M. The
/// timer items left behind by removed entries are discarded between
/// measurements (untimed), as the engine's next `poll_timeout` would.
fn insert_remove(c: &mut Criterion) {
    let mut t = filled();
    let now = EngineTime::from_secs(10);
    let mut g = c.benchmark_group("conn_table_1M");
    g.throughput(Throughput::Elements(1));
    g.bench_function("insert_remove", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for n in 0..iters as usize {
                let id = t
                    .insert(new_conn(ENTRIES + (n & 0xfff)), now)
                    .expect("insert");
                black_box(t.remove(id));
            }
            let elapsed = start.elapsed();
            t.poll_timeout();
            elapsed
        })
    });
    g.finish();
    assert_eq!(t.len(), ENTRIES);
}

/// Fill an empty table with 1 M entries; reported per insert.
fn fill(c: &mut Criterion) {
    let conns: Vec<NewConn> = (0..ENTRIES).map(new_conn).collect();
    let mut g = c.benchmark_group("conn_table_1M");
    g.sample_size(10);
    g.throughput(Throughput::Elements(ENTRIES as u64));
    g.bench_function("fill_from_empty", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut t = ConnTable::new(config());
                let batch = conns.clone();
                let start = Instant::now();
                for nc in batch {
                    black_box(t.insert(nc, EngineTime::from_secs(0)).is_ok());
                }
                total += start.elapsed();
                drop(t);
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, lookups, insert_remove, fill);
criterion_main!(benches);
