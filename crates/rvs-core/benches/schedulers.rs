//! One `Scheduler::schedule` call for each of the 14 schedulers over 8 and
//! 64 real servers. Weights cycle 16, 32, 48, 64 and connection counts
//! (10..=22 active) differ per server, so the least-connection family scans
//! and compares for real and `ovf` finds servers below their weight;
//! packets cycle over 1024 client and 1024 destination addresses, so the
//! hashing schedulers (sh, dh, mh, lblc, lblcr) do not hit one cache line.
//! Run with `cargo bench -p rvs-core --bench schedulers`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use rvs_core::sched::{
    new_scheduler, SchedContext, SchedDest, SchedPacket, XorShiftRng, SCHEDULER_NAMES,
};
use rvs_core::{DestId, SchedFlags};
use std::net::{IpAddr, Ipv4Addr};

fn dests(n: usize) -> Vec<SchedDest> {
    (0..n)
        .map(|i| {
            let weight = 16 * (1 + (i % 4) as i32);
            SchedDest {
                id: DestId(i as u64 + 1),
                addr: IpAddr::V4(Ipv4Addr::from(0xcb00_710bu32 + i as u32)),
                port: 80,
                weight,
                last_weight: weight,
                overloaded: false,
                active: 10 + ((i * 7) % 13) as u32,
                inactive: ((i * 5) % 11) as u32,
            }
        })
        .collect()
}

fn packets() -> Vec<SchedPacket> {
    (0..1024u32)
        .map(|i| SchedPacket {
            saddr: IpAddr::V4(Ipv4Addr::from(
                0x0a00_0000 + i.wrapping_mul(2_654_435_761) % (1 << 24),
            )),
            sport: 20_000 + (i % 1000) as u16,
            daddr: IpAddr::V4(Ipv4Addr::from(0xc633_6400 + (i * 37) % 1024)),
            dport: 80,
        })
        .collect()
}

fn schedule(c: &mut Criterion) {
    let pkts = packets();
    let mut g = c.benchmark_group("schedule");
    g.throughput(Throughput::Elements(1));
    for &name in SCHEDULER_NAMES {
        for n in [8usize, 64] {
            let list = dests(n);
            let mut sched = new_scheduler(name, &list).expect("known scheduler");
            let mut rng = XorShiftRng::new(7);
            // Set-up check, not timed: the scheduler picks someone.
            {
                let mut ctx = SchedContext {
                    packet: pkts[0],
                    flags: SchedFlags::default(),
                    now_secs: 10,
                    rng: &mut rng,
                    lblc_expiration_secs: 86_400,
                    lblcr_expiration_secs: 86_400,
                };
                assert!(sched.schedule(&list, &mut ctx).is_some(), "{name}/{n}");
            }
            let mut i = 0usize;
            g.bench_function(format!("{name}/{n}"), |b| {
                b.iter(|| {
                    i = (i + 1) & 1023;
                    let mut ctx = SchedContext {
                        packet: pkts[i],
                        flags: SchedFlags::default(),
                        now_secs: 10,
                        rng: &mut rng,
                        lblc_expiration_secs: 86_400,
                        lblcr_expiration_secs: 86_400,
                    };
                    black_box(sched.schedule(black_box(&list), &mut ctx))
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, schedule);
criterion_main!(benches);
