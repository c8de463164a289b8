//! Hashing helpers shared by the hashing and locality schedulers
//! (`dh`, `sh`, `mh`, `lblc`, `lblcr`), written to give the same numbers
//! as the Linux kernel (6.x, 64-bit):
//!
//! * [`addr_fold`]: the 32-bit value the kernel hashes for an address
//!   (IPv4 in host order; IPv6 folded by XOR of its four 32-bit words).
//! * [`hash_32`]: `include/linux/hash.h`'s multiplicative hash (used by
//!   `dh`, `lblc` and `lblcr`), and [`sh_hash`], `sh`'s bucket (also
//!   `hash_32`, of the address plus the port).
//! * [`siphash`] / [`hsiphash_u32`]: SipHash-c-d, and the kernel's
//!   `hsiphash` of one 32-bit word (used by `mh`). On 64-bit kernels
//!   `hsiphash` is SipHash-1-3 with a 128-bit key, truncated to 32 bits.
//! * [`SlotTable`]: a fixed table of slots pointing at real servers, as the
//!   `dh`/`sh`/`mh` lookup tables are, with a safe way back to the list.
//! * [`LocalityTable`]: the `lblc`/`lblcr` table keyed on destination
//!   address, with the kernel's periodic garbage collection.
//!
//! Nothing here reads a clock: times are passed in as seconds.

use super::SchedDest;
use crate::model::DestId;
use std::net::IpAddr;

/// `GOLDEN_RATIO_32` from `include/linux/hash.h`.
pub const GOLDEN_RATIO_32: u32 = 0x61C8_8647;

/// The 32-bit value the kernel's schedulers hash for an address, in host
/// order (`ntohl(addr_fold)`): an IPv4 address as a number, an IPv6 address
/// as the XOR of its four 32-bit words. (XOR commutes with the byte swap,
/// so folding network-order words and swapping once gives the same value.)
pub fn addr_fold(addr: IpAddr) -> u32 {
    match addr {
        IpAddr::V4(a) => u32::from(a),
        IpAddr::V6(a) => {
            let o = a.octets();
            let mut fold = 0u32;
            for chunk in o.chunks_exact(4) {
                fold ^= u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            }
            fold
        }
    }
}

/// `hash_32(val, bits)`: multiply by [`GOLDEN_RATIO_32`] and keep the top
/// `bits` bits. `bits` must be in `1..=32`; other values are clamped.
pub fn hash_32(val: u32, bits: u32) -> u32 {
    let bits = bits.clamp(1, 32);
    val.wrapping_mul(GOLDEN_RATIO_32) >> (32 - bits)
}

/// `sh`'s bucket: `(offset + hash_32(port + fold, bits)) & (2^bits - 1)`,
/// the sum taken in 32 bits. The offset is added *after* hashing, so
/// probing with `sh-fallback` walks consecutive buckets from the hashed
/// one. (Kernels before 4.x multiplied by 2654435761 and kept the low
/// bits; the 6.1 captures in `tests/fixtures/refvm/sched` rule that out.)
pub fn sh_hash(fold: u32, port: u16, offset: u32, bits: u32) -> u32 {
    let bits = bits.clamp(1, 32);
    let mask = u32::MAX >> (32 - bits);
    offset.wrapping_add(hash_32(u32::from(port).wrapping_add(fold), bits)) & mask
}

/// A SipHash key as the kernel stores it: two 64-bit words (`key[0]`,
/// `key[1]`), i.e. the 16 key bytes read as two little-endian words.
pub type SipKey = [u64; 2];

#[inline]
fn sip_round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13);
    v[1] ^= v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16);
    v[3] ^= v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21);
    v[3] ^= v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17);
    v[1] ^= v[2];
    v[2] = v[2].rotate_left(32);
}

/// SipHash-`c`-`d` (`c` compression rounds per 8-byte block, `d`
/// finalisation rounds) of `data` under `key`, 64-bit output, as in the
/// SipHash paper (Aumasson & Bernstein).
pub fn siphash(c_rounds: u32, d_rounds: u32, key: SipKey, data: &[u8]) -> u64 {
    let mut v = [
        key[0] ^ 0x736f_6d65_7073_6575,
        key[1] ^ 0x646f_7261_6e64_6f6d,
        key[0] ^ 0x6c79_6765_6e65_7261,
        key[1] ^ 0x7465_6462_7974_6573,
    ];
    let mut blocks = data.chunks_exact(8);
    for block in &mut blocks {
        let mut word = [0u8; 8];
        word.copy_from_slice(block);
        let m = u64::from_le_bytes(word);
        v[3] ^= m;
        for _ in 0..c_rounds {
            sip_round(&mut v);
        }
        v[0] ^= m;
    }
    // Last block: the remaining bytes, little-endian, with the length
    // (mod 256) in the top byte.
    let mut last = (data.len() as u64 & 0xff) << 56;
    for (i, b) in blocks.remainder().iter().enumerate() {
        last |= u64::from(*b) << (8 * i);
    }
    v[3] ^= last;
    for _ in 0..c_rounds {
        sip_round(&mut v);
    }
    v[0] ^= last;
    v[2] ^= 0xff;
    for _ in 0..d_rounds {
        sip_round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// The kernel's `hsiphash(data, len, key)` on a 64-bit kernel: SipHash-1-3
/// with the two `unsigned long` key words, truncated to 32 bits.
/// (32-bit kernels use HalfSipHash-1-3 instead; rvs models 64-bit ones.)
pub fn hsiphash(key: SipKey, data: &[u8]) -> u32 {
    siphash(1, 3, key, data) as u32
}

/// `hsiphash(&v, sizeof(v), key)` for a host `u32` `v` on a little-endian
/// 64-bit machine: the four bytes of `v` in little-endian order.
pub fn hsiphash_u32(v: u32, key: SipKey) -> u32 {
    hsiphash(key, &v.to_le_bytes())
}

/// Marker for an empty slot in a [`SlotTable`].
const EMPTY_SLOT: u32 = u32::MAX;

/// What a table slot refers to, looked up against the current list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// The slot is empty (the kernel's NULL bucket).
    Empty,
    /// The slot's real server is no longer in the list.
    Gone,
    /// The slot's real server, as an index into the current list.
    Dest(usize),
}

/// A fixed-size lookup table of real servers (`dh`, `sh`, `mh`). Slots
/// hold an index into the list as it was when the table was built, plus
/// the list's ids at that time, so a lookup can verify (and, if the list
/// moved without a rebuild, re-find) the server by its [`DestId`].
#[derive(Debug, Clone)]
pub struct SlotTable {
    slots: Vec<u32>,
    ids: Vec<DestId>,
}

impl SlotTable {
    /// An all-empty table of `size` slots.
    pub fn new(size: usize) -> SlotTable {
        SlotTable {
            slots: vec![EMPTY_SLOT; size],
            ids: Vec::new(),
        }
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Always false for a table built with a non-zero size.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Forget every assignment and remember `dests`' ids for the next fill.
    pub fn reset(&mut self, dests: &[SchedDest]) {
        self.slots.iter_mut().for_each(|s| *s = EMPTY_SLOT);
        self.ids = dests.iter().map(|d| d.id).collect();
    }

    /// Point slot `slot` at list index `index` (of the list given to the
    /// last [`SlotTable::reset`]). Out-of-range arguments are ignored.
    pub fn set(&mut self, slot: usize, index: usize) {
        if index < self.ids.len() {
            if let (Some(s), Ok(i)) = (self.slots.get_mut(slot), u32::try_from(index)) {
                *s = i;
            }
        }
    }

    /// The server id in slot `slot`, if any.
    pub fn id(&self, slot: usize) -> Option<DestId> {
        let i = *self.slots.get(slot)?;
        if i == EMPTY_SLOT {
            return None;
        }
        self.ids.get(i as usize).copied()
    }

    /// Resolve slot `slot` against the current list.
    pub fn resolve(&self, slot: usize, dests: &[SchedDest]) -> Slot {
        let Some(i) = self.slots.get(slot).copied() else {
            return Slot::Empty;
        };
        if i == EMPTY_SLOT {
            return Slot::Empty;
        }
        let i = i as usize;
        let Some(id) = self.ids.get(i).copied() else {
            return Slot::Empty;
        };
        match dests.get(i) {
            Some(d) if d.id == id => Slot::Dest(i),
            _ => match dests.iter().position(|d| d.id == id) {
                Some(p) => Slot::Dest(p),
                None => Slot::Gone,
            },
        }
    }
}

/// The list as it will be once the server at `index` (with id `id`) is
/// gone, for schedulers that must rebuild on `DestChange::Removing`.
pub fn list_without(dests: &[SchedDest], id: DestId, index: usize) -> Vec<SchedDest> {
    let pos = match dests.get(index) {
        Some(d) if d.id == id => Some(index),
        _ => dests.iter().position(|d| d.id == id),
    };
    dests
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != pos)
        .map(|(_, d)| *d)
        .collect()
}

/// Index of the server with id `id` in `dests`.
pub fn index_of(dests: &[SchedDest], id: DestId) -> Option<usize> {
    dests.iter().position(|d| d.id == id)
}

/// `lblc`/`lblcr` table size: `1 << CONFIG_IP_VS_LBLC_TAB_BITS` (10).
pub const LOCALITY_TAB_BITS: u32 = 10;
/// Number of hash buckets of a [`LocalityTable`].
pub const LOCALITY_TAB_SIZE: usize = 1 << LOCALITY_TAB_BITS;
/// The table's nominal maximum: 16 entries per bucket (16384). Past this,
/// no entry is added and the periodic collection starts dropping entries.
pub const LOCALITY_MAX_SIZE: usize = LOCALITY_TAB_SIZE * 16;
/// Idle time after which an entry may go when the table is over-full
/// (`ENTRY_TIMEOUT`, 6 minutes).
pub const LOCALITY_ENTRY_TIMEOUT_SECS: u64 = 6 * 60;
/// Every this many collection runs without pressure, a full sweep runs
/// (`COUNT_FOR_FULL_EXPIRATION`).
pub const LOCALITY_FULL_SWEEP_EVERY: u32 = 30;
/// `lblc_expiration` / `lblcr_expiration` default: 24 hours.
pub const LOCALITY_DEFAULT_EXPIRATION_SECS: u64 = 24 * 60 * 60;

/// Bucket of a destination address: `hash_32(fold(addr), 10)`.
pub fn locality_bucket(addr: IpAddr) -> usize {
    hash_32(addr_fold(addr), LOCALITY_TAB_BITS) as usize
}

/// One cached destination address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalityEntry<T> {
    /// The packet destination address this entry is for.
    pub addr: IpAddr,
    /// Engine time (seconds) of the last lookup.
    pub lastuse: u64,
    /// The scheduler's data (a server for `lblc`, a set for `lblcr`).
    pub value: T,
}

/// The `lblc`/`lblcr` hash table: 1024 buckets of entries keyed on the
/// packet's destination address, plus the kernel's bookkeeping for its
/// periodic collection (entry counter, rover, run counter).
///
/// `counted` is the kernel's `entries` counter, which is what the size
/// limit and the collection look at. It normally equals [`Self::len`], but
/// `lblc` unlinks a replaced entry without decrementing it (see
/// [`Self::unlink_uncounted`]), exactly like the kernel.
#[derive(Debug, Clone)]
pub struct LocalityTable<T> {
    buckets: Vec<Vec<LocalityEntry<T>>>,
    counted: usize,
    len: usize,
    rover: usize,
    runs: u32,
}

impl<T> Default for LocalityTable<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> LocalityTable<T> {
    /// An empty table (`init_service`: rover 0, run counter 1).
    pub fn new() -> Self {
        LocalityTable {
            buckets: (0..LOCALITY_TAB_SIZE).map(|_| Vec::new()).collect(),
            counted: 0,
            len: 0,
            rover: 0,
            runs: 1,
        }
    }

    /// Entries actually held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The kernel's `entries` counter (see the type's docs).
    pub fn counted_entries(&self) -> usize {
        self.counted
    }

    /// The entry for `addr`.
    pub fn get(&self, addr: IpAddr) -> Option<&LocalityEntry<T>> {
        self.buckets
            .get(locality_bucket(addr))?
            .iter()
            .find(|e| e.addr == addr)
    }

    /// The entry for `addr`, mutable.
    pub fn get_mut(&mut self, addr: IpAddr) -> Option<&mut LocalityEntry<T>> {
        self.buckets
            .get_mut(locality_bucket(addr))?
            .iter_mut()
            .find(|e| e.addr == addr)
    }

    /// Add a new entry for `addr` (which must not be present), unless the
    /// counter is already above [`LOCALITY_MAX_SIZE`]; returns whether it
    /// was added. New entries go to the head of their bucket.
    pub fn insert(&mut self, addr: IpAddr, now: u64, value: T) -> bool {
        if self.counted > LOCALITY_MAX_SIZE {
            return false;
        }
        let Some(bucket) = self.buckets.get_mut(locality_bucket(addr)) else {
            return false;
        };
        bucket.insert(
            0,
            LocalityEntry {
                addr,
                lastuse: now,
                value,
            },
        );
        self.counted += 1;
        self.len += 1;
        true
    }

    /// Remove the entry for `addr` *without* decrementing the counter, as
    /// `ip_vs_lblc_new` does when it replaces an entry.
    pub fn unlink_uncounted(&mut self, addr: IpAddr) {
        if let Some(bucket) = self.buckets.get_mut(locality_bucket(addr)) {
            let before = bucket.len();
            bucket.retain(|e| e.addr != addr);
            self.len -= before - bucket.len();
        }
    }

    /// Drop the entries of bucket `j` idle for at least `idle_secs`
    /// (`now >= lastuse + idle_secs`); returns how many went.
    fn sweep_bucket(&mut self, j: usize, now: u64, idle_secs: u64) -> usize {
        let Some(bucket) = self.buckets.get_mut(j) else {
            return 0;
        };
        let before = bucket.len();
        bucket.retain(|e| now < e.lastuse.saturating_add(idle_secs));
        let gone = before - bucket.len();
        self.len -= gone;
        self.counted = self.counted.saturating_sub(gone);
        gone
    }

    /// One run of the kernel's periodic collection (`check_expire`, every
    /// 60 s): on every 30th run without pressure a full sweep drops entries
    /// idle for `expiration_secs` or more; otherwise, if the counter is
    /// above [`LOCALITY_MAX_SIZE`], buckets are swept from the rover on,
    /// dropping entries idle for 6 minutes or more, until
    /// `min((n - max) * 4 / 3, max / 2)` entries went (whole buckets at a
    /// time). Returns the number of entries dropped.
    pub fn collect(&mut self, now: u64, expiration_secs: u64) -> usize {
        let mut dropped = 0;
        if self.runs.is_multiple_of(LOCALITY_FULL_SWEEP_EVERY) {
            let mut j = self.rover;
            for _ in 0..LOCALITY_TAB_SIZE {
                j = (j + 1) & (LOCALITY_TAB_SIZE - 1);
                dropped += self.sweep_bucket(j, now, expiration_secs);
            }
            self.rover = j;
            self.runs = 1;
            return dropped;
        }
        if self.counted <= LOCALITY_MAX_SIZE {
            self.runs += 1;
            return 0;
        }
        let mut goal =
            ((self.counted - LOCALITY_MAX_SIZE) * 4 / 3).min(LOCALITY_MAX_SIZE / 2) as i64;
        let mut j = self.rover;
        for _ in 0..LOCALITY_TAB_SIZE {
            j = (j + 1) & (LOCALITY_TAB_SIZE - 1);
            let gone = self.sweep_bucket(j, now, LOCALITY_ENTRY_TIMEOUT_SECS);
            dropped += gone;
            goal -= gone as i64;
            if goal <= 0 {
                break;
            }
        }
        self.rover = j;
        dropped
    }
}

/// The weighted least-connection pick over the whole list that `lblc` and
/// `lblcr` fall back to: the first server that is not overloaded and has
/// weight > 0 starts, then any later non-overloaded server with a strictly
/// smaller `overhead/weight` (compared by cross-multiplication) replaces it.
pub fn wlc_pick(dests: &[SchedDest]) -> Option<usize> {
    let first = dests.iter().position(|d| !d.overloaded && d.weight > 0)?;
    let mut least = first;
    let mut loh = overhead(&dests[first]);
    for (i, d) in dests.iter().enumerate().skip(first + 1) {
        if d.overloaded {
            continue;
        }
        let doh = overhead(d);
        if loh * i128::from(d.weight) > doh * i128::from(dests[least].weight) {
            least = i;
            loh = doh;
        }
    }
    Some(least)
}

/// `ip_vs_dest_conn_overhead` as a wide signed number.
pub fn overhead(d: &SchedDest) -> i128 {
    i128::from(d.overhead())
}

/// The locality schedulers' own "overloaded" rule: `d` has more active
/// connections than its weight **and** some server in the list has fewer
/// than half its weight in active connections.
pub fn locality_overloaded(d: &SchedDest, dests: &[SchedDest]) -> bool {
    i64::from(d.active) > i64::from(d.weight)
        && dests
            .iter()
            .any(|m| i64::from(m.active) * 2 < i64::from(m.weight))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn fold_v4_is_host_order() {
        assert_eq!(
            addr_fold(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))),
            0x0A00_0001
        );
    }

    #[test]
    fn fold_v6_xors_words() {
        let a: Ipv6Addr = "2001:db8::1".parse().unwrap_or(Ipv6Addr::UNSPECIFIED);
        // 0x20010db8 ^ 0 ^ 0 ^ 0x00000001
        assert_eq!(addr_fold(IpAddr::V6(a)), 0x2001_0db9);
    }

    #[test]
    fn hash_32_takes_high_bits() {
        // 1 * 0x61C88647 >> 24 = 0x61
        assert_eq!(hash_32(1, 8), 0x61);
        assert_eq!(hash_32(0, 10), 0);
        // 2 * 0x61C88647 = 0xC3910C8E; >> 22 = 0x30E
        assert_eq!(hash_32(2, 10), 0x30E);
    }

    #[test]
    fn sh_hash_is_hash_32_plus_offset() {
        // fold 1, port 0: hash_32(1, 8) = 0x61; + offset 1 = 0x62.
        assert_eq!(sh_hash(1, 0, 0, 8), 0x61);
        assert_eq!(sh_hash(1, 0, 1, 8), 0x62);
        // fold 0, port 2: 0xC3910C8E >> 24 = 0xC3; + 0x40 wraps to 0x03.
        assert_eq!(sh_hash(0, 2, 0x40, 8), 0x03);
    }
}
