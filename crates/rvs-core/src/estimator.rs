//! The kernel's rate estimator (`ip_vs_est.c`): every 2 seconds the
//! counters are sampled and an exponentially weighted moving average with
//! weight 1/4 is updated. Rates are kept scaled (connections and packets
//! by 2^10, bytes by 2^5) and rounded when read, as the kernel does, so
//! `--rate` shows the same numbers for the same traffic.

use crate::model::{Counters, Rates};
use serde::{Deserialize, Serialize};

/// Sampling interval of the estimator, seconds.
pub const ESTIMATOR_INTERVAL_SECS: u64 = 2;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Estimator {
    last: Counters,
    cps: i64,
    inpps: i64,
    outpps: i64,
    inbps: i64,
    outbps: i64,
}

fn ewma(avg: &mut i64, rate: i64) {
    *avg += (rate - *avg) >> 2;
}

impl Estimator {
    /// Start estimating from the current counter values.
    pub fn new(current: Counters) -> Estimator {
        Estimator {
            last: current,
            ..Estimator::default()
        }
    }

    /// One 2-second sample.
    pub fn sample(&mut self, now: &Counters) {
        let delta = |new: u64, old: u64| new.wrapping_sub(old) as i64;
        // Per 2 s: scaled to 2^10 per second is << 9; bytes to 2^5 per second is << 4.
        ewma(&mut self.cps, delta(now.conns, self.last.conns) << 9);
        ewma(&mut self.inpps, delta(now.inpkts, self.last.inpkts) << 9);
        ewma(&mut self.outpps, delta(now.outpkts, self.last.outpkts) << 9);
        ewma(&mut self.inbps, delta(now.inbytes, self.last.inbytes) << 4);
        ewma(
            &mut self.outbps,
            delta(now.outbytes, self.last.outbytes) << 4,
        );
        self.last = *now;
    }

    /// The rates as `ipvsadm --rate` reports them.
    pub fn rates(&self) -> Rates {
        let pps = |v: i64| (v.max(0) as u64 + 0x1FF) >> 10;
        let bps = |v: i64| (v.max(0) as u64 + 0xF) >> 5;
        Rates {
            cps: pps(self.cps),
            inpps: pps(self.inpps),
            outpps: pps(self.outpps),
            inbps: bps(self.inbps),
            outbps: bps(self.outbps),
        }
    }

    /// Forget the history (after `-Z`).
    pub fn reset(&mut self, current: Counters) {
        *self = Estimator::new(current);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_rate_converges() {
        let mut c = Counters::default();
        let mut e = Estimator::new(c);
        for _ in 0..60 {
            // 100 conns/s, 1000 bytes/s for 2 s.
            c.conns += 200;
            c.inbytes += 2000;
            e.sample(&c);
        }
        let r = e.rates();
        assert_eq!(r.cps, 100);
        assert_eq!(r.inbps, 1000);
        assert_eq!(r.outpps, 0);
    }

    #[test]
    fn first_sample_is_a_quarter() {
        let mut c = Counters::default();
        let mut e = Estimator::new(c);
        c.inpkts = 8; // 4 pkt/s over 2 s -> avg = 4/4 = 1
        e.sample(&c);
        assert_eq!(e.rates().inpps, 1);
    }
}
