//! ARP for IPv4 over Ethernet (RFC 826): a view of the 28-byte packet and a
//! writer, enough for a director to answer who-has for its VIPs.
//!
//! Other hardware or protocol types are reported through the raw fields and
//! refused by [`ArpPacket::new_checked`].

use std::net::Ipv4Addr;

use crate::bytes::{array_at, set_bytes, set_u16, set_u8, u16_at, u8_at};
use crate::error::{need, Layer, WireError};
use crate::ethernet::MacAddr;

mod field {
    pub const HTYPE: usize = 0;
    pub const PTYPE: usize = 2;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: usize = 6;
    pub const SHA: usize = 8;
    pub const SPA: usize = 14;
    pub const THA: usize = 18;
    pub const TPA: usize = 24;
    pub const LEN: usize = 28;
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = field::LEN;

/// ARP operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArpOperation {
    /// 1
    Request,
    /// 2
    Reply,
    /// Anything else.
    Unknown(u16),
}

impl From<u16> for ArpOperation {
    fn from(v: u16) -> Self {
        match v {
            1 => ArpOperation::Request,
            2 => ArpOperation::Reply,
            o => ArpOperation::Unknown(o),
        }
    }
}

impl From<ArpOperation> for u16 {
    fn from(o: ArpOperation) -> u16 {
        match o {
            ArpOperation::Request => 1,
            ArpOperation::Reply => 2,
            ArpOperation::Unknown(v) => v,
        }
    }
}

/// A zero-copy view of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Wrap without checking (getters read zeros past the end).
    pub const fn new_unchecked(buffer: T) -> Self {
        ArpPacket { buffer }
    }

    /// Wrap after checking length and that this is Ethernet (1) / IPv4
    /// (0x0800) with address lengths 6 and 4.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        let buf = p.buffer.as_ref();
        need(Layer::Arp, buf, field::LEN)?;
        if u16_at(buf, field::HTYPE) != 1 {
            return Err(WireError::Unsupported {
                layer: Layer::Arp,
                field: "hardware type",
                value: u32::from(u16_at(buf, field::HTYPE)),
            });
        }
        if u16_at(buf, field::PTYPE) != 0x0800 {
            return Err(WireError::Unsupported {
                layer: Layer::Arp,
                field: "protocol type",
                value: u32::from(u16_at(buf, field::PTYPE)),
            });
        }
        if u8_at(buf, field::HLEN) != 6 || u8_at(buf, field::PLEN) != 4 {
            return Err(WireError::Unsupported {
                layer: Layer::Arp,
                field: "address length",
                value: u32::from(u16_at(buf, field::HLEN)),
            });
        }
        Ok(p)
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Request or reply.
    pub fn operation(&self) -> ArpOperation {
        u16_at(self.buffer.as_ref(), field::OPER).into()
    }

    /// Sender hardware address.
    pub fn sender_mac(&self) -> MacAddr {
        MacAddr(array_at(self.buffer.as_ref(), field::SHA))
    }

    /// Sender protocol address.
    pub fn sender_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(array_at::<4>(self.buffer.as_ref(), field::SPA))
    }

    /// Target hardware address.
    pub fn target_mac(&self) -> MacAddr {
        MacAddr(array_at(self.buffer.as_ref(), field::THA))
    }

    /// Target protocol address.
    pub fn target_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(array_at::<4>(self.buffer.as_ref(), field::TPA))
    }
}

/// Write an Ethernet/IPv4 ARP packet (28 bytes) into `out`; returns 28.
pub fn write_arp(
    out: &mut [u8],
    op: ArpOperation,
    sender_mac: MacAddr,
    sender_ip: Ipv4Addr,
    target_mac: MacAddr,
    target_ip: Ipv4Addr,
) -> Result<usize, WireError> {
    need(Layer::Output, out, field::LEN)?;
    set_u16(out, field::HTYPE, 1);
    set_u16(out, field::PTYPE, 0x0800);
    set_u8(out, field::HLEN, 6);
    set_u8(out, field::PLEN, 4);
    set_u16(out, field::OPER, op.into());
    set_bytes(out, field::SHA, &sender_mac.0);
    set_bytes(out, field::SPA, &sender_ip.octets());
    set_bytes(out, field::THA, &target_mac.0);
    set_bytes(out, field::TPA, &target_ip.octets());
    Ok(field::LEN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ethernet::{EtherType, EthernetFrame};
    use crate::fixtures::{hex, ARP_REPLY, ARP_REQUEST};

    #[test]
    fn captured_request_and_reply() {
        let req = hex(ARP_REQUEST);
        let f = EthernetFrame::new_checked(&req[..]).expect("frame");
        assert_eq!(f.ethertype(), EtherType::Arp);
        let a = ArpPacket::new_checked(f.payload()).expect("arp");
        assert_eq!(a.operation(), ArpOperation::Request);
        assert_eq!(a.sender_ip(), Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(a.target_ip(), Ipv4Addr::new(192, 0, 2, 2));
        assert_eq!(a.target_mac(), MacAddr::ZERO);

        let rep = hex(ARP_REPLY);
        let f = EthernetFrame::new_checked(&rep[..]).expect("frame");
        let a = ArpPacket::new_checked(f.payload()).expect("arp");
        assert_eq!(a.operation(), ArpOperation::Reply);
        assert_eq!(a.sender_mac().to_string(), "82:63:fe:85:c8:62");

        // Writing the reply from its fields gives the captured bytes.
        let mut out = [0u8; 28];
        write_arp(
            &mut out,
            ArpOperation::Reply,
            a.sender_mac(),
            a.sender_ip(),
            a.target_mac(),
            a.target_ip(),
        )
        .expect("room");
        assert_eq!(&out[..], &rep[14..]);
    }

    #[test]
    fn rejects_other_types() {
        let mut b = hex(ARP_REQUEST)[14..].to_vec();
        b[1] = 6; // IEEE 802 hardware type
        assert!(matches!(
            ArpPacket::new_checked(&b[..]),
            Err(WireError::Unsupported { .. })
        ));
        assert!(matches!(
            ArpPacket::new_checked(&b[..27]),
            Err(WireError::Truncated {
                need: 28,
                have: 27,
                ..
            })
        ));
    }
}
