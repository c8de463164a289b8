//! `rr`: round-robin, as `ip_vs_rr.c` computes it.
//!
//! The scheduler keeps a cursor on the real server it picked last, or on the
//! list head when it has picked nothing yet. Each decision walks the list
//! circularly, starting just after the cursor, for at most one lap that ends
//! with the cursor's own server; the first available server (weight > 0 and
//! not overloaded) wins and becomes the new cursor. From the head, the walk is
//! a single pass over the list. When the cursor's server is removed, the
//! cursor steps back to its predecessor (or to the head if it was first), so
//! the next pick is the server that followed the removed one.
//! Adding a server does not move the cursor.

use super::{DestChange, SchedContext, SchedDest, Scheduler};
use crate::model::DestId;

/// Round-robin scheduler state: the last pick, `None` meaning the list head.
#[derive(Debug, Default, Clone)]
pub struct RrScheduler {
    cursor: Option<DestId>,
}

impl RrScheduler {
    /// A fresh cursor on the list head (`init_service`).
    pub fn new(_dests: &[SchedDest]) -> Self {
        RrScheduler { cursor: None }
    }

    /// The server the cursor rests on (`None` = list head).
    pub fn cursor(&self) -> Option<DestId> {
        self.cursor
    }
}

impl Scheduler for RrScheduler {
    fn name(&self) -> &'static str {
        "rr"
    }

    fn dests_changed(&mut self, change: DestChange, dests: &[SchedDest]) {
        let DestChange::Removing { id, index } = change else {
            return;
        };
        if self.cursor != Some(id) {
            return;
        }
        // Trust `index` only if it really points at the server being removed.
        let pos = match dests.get(index) {
            Some(d) if d.id == id => Some(index),
            _ => dests.iter().position(|d| d.id == id),
        };
        self.cursor = match pos {
            Some(p) if p > 0 => dests.get(p - 1).map(|d| d.id),
            // First in the list (or unknown): back to the head.
            _ => None,
        };
    }

    fn schedule(&mut self, dests: &[SchedDest], _ctx: &mut SchedContext<'_>) -> Option<usize> {
        let n = dests.len();
        // A cursor whose server is gone (no `Removing` was reported) is
        // treated as the head.
        let start = self
            .cursor
            .and_then(|id| dests.iter().position(|d| d.id == id));
        // From the head: one pass over the whole list. From a server: the
        // ones after it, then wrap round and end with the server itself.
        let first = start.map_or(0, |i| i + 1);
        for k in 0..n {
            let j = (first + k) % n;
            if dests.get(j).is_some_and(SchedDest::available) {
                self.cursor = dests.get(j).map(|d| d.id);
                return Some(j);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SchedFlags;
    use crate::sched::{SchedPacket, XorShiftRng};
    use std::net::{IpAddr, Ipv4Addr};

    fn dest(id: u64, weight: i32) -> SchedDest {
        SchedDest {
            id: DestId(id),
            addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, id as u8)),
            port: 80,
            weight,
            last_weight: weight,
            overloaded: false,
            active: 0,
            inactive: 0,
        }
    }

    fn pick(s: &mut RrScheduler, dests: &[SchedDest]) -> Option<u64> {
        let mut rng = XorShiftRng::new(1);
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let mut ctx = SchedContext {
            packet: SchedPacket {
                saddr: ip,
                sport: 1,
                daddr: ip,
                dport: 80,
            },
            flags: SchedFlags::default(),
            now_secs: 0,
            rng: &mut rng,
            lblc_expiration_secs: 86400,
            lblcr_expiration_secs: 86400,
        };
        s.schedule(dests, &mut ctx)
            .and_then(|i| dests.get(i))
            .map(|d| d.id.0)
    }

    #[test]
    fn walks_from_head_then_circularly() {
        let dests = [dest(3, 1), dest(2, 0), dest(1, 1)];
        let mut s = RrScheduler::new(&dests);
        let got: Vec<_> = (0..5).map(|_| pick(&mut s, &dests)).collect();
        assert_eq!(got, [Some(3), Some(1), Some(3), Some(1), Some(3)]);
    }

    #[test]
    fn single_available_is_picked_again_after_a_full_lap() {
        let dests = [dest(2, 0), dest(1, 5)];
        let mut s = RrScheduler::new(&dests);
        assert_eq!(pick(&mut s, &dests), Some(1));
        assert_eq!(pick(&mut s, &dests), Some(1));
        let none = [dest(2, 0), dest(1, 0)];
        assert_eq!(pick(&mut s, &none), None);
        // A failed pick leaves the cursor where it was.
        assert_eq!(s.cursor(), Some(DestId(1)));
    }

    #[test]
    fn removing_first_goes_back_to_head() {
        let dests = [dest(3, 1), dest(2, 1), dest(1, 1)];
        let mut s = RrScheduler::new(&dests);
        assert_eq!(pick(&mut s, &dests), Some(3));
        s.dests_changed(
            DestChange::Removing {
                id: DestId(3),
                index: 0,
            },
            &dests,
        );
        assert_eq!(s.cursor(), None);
    }
}
