#!/usr/bin/env bash
# rvs as the `custom` load balancer of the L4 bench harness (/work/shared/bench).
#
#   lb-rvs.sh run    LB_START (foreground style): starts rvsd in the director
#                    namespace, adds VIP:VPORT (rr) with every RIP as a NAT (-m)
#                    real server through rvsadm, waits until the NFQUEUE steering
#                    rules for them are installed, then waits on rvsd. TERM stops
#                    rvsd cleanly (it removes its iptables rules).
#   lb-rvs.sh stop   LB_STOP: saves `rvsadm -L -n --stats` to rvs-stats.log, TERMs
#                    the rvsd PID recorded by `run`, waits for it to exit and checks
#                    that its rules are gone (KILL after 5 s).
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
# rvsd.log (rvsd's stderr), rvs-stats.log (the table with counters at the end).
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

say() { printf 'lb-rvs: %s\n' "$*" >&2; }
adm() { RVS_SOCKET=$SOCK "$RVSADM" "$@"; }

# alive PID: true while PID exists and is not a zombie.
alive() {
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
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
  "$RVSD" --socket "$SOCK" </dev/null 2>>"$RVSD_LOG" >&2 &
  local pid=$! i want
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
  if ! grep -q 'datapath: nfqueue' "$RVSD_LOG"; then
    say "rvsd has no datapath:"; cat "$RVSD_LOG" >&2; exit 1
  fi

  adm -A -t "$VIP:$VPORT" -s rr
  for rip in $RIPS; do adm -a -t "$VIP:$VPORT" -r "$rip:$RPORT" -m; done

  # Forwarding starts when rvsd's sync thread has installed the steering
  # rules for the service and its NAT replies (within ~50 ms of the change).
  want="steering 1 service(s), $RS_COUNT NAT source(s)"
  for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
    grep -qF "$want" "$RVSD_LOG" && break
    alive "$pid" || { say "rvsd exited:"; tail -20 "$RVSD_LOG" >&2; exit 1; }
    sleep 0.1
  done
  grep -qF "$want" "$RVSD_LOG" || {
    say "steering not installed after ${READY_TIMEOUT}s:"; cat "$RVSD_LOG" >&2; exit 1
  }
  adm -L -n >&2
  rvs_rules >&2
  say "ready: $want"

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
      # forwarding instead of rvs (queue full: the queue fails open) show up
      # as TcpOutRsts / IpForwDatagrams.
      echo "== /proc/net/netfilter/nfnetlink_queue (queue portid total mode range dropped user_dropped last_id 1)"
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
