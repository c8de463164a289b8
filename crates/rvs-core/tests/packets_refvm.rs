//! Packet rewriting held to the real kernel's. `tests/fixtures/refvm/packets/frames.txt`
//! holds every IPv4 frame the director of `refvm-scenarios/packets.sh` received
//! and sent (tcpdump `-Q in` / `-Q out` per interface, Debian's Linux 6.1
//! IPVS): one HTTP connection through NAT, DR and TUN, a SYN to a NAT
//! service without real servers (ICMP port unreachable), a SYN with TTL 1
//! (ICMP time exceeded), and one SCTP association through NAT (VIP:3868 ->
//! RS:3869, the real server closing; the VM got `sctp.ko` and
//! `refvm-scenarios/sctp-pingpong.c` passed in by `regen.sh`).
//!
//! Each mode's rules are applied to a fresh `Engine`, every captured
//! ingress frame goes through `Engine::process`, and each frame the engine
//! emits (forwarded, or an ICMP reply) is paired with the captured egress
//! frame carrying the same TCP sequence/acknowledgement (or quoting it; for
//! SCTP the same verification tag and chunks), on
//! the interface the kernel used. The pair must agree on:
//!
//! * the destination MAC when the engine filled it in (it is given the
//!   capture's neighbour MACs); the ethertype;
//! * every IPv4 header field (version, IHL, TOS, length, DF/MF/offset, TTL,
//!   protocol, addresses; the identification too, except for ICMP errors
//!   the director itself generates, whose id the kernel randomises), with a
//!   valid header checksum on both;
//! * everything after the IP header byte for byte: TCP ports, sequence
//!   numbers, options, payload and checksum; an IPIP packet's whole inner
//!   packet; an SCTP packet with its CRC32c (valid on both); an ICMP
//!   error's type, code, unused word and quoted bytes (and its checksum,
//!   valid on both).
//!
//! Compared loosely, by design: the source MAC (the engine leaves it to the
//! datapath, which sends with its own interface MAC) and the IP id of
//! director-made ICMP errors. Every captured egress frame must be produced
//! by the engine, and the connection table afterwards must hold the entries
//! (protocol, state, addresses) the kernel listed with `ipvsadm -L -c -n`.

use rvs_core::conn::EngineTime;
use rvs_core::{
    Command, DestConfig, Engine, FwdMethod, PacketMeta, Protocol, ServiceConfig, ServiceKey,
    TunnelCsum, TunnelKind, Verdict,
};
use rvs_wire::MacAddr;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

// ------------------------------------------------------------- fixture

#[derive(Debug, Clone)]
struct Frame {
    n: usize,
    ifname: String,
    ingress: bool,
    secs: f64,
    bytes: Vec<u8>,
}

#[derive(Debug, Default)]
struct Mode {
    name: String,
    /// (namespace, interface) -> MAC.
    macs: BTreeMap<(String, String), MacAddr>,
    rules: Vec<String>,
    conns: Vec<String>,
    frames: Vec<Frame>,
}

fn from_hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

fn parse_mac(s: &str) -> MacAddr {
    let b: Vec<u8> = s
        .split(':')
        .map(|x| u8::from_str_radix(x, 16).expect("mac"))
        .collect();
    MacAddr(b.try_into().expect("6 bytes"))
}

fn load() -> Vec<Mode> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/refvm/packets/frames.txt");
    let text = std::fs::read_to_string(&path).expect("frames.txt");
    let mut modes: Vec<Mode> = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (kind, rest) = line.split_once(' ').expect("line");
        if kind == "mode" {
            modes.push(Mode {
                name: rest.to_string(),
                ..Mode::default()
            });
            continue;
        }
        let m = modes.last_mut().expect("mode first");
        match kind {
            "mac" => {
                let w: Vec<&str> = rest.split_whitespace().collect();
                m.macs
                    .insert((w[0].to_string(), w[1].to_string()), parse_mac(w[2]));
            }
            "rule" => m.rules.push(rest.to_string()),
            "conn" => m.conns.push(rest.to_string()),
            "frame" => {
                let w: Vec<&str> = rest.split_whitespace().collect();
                m.frames.push(Frame {
                    n: w[0].parse().expect("n"),
                    ifname: w[1].to_string(),
                    ingress: match w[2] {
                        "in" => true,
                        "out" => false,
                        other => panic!("direction {other}"),
                    },
                    secs: w[3].trim_start_matches('+').parse().expect("time"),
                    bytes: from_hex(w[4]),
                });
            }
            other => panic!("line kind {other}"),
        }
    }
    modes
}

/// `ipvsadm -A -t VIP:PORT -s SCHED` / `-a -t VIP:PORT -r RIP[:PORT] -m|-g|-i`.
fn rule_command(rule: &str) -> Command {
    let w: Vec<&str> = rule.split_whitespace().collect();
    let protocol = match (w[0], w[2]) {
        ("ipvsadm", "-t") => Protocol::Tcp,
        ("ipvsadm", "--sctp-service") => Protocol::Sctp,
        _ => panic!("{rule}"),
    };
    let (vip, vport) = w[3].rsplit_once(':').expect("vip:port");
    let key = ServiceKey::Addr {
        protocol,
        addr: vip.parse().expect("vip"),
        port: vport.parse().expect("vport"),
    };
    match w[1] {
        "-A" => {
            let mut c = ServiceConfig::new(key);
            assert_eq!(w[4], "-s");
            c.scheduler = w[5].to_string();
            Command::AddService(c)
        }
        "-a" => {
            assert_eq!(w[4], "-r");
            let (addr, port) = match w[5].rsplit_once(':') {
                Some((a, p)) => (a, p.parse().expect("rport")),
                None => (w[5], vport.parse().expect("vport")),
            };
            let mut d = DestConfig::new(addr.parse().expect("rip"), port);
            d.fwd = match w[6] {
                "-m" => FwdMethod::Masq,
                "-g" => FwdMethod::Route,
                "-i" => FwdMethod::Tunnel {
                    kind: TunnelKind::Ipip,
                    csum: TunnelCsum::NoCsum,
                },
                other => panic!("method {other}"),
            };
            Command::AddDest {
                service: key,
                dest: d,
            }
        }
        other => panic!("op {other}"),
    }
}

// ------------------------------------------------------------- header views (independent of rvs-wire)

const ETH: usize = 14;

/// RFC 1071 one's-complement sum over `data` (folded, not inverted).
fn sum16(data: &[u8], mut acc: u32) -> u32 {
    for c in data.chunks(2) {
        acc += u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0));
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc
}

fn ip_header_ok(ip: &[u8]) -> bool {
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    sum16(&ip[..ihl], 0) == 0xffff
}

fn ip_total(ip: &[u8]) -> usize {
    usize::from(u16::from_be_bytes([ip[2], ip[3]]))
}

/// The IP packet inside an Ethernet frame, without link padding.
fn ip_of(frame: &[u8]) -> &[u8] {
    let ip = &frame[ETH..];
    &ip[..ip_total(ip).min(ip.len())]
}

fn l4_of(ip: &[u8]) -> &[u8] {
    &ip[usize::from(ip[0] & 0x0f) * 4..]
}

fn addr(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

/// TCP checksum over the pseudo header is valid.
fn tcp_ok(ip: &[u8]) -> bool {
    let seg = l4_of(ip);
    let mut acc = sum16(&ip[12..20], 0);
    acc = sum16(&[0, 6], acc);
    acc = sum16(&u16::try_from(seg.len()).expect("len").to_be_bytes(), acc);
    sum16(seg, acc) == 0xffff
}

/// CRC32c (reflected polynomial 0x82F63B78), bit by bit.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The SCTP packet's CRC32c (stored little-endian) is valid.
fn sctp_ok(ip: &[u8]) -> bool {
    let mut p = l4_of(ip).to_vec();
    let stored = [p[8], p[9], p[10], p[11]];
    p[8..12].copy_from_slice(&[0; 4]);
    crc32c(&p).to_le_bytes() == stored
}

/// What pairs an engine output with a captured frame: the innermost TCP
/// segment's sequence, acknowledgement and flags, or for an ICMP error its
/// type/code and the quoted segment's sequence.
fn pair_key(ip: &[u8]) -> String {
    let l4 = l4_of(ip);
    match ip[9] {
        4 => format!("ipip {}", pair_key(l4)),
        6 => format!(
            "tcp seq {} ack {} flags {:02x} len {}",
            u32::from_be_bytes([l4[4], l4[5], l4[6], l4[7]]),
            u32::from_be_bytes([l4[8], l4[9], l4[10], l4[11]]),
            l4[13],
            ip_total(ip)
        ),
        1 => {
            let quoted = &l4[8..];
            let qt = l4_of(quoted);
            format!(
                "icmp {}/{} quoting seq {}",
                l4[0],
                l4[1],
                u32::from_be_bytes([qt[4], qt[5], qt[6], qt[7]])
            )
        }
        132 => format!(
            "sctp vtag {:02x?} chunks {:02x?}",
            &l4[4..8],
            &l4[12..l4.len().min(40)]
        ),
        p => format!("protocol {p}"),
    }
}

/// Differences between the engine's frame and the kernel's, on the fields
/// that must match (see the file doc).
fn compare(ours: &[u8], kernel: &[u8], dst_mac_set: bool) -> Vec<String> {
    let mut d = Vec::new();
    if dst_mac_set && ours[..6] != kernel[..6] {
        d.push(format!(
            "dst MAC {:02x?} vs {:02x?}",
            &ours[..6],
            &kernel[..6]
        ));
    }
    if ours[12..14] != kernel[12..14] {
        d.push("ethertype".into());
    }
    let (a, b) = (ip_of(ours), ip_of(kernel));
    compare_ip(a, b, "", &mut d);
    d
}

fn compare_ip(a: &[u8], b: &[u8], ctx: &str, d: &mut Vec<String>) {
    let field = |name: &str, x: String, y: String, d: &mut Vec<String>| {
        if x != y {
            d.push(format!("{ctx}{name}: rvs {x}, kernel {y}"));
        }
    };
    field(
        "version/IHL",
        format!("{:02x}", a[0]),
        format!("{:02x}", b[0]),
        d,
    );
    field("TOS", format!("{:#04x}", a[1]), format!("{:#04x}", b[1]), d);
    field(
        "total length",
        ip_total(a).to_string(),
        ip_total(b).to_string(),
        d,
    );
    field(
        "flags/offset",
        format!("{:02x}{:02x}", a[6], a[7]),
        format!("{:02x}{:02x}", b[6], b[7]),
        d,
    );
    field("TTL", a[8].to_string(), b[8].to_string(), d);
    field("protocol", a[9].to_string(), b[9].to_string(), d);
    field(
        "src",
        addr(&a[12..16]).to_string(),
        addr(&b[12..16]).to_string(),
        d,
    );
    field(
        "dst",
        addr(&a[16..20]).to_string(),
        addr(&b[16..20]).to_string(),
        d,
    );
    // The kernel gives a director-made ICMP error a random id.
    if a[9] != 1 {
        field(
            "IP id",
            format!("{:#06x}", u16::from_be_bytes([a[4], a[5]])),
            format!("{:#06x}", u16::from_be_bytes([b[4], b[5]])),
            d,
        );
    }
    if !ip_header_ok(a) {
        d.push(format!("{ctx}rvs IP header checksum invalid"));
    }
    if !ip_header_ok(b) {
        d.push(format!("{ctx}kernel IP header checksum invalid"));
    }
    let (la, lb) = (l4_of(a), l4_of(b));
    match a[9] {
        6 => {
            if !tcp_ok(a) {
                d.push(format!("{ctx}rvs TCP checksum invalid"));
            }
            if !tcp_ok(b) {
                d.push(format!("{ctx}kernel TCP checksum invalid"));
            }
            if la != lb {
                d.push(format!(
                    "{ctx}TCP segment differs: rvs {:02x?}.., kernel {:02x?}..",
                    &la[..la.len().min(20)],
                    &lb[..lb.len().min(20)]
                ));
            }
        }
        4 => compare_ip(la, lb, &format!("{ctx}inner "), d),
        132 => {
            if !sctp_ok(a) {
                d.push(format!("{ctx}rvs SCTP CRC32c invalid"));
            }
            if !sctp_ok(b) {
                d.push(format!("{ctx}kernel SCTP CRC32c invalid"));
            }
            if la != lb {
                d.push(format!(
                    "{ctx}SCTP packet differs: rvs {:02x?}.., kernel {:02x?}..",
                    &la[..la.len().min(16)],
                    &lb[..lb.len().min(16)]
                ));
            }
        }
        1 => {
            if sum16(la, 0) != 0xffff {
                d.push(format!("{ctx}rvs ICMP checksum invalid"));
            }
            if sum16(lb, 0) != 0xffff {
                d.push(format!("{ctx}kernel ICMP checksum invalid"));
            }
            field(
                "ICMP type/code",
                format!("{}/{}", la[0], la[1]),
                format!("{}/{}", lb[0], lb[1]),
                d,
            );
            field(
                "ICMP rest of header",
                format!("{:02x?}", &la[4..8]),
                format!("{:02x?}", &lb[4..8]),
                d,
            );
            if la[8..] != lb[8..] {
                d.push(format!(
                    "{ctx}ICMP quote differs: rvs {} bytes {:02x?}, kernel {} bytes {:02x?}",
                    la.len() - 8,
                    &la[8..],
                    lb.len() - 8,
                    &lb[8..]
                ));
            }
        }
        _ => {
            if la != lb {
                d.push(format!("{ctx}payload differs"));
            }
        }
    }
}

// ------------------------------------------------------------- replay

/// Interface the director sends `ip` on in `mode`'s topology.
fn egress_if(mode: &str, ip: &[u8]) -> &'static str {
    if (mode == "nat" || mode == "sctp") && ip[16..19] == [203, 0, 113] {
        "eth1"
    } else {
        "eth0"
    }
}

fn mac_of(m: &Mode, ns_suffix: &str) -> MacAddr {
    let (_, mac) = m
        .macs
        .iter()
        .find(|((ns, ifname), _)| ns.ends_with(ns_suffix) && ifname == "eth0")
        .unwrap_or_else(|| panic!("{}: no MAC for {ns_suffix}", m.name));
    *mac
}

struct Replay {
    engine: Engine,
    /// Problems found; the test fails if any.
    bad: Vec<String>,
    /// How many engine outputs were paired with a kernel frame.
    paired: usize,
    end: EngineTime,
}

fn replay(m: &Mode) -> Replay {
    let mut e = Engine::new();
    for r in &m.rules {
        e.apply(rule_command(r))
            .unwrap_or_else(|err| panic!("{}: {r}: {err}", m.name));
    }
    let client: IpAddr = "198.51.100.2".parse().expect("ip");
    e.set_neighbour(client, Some(mac_of(m, "-client")));
    let two_legs = m.name == "nat" || m.name == "sctp";
    let rip: IpAddr = if two_legs {
        "203.0.113.11"
    } else {
        "198.51.100.11"
    }
    .parse()
    .expect("ip");
    e.set_neighbour(rip, Some(mac_of(m, "-rs1")));
    let vip: IpAddr = "198.51.100.10".parse().expect("ip");
    if two_legs {
        e.set_local_addrs([vip, "203.0.113.1".parse().expect("ip")]);
    } else {
        e.set_local_addrs([vip, "198.51.100.1".parse().expect("ip")]);
    }
    if m.name == "tun" {
        e.set_tunnel_source(Ipv4Addr::new(198, 51, 100, 1));
    }
    let mut out: Vec<Option<&Frame>> = m.frames.iter().filter(|f| !f.ingress).map(Some).collect();
    let mut bad = Vec::new();
    let mut paired = 0;
    let mut end = EngineTime::from_millis(0);
    for f in m.frames.iter().filter(|f| f.ingress) {
        let now = EngineTime::from_millis(1_000_000 + (f.secs * 1000.0) as u64);
        end = now;
        let mut frame = f.bytes.clone();
        let meta = PacketMeta {
            fwmark: 0,
            ingress: if f.ifname == "eth1" { 2 } else { 1 },
        };
        let label = format!("{} in#{} ({})", m.name, f.n, pair_key(ip_of(&f.bytes)));
        let tx = match e.process(&mut frame, meta, now) {
            Verdict::Forward(tx) => tx,
            Verdict::Drop {
                reply: Some(tx), ..
            } => tx,
            other => {
                bad.push(format!(
                    "{label}: verdict {other:?}, the kernel sent a frame"
                ));
                continue;
            }
        };
        let key = pair_key(ip_of(&frame));
        let want_if = egress_if(&m.name, ip_of(&frame));
        let slot = out
            .iter_mut()
            .find(|k| k.is_some_and(|k| pair_key(ip_of(&k.bytes)) == key && k.ifname == want_if));
        let Some(slot) = slot else {
            bad.push(format!(
                "{label}: rvs sent {key} on {want_if}, the kernel sent nothing like it"
            ));
            continue;
        };
        let kernel = slot.take().expect("unpaired");
        paired += 1;
        for diff in compare(&frame, &kernel.bytes, tx.dst_mac.is_some()) {
            bad.push(format!("{label} -> out#{}: {diff}", kernel.n));
        }
    }
    for k in out.into_iter().flatten() {
        bad.push(format!(
            "{}: kernel sent out#{} on {} ({}), rvs did not",
            m.name,
            k.n,
            k.ifname,
            pair_key(ip_of(&k.bytes))
        ));
    }
    Replay {
        engine: e,
        bad,
        paired,
        end,
    }
}

/// `TCP 01:52 TIME_WAIT c:p v:p d:p` without the expiry, and the expiry in
/// seconds.
fn conn_row(row: &str) -> (String, u64) {
    let w: Vec<&str> = row.split_whitespace().collect();
    let (mm, ss) = w[1].split_once(':').expect("mm:ss");
    let secs = mm.parse::<u64>().expect("mm") * 60 + ss.parse::<u64>().expect("ss");
    (
        format!("{} {} {} {} {}", w[0], w[2], w[3], w[4], w[5]),
        secs,
    )
}

fn check_mode(name: &str, min_pairs: usize) {
    let modes = load();
    let m = modes
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("mode {name}"));
    let mut r = replay(m);
    assert!(
        r.paired >= min_pairs,
        "{name}: only {} frames paired\n{}",
        r.paired,
        r.bad.join("\n")
    );
    // The kernel listed its table a moment after the capture ended.
    let mut ours: Vec<(String, u64)> = r
        .engine
        .connections_at(r.end)
        .iter()
        .filter(|c| !c.is_template)
        .map(|c| {
            (
                format!(
                    "{} {} {}:{} {}:{} {}:{}",
                    c.protocol.name(),
                    c.state,
                    c.caddr,
                    c.cport,
                    c.vaddr,
                    c.vport,
                    c.daddr,
                    c.dport
                ),
                c.expires_ms / 1000,
            )
        })
        .collect();
    ours.sort();
    let mut kernel: Vec<(String, u64)> = m.conns.iter().map(|r| conn_row(r)).collect();
    kernel.sort();
    let names = |v: &[(String, u64)]| v.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
    if names(&ours) != names(&kernel) {
        r.bad.push(format!(
            "{name}: connection table: kernel {:?}, rvs {:?}",
            names(&kernel),
            names(&ours)
        ));
    } else {
        for ((n, ours_s), (_, kern_s)) in ours.iter().zip(&kernel) {
            // The listing ran 1-6 s after the last frame (the VM is emulated).
            if !(*kern_s <= *ours_s && *ours_s <= kern_s + 10) {
                r.bad.push(format!(
                    "{name}: {n}: expires in {ours_s} s, kernel listed {kern_s} s"
                ));
            }
        }
    }
    assert!(
        r.bad.is_empty(),
        "{} mismatch(es) with the real kernel:\n{}",
        r.bad.len(),
        r.bad.join("\n")
    );
}

#[test]
fn nat_in_out_port_unreachable_and_ttl_exceeded_match_the_kernel() {
    // The connection both ways (5-7 frames each way per run), one port
    // unreachable, one time exceeded.
    check_mode("nat", 12);
}

#[test]
fn dr_matches_the_kernel() {
    // Only client -> server frames pass the director (5-7 per run).
    check_mode("dr", 5);
}

#[test]
fn tun_matches_the_kernel() {
    check_mode("tun", 5);
}

#[test]
fn sctp_nat_matches_the_kernel() {
    // INIT, COOKIE-ECHO, DATA, SACK, SHUTDOWN-ACK in; INIT-ACK, COOKIE-ACK,
    // SACK, DATA, SHUTDOWN, SHUTDOWN-COMPLETE out: ports rewritten, CRC32c
    // recomputed; the table ends in CLOSED as the kernel's does.
    check_mode("sctp", 11);
}

#[test]
fn fixture_holds_every_mode_and_expected_frames() {
    let modes = load();
    let names: Vec<&str> = modes.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["nat", "dr", "tun", "sctp"]);
    for m in &modes {
        let ins = m.frames.iter().filter(|f| f.ingress).count();
        let outs = m.frames.len() - ins;
        assert_eq!(ins, outs, "{}: every ingress frame was answered", m.name);
        assert!(m.frames.iter().all(|f| f.bytes.len() >= ETH + 20));
    }
    // The kernel's own ICMP errors: port unreachable and time exceeded,
    // from the VIP, TOS 0xc0, TTL 64, no DF, quoting the whole 60-byte SYN.
    let nat = &modes[0];
    let icmp: Vec<&Frame> = nat
        .frames
        .iter()
        .filter(|f| !f.ingress && ip_of(&f.bytes)[9] == 1)
        .collect();
    assert_eq!(icmp.len(), 2);
    for (f, (t, c)) in icmp.iter().zip([(3u8, 3u8), (11, 0)]) {
        let ip = ip_of(&f.bytes);
        assert_eq!((ip[1], ip[8], ip[6] & 0x40), (0xc0, 64, 0));
        assert_eq!(addr(&ip[12..16]), Ipv4Addr::new(198, 51, 100, 10));
        assert_eq!((l4_of(ip)[0], l4_of(ip)[1]), (t, c));
        assert_eq!(l4_of(ip).len(), 8 + 60);
    }
}
