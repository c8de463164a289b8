//! `ovf`: overflow, as `ip_vs_ovf.c` computes it.
//!
//! New connections go to the highest-weight server that is not overloaded,
//! has weight > 0 and is not full. Full means it has more active connections
//! than its weight, so a server of weight `w` takes up to `w + 1` active
//! connections (it is still eligible at `active == w`). On equal weights the
//! earlier server in list order wins. Inactive connections are not counted,
//! which is why the kernel warns that it does not suit UDP.

use super::{DestChange, SchedContext, SchedDest, Scheduler};

/// Overflow scheduler (stateless).
#[derive(Debug, Default, Clone)]
pub struct OvfScheduler;

impl OvfScheduler {
    pub fn new(_dests: &[SchedDest]) -> Self {
        OvfScheduler
    }
}

/// The `ovf` choice over `dests`, as an index.
pub fn pick_ovf(dests: &[SchedDest]) -> Option<usize> {
    let mut best: Option<(usize, i32)> = None;
    for (i, d) in dests.iter().enumerate() {
        let w = d.weight;
        if d.overloaded || w <= 0 || i64::from(d.active) > i64::from(w) {
            continue;
        }
        if best.is_none_or(|(_, hw)| w > hw) {
            best = Some((i, w));
        }
    }
    best.map(|(i, _)| i)
}

impl Scheduler for OvfScheduler {
    fn name(&self) -> &'static str {
        "ovf"
    }

    fn dests_changed(&mut self, _change: DestChange, _dests: &[SchedDest]) {}

    fn schedule(&mut self, dests: &[SchedDest], _ctx: &mut SchedContext<'_>) -> Option<usize> {
        pick_ovf(dests)
    }
}
