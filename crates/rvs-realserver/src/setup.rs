//! The seed's real-server service script, as code: what `start` changes
//! on a DR or TUN real server (VIP /32 on `lo`, ARP sysctls, reverse-path
//! filtering for TUN), what `stop` puts back and what `status` checks.
//!
//! The desired values ([`desired_sysctls`]) and the state file format
//! ([`State`]) are pure and unit tested; applying them goes through
//! `/proc/sys` and the `ip` command of the namespace the process runs in.
//! The state file remembers the values found before `start`, so `stop`
//! restores the host as it was, and the decapsulator's PID.

use crate::SetupError;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Forwarding method the real server is set up for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Direct routing: the VIP on `lo`, hidden from ARP.
    Dr,
    /// IPIP tunnel: as DR, plus reverse-path filtering off and the
    /// decapsulator running.
    Tun,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "dr" | "route" | "g" => Some(Mode::Dr),
            "tun" | "tunnel" | "ipip" | "i" => Some(Mode::Tun),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Dr => "dr",
            Mode::Tun => "tun",
        }
    }
}

/// The sysctls `start` sets, with their values. `arp_ignore=1`: answer
/// ARP only for addresses of the receiving interface (never the VIP on
/// `lo`); `arp_announce=2`: use the interface's own address as ARP
/// source (never the VIP). The kernel uses the larger of `all` and the
/// interface's value for both, so `all` covers every interface; `lo` is
/// set too, as the seed's script does. For TUN, reverse-path filtering
/// is off (`all` and `default`; the kernel uses the larger of `all` and
/// the interface's value), since decapsulated packets arrive on an
/// interface their source is not routed through.
pub fn desired_sysctls(mode: Mode) -> Vec<(&'static str, &'static str)> {
    let mut v = vec![
        ("net.ipv4.conf.all.arp_ignore", "1"),
        ("net.ipv4.conf.all.arp_announce", "2"),
        ("net.ipv4.conf.lo.arp_ignore", "1"),
        ("net.ipv4.conf.lo.arp_announce", "2"),
    ];
    if mode == Mode::Tun {
        v.push(("net.ipv4.conf.all.rp_filter", "0"));
        v.push(("net.ipv4.conf.default.rp_filter", "0"));
    }
    v
}

/// What `start` did, kept for `stop` and `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    pub mode: Option<Mode>,
    pub vips: Vec<Ipv4Addr>,
    /// Values found before `start` changed them.
    pub saved: Vec<(String, String)>,
    /// The decapsulator (TUN mode).
    pub pid: Option<u32>,
    pub device: Option<String>,
}

impl State {
    /// Parse a state file; unknown or malformed lines are ignored (a
    /// newer version may add some).
    pub fn parse(text: &str) -> State {
        let mut s = State::default();
        for line in text.lines() {
            let mut w = line.split_whitespace();
            match (w.next(), w.next(), w.next()) {
                (Some("mode"), Some(m), None) => s.mode = Mode::parse(m),
                (Some("vip"), Some(a), None) => {
                    if let Ok(a) = a.parse() {
                        if !s.vips.contains(&a) {
                            s.vips.push(a);
                        }
                    }
                }
                (Some("saved"), Some(k), Some(v)) => s.saved.push((k.to_string(), v.to_string())),
                (Some("pid"), Some(p), None) => s.pid = p.parse().ok(),
                (Some("device"), Some(d), None) => s.device = Some(d.to_string()),
                _ => {}
            }
        }
        s
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Some(m) = self.mode {
            let _ = writeln!(out, "mode {}", m.name());
        }
        for v in &self.vips {
            let _ = writeln!(out, "vip {v}");
        }
        for (k, v) in &self.saved {
            let _ = writeln!(out, "saved {k} {v}");
        }
        if let Some(p) = self.pid {
            let _ = writeln!(out, "pid {p}");
        }
        if let Some(d) = &self.device {
            let _ = writeln!(out, "device {d}");
        }
        out
    }

    /// Remember `key`'s value before it is first changed.
    pub fn save_once(&mut self, key: &str, value: &str) {
        if !self.saved.iter().any(|(k, _)| k == key) {
            self.saved.push((key.to_string(), value.to_string()));
        }
    }
}

/// The network namespace this process is in, as its inode number (one
/// state file per namespace: several real servers can run on one machine
/// in namespaces sharing one `/run`).
pub fn netns_id() -> Result<String, SetupError> {
    let link = std::fs::read_link("/proc/self/ns/net")
        .map_err(|e| SetupError::io("/proc/self/ns/net", e))?;
    let text = link.to_string_lossy();
    Ok(text.chars().filter(char::is_ascii_digit).collect())
}

/// Where the state file of this namespace lives under `run_dir`.
pub fn state_path(run_dir: &Path) -> Result<PathBuf, SetupError> {
    Ok(run_dir.join(format!("realserver-net{}.state", netns_id()?)))
}

pub fn load_state(path: &Path) -> Result<State, SetupError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(State::parse(&t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
        Err(e) => Err(SetupError::io(path.display().to_string(), e)),
    }
}

pub fn store_state(path: &Path, state: &State) -> Result<(), SetupError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| SetupError::io(dir.display().to_string(), e))?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, state.render())
        .map_err(|e| SetupError::io(tmp.display().to_string(), e))?;
    std::fs::rename(&tmp, path).map_err(|e| SetupError::io(path.display().to_string(), e))
}

fn sysctl_path(key: &str) -> String {
    format!("/proc/sys/{}", key.replace('.', "/"))
}

pub fn read_sysctl(key: &str) -> Result<String, SetupError> {
    let p = sysctl_path(key);
    std::fs::read_to_string(&p)
        .map(|s| s.trim().to_string())
        .map_err(|e| SetupError::io(p, e))
}

pub fn write_sysctl(key: &str, value: &str) -> Result<(), SetupError> {
    let p = sysctl_path(key);
    std::fs::write(&p, format!("{value}\n")).map_err(|e| SetupError::io(p, e))
}

/// Run `ip <args>`; its stdout.
pub fn run_ip(args: &[&str]) -> Result<String, SetupError> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| SetupError::io("ip", e))?;
    if !out.status.success() {
        return Err(SetupError::Command {
            command: format!("ip {}", args.join(" ")),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// IPv4 addresses in `ip -o -4 addr show dev lo` output with their
/// prefix length (`1: lo    inet 198.51.100.10/32 scope global lo ...`).
pub fn parse_lo_addrs(text: &str) -> Vec<(Ipv4Addr, u8)> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace().skip_while(|w| *w != "inet");
            w.next()?;
            let (a, p) = w.next()?.split_once('/')?;
            Some((a.parse().ok()?, p.parse().ok()?))
        })
        .collect()
}

/// The IPv4 addresses on `lo`.
pub fn lo_addrs() -> Result<Vec<(Ipv4Addr, u8)>, SetupError> {
    Ok(parse_lo_addrs(&run_ip(&[
        "-o", "-4", "addr", "show", "dev", "lo",
    ])?))
}

/// Is `pid` a live decapsulator of this namespace (not a stale PID reused
/// by another program or another namespace)?
pub fn decapsulator_alive(pid: u32) -> bool {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let ours = String::from_utf8_lossy(&cmdline).contains("rvs-realserver");
    let ns = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok();
    let me = std::fs::read_link("/proc/self/ns/net").ok();
    ours && ns.is_some() && ns == me
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dr_sets_the_seed_arp_sysctls_and_tun_adds_rp_filter() {
        assert_eq!(
            desired_sysctls(Mode::Dr),
            [
                ("net.ipv4.conf.all.arp_ignore", "1"),
                ("net.ipv4.conf.all.arp_announce", "2"),
                ("net.ipv4.conf.lo.arp_ignore", "1"),
                ("net.ipv4.conf.lo.arp_announce", "2"),
            ]
        );
        let tun = desired_sysctls(Mode::Tun);
        assert_eq!(tun.len(), 6);
        assert_eq!(tun[4], ("net.ipv4.conf.all.rp_filter", "0"));
        assert_eq!(tun[5], ("net.ipv4.conf.default.rp_filter", "0"));
    }

    #[test]
    fn state_round_trips_and_keeps_the_first_saved_value() {
        let mut s = State {
            mode: Some(Mode::Tun),
            vips: vec![Ipv4Addr::new(198, 51, 100, 10)],
            pid: Some(4242),
            device: Some("rvstun0".into()),
            ..State::default()
        };
        s.save_once("net.ipv4.conf.all.arp_ignore", "0");
        s.save_once("net.ipv4.conf.all.arp_ignore", "1");
        let text = s.render();
        assert_eq!(
            text,
            "mode tun\nvip 198.51.100.10\nsaved net.ipv4.conf.all.arp_ignore 0\npid 4242\ndevice rvstun0\n"
        );
        assert_eq!(State::parse(&text), s);
        assert_eq!(
            State::parse("garbage\nvip nope\nmode dr\nfuture thing 1 2\n"),
            State {
                mode: Some(Mode::Dr),
                ..State::default()
            }
        );
    }

    #[test]
    fn parses_lo_addresses() {
        let text = "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever\n\
1: lo    inet 198.51.100.10/32 scope global lo\\       valid_lft forever preferred_lft forever\n";
        assert_eq!(
            parse_lo_addrs(text),
            [
                (Ipv4Addr::new(127, 0, 0, 1), 8),
                (Ipv4Addr::new(198, 51, 100, 10), 32)
            ]
        );
    }

    #[test]
    fn modes_parse_by_name_and_flag() {
        assert_eq!(Mode::parse("dr"), Some(Mode::Dr));
        assert_eq!(Mode::parse("g"), Some(Mode::Dr));
        assert_eq!(Mode::parse("tun"), Some(Mode::Tun));
        assert_eq!(Mode::parse("i"), Some(Mode::Tun));
        assert_eq!(Mode::parse("nat"), None);
    }
}
