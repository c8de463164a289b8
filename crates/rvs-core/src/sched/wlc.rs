//! `wlc`: weighted least connections (ipvsadm's default), as `ip_vs_wlc.c`
//! computes it.
//!
//! The first available server (weight > 0, not overloaded) is the initial
//! candidate; every later non-overloaded server replaces it when
//! `overhead(least) * weight(d) > overhead(d) * weight(least)`, i.e. when its
//! `overhead / weight` is strictly smaller. Overhead is
//! `(active << 8) + inactive`. Ties stay with the earlier server in list
//! order. A weight-0 server can never satisfy the comparison, so it is never
//! picked. Products are taken in 128 bits, so they cannot overflow.

use super::{DestChange, SchedContext, SchedDest, Scheduler};

/// Weighted least-connection scheduler (stateless).
#[derive(Debug, Default, Clone)]
pub struct WlcScheduler;

impl WlcScheduler {
    pub fn new(_dests: &[SchedDest]) -> Self {
        WlcScheduler
    }
}

/// `a/wa > b/wb`, by cross-multiplication (`a * wb > b * wa`).
fn heavier(a: u64, wa: i32, b: u64, wb: i32) -> bool {
    let wa = u128::try_from(wa).unwrap_or(0);
    let wb = u128::try_from(wb).unwrap_or(0);
    u128::from(a) * wb > u128::from(b) * wa
}

/// The `wlc` choice over `dests`, as an index. Other schedulers that fall
/// back to WLC may call this.
pub fn pick_wlc(dests: &[SchedDest]) -> Option<usize> {
    let first = dests.iter().position(SchedDest::available)?;
    let mut least = first;
    let mut lw = dests.get(first)?.weight;
    let mut loh = dests.get(first)?.overhead();
    for (i, d) in dests.iter().enumerate().skip(first + 1) {
        if !d.available() {
            continue;
        }
        let doh = d.overhead();
        if heavier(loh, lw, doh, d.weight) {
            least = i;
            lw = d.weight;
            loh = doh;
        }
    }
    Some(least)
}

impl Scheduler for WlcScheduler {
    fn name(&self) -> &'static str {
        "wlc"
    }

    fn dests_changed(&mut self, _change: DestChange, _dests: &[SchedDest]) {}

    fn schedule(&mut self, dests: &[SchedDest], _ctx: &mut SchedContext<'_>) -> Option<usize> {
        pick_wlc(dests)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::test_support::dest;

    #[test]
    fn weighted_ratio_and_ties() {
        // 512/2 == 256/1: tie, the first stays.
        let d = [dest(1, 2, 2, 0), dest(2, 1, 1, 0)];
        assert_eq!(pick_wlc(&d), Some(0));
        // 513/2 > 256/1.
        let d = [dest(1, 2, 2, 1), dest(2, 1, 1, 0)];
        assert_eq!(pick_wlc(&d), Some(1));
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        let d = [
            dest(1, i32::MAX, u32::MAX, u32::MAX),
            dest(2, i32::MAX - 1, u32::MAX, u32::MAX),
        ];
        assert_eq!(pick_wlc(&d), Some(0));
    }
}
