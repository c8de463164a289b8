//! `--sysctl` listing and setting, lossless save of knobs, the
//! `ipvsadm-save` / `ipvsadm-restore` personalities and `--save-rules` /
//! `--load-rules`, all against an in-process engine (`LocalDirector`).

use rvs_api::{Director, LocalDirector};
use rvsadm::NumericResolver;
use std::path::PathBuf;

/// Runs `program args` against `d`; returns (stdout, stderr, rc).
fn run_as(
    program: &str,
    args: &[&str],
    d: &mut dyn Director,
    stdin: &str,
) -> (String, String, i32) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let mut input = stdin.as_bytes();
    let mut out = Vec::new();
    let mut err = Vec::new();
    let rc = rvsadm::run(
        &args,
        program,
        d,
        &mut input,
        &mut out,
        &mut err,
        &NumericResolver,
    );
    (
        String::from_utf8(out).expect("utf8 stdout"),
        String::from_utf8(err).expect("utf8 stderr"),
        rc,
    )
}

fn adm(args: &[&str], d: &mut dyn Director) -> (String, String, i32) {
    run_as("ipvsadm", args, d, "")
}

/// Runs a command that must succeed silently.
fn ok(args: &[&str], d: &mut dyn Director) {
    assert_eq!(adm(args, d), (String::new(), String::new(), 0), "{args:?}");
}

fn save_n(d: &mut dyn Director) -> String {
    let (out, err, rc) = adm(&["-S", "-n"], d);
    assert_eq!((err.as_str(), rc), ("", 0));
    out
}

/// The seed's table after the wrr step, built through the command line.
fn seed(d: &mut dyn Director) {
    ok(&["-A", "-t", "198.51.100.10:80", "-s", "wrr"], d);
    ok(
        &[
            "-a",
            "-t",
            "198.51.100.10:80",
            "-r",
            "203.0.113.11",
            "-m",
            "-w",
            "3",
        ],
        d,
    );
    ok(
        &[
            "-a",
            "-t",
            "198.51.100.10:80",
            "-r",
            "203.0.113.12",
            "-m",
            "-w",
            "1",
        ],
        d,
    );
}

/// ipvsadm 1.31's `-S -n` of the seed table (refvm seed-nat transcript).
const SEED_SAVE: &str = "-A -t 198.51.100.10:80 -s wrr
-a -t 198.51.100.10:80 -r 203.0.113.11:80 -m -w 3
-a -t 198.51.100.10:80 -r 203.0.113.12:80 -m -w 1
";

const ALL_DEFAULT_KNOBS: &str = "cache_bypass=0
conn_reuse_mode=1
expire_nodest_conn=0
expire_quiescent_template=0
lblc_expiration=86400
lblcr_expiration=86400
nat_icmp_send=0
pmtu_disc=1
schedule_icmp=0
sloppy_sctp=0
sloppy_tcp=0
";

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rvsadm-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

// ------------------------------------------------------------------ --sysctl

#[test]
fn sysctl_lists_every_knob_with_kernel_defaults() {
    let mut d = LocalDirector::new();
    assert_eq!(
        adm(&["--sysctl"], &mut d),
        (ALL_DEFAULT_KNOBS.to_string(), String::new(), 0)
    );
}

#[test]
fn sysctl_sets_and_reads_one_knob() {
    let mut d = LocalDirector::new();
    ok(&["--sysctl", "sloppy_tcp=1"], &mut d);
    ok(&["--sysctl=conn_reuse_mode=3"], &mut d);
    ok(&["--sysctl", "lblc_expiration=600"], &mut d);
    assert_eq!(
        adm(&["--sysctl", "sloppy_tcp"], &mut d),
        ("sloppy_tcp=1\n".into(), String::new(), 0)
    );
    assert_eq!(
        adm(&["--sysctl=conn_reuse_mode"], &mut d),
        ("conn_reuse_mode=3\n".into(), String::new(), 0)
    );
    assert_eq!(
        adm(&["--sysctl", "pmtu_disc"], &mut d),
        ("pmtu_disc=1\n".into(), String::new(), 0)
    );
    let (all, _, rc) = adm(&["--sysctl"], &mut d);
    assert_eq!(rc, 0);
    let want = ALL_DEFAULT_KNOBS
        .replace("sloppy_tcp=0", "sloppy_tcp=1")
        .replace("conn_reuse_mode=1", "conn_reuse_mode=3")
        .replace("lblc_expiration=86400", "lblc_expiration=600");
    assert_eq!(all, want);
}

#[test]
fn sysctl_unknown_names_and_bad_values_fail_with_255_and_change_nothing() {
    let mut d = LocalDirector::new();
    assert_eq!(
        adm(&["--sysctl", "no_such_knob"], &mut d),
        (
            String::new(),
            "unknown IPVS setting `no_such_knob'\n".into(),
            255
        )
    );
    assert_eq!(
        adm(&["--sysctl", "no_such_knob=1"], &mut d),
        (
            String::new(),
            "unknown IPVS setting `no_such_knob'\n".into(),
            255
        )
    );
    let (_, err, rc) = adm(&["--sysctl", "pmtu_disc=2"], &mut d);
    assert_eq!(
        (err.as_str(), rc),
        (
            "Invalid operation.  Possibly wrong module version, address not unicast, ...\n",
            255
        )
    );
    let (_, err, rc) = adm(&["--sysctl", "lblc_expiration=0"], &mut d);
    assert_eq!(rc, 255, "{err}");
    // Malformed arguments are usage errors (rc 2), as before.
    let (_, err, rc) = adm(&["--sysctl", "pmtu_disc=x"], &mut d);
    assert_eq!(
        (err.as_str(), rc),
        ("invalid sysctl `pmtu_disc=x' specified\n", 2)
    );
    assert_eq!(adm(&["--sysctl"], &mut d).0, ALL_DEFAULT_KNOBS);
}

// ------------------------------------------------------------ lossless save

#[test]
fn save_of_default_knobs_is_byte_identical_to_ipvsadm() {
    let mut d = LocalDirector::new();
    seed(&mut d);
    assert_eq!(save_n(&mut d), SEED_SAVE);
    // Setting a knob back to its default leaves no trace.
    ok(&["--sysctl", "sloppy_tcp=1"], &mut d);
    ok(&["--sysctl", "sloppy_tcp=0"], &mut d);
    assert_eq!(save_n(&mut d), SEED_SAVE);
}

#[test]
fn save_writes_non_default_knobs_first_and_restore_reads_them_back() {
    let mut d = LocalDirector::new();
    seed(&mut d);
    ok(&["--sysctl", "sloppy_tcp=1"], &mut d);
    ok(&["--sysctl", "expire_nodest_conn=1"], &mut d);
    ok(&["--sysctl", "pmtu_disc=0"], &mut d);
    ok(&["--set", "600", "0", "0"], &mut d);
    let saved = save_n(&mut d);
    assert_eq!(
        saved,
        format!(
            "--sysctl expire_nodest_conn=1\n--sysctl pmtu_disc=0\n--sysctl sloppy_tcp=1\n--set 600 120 300\n{SEED_SAVE}"
        )
    );

    // Into a fresh director: the same table, timeouts and knobs.
    let mut fresh = LocalDirector::new();
    assert_eq!(
        run_as("ipvsadm", &["-R"], &mut fresh, &saved),
        (String::new(), String::new(), 0)
    );
    assert_eq!(save_n(&mut fresh), saved);
    assert_eq!(fresh.knobs(), d.knobs());
    let (knobs, _, _) = adm(&["--sysctl"], &mut fresh);
    assert!(knobs.contains("\npmtu_disc=0\n"), "{knobs}");
}

#[test]
fn restore_refuses_a_bad_knob_line_and_changes_nothing() {
    let mut d = LocalDirector::new();
    seed(&mut d);
    let text = "--sysctl sloppy_tcp=1\n-A -t 192.0.2.1:80 -s rr\n--sysctl pmtu_disc=7\n";
    let (_, err, rc) = run_as("ipvsadm", &["-R"], &mut d, text);
    assert_eq!(
        (err.as_str(), rc),
        (
            "line 3: Invalid operation.  Possibly wrong module version, address not unicast, ...\n",
            255
        )
    );
    assert_eq!(save_n(&mut d), SEED_SAVE);
    assert_eq!(adm(&["--sysctl", "sloppy_tcp"], &mut d).0, "sloppy_tcp=0\n");
    // Showing a setting is not a configuration command.
    let (_, err, rc) = run_as("ipvsadm", &["-R"], &mut d, "--sysctl sloppy_tcp\n");
    assert_eq!(
        (err.as_str(), rc),
        (
            "line 1: only configuration commands are allowed in a restore stream\n",
            2
        )
    );
}

// ------------------------------------------------------ argv[0] personalities

#[test]
fn save_personality_is_dash_capital_s() {
    let mut d = LocalDirector::new();
    seed(&mut d);
    ok(&["--sysctl", "schedule_icmp=1"], &mut d);
    let want = format!("--sysctl schedule_icmp=1\n{SEED_SAVE}");
    for program in ["ipvsadm-save", "/usr/sbin/rvsadm-save", "./ipvsadm-save"] {
        assert_eq!(
            run_as(program, &["-n"], &mut d, ""),
            (want.clone(), String::new(), 0),
            "{program}"
        );
    }
    // Without -n it resolves names like `ipvsadm -S` (nothing to resolve
    // with the numeric resolver, so the same text).
    assert_eq!(run_as("ipvsadm-save", &[], &mut d, "").0, want);
    // Options -S does not take are refused as ipvsadm -S would.
    let (_, err, rc) = run_as("ipvsadm-save", &["-c"], &mut d, "");
    assert_eq!(
        (err.as_str(), rc),
        ("Illegal 'connection' option with the 'save' command\n", 2)
    );
}

#[test]
fn restore_personality_replaces_the_table_atomically() {
    let mut d = LocalDirector::new();
    ok(&["-A", "-u", "192.0.2.53:53", "-s", "rr"], &mut d);
    // A good stream replaces everything (the old UDP service is gone).
    let (out, err, rc) = run_as("ipvsadm-restore", &[], &mut d, SEED_SAVE);
    assert_eq!((out.as_str(), err.as_str(), rc), ("", "", 0));
    assert_eq!(save_n(&mut d), SEED_SAVE);

    // A parse error: nothing changes, the line is named.
    let bad = "-A -t 192.0.2.1:80 -s rr\n\n-a -t 192.0.2.1:80 -r 10.0.0.1 -w -5\n";
    let (_, err, rc) = run_as("rvsadm-restore", &[], &mut d, bad);
    assert_eq!(
        (err.as_str(), rc),
        ("line 3: illegal weight specified\n", 2)
    );
    assert_eq!(save_n(&mut d), SEED_SAVE);

    // A refused command (the engine's error): nothing changes either, and
    // the line number is that of the offending command, not shifted by the
    // clear that precedes the batch.
    let dup = "# rules\n-A -t 192.0.2.1:80 -s rr\n-A -t 192.0.2.1:80 -s wlc\n";
    let (_, err, rc) = run_as("/sbin/ipvsadm-restore", &[], &mut d, dup);
    assert_eq!(
        (err.as_str(), rc),
        ("line 3: Service already exists\n", 255)
    );
    assert_eq!(save_n(&mut d), SEED_SAVE);

    // The table's own save restores to the same table even with the
    // services already present (ipvsadm -R alone would fail here).
    let (_, err, rc) = run_as("ipvsadm-restore", &[], &mut d, SEED_SAVE);
    assert_eq!((err.as_str(), rc), ("", 0));
    assert_eq!(save_n(&mut d), SEED_SAVE);

    // An empty stream empties the table, as `ipvsadm -C` would.
    assert_eq!(
        run_as("ipvsadm-restore", &[], &mut d, "\n# nothing\n"),
        (String::new(), String::new(), 0)
    );
    assert_eq!(save_n(&mut d), "");

    // Arguments are refused.
    let (_, err, rc) = run_as("rvsadm-restore", &["-n"], &mut d, SEED_SAVE);
    assert_eq!(
        (err.as_str(), rc),
        (
            "rvsadm-restore takes no arguments; it reads the rules from standard input\n",
            2
        )
    );
    assert_eq!(save_n(&mut d), "");
}

#[test]
fn plain_dash_r_still_merges_and_reports_conflicts() {
    // Unlike the restore personality, `-R` adds to the table as ipvsadm's
    // does. (Save order: protocol first, TCP 6 before UDP 17.)
    let mut d = LocalDirector::new();
    seed(&mut d);
    let extra = "-A -u 192.0.2.53:53 -s rr\n";
    assert_eq!(run_as("ipvsadm", &["-R"], &mut d, extra).2, 0);
    assert_eq!(
        save_n(&mut d),
        format!("{SEED_SAVE}-A -u 192.0.2.53:53 -s rr\n")
    );
}

// ------------------------------------------------ --save-rules / --load-rules

#[test]
fn save_rules_and_load_rules_through_a_file() {
    let dir = temp_dir("rules");
    let file = dir.join("etc").join("rvs").join("rules");
    let file_s = file.to_string_lossy().into_owned();

    let mut d = LocalDirector::new();
    seed(&mut d);
    ok(&["--sysctl", "expire_quiescent_template=1"], &mut d);
    ok(&["--save-rules", &file_s], &mut d);
    let want = format!("--sysctl expire_quiescent_template=1\n{SEED_SAVE}");
    assert_eq!(std::fs::read_to_string(&file).expect("rules file"), want);

    // Loading replaces whatever the director has.
    let mut other = LocalDirector::new();
    ok(&["-A", "-t", "192.0.2.9:443", "-s", "sh"], &mut other);
    ok(&[&format!("--load-rules={file_s}")], &mut other);
    assert_eq!(save_n(&mut other), want);

    // Saving again overwrites the file in place.
    ok(&["-D", "-t", "198.51.100.10:80"], &mut d);
    ok(&["--save-rules", &file_s], &mut d);
    assert_eq!(
        std::fs::read_to_string(&file).expect("rules file"),
        "--sysctl expire_quiescent_template=1\n"
    );

    // A broken file names itself and the line, and changes nothing.
    let broken = dir.join("broken");
    std::fs::write(
        &broken,
        "-A -t 192.0.2.1:80\n-a -t 192.0.2.1:80 -r nohost\n",
    )
    .expect("write");
    let (_, err, rc) = adm(&["--load-rules", &broken.to_string_lossy()], &mut other);
    assert_eq!(rc, 2);
    assert_eq!(
        err,
        format!(
            "{}: line 2: illegal real server address[:port] specified\n",
            broken.display()
        )
    );
    assert_eq!(save_n(&mut other), want);

    // A missing file is an error and changes nothing.
    let missing = dir.join("missing");
    let (_, err, rc) = adm(&["--load-rules", &missing.to_string_lossy()], &mut other);
    assert_eq!(
        (err, rc),
        (
            format!(
                "cannot read {}: No such file or directory\n",
                missing.display()
            ),
            2
        )
    );
    assert_eq!(save_n(&mut other), want);

    // Extra words are refused.
    let (_, err, rc) = adm(&["--save-rules", &file_s, "-n"], &mut d);
    assert_eq!(
        (err.as_str(), rc),
        (
            "--save-rules takes at most one argument, a file name (default /etc/rvs/rules)\n",
            2
        )
    );
    let _ = std::fs::remove_dir_all(&dir);
}
