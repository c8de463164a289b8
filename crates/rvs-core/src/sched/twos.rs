//! `twos`: power of two choices, as `ip_vs_twos.c` computes it.
//!
//! Let `total` be the sum of the weights of the available servers (weight > 0,
//! not overloaded) plus one. Two random numbers are drawn in order,
//! `r1 = rng % total` and `r2 = rng % total`. Walking the available servers
//! in list order, each weight is subtracted from both, and the first server at
//! which `r1` (resp. `r2`) drops to ≤ 0 is choice 1 (resp. choice 2). Choice 2
//! wins only if its load is strictly lower:
//! `w2 * overhead1 > w1 * overhead2`, with overhead `(active << 8) + inactive`.
//! Otherwise choice 1 wins. The randomness comes from the injected
//! [`RandomSource`](super::RandomSource) in the context.
//!
//! Arithmetic is 64/128-bit, where the kernel uses `int`. Results differ only
//! when the weights or loads would overflow a 32-bit int there.

use super::{DestChange, SchedContext, SchedDest, Scheduler};

/// Power-of-two-choices scheduler (stateless apart from the injected RNG).
#[derive(Debug, Default, Clone)]
pub struct TwosScheduler;

impl TwosScheduler {
    pub fn new(_dests: &[SchedDest]) -> Self {
        TwosScheduler
    }
}

/// The `twos` choice for the two raw random draws `rand1`, `rand2`.
pub fn pick_twos(dests: &[SchedDest], rand1: u32, rand2: u32) -> Option<usize> {
    let total: i64 = dests
        .iter()
        .filter(|d| d.available())
        .map(|d| i64::from(d.weight))
        .sum::<i64>()
        + 1;
    let mut r1 = i64::from(rand1) % total;
    let mut r2 = i64::from(rand2) % total;
    let mut choice1: Option<usize> = None;
    let mut choice2: Option<usize> = None;
    for (i, d) in dests.iter().enumerate() {
        if !d.available() {
            continue;
        }
        let w = i64::from(d.weight);
        r1 -= w;
        r2 -= w;
        if r1 <= 0 && choice1.is_none() {
            choice1 = Some(i);
        }
        if r2 <= 0 && choice2.is_none() {
            choice2 = Some(i);
        }
        if choice1.is_some() && choice2.is_some() {
            break;
        }
    }
    // Both draws are below `total`, so both walks end on a server whenever
    // one is available; with none available there is no choice.
    let c1 = choice1?;
    let c2 = choice2?;
    let (d1, d2) = (dests.get(c1)?, dests.get(c2)?);
    let w1 = u128::try_from(d1.weight).unwrap_or(0);
    let w2 = u128::try_from(d2.weight).unwrap_or(0);
    if w2 * u128::from(d1.overhead()) > w1 * u128::from(d2.overhead()) {
        Some(c2)
    } else {
        Some(c1)
    }
}

impl Scheduler for TwosScheduler {
    fn name(&self) -> &'static str {
        "twos"
    }

    fn dests_changed(&mut self, _change: DestChange, _dests: &[SchedDest]) {}

    fn schedule(&mut self, dests: &[SchedDest], ctx: &mut SchedContext<'_>) -> Option<usize> {
        // The kernel draws nothing when no server is available.
        if !dests.iter().any(SchedDest::available) {
            return None;
        }
        let rand1 = ctx.rng.next_u32();
        let rand2 = ctx.rng.next_u32();
        pick_twos(dests, rand1, rand2)
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
    fn draw_boundaries() {
        // Weights 2, 3: total 6, r in 0..=5. r 0..=2 -> first, 3..=5 -> second.
        let d = [dest(1, 2, 0), dest(2, 3, 0)];
        assert_eq!(pick_twos(&d, 2, 2), Some(0));
        assert_eq!(pick_twos(&d, 3, 3), Some(1));
        assert_eq!(pick_twos(&d, 5, 5), Some(1));
        // 6 % 6 == 0 -> first.
        assert_eq!(pick_twos(&d, 6, 6), Some(0));
        // Equal idle servers: choice 2 never beats choice 1 on a tie.
        assert_eq!(pick_twos(&d, 0, 5), Some(0));
        // Choice 2 less loaded: 3*256 > 2*0.
        let d = [dest(1, 2, 1), dest(2, 3, 0)];
        assert_eq!(pick_twos(&d, 0, 5), Some(1));
        assert_eq!(pick_twos(&[], 0, 0), None);
    }
}
