//! The seed's NAT walkthrough topology.
//!
//! ```text
//!  client ns            director ns                       rs1 ns / rs2 ns
//!  eth0 198.51.100.2 -- eth0 198.51.100.10 (VIP)
//!                       br0  203.0.113.1 (DIP) -+- rs1 -- eth0 203.0.113.11, gw DIP
//!                                               +- rs2 -- eth0 203.0.113.12, gw DIP
//! ```
//! The director forwards (`ip_forward=1`); each real server runs an HTTP
//! server on port 80 whose page is `RS1-web1` / `RS2-web2`.

use crate::netns::{tx_checksum_off, unique_prefix, veth, Netns, Spawned};
use crate::TestnetError;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const NAT_CIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
pub const NAT_VIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
pub const NAT_DIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
pub const NAT_RIP1: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 11);
pub const NAT_RIP2: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 12);

/// How long a freshly started HTTP server may take to answer.
const HTTP_READY: Duration = Duration::from_secs(15);

/// The four namespaces of the NAT walkthrough, with HTTP servers running
/// on both real servers. Dropping it tears everything down (the real
/// servers and client first, the director last).
#[derive(Debug)]
pub struct NatTopology {
    pub rs1: Netns,
    pub rs2: Netns,
    pub client: Netns,
    pub director: Netns,
    /// Directory holding the web roots and logs; removed on drop.
    pub dir: PathBuf,
    pub http: [Spawned; 2],
}

impl NatTopology {
    /// Build the topology under names starting with `tag`.
    pub fn create(tag: &str) -> Result<NatTopology, TestnetError> {
        let prefix = unique_prefix(tag);
        let dir = std::env::temp_dir().join(format!("rvs-testnet-{prefix}"));
        // Namespaces are created one by one; the ones already made are
        // dropped (deleted) if a later step fails.
        let director = Netns::create(&format!("{prefix}-dir"))?;
        let client = Netns::create(&format!("{prefix}-cli"))?;
        let rs1 = Netns::create(&format!("{prefix}-rs1"))?;
        let rs2 = Netns::create(&format!("{prefix}-rs2"))?;
        // The directory last: an error before the topology exists must
        // not leave it behind (the namespaces made so far drop).
        std::fs::create_dir_all(&dir)?;
        let http = [Spawned { pid: 0 }; 2];
        let mut topo = NatTopology {
            rs1,
            rs2,
            client,
            director,
            dir,
            http,
        };
        topo.wire()?;
        topo.http = [
            start_http(&topo.rs1, &topo.dir, "rs1", NAT_RIP1, "RS1-web1")?,
            start_http(&topo.rs2, &topo.dir, "rs2", NAT_RIP2, "RS2-web2")?,
        ];
        Ok(topo)
    }

    fn wire(&self) -> Result<(), TestnetError> {
        let d = &self.director;
        veth(&self.client, "eth0", d, "eth0")?;
        self.client
            .ip(&["addr", "add", "198.51.100.2/24", "dev", "eth0"])?;
        d.ip(&["addr", "add", "198.51.100.10/24", "dev", "eth0"])?;
        d.ip(&["link", "add", "br0", "type", "bridge"])?;
        d.ip(&["link", "set", "br0", "up"])?;
        d.ip(&["addr", "add", "203.0.113.1/24", "dev", "br0"])?;
        for (rs, port, rip) in [
            (&self.rs1, "rs1", "203.0.113.11/24"),
            (&self.rs2, "rs2", "203.0.113.12/24"),
        ] {
            veth(d, port, rs, "eth0")?;
            d.ip(&["link", "set", port, "master", "br0"])?;
            rs.ip(&["addr", "add", rip, "dev", "eth0"])?;
            rs.ip(&["route", "add", "default", "via", "203.0.113.1"])?;
            tx_checksum_off(rs, "eth0");
        }
        tx_checksum_off(&self.client, "eth0");
        d.sysctl("net.ipv4.ip_forward", "1")?;
        Ok(())
    }

    /// Where log files of this topology go.
    pub fn log_path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `curl -sS --max-time 5 http://<addr>:<port>/` from the client;
    /// the body (trimmed) on success, the error text otherwise.
    pub fn curl_from_client(&self, addr: Ipv4Addr, port: u16) -> Result<String, String> {
        curl(&self.client, addr, port)
    }
}

/// `curl` from inside a namespace, never through a proxy or DNS.
pub fn curl(ns: &Netns, addr: Ipv4Addr, port: u16) -> Result<String, String> {
    let url = format!("http://{addr}:{port}/");
    match ns.output(
        &["curl", "-sS", "--noproxy", "*", "--max-time", "5", &url],
        &[],
    ) {
        Ok(out) if out.status.success() => {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        }
        Ok(out) => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// Serve `page` over HTTP on `addr`:80 inside `ns` and wait until it answers.
pub fn start_http(
    ns: &Netns,
    dir: &Path,
    name: &str,
    addr: Ipv4Addr,
    page: &str,
) -> Result<Spawned, TestnetError> {
    start_http_on(ns, dir, name, (addr, 80), page)
}

/// Serve `page` over HTTP on `addr:port` inside `ns` and wait until it answers.
pub fn start_http_on(
    ns: &Netns,
    dir: &Path,
    name: &str,
    (addr, port): (Ipv4Addr, u16),
    page: &str,
) -> Result<Spawned, TestnetError> {
    start_http_bound(ns, dir, name, addr, (addr, port), page)
}

/// Python's `http.server` serving a directory, without the reverse DNS
/// lookup (`getfqdn`) `python3 -m http.server --bind` does at start: a
/// namespace must never query the host's resolver (and the query would
/// stall the start for the resolver's timeout). Threaded, so held
/// connections do not block others. argv: address, port, directory.
const HTTP_SERVER: &str = "\
import functools, http.server, socketserver, sys
class Server(http.server.ThreadingHTTPServer):
    def server_bind(self):
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[3])
Server((sys.argv[1], int(sys.argv[2])), handler).serve_forever()
";

/// Serve `page` over HTTP on `bind:port` inside `ns` (`0.0.0.0` for
/// every address, as DR/TUN real servers need to answer on the VIP) and
/// wait until it answers on `probe`:port.
pub fn start_http_bound(
    ns: &Netns,
    dir: &Path,
    name: &str,
    bind: Ipv4Addr,
    (addr, port): (Ipv4Addr, u16),
    page: &str,
) -> Result<Spawned, TestnetError> {
    let root = dir.join(format!("www-{name}"));
    std::fs::create_dir_all(&root)?;
    std::fs::write(root.join("index.html"), format!("{page}\n"))?;
    let root_s = root.to_string_lossy().to_string();
    let addr_s = bind.to_string();
    let port_s = port.to_string();
    let log = dir.join(format!("http-{name}.log"));
    let p = ns.spawn(
        &[python3(), "-c", HTTP_SERVER, &addr_s, &port_s, &root_s],
        &[],
        Some(&log),
    )?;
    Netns::wait_for(&format!("HTTP server {name} on {addr}"), HTTP_READY, || {
        curl(ns, addr, port).is_ok_and(|body| body == page)
    })?;
    Ok(p)
}

/// The system Python (a version manager's shim may not work inside a
/// namespace with a clean environment).
pub(crate) fn python3() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

impl Drop for NatTopology {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Open a TCP connection from `ns` to `addr:port` and hold it open,
/// sending nothing, for at most `secs` seconds (or until the returned
/// process is killed, which closes it with a FIN). Waits until the
/// connection is established.
pub fn hold_tcp(
    ns: &Netns,
    dir: &Path,
    (addr, port): (Ipv4Addr, u16),
    secs: u32,
) -> Result<Spawned, TestnetError> {
    let flag = dir.join(format!(
        "hold-{}-{}",
        std::process::id(),
        unique_prefix("h")
    ));
    let script = format!(
        "import socket,time\n\
         s=socket.create_connection(('{addr}',{port}),timeout=5)\n\
         open('{}','w').close()\n\
         time.sleep({secs})\n",
        flag.display()
    );
    let p = ns.spawn(&[python3(), "-c", &script], &[], None)?;
    Netns::wait_for(
        &format!("held connection to {addr}:{port}"),
        HTTP_READY,
        || flag.exists(),
    )?;
    Ok(p)
}
