//! The seed's LVS-TUN walkthrough topology: real servers in another
//! network, reachable from the director only through a router.
//!
//! ```text
//!   sw ns: bridge br0, LAN 198.51.100.0/24
//!      |                   |                          |
//!   client .2/24        director eth0 .1/24        router eth0 .254/24
//!                       + VIP .10/32               br1 203.0.113.1/24 -+- rs1 eth0 .11/24
//!                       route 203.0.113.0/24                            +- rs2 eth0 .12/24
//!                             via .254                                   (gw 203.0.113.1)
//! ```
//! The director reaches the real servers only through the router; the
//! real servers answer the client through the router too (never through
//! the director). Each real server runs an HTTP server on 0.0.0.0:80
//! answering `RS1-web1` / `RS2-web2`; the VIP and the decapsulation are
//! the caller's (`rvs-realserver start --mode tun`).

use crate::dr::{start_web, wire_lan};
use crate::netns::{bridge, tx_checksum_off, unique_prefix, veth, Netns, Spawned};
use crate::TestnetError;
use std::net::Ipv4Addr;
use std::path::PathBuf;

pub const TUN_CIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
pub const TUN_DIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
pub const TUN_VIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
pub const TUN_ROUTER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 254);
pub const TUN_RIP1: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 11);
pub const TUN_RIP2: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 12);

/// The six namespaces of the TUN walkthrough. Dropping it tears
/// everything down.
#[derive(Debug)]
pub struct TunTopology {
    pub rs1: Netns,
    pub rs2: Netns,
    pub client: Netns,
    pub director: Netns,
    pub router: Netns,
    pub sw: Netns,
    /// Web roots and logs; removed on drop.
    pub dir: PathBuf,
    pub http: [Spawned; 2],
}

impl TunTopology {
    /// Build the topology under names starting with `tag`.
    pub fn create(tag: &str) -> Result<TunTopology, TestnetError> {
        let prefix = unique_prefix(tag);
        let dir = std::env::temp_dir().join(format!("rvs-testnet-{prefix}"));
        let sw = Netns::create(&format!("{prefix}-sw"))?;
        let router = Netns::create(&format!("{prefix}-rtr"))?;
        let director = Netns::create(&format!("{prefix}-dir"))?;
        let client = Netns::create(&format!("{prefix}-cli"))?;
        let rs1 = Netns::create(&format!("{prefix}-rs1"))?;
        let rs2 = Netns::create(&format!("{prefix}-rs2"))?;
        // The directory last: an error before the topology exists must
        // not leave it behind (the namespaces made so far drop).
        std::fs::create_dir_all(&dir)?;
        let mut topo = TunTopology {
            rs1,
            rs2,
            client,
            director,
            router,
            sw,
            dir,
            http: [Spawned { pid: 0 }; 2],
        };
        topo.wire()?;
        topo.http = start_web(&topo.rs1, &topo.rs2, &topo.dir, [TUN_RIP1, TUN_RIP2])?;
        Ok(topo)
    }

    fn wire(&self) -> Result<(), TestnetError> {
        wire_lan(
            &self.sw,
            &self.director,
            &[
                (&self.client, "p-cli", "198.51.100.2/24"),
                (&self.director, "p-dir", "198.51.100.1/24"),
                (&self.router, "p-rtr", "198.51.100.254/24"),
            ],
        )?;
        let d = &self.director;
        d.ip(&["route", "add", "203.0.113.0/24", "via", "198.51.100.254"])?;

        let r = &self.router;
        bridge(r, "br1")?;
        r.ip(&["addr", "add", "203.0.113.1/24", "dev", "br1"])?;
        r.sysctl("net.ipv4.ip_forward", "1")?;
        for (rs, port, cidr) in [
            (&self.rs1, "rs1", "203.0.113.11/24"),
            (&self.rs2, "rs2", "203.0.113.12/24"),
        ] {
            veth(r, port, rs, "eth0")?;
            r.ip(&["link", "set", port, "master", "br1"])?;
            rs.ip(&["addr", "add", cidr, "dev", "eth0"])?;
            rs.ip(&["route", "add", "default", "via", "203.0.113.1"])?;
            tx_checksum_off(rs, "eth0");
        }
        Ok(())
    }

    pub fn log_path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for TunTopology {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
