//! The AF_XDP packet device: every socket of every steered (interface,
//! queue), read in turn, with `poll(2)` when all are empty (an idle
//! director sleeps instead of spinning).
//!
//! Before the engine sees a frame, a partial TCP/UDP checksum left by a
//! local sender is completed ([`super::csum`]).
//!
//! A frame in an AF_XDP ring cannot go back to the kernel's receive
//! path. The XDP program steers only frames the engine must decide, but
//! the engine still passes some: connections to a real server on the
//! director itself (`Verdict::Local`: 127.0.0.1, the DIP) and frames
//! racing a table change (`Verdict::Pass`: a service deleted a moment
//! ago, a flow that just expired). [`Release::ToHost`] re-injects them:
//! the IP packet is sent, unchanged, through a raw `IPPROTO_RAW` socket
//! to its own destination address ([`crate::tx::Transmitter`], marked
//! [`crate::tx::TX_MARK`] so rvsd's rules neither queue it again nor let
//! conntrack track it). For a local destination the kernel loops it back
//! through `lo` into the local socket, exactly as if it had been
//! received (the answer goes out by the normal route to the client); a
//! foreign destination is routed on, as the kernel would have forwarded
//! it (differences: the TTL is not decremented and `ip_forward` is not
//! consulted). Why not a TAP device or a packet socket: a TAP adds an
//! interface whose reverse-path and neighbour state differ from the real
//! ingress, and a packet socket on the ingress interface transmits
//! (towards the peer) instead of receiving.
//!
//! Interfaces that appear later get their sockets through a
//! [`SocketAdder`] (the sync thread attaches the program and opens them;
//! this device starts reading them at once). A socket whose interface
//! went away (poll reports an error) is closed.

use super::csum::{complete_partial, Completion};
use super::xsk::{poll_sockets, Waker, XskSocket};
use crate::tx::Transmitter;
use crate::{DatapathError, FrameSink, PacketDevice, Release, RxFrame, ETH_HLEN};
use rvs_core::{PacketMeta, Route, Transmit};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::mpsc;
use std::sync::Arc;

/// How long one `poll(2)` waits before looking again.
const POLL_MS: i32 = 1000;

/// Counters of the device. Every field moves in a test.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XdpDeviceStats {
    pub received: u64,
    /// Frames whose partial checksum was completed.
    pub checksums_completed: u64,
    /// Frames the engine passed that were re-injected into the host.
    pub reinjected: u64,
    /// Frames the engine passed that could not be re-injected.
    pub reinject_errors: u64,
    /// Sockets closed because their interface went away.
    pub sockets_closed: u64,
}

/// Hands sockets of newly attached interfaces to a running
/// [`XdpDevice`] (from another thread).
#[derive(Debug, Clone)]
pub struct SocketAdder {
    tx: mpsc::Sender<XskSocket>,
    waker: Arc<Waker>,
}

impl SocketAdder {
    /// Give `socket` to the device; false if the device is gone.
    pub fn add(&self, socket: XskSocket) -> bool {
        let ok = self.tx.send(socket).is_ok();
        self.waker.wake();
        ok
    }
}

/// Receives one-line notices of first occurrences (the first completed
/// checksum, the first re-injected frame, a socket closed), for the log.
pub type Notify = Box<dyn FnMut(&str) + Send>;

/// AF_XDP sockets read as one device.
pub struct XdpDevice {
    sockets: Vec<XskSocket>,
    next: usize,
    stats: XdpDeviceStats,
    reinject: Transmitter,
    added: mpsc::Receiver<XskSocket>,
    adder: SocketAdder,
    notify: Option<Notify>,
}

impl std::fmt::Debug for XdpDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdpDevice")
            .field("sockets", &self.sockets.len())
            .field("stats", &self.stats)
            .finish()
    }
}

impl XdpDevice {
    /// A device reading `sockets`, re-injecting passed frames through
    /// `reinject`.
    pub fn new(sockets: Vec<XskSocket>, reinject: Transmitter) -> Result<XdpDevice, DatapathError> {
        let waker = Waker::new().map_err(|e| DatapathError::io("eventfd", e))?;
        let (tx, added) = mpsc::channel();
        Ok(XdpDevice {
            sockets,
            next: 0,
            stats: XdpDeviceStats::default(),
            reinject,
            added,
            adder: SocketAdder {
                tx,
                waker: Arc::new(waker),
            },
            notify: None,
        })
    }

    /// Report first occurrences (see [`Notify`]) to `notify`.
    pub fn set_notify(&mut self, notify: Notify) {
        self.notify = Some(notify);
    }

    fn notice(&mut self, first: bool, text: &str) {
        if first {
            if let Some(n) = self.notify.as_mut() {
                n(text);
            }
        }
    }

    /// A handle that adds sockets to this device from another thread.
    pub fn adder(&self) -> SocketAdder {
        self.adder.clone()
    }

    pub fn sockets(&self) -> &[XskSocket] {
        &self.sockets
    }

    pub fn stats(&self) -> XdpDeviceStats {
        self.stats
    }

    fn try_recv(&mut self) -> Option<(Vec<u8>, u32)> {
        let n = self.sockets.len();
        for i in 0..n {
            let idx = (self.next + i) % n;
            let Some(s) = self.sockets.get_mut(idx) else {
                continue;
            };
            if let Some(frame) = s.try_recv() {
                self.next = (idx + 1) % n;
                return Some((frame, s.ifindex()));
            }
        }
        None
    }

    fn take_added(&mut self) {
        self.adder.waker.clear();
        while let Ok(s) = self.added.try_recv() {
            self.sockets.push(s);
        }
    }

    fn close_broken(&mut self, mut broken: Vec<usize>) {
        // Highest index first, so the others stay valid.
        broken.sort_unstable_by(|a, b| b.cmp(a));
        for i in broken {
            if i < self.sockets.len() {
                let s = self.sockets.swap_remove(i);
                self.stats.sockets_closed += 1;
                let text = format!(
                    "xdp: AF_XDP socket of interface {} queue {} closed (interface gone)",
                    s.ifindex(),
                    s.queue()
                );
                self.notice(true, &text);
            }
        }
        self.next = 0;
    }

    fn wait(&mut self) -> Result<(), DatapathError> {
        let mut fds: Vec<RawFd> = self.sockets.iter().map(AsRawFd::as_raw_fd).collect();
        fds.push(self.adder.waker.as_raw_fd());
        let out = poll_sockets(&fds, POLL_MS).map_err(|e| DatapathError::io("AF_XDP poll", e))?;
        let waker_index = fds.len() - 1;
        let broken: Vec<usize> = out
            .broken
            .into_iter()
            .filter(|i| *i != waker_index)
            .collect();
        if !broken.is_empty() {
            self.close_broken(broken);
        }
        self.take_added();
        Ok(())
    }

    fn reinject(&mut self, frame: &[u8]) -> Result<(), DatapathError> {
        let (packet_at, dst) = ip_destination(frame).ok_or(DatapathError::BadFrame(frame.len()))?;
        let how = Transmit {
            route: Route::Routed { next_hop: dst },
            dst_mac: None,
        };
        if packet_at == ETH_HLEN {
            return self.reinject.transmit(frame, how);
        }
        // A VLAN tag: the transmitter expects a plain Ethernet header.
        let mut plain = vec![0u8; ETH_HLEN];
        plain.extend_from_slice(frame.get(packet_at..).unwrap_or(&[]));
        self.reinject.transmit(&plain, how)
    }
}

/// Where the IP packet of an Ethernet frame starts (one VLAN tag at
/// most) and its destination address.
pub fn ip_destination(frame: &[u8]) -> Option<(usize, IpAddr)> {
    let mut at = ETH_HLEN;
    let mut ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    if ethertype == 0x8100 || ethertype == 0x88a8 {
        ethertype = u16::from_be_bytes([*frame.get(16)?, *frame.get(17)?]);
        at += 4;
    }
    match ethertype {
        0x0800 => {
            let d: [u8; 4] = frame.get(at + 16..at + 20)?.try_into().ok()?;
            Some((at, IpAddr::V4(Ipv4Addr::from(d))))
        }
        0x86dd => {
            let d: [u8; 16] = frame.get(at + 24..at + 40)?.try_into().ok()?;
            Some((at, IpAddr::V6(Ipv6Addr::from(d))))
        }
        _ => None,
    }
}

impl PacketDevice for XdpDevice {
    type Token = ();

    fn recv(&mut self) -> Result<RxFrame<()>, DatapathError> {
        loop {
            if let Some((mut frame, ingress)) = self.try_recv() {
                self.stats.received += 1;
                if complete_partial(&mut frame) == Completion::Completed {
                    self.stats.checksums_completed += 1;
                    self.notice(
                        self.stats.checksums_completed == 1,
                        "xdp: completed a partial checksum (local sender with offload; further ones counted)",
                    );
                }
                return Ok(RxFrame {
                    frame,
                    meta: PacketMeta { fwmark: 0, ingress },
                    token: (),
                });
            }
            self.wait()?;
        }
    }

    fn release(&mut self, _token: (), frame: &[u8], release: Release) -> Result<(), DatapathError> {
        if release == Release::ToHost {
            match self.reinject(frame) {
                Ok(()) => {
                    self.stats.reinjected += 1;
                    self.notice(
                        self.stats.reinjected == 1,
                        "xdp: re-injected a frame the engine passed into the host stack (further ones counted)",
                    );
                }
                Err(e) => {
                    self.stats.reinject_errors += 1;
                    let text = format!("xdp: cannot re-inject a passed frame: {e}");
                    self.notice(self.stats.reinject_errors == 1, &text);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destination_of_v4_v6_and_tagged_frames() {
        let mut v4 = vec![0u8; 12];
        v4.extend_from_slice(&[0x08, 0x00]);
        v4.extend_from_slice(&[0x45; 16]);
        v4.extend_from_slice(&[198, 51, 100, 10]);
        assert_eq!(
            ip_destination(&v4),
            Some((14, IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10))))
        );

        let mut tagged = vec![0u8; 12];
        tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x07, 0x08, 0x00]);
        tagged.extend_from_slice(&[0x45; 16]);
        tagged.extend_from_slice(&[203, 0, 113, 1]);
        assert_eq!(
            ip_destination(&tagged),
            Some((18, IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1))))
        );

        let mut v6 = vec![0u8; 12];
        v6.extend_from_slice(&[0x86, 0xdd]);
        v6.extend_from_slice(&[0x60; 24]);
        let mut d = [0u8; 16];
        d[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        d[15] = 0x10;
        v6.extend_from_slice(&d);
        assert_eq!(
            ip_destination(&v6),
            Some((14, IpAddr::V6(Ipv6Addr::from(d))))
        );

        let mut arp = vec![0u8; 12];
        arp.extend_from_slice(&[0x08, 0x06]);
        arp.extend_from_slice(&[0; 28]);
        assert_eq!(ip_destination(&arp), None);
        assert_eq!(ip_destination(&v4[..20]), None);
    }
}
