//! Unit tests of the datapath's pure parts: the engine loop against a
//! fake device and sink, text parsers, and the steering rule set.

use super::*;
use crate::steer::{ruleset, SteeringConfig, SteeringSpec};
use crate::sys::{parse_addrs, parse_links, parse_mac, parse_neigh, parse_route_get};
use rvs_core::{DropReason, Family, Protocol, Route, Transmit};
use std::collections::VecDeque;
use std::net::IpAddr;

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
    fn release(&mut self, token: u32, release: Release) -> Result<(), DatapathError> {
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
