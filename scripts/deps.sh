#!/usr/bin/env bash
# Install what rvs's demo and tests need on a Debian 12 machine (root),
# including clang-14 and libbpf-dev for the XDP program (crates/rvs-datapath/bpf).
# Idempotent: only calls apt-get when something is missing.
set -euo pipefail
need=()
for pair in ip:iproute2 curl:curl socat:socat iptables:iptables ethtool:ethtool \
    ping:iputils-ping clang-14:clang-14 openssl:openssl; do
  cmd=${pair%%:*} pkg=${pair##*:}
  command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
# Test HTTP servers run Debian's python3 (not a pyenv shim).
[[ -x /usr/bin/python3 ]] || need+=(python3)
# The XDP program's headers (bpf/bpf_helpers.h); build.rs compiles it.
[[ -f /usr/include/bpf/bpf_helpers.h ]] || need+=(libbpf-dev)
if ((${#need[@]})); then
  echo "deps: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! rustup component list --installed 2>/dev/null | grep -q '^clippy'; then
  rustup component add clippy rustfmt >/dev/null 2>&1 || true
fi
