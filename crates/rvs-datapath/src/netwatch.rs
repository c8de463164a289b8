//! Change notifications from the kernel, so rvsd follows links,
//! addresses and rule flushes as they happen instead of polling.
//!
//! [`NetWatch`] holds two netlink sockets subscribed to multicast groups:
//! * `NETLINK_ROUTE`, groups link, IPv4 address and IPv6 address: an
//!   interface or address appeared, changed or went away (the engine's
//!   local addresses and the steering rules depend on them);
//! * `NETLINK_NETFILTER`, group `NFNLGRP_NFTABLES` (best effort): the
//!   nf_tables ruleset changed, for instance an operator's
//!   `iptables -F -t mangle` with the nft backend of iptables, which may
//!   have removed rvsd's jumps.
//!
//! [`NetWatch::wait`] blocks in `poll(2)` until one of them has messages
//! or the timeout passes, then drains them without blocking. Messages
//! are only classified ([`classify`], pure and unit tested), never acted
//! on one by one: the caller re-reads the state it needs. A receive
//! buffer overrun (`ENOBUFS`) counts as a change of everything.
//!
//! The `unsafe` here is the socket system calls through libc, each with
//! its `// SAFETY:` reasoning.

#![allow(unsafe_code)]

use crate::DatapathError;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// rtnetlink multicast groups (bit masks for `bind`).
const RTMGRP_LINK: u32 = 0x1;
const RTMGRP_IPV4_IFADDR: u32 = 0x10;
const RTMGRP_IPV6_IFADDR: u32 = 0x100;
/// `NFNLGRP_NFTABLES` (group 7) as a bind mask.
const NFTABLES_GROUP_MASK: u32 = 1 << (7 - 1);

/// rtnetlink message types.
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
/// nfnetlink subsystem of nf_tables (the high byte of the type).
const NFNL_SUBSYS_NFTABLES: u16 = 10;

/// Length of `struct nlmsghdr`.
const NLMSG_HDRLEN: usize = 16;

/// What changed since the last wait.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    /// A link or an address appeared, changed or disappeared.
    pub links_or_addrs: bool,
    /// The nf_tables ruleset changed.
    pub rules: bool,
}

impl Changes {
    pub fn any(&self) -> bool {
        self.links_or_addrs || self.rules
    }
}

/// Which socket a buffer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Route,
    Netfilter,
}

/// Walk the netlink messages in `buf` and say what they report. Bytes
/// that do not form a whole message end the walk.
pub fn classify(buf: &[u8], source: Source) -> Changes {
    let mut changes = Changes::default();
    let mut off = 0usize;
    while let Some(hdr) = buf.get(off..off + NLMSG_HDRLEN) {
        let len = u32::from_ne_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]) as usize;
        let kind = u16::from_ne_bytes([hdr[4], hdr[5]]);
        if len < NLMSG_HDRLEN || off + len > buf.len() {
            break;
        }
        match source {
            Source::Route => {
                if matches!(kind, RTM_NEWLINK | RTM_DELLINK | RTM_NEWADDR | RTM_DELADDR) {
                    changes.links_or_addrs = true;
                }
            }
            Source::Netfilter => {
                if kind >> 8 == NFNL_SUBSYS_NFTABLES {
                    changes.rules = true;
                }
            }
        }
        // Messages are aligned to 4 bytes.
        off += (len + 3) & !3;
    }
    changes
}

fn netlink_socket(protocol: i32, groups: u32) -> io::Result<OwnedFd> {
    // SAFETY: socket(2) takes plain integers and returns a new descriptor
    // or -1; nothing is borrowed.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            protocol,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket(2), is valid and owned by
    // nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: an all-zero sockaddr_nl is a valid value.
    let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    sa.nl_groups = groups;
    // SAFETY: `sa` outlives the call and its size is passed; the
    // descriptor is valid.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// Read everything queued on a non-blocking netlink socket.
fn drain(fd: &OwnedFd, source: Source, buf: &mut [u8]) -> Changes {
    let mut changes = Changes::default();
    // Bounded: a socket that keeps delivering is read again at the next
    // wait; 64 buffers are far more than any burst of link events.
    for _ in 0..64 {
        // SAFETY: `buf` is valid for writes of its length for the whole
        // call; the descriptor is valid.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                // Messages were lost: assume everything changed.
                Some(libc::ENOBUFS) => {
                    changes = Changes {
                        links_or_addrs: changes.links_or_addrs || source == Source::Route,
                        rules: changes.rules || source == Source::Netfilter,
                    };
                    continue;
                }
                _ => break,
            }
        }
        if n == 0 {
            break;
        }
        let got = buf.get(..n as usize).unwrap_or(&[]);
        let c = classify(got, source);
        changes.links_or_addrs |= c.links_or_addrs;
        changes.rules |= c.rules;
    }
    changes
}

/// Netlink subscriptions of one network namespace.
#[derive(Debug)]
pub struct NetWatch {
    route: OwnedFd,
    netfilter: Option<OwnedFd>,
    buf: Vec<u8>,
}

impl NetWatch {
    /// Subscribe to link and address changes (an error if that fails) and,
    /// when possible, to nf_tables ruleset changes.
    pub fn open() -> Result<NetWatch, DatapathError> {
        let route = netlink_socket(
            libc::NETLINK_ROUTE,
            RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR,
        )
        .map_err(|e| DatapathError::io("rtnetlink subscription", e))?;
        let netfilter = netlink_socket(libc::NETLINK_NETFILTER, NFTABLES_GROUP_MASK).ok();
        Ok(NetWatch {
            route,
            netfilter,
            buf: vec![0u8; 32 * 1024],
        })
    }

    /// Whether nf_tables changes are reported (else the caller must poll
    /// for flushed rules).
    pub fn watches_rules(&self) -> bool {
        self.netfilter.is_some()
    }

    /// Wait up to `timeout` for notifications; what they reported
    /// (nothing on timeout).
    pub fn wait(&mut self, timeout: Duration) -> Changes {
        let mut fds = [
            libc::pollfd {
                fd: self.route.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.netfilter.as_ref().map_or(-1, |f| f.as_raw_fd()),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: `fds` is a valid array of 2 pollfd for the whole call
        // (a negative fd is ignored by poll).
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if rc <= 0 {
            return Changes::default();
        }
        let mut changes = Changes::default();
        if fds[0].revents != 0 {
            changes = drain(&self.route, Source::Route, &mut self.buf);
        }
        if fds[1].revents != 0 {
            if let Some(fd) = &self.netfilter {
                changes.rules |= drain(fd, Source::Netfilter, &mut self.buf).rules;
            }
        }
        changes
    }
}

/// Pacing of a sync loop: wake at least every `tick` (to compare the
/// steering rules with the table), and say when to refresh what is read
/// from the host (addresses, jumps, neighbours): at once when netlink
/// reports a change, else every `slow` (when link, address and ruleset
/// changes are all reported) or `fast` (when some are not, so polling
/// must catch them).
#[derive(Debug)]
pub struct SyncPace {
    watch: Option<NetWatch>,
    tick: Duration,
    every: Duration,
    last: std::time::Instant,
}

impl SyncPace {
    pub fn new(tick: Duration, fast: Duration, slow: Duration) -> SyncPace {
        let watch = NetWatch::open().ok();
        let every = if watch.as_ref().is_some_and(NetWatch::watches_rules) {
            slow
        } else {
            fast
        };
        SyncPace {
            watch,
            tick,
            every,
            last: std::time::Instant::now(),
        }
    }

    /// Whether netlink notifications drive the refreshes.
    pub fn is_watching(&self) -> bool {
        self.watch.is_some()
    }

    /// Wait for the next tick or change; whether to refresh now.
    pub fn wait(&mut self) -> bool {
        let changed = match self.watch.as_mut() {
            Some(w) => w.wait(self.tick).any(),
            None => {
                std::thread::sleep(self.tick);
                false
            }
        };
        if changed || self.last.elapsed() >= self.every {
            self.last = std::time::Instant::now();
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A netlink message: header (len, type, flags, seq, pid) + payload.
    fn msg(kind: u16, payload: &[u8]) -> Vec<u8> {
        let len = (NLMSG_HDRLEN + payload.len()) as u32;
        let mut m = Vec::new();
        m.extend_from_slice(&len.to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(payload);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    #[test]
    fn address_and_link_messages_are_changes() {
        for kind in [16u16, 17, 20, 21] {
            let c = classify(&msg(kind, &[0; 8]), Source::Route);
            assert!(c.links_or_addrs, "type {kind}");
            assert!(!c.rules);
        }
        // RTM_NEWROUTE (24) and NLMSG_DONE (3) are not.
        assert_eq!(
            classify(&msg(24, &[0; 12]), Source::Route),
            Changes::default()
        );
        assert_eq!(classify(&msg(3, &[]), Source::Route), Changes::default());
    }

    #[test]
    fn walks_past_unaligned_payloads() {
        // A 5-byte payload is padded to 8; the address message after it
        // must still be found.
        let mut buf = msg(24, &[1, 2, 3, 4, 5]);
        buf.extend(msg(20, &[0; 8]));
        assert!(classify(&buf, Source::Route).links_or_addrs);
    }

    #[test]
    fn nftables_subsystem_messages_are_rule_changes() {
        // NFT_MSG_DELRULE = 8 in subsystem 10: type 0x0a08.
        let c = classify(&msg(0x0a08, &[0; 4]), Source::Netfilter);
        assert_eq!(
            c,
            Changes {
                links_or_addrs: false,
                rules: true
            }
        );
        // Conntrack (subsystem 1) is not.
        assert_eq!(
            classify(&msg(0x0100, &[0; 4]), Source::Netfilter),
            Changes::default()
        );
    }

    #[test]
    fn truncated_or_bogus_lengths_stop_the_walk() {
        let mut m = msg(20, &[0; 8]);
        m.truncate(10);
        assert_eq!(classify(&m, Source::Route), Changes::default());
        // A length shorter than the header.
        let mut bogus = msg(20, &[0; 8]);
        bogus[..4].copy_from_slice(&4u32.to_ne_bytes());
        assert_eq!(classify(&bogus, Source::Route), Changes::default());
        // A length past the buffer.
        let mut long = msg(20, &[0; 8]);
        long[..4].copy_from_slice(&400u32.to_ne_bytes());
        assert_eq!(classify(&long, Source::Route), Changes::default());
    }
}
