//! The IPIP decapsulator daemon for hosts without the kernel's `ipip`
//! module: a raw `IPPROTO_IPIP` socket receives what the director's
//! tunnel sends (outer header included), [`crate::decap`] strips the
//! outer header, and the inner packet is written to a TUN device. The
//! kernel then receives it as if it had arrived on that device; the VIP
//! is on `lo`, so it is delivered locally and the server answers the
//! client directly, from the VIP, through its normal routes.
//!
//! The TUN device is not persistent: it disappears with the process, so
//! `kill` (any signal) is a complete stop. The `unsafe` here is the
//! socket and ioctl system calls through libc, each with its
//! `// SAFETY:` reasoning.

#![allow(unsafe_code)]

use crate::decap::{decapsulate, DecapStats, IPPROTO_IPIP};
use crate::setup::{run_ip, write_sysctl};
use crate::SetupError;
use std::fs::File;
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `TUNSETIFF` ioctl request (`_IOW('T', 202, int)`).
const TUNSETIFF: u64 = 0x4004_54ca;
/// TUN device (IP packets, no Ethernet header).
const IFF_TUN: i16 = 0x0001;
/// No packet-information prefix on reads and writes.
const IFF_NO_PI: i16 = 0x1000;
/// Largest IPv4 packet.
const MAX_PACKET: usize = 65_535;

/// Create (or attach to) TUN device `name`, without packet information.
pub fn open_tun(name: &str) -> io::Result<File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")?;
    // SAFETY: an all-zero ifreq is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= req.ifr_name.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad interface name {name:?}"),
        ));
    }
    for (d, s) in req.ifr_name.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    req.ifr_ifru.ifru_flags = IFF_TUN | IFF_NO_PI;
    // SAFETY: TUNSETIFF reads and writes one `ifreq`, which lives across
    // the call; the descriptor is open for the lifetime of `file`.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF as _, &mut req) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(file)
}

/// A raw socket receiving every IPIP packet delivered to this host.
pub fn open_ipip_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket(2) takes plain integers and returns a new descriptor
    // or -1; nothing is borrowed.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            i32::from(IPPROTO_IPIP),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket(2), is valid and owned by
    // nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn recv(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of its length for the whole call;
    // the descriptor is valid for the lifetime of `fd`.
    let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// A running decapsulator: its socket, device and counters.
#[derive(Debug)]
pub struct Decapsulator {
    socket: OwnedFd,
    tun: File,
    vips: Vec<Ipv4Addr>,
    pub stats: DecapStats,
}

impl Decapsulator {
    /// Open the socket and device `device`, bring the device up and turn
    /// reverse-path filtering off on it (the inner packets' sources are
    /// routed through another interface).
    pub fn open(device: &str, vips: Vec<Ipv4Addr>) -> Result<Decapsulator, SetupError> {
        let socket =
            open_ipip_socket().map_err(|e| SetupError::io("raw IPIP socket (needs root)", e))?;
        let tun =
            open_tun(device).map_err(|e| SetupError::io(format!("TUN device {device}"), e))?;
        run_ip(&["link", "set", "dev", device, "up"])?;
        write_sysctl(&format!("net.ipv4.conf.{device}.rp_filter"), "0")?;
        Ok(Decapsulator {
            socket,
            tun,
            vips,
            stats: DecapStats::default(),
        })
    }

    /// Receive and deliver one packet. Errors are those of the socket
    /// and device; a packet that is not for us is counted and skipped.
    pub fn step(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let n = recv(&self.socket, buf)?;
        let packet = buf.get(..n).unwrap_or_default();
        let r = decapsulate(packet, &self.vips);
        self.stats.count(&r);
        if let Ok(inner) = r {
            self.tun.write_all(inner)?;
        }
        Ok(())
    }

    /// Run until the socket or device fails (the process is stopped by a
    /// signal).
    pub fn run(&mut self) -> io::Result<()> {
        let mut buf = vec![0u8; MAX_PACKET];
        loop {
            match self.step(&mut buf) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The inner packet may be refused by the device (e.g. too
                // big for its MTU): skip it, keep serving.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
                Err(e) => return Err(e),
            }
        }
    }
}
