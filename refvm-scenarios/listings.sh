#!/bin/bash
# listings.sh - ipvsadm 1.31 listing / save formats of a rich table on the real
# 6.1 kernel (runs INSIDE the reference VM, no traffic). All in the VM's root
# netns. Names for `-L` without -n come only from /etc/hosts and /etc/services
# of the VM (nsswitch "files", empty resolv.conf: never DNS).
# Slugs "setup-*" build the table (captured too, so a test can replay them).
# Only documentation addresses: 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
# 2001:db8::/32.
. "$(dirname "$0")/lib.sh"

printf 'hosts: files\nservices: files\nnetworks: files\nprotocols: files\n' > /etc/nsswitch.conf
: > /etc/resolv.conf
cat >> /etc/hosts <<'H'
192.0.2.1	vip.example
203.0.113.11	rs-one.example
203.0.113.13	a-very-long-real-server-hostname.example
2001:db8::11	rs6-one.example
H

c() { local slug=$1; shift; cap - "$slug" ipvsadm "$@"; }
note "listings: kernel $(uname -r), $(ipvsadm --version 2>&1 | head -1)"
# a VM-local address as real server: 6.1 does NOT show it as "Local" (stays Route)
x ip addr add 192.0.2.100/32 dev lo
cap - vm-hosts            cat /etc/hosts
cap - vm-services-grep    grep -E '^(http|https|domain|http-alt|diameter|sip|ssh)[[:space:]]' /etc/services
cap - vm-local-addr       ip -br addr show dev lo

V=192.0.2.1
c setup-clear             -C
# TCP v4, wlc, NAT/local/weights/thresholds
c setup-svc-http          -A -t $V:80 -s wlc
c setup-rs-http-1         -a -t $V:80 -r 203.0.113.11 -m -w 3
c setup-rs-http-2         -a -t $V:80 -r 203.0.113.12:8080 -m -w 0
c setup-rs-http-3         -a -t $V:80 -r 203.0.113.13 -m -w 65536 -x 100 -y 50
c setup-rs-http-local     -a -t $V:80 -r 192.0.2.100 -g
c setup-rs-http-other-net -a -t $V:80 -r 198.51.100.11 -g -w 2
c setup-rs-http-same-net  -a -t $V:80 -r 192.0.2.11 -i
# sh with flags, persistence with mask
c setup-svc-https         -A -t $V:443 -s sh -b sh-fallback,sh-port -p -M 255.255.255.0
c setup-rs-https-1        -a -t $V:443 -r 203.0.113.11 -g
c setup-rs-https-2        -a -t $V:443 -r 203.0.113.14 -g -w 2
# port-0 persistent service
c setup-svc-port0         -A -t 192.0.2.2:0 -s rr -p 600
c setup-rs-port0          -a -t 192.0.2.2:0 -r 203.0.113.15 -g
# UDP with ops
c setup-svc-dns           -A -u $V:53 -s rr -o
c setup-rs-dns-1          -a -u $V:53 -r 203.0.113.11:53 -m
c setup-rs-dns-2          -a -u $V:53 -r 203.0.113.12:5353 -m -w 0
# SCTP
c setup-svc-sctp          -A --sctp-service $V:3868 -s rr
c setup-rs-sctp           -a --sctp-service $V:3868 -r 203.0.113.11 -m
# IPv6
c setup-svc-v6-http       -A -t '[2001:db8::1]:80' -s mh -b mh-port -p 300 -M 64
c setup-rs-v6-http-1      -a -t '[2001:db8::1]:80' -r '[2001:db8::11]:80' -m
c setup-rs-v6-http-2      -a -t '[2001:db8::1]:80' -r '[2001:db8::12]:8080' -m -w 2
c setup-rs-v6-long        -a -t '[2001:db8::1]:80' -r '[2001:db8:1234:5678:9abc:def0:1234:5678]:65535' -m
c setup-svc-v6-dns        -A -u '[2001:db8::1]:53' -s lc
c setup-svc-v6-long       -A -t '[2001:db8:1234:5678:9abc:def0:1234:5678]:65535' -s rr
# fwmark v4 with tunnels
c setup-svc-fwm1          -A -f 1 -s wlc -p
c setup-rs-fwm1-gue       -a -f 1 -r 203.0.113.21 -i --tun-type gue --tun-port 6080 --tun-csum
c setup-rs-fwm1-gre       -a -f 1 -r 203.0.113.22 -i --tun-type gre
c setup-rs-fwm1-grecsum   -a -f 1 -r 203.0.113.23 -i --tun-type gre --tun-csum
c setup-rs-fwm1-ipip      -a -f 1 -r 203.0.113.24:8080 -i
c setup-rs-fwm1-guerem    -a -f 1 -r 203.0.113.25 -i --tun-type gue --tun-port 6081 --tun-remcsum
c setup-rs-fwm1-v6-brkt   -a -f 1 -r '[2001:db8::25]' -i
c setup-rs-fwm1-v6-ipip   -a -f 1 -r 2001:db8::25 -i
# fwmark v6, ops fwmark, big fwmark
c setup-svc-fwm2-v6       -A -f 2 -6 -s lc -p 120 -M 64
c setup-rs-fwm2-brkt      -a -f 2 -6 -r '[2001:db8::21]' -g
c setup-rs-fwm2           -a -f 2 -6 -r 2001:db8::21 -g
c setup-rs-fwm2-brkt-port -a -f 2 -6 -r '[2001:db8::22]:0' -g -w 4
c setup-svc-fwm3-ops      -A -f 3 -s rr -o
c setup-svc-fwm-big       -A -f 3000000000 -s rr
# sort quirk candidates (all three doc ranges; ports; dest addresses)
for a in 203.0.113.1 198.51.100.1 192.0.2.3; do c setup-sort-svc-$a -A -t $a:80 -s rr; done
c setup-sort-svc-port     -A -t $V:8080 -s rr
c setup-sort-svc-port-lo  -A -t $V:22 -s rr
for r in 203.0.113.31 198.51.100.31 192.0.2.31 203.0.113.31:81 203.0.113.31:79; do
  c setup-sort-rs-$r      -a -t 203.0.113.1:80 -r $r -m
done

c list                    -L
c list-n                  -L -n
c list-n-nosort           -L -n --nosort
c list-stats              -L -n --stats
c list-stats-names        -L --stats
c list-rate               -L -n --rate
c list-exact              -L -n --exact
c list-stats-exact        -L -n --stats --exact
c list-rate-exact         -L -n --rate --exact
c list-thresholds         -L -n --thresholds
c list-pconn              -L -n --persistent-conn
c list-tun-info           -L -n --tun-info
c list-tun-info-names     -L --tun-info
c list-svc                -L -n -t $V:80
c list-svc-names          -L -t vip.example:http
c list-svc-https          -L -n -t $V:443
c list-svc-udp            -L -n -u $V:53
c list-svc-sctp           -L -n --sctp-service $V:3868
c list-svc-v6             -L -n -t '[2001:db8::1]:80'
c list-svc-fwm1           -L -n -f 1
c list-svc-fwm2-no6       -L -n -f 2
c list-svc-fwm2           -L -n -f 2 -6
c list-svc-fwm-big        -L -n -f 3000000000
c list-svc-fwm-stats      -L -n -f 1 --stats
c list-svc-thresholds     -L -n -t $V:80 --thresholds
c list-svc-nosort         -L -n --nosort -t 203.0.113.1:80
c save                    -S
c save-n                  -S -n
c list-conns-empty        -L -c -n
c list-conns-empty-pconn  -L -c -n --persistent-conn
c list-timeout-default    -L --timeout
c set-timeouts            --set 100 20 30
c list-timeout            -L --timeout
c list-daemon-none        -L --daemon
cap - proc-ip_vs          cat /proc/net/ip_vs
cap - proc-ip_vs_stats    cat /proc/net/ip_vs_stats
# edit a few things and show them again
c edit-svc-no-sched       -E -t $V:80
c edit-rs-no-fwd          -e -t $V:80 -r 203.0.113.11 -w 5
c edit-svc-p-off          -E -t $V:443 -s sh
c list-after-edit         -L -n -t $V:80
c list-after-edit-https   -L -n -t $V:443
c save-after-edit         -S -n
c zero-all                -Z
echo "listings done: $_capn commands captured"
