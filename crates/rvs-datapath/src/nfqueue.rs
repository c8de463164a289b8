//! The NFQUEUE packet device: IP packets queued by the rules of
//! [`crate::steer`] come in over netfilter netlink, get a placeholder
//! Ethernet header for the engine, and go back with `NF_ACCEPT`
//! ([`Release::ToHost`]) or `NF_DROP` ([`Release::Consume`]).
//!
//! The queue is bound without GSO, so the kernel segments super-packets
//! and completes partial checksums before queueing.
//!
//! # When the queue overflows: drop, not fail open
//! Two limits bound what the kernel holds for rvsd: the queue length
//! (`NFQA_CFG_QUEUE_MAXLEN`, [`QUEUE_MAX_LEN`] packets, the kernel's
//! default being 1024) and the receive buffer of the queue's netlink
//! socket (the default `rmem_default`, about 208 KiB, holds roughly a
//! hundred full-size packets; rvsd forces [`RCVBUF_BYTES`], which the
//! kernel doubles, more than [`QUEUE_MAX_LEN`] full-size packets take).
//! Past either limit the kernel either drops the packet or, with the
//! queue's fail-open flag (`NFQA_CFG_F_FAIL_OPEN`), accepts it as if no
//! rule had queued it. rvsd binds the queue **without** fail-open:
//! every steered packet belongs to a virtual service or to a NAT
//! connection, and the director's own stack has no socket for any of
//! them, so an accepted overflow is answered with a TCP reset (to the
//! client for VIP-bound segments; by the client to the real server for
//! NAT replies forwarded untranslated) or an ICMP port unreachable,
//! which kills connections that a drop would only have slowed down
//! (TCP retransmits a dropped segment; the kernel's IPVS also drops
//! under overload). Fail open where it matters, when rvsd is not there
//! at all (stopped, crashed, `kill -9`), is a different mechanism: the
//! rules' `--queue-bypass`, which accepts packets while no process is
//! bound to the queue. A running rvsd that stops reading (stopped with
//! SIGSTOP, say) therefore drops what is steered once the queue is full,
//! as an overloaded kernel would; the queue's `queue_dropped` counter in
//! `/proc/net/netfilter/nfnetlink_queue` shows it.

use crate::{DatapathError, PacketDevice, Release, RxFrame, ETH_HLEN};
use rvs_core::PacketMeta;

/// Packets the kernel holds for rvsd before it drops (see the module
/// doc): about a second of a busy director's traffic, and within what
/// [`RCVBUF_BYTES`] holds of full-size packets.
pub const QUEUE_MAX_LEN: u32 = 8192;

/// Receive buffer of the queue's netlink socket (see the module doc).
pub const RCVBUF_BYTES: i32 = 16 << 20;

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
        let before = open_fds();
        let mut queue = nfq::Queue::open().map_err(|e| DatapathError::io(what("open"), e))?;
        // `nfq` does not expose its descriptor: find the netfilter
        // netlink socket that `open` just created.
        for (fd, target) in open_fds() {
            if !before.iter().any(|(_, t)| *t == target) && is_netfilter_netlink(fd) {
                force_rcvbuf(fd, RCVBUF_BYTES)
                    .map_err(|e| DatapathError::io(what("receive buffer"), e))?;
            }
        }
        queue
            .bind(num)
            .map_err(|e| DatapathError::io(what("bind"), e))?;
        // Drop, never accept, what does not fit (see the module doc).
        queue
            .set_fail_open(num, false)
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
                None => self.release(QueuedPacket(msg), &[], Release::ToHost)?,
            }
        }
    }

    fn release(
        &mut self,
        token: QueuedPacket,
        _frame: &[u8],
        release: Release,
    ) -> Result<(), DatapathError> {
        // The kernel still holds the original; a verdict is enough.
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

/// The descriptors open in this process and what each refers to
/// (`/proc/self/fd`; `socket:[inode]` for sockets). Numbers alone would
/// not do: a descriptor closed in between is reused.
fn open_fds() -> Vec<(i32, std::path::PathBuf)> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let fd = e.file_name().to_str()?.parse().ok()?;
        Some((fd, std::fs::read_link(e.path()).ok()?))
    })
    .collect()
}

/// Is `fd` a netlink socket of protocol `NETLINK_NETFILTER`?
#[allow(unsafe_code)]
fn is_netfilter_netlink(fd: i32) -> bool {
    let get = |opt: libc::c_int| -> Option<libc::c_int> {
        let mut v: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `v` and `len` outlive the call and `len` is `v`'s size;
        // on a descriptor that is not a socket the call only fails.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        (rc == 0).then_some(v)
    };
    get(libc::SO_DOMAIN) == Some(libc::AF_NETLINK)
        && get(libc::SO_PROTOCOL) == Some(libc::NETLINK_NETFILTER)
}

/// Set `fd`'s receive buffer to `bytes`, above `rmem_max` if allowed
/// (`SO_RCVBUFFORCE` needs CAP_NET_ADMIN, which rvsd has), else as far as
/// `rmem_max` lets it (`SO_RCVBUF`).
#[allow(unsafe_code)]
fn force_rcvbuf(fd: i32, bytes: i32) -> std::io::Result<()> {
    let set = |opt: libc::c_int| -> libc::c_int {
        // SAFETY: `bytes` outlives the call and its size is passed.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&bytes as *const i32).cast(),
                std::mem::size_of::<i32>() as libc::socklen_t,
            )
        }
    };
    if set(libc::SO_RCVBUFFORCE) == 0 || set(libc::SO_RCVBUF) == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
