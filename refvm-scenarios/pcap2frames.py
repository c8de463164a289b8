#!/usr/bin/env python3
"""pcap2frames.py - turn packets.sh's output folder into the committed text fixture.

usage: pcap2frames.py OUTDIR FIXTURE.txt

OUTDIR is run.sh's -o folder (with pcap/*.pcap, pcap/macs.txt and
transcript.txt). The fixture lists, per mode (nat, dr, tun), the director's
ipvsadm rules, the MAC of every interface, and every captured frame in
capture-time order:

    mode nat
    mac n-dir eth0 86:59:6b:16:88:07
    rule ipvsadm -A -t 198.51.100.10:80 -s rr
    conn TCP 01:52 TIME_WAIT 198.51.100.2:40001 198.51.100.10:80 203.0.113.11:80
    frame 3 eth0 in +0.000123 <hex of the whole Ethernet frame>

The number after `frame` counts frames within the mode; the time is seconds
since the mode's first frame.
"""
import re
import struct
import sys
from pathlib import Path

PREFIX = {"n-": "nat", "d-": "dr", "t-": "tun", "s-": "sctp"}


def read_pcap(path):
    data = path.read_bytes()
    if len(data) < 24:
        return []
    magic = struct.unpack("<I", data[:4])[0]
    if magic == 0xA1B2C3D4:
        endian, scale = "<", 1e-6
    elif magic == 0xA1B23C4D:
        endian, scale = "<", 1e-9
    elif magic == 0xD4C3B2A1:
        endian, scale = ">", 1e-6
    else:
        raise SystemExit(f"{path}: not a pcap file")
    link = struct.unpack(endian + "I", data[20:24])[0]
    if link != 1:
        raise SystemExit(f"{path}: link type {link}, want Ethernet")
    off, frames = 24, []
    while off + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(endian + "IIII", data[off:off + 16])
        off += 16
        frames.append((sec + frac * scale, data[off:off + incl]))
        off += incl
    return frames


def main():
    out, fixture = Path(sys.argv[1]), Path(sys.argv[2])
    pc = out / "pcap"
    transcript = (out / "transcript.txt").read_text()
    kernel = re.search(r"^# packets: (.*)$", transcript, re.M)
    lines = [
        "# Real-kernel IPVS frames captured on the director by refvm-scenarios/packets.sh",
        "# (tcpdump -Q in / -Q out on each director interface, IPv4 only), converted by",
        "# refvm-scenarios/pcap2frames.py. Replayed by crates/rvs-core/tests/packets_refvm.rs.",
        f"# {kernel.group(1) if kernel else 'kernel unknown'}",
        "# format: 'mode M', then 'mac NS IF MAC', 'rule IPVSADM-ARGS', 'frame N IF in|out +SECONDS HEX',",
        "# and 'conn ROW' = the director's ipvsadm -L -c -n rows right after the capture",
    ]
    rules = {}
    for m in re.finditer(r"^### \d+ \[([a-z]-)dir\] (ipvsadm -[Aa] .*)$", transcript, re.M):
        rules.setdefault(PREFIX[m.group(1)], []).append(m.group(2))
    conns = {}
    for m in re.finditer(r"^### \d+ \[([a-z]-)dir\] ipvsadm -L -c -n\n(.*?)^--- rc=", transcript, re.M | re.S):
        for row in m.group(2).splitlines():
            if row.startswith(("TCP", "UDP", "SCTP", "IP ")):
                conns.setdefault(PREFIX[m.group(1)], []).append("conn " + " ".join(row.split()))
    macs = {}
    for l in (pc / "macs.txt").read_text().splitlines():
        mode, ns, ifname, mac = l.split()
        macs.setdefault(mode, []).append(f"mac {ns} {ifname} {mac}")
    for mode in ("nat", "dr", "tun", "sctp"):
        if mode not in macs:
            continue
        lines.append(f"mode {mode}")
        lines.extend(macs.get(mode, []))
        lines.extend(f"rule {r}" for r in rules.get(mode, []))
        lines.extend(conns.get(mode, []))
        frames = []
        for p in sorted(pc.glob(f"{mode}-*.pcap")):
            _, ifname, direction = p.stem.split("-")
            frames.extend((t, ifname, direction, b) for t, b in read_pcap(p))
        frames.sort(key=lambda f: f[0])
        t0 = frames[0][0] if frames else 0.0
        for i, (t, ifname, direction, b) in enumerate(frames):
            lines.append(f"frame {i} {ifname} {direction} +{t - t0:.6f} {b.hex()}")
    fixture.parent.mkdir(parents=True, exist_ok=True)
    fixture.write_text("\n".join(lines) + "\n")
    print(f"{fixture}: {sum(1 for l in lines if l.startswith('frame'))} frames")


if __name__ == "__main__":
    main()
