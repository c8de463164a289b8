#!/bin/bash
# packets.sh - real-kernel packet captures of IPVS forwarding (runs INSIDE the
# reference VM). Three independent topologies, each in its own namespaces, so
# each has its own IPVS table:
#
#   NAT  n-client 198.51.100.2/24 --veth-- n-dir eth0 198.51.100.10/24 (VIP)
#                                          n-dir eth1 203.0.113.1/24 (DIP)
#                                             --[n-sw br0]-- n-rs1 203.0.113.11 (gw .1)
#        TCP 198.51.100.10:80 rr -> 203.0.113.11:80 -m
#        TCP 198.51.100.10:81 rr, no real server (ICMP port unreachable)
#        one connection to :80, one SYN to :81, then one SYN with TTL 1 to :80
#   DR   one segment 198.51.100.0/24: d-client .2, d-dir eth0 .1 + VIP .10/32,
#        d-rs1 .11 with the VIP on lo (arp_ignore/arp_announce)
#        TCP 198.51.100.10:80 rr -> 198.51.100.11 -g ; one connection
#   TUN  one segment: t-client .2, t-dir eth0 .1 + VIP .10/32, t-rs1 .11 with
#        the VIP on tunl0 (rp_filter off) ; TCP :80 rr -> 198.51.100.11 -i
#
# On the director every interface is captured twice with tcpdump -w, once per
# direction (-Q in / -Q out), only IPv4: $REFVM_OUT/pcap/<mode>-<if>-<in|out>.pcap.
# $REFVM_OUT/pcap/macs.txt lists "<mode> <ns> <if> <mac>" for every interface.
# Checksum and segmentation offloads are off on every sender, so captured
# egress frames carry the checksums the kernel computed.
# refvm-scenarios/pcap2frames.py turns the pcaps into the committed fixture.
. "$(dirname "$0")/lib.sh"

PC=$OUT/pcap; mkdir -p "$PC"
: > "$PC/macs.txt"
VIP=198.51.100.10
TCPDUMPS=()

nooffload() { # NS IF...
  local ns=$1 i; shift
  for i in "$@"; do
    ip netns exec "$ns" ethtool -K "$i" tx off gso off tso off gro off >/dev/null 2>&1 || true
  done; }
macs() { # MODE NS IF...
  local m=$1 ns=$2 i; shift 2
  for i in "$@"; do echo "$m $ns $i $(ip netns exec "$ns" cat /sys/class/net/$i/address)" >> "$PC/macs.txt"; done; }
# dump MODE NS IF... : start one capture per interface and direction
dump() {
  local m=$1 ns=$2 i d; shift 2
  for i in "$@"; do for d in in out; do
    ip netns exec "$ns" tcpdump -Z root -n -U -s 0 -i "$i" -Q "$d" -w "$PC/$m-$i-$d.pcap" ip 2>>"$PC/tcpdump.log" &
    TCPDUMPS+=($!)
  done; done
  sleep 2; }
undump() { sleep 1; local p; for p in "${TCPDUMPS[@]}"; do kill -INT "$p" 2>/dev/null; done
  for p in "${TCPDUMPS[@]}"; do wait "$p" 2>/dev/null; done; TCPDUMPS=(); }

note "packets: kernel $(uname -r), $(ipvsadm --version 2>&1 | head -1), $(tcpdump --version 2>&1 | head -1)"

# ------------------------------------------------------------------ NAT
for n in n-client n-dir n-sw n-rs1; do mkns $n; done
bridge_ns n-sw br0
veth n-client eth0 n-dir eth0
port n-sw br0 n-dir eth1 p-dir
port n-sw br0 n-rs1 eth0 p-rs1
nsx n-client ip addr add 198.51.100.2/24 dev eth0
nsx n-dir    ip addr add $VIP/24 dev eth0
nsx n-dir    ip addr add 203.0.113.1/24 dev eth1
nsx n-rs1    ip addr add 203.0.113.11/24 dev eth0
nsx n-rs1    ip route add default via 203.0.113.1
nsx n-dir    sysctl -qw net.ipv4.ip_forward=1
nooffload n-client eth0; nooffload n-dir eth0 eth1; nooffload n-rs1 eth0
macs nat n-client eth0; macs nat n-dir eth0 eth1; macs nat n-rs1 eth0
web n-rs1 RS1-web1; wait_listen n-rs1 80
cap n-dir nat-add-svc      ipvsadm -A -t $VIP:80 -s rr
cap n-dir nat-add-rs1      ipvsadm -a -t $VIP:80 -r 203.0.113.11:80 -m
cap n-dir nat-add-svc81    ipvsadm -A -t $VIP:81 -s rr
# warm the neighbour caches so no ARP exchange delays the first SYN
nsx n-client ping -c1 -W2 $VIP >/dev/null; nsx n-dir ping -c1 -W2 203.0.113.11 >/dev/null
dump nat n-dir eth0 eth1
cap n-client nat-curl      "${CURL[@]}" --local-port 40001 http://$VIP/
sleep 1
cap n-client nat-noreal    "${CURL[@]}" --max-time 2 --local-port 40002 http://$VIP:81/
sleep 1
nsx n-client sysctl -qw net.ipv4.ip_default_ttl=1
cap n-client nat-ttl1      "${CURL[@]}" --max-time 2 --local-port 40003 http://$VIP/
nsx n-client sysctl -qw net.ipv4.ip_default_ttl=64
undump
cap n-dir nat-conns        ipvsadm -L -c -n
cap n-dir nat-stats        ipvsadm -L -n --stats

# ------------------------------------------------------------------ DR / TUN
onesegment() { # PREFIX : client, dir, rs1 on one bridge
  local p=$1 n
  for n in client dir sw rs1; do mkns $p-$n; done
  bridge_ns $p-sw br0
  port $p-sw br0 $p-client eth0 p-client
  port $p-sw br0 $p-dir    eth0 p-dir
  port $p-sw br0 $p-rs1    eth0 p-rs1
  nsx $p-client ip addr add 198.51.100.2/24 dev eth0
  nsx $p-dir    ip addr add 198.51.100.1/24 dev eth0
  nsx $p-dir    ip addr add $VIP/32 dev eth0
  nsx $p-rs1    ip addr add 198.51.100.11/24 dev eth0
  nsx $p-rs1    sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
                           net.ipv4.conf.eth0.arp_ignore=1 net.ipv4.conf.eth0.arp_announce=2
  nooffload $p-client eth0; nooffload $p-dir eth0; nooffload $p-rs1 eth0
}
onesegment d
nsx d-rs1 ip addr add $VIP/32 dev lo
macs dr d-client eth0; macs dr d-dir eth0; macs dr d-rs1 eth0
web d-rs1 RS1-web1; wait_listen d-rs1 80
cap d-dir dr-add-svc       ipvsadm -A -t $VIP:80 -s rr
cap d-dir dr-add-rs1       ipvsadm -a -t $VIP:80 -r 198.51.100.11 -g
nsx d-client ping -c1 -W2 $VIP >/dev/null; nsx d-dir ping -c1 -W2 198.51.100.11 >/dev/null
dump dr d-dir eth0
cap d-client dr-curl       "${CURL[@]}" --local-port 40011 http://$VIP/
undump
cap d-dir dr-conns         ipvsadm -L -c -n

onesegment t
nsx t-rs1 sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0 net.ipv4.conf.default.rp_filter=0
nsx t-rs1 ip link set tunl0 up
nsx t-rs1 sysctl -qw net.ipv4.conf.tunl0.rp_filter=0
nsx t-rs1 ip addr add $VIP/32 dev tunl0
macs tun t-client eth0; macs tun t-dir eth0; macs tun t-rs1 eth0
web t-rs1 RS1-web1; wait_listen t-rs1 80
cap t-dir tun-add-svc      ipvsadm -A -t $VIP:80 -s rr
cap t-dir tun-add-rs1      ipvsadm -a -t $VIP:80 -r 198.51.100.11 -i
nsx t-client ping -c1 -W2 $VIP >/dev/null; nsx t-dir ping -c1 -W2 198.51.100.11 >/dev/null
dump tun t-dir eth0
cap t-client tun-curl      "${CURL[@]}" --local-port 40021 http://$VIP/
undump
cap t-dir tun-conns        ipvsadm -L -c -n
# ------------------------------------------------------------------ SCTP through NAT (optional)
# The VM's initramfs has no sctp.ko and no SCTP-capable tool; run.sh can pass
# them in: -i .../udp_tunnel.ko -i .../ip6_udp_tunnel.ko -i .../sctp.ko
# -i sctp-pingpong (static build of refvm-scenarios/sctp-pingpong.c).
J=$(dirname "$0")
if [[ -f $J/sctp.ko && -x $J/sctp-pingpong ]]; then
  modprobe libcrc32c 2>/dev/null
  for m in udp_tunnel ip6_udp_tunnel sctp; do insmod "$J/$m.ko" 2>>"$PC/tcpdump.log"; done
  for n in s-client s-dir s-sw s-rs1; do mkns $n; done
  bridge_ns s-sw br0
  veth s-client eth0 s-dir eth0
  port s-sw br0 s-dir eth1 p-dir
  port s-sw br0 s-rs1 eth0 p-rs1
  nsx s-client ip addr add 198.51.100.2/24 dev eth0
  nsx s-dir    ip addr add $VIP/24 dev eth0
  nsx s-dir    ip addr add 203.0.113.1/24 dev eth1
  nsx s-rs1    ip addr add 203.0.113.11/24 dev eth0
  nsx s-rs1    ip route add default via 203.0.113.1
  nsx s-dir    sysctl -qw net.ipv4.ip_forward=1
  nooffload s-client eth0; nooffload s-dir eth0 eth1; nooffload s-rs1 eth0
  for x in s-client:eth0 s-dir:eth0 s-dir:eth1 s-rs1:eth0; do
    ip netns exec ${x%%:*} ethtool -K ${x#*:} tx-checksum-sctp off >/dev/null 2>&1 || true; done
  macs sctp s-client eth0; macs sctp s-dir eth0 eth1; macs sctp s-rs1 eth0
  ip netns exec s-rs1 "$J/sctp-pingpong" server 3869 2>>"$PC/tcpdump.log" &
  SCTPSRV=$!
  sleep 1
  cap s-dir sctp-add-svc   ipvsadm -A --sctp-service $VIP:3868 -s rr
  cap s-dir sctp-add-rs1   ipvsadm -a --sctp-service $VIP:3868 -r 203.0.113.11:3869 -m
  nsx s-client ping -c1 -W2 $VIP >/dev/null; nsx s-dir ping -c1 -W2 203.0.113.11 >/dev/null
  dump sctp s-dir eth0 eth1
  cap s-client sctp-ping   timeout 10 "$J/sctp-pingpong" client $VIP 3868 40031
  sleep 2
  undump
  cap s-dir sctp-conns     ipvsadm -L -c -n
  kill $SCTPSRV 2>/dev/null
fi
cap - sysctl-vs            sh -c 'for f in pmtu_disc schedule_icmp nat_icmp_send; do echo "$f $(cat /proc/sys/net/ipv4/vs/$f 2>/dev/null)"; done'

cleanup_web
ls -l "$PC"
echo "packets done: $_capn commands captured"
