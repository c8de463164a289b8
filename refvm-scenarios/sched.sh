#!/bin/bash
# sched.sh - scheduler oracles with real traffic on the real 6.1 IPVS (runs
# INSIDE the reference VM). LVS-NAT topology as in seed-nat.sh, plus many
# client addresses and, for dh, many VIPs behind one fwmark service:
#
#   client eth0: 198.51.100.2/24 + 198.51.100.100..163/24 (64 addresses)
#      | veth
#   director eth0: 198.51.100.10/24 (VIP) + 198.51.100.32..63/32 (dh VIPs, fwmark 1)
#   director eth1: 203.0.113.1/24 --[sw: br0]-- rs1 203.0.113.11, rs2 .12, rs3 .13
#                                              (httpd answering RS1-web1 / RS2-web2 / RS3-web3)
#
# Every test uses its own service (its own VIP port, NAT to RS port 80), so no
# test can reuse another's connection entries. Real servers are always added in
# the order rs1, rs2, rs3 (the kernel keeps them newest-first: rs3 rs2 rs1).
# Results: $REFVM_OUT/sched/<test>.txt (header lines start with '#'), see
# refvm-scenarios/README.md for the format. ipvsadm setup/listings are captured
# with lib.sh `cap` as usual.
. "$(dirname "$0")/lib.sh"

VIP=198.51.100.10
RS=(203.0.113.11 203.0.113.12 203.0.113.13)
RES=$OUT/sched; mkdir -p "$RES"

for n in client director sw rs1 rs2 rs3; do mkns $n; done
bridge_ns sw br0
veth client eth0 director eth0
port sw br0 director eth1 p-dir
for i in 1 2 3; do port sw br0 rs$i eth0 p-rs$i; done
nsx client   ip addr add 198.51.100.2/24 dev eth0
for i in $(seq 100 163); do nsx client ip addr add 198.51.100.$i/24 dev eth0; done
nsx director ip addr add $VIP/24 dev eth0
for i in $(seq 32 63); do nsx director ip addr add 198.51.100.$i/32 dev eth0; done
nsx director ip addr add 203.0.113.1/24 dev eth1
for i in 1 2 3; do
  nsx rs$i ip addr add 203.0.113.1$i/24 dev eth0
  nsx rs$i ip route add default via 203.0.113.1
  web rs$i RS$i-web$i
done
for i in 1 2 3; do wait_listen rs$i 80; done
nsx director sysctl -qw net.ipv4.ip_forward=1
IPT=iptables-legacy; command -v $IPT >/dev/null || IPT=iptables
nsx director $IPT -t mangle -A PREROUTING -d 198.51.100.32/27 -p tcp --dport 80 -j MARK --set-mark 1

note "sched: kernel $(uname -r), $(ipvsadm --version 2>&1 | head -1)"
d() { cap director "$@"; }

# rs name (from the body) -> address
rsaddr() { case "$1" in RS1-web1) echo 203.0.113.11;; RS2-web2) echo 203.0.113.12;;
                        RS3-web3) echo 203.0.113.13;; *) echo "?$1";; esac; }

# begin TEST "description" SVCARGS... : create the service, start the result file
CUR=""; RULES=()
begin() { CUR=$RES/$1.txt; local desc=$2; shift 2
  RULES=("-A $*")
  d "$(basename "$CUR" .txt)-svc" ipvsadm -A "$@" || { echo "svc failed: $*" >&2; }
  { echo "# test: $(basename "$CUR" .txt)"; echo "# $desc"; } > "$CUR"; }
# addrs SVCSPEC W1 W2 W3 [extra dest args] : add rs1..rs3 with weights, in that order
addrs() { local svc=$1; shift; local i
  for i in 0 1 2; do
    RULES+=("-a $svc -r ${RS[$i]}:80 -m -w $1")
    d "$(basename "$CUR" .txt)-rs$((i+1))" ipvsadm -a $svc -r ${RS[$i]}:80 -m -w $1
    shift
  done
  { echo "# rules, in the order they were applied:"
    printf '#   ipvsadm %s\n' "${RULES[@]}"
    echo "# kernel order of the dests (ipvsadm -L -n --nosort; newest first):"
    ip netns exec director ipvsadm -L -n --nosort $svc | sed 's/^/#   /'
  } >> "$CUR"; }


# a tiny per-request helper run by xargs in parallel (hash schedulers are
# stateless per request, so the order of requests does not matter for them)
cat > /tmp/req1.sh <<'R'
#!/bin/bash
# req1.sh IDX URL CADDR CPORT -> "IDX caddr cport -> rs" (or FAIL rc=N)
idx=$1 url=$2 ca=$3 cp=$4
out=$(curl -sS --max-time 5 --interface "$ca" --local-port "$cp" "$url" 2>/dev/null); rc=$?
case "$out" in RS1-web1) rs=203.0.113.11;; RS2-web2) rs=203.0.113.12;; RS3-web3) rs=203.0.113.13;;
  *) rs="FAIL rc=$rc";; esac
echo "$idx $ca $cp -> $rs"
R
chmod +x /tmp/req1.sh
PAR=${PAR:-3}
# hashtest NAME VPORT DESC SCHED-ARGS W1 W2 W3 MODE
#   MODE addr: client address 198.51.100.100+i, pinned port PBASE+i   (i = 0..63)
#   MODE port: client address 198.51.100.100,   pinned port PBASE+i
#   PBASE = 20000 + (VPORT-8000)*100, so no (address, port) pair is ever reused
hashtest() {
  local name=$1 vp=$2 desc=$3 sargs=$4 w1=$5 w2=$6 w3=$7 mode=$8 i pb
  pb=$((20000 + (vp - 8000) * 100))
  begin "$name" "$desc" -t $VIP:$vp $sargs
  addrs "-t $VIP:$vp" $w1 $w2 $w3
  echo "# client ports are pinned (curl --local-port); requests ran $PAR at a time" >> "$CUR"
  echo "# format: client_addr client_port -> rs_addr   (FAIL rc=N: no answer, curl rc 7 = refused)" >> "$CUR"
  for i in $(seq 0 63); do
    if [[ $mode == addr ]]; then echo "$i http://$VIP:$vp/ 198.51.100.$((100 + i)) $((pb + i))"
    else echo "$i http://$VIP:$vp/ 198.51.100.100 $((pb + i))"; fi
  done | ip netns exec client xargs -P "$PAR" -n 4 /tmp/req1.sh | sort -n | cut -d' ' -f2- >> "$CUR"
  d "$name-list" ipvsadm -L -n -t $VIP:$vp
}
if [[ ${PART:-all} != conn ]]; then
hashtest sh-111          8001 "sh, weights 1 1 1, key = client address" "-s sh" 1 1 1 addr
hashtest sh-211          8002 "sh, weights 2 1 1, key = client address" "-s sh" 2 1 1 addr
hashtest sh-011          8003 "sh, weights 0 1 1 (a weight-0 dest keeps its buckets: refused), key = client address" "-s sh" 0 1 1 addr
hashtest sh-port-fixaddr 8004 "sh -b sh-port, weights 1 1 1, one client address, port varies" "-s sh -b sh-port" 1 1 1 port
hashtest sh-port-both    8005 "sh -b sh-port, weights 1 1 1, address and port vary" "-s sh -b sh-port" 1 1 1 addr
hashtest mh-111          8006 "mh, weights 1 1 1, key = client address" "-s mh" 1 1 1 addr
hashtest mh-211          8007 "mh, weights 2 1 1, key = client address" "-s mh" 2 1 1 addr
hashtest mh-port-fixaddr 8008 "mh -b mh-port, weights 1 1 1, one client address, port varies" "-s mh -b mh-port" 1 1 1 port
hashtest mh-port-both    8009 "mh -b mh-port, weights 1 1 1, address and port vary" "-s mh -b mh-port" 1 1 1 addr

# dh: key = destination address; fwmark 1 covers VIPs 198.51.100.32..63 (tcp/80)
begin dh-111 "dh, weights 1 1 1, fwmark service 1 = tcp to 198.51.100.32/27 port 80, one client 198.51.100.2; key = destination (VIP)" -f 1 -s dh
addrs "-f 1" 1 1 1
echo "# client ports are pinned (curl --local-port 29000+k); requests ran $PAR at a time" >> "$CUR"
echo "# format: client_addr client_port -> rs_addr   vip=<destination address used>" >> "$CUR"
for i in $(seq 32 63); do echo "$i http://198.51.100.$i/ 198.51.100.2 $((29000 + i))"; done |
  ip netns exec client xargs -P "$PAR" -n 4 /tmp/req1.sh | sort -n |
  while read -r i rest; do echo "$rest   vip=198.51.100.$i"; done >> "$CUR"
d dh-111-list ipvsadm -L -n -f 1
fi
if [[ ${PART:-all} != hash ]]; then

# ------------------------------------------------------------ connection-count schedulers
snap() { # per-dest "addr active/inact" of service $1, in rs order
  local svc=$1 out; out=$(ip netns exec director ipvsadm -L -n $svc)
  local r; for r in "${RS[@]}"; do
    awk -v r="$r:80" '$1=="->" && $2==r {printf "%s %s/%s  ", r, $5, $6}' <<<"$out"; done; }
HOLDS=(); HOLDCHK=()
hreq() { # hreq KIND SVC VPORT CADDR : KIND=hold|short; line "N kind caddr -> rs | before: ..."
  local kind=$1 svc=$2 vp=$3 ca=$4 before; before=$(snap "$svc")
  local n=$(( $(grep -vc '^#' "$CUR") + 1 ))
  if [[ $kind == hold ]]; then
    local f=/tmp/hold-$(basename "$CUR" .txt)-$n
    ip netns exec client curl -sS --max-time $((HOLDSEC + 30)) --interface $ca -o $f.body \
         -w ' %{local_ip} %{local_port}\n' "http://$VIP:$vp/cgi-bin/hold?$HOLDSEC" > $f.w 2>&1 &
    local pid=$!; HOLDS+=($pid)
    # the CGI body arrives only when the hold ends, so read the chosen real
    # server from the director's connection table (unique client address)
    local i=0 dst=""
    while [[ -z $dst ]] && ((i < 50)); do   # stop early once curl exited (refused)
      kill -0 $pid 2>/dev/null || i=49
      dst=$(ip netns exec director ipvsadm -L -c -n | awk -v c="$ca" -v v="$VIP:$vp" \
            '$3=="ESTABLISHED" && index($4, c":")==1 && $5==v {sub(/:[0-9]+$/, "", $6); print $6; exit}')
      [[ -z $dst ]] && { sleep 0.1; i=$((i+1)); }
    done
    HOLDCHK+=("$n $f $dst")
    if [[ -n $dst ]]; then echo "$n hold  $ca -> $dst | before: $before" >> "$CUR"
    else echo "$n hold  $ca -> FAIL (no ESTABLISHED entry) | before: $before" >> "$CUR"; fi
  else
    local out rc; out=$(ip netns exec client curl -sS --max-time 5 --interface $ca "http://$VIP:$vp/" 2>&1); rc=$?
    if [[ $rc -eq 0 ]]; then echo "$n short $ca -> $(rsaddr "$out") | before: $before" >> "$CUR"
    else echo "$n short $ca -> FAIL rc=$rc | before: $before" >> "$CUR"; fi
  fi
  sleep 0.3; }
HOLDSEC=${HOLDSEC:-60}
conntest() { # NAME PORT SCHED W1 W2 W3 PATTERN(h/s letters)
  local name=$1 vp=$2 sch=$3 w1=$4 w2=$5 w3=$6 pat=$7 k=0 c
  begin "$name" "$sch, weights $w1 $w2 $w3; held (cgi-bin/hold, open ${HOLDSEC}s) and short requests" -t $VIP:$vp -s $sch
  addrs "-t $VIP:$vp" $w1 $w2 $w3
  echo "# pattern: $pat (h = held connection, s = short request)" >> "$CUR"
  echo "# format: N kind client_addr -> rs_addr | before: <rs> <ActiveConn>/<InActConn> for rs1 rs2 rs3 just before the request" >> "$CUR"
  for c in $(grep -o . <<<"$pat"); do
    [[ $c == h ]] && hreq hold "-t $VIP:$vp" $vp 198.51.100.$((100 + k)) || hreq short "-t $VIP:$vp" $vp 198.51.100.$((100 + k))
    k=$((k+1))
  done
  echo "# after: $(snap "-t $VIP:$vp")" >> "$CUR"
  d "$name-list" ipvsadm -L -n -t $VIP:$vp
}
PAT=hhhshhsshhhs
conntest lc-111  8101 lc  1 1 1 $PAT
conntest wlc-321 8102 wlc 3 2 1 $PAT
conntest sed-321 8103 sed 3 2 1 $PAT
conntest nq-321  8104 nq  3 2 1 $PAT
conntest wlc-111 8105 wlc 1 1 1 $PAT

# ovf: weights 2 1 1, only held connections, until refused
begin ovf-211 "ovf, weights 2 1 1; only held connections until the service refuses" -t $VIP:8201 -s ovf
addrs "-t $VIP:8201" 2 1 1
echo "# format: N kind client_addr -> rs_addr | before: <rs> <ActiveConn>/<InActConn> ..." >> "$CUR"
for k in $(seq 0 8); do hreq hold "-t $VIP:8201" 8201 198.51.100.$((100 + k)); done
echo "# after: $(snap "-t $VIP:8201")" >> "$CUR"
d ovf-211-list ipvsadm -L -n -t $VIP:8201

# fo: weights 1 3 2, then edits
begin fo-132 "fo, weights 1 3 2; then rs2 -w 0; then rs3 -x 1 (u-threshold; its 3 inactive conns already reach it); then a held and short requests" -t $VIP:8202 -s fo
addrs "-t $VIP:8202" 1 3 2
echo "# format: N kind client_addr -> rs_addr | before: ...; '# edit:' lines are ipvsadm edits applied at that point" >> "$CUR"
for k in 0 1 2; do hreq short "-t $VIP:8202" 8202 198.51.100.$((100 + k)); done
echo "# edit: ipvsadm -e -t $VIP:8202 -r 203.0.113.12:80 -m -w 0" >> "$CUR"
d fo-132-rs2-w0 ipvsadm -e -t $VIP:8202 -r 203.0.113.12:80 -m -w 0
for k in 3 4 5; do hreq short "-t $VIP:8202" 8202 198.51.100.$((100 + k)); done
echo "# edit: ipvsadm -e -t $VIP:8202 -r 203.0.113.13:80 -m -w 2 -x 1" >> "$CUR"
d fo-132-rs3-x1 ipvsadm -e -t $VIP:8202 -r 203.0.113.13:80 -m -w 2 -x 1
hreq hold "-t $VIP:8202" 8202 198.51.100.106
for k in 7 8 9; do hreq short "-t $VIP:8202" 8202 198.51.100.$((100 + k)); done
echo "# after: $(snap "-t $VIP:8202")" >> "$CUR"
d fo-132-list ipvsadm -L -n -t $VIP:8202 --thresholds

fi
d final-list   ipvsadm -L -n
d final-stats  ipvsadm -L -n --stats
d final-pconn  ipvsadm -L -n --persistent-conn
d final-save   ipvsadm -S -n
# wait for the held connections to end, then cross-check their bodies against
# the connection-table answers (mismatches go to stderr and the transcript)
wait "${HOLDS[@]}" 2>/dev/null
for h in "${HOLDCHK[@]}"; do
  read -r n f dst <<<"$h"; body=$(head -1 $f.body 2>/dev/null)
  [[ -z $body ]] && continue          # refused (ovf) or failed
  [[ $(rsaddr "$body") == "$dst" ]] || { echo "HOLD MISMATCH $f: body $body, table $dst" >&2; note "HOLD MISMATCH $f"; }
done
cleanup_web
echo "sched done: $_capn commands captured, $(ls $RES | wc -l) result files"
