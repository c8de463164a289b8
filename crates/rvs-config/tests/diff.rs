//! diff(old, new): only what changed, in a fixed order.

#![allow(clippy::unwrap_used)]

use rvs_config::toml_file::parse;
use rvs_config::{diff, diff_services};
use rvs_core::{Command, DestConfig, FwdMethod, Protocol, ServiceConfig, ServiceKey};

fn svc(port: u16) -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: "10.0.0.1".parse().unwrap(),
        port,
    }
}

fn dest(last: u8, weight: i32) -> DestConfig {
    let mut d = DestConfig::new(format!("192.168.1.{last}").parse().unwrap(), 80);
    d.fwd = FwdMethod::Masq;
    d.weight = weight;
    d
}

const OLD: &str = r#"
[[service]]
vip = "10.0.0.1:80"
scheduler = "rr"
[[service.real]]
addr = "192.168.1.2:80"
[[service.real]]
addr = "192.168.1.3:80"
[[service.real]]
addr = "192.168.1.4:80"

[[service]]
vip = "10.0.0.1:443"
"#;

#[test]
fn identical_files_give_nothing() {
    let a = parse(OLD).unwrap();
    assert_eq!(diff(&a, &a), vec![]);
}

#[test]
fn from_empty_adds_everything() {
    let a = parse(OLD).unwrap();
    let empty = parse("").unwrap();
    let mut rr = ServiceConfig::new(svc(80));
    rr.scheduler = "rr".into();
    assert_eq!(
        diff(&empty, &a),
        vec![
            Command::AddService(rr),
            Command::AddDest {
                service: svc(80),
                dest: dest(2, 1)
            },
            Command::AddDest {
                service: svc(80),
                dest: dest(3, 1)
            },
            Command::AddDest {
                service: svc(80),
                dest: dest(4, 1)
            },
            Command::AddService(ServiceConfig::new(svc(443))),
        ]
    );
    assert_eq!(
        diff(&a, &empty),
        vec![
            Command::DeleteService(svc(80)),
            Command::DeleteService(svc(443))
        ]
    );
}

#[test]
fn weight_change_removal_addition_and_new_service() {
    let old = parse(OLD).unwrap();
    // 2 unchanged (only its check changes), 3 weight 5, 4 removed, 5 added,
    // 443 removed, 8080 added, scheduler changed to wrr.
    let new = parse(
        r#"
[[service]]
vip = "10.0.0.1:80"
scheduler = "wrr"
[[service.real]]
addr = "192.168.1.2:80"
[[service.real.check]]
type = "tcp"
[[service.real]]
addr = "192.168.1.3:80"
weight = 5
[[service.real]]
addr = "192.168.1.5:80"

[[service]]
vip = "10.0.0.1:8080"
"#,
    )
    .unwrap();
    let mut wrr = ServiceConfig::new(svc(80));
    wrr.scheduler = "wrr".into();
    let expected = vec![
        Command::DeleteService(svc(443)),
        Command::EditService(wrr),
        Command::AddService(ServiceConfig::new(svc(8080))),
        Command::DeleteDest {
            service: svc(80),
            addr: "192.168.1.4".parse().unwrap(),
            port: 80,
        },
        Command::EditDest {
            service: svc(80),
            dest: dest(3, 5),
        },
        Command::AddDest {
            service: svc(80),
            dest: dest(5, 1),
        },
    ];
    assert_eq!(diff(&old, &new), expected);
    assert_eq!(diff_services(&old, &new), expected[..3].to_vec());
}

#[test]
fn diff_applies_cleanly_to_an_engine() {
    let old = parse(OLD).unwrap();
    let new =
        parse("[[service]]\nvip = \"10.0.0.1:80\"\n[[service.real]]\naddr = \"192.168.1.9:80\"\n")
            .unwrap();
    let mut e = rvs_core::Engine::new();
    e.apply_all(diff(&parse("").unwrap(), &old)).unwrap();
    e.apply_all(diff(&old, &new)).unwrap();
    let snap = e.snapshot();
    assert_eq!(snap.services.len(), 1);
    assert_eq!(snap.services[0].config.scheduler, "wlc");
    let addrs: Vec<String> = snap.services[0]
        .dests
        .iter()
        .map(|d| d.config.addr.to_string())
        .collect();
    assert_eq!(addrs, vec!["192.168.1.9"]);
}
