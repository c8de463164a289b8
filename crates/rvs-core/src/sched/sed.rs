//! `sed`: shortest expected delay, as `ip_vs_sed.c` computes it.
//!
//! Like `wlc`, but the load of a server is `(active + 1) / weight`: inactive
//! connections are ignored, and the `+ 1` counts the connection being
//! scheduled. The first available server (weight > 0, not overloaded) is the
//! initial candidate; a later non-overloaded server replaces it only when
//! strictly better (cross-multiplied, 128-bit), so ties stay with the earlier
//! server in list order.

use super::{DestChange, SchedContext, SchedDest, Scheduler};

/// Shortest-expected-delay scheduler (stateless).
#[derive(Debug, Default, Clone)]
pub struct SedScheduler;

impl SedScheduler {
    pub fn new(_dests: &[SchedDest]) -> Self {
        SedScheduler
    }
}

/// `active + 1`, the expected-delay numerator.
pub(crate) fn sed_overhead(d: &SchedDest) -> u64 {
    u64::from(d.active) + 1
}

/// `a/wa > b/wb`, by cross-multiplication (`a * wb > b * wa`).
pub(crate) fn sed_heavier(a: u64, wa: i32, b: u64, wb: i32) -> bool {
    let wa = u128::try_from(wa).unwrap_or(0);
    let wb = u128::try_from(wb).unwrap_or(0);
    u128::from(a) * wb > u128::from(b) * wa
}

/// The `sed` choice over `dests`, as an index.
pub fn pick_sed(dests: &[SchedDest]) -> Option<usize> {
    let mut least: Option<(usize, u64, i32)> = None;
    for (i, d) in dests.iter().enumerate() {
        if !d.available() {
            continue;
        }
        let doh = sed_overhead(d);
        match least {
            Some((_, loh, lw)) if !sed_heavier(loh, lw, doh, d.weight) => {}
            _ => least = Some((i, doh, d.weight)),
        }
    }
    least.map(|(i, _, _)| i)
}

impl Scheduler for SedScheduler {
    fn name(&self) -> &'static str {
        "sed"
    }

    fn dests_changed(&mut self, _change: DestChange, _dests: &[SchedDest]) {}

    fn schedule(&mut self, dests: &[SchedDest], _ctx: &mut SchedContext<'_>) -> Option<usize> {
        pick_sed(dests)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::test_support::dest;

    #[test]
    fn inactive_is_ignored() {
        // (0+1)/1 vs (1+1)/3: 1 > 2/3, the second wins despite inactive.
        let d = [dest(1, 1, 0, 0), dest(2, 3, 1, 1000)];
        assert_eq!(pick_sed(&d), Some(1));
        // (0+1)/1 vs (2+1)/3: tie, the first stays.
        let d = [dest(1, 1, 0, 0), dest(2, 3, 2, 0)];
        assert_eq!(pick_sed(&d), Some(0));
    }
}
