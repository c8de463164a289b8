//! `wrr`: weighted round-robin, as `ip_vs_wrr.c` computes it.
//!
//! State: a cursor (`cl`, the last pick or the list head), `di` (gcd of the
//! positive weights, 1 if none), `mw` (max weight − (di − 1)) and `cw`, the
//! weight a server currently needs. A decision scans onward from the cursor
//! for the first non-overloaded server with `weight >= cw`. Each time a scan
//! runs off the end of the list, `cw` drops by `di`, and when it reaches 0 it
//! wraps to `mw`. The scan gives up (no destination) once every server has
//! been tried at the lowest level: directly if the scan started from the
//! head, otherwise after a second, bounded pass that ends at the old cursor.
//!
//! On every add, delete or edit the cursor returns to the head, `di`/`mw` are
//! recomputed and `cw` is kept when it still fits: set to `mw` if it exceeds
//! `mw` or is 0, otherwise rounded to `(cw / di) * di + 1` when `di > 1`.
//!
//! Levels at which no server can qualify are skipped arithmetically instead of
//! scanned one by one, so an all-overloaded list with huge weights cannot make
//! a decision loop billions of times. The outcome equals the level-by-level
//! walk (a unit test checks this against a literal version).

use super::{DestChange, SchedContext, SchedDest, Scheduler};
use crate::model::DestId;

/// Weighted round-robin scheduler state.
#[derive(Debug, Clone)]
pub struct WrrScheduler {
    /// Last pick; `None` is the list head.
    cursor: Option<DestId>,
    /// Current weight.
    cw: i64,
    /// Max weight − (di − 1).
    mw: i64,
    /// Gcd of the positive weights (decreasing interval).
    di: i64,
}

fn gcd(mut a: i64, mut b: i64) -> i64 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

/// `di`: the gcd of all weights > 0, or 1 when there are none.
fn gcd_weight(dests: &[SchedDest]) -> i64 {
    let g = dests
        .iter()
        .map(|d| i64::from(d.weight))
        .filter(|&w| w > 0)
        .fold(0, gcd);
    if g > 0 {
        g
    } else {
        1
    }
}

/// The largest weight in the list (0 if empty or all ≤ 0).
fn max_weight(dests: &[SchedDest]) -> i64 {
    dests.iter().map(|d| i64::from(d.weight)).fold(0, i64::max)
}

impl WrrScheduler {
    /// `init_service`: cursor on the head, `cw = mw`.
    pub fn new(dests: &[SchedDest]) -> Self {
        let di = gcd_weight(dests);
        let mw = max_weight(dests) - (di - 1);
        WrrScheduler {
            cursor: None,
            cw: mw,
            mw,
            di,
        }
    }

    /// `(cursor, cw, mw, di)`, for tests and diagnostics.
    pub fn state(&self) -> (Option<DestId>, i64, i64, i64) {
        (self.cursor, self.cw, self.mw, self.di)
    }

    /// The kernel's `dest_changed` hook, run for add, delete and edit.
    fn recompute(&mut self, dests: &[SchedDest]) {
        self.cursor = None;
        self.di = gcd_weight(dests);
        self.mw = max_weight(dests) - (self.di - 1);
        if self.cw > self.mw || self.cw == 0 {
            self.cw = self.mw;
        } else if self.di > 1 {
            self.cw = (self.cw / self.di) * self.di + 1;
        }
    }

    fn eligible(&self, d: &SchedDest) -> bool {
        !d.overloaded && i64::from(d.weight) >= self.cw
    }
}

impl Scheduler for WrrScheduler {
    fn name(&self) -> &'static str {
        "wrr"
    }

    fn dests_changed(&mut self, change: DestChange, dests: &[SchedDest]) {
        match change {
            // The kernel calls its hook after the server is unlinked, which is
            // what `Removed` reports; `Removing` still has it in the list.
            DestChange::Removing { .. } => {}
            DestChange::Added(_) | DestChange::Removed(_) | DestChange::Updated(_) => {
                self.recompute(dests)
            }
        }
    }

    fn schedule(&mut self, dests: &[SchedDest], _ctx: &mut SchedContext<'_>) -> Option<usize> {
        let n = dests.len();
        // Position of the cursor; a server that vanished unannounced counts
        // as the head.
        let mut pos: Option<usize> = self
            .cursor
            .and_then(|id| dests.iter().position(|d| d.id == id));
        if self.mw <= 0 {
            self.cursor = pos.and_then(|i| dests.get(i)).map(|d| d.id);
            return None;
        }
        let last = pos;
        let mut stop: Option<usize> = None;
        let mut last_pass = false;
        let mut restarted = false;
        // Highest weight a scan can accept; above it (and above `di`, where
        // the last-pass logic kicks in) whole levels fail without effect.
        let best = dests
            .iter()
            .filter(|d| !d.overloaded)
            .map(|d| i64::from(d.weight))
            .fold(0, i64::max);
        let floor = best.max(self.di);
        loop {
            if pos.is_none() && stop.is_none() && self.cw > floor + self.di {
                // Skip to the lowest level still above `floor`; the levels in
                // between would each fail a full scan and change nothing else.
                let skip = (self.cw - floor - 1) / self.di;
                self.cw -= skip * self.di;
            }
            let from = pos.map_or(0, |i| i + 1);
            for j in from..n {
                let Some(d) = dests.get(j) else { break };
                if self.eligible(d) {
                    self.cursor = Some(d.id);
                    return Some(j);
                }
                if stop == Some(j) {
                    self.cursor = Some(d.id);
                    return None;
                }
            }
            pos = None;
            self.cw -= self.di;
            if self.cw <= 0 {
                self.cw = self.mw;
                if last_pass || last.is_none() {
                    self.cursor = None;
                    return None;
                }
                restarted = true;
            }
            last_pass = self.cw <= self.di;
            if last_pass && restarted && last.is_some() {
                stop = last;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SchedFlags;
    use crate::sched::{SchedPacket, XorShiftRng};
    use proptest::prelude::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn dest(id: u64, weight: i32, overloaded: bool) -> SchedDest {
        SchedDest {
            id: DestId(id),
            addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, id as u8)),
            port: 80,
            weight,
            last_weight: weight,
            overloaded,
            active: 0,
            inactive: 0,
        }
    }

    fn run(s: &mut WrrScheduler, dests: &[SchedDest]) -> Option<usize> {
        let mut rng = XorShiftRng::new(1);
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let mut ctx = SchedContext {
            packet: SchedPacket {
                saddr: ip,
                sport: 1,
                daddr: ip,
                dport: 80,
            },
            flags: SchedFlags::default(),
            now_secs: 0,
            rng: &mut rng,
            lblc_expiration_secs: 86400,
            lblcr_expiration_secs: 86400,
        };
        s.schedule(dests, &mut ctx)
    }

    /// The kernel's loop level by level, without the skip, on indices.
    /// Returns the pick and updates (cursor index, cw).
    fn literal(
        cursor: &mut Option<usize>,
        cw: &mut i64,
        mw: i64,
        di: i64,
        dests: &[SchedDest],
    ) -> Option<usize> {
        let mut dest = *cursor;
        if mw == 0 {
            return None;
        }
        let last = dest;
        let (mut stop, mut last_pass, mut restarted) = (None, false, false);
        loop {
            let from = dest.map_or(0, |i| i + 1);
            for (j, d) in dests.iter().enumerate().skip(from) {
                if !d.overloaded && i64::from(d.weight) >= *cw {
                    *cursor = Some(j);
                    return Some(j);
                }
                if stop == Some(j) {
                    *cursor = Some(j);
                    return None;
                }
            }
            dest = None;
            *cw -= di;
            if *cw <= 0 {
                *cw = mw;
                if last_pass || last.is_none() {
                    *cursor = None;
                    return None;
                }
                restarted = true;
            }
            last_pass = *cw <= di;
            if last_pass && restarted && last.is_some() {
                stop = last;
            }
        }
    }

    #[test]
    fn gcd_and_max() {
        let d = [dest(1, 4, false), dest(2, 6, false), dest(3, 0, false)];
        let s = WrrScheduler::new(&d);
        assert_eq!(s.state(), (None, 6 - 1, 6 - 1, 2));
        let s = WrrScheduler::new(&[]);
        assert_eq!(s.state(), (None, 0, 0, 1));
    }

    #[test]
    fn all_overloaded_with_huge_weights_is_fast() {
        let d = [
            dest(1, i32::MAX, true),
            dest(2, i32::MAX - 1, true),
            dest(3, 1, false),
        ];
        let mut s = WrrScheduler::new(&d);
        assert_eq!(run(&mut s, &d), Some(2));
        assert_eq!(run(&mut s, &d), Some(2));
        let all = [dest(1, i32::MAX, true), dest(2, 7, true)];
        s.recompute(&all);
        assert_eq!(run(&mut s, &all), None);
        assert_eq!(run(&mut s, &all), None);
    }

    proptest! {
        #[test]
        fn skip_matches_literal_walk(
            spec in prop::collection::vec((0i32..12, any::<bool>()), 1..6),
            flips in prop::collection::vec((0usize..6, 0i32..12, any::<bool>(), any::<bool>()), 0..40),
        ) {
            let mut dests: Vec<SchedDest> = spec
                .iter()
                .enumerate()
                .map(|(i, &(w, o))| dest(i as u64 + 1, w, o))
                .collect();
            let mut s = WrrScheduler::new(&dests);
            let (mut lc, mut lcw, mut lmw, mut ldi) = (None::<usize>, s.mw, s.mw, s.di);
            for (k, &(idx, w, o, is_edit)) in flips.iter().enumerate() {
                let idx = idx % dests.len();
                if is_edit {
                    dests[idx].weight = w;
                    s.dests_changed(DestChange::Updated(dests[idx].id), &dests);
                    // The hook, written out again for the literal side.
                    let pos: Vec<i64> =
                        dests.iter().map(|d| i64::from(d.weight)).filter(|&w| w > 0).collect();
                    ldi = pos.iter().fold(0, |g, &w| gcd(g, w)).max(1);
                    lmw = pos.iter().copied().max().unwrap_or(0) - (ldi - 1);
                    lc = None;
                    if lcw > lmw || lcw == 0 {
                        lcw = lmw;
                    } else if ldi > 1 {
                        lcw = lcw / ldi * ldi + 1;
                    }
                } else {
                    // Overload flips are not reported to schedulers.
                    dests[idx].overloaded = o;
                }
                let got = run(&mut s, &dests);
                let want = literal(&mut lc, &mut lcw, lmw, ldi, &dests);
                prop_assert_eq!(got, want, "step {}", k);
                prop_assert_eq!(s.cw, lcw, "cw at step {}", k);
                prop_assert_eq!(
                    s.cursor,
                    lc.map(|i| dests[i].id),
                    "cursor at step {}", k
                );
            }
        }
    }
}
