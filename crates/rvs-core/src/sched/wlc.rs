//! `wlc` scheduler (placeholder until implemented).

use super::{DestChange, SchedContext, SchedDest, Scheduler};

#[derive(Debug, Default)]
pub struct WlcScheduler;

impl WlcScheduler {
    pub fn new(_dests: &[SchedDest]) -> Self {
        WlcScheduler
    }
}

impl Scheduler for WlcScheduler {
    fn name(&self) -> &'static str {
        "wlc"
    }
    fn dests_changed(&mut self, _change: DestChange, _dests: &[SchedDest]) {}
    fn schedule(&mut self, _dests: &[SchedDest], _ctx: &mut SchedContext<'_>) -> Option<usize> {
        None
    }
}
