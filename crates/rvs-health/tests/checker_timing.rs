//! Exact timing of one checker (retry, delay_before_retry, delay_loop,
//! rise, fall) with an injected clock. Expected times are worked out by
//! hand from keepalived's rules, written next to each case.

#![allow(clippy::unwrap_used)]

use rvs_health::{CheckKind, CheckTiming, Checker, ProbeOutcome};
use std::time::Duration;

fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn timing(delay_loop: u64, retry: u32, dbr: u64, rise: u32, fall: u32) -> CheckTiming {
    CheckTiming {
        delay_loop: s(delay_loop),
        connect_timeout: s(2),
        retry,
        delay_before_retry: s(dbr),
        rise,
        fall,
    }
}

fn fail() -> ProbeOutcome {
    ProbeOutcome::fail("connection refused")
}

fn pass() -> ProbeOutcome {
    ProbeOutcome::pass("HTTP 200")
}

/// Drive the checker: at each step, start at `next_probe_at`, finish
/// `took` seconds later with the outcome; record (start, transition).
fn drive(c: &mut Checker, steps: &[(u64, ProbeOutcome)]) -> Vec<(Duration, Option<bool>)> {
    let mut out = Vec::new();
    for (took, outcome) in steps {
        let at = c.next_probe_at().expect("idle");
        assert!(c.start(at));
        let u = c.finish(at + s(*took), outcome.clone());
        out.push((at, u.transition));
    }
    out
}

#[test]
fn keepalived_defaults() {
    let tcp = CheckTiming::defaults(CheckKind::Tcp);
    assert_eq!(
        (
            tcp.delay_loop,
            tcp.connect_timeout,
            tcp.retry,
            tcp.delay_before_retry
        ),
        (s(60), s(5), 1, s(1))
    );
    let http = CheckTiming::defaults(CheckKind::Http);
    assert_eq!((http.retry, http.delay_before_retry), (1, s(3)));
    let https = CheckTiming::defaults(CheckKind::Https);
    assert_eq!((https.retry, https.delay_before_retry), (1, s(3)));
    let misc = CheckTiming::defaults(CheckKind::Misc);
    assert_eq!((misc.retry, misc.delay_before_retry), (0, s(1)));
    assert_eq!((tcp.rise, tcp.fall), (1, 1));
}

#[test]
fn retries_then_down_then_next_loop() {
    // delay_loop 10, retry 2, delay_before_retry 1; each failure is a
    // 2 s timeout. Attempt 1 at 0 fails at 2, retry at 3 fails at 5,
    // retry at 6 fails at 8: down at 8; next check at 18 (not retried
    // while down), fails at 20, next at 30.
    let mut c = Checker::new(timing(10, 2, 1, 1, 1), true, s(0));
    let got = drive(
        &mut c,
        &[
            (2, fail()),
            (2, fail()),
            (2, fail()),
            (2, fail()),
            (0, pass()),
        ],
    );
    assert_eq!(
        got,
        vec![
            (s(0), None),
            (s(3), None),
            (s(6), Some(false)),
            (s(18), None),
            (s(30), Some(true)),
        ]
    );
    assert!(c.is_up());
    assert_eq!(c.next_probe_at(), Some(s(40)));
}

#[test]
fn a_retry_that_passes_keeps_the_server_up() {
    let mut c = Checker::new(timing(10, 1, 3, 1, 1), true, s(5));
    let got = drive(&mut c, &[(1, fail()), (1, pass()), (0, pass())]);
    // 5 fails at 6 -> retry at 9, passes at 10 -> next check at 20.
    assert_eq!(got, vec![(s(5), None), (s(9), None), (s(20), None)]);
    assert!(c.is_up());
}

#[test]
fn fall_counts_failed_checks_not_attempts() {
    // retry 1, fall 2, delay_loop 10, dbr 1, failures instant.
    // check 1: 0 fail, 1 fail (check failed, 1 of 2); next at 11.
    // check 2: 11 fail, 12 fail -> down at 12; next at 22.
    let mut c = Checker::new(timing(10, 1, 1, 1, 2), true, s(0));
    let got = drive(
        &mut c,
        &[(0, fail()), (0, fail()), (0, fail()), (0, fail())],
    );
    assert_eq!(
        got,
        vec![
            (s(0), None),
            (s(1), None),
            (s(11), None),
            (s(12), Some(false))
        ]
    );
    assert_eq!(c.next_probe_at(), Some(s(22)));
}

#[test]
fn a_pass_between_failures_resets_fall() {
    let mut c = Checker::new(timing(10, 0, 1, 1, 2), true, s(0));
    let got = drive(
        &mut c,
        &[(0, fail()), (0, pass()), (0, fail()), (0, fail())],
    );
    assert_eq!(
        got,
        vec![
            (s(0), None),
            (s(10), None),
            (s(20), None),
            (s(30), Some(false))
        ]
    );
}

#[test]
fn rise_keeps_a_flapping_server_out() {
    // Down, rise 3: pass, fail, pass, pass, fail, pass, pass, pass -> up
    // only on the 8th check (t = 70).
    let mut c = Checker::new(timing(10, 1, 1, 3, 1), false, s(0));
    let seq = [
        pass(),
        fail(),
        pass(),
        pass(),
        fail(),
        pass(),
        pass(),
        pass(),
    ];
    let steps: Vec<(u64, ProbeOutcome)> = seq.iter().map(|o| (0, o.clone())).collect();
    let got = drive(&mut c, &steps);
    let ups: Vec<Duration> = got
        .iter()
        .filter(|(_, t)| *t == Some(true))
        .map(|(at, _)| *at)
        .collect();
    assert_eq!(ups, vec![s(70)]);
    // No retries while down: every check is delay_loop apart.
    let starts: Vec<Duration> = got.iter().map(|(at, _)| *at).collect();
    assert_eq!(starts, (0..8).map(|i| s(i * 10)).collect::<Vec<_>>());
}

#[test]
fn not_due_means_no_start_and_in_flight_blocks() {
    let mut c = Checker::new(timing(10, 1, 1, 1, 1), true, s(5));
    assert!(!c.start(s(4)));
    assert!(c.start(s(5)));
    assert_eq!(c.next_probe_at(), None);
    assert!(!c.start(s(6)));
    c.finish(s(6), pass());
    assert_eq!(c.next_probe_at(), Some(s(16)));
}

#[test]
fn dynamic_weight_is_reported_once() {
    let mut c = Checker::new(timing(10, 0, 1, 1, 1), true, s(0));
    assert!(c.start(s(0)));
    let u = c.finish(
        s(0),
        ProbeOutcome::Pass {
            weight: Some(5),
            detail: "exit 7".into(),
        },
    );
    assert!(u.weight_changed);
    assert_eq!(c.dynamic_weight(), Some(5));
    assert!(c.start(s(10)));
    let u = c.finish(
        s(10),
        ProbeOutcome::Pass {
            weight: Some(5),
            detail: "exit 7".into(),
        },
    );
    assert!(!u.weight_changed);
}
