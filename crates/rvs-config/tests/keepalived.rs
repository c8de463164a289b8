//! keepalived.conf reader: two virtual servers in old and new spellings,
//! checkers, notices for unsupported keywords and vrrp blocks, errors.

#![allow(clippy::unwrap_used)]

use rvs_config::keepalived::parse;
use rvs_core::{FwdMethod, Protocol, ServiceKey};
use rvs_health::{HttpProbe, MiscProbe, ProbeSpec, TcpProbe};
use std::time::Duration;

const SAMPLE: &str = r#"! Configuration File for keepalived
global_defs {
   router_id LVS_DEVEL
}

vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
}
vrrp_sync_group VG1 {
    group { VI_1 }
}

virtual_server 10.0.0.1 80 {
    delay_loop 6
    lb_algo wrr
    lb_kind NAT
    persistence_timeout 50
    protocol TCP
    sorry_server 127.0.0.1 8080
    quorum 2
    hysteresis 1

    real_server 192.168.1.2 80 {
        weight 3
        inhibit_on_failure
        HTTP_GET {
            url {
              path /health
              digest 9b3a0c85a887a256d6939da88aabd8cd
              status_code 200 300-302
            }
            connect_timeout 3
            nb_get_retry 3
            delay_before_retry 2
        }
    }
    real_server 192.168.1.3 80 {
        weight 1
        TCP_CHECK {
            connect_port 8080
            bindto 192.168.1.1
        }
        MISC_CHECK {
            misc_path "/usr/local/bin/check 192.168.1.3"
            misc_dynamic
        }
    }
}

virtual_server 10.0.0.2 53 {
    lvs_sched rr
    lvs_method DR
    protocol UDP
    omega
    real_server 192.168.1.4 53 {
        lvs_method TUN
    }
}
"#;

#[test]
fn sample_reads_services_reals_and_checks() {
    let (c, notices) = parse(SAMPLE).unwrap();
    assert_eq!(c.services.len(), 2);
    let s = &c.services[0];
    assert_eq!(s.line, 15);
    assert_eq!(
        s.key(),
        ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: "10.0.0.1".parse().unwrap(),
            port: 80
        }
    );
    assert_eq!(s.service.scheduler, "wrr");
    assert_eq!(s.service.persistent, Some(50));
    assert_eq!((s.quorum, s.hysteresis), (2, 1));
    let sorry = s.sorry.as_ref().unwrap();
    assert_eq!(
        (sorry.addr.to_string(), sorry.port, sorry.fwd),
        ("127.0.0.1".to_string(), 8080, FwdMethod::Masq)
    );
    let r = &s.reals[0];
    assert_eq!(
        (r.dest.weight, r.dest.fwd, r.inhibit_on_failure),
        (3, FwdMethod::Masq, true)
    );
    assert_eq!(r.checks.len(), 1);
    let t = r.checks[0].timing;
    assert_eq!(
        (
            t.delay_loop,
            t.connect_timeout,
            t.retry,
            t.delay_before_retry,
            t.rise,
            t.fall
        ),
        (
            Duration::from_secs(6),
            Duration::from_secs(3),
            3,
            Duration::from_secs(2),
            1,
            1
        )
    );
    assert_eq!(
        r.checks[0].probe,
        ProbeSpec::Http(HttpProbe {
            target: "192.168.1.2:80".parse().unwrap(),
            tls: false,
            path: "/health".into(),
            virtualhost: None,
            status_codes: vec![(200, 200), (300, 302)],
            digest: Some("9b3a0c85a887a256d6939da88aabd8cd".into()),
            http11: false,
            sni: None,
            ca_file: None,
        })
    );
    let r = &s.reals[1];
    assert_eq!(r.checks.len(), 2);
    assert_eq!(
        r.checks[0].probe,
        ProbeSpec::Tcp(TcpProbe {
            target: "192.168.1.3:8080".parse().unwrap()
        })
    );
    // TCP defaults: retry 1, dbr 1 s; delay_loop inherited (6).
    assert_eq!(
        (
            r.checks[0].timing.retry,
            r.checks[0].timing.delay_before_retry
        ),
        (1, Duration::from_secs(1))
    );
    assert_eq!(
        r.checks[1].probe,
        ProbeSpec::Misc(MiscProbe {
            command: "/usr/local/bin/check 192.168.1.3".into(),
            dynamic: true
        })
    );
    // MISC: retry 0, timeout = delay_loop when misc_timeout is unset.
    assert_eq!(
        (r.checks[1].timing.retry, r.checks[1].timing.connect_timeout),
        (0, Duration::from_secs(6))
    );

    let s = &c.services[1];
    assert_eq!(
        s.key(),
        ServiceKey::Addr {
            protocol: Protocol::Udp,
            addr: "10.0.0.2".parse().unwrap(),
            port: 53
        }
    );
    assert_eq!(s.service.scheduler, "rr");
    assert!(matches!(s.reals[0].dest.fwd, FwdMethod::Tunnel { .. }));

    let texts: Vec<String> = notices.iter().map(ToString::to_string).collect();
    assert_eq!(
        texts,
        vec![
            "line 3: `router_id' in global_defs is not supported by rvs; ignored".to_string(),
            "line 6: VRRP is not supported by rvs (director failover is a later feature); ignored 2 block(s): vrrp_instance VI_1, vrrp_sync_group VG1".to_string(),
            "line 43: `bindto' in TCP_CHECK is not supported by rvs; ignored".to_string(),
            "line 56: `omega' in virtual_server is not supported by rvs; ignored".to_string(),
        ]
    );
}

#[test]
fn default_method_is_nat_and_weight_one() {
    let (c, _) =
        parse("virtual_server 10.0.0.1 80 {\n real_server 10.1.1.1 80 {\n }\n}\n").unwrap();
    let r = &c.services[0].reals[0];
    assert_eq!((r.dest.fwd, r.dest.weight), (FwdMethod::Masq, 1));
    assert_eq!(c.services[0].service.scheduler, "wlc");
}

#[test]
fn fwmark_service() {
    let (c, _) =
        parse("virtual_server fwmark 8 {\n lb_algo rr\n persistence_timeout\n}\n").unwrap();
    assert_eq!(
        c.services[0].key(),
        ServiceKey::Fwmark {
            mark: 8,
            family: rvs_core::Family::V4
        }
    );
    assert_eq!(c.services[0].service.persistent, Some(360));
}

#[test]
fn errors_name_the_line() {
    let e = parse("virtual_server 10.0.0.1 80 {\n  lb_algo fastest\n}\n").unwrap_err();
    assert_eq!(e.line, 2);
    assert!(e.message.contains("unknown scheduler `fastest'"));
    let e =
        parse("virtual_server 10.0.0.1 80 {\n  real_server 10.1.1.x 80 {\n  }\n}\n").unwrap_err();
    assert_eq!(e.line, 2);
    let e = parse("virtual_server 10.0.0.1 80 {\n  real_server 10.1.1.1 80 {\n    weight\n")
        .unwrap_err();
    assert_eq!(e.line, 2, "{e}");
    let e = parse("}\n").unwrap_err();
    assert_eq!(e.line, 1);
    let e = parse("virtual_server 10.0.0.1 80 {\n real_server 10.1.1.1 80 {\n  weight -2\n }\n}\n")
        .unwrap_err();
    assert_eq!(e.line, 3);
    let e = parse("virtual_server 10.0.0.1 80 {\n real_server 10.1.1.1 80 {\n  HTTP_GET {\n   url {\n    digest xyz\n   }\n  }\n }\n}\n").unwrap_err();
    assert_eq!(e.line, 5);
}

#[test]
fn unsupported_checkers_and_url_options_are_named() {
    let (_, notices) = parse(
        "virtual_server 10.0.0.1 80 {\n real_server 10.1.1.1 80 {\n  SMTP_CHECK {\n  }\n  SSL_GET {\n   url {\n    path /\n    regex ok\n   }\n  }\n }\n}\n",
    )
    .unwrap();
    let texts: Vec<String> = notices.iter().map(ToString::to_string).collect();
    assert_eq!(
        texts,
        vec![
            "line 3: `SMTP_CHECK' in real_server is not supported by rvs; ignored".to_string(),
            "line 8: `regex' in url is not supported by rvs; ignored".to_string(),
        ]
    );
}
