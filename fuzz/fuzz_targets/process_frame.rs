//! Fuzz target: arbitrary frames through `Engine::process`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvs_core::conn::EngineTime;
use rvs_core::{
    Command, DestConfig, Engine, Family, FwdMethod, PacketMeta, Protocol, ServiceConfig,
    ServiceKey, TunnelCsum, TunnelKind, Verdict,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn add(e: &mut Engine, key: ServiceKey, persistent: Option<u32>, ops: bool) {
    let mut c = ServiceConfig::new(key);
    c.scheduler = "rr".into();
    c.persistent = persistent;
    c.ops = ops;
    let _ = e.apply(Command::AddService(c));
}

fn dest(e: &mut Engine, key: ServiceKey, addr: IpAddr, port: u16, fwd: FwdMethod) {
    let mut d = DestConfig::new(addr, port);
    d.fwd = fwd;
    let _ = e.apply(Command::AddDest {
        service: key,
        dest: d,
    });
}

fn engine() -> Engine {
    let vip = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10));
    let rs1 = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 11));
    let rs2 = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 12));
    let mut e = Engine::new();
    e.set_tunnel_source(Ipv4Addr::new(203, 0, 113, 1));
    let tcp = |port| ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: vip,
        port,
    };
    add(&mut e, tcp(80), None, false);
    dest(&mut e, tcp(80), rs1, 8080, FwdMethod::Masq);
    dest(&mut e, tcp(80), rs2, 80, FwdMethod::Masq);
    add(&mut e, tcp(443), Some(300), false);
    dest(&mut e, tcp(443), rs1, 443, FwdMethod::Route);
    let udp = ServiceKey::Addr {
        protocol: Protocol::Udp,
        addr: vip,
        port: 53,
    };
    add(&mut e, udp, None, true);
    let tun = FwdMethod::Tunnel {
        kind: TunnelKind::Ipip,
        csum: TunnelCsum::NoCsum,
    };
    dest(&mut e, udp, rs2, 53, tun);
    let vip6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10));
    let v6 = ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: vip6,
        port: 80,
    };
    add(&mut e, v6, None, false);
    dest(
        &mut e,
        v6,
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x11)),
        80,
        FwdMethod::Masq,
    );
    add(
        &mut e,
        ServiceKey::Fwmark {
            mark: 1,
            family: Family::V4,
        },
        Some(60),
        true,
    );
    for name in ["schedule_icmp", "cache_bypass", "nat_icmp_send"] {
        let _ = e.apply(Command::SetKnob {
            name: name.into(),
            value: 1,
        });
    }
    e
}

fuzz_target!(|data: &[u8]| {
    let Some((&mark, frame)) = data.split_first() else {
        return;
    };
    let mut e = engine();
    let before = e.stats();
    let mut f = frame.to_vec();
    let meta = PacketMeta {
        fwmark: u32::from(mark % 3),
        ingress: 0,
    };
    let v = e.process(&mut f, meta, EngineTime::from_secs(1));
    let after = e.stats();
    let drops = |s: &rvs_core::EngineStats| {
        s.drop_malformed
            + s.drop_no_dest
            + s.drop_dest_unavailable
            + s.drop_table_full
            + s.drop_ttl
            + s.drop_too_big
            + s.drop_no_tunnel_source
    };
    if matches!(v, Verdict::Drop { .. }) {
        assert_eq!(drops(&after), drops(&before) + 1);
    }
    // Replay the output (a forwarded or reply frame) too.
    let _ = e.process(&mut f, meta, EngineTime::from_secs(2));
});
