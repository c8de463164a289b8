//! Scheduler decisions held to the real kernel's. Every scenario in
//! `tests/fixtures/refvm/sched/` (captured with `refvm-scenarios/sched.sh` on
//! Debian's Linux 6.1 IPVS with real traffic) is replayed twice:
//!
//! * **directly** through `rvs_core::sched::new_scheduler`, with the
//!   destination list in the kernel's order (the `--nosort` listing in the
//!   file header, newest first) and, for the connection-count schedulers,
//!   the ActiveConn/InActConn the kernel listed just before each request;
//! * **end to end** through `Engine::process`, applying the same ipvsadm
//!   rules and edits and sending TCP frames: a held request is a handshake
//!   plus the request (ESTABLISHED, active); a short request is a full
//!   exchange closed with FINs (TIME_WAIT, inactive); a refused request
//!   must be dropped with an ICMP port unreachable. Before each request the
//!   engine's counters must equal the kernel's `before:` field, and after
//!   the scenario they must equal the kernel's `# after:` line and the
//!   `<test>-list` listing captured right after the test (`transcript.log`).
//!
//! Every request's real server must be the one the kernel picked.

use rvs_core::conn::EngineTime;
use rvs_core::model::{DestId, SchedFlags};
use rvs_core::sched::{new_scheduler, DestChange, SchedContext, SchedDest, SchedPacket};
use rvs_core::sched::{Scheduler, XorShiftRng};
use rvs_core::{
    Command, DestConfig, DropReason, Engine, Family, FwdMethod, PacketMeta, Protocol,
    ServiceConfig, ServiceKey, Verdict,
};
use rvs_wire::testframe::FrameBuilder;
use rvs_wire::{EthernetFrame, IpProtocol, Ipv4Packet, TcpFlags, TcpPacket};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

// ------------------------------------------------------------- fixtures

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/refvm/sched")
}

fn read_fixture(name: &str) -> String {
    let path = fixture_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("address {s:?}: {e}"))
}

fn addr_port(s: &str) -> (IpAddr, u16) {
    let (a, p) = s
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("addr:port {s:?}"));
    (
        ip(a),
        p.parse().unwrap_or_else(|e| panic!("port {s:?}: {e}")),
    )
}

/// One `ipvsadm` rule line (`-A`, `-a` or `-e`), as far as these scenarios use it.
#[derive(Debug, Clone)]
struct Rule {
    op: char,
    service: ServiceKey,
    scheduler: Option<String>,
    flags: SchedFlags,
    real: Option<(IpAddr, u16)>,
    weight: i32,
    u_threshold: u32,
    l_threshold: u32,
}

fn parse_rule(line: &str) -> Rule {
    let mut words = line.split_whitespace();
    assert_eq!(words.next(), Some("ipvsadm"), "{line}");
    let mut rule = Rule {
        op: '?',
        service: ServiceKey::Fwmark {
            mark: 0,
            family: Family::V4,
        },
        scheduler: None,
        flags: SchedFlags::default(),
        real: None,
        weight: 1,
        u_threshold: 0,
        l_threshold: 0,
    };
    let value = |words: &mut std::str::SplitWhitespace<'_>| {
        words
            .next()
            .unwrap_or_else(|| panic!("missing value in {line}"))
            .to_string()
    };
    while let Some(w) = words.next() {
        match w {
            "-A" => rule.op = 'A',
            "-a" => rule.op = 'a',
            "-e" => rule.op = 'e',
            "-t" => {
                let (addr, port) = addr_port(&value(&mut words));
                rule.service = ServiceKey::Addr {
                    protocol: Protocol::Tcp,
                    addr,
                    port,
                };
            }
            "-f" => {
                rule.service = ServiceKey::Fwmark {
                    mark: value(&mut words).parse().expect("fwmark"),
                    family: Family::V4,
                }
            }
            "-s" => rule.scheduler = Some(value(&mut words)),
            "-b" => {
                for flag in value(&mut words).split(',') {
                    rule.flags.0 |= match flag {
                        "sh-fallback" | "mh-fallback" => SchedFlags::SCHED1,
                        "sh-port" | "mh-port" => SchedFlags::SCHED2,
                        other => panic!("flag {other}"),
                    };
                }
            }
            "-r" => rule.real = Some(addr_port(&value(&mut words))),
            "-m" => {}
            "-w" => rule.weight = value(&mut words).parse().expect("weight"),
            "-x" => rule.u_threshold = value(&mut words).parse().expect("-x"),
            "-y" => rule.l_threshold = value(&mut words).parse().expect("-y"),
            other => panic!("unexpected word {other:?} in {line}"),
        }
    }
    rule
}

impl Rule {
    fn command(&self) -> Command {
        match self.op {
            'A' => {
                let mut c = ServiceConfig::new(self.service);
                c.scheduler = self.scheduler.clone().expect("-A without -s");
                c.flags = self.flags;
                Command::AddService(c)
            }
            'a' | 'e' => {
                let (addr, port) = self.real.expect("-a/-e without -r");
                let mut d = DestConfig::new(addr, port);
                d.fwd = FwdMethod::Masq;
                d.weight = self.weight;
                d.u_threshold = self.u_threshold;
                d.l_threshold = self.l_threshold;
                if self.op == 'a' {
                    Command::AddDest {
                        service: self.service,
                        dest: d,
                    }
                } else {
                    Command::EditDest {
                        service: self.service,
                        dest: d,
                    }
                }
            }
            other => panic!("op {other}"),
        }
    }
}

/// What the kernel did with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Served(IpAddr),
    Refused,
}

fn parse_outcome(s: &str) -> Outcome {
    if s.starts_with("FAIL") {
        Outcome::Refused
    } else {
        Outcome::Served(ip(s.split_whitespace().next().expect("rs")))
    }
}

/// (real server, ActiveConn, InActConn), in rs1 rs2 rs3 order.
type Counts = Vec<(IpAddr, u32, u32)>;

fn parse_counts(s: &str) -> Counts {
    let words: Vec<&str> = s.split_whitespace().collect();
    words
        .chunks(2)
        .map(|c| {
            let (addr, _) = addr_port(c[0]);
            let (a, i) = c[1].split_once('/').expect("A/I");
            (addr, a.parse().expect("A"), i.parse().expect("I"))
        })
        .collect()
}

#[derive(Debug, Clone)]
enum Event {
    /// A hash-test request (stateless; one short connection).
    Hash {
        caddr: IpAddr,
        cport: u16,
        /// Destination address when it is not the VIP (dh).
        vip: Option<IpAddr>,
        expect: Outcome,
    },
    /// A connection-count request.
    Conn {
        n: u32,
        hold: bool,
        caddr: IpAddr,
        expect: Outcome,
        before: Counts,
    },
    Edit(Rule),
}

#[derive(Debug)]
struct Scenario {
    name: String,
    rules: Vec<Rule>,
    /// The kernel's destination list (newest first): address, port, weight.
    kernel_order: Vec<(IpAddr, u16, i32)>,
    events: Vec<Event>,
    after: Option<Counts>,
}

fn load(name: &str) -> Scenario {
    let text = read_fixture(&format!("{name}.txt"));
    let mut sc = Scenario {
        name: name.to_string(),
        rules: Vec::new(),
        kernel_order: Vec::new(),
        events: Vec::new(),
        after: None,
    };
    let mut section = "";
    for line in text.lines() {
        if let Some(h) = line.strip_prefix('#') {
            let h = h.trim();
            if h.starts_with("rules, in the order") {
                section = "rules";
            } else if h.starts_with("kernel order") {
                section = "order";
            } else if let Some(r) = h.strip_prefix("edit: ") {
                sc.events.push(Event::Edit(parse_rule(r)));
            } else if let Some(a) = h.strip_prefix("after: ") {
                sc.after = Some(parse_counts(a));
            } else if section == "rules" && h.starts_with("ipvsadm ") {
                sc.rules.push(parse_rule(h));
            } else if section == "order" && h.starts_with("-> ") && !h.contains("RemoteAddress") {
                let w: Vec<&str> = h.split_whitespace().collect();
                let (addr, port) = addr_port(w[1]);
                sc.kernel_order
                    .push((addr, port, w[3].parse().expect("weight")));
            } else if !(h.starts_with("Prot")
                || h.starts_with("-> ")
                || h.starts_with("TCP")
                || h.starts_with("FWM"))
            {
                section = "";
            }
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        let (left, right) = line
            .split_once(" -> ")
            .unwrap_or_else(|| panic!("line {line:?}"));
        let lw: Vec<&str> = left.split_whitespace().collect();
        if lw.len() == 2 {
            // Hash test: "caddr cport -> rs [vip=...]".
            let vip = right
                .split_whitespace()
                .find_map(|w| w.strip_prefix("vip="))
                .map(ip);
            sc.events.push(Event::Hash {
                caddr: ip(lw[0]),
                cport: lw[1].parse().expect("cport"),
                vip,
                expect: parse_outcome(right),
            });
        } else {
            // Connection test: "N kind caddr -> rs | before: ...".
            let (rs, before) = right.split_once("| before:").expect("before:");
            sc.events.push(Event::Conn {
                n: lw[0].parse().expect("N"),
                hold: match lw[1] {
                    "hold" => true,
                    "short" => false,
                    other => panic!("kind {other}"),
                },
                caddr: ip(lw[2]),
                expect: parse_outcome(rs.trim()),
                before: parse_counts(before),
            });
        }
    }
    assert!(!sc.rules.is_empty(), "{name}: no rules");
    assert_eq!(sc.kernel_order.len(), 3, "{name}: kernel order");
    assert!(!sc.events.is_empty(), "{name}: no requests");
    sc
}

/// The listing `ipvsadm -L -n ...` captured right after the test
/// (slug `<name>-list` in `transcript.log`), as (rs, ActiveConn, InActConn)
/// in listing order.
fn kernel_listing_after(name: &str) -> Counts {
    let log = read_fixture("transcript.log");
    let mut rows = Vec::new();
    let mut lines = log.lines();
    let wanted = sc_list_cmd(name);
    while let Some(l) = lines.next() {
        if l.starts_with("### ") && l.ends_with(&wanted) {
            for l in lines.by_ref() {
                if l.starts_with("--- ") || l.starts_with("### ") {
                    break;
                }
                let w: Vec<&str> = l.split_whitespace().collect();
                if w.first() == Some(&"->") && w.get(1) != Some(&"RemoteAddress:Port") {
                    let (addr, _) = addr_port(w[1]);
                    let n = w.len();
                    rows.push((
                        addr,
                        w[n - 2].parse().expect("active"),
                        w[n - 1].parse().expect("inactive"),
                    ));
                }
            }
            return rows;
        }
    }
    panic!("{name}: no -list capture in transcript.log");
}

/// The listing command `sched.sh` ran after test `name`.
fn sc_list_cmd(name: &str) -> String {
    let sc = load(name);
    let svc = match sc.rules[0].service {
        ServiceKey::Addr { addr, port, .. } => format!("-t {addr}:{port}"),
        ServiceKey::Fwmark { mark, .. } => format!("-f {mark}"),
    };
    let extra = if name.starts_with("fo-") {
        " --thresholds"
    } else {
        ""
    };
    format!("ipvsadm -L -n {svc}{extra}")
}

const VIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);

fn service_vaddr_port(sc: &Scenario) -> (IpAddr, u16) {
    match sc.rules[0].service {
        ServiceKey::Addr { addr, port, .. } => (addr, port),
        ServiceKey::Fwmark { .. } => (IpAddr::V4(VIP), 80),
    }
}

fn fwmark(sc: &Scenario) -> u32 {
    match sc.rules[0].service {
        ServiceKey::Fwmark { mark, .. } => mark,
        ServiceKey::Addr { .. } => 0,
    }
}

// ------------------------------------------------------------- direct replay

/// Per-destination state the direct replay tracks besides the list.
#[derive(Debug, Clone, Copy)]
struct DirectDest {
    addr: IpAddr,
    port: u16,
    weight: i32,
    last_weight: i32,
    u_threshold: u32,
}

fn sched_list(dests: &[DirectDest], counts: Option<&Counts>) -> Vec<SchedDest> {
    dests
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let (active, inactive) = counts
                .and_then(|c| c.iter().find(|(a, _, _)| *a == d.addr))
                .map(|&(_, a, i)| (a, i))
                .unwrap_or((0, 0));
            SchedDest {
                id: DestId(i as u64 + 1),
                addr: d.addr,
                port: d.port,
                weight: d.weight,
                last_weight: d.last_weight,
                // These scenarios only ever raise connection counts once a
                // threshold is set, and the kernel (6.1.190+: "properly update
                // the overload flag on dest edit") re-evaluates the flag when
                // a threshold is edited, so OVERLOAD is simply "reached".
                overloaded: d.u_threshold != 0
                    && u64::from(active) + u64::from(inactive) >= u64::from(d.u_threshold),
                active,
                inactive,
            }
        })
        .collect()
}

/// Replays `sc` through the scheduler alone; returns one line per mismatch.
fn replay_direct(sc: &Scenario) -> Vec<String> {
    let svc = &sc.rules[0];
    let sched_name = svc.scheduler.clone().expect("scheduler");
    let mut dests: Vec<DirectDest> = sc
        .kernel_order
        .iter()
        .map(|&(addr, port, weight)| DirectDest {
            addr,
            port,
            weight,
            last_weight: weight,
            u_threshold: 0,
        })
        .collect();
    let mut sched: Box<dyn Scheduler> =
        new_scheduler(&sched_name, &sched_list(&dests, None)).expect("known scheduler");
    let mut rng = XorShiftRng::new(1);
    let (vaddr, vport) = service_vaddr_port(sc);
    let mut bad = Vec::new();
    for ev in &sc.events {
        let (packet, counts, expect, label) = match ev {
            Event::Edit(rule) => {
                let (addr, port) = rule.real.expect("-e -r");
                let i = dests
                    .iter()
                    .position(|d| d.addr == addr && d.port == port)
                    .expect("edited dest");
                let d = &mut dests[i];
                if rule.weight > 0 {
                    d.last_weight = rule.weight;
                }
                d.weight = rule.weight;
                d.u_threshold = rule.u_threshold;
                sched.dests_changed(
                    DestChange::Updated(DestId(i as u64 + 1)),
                    &sched_list(&dests, None),
                );
                continue;
            }
            Event::Hash {
                caddr,
                cport,
                vip,
                expect,
            } => (
                SchedPacket {
                    saddr: *caddr,
                    sport: *cport,
                    daddr: vip.unwrap_or(vaddr),
                    dport: vport,
                },
                None,
                expect,
                format!("{caddr}:{cport}"),
            ),
            Event::Conn {
                n,
                caddr,
                expect,
                before,
                ..
            } => (
                SchedPacket {
                    saddr: *caddr,
                    sport: 40000 + *n as u16,
                    daddr: vaddr,
                    dport: vport,
                },
                Some(before),
                expect,
                format!("request {n} from {caddr}"),
            ),
        };
        let list = sched_list(&dests, counts);
        let mut ctx = SchedContext {
            packet,
            flags: svc.flags,
            now_secs: 100,
            rng: &mut rng,
            lblc_expiration_secs: 86400,
            lblcr_expiration_secs: 86400,
        };
        let got = match sched.schedule(&list, &mut ctx) {
            Some(i) => Outcome::Served(list[i].addr),
            None => Outcome::Refused,
        };
        if &got != expect {
            bad.push(format!(
                "{} direct: {label}: kernel {expect:?}, rvs {got:?}",
                sc.name
            ));
        }
    }
    bad
}

// ------------------------------------------------------------- engine replay

fn t(secs: u64) -> EngineTime {
    EngineTime::from_secs(secs)
}

fn sa(addr: IpAddr, port: u16) -> SocketAddr {
    SocketAddr::new(addr, port)
}

fn tcp(src: SocketAddr, dst: SocketAddr, flags: TcpFlags) -> Vec<u8> {
    FrameBuilder::tcp(src, dst).flags(flags).build()
}

/// Destination address and port of a forwarded TCP/IPv4 frame.
fn tcp4_dst(frame: &[u8]) -> (IpAddr, u16) {
    let eth = EthernetFrame::new_checked(frame).expect("ethernet");
    let ip4 = Ipv4Packet::new_checked(&frame[eth.header_len()..]).expect("ipv4");
    assert_eq!(ip4.protocol(), IpProtocol::Tcp);
    let seg = TcpPacket::new_checked(ip4.payload()).expect("tcp");
    (IpAddr::V4(ip4.dst_addr()), seg.dst_port())
}

/// The engine's (rs, active, inactive) in rs1 rs2 rs3 order (`order` gives
/// the addresses), plus the engine's own list order.
fn engine_counts(e: &Engine, key: &ServiceKey, order: &[IpAddr]) -> (Counts, Vec<IpAddr>) {
    let snap = e.snapshot();
    let svc = snap
        .services
        .iter()
        .find(|s| s.config.key == *key)
        .expect("service in snapshot");
    let list: Vec<IpAddr> = svc.dests.iter().map(|d| d.config.addr).collect();
    let counts = order
        .iter()
        .map(|a| {
            let d = svc
                .dests
                .iter()
                .find(|d| d.config.addr == *a)
                .expect("dest in snapshot");
            (*a, d.active, d.inactive)
        })
        .collect();
    (counts, list)
}

/// Sends one client connection through the engine. The SYN's verdict
/// decides the outcome; for a served connection the rest of the exchange
/// follows (held: handshake + request; short: handshake, request, FINs).
fn connection(
    e: &mut Engine,
    meta: PacketMeta,
    client: SocketAddr,
    vip: SocketAddr,
    hold: bool,
    now: EngineTime,
) -> Result<Outcome, String> {
    let mut syn = tcp(client, vip, TcpFlags::SYN);
    let rs = match e.process(&mut syn, meta, now) {
        Verdict::Forward(_) => {
            let (addr, port) = tcp4_dst(&syn);
            sa(addr, port)
        }
        Verdict::Drop {
            reason: DropReason::NoDestination,
            reply: Some(_),
        } => return Ok(Outcome::Refused),
        other => return Err(format!("SYN from {client}: {other:?}")),
    };
    let mut steps = vec![
        (rs, client, TcpFlags::SYN | TcpFlags::ACK),
        (client, vip, TcpFlags::ACK),
        (client, vip, TcpFlags::ACK | TcpFlags::PSH),
    ];
    if !hold {
        steps.extend([
            (rs, client, TcpFlags::ACK | TcpFlags::PSH),
            (rs, client, TcpFlags::ACK | TcpFlags::FIN),
            (client, vip, TcpFlags::ACK | TcpFlags::FIN),
            (rs, client, TcpFlags::ACK),
        ]);
    }
    for (src, dst, flags) in steps {
        let mut f = tcp(src, dst, flags);
        match e.process(&mut f, meta, now) {
            Verdict::Forward(_) => {}
            other => return Err(format!("{src} -> {dst} {flags}: {other:?}")),
        }
    }
    Ok(Outcome::Served(rs.ip()))
}

/// Replays `sc` through the engine; returns one line per mismatch.
fn replay_engine(sc: &Scenario) -> Vec<String> {
    let mut e = Engine::new();
    for r in &sc.rules {
        e.apply(r.command())
            .unwrap_or_else(|err| panic!("{}: {r:?}: {err}", sc.name));
    }
    let key = sc.rules[0].service;
    let rs_order: Vec<IpAddr> = sc
        .rules
        .iter()
        .filter_map(|r| r.real.map(|(a, _)| a))
        .collect();
    let mut bad = Vec::new();
    let kernel_list: Vec<IpAddr> = sc.kernel_order.iter().map(|d| d.0).collect();
    let (_, list) = engine_counts(&e, &key, &rs_order);
    if list != kernel_list {
        bad.push(format!(
            "{}: list order: kernel {kernel_list:?}, rvs {list:?}",
            sc.name
        ));
    }
    let meta = PacketMeta {
        fwmark: fwmark(sc),
        ingress: 0,
    };
    let (vaddr, vport) = service_vaddr_port(sc);
    // One request per second: nothing expires during a scenario (TIME_WAIT
    // lasts 120 s, and the longest scenario has 64 requests).
    let mut now = 10u64;
    for ev in &sc.events {
        now += 1;
        let (client, vip, hold, expect, label) = match ev {
            Event::Edit(rule) => {
                e.apply(rule.command())
                    .unwrap_or_else(|err| panic!("{}: edit: {err}", sc.name));
                continue;
            }
            Event::Hash {
                caddr,
                cport,
                vip,
                expect,
            } => (
                sa(*caddr, *cport),
                sa(vip.unwrap_or(vaddr), vport),
                false,
                expect,
                format!("{caddr}:{cport}"),
            ),
            Event::Conn {
                n,
                hold,
                caddr,
                expect,
                before,
            } => {
                let (counts, _) = engine_counts(&e, &key, &rs_order);
                if &counts != before {
                    bad.push(format!(
                        "{} engine: before request {n}: kernel {before:?}, rvs {counts:?}",
                        sc.name
                    ));
                }
                (
                    sa(*caddr, 40000 + *n as u16),
                    sa(vaddr, vport),
                    *hold,
                    expect,
                    format!("request {n} from {caddr}"),
                )
            }
        };
        match connection(&mut e, meta, client, vip, hold, t(now)) {
            Ok(got) if &got == expect => {}
            Ok(got) => bad.push(format!(
                "{} engine: {label}: kernel {expect:?}, rvs {got:?}",
                sc.name
            )),
            Err(msg) => bad.push(format!("{} engine: {label}: {msg}", sc.name)),
        }
    }
    let (counts, _) = engine_counts(&e, &key, &rs_order);
    if let Some(after) = &sc.after {
        if &counts != after {
            bad.push(format!(
                "{} engine: after: kernel {after:?}, rvs {counts:?}",
                sc.name
            ));
        }
    }
    let listed = kernel_listing_after(&sc.name);
    let mut listed_sorted = listed.clone();
    listed_sorted.sort();
    let mut ours = counts.clone();
    ours.sort();
    if listed_sorted != ours {
        bad.push(format!(
            "{} engine: listing after the test: kernel {listed:?}, rvs {counts:?}",
            sc.name
        ));
    }
    bad
}

fn check(name: &str) {
    let sc = load(name);
    let mut bad = replay_direct(&sc);
    bad.extend(replay_engine(&sc));
    assert!(
        bad.is_empty(),
        "{} mismatch(es) with the real kernel:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

// ------------------------------------------------------------- scenarios

macro_rules! scenarios {
    ($($test:ident => $file:literal,)*) => {
        $(
            #[test]
            fn $test() {
                check($file);
            }
        )*

        /// Every fixture file has a test above.
        #[test]
        fn every_fixture_is_replayed() {
            let mut covered = vec![$($file),*];
            covered.sort();
            let mut files: Vec<String> = std::fs::read_dir(fixture_dir())
                .expect("fixture dir")
                .filter_map(|e| {
                    let name = e.ok()?.file_name().into_string().ok()?;
                    name.strip_suffix(".txt").map(str::to_string)
                })
                .collect();
            files.sort();
            assert_eq!(files, covered);
        }
    };
}

scenarios! {
    sh_111 => "sh-111",
    sh_211 => "sh-211",
    sh_011_weight_zero_keeps_its_buckets_and_refuses => "sh-011",
    sh_port_fixaddr => "sh-port-fixaddr",
    sh_port_both => "sh-port-both",
    mh_111 => "mh-111",
    mh_211 => "mh-211",
    mh_port_fixaddr => "mh-port-fixaddr",
    mh_port_both => "mh-port-both",
    dh_111_fwmark_keyed_on_destination => "dh-111",
    lc_111 => "lc-111",
    wlc_321 => "wlc-321",
    wlc_111 => "wlc-111",
    sed_321 => "sed-321",
    nq_321 => "nq-321",
    ovf_211_refuses_when_all_are_full => "ovf-211",
    fo_132_follows_weight_edits_and_overload => "fo-132",
}

/// The fixtures hold as many requests as `sched.sh` sends (so a truncated
/// file cannot pass silently).
#[test]
fn fixtures_are_complete() {
    for (name, n) in [
        ("sh-111", 64),
        ("mh-port-both", 64),
        ("dh-111", 32),
        ("lc-111", 12),
        ("ovf-211", 9),
        ("fo-132", 10),
    ] {
        let sc = load(name);
        let requests = sc
            .events
            .iter()
            .filter(|e| !matches!(e, Event::Edit(_)))
            .count();
        assert_eq!(requests, n, "{name}");
    }
}

// ------------------------------------------------------------- lblc / lblcr

// `tests/fixtures/refvm/sched-lblc/` (from `refvm-scenarios/sched-lblc.sh`):
// the locality schedulers on a fwmark service over four VIPs, with held and
// short requests. Lines are `N kind client vip -> rs | before: ...`, so the
// destination address (the locality key) is part of every request.

fn lblc_fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/refvm/sched-lblc")
}

/// One locality request: destination VIP, kind, kernel's pick and counters.
#[derive(Debug, Clone)]
struct LocalityRequest {
    n: u32,
    hold: bool,
    caddr: IpAddr,
    vip: IpAddr,
    expect: Outcome,
    before: Counts,
}

#[derive(Debug)]
struct LocalityScenario {
    name: String,
    rules: Vec<Rule>,
    kernel_order: Vec<(IpAddr, u16, i32)>,
    requests: Vec<LocalityRequest>,
    after: Counts,
}

fn load_locality(name: &str) -> LocalityScenario {
    let path = lblc_fixture_dir().join(format!("{name}.txt"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut sc = LocalityScenario {
        name: name.to_string(),
        rules: Vec::new(),
        kernel_order: Vec::new(),
        requests: Vec::new(),
        after: Vec::new(),
    };
    let mut section = "";
    for line in text.lines() {
        if let Some(h) = line.strip_prefix('#') {
            let h = h.trim();
            if h.starts_with("rules, in the order") {
                section = "rules";
            } else if h.starts_with("kernel order") {
                section = "order";
            } else if let Some(a) = h.strip_prefix("after: ") {
                sc.after = parse_counts(a);
            } else if section == "rules" && h.starts_with("ipvsadm ") {
                sc.rules.push(parse_rule(h));
            } else if section == "order" && h.starts_with("-> ") && !h.contains("RemoteAddress") {
                let w: Vec<&str> = h.split_whitespace().collect();
                let (addr, port) = addr_port(w[1]);
                sc.kernel_order
                    .push((addr, port, w[3].parse().expect("weight")));
            }
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        let (left, right) = line
            .split_once(" -> ")
            .unwrap_or_else(|| panic!("line {line:?}"));
        let lw: Vec<&str> = left.split_whitespace().collect();
        assert_eq!(lw.len(), 4, "{line}");
        let (rs, before) = right.split_once("| before:").expect("before:");
        sc.requests.push(LocalityRequest {
            n: lw[0].parse().expect("N"),
            hold: match lw[1] {
                "hold" => true,
                "short" => false,
                other => panic!("kind {other}"),
            },
            caddr: ip(lw[2]),
            vip: ip(lw[3]),
            expect: parse_outcome(rs.trim()),
            before: parse_counts(before),
        });
    }
    assert_eq!(sc.kernel_order.len(), 3, "{name}: kernel order");
    assert_eq!(sc.requests.len(), 18, "{name}: requests");
    assert_eq!(sc.after.len(), 3, "{name}: after");
    sc
}

/// Port the locality scenarios' VIPs listen on (fwmark 2 = 81, 3 = 82).
fn locality_vport(sc: &LocalityScenario) -> u16 {
    match sc.rules[0].service {
        ServiceKey::Fwmark { mark, .. } => 79 + mark as u16,
        ServiceKey::Addr { port, .. } => port,
    }
}

/// The scheduler alone, fed the kernel's list and counters before each
/// request (the locality table is the scheduler's own state).
fn replay_locality_direct(sc: &LocalityScenario) -> Vec<String> {
    let sched_name = sc.rules[0].scheduler.clone().expect("scheduler");
    let dests: Vec<DirectDest> = sc
        .kernel_order
        .iter()
        .map(|&(addr, port, weight)| DirectDest {
            addr,
            port,
            weight,
            last_weight: weight,
            u_threshold: 0,
        })
        .collect();
    let mut sched = new_scheduler(&sched_name, &sched_list(&dests, None)).expect("scheduler");
    let mut rng = XorShiftRng::new(1);
    let vport = locality_vport(sc);
    let mut bad = Vec::new();
    for (i, r) in sc.requests.iter().enumerate() {
        let list = sched_list(&dests, Some(&r.before));
        let mut ctx = SchedContext {
            packet: SchedPacket {
                saddr: r.caddr,
                sport: 40000 + r.n as u16,
                daddr: r.vip,
                dport: vport,
            },
            flags: sc.rules[0].flags,
            now_secs: 100 + i as u64,
            rng: &mut rng,
            lblc_expiration_secs: 86400,
            lblcr_expiration_secs: 86400,
        };
        let got = match sched.schedule(&list, &mut ctx) {
            Some(k) => Outcome::Served(list[k].addr),
            None => Outcome::Refused,
        };
        if got != r.expect {
            bad.push(format!(
                "{} direct: request {} to {}: kernel {:?}, rvs {got:?}",
                sc.name, r.n, r.vip, r.expect
            ));
        }
    }
    bad
}

/// The same requests as frames through the engine (fwmark service, NAT),
/// checking the counters before each request and at the end.
fn replay_locality_engine(sc: &LocalityScenario) -> Vec<String> {
    let mut e = Engine::new();
    for r in &sc.rules {
        e.apply(r.command())
            .unwrap_or_else(|err| panic!("{}: {r:?}: {err}", sc.name));
    }
    let key = sc.rules[0].service;
    let mark = match key {
        ServiceKey::Fwmark { mark, .. } => mark,
        ServiceKey::Addr { .. } => 0,
    };
    let rs_order: Vec<IpAddr> = sc
        .rules
        .iter()
        .filter_map(|r| r.real.map(|(a, _)| a))
        .collect();
    let meta = PacketMeta {
        fwmark: mark,
        ingress: 0,
    };
    let vport = locality_vport(sc);
    let mut bad = Vec::new();
    let mut now = 10u64;
    for r in &sc.requests {
        now += 1;
        let (counts, _) = engine_counts(&e, &key, &rs_order);
        if counts != r.before {
            bad.push(format!(
                "{} engine: before request {}: kernel {:?}, rvs {counts:?}",
                sc.name, r.n, r.before
            ));
        }
        let client = sa(r.caddr, 40000 + r.n as u16);
        match connection(&mut e, meta, client, sa(r.vip, vport), r.hold, t(now)) {
            Ok(got) if got == r.expect => {}
            Ok(got) => bad.push(format!(
                "{} engine: request {} to {}: kernel {:?}, rvs {got:?}",
                sc.name, r.n, r.vip, r.expect
            )),
            Err(msg) => bad.push(format!("{} engine: request {}: {msg}", sc.name, r.n)),
        }
    }
    let (counts, _) = engine_counts(&e, &key, &rs_order);
    if counts != sc.after {
        bad.push(format!(
            "{} engine: after: kernel {:?}, rvs {counts:?}",
            sc.name, sc.after
        ));
    }
    bad
}

fn check_locality(name: &str) {
    let sc = load_locality(name);
    let mut bad = replay_locality_direct(&sc);
    bad.extend(replay_locality_engine(&sc));
    assert!(
        bad.is_empty(),
        "{} mismatch(es) with the real kernel:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn lblc_211_fwmark_over_four_vips() {
    check_locality("lblc-211");
}

#[test]
fn lblcr_111_fwmark_over_four_vips() {
    check_locality("lblcr-111");
}
