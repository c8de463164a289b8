//! One AF_XDP socket in copy mode, receive side only: a UMEM of
//! [`FRAME_SIZE`] chunks, its fill and completion rings, and an RX ring,
//! bound to one (interface, queue).
//!
//! Frames are copied out of the UMEM as soon as they are read and their
//! chunk goes straight back to the fill ring, so the socket never runs
//! dry while the engine works on a frame. Transmission is not done here
//! (rvsd sends through the host's raw and packet sockets, `tx.rs`); the
//! completion ring exists only because the kernel requires it.
//!
//! The `unsafe` is the socket, `mmap` and ring-index system interface
//! through libc; each block says why it is sound.

#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

/// Size of one UMEM chunk.
pub const FRAME_SIZE: u32 = 4096;
/// The longest frame a socket takes in copy mode: a chunk minus the
/// kernel's `XDP_PACKET_HEADROOM` (256). Longer ones (generic-XDP GSO
/// super-frames) would be dropped and counted in `rx_dropped`; the XDP
/// program passes them instead (`MAX_STEER_LEN` in `bpf/rvs_xdp.c`).
pub const MAX_FRAME_LEN: u32 = FRAME_SIZE - 256;
/// Chunks per socket (also the fill and RX ring sizes).
pub const FRAMES: u32 = 2048;
/// Completion ring size (unused, but required).
const COMP_SIZE: u32 = 64;

/// A memory mapping, unmapped on drop.
#[derive(Debug)]
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; access is
// synchronised by the ring protocol and `&mut self` of the socket.
unsafe impl Send for Mapping {}

impl Mapping {
    fn anonymous(len: usize) -> io::Result<Mapping> {
        // SAFETY: a fresh private anonymous mapping; no existing memory is
        // touched.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        Mapping::from_mmap(p, len)
    }

    fn ring(fd: RawFd, len: usize, offset: i64) -> io::Result<Mapping> {
        // SAFETY: maps the socket's ring at the offset the AF_XDP ABI
        // defines for it; `len` comes from the kernel's own offsets.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                offset,
            )
        };
        Mapping::from_mmap(p, len)
    }

    fn from_mmap(p: *mut libc::c_void, len: usize) -> io::Result<Mapping> {
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        NonNull::new(p.cast::<u8>())
            .map(|ptr| Mapping { ptr, len })
            .ok_or_else(|| io::Error::other("mmap returned null"))
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned; nothing
        // borrows the mapping past the owner's lifetime.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// A single-producer/single-consumer ring shared with the kernel.
#[derive(Debug)]
struct Ring {
    map: Mapping,
    producer: usize,
    consumer: usize,
    desc: usize,
    mask: u32,
}

impl Ring {
    fn index(&self, offset: usize) -> &AtomicU32 {
        // SAFETY: `offset` is one of the kernel-given offsets of the
        // producer/consumer words inside the mapping, 4-byte aligned; the
        // kernel updates them concurrently, hence atomics.
        unsafe { &*self.map.ptr.as_ptr().add(offset).cast::<AtomicU32>() }
    }
    fn producer(&self) -> &AtomicU32 {
        self.index(self.producer)
    }
    fn consumer(&self) -> &AtomicU32 {
        self.index(self.consumer)
    }
}

fn sockopt<T>(fd: RawFd, name: i32, value: &T) -> io::Result<()> {
    // SAFETY: `value` is a live `T` whose size is passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_XDP,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Receive counters of one socket, from the kernel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XskKernelStats {
    pub rx_dropped: u64,
    pub rx_invalid_descs: u64,
    pub rx_ring_full: u64,
    pub rx_fill_ring_empty: u64,
}

/// An AF_XDP socket bound to one (interface, queue) in copy mode.
#[derive(Debug)]
pub struct XskSocket {
    fd: OwnedFd,
    umem: Mapping,
    fill: Ring,
    rx: Ring,
    _comp: Ring,
    ifindex: u32,
    queue: u32,
}

impl XskSocket {
    /// Create the socket, its UMEM and rings, fill the fill ring and bind.
    pub fn open(ifindex: u32, queue: u32) -> io::Result<XskSocket> {
        // SAFETY: socket(2) with plain integers.
        let raw = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a new descriptor owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let umem = Mapping::anonymous((FRAME_SIZE * FRAMES) as usize)?;
        let reg = libc::xdp_umem_reg {
            addr: umem.ptr.as_ptr() as u64,
            len: u64::from(FRAME_SIZE * FRAMES),
            chunk_size: FRAME_SIZE,
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        };
        sockopt(raw, libc::XDP_UMEM_REG, &reg)?;
        sockopt(raw, libc::XDP_UMEM_FILL_RING, &FRAMES)?;
        sockopt(raw, libc::XDP_UMEM_COMPLETION_RING, &COMP_SIZE)?;
        sockopt(raw, libc::XDP_RX_RING, &FRAMES)?;

        // SAFETY: an all-zero xdp_mmap_offsets is a valid value.
        let mut off: libc::xdp_mmap_offsets = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::xdp_mmap_offsets>() as libc::socklen_t;
        // SAFETY: `off` and `len` are live and `len` is its size.
        let rc = unsafe {
            libc::getsockopt(
                raw,
                libc::SOL_XDP,
                libc::XDP_MMAP_OFFSETS,
                (&mut off as *mut libc::xdp_mmap_offsets).cast(),
                &mut len,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        let ring = |o: &libc::xdp_ring_offset, entries: u32, entry: usize, pgoff: u64| {
            let bytes = o.desc as usize + entries as usize * entry;
            Mapping::ring(raw, bytes, pgoff as i64).map(|map| Ring {
                map,
                producer: o.producer as usize,
                consumer: o.consumer as usize,
                desc: o.desc as usize,
                mask: entries - 1,
            })
        };
        let fill = ring(&off.fr, FRAMES, 8, libc::XDP_UMEM_PGOFF_FILL_RING)?;
        let comp = ring(&off.cr, COMP_SIZE, 8, libc::XDP_UMEM_PGOFF_COMPLETION_RING)?;
        let rx = ring(
            &off.rx,
            FRAMES,
            std::mem::size_of::<libc::xdp_desc>(),
            libc::XDP_PGOFF_RX_RING as u64,
        )?;

        let mut sock = XskSocket {
            fd,
            umem,
            fill,
            rx,
            _comp: comp,
            ifindex,
            queue,
        };
        // Hand every chunk to the kernel.
        for i in 0..FRAMES {
            sock.refill(u64::from(i * FRAME_SIZE));
        }

        // SAFETY: an all-zero sockaddr_xdp is a valid value.
        let mut sa: libc::sockaddr_xdp = unsafe { std::mem::zeroed() };
        sa.sxdp_family = libc::AF_XDP as u16;
        sa.sxdp_flags = libc::XDP_COPY;
        sa.sxdp_ifindex = ifindex;
        sa.sxdp_queue_id = queue;
        // SAFETY: `sa` is live and its size is passed.
        let rc = unsafe {
            libc::bind(
                raw,
                (&sa as *const libc::sockaddr_xdp).cast(),
                std::mem::size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(sock)
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    pub fn queue(&self) -> u32 {
        self.queue
    }

    /// Give chunk `addr` back to the kernel.
    fn refill(&mut self, addr: u64) {
        let prod = self.fill.producer().load(Ordering::Relaxed);
        let slot = (prod & self.fill.mask) as usize;
        // SAFETY: `slot` is within the ring's `mask + 1` u64 entries that
        // follow `desc` in the mapping; the slot is ours until the
        // producer index is published below. There is always room: the
        // ring holds every chunk and each chunk is in it at most once.
        unsafe {
            self.fill
                .map
                .ptr
                .as_ptr()
                .add(self.fill.desc + slot * 8)
                .cast::<u64>()
                .write(addr);
        }
        self.fill
            .producer()
            .store(prod.wrapping_add(1), Ordering::Release);
    }

    /// Take the next received frame, copied out (the chunk goes back to
    /// the fill ring at once). `None` when the RX ring is empty.
    pub fn try_recv(&mut self) -> Option<Vec<u8>> {
        let cons = self.rx.consumer().load(Ordering::Relaxed);
        let prod = self.rx.producer().load(Ordering::Acquire);
        if cons == prod {
            return None;
        }
        let slot = (cons & self.rx.mask) as usize;
        let size = std::mem::size_of::<libc::xdp_desc>();
        // SAFETY: `slot` indexes one of the ring's entries after `desc`;
        // the kernel published it (producer > consumer, acquire above).
        let desc: libc::xdp_desc = unsafe {
            self.rx
                .map
                .ptr
                .as_ptr()
                .add(self.rx.desc + slot * size)
                .cast::<libc::xdp_desc>()
                .read_unaligned()
        };
        let start = desc.addr as usize;
        let len = desc.len as usize;
        let frame = if start.checked_add(len).is_some_and(|e| e <= self.umem.len) {
            let mut v = Vec::with_capacity(len + 64);
            // SAFETY: `start..start+len` is inside the UMEM (checked); the
            // kernel wrote it before publishing the descriptor.
            v.extend_from_slice(unsafe {
                std::slice::from_raw_parts(self.umem.ptr.as_ptr().add(start), len)
            });
            v
        } else {
            Vec::new()
        };
        self.rx
            .consumer()
            .store(cons.wrapping_add(1), Ordering::Release);
        // The chunk's base address (copy mode gives chunk-aligned frames
        // plus headroom).
        let chunk = desc.addr - desc.addr % u64::from(FRAME_SIZE);
        self.refill(chunk);
        Some(frame)
    }

    /// The kernel's receive counters for this socket.
    pub fn kernel_stats(&self) -> io::Result<XskKernelStats> {
        // SAFETY: an all-zero xdp_statistics is a valid value.
        let mut st: libc::xdp_statistics = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::xdp_statistics>() as libc::socklen_t;
        // SAFETY: `st` and `len` are live and `len` is its size.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_XDP,
                libc::XDP_STATISTICS,
                (&mut st as *mut libc::xdp_statistics).cast(),
                &mut len,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(XskKernelStats {
            rx_dropped: st.rx_dropped,
            rx_invalid_descs: st.rx_invalid_descs,
            rx_ring_full: st.rx_ring_full,
            rx_fill_ring_empty: st.rx_fill_ring_empty_descs,
        })
    }
}

impl AsRawFd for XskSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// What [`poll_sockets`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollOutcome {
    /// Some descriptor is readable.
    pub readable: bool,
    /// Indexes (into `fds`) of descriptors in error or hung up: an
    /// AF_XDP socket whose interface went away reports `POLLERR` forever.
    pub broken: Vec<usize>,
}

/// Wait until one of `fds` is readable or broken, or `timeout_ms` passed.
pub fn poll_sockets(fds: &[RawFd], timeout_ms: i32) -> io::Result<PollOutcome> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: `pfds` is a live array of `pfds.len()` pollfd entries.
    let rc = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(PollOutcome::default());
        }
        return Err(e);
    }
    let mut out = PollOutcome::default();
    for (i, p) in pfds.iter().enumerate() {
        if p.revents & libc::POLLIN != 0 {
            out.readable = true;
        }
        if p.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
            out.broken.push(i);
        }
    }
    Ok(out)
}

/// An eventfd that wakes a thread blocked in [`poll_sockets`] (it is
/// readable after [`Waker::wake`] until [`Waker::clear`]).
#[derive(Debug)]
pub struct Waker {
    fd: OwnedFd,
}

impl Waker {
    pub fn new() -> io::Result<Waker> {
        // SAFETY: eventfd(2) with plain integers.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a new descriptor owned by nobody else.
        Ok(Waker {
            fd: unsafe { OwnedFd::from_raw_fd(raw) },
        })
    }

    pub fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes the 8 bytes of a live u64; a full counter
        // (EAGAIN) still leaves the eventfd readable.
        unsafe {
            libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8);
        }
    }

    pub fn clear(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads at most 8 bytes into a live u64; EAGAIN when not
        // woken is fine (non-blocking).
        unsafe {
            libc::read(self.fd.as_raw_fd(), (&mut v as *mut u64).cast(), 8);
        }
    }
}

impl AsRawFd for Waker {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// An interface's index in this network namespace (`if_nametoindex`).
pub fn if_index(name: &str) -> io::Result<u32> {
    let c = std::ffi::CString::new(name).map_err(io::Error::other)?;
    // SAFETY: `c` is a live NUL-terminated string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(i)
}
