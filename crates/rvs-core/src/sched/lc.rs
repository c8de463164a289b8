//! `lc` scheduler (placeholder until implemented).

use super::{DestChange, SchedContext, SchedDest, Scheduler};

#[derive(Debug, Default)]
pub struct LcScheduler;

impl LcScheduler {
    pub fn new(_dests: &[SchedDest]) -> Self {
        LcScheduler
    }
}

impl Scheduler for LcScheduler {
    fn name(&self) -> &'static str {
        "lc"
    }
    fn dests_changed(&mut self, _change: DestChange, _dests: &[SchedDest]) {}
    fn schedule(&mut self, _dests: &[SchedDest], _ctx: &mut SchedContext<'_>) -> Option<usize> {
        None
    }
}
