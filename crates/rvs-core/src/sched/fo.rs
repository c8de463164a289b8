//! `fo` scheduler (placeholder until implemented).

use super::{DestChange, SchedContext, SchedDest, Scheduler};

#[derive(Debug, Default)]
pub struct FoScheduler;

impl FoScheduler {
    pub fn new(_dests: &[SchedDest]) -> Self {
        FoScheduler
    }
}

impl Scheduler for FoScheduler {
    fn name(&self) -> &'static str {
        "fo"
    }
    fn dests_changed(&mut self, _change: DestChange, _dests: &[SchedDest]) {}
    fn schedule(&mut self, _dests: &[SchedDest], _ctx: &mut SchedContext<'_>) -> Option<usize> {
        None
    }
}
