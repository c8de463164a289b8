//! Name lookups behind a seam. ipvsadm turns host names and service names
//! into addresses and ports (and back, for listings without `-n`). rvsadm
//! does the same from `/etc/hosts` and `/etc/services` only: it never sends
//! a DNS query. [`FileResolver`] reads those files (or texts in their
//! format, which is what tests use); [`NumericResolver`] knows no names.

use rvs_core::Protocol;
use std::net::{IpAddr, Ipv4Addr};

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
}
