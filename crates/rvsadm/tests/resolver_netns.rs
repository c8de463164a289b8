//! Names without `-n` come from the C library, as with ipvsadm: the
//! `ipvsadm` symlink runs inside a network namespace made here, whose
//! `/etc/netns/<ns>/` files (`ip netns exec` bind-mounts them over `/etc`)
//! give it its own hosts, services, nsswitch.conf and resolv.conf. The
//! resolver points at 192.0.2.53, reached through a veth pair whose both
//! ends are in the namespace and where nothing answers, so a name missing
//! from the hosts file costs one DNS timeout (1 s) and never reaches this
//! machine's DNS server. rvsd (`--no-datapath`) runs outside, on a private
//! socket. Expected listings are written by hand from ipvsadm's formats.

use rvs_testnet::{is_root, unique_prefix, Netns};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

const HOSTS: &str = "127.0.0.1\tlocalhost\n\
198.51.100.10\tweb-vip.test web-vip\n\
203.0.113.11\trs1.test rs1\n\
203.0.113.12\trs2.test\n\
2001:db8::10\tv6-vip.test\n\
2001:db8::11\tv6-rs1.test\n";

// Names this machine's /etc/services does not have, so a listing that
// shows them read this file through the C library.
const SERVICES: &str = "http\t\t80/tcp\t\twww\n\
rvs-alt\t\t8080/tcp\n\
rvs-dns\t\t5353/udp\n\
rvs-sctp\t3868/sctp\n";

const NSSWITCH: &str = "hosts:\t\tfiles dns\nservices:\tfiles\n";

const RESOLV: &str = "nameserver 192.0.2.53\noptions timeout:1 attempts:1\n";

/// `/etc/netns/<ns>`, removed on drop (whatever the test's outcome).
struct EtcNetns(PathBuf);

impl Drop for EtcNetns {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

mod private_rvsd;

use private_rvsd::Daemon;

/// Everything the test made; fields drop in order: rvsd, then the
/// namespace, then its /etc files.
struct World {
    _daemon: Daemon,
    ns: Netns,
    _etc: EtcNetns,
    link: PathBuf,
    socket: PathBuf,
}

fn start() -> Option<World> {
    if !is_root() {
        eprintln!("skipping: network namespaces need root");
        return None;
    }
    private_rvsd::rvsd_path()?;
    let name = unique_prefix("rvsres");
    let etc = EtcNetns(Path::new("/etc/netns").join(&name));
    std::fs::create_dir_all(&etc.0).expect("/etc/netns/<ns>");
    for (file, text) in [
        ("hosts", HOSTS),
        ("services", SERVICES),
        ("nsswitch.conf", NSSWITCH),
        ("resolv.conf", RESOLV),
    ] {
        std::fs::write(etc.0.join(file), text).expect("write /etc/netns file");
    }
    let ns = Netns::create(&name).expect("ip netns add");
    // A route to the resolver, through a veth pair kept inside the
    // namespace; the static neighbour makes queries leave at once, and
    // the peer (no address, other MAC) drops them: a timeout, no answer.
    for args in [
        &[
            "link", "add", "rdns0", "type", "veth", "peer", "name", "rdns1",
        ][..],
        &["link", "set", "rdns0", "up"],
        &["link", "set", "rdns1", "up"],
        &["addr", "add", "192.0.2.1/24", "dev", "rdns0"],
        &[
            "neigh",
            "replace",
            "192.0.2.53",
            "lladdr",
            "02:00:00:00:00:53",
            "dev",
            "rdns0",
            "nud",
            "permanent",
        ],
    ] {
        ns.ip(args).expect("namespace setup");
    }
    let daemon = private_rvsd::start(&format!("{name}-rvsd")).expect("rvsd is built");
    let link = private_rvsd::link_rvsadm(&daemon, "ipvsadm");
    let socket = daemon.socket.clone();
    Some(World {
        _daemon: daemon,
        ns,
        _etc: etc,
        link,
        socket,
    })
}

impl World {
    /// `ipvsadm ARGS` inside the namespace: (stdout, stderr, exit code).
    fn ipvsadm(&self, args: &[&str]) -> (String, String, i32) {
        let link = self.link.to_string_lossy().into_owned();
        let socket = self.socket.to_string_lossy().into_owned();
        let mut argv = vec![link.as_str()];
        argv.extend_from_slice(args);
        let out: Output = self
            .ns
            .output(&argv, &[("RVS_SOCKET", socket.as_str())])
            .expect("ip netns exec");
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            out.status.code().unwrap_or(-1),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (out, err, rc) = self.ipvsadm(args);
        assert_eq!((rc, err.as_str()), (0, ""), "ipvsadm {args:?}");
        out
    }
}

/// Column titles; a one-service listing (`-L -t`) prints only these.
const TITLES: &str = "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";
/// The whole-table header: the version line, then the titles.
const HEADER: &str = "IP Virtual Server version 1.2.1 (size=4096)\n\
Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";

/// ipvsadm's dest line, `"  -> %-28s %-7s %-6d %-10u %-10u\n"`, idle.
fn dest(addr_port: &str, weight: u32) -> String {
    format!("  -> {addr_port:<28} Masq    {weight:<6} 0          0         \n")
}

#[test]
fn listing_names_come_from_the_namespace_hosts_services_and_resolver() {
    let Some(w) = start() else {
        return;
    };
    // Forward lookups (gethostbyname / getservbyname) read the same files.
    for cmd in [
        &["-A", "-t", "web-vip:http", "-s", "rr"][..],
        &["-a", "-t", "web-vip:http", "-r", "rs1:http", "-m"],
        &["-a", "-t", "web-vip:http", "-r", "rs2.test:rvs-alt", "-m"],
        &["-a", "-t", "198.51.100.10:80", "-r", "203.0.113.99", "-m"],
        &["-A", "-t", "web-vip.test:rvs-alt", "-s", "wrr"],
        &["-a", "-t", "198.51.100.10:8080", "-r", "rs1:9999", "-m"],
        &["-a", "-t", "198.51.100.10:8080", "-r", "203.0.113.99", "-m"],
        &["-A", "-u", "web-vip:rvs-dns", "-s", "rr"],
        &["-a", "-u", "198.51.100.10:5353", "-r", "203.0.113.99", "-m"],
        &["-A", "--sctp-service", "web-vip:rvs-sctp", "-s", "rr"],
        &[
            "-a",
            "--sctp-service",
            "198.51.100.10:3868",
            "-r",
            "rs1",
            "-m",
        ],
        &["-A", "-t", "[2001:db8::10]:80", "-s", "rr"],
        &[
            "-a",
            "-t",
            "[2001:db8::10]:80",
            "-r",
            "[2001:db8::11]:80",
            "-m",
        ],
        &[
            "-a",
            "-t",
            "[2001:db8::10]:80",
            "-r",
            "[2001:db8::99]:443",
            "-m",
        ],
    ] {
        w.ok(cmd);
    }
    // Everything the names stand for, numerically.
    let numeric = format!(
        "{HEADER}TCP  198.51.100.10:80 rr\n{}{}{}TCP  198.51.100.10:8080 wrr\n{}{}\
UDP  198.51.100.10:5353 rr\n{}SCTP 198.51.100.10:3868 rr\n{}TCP  [2001:db8::10]:80 rr\n{}{}",
        dest("203.0.113.11:80", 1),
        dest("203.0.113.12:8080", 1),
        dest("203.0.113.99:80", 1),
        dest("203.0.113.11:9999", 1),
        dest("203.0.113.99:8080", 1),
        dest("203.0.113.99:5353", 1),
        dest("203.0.113.11:3868", 1),
        dest("[2001:db8::11]:80", 1),
        dest("[2001:db8::99]:443", 1),
    );
    let started = Instant::now();
    assert_eq!(w.ok(&["-L", "-n"]), numeric);
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "-n must not look anything up ({:?})",
        started.elapsed()
    );

    // Names: the first name of each hosts line, services by protocol,
    // numbers where neither file nor DNS knows (443 is not in this
    // namespace's services file; 203.0.113.99 and 2001:db8::99 are in no
    // hosts line and the resolver never answers).
    let named = format!(
        "{HEADER}TCP  web-vip.test:http rr\n{}{}{}TCP  web-vip.test:rvs-alt wrr\n{}{}\
UDP  web-vip.test:rvs-dns rr\n{}SCTP web-vip.test:rvs-sctp rr\n{}TCP  [v6-vip.test]:http rr\n{}{}",
        dest("rs1.test:http", 1),
        dest("rs2.test:rvs-alt", 1),
        dest("203.0.113.99:http", 1),
        dest("rs1.test:9999", 1),
        dest("203.0.113.99:rvs-alt", 1),
        dest("203.0.113.99:rvs-dns", 1),
        dest("rs1.test:rvs-sctp", 1),
        dest("[v6-rs1.test]:http", 1),
        dest("[2001:db8::99]:443", 1),
    );
    let started = Instant::now();
    assert_eq!(w.ok(&["-L"]), named);
    let took = started.elapsed();
    // Two addresses unknown to the hosts file: one 1 s DNS timeout each.
    // 203.0.113.99 is listed three times but asked about once; asking
    // each time would take 4 s. Under 1.8 s, the queries did not wait
    // for 192.0.2.53 (another resolver answered, or none was asked).
    assert!(
        took >= Duration::from_millis(1800) && took < Duration::from_millis(3500),
        "-L took {took:?}"
    );
    // With no arguments ipvsadm lists with names too.
    assert_eq!(w.ok(&[]), named);

    // rvs-dns is a UDP name only: as a TCP service it means nothing.
    assert_eq!(
        w.ipvsadm(&["-L", "-t", "web-vip:rvs-dns"]),
        (
            String::new(),
            "illegal virtual server address[:port] specified\n".to_string(),
            2
        )
    );
    // One service, with one unknown address: one DNS wait.
    let started = Instant::now();
    assert_eq!(
        w.ok(&["-L", "-u", "web-vip:rvs-dns"]),
        format!(
            "{TITLES}UDP  web-vip.test:rvs-dns rr\n{}",
            dest("203.0.113.99:rvs-dns", 1)
        )
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(
        w.ok(&["-L", "-u", "198.51.100.10:5353", "-n"]),
        format!(
            "{TITLES}UDP  198.51.100.10:5353 rr\n{}",
            dest("203.0.113.99:5353", 1)
        )
    );

    // Save without -n prints names as well.
    assert_eq!(
        w.ok(&["-S"]),
        "-A -t web-vip.test:http -s rr\n\
-a -t web-vip.test:http -r rs1.test:http -m -w 1\n\
-a -t web-vip.test:http -r rs2.test:rvs-alt -m -w 1\n\
-a -t web-vip.test:http -r 203.0.113.99:http -m -w 1\n\
-A -t web-vip.test:rvs-alt -s wrr\n\
-a -t web-vip.test:rvs-alt -r rs1.test:9999 -m -w 1\n\
-a -t web-vip.test:rvs-alt -r 203.0.113.99:rvs-alt -m -w 1\n\
-A -u web-vip.test:rvs-dns -s rr\n\
-a -u web-vip.test:rvs-dns -r 203.0.113.99:rvs-dns -m -w 1\n\
-A --sctp-service web-vip.test:rvs-sctp -s rr\n\
-a --sctp-service web-vip.test:rvs-sctp -r rs1.test:rvs-sctp -m -w 1\n\
-A -t [v6-vip.test]:http -s rr\n\
-a -t [v6-vip.test]:http -r [v6-rs1.test]:http -m -w 1\n\
-a -t [v6-vip.test]:http -r [2001:db8::99]:443 -m -w 1\n"
    );

    // A host name in no hosts line goes to the (silent) resolver and
    // fails after its timeout; nothing is added.
    let started = Instant::now();
    let (_, err, rc) = w.ipvsadm(&["-a", "-t", "web-vip:http", "-r", "nosuch.test", "-m"]);
    assert_ne!(rc, 0, "{err}");
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(w.ok(&["-L", "-n"]), numeric);
    // Likewise a service name in no services line, without any DNS query.
    let (_, err, rc) = w.ipvsadm(&["-A", "-t", "web-vip:https"]);
    assert_ne!(rc, 0, "{err}");
    assert_eq!(w.ok(&["-L", "-n"]), numeric);
}
