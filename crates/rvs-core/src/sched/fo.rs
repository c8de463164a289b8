//! `fo`: weighted fail-over, as `ip_vs_fo.c` computes it.
//!
//! All new connections go to the non-overloaded server with the highest
//! weight. A server needs weight > 0 to count, and on equal weights the
//! earlier server in list order wins. Connection counts play no part.

use super::{DestChange, SchedContext, SchedDest, Scheduler};

/// Fail-over scheduler (stateless).
#[derive(Debug, Default, Clone)]
pub struct FoScheduler;

impl FoScheduler {
    pub fn new(_dests: &[SchedDest]) -> Self {
        FoScheduler
    }
}

/// The `fo` choice over `dests`, as an index.
pub fn pick_fo(dests: &[SchedDest]) -> Option<usize> {
    let mut best: Option<usize> = None;
    let mut hw = 0i32;
    for (i, d) in dests.iter().enumerate() {
        // Starting from 0 with a strict `>` both requires weight > 0 and
        // keeps ties with the earlier server.
        if !d.overloaded && d.weight > hw {
            best = Some(i);
            hw = d.weight;
        }
    }
    best
}

impl Scheduler for FoScheduler {
    fn name(&self) -> &'static str {
        "fo"
    }

    fn dests_changed(&mut self, _change: DestChange, _dests: &[SchedDest]) {}

    fn schedule(&mut self, dests: &[SchedDest], _ctx: &mut SchedContext<'_>) -> Option<usize> {
        pick_fo(dests)
    }
}
