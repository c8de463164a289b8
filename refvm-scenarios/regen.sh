#!/bin/bash
# regen.sh - re-run reference-VM scenarios and refresh the committed fixtures.
#   usage: refvm-scenarios/regen.sh [errors] [listings] [sched] [sched-lblc] [packets]
#          (default: all)
# Needs /work/shared/refvm (run.sh, lib.sh, cap2jsonl.py) and its build.sh done.
# Runs one VM at a time (TCG emulation is CPU-heavy).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
REFVM=${REFVM:-/work/shared/refvm}
declare -A dest=(
  [errors]=crates/rvsadm/tests/fixtures/refvm/errors
  [listings]=crates/rvsadm/tests/fixtures/refvm/listings
  [sched]=crates/rvs-core/tests/fixtures/refvm/sched
  [sched-lblc]=crates/rvs-core/tests/fixtures/refvm/sched-lblc
  [packets]=crates/rvs-core/tests/fixtures/refvm/packets
)
[[ $# -gt 0 ]] || set -- errors listings sched sched-lblc packets
for sc in "$@"; do
  d=$root/${dest[$sc]:?unknown scenario $sc}
  tmp=$(mktemp -d)
  extra=()
  if [[ $sc == packets ]]; then
    # SCTP part: the VM lacks sctp.ko and an SCTP tool; pass them in when we can
    kmod=$(ls -d /var/tmp/refvm/kpkg/lib/modules/*/kernel 2>/dev/null | head -1)
    if [[ -n $kmod ]] && gcc -static -O2 -o "$tmp/sctp-pingpong" "$here/sctp-pingpong.c"; then
      extra=(-i "$tmp/sctp-pingpong" -i "$kmod/net/ipv4/udp_tunnel.ko"
             -i "$kmod/net/ipv6/ip6_udp_tunnel.ko" -i "$kmod/net/sctp/sctp.ko")
    fi
  fi
  "$REFVM/run.sh" -q -t 900 -i "$REFVM/scenarios/lib.sh" "${extra[@]}" -o "$tmp/out" "$here/$sc.sh"
  mkdir -p "$d"
  cp "$tmp/out/transcript.txt" "$d/transcript.log"
  python3 "$REFVM/cap2jsonl.py" "$tmp/out/cap" "$d/cases.jsonl"
  # scheduler oracles: the scenario writes *.txt result files into $REFVM_OUT/sched/
  if [[ -d $tmp/out/sched ]]; then cp "$tmp/out/sched/"*.txt "$d/"; fi
  # packet captures: pcaps -> one text fixture of hex frames
  if [[ -d $tmp/out/pcap ]]; then python3 "$here/pcap2frames.py" "$tmp/out" "$d/frames.txt"; fi
  rm -rf "$tmp"
  echo "refreshed $d"
done
