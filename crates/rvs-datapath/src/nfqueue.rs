//! The NFQUEUE packet device: IP packets queued by the rules of
//! [`crate::steer`] come in over netfilter netlink, get a placeholder
//! Ethernet header for the engine, and go back with `NF_ACCEPT`
//! ([`Release::ToHost`]) or `NF_DROP` ([`Release::Consume`]).
//!
//! The queue is bound in fail-open mode (a full queue accepts rather than
//! drops) and without GSO, so the kernel segments super-packets and
//! completes partial checksums before queueing.

use crate::{DatapathError, PacketDevice, Release, RxFrame, ETH_HLEN};
use rvs_core::PacketMeta;

/// Packets the kernel holds for rvsd before it starts to fail open.
const QUEUE_MAX_LEN: u32 = 4096;

/// A bound netfilter queue.
pub struct NfqueueDevice {
    queue: nfq::Queue,
    num: u16,
}

impl std::fmt::Debug for NfqueueDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NfqueueDevice")
            .field("num", &self.num)
            .finish()
    }
}

/// A queued packet waiting for its verdict.
pub struct QueuedPacket(nfq::Message);

impl std::fmt::Debug for QueuedPacket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("QueuedPacket")
            .field(&self.0.get_packet_id())
            .finish()
    }
}

impl NfqueueDevice {
    /// Bind queue `num` of this network namespace.
    pub fn bind(num: u16) -> Result<NfqueueDevice, DatapathError> {
        let what = |s: &str| format!("nfqueue {num}: {s}");
        let mut queue = nfq::Queue::open().map_err(|e| DatapathError::io(what("open"), e))?;
        queue
            .bind(num)
            .map_err(|e| DatapathError::io(what("bind"), e))?;
        queue
            .set_fail_open(num, true)
            .map_err(|e| DatapathError::io(what("fail-open"), e))?;
        queue
            .set_recv_gso(num, false)
            .map_err(|e| DatapathError::io(what("gso"), e))?;
        queue
            .set_queue_max_len(num, QUEUE_MAX_LEN)
            .map_err(|e| DatapathError::io(what("max len"), e))?;
        queue.set_nonblocking(false);
        Ok(NfqueueDevice { queue, num })
    }

    pub fn queue_num(&self) -> u16 {
        self.num
    }
}

/// Put a placeholder Ethernet header (zero MACs, the IP version's
/// ethertype) in front of an IP packet. `None` if it is not IPv4/IPv6.
pub fn frame_from_ip(ip: &[u8]) -> Option<Vec<u8>> {
    let ethertype: [u8; 2] = match ip.first()? >> 4 {
        4 => [0x08, 0x00],
        6 => [0x86, 0xdd],
        _ => return None,
    };
    let mut frame = Vec::with_capacity(ETH_HLEN + ip.len() + 40);
    frame.extend_from_slice(&[0u8; 12]);
    frame.extend_from_slice(&ethertype);
    frame.extend_from_slice(ip);
    Some(frame)
}

impl PacketDevice for NfqueueDevice {
    type Token = QueuedPacket;

    fn recv(&mut self) -> Result<RxFrame<QueuedPacket>, DatapathError> {
        loop {
            let msg = self
                .queue
                .recv()
                .map_err(|e| DatapathError::io("nfqueue recv", e))?;
            match frame_from_ip(msg.get_payload()) {
                Some(frame) => {
                    let meta = PacketMeta {
                        fwmark: msg.get_nfmark(),
                        ingress: msg.get_indev(),
                    };
                    return Ok(RxFrame {
                        frame,
                        meta,
                        token: QueuedPacket(msg),
                    });
                }
                // Not IP: cannot be ours; give it back at once.
                None => self.release(QueuedPacket(msg), Release::ToHost)?,
            }
        }
    }

    fn release(&mut self, token: QueuedPacket, release: Release) -> Result<(), DatapathError> {
        let mut msg = token.0;
        msg.set_verdict(match release {
            Release::ToHost => nfq::Verdict::Accept,
            Release::Consume => nfq::Verdict::Drop,
        });
        self.queue
            .verdict(msg)
            .map_err(|e| DatapathError::io("nfqueue verdict", e))
    }
}
