//! `lblcr` scheduler (placeholder until implemented).

use super::{DestChange, SchedContext, SchedDest, Scheduler};

#[derive(Debug, Default)]
pub struct LblcrScheduler;

impl LblcrScheduler {
    pub fn new(_dests: &[SchedDest]) -> Self {
        LblcrScheduler
    }
}

impl Scheduler for LblcrScheduler {
    fn name(&self) -> &'static str {
        "lblcr"
    }
    fn dests_changed(&mut self, _change: DestChange, _dests: &[SchedDest]) {}
    fn schedule(&mut self, _dests: &[SchedDest], _ctx: &mut SchedContext<'_>) -> Option<usize> {
        None
    }
}
