//! `sed` scheduler (placeholder until implemented).

use super::{DestChange, SchedContext, SchedDest, Scheduler};

#[derive(Debug, Default)]
pub struct SedScheduler;

impl SedScheduler {
    pub fn new(_dests: &[SchedDest]) -> Self {
        SedScheduler
    }
}

impl Scheduler for SedScheduler {
    fn name(&self) -> &'static str {
        "sed"
    }
    fn dests_changed(&mut self, _change: DestChange, _dests: &[SchedDest]) {}
    fn schedule(&mut self, _dests: &[SchedDest], _ctx: &mut SchedContext<'_>) -> Option<usize> {
        None
    }
}
