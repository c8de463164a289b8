//! rvs-datapath: moves real packets between the kernel and the rvs engine.
//!
//! # What is built (first step) and why
//! DESIGN.md's target is an XDP program steering LVS traffic into AF_XDP
//! sockets. This first working datapath uses **NFQUEUE** instead:
//!
//! * [`steer`] installs netfilter rules (`iptables`/`ip6tables`, table
//!   `raw`, chain `RVS-PRE`, before conntrack) that queue to rvsd only what
//!   the engine may own: packets to a virtual service (VIP, protocol, port)
//!   and, for NAT real servers, packets from RIP:rport (the replies). Every
//!   rule carries `--queue-bypass`, so with rvsd gone (even `kill -9`) the
//!   kernel handles everything (fail open). It also queues the ICMP
//!   errors the engine may have to relay (PMTU through tunnels, errors
//!   about NAT connections); the engine passes the others to the host.
//!   Each ruleset change is one atomic `iptables-restore` transaction,
//!   and rules of services that just left the table linger 2 s, so a
//!   `-C`/`-R` reload never opens a window of refused connections.
//! * A queue that overflows (rvsd not keeping up) drops, it does not fail
//!   open: accepted overflow would reach the director's own stack, which
//!   resets LVS connections (decision and limits in [`nfqueue`]).
//! * [`nfqueue::NfqueueDevice`] receives the queued IP packets (the kernel
//!   has already segmented GSO packets and completed partial checksums), puts
//!   a placeholder Ethernet header in front for the engine, and gives each
//!   packet back with a verdict: `Pass`/`Local` become `NF_ACCEPT` (the
//!   kernel carries on as if nothing happened, so a stray ACK to VIP:80 still
//!   gets the host's RST and health-check replies to the DIP still reach
//!   their socket), everything the engine forwarded or dropped becomes
//!   `NF_DROP`.
//! * [`tx::Transmitter`] sends what the engine forwarded: routed packets
//!   (NAT both ways, TUN, ICMP errors) through a raw `IPPROTO_RAW` socket,
//!   so the host's routing and neighbour tables apply; DR frames through an
//!   `AF_PACKET` socket with the real server's MAC from the kernel's
//!   neighbour table (resolution is triggered when the entry is missing).
//!   Sent packets carry [`tx::TX_MARK`]; a `raw OUTPUT` rule exempts them
//!   from conntrack so half-seen flows do not fill its table.
//!
//! Why not AF_XDP yet: a verdict of "pass" is impossible for a frame in an
//! AF_XDP ring, so XDP steering must be exact per flow (flow maps filled
//! from the engine's `FlowEvent`s before a flow's first packet leaves), and
//! the program, loader, UMEM rings and map sync did not fit the first step.
//! NFQUEUE gives the same decision interface, exact LVS semantics and fail
//! open, at a higher CPU cost per packet (DESIGN.md measured ~6x kernel
//! forwarding). The [`PacketDevice`] trait is the seam where an AF_XDP
//! device (and, in front of it, an XDP cache of established flows) plugs in
//! without touching the engine loop in [`run_once`].
//!
//! The XDP datapath now exists beside it, opt-in ([`xdp`], rvsd
//! `--datapath xdp|auto`): a BPF program steers connection openers to
//! virtual services and the engine's registered flows into AF_XDP
//! sockets and passes everything else; NFQUEUE remains the default and
//! carries firewall-mark services in XDP mode.
//!
//! This crate does no scheduling and holds no LVS state: the caller's
//! closure (the engine) decides every packet.

#![deny(unsafe_op_in_unsafe_fn)]

pub mod netwatch;
pub mod nfqueue;
pub mod steer;
pub mod sys;
pub mod tx;
pub mod xdp;

use rvs_core::{PacketMeta, Verdict};

/// Length of the Ethernet header devices put in front of IP packets that
/// arrive without one.
pub const ETH_HLEN: usize = 14;

/// Errors of the packet devices and the transmitter.
#[derive(Debug, thiserror::Error)]
pub enum DatapathError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{command} failed: {stderr}")]
    Command { command: String, stderr: String },
    #[error("no route or interface towards {0}")]
    NoRoute(std::net::IpAddr),
    #[error("neighbour {0} did not resolve")]
    Unresolved(std::net::IpAddr),
    #[error("frame too short or not IP ({0} bytes)")]
    BadFrame(usize),
}

impl DatapathError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> DatapathError {
        DatapathError::Io {
            what: what.into(),
            source,
        }
    }
}

/// A frame received from a device, with what the engine needs besides
/// its bytes and the device's handle to give it back.
#[derive(Debug)]
pub struct RxFrame<T> {
    /// An Ethernet frame (a placeholder header if the device has none).
    pub frame: Vec<u8>,
    pub meta: PacketMeta,
    /// The device's own handle (packet id, ring slot, ...).
    pub token: T,
}

/// What happens to a received frame's original.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// The host takes it, unchanged.
    ToHost,
    /// It is consumed (forwarded by the datapath, or dropped).
    Consume,
}

/// A source of frames the engine must see.
pub trait PacketDevice {
    type Token;
    /// Wait for the next frame.
    fn recv(&mut self) -> Result<RxFrame<Self::Token>, DatapathError>;
    /// Give a received frame back with its fate. `frame` is the frame as
    /// the engine left it: unchanged when `release` is `ToHost` (the
    /// engine never rewrites a frame it passes), so a device that cannot
    /// hand the original back (AF_XDP) re-injects these bytes.
    fn release(
        &mut self,
        token: Self::Token,
        frame: &[u8],
        release: Release,
    ) -> Result<(), DatapathError>;
}

/// Where forwarded frames go out.
pub trait FrameSink {
    fn transmit(&mut self, frame: &[u8], how: rvs_core::Transmit) -> Result<(), DatapathError>;
}

/// Counters of the datapath loop. Every field moves in a test.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoopStats {
    pub received: u64,
    pub to_host: u64,
    pub transmitted: u64,
    pub dropped: u64,
    pub tx_errors: u64,
}

/// Receive one frame, let `decide` (the engine) rule on it, send what it
/// forwarded and release the original. Errors of the transmitter are
/// counted, not returned: one unreachable real server must not stop the
/// loop.
pub fn run_once<D: PacketDevice, S: FrameSink>(
    device: &mut D,
    sink: &mut S,
    stats: &mut LoopStats,
    decide: impl FnOnce(&mut Vec<u8>, PacketMeta) -> Verdict,
) -> Result<(), DatapathError> {
    let RxFrame {
        mut frame,
        meta,
        token,
    } = device.recv()?;
    stats.received += 1;
    let send = match decide(&mut frame, meta) {
        Verdict::Pass | Verdict::Local => {
            stats.to_host += 1;
            return device.release(token, &frame, Release::ToHost);
        }
        Verdict::Forward(t) => Some(t),
        Verdict::Drop { reply, .. } => {
            stats.dropped += 1;
            reply
        }
    };
    if let Some(t) = send {
        match sink.transmit(&frame, t) {
            Ok(()) => stats.transmitted += 1,
            Err(_) => stats.tx_errors += 1,
        }
    }
    device.release(token, &frame, Release::Consume)
}

#[cfg(test)]
mod tests;
