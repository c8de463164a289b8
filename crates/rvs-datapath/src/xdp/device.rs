//! The AF_XDP packet device: every socket of every steered (interface,
//! queue), read in turn, with `poll(2)` when all are empty (an idle
//! director sleeps instead of spinning).
//!
//! A frame in an AF_XDP ring cannot go back to the kernel. The XDP
//! program steers only frames the engine must decide, so
//! [`Release::ToHost`] happens only in races (a flow expired in the engine
//! while its tuple was still in the map, a service deleted a moment ago);
//! such frames are dropped and counted in [`XdpDeviceStats::lost_to_host`]
//! (TCP retransmits them, and by then the map no longer steers them).

use super::xsk::{poll_readable, XskSocket};
use crate::{DatapathError, PacketDevice, Release, RxFrame};
use rvs_core::PacketMeta;
use std::os::fd::{AsRawFd, RawFd};

/// How long one `poll(2)` waits before looking again.
const POLL_MS: i32 = 1000;

/// Counters of the device. Every field moves in a test.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XdpDeviceStats {
    pub received: u64,
    /// Frames the engine passed that could not go back to the kernel.
    pub lost_to_host: u64,
}

/// AF_XDP sockets read as one device.
#[derive(Debug)]
pub struct XdpDevice {
    sockets: Vec<XskSocket>,
    fds: Vec<RawFd>,
    next: usize,
    stats: XdpDeviceStats,
}

impl XdpDevice {
    pub fn new(sockets: Vec<XskSocket>) -> XdpDevice {
        let fds = sockets.iter().map(|s| s.as_raw_fd()).collect();
        XdpDevice {
            sockets,
            fds,
            next: 0,
            stats: XdpDeviceStats::default(),
        }
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
}

impl PacketDevice for XdpDevice {
    type Token = ();

    fn recv(&mut self) -> Result<RxFrame<()>, DatapathError> {
        loop {
            if let Some((frame, ingress)) = self.try_recv() {
                self.stats.received += 1;
                return Ok(RxFrame {
                    frame,
                    meta: PacketMeta { fwmark: 0, ingress },
                    token: (),
                });
            }
            poll_readable(&self.fds, POLL_MS).map_err(|e| DatapathError::io("AF_XDP poll", e))?;
        }
    }

    fn release(&mut self, _token: (), release: Release) -> Result<(), DatapathError> {
        if release == Release::ToHost {
            self.stats.lost_to_host += 1;
        }
        Ok(())
    }
}
