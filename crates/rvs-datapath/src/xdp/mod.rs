//! The XDP datapath: an XDP program (C, `bpf/rvs_xdp.c`) on each
//! interface steers what the engine must decide into AF_XDP sockets;
//! everything else stays in the kernel.
//!
//! * [`program`]: loads the program with aya, attaches it (native, else
//!   generic), feeds its service, flow and socket maps.
//! * [`ifaces`]: which interfaces carry it, following links that appear
//!   and disappear.
//! * [`xsk`]: one AF_XDP socket in copy mode (receive only).
//! * [`device`]: the sockets as one [`crate::PacketDevice`]; completes
//!   partial checksums ([`csum`]) and re-injects what the engine passes.
//! * [`keys`]: the byte layout of the map keys.
//! * [`fastpath`]: `rvsd --xdp-fastpath`: established NAT and DR flows
//!   cached in the program (`rvs_steer_fast`), which forwards them itself;
//!   their counters and timers go back to the engine.
//!
//! Steering is exact: connection openers (TCP SYN, UDP) to a virtual
//! service, and frames of tuples the engine registered through
//! `FlowEvent`s. The caller must apply each `Added` event to the flow map
//! before transmitting the frame that created it, so the flow's next
//! packet (and its NAT reply) is steered too. Frames leave through the
//! host's sockets ([`crate::tx::Transmitter`]).
//!
//! What XDP cannot do here, and what covers it: it never sees a
//! netfilter mark, traffic the director itself sends, or a frame larger
//! than a UMEM chunk (generic XDP on veth hands GSO super-frames; the
//! program passes those, counted in [`ProgramStats::too_big`]). rvsd
//! therefore keeps the NFQUEUE rules of [`crate::steer`] installed beside
//! the program: frames XDP steered never reach netfilter, so the rules
//! only see what XDP passed (marked packets, local clients, oversized
//! frames, which netfilter hands over segmented, stray packets the kernel
//! should answer) and give it to the engine with the NFQUEUE semantics.

pub mod csum;
pub mod device;
pub mod fastpath;
pub mod ifaces;
pub mod keys;
pub mod program;
pub mod xsk;

pub use device::{SocketAdder, XdpDevice, XdpDeviceStats};
pub use fastpath::{FastPath, FastPathStats};
pub use ifaces::{current_links, Attachments, SyncReport};
pub use program::{
    availability, AttachedMode, ProgramKind, ProgramStats, XdpAttachMode, XdpError, XdpProgram,
};
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
