//! `wrr` scheduler (placeholder until implemented).

use super::{DestChange, SchedContext, SchedDest, Scheduler};

#[derive(Debug, Default)]
pub struct WrrScheduler;

impl WrrScheduler {
    pub fn new(_dests: &[SchedDest]) -> Self {
        WrrScheduler
    }
}

impl Scheduler for WrrScheduler {
    fn name(&self) -> &'static str {
        "wrr"
    }
    fn dests_changed(&mut self, _change: DestChange, _dests: &[SchedDest]) {}
    fn schedule(&mut self, _dests: &[SchedDest], _ctx: &mut SchedContext<'_>) -> Option<usize> {
        None
    }
}
