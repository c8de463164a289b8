//! The TOML reader: defaults, inheritance, and errors naming their line.

#![allow(clippy::unwrap_used)]

use rvs_config::toml_file::parse;
use rvs_core::{FwdMethod, Protocol, ServiceKey};
use rvs_health::{HttpProbe, ProbeSpec, TcpProbe};
use std::time::Duration;

const SAMPLE: &str = r#"
[global]
metrics_listen = "127.0.0.1:9700"

[[service]]
vip = "10.0.0.1:80"
scheduler = "wrr"
persistence_timeout = 600
delay_loop = 5
sorry_server = "127.0.0.1:8080"

[[service.real]]
addr = "192.168.1.2:80"
weight = 3

[[service.real.check]]
type = "http"
path = "/health"
status_codes = [200, "300-302"]
retry = 3

[[service.real]]
addr = "192.168.1.3:80"
method = "dr"
delay_loop = 2.5

[[service.real.check]]
type = "tcp"
connect_port = 8080

[[service]]
fwmark = 8
scheduler = "rr"
"#;

#[test]
fn sample_parses_with_defaults_and_inheritance() {
    let c = parse(SAMPLE).unwrap();
    assert_eq!(
        c.global.metrics_listen,
        Some("127.0.0.1:9700".parse().unwrap())
    );
    assert_eq!(c.services.len(), 2);
    let s = &c.services[0];
    assert_eq!(s.line, 5);
    assert_eq!(
        s.key(),
        ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: "10.0.0.1".parse().unwrap(),
            port: 80
        }
    );
    assert_eq!(s.service.scheduler, "wrr");
    assert_eq!(s.service.persistent, Some(600));
    assert_eq!((s.quorum, s.hysteresis), (1, 0));
    assert_eq!(s.sorry.as_ref().unwrap().fwd, FwdMethod::Masq);
    let r0 = &s.reals[0];
    assert_eq!((r0.dest.weight, r0.dest.fwd), (3, FwdMethod::Masq));
    let c0 = &r0.checks[0];
    // delay_loop from the service, retry from the check, dbr the HTTP default.
    assert_eq!(c0.timing.delay_loop, Duration::from_secs(5));
    assert_eq!(c0.timing.retry, 3);
    assert_eq!(c0.timing.delay_before_retry, Duration::from_secs(3));
    assert_eq!(c0.timing.connect_timeout, Duration::from_secs(5));
    assert_eq!(
        c0.probe,
        ProbeSpec::Http(HttpProbe {
            target: "192.168.1.2:80".parse().unwrap(),
            tls: false,
            path: "/health".into(),
            virtualhost: None,
            status_codes: vec![(200, 200), (300, 302)],
            digest: None,
            http11: false,
            sni: None,
            ca_file: None,
        })
    );
    let r1 = &s.reals[1];
    assert_eq!((r1.dest.weight, r1.dest.fwd), (1, FwdMethod::Route));
    let c1 = &r1.checks[0];
    assert_eq!(c1.timing.delay_loop, Duration::from_millis(2500));
    assert_eq!(
        (c1.timing.retry, c1.timing.delay_before_retry),
        (1, Duration::from_secs(1))
    );
    assert_eq!(
        c1.probe,
        ProbeSpec::Tcp(TcpProbe {
            target: "192.168.1.3:8080".parse().unwrap()
        })
    );
    assert_eq!(c.services[1].service.scheduler, "rr");
    assert_eq!(c.services[1].line, 31);
}

fn line_of_error(text: &str) -> (usize, String) {
    let e = parse(text).unwrap_err();
    (e.line, e.message)
}

#[test]
fn errors_name_the_line() {
    // Unknown key on line 4.
    let (line, msg) = line_of_error("[[service]]\nvip = \"10.0.0.1:80\"\n\nschedular = \"rr\"\n");
    assert_eq!(line, 4);
    assert!(msg.contains("schedular"), "{msg}");
    // Bad address on line 3.
    let (line, _) = line_of_error("[[service]]\nscheduler = \"rr\"\nvip = \"10.0.0.300:80\"\n");
    assert_eq!(line, 3);
    // Unknown scheduler: the service's line (2).
    let (line, msg) =
        line_of_error("\n[[service]]\nvip = \"10.0.0.1:80\"\nscheduler = \"fastest\"\n");
    assert_eq!(line, 2);
    assert!(msg.contains("unknown scheduler `fastest'"), "{msg}");
    // TOML syntax error on line 3.
    let (line, _) = line_of_error("[[service]]\nvip = \"10.0.0.1:80\"\nweight = = 3\n");
    assert_eq!(line, 3);
    // Duplicate service on line 4, naming the first.
    let (line, msg) =
        line_of_error("[[service]]\nvip = \"10.0.0.1:80\"\n\n[[service]]\nvip = \"10.0.0.1:80\"\n");
    assert_eq!(line, 4);
    assert!(msg.contains("first at line 1"), "{msg}");
    // A bad check type on the check's line (5).
    let (line, msg) = line_of_error(
        "[[service]]\nvip = \"10.0.0.1:80\"\n[[service.real]]\naddr = \"10.1.1.1:80\"\n[[service.real.check]]\ntype = \"smtp\"\n",
    );
    assert_eq!(line, 5);
    assert!(msg.contains("unknown check type `smtp'"), "{msg}");
    // Neither vip nor fwmark.
    let (line, _) = line_of_error("[[service]]\nscheduler = \"rr\"\n");
    assert_eq!(line, 1);
    // Bad status range.
    let (line, msg) = line_of_error(
        "[[service]]\nvip = \"10.0.0.1:80\"\n[[service.real]]\naddr = \"10.1.1.1:80\"\n[[service.real.check]]\ntype = \"http\"\nstatus_codes = [\"299-200\"]\n",
    );
    assert_eq!(line, 5);
    assert!(msg.contains("bad status code"), "{msg}");
}

#[test]
fn display_starts_with_the_line() {
    let e = parse("[[service]]\nvip = 3\n").unwrap_err();
    assert!(e.to_string().starts_with("line 2: "), "{e}");
}

#[test]
fn drain_keys_set_the_drain_policy() {
    use rvs_config::DrainPolicy;
    let svc = |extra: &str| format!("[[service]]\nvip = \"10.0.0.1:80\"\n{extra}");
    let drain_of = |extra: &str| parse(&svc(extra)).unwrap().services[0].drain;
    // Off unless asked for (keepalived removes at once).
    assert_eq!(drain_of(""), None);
    assert_eq!(drain_of("drain = false\n"), None);
    // On with the five-minute default bound.
    assert_eq!(
        drain_of("drain = true\n"),
        Some(DrainPolicy {
            timeout: Some(Duration::from_secs(300))
        })
    );
    // A timeout turns it on; 0 means no bound.
    assert_eq!(
        drain_of("drain_timeout = 2.5\n"),
        Some(DrainPolicy {
            timeout: Some(Duration::from_millis(2500))
        })
    );
    assert_eq!(
        drain_of("drain = true\ndrain_timeout = 0\n"),
        Some(DrainPolicy { timeout: None })
    );
    let err = parse(&svc("drain = false\ndrain_timeout = 5\n")).unwrap_err();
    assert_eq!(err.line, 1);
    assert!(err.message.contains("drain_timeout"), "{err}");
}

#[test]
fn https_checks_take_sni_and_ca_file_and_http_checks_refuse_them() {
    let text = "[[service]]\nvip = \"10.0.0.1:443\"\n[[service.real]]\naddr = \"192.168.1.2:443\"\n[[service.real.check]]\ntype = \"https\"\nsni = \"web.example\"\nca_file = \"/etc/rvs/ca.pem\"\n";
    let c = parse(text).unwrap();
    let ProbeSpec::Http(p) = &c.services[0].reals[0].checks[0].probe else {
        panic!("http probe expected");
    };
    assert!(p.tls);
    assert_eq!(p.sni.as_deref(), Some("web.example"));
    assert_eq!(
        p.ca_file.as_deref(),
        Some(std::path::Path::new("/etc/rvs/ca.pem"))
    );
    let err = parse(&text.replace("\"https\"", "\"http\"")).unwrap_err();
    assert_eq!(err.line, 5);
}
