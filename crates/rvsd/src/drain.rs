//! Draining: a real server on its way out stays listed with weight 0 (no
//! new connections, its persistence templates invalidated) until its
//! ActiveConn + InActConn reach zero or its drain timeout passes; then it
//! is deleted.
//!
//! This is a deliberate difference from the kernel, where `ipvsadm -d`
//! takes the server out of the listing at once (its connections go on
//! unseen while `expire_nodest_conn` is 0, and are cut on their next packet
//! when it is 1). Drains come from three places: `rvsadm --drain`
//! (operator), a reload whose file no longer declares the server, and a
//! failed health check, the last two only for services with `drain`
//! enabled in the configuration.
//!
//! The table is pure bookkeeping: time comes in as `now` (a duration on
//! rvsd's monotonic clock), the live table as a [`TableSnapshot`], and
//! what must change goes out as engine [`Command`]s for the caller to
//! apply.

use rvs_api::{DrainReason, DrainStatus};
use rvs_core::snapshot::{DestSnapshot, TableSnapshot};
use rvs_core::{Command, DestConfig, ServiceKey};
use std::net::IpAddr;
use std::time::Duration;

/// One server being drained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainEntry {
    pub service: ServiceKey,
    pub addr: IpAddr,
    pub port: u16,
    pub reason: DrainReason,
    pub started: Duration,
    /// Delete after this long whatever the connections; `None`: no bound.
    pub timeout: Option<Duration>,
    /// The entry before the drain set its weight to 0.
    pub previous: DestConfig,
}

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainEnd {
    /// No connection left: deleted.
    Empty,
    /// The timeout passed: deleted with connections still open.
    TimedOut { active: u32, inactive: u32 },
    /// Someone else deleted the server or its service.
    Gone,
    /// Someone changed its weight from 0: the drain is abandoned and the
    /// server left as it is.
    Changed,
}

/// The drains in progress.
#[derive(Debug, Clone, Default)]
pub struct DrainTable {
    entries: Vec<DrainEntry>,
}

fn live<'a>(
    snapshot: &'a TableSnapshot,
    service: &ServiceKey,
    addr: IpAddr,
    port: u16,
) -> Option<&'a DestSnapshot> {
    snapshot
        .services
        .iter()
        .find(|s| s.config.key == *service)
        .and_then(|s| {
            s.dests
                .iter()
                .find(|d| d.config.addr == addr && d.config.port == port)
        })
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl DrainTable {
    pub fn new() -> DrainTable {
        DrainTable::default()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    #[cfg(test)]
    pub fn entries(&self) -> &[DrainEntry] {
        &self.entries
    }

    /// A copy of the drains in progress.
    pub fn entries_owned(&self) -> Vec<DrainEntry> {
        self.entries.clone()
    }

    /// The drain of this server, if one is running.
    pub fn get(&self, service: &ServiceKey, addr: IpAddr, port: u16) -> Option<&DrainEntry> {
        self.entries
            .iter()
            .find(|e| e.service == *service && e.addr == addr && e.port == port)
    }

    /// Start draining a server that is in `snapshot`. Returns the command
    /// that sets its weight to 0 (`None` if it is already 0). A server
    /// already draining keeps its drain (the reason and timeout of the
    /// first one). Errors: the service or server is not in the table.
    pub fn start(
        &mut self,
        snapshot: &TableSnapshot,
        (service, addr, port): (ServiceKey, IpAddr, u16),
        reason: DrainReason,
        timeout: Option<Duration>,
        now: Duration,
    ) -> Result<Option<Command>, rvs_core::ApplyError> {
        if !snapshot.services.iter().any(|s| s.config.key == service) {
            return Err(rvs_core::ApplyError::NoSuchService);
        }
        let Some(d) = live(snapshot, &service, addr, port) else {
            return Err(rvs_core::ApplyError::NoSuchDest);
        };
        if self.get(&service, addr, port).is_some() {
            return Ok(None);
        }
        self.entries.push(DrainEntry {
            service,
            addr,
            port,
            reason,
            started: now,
            timeout,
            previous: d.config.clone(),
        });
        if d.config.weight == 0 {
            return Ok(None);
        }
        let mut quiet = d.config.clone();
        quiet.weight = 0;
        Ok(Some(Command::EditDest {
            service,
            dest: quiet,
        }))
    }

    /// Forget a drain (the server is wanted again). Returns the entry.
    pub fn cancel(&mut self, service: &ServiceKey, addr: IpAddr, port: u16) -> Option<DrainEntry> {
        let at = self
            .entries
            .iter()
            .position(|e| e.service == *service && e.addr == addr && e.port == port)?;
        Some(self.entries.remove(at))
    }

    /// Check every drain against the live table at `now`: servers with no
    /// connection left, or past their timeout, get a `DeleteDest`; drains
    /// of servers that vanished or were given a weight again end.
    pub fn poll(
        &mut self,
        snapshot: &TableSnapshot,
        now: Duration,
    ) -> (Vec<Command>, Vec<(DrainEntry, DrainEnd)>) {
        let mut commands = Vec::new();
        let mut ended = Vec::new();
        let mut kept = Vec::new();
        for e in std::mem::take(&mut self.entries) {
            let end = match live(snapshot, &e.service, e.addr, e.port) {
                None => Some(DrainEnd::Gone),
                Some(d) if d.config.weight != 0 => Some(DrainEnd::Changed),
                Some(d) if d.active == 0 && d.inactive == 0 => Some(DrainEnd::Empty),
                Some(d)
                    if e.timeout
                        .is_some_and(|t| now.saturating_sub(e.started) >= t) =>
                {
                    Some(DrainEnd::TimedOut {
                        active: d.active,
                        inactive: d.inactive,
                    })
                }
                Some(_) => None,
            };
            match end {
                None => kept.push(e),
                Some(end) => {
                    if matches!(end, DrainEnd::Empty | DrainEnd::TimedOut { .. }) {
                        commands.push(Command::DeleteDest {
                            service: e.service,
                            addr: e.addr,
                            port: e.port,
                        });
                    }
                    ended.push((e, end));
                }
            }
        }
        self.entries = kept;
        (commands, ended)
    }

    /// The drains as the status listing shows them.
    pub fn status(&self, snapshot: &TableSnapshot, now: Duration) -> Vec<DrainStatus> {
        self.entries
            .iter()
            .map(|e| self.one(e, snapshot, now))
            .collect()
    }

    /// One drain as the status listing shows it.
    pub fn one(&self, e: &DrainEntry, snapshot: &TableSnapshot, now: Duration) -> DrainStatus {
        let (active, inactive) =
            live(snapshot, &e.service, e.addr, e.port).map_or((0, 0), |d| (d.active, d.inactive));
        DrainStatus {
            service: e.service,
            addr: e.addr,
            port: e.port,
            reason: e.reason,
            active,
            inactive,
            elapsed_ms: millis(now.saturating_sub(e.started)),
            timeout_ms: e.timeout.map(millis),
        }
    }

    /// Rewrite a batch the health checker wants applied, for a service
    /// whose removed servers drain (`timeout` is its drain timeout):
    /// `DeleteDest` of a server in the table becomes weight 0 plus a drain
    /// (reason `reason`); `AddDest` of a server still draining becomes an
    /// `EditDest` and ends the drain. Returns the new batch and the servers
    /// whose drains started (their templates are to be invalidated).
    pub fn rewrite(
        &mut self,
        snapshot: &TableSnapshot,
        commands: Vec<Command>,
        drains: impl Fn(&ServiceKey) -> Option<Option<Duration>>,
        reason: DrainReason,
        now: Duration,
    ) -> (Vec<Command>, Vec<(ServiceKey, IpAddr, u16)>) {
        let mut out = Vec::with_capacity(commands.len());
        let mut started = Vec::new();
        for c in commands {
            match c {
                Command::DeleteDest {
                    service,
                    addr,
                    port,
                } => match drains(&service) {
                    Some(timeout) if live(snapshot, &service, addr, port).is_some() => {
                        match self.start(snapshot, (service, addr, port), reason, timeout, now) {
                            Ok(edit) => {
                                out.extend(edit);
                                started.push((service, addr, port));
                            }
                            Err(_) => out.push(Command::DeleteDest {
                                service,
                                addr,
                                port,
                            }),
                        }
                    }
                    _ => out.push(Command::DeleteDest {
                        service,
                        addr,
                        port,
                    }),
                },
                Command::AddDest { service, dest }
                    if self.get(&service, dest.addr, dest.port).is_some()
                        && live(snapshot, &service, dest.addr, dest.port).is_some() =>
                {
                    self.cancel(&service, dest.addr, dest.port);
                    out.push(Command::EditDest { service, dest });
                }
                other => out.push(other),
            }
        }
        (out, started)
    }

    /// Forget the drains of services that no longer exist.
    pub fn retain_services(&mut self, snapshot: &TableSnapshot) {
        self.entries
            .retain(|e| snapshot.services.iter().any(|s| s.config.key == e.service));
    }

    /// Drains of one service with one of these reasons (what the health
    /// checker asked for, hidden from its override detection).
    pub fn of_service(
        &self,
        service: &ServiceKey,
        reasons: &[DrainReason],
    ) -> impl Iterator<Item = &DrainEntry> + '_ {
        let service = *service;
        let reasons = reasons.to_vec();
        self.entries
            .iter()
            .filter(move |e| e.service == service && reasons.contains(&e.reason))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_core::{Engine, FwdMethod, Protocol, ServiceConfig};
    use std::net::Ipv4Addr;

    fn key() -> ServiceKey {
        ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            port: 80,
        }
    }

    fn rip(d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 168, 1, d))
    }

    fn dest(d: u8, weight: i32) -> DestConfig {
        let mut c = DestConfig::new(rip(d), 80);
        c.fwd = FwdMethod::Masq;
        c.weight = weight;
        c
    }

    fn engine() -> Engine {
        let mut e = Engine::new();
        e.apply_all(vec![
            Command::AddService(ServiceConfig::new(key())),
            Command::AddDest {
                service: key(),
                dest: dest(1, 3),
            },
            Command::AddDest {
                service: key(),
                dest: dest(2, 1),
            },
        ])
        .expect("rules");
        e
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// The snapshot with connection counts set by hand for server `d`.
    fn with_conns(e: &Engine, d: u8, active: u32, inactive: u32) -> TableSnapshot {
        let mut snap = e.snapshot();
        for s in &mut snap.services {
            for x in &mut s.dests {
                if x.config.addr == rip(d) {
                    x.active = active;
                    x.inactive = inactive;
                }
            }
        }
        snap
    }

    #[test]
    fn start_sets_weight_zero_and_waits_for_connections_then_deletes() {
        let mut e = engine();
        let mut t = DrainTable::new();
        let snap = with_conns(&e, 1, 2, 1);
        let cmd = t
            .start(
                &snap,
                (key(), rip(1), 80),
                DrainReason::Operator,
                None,
                secs(10),
            )
            .expect("in the table");
        assert_eq!(
            cmd,
            Some(Command::EditDest {
                service: key(),
                dest: dest(1, 0)
            })
        );
        e.apply_all(cmd.into_iter().collect()).expect("edit");
        // A second start keeps the first drain and changes nothing.
        let again = t
            .start(
                &e.snapshot(),
                (key(), rip(1), 80),
                DrainReason::Reload,
                secs(5).into(),
                secs(11),
            )
            .expect("known");
        assert_eq!(again, None);
        assert_eq!(t.entries().len(), 1);
        assert_eq!(t.entries()[0].reason, DrainReason::Operator);
        assert_eq!(t.entries()[0].previous, dest(1, 3));

        // Connections open: nothing happens, whatever the time (no timeout).
        let (cmds, ended) = t.poll(&with_conns(&e, 1, 1, 0), secs(10_000));
        assert!(cmds.is_empty() && ended.is_empty());
        let st = t.status(&with_conns(&e, 1, 1, 2), secs(12));
        assert_eq!(
            (
                st[0].active,
                st[0].inactive,
                st[0].elapsed_ms,
                st[0].timeout_ms
            ),
            (1, 2, 2000, None)
        );
        // Zero connections: deleted.
        let (cmds, ended) = t.poll(&with_conns(&e, 1, 0, 0), secs(10_001));
        assert_eq!(
            cmds,
            vec![Command::DeleteDest {
                service: key(),
                addr: rip(1),
                port: 80
            }]
        );
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].1, DrainEnd::Empty);
        assert!(t.is_empty());
    }

    #[test]
    fn timeout_deletes_with_connections_open() {
        let mut e = engine();
        let mut t = DrainTable::new();
        let cmd = t
            .start(
                &e.snapshot(),
                (key(), rip(2), 80),
                DrainReason::Health,
                Some(secs(30)),
                secs(100),
            )
            .expect("ok");
        e.apply_all(cmd.into_iter().collect()).expect("edit");
        // 29.999 s later: still waiting.
        let (cmds, _) = t.poll(
            &with_conns(&e, 2, 4, 5),
            secs(100) + Duration::from_millis(29_999),
        );
        assert!(cmds.is_empty());
        let (cmds, ended) = t.poll(&with_conns(&e, 2, 4, 5), secs(130));
        assert_eq!(cmds.len(), 1);
        assert_eq!(
            ended[0].1,
            DrainEnd::TimedOut {
                active: 4,
                inactive: 5
            }
        );
    }

    #[test]
    fn gone_or_reweighted_servers_end_their_drain_without_a_command() {
        let mut e = engine();
        let mut t = DrainTable::new();
        for d in [1, 2] {
            let cmd = t
                .start(
                    &e.snapshot(),
                    (key(), rip(d), 80),
                    DrainReason::Operator,
                    None,
                    secs(0),
                )
                .expect("ok");
            e.apply_all(cmd.into_iter().collect()).expect("edit");
        }
        e.apply_all(vec![
            Command::DeleteDest {
                service: key(),
                addr: rip(1),
                port: 80,
            },
            Command::EditDest {
                service: key(),
                dest: dest(2, 5),
            },
        ])
        .expect("operator");
        let (cmds, ended) = t.poll(&with_conns(&e, 2, 1, 0), secs(1));
        assert!(cmds.is_empty());
        let ends: Vec<DrainEnd> = ended.iter().map(|(_, e)| *e).collect();
        assert_eq!(ends, vec![DrainEnd::Gone, DrainEnd::Changed]);
    }

    #[test]
    fn unknown_service_or_server_is_refused() {
        let e = engine();
        let mut t = DrainTable::new();
        let other = ServiceKey::Fwmark {
            mark: 1,
            family: rvs_core::Family::V4,
        };
        assert_eq!(
            t.start(
                &e.snapshot(),
                (other, rip(1), 80),
                DrainReason::Operator,
                None,
                secs(0)
            ),
            Err(rvs_core::ApplyError::NoSuchService)
        );
        assert_eq!(
            t.start(
                &e.snapshot(),
                (key(), rip(9), 80),
                DrainReason::Operator,
                None,
                secs(0)
            ),
            Err(rvs_core::ApplyError::NoSuchDest)
        );
        assert!(t.is_empty());
    }

    #[test]
    fn rewrite_turns_deletes_into_drains_and_readds_into_edits() {
        let mut e = engine();
        let mut t = DrainTable::new();
        let batch = vec![
            Command::DeleteDest {
                service: key(),
                addr: rip(1),
                port: 80,
            },
            Command::DeleteDest {
                service: key(),
                addr: rip(7),
                port: 80,
            },
        ];
        let (out, started) = t.rewrite(
            &e.snapshot(),
            batch,
            |_| Some(Some(secs(60))),
            DrainReason::Reload,
            secs(5),
        );
        // rip 1 is in the table: weight 0 instead; rip 7 is not: kept as is.
        assert_eq!(
            out,
            vec![
                Command::EditDest {
                    service: key(),
                    dest: dest(1, 0)
                },
                Command::DeleteDest {
                    service: key(),
                    addr: rip(7),
                    port: 80
                },
            ]
        );
        assert_eq!(started, vec![(key(), rip(1), 80)]);
        e.apply(out[0].clone()).expect("edit");
        assert_eq!(t.entries()[0].timeout, Some(secs(60)));

        // The server comes back before the drain ends: AddDest -> EditDest.
        let (out, _) = t.rewrite(
            &e.snapshot(),
            vec![Command::AddDest {
                service: key(),
                dest: dest(1, 3),
            }],
            |_| Some(None),
            DrainReason::Health,
            secs(6),
        );
        assert_eq!(
            out,
            vec![Command::EditDest {
                service: key(),
                dest: dest(1, 3)
            }]
        );
        assert!(t.is_empty());

        // A service without draining: deletes stay deletes.
        let (out, started) = t.rewrite(
            &e.snapshot(),
            vec![Command::DeleteDest {
                service: key(),
                addr: rip(2),
                port: 80,
            }],
            |_| None,
            DrainReason::Health,
            secs(7),
        );
        assert!(matches!(out[..], [Command::DeleteDest { .. }]));
        assert!(started.is_empty());
    }
}
