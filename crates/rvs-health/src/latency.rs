//! Check latency: how long probe attempts take, per real server, as a
//! cumulative histogram (Prometheus style: fixed upper bounds, counts of
//! attempts at or below each) plus the newest value.
//!
//! Pure data: the caller measures each attempt and records it.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Upper bounds of the buckets, in seconds (the last bucket, `+Inf`, is
/// implicit: it is `count`). They span a loopback connect (well under a
/// millisecond) to keepalived's default `connect_timeout` (5 s).
pub const BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 1.0, 5.0,
];

/// Latency of one server's check attempts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyHistogram {
    /// Attempts at or below each bound of [`BUCKETS`] (cumulative).
    pub buckets: [u64; BUCKETS.len()],
    /// All attempts.
    pub count: u64,
    /// Sum of all attempts, seconds.
    pub sum: f64,
    /// The newest attempt.
    pub last: Option<Duration>,
}

impl LatencyHistogram {
    pub fn new() -> LatencyHistogram {
        LatencyHistogram::default()
    }

    /// Count one attempt that took `d`.
    pub fn record(&mut self, d: Duration) {
        let secs = d.as_secs_f64();
        for (bound, n) in BUCKETS.iter().zip(self.buckets.iter_mut()) {
            if secs <= *bound {
                *n += 1;
            }
        }
        self.count += 1;
        self.sum += secs;
        self.last = Some(d);
    }

    /// Mean attempt duration; `None` before the first.
    pub fn mean(&self) -> Option<Duration> {
        if self.count == 0 {
            return None;
        }
        Some(Duration::from_secs_f64(self.sum / self.count as f64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_bounds_inclusive() {
        let mut h = LatencyHistogram::new();
        assert_eq!(h.mean(), None);
        h.record(Duration::from_micros(300)); // <= 0.0005
        h.record(Duration::from_millis(1)); // exactly 0.001
        h.record(Duration::from_millis(30)); // <= 0.1
        h.record(Duration::from_secs(7)); // above every bound
        assert_eq!(h.buckets, [1, 2, 2, 2, 2, 2, 3, 3, 3, 3]);
        assert_eq!(h.count, 4);
        assert_eq!(h.last, Some(Duration::from_secs(7)));
        // (0.0003 + 0.001 + 0.03 + 7) / 4 = 1.757825
        let mean = h.mean().expect("mean").as_secs_f64();
        assert!((mean - 1.757_825).abs() < 1e-9, "{mean}");
    }
}
