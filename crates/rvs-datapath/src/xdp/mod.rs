//! The XDP datapath: an XDP program (C, `bpf/rvs_xdp.c`) on each
//! interface steers what the engine must decide into AF_XDP sockets;
//! everything else stays in the kernel.
//!
//! * [`program`]: loads the program with aya, attaches it (native, else
//!   generic), feeds its service, flow and socket maps.
//! * [`xsk`]: one AF_XDP socket in copy mode (receive only).
//! * [`device`]: the sockets as one [`crate::PacketDevice`].
//! * [`keys`]: the byte layout of the map keys.
//!
//! Steering is exact: connection openers (TCP SYN, UDP) to a virtual
//! service, and frames of tuples the engine registered through
//! `FlowEvent`s. The caller must apply each `Added` event to the flow map
//! before transmitting the frame that created it, so the flow's next
//! packet (and its NAT reply) is steered too. Frames leave through the
//! host's sockets ([`crate::tx::Transmitter`]).
//!
//! What XDP cannot do here: it never sees a netfilter mark (firewall-mark
//! services still need [`crate::steer`]'s NFQUEUE rules), traffic the
//! director itself sends, or a frame larger than a UMEM chunk (generic
//! XDP on veth may hand GSO super-frames; the socket drops them).

pub mod device;
pub mod keys;
pub mod program;
pub mod xsk;

pub use device::{XdpDevice, XdpDeviceStats};
pub use program::{availability, AttachedMode, ProgramStats, XdpAttachMode, XdpError, XdpProgram};
pub use xsk::XskSocket;

/// Receive queues of an interface (from sysfs; at least 1).
pub fn rx_queues(iface: &str) -> u32 {
    let dir = format!("/sys/class/net/{iface}/queues");
    let n = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                .count()
        })
        .unwrap_or(1);
    u32::try_from(n.max(1)).unwrap_or(1)
}
