//! `nq`: never queue, as `ip_vs_nq.c` computes it.
//!
//! Walking the list, the first available server (weight > 0, not
//! overloaded) with no active connections is taken at once. If every
//! available server is busy, the choice is the `sed` one: smallest
//! `(active + 1) / weight`, ties to the earlier server in list order.

use super::sed::{sed_heavier, sed_overhead};
use super::{DestChange, SchedContext, SchedDest, Scheduler};

/// Never-queue scheduler (stateless).
#[derive(Debug, Default, Clone)]
pub struct NqScheduler;

impl NqScheduler {
    pub fn new(_dests: &[SchedDest]) -> Self {
        NqScheduler
    }
}

/// The `nq` choice over `dests`, as an index.
pub fn pick_nq(dests: &[SchedDest]) -> Option<usize> {
    let mut least: Option<(usize, u64, i32)> = None;
    for (i, d) in dests.iter().enumerate() {
        if !d.available() {
            continue;
        }
        if d.active == 0 {
            return Some(i);
        }
        let doh = sed_overhead(d);
        match least {
            Some((_, loh, lw)) if !sed_heavier(loh, lw, doh, d.weight) => {}
            _ => least = Some((i, doh, d.weight)),
        }
    }
    least.map(|(i, _, _)| i)
}

impl Scheduler for NqScheduler {
    fn name(&self) -> &'static str {
        "nq"
    }

    fn dests_changed(&mut self, _change: DestChange, _dests: &[SchedDest]) {}

    fn schedule(&mut self, dests: &[SchedDest], _ctx: &mut SchedContext<'_>) -> Option<usize> {
        pick_nq(dests)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DestId;
    use std::net::{IpAddr, Ipv4Addr};

    fn dest(id: u64, weight: i32, active: u32) -> SchedDest {
        SchedDest {
            id: DestId(id),
            addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, id as u8)),
            port: 80,
            weight,
            last_weight: weight,
            overloaded: false,
            active,
            inactive: 0,
        }
    }

    #[test]
    fn idle_server_wins_over_better_ratio() {
        // sed would take the first ((1+1)/100); nq takes the idle weight-1 one.
        let d = [dest(1, 100, 1), dest(2, 1, 0)];
        assert_eq!(pick_nq(&d), Some(1));
        let d = [dest(1, 100, 1), dest(2, 1, 1)];
        assert_eq!(pick_nq(&d), Some(0));
    }
}
