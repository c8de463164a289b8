//! Which interfaces carry the XDP program, kept in step with the
//! namespace's links: at start and whenever netlink reports a link
//! change, [`Attachments::sync`] attaches the program to interfaces that
//! appeared (opening one AF_XDP socket per receive queue) and forgets
//! those that went away (an interface deleted and created again under
//! the same name has a new index and is attached afresh).
//!
//! The decision of what to attach and what to forget is
//! [`Attachments::plan`], pure and unit tested; [`Attachments::sync`]
//! carries it out against the kernel.

use super::program::{AttachedMode, XdpAttachMode, XdpError, XdpProgram};
use super::xsk::XskSocket;
use crate::sys::command_output;
use crate::DatapathError;
use std::collections::{BTreeMap, BTreeSet};

/// Links of this namespace as (index, name), loopback left out.
pub fn current_links() -> Result<Vec<(u32, String)>, DatapathError> {
    Ok(parse_link_indexes(&command_output(
        "ip",
        &["-o", "link", "show"],
    )?))
}

/// Parse `ip -o link show` (`3: eth0@if2: <BROADCAST,...> ...`) into
/// (index, name) pairs, `lo` left out.
pub fn parse_link_indexes(text: &str) -> Vec<(u32, String)> {
    text.lines()
        .filter_map(|l| {
            let mut parts = l.split(": ");
            let index = parts.next()?.trim().parse().ok()?;
            let name = parts.next()?;
            let name = name.split('@').next().unwrap_or(name);
            (name != "lo" && !name.is_empty()).then(|| (index, name.to_string()))
        })
        .collect()
}

/// What [`Attachments::plan`] decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Interfaces to attach to: (index, name).
    pub attach: Vec<(u32, String)>,
    /// Attached interfaces that are gone: (index, name).
    pub forget: Vec<(u32, String)>,
}

/// What [`Attachments::sync`] did.
#[derive(Debug, Default)]
pub struct SyncReport {
    /// Sockets of newly attached interfaces, registered in the program,
    /// for the device to read.
    pub sockets: Vec<XskSocket>,
    /// "name (mode)" of each newly attached interface.
    pub attached: Vec<String>,
    /// Names of interfaces forgotten.
    pub forgotten: Vec<String>,
    /// Interfaces where attaching failed (each reported once).
    pub errors: Vec<XdpError>,
}

/// The interfaces the program is attached to.
#[derive(Debug)]
pub struct Attachments {
    mode: XdpAttachMode,
    /// `--interface`: only these names (empty: every interface).
    only: Vec<String>,
    attached: BTreeMap<u32, (String, AttachedMode)>,
    /// Interfaces where attaching failed, not retried until they change
    /// index.
    failed: BTreeSet<(u32, String)>,
}

impl Attachments {
    pub fn new(mode: XdpAttachMode, only: Vec<String>) -> Attachments {
        Attachments {
            mode,
            only,
            attached: BTreeMap::new(),
            failed: BTreeSet::new(),
        }
    }

    /// Interfaces attached now, as "name (mode)".
    pub fn describe(&self) -> Vec<String> {
        self.attached
            .values()
            .map(|(n, m)| format!("{n} ({m})"))
            .collect()
    }

    /// What to attach and forget given the current `links`.
    pub fn plan(&self, links: &[(u32, String)]) -> Plan {
        let wanted: Vec<&(u32, String)> = links
            .iter()
            .filter(|(_, n)| self.only.is_empty() || self.only.contains(n))
            .collect();
        let attach = wanted
            .iter()
            .filter(|(i, n)| {
                !self.attached.contains_key(i) && !self.failed.contains(&(*i, n.clone()))
            })
            .map(|l| (*l).clone())
            .collect();
        let forget = self
            .attached
            .iter()
            .filter(|(i, (n, _))| !wanted.iter().any(|(wi, wn)| wi == *i && wn == n))
            .map(|(i, (n, _))| (*i, n.clone()))
            .collect();
        Plan { attach, forget }
    }

    /// Attach to new interfaces and forget vanished ones.
    pub fn sync(&mut self, program: &mut XdpProgram, links: &[(u32, String)]) -> SyncReport {
        let plan = self.plan(links);
        let mut report = SyncReport::default();
        for (index, name) in plan.forget {
            program.detach(index);
            self.attached.remove(&index);
            report.forgotten.push(name);
        }
        self.failed
            .retain(|(i, n)| links.iter().any(|(li, ln)| li == i && ln == n));
        for (index, name) in plan.attach {
            match self.attach_one(program, index, &name) {
                Ok((mode, sockets)) => {
                    report.attached.push(format!("{name} ({mode})"));
                    report.sockets.extend(sockets);
                    self.attached.insert(index, (name, mode));
                }
                Err(e) => {
                    program.detach(index);
                    self.failed.insert((index, name));
                    report.errors.push(e);
                }
            }
        }
        report
    }

    fn attach_one(
        &self,
        program: &mut XdpProgram,
        index: u32,
        name: &str,
    ) -> Result<(AttachedMode, Vec<XskSocket>), XdpError> {
        let mode = program.attach(name, index, self.mode)?;
        let mut sockets = Vec::new();
        for queue in 0..super::rx_queues(name) {
            let socket = XskSocket::open(index, queue).map_err(|source| XdpError::Socket {
                iface: name.to_string(),
                queue,
                source,
            })?;
            program.register_socket(&socket)?;
            sockets.push(socket);
        }
        Ok((mode, sockets))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_link_indexes() {
        let text = "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN\n\
2: eth0@if7: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP\n\
15: br-x: <BROADCAST,MULTICAST> mtu 1500 qdisc noop state DOWN\n";
        assert_eq!(
            parse_link_indexes(text),
            vec![(2, "eth0".to_string()), (15, "br-x".to_string())]
        );
    }

    fn links(l: &[(u32, &str)]) -> Vec<(u32, String)> {
        l.iter().map(|(i, n)| (*i, n.to_string())).collect()
    }

    #[test]
    fn plans_new_and_vanished_interfaces() {
        let mut a = Attachments::new(XdpAttachMode::Auto, Vec::new());
        assert_eq!(
            a.plan(&links(&[(2, "eth0"), (3, "eth1")])),
            Plan {
                attach: links(&[(2, "eth0"), (3, "eth1")]),
                forget: Vec::new()
            }
        );
        a.attached
            .insert(2, ("eth0".to_string(), AttachedMode::Native));
        a.failed.insert((3, "eth1".to_string()));
        // eth1 failed: not retried; eth0 deleted and created again as 9.
        assert_eq!(
            a.plan(&links(&[(9, "eth0"), (3, "eth1")])),
            Plan {
                attach: links(&[(9, "eth0")]),
                forget: links(&[(2, "eth0")])
            }
        );
    }

    #[test]
    fn plans_only_named_interfaces() {
        let a = Attachments::new(XdpAttachMode::Generic, vec!["eth1".to_string()]);
        assert_eq!(
            a.plan(&links(&[(2, "eth0"), (3, "eth1")])).attach,
            links(&[(3, "eth1")])
        );
        assert_eq!(a.plan(&links(&[(2, "eth0")])), Plan::default());
    }
}
