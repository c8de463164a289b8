//! The XDP fast path (`rvs_steer_fast` in `bpf/rvs_xdp.c`) held to the
//! engine: established-flow frames built with `rvs_wire::testframe` run
//! through the real BPF program with `BPF_PROG_TEST_RUN` and through
//! `rvs_core::Engine::process`, and the rewritten IP packets must be
//! byte-identical (the engine is the truth). The service setups are the
//! golden fixtures' (`crates/rvs-core/tests/fixtures/golden/nat_in_syn.json`:
//! rr over RS1 and RS2, so the first connection goes to RS2), carried on
//! to established connections (SYN, SYN-ACK, ACK through the engine).
//!
//! The program's `bpf_fib_lookup` needs routes and neighbours: the test
//! builds a namespace of its own (two veth pairs, static neighbour
//! entries, forwarding on) and re-runs this binary inside it with
//! `ip netns exec` for the `#[ignore]`d `inner_*` tests, which only run
//! when `RVS_BPF_GOLDEN_NS` names that namespace. The namespace is deleted
//! by a guard on every exit path.
//!
//! ```text
//!   a0  198.51.100.10/24  2001:db8:1::10/64  mac 02:00:00:00:0a:00
//!       neighbours: CIP 198.51.100.2 / 2001:db8:1::2 = 02:00:00:00:00:02
//!                   DR RS 198.51.100.20 = 02:00:00:00:00:20
//!   b0  203.0.113.1/24    2001:db8:2::1/64   mac 02:00:00:00:0b:00
//!       neighbours: RS2 203.0.113.12 / 2001:db8:2::12 = 02:00:00:00:00:12
//!                   (RS1 203.0.113.11: none, so its flows cannot be fast)
//! ```
//!
//! Needs root and the BPF object; skipped otherwise.

use rvs_core::conn::EngineTime;
use rvs_core::engine::FlowActions;
use rvs_core::{Command, Engine, FlowTuple, PacketMeta, Protocol, Verdict};
use rvs_datapath::xdp::{AttachedMode, ProgramKind, XdpProgram};
use rvs_wire::testframe::FrameBuilder;
use rvs_wire::TcpFlags;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::Command as Cmd;

const NS_ENV: &str = "RVS_BPF_GOLDEN_NS";
const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;
const XDP_REDIRECT: u32 = 4;

const A0_MAC: [u8; 6] = [2, 0, 0, 0, 0x0a, 0];
const B0_MAC: [u8; 6] = [2, 0, 0, 0, 0x0b, 0];
const CIP_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x02];
const RS2_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x12];
const DR_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x20];

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

fn skip_reason() -> Option<String> {
    if !is_root() {
        return Some("needs root".into());
    }
    if let Err(e) = rvs_datapath::xdp::availability() {
        return Some(e.to_string());
    }
    None
}

/// Deletes the namespace when dropped (panics included).
struct NsGuard(String);

impl Drop for NsGuard {
    fn drop(&mut self) {
        let _ = Cmd::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn ip_in(ns: &str, args: &[&str]) {
    let mut full = vec!["-n", ns];
    full.extend_from_slice(args);
    let out = Cmd::new("ip").args(&full).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        full.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn build_namespace(ns: &str) {
    let out = Cmd::new("ip")
        .args(["netns", "add", ns])
        .output()
        .expect("ip netns add");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ip_in(ns, &["link", "set", "lo", "up"]);
    for (a, b, mac) in [
        ("a0", "a1", "02:00:00:00:0a:00"),
        ("b0", "b1", "02:00:00:00:0b:00"),
    ] {
        ip_in(ns, &["link", "add", a, "type", "veth", "peer", "name", b]);
        ip_in(ns, &["link", "set", a, "address", mac]);
        ip_in(ns, &["link", "set", a, "up"]);
        ip_in(ns, &["link", "set", b, "up"]);
    }
    ip_in(ns, &["addr", "add", "198.51.100.10/24", "dev", "a0"]);
    ip_in(
        ns,
        &["addr", "add", "2001:db8:1::10/64", "dev", "a0", "nodad"],
    );
    ip_in(ns, &["addr", "add", "203.0.113.1/24", "dev", "b0"]);
    ip_in(
        ns,
        &["addr", "add", "2001:db8:2::1/64", "dev", "b0", "nodad"],
    );
    for (addr, mac, dev) in [
        ("198.51.100.2", "02:00:00:00:00:02", "a0"),
        ("198.51.100.20", "02:00:00:00:00:20", "a0"),
        ("2001:db8:1::2", "02:00:00:00:00:02", "a0"),
        ("203.0.113.12", "02:00:00:00:00:12", "b0"),
        ("2001:db8:2::12", "02:00:00:00:00:12", "b0"),
    ] {
        ip_in(
            ns,
            &[
                "neigh",
                "replace",
                addr,
                "lladdr",
                mac,
                "dev",
                dev,
                "nud",
                "permanent",
            ],
        );
    }
    for key in ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"] {
        let out = Cmd::new("ip")
            .args(["netns", "exec", ns, "sysctl", "-qw", key])
            .output()
            .expect("sysctl");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Run the ignored test `name` of this binary inside a fresh namespace.
fn run_inside(name: &str) {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    let ns = format!("rvsbg-{}-{name}", std::process::id());
    let ns: String = ns.chars().take(40).collect();
    let _guard = NsGuard(ns.clone());
    build_namespace(&ns);
    let exe = std::env::current_exe().expect("test binary");
    let out = Cmd::new("ip")
        .args(["netns", "exec", &ns])
        .arg(&exe)
        .args([name, "--exact", "--include-ignored", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(NS_ENV, &ns)
        .output()
        .expect("re-run the test binary");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{name} inside {ns} failed:\n{text}");
    assert!(text.contains("1 passed"), "{name} did not run:\n{text}");
}

/// Whether this process is the re-run inside the namespace.
fn inside() -> bool {
    std::env::var_os(NS_ENV).is_some()
}

fn ifindex(name: &str) -> u32 {
    std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex"))
        .expect("ifindex")
        .trim()
        .parse()
        .expect("number")
}

fn golden_setup() -> Vec<Command> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../rvs-core/tests/fixtures/golden/nat_in_syn.json");
    let text = std::fs::read_to_string(path).expect("fixture");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    serde_json::from_value(v["setup"]["commands"].clone()).expect("commands")
}

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

fn t(ms: u64) -> EngineTime {
    EngineTime::from_millis(ms)
}

fn tcp(src: &str, dst: &str, flags: TcpFlags, payload: &[u8]) -> FrameBuilder {
    FrameBuilder::tcp(sa(src), sa(dst))
        .flags(flags)
        .seq(1000)
        .ack(5000)
        .payload(payload)
}

fn meta() -> PacketMeta {
    PacketMeta::default()
}

/// Open a TCP connection CIP -> VIP through the engine (SYN, SYN-ACK
/// from `rs`, ACK): ESTABLISHED.
fn establish(e: &mut Engine, cip: &str, vip: &str, rs: &str) {
    let mut syn = tcp(cip, vip, TcpFlags::SYN, b"").build();
    assert!(matches!(
        e.process(&mut syn, meta(), t(1000)),
        Verdict::Forward(_)
    ));
    let mut synack = tcp(rs, cip, TcpFlags::SYN | TcpFlags::ACK, b"").build();
    e.process(&mut synack, meta(), t(1001));
    let mut ack = tcp(cip, vip, TcpFlags::ACK, b"").build();
    e.process(&mut ack, meta(), t(1002));
}

fn tuple_of(src: &str, dst: &str, protocol: Protocol) -> FlowTuple {
    let (s, d) = (sa(src), sa(dst));
    FlowTuple {
        protocol,
        saddr: s.ip(),
        sport: s.port(),
        daddr: d.ip(),
        dport: d.port(),
    }
}

/// RFC 1071 over the IP header (IPv4) and pseudo-header + L4 segment;
/// both must sum to 0xffff (a UDP-over-IPv4 checksum of 0 means none). Written here, independent of the program and
/// the engine.
fn checksums_ok(frame: &[u8]) -> bool {
    fn sum(mut acc: u32, b: &[u8]) -> u32 {
        for c in b.chunks(2) {
            acc += u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0));
        }
        acc
    }
    fn fold(mut a: u32) -> u16 {
        while a > 0xffff {
            a = (a & 0xffff) + (a >> 16);
        }
        a as u16
    }
    let ip = &frame[14..];
    if ip[0] >> 4 == 4 {
        let ihl = usize::from(ip[0] & 15) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        if fold(sum(0, &ip[..ihl])) != 0xffff {
            return false;
        }
        let l4 = &ip[ihl..total];
        if ip[9] == 17 && l4[6..8] == [0, 0] {
            return true;
        }
        let mut acc = sum(0, &ip[12..20]);
        acc += u32::from(ip[9]) + l4.len() as u32;
        fold(sum(acc, l4)) == 0xffff
    } else {
        let plen = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
        let l4 = &ip[40..40 + plen];
        let mut acc = sum(0, &ip[8..40]);
        acc += u32::from(ip[6]) + plen as u32;
        fold(sum(acc, l4)) == 0xffff
    }
}

struct Bench {
    engine: Engine,
    program: XdpProgram,
    a0: u32,
    b0: u32,
}

impl Bench {
    fn new() -> Bench {
        let mut engine = Engine::new();
        engine.apply_all(golden_setup()).expect("golden setup");
        let mut program = XdpProgram::load_kind(ProgramKind::SteerFast).expect("load");
        let (a0, b0) = (ifindex("a0"), ifindex("b0"));
        let fast = program.fast_path().expect("fast path maps");
        fast.set_interface_mode(a0, Some(AttachedMode::Generic));
        fast.set_interface_mode(b0, Some(AttachedMode::Generic));
        Bench {
            engine,
            program,
            a0,
            b0,
        }
    }

    fn cache(&mut self, tuple: &FlowTuple) -> FlowActions {
        let actions = self
            .engine
            .flow_actions(tuple)
            .expect("established connection is cacheable");
        assert!(self
            .program
            .fast_path()
            .expect("fast path")
            .install(&actions));
        actions
    }

    /// The frame through the program (arriving on `ingress`) and, on a
    /// copy, through the engine: (action, program output, engine output).
    fn both(&mut self, frame: &[u8], ingress: u32, now: u64) -> (u32, Vec<u8>, Vec<u8>) {
        let (action, out) = self.program.test_run(frame, ingress).expect("test run");
        let mut copy = frame.to_vec();
        let v = self.engine.process(&mut copy, meta(), t(now));
        assert!(matches!(v, Verdict::Forward(_)), "engine verdict {v:?}");
        (action, out, copy)
    }

    /// The program must leave the frame alone (steering: no socket here,
    /// so XDP_PASS).
    fn untouched(&mut self, frame: &[u8], ingress: u32) {
        let (action, out) = self.program.test_run(frame, ingress).expect("test run");
        assert_eq!(action, XDP_PASS);
        assert_eq!(out, frame);
    }
}

fn assert_forwarded(out: &[u8], engine: &[u8], dst: [u8; 6], src: [u8; 6]) {
    assert_eq!(&out[0..6], &dst, "destination MAC");
    assert_eq!(&out[6..12], &src, "source MAC");
    assert_eq!(&out[12..], &engine[12..], "program and engine disagree");
    assert!(checksums_ok(out), "bad checksums in {out:02x?}");
}

#[test]
fn nat_v4_established_flows_match_the_engine() {
    run_inside("inner_nat_v4");
}

#[test]
#[ignore = "runs inside the namespace of nat_v4_established_flows_match_the_engine"]
fn inner_nat_v4() {
    if !inside() {
        return;
    }
    let mut b = Bench::new();
    let (cip, vip, rs2) = ("198.51.100.2:40000", "198.51.100.10:80", "203.0.113.12:80");
    establish(&mut b.engine, cip, vip, rs2);
    let actions = b.cache(&tuple_of(cip, vip, Protocol::Tcp));
    assert!(actions.reply.is_some());
    let before = b.engine.snapshot().services[0].stats;

    // Client -> VIP data: to RS2 on b0 (redirect), MACs from the FIB.
    let data = tcp(
        cip,
        vip,
        TcpFlags::ACK | TcpFlags::PSH,
        b"GET / HTTP/1.0\r\n\r\n",
    )
    .build();
    let (action, out, engine) = b.both(&data, b.a0, 2000);
    assert_eq!(action, XDP_REDIRECT);
    assert_forwarded(&out, &engine, RS2_MAC, B0_MAC);
    // TTL 64 -> 63 and destination RIP, as the golden SYN.
    assert_eq!(out[14 + 8], 63);
    assert_eq!(&out[14 + 16..14 + 20], &[203, 0, 113, 12]);

    // RS2 -> client reply with an odd-length payload: source back to VIP:80.
    let reply = tcp(rs2, cip, TcpFlags::ACK, b"HTTP/1.0 200 OK\r\n\r\nRS2-web2!").build();
    let (action, out, engine) = b.both(&reply, b.b0, 2001);
    assert_eq!(action, XDP_REDIRECT);
    assert_forwarded(&out, &engine, CIP_MAC, A0_MAC);
    assert_eq!(&out[14 + 12..14 + 16], &[198, 51, 100, 10]);

    // Counters: one packet each way, the IP lengths, as the engine
    // counted the same packets.
    let after = b.engine.snapshot().services[0].stats;
    let harvest = b.program.fast_path().expect("fast").harvest();
    let inbound: Vec<_> = harvest.credits.iter().filter(|c| !c.outbound).collect();
    let outbound: Vec<_> = harvest.credits.iter().filter(|c| c.outbound).collect();
    assert_eq!(inbound.len(), 1);
    assert_eq!(outbound.len(), 1);
    assert_eq!(
        (inbound[0].packets, inbound[0].bytes),
        (after.inpkts - before.inpkts, after.inbytes - before.inbytes)
    );
    assert_eq!(
        (outbound[0].packets, outbound[0].bytes),
        (
            after.outpkts - before.outpkts,
            after.outbytes - before.outbytes
        )
    );
    assert_eq!(inbound[0].bytes, (data.len() - 14) as u64);
    assert_eq!(harvest.active.len(), 2);
    // The engine still vouches for the cached decision.
    assert!(harvest.apply(&mut b.engine, t(2002)).is_empty());
    let stats = b.program.stats();
    assert_eq!(stats.fast_forwarded, 2);

    // What must still go to the engine, untouched.
    let fin = tcp(cip, vip, TcpFlags::FIN | TcpFlags::ACK, b"").build();
    b.untouched(&fin, b.a0);
    let rst = tcp(rs2, cip, TcpFlags::RST, b"").build();
    b.untouched(&rst, b.b0);
    let ttl1 = tcp(cip, vip, TcpFlags::ACK, b"x").ttl(1).build();
    b.untouched(&ttl1, b.a0);
    // A partial checksum (a local offloading sender): the field holds
    // the folded pseudo-header sum 198.51.100.2 + 198.51.100.10 + 6 + 21.
    let mut partial = tcp(cip, vip, TcpFlags::ACK, b"x").build();
    let ph: u32 = 0xc633 + 0x6402 + 0xc633 + 0x640a + 6 + 21;
    let ph = ((ph & 0xffff) + (ph >> 16)) as u16;
    partial[14 + 20 + 16..14 + 20 + 18].copy_from_slice(&ph.to_be_bytes());
    b.untouched(&partial, b.a0);
    assert_eq!(b.program.stats().fast_partial, 1);
    // Native ingress towards an interface without the program natively:
    // no redirect (it would be dropped).
    let fast = b.program.fast_path().expect("fast");
    fast.set_interface_mode(b.a0, Some(AttachedMode::Native));
    fast.set_interface_mode(b.b0, None);
    b.untouched(&data, b.a0);
    assert_eq!(b.program.stats().fast_egress, 1);
    let fast = b.program.fast_path().expect("fast");
    fast.set_interface_mode(b.b0, Some(AttachedMode::Native));
    let (action, _, _) = b.both(&data, b.a0, 2003);
    assert_eq!(action, XDP_REDIRECT);
    assert_eq!(b.program.stats().fast_forwarded, 3);

    // After the client's FIN the engine no longer vouches: the cache goes.
    let mut fin2 = fin.clone();
    b.engine.process(&mut fin2, meta(), t(2004));
    let cached = tuple_of(cip, vip, Protocol::Tcp);
    let fast = b.program.fast_path().expect("fast");
    fast.after_frame(&b.engine, &cached);
    assert!(!fast.is_cached(&cached));
    assert!(!fast.is_cached(&tuple_of(rs2, cip, Protocol::Tcp)));
    b.untouched(&data, b.a0);
    // The last packet forwarded before the removal is still credited.
    let h = b.program.fast_path().expect("fast").harvest();
    assert_eq!(h.credits.iter().map(|c| c.packets).sum::<u64>(), 1);
}

#[test]
fn no_neighbour_and_dr_and_udp_match_the_engine() {
    run_inside("inner_more");
}

#[test]
#[ignore = "runs inside the namespace of no_neighbour_and_dr_and_udp_match_the_engine"]
fn inner_more() {
    if !inside() {
        return;
    }
    let mut b = Bench::new();
    // First connection goes to RS2, the second to RS1 (no neighbour).
    establish(
        &mut b.engine,
        "198.51.100.2:40000",
        "198.51.100.10:80",
        "203.0.113.12:80",
    );
    establish(
        &mut b.engine,
        "198.51.100.2:40001",
        "198.51.100.10:80",
        "203.0.113.11:80",
    );
    b.cache(&tuple_of(
        "198.51.100.2:40001",
        "198.51.100.10:80",
        Protocol::Tcp,
    ));
    let to_rs1 = tcp(
        "198.51.100.2:40001",
        "198.51.100.10:80",
        TcpFlags::ACK,
        b"x",
    )
    .build();
    b.untouched(&to_rs1, b.a0);
    assert_eq!(b.program.stats().fast_no_route, 1);

    // DR on the client's segment: same interface, XDP_TX, only MACs and
    // TTL change.
    b.engine
        .apply_all(vec![
            serde_json::from_value(serde_json::json!({"AddService": {
                "flags": 0, "key": {"Addr": {"addr": "198.51.100.10", "port": 443, "protocol": "Tcp"}},
                "netmask": {"V4": "255.255.255.255"}, "ops": false, "pe": null,
                "persistent": null, "scheduler": "rr"}}))
            .expect("command"),
            serde_json::from_value(serde_json::json!({"AddDest": {
                "dest": {"addr": "198.51.100.20", "fwd": "Route", "l_threshold": 0, "port": 443,
                         "u_threshold": 0, "weight": 1},
                "service": {"Addr": {"addr": "198.51.100.10", "port": 443, "protocol": "Tcp"}}}}))
            .expect("command"),
        ])
        .expect("DR service");
    let (cip, vip) = ("198.51.100.2:40002", "198.51.100.10:443");
    let mut syn = tcp(cip, vip, TcpFlags::SYN, b"").build();
    b.engine.process(&mut syn, meta(), t(1000));
    let mut ack = tcp(cip, vip, TcpFlags::ACK, b"").build();
    b.engine.process(&mut ack, meta(), t(1001));
    let actions = b.cache(&tuple_of(cip, vip, Protocol::Tcp));
    assert!(actions.reply.is_none());
    let data = tcp(cip, vip, TcpFlags::ACK, b"hello").build();
    let (action, out, engine) = b.both(&data, b.a0, 2000);
    assert_eq!(action, XDP_TX);
    assert_forwarded(&out, &engine, DR_MAC, A0_MAC);
    assert_eq!(&out[14 + 16..14 + 20], &[198, 51, 100, 10]);

    // UDP NAT with a port change (53 -> 5353), checksum on and off.
    b.engine
        .apply_all(vec![
            serde_json::from_value(serde_json::json!({"AddService": {
                "flags": 0, "key": {"Addr": {"addr": "198.51.100.10", "port": 53, "protocol": "Udp"}},
                "netmask": {"V4": "255.255.255.255"}, "ops": false, "pe": null,
                "persistent": null, "scheduler": "rr"}}))
            .expect("command"),
            serde_json::from_value(serde_json::json!({"AddDest": {
                "dest": {"addr": "203.0.113.12", "fwd": "Masq", "l_threshold": 0, "port": 5353,
                         "u_threshold": 0, "weight": 1},
                "service": {"Addr": {"addr": "198.51.100.10", "port": 53, "protocol": "Udp"}}}}))
            .expect("command"),
        ])
        .expect("UDP service");
    let (cip, vip, rs) = ("198.51.100.2:5000", "198.51.100.10:53", "203.0.113.12:5353");
    let mut first = FrameBuilder::udp(sa(cip), sa(vip)).payload(b"q1").build();
    b.engine.process(&mut first, meta(), t(1000));
    let udp_tuple = tuple_of(cip, vip, Protocol::Udp);
    // UDP through NAT waits for a reply through the engine.
    b.program
        .fast_path()
        .expect("fast")
        .after_frame(&b.engine, &udp_tuple);
    assert!(!b.program.fast_path().expect("fast").is_cached(&udp_tuple));
    let reply_tuple = tuple_of(rs, "198.51.100.2:5000", Protocol::Udp);
    let mut r = FrameBuilder::udp(sa(rs), sa("198.51.100.2:5000"))
        .payload(b"a1")
        .build();
    b.engine.process(&mut r, meta(), t(1001));
    b.program
        .fast_path()
        .expect("fast")
        .after_frame(&b.engine, &reply_tuple);
    assert!(b.program.fast_path().expect("fast").is_cached(&udp_tuple));
    for (payload, csum) in [(&b"query-2"[..], true), (&b"q3"[..], false)] {
        let q = FrameBuilder::udp(sa(cip), sa(vip))
            .payload(payload)
            .udp_checksum(csum)
            .build();
        let (action, out, engine) = b.both(&q, b.a0, 2001);
        assert_eq!(action, XDP_REDIRECT);
        assert_forwarded(&out, &engine, RS2_MAC, B0_MAC);
        assert_eq!(&out[34 + 2..34 + 4], &5353u16.to_be_bytes());
        if !csum {
            assert_eq!(&out[34 + 6..34 + 8], &[0, 0]);
        }
        let a = FrameBuilder::udp(sa(rs), sa("198.51.100.2:5000"))
            .payload(payload)
            .udp_checksum(csum)
            .build();
        let (action, out, engine) = b.both(&a, b.b0, 2002);
        assert_eq!(action, XDP_REDIRECT);
        assert_forwarded(&out, &engine, CIP_MAC, A0_MAC);
        assert_eq!(&out[34..36], &53u16.to_be_bytes());
    }
}

#[test]
fn nat_v6_established_flow_matches_the_engine() {
    run_inside("inner_nat_v6");
}

#[test]
#[ignore = "runs inside the namespace of nat_v6_established_flow_matches_the_engine"]
fn inner_nat_v6() {
    if !inside() {
        return;
    }
    let mut b = Bench::new();
    b.engine
        .apply_all(vec![
            serde_json::from_value(serde_json::json!({"AddService": {
                "flags": 0, "key": {"Addr": {"addr": "2001:db8:1::10", "port": 80, "protocol": "Tcp"}},
                "netmask": {"V6": 128}, "ops": false, "pe": null,
                "persistent": null, "scheduler": "rr"}}))
            .expect("command"),
            serde_json::from_value(serde_json::json!({"AddDest": {
                "dest": {"addr": "2001:db8:2::12", "fwd": "Masq", "l_threshold": 0, "port": 8080,
                         "u_threshold": 0, "weight": 1},
                "service": {"Addr": {"addr": "2001:db8:1::10", "port": 80, "protocol": "Tcp"}}}}))
            .expect("command"),
        ])
        .expect("IPv6 service");
    let (cip, vip, rs) = (
        "[2001:db8:1::2]:40000",
        "[2001:db8:1::10]:80",
        "[2001:db8:2::12]:8080",
    );
    establish(&mut b.engine, cip, vip, rs);
    b.cache(&tuple_of(cip, vip, Protocol::Tcp));
    let data = tcp(cip, vip, TcpFlags::ACK | TcpFlags::PSH, b"GET /v6").build();
    let (action, out, engine) = b.both(&data, b.a0, 2000);
    assert_eq!(action, XDP_REDIRECT);
    assert_forwarded(&out, &engine, RS2_MAC, B0_MAC);
    assert_eq!(out[14 + 7], 63, "hop limit");
    let reply = tcp(rs, cip, TcpFlags::ACK, b"v6 reply").build();
    let (action, out, engine) = b.both(&reply, b.b0, 2001);
    assert_eq!(action, XDP_REDIRECT);
    assert_forwarded(&out, &engine, CIP_MAC, A0_MAC);
    let vip_ip: IpAddr = sa(vip).ip();
    let IpAddr::V6(v6) = vip_ip else { panic!("v6") };
    assert_eq!(&out[14 + 8..14 + 24], &v6.octets());
}
