//! `dh` scheduler (placeholder until implemented).

use super::{DestChange, SchedContext, SchedDest, Scheduler};

#[derive(Debug, Default)]
pub struct DhScheduler;

impl DhScheduler {
    pub fn new(_dests: &[SchedDest]) -> Self {
        DhScheduler
    }
}

impl Scheduler for DhScheduler {
    fn name(&self) -> &'static str {
        "dh"
    }
    fn dests_changed(&mut self, _change: DestChange, _dests: &[SchedDest]) {}
    fn schedule(&mut self, _dests: &[SchedDest], _ctx: &mut SchedContext<'_>) -> Option<usize> {
        None
    }
}
