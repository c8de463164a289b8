//! Resource bound: an idle director uses close to no CPU (no busy
//! polling). rvsd runs the seed's NAT rules with steering installed, has
//! served a few requests, and then is left alone for 5 seconds; its CPU
//! time over that window, children included (`utime + stime + cutime +
//! cstime` of `/proc/<pid>/stat`, in clock ticks), must stay under 5% of
//! one core. This bounds resource use, not speed: a busy-polling loop
//! burns a whole core (100%), rvsd idles at well under 1%.
//!
//! Needs root; skipped otherwise. Every namespace and process is owned by
//! a guard that removes it on any exit path, panics included.

use rvs_testnet::{is_root, workspace_bin, NatTopology, Rvsd, NAT_VIP};
use std::path::Path;
use std::time::{Duration, Instant};

const RVSD: &str = env!("CARGO_BIN_EXE_rvsd");

/// utime + stime + cutime + cstime of `pid`, in clock ticks. The fields
/// after the command name (which may hold spaces) are counted from its
/// closing parenthesis: state is field 3, utime field 14.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/pid/stat");
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).expect("comm");
    let fields: Vec<&str> = after.split_whitespace().collect();
    // fields[0] is field 3 (state), so field n is fields[n - 3].
    (14..=17)
        .map(|n| fields[n - 3].parse::<u64>().expect("tick count"))
        .sum()
}

fn clock_ticks_per_second() -> u64 {
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .expect("getconf CLK_TCK");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("CLK_TCK")
}

#[test]
fn idle_director_uses_under_five_percent_of_a_core() {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    let topo = NatTopology::create("rvlid").expect("topology");
    let rvsadm = workspace_bin(Path::new(RVSD), "rvsadm", "rvsadm").expect("rvsadm");
    let d = Rvsd::start(&topo.director, Path::new(RVSD), &rvsadm, &topo.dir, &[]).expect("rvsd");
    d.ipvsadm("-A -t 198.51.100.10:80 -s rr").expect("-A");
    d.ipvsadm("-a -t 198.51.100.10:80 -r 203.0.113.11 -m")
        .expect("-a");
    d.ipvsadm("-a -t 198.51.100.10:80 -r 203.0.113.12 -m")
        .expect("-a");
    d.wait_steering(1, 2).expect("steering");
    for _ in 0..4 {
        topo.curl_from_client(NAT_VIP, 80).expect("curl");
    }
    std::thread::sleep(Duration::from_secs(1));

    let hz = clock_ticks_per_second();
    let before = cpu_ticks(d.pid.pid);
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    let used = cpu_ticks(d.pid.pid) - before;
    let window = start.elapsed().as_secs_f64();
    let share = used as f64 / hz as f64 / window;
    eprintln!(
        "rvsd idle CPU: {used} ticks in {window:.2} s = {:.2}% of one core",
        share * 100.0
    );
    assert!(
        share < 0.05,
        "idle rvsd used {:.1}% of a core\nrvsd log:\n{}",
        share * 100.0,
        d.log_text()
    );
}
