//! `rr` scheduler (placeholder until implemented).

use super::{DestChange, SchedContext, SchedDest, Scheduler};

#[derive(Debug, Default)]
pub struct RrScheduler;

impl RrScheduler {
    pub fn new(_dests: &[SchedDest]) -> Self {
        RrScheduler
    }
}

impl Scheduler for RrScheduler {
    fn name(&self) -> &'static str {
        "rr"
    }
    fn dests_changed(&mut self, _change: DestChange, _dests: &[SchedDest]) {}
    fn schedule(&mut self, _dests: &[SchedDest], _ctx: &mut SchedContext<'_>) -> Option<usize> {
        None
    }
}
