//! The transmitter: sends what the engine forwarded.
//!
//! * `Route::Routed` (NAT both ways, TUN, ICMP errors): the IP packet (the
//!   frame without its Ethernet header) goes through a raw `IPPROTO_RAW`
//!   socket (header included), addressed to the next hop, so the host's
//!   routing, neighbour resolution and output path apply.
//! * `Route::Direct` (DR): the frame gets the next hop's MAC (from the
//!   kernel's neighbour table, resolution triggered when missing) and the
//!   egress interface's MAC, and leaves through an `AF_PACKET` socket on
//!   the interface the kernel would route the next hop through.
//!
//! Every socket carries [`TX_MARK`] (`SO_MARK`), which the steering rules
//! exempt from conntrack. The `unsafe` here is the socket system calls
//! through libc, each with its `// SAFETY:` reasoning.

#![allow(unsafe_code)]

use crate::{sys, DatapathError, FrameSink, ETH_HLEN};
use rvs_core::{Route, Transmit};
use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// `SO_MARK` of packets the datapath sends ("rv").
pub const TX_MARK: u32 = 0x7276;

/// How long a resolved neighbour (interface + MAC) is reused.
const NEIGH_TTL: Duration = Duration::from_secs(5);
/// How long a DR send waits for a missing neighbour to resolve.
const RESOLVE_WAIT: Duration = Duration::from_millis(300);

/// Counters of the transmitter. Every field moves in a test.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxStats {
    pub routed: u64,
    pub direct: u64,
    /// DR next hops whose MAC could not be found.
    pub unresolved: u64,
    pub errors: u64,
}

fn new_socket(domain: i32, kind: i32, protocol: i32) -> io::Result<OwnedFd> {
    // SAFETY: socket(2) takes plain integers and returns a new descriptor
    // or -1; nothing is borrowed.
    let fd = unsafe { libc::socket(domain, kind | libc::SOCK_CLOEXEC, protocol) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket(2), is valid and owned by
    // nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn set_int_opt(fd: &OwnedFd, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: `value` lives across the call and its size is passed; the
    // descriptor is valid for the lifetime of `fd`.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn send_to_ip(fd: &OwnedFd, packet: &[u8], to: IpAddr) -> io::Result<()> {
    let rc = match to {
        IpAddr::V4(a) => {
            // SAFETY: an all-zero sockaddr_in is a valid value.
            let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            sa.sin_family = libc::AF_INET as libc::sa_family_t;
            sa.sin_addr.s_addr = u32::from_ne_bytes(a.octets());
            // SAFETY: `packet` and `sa` outlive the call and their sizes are
            // passed; the descriptor is valid.
            unsafe {
                libc::sendto(
                    fd.as_raw_fd(),
                    packet.as_ptr().cast(),
                    packet.len(),
                    0,
                    (&sa as *const libc::sockaddr_in).cast(),
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                )
            }
        }
        IpAddr::V6(a) => {
            // SAFETY: an all-zero sockaddr_in6 is a valid value.
            let mut sa: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
            sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sa.sin6_addr.s6_addr = a.octets();
            // SAFETY: as above.
            unsafe {
                libc::sendto(
                    fd.as_raw_fd(),
                    packet.as_ptr().cast(),
                    packet.len(),
                    0,
                    (&sa as *const libc::sockaddr_in6).cast(),
                    std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                )
            }
        }
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn send_frame(fd: &OwnedFd, frame: &[u8], ifindex: u32, dst: [u8; 6]) -> io::Result<()> {
    // SAFETY: an all-zero sockaddr_ll is a valid value.
    let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sa.sll_family = libc::AF_PACKET as u16;
    sa.sll_ifindex = i32::try_from(ifindex).unwrap_or(0);
    sa.sll_halen = 6;
    sa.sll_addr[..6].copy_from_slice(&dst);
    // SAFETY: `frame` and `sa` outlive the call and their sizes are passed;
    // the descriptor is valid.
    let rc = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            frame.as_ptr().cast(),
            frame.len(),
            0,
            (&sa as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[derive(Debug, Clone, Copy)]
struct Neighbour {
    ifindex: u32,
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    at: Instant,
}

/// Raw and packet sockets of one network namespace.
#[derive(Debug)]
pub struct Transmitter {
    raw4: OwnedFd,
    raw6: Option<OwnedFd>,
    packet: Option<OwnedFd>,
    neighbours: HashMap<IpAddr, Neighbour>,
    stats: TxStats,
}

impl Transmitter {
    /// Open the sockets (needs `CAP_NET_RAW`).
    pub fn open() -> Result<Transmitter, DatapathError> {
        let raw4 = new_socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW)
            .map_err(|e| DatapathError::io("raw IPv4 socket", e))?;
        set_int_opt(&raw4, libc::SOL_SOCKET, libc::SO_MARK, TX_MARK as i32)
            .map_err(|e| DatapathError::io("SO_MARK", e))?;
        let raw6 = new_socket(libc::AF_INET6, libc::SOCK_RAW, libc::IPPROTO_RAW)
            .ok()
            .filter(|fd| set_int_opt(fd, libc::SOL_SOCKET, libc::SO_MARK, TX_MARK as i32).is_ok());
        // Protocol 0: send only, receive nothing.
        let packet = new_socket(libc::AF_PACKET, libc::SOCK_RAW, 0)
            .ok()
            .filter(|fd| set_int_opt(fd, libc::SOL_SOCKET, libc::SO_MARK, TX_MARK as i32).is_ok());
        Ok(Transmitter {
            raw4,
            raw6,
            packet,
            neighbours: HashMap::new(),
            stats: TxStats::default(),
        })
    }

    pub fn stats(&self) -> TxStats {
        self.stats
    }

    /// Start resolving next hops the engine is likely to send to (DR real
    /// servers), so the first packet does not wait.
    pub fn prepare_neighbours(&mut self, addrs: impl IntoIterator<Item = IpAddr>) {
        for a in addrs {
            if self.lookup_neighbour(a).is_err() {
                sys::trigger_resolution(a);
            }
        }
    }

    fn lookup_neighbour(&mut self, addr: IpAddr) -> Result<Neighbour, DatapathError> {
        if let Some(n) = self.neighbours.get(&addr) {
            if n.at.elapsed() < NEIGH_TTL {
                return Ok(*n);
            }
        }
        let route = sys::route_get(addr)?;
        let hop = route.via.unwrap_or(addr);
        let dst_mac = sys::neighbour(hop)?.ok_or(DatapathError::Unresolved(hop))?;
        let (ifindex, src_mac) = sys::link_info(&route.dev)?;
        let n = Neighbour {
            ifindex,
            src_mac,
            dst_mac,
            at: Instant::now(),
        };
        self.neighbours.insert(addr, n);
        Ok(n)
    }

    fn resolve(&mut self, addr: IpAddr) -> Result<Neighbour, DatapathError> {
        match self.lookup_neighbour(addr) {
            Ok(n) => Ok(n),
            Err(DatapathError::Unresolved(_)) => {
                sys::trigger_resolution(addr);
                let deadline = Instant::now() + RESOLVE_WAIT;
                loop {
                    std::thread::sleep(Duration::from_millis(10));
                    match self.lookup_neighbour(addr) {
                        Ok(n) => return Ok(n),
                        Err(e) if Instant::now() >= deadline => return Err(e),
                        Err(_) => {}
                    }
                }
            }
            Err(e) => Err(e),
        }
    }

    fn send(&mut self, frame: &[u8], how: Transmit) -> Result<(), DatapathError> {
        match how.route {
            Route::Routed { next_hop } => {
                let packet = frame
                    .get(ETH_HLEN..)
                    .ok_or(DatapathError::BadFrame(frame.len()))?;
                let fd = match next_hop {
                    IpAddr::V4(_) => &self.raw4,
                    IpAddr::V6(_) => self.raw6.as_ref().ok_or(DatapathError::NoRoute(next_hop))?,
                };
                send_to_ip(fd, packet, next_hop)
                    .map_err(|e| DatapathError::io(format!("send to {next_hop}"), e))?;
                self.stats.routed += 1;
                Ok(())
            }
            Route::Direct { next_hop } => {
                let n = match self.resolve(next_hop) {
                    Ok(n) => n,
                    Err(e) => {
                        self.stats.unresolved += 1;
                        return Err(e);
                    }
                };
                let fd = self
                    .packet
                    .as_ref()
                    .ok_or(DatapathError::NoRoute(next_hop))?;
                if frame.len() < ETH_HLEN {
                    return Err(DatapathError::BadFrame(frame.len()));
                }
                let mut out = frame.to_vec();
                out[..6].copy_from_slice(&n.dst_mac);
                out[6..12].copy_from_slice(&n.src_mac);
                send_frame(fd, &out, n.ifindex, n.dst_mac)
                    .map_err(|e| DatapathError::io(format!("send frame to {next_hop}"), e))?;
                self.stats.direct += 1;
                Ok(())
            }
        }
    }
}

impl FrameSink for Transmitter {
    fn transmit(&mut self, frame: &[u8], how: Transmit) -> Result<(), DatapathError> {
        let r = self.send(frame, how);
        if r.is_err() {
            self.stats.errors += 1;
        }
        r
    }
}
