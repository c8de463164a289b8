#!/bin/bash
# errors.sh - ipvsadm 1.31 error paths on the real 6.1 kernel (runs INSIDE the
# reference VM, no traffic). Every invocation's argv, stdout, stderr and rc is
# captured in order (lib.sh `cap`); slugs starting with "setup-" create the
# state the later error cases run against, "state-" slugs are listings that
# show the resulting table. Packed into cases.jsonl by regen.sh.
# Only documentation addresses: 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
# 2001:db8::/32.
. "$(dirname "$0")/lib.sh"

# names come only from files inside the VM, never DNS
printf 'hosts: files\nservices: files\nnetworks: files\nprotocols: files\n' > /etc/nsswitch.conf
: > /etc/resolv.conf

c() { local slug=$1; shift; cap - "$slug" ipvsadm "$@"; }
S=192.0.2.1:80          # the existing service
M=192.0.2.9:80          # a service that never exists

note "errors: kernel $(uname -r), $(ipvsadm --version 2>&1 | head -1)"
# ---------------------------------------------------------------- setup
c setup-clear            -C
c setup-add-svc          -A -t $S -s rr
c setup-add-rs           -a -t $S -r 203.0.113.11 -m
c setup-add-udp          -A -u 192.0.2.1:53 -s rr
c state-initial          -L -n

# ---------------------------------------------------------------- generic
c help                   -h
c help-long              --help
c version                -v
c version-long           --version
c unknown-opt            --foo
c unknown-short          -Q
c cmd-not-first          -6 -A -t 192.0.2.2:80
c opt-before-cmd         -n -L
c multiple-cmds-LL       -L -L
c multiple-cmds-AD       -A -t 192.0.2.2:80 -D
c multiple-cmds-LC       -L -C
c extra-arg-L            -L extra
c extra-arg-A            -A -t 192.0.2.2:80 -s rr extra
c missing-arg-t          -A -t
c missing-arg-s          -A -t 192.0.2.2:80 -s
c bundled-Ln             -Ln
c lowercase-l            -l -n

# ---------------------------------------------------------------- addresses
c vaddr-octet-256        -A -t 192.0.2.256:80 -s rr
c vaddr-port-99999       -A -t 192.0.2.2:99999 -s rr
c vaddr-port-65536       -A -t 192.0.2.2:65536 -s rr
c vaddr-port-name-bad    -A -t 192.0.2.2:nosuchservice -s rr
c vaddr-garbage          -A -t not..an..address:80 -s rr
c vaddr-v6-no-bracket    -A -t 2001:db8::1:80 -s rr
c vaddr-v6-open-bracket  -A -t '[2001:db8::1:80' -s rr
c vaddr-v6-bad           -A -t '[2001:db8::zz]:80' -s rr
c vaddr-empty            -A -t '' -s rr
c raddr-octet-300        -a -t $S -r 203.0.113.300 -m
c raddr-port-70000       -a -t $S -r 203.0.113.12:70000 -m
c raddr-garbage          -a -t $S -r foo..bar -m
c svc-missing-A          -A -s rr
c svc-missing-a          -a -r 203.0.113.12 -m
c rs-missing-a           -a -t $S -m
c rs-with-A              -A -t 192.0.2.2:80 -r 203.0.113.11
c rs-with-D              -D -t $S -r 203.0.113.11
c sched-with-a           -a -t $S -r 203.0.113.12 -s rr
c weight-with-A          -A -t 192.0.2.2:80 -w 2
c opt-with-C             -C -t $S
c opt-with-S             -S -t $S
c opt-with-set           --set 1 2 3 -n
c diff-family-m          -a -t $S -r '[2001:db8::11]:80' -m
c diff-family-g          -a -t $S -r '[2001:db8::11]:80' -g

# ---------------------------------------------------------------- weights / thresholds
c weight-minus1          -a -t $S -r 203.0.113.12 -m -w -1
c weight-abc             -a -t $S -r 203.0.113.12 -m -w abc
c weight-4294967296      -a -t $S -r 203.0.113.12 -m -w 4294967296
c weight-2147483648      -a -t $S -r 203.0.113.12 -m -w 2147483648
c weight-twice           -a -t $S -r 203.0.113.12 -m -w 1 -w 2
c weight-65536-ok        -a -t $S -r 203.0.113.12 -m -w 65536
c weight-2147483647-ok   -a -t $S -r 203.0.113.13 -m -w 2147483647
c uthr-minus1            -a -t $S -r 203.0.113.14 -m -x -1
c uthr-abc               -a -t $S -r 203.0.113.14 -m -x abc
c uthr-4294967296        -a -t $S -r 203.0.113.14 -m -x 4294967296
c lthr-minus1            -a -t $S -r 203.0.113.14 -m -y -1
c lthr-abc               -a -t $S -r 203.0.113.14 -m -y abc
c thr-x10-y100           -a -t $S -r 203.0.113.14 -m -x 10 -y 100
c thr-y5-only            -a -t $S -r 203.0.113.14 -m -y 5
c thr-x100-y10-ok        -a -t $S -r 203.0.113.14 -m -x 100 -y 10
c thr-edit-x5            -e -t $S -r 203.0.113.14 -m -x 5
c weight-edit-minus1     -e -t $S -r 203.0.113.14 -m -w -1
c thr-edit-x10-y100      -e -t $S -r 203.0.113.14 -m -x 10 -y 100
c dr-port-forced         -a -t $S -r 203.0.113.15:8080 -g
c nat-port-kept          -a -t $S -r 203.0.113.16:8080 -m
c state-weights          -L -n --thresholds

# ---------------------------------------------------------------- persistence / fwmark / netmask
c p-0                    -A -t 192.0.2.2:80 -s rr -p 0
c p-2678401              -A -t 192.0.2.2:80 -s rr -p 2678401
c p-minus1               -A -t 192.0.2.2:80 -s rr -p -1
c p-abc                  -A -t 192.0.2.2:80 -s rr -p abc
c p-2678400-ok           -A -t 192.0.2.2:80 -s rr -p 2678400
c p-bare-ok              -A -t 192.0.2.3:80 -s rr -p
c fwm-0                  -A -f 0 -s rr
c fwm-minus1             -A -f -1 -s rr
c fwm-abc                -A -f abc -s rr
c fwm-4294967296         -A -f 4294967296 -s rr
c fwm-4294967295-ok      -A -f 4294967295 -s rr
c v6-before-f            -A -6 -f 7 -s rr
c v6-with-t              -A -t 192.0.2.4:80 -6 -s rr
c mask-bad-v4            -A -t 192.0.2.4:80 -s rr -p -M 255.0.255.0
c mask-garbage-v4        -A -t 192.0.2.4:80 -s rr -p -M nomask
c mask-129-v6            -A -t '[2001:db8::4]:80' -s rr -p -M 129
c mask-0-v6              -A -t '[2001:db8::4]:80' -s rr -p -M 0
c mask-no-p-ok           -A -t 192.0.2.5:80 -s rr -M 255.255.255.0
c zero-port-no-p         -A -t 192.0.2.6:0 -s rr
c zero-port-p-ok         -A -t 192.0.2.6:0 -s rr -p
c ops-on-tcp             -A -t 192.0.2.7:80 -s rr -o
c ops-on-udp-ok          -A -u 192.0.2.7:53 -s rr -o
c ops-on-fwm-ok          -A -f 8 -s rr -o
c pe-unknown             -A -t 192.0.2.8:80 -s rr -p --pe nosuchpe

# ---------------------------------------------------------------- schedulers / flags
c sched-unknown          -A -t $M -s nosuchsched
c sched-twos             -A -t $M -s twos
c sched-empty            -A -t 192.0.2.10:80 -s ''
c flag-unknown           -A -t 192.0.2.11:80 -s sh -b foo
c flag-mh-port-on-sh     -A -t 192.0.2.11:80 -s sh -b mh-port
c flag-sh-port-on-mh     -A -t 192.0.2.11:80 -s mh -b sh-port
c flag-sh-port-on-rr     -A -t 192.0.2.11:80 -s rr -b sh-port
c flag-list-bad          -A -t 192.0.2.11:80 -s sh -b sh-port,foo
c flag-empty             -A -t 192.0.2.12:80 -s sh -b ''
c flag-1-on-rr-ok        -A -t 192.0.2.13:80 -s rr -b flag-1,flag-3
c flag-sh-ok             -A -t 192.0.2.14:80 -s sh -b sh-fallback,sh-port
c flag-mh-no-s           -A -t 192.0.2.15:80 -b mh-port
c state-sched            -L -n
# ---------------------------------------------------------------- tunnel options
c tun-csum-nocsum        -a -t $S -r 203.0.113.21 -i --tun-type gue --tun-port 6080 --tun-csum --tun-nocsum
c tun-csum-remcsum       -a -t $S -r 203.0.113.21 -i --tun-type gue --tun-port 6080 --tun-csum --tun-remcsum
c tun-gue-no-port        -a -t $S -r 203.0.113.21 -i --tun-type gue
c tun-gre-remcsum        -a -t $S -r 203.0.113.21 -i --tun-type gre --tun-remcsum
c tun-gre-port           -a -t $S -r 203.0.113.21 -i --tun-type gre --tun-port 6080
c tun-ipip-port          -a -t $S -r 203.0.113.21 -i --tun-type ipip --tun-port 6080
c tun-ipip-csum          -a -t $S -r 203.0.113.21 -i --tun-type ipip --tun-csum
c tun-type-bad           -a -t $S -r 203.0.113.21 -i --tun-type vxlan
c tun-port-0             -a -t $S -r 203.0.113.21 -i --tun-type gue --tun-port 0
c tun-port-65536         -a -t $S -r 203.0.113.21 -i --tun-type gue --tun-port 65536
c tun-opts-with-m        -a -t $S -r 203.0.113.21 -m --tun-type gue --tun-port 6080
c tun-opts-no-fwd        -a -t $S -r 203.0.113.21 --tun-type gre
c tun-with-A             -A -t 192.0.2.2:81 --tun-type gre
c tun-gue-ok             -a -t $S -r 203.0.113.21 -i --tun-type gue --tun-port 6080 --tun-remcsum
c diff-family-i-ok       -a -t $S -r '[2001:db8::21]:80' -i
c state-tun              -L -n --tun-info

# ---------------------------------------------------------------- list options
c list-c-stats           -L -c --stats
c list-c-rate            -L -c --rate
c list-c-thresholds      -L -c --thresholds
c list-timeout-rate      -L --timeout --rate
c list-timeout-pconn     -L --timeout --persistent-conn
c list-daemon-stats      -L --daemon --stats
c list-daemon-pconn      -L --daemon --persistent-conn
c list-c-timeout         -L -c --timeout
c list-c-svc             -L -c -t $S
c list-timeout-svc       -L --timeout -t $S
c list-c-pconn-ok        -L -c -n --persistent-conn
c list-stats-rate-ok     -L -n --stats --rate -t $S
c list-missing-svc       -L -n -t $M
c list-missing-fwm       -L -n -f 99
c list-svc-no-port       -L -n -t 192.0.2.1
c list-svc-udp           -L -n -u 192.0.2.1:53
c list-daemon-none       -L --daemon
c list-timeout           -L --timeout

# ---------------------------------------------------------------- --set / daemon
c set-2-values           --set 100 20
c set-4-values           --set 100 20 30 40
c set-abc                --set a 20 30
c set-2678401            --set 2678401 20 30
c set-minus1             --set -1 20 30
c set-ok                 --set 100 20 30
c set-zero-keeps         --set 0 0 40
c state-timeout          -L --timeout
c start-daemon-bad       --start-daemon foo
c stop-daemon-bad        --stop-daemon foo
c start-daemon-port-0    --start-daemon master --mcast-port 0
c start-daemon-group     --start-daemon master --mcast-group 192.0.2.1
c start-daemon-syncid    --start-daemon master --syncid 256
c start-daemon-ttl-0     --start-daemon master --mcast-ttl 0
c start-daemon-maxlen    --start-daemon master --sync-maxlen 65508
c start-daemon-noif      --start-daemon master --mcast-interface nosuchif0
c stop-daemon-none       --stop-daemon master
c stop-daemon-none-b     --stop-daemon backup
c daemon-opt-with-A      -A -t 192.0.2.2:82 --syncid 3

# ---------------------------------------------------------------- kernel errors
c k-svc-exists           -A -t $S -s rr
c k-svc-exists-udp       -A -u 192.0.2.1:53 -s wlc
c k-edit-missing         -E -t $M -s rr
c k-del-missing          -D -t $M
c k-zero-missing         -Z -t $M
c k-add-rs-no-svc        -a -t $M -r 203.0.113.11 -m
c k-edit-rs-no-svc       -e -t $M -r 203.0.113.11 -m
c k-del-rs-no-svc        -d -t $M -r 203.0.113.11
c k-dest-exists          -a -t $S -r 203.0.113.11 -m
c k-dest-exists-port     -a -t $S -r 203.0.113.11:80 -g
c k-edit-no-dest         -e -t $S -r 203.0.113.99 -m
c k-del-no-dest          -d -t $S -r 203.0.113.99
c k-edit-fwm-missing     -E -f 12345 -s rr
c k-del-fwm-missing      -D -f 12345
c k-edit-sched-bad       -E -t $S -s nosuchsched
c k-edit-ok-no-s         -E -t $S
c k-zero-ok              -Z -t $S
c k-zero-all-ok          -Z
c state-final            -L -n
c state-save             -S -n

# ---------------------------------------------------------------- restore
printf '%s\n' "-A -t 192.0.2.30:80 -s rr" "-a -t 192.0.2.30:80 -r 203.0.113.31 -m" \
  "-A -t 192.0.2.30:80 -s rr" "-a -t 192.0.2.31:80 -r 203.0.113.31 -m" \
  "-A -t 192.0.2.32:80 -s rr" > /tmp/r-kernel-errs
capin - restore-kernel-errs /tmp/r-kernel-errs ipvsadm -R
printf '%s\n' "-A -t 192.0.2.40:80 -s rr" "-A -t 192.0.2.41:80 -w -1" \
  "-A -t 192.0.2.42:80 -s rr" > /tmp/r-parse-err
capin - restore-parse-err /tmp/r-parse-err ipvsadm -R
printf '%s\n' "-A -t 192.0.2.30:80 -s rr" "-A -t 192.0.2.43:80 -s rr" > /tmp/r-last-ok
capin - restore-last-ok /tmp/r-last-ok ipvsadm -R
printf '%s\n' "ipvsadm -A -t 192.0.2.44:80 -s rr" "-A -t 192.0.2.45:80 -s rr" > /tmp/r-prefix
capin - restore-prefix /tmp/r-prefix ipvsadm -R
printf '%s\n' "-A -t 192.0.2.46:80 -s rr" "" "-A -t 192.0.2.47:80 -s rr" > /tmp/r-blank
capin - restore-blank-line /tmp/r-blank ipvsadm -R
printf '%s\n' "-A -t 192.0.2.48:80 -s rr" "# comment" "-A -t 192.0.2.49:80 -s rr" > /tmp/r-comment
capin - restore-comment-line /tmp/r-comment ipvsadm -R
c state-after-restore     -L -n
c clear-final            -C
c no-args                 # ipvsadm with no arguments = -L (names)
echo "errors done: $_capn commands captured"
