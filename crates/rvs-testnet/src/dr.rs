//! The seed's LVS-DR walkthrough topology (also the TUN one's LAN side).
//!
//! ```text
//!                 sw ns: bridge br0 = one L2 segment 198.51.100.0/24
//!      |                      |                        |                 |
//!   client               director                    rs1               rs2
//!   eth0 .2/24           eth0 .1/24 (DIP)            eth0 .11/24       eth0 .12/24
//!                        + VIP .10/32 on eth0        (VIP on lo: rvs-realserver)
//! ```
//! Each real server runs an HTTP server on 0.0.0.0:80 answering
//! `RS1-web1` / `RS2-web2`. The VIP on the real servers' `lo` and the ARP
//! sysctls are left to the caller (`rvs-realserver start --mode dr`, or
//! [`DrTopology::configure_real_servers`]), since that is what the seed
//! shows being done on them.

use crate::nat::start_http_bound;
use crate::netns::{bridge, plug, tx_checksum_off, unique_prefix, Netns, Spawned};
use crate::TestnetError;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

pub const DR_CIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
pub const DR_DIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
pub const DR_VIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
pub const DR_RIP1: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 11);
pub const DR_RIP2: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 12);

/// The five namespaces of the DR walkthrough. Dropping it tears
/// everything down.
#[derive(Debug)]
pub struct DrTopology {
    pub rs1: Netns,
    pub rs2: Netns,
    pub client: Netns,
    pub director: Netns,
    /// The switch: a bridge every other namespace is plugged into.
    pub sw: Netns,
    /// Web roots and logs; removed on drop.
    pub dir: PathBuf,
    pub http: [Spawned; 2],
}

impl DrTopology {
    /// Build the topology under names starting with `tag`.
    pub fn create(tag: &str) -> Result<DrTopology, TestnetError> {
        let prefix = unique_prefix(tag);
        let dir = std::env::temp_dir().join(format!("rvs-testnet-{prefix}"));
        let sw = Netns::create(&format!("{prefix}-sw"))?;
        let director = Netns::create(&format!("{prefix}-dir"))?;
        let client = Netns::create(&format!("{prefix}-cli"))?;
        let rs1 = Netns::create(&format!("{prefix}-rs1"))?;
        let rs2 = Netns::create(&format!("{prefix}-rs2"))?;
        // The directory last: an error before the topology exists must
        // not leave it behind (the namespaces made so far drop).
        std::fs::create_dir_all(&dir)?;
        let mut topo = DrTopology {
            rs1,
            rs2,
            client,
            director,
            sw,
            dir,
            http: [Spawned { pid: 0 }; 2],
        };
        topo.wire()?;
        topo.http = start_web(&topo.rs1, &topo.rs2, &topo.dir, [DR_RIP1, DR_RIP2])?;
        Ok(topo)
    }

    fn wire(&self) -> Result<(), TestnetError> {
        wire_lan(
            &self.sw,
            &self.director,
            &[
                (&self.client, "p-cli", "198.51.100.2/24"),
                (&self.director, "p-dir", "198.51.100.1/24"),
                (&self.rs1, "p-rs1", "198.51.100.11/24"),
                (&self.rs2, "p-rs2", "198.51.100.12/24"),
            ],
        )
    }

    /// What `rvs-realserver start --mode dr` does, done directly: VIP/32
    /// on `lo`, `arp_ignore=1`, `arp_announce=2` (all and eth0).
    pub fn configure_real_servers(&self) -> Result<(), TestnetError> {
        for rs in [&self.rs1, &self.rs2] {
            for (k, v) in [
                ("net.ipv4.conf.all.arp_ignore", "1"),
                ("net.ipv4.conf.all.arp_announce", "2"),
                ("net.ipv4.conf.eth0.arp_ignore", "1"),
                ("net.ipv4.conf.eth0.arp_announce", "2"),
            ] {
                rs.sysctl(k, v)?;
            }
            rs.ip(&["addr", "add", "198.51.100.10/32", "dev", "lo"])?;
        }
        Ok(())
    }

    pub fn log_path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for DrTopology {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The LAN both walkthroughs (DR and TUN) start from: bridge `br0` in
/// `sw`; each `(ns, port, cidr)` plugged into it as `eth0` (bridge port
/// `port`) with address `cidr` and TX checksum offload off; then the
/// VIP 198.51.100.10/32 on the director's `eth0`.
pub(crate) fn wire_lan(
    sw: &Netns,
    director: &Netns,
    hosts: &[(&Netns, &str, &str)],
) -> Result<(), TestnetError> {
    bridge(sw, "br0")?;
    for &(ns, port, cidr) in hosts {
        plug(sw, "br0", port, ns, "eth0")?;
        ns.ip(&["addr", "add", cidr, "dev", "eth0"])?;
        tx_checksum_off(ns, "eth0");
    }
    director.ip(&["addr", "add", "198.51.100.10/32", "dev", "eth0"])?;
    Ok(())
}

/// The web servers of both walkthroughs: HTTP on 0.0.0.0:80 in `rs1`
/// and `rs2` (ready once `rips[i]:80` answers), pages `RS1-web1` and
/// `RS2-web2`, roots and logs under `dir`.
pub(crate) fn start_web(
    rs1: &Netns,
    rs2: &Netns,
    dir: &Path,
    rips: [Ipv4Addr; 2],
) -> Result<[Spawned; 2], TestnetError> {
    Ok([
        start_http_bound(
            rs1,
            dir,
            "rs1",
            Ipv4Addr::UNSPECIFIED,
            (rips[0], 80),
            "RS1-web1",
        )?,
        start_http_bound(
            rs2,
            dir,
            "rs2",
            Ipv4Addr::UNSPECIFIED,
            (rips[1], 80),
            "RS2-web2",
        )?,
    ])
}
