//! The fuzz entry points of `fuzz/` (frame processing) driven by proptest
//! on the stable toolchain: random bytes, mutated valid frames and
//! truncations go through `Engine::process` with NAT, DR, TUN, IPv6 and
//! fwmark services (and the ICMP / bypass knobs on). Nothing may panic, and
//! every verdict must move exactly one outcome counter (every drop is
//! counted under its reason).

use proptest::prelude::*;
use rvs_core::conn::EngineTime;
use rvs_core::{
    Command, DestConfig, Engine, EngineStats, Family, FwdMethod, PacketMeta, Protocol,
    ServiceConfig, ServiceKey, TunnelCsum, TunnelKind, Verdict,
};
use rvs_wire::testframe::FrameBuilder;
use rvs_wire::TcpFlags;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const VIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
const CIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const RS1: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 11);
const RS2: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 12);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);
const CIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
const RS6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x11);

fn add(e: &mut Engine, key: ServiceKey, sched: &str, persistent: Option<u32>, ops: bool) {
    let mut c = ServiceConfig::new(key);
    c.scheduler = sched.into();
    c.persistent = persistent;
    c.ops = ops;
    e.apply(Command::AddService(c)).expect("service");
}

fn dest(e: &mut Engine, key: ServiceKey, addr: IpAddr, port: u16, fwd: FwdMethod) {
    let mut d = DestConfig::new(addr, port);
    d.fwd = fwd;
    e.apply(Command::AddDest {
        service: key,
        dest: d,
    })
    .expect("dest");
}

/// The engine of the `process_frame` fuzz target.
pub fn fuzz_engine() -> Engine {
    let mut e = Engine::new();
    e.set_tunnel_source(Ipv4Addr::new(203, 0, 113, 1));
    let tcp = |port| ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: IpAddr::V4(VIP),
        port,
    };
    add(&mut e, tcp(80), "rr", None, false);
    dest(&mut e, tcp(80), IpAddr::V4(RS1), 8080, FwdMethod::Masq);
    dest(&mut e, tcp(80), IpAddr::V4(RS2), 80, FwdMethod::Masq);
    add(&mut e, tcp(443), "wlc", Some(300), false);
    dest(&mut e, tcp(443), IpAddr::V4(RS1), 443, FwdMethod::Route);
    let udp = ServiceKey::Addr {
        protocol: Protocol::Udp,
        addr: IpAddr::V4(VIP),
        port: 53,
    };
    add(&mut e, udp, "sh", None, true);
    let tun = FwdMethod::Tunnel {
        kind: TunnelKind::Ipip,
        csum: TunnelCsum::NoCsum,
    };
    dest(&mut e, udp, IpAddr::V4(RS2), 53, tun);
    let v6 = ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: IpAddr::V6(VIP6),
        port: 80,
    };
    add(&mut e, v6, "rr", None, false);
    dest(&mut e, v6, IpAddr::V6(RS6), 80, FwdMethod::Masq);
    let fw = ServiceKey::Fwmark {
        mark: 1,
        family: Family::V4,
    };
    add(&mut e, fw, "rr", Some(60), true);
    for (name, value) in [
        ("schedule_icmp", 1),
        ("cache_bypass", 1),
        ("nat_icmp_send", 1),
    ] {
        e.apply(Command::SetKnob {
            name: name.into(),
            value,
        })
        .expect("knob");
    }
    e
}

fn sa(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(ip), port)
}

fn icmp_error(src: Ipv4Addr, dst: Ipv4Addr, t: u8, quoted: &[u8]) -> Vec<u8> {
    let mut m = vec![t, 4, 0, 0, 0, 0, 5, 0x78];
    m.extend_from_slice(quoted);
    let c = rvs_wire::checksum::checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    let mut f = FrameBuilder::icmp_echo(IpAddr::V4(src), IpAddr::V4(dst), 0, 0).build();
    f.truncate(34);
    f[16..18].copy_from_slice(&((20 + m.len()) as u16).to_be_bytes());
    f.extend_from_slice(&m);
    f
}

/// Valid frames that reach every path of the engine.
pub fn seed_frames() -> Vec<Vec<u8>> {
    let s6 = |a, p| SocketAddr::new(IpAddr::V6(a), p);
    let quoted = FrameBuilder::tcp(sa(VIP, 80), sa(CIP, 1000)).build_ip();
    let quoted_rs = FrameBuilder::tcp(sa(CIP, 1000), sa(RS1, 8080)).build_ip();
    let mut ipip = vec![0x45, 0, 0, 60, 0, 1, 0x40, 0, 63, 4, 0, 0];
    ipip.extend_from_slice(&[203, 0, 113, 1, 203, 0, 113, 12]);
    ipip.extend_from_slice(&FrameBuilder::udp(sa(CIP, 1000), sa(VIP, 53)).build_ip());
    vec![
        FrameBuilder::tcp(sa(CIP, 1000), sa(VIP, 80)).build(),
        FrameBuilder::tcp(sa(RS1, 8080), sa(CIP, 1000))
            .flags(TcpFlags::SYN | TcpFlags::ACK)
            .build(),
        FrameBuilder::tcp(sa(CIP, 1000), sa(VIP, 80))
            .flags(TcpFlags::ACK | TcpFlags::FIN)
            .payload(b"GET / HTTP/1.0\r\n\r\n")
            .build(),
        FrameBuilder::tcp(sa(CIP, 1001), sa(VIP, 443))
            .ttl(1)
            .build(),
        FrameBuilder::udp(sa(CIP, 1002), sa(VIP, 53))
            .payload([0u8; 1500])
            .build(),
        FrameBuilder::udp(sa(CIP, 1003), sa(Ipv4Addr::new(192, 0, 2, 80), 53)).build(),
        FrameBuilder::tcp(s6(CIP6, 1004), s6(VIP6, 80)).build(),
        FrameBuilder::tcp(s6(RS6, 80), s6(CIP6, 1004))
            .flags(TcpFlags::ACK)
            .vlan(10)
            .build(),
        icmp_error(Ipv4Addr::new(192, 0, 2, 254), VIP, 3, &quoted),
        icmp_error(RS1, CIP, 3, &quoted_rs),
        icmp_error(
            Ipv4Addr::new(192, 0, 2, 254),
            Ipv4Addr::new(203, 0, 113, 1),
            3,
            &ipip,
        ),
        FrameBuilder::icmp_echo(IpAddr::V4(CIP), IpAddr::V4(VIP), 1, 1).build(),
    ]
}

fn outcomes(s: &EngineStats) -> u64 {
    s.passed
        + s.forwarded
        + s.local
        + s.drop_malformed
        + s.drop_no_dest
        + s.drop_dest_unavailable
        + s.drop_table_full
        + s.drop_ttl
        + s.drop_too_big
        + s.drop_no_tunnel_source
}

fn drops(s: &EngineStats) -> u64 {
    s.drop_malformed
        + s.drop_no_dest
        + s.drop_dest_unavailable
        + s.drop_table_full
        + s.drop_ttl
        + s.drop_too_big
        + s.drop_no_tunnel_source
}

/// Run one frame and check the counters moved as the verdict says.
fn run(e: &mut Engine, mut frame: Vec<u8>, fwmark: u32, now: u64) {
    let before = e.stats();
    let original = frame.clone();
    let v = e.process(
        &mut frame,
        PacketMeta { fwmark, ingress: 0 },
        EngineTime::from_millis(now),
    );
    let after = e.stats();
    assert_eq!(outcomes(&after), outcomes(&before) + 1, "{v:?}");
    let is_drop = matches!(v, Verdict::Drop { .. });
    assert_eq!(drops(&after) - drops(&before), u64::from(is_drop), "{v:?}");
    if let Verdict::Drop { reply: Some(_), .. } = v {
        assert_eq!(after.icmp_sent, before.icmp_sent + 1);
    }
    // Datapaths that cannot hand the original back (AF_XDP) re-inject the
    // frame the engine returns: a passed frame must be untouched.
    if matches!(v, Verdict::Pass | Verdict::Local) {
        assert_eq!(frame, original, "{v:?} changed the frame");
    }
}

#[derive(Debug, Clone)]
enum Input {
    Random(Vec<u8>),
    Mutated {
        seed: usize,
        flips: Vec<(usize, u8)>,
    },
    Truncated {
        seed: usize,
        len: usize,
    },
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..160).prop_map(Input::Random),
        (
            any::<usize>(),
            proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)
        )
            .prop_map(|(seed, flips)| Input::Mutated { seed, flips }),
        (any::<usize>(), any::<usize>()).prop_map(|(seed, len)| Input::Truncated { seed, len }),
    ]
}

fn materialise(i: &Input, seeds: &[Vec<u8>]) -> Vec<u8> {
    match i {
        Input::Random(b) => b.clone(),
        Input::Mutated { seed, flips } => {
            let mut f = seeds[seed % seeds.len()].clone();
            for (at, x) in flips {
                let n = f.len();
                f[at % n] ^= x;
            }
            f
        }
        Input::Truncated { seed, len } => {
            let f = &seeds[seed % seeds.len()];
            f[..len % (f.len() + 1)].to_vec()
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn frames_never_panic_and_every_outcome_is_counted(
        inputs in proptest::collection::vec((input(), 0u32..3), 1..12)
    ) {
        let seeds = seed_frames();
        let mut e = fuzz_engine();
        // Some state first: connections the mutated frames can hit.
        for (i, f) in seeds.iter().enumerate() {
            run(&mut e, f.clone(), u32::from(i % 4 == 0), 1000);
        }
        for (n, (i, mark)) in inputs.iter().enumerate() {
            run(&mut e, materialise(i, &seeds), *mark, 2000 + n as u64 * 500);
        }
        e.tick(EngineTime::from_secs(3600));
        prop_assert_eq!(e.conn_count(), 0);
    }
}

#[test]
fn every_truncation_of_every_seed_is_handled() {
    let seeds = seed_frames();
    let mut e = fuzz_engine();
    for f in &seeds {
        for len in 0..=f.len().min(200) {
            run(&mut e, f[..len].to_vec(), 1, 1000);
        }
    }
}
