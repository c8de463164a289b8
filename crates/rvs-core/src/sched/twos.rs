//! `twos` scheduler (placeholder until implemented).

use super::{DestChange, SchedContext, SchedDest, Scheduler};

#[derive(Debug, Default)]
pub struct TwosScheduler;

impl TwosScheduler {
    pub fn new(_dests: &[SchedDest]) -> Self {
        TwosScheduler
    }
}

impl Scheduler for TwosScheduler {
    fn name(&self) -> &'static str {
        "twos"
    }
    fn dests_changed(&mut self, _change: DestChange, _dests: &[SchedDest]) {}
    fn schedule(&mut self, _dests: &[SchedDest], _ctx: &mut SchedContext<'_>) -> Option<usize> {
        None
    }
}
