//! `lblc` scheduler (placeholder until implemented).

use super::{DestChange, SchedContext, SchedDest, Scheduler};

#[derive(Debug, Default)]
pub struct LblcScheduler;

impl LblcScheduler {
    pub fn new(_dests: &[SchedDest]) -> Self {
        LblcScheduler
    }
}

impl Scheduler for LblcScheduler {
    fn name(&self) -> &'static str {
        "lblc"
    }
    fn dests_changed(&mut self, _change: DestChange, _dests: &[SchedDest]) {}
    fn schedule(&mut self, _dests: &[SchedDest], _ctx: &mut SchedContext<'_>) -> Option<usize> {
        None
    }
}
