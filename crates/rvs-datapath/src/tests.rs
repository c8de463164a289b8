//! Unit tests of the datapath's pure parts: the engine loop against a
//! fake device and sink, text parsers, and the steering rule set.

use super::*;
use crate::steer::{
    parse_save, ruleset, transaction, Grace, IcmpSteering, KernelState, SteeringConfig,
    SteeringSpec,
};
use crate::sys::{parse_addrs, parse_links, parse_mac, parse_neigh, parse_route_get};
use rvs_core::{DropReason, Family, Protocol, Route, Transmit};
use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

#[derive(Default)]
struct FakeDevice {
    rx: VecDeque<Vec<u8>>,
    released: Vec<(u32, Release)>,
    next: u32,
}

impl PacketDevice for FakeDevice {
    type Token = u32;
    fn recv(&mut self) -> Result<RxFrame<u32>, DatapathError> {
        let frame = self.rx.pop_front().ok_or(DatapathError::BadFrame(0))?;
        self.next += 1;
        Ok(RxFrame {
            frame,
            meta: PacketMeta::default(),
            token: self.next,
        })
    }
    fn release(
        &mut self,
        token: u32,
        _frame: &[u8],
        release: Release,
    ) -> Result<(), DatapathError> {
        self.released.push((token, release));
        Ok(())
    }
}

#[derive(Default)]
struct FakeSink {
    sent: Vec<(Vec<u8>, Transmit)>,
    fail: bool,
}

impl FrameSink for FakeSink {
    fn transmit(&mut self, frame: &[u8], how: Transmit) -> Result<(), DatapathError> {
        if self.fail {
            return Err(DatapathError::BadFrame(frame.len()));
        }
        self.sent.push((frame.to_vec(), how));
        Ok(())
    }
}

fn routed(a: [u8; 4]) -> Transmit {
    Transmit {
        route: Route::Routed {
            next_hop: IpAddr::from(a),
        },
        dst_mac: None,
    }
}

#[test]
fn loop_releases_passes_to_host_and_consumes_forwards_and_drops() {
    let mut dev = FakeDevice::default();
    for b in 1..=4u8 {
        dev.rx.push_back(vec![b; 20]);
    }
    let mut sink = FakeSink::default();
    let mut stats = LoopStats::default();
    run_once(&mut dev, &mut sink, &mut stats, |_, _| Verdict::Pass).expect("pass");
    run_once(&mut dev, &mut sink, &mut stats, |f, _| {
        f[0] = 99;
        Verdict::Forward(routed([203, 0, 113, 11]))
    })
    .expect("forward");
    run_once(&mut dev, &mut sink, &mut stats, |_, _| Verdict::Drop {
        reason: DropReason::NoDestination,
        reply: Some(routed([198, 51, 100, 2])),
    })
    .expect("drop with reply");
    run_once(&mut dev, &mut sink, &mut stats, |_, _| Verdict::Drop {
        reason: DropReason::Malformed,
        reply: None,
    })
    .expect("drop");
    assert_eq!(
        dev.released,
        vec![
            (1, Release::ToHost),
            (2, Release::Consume),
            (3, Release::Consume),
            (4, Release::Consume)
        ]
    );
    assert_eq!(sink.sent.len(), 2);
    // The rewritten frame is what is sent.
    assert_eq!(sink.sent[0].0[0], 99);
    assert_eq!(sink.sent[0].1, routed([203, 0, 113, 11]));
    assert_eq!(sink.sent[1].0, vec![3u8; 20]);
    assert_eq!(
        stats,
        LoopStats {
            received: 4,
            to_host: 1,
            transmitted: 2,
            dropped: 2,
            tx_errors: 0
        }
    );
}

#[test]
fn transmit_errors_are_counted_and_the_original_still_consumed() {
    let mut dev = FakeDevice::default();
    dev.rx.push_back(vec![0; 20]);
    let mut sink = FakeSink {
        fail: true,
        ..FakeSink::default()
    };
    let mut stats = LoopStats::default();
    run_once(&mut dev, &mut sink, &mut stats, |_, _| {
        Verdict::Forward(routed([203, 0, 113, 12]))
    })
    .expect("loop goes on");
    assert_eq!(stats.tx_errors, 1);
    assert_eq!(stats.transmitted, 0);
    assert_eq!(dev.released, vec![(1, Release::Consume)]);
}

#[test]
fn placeholder_ethernet_header_by_ip_version() {
    let v4 = nfqueue::frame_from_ip(&[0x45, 0, 0, 20]).expect("v4");
    assert_eq!(&v4[..14], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00]);
    assert_eq!(&v4[14..], &[0x45, 0, 0, 20]);
    let v6 = nfqueue::frame_from_ip(&[0x60, 0, 0, 0]).expect("v6");
    assert_eq!(&v6[12..14], &[0x86, 0xdd]);
    assert!(nfqueue::frame_from_ip(&[0x20]).is_none());
    assert!(nfqueue::frame_from_ip(&[]).is_none());
}

#[test]
fn parses_ip_outputs() {
    let addrs = "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n\
                 2: eth0    inet 198.51.100.10/24 scope global eth0\\ valid_lft forever\n\
                 2: eth0    inet6 fe80::1/64 scope link \\ valid_lft forever\n";
    assert_eq!(
        parse_addrs(addrs),
        vec![
            ("lo".to_string(), "127.0.0.1".parse().expect("ip")),
            ("eth0".to_string(), "198.51.100.10".parse().expect("ip")),
            ("eth0".to_string(), "fe80::1".parse().expect("ip")),
        ]
    );
    let links = "1: lo: <LOOPBACK,UP> mtu 65536\n2: eth0@if3: <BROADCAST> mtu 1500\n4: br0: <UP> mtu 1500\n";
    assert_eq!(parse_links(links), vec!["eth0", "br0"]);
    let r = parse_route_get("203.0.113.11 dev br0 src 203.0.113.1 uid 0 \\    cache \n")
        .expect("route");
    assert_eq!(r.dev, "br0");
    assert_eq!(r.src, Some("203.0.113.1".parse().expect("ip")));
    assert_eq!(r.via, None);
    let r = parse_route_get("192.0.2.9 via 203.0.113.254 dev br0 src 203.0.113.1 uid 0")
        .expect("route");
    assert_eq!(r.via, Some("203.0.113.254".parse().expect("ip")));
    assert!(parse_route_get("unreachable").is_none());
    assert_eq!(
        parse_mac("02:00:5e:00:53:0a"),
        Some([0x02, 0, 0x5e, 0, 0x53, 0x0a])
    );
    assert_eq!(parse_mac("02:00:5e:00:53"), None);
    assert_eq!(parse_mac("02:00:5e:00:53:0a:01"), None);
    let rip: IpAddr = "203.0.113.11".parse().expect("ip");
    let neigh = "203.0.113.11 dev br0 lladdr 02:00:5e:00:53:0b REACHABLE\n";
    assert_eq!(parse_neigh(neigh, rip), Some([2, 0, 0x5e, 0, 0x53, 0x0b]));
    assert_eq!(parse_neigh("203.0.113.11 dev br0 FAILED\n", rip), None);
    assert_eq!(
        parse_neigh("203.0.113.12 dev br0 lladdr 02:00:5e:00:53:0b STALE\n", rip),
        None
    );
}

#[test]
fn ruleset_queues_services_nat_replies_and_marks() {
    let vip: IpAddr = "198.51.100.10".parse().expect("ip");
    let rip: IpAddr = "203.0.113.11".parse().expect("ip");
    let spec = SteeringSpec {
        services: vec![(Protocol::Tcp, vip, 80), (Protocol::Udp, vip, 0)],
        nat_sources: vec![(Protocol::Tcp, rip, 8080)],
        marks: vec![(8, Family::V4), (9, Family::V6)],
        local_clients: vec![(Protocol::Tcp, vip, 80)],
        ..SteeringSpec::default()
    };
    let cfg = SteeringConfig {
        queue: 7,
        tx_mark: 0x7276,
        interfaces: vec![],
    };
    let expected = "*raw\n\
:RVS-PRE - [0:0]\n\
:RVS-OUT - [0:0]\n\
-A RVS-PRE ! -i lo -p tcp -d 198.51.100.10/32 --dport 80 -j NFQUEUE --queue-num 7 --queue-bypass\n\
-A RVS-PRE ! -i lo -p udp -d 198.51.100.10/32 -j NFQUEUE --queue-num 7 --queue-bypass\n\
-A RVS-PRE ! -i lo -p tcp -s 203.0.113.11/32 --sport 8080 -j NFQUEUE --queue-num 7 --queue-bypass\n\
-A RVS-PRE ! -i lo -p icmp -m icmp --icmp-type 3 -j NFQUEUE --queue-num 7 --queue-bypass\n\
-A RVS-PRE ! -i lo -p icmp -m icmp --icmp-type 4 -j NFQUEUE --queue-num 7 --queue-bypass\n\
-A RVS-PRE ! -i lo -p icmp -m icmp --icmp-type 11 -j NFQUEUE --queue-num 7 --queue-bypass\n\
-A RVS-OUT -m mark --mark 0x7276 -j CT --notrack\n\
-A RVS-OUT -m mark --mark 0x7276 -j RETURN\n\
-A RVS-OUT -p tcp -d 198.51.100.10/32 --dport 80 -j NFQUEUE --queue-num 7 --queue-bypass\n\
COMMIT\n\
*mangle\n\
:RVS-MARK - [0:0]\n\
-A RVS-MARK ! -i lo -m mark --mark 0x8 -j NFQUEUE --queue-num 7 --queue-bypass\n\
COMMIT\n";
    assert_eq!(ruleset(&spec, &cfg, Family::V4), expected);
    let v6 = ruleset(&spec, &cfg, Family::V6);
    assert!(!v6.contains("198.51.100.10"));
    assert!(v6.contains("-A RVS-MARK ! -i lo -m mark --mark 0x9 -j NFQUEUE"));
    let cfg = SteeringConfig {
        interfaces: vec!["eth0".into(), "br0".into()],
        ..cfg
    };
    let per_if = ruleset(&spec, &cfg, Family::V4);
    assert!(per_if.contains("-A RVS-PRE -i eth0 -p tcp -d 198.51.100.10/32 --dport 80 "));
    assert!(per_if.contains("-A RVS-PRE -i br0 -p tcp -s 203.0.113.11/32 --sport 8080 "));
    // Local clients are queued in OUTPUT whatever --interface says.
    assert!(per_if.contains("-A RVS-OUT -p tcp -d 198.51.100.10/32 --dport 80 -j NFQUEUE"));
    assert!(!per_if.contains("! -i lo"));
}

fn cfg7() -> SteeringConfig {
    SteeringConfig {
        queue: 7,
        tx_mark: 0x7276,
        interfaces: vec![],
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

#[test]
fn icmp_errors_to_the_host_without_nat_and_all_of_them_with_nat() {
    // TUN only: errors addressed to this host (VIP, tunnel source).
    let tun = SteeringSpec {
        services: vec![(Protocol::Tcp, ip("198.51.100.10"), 8000)],
        local_clients: vec![(Protocol::Tcp, ip("198.51.100.10"), 8000)],
        ..SteeringSpec::default()
    };
    assert_eq!(tun.icmp(), IcmpSteering::ToHost);
    let v4 = ruleset(&tun, &cfg7(), Family::V4);
    let icmp: Vec<&str> = v4.lines().filter(|l| l.contains("icmp")).collect();
    assert_eq!(
        icmp,
        vec![
            "-A RVS-PRE ! -i lo -p icmp -m icmp --icmp-type 3 -m addrtype --dst-type LOCAL -j NFQUEUE --queue-num 7 --queue-bypass",
            "-A RVS-PRE ! -i lo -p icmp -m icmp --icmp-type 4 -m addrtype --dst-type LOCAL -j NFQUEUE --queue-num 7 --queue-bypass",
            "-A RVS-PRE ! -i lo -p icmp -m icmp --icmp-type 11 -m addrtype --dst-type LOCAL -j NFQUEUE --queue-num 7 --queue-bypass",
        ]
    );
    // IPv6: destination unreachable, packet too big, time exceeded,
    // parameter problem (never neighbour discovery, types >= 128).
    let v6 = ruleset(&tun, &cfg7(), Family::V6);
    let icmp6: Vec<&str> = v6.lines().filter(|l| l.contains("icmp")).collect();
    assert_eq!(icmp6.len(), 4);
    for (l, t) in icmp6.iter().zip([1, 2, 3, 4]) {
        assert_eq!(
            *l,
            format!(
                "-A RVS-PRE ! -i lo -p ipv6-icmp -m icmp6 --icmpv6-type {t} -m addrtype \
                 --dst-type LOCAL -j NFQUEUE --queue-num 7 --queue-bypass"
            )
        );
    }
    // A mark service alone also makes the engine see errors to the host.
    let marks = SteeringSpec {
        marks: vec![(1, Family::V4)],
        ..SteeringSpec::default()
    };
    assert_eq!(marks.icmp(), IcmpSteering::ToHost);
    // Nothing steered: no ICMP either.
    assert_eq!(SteeringSpec::default().icmp(), IcmpSteering::None);
    assert!(!ruleset(&SteeringSpec::default(), &cfg7(), Family::V4).contains("icmp"));
    // Per interface, like the other rules.
    let cfg = SteeringConfig {
        interfaces: vec!["eth0".into()],
        ..cfg7()
    };
    assert!(ruleset(&tun, &cfg, Family::V4).contains(
        "-A RVS-PRE -i eth0 -p icmp -m icmp --icmp-type 3 -m addrtype --dst-type LOCAL -j NFQUEUE"
    ));
}

#[test]
fn off_host_services_and_their_nat_sources_are_listed_apart() {
    use rvs_core::{Command, DestConfig, Engine, FwdMethod, ServiceConfig, ServiceKey};
    let mut e = Engine::new();
    let local = ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: ip("198.51.100.10"),
        port: 80,
    };
    let remote = ServiceKey::Addr {
        protocol: Protocol::Udp,
        addr: ip("198.51.100.20"),
        port: 53,
    };
    for (key, rip, fwd) in [
        (local, "203.0.113.11", FwdMethod::Masq),
        (remote, "203.0.113.12", FwdMethod::Masq),
    ] {
        e.apply(Command::AddService(ServiceConfig::new(key)))
            .expect("service");
        let mut d = DestConfig::new(ip(rip), key.port());
        d.fwd = fwd;
        e.apply(Command::AddDest {
            service: key,
            dest: d,
        })
        .expect("dest");
    }
    let spec = SteeringSpec::from_snapshot(&e.snapshot(), |a| *a == ip("198.51.100.10"));
    assert_eq!(
        spec.services,
        vec![(Protocol::Tcp, ip("198.51.100.10"), 80)]
    );
    assert_eq!(spec.local_clients, spec.services);
    assert_eq!(
        spec.nat_sources,
        vec![(Protocol::Tcp, ip("203.0.113.11"), 80)]
    );
    assert_eq!(
        spec.off_host,
        vec![(Protocol::Udp, ip("198.51.100.20"), 53)]
    );
    assert_eq!(
        spec.off_host_nat_sources,
        vec![(Protocol::Udp, ip("203.0.113.12"), 53)]
    );
    let v4 = ruleset(&spec, &cfg7(), Family::V4);
    assert!(!v4.contains("198.51.100.20") && !v4.contains("203.0.113.12"));
}

fn nat_spec() -> SteeringSpec {
    SteeringSpec {
        services: vec![(Protocol::Tcp, ip("198.51.100.10"), 80)],
        nat_sources: vec![
            (Protocol::Tcp, ip("203.0.113.11"), 80),
            (Protocol::Tcp, ip("203.0.113.12"), 80),
        ],
        local_clients: vec![(Protocol::Tcp, ip("198.51.100.10"), 80)],
        ..SteeringSpec::default()
    }
}

#[test]
fn grace_keeps_rules_of_services_that_left_for_two_seconds() {
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let mut g = Grace::new(Duration::from_secs(2));
    let full = nat_spec();
    assert_eq!(g.effective(&full, at(0)), full);
    // `ipvsadm -C`: the rules stay...
    let empty = SteeringSpec::default();
    assert_eq!(g.effective(&empty, at(50)), full);
    assert!(g.holding());
    assert_eq!(g.effective(&empty, at(2049)), full);
    // ...until two seconds after the table lost them.
    assert_eq!(g.effective(&empty, at(2050)), empty);
    assert!(!g.holding());

    // `-C` then `-R` within the grace period: nothing ever changes.
    let mut g = Grace::new(Duration::from_secs(2));
    g.effective(&full, at(0));
    assert_eq!(g.effective(&empty, at(100)), full);
    assert_eq!(g.effective(&full, at(300)), full);
    assert!(!g.holding());
    // A later `-C` starts a fresh period.
    assert_eq!(g.effective(&empty, at(5000)), full);
    assert_eq!(g.effective(&empty, at(6999)), full);
    assert_eq!(g.effective(&empty, at(7000)), empty);

    // One real server leaves: its NAT source is held, the rest follows
    // the table at once.
    let mut g = Grace::new(Duration::from_secs(2));
    g.effective(&full, at(0));
    let one = SteeringSpec {
        nat_sources: vec![(Protocol::Tcp, ip("203.0.113.11"), 80)],
        ..nat_spec()
    };
    assert_eq!(g.effective(&one, at(10)), full);
    assert_eq!(g.effective(&one, at(2010)), one);
}

#[test]
fn grace_drops_at_once_what_a_vip_that_stopped_being_local_steered() {
    let t0 = Instant::now();
    let mut g = Grace::new(Duration::from_secs(2));
    let full = nat_spec();
    g.effective(&full, t0);
    // The service is still in the table but its VIP went away.
    let gone = SteeringSpec {
        off_host: full.services.clone(),
        off_host_nat_sources: full.nat_sources.clone(),
        ..SteeringSpec::default()
    };
    let eff = g.effective(&gone, t0 + Duration::from_millis(10));
    assert!(eff.is_empty(), "{eff:?}");
    assert!(!g.holding());
}

/// `iptables-save` of a director running rvsd with an operator's own
/// rules around (nf_tables backend, as printed by iptables 1.8.9).
const SAVED: &str = "# Generated by iptables-save v1.8.9 (nf_tables)\n\
*raw\n\
:PREROUTING ACCEPT [0:0]\n\
:OUTPUT ACCEPT [0:0]\n\
:RVS-OUT - [0:0]\n\
:RVS-PRE - [0:0]\n\
-A PREROUTING -j RVS-PRE\n\
-A PREROUTING -j RVS-PRE\n\
-A PREROUTING -s 192.0.2.0/24 -j RVS-PRE\n\
-A PREROUTING -p udp -j CT --notrack\n\
-A RVS-PRE -d 198.51.100.10/32 ! -i lo -p tcp -m tcp --dport 80 -j NFQUEUE --queue-num 7 --queue-bypass\n\
-A RVS-PRE ! -i lo -p icmp -m icmp --icmp-type 3 -j NFQUEUE --queue-num 7 --queue-bypass\n\
-A RVS-OUT -m mark --mark 0x7276 -j CT --notrack\n\
COMMIT\n\
# Completed\n\
*filter\n\
:INPUT ACCEPT [0:0]\n\
-A INPUT -j RVS-MARK\n\
COMMIT\n\
*mangle\n\
:INPUT ACCEPT [0:0]\n\
COMMIT\n";

#[test]
fn parses_rvsd_chains_and_plain_jumps_from_iptables_save() {
    let st = parse_save(SAVED);
    assert_eq!(
        st.chains,
        vec![
            ("raw".to_string(), "RVS-OUT".to_string(), 1),
            ("raw".to_string(), "RVS-PRE".to_string(), 2),
        ]
    );
    // Only plain jumps count; the one with a source match is the
    // operator's, and a jump in another table is not in `raw`.
    assert_eq!(
        st.jumps,
        vec![
            (
                "raw".to_string(),
                "PREROUTING".to_string(),
                "RVS-PRE".to_string(),
                2
            ),
            (
                "filter".to_string(),
                "INPUT".to_string(),
                "RVS-MARK".to_string(),
                1
            ),
        ]
    );
    assert_eq!(st.jumps("raw", "OUTPUT", "RVS-OUT"), 0);
    assert_eq!(st.rules("mangle", "RVS-MARK"), None);
    assert_eq!(parse_save(""), KernelState::default());
}

#[test]
fn one_transaction_installs_rules_and_exactly_one_jump_each() {
    let spec = SteeringSpec {
        services: vec![(Protocol::Tcp, ip("198.51.100.10"), 80)],
        local_clients: vec![(Protocol::Tcp, ip("198.51.100.10"), 80)],
        ..SteeringSpec::default()
    };
    let q = "-j NFQUEUE --queue-num 7 --queue-bypass";
    let dst = "-m addrtype --dst-type LOCAL";
    // Fresh host: chains, rules, then the three jumps.
    let fresh = transaction(Some(&spec), &cfg7(), Family::V4, &KernelState::default());
    let expected = format!(
        "*raw\n\
:RVS-PRE - [0:0]\n\
:RVS-OUT - [0:0]\n\
-A RVS-PRE ! -i lo -p tcp -d 198.51.100.10/32 --dport 80 {q}\n\
-A RVS-PRE ! -i lo -p icmp -m icmp --icmp-type 3 {dst} {q}\n\
-A RVS-PRE ! -i lo -p icmp -m icmp --icmp-type 4 {dst} {q}\n\
-A RVS-PRE ! -i lo -p icmp -m icmp --icmp-type 11 {dst} {q}\n\
-A RVS-OUT -m mark --mark 0x7276 -j CT --notrack\n\
-A RVS-OUT -m mark --mark 0x7276 -j RETURN\n\
-A RVS-OUT -p tcp -d 198.51.100.10/32 --dport 80 {q}\n\
-I PREROUTING 1 -j RVS-PRE\n\
-I OUTPUT 1 -j RVS-OUT\n\
COMMIT\n\
*mangle\n\
:RVS-MARK - [0:0]\n\
-I INPUT 1 -j RVS-MARK\n\
COMMIT\n"
    );
    assert_eq!(fresh, expected);
    // On the saved state: PREROUTING has two plain jumps (one goes),
    // OUTPUT and mangle INPUT none (inserted).
    let st = parse_save(SAVED);
    let t = transaction(Some(&spec), &cfg7(), Family::V4, &st);
    let jumps: Vec<&str> = t
        .lines()
        .filter(|l| l.starts_with("-I ") || l.starts_with("-D "))
        .collect();
    assert_eq!(
        jumps,
        vec![
            "-D PREROUTING -j RVS-PRE",
            "-I OUTPUT 1 -j RVS-OUT",
            "-I INPUT 1 -j RVS-MARK"
        ]
    );
    // Everything installed once: no jump lines, chains still refilled.
    let mut ok = st.clone();
    ok.jumps = vec![
        ("raw".into(), "PREROUTING".into(), "RVS-PRE".into(), 1),
        ("raw".into(), "OUTPUT".into(), "RVS-OUT".into(), 1),
        ("mangle".into(), "INPUT".into(), "RVS-MARK".into(), 1),
    ];
    let t = transaction(Some(&spec), &cfg7(), Family::V4, &ok);
    assert!(!t.contains("-I ") && !t.contains("-D "), "{t}");
    assert!(t.contains(":RVS-PRE - [0:0]\n"));
}

#[test]
fn one_transaction_removes_jumps_then_chains() {
    let st = parse_save(SAVED);
    let t = transaction(None, &cfg7(), Family::V4, &st);
    assert_eq!(
        t,
        "*raw\n\
-D PREROUTING -j RVS-PRE\n\
-D PREROUTING -j RVS-PRE\n\
-F RVS-PRE\n\
-X RVS-PRE\n\
-F RVS-OUT\n\
-X RVS-OUT\n\
COMMIT\n"
    );
    // Nothing of rvsd's there: nothing to run.
    assert_eq!(
        transaction(None, &cfg7(), Family::V4, &KernelState::default()),
        ""
    );
}
