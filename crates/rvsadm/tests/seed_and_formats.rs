//! Seed walkthrough listings (refvm seed-nat / seed-tun transcripts, tables
//! rebuilt by hand with the counters the captures show) and the reference's
//! number and connection formats.

mod common;

use common::*;
use rvs_core::model::*;
use rvs_core::snapshot::{ConnProtocol, ConnSnapshot, TableSnapshot};
use rvsadm::{FileResolver, NumericResolver};

fn nat_table() -> TableSnapshot {
    let mut s = svc(tcp("198.51.100.10", 80), "rr");
    s.config.persistent = Some(600);
    s.stats = Counters {
        conns: 4,
        inpkts: 24,
        outpkts: 24,
        inbytes: 1588,
        outbytes: 2144,
    };
    s.rates = Rates {
        cps: 0,
        inpps: 2,
        outpps: 2,
        inbps: 161,
        outbps: 218,
    };
    let mut d1 = dest("203.0.113.11", 80, FwdMethod::Masq, 3);
    d1.inactive = 11;
    d1.stats = Counters {
        conns: 3,
        inpkts: 18,
        outpkts: 18,
        inbytes: 1191,
        outbytes: 1608,
    };
    d1.rates = Rates {
        cps: 0,
        inpps: 2,
        outpps: 2,
        inbps: 124,
        outbps: 167,
    };
    let mut d2 = dest("203.0.113.12", 80, FwdMethod::Masq, 1);
    d2.inactive = 11;
    d2.persist = 1;
    d2.stats = Counters {
        conns: 1,
        inpkts: 6,
        outpkts: 6,
        inbytes: 397,
        outbytes: 536,
    };
    d2.rates = Rates {
        cps: 0,
        inpps: 1,
        outpps: 1,
        inbps: 37,
        outbps: 50,
    };
    s.dests = vec![d2, d1];
    TableSnapshot {
        conn_table_size: 4096,
        services: vec![s],
    }
}

fn seed_nat(args: &[&str], resolver: &dyn rvsadm::Resolver) -> String {
    let mut d = FakeDirector::new(nat_table());
    let (out, err, rc) = run(args, &mut d, "", resolver);
    assert_eq!((err.as_str(), rc), ("", 0));
    out
}

#[test]
fn seed_nat_stats_rate_pconn_names() {
    assert_eq!(
        seed_nat(&["-L", "-n", "--stats"], &NumericResolver),
        "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  198.51.100.10:80                    4       24       24     1588     2144
  -> 203.0.113.11:80                     3       18       18     1191     1608
  -> 203.0.113.12:80                     1        6        6      397      536
"
    );
    assert_eq!(
        seed_nat(&["-Ln", "--rate"], &NumericResolver),
        "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS
  -> RemoteAddress:Port
TCP  198.51.100.10:80                    0        2        2      161      218
  -> 203.0.113.11:80                     0        2        2      124      167
  -> 203.0.113.12:80                     0        1        1       37       50
"
    );
    assert_eq!(
        seed_nat(&["-L", "-n", "--persistent-conn"], &NumericResolver),
        "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn 
  -> RemoteAddress:Port
TCP  198.51.100.10:80 rr persistent 600
  -> 203.0.113.11:80              3         0           0          11        
  -> 203.0.113.12:80              1         1           0          11        
"
    );
    let names = FileResolver::from_texts("", "http 80/tcp www\n");
    assert_eq!(
        seed_nat(&["-L"], &names),
        "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  198.51.100.10:http rr persistent 600
  -> 203.0.113.11:http            Masq    3      0          11        
  -> 203.0.113.12:http            Masq    1      0          11        
"
    );
    assert_eq!(
        seed_nat(&["-S"], &names),
        "-A -t 198.51.100.10:http -s rr -p 600
-a -t 198.51.100.10:http -r 203.0.113.11:http -m -w 3
-a -t 198.51.100.10:http -r 203.0.113.12:http -m -w 1
"
    );
    assert_eq!(
        seed_nat(&["-L", "-n", "-t", "198.51.100.10:80"], &NumericResolver),
        "Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  198.51.100.10:80 rr persistent 600
  -> 203.0.113.11:80              Masq    3      0          11        
  -> 203.0.113.12:80              Masq    1      0          11        
"
    );
    assert_eq!(
        seed_nat(&["--version"], &NumericResolver),
        "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\n"
    );
}

#[test]
fn seed_tun_info_and_save() {
    let mut s = svc(tcp("198.51.100.10", 80), "rr");
    s.dests = vec![
        dest("198.51.100.12", 80, IPIP, 1),
        dest("198.51.100.11", 80, IPIP, 1),
    ];
    let mut d = FakeDirector::new(TableSnapshot {
        conn_table_size: 4096,
        services: vec![s],
    });
    let (out, _, _) = run(&["-L", "-n", "--tun-info"], &mut d, "", &NumericResolver);
    assert_eq!(
        out,
        "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn
TCP  198.51.100.10:80 rr
  -> 198.51.100.11:80             Tunnel  ipip          1      0          0         
  -> 198.51.100.12:80             Tunnel  ipip          1      0          0         
"
    );
    let (out, _, _) = run(&["-S", "-n"], &mut d, "", &NumericResolver);
    assert_eq!(
        out,
        "-A -t 198.51.100.10:80 -s rr
-a -t 198.51.100.10:80 -r 198.51.100.11:80 -i -w 1 --tun-type ipip
-a -t 198.51.100.10:80 -r 198.51.100.12:80 -i -w 1 --tun-type ipip
"
    );
}

#[test]
fn large_numbers_abbreviate_and_exact_drifts() {
    // Reference §1.4 samples.
    let mut s = svc(tcp("207.175.44.110", 80), "wlc");
    s.stats = Counters {
        conns: 123_456_789,
        inpkts: 98_765,
        outpkts: 1_234_567_890,
        inbytes: 123_456_789_012,
        outbytes: 98_765_432_109_876_543,
    };
    s.rates = Rates {
        cps: 12,
        inpps: 3456,
        outpps: 4567,
        inbps: 123_456_789,
        outbps: 1_000_000_000,
    };
    let mut d = dest("192.168.10.1", 8080, FwdMethod::Masq, 1);
    d.stats = Counters {
        conns: 5,
        inpkts: 30,
        outpkts: 20,
        inbytes: 1800,
        outbytes: 100_000_000_000,
    };
    d.rates = Rates {
        cps: 1,
        inpps: 2,
        outpps: 3,
        inbps: 99_999_999,
        outbps: 100_000_000_000,
    };
    s.dests = vec![d];
    let mut fd = FakeDirector::new(TableSnapshot {
        conn_table_size: 4096,
        services: vec![s],
    });
    let (out, _, _) = run(&["-L", "-n", "--stats"], &mut fd, "", &NumericResolver);
    assert_eq!(
        out.lines().skip(3).collect::<Vec<_>>(),
        vec![
            "TCP  207.175.44.110:80             123456K    98765    1234M     123G   98765T",
            "  -> 192.168.10.1:8080                   5       30       20     1800     100G",
        ]
    );
    let (out, _, _) = run(&["-L", "-n", "--rate"], &mut fd, "", &NumericResolver);
    assert_eq!(
        out.lines().skip(3).collect::<Vec<_>>(),
        vec![
            "TCP  207.175.44.110:80                  12     3456     4567  123456K    1000M",
            "  -> 192.168.10.1:8080                   1        2        3 99999999     100G",
        ]
    );
    let (out, _, _) = run(
        &["-L", "-n", "--stats", "--exact"],
        &mut fd,
        "",
        &NumericResolver,
    );
    assert_eq!(
        out.lines().nth(3),
        Some("TCP  207.175.44.110:80            123456789    98765 1234567890 123456789012 98765432109876543")
    );
}

#[test]
fn service_line_variants_and_ipv6_fwmark() {
    let mut a = svc(tcp("207.175.44.110", 443), "sh");
    a.config.flags = SchedFlags(SchedFlags::SCHED1 | SchedFlags::SCHED2);
    a.config.persistent = Some(360);
    a.config.netmask = Netmask::V4("255.255.255.0".parse().expect("mask"));
    a.dests = vec![
        dest("192.168.10.3", 443, FwdMethod::Route, 2),
        dest("127.0.0.1", 443, FwdMethod::Local, 1),
    ];
    let mut b = svc(fwm(2, Family::V6), "lc");
    b.config.persistent = Some(300);
    b.config.netmask = Netmask::V6(64);
    b.config.pe = Some("sip".into());
    let mut c = svc(udp("207.175.44.110", 53), "rr");
    c.config.ops = true;
    let mut fd = FakeDirector::new(TableSnapshot {
        conn_table_size: 65536,
        services: vec![b, c, a],
    });
    let (out, _, _) = run(&["-L", "-n"], &mut fd, "", &NumericResolver);
    assert_eq!(
        out,
        "IP Virtual Server version 1.2.1 (size=65536)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  207.175.44.110:443 sh (sh-fallback,sh-port) persistent 360 mask 255.255.255.0
  -> 127.0.0.1:443                Local   1      0          0         
  -> 192.168.10.3:443             Route   2      0          0         
UDP  207.175.44.110:53 rr ops
FWM  2 IPv6 lc persistent 300 mask 64 pe sip
"
    );
    let (out, _, _) = run(&["-S", "-n"], &mut fd, "", &NumericResolver);
    assert_eq!(
        out,
        "-A -t 207.175.44.110:443 -s sh -p 360 -M 255.255.255.0 -b sh-fallback,sh-port
-a -t 207.175.44.110:443 -r 127.0.0.1:443 -g -w 1
-a -t 207.175.44.110:443 -r 192.168.10.3:443 -g -w 2
-A -u 207.175.44.110:53 -s rr -o
-A -f 2 -6 -s lc -p 300 -M 64 --pe sip
"
    );
}

#[test]
fn sort_is_numeric_not_ipvsadm_overflowing() {
    // ipvsadm 1.31 puts 192.168.0.1 before 10.0.0.1 (signed overflow);
    // rvsadm sorts addresses as unsigned numbers.
    let mut s = svc(tcp("192.168.0.1", 80), "rr");
    s.dests = vec![
        dest("192.168.0.20", 80, FwdMethod::Masq, 1),
        dest("10.0.0.20", 80, FwdMethod::Masq, 1),
    ];
    let mut fd = FakeDirector::new(TableSnapshot {
        conn_table_size: 4096,
        services: vec![
            svc(tcp("207.175.44.110", 443), "rr"),
            s,
            svc(tcp("10.0.0.1", 80), "rr"),
        ],
    });
    let (out, _, _) = run(&["-L", "-n"], &mut fd, "", &NumericResolver);
    let lines: Vec<&str> = out.lines().skip(3).map(str::trim_end).collect();
    assert_eq!(
        lines,
        vec![
            "TCP  10.0.0.1:80 rr",
            "TCP  192.168.0.1:80 rr",
            "  -> 10.0.0.20:80                 Masq    1      0          0",
            "  -> 192.168.0.20:80              Masq    1      0          0",
            "TCP  207.175.44.110:443 rr",
        ]
    );
}

fn conn(
    p: ConnProtocol,
    c: (&str, u16),
    v: (&str, u16),
    d: (&str, u16),
    state: &str,
    ms: u64,
) -> ConnSnapshot {
    ConnSnapshot {
        protocol: p,
        caddr: ip(c.0),
        cport: c.1,
        vaddr: ip(v.0),
        vport: v.1,
        daddr: ip(d.0),
        dport: d.1,
        state: state.into(),
        expires_ms: ms,
        is_template: c.1 == 0,
        pe_name: None,
        pe_data: None,
    }
}

#[test]
fn connection_listing_formats() {
    let mut fd = FakeDirector::empty();
    fd.conns = vec![
        conn(
            ConnProtocol::Tcp,
            ("198.51.100.2", 47606),
            ("198.51.100.10", 80),
            ("203.0.113.12", 80),
            "TIME_WAIT",
            118_900,
        ),
        conn(
            ConnProtocol::Tcp,
            ("198.51.100.2", 0),
            ("198.51.100.10", 80),
            ("203.0.113.12", 80),
            "ASSURED",
            599_999,
        ),
        conn(
            ConnProtocol::Ip,
            ("10.0.0.4", 0),
            ("0.0.0.1", 0),
            ("10.1.0.1", 0),
            "NONE",
            299_000,
        ),
        conn(
            ConnProtocol::Tcp,
            ("2001:db8::99", 50000),
            ("2001:db8::80", 80),
            ("2001:db8::a0a0", 80),
            "SYN_RECV",
            59_000,
        ),
    ];
    let mut sip = conn(
        ConnProtocol::Udp,
        ("10.0.0.5", 5060),
        ("207.175.44.110", 5060),
        ("192.168.10.5", 5060),
        "UDP",
        3_600_000,
    );
    sip.pe_name = Some("sip".into());
    sip.pe_data = Some("call-1@example".into());
    fd.conns.push(sip);
    let (out, err, rc) = run(&["-Lnc"], &mut fd, "", &NumericResolver);
    assert_eq!((err.as_str(), rc), ("", 0));
    assert_eq!(
        out,
        "IPVS connection entries
pro expire state       source             virtual            destination
TCP 01:58  TIME_WAIT   198.51.100.2:47606 198.51.100.10:80   203.0.113.12:80
TCP 09:59  ASSURED     198.51.100.2:0     198.51.100.10:80   203.0.113.12:80
IP  04:59  NONE        10.0.0.4:0         0.0.0.1:0          10.1.0.1:0
TCP 00:59  SYN_RECV    [2001:db8::99]:50000 [2001:db8::80]:80  [2001:db8::a0a0]:80
UDP 60:00  UDP         10.0.0.5:5060      207.175.44.110:5060 192.168.10.5:5060
"
    );
    let (out, _, _) = run(
        &["-L", "-c", "-n", "--persistent-conn"],
        &mut fd,
        "",
        &NumericResolver,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[1],
        "pro expire state       source             virtual            destination        pe name          pe_data"
    );
    assert_eq!(
        lines[2],
        "TCP 01:58  TIME_WAIT   198.51.100.2:47606 198.51.100.10:80   203.0.113.12:80"
    );
    assert_eq!(
        lines[6],
        "UDP 60:00  UDP         10.0.0.5:5060      207.175.44.110:5060 192.168.10.5:5060 sip                call-1@example"
    );
}

#[test]
fn json_listings_are_parseable_and_sorted() {
    let mut fd = FakeDirector::new(nat_table());
    let (out, _, rc) = run(&["-L", "--json"], &mut fd, "", &NumericResolver);
    assert_eq!(rc, 0);
    let t: TableSnapshot = serde_json::from_str(&out).expect("table json");
    assert_eq!(t.services[0].dests[0].config.addr, ip("203.0.113.11"));
    let (out, _, _) = run(
        &["-L", "--timeout", "--json"],
        &mut fd,
        "",
        &NumericResolver,
    );
    assert_eq!(
        out,
        "{\n  \"tcp\": 900,\n  \"tcpfin\": 120,\n  \"udp\": 300\n}\n"
    );
    let (_, err, rc) = run(
        &["-L", "--json", "-t", "1.2.3.4:80"],
        &mut fd,
        "",
        &NumericResolver,
    );
    assert_eq!((err.as_str(), rc), ("No such service\n", 1));
    let (_, err, rc) = run(&["-S", "--json"], &mut fd, "", &NumericResolver);
    assert_eq!(
        (err.as_str(), rc),
        ("Illegal 'json' option with the 'save' command\n", 2)
    );
}
