//! argv -> Command construction, restore streams, and the save -> restore
//! round trip (property test over generated tables).

mod common;

use common::*;
use proptest::prelude::*;
use rvs_api::DirectorError;
use rvs_core::model::*;
use rvs_core::snapshot::{TableSnapshot, Timeouts};
use rvs_core::{ApplyError, Command};
use rvsadm::restore::{parse_restore, tokenize};
use rvsadm::{parse_args, FileResolver, Invocation, NumericResolver};

fn parse(args: &[&str]) -> Result<Invocation, rvsadm::CliError> {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    parse_args(&args, "ipvsadm", &NumericResolver)
}

fn one(args: &[&str]) -> Command {
    match parse(args) {
        Ok(Invocation::Apply(mut v)) if v.len() == 1 => v.remove(0),
        other => panic!("{args:?} -> {other:?}"),
    }
}

#[test]
fn add_service_full_config() {
    let mut want = ServiceConfig::new(tcp("192.0.2.1", 443));
    want.scheduler = "sh".into();
    want.flags = SchedFlags(SchedFlags::SCHED1 | SchedFlags::SCHED2);
    want.persistent = Some(360);
    want.netmask = Netmask::V4("255.255.255.0".parse().expect("mask"));
    want.pe = Some("sip".into());
    assert_eq!(
        one(&[
            "-A",
            "-t",
            "192.0.2.1:443",
            "-s",
            "sh",
            "-b",
            "sh-fallback,sh-port",
            "-p",
            "-M",
            "255.255.255.0",
            "--pe",
            "sip"
        ]),
        Command::AddService(want)
    );
    // bundled -p600 and --persistent=600
    let mut p600 = ServiceConfig::new(tcp("198.51.100.10", 80));
    p600.scheduler = "rr".into();
    p600.persistent = Some(600);
    assert_eq!(
        one(&["-Ep600", "-t", "198.51.100.10:80", "-s", "rr"]),
        Command::EditService(p600.clone())
    );
    assert_eq!(
        one(&[
            "--edit-service",
            "--tcp-service=198.51.100.10:80",
            "--scheduler=rr",
            "--persistent=600"
        ]),
        Command::EditService(p600)
    );
    // inet_aton forms and octal
    let mut a = ServiceConfig::new(udp("198.51.100.16", 53));
    a.ops = true;
    assert_eq!(
        one(&["-A", "-u", "198.51.100.020:53", "-o"]),
        Command::AddService(a)
    );
    assert_eq!(
        one(&["-D", "-t", "198.51.25615:80"]),
        Command::DeleteService(tcp("198.51.100.15", 80))
    );
    // IPv6 fwmark with prefix, -6 resets the mask before -M
    let mut f = ServiceConfig::new(fwm(2, Family::V6));
    f.scheduler = "lc".into();
    f.persistent = Some(120);
    f.netmask = Netmask::V6(64);
    assert_eq!(
        one(&["-A", "-f", "2", "-6", "-s", "lc", "-p", "120", "-M", "64"]),
        Command::AddService(f)
    );
    // IPv6 service gets a /128 default mask
    assert_eq!(
        one(&["-A", "-t", "[2001:db8::1]:80"]),
        Command::AddService(ServiceConfig::new(tcp("2001:db8::1", 80)))
    );
}

#[test]
fn dest_commands_defaults_and_port_rules() {
    let svc_key = tcp("192.0.2.1", 80);
    // DR forces the service port; NAT keeps the given one.
    let mut dr = DestConfig::new(ip("203.0.113.15"), 80);
    dr.weight = 1;
    assert_eq!(
        one(&["-a", "-t", "192.0.2.1:80", "-r", "203.0.113.15:8080", "-g"]),
        Command::AddDest {
            service: svc_key,
            dest: dr
        }
    );
    let mut nat = DestConfig::new(ip("203.0.113.16"), 8080);
    nat.fwd = FwdMethod::Masq;
    nat.weight = 0;
    nat.u_threshold = 100;
    nat.l_threshold = 50;
    assert_eq!(
        one(&[
            "-a",
            "-t",
            "192.0.2.1:80",
            "-r",
            "203.0.113.16:8080",
            "-m",
            "-w",
            "0",
            "-x",
            "100",
            "-y",
            "50"
        ]),
        Command::AddDest {
            service: svc_key,
            dest: nat
        }
    );
    // -e without a method is Route with weight 1 (a full replacement)
    assert_eq!(
        one(&["-e", "-t", "192.0.2.1:80", "-r", "203.0.113.11", "-x", "5"]),
        Command::EditDest {
            service: svc_key,
            dest: DestConfig {
                u_threshold: 5,
                ..DestConfig::new(ip("203.0.113.11"), 80)
            }
        }
    );
    // fwmark: port kept, v6 tunnel server allowed
    let mut gue = DestConfig::new(ip("203.0.113.21"), 0);
    gue.fwd = FwdMethod::Tunnel {
        kind: TunnelKind::Gue { port: 6080 },
        csum: TunnelCsum::Csum,
    };
    assert_eq!(
        one(&[
            "-a",
            "-f",
            "1",
            "-r",
            "203.0.113.21",
            "-i",
            "--tun-type",
            "gue",
            "--tun-port",
            "6080",
            "--tun-csum"
        ]),
        Command::AddDest {
            service: fwm(1, Family::V4),
            dest: gue
        }
    );
    let mut v6 = DestConfig::new(ip("2001:db8::25"), 0);
    v6.fwd = IPIP;
    assert_eq!(
        one(&["-a", "-f", "1", "-r", "2001:db8::25", "-i"]),
        Command::AddDest {
            service: fwm(1, Family::V4),
            dest: v6
        }
    );
    assert_eq!(
        one(&["-d", "-t", "192.0.2.1:80", "-r", "203.0.113.16:8080"]),
        Command::DeleteDest {
            service: svc_key,
            addr: ip("203.0.113.16"),
            port: 8080
        }
    );
}

#[test]
fn other_commands() {
    assert_eq!(one(&["-C"]), Command::Clear);
    assert_eq!(one(&["-Z"]), Command::Zero(None));
    assert_eq!(
        one(&["--zero", "-u", "192.0.2.1:53"]),
        Command::Zero(Some(udp("192.0.2.1", 53)))
    );
    assert_eq!(
        one(&["--set", "100", "20", "0"]),
        Command::SetTimeouts {
            tcp: 100,
            tcpfin: 20,
            udp: 0
        }
    );
    assert_eq!(
        one(&["--sysctl", "expire_nodest_conn=1"]),
        Command::SetKnob {
            name: "expire_nodest_conn".into(),
            value: 1
        }
    );
    assert_eq!(
        parse(&["--sysctl"]),
        Ok(Invocation::ShowSysctl { name: None })
    );
    assert_eq!(
        parse(&["--sysctl", "-n"]).map_err(|e| e.message),
        Err("Illegal 'numeric' option with the 'sysctl' command".into())
    );
    assert_eq!(
        parse(&["--sysctl", "a-b=1"]).map_err(|e| (e.message, e.exit_code)),
        Err(("invalid sysctl `a-b=1' specified".into(), 2))
    );
    assert_eq!(
        parse(&[]),
        Ok(Invocation::List(rvsadm::ListOptions::default_all()))
    );
}

#[test]
fn popt_edge_cases() {
    let err = |a: &[&str]| parse(a).map(|_| ()).map_err(|e| (e.message, e.exit_code));
    assert_eq!(err(&["-Lq"]), Err(("-Lq: unknown option".into(), 255)));
    assert_eq!(
        err(&["-L", "--numeric=1"]),
        Err(("--numeric=1: option does not take an argument".into(), 255))
    );
    assert_eq!(
        err(&["-A", "-t", "1.2.3.4:80", "--start-daemon", "master"]),
        Err(("invalid option `master'".into(), 2))
    );
    assert_eq!(err(&["-AL"]), Err(("invalid option `-AL'".into(), 2)));
    assert_eq!(
        err(&["-L", "--", "-n"]),
        Err(("unexpected argument -n".into(), 2))
    );
    assert_eq!(
        err(&["-A", "-t", "[1.2.3.4]:80"]),
        Err(("Zero port specified for non-persistent service".into(), 2))
    );
    assert_eq!(err(&["-A", "-t", "1.2.3.4:80", "-b", ","]), Ok(()));
    let t = FileResolver::from_texts("192.0.2.7 web\n", "http 80/tcp www\n");
    let args: Vec<String> = ["-A", "-t", "web:www"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        parse_args(&args, "ipvsadm", &t),
        Ok(Invocation::Apply(vec![Command::AddService(
            ServiceConfig::new(tcp("192.0.2.7", 80))
        )]))
    );
    // a port name needs the protocol, so -r before -t cannot resolve one
    let args: Vec<String> = ["-a", "-r", "192.0.2.8:www", "-t", "web:80"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        parse_args(&args, "ipvsadm", &t).map_err(|e| e.message),
        Err("illegal real server address[:port] specified".into())
    );
}

#[test]
fn restore_tokenizer_and_line_errors() {
    assert_eq!(
        tokenize("ipvsadm -A\t-t 1.2.3.4:80  # c\n\n# only comment\r\n -C\r\n"),
        vec![
            (1, vec!["-A".to_string(), "-t".into(), "1.2.3.4:80".into()]),
            (4, vec!["-C".to_string()]),
        ]
    );
    let text = "-A -t 192.0.2.40:80 -s rr\n-A -t 192.0.2.41:80 -w -1\n-A -t 192.0.2.42:80 -s rr\n";
    let e = parse_restore(text, "ipvsadm", &NumericResolver).expect_err("line 2 bad");
    assert_eq!(e.to_string(), "line 2: illegal weight specified");
    assert_eq!(e.error.exit_code, 2);
    let e = parse_restore("-C\n\n-R\n", "ipvsadm", &NumericResolver).expect_err("nested -R");
    assert_eq!((e.line, e.error.exit_code), (3, 255));
    let e = parse_restore("-L -n\n", "ipvsadm", &NumericResolver).expect_err("listing");
    assert_eq!(e.line, 1);
}

#[test]
fn restore_is_atomic_and_reports_kernel_errors_by_line() {
    let mut d = FakeDirector::empty();
    let text = "-A -t 192.0.2.40:80 -s rr\n-A -t 192.0.2.41:80 -w -1\n";
    let (_, err, rc) = run(&["-R"], &mut d, text, &NumericResolver);
    assert_eq!(
        (err.as_str(), rc),
        ("line 2: illegal weight specified\n", 2)
    );
    assert!(d.applied.is_empty(), "nothing applied on a parse error");

    let text = "-A -t 192.0.2.30:80 -s rr\n# dup\n-A -t 192.0.2.30:80 -s rr\n";
    d.apply_error = Some(DirectorError::Apply {
        index: 1,
        error: ApplyError::ServiceExists,
    });
    let (_, err, rc) = run(&["-R"], &mut d, text, &NumericResolver);
    assert_eq!(
        (err.as_str(), rc),
        ("line 3: Service already exists\n", 255)
    );
    assert_eq!(d.applied.len(), 1);
    assert_eq!(d.applied[0].len(), 2);
}

#[test]
fn transport_errors_use_the_init_failure_form() {
    let mut d = FakeDirector::empty();
    d.apply_error = Some(DirectorError::Transport(
        "connect /run/rvsd.sock: No such file or directory".into(),
    ));
    let (_, err, rc) = run(&["-C"], &mut d, "", &NumericResolver);
    assert_eq!(rc, 2);
    assert_eq!(
        err,
        "Can't initialize ipvs: connect /run/rvsd.sock: No such file or directory\nAre you sure that rvsd is running and its control socket is reachable?\n"
    );
}

#[test]
fn save_extensions_thresholds_and_timeouts() {
    let mut s = svc(tcp("192.0.2.1", 80), "rr");
    let mut d1 = dest("203.0.113.1", 80, FwdMethod::Masq, 1);
    d1.config.u_threshold = 10;
    let mut d2 = dest(
        "203.0.113.2",
        80,
        tunnel(TunnelKind::Gre, TunnelCsum::Csum),
        2,
    );
    d2.config.l_threshold = 3;
    d2.config.u_threshold = 9;
    s.dests = vec![d2, d1];
    let mut fd = FakeDirector::new(TableSnapshot {
        conn_table_size: 4096,
        services: vec![s],
    });
    fd.timeouts = Timeouts {
        tcp: 100,
        tcpfin: 20,
        udp: 300,
    };
    let (out, _, _) = run(&["-S", "-n"], &mut fd, "", &NumericResolver);
    assert_eq!(
        out,
        "--set 100 20 300
-A -t 192.0.2.1:80 -s rr
-a -t 192.0.2.1:80 -r 203.0.113.1:80 -m -w 1 -x 10
-a -t 192.0.2.1:80 -r 203.0.113.2:80 -i -w 2 --tun-type gre --tun-csum -x 9 -y 3
"
    );
}

// ---------------------------------------------------------------- round trip

fn arb_v4() -> impl Strategy<Value = std::net::IpAddr> {
    any::<u32>().prop_map(|n| std::net::IpAddr::V4(n.into()))
}

fn arb_v6() -> impl Strategy<Value = std::net::IpAddr> {
    any::<u128>().prop_map(|n| std::net::IpAddr::V6(n.into()))
}

fn arb_key() -> impl Strategy<Value = ServiceKey> {
    prop_oneof![
        (
            prop_oneof![
                Just(Protocol::Tcp),
                Just(Protocol::Udp),
                Just(Protocol::Sctp)
            ],
            prop_oneof![arb_v4(), arb_v6()],
            any::<u16>()
        )
            .prop_map(|(protocol, addr, port)| ServiceKey::Addr {
                protocol,
                addr,
                port
            }),
        (1u32.., prop_oneof![Just(Family::V4), Just(Family::V6)])
            .prop_map(|(mark, family)| ServiceKey::Fwmark { mark, family }),
    ]
}

fn arb_service() -> impl Strategy<Value = ServiceConfig> {
    (
        arb_key(),
        prop::sample::select(vec!["rr", "wrr", "wlc", "sh", "mh", "lblcr", "twos"]),
        0u32..8,
        prop::option::of(1u32..=MAX_TIMEOUT),
        any::<u32>(),
        1u8..=128,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(key, sched, flagbits, persistent, mask4, mask6, pe, ops)| {
                let mut c = ServiceConfig::new(key);
                c.scheduler = sched.to_string();
                // sh/mh have names only for SCHED1/SCHED2
                let allowed = if sched == "sh" || sched == "mh" {
                    0x18
                } else {
                    0x38
                };
                c.flags = SchedFlags((flagbits << 3) & allowed);
                // port 0 services must be persistent; masks only survive when persistent
                c.persistent = if key.port() == 0 && !key.is_fwmark() {
                    Some(persistent.unwrap_or(360))
                } else {
                    persistent
                };
                if c.persistent.is_some() {
                    c.netmask = match key.family() {
                        Family::V4 => Netmask::V4(mask4.into()),
                        Family::V6 => Netmask::V6(mask6),
                    };
                }
                c.pe = pe.then(|| "sip".to_string());
                let udp_or_fwm = key.is_fwmark()
                    || matches!(
                        key,
                        ServiceKey::Addr {
                            protocol: Protocol::Udp,
                            ..
                        }
                    );
                c.ops = ops && udp_or_fwm;
                c
            },
        )
}

fn arb_dest(key: ServiceKey) -> impl Strategy<Value = DestConfig> {
    let fam = key.family();
    (
        prop_oneof![arb_v4(), arb_v6()],
        any::<u16>(),
        0u8..6,
        0i32..=i32::MAX,
        0u32..=i32::MAX as u32,
        0u32..=i32::MAX as u32,
        1u16..,
    )
        .prop_map(move |(addr, port, m, weight, u, l, tport)| {
            let fwd = match m {
                0 => FwdMethod::Masq,
                1 => FwdMethod::Route,
                2 => IPIP,
                3 => tunnel(TunnelKind::Gue { port: tport }, TunnelCsum::RemCsum),
                4 => tunnel(TunnelKind::Gre, TunnelCsum::Csum),
                _ => tunnel(TunnelKind::Gue { port: tport }, TunnelCsum::NoCsum),
            };
            // only tunnels may cross families; DR/TUN use the service port
            let addr = if matches!(fwd, FwdMethod::Tunnel { .. }) || Family::of(&addr) == fam {
                addr
            } else {
                fam.unspecified()
            };
            let port = if !key.is_fwmark() && !matches!(fwd, FwdMethod::Masq) {
                key.port()
            } else {
                port
            };
            DestConfig {
                addr,
                port,
                fwd,
                weight,
                u_threshold: u,
                l_threshold: l,
            }
        })
}

fn arb_table() -> impl Strategy<Value = Vec<(ServiceConfig, Vec<DestConfig>)>> {
    prop::collection::vec(
        arb_service().prop_flat_map(|s| {
            let key = s.key;
            (Just(s), prop::collection::vec(arb_dest(key), 0..4))
        }),
        0..5,
    )
}

/// The kernel's IPVS sysctl defaults (ipvs-sysctl.rst), in listing order.
const KNOB_DEFAULTS: &[(&str, i64)] = &[
    ("cache_bypass", 0),
    ("conn_reuse_mode", 1),
    ("expire_nodest_conn", 0),
    ("expire_quiescent_template", 0),
    ("lblc_expiration", 86400),
    ("lblcr_expiration", 86400),
    ("nat_icmp_send", 0),
    ("pmtu_disc", 1),
    ("schedule_icmp", 0),
    ("sloppy_sctp", 0),
    ("sloppy_tcp", 0),
];

/// A valid value for every knob; about half of them left at the default.
fn arb_knobs() -> impl Strategy<Value = Vec<rvs_api::KnobValue>> {
    prop::collection::vec(
        (any::<bool>(), 0i64..=3, 1i64..=1_000_000),
        KNOB_DEFAULTS.len(),
    )
    .prop_map(|picks| {
        KNOB_DEFAULTS
            .iter()
            .zip(picks)
            .map(|(&(name, def), (change, small, big))| {
                let value = if !change {
                    def
                } else if name.ends_with("_expiration") {
                    big
                } else if name == "conn_reuse_mode" {
                    small
                } else {
                    small & 1
                };
                rvs_api::KnobValue {
                    name: name.to_string(),
                    value,
                }
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn save_then_restore_gives_the_same_commands(
        spec in arb_table(),
        tcp_t in 0u32..=MAX_TIMEOUT,
        knobs in arb_knobs(),
    ) {
        // Build a table (deduplicated keys), its canonical commands, save it, restore it.
        let mut seen = std::collections::HashSet::new();
        let mut table = TableSnapshot { conn_table_size: 4096, services: Vec::new() };
        for (cfg, dests) in spec {
            if !seen.insert(cfg.key) { continue; }
            let mut s = svc(cfg.key, &cfg.scheduler);
            s.config = cfg;
            let mut dseen = std::collections::HashSet::new();
            for d in dests {
                if !dseen.insert((d.addr, d.port)) { continue; }
                let mut snap = dest("0.0.0.0", 0, FwdMethod::Masq, 1);
                snap.config = d;
                s.dests.push(snap);
            }
            table.services.push(s);
        }
        let timeouts = Timeouts { tcp: tcp_t, tcpfin: 120, udp: 300 };
        let sorted = rvsadm::format::sorted_table(&table, false);
        let mut expected = Vec::new();
        for (k, &(name, def)) in knobs.iter().zip(KNOB_DEFAULTS) {
            if k.value != def {
                expected.push(Command::SetKnob { name: name.to_string(), value: k.value });
            }
        }
        if timeouts != Timeouts::default() {
            expected.push(Command::SetTimeouts { tcp: tcp_t, tcpfin: 120, udp: 300 });
        }
        for s in &sorted.services {
            expected.push(Command::AddService(s.config.clone()));
            for d in &s.dests {
                expected.push(Command::AddDest { service: s.config.key, dest: d.config.clone() });
            }
        }
        let text = rvsadm::save::save(&table, Some(&timeouts), &knobs, true, &NumericResolver);
        let script = parse_restore(&text, "ipvsadm", &NumericResolver)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(script.commands, expected, "{}", text);
    }
}
