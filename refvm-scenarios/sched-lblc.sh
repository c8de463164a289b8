#!/bin/bash
# sched-lblc.sh - lblc / lblcr oracles with real traffic on the real 6.1 IPVS
# (runs INSIDE the reference VM). Same LVS-NAT topology as sched.sh; the
# locality schedulers key on the destination address, so each test is a
# firewall-mark service over four VIPs:
#
#   client eth0: 198.51.100.100..163/24
#      | veth
#   director eth0: 198.51.100.10/24 + 198.51.100.32..35/32 (VIPs A B C D)
#     iptables mangle: tcp to 198.51.100.32/30 dport 81 -> mark 2 (lblc)
#                                             dport 82 -> mark 3 (lblcr)
#   director eth1: 203.0.113.1/24 --[sw: br0]-- rs1 203.0.113.11, rs2 .12, rs3 .13
#
# Real servers are added rs1, rs2, rs3 (kernel order rs3 rs2 rs1), NAT to :80.
# Each request is "hold" (cgi-bin/hold, ESTABLISHED while the test runs, the
# real server read from the director's -L -c table) or "short" (one GET).
# Results: $REFVM_OUT/sched/<test>.txt, lines
#   N kind client_addr vip -> rs_addr | before: <rs1>:80 A/I  <rs2>:80 A/I  <rs3>:80 A/I
# with the ActiveConn/InActConn of the service's real servers just before the
# request; '# after:' holds the final counters.
. "$(dirname "$0")/lib.sh"

VIP=198.51.100.10
RS=(203.0.113.11 203.0.113.12 203.0.113.13)
RES=$OUT/sched; mkdir -p "$RES"

for n in client director sw rs1 rs2 rs3; do mkns $n; done
bridge_ns sw br0
veth client eth0 director eth0
port sw br0 director eth1 p-dir
for i in 1 2 3; do port sw br0 rs$i eth0 p-rs$i; done
for i in $(seq 100 163); do nsx client ip addr add 198.51.100.$i/24 dev eth0; done
nsx director ip addr add $VIP/24 dev eth0
for i in 32 33 34 35; do nsx director ip addr add 198.51.100.$i/32 dev eth0; done
nsx director ip addr add 203.0.113.1/24 dev eth1
for i in 1 2 3; do
  nsx rs$i ip addr add 203.0.113.1$i/24 dev eth0
  nsx rs$i ip route add default via 203.0.113.1
  web rs$i RS$i-web$i
done
for i in 1 2 3; do wait_listen rs$i 80; done
nsx director sysctl -qw net.ipv4.ip_forward=1
IPT=iptables-legacy; command -v $IPT >/dev/null || IPT=iptables
nsx director $IPT -t mangle -A PREROUTING -d 198.51.100.32/30 -p tcp --dport 81 -j MARK --set-mark 2
nsx director $IPT -t mangle -A PREROUTING -d 198.51.100.32/30 -p tcp --dport 82 -j MARK --set-mark 3

note "sched-lblc: kernel $(uname -r), $(ipvsadm --version 2>&1 | head -1)"
d() { cap director "$@"; }
rsaddr() { case "$1" in RS1-web1) echo 203.0.113.11;; RS2-web2) echo 203.0.113.12;;
                        RS3-web3) echo 203.0.113.13;; *) echo "?$1";; esac; }
vipof() { case "$1" in A) echo 198.51.100.32;; B) echo 198.51.100.33;; C) echo 198.51.100.34;; D) echo 198.51.100.35;; esac; }

snap() { # per-dest "addr active/inact" of service $1, in rs order
  local svc=$1 out; out=$(ip netns exec director ipvsadm -L -n $svc)
  local r; for r in "${RS[@]}"; do
    awk -v r="$r:80" '$1=="->" && $2==r {printf "%s %s/%s  ", r, $5, $6}' <<<"$out"; done; }

HOLDSEC=${HOLDSEC:-75}
HOLDS=(); HOLDCHK=()
# req KIND SVC VIPADDR VPORT CADDR
req() {
  local kind=$1 svc=$2 vip=$3 vp=$4 ca=$5 before; before=$(snap "$svc")
  local n=$(( $(grep -vc '^#' "$CUR") + 1 ))
  if [[ $kind == hold ]]; then
    local f=/tmp/hold-$(basename "$CUR" .txt)-$n
    ip netns exec client curl -sS --max-time $((HOLDSEC + 30)) --interface $ca -o $f.body \
         "http://$vip:$vp/cgi-bin/hold?$HOLDSEC" > $f.w 2>&1 &
    local pid=$!; HOLDS+=($pid)
    local i=0 dst=""
    while [[ -z $dst ]] && ((i < 50)); do
      kill -0 $pid 2>/dev/null || i=49
      dst=$(ip netns exec director ipvsadm -L -c -n | awk -v c="$ca" -v v="$vip:$vp" \
            '$3=="ESTABLISHED" && index($4, c":")==1 && $5==v {sub(/:[0-9]+$/, "", $6); print $6; exit}')
      [[ -z $dst ]] && { sleep 0.1; i=$((i+1)); }
    done
    HOLDCHK+=("$n $f $dst")
    echo "$n hold  $ca $vip -> ${dst:-FAIL (no ESTABLISHED entry)} | before: $before" >> "$CUR"
  else
    local out rc; out=$(ip netns exec client curl -sS --max-time 5 --interface $ca "http://$vip:$vp/" 2>&1); rc=$?
    if [[ $rc -eq 0 ]]; then echo "$n short $ca $vip -> $(rsaddr "$out") | before: $before" >> "$CUR"
    else echo "$n short $ca $vip -> FAIL rc=$rc | before: $before" >> "$CUR"; fi
  fi
  sleep 0.3; }

# loctest NAME MARK VPORT SCHED W1 W2 W3 PATTERN   (PATTERN: words like hA sB = kind+VIP letter)
loctest() {
  local name=$1 mark=$2 vp=$3 sch=$4 w1=$5 w2=$6 w3=$7 pat=$8 k=0 w i
  CUR=$RES/$name.txt
  d "$name-svc" ipvsadm -A -f $mark -s $sch
  { echo "# test: $name"
    echo "# $sch, weights $w1 $w2 $w3; fwmark $mark = tcp to 198.51.100.32/30 port $vp (VIPs A=.32 B=.33 C=.34 D=.35); held (open ${HOLDSEC}s) and short requests"
    echo "# rules, in the order they were applied:"
    echo "#   ipvsadm -A -f $mark -s $sch"; } > "$CUR"
  local ws=($w1 $w2 $w3)
  for i in 0 1 2; do
    d "$name-rs$((i+1))" ipvsadm -a -f $mark -r ${RS[$i]}:80 -m -w ${ws[$i]}
    echo "#   ipvsadm -a -f $mark -r ${RS[$i]}:80 -m -w ${ws[$i]}" >> "$CUR"
  done
  { echo "# kernel order of the dests (ipvsadm -L -n --nosort; newest first):"
    ip netns exec director ipvsadm -L -n --nosort -f $mark | sed 's/^/#   /'
    echo "# pattern: $pat (h = held, s = short; letter = VIP)"
    echo "# format: N kind client_addr vip -> rs_addr | before: <rs> <ActiveConn>/<InActConn> for rs1 rs2 rs3 just before the request"
  } >> "$CUR"
  for w in $pat; do
    local kind=short; [[ ${w:0:1} == h ]] && kind=hold
    req $kind "-f $mark" "$(vipof ${w:1:1})" $vp 198.51.100.$((100 + k))
    k=$((k+1))
  done
  echo "# after: $(snap "-f $mark")" >> "$CUR"
  d "$name-list" ipvsadm -L -n -f $mark
}

PAT="hA hA hA hB sA hC hB hB sC hD hA sB hC hD sD hA hB hC"
loctest lblc-211  2 81 lblc  2 1 1 "$PAT"
loctest lblcr-111 3 82 lblcr 1 1 1 "$PAT"

d final-list   ipvsadm -L -n
d final-conns  ipvsadm -L -c -n
wait "${HOLDS[@]}" 2>/dev/null
for h in "${HOLDCHK[@]}"; do
  read -r n f dst <<<"$h"; body=$(head -1 $f.body 2>/dev/null)
  [[ -z $body ]] && continue
  [[ $(rsaddr "$body") == "$dst" ]] || { echo "HOLD MISMATCH $f: body $body, table $dst" >&2; note "HOLD MISMATCH $f"; }
done
cleanup_web
echo "sched-lblc done: $_capn commands captured, $(ls $RES | wc -l) result files"
