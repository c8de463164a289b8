//! The NFQUEUE packet device: IP packets queued by the rules of
//! [`crate::steer`] come in over netfilter netlink, get a placeholder
//! Ethernet header for the engine, and go back with `NF_ACCEPT`
//! ([`Release::ToHost`]) or `NF_DROP` ([`Release::Consume`]).
//!
//! The queue is bound in fail-open mode (a full queue accepts rather than
//! drops) and without GSO, so the kernel segments super-packets and
//! completes partial checksums before queueing.
//!
//! The queue's netlink socket gets a large receive buffer: with the
//! default one (`rmem_default`, about 208 KiB, roughly a hundred queued
//! packets) a burst from one client overflows it, and a fail-open queue
//! then hands the overflow to the director's own stack, which answers
//! each VIP-bound segment with a TCP reset and kills the connection.

use crate::{DatapathError, PacketDevice, Release, RxFrame, ETH_HLEN};
use rvs_core::PacketMeta;

/// Packets the kernel holds for rvsd before it starts to fail open.
const QUEUE_MAX_LEN: u32 = 4096;

/// Receive buffer of the queue's netlink socket (see the module doc).
const RCVBUF_BYTES: i32 = 16 << 20;

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
