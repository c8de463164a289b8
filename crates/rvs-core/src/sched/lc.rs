//! `lc`: least connections, as `ip_vs_lc.c` computes it.
//!
//! Among available servers (weight > 0, not overloaded) it picks the one with
//! the smallest overhead `(active << 8) + inactive`. The weight only switches
//! a server on or off; it does not scale the load. On a tie the earlier
//! server in list order (the newer one) wins.

use super::{DestChange, SchedContext, SchedDest, Scheduler};

/// Least-connection scheduler (stateless).
#[derive(Debug, Default, Clone)]
pub struct LcScheduler;

impl LcScheduler {
    pub fn new(_dests: &[SchedDest]) -> Self {
        LcScheduler
    }
}

/// The `lc` choice over `dests`, as an index.
pub fn pick_least_overhead(dests: &[SchedDest]) -> Option<usize> {
    let mut least: Option<(usize, u64)> = None;
    for (i, d) in dests.iter().enumerate() {
        if !d.available() {
            continue;
        }
        let doh = d.overhead();
        // Strictly smaller replaces, so ties stay with the earlier server.
        if least.is_none_or(|(_, loh)| doh < loh) {
            least = Some((i, doh));
        }
    }
    least.map(|(i, _)| i)
}

impl Scheduler for LcScheduler {
    fn name(&self) -> &'static str {
        "lc"
    }

    fn dests_changed(&mut self, _change: DestChange, _dests: &[SchedDest]) {}

    fn schedule(&mut self, dests: &[SchedDest], _ctx: &mut SchedContext<'_>) -> Option<usize> {
        pick_least_overhead(dests)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::test_support::dest;

    #[test]
    fn weight_does_not_scale() {
        // 1 active (256) is more than 255 inactive; weight 100 does not help.
        let d = [dest(1, 100, 1, 0), dest(2, 1, 0, 255)];
        assert_eq!(pick_least_overhead(&d), Some(1));
        let d = [dest(1, 100, 1, 0), dest(2, 1, 0, 256)];
        assert_eq!(pick_least_overhead(&d), Some(0));
        assert_eq!(pick_least_overhead(&[]), None);
    }
}
