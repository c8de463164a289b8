//! `ovf` scheduler (placeholder until implemented).

use super::{DestChange, SchedContext, SchedDest, Scheduler};

#[derive(Debug, Default)]
pub struct OvfScheduler;

impl OvfScheduler {
    pub fn new(_dests: &[SchedDest]) -> Self {
        OvfScheduler
    }
}

impl Scheduler for OvfScheduler {
    fn name(&self) -> &'static str {
        "ovf"
    }
    fn dests_changed(&mut self, _change: DestChange, _dests: &[SchedDest]) {}
    fn schedule(&mut self, _dests: &[SchedDest], _ctx: &mut SchedContext<'_>) -> Option<usize> {
        None
    }
}
