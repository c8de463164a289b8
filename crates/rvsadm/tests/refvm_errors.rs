//! Every userspace-visible outcome of the refvm `errors` scenario (real
//! ipvsadm 1.31 on kernel 6.1): exact stdout, stderr and exit code per argv.
//! Kernel refusals are replayed by the fake director returning the
//! `ApplyError` whose text the capture shows.

mod common;

use common::*;
use rvs_api::DirectorError;
use rvsadm::NumericResolver;

/// Cases that need the table the earlier commands built in the VM, or that
/// rvsadm answers differently on purpose (documented in the crate).
const SKIP: &[&str] = &[
    // listings of the VM's accumulated table: covered by refvm_listings.rs
    "state-initial",
    "state-weights",
    "state-sched",
    "state-tun",
    "state-final",
    "state-save",
    "state-after-restore",
    "state-timeout",
    "bundled-Ln",
    "lowercase-l",
    "list-stats-rate-ok",
    "list-svc-udp",
    // rvsadm's help text is its own wording (checked below)
    "help",
    "help-long",
    // rvs has no sync daemon; ipvsadm reached the kernel here
    "start-daemon-noif",
    // restore is atomic in rvsadm: covered by restore tests
    "restore-kernel-errs",
    "restore-parse-err",
    "restore-last-ok",
    "restore-prefix",
    "restore-blank-line",
    "restore-comment-line",
];

#[test]
fn errors_scenario_matches_real_ipvsadm() {
    let cases = load_cases("tests/fixtures/refvm/errors/cases.jsonl");
    assert!(cases.len() > 150, "fixture has {} cases", cases.len());
    let mut checked = 0;
    for case in cases
        .iter()
        .filter(|c| c.argv.first().map(String::as_str) == Some("ipvsadm"))
    {
        if SKIP.contains(&case.slug.as_str()) {
            continue;
        }
        let mut d = FakeDirector::empty();
        if let Some(e) = apply_error_for(case.stderr.trim_end_matches('\n')) {
            d.apply_error = Some(DirectorError::Apply { index: 0, error: e });
        }
        let args: Vec<&str> = case.argv[1..].iter().map(String::as_str).collect();
        let (out, err, rc) = run(&args, &mut d, "", &NumericResolver);
        assert_eq!(
            (out.as_str(), err.as_str(), rc),
            (case.stdout.as_str(), case.stderr.as_str(), case.rc),
            "case {} {:?}",
            case.slug,
            case.argv
        );
        if case.rc == 0 && case.stdout.is_empty() && !args.contains(&"--daemon") {
            assert_eq!(
                d.applied.len(),
                1,
                "case {} should apply one batch",
                case.slug
            );
        }
        checked += 1;
    }
    assert!(checked > 140, "only {checked} cases checked");
}

#[test]
fn help_goes_to_stdout_with_rc0_and_version_first() {
    for flag in ["-h", "--help"] {
        let mut d = FakeDirector::empty();
        let (out, err, rc) = run(&[flag, "--ignored"], &mut d, "", &NumericResolver);
        assert_eq!(rc, 0);
        assert_eq!(err, "");
        assert!(out.starts_with(
            "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\nUsage:\n"
        ));
        assert!(out.contains("  ipvsadm --set tcp tcpfin udp\n"));
    }
}

#[test]
fn start_daemon_is_refused_stop_daemon_reports_none_running() {
    let mut d = FakeDirector::empty();
    let (_, err, rc) = run(
        &["--start-daemon", "master", "--mcast-interface", "eth1"],
        &mut d,
        "",
        &NumericResolver,
    );
    assert_eq!(rc, 255);
    assert!(err.starts_with("Protocol not available"));
    let (_, err, rc) = run(
        &["--stop-daemon", "backup", "--syncid", "3"],
        &mut d,
        "",
        &NumericResolver,
    );
    assert_eq!((err.as_str(), rc), ("No daemon is running\n", 255));
    assert!(d.applied.is_empty());
}
