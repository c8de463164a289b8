//! Health checking end to end with real traffic (issue 5): the seed's NAT
//! topology, rvsd started with `--config` (TOML) in the director
//! namespace, real HTTP servers on the real servers, curl from the client.
//!
//! * a stopped HTTP server leaves the pool, curls after that all succeed,
//!   a log line and the notify command fire; restarted, it comes back
//!   with its configured weight and gets its wrr share again;
//! * `rise` keeps a flapping server out of the pool, `fall` keeps a
//!   briefly failing one in;
//! * with every real server down the sorry server answers; one back, the
//!   traffic goes to it.
//!
//! Timing is short (checks every 0.3-0.5 s) with generous margins; exact
//! retry/rise/fall timing is tested on the state machine (rvs-health).
//! Needs root; skipped otherwise.

mod netns_health_lab;

use netns_health_lab::{
    health, health_line, pool, stop, wait_log, wait_pool, wait_steering, Lab, MARGIN,
};
use rvs_testnet::{start_http, NAT_RIP1, NAT_RIP2};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const VS: &str = "TCP 198.51.100.10:80";

#[test]
fn stopped_server_leaves_the_pool_and_returns_with_its_weight() {
    let Some(lab) = Lab::new("rvhstop") else {
        return;
    };
    let notify = lab.notify_script();
    let cfg = lab.write(
        "rvs.toml",
        &format!(
            r#"[global]
notify = "{notify}"

[[service]]
vip = "198.51.100.10:80"
scheduler = "wrr"
delay_loop = 0.5
connect_timeout = 1
retry = 0

[[service.real]]
addr = "203.0.113.11:80"
weight = 3
[[service.real.check]]
type = "http"
path = "/"

[[service.real]]
addr = "203.0.113.12:80"
weight = 1
[[service.real.check]]
type = "http"
path = "/"
"#
        ),
    );
    let d = lab.rvsd(&["--config", &cfg, "--metrics-listen", "127.0.0.1:0"]);
    let both = [
        "TCP 198.51.100.10:80 wrr",
        "-> 203.0.113.11:80 Masq 3",
        "-> 203.0.113.12:80 Masq 1",
    ];
    wait_pool(&d, &both, MARGIN);
    wait_steering(&d, 1, 2);
    // wrr 3:1: any 8 consecutive picks hold two whole rounds.
    let got = lab.curls(80, 8);
    let count = |page: &str| got.iter().filter(|r| r.as_deref() == Ok(page)).count();
    assert_eq!(
        (count("RS1-web1"), count("RS2-web2")),
        (6, 2),
        "{got:?}\n{}",
        d.log_text()
    );

    // Stop RS1's HTTP server: RS1 leaves the pool.
    stop(&lab.topo.rs1, lab.topo.http[0]);
    let only_rs2 = ["TCP 198.51.100.10:80 wrr", "-> 203.0.113.12:80 Masq 1"];
    wait_pool(&d, &only_rs2, MARGIN);
    // From now on no request fails.
    let got = lab.curls(80, 20);
    assert!(
        got.iter().all(|r| r.as_deref() == Ok("RS2-web2")),
        "{got:?}\n{}",
        d.log_text()
    );
    let log = d.log_text();
    let gone = log
        .lines()
        .find(|l| l.contains(&format!("{VS}, 203.0.113.11:80 is gone.")))
        .unwrap_or_else(|| panic!("no `is gone.' line:\n{log}"));
    assert!(
        gone.starts_with("rvsd: health: ") && gone.contains("connection refused"),
        "{gone}"
    );
    let ok = netns_health_lab::wait_until("notify down", MARGIN, || {
        lab.notify_log()
            .contains("down TCP 198.51.100.10:80 203.0.113.11:80 ")
    });
    assert!(ok, "notify log:\n{}\nrvsd log:\n{log}", lab.notify_log());
    let down_line = lab.notify_log();
    assert!(down_line.contains("connection refused"), "{down_line}");
    let line = health_line(&health(&d), "203.0.113.11:80").unwrap_or_default();
    assert!(
        line.contains("  DOWN  weight 3  last: connect to 203.0.113.11:80: connection refused"),
        "{line}"
    );

    // Restart it: it comes back with its weight 3, and takes its share.
    let _web = start_http(&lab.topo.rs1, &lab.topo.dir, "rs1", NAT_RIP1, "RS1-web1")
        .expect("restart RS1's HTTP server");
    wait_pool(&d, &both, MARGIN);
    wait_log(&d, &format!("{VS}, 203.0.113.11:80 is back."), MARGIN);
    let ok = netns_health_lab::wait_until("notify up", MARGIN, || {
        lab.notify_log()
            .contains("up TCP 198.51.100.10:80 203.0.113.11:80 ")
    });
    assert!(ok, "notify log:\n{}", lab.notify_log());
    let notified: Vec<String> = lab
        .notify_log()
        .lines()
        .map(|l| l.split_whitespace().take(4).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        notified,
        [
            "down TCP 198.51.100.10:80 203.0.113.11:80",
            "up TCP 198.51.100.10:80 203.0.113.11:80"
        ]
    );
    wait_steering(&d, 1, 2);
    let got = lab.curls(80, 8);
    let count = |page: &str| got.iter().filter(|r| r.as_deref() == Ok(page)).count();
    assert_eq!(
        (count("RS1-web1"), count("RS2-web2")),
        (6, 2),
        "{got:?}\n{}",
        d.log_text()
    );
}

/// What a watcher saw of one server while `during` ran: whether any
/// `-L -n` listing had it, and its `--health` lines.
struct Seen {
    listed: Vec<Vec<String>>,
    unlisted: Vec<Vec<String>>,
    health: Vec<String>,
    polls: usize,
}

/// Polls a watcher must have made for its "never seen" to mean
/// something. Each poll runs rvsadm twice through `ip netns exec`, which
/// takes a few hundred milliseconds on a loaded 2-core machine, so this
/// is well below what the 5-8 s of flapping allow at the 100 ms pace.
const MIN_POLLS: usize = 8;

/// Poll `-L -n` and `--health` every 100 ms while `during` runs.
fn watch(d: &rvs_testnet::Rvsd<'_>, server: &str, during: impl FnOnce()) -> Seen {
    let done = AtomicBool::new(false);
    let seen = Mutex::new(Seen {
        listed: Vec::new(),
        unlisted: Vec::new(),
        health: Vec::new(),
        polls: 0,
    });
    let row = format!("-> {server} ");
    std::thread::scope(|s| {
        s.spawn(|| {
            // Bounded: the flapping below lasts well under a minute.
            let deadline = Instant::now() + Duration::from_secs(60);
            while !done.load(Ordering::SeqCst) && Instant::now() < deadline {
                let p = pool(d);
                let h = health_line(&health(d), server);
                let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                seen.polls += 1;
                if p.iter().any(|l| l.starts_with(&row)) {
                    seen.listed.push(p);
                } else {
                    seen.unlisted.push(p);
                }
                if let Some(h) = h {
                    seen.health.push(h);
                }
                drop(seen);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        during();
        done.store(true, Ordering::SeqCst);
    });
    seen.into_inner().unwrap_or_else(|p| p.into_inner())
}

#[test]
fn rise_keeps_a_flapping_server_out_and_fall_keeps_a_blinking_one_in() {
    let Some(lab) = Lab::new("rvhflap") else {
        return;
    };
    // RS1: checks every 0.3 s, in after 5 passes in a row (>= 1.2 s of
    // service). RS2: checks every 0.5 s, out after 6 failures in a row
    // (>= 2.5 s of outage).
    let cfg = lab.write(
        "rvs.toml",
        r#"[[service]]
vip = "198.51.100.10:80"
scheduler = "rr"
connect_timeout = 1
retry = 0

[[service.real]]
addr = "203.0.113.11:80"
delay_loop = 0.3
rise = 5
fall = 1
[[service.real.check]]
type = "http"

[[service.real]]
addr = "203.0.113.12:80"
delay_loop = 0.5
rise = 1
fall = 6
[[service.real.check]]
type = "http"
"#,
    );
    let d = lab.rvsd(&["--config", &cfg, "--metrics-listen", "127.0.0.1:0"]);
    let both = [
        "TCP 198.51.100.10:80 rr",
        "-> 203.0.113.11:80 Masq 1",
        "-> 203.0.113.12:80 Masq 1",
    ];
    let only_rs2 = ["TCP 198.51.100.10:80 rr", "-> 203.0.113.12:80 Masq 1"];
    let only_rs1 = ["TCP 198.51.100.10:80 rr", "-> 203.0.113.11:80 Masq 1"];
    wait_pool(&d, &both, MARGIN);
    stop(&lab.topo.rs1, lab.topo.http[0]);
    wait_pool(&d, &only_rs2, MARGIN);

    // Flap RS1: up about 0.4 s after it answers (at most 3 passing
    // checks even when its start-up is slow, 5 would take 1.2 s), down
    // 0.9 s.
    let seen = watch(&d, "203.0.113.11:80", || {
        for _ in 0..5 {
            let web = start_http(&lab.topo.rs1, &lab.topo.dir, "rs1", NAT_RIP1, "RS1-web1")
                .expect("start RS1's HTTP server");
            std::thread::sleep(Duration::from_millis(400));
            stop(&lab.topo.rs1, web);
            std::thread::sleep(Duration::from_millis(900));
        }
    });
    assert!(
        seen.listed.is_empty() && seen.polls >= MIN_POLLS,
        "RS1 entered the pool while flapping ({} polls): {:?}\nrvsd log:\n{}",
        seen.polls,
        seen.listed,
        d.log_text()
    );
    // It did pass checks while out: rise is what kept it out.
    assert!(
        seen.health
            .iter()
            .any(|l| l.contains("  DOWN  ") && l.contains("last: HTTP 200 (")),
        "no passing check seen while RS1 flapped: {:#?}",
        seen.health
    );
    assert!(!d.log_text().contains("203.0.113.11:80 is back."));

    // Steadily up, it enters after `rise` passes, not at the first.
    let _web1 = start_http(&lab.topo.rs1, &lab.topo.dir, "rs1", NAT_RIP1, "RS1-web1")
        .expect("start RS1's HTTP server");
    let up_at = Instant::now();
    wait_pool(&d, &both, MARGIN);
    let took = up_at.elapsed();
    assert!(
        took >= Duration::from_millis(800),
        "RS1 back after {took:?}, before 5 checks 0.3 s apart could pass"
    );
    wait_log(&d, &format!("{VS}, 203.0.113.11:80 is back."), MARGIN);

    // Blink RS2: down 0.4 s plus its restart (a few failed checks, fewer
    // than 6), then up 1 s (a passing check resets the count).
    let mut web2 = lab.topo.http[1];
    let seen = watch(&d, "203.0.113.12:80", || {
        for _ in 0..4 {
            stop(&lab.topo.rs2, web2);
            std::thread::sleep(Duration::from_millis(400));
            web2 = start_http(&lab.topo.rs2, &lab.topo.dir, "rs2", NAT_RIP2, "RS2-web2")
                .expect("start RS2's HTTP server");
            std::thread::sleep(Duration::from_millis(1000));
        }
    });
    assert!(
        seen.unlisted.is_empty() && seen.polls >= MIN_POLLS,
        "RS2 left the pool while blinking ({} polls): {:?}\nrvsd log:\n{}",
        seen.polls,
        seen.unlisted,
        d.log_text()
    );
    assert!(
        seen.health
            .iter()
            .any(|l| l.contains("  UP  ") && l.contains("connection refused")),
        "no failing check seen while RS2 blinked: {:#?}",
        seen.health
    );
    assert!(!d.log_text().contains("203.0.113.12:80 is gone."));

    // Down for good, it leaves after `fall` failures, not at the first.
    stop(&lab.topo.rs2, web2);
    let down_at = Instant::now();
    wait_pool(&d, &only_rs1, MARGIN);
    let took = down_at.elapsed();
    assert!(
        took >= Duration::from_millis(2000),
        "RS2 removed after {took:?}, before 6 checks 0.5 s apart could fail"
    );
    wait_log(&d, &format!("{VS}, 203.0.113.12:80 is gone."), MARGIN);
}

#[test]
fn all_down_the_sorry_server_answers_and_one_back_takes_the_traffic() {
    let Some(mut lab) = Lab::new("rvhsorry") else {
        return;
    };
    // A third host on the bridge runs the sorry server.
    let sorry_ip = std::net::Ipv4Addr::new(203, 0, 113, 13);
    lab.add_host("rs3", sorry_ip);
    let sorry_host = lab.hosts.last().expect("the sorry host");
    start_http(sorry_host, &lab.topo.dir, "rs3", sorry_ip, "sorry").expect("the sorry server");
    let cfg = lab.write(
        "rvs.toml",
        r#"[[service]]
vip = "198.51.100.10:80"
scheduler = "rr"
delay_loop = 0.5
connect_timeout = 1
retry = 0
sorry_server = "203.0.113.13:80"

[[service.real]]
addr = "203.0.113.11:80"
[[service.real.check]]
type = "http"

[[service.real]]
addr = "203.0.113.12:80"
[[service.real.check]]
type = "http"
"#,
    );
    let d = lab.rvsd(&["--config", &cfg, "--metrics-listen", "127.0.0.1:0"]);
    wait_pool(
        &d,
        &[
            "TCP 198.51.100.10:80 rr",
            "-> 203.0.113.11:80 Masq 1",
            "-> 203.0.113.12:80 Masq 1",
        ],
        MARGIN,
    );
    wait_steering(&d, 1, 2);
    let got = lab.curls(80, 2);
    assert_eq!(
        got,
        [Ok("RS2-web2".to_string()), Ok("RS1-web1".to_string())],
        "{}",
        d.log_text()
    );

    // Every real server down: only the sorry server is listed, and it
    // answers every request.
    stop(&lab.topo.rs1, lab.topo.http[0]);
    stop(&lab.topo.rs2, lab.topo.http[1]);
    let sorry_only = ["TCP 198.51.100.10:80 rr", "-> 203.0.113.13:80 Masq 1"];
    wait_pool(&d, &sorry_only, MARGIN);
    wait_steering(&d, 1, 1);
    let got = lab.curls(80, 5);
    assert!(
        got.iter().all(|r| r.as_deref() == Ok("sorry")),
        "{got:?}\n{}",
        d.log_text()
    );
    assert!(
        health(&d).starts_with(
            "TCP  198.51.100.10:80  quorum lost  live weight 0  sorry server serving\n"
        ),
        "{}",
        health(&d)
    );
    wait_log(
        &d,
        "TCP 198.51.100.10:80, quorum lost (live weight 0)",
        MARGIN,
    );

    // RS2 back: it replaces the sorry server and takes every request.
    let _web2 = start_http(&lab.topo.rs2, &lab.topo.dir, "rs2", NAT_RIP2, "RS2-web2")
        .expect("restart RS2's HTTP server");
    wait_pool(
        &d,
        &["TCP 198.51.100.10:80 rr", "-> 203.0.113.12:80 Masq 1"],
        MARGIN,
    );
    wait_steering(&d, 1, 1);
    let got = lab.curls(80, 5);
    assert!(
        got.iter().all(|r| r.as_deref() == Ok("RS2-web2")),
        "{got:?}\n{}",
        d.log_text()
    );
    wait_log(
        &d,
        "TCP 198.51.100.10:80, quorum regained (live weight 1)",
        MARGIN,
    );
}
