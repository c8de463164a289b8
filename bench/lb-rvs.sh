#!/usr/bin/env bash
# rvs as the `custom` load balancer of the L4 bench harness (/work/shared/bench).
#
#   lb-rvs.sh run    LB_START (foreground style): starts rvsd in the director
#                    namespace, records which packet path it took (XDP or
#                    NFQUEUE, from its log), adds VIP:VPORT (rr) with every RIP as
#                    a NAT (-m) real server through rvsadm, waits until the
#                    steering for them is installed (XDP service map and/or the
#                    NFQUEUE rules), then waits on rvsd. TERM stops rvsd cleanly
#                    (it removes its iptables rules).
#   lb-rvs.sh stop   LB_STOP: saves `rvsadm -L -n --stats` and the director's
#                    counters to rvs-stats.log, TERMs the rvsd PID recorded by
#                    `run`, waits for it to exit and checks that its rules are gone
#                    (KILL after 5 s).
#
# Packet path: RVS_DATAPATH=auto|xdp|nfqueue is passed as `rvsd --datapath`
# (unset: rvsd's default, i.e. $RVSD_DATAPATH, else auto = XDP where it loads,
# NFQUEUE otherwise); RVS_XDP_MODE=auto|native|generic as `--xdp-mode`;
# RVSD_EXTRA_ARGS (split on blanks) is appended, e.g. "--xdp-fastpath". The path
# rvsd actually took is written to rvs-datapath.log (first line `datapath: xdp`
# or `datapath: nfqueue`, then rvsd's own lines about it) and to lb.log.
#
# Both run inside NS_DIR with the harness's topology in the environment (VIP, VPORT,
# RIPS, RPORT, RS_COUNT, LB_STATE_DIR...); in pinned mode the harness has already
# applied `taskset -c $LB_CPUS`, which rvsd and its threads inherit. Binaries come
# from RVS_BIN_DIR (default: target/release of this repository). Use through
# bench/l4-side-by-side.sh, or by hand from /work/shared/bench:
#   LB_NAME=rvs LB_START="exec /work/main/bench/lb-rvs.sh run" \
#   LB_STOP="/work/main/bench/lb-rvs.sh stop" \
#     ./run.sh -p direct nft-dnat custom
# Logs (copied into the harness's raw/ results): lb.log (this script and rvsadm),
# rvsd.log (rvsd's stderr), rvs-datapath.log (the path taken), rvs-stats.log
# (the table with counters at the end).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${RVS_BIN_DIR:=$here/../target/release}"
RVSD=$RVS_BIN_DIR/rvsd
RVSADM=$RVS_BIN_DIR/rvsadm
: "${LB_STATE_DIR:?run by the bench harness (LB_STATE_DIR not set)}"
SOCK=$LB_STATE_DIR/rvsd.sock
RVSD_LOG=$LB_STATE_DIR/rvsd.log
PIDFILE=$LB_STATE_DIR/rvsd.pid
READY_TIMEOUT=${RVS_READY_TIMEOUT:-20}   # seconds for socket and steering each
DP_LOG=$LB_STATE_DIR/rvs-datapath.log
: "${RVS_DATAPATH:=}" "${RVS_XDP_MODE:=}"

say() { printf 'lb-rvs: %s\n' "$*" >&2; }
adm() { RVS_SOCKET=$SOCK "$RVSADM" "$@"; }

# alive PID: true while PID exists and is not a zombie.
alive() {
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# The packet path rvsd's log says it took: xdp, nfqueue, none, or empty (not
# decided yet). rvsd logs "datapath: xdp on IFACE (mode), ..." or
# "datapath: nfqueue N on ..." once its datapath runs.
datapath_taken() {
  if grep -qE '^rvsd: datapath: xdp on ' "$RVSD_LOG" 2>/dev/null; then echo xdp
  elif grep -qE '^rvsd: datapath: nfqueue [0-9]+ on ' "$RVSD_LOG" 2>/dev/null; then echo nfqueue
  elif grep -qE '^rvsd: (no datapath|datapath disabled)' "$RVSD_LOG" 2>/dev/null; then echo none
  fi
}

# Rules of rvsd's datapath in the raw table (empty when there are none).
rvs_rules() { iptables -w -t raw -S 2>/dev/null | grep -F 'RVS-' || true; }

# stop_rvsd PID: TERM, wait up to 5 s for a clean exit, then KILL.
stop_rvsd() {
  local pid=$1 i
  alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do alive "$pid" || return 0; sleep 0.1; done
  say "rvsd $pid still running 5 s after TERM: KILL (its rules stay, bypassed)"
  kill -KILL "$pid" 2>/dev/null || true
}

run() {
  [ -x "$RVSD" ] && [ -x "$RVSADM" ] ||
    { say "missing $RVSD or $RVSADM (cargo build --release -p rvsd -p rvsadm)"; exit 2; }
  if [ -n "$(rvs_rules)" ]; then
    say "RVS- rules already present in $NS_DIR; refusing to start"; exit 1
  fi
  local -a opts=(--socket "$SOCK")
  case "$RVS_DATAPATH" in
    '') ;;
    auto | xdp | nfqueue) opts+=(--datapath "$RVS_DATAPATH") ;;
    *) say "RVS_DATAPATH must be auto, xdp or nfqueue (got '$RVS_DATAPATH')"; exit 2 ;;
  esac
  case "$RVS_XDP_MODE" in
    '') ;;
    auto | native | generic) opts+=(--xdp-mode "$RVS_XDP_MODE") ;;
    *) say "RVS_XDP_MODE must be auto, native or generic (got '$RVS_XDP_MODE')"; exit 2 ;;
  esac
  local -a extra=()
  read -r -a extra <<<"${RVSD_EXTRA_ARGS:-}"
  opts+=("${extra[@]}")
  say "rvsd ${opts[*]} (RVSD_DATAPATH=${RVSD_DATAPATH:-unset})"
  "$RVSD" "${opts[@]}" </dev/null 2>>"$RVSD_LOG" >&2 &
  local pid=$! i
  echo "$pid" > "$PIDFILE"
  # From here on, any exit of this script (a failed step, or the harness's
  # TERM) stops rvsd cleanly first, so no rvsd outlives its tracked parent.
  trap 'stop_rvsd '"$pid" EXIT
  trap 'exit 0' TERM INT
  say "rvsd pid $pid, socket $SOCK, affinity $(taskset -cp "$pid" 2>/dev/null | sed 's/.*: //')"

  for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
    alive "$pid" || { say "rvsd exited:"; tail -20 "$RVSD_LOG" >&2; exit 1; }
    adm -L -n >/dev/null 2>&1 && break
    sleep 0.1
  done
  adm -L -n >/dev/null || { say "no control socket after ${READY_TIMEOUT}s"; exit 1; }
  # The control socket comes up before the datapath; wait for rvsd's line
  # saying which packet path it took (or that it has none).
  local dp=''
  for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
    dp=$(datapath_taken)
    [ -n "$dp" ] && break
    alive "$pid" || { say "rvsd exited:"; tail -20 "$RVSD_LOG" >&2; exit 1; }
    sleep 0.1
  done
  {
    echo "datapath: ${dp:-unknown}"
    echo "requested: --datapath ${RVS_DATAPATH:-(rvsd default)} --xdp-mode ${RVS_XDP_MODE:-(rvsd default)} ${extra[*]}"
    grep -E 'datapath|XDP|xdp' "$RVSD_LOG" || true
  } > "$DP_LOG"
  say "$(head -1 "$DP_LOG"): $(grep -E 'datapath: (xdp on|nfqueue [0-9])' "$RVSD_LOG" | head -1)"
  case "$dp" in
    xdp | nfqueue) ;;
    *) say "rvsd has no datapath:"; cat "$RVSD_LOG" >&2; exit 1 ;;
  esac
  if [ -n "$RVS_DATAPATH" ] && [ "$RVS_DATAPATH" != auto ] && [ "$RVS_DATAPATH" != "$dp" ]; then
    say "asked for $RVS_DATAPATH, rvsd took $dp"; exit 1
  fi

  adm -A -t "$VIP:$VPORT" -s rr
  for rip in $RIPS; do adm -a -t "$VIP:$VPORT" -r "$rip:$RPORT" -m; done

  # Forwarding starts when rvsd's sync thread has installed the steering
  # for the service and its NAT replies (within ~50 ms of the change): the
  # NFQUEUE rules (also beside XDP, as its safety net, when the queue binds)
  # and, with XDP, the program's service map.
  local -a want=()
  if [ "$dp" = nfqueue ] || grep -q 'nfqueue [0-9]* beside it' "$RVSD_LOG"; then
    want+=("datapath: steering 1 service(s), $RS_COUNT NAT source(s)")
  fi
  [ "$dp" = xdp ] && want+=("datapath: xdp steering 1 service(s)")
  local w ok=0
  for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
    ok=1
    for w in "${want[@]}"; do grep -qF "$w" "$RVSD_LOG" || ok=0; done
    [ $ok = 1 ] && break
    alive "$pid" || { say "rvsd exited:"; tail -20 "$RVSD_LOG" >&2; exit 1; }
    sleep 0.1
  done
  [ $ok = 1 ] || {
    say "steering not installed after ${READY_TIMEOUT}s:"; cat "$RVSD_LOG" >&2; exit 1
  }
  adm -L -n >&2
  rvs_rules >&2
  ip -o link show | grep -F ' xdp' | sed 's/^/lb-rvs: /' >&2 || true
  say "ready ($dp): ${want[*]}"

  # Wait for rvsd; `wait` returns early when a trapped signal arrives.
  local rc=0
  while alive "$pid"; do wait "$pid" || rc=$?; done
  say "rvsd exited (status $rc)"
  exit "$rc"
}

stop() {
  local pid
  pid=$(cat "$PIDFILE" 2>/dev/null) || { say "no $PIDFILE: nothing to stop"; return 0; }
  if alive "$pid"; then
    {
      adm -L -n --stats 2>&1 || true
      # The director's namespace is new for every run, so these are per-run
      # totals. Packets that reach the director's own stack or its IP
      # forwarding instead of rvs show up as TcpOutRsts / IpForwDatagrams;
      # queue overflow (dropped since a53493b) in the queue's columns. With
      # XDP the queue only sees what the program passed (its safety net).
      echo "== $(head -1 "$DP_LOG" 2>/dev/null)"
      grep -F 'passed a frame longer' "$RVSD_LOG" || true
      echo "== /proc/net/netfilter/nfnetlink_queue (queue portid waiting copy_mode copy_range queue_dropped user_dropped last_id 1)"
      cat /proc/net/netfilter/nfnetlink_queue 2>&1 || true
      echo "== nstat -asz (director namespace, selected)"
      nstat -asz 2>/dev/null | grep -E '^(IpInReceives|IpForwDatagrams|IpInDelivers|IpOutRequests|IpOutNoRoutes|IpInDiscards|TcpOutRsts|TcpInSegs|TcpAttemptFails|TcpExtTCPAbortOnData) ' || true
    } > "$LB_STATE_DIR/rvs-stats.log"
    stop_rvsd "$pid"
  fi
  if [ -n "$(rvs_rules)" ]; then
    say "rvsd $pid is gone but its rules are still there:"; rvs_rules >&2
  else
    say "rvsd $pid stopped, its rules are gone"
  fi
}

case "${1:-}" in
  run) run ;;
  stop) stop ;;
  *) echo "usage: $0 run|stop (called by the bench harness, see the header)" >&2; exit 2 ;;
esac
