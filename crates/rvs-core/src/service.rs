//! Virtual services and their real servers: configuration, the kernel's
//! list order (newest real server first), connection counts, OVERLOAD
//! thresholds, counters and rate estimators.

use crate::estimator::Estimator;
use crate::model::{Counters, DestConfig, DestId, ServiceConfig};
use crate::sched::{SchedDest, Scheduler};
use crate::snapshot::{DestSnapshot, ServiceSnapshot};
use std::net::IpAddr;

/// A real server inside a service.
#[derive(Debug)]
pub struct Dest {
    pub id: DestId,
    pub config: DestConfig,
    /// The weight before the last change (`last_weight`, used by `mh`).
    pub last_weight: i32,
    pub active: u32,
    pub inactive: u32,
    /// Persistence templates pointing here.
    pub persist: u32,
    pub overloaded: bool,
    pub stats: Counters,
    pub estimator: Estimator,
}

impl Dest {
    pub fn new(id: DestId, config: DestConfig) -> Dest {
        Dest {
            id,
            last_weight: config.weight,
            config,
            active: 0,
            inactive: 0,
            persist: 0,
            overloaded: false,
            stats: Counters::default(),
            estimator: Estimator::default(),
        }
    }

    pub fn sched_view(&self) -> SchedDest {
        SchedDest {
            id: self.id,
            addr: self.config.addr,
            port: self.config.port,
            weight: self.config.weight,
            last_weight: self.last_weight,
            overloaded: self.overloaded,
            active: self.active,
            inactive: self.inactive,
        }
    }

    /// Total connections as the threshold rules count them.
    fn total_conns(&self) -> u64 {
        u64::from(self.active) + u64::from(self.inactive)
    }

    /// The kernel's bind-time rule: OVERLOAD is set when an upper threshold
    /// exists and active+inactive reached it.
    pub fn check_overload_on_bind(&mut self) {
        let u = u64::from(self.config.u_threshold);
        if u != 0 && self.total_conns() >= u {
            self.overloaded = true;
        }
    }

    /// The kernel's unbind-time rule for clearing OVERLOAD.
    pub fn check_overload_on_unbind(&mut self) {
        if !self.overloaded {
            return;
        }
        let l = u64::from(self.config.l_threshold);
        let u = u64::from(self.config.u_threshold);
        let total = self.total_conns();
        let clear = if l != 0 {
            total < l
        } else if u != 0 {
            total * 4 < u * 3
        } else {
            true
        };
        if clear {
            self.overloaded = false;
        }
    }

    /// Apply an edit (`-e`); returns nothing, mirrors `__ip_vs_update_dest`.
    ///
    /// When a threshold changes, OVERLOAD is re-evaluated against the
    /// current counts, as 6.1.190+ does ("ipvs: properly update the overload
    /// flag on dest edit"; the refvm `fo-132` capture depends on it): set at
    /// or above the upper threshold, cleared below the lower one (75% of
    /// the upper, rounded up, when unset) or when there is no upper one,
    /// and left alone in between.
    pub fn update(&mut self, config: DestConfig) {
        if config.u_threshold != self.config.u_threshold
            || config.l_threshold != self.config.l_threshold
        {
            let u = u64::from(config.u_threshold);
            let total = self.total_conns();
            if u == 0 {
                self.overloaded = false;
            } else if total >= u {
                self.overloaded = true;
            } else {
                let l = match u64::from(config.l_threshold) {
                    0 => u - (u >> 2),
                    l => l,
                };
                if total < l {
                    self.overloaded = false;
                }
            }
        }
        if config.weight != self.config.weight {
            self.last_weight = self.config.weight;
        }
        if config.weight > 0 {
            self.last_weight = config.weight;
        }
        self.config = config;
    }

    pub fn snapshot(&self) -> DestSnapshot {
        DestSnapshot {
            config: self.config.clone(),
            active: self.active,
            inactive: self.inactive,
            persist: self.persist,
            overloaded: self.overloaded,
            stats: self.stats,
            rates: self.estimator.rates(),
        }
    }
}

/// A virtual service.
#[derive(Debug)]
pub struct Service {
    pub config: ServiceConfig,
    /// Real servers in kernel order: newest first.
    pub dests: Vec<Dest>,
    pub scheduler: Box<dyn Scheduler>,
    pub stats: Counters,
    pub estimator: Estimator,
}

impl Service {
    pub fn sched_views(&self) -> Vec<SchedDest> {
        self.dests.iter().map(Dest::sched_view).collect()
    }

    pub fn dest_index(&self, addr: IpAddr, port: u16) -> Option<usize> {
        self.dests
            .iter()
            .position(|d| d.config.addr == addr && d.config.port == port)
    }

    pub fn dest_index_by_id(&self, id: DestId) -> Option<usize> {
        self.dests.iter().position(|d| d.id == id)
    }

    pub fn snapshot(&self) -> ServiceSnapshot {
        ServiceSnapshot {
            config: self.config.clone(),
            stats: self.stats,
            rates: self.estimator.rates(),
            dests: self.dests.iter().map(Dest::snapshot).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn dest(u: u32, l: u32) -> Dest {
        let mut c = DestConfig::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1)), 80);
        c.u_threshold = u;
        c.l_threshold = l;
        Dest::new(DestId(1), c)
    }

    #[test]
    fn overload_set_at_upper_threshold_counting_inactive() {
        let mut d = dest(4, 0);
        d.active = 1;
        d.inactive = 2;
        d.check_overload_on_bind();
        assert!(!d.overloaded);
        d.inactive = 3;
        d.check_overload_on_bind();
        assert!(d.overloaded);
    }

    #[test]
    fn overload_cleared_by_three_quarter_rule_without_lower() {
        let mut d = dest(8, 0);
        d.overloaded = true;
        d.active = 6; // 6*4 = 24, not < 24
        d.check_overload_on_unbind();
        assert!(d.overloaded);
        d.active = 5; // 20 < 24
        d.check_overload_on_unbind();
        assert!(!d.overloaded);
    }

    #[test]
    fn overload_cleared_below_lower_threshold() {
        let mut d = dest(8, 3);
        d.overloaded = true;
        d.active = 3;
        d.check_overload_on_unbind();
        assert!(d.overloaded);
        d.active = 2;
        d.check_overload_on_unbind();
        assert!(!d.overloaded);
    }

    #[test]
    fn edit_raising_upper_threshold_clears_overload() {
        let mut d = dest(8, 0);
        d.overloaded = true;
        let mut c = d.config.clone();
        c.u_threshold = 8;
        d.update(c.clone());
        assert!(d.overloaded, "same threshold keeps OVERLOAD");
        c.u_threshold = 9;
        d.update(c);
        assert!(!d.overloaded);
    }

    #[test]
    fn quiesce_keeps_last_weight() {
        let mut d = dest(0, 0);
        let mut c = d.config.clone();
        c.weight = 5;
        d.update(c.clone());
        assert_eq!(d.last_weight, 5);
        c.weight = 0;
        d.update(c);
        assert_eq!(d.last_weight, 5);
    }
}
