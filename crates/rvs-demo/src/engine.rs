//! The engine-only walkthrough (`rvs-demo --engine`): the seed's LVS-NAT
//! commands run through rvsadm's real command line against an in-process
//! engine, and each client connection is a real TCP exchange (SYN,
//! SYN-ACK, ACK, request, FIN, ...) fed to the engine as Ethernet frames.
//! It prints the commands and their output like a shell session, and for
//! every connection the real server it reached and the rewritten
//! addresses of the first packet. It needs no root and no network
//! namespaces.

use anyhow::{bail, Result};
use rvs_api::LocalDirector;
use rvs_core::conn::EngineTime;
use rvs_core::{PacketMeta, Route, Verdict};
use rvs_wire::testframe::FrameBuilder;
use rvs_wire::{EthernetFrame, Ipv4Packet, TcpFlags, TcpPacket};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

const VIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
const CIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);

struct Demo {
    director: LocalDirector,
    now_ms: u64,
    next_port: u16,
}

fn names(rip: IpAddr) -> &'static str {
    match rip {
        IpAddr::V4(a) if a == Ipv4Addr::new(203, 0, 113, 11) => "RS1-web1",
        IpAddr::V4(a) if a == Ipv4Addr::new(203, 0, 113, 12) => "RS2-web2",
        _ => "?",
    }
}

fn tuple(frame: &[u8]) -> Option<(SocketAddr, SocketAddr)> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let ip = Ipv4Packet::new_checked(frame.get(eth.header_len()..)?).ok()?;
    let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
    Some((
        SocketAddr::new(IpAddr::V4(ip.src_addr()), tcp.src_port()),
        SocketAddr::new(IpAddr::V4(ip.dst_addr()), tcp.dst_port()),
    ))
}

impl Demo {
    fn ipvsadm(&mut self, line: &str) -> Result<()> {
        println!("[director]# {line}");
        let args: Vec<String> = line.split_whitespace().skip(1).map(String::from).collect();
        let mut out = Vec::new();
        let mut err = Vec::new();
        let rc = rvsadm::run(
            &args,
            "ipvsadm",
            &mut self.director,
            &mut std::io::empty(),
            &mut out,
            &mut err,
            &rvsadm::NumericResolver,
        );
        print!("{}", String::from_utf8_lossy(&out));
        eprint!("{}", String::from_utf8_lossy(&err));
        if rc != 0 {
            bail!("`{line}` exited {rc}");
        }
        Ok(())
    }

    fn send(&mut self, frame: &mut Vec<u8>) -> Verdict {
        self.director.engine.process(
            frame,
            PacketMeta::default(),
            EngineTime::from_millis(self.now_ms),
        )
    }

    /// One `curl http://VIP/`: a full short TCP connection through NAT.
    fn curl(&mut self) -> Result<()> {
        self.next_port += 1;
        self.now_ms += 1000;
        let client = SocketAddr::new(IpAddr::V4(CIP), self.next_port);
        let vip = SocketAddr::new(IpAddr::V4(VIP), 80);
        let mut syn = FrameBuilder::tcp(client, vip).build();
        let Verdict::Forward(tx) = self.send(&mut syn) else {
            bail!("SYN was not forwarded");
        };
        let Route::Routed { next_hop: rip } = tx.route else {
            bail!("NAT must route");
        };
        let Some((s, d)) = tuple(&syn) else {
            bail!("rewritten SYN does not parse");
        };
        let rs = SocketAddr::new(rip, 80);
        let flow: [(SocketAddr, SocketAddr, TcpFlags, &[u8]); 6] = [
            (rs, client, TcpFlags::SYN | TcpFlags::ACK, b""),
            (client, vip, TcpFlags::ACK, b""),
            (
                client,
                vip,
                TcpFlags::ACK | TcpFlags::PSH,
                b"GET / HTTP/1.1\r\n\r\n",
            ),
            (
                rs,
                client,
                TcpFlags::ACK | TcpFlags::PSH | TcpFlags::FIN,
                b"RS",
            ),
            (client, vip, TcpFlags::ACK | TcpFlags::FIN, b""),
            (rs, client, TcpFlags::ACK, b""),
        ];
        let mut reply_src = None;
        for (src, dst, flags, payload) in flow {
            let mut f = FrameBuilder::tcp(src, dst)
                .flags(flags)
                .payload(payload)
                .build();
            if !matches!(self.send(&mut f), Verdict::Forward(_)) {
                bail!("{flags} {src} -> {dst} was not forwarded");
            }
            if src == rs && reply_src.is_none() {
                reply_src = tuple(&f).map(|(s, _)| s);
            }
        }
        let reply = reply_src.map_or("?".to_string(), |a| a.to_string());
        println!(
            "[client]# curl http://{VIP}/   ->  {:<9} (SYN {s} -> {d}; reply from {rip}:80 leaves as {reply})",
            names(rip)
        );
        Ok(())
    }
}

/// Run the engine-only walkthrough.
pub fn run() -> Result<()> {
    let mut demo = Demo {
        director: LocalDirector::new(),
        now_ms: 0,
        next_port: 47570,
    };
    println!("# LVS-NAT (seed walkthrough): VIP {VIP}, real servers 203.0.113.11 and 203.0.113.12");
    println!("# Frames go through the rvs engine; ipvsadm commands through rvsadm.\n");
    demo.ipvsadm("ipvsadm -A -t 198.51.100.10:80 -s rr")?;
    demo.ipvsadm("ipvsadm -a -t 198.51.100.10:80 -r 203.0.113.11 -m")?;
    demo.ipvsadm("ipvsadm -a -t 198.51.100.10:80 -r 203.0.113.12 -m")?;
    demo.ipvsadm("ipvsadm -L -n")?;
    for _ in 0..4 {
        demo.curl()?;
    }
    demo.ipvsadm("ipvsadm -L -n")?;
    println!("\n# Switch to weighted round robin, 3:1");
    demo.ipvsadm("ipvsadm -E -t 198.51.100.10:80 -s wrr")?;
    demo.ipvsadm("ipvsadm -e -t 198.51.100.10:80 -r 203.0.113.11 -m -w 3")?;
    demo.ipvsadm("ipvsadm -e -t 198.51.100.10:80 -r 203.0.113.12 -m -w 1")?;
    for _ in 0..8 {
        demo.curl()?;
    }
    demo.ipvsadm("ipvsadm -L -n")?;
    demo.ipvsadm("ipvsadm -L -n --stats")?;
    demo.ipvsadm("ipvsadm -L -c -n")?;
    println!("\n# Save, clear, restore");
    println!("[director]# ipvsadm -S -n > rules.save");
    let mut saved = Vec::new();
    let rc = rvsadm::run(
        &["-S".to_string(), "-n".to_string()],
        "ipvsadm",
        &mut demo.director,
        &mut std::io::empty(),
        &mut saved,
        &mut std::io::sink(),
        &rvsadm::NumericResolver,
    );
    if rc != 0 {
        bail!("save failed");
    }
    print!("{}", String::from_utf8_lossy(&saved));
    demo.ipvsadm("ipvsadm -C")?;
    demo.ipvsadm("ipvsadm -L -n")?;
    println!("[director]# ipvsadm -R < rules.save");
    let rc = rvsadm::run(
        &["-R".to_string()],
        "ipvsadm",
        &mut demo.director,
        &mut saved.as_slice(),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
        &rvsadm::NumericResolver,
    );
    if rc != 0 {
        bail!("restore failed");
    }
    demo.ipvsadm("ipvsadm -L -n")?;
    for _ in 0..4 {
        demo.curl()?;
    }
    Ok(())
}
