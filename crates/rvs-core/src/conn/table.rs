//! The connection table: connections and persistence templates in a slab,
//! found from both sides (client key for packets from clients, real-server
//! key for NAT replies, template key for persistence), with expiry timers
//! and the control links between templates and the connections they
//! persist.
//!
//! Behaviour follows the kernel's `ip_vs_conn.c`:
//! * a new entry is linked to its template (`n_control += 1`) and shadows
//!   an older entry with the same key (the kernel adds at the head of the
//!   hash chain), so a rescheduled port reuse finds the new connection
//!   while the old one still expires on its own;
//! * an entry that controls others (`n_control > 0`) is not freed when its
//!   timer fires but re-armed with a 60 s timeout (`ip_vs_conn_expire`);
//! * a size limit makes [`ConnTable::insert`] fail with
//!   [`InsertError::TableFull`] instead of growing without bound.
//!
//! The table never touches real-server counters: it reports
//! [`StateChange`]s and [`Removed`] entries and the engine does the
//! accounting.

use super::entry::{Conn, NewConn, StateChange};
use super::index::Index;
use super::sctp::SctpEvent;
use super::tcp::{TcpFlags, TcpTable};
use super::timer::{TimerItem, TimerQueue};
use super::{
    ConnFlags, ConnId, ConnProtocol, ConnState, Direction, EngineTime, InKey, OutKey, StateTimeouts,
};
use crate::model::DestId;
use crate::snapshot::ConnSnapshot;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::num::NonZeroU32;

/// Timeout given to an entry that still controls others when its timer
/// fires (kernel: `cp->timeout = 60*HZ`), milliseconds.
pub const CONTROL_REARM_MS: u32 = 60_000;

/// Port an invalidated template shows as both its virtual and its
/// destination port (`ip_vs_check_template` sets both, kernel 6.1).
pub const INVALID_TEMPLATE_DPORT: u16 = 0xffff;

/// Table configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnTableConfig {
    /// Hard limit on entries (connections + templates). Default 4 Mi: the
    /// kernel has no fixed limit (memory is), and at ~170 bytes per entry
    /// this caps the table near 700 MB.
    pub max_entries: usize,
    /// Secret mixed into the hash so clients cannot aim at one bucket.
    /// The daemon injects a random value; tests use a fixed one.
    pub hash_seed: u64,
}

impl Default for ConnTableConfig {
    fn default() -> Self {
        ConnTableConfig {
            max_entries: 4 << 20,
            hash_seed: 0,
        }
    }
}

/// Why an insert failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InsertError {
    #[error("connection table full ({limit} entries)")]
    TableFull { limit: usize },
    #[error("control entry {0} does not exist")]
    NoSuchControl(ConnId),
}

/// Counters of the table itself. Each moves in a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnTableStats {
    /// Entries created.
    pub inserted: u64,
    /// Entries freed because their timer fired.
    pub expired: u64,
    /// Entries freed by [`ConnTable::remove`] & co.
    pub removed: u64,
    /// Inserts refused because the table was full.
    pub table_full: u64,
    /// Timer firings that re-armed an entry still controlling others.
    pub control_rearms: u64,
    /// Inserts that shadowed an existing entry with the same key.
    pub shadowed: u64,
}

/// An entry that left the table. The engine decrements the real server's
/// counter the entry was in: `PersistConn` for a template, else `InActConn`
/// if [`Conn::is_inactive`], else `ActiveConn` (when `dest` is set), and
/// re-evaluates the overload threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    pub id: ConnId,
    pub conn: Conn,
}

#[derive(Debug, Clone)]
struct Slot {
    generation: NonZeroU32,
    conn: Option<Conn>,
}

/// The connection table. See the module documentation.
#[derive(Debug, Clone)]
pub struct ConnTable {
    config: ConnTableConfig,
    slots: Vec<Slot>,
    free: Vec<u32>,
    len: usize,
    in_index: Index,
    out_index: Index,
    timers: TimerQueue,
    stats: ConnTableStats,
}

fn proto_tag(p: ConnProtocol) -> u8 {
    match p {
        ConnProtocol::Tcp => 6,
        ConnProtocol::Udp => 17,
        ConnProtocol::Sctp => 132,
        ConnProtocol::Ip => 0,
    }
}

fn hash_tuple(seed: u64, protocol: ConnProtocol, a: IpAddr, pa: u16, b: IpAddr, pb: u16) -> u32 {
    let mut h = DefaultHasher::new();
    seed.hash(&mut h);
    proto_tag(protocol).hash(&mut h);
    a.hash(&mut h);
    pa.hash(&mut h);
    b.hash(&mut h);
    pb.hash(&mut h);
    let v = h.finish();
    (v ^ (v >> 32)) as u32
}

fn next_generation(g: NonZeroU32) -> NonZeroU32 {
    g.checked_add(1).unwrap_or(NonZeroU32::MIN)
}

impl Default for ConnTable {
    fn default() -> Self {
        ConnTable::new(ConnTableConfig::default())
    }
}

impl ConnTable {
    pub fn new(config: ConnTableConfig) -> ConnTable {
        ConnTable {
            config,
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
            in_index: Index::default(),
            out_index: Index::default(),
            timers: TimerQueue::default(),
            stats: ConnTableStats::default(),
        }
    }

    pub fn config(&self) -> &ConnTableConfig {
        &self.config
    }

    /// Entries (connections + templates).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn stats(&self) -> &ConnTableStats {
        &self.stats
    }

    fn in_hash(&self, k: &InKey) -> u32 {
        hash_tuple(
            self.config.hash_seed,
            k.protocol,
            k.caddr,
            k.cport,
            k.vaddr,
            k.vport,
        )
    }

    fn out_hash(&self, k: &OutKey) -> u32 {
        hash_tuple(
            self.config.hash_seed,
            k.protocol,
            k.daddr,
            k.dport,
            k.caddr,
            k.cport,
        )
    }

    fn conn_at(slots: &[Slot], slot: u32) -> Option<&Conn> {
        slots.get(slot as usize).and_then(|s| s.conn.as_ref())
    }

    fn id_at(&self, slot: u32) -> Option<ConnId> {
        let s = self.slots.get(slot as usize)?;
        s.conn.as_ref()?;
        Some(ConnId {
            index: slot,
            generation: s.generation,
        })
    }

    fn in_matches(c: &Conn, k: &InKey, template: bool) -> bool {
        c.is_template() == template
            && c.protocol == k.protocol
            && c.cport == k.cport
            && c.vport == k.vport
            && c.caddr == k.caddr
            && c.vaddr == k.vaddr
    }

    fn out_matches(c: &Conn, k: &OutKey) -> bool {
        !c.is_template()
            && c.protocol == k.protocol
            && c.dport == k.dport
            && c.cport == k.cport
            && c.daddr == k.daddr
            && c.caddr == k.caddr
    }

    /// Create an entry. Fails when the table holds `max_entries` entries
    /// (counted in [`ConnTableStats::table_full`]) or the control entry is
    /// gone. The new entry's timer runs from `now` for
    /// `new.timeout_secs`.
    pub fn insert(&mut self, new: NewConn, now: EngineTime) -> Result<ConnId, InsertError> {
        if self.len >= self.config.max_entries {
            self.stats.table_full += 1;
            return Err(InsertError::TableFull {
                limit: self.config.max_entries,
            });
        }
        if let Some(ct) = new.control {
            if self.get(ct).is_none() {
                return Err(InsertError::NoSuchControl(ct));
            }
        }
        let conn = Conn::from_new(&new, now);
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                let s = self.slots.len() as u32;
                self.slots.push(Slot {
                    generation: NonZeroU32::MIN,
                    conn: None,
                });
                s
            }
        };
        let template = conn.is_template();
        let in_key = conn.in_key();
        let out_key = conn.out_key();
        let timer = TimerItem {
            at: conn.expires,
            slot,
            generation: 0,
        };
        let Some(entry) = self.slots.get_mut(slot as usize) else {
            return Err(InsertError::TableFull {
                limit: self.config.max_entries,
            });
        };
        entry.conn = Some(conn);
        let id = ConnId {
            index: slot,
            generation: entry.generation,
        };

        let h = self.in_hash(&in_key);
        let slots = &self.slots;
        let shadowed = self.in_index.insert(h, slot, |s| {
            Self::conn_at(slots, s).is_some_and(|c| Self::in_matches(c, &in_key, template))
        });
        if shadowed.is_some() {
            self.stats.shadowed += 1;
        }
        if !template {
            let h = self.out_hash(&out_key);
            let slots = &self.slots;
            self.out_index.insert(h, slot, |s| {
                Self::conn_at(slots, s).is_some_and(|c| Self::out_matches(c, &out_key))
            });
        }
        self.timers.push(TimerItem {
            generation: id.generation.get(),
            ..timer
        });
        if let Some(ct) = new.control {
            if let Some(c) = self.get_mut(ct) {
                c.n_control = c.n_control.saturating_add(1);
            }
        }
        self.len += 1;
        self.stats.inserted += 1;
        Ok(id)
    }

    /// The connection (not template) a client packet belongs to.
    pub fn lookup_in(&self, key: &InKey) -> Option<ConnId> {
        let h = self.in_hash(key);
        let slot = self.in_index.find(h, |s| {
            Self::conn_at(&self.slots, s).is_some_and(|c| Self::in_matches(c, key, false))
        })?;
        self.id_at(slot)
    }

    /// The connection a real server's reply belongs to.
    pub fn lookup_out(&self, key: &OutKey) -> Option<ConnId> {
        let h = self.out_hash(key);
        let slot = self.out_index.find(h, |s| {
            Self::conn_at(&self.slots, s).is_some_and(|c| Self::out_matches(c, key))
        })?;
        self.id_at(slot)
    }

    /// The valid persistence template with `key` (cport 0, masked client
    /// address). Invalidated templates are not found.
    pub fn lookup_template(&self, key: &InKey) -> Option<ConnId> {
        let h = self.in_hash(key);
        let slot = self.in_index.find(h, |s| {
            Self::conn_at(&self.slots, s)
                .is_some_and(|c| Self::in_matches(c, key, true) && !c.is_invalidated())
        })?;
        self.id_at(slot)
    }

    pub fn get(&self, id: ConnId) -> Option<&Conn> {
        let s = self.slots.get(id.index as usize)?;
        if s.generation != id.generation {
            return None;
        }
        s.conn.as_ref()
    }

    /// Mutable access for the non-key data ([`Conn::count_in_packet`],
    /// state processing). Timers are not re-armed by changes made here;
    /// use [`ConnTable::touch`] or the `process_*` methods for that.
    pub fn get_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        let s = self.slots.get_mut(id.index as usize)?;
        if s.generation != id.generation {
            return None;
        }
        s.conn.as_mut()
    }

    /// Re-arm the timer: the entry now expires `timeout` after `now`
    /// (the kernel's `ip_vs_conn_put` after each packet).
    pub fn touch(&mut self, id: ConnId, now: EngineTime) -> bool {
        let Some(c) = self.get(id) else {
            return false;
        };
        let at = now.add_millis(c.timeout_ms());
        self.set_expiry(id, at);
        true
    }

    /// Make the entry due at `now` (the kernel's `ip_vs_conn_expire_now`);
    /// it is freed, or re-armed if it controls others, by the next
    /// [`ConnTable::handle_timeout`].
    pub fn expire_now(&mut self, id: ConnId, now: EngineTime) -> bool {
        if self.get(id).is_none() {
            return false;
        }
        self.set_expiry(id, now);
        true
    }

    fn set_expiry(&mut self, id: ConnId, at: EngineTime) {
        let Some(c) = self.get_mut(id) else {
            return;
        };
        c.expires = at;
        if at < c.timer_at {
            c.timer_at = at;
            self.timers.push(TimerItem {
                at,
                slot: id.index,
                generation: id.generation.get(),
            });
        }
    }

    /// Set a new timeout (seconds) and re-arm from `now` (used for
    /// templates on reuse, whose timeout is the persistence timeout).
    pub fn set_timeout(&mut self, id: ConnId, timeout_secs: u32, now: EngineTime) -> bool {
        let Some(c) = self.get_mut(id) else {
            return false;
        };
        c.timeout_ms = timeout_secs.saturating_mul(1000);
        self.touch(id, now)
    }

    fn after_change(&mut self, id: ConnId, change: StateChange, now: EngineTime) -> StateChange {
        self.touch(id, now);
        if change.assures_template {
            if let Some(ct) = self.get(id).and_then(|c| c.control) {
                if let Some(t) = self.get_mut(ct) {
                    if t.is_template() {
                        t.state = ConnState::Template { assured: true };
                    }
                }
            }
        }
        change
    }

    /// A TCP packet on connection `id`: state transition (normal table),
    /// new timeout, timer re-armed from `now`, template assured on
    /// ESTABLISHED. `None` if the id is stale.
    pub fn process_tcp(
        &mut self,
        id: ConnId,
        direction: Direction,
        flags: TcpFlags,
        now: EngineTime,
        timeouts: &StateTimeouts,
    ) -> Option<StateChange> {
        self.process_tcp_with(TcpTable::Normal, id, direction, flags, now, timeouts)
    }

    /// [`ConnTable::process_tcp`] with an explicit table (`secure_tcp`).
    pub fn process_tcp_with(
        &mut self,
        table: TcpTable,
        id: ConnId,
        direction: Direction,
        flags: TcpFlags,
        now: EngineTime,
        timeouts: &StateTimeouts,
    ) -> Option<StateChange> {
        let change = self
            .get_mut(id)?
            .process_tcp_with(table, direction, flags, timeouts);
        Some(self.after_change(id, change, now))
    }

    /// A UDP packet on connection `id`.
    pub fn process_udp(
        &mut self,
        id: ConnId,
        direction: Direction,
        now: EngineTime,
        timeouts: &StateTimeouts,
    ) -> Option<StateChange> {
        let change = self.get_mut(id)?.process_udp(direction, timeouts);
        Some(self.after_change(id, change, now))
    }

    /// An SCTP packet on connection `id`.
    pub fn process_sctp(
        &mut self,
        id: ConnId,
        direction: Direction,
        event: SctpEvent,
        now: EngineTime,
        timeouts: &StateTimeouts,
    ) -> Option<StateChange> {
        let change = self.get_mut(id)?.process_sctp(direction, event, timeouts);
        Some(self.after_change(id, change, now))
    }

    /// Force a state (e.g. LISTEN for FTP data, or a synced state), with
    /// the same accounting, timeout and timer handling as a packet.
    pub fn set_state(
        &mut self,
        id: ConnId,
        state: ConnState,
        now: EngineTime,
        timeouts: &StateTimeouts,
    ) -> Option<StateChange> {
        let change = self.get_mut(id)?.set_state(state, timeouts);
        Some(self.after_change(id, change, now))
    }

    /// Mark a template unusable (its real server went away or was
    /// quiesced with `expire_quiescent_template`): lookups stop finding it,
    /// it lists with virtual and destination port 65535 (client port 0),
    /// and it expires on its own timer. Returns false for stale ids and
    /// non-templates.
    pub fn invalidate_template(&mut self, id: ConnId) -> bool {
        let Some(c) = self.get(id) else {
            return false;
        };
        if !c.is_template() {
            return false;
        }
        if c.is_invalidated() {
            return true;
        }
        let h = self.in_hash(&c.in_key());
        self.in_index.remove(h, id.index);
        if let Some(c) = self.get_mut(id) {
            c.flags.set(ConnFlags::INVALID, true);
            // Out of the index already: changing key fields is safe (a
            // later `free_entry` finds nothing to unindex under them).
            c.dport = INVALID_TEMPLATE_DPORT;
            c.vport = INVALID_TEMPLATE_DPORT;
            c.cport = 0;
        }
        true
    }

    /// Link `id` to the controlling entry `control` (`ip_vs_control_add`),
    /// replacing any previous link.
    pub fn set_control(&mut self, id: ConnId, control: ConnId) -> bool {
        if id == control || self.get(control).is_none() {
            return false;
        }
        let Some(c) = self.get_mut(id) else {
            return false;
        };
        let old = c.control.replace(control);
        if let Some(old) = old {
            if let Some(o) = self.get_mut(old) {
                o.n_control = o.n_control.saturating_sub(1);
            }
        }
        if let Some(t) = self.get_mut(control) {
            t.n_control = t.n_control.saturating_add(1);
        }
        true
    }

    /// Free an entry now, whatever its timer. Unlinks it from its control
    /// entry, and clears the control link of entries it controlled.
    pub fn remove(&mut self, id: ConnId) -> Option<Removed> {
        let removed = self.free_entry(id)?;
        self.stats.removed += 1;
        Some(removed)
    }

    fn free_entry(&mut self, id: ConnId) -> Option<Removed> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        let conn = slot.conn.take()?;
        slot.generation = next_generation(slot.generation);
        self.free.push(id.index);
        self.len -= 1;

        let h = self.in_hash(&conn.in_key());
        self.in_index.remove(h, id.index);
        if !conn.is_template() {
            let h = self.out_hash(&conn.out_key());
            self.out_index.remove(h, id.index);
        }
        if let Some(ct) = conn.control {
            if let Some(t) = self.get_mut(ct) {
                t.n_control = t.n_control.saturating_sub(1);
            }
        }
        if conn.n_control > 0 {
            for s in self.slots.iter_mut() {
                if let Some(c) = s.conn.as_mut() {
                    if c.control == Some(id) {
                        c.control = None;
                    }
                }
            }
        }
        Some(Removed { id, conn })
    }

    /// Drop an entry and the chain above it, as the kernel's
    /// `ip_vs_conn_del` (timeout 0): after freeing `id`, its control entry
    /// is freed too if nothing else uses it and it is not an ASSURED
    /// template, and so on up the chain. An entry that still controls
    /// others is not freed but made due now (it will be re-armed), as in
    /// the kernel. Returns what was freed, `id` first.
    pub fn drop_chain(&mut self, id: ConnId, now: EngineTime) -> Vec<Removed> {
        let mut out = Vec::new();
        let mut next = Some(id);
        while let Some(cur) = next.take() {
            let Some(c) = self.get(cur) else {
                break;
            };
            if c.n_control > 0 {
                if cur == id {
                    self.expire_now(cur, now);
                }
                break;
            }
            let Some(r) = self.remove(cur) else {
                break;
            };
            if let Some(ct) = r.conn.control {
                if let Some(t) = self.get(ct) {
                    let assured = matches!(t.state, ConnState::Template { assured: true });
                    if t.n_control == 0 && !(t.is_template() && assured) {
                        next = Some(ct);
                    }
                }
            }
            out.push(r);
        }
        out
    }

    /// Free every entry for which `pred` holds (e.g. all connections of a
    /// deleted service). Entries that control others are unlinked first.
    pub fn remove_where(&mut self, mut pred: impl FnMut(&Conn) -> bool) -> Vec<Removed> {
        let ids: Vec<ConnId> = self
            .iter()
            .filter(|(_, c)| pred(c))
            .map(|(id, _)| id)
            .collect();
        ids.into_iter().filter_map(|id| self.remove(id)).collect()
    }

    /// Free everything (no accounting needed by the caller if it resets
    /// its counters too); returns the freed entries.
    pub fn clear(&mut self) -> Vec<Removed> {
        let ids: Vec<ConnId> = self.iter().map(|(id, _)| id).collect();
        let out: Vec<Removed> = ids.into_iter().filter_map(|id| self.remove(id)).collect();
        self.in_index.clear();
        self.out_index.clear();
        self.timers.clear();
        out
    }

    /// Earliest instant at which [`ConnTable::handle_timeout`] has work,
    /// exact (stale and lazily extended timer items are settled first).
    pub fn poll_timeout(&mut self) -> Option<EngineTime> {
        while let Some(top) = self.timers.peek() {
            match self.timer_target(top) {
                None => {
                    self.timers.pop();
                }
                Some((_, expires)) if expires > top.at => {
                    self.timers.pop();
                    self.requeue(top, expires);
                }
                Some(_) => return Some(top.at),
            }
        }
        None
    }

    /// The live entry a timer item stands for, with its current expiry;
    /// `None` if the item is stale.
    fn timer_target(&self, item: TimerItem) -> Option<(ConnId, EngineTime)> {
        let s = self.slots.get(item.slot as usize)?;
        let c = s.conn.as_ref()?;
        if s.generation.get() != item.generation || c.timer_at != item.at {
            return None;
        }
        Some((
            ConnId {
                index: item.slot,
                generation: s.generation,
            },
            c.expires,
        ))
    }

    fn requeue(&mut self, item: TimerItem, at: EngineTime) {
        if let Some(s) = self.slots.get_mut(item.slot as usize) {
            if let Some(c) = s.conn.as_mut() {
                c.timer_at = at;
                self.timers.push(TimerItem { at, ..item });
            }
        }
    }

    /// Fire every timer due at `now`. Entries that control others are
    /// re-armed for 60 s; the rest are freed and returned, earliest
    /// deadline first, for the engine's accounting.
    pub fn handle_timeout(&mut self, now: EngineTime) -> Vec<Removed> {
        let mut out = Vec::new();
        while let Some(top) = self.timers.peek() {
            if top.at > now {
                break;
            }
            self.timers.pop();
            let Some((id, expires)) = self.timer_target(top) else {
                continue;
            };
            if expires > now {
                self.requeue(top, expires);
                continue;
            }
            let controls_others = self.get(id).is_some_and(|c| c.n_control > 0);
            if controls_others {
                if let Some(c) = self.get_mut(id) {
                    c.timeout_ms = CONTROL_REARM_MS;
                }
                let at = now.add_millis(u64::from(CONTROL_REARM_MS));
                if let Some(c) = self.get_mut(id) {
                    c.expires = at;
                }
                self.requeue(top, at);
                self.stats.control_rearms += 1;
                continue;
            }
            if let Some(r) = self.free_entry(id) {
                self.stats.expired += 1;
                out.push(r);
            }
        }
        out
    }

    /// All entries, in slab order.
    pub fn iter(&self) -> impl Iterator<Item = (ConnId, &Conn)> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            s.conn.as_ref().map(|c| {
                (
                    ConnId {
                        index: i as u32,
                        generation: s.generation,
                    },
                    c,
                )
            })
        })
    }

    /// Number of entries pointing at `dest`: (active, inactive, templates).
    /// The engine keeps its own counters; this is for checks and tests.
    pub fn count_for_dest(&self, dest: DestId) -> (u32, u32, u32) {
        let mut n = (0, 0, 0);
        for (_, c) in self.iter().filter(|(_, c)| c.dest == Some(dest)) {
            if c.is_template() {
                n.2 += 1;
            } else if c.is_inactive() {
                n.1 += 1;
            } else {
                n.0 += 1;
            }
        }
        n
    }

    /// Rows for `ipvsadm -L -c`, in slab order.
    pub fn snapshot(&self, now: EngineTime) -> Vec<ConnSnapshot> {
        self.iter()
            .map(|(_, c)| ConnSnapshot {
                protocol: c.protocol,
                caddr: c.caddr,
                cport: c.cport,
                vaddr: c.vaddr,
                vport: c.vport,
                daddr: c.daddr,
                dport: c.dport,
                state: c.state.name().to_string(),
                expires_ms: c.expires_in(now),
                is_template: c.is_template(),
                pe_name: None,
                pe_data: None,
            })
            .collect()
    }

    /// Items in the timer queue (live + stale), for memory checks.
    pub fn timer_queue_len(&self) -> usize {
        self.timers.len()
    }

    /// Entries reachable through the client-side and reply-side indexes.
    pub fn indexed(&self) -> (usize, usize) {
        (self.in_index.len(), self.out_index.len())
    }
}
