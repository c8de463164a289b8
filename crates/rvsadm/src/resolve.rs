//! Name lookups behind a seam. ipvsadm turns host names and service names
//! into addresses and ports (and back, for listings without `-n`) through
//! the C library, so `/etc/nsswitch.conf` decides where names come from
//! (typically `/etc/hosts`, then DNS). [`SystemResolver`] does the same:
//! it asks glibc's `getnameinfo`/`getaddrinfo` (through the `dns-lookup`
//! crate, so this crate holds no `unsafe`) and remembers every answer for
//! the rest of the invocation, so a listing resolves each address once.
//! [`FileResolver`] reads `/etc/hosts` and `/etc/services` format texts
//! and never sends a DNS query (tests inject names with it);
//! [`NumericResolver`] knows no names.
//!
//! How the C library calls map onto ipvsadm's:
//! * `gethostbyaddr` -> `getnameinfo(NI_NAMEREQD)`: both give the entry's
//!   official name (the first name of a hosts line, or the PTR answer).
//! * `getservbyport(port, "tcp"|"udp")` -> the service half of
//!   `getnameinfo` (`NI_DGRAM` for UDP). glibc's `getnameinfo` knows only
//!   TCP and UDP, so SCTP port names come from `/etc/services` directly
//!   (the `files` source that `services:` uses on every common system).
//! * `gethostbyname` (IPv4 only) -> `getaddrinfo(AF_INET)`, first address.
//! * `getservbyname(name, proto)` -> `getaddrinfo(NULL, name)` with the
//!   protocol's socket type and number (glibc maps IPPROTO_SCTP to "sctp").

use dns_lookup::AddrInfoHints;
use rvs_core::Protocol;
use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Name lookups used by argument parsing and listings.
pub trait Resolver {
    /// `gethostbyname` restricted to IPv4: the first IPv4 address of `name`.
    fn host_to_ipv4(&self, name: &str) -> Option<Ipv4Addr>;
    /// `gethostbyaddr`: the canonical name of `addr`.
    fn addr_to_host(&self, addr: IpAddr) -> Option<String>;
    /// `getservbyname(name, proto)`.
    fn service_to_port(&self, name: &str, protocol: Protocol) -> Option<u16>;
    /// `getservbyport(port, proto)`: the official service name.
    fn port_to_service(&self, port: u16, protocol: Protocol) -> Option<String>;
}

/// Resolves nothing: every lookup fails, listings stay numeric.
#[derive(Debug, Clone, Copy, Default)]
pub struct NumericResolver;

impl Resolver for NumericResolver {
    fn host_to_ipv4(&self, _name: &str) -> Option<Ipv4Addr> {
        None
    }
    fn addr_to_host(&self, _addr: IpAddr) -> Option<String> {
        None
    }
    fn service_to_port(&self, _name: &str, _protocol: Protocol) -> Option<u16> {
        None
    }
    fn port_to_service(&self, _port: u16, _protocol: Protocol) -> Option<String> {
        None
    }
}

#[derive(Debug, Clone)]
struct HostEntry {
    addr: IpAddr,
    names: Vec<String>,
}

#[derive(Debug, Clone)]
struct ServiceEntry {
    name: String,
    aliases: Vec<String>,
    port: u16,
    protocol: String,
}

/// Lookups in `/etc/hosts` and `/etc/services` format; the first matching
/// line wins, as with glibc's `files` backend.
#[derive(Debug, Clone, Default)]
pub struct FileResolver {
    hosts: Vec<HostEntry>,
    services: Vec<ServiceEntry>,
}

impl FileResolver {
    /// Reads `/etc/hosts` and `/etc/services`; a missing file means no names.
    pub fn system() -> FileResolver {
        let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        let services = std::fs::read_to_string("/etc/services").unwrap_or_default();
        FileResolver::from_texts(&hosts, &services)
    }

    /// Builds a resolver from texts in hosts(5) and services(5) format.
    pub fn from_texts(hosts: &str, services: &str) -> FileResolver {
        let mut resolver = FileResolver::default();
        for line in hosts.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut fields = line.split_whitespace();
            let Some(addr) = fields.next().and_then(|a| a.parse::<IpAddr>().ok()) else {
                continue;
            };
            let names: Vec<String> = fields.map(str::to_string).collect();
            if !names.is_empty() {
                resolver.hosts.push(HostEntry { addr, names });
            }
        }
        for line in services.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut fields = line.split_whitespace();
            let (Some(name), Some(portproto)) = (fields.next(), fields.next()) else {
                continue;
            };
            let Some((port, protocol)) = portproto.split_once('/') else {
                continue;
            };
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            resolver.services.push(ServiceEntry {
                name: name.to_string(),
                aliases: fields.map(str::to_string).collect(),
                port,
                protocol: protocol.to_ascii_lowercase(),
            });
        }
        resolver
    }
}

fn proto_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
    }
}

impl Resolver for FileResolver {
    fn host_to_ipv4(&self, name: &str) -> Option<Ipv4Addr> {
        self.hosts.iter().find_map(|h| match h.addr {
            IpAddr::V4(a) if h.names.iter().any(|n| n.eq_ignore_ascii_case(name)) => Some(a),
            _ => None,
        })
    }

    fn addr_to_host(&self, addr: IpAddr) -> Option<String> {
        self.hosts
            .iter()
            .find(|h| h.addr == addr)
            .and_then(|h| h.names.first().cloned())
    }

    fn service_to_port(&self, name: &str, protocol: Protocol) -> Option<u16> {
        let proto = proto_name(protocol);
        self.services
            .iter()
            .find(|s| {
                s.protocol == proto && (s.name == name || s.aliases.iter().any(|a| a == name))
            })
            .map(|s| s.port)
    }

    fn port_to_service(&self, port: u16, protocol: Protocol) -> Option<String> {
        let proto = proto_name(protocol);
        self.services
            .iter()
            .find(|s| s.protocol == proto && s.port == port)
            .map(|s| s.name.clone())
    }
}

/// Lookups through the C library, uncached: each call asks glibc again.
/// Listings want [`SystemResolver`], which caches these answers.
#[derive(Debug, Default)]
pub struct LibcResolver {
    /// `/etc/services`, read on the first SCTP port lookup.
    sctp_services: OnceCell<FileResolver>,
}

/// The C library's lookups, each answer remembered for the invocation.
pub type SystemResolver = CachedResolver<LibcResolver>;

impl CachedResolver<LibcResolver> {
    /// Lookups as ipvsadm makes them (nsswitch order: hosts file, DNS...).
    pub fn system() -> SystemResolver {
        CachedResolver::new(LibcResolver::default())
    }
}

/// Would glibc's `getaddrinfo` take `name` as a port number rather than
/// a service name (it parses with `strtoul`)? `getservbyname` never does,
/// so such names are no service (and `"99999"` does not wrap to a port).
fn numeric_service_text(name: &str) -> bool {
    let rest = name.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let rest = rest.strip_prefix(['+', '-']).unwrap_or(rest);
    !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit())
}

impl Resolver for LibcResolver {
    fn host_to_ipv4(&self, name: &str) -> Option<Ipv4Addr> {
        if name.is_empty() {
            return None;
        }
        let hints = AddrInfoHints {
            flags: 0,
            address: libc::AF_INET,
            socktype: libc::SOCK_STREAM,
            protocol: 0,
        };
        let answers = dns_lookup::getaddrinfo(Some(name), None, Some(hints)).ok()?;
        answers
            .filter_map(Result::ok)
            .find_map(|a| match a.sockaddr.ip() {
                IpAddr::V4(v4) => Some(v4),
                IpAddr::V6(_) => None,
            })
    }

    fn addr_to_host(&self, addr: IpAddr) -> Option<String> {
        let flags = libc::NI_NAMEREQD | libc::NI_NUMERICSERV;
        let (host, _) = dns_lookup::getnameinfo(&SocketAddr::new(addr, 0), flags).ok()?;
        (!host.is_empty()).then_some(host)
    }

    fn service_to_port(&self, name: &str, protocol: Protocol) -> Option<u16> {
        if name.is_empty() || name.contains(char::is_whitespace) || numeric_service_text(name) {
            return None;
        }
        let (socktype, proto) = match protocol {
            Protocol::Tcp => (libc::SOCK_STREAM, libc::IPPROTO_TCP),
            Protocol::Udp => (libc::SOCK_DGRAM, libc::IPPROTO_UDP),
            Protocol::Sctp => (libc::SOCK_STREAM, libc::IPPROTO_SCTP),
        };
        // No node and AI_PASSIVE: only the services database is consulted.
        let hints = AddrInfoHints {
            flags: libc::AI_PASSIVE,
            address: libc::AF_INET,
            socktype,
            protocol: proto,
        };
        let answers = dns_lookup::getaddrinfo(None, Some(name), Some(hints)).ok()?;
        answers
            .filter_map(Result::ok)
            .map(|a| a.sockaddr.port())
            .next()
    }

    fn port_to_service(&self, port: u16, protocol: Protocol) -> Option<String> {
        let datagram = match protocol {
            Protocol::Tcp => 0,
            Protocol::Udp => libc::NI_DGRAM,
            Protocol::Sctp => {
                return self
                    .sctp_services
                    .get_or_init(|| {
                        let text = std::fs::read_to_string("/etc/services").unwrap_or_default();
                        FileResolver::from_texts("", &text)
                    })
                    .port_to_service(port, protocol);
            }
        };
        // A numeric host part: no address lookup, only the service's.
        let sock = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port);
        let (_, service) = dns_lookup::getnameinfo(&sock, libc::NI_NUMERICHOST | datagram).ok()?;
        // Unknown ports come back as their number.
        (!service.is_empty() && service != port.to_string()).then_some(service)
    }
}

/// Any [`Resolver`] with every answer (found or not) remembered, so one
/// invocation asks about each address, port or name at most once.
#[derive(Debug, Default)]
pub struct CachedResolver<R> {
    inner: R,
    hosts: RefCell<HashMap<IpAddr, Option<String>>>,
    services: RefCell<HashMap<(u16, Protocol), Option<String>>>,
    addrs: RefCell<HashMap<String, Option<Ipv4Addr>>>,
    ports: RefCell<HashMap<(String, Protocol), Option<u16>>>,
}

impl<R: Resolver> CachedResolver<R> {
    /// Wraps `inner`; nothing is cached yet.
    pub fn new(inner: R) -> CachedResolver<R> {
        CachedResolver {
            inner,
            hosts: RefCell::default(),
            services: RefCell::default(),
            addrs: RefCell::default(),
            ports: RefCell::default(),
        }
    }

    /// The wrapped resolver.
    pub fn inner(&self) -> &R {
        &self.inner
    }
}

fn cached<K: Eq + Hash, V: Clone>(
    cache: &RefCell<HashMap<K, V>>,
    key: K,
    lookup: impl FnOnce() -> V,
) -> V {
    if let Some(v) = cache.borrow().get(&key) {
        return v.clone();
    }
    let v = lookup();
    cache.borrow_mut().insert(key, v.clone());
    v
}

impl<R: Resolver> Resolver for CachedResolver<R> {
    fn host_to_ipv4(&self, name: &str) -> Option<Ipv4Addr> {
        cached(&self.addrs, name.to_string(), || {
            self.inner.host_to_ipv4(name)
        })
    }

    fn addr_to_host(&self, addr: IpAddr) -> Option<String> {
        cached(&self.hosts, addr, || self.inner.addr_to_host(addr))
    }

    fn service_to_port(&self, name: &str, protocol: Protocol) -> Option<u16> {
        cached(&self.ports, (name.to_string(), protocol), || {
            self.inner.service_to_port(name, protocol)
        })
    }

    fn port_to_service(&self, port: u16, protocol: Protocol) -> Option<String> {
        cached(&self.services, (port, protocol), || {
            self.inner.port_to_service(port, protocol)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_formats() {
        let r = FileResolver::from_texts(
            "127.0.0.1 localhost\n# c\n192.0.2.1 web1 www # comment\n2001:db8::1 v6host\n",
            "http 80/tcp www # WorldWideWeb\nhttp-alt 8080/tcp webcache\ndomain 53/udp\n",
        );
        assert_eq!(r.host_to_ipv4("WWW"), Some(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(r.host_to_ipv4("v6host"), None);
        assert_eq!(
            r.addr_to_host("192.0.2.1".parse().expect("ip")),
            Some("web1".into())
        );
        assert_eq!(r.service_to_port("www", Protocol::Tcp), Some(80));
        assert_eq!(r.service_to_port("http", Protocol::Udp), None);
        assert_eq!(
            r.port_to_service(8080, Protocol::Tcp),
            Some("http-alt".into())
        );
        assert_eq!(r.port_to_service(53, Protocol::Udp), Some("domain".into()));
    }

    /// Counts the lookups that reach it; knows one host and one service.
    #[derive(Default)]
    struct Counting {
        calls: std::cell::Cell<u32>,
    }

    impl Resolver for Counting {
        fn host_to_ipv4(&self, name: &str) -> Option<Ipv4Addr> {
            self.calls.set(self.calls.get() + 1);
            (name == "rs1").then_some(Ipv4Addr::new(203, 0, 113, 11))
        }
        fn addr_to_host(&self, addr: IpAddr) -> Option<String> {
            self.calls.set(self.calls.get() + 1);
            (addr == IpAddr::V4(Ipv4Addr::new(203, 0, 113, 11))).then(|| "rs1".to_string())
        }
        fn service_to_port(&self, name: &str, protocol: Protocol) -> Option<u16> {
            self.calls.set(self.calls.get() + 1);
            (name == "http" && protocol == Protocol::Tcp).then_some(80)
        }
        fn port_to_service(&self, port: u16, protocol: Protocol) -> Option<String> {
            self.calls.set(self.calls.get() + 1);
            (port == 80 && protocol == Protocol::Tcp).then(|| "http".to_string())
        }
    }

    #[test]
    fn cache_asks_once_per_key_and_remembers_misses() {
        let r = CachedResolver::new(Counting::default());
        let rs1: IpAddr = "203.0.113.11".parse().expect("ip");
        let other: IpAddr = "203.0.113.99".parse().expect("ip");
        for _ in 0..3 {
            assert_eq!(r.addr_to_host(rs1), Some("rs1".into()));
            assert_eq!(r.addr_to_host(other), None);
        }
        assert_eq!(r.inner().calls.get(), 2);
        for _ in 0..2 {
            assert_eq!(r.port_to_service(80, Protocol::Tcp), Some("http".into()));
            assert_eq!(r.port_to_service(80, Protocol::Udp), None);
        }
        assert_eq!(r.inner().calls.get(), 4);
        for _ in 0..2 {
            assert_eq!(r.host_to_ipv4("rs1"), Some(Ipv4Addr::new(203, 0, 113, 11)));
            assert_eq!(r.host_to_ipv4("nope"), None);
            assert_eq!(r.service_to_port("http", Protocol::Tcp), Some(80));
            assert_eq!(r.service_to_port("http", Protocol::Sctp), None);
        }
        assert_eq!(r.inner().calls.get(), 8);
    }

    #[test]
    fn texts_getaddrinfo_would_read_as_numbers() {
        for t in ["80", "99999", "+80", "-1", " 80", "0"] {
            assert!(numeric_service_text(t), "{t:?}");
        }
        for t in ["http", "80x", "x80", "", "+", "8 0x"] {
            assert!(!numeric_service_text(t), "{t:?}");
        }
        // Never handed to getaddrinfo, so no lookup happens for these.
        let r = LibcResolver::default();
        assert_eq!(r.service_to_port("99999", Protocol::Tcp), None);
        assert_eq!(r.service_to_port("ht tp", Protocol::Tcp), None);
        assert_eq!(r.host_to_ipv4(""), None);
    }
}
