//! One checker's state machine: when to probe next, how attempts, retries,
//! rise and fall turn probe outcomes into up/down transitions.
//!
//! Pure and time-injected: the caller asks [`Checker::next_probe_at`],
//! starts the probe when that time has come ([`Checker::start`]), and
//! reports the outcome with the time it arrived ([`Checker::finish`]).

use crate::timing::CheckTiming;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What one probe attempt found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProbeOutcome {
    /// The server answered as expected. `weight` is a dynamic weight
    /// (`misc_dynamic`); `detail` says what was seen (`HTTP 200`).
    Pass { weight: Option<u32>, detail: String },
    /// The attempt failed; `reason` says why (`connection refused`).
    Fail { reason: String },
}

impl ProbeOutcome {
    pub fn pass(detail: impl Into<String>) -> ProbeOutcome {
        ProbeOutcome::Pass {
            weight: None,
            detail: detail.into(),
        }
    }

    pub fn fail(reason: impl Into<String>) -> ProbeOutcome {
        ProbeOutcome::Fail {
            reason: reason.into(),
        }
    }

    pub fn is_pass(&self) -> bool {
        matches!(self, ProbeOutcome::Pass { .. })
    }

    /// The detail or the reason.
    pub fn text(&self) -> &str {
        match self {
            ProbeOutcome::Pass { detail, .. } => detail,
            ProbeOutcome::Fail { reason } => reason,
        }
    }
}

/// What [`Checker::finish`] changed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckUpdate {
    /// `Some(true)`: the checker went up; `Some(false)`: it went down.
    pub transition: Option<bool>,
    /// The attempt failed but will be retried (the check is not over).
    pub retrying: bool,
    /// A new dynamic weight was reported.
    pub weight_changed: bool,
}

/// One checker of one real server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checker {
    timing: CheckTiming,
    up: bool,
    /// Retries made in the current check.
    retries_done: u32,
    passes: u32,
    fails: u32,
    next_at: Duration,
    in_flight: bool,
    dynamic_weight: Option<u32>,
    last: Option<ProbeOutcome>,
    last_at: Option<Duration>,
}

impl Checker {
    /// A checker that considers the server `up` at first and probes first
    /// at `first_at`.
    pub fn new(timing: CheckTiming, up: bool, first_at: Duration) -> Checker {
        Checker {
            timing,
            up,
            retries_done: 0,
            passes: 0,
            fails: 0,
            next_at: first_at,
            in_flight: false,
            dynamic_weight: None,
            last: None,
            last_at: None,
        }
    }

    pub fn timing(&self) -> &CheckTiming {
        &self.timing
    }

    pub fn is_up(&self) -> bool {
        self.up
    }

    /// The weight the last passing `misc_dynamic` probe reported.
    pub fn dynamic_weight(&self) -> Option<u32> {
        self.dynamic_weight
    }

    /// The outcome of the last finished attempt and when it arrived.
    pub fn last(&self) -> Option<(&ProbeOutcome, Duration)> {
        match (&self.last, self.last_at) {
            (Some(o), Some(t)) => Some((o, t)),
            _ => None,
        }
    }

    /// When the next attempt should start; `None` while one is running.
    pub fn next_probe_at(&self) -> Option<Duration> {
        (!self.in_flight).then_some(self.next_at)
    }

    /// Start an attempt if one is due at `now`. Returns whether it did;
    /// the caller then runs the probe, bounded by `connect_timeout`.
    pub fn start(&mut self, now: Duration) -> bool {
        if self.in_flight || now < self.next_at {
            return false;
        }
        self.in_flight = true;
        true
    }

    /// Whether an attempt is running.
    pub fn in_flight(&self) -> bool {
        self.in_flight
    }

    /// Report the outcome of the running attempt, arrived at `now`.
    pub fn finish(&mut self, now: Duration, outcome: ProbeOutcome) -> CheckUpdate {
        let mut update = CheckUpdate::default();
        if !self.in_flight {
            return update;
        }
        self.in_flight = false;
        match &outcome {
            ProbeOutcome::Pass { weight, .. } => {
                self.retries_done = 0;
                self.fails = 0;
                self.passes = self.passes.saturating_add(1);
                if *weight != self.dynamic_weight && weight.is_some() {
                    self.dynamic_weight = *weight;
                    update.weight_changed = true;
                }
                if !self.up && self.passes >= self.timing.rise {
                    self.up = true;
                    update.transition = Some(true);
                }
                self.next_at = now.saturating_add(self.timing.delay_loop);
            }
            ProbeOutcome::Fail { .. } => {
                if self.up && self.retries_done < self.timing.retry {
                    self.retries_done += 1;
                    self.next_at = now.saturating_add(self.timing.delay_before_retry);
                    update.retrying = true;
                } else {
                    self.retries_done = 0;
                    self.passes = 0;
                    self.fails = self.fails.saturating_add(1);
                    if self.up && self.fails >= self.timing.fall {
                        self.up = false;
                        update.transition = Some(false);
                    }
                    self.next_at = now.saturating_add(self.timing.delay_loop);
                }
            }
        }
        self.last = Some(outcome);
        self.last_at = Some(now);
        update
    }
}
