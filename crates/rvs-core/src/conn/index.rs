//! A compact open-addressing hash index from a key to a slab slot.
//!
//! The index stores no keys: each bucket is one `u64` holding 32 bits of
//! the key's hash and the slab slot + 1 (0 = empty). Equality is decided by
//! the caller, who looks at the slab entry. That keeps an indexed
//! connection at ~8-16 bytes per index instead of a full key copy.
//!
//! Linear probing with backward-shift deletion (no tombstones); the table
//! doubles when more than 3/4 full. The bucket of an entry is derived from
//! its stored hash bits, so growing and deleting never need the key.

#[derive(Debug, Clone, Default)]
pub(crate) struct Index {
    buckets: Vec<u64>,
    len: usize,
}

const MIN_BUCKETS: usize = 16;

fn pack(hash: u32, slot: u32) -> u64 {
    (u64::from(hash) << 32) | (u64::from(slot) + 1)
}

fn hash_of(bucket: u64) -> u32 {
    (bucket >> 32) as u32
}

fn slot_of(bucket: u64) -> u32 {
    // Non-empty buckets hold slot + 1 >= 1 in the low half.
    ((bucket & 0xffff_ffff) as u32).wrapping_sub(1)
}

impl Index {
    fn mask(&self) -> usize {
        self.buckets.len().wrapping_sub(1)
    }

    fn home(&self, hash: u32) -> usize {
        (hash as usize) & self.mask()
    }

    /// Slot of the first entry with `hash` for which `eq(slot)` holds.
    pub(crate) fn find(&self, hash: u32, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        if self.buckets.is_empty() {
            return None;
        }
        let mask = self.mask();
        let mut i = self.home(hash);
        loop {
            let b = *self.buckets.get(i)?;
            if b == 0 {
                return None;
            }
            if hash_of(b) == hash && eq(slot_of(b)) {
                return Some(slot_of(b));
            }
            i = (i + 1) & mask;
        }
    }

    /// Point the key to `slot`. If an entry with an equal key exists
    /// (`eq`), it is replaced (shadowed) and its slot returned.
    pub(crate) fn insert(
        &mut self,
        hash: u32,
        slot: u32,
        mut eq: impl FnMut(u32) -> bool,
    ) -> Option<u32> {
        if (self.len + 1) * 4 > self.buckets.len() * 3 {
            self.grow();
        }
        let mask = self.mask();
        let mut i = self.home(hash);
        loop {
            let b = self.buckets[i];
            if b == 0 {
                self.buckets[i] = pack(hash, slot);
                self.len += 1;
                return None;
            }
            if hash_of(b) == hash && eq(slot_of(b)) {
                self.buckets[i] = pack(hash, slot);
                return Some(slot_of(b));
            }
            i = (i + 1) & mask;
        }
    }

    /// Remove the bucket that points to `slot` (found along `hash`'s probe
    /// sequence). Returns false if `slot` is not indexed under `hash`
    /// (e.g. it was shadowed by a newer entry).
    pub(crate) fn remove(&mut self, hash: u32, slot: u32) -> bool {
        if self.buckets.is_empty() {
            return false;
        }
        let mask = self.mask();
        let mut i = self.home(hash);
        loop {
            let b = self.buckets[i];
            if b == 0 {
                return false;
            }
            if b == pack(hash, slot) {
                break;
            }
            i = (i + 1) & mask;
        }
        // Backward shift: pull later members of the cluster into the hole
        // when their home bucket is not between the hole and themselves.
        let mut hole = i;
        let mut j = (i + 1) & mask;
        loop {
            let b = self.buckets[j];
            if b == 0 {
                break;
            }
            let home = self.home(hash_of(b));
            let dist_home = j.wrapping_sub(home) & mask;
            let dist_hole = j.wrapping_sub(hole) & mask;
            if dist_home >= dist_hole {
                self.buckets[hole] = b;
                hole = j;
            }
            j = (j + 1) & mask;
        }
        self.buckets[hole] = 0;
        self.len -= 1;
        true
    }

    fn grow(&mut self) {
        let new_len = (self.buckets.len() * 2).max(MIN_BUCKETS);
        let old = std::mem::replace(&mut self.buckets, vec![0; new_len]);
        let mask = self.mask();
        for b in old.into_iter().filter(|&b| b != 0) {
            let mut i = self.home(hash_of(b));
            while self.buckets[i] != 0 {
                i = (i + 1) & mask;
            }
            self.buckets[i] = b;
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn clear(&mut self) {
        self.buckets.clear();
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_find_remove_with_collisions() {
        let mut ix = Index::default();
        // Everything hashes to 7: one long cluster.
        for s in 0..40u32 {
            assert_eq!(ix.insert(7, s, |_| false), None);
        }
        // Another cluster member with a different home further on.
        assert_eq!(ix.insert(8, 100, |_| false), None);
        assert_eq!(ix.len(), 41);
        for s in 0..40u32 {
            assert_eq!(ix.find(7, |x| x == s), Some(s));
        }
        for s in (0..40u32).step_by(2) {
            assert!(ix.remove(7, s));
        }
        assert!(!ix.remove(7, 0));
        for s in 0..40u32 {
            let found = ix.find(7, |x| x == s);
            assert_eq!(found.is_some(), s % 2 == 1, "slot {s}");
        }
        assert_eq!(ix.find(8, |x| x == 100), Some(100));
        assert_eq!(ix.len(), 21);
    }

    #[test]
    fn shadowing_replaces_slot() {
        let mut ix = Index::default();
        assert_eq!(ix.insert(1, 5, |_| false), None);
        assert_eq!(ix.insert(1, 6, |s| s == 5), Some(5));
        assert_eq!(ix.find(1, |_| true), Some(6));
        assert!(!ix.remove(1, 5));
        assert!(ix.remove(1, 6));
        assert_eq!(ix.len(), 0);
    }
}
