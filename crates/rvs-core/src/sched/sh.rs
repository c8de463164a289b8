//! `sh` scheduler (placeholder until implemented).

use super::{DestChange, SchedContext, SchedDest, Scheduler};

#[derive(Debug, Default)]
pub struct ShScheduler;

impl ShScheduler {
    pub fn new(_dests: &[SchedDest]) -> Self {
        ShScheduler
    }
}

impl Scheduler for ShScheduler {
    fn name(&self) -> &'static str {
        "sh"
    }
    fn dests_changed(&mut self, _change: DestChange, _dests: &[SchedDest]) {}
    fn schedule(&mut self, _dests: &[SchedDest], _ctx: &mut SchedContext<'_>) -> Option<usize> {
        None
    }
}
