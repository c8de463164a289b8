#!/usr/bin/env bash
# Runs the shared L4 bench harness (/work/shared/bench, see its README.md) with rvs
# as its `custom` load balancer (bench/lb-rvs.sh), side by side with its own
# plugins. Needs root, the harness's packages (its setup.sh) and release binaries:
#   cargo build --release -p rvsd -p rvsadm
#   bench/l4-side-by-side.sh                  # -p -n 2 -r 1 -d 5 direct nft-dnat haproxy custom
#   bench/l4-side-by-side.sh -p -n "2 4" -r 3 direct nft-dnat haproxy nginx-stream custom
# Arguments are run.sh's (options, then LBs; `custom` is rvs). Environment:
#   BENCH        harness directory (default /work/shared/bench)
#   RVS_BIN_DIR  directory holding rvsd and rvsadm (default target/release here)
#   NICE         priority of the harness and all it starts (default -10: the
#                machine is shared with compiles); other run.sh knobs pass through.
#   RVS_DATAPATH auto|xdp|nfqueue: rvsd's --datapath (default: rvsd's own, auto);
#                RVS_XDP_MODE auto|native|generic: its --xdp-mode;
#                RVSD_EXTRA_ARGS: more rvsd options (e.g. --xdp-fastpath).
#   LB_NAME      label of the rvs rows (default rvs-$RVS_DATAPATH, or rvs).
# Both packet paths, one harness run each:
#   RVS_DATAPATH=xdp bench/l4-side-by-side.sh; RVS_DATAPATH=nfqueue bench/l4-side-by-side.sh
# Results: /tmp/lbbench-results/<date>-<mode>/ (report.md, results.tsv, raw/; the
# rvs runs' raw/.../<LB_NAME>/ holds rvsd.log, rvs-datapath.log (the packet path
# rvsd took) and rvs-stats.log).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${BENCH:=/work/shared/bench}"
: "${RVS_BIN_DIR:=$here/../target/release}"
: "${NICE:=-10}"
[ "$(id -u)" = 0 ] || { echo "run as root (network namespaces)" >&2; exit 1; }
for b in rvsd rvsadm; do
  [ -x "$RVS_BIN_DIR/$b" ] ||
    { echo "missing $RVS_BIN_DIR/$b: cargo build --release -p rvsd -p rvsadm" >&2; exit 1; }
done
[ $# -gt 0 ] || set -- -p -n 2 -r 1 -d 5 direct nft-dnat haproxy custom
RVS_BIN_DIR=$(cd "$RVS_BIN_DIR" && pwd)
case "${RVS_DATAPATH:-}" in
  '' | auto | xdp | nfqueue) ;;
  *) echo "RVS_DATAPATH must be auto, xdp or nfqueue" >&2; exit 1 ;;
esac
: "${LB_NAME:=rvs${RVS_DATAPATH:+-$RVS_DATAPATH}}"
export RVS_BIN_DIR NICE LB_NAME RVS_DATAPATH="${RVS_DATAPATH:-}" RVS_XDP_MODE="${RVS_XDP_MODE:-}" \
  RVSD_EXTRA_ARGS="${RVSD_EXTRA_ARGS:-}"
export LB_START="exec $here/lb-rvs.sh run"
export LB_STOP="$here/lb-rvs.sh stop"
echo "rvs binaries: $RVS_BIN_DIR ($(stat -c '%y' "$RVS_BIN_DIR/rvsd" | cut -d. -f1))," \
  "datapath ${RVS_DATAPATH:-rvsd default}${RVS_XDP_MODE:+, xdp mode $RVS_XDP_MODE}" \
  "${RVSD_EXTRA_ARGS:+, extra: $RVSD_EXTRA_ARGS}, label $LB_NAME" >&2
cd "$BENCH"
exec ./run.sh "$@"
