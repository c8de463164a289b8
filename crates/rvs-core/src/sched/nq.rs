//! `nq` scheduler (placeholder until implemented).

use super::{DestChange, SchedContext, SchedDest, Scheduler};

#[derive(Debug, Default)]
pub struct NqScheduler;

impl NqScheduler {
    pub fn new(_dests: &[SchedDest]) -> Self {
        NqScheduler
    }
}

impl Scheduler for NqScheduler {
    fn name(&self) -> &'static str {
        "nq"
    }
    fn dests_changed(&mut self, _change: DestChange, _dests: &[SchedDest]) {}
    fn schedule(&mut self, _dests: &[SchedDest], _ctx: &mut SchedContext<'_>) -> Option<usize> {
        None
    }
}
