//! `-h` and `-v` texts. The version line is ipvsadm's (scripts check it);
//! the help text is rvsadm's own wording of the same command summary (a
//! deliberate difference: it is not byte-identical to ipvsadm's `-h`).

/// `ipvsadm -v` output line, without newline.
pub const VERSION_LINE: &str = "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)";

/// The `-h` text for a program invoked as `program`.
pub fn help_text(program: &str) -> String {
    let p = program;
    format!(
        "{VERSION_LINE}
Usage:
  {p} -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [--pe engine] [-b sched-flags]
  {p} -D virtual-service
  {p} -C
  {p} -R
  {p} -S [-n]
  {p} -a|e virtual-service -r server-address [options]
  {p} -d virtual-service -r server-address
  {p} -L|l [virtual-service] [options]
  {p} -Z [virtual-service]
  {p} --set tcp tcpfin udp
  {p} --start-daemon {{master|backup}} [daemon-options]
  {p} --stop-daemon {{master|backup}}
  {p} --sysctl [name[=value]]
  {p} --save-rules [file] | --load-rules [file]
  {p} -h

Commands (long or short form):
  --add-service     -A        add a virtual service
  --edit-service    -E        replace a virtual service's settings
  --delete-service  -D        remove a virtual service
  --clear           -C        remove every virtual service
  --restore         -R        read commands from standard input (all or nothing)
  --save            -S        print the table as restore commands
  --add-server      -a        add a real server
  --edit-server     -e        replace a real server's settings
  --delete-server   -d        remove a real server
  --list            -L|-l     show the table
  --zero            -Z        reset counters of one or all services
  --set tcp tcpfin udp        set connection timeouts (seconds, 0 = unchanged)
  --start-daemon              start the connection sync daemon
  --stop-daemon               stop the connection sync daemon
  --sysctl [name[=value]]     show or set an IPVS setting (rvs)
  --save-rules [file]         save the table to file, default /etc/rvs/rules (rvs)
  --load-rules [file]         replace the table with file's rules, atomically (rvs)
  --help            -h        show this text

virtual-service:
  --tcp-service|-t  host[:port]   TCP service (IPv6 as [addr]:port)
  --udp-service|-u  host[:port]   UDP service
  --sctp-service    host[:port]   SCTP service
  --fwmark-service|-f mark        firewall-mark service, mark > 0

Options:
  --ipv6         -6             the fwmark service is IPv6 (after -f)
  --scheduler    -s name        rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh|twos (default wlc)
  --pe           engine         persistence engine (sip)
  --persistent   -p [timeout]   persistent service (default 360 s)
  --netmask      -M netmask     persistence granularity
  --real-server  -r host[:port] real server
  --gatewaying   -g             direct routing (default)
  --ipip         -i             tunnelling
  --masquerading -m             NAT
  --tun-type     type           ipip|gue|gre (default ipip)
  --tun-port     port           tunnel destination port (gue)
  --tun-nocsum                  tunnel without checksum
  --tun-csum                    tunnel with checksum
  --tun-remcsum                 tunnel with remote checksum
  --weight       -w weight      real server capacity (0 = quiesced)
  --u-threshold  -x n           upper connection threshold
  --l-threshold  -y n           lower connection threshold
  --connection   -c             list connections
  --timeout                     list timeouts
  --daemon                      list sync daemons
  --stats                       list counters
  --rate                        list rates
  --exact                       exact numbers (no K/M/G/T)
  --thresholds                  list thresholds
  --persistent-conn             list persistent connections
  --tun-info                    list tunnel settings
  --nosort                      keep the director's order
  --sort                        sorted order (the default)
  --ops          -o             one-packet scheduling
  --numeric      -n             numeric addresses and ports
  --sched-flags  -b flags       scheduler flags, comma-separated
  --json                        listings as JSON (rvs)
Daemon Options:
  --syncid sid                  sync id (default 0)
  --sync-maxlen length          largest sync message
  --mcast-interface interface   multicast interface (default eth0)
  --mcast-group address         multicast group (default 224.0.0.81)
  --mcast-port port             UDP port (default 8848)
  --mcast-ttl ttl               multicast TTL (default 1)
"
    )
}
