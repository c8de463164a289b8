//! Golden packet fixtures: every `tests/fixtures/golden/*.json` file is an
//! engine setup (rvs_core `Command`s as JSON, tunnel source, MTU,
//! neighbours) and a sequence of input frames (hex) with the expected
//! verdict and output frame. `replay_golden_fixtures` runs each file
//! through a fresh `Engine` and compares byte for byte, so any other
//! datapath can be held to the same files.
//!
//! The expected frames were written by construction, not by the engine:
//! `write_golden_fixtures` (ignored; run with `RVS_WRITE_GOLDEN=1 cargo test
//! -p rvs-core --test golden -- --ignored`) builds every expected frame
//! from the addresses the kernel would put there (rvs_wire's test-frame
//! builder, or header bytes laid out here with an RFC 1071 checksum of this
//! file's own), then stores the files that are committed.
//!
//! Verdict text: `pass`, `local`, `forward routed|direct <next hop>`,
//! `drop <Reason>` optionally followed by ` reply routed <next hop>`.
//! `output` is `null` for drops without a reply.

use rvs_core::conn::EngineTime;
use rvs_core::{
    Command, DestConfig, Engine, FwdMethod, PacketMeta, Protocol, Route, ServiceConfig, ServiceKey,
    TunnelCsum, TunnelKind, Verdict,
};
use rvs_wire::testframe::FrameBuilder;
use rvs_wire::{MacAddr, TcpFlags};
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden")
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn from_hex(s: &str) -> Vec<u8> {
    let s: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    s.chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).expect("ascii"), 16).expect("hex"))
        .collect()
}

fn parse_mac(s: &str) -> MacAddr {
    let b = from_hex(&s.replace(':', ""));
    MacAddr(b.try_into().expect("6 bytes"))
}

fn route_text(r: Route) -> String {
    match r {
        Route::Routed { next_hop } => format!("routed {next_hop}"),
        Route::Direct { next_hop } => format!("direct {next_hop}"),
    }
}

fn verdict_text(v: &Verdict) -> String {
    match v {
        Verdict::Pass => "pass".into(),
        Verdict::Local => "local".into(),
        Verdict::Forward(tx) => format!("forward {}", route_text(tx.route)),
        Verdict::Drop { reason, reply } => match reply {
            None => format!("drop {reason:?}"),
            Some(tx) => format!("drop {reason:?} reply {}", route_text(tx.route)),
        },
    }
}

/// Build a fresh engine from a fixture's `setup`.
fn engine_from(setup: &Value) -> Engine {
    let mut e = Engine::new();
    if let Some(ip) = setup["tunnel_source"].as_str() {
        e.set_tunnel_source(ip.parse().expect("tunnel source"));
    }
    if let Some(mtu) = setup["mtu"].as_u64() {
        e.set_mtu(u16::try_from(mtu).expect("mtu"));
    }
    if let Some(addrs) = setup["local_addrs"].as_array() {
        e.set_local_addrs(
            addrs
                .iter()
                .map(|a| a.as_str().expect("addr").parse().expect("addr")),
        );
    }
    if let Some(n) = setup["neighbours"].as_array() {
        for pair in n {
            let ip: IpAddr = pair[0].as_str().expect("ip").parse().expect("ip");
            e.set_neighbour(ip, Some(parse_mac(pair[1].as_str().expect("mac"))));
        }
    }
    let commands: Vec<Command> =
        serde_json::from_value(setup["commands"].clone()).expect("commands");
    e.apply_all(commands).expect("setup applies");
    e
}

#[test]
fn replay_golden_fixtures() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixture_dir())
        .expect("fixture dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 14, "only {} golden files", files.len());
    for path in files {
        let text = std::fs::read_to_string(&path).expect("read");
        let case: Value = serde_json::from_str(&text).expect("json");
        let mut e = engine_from(&case["setup"]);
        for (i, step) in case["steps"].as_array().expect("steps").iter().enumerate() {
            let mut frame = from_hex(step["input"].as_str().expect("input"));
            let meta = PacketMeta {
                fwmark: u32::try_from(step["fwmark"].as_u64().unwrap_or(0)).expect("mark"),
                ingress: 0,
            };
            let now = EngineTime::from_millis(step["time_ms"].as_u64().unwrap_or(1000));
            let v = e.process(&mut frame, meta, now);
            let name = format!("{} step {i}", path.display());
            assert_eq!(
                verdict_text(&v),
                step["verdict"].as_str().expect("verdict"),
                "{name}"
            );
            if let Some(out) = step["output"].as_str() {
                assert_eq!(to_hex(&frame), out, "{name}: output frame");
            }
        }
    }
}

// ---------------------------------------------------------------------
// Construction of the expected frames (used only to write the files).
// ---------------------------------------------------------------------

const VIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
const CIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const RS1: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 11);
const RS2: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 12);
const DIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
const ROUTER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 254);
const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const DIRECTOR_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
const RS1_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x11];

/// RFC 1071 checksum, written here independently of rvs-wire.
fn csum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u32::from(c[0]) << 8 | u32::from(c[1])
        } else {
            u32::from(c[0]) << 8
        };
        sum += w;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[allow(clippy::too_many_arguments)]
fn ipv4_header(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    ttl: u8,
    tos: u8,
    ident: u16,
    df: bool,
    payload_len: usize,
) -> Vec<u8> {
    let total = u16::try_from(20 + payload_len).expect("len");
    let mut h = vec![0x45, tos];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&ident.to_be_bytes());
    h.extend_from_slice(&(if df { 0x4000u16 } else { 0 }).to_be_bytes());
    h.extend_from_slice(&[ttl, proto, 0, 0]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    let c = csum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h
}

fn ethernet(dst: [u8; 6], src: [u8; 6], ethertype: u16, ip: &[u8]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(ip);
    f
}

/// An ICMPv4 error as Linux's `icmp_send` builds it: TTL 64, TOS 0xc0,
/// ident 0, no DF, at most 576 bytes.
fn icmp4_error(src: Ipv4Addr, dst: Ipv4Addr, t: u8, code: u8, rest: u32, quote: &[u8]) -> Vec<u8> {
    let quote = &quote[..quote.len().min(576 - 28)];
    let mut m = vec![t, code, 0, 0];
    m.extend_from_slice(&rest.to_be_bytes());
    m.extend_from_slice(quote);
    let c = csum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    let mut p = ipv4_header(src, dst, 1, 64, 0xc0, 0, false, m.len());
    p.extend_from_slice(&m);
    p
}

/// An ICMPv4 message sent by some host (TTL 64, TOS 0) with a correct checksum.
fn icmp4_from_host(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    t: u8,
    code: u8,
    rest: u32,
    quote: &[u8],
) -> Vec<u8> {
    let mut m = vec![t, code, 0, 0];
    m.extend_from_slice(&rest.to_be_bytes());
    m.extend_from_slice(quote);
    let c = csum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    let mut p = ipv4_header(src, dst, 1, 64, 0, 0, false, m.len());
    p.extend_from_slice(&m);
    p
}

/// `icmp` with its outer TTL set to `ttl` (header checksum recomputed).
fn with_ttl(mut ip: Vec<u8>, ttl: u8) -> Vec<u8> {
    ip[8] = ttl;
    ip[10..12].copy_from_slice(&[0, 0]);
    let c = csum(&ip[..20]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip
}

/// Change an IPv4 address field (offset 12 src / 16 dst) and recompute the
/// header checksum of the header starting at `at`.
fn patch_v4_addr(p: &mut [u8], at: usize, field: usize, a: Ipv4Addr) {
    p[at + field..at + field + 4].copy_from_slice(&a.octets());
    p[at + 10..at + 12].copy_from_slice(&[0, 0]);
    let c = csum(&p[at..at + 20]);
    p[at + 10..at + 12].copy_from_slice(&c.to_be_bytes());
}

/// Recompute the ICMP checksum of an IPv4 packet carrying ICMP.
fn refill_icmp(p: &mut [u8]) {
    p[22..24].copy_from_slice(&[0, 0]);
    let c = csum(&p[20..]);
    p[22..24].copy_from_slice(&c.to_be_bytes());
}

fn sa(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(ip), port)
}

fn tcp(src: SocketAddr, dst: SocketAddr, flags: TcpFlags) -> FrameBuilder {
    FrameBuilder::tcp(src, dst).flags(flags)
}

fn svc_key(port: u16) -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: IpAddr::V4(VIP),
        port,
    }
}

fn add_service(key: ServiceKey, sched: &str) -> Command {
    let mut c = ServiceConfig::new(key);
    c.scheduler = sched.into();
    Command::AddService(c)
}

fn add_dest(key: ServiceKey, addr: IpAddr, port: u16, fwd: FwdMethod) -> Command {
    let mut d = DestConfig::new(addr, port);
    d.fwd = fwd;
    d.weight = 1;
    Command::AddDest {
        service: key,
        dest: d,
    }
}

fn seed_nat() -> Vec<Command> {
    vec![
        add_service(svc_key(80), "rr"),
        add_dest(svc_key(80), IpAddr::V4(RS1), 80, FwdMethod::Masq),
        add_dest(svc_key(80), IpAddr::V4(RS2), 80, FwdMethod::Masq),
    ]
}

fn step(input: &[u8], verdict: &str, output: Option<&[u8]>) -> Value {
    json!({
        "time_ms": 1000,
        "fwmark": 0,
        "input": to_hex(input),
        "verdict": verdict,
        "output": output.map(to_hex),
    })
}

fn case(name: &str, description: &str, setup: Value, steps: Vec<Value>) -> (String, Value) {
    (
        name.to_string(),
        json!({"name": name, "description": description, "setup": setup, "steps": steps}),
    )
}

fn setup(commands: &[Command]) -> Value {
    json!({"commands": commands})
}

fn all_cases() -> Vec<(String, Value)> {
    let mut cases = Vec::new();
    let syn = |cport: u16| tcp(sa(CIP, cport), sa(VIP, 80), TcpFlags::SYN);

    // NAT in: the seed's first SYN lands on RS2 (newest first).
    let input = syn(40000).build();
    let expect = tcp(sa(CIP, 40000), sa(RS2, 80), TcpFlags::SYN)
        .ttl(63)
        .build();
    cases.push(case(
        "nat_in_syn",
        "NAT rr over RS1, RS2: the SYN goes to RS2 with destination RIP, TTL 63, checksums recomputed",
        setup(&seed_nat()),
        vec![step(&input, "forward routed 203.0.113.12", Some(&expect))],
    ));

    // NAT out: the SYN-ACK from RS2 leaves with the VIP as source.
    let synack = tcp(sa(RS2, 80), sa(CIP, 40001), TcpFlags::SYN | TcpFlags::ACK)
        .src_mac(MacAddr([2, 0, 0, 0, 0, 0x12]))
        .seq(5000)
        .ack(2)
        .build();
    let expect_out = tcp(sa(VIP, 80), sa(CIP, 40001), TcpFlags::SYN | TcpFlags::ACK)
        .src_mac(MacAddr([2, 0, 0, 0, 0, 0x12]))
        .seq(5000)
        .ack(2)
        .ttl(63)
        .build();
    cases.push(case(
        "nat_out_synack",
        "NAT reply: source RIP:rport becomes VIP:vport, TTL 63",
        setup(&seed_nat()),
        vec![
            step(
                &syn(40001).build(),
                "forward routed 203.0.113.12",
                Some(
                    &tcp(sa(CIP, 40001), sa(RS2, 80), TcpFlags::SYN)
                        .ttl(63)
                        .build(),
                ),
            ),
            step(&synack, "forward routed 198.51.100.2", Some(&expect_out)),
        ],
    ));

    // DR: only the destination MAC (and TTL) change.
    let dr = vec![
        add_service(svc_key(80), "rr"),
        add_dest(svc_key(80), IpAddr::V4(RS1), 80, FwdMethod::Route),
    ];
    let mut dr_setup = setup(&dr);
    dr_setup["neighbours"] = json!([["203.0.113.11", "02:00:00:00:00:11"]]);
    let expect = syn(40002).ttl(63).dst_mac(MacAddr(RS1_MAC)).build();
    cases.push(case(
        "dr_syn",
        "DR: the frame goes to the RS's MAC, IP packet unchanged but for the TTL",
        dr_setup,
        vec![step(
            &syn(40002).build(),
            "forward direct 203.0.113.11",
            Some(&expect),
        )],
    ));

    // TUN: IPIP from the DIP.
    let tun = FwdMethod::Tunnel {
        kind: TunnelKind::Ipip,
        csum: TunnelCsum::NoCsum,
    };
    let tun_cmds = vec![
        add_service(svc_key(80), "rr"),
        add_dest(svc_key(80), IpAddr::V4(RS1), 80, tun),
    ];
    let mut tun_setup = setup(&tun_cmds);
    tun_setup["tunnel_source"] = json!("203.0.113.1");
    let inner = syn(40003).ttl(63).build_ip();
    // ident 0: Linux gives a DF packet without a socket the id 0 (the
    // refvm TUN capture in tests/fixtures/refvm/packets shows it).
    let mut outer = ipv4_header(DIP, RS1, 4, 63, 0, 0, true, inner.len());
    outer.extend_from_slice(&inner);
    let expect = ethernet(DIRECTOR_MAC, CLIENT_MAC, 0x0800, &outer);
    cases.push(case(
        "tun_ipip_syn",
        "TUN: the packet (TTL 63) inside IPv4 DIP -> RIP, protocol 4, DF copied, TTL of the inner packet, ident 0 (DF)",
        tun_setup,
        vec![step(&syn(40003).build(), "forward routed 203.0.113.11", Some(&expect))],
    ));

    // IPv6 NAT with a port change.
    let vip6: Ipv6Addr = "2001:db8::10".parse().expect("v6");
    let cip6: Ipv6Addr = "2001:db8::2".parse().expect("v6");
    let rs6: Ipv6Addr = "2001:db8:1::11".parse().expect("v6");
    let key6 = ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: IpAddr::V6(vip6),
        port: 80,
    };
    let v6cmds = vec![
        add_service(key6, "rr"),
        add_dest(key6, IpAddr::V6(rs6), 8080, FwdMethod::Masq),
    ];
    let s6 = |a: Ipv6Addr, p: u16| SocketAddr::new(IpAddr::V6(a), p);
    let input = tcp(s6(cip6, 40004), s6(vip6, 80), TcpFlags::SYN).build();
    let expect = tcp(s6(cip6, 40004), s6(rs6, 8080), TcpFlags::SYN)
        .ttl(63)
        .build();
    let reply = tcp(
        s6(rs6, 8080),
        s6(cip6, 40004),
        TcpFlags::SYN | TcpFlags::ACK,
    )
    .build();
    let reply_out = tcp(s6(vip6, 80), s6(cip6, 40004), TcpFlags::SYN | TcpFlags::ACK)
        .ttl(63)
        .build();
    cases.push(case(
        "ipv6_nat",
        "IPv6 NAT: VIP:80 -> RIP:8080 in, back to VIP:80 out, hop limit 63",
        setup(&v6cmds),
        vec![
            step(&input, "forward routed 2001:db8:1::11", Some(&expect)),
            step(&reply, "forward routed 2001:db8::2", Some(&reply_out)),
        ],
    ));

    // No destination: port unreachable from the VIP, MACs swapped.
    let input = syn(40005).build();
    let original = syn(40005).build_ip();
    let icmp = icmp4_error(VIP, CIP, 3, 3, 0, &original);
    let expect = ethernet(CLIENT_MAC, DIRECTOR_MAC, 0x0800, &icmp);
    cases.push(case(
        "no_dest_port_unreachable",
        "A service without real servers: dropped, ICMP port unreachable VIP -> CIP quoting the SYN",
        setup(&[add_service(svc_key(80), "rr")]),
        vec![step(
            &input,
            "drop NoDestination reply routed 198.51.100.2",
            Some(&expect),
        )],
    ));

    // TTL 1: time exceeded quoting the packet as received.
    let input = syn(40006).ttl(1).build();
    let icmp = icmp4_error(VIP, CIP, 11, 0, 0, &syn(40006).ttl(1).build_ip());
    let expect = ethernet(CLIENT_MAC, DIRECTOR_MAC, 0x0800, &icmp);
    cases.push(case(
        "ttl_exceeded",
        "TTL 1 to a NAT service: time exceeded from the VIP",
        setup(&seed_nat()),
        vec![step(
            &input,
            "drop TtlExceeded reply routed 198.51.100.2",
            Some(&expect),
        )],
    ));

    // Fragmentation needed: MTU 1400, 1500-byte DF packet. The kernel
    // decrements the TTL before the MTU check, so the quote has TTL 63.
    let payload = vec![0x5au8; 1500 - 40];
    let big = syn(40007).payload(&payload);
    let mut big_setup = setup(&seed_nat());
    big_setup["mtu"] = json!(1400);
    let quoted = big.clone().ttl(63).build_ip();
    let icmp = icmp4_error(VIP, CIP, 3, 4, 1400, &quoted);
    let expect = ethernet(CLIENT_MAC, DIRECTOR_MAC, 0x0800, &icmp);
    cases.push(case(
        "frag_needed",
        "DF packet above the path MTU (1400): fragmentation needed with MTU 1400, quote cut at 548 bytes",
        big_setup,
        vec![step(&big.build(), "drop TooBig reply routed 198.51.100.2", Some(&expect))],
    ));

    // ICMP error translation, both directions, NAT to RS1:8080.
    let icmp_cmds = vec![
        add_service(svc_key(80), "rr"),
        add_dest(svc_key(80), IpAddr::V4(RS1), 8080, FwdMethod::Masq),
    ];
    let first = syn(41000).build();
    let first_out = tcp(sa(CIP, 41000), sa(RS1, 8080), TcpFlags::SYN)
        .ttl(63)
        .build();
    // A router tells the director that CIP is unreachable for our SYN-ACK.
    let quoted = tcp(sa(VIP, 80), sa(CIP, 41000), TcpFlags::SYN | TcpFlags::ACK)
        .ttl(60)
        .build_ip();
    let err_in = icmp4_from_host(ROUTER, VIP, 3, 1, 0, &quoted);
    let input = ethernet(DIRECTOR_MAC, CLIENT_MAC, 0x0800, &err_in);
    // Expected: outer destination RS1, TTL 63; quoted source RS1:8080,
    // quoted IP checksum recomputed, quoted TCP checksum untouched.
    let mut out = with_ttl(err_in.clone(), 63);
    patch_v4_addr(&mut out, 0, 16, RS1);
    patch_v4_addr(&mut out, 28, 12, RS1);
    out[48..50].copy_from_slice(&8080u16.to_be_bytes());
    refill_icmp(&mut out);
    let expect = ethernet(DIRECTOR_MAC, CLIENT_MAC, 0x0800, &out);
    cases.push(case(
        "icmp_error_to_real_server",
        "Client-side host unreachable quoting VIP:80 -> CIP: forwarded to RS1 with quoted source RS1:8080",
        setup(&icmp_cmds),
        vec![
            step(&first, "forward routed 203.0.113.11", Some(&first_out)),
            step(&input, "forward routed 203.0.113.11", Some(&expect)),
        ],
    ));

    // RS1 says port unreachable about CIP:41001 -> RS1:8080.
    let quoted = tcp(sa(CIP, 41001), sa(RS1, 8080), TcpFlags::ACK)
        .ttl(63)
        .payload(b"GET /")
        .build_ip();
    let err_out = icmp4_from_host(RS1, CIP, 3, 3, 0, &quoted);
    let input = ethernet(DIRECTOR_MAC, RS1_MAC, 0x0800, &err_out);
    let mut out = with_ttl(err_out.clone(), 63);
    patch_v4_addr(&mut out, 0, 12, VIP);
    patch_v4_addr(&mut out, 28, 16, VIP);
    out[50..52].copy_from_slice(&80u16.to_be_bytes());
    refill_icmp(&mut out);
    let expect = ethernet(DIRECTOR_MAC, RS1_MAC, 0x0800, &out);
    cases.push(case(
        "icmp_error_to_client",
        "RS-side port unreachable quoting CIP -> RS1:8080: outer source VIP, quoted destination VIP:80",
        setup(&icmp_cmds),
        vec![
            step(
                &syn(41001).build(),
                "forward routed 203.0.113.11",
                Some(&tcp(sa(CIP, 41001), sa(RS1, 8080), TcpFlags::SYN).ttl(63).build()),
            ),
            step(&input, "forward routed 198.51.100.2", Some(&expect)),
        ],
    ));

    // ICMP error on a DR connection: to the RS's MAC, unchanged but TTL.
    let mut dr_setup = setup(&dr);
    dr_setup["neighbours"] = json!([["203.0.113.11", "02:00:00:00:00:11"]]);
    let quoted = tcp(sa(VIP, 80), sa(CIP, 41002), TcpFlags::SYN | TcpFlags::ACK).build_ip();
    let err = icmp4_from_host(ROUTER, VIP, 11, 0, 0, &quoted);
    let input = ethernet(DIRECTOR_MAC, CLIENT_MAC, 0x0800, &err);
    let expect = ethernet(RS1_MAC, CLIENT_MAC, 0x0800, &with_ttl(err.clone(), 63));
    cases.push(case(
        "icmp_error_dr",
        "Time exceeded quoting a DR connection's reply: sent on to the RS's MAC",
        dr_setup,
        vec![
            step(
                &syn(41002).build(),
                "forward direct 203.0.113.11",
                Some(&syn(41002).ttl(63).dst_mac(MacAddr(RS1_MAC)).build()),
            ),
            step(&input, "forward direct 203.0.113.11", Some(&expect)),
        ],
    ));

    // A router on the way to a TUN real server says our IPIP packet is
    // too big: the client hears it from the VIP, MTU less 20.
    let mut tun_setup = setup(&tun_cmds);
    tun_setup["tunnel_source"] = json!("203.0.113.1");
    let inner = syn(41003).ttl(63).build_ip();
    let mut ipip = ipv4_header(DIP, RS1, 4, 63, 0, 1, true, inner.len());
    ipip.extend_from_slice(&inner);
    let err = icmp4_from_host(ROUTER, DIP, 3, 4, 1400, &ipip);
    let router_mac = [2, 0, 0, 0, 0, 0xfe];
    let input = ethernet(DIRECTOR_MAC, router_mac, 0x0800, &err);
    let expect = ethernet(
        DIRECTOR_MAC,
        router_mac,
        0x0800,
        &icmp4_error(VIP, CIP, 3, 4, 1380, &inner),
    );
    cases.push(case(
        "icmp_error_tunnel",
        "Fragmentation needed (MTU 1400) about an IPIP packet to RS1: fragmentation needed VIP -> CIP with MTU 1380 quoting the original SYN",
        tun_setup,
        vec![
            step(&syn(41003).build(), "forward routed 203.0.113.11", None),
            step(&input, "forward routed 198.51.100.2", Some(&expect)),
        ],
    ));

    // Pass-through.
    let mut arp = vec![0xffu8; 6];
    arp.extend_from_slice(&CLIENT_MAC);
    arp.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
    arp.extend_from_slice(&CLIENT_MAC);
    arp.extend_from_slice(&CIP.octets());
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&VIP.octets());
    let other_port = tcp(sa(CIP, 42000), sa(VIP, 22), TcpFlags::SYN).build();
    let stray_ack = tcp(sa(CIP, 42001), sa(VIP, 80), TcpFlags::ACK).build();
    let ping = FrameBuilder::icmp_echo(IpAddr::V4(CIP), IpAddr::V4(VIP), 7, 1).build();
    cases.push(case(
        "pass_through",
        "ARP, another port of the VIP, a stray ACK and an echo request go to the host untouched",
        setup(&seed_nat()),
        vec![
            step(&arp, "pass", Some(&arp)),
            step(&other_port, "pass", Some(&other_port)),
            step(&stray_ack, "pass", Some(&stray_ack)),
            step(&ping, "pass", Some(&ping)),
        ],
    ));

    // Malformed (truncated) frames.
    let good = syn(42002).build();
    cases.push(case(
        "malformed_truncated",
        "Frames cut inside the Ethernet header, the IPv4 header and the TCP header are dropped as malformed",
        setup(&seed_nat()),
        vec![
            step(&good[..10], "drop Malformed", None),
            step(&good[..30], "drop Malformed", None),
            step(&good[..44], "drop Malformed", None),
        ],
    ));
    cases
}

/// Writes the fixture files from the construction above.
#[test]
#[ignore]
fn write_golden_fixtures() {
    if std::env::var("RVS_WRITE_GOLDEN").is_err() {
        return;
    }
    let dir = fixture_dir();
    std::fs::create_dir_all(&dir).expect("mkdir");
    for (name, value) in all_cases() {
        let text = serde_json::to_string_pretty(&value).expect("json") + "\n";
        std::fs::write(dir.join(format!("{name}.json")), text).expect("write");
    }
}
