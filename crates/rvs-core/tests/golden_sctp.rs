//! SCTP golden packet fixtures (`tests/fixtures/golden/sctp_*.json`, the same
//! format as `golden.rs`, which replays them too): an SCTP association
//! through NAT, walked chunk by chunk, and the cases that are not scheduled.
//!
//! Besides the verdict and the output frame, each step may carry
//! * `conns`: the connection table as `ipvsadm -L -c -n` prints it
//!   (`SCTP 00:04 INIT1 client virtual destination`), expiry included;
//! * `dests`: `real:port active/inactive` for every real server.
//!
//! Expected values were derived by hand from Linux 6.1's
//! `ip_vs_proto_sctp.c` (the `sctp_states` table, INPUT = client -> server,
//! OUTPUT = server -> client; `sctp_timeouts`; the rule that a connection
//! is active only in ESTABLISHED; `sctp_conn_schedule` schedules only on an
//! INIT unless `sloppy_sctp`) and RFC 9260 (CRC32c over the whole packet
//! with the checksum field zero, stored little-endian). The rewritten port
//! changes the CRC32c, which is recomputed in full (RFC 1624 arithmetic
//! does not apply to it). Frames, IPv4 header checksums and CRC32c are
//! computed here, independently of rvs-wire. This walk has the client
//! shut down; the real-kernel capture in `packets_refvm.rs` (mode `sctp`)
//! has the real server shut down and ends in the same CLOSED state.
//!
//! `write_sctp_golden_fixtures` (ignored; `RVS_WRITE_GOLDEN=1 cargo test -p
//! rvs-core --test golden_sctp -- --ignored`) rewrites the files from the
//! construction below; `replay_sctp_golden_fixtures` checks them.

use rvs_core::conn::EngineTime;
use rvs_core::{
    Command, DestConfig, Engine, FwdMethod, PacketMeta, Protocol, ServiceConfig, ServiceKey,
    Verdict,
};
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

const VIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
const CIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const RS1: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 11);
const RS2: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 12);
const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const DIRECTOR_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
const RS_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x11];
const VPORT: u16 = 3868;
const RPORT: u16 = 3869;
const CPORT: u16 = 40000;
/// Verification tags of the two ends.
const CTAG: u32 = 0x1111_2222;
const STAG: u32 = 0x3333_4444;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden")
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn from_hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

// ------------------------------------------------------------- construction

/// CRC32c (Castagnoli, reflected polynomial 0x82F63B78), bit by bit.
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

#[test]
fn crc32c_check_value() {
    // The standard check value of CRC-32C over "123456789".
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
}

/// RFC 1071 checksum.
fn csum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in data.chunks(2) {
        sum += u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// One chunk: type, flags, value (padded to 4 bytes; the length field
/// excludes the padding).
fn chunk(t: u8, flags: u8, value: &[u8]) -> Vec<u8> {
    let len = u16::try_from(4 + value.len()).expect("len");
    let mut c = vec![t, flags];
    c.extend_from_slice(&len.to_be_bytes());
    c.extend_from_slice(value);
    while c.len() % 4 != 0 {
        c.push(0);
    }
    c
}

fn be32(v: u32) -> [u8; 4] {
    v.to_be_bytes()
}

/// An SCTP packet with a correct CRC32c.
fn sctp(sport: u16, dport: u16, vtag: u32, chunks: &[Vec<u8>]) -> Vec<u8> {
    let mut p = sport.to_be_bytes().to_vec();
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&be32(vtag));
    p.extend_from_slice(&[0; 4]);
    for c in chunks {
        p.extend_from_slice(c);
    }
    let crc = crc32c(&p);
    p[8..12].copy_from_slice(&crc.to_le_bytes());
    p
}

/// Ethernet + IPv4 (no options, DF, id `ident`) + payload, protocol 132.
fn frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    ident: u16,
    payload: &[u8],
) -> Vec<u8> {
    let total = u16::try_from(20 + payload.len()).expect("len");
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&ident.to_be_bytes());
    h.extend_from_slice(&[0x40, 0, ttl, 132, 0, 0]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    let c = csum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    let mut f = dst_mac.to_vec();
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&h);
    f.extend_from_slice(payload);
    f
}

fn init(tag: u32, tsn: u32) -> Vec<u8> {
    let mut v = be32(tag).to_vec();
    v.extend_from_slice(&be32(65536)); // a_rwnd
    v.extend_from_slice(&[0, 10, 0, 10]); // outbound / inbound streams
    v.extend_from_slice(&be32(tsn));
    v
}

fn init_ack(tag: u32, tsn: u32) -> Vec<u8> {
    let mut v = init(tag, tsn);
    // State Cookie parameter (type 7), 8 bytes of cookie.
    v.extend_from_slice(&[0, 7, 0, 12]);
    v.extend_from_slice(b"cookie!!");
    chunk(2, 0, &v)
}

fn data(tsn: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = be32(tsn).to_vec();
    v.extend_from_slice(&[0, 0, 0, 0]); // stream 0, stream sequence 0
    v.extend_from_slice(&be32(0)); // payload protocol id
    v.extend_from_slice(payload);
    chunk(0, 0x03, &v)
}

fn sack(cum_tsn: u32) -> Vec<u8> {
    let mut v = be32(cum_tsn).to_vec();
    v.extend_from_slice(&be32(65536));
    v.extend_from_slice(&[0, 0, 0, 0]);
    chunk(3, 0, &v)
}

struct Walk {
    steps: Vec<Value>,
    ident: u16,
}

impl Walk {
    /// Client -> VIP: in the frame the client sends, out the NAT-rewritten one.
    fn client(&mut self, t_ms: u64, vtag: u32, chunks: &[Vec<u8>], verdict: &str) -> Vec<u8> {
        self.ident += 1;
        let input = frame(
            DIRECTOR_MAC,
            CLIENT_MAC,
            CIP,
            VIP,
            64,
            self.ident,
            &sctp(CPORT, VPORT, vtag, chunks),
        );
        let output = frame(
            DIRECTOR_MAC,
            CLIENT_MAC,
            CIP,
            RS1,
            63,
            self.ident,
            &sctp(CPORT, RPORT, vtag, chunks),
        );
        let out = if verdict == "pass" {
            input.clone()
        } else {
            output
        };
        self.steps.push(json!({
            "time_ms": t_ms,
            "fwmark": 0,
            "input": to_hex(&input),
            "verdict": verdict,
            "output": to_hex(&out),
        }));
        input
    }

    /// RS -> client: source RS1:3869 becomes VIP:3868.
    fn server(&mut self, t_ms: u64, vtag: u32, chunks: &[Vec<u8>]) {
        self.ident += 1;
        let input = frame(
            DIRECTOR_MAC,
            RS_MAC,
            RS1,
            CIP,
            64,
            self.ident,
            &sctp(RPORT, CPORT, vtag, chunks),
        );
        let output = frame(
            DIRECTOR_MAC,
            RS_MAC,
            VIP,
            CIP,
            63,
            self.ident,
            &sctp(VPORT, CPORT, vtag, chunks),
        );
        self.steps.push(json!({
            "time_ms": t_ms,
            "fwmark": 0,
            "input": to_hex(&input),
            "verdict": format!("forward routed {CIP}"),
            "output": to_hex(&output),
        }));
    }

    /// Expected table after the last step: (state, expiry seconds), and
    /// RS1's active/inactive counts.
    fn expect(&mut self, state: &str, secs: u64, active: u32, inactive: u32) {
        let last = self.steps.last_mut().expect("a step");
        last["conns"] = json!([format!(
            "SCTP {:02}:{:02} {state} {CIP}:{CPORT} {VIP}:{VPORT} {RS1}:{RPORT}",
            secs / 60,
            secs % 60
        )]);
        last["dests"] = json!([
            format!("{RS1}:{RPORT} {active}/{inactive}"),
            format!("{RS2}:{RPORT} 0/0"),
        ]);
    }
}

fn service() -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Sctp,
        addr: IpAddr::V4(VIP),
        port: VPORT,
    }
}

fn setup_commands() -> Vec<Command> {
    let mut c = ServiceConfig::new(service());
    c.scheduler = "rr".into();
    let mut cmds = vec![Command::AddService(c)];
    // Added RS2 first, RS1 second: RS1 is at the head of the list, so rr
    // picks it first.
    for rs in [RS2, RS1] {
        let mut d = DestConfig::new(IpAddr::V4(rs), RPORT);
        d.fwd = FwdMethod::Masq;
        cmds.push(Command::AddDest {
            service: service(),
            dest: d,
        });
    }
    cmds
}

fn cases() -> Vec<(String, Value)> {
    let fwd_rs1 = format!("forward routed {RS1}");
    let mut w = Walk {
        steps: Vec::new(),
        ident: 0,
    };
    // Timeouts (s): INIT1 4, the handshake/shutdown states 61,
    // ESTABLISHED 900, CLOSED 61.
    w.client(1000, 0, &[chunk(1, 0, &init(CTAG, 100))], &fwd_rs1);
    w.expect("INIT1", 4, 0, 1); // INPUT i: NONE -> INIT1, inactive
    w.server(1010, CTAG, &[init_ack(STAG, 500)]);
    w.expect("C-SENT", 61, 0, 1); // OUTPUT i_a: INIT1 -> C-SENT
    w.client(1020, STAG, &[chunk(10, 0, b"cookie!!")], &fwd_rs1);
    w.expect("C-REPLIED", 61, 0, 1); // INPUT c_e: C-SENT -> C-REPLIED
    w.server(1030, CTAG, &[chunk(11, 0, &[])]);
    w.expect("ESTABLISHED", 900, 1, 0); // OUTPUT c_a: -> ESTABLISHED, active
    w.client(2000, STAG, &[data(100, b"ping")], &fwd_rs1);
    w.expect("ESTABLISHED", 900, 1, 0);
    w.server(2010, CTAG, &[sack(100)]);
    w.expect("ESTABLISHED", 900, 1, 0); // SACK is a "data" event
    w.client(3000, STAG, &[chunk(7, 0, &be32(500))], &fwd_rs1);
    w.expect("S-RECEIVED", 61, 0, 1); // INPUT s: ES -> S-RECEIVED, inactive
    w.server(3010, CTAG, &[chunk(8, 0, &[])]);
    w.expect("S-ACK-SENT", 61, 0, 1); // OUTPUT s_a: S-RECEIVED -> S-ACK-SENT
    w.client(3020, STAG, &[chunk(14, 0, &[])], &fwd_rs1);
    w.expect("CLOSED", 61, 0, 1); // INPUT s_c: S-ACK-SENT -> CLOSED
    let walk = w.steps;

    // Not an INIT: not scheduled, the host gets it (sloppy_sctp is 0).
    let mut n = Walk {
        steps: Vec::new(),
        ident: 0x100,
    };
    n.client(1000, STAG, &[data(7, b"late")], "pass");
    n.client(1100, STAG, &[chunk(10, 0, b"cookie!!")], "pass");
    // An INIT afterwards is scheduled as usual.
    n.client(1200, 0, &[chunk(1, 0, &init(CTAG, 100))], &fwd_rs1);
    n.expect("INIT1", 4, 0, 1);
    let not_init = n.steps;

    let setup = json!({ "commands": setup_commands() });
    vec![
        (
            "sctp_nat_walk".to_string(),
            json!({
                "name": "sctp_nat_walk",
                "description": "SCTP through NAT (VIP:3868 -> RS1:3869): INIT scheduled, INIT-ACK, COOKIE-ECHO, COOKIE-ACK, DATA, SACK, SHUTDOWN, SHUTDOWN-ACK, SHUTDOWN-COMPLETE; ports rewritten with CRC32c recomputed, TTL 63; -L -c state names and timeouts after each chunk",
                "setup": setup,
                "steps": walk,
            }),
        ),
        (
            "sctp_not_init_passes".to_string(),
            json!({
                "name": "sctp_not_init_passes",
                "description": "SCTP DATA and COOKIE-ECHO without a connection are not scheduled (only INIT is, sloppy_sctp 0): passed to the host; a following INIT is scheduled",
                "setup": setup,
                "steps": not_init,
            }),
        ),
    ]
}

#[test]
#[ignore]
fn write_sctp_golden_fixtures() {
    if std::env::var("RVS_WRITE_GOLDEN").is_err() {
        return;
    }
    for (name, value) in cases() {
        let text = serde_json::to_string_pretty(&value).expect("json") + "\n";
        std::fs::write(fixture_dir().join(format!("{name}.json")), text).expect("write");
    }
}

// ------------------------------------------------------------- replay

fn verdict_text(v: &Verdict) -> String {
    match v {
        Verdict::Pass => "pass".into(),
        Verdict::Local => "local".into(),
        Verdict::Forward(tx) => match tx.route {
            rvs_core::Route::Routed { next_hop } => format!("forward routed {next_hop}"),
            rvs_core::Route::Direct { next_hop } => format!("forward direct {next_hop}"),
        },
        Verdict::Drop { reason, .. } => format!("drop {reason:?}"),
    }
}

fn conn_rows(e: &Engine, now: EngineTime) -> Vec<String> {
    let mut rows: Vec<String> = e
        .connections_at(now)
        .iter()
        .map(|c| {
            let s = c.expires_ms.div_ceil(1000);
            format!(
                "{} {:02}:{:02} {} {}:{} {}:{} {}:{}",
                c.protocol.name(),
                s / 60,
                s % 60,
                c.state,
                c.caddr,
                c.cport,
                c.vaddr,
                c.vport,
                c.daddr,
                c.dport
            )
        })
        .collect();
    rows.sort();
    rows
}

fn dest_rows(e: &Engine) -> Vec<String> {
    let mut rows = Vec::new();
    for s in e.snapshot().services {
        for d in s.dests {
            rows.push(format!(
                "{}:{} {}/{}",
                d.config.addr, d.config.port, d.active, d.inactive
            ));
        }
    }
    rows.sort();
    rows
}

#[test]
fn replay_sctp_golden_fixtures() {
    let files = ["sctp_nat_walk", "sctp_not_init_passes"];
    for name in files {
        let path = fixture_dir().join(format!("{name}.json"));
        let text = std::fs::read_to_string(&path).expect("fixture");
        let case: Value = serde_json::from_str(&text).expect("json");
        let mut e = Engine::new();
        let cmds: Vec<Command> =
            serde_json::from_value(case["setup"]["commands"].clone()).expect("commands");
        e.apply_all(cmds).expect("setup");
        for (i, step) in case["steps"].as_array().expect("steps").iter().enumerate() {
            let label = format!("{name} step {i}");
            let mut f = from_hex(step["input"].as_str().expect("input"));
            let now = EngineTime::from_millis(step["time_ms"].as_u64().expect("time"));
            let v = e.process(&mut f, PacketMeta::default(), now);
            assert_eq!(
                verdict_text(&v),
                step["verdict"].as_str().expect("verdict"),
                "{label}"
            );
            assert_eq!(
                to_hex(&f),
                step["output"].as_str().expect("output"),
                "{label}: frame"
            );
            if let Some(conns) = step.get("conns") {
                let want: Vec<String> = serde_json::from_value(conns.clone()).expect("conns");
                assert_eq!(conn_rows(&e, now), want, "{label}: -L -c");
            }
            if let Some(dests) = step.get("dests") {
                let want: Vec<String> = serde_json::from_value(dests.clone()).expect("dests");
                assert_eq!(dest_rows(&e), want, "{label}: active/inactive");
            }
        }
    }
}

/// The fixtures on disk are what the construction above produces (so the
/// files cannot drift from the documented derivation).
#[test]
fn sctp_fixtures_match_their_construction() {
    for (name, value) in cases() {
        let text = std::fs::read_to_string(fixture_dir().join(format!("{name}.json")))
            .expect("fixture (write with RVS_WRITE_GOLDEN=1)");
        let on_disk: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(on_disk, value, "{name}");
    }
}

/// The rewrite needs a full CRC32c: the one in the NAT-rewritten INIT
/// differs from the client's, and patching only the port bytes while
/// keeping the old CRC would be rejected by the real server.
#[test]
fn rewritten_init_has_a_new_crc32c() {
    let before = sctp(CPORT, VPORT, 0, &[chunk(1, 0, &init(CTAG, 100))]);
    let after = sctp(CPORT, RPORT, 0, &[chunk(1, 0, &init(CTAG, 100))]);
    assert_ne!(before[8..12], after[8..12]);
    let mut zeroed = after.clone();
    zeroed[8..12].copy_from_slice(&[0; 4]);
    assert_eq!(crc32c(&zeroed).to_le_bytes(), after[8..12]);
}
