//! `mh` scheduler (placeholder until implemented).

use super::{DestChange, SchedContext, SchedDest, Scheduler};

#[derive(Debug, Default)]
pub struct MhScheduler;

impl MhScheduler {
    pub fn new(_dests: &[SchedDest]) -> Self {
        MhScheduler
    }
}

impl Scheduler for MhScheduler {
    fn name(&self) -> &'static str {
        "mh"
    }
    fn dests_changed(&mut self, _change: DestChange, _dests: &[SchedDest]) {}
    fn schedule(&mut self, _dests: &[SchedDest], _ctx: &mut SchedContext<'_>) -> Option<usize> {
        None
    }
}
