//! The IPVS sysctls (`/proc/sys/net/ipv4/vs/`) that change forwarding
//! decisions, with the kernel's defaults. Set by name through
//! `Command::SetKnob`, listed by name for `rvsadm --sysctl` and lossless save.

use crate::command::ApplyError;
use serde::{Deserialize, Serialize};

/// Engine settings mirroring the kernel's IPVS sysctls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Knobs {
    /// Expire a connection on its next packet when its real server is gone (0).
    pub expire_nodest_conn: bool,
    /// Invalidate persistence templates whose real server has weight 0 (0).
    pub expire_quiescent_template: bool,
    /// Bit 0: reschedule a reused client port when safe; bit 1: also from FIN_WAIT (1).
    pub conn_reuse_mode: u8,
    /// Create connections on any TCP packet, not only SYN (0).
    pub sloppy_tcp: bool,
    /// Create connections on any SCTP chunk, not only INIT (0).
    pub sloppy_sctp: bool,
    /// Schedule ICMP errors that match no connection (0).
    pub schedule_icmp: bool,
    /// Answer DF packets above the path MTU with "fragmentation needed" (1).
    pub pmtu_disc: bool,
    /// With no real server for a fwmark service, forward to the original destination (0).
    pub cache_bypass: bool,
    /// Send ICMP port unreachable for NAT replies with no connection (0).
    pub nat_icmp_send: bool,
    /// lblc entry expiry, seconds (24 h).
    pub lblc_expiration: u64,
    /// lblcr set expiry, seconds (24 h).
    pub lblcr_expiration: u64,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            expire_nodest_conn: false,
            expire_quiescent_template: false,
            conn_reuse_mode: 1,
            sloppy_tcp: false,
            sloppy_sctp: false,
            schedule_icmp: false,
            pmtu_disc: true,
            cache_bypass: false,
            nat_icmp_send: false,
            lblc_expiration: 24 * 60 * 60,
            lblcr_expiration: 24 * 60 * 60,
        }
    }
}

/// Every knob name, in the order listings print them.
pub const KNOB_NAMES: &[&str] = &[
    "cache_bypass",
    "conn_reuse_mode",
    "expire_nodest_conn",
    "expire_quiescent_template",
    "lblc_expiration",
    "lblcr_expiration",
    "nat_icmp_send",
    "pmtu_disc",
    "schedule_icmp",
    "sloppy_sctp",
    "sloppy_tcp",
];

fn flag(value: i64) -> Result<bool, ApplyError> {
    match value {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(ApplyError::Invalid),
    }
}

impl Knobs {
    /// Read a knob by its sysctl name.
    pub fn get(&self, name: &str) -> Option<i64> {
        Some(match name {
            "expire_nodest_conn" => i64::from(self.expire_nodest_conn),
            "expire_quiescent_template" => i64::from(self.expire_quiescent_template),
            "conn_reuse_mode" => i64::from(self.conn_reuse_mode),
            "sloppy_tcp" => i64::from(self.sloppy_tcp),
            "sloppy_sctp" => i64::from(self.sloppy_sctp),
            "schedule_icmp" => i64::from(self.schedule_icmp),
            "pmtu_disc" => i64::from(self.pmtu_disc),
            "cache_bypass" => i64::from(self.cache_bypass),
            "nat_icmp_send" => i64::from(self.nat_icmp_send),
            "lblc_expiration" => self.lblc_expiration as i64,
            "lblcr_expiration" => self.lblcr_expiration as i64,
            _ => return None,
        })
    }

    /// Check a value without changing anything.
    pub fn validate(&self, name: &str, value: i64) -> Result<(), ApplyError> {
        let mut copy = *self;
        copy.set(name, value)
    }

    /// Set a knob by its sysctl name.
    pub fn set(&mut self, name: &str, value: i64) -> Result<(), ApplyError> {
        match name {
            "expire_nodest_conn" => self.expire_nodest_conn = flag(value)?,
            "expire_quiescent_template" => self.expire_quiescent_template = flag(value)?,
            "conn_reuse_mode" => {
                self.conn_reuse_mode = u8::try_from(value)
                    .ok()
                    .filter(|v| *v <= 3)
                    .ok_or(ApplyError::Invalid)?
            }
            "sloppy_tcp" => self.sloppy_tcp = flag(value)?,
            "sloppy_sctp" => self.sloppy_sctp = flag(value)?,
            "schedule_icmp" => self.schedule_icmp = flag(value)?,
            "pmtu_disc" => self.pmtu_disc = flag(value)?,
            "cache_bypass" => self.cache_bypass = flag(value)?,
            "nat_icmp_send" => self.nat_icmp_send = flag(value)?,
            "lblc_expiration" | "lblcr_expiration" => {
                let v = u64::try_from(value)
                    .ok()
                    .filter(|v| *v > 0)
                    .ok_or(ApplyError::Invalid)?;
                if name == "lblc_expiration" {
                    self.lblc_expiration = v;
                } else {
                    self.lblcr_expiration = v;
                }
            }
            _ => return Err(ApplyError::UnknownKnob(name.to_string())),
        }
        Ok(())
    }

    /// Knobs whose value differs from the kernel default, for lossless save.
    pub fn non_default(&self) -> Vec<(&'static str, i64)> {
        let def = Knobs::default();
        KNOB_NAMES
            .iter()
            .filter_map(|n| {
                let v = self.get(n)?;
                (Some(v) != def.get(n)).then_some((*n, v))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_round_trips() {
        let mut k = Knobs::default();
        for n in KNOB_NAMES {
            let v = k.get(n).expect("listed knob exists");
            k.set(n, v).expect("default value is valid");
        }
        assert_eq!(k, Knobs::default());
        assert!(k.non_default().is_empty());
    }

    #[test]
    fn bad_values_are_refused_and_change_nothing() {
        let mut k = Knobs::default();
        assert_eq!(k.set("pmtu_disc", 2), Err(ApplyError::Invalid));
        assert_eq!(k.set("conn_reuse_mode", 4), Err(ApplyError::Invalid));
        assert!(matches!(k.set("nope", 1), Err(ApplyError::UnknownKnob(_))));
        assert_eq!(k, Knobs::default());
        k.set("expire_nodest_conn", 1).expect("valid");
        assert_eq!(k.non_default(), vec![("expire_nodest_conn", 1)]);
    }
}
