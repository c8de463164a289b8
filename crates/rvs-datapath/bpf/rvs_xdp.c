// SPDX-License-Identifier: MIT OR Apache-2.0
//
// rvs XDP steering program.
//
// Decides, for every frame arriving on an interface of the director,
// whether the rvs engine must see it (redirect into the AF_XDP socket of
// the frame's receive queue) or the kernel keeps it (XDP_PASS). Only two
// kinds of frames are steered:
//   * connection openers to a virtual service: a TCP SYN without ACK, or
//     any UDP datagram, whose (protocol, destination address, destination
//     port) -- or (protocol, destination address, port 0) -- is in
//     `rvs_services`;
//   * frames whose 5-tuple is in `rvs_flows` (userspace fills it from the
//     engine's flow events: client tuples and NAT reply tuples).
// Everything else (ARP, ICMP, stray ACKs to a VIP, health-check replies,
// ssh to the director) passes to the kernel untouched.
//
// Frames longer than an AF_XDP chunk can take (generic XDP on veth hands
// GSO super-frames of up to 64 KiB) are never steered: the socket would
// drop them. They pass, are counted (STAT_TOO_BIG), and rvsd's netfilter
// safety net (NFQUEUE rules for the same services and NAT sources, which
// see GSO packets segmented) gives them to the engine.
//
// A second program in this object, `rvs_steer_fast` (rvsd --xdp-fastpath),
// does the same steering but first forwards established flows itself:
// see "Fast path" below. `rvs_steer` never touches `rvs_fast`.
//
// Fail open: `bpf_redirect_map(..., XDP_PASS)` passes a frame when its
// queue has no socket in `rvs_xsks`; sockets leave the map when they are
// closed (rvsd exits or is killed), and the program is attached through a
// bpf_link that goes away with rvsd's process.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

// AF_XDP sockets are bound to one (interface, queue): the XSKMAP holds
// MAX_QUEUES slots per interface, from the base in `rvs_ifslots`.
#define MAX_QUEUES 64
#define MAX_IFACES 32
#define MAX_SERVICES 4096
#define MAX_FLOWS 262144
// Longest frame an AF_XDP socket of rvsd takes in copy mode: the UMEM
// chunk (FRAME_SIZE in src/xdp/xsk.rs) minus XDP_PACKET_HEADROOM (256).
#define MAX_STEER_LEN (4096 - 256)
// Interfaces whose attach mode the fast path knows (`rvs_ifmode`).
#define MAX_IFMODES 256

#define RVS_AF_INET 2
#define RVS_AF_INET6 10

// Address family tags in keys (not AF_* values, to keep keys small).
#define RVS_V4 4
#define RVS_V6 6

// A virtual service as seen on the wire. Ports in network byte order;
// IPv4 addresses in the first 4 bytes of `addr`, the rest zero.
struct service_key {
	__u8 proto;
	__u8 family;
	__u16 port;
	__u8 addr[16];
};

// One direction of a flow. Same conventions as `service_key`.
struct flow_key {
	__u8 proto;
	__u8 family;
	__u16 sport;
	__u16 dport;
	__u16 pad;
	__u8 saddr[16];
	__u8 daddr[16];
};

// Counters, one slot each (per CPU).
enum {
	STAT_SEEN = 0,
	STAT_STEER_NEW = 1,
	STAT_STEER_FLOW = 2,
	STAT_PASS = 3,
	STAT_TOO_BIG = 4,
	// Fast path (rvs_steer_fast only): frames forwarded in XDP; frames of a
	// fast-path flow left to the engine because the FIB had no complete
	// answer (no neighbour yet, MTU, not forwarded), because their
	// checksum is a partial one, or because the egress interface cannot
	// take a native redirect.
	STAT_FAST_FWD = 5,
	STAT_FAST_NO_ROUTE = 6,
	STAT_FAST_PARTIAL = 7,
	STAT_FAST_EGRESS = 8,
	STAT_MAX = 9,
};

// What the fast path does with a flow's frames (`struct fast_action`).
#define FAST_NAT_DST 1 // NAT, client -> RS: destination becomes addr:port
#define FAST_NAT_SRC 2 // NAT, RS -> client: source becomes addr:port
#define FAST_DIRECT 3  // DR: only MACs and TTL change

// Attach modes in `rvs_ifmode`.
#define IFMODE_NATIVE 1
#define IFMODE_GENERIC 2

// One established flow direction the fast path forwards. Port in network
// byte order; addresses as in the keys. `hop` is the address the FIB is
// asked about: the real server (NAT in, DR) or the client (NAT out).
struct fast_action {
	__u8 kind;
	__u8 family;
	__u16 port;
	__u8 addr[16];
	__u8 hop[16];
};

// Per-CPU counters of one fast-path flow direction.
struct fast_stats {
	__u64 packets;
	__u64 bytes;
	__u64 last_seen_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, MAX_QUEUES * MAX_IFACES);
	__type(key, __u32);
	__type(value, __u32);
} rvs_xsks SEC(".maps");

// Interface index -> first XSKMAP slot of that interface.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_IFACES);
	__type(key, __u32);
	__type(value, __u32);
} rvs_ifslots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SERVICES);
	__type(key, struct service_key);
	__type(value, __u8);
} rvs_services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_FLOWS);
	__type(key, struct flow_key);
	__type(value, __u8);
} rvs_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} rvs_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_FLOWS);
	__type(key, struct flow_key);
	__type(value, struct fast_action);
} rvs_fast SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, MAX_FLOWS);
	__type(key, struct flow_key);
	__type(value, struct fast_stats);
} rvs_fast_stats SEC(".maps");

// Interface index -> IFMODE_* of the program there.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_IFMODES);
	__type(key, __u32);
	__type(value, __u32);
} rvs_ifmode SEC(".maps");

struct vlan_hdr_rvs {
	__be16 tci;
	__be16 proto;
};

static __always_inline void count(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&rvs_stats, &slot);
	if (v)
		*v += 1;
}

static __always_inline int steer(struct xdp_md *ctx, __u32 stat)
{
	__u32 ifindex = ctx->ingress_ifindex;
	__u32 queue = ctx->rx_queue_index;
	__u32 *base = bpf_map_lookup_elem(&rvs_ifslots, &ifindex);

	if (!base || queue >= MAX_QUEUES) {
		count(STAT_PASS);
		return XDP_PASS;
	}
	if (ctx->data_end - ctx->data > MAX_STEER_LEN) {
		count(STAT_TOO_BIG);
		count(STAT_PASS);
		return XDP_PASS;
	}
	count(stat);
	// No socket in the slot (rvsd gone): XDP_PASS.
	return bpf_redirect_map(&rvs_xsks, *base + queue, XDP_PASS);
}

// ---------------------------------------------------------------------
// Fast path (rvs_steer_fast).
//
// The engine decides, this remembers: rvsd puts an entry in `rvs_fast`
// for each direction of a connection the engine has established (NAT:
// client tuple and reply tuple; DR: client tuple). A frame of such a
// flow is forwarded here when everything the engine would check is
// plain:
//   * not a TCP SYN, FIN or RST (those change the connection's state:
//     they always go to the engine);
//   * TTL / hop limit above 1 (the engine answers time exceeded);
//   * a complete L4 checksum (a partial one from a local offloading
//     sender goes to the engine, which completes it);
//   * the FIB knows the next hop's MAC and the packet fits the egress
//     MTU (otherwise the engine routes it, which also resolves the
//     neighbour for the next frame);
//   * the egress interface can take the frame: with the program attached
//     in generic mode anywhere; from a native attachment only to another
//     interface running the program natively (a native redirect needs
//     the target's XDP transmit support).
// The rewrite is the engine's: NAT in sets the destination to RIP:rport,
// NAT out the source to VIP:vport, both with RFC 1624 incremental
// checksum updates; every method decrements the TTL. Counters per flow
// direction (packets, bytes of the IP packet before rewriting, last seen)
// go to `rvs_fast_stats`, which rvsd credits to the engine.
// Anything not forwarded falls through to the steering of rvs_steer.

static __always_inline __u16 csum_fold32(__u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

// RFC 1624 eqn. 3 over `n` 16-bit words: HC' = ~(~HC + ~m + m').
// All words in network byte order (one's complement sums do not care).
static __always_inline __u16 csum_replace(__u16 check, const __u16 *old,
					  const __u16 *new, int n)
{
	__u32 s = (__u16)~check;
#pragma unroll
	for (int i = 0; i < n; i++) {
		s += (__u16)~old[i];
		s += new[i];
	}
	return (__u16)~csum_fold32(s);
}

// The L4 checksum after `old` -> `new` words (UDP: 0 stays 0, a result
// of 0 is sent as 0xffff).
static __always_inline __u16 l4_replace(__u8 proto, __u16 check,
					const __u16 *old, const __u16 *new,
					int n)
{
	__u16 c;

	if (proto == IPPROTO_UDP && check == 0)
		return 0;
	c = csum_replace(check, old, new, n);
	if (proto == IPPROTO_UDP && c == 0)
		c = 0xffff;
	return c;
}

// Whether the frame may leave through `egress` from `ingress`.
static __always_inline int egress_ok(__u32 ingress, __u32 egress)
{
	__u32 *in = bpf_map_lookup_elem(&rvs_ifmode, &ingress);
	__u32 *out;

	if (!in)
		return 0;
	if (*in == IFMODE_GENERIC)
		return 1;
	out = bpf_map_lookup_elem(&rvs_ifmode, &egress);
	return out && *out == IFMODE_NATIVE;
}

static __always_inline int fast_send(struct xdp_md *ctx, struct ethhdr *eth,
				     struct bpf_fib_lookup *p,
				     struct flow_key *fk, __u64 len)
{
	struct fast_stats *st;

	__builtin_memcpy(eth->h_dest, p->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, p->smac, ETH_ALEN);
	st = bpf_map_lookup_elem(&rvs_fast_stats, fk);
	if (st) {
		st->packets += 1;
		st->bytes += len;
		st->last_seen_ns = bpf_ktime_get_ns();
	}
	count(STAT_FAST_FWD);
	if (p->ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect(p->ifindex, 0);
}

// Where the TCP/UDP checksum and ports are (bounds checked), or 0.
static __always_inline __u16 *l4_check(void *l4, void *end, __u8 proto)
{
	if (proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;
		if ((void *)(th + 1) > end)
			return 0;
		return &th->check;
	}
	if (proto == IPPROTO_UDP) {
		struct udphdr *uh = l4;
		if ((void *)(uh + 1) > end)
			return 0;
		return &uh->check;
	}
	return 0;
}

// Returns an XDP action, or -1 to fall through to steering.
static __always_inline int fast_v4(struct xdp_md *ctx, struct ethhdr *eth,
				   struct iphdr *ip, void *l4, void *end,
				   struct flow_key *fk)
{
	struct fast_action *fa = bpf_map_lookup_elem(&rvs_fast, fk);
	struct bpf_fib_lookup p = {};
	__u16 *check, *ports;
	__u16 old[3], new[3], tot_len, l4len;
	__u32 s;
	__u8 proto;
	int rc;

	if (!fa || fa->family != RVS_V4)
		return -1;
	if ((void *)(ip + 1) > end)
		return -1;
	proto = ip->protocol;
	check = l4_check(l4, end, proto);
	if (!check)
		return -1;
	ports = l4;
	tot_len = bpf_ntohs(ip->tot_len);
	l4len = tot_len - ip->ihl * 4;
	if (!(proto == IPPROTO_UDP && *check == 0)) {
		s = (ip->saddr & 0xffff) + (ip->saddr >> 16) +
		    (ip->daddr & 0xffff) + (ip->daddr >> 16) +
		    bpf_htons(proto) + bpf_htons(l4len);
		if (csum_fold32(s) == *check) {
			count(STAT_FAST_PARTIAL);
			return -1;
		}
	}
	if (ip->ttl <= 1)
		return -1;

	p.family = RVS_AF_INET;
	p.tos = ip->tos;
	p.l4_protocol = proto;
	p.tot_len = tot_len;
	p.ifindex = ctx->ingress_ifindex;
	p.ipv4_src = ip->saddr;
	if (fa->kind == FAST_NAT_SRC)
		__builtin_memcpy(&p.ipv4_src, fa->addr, 4);
	__builtin_memcpy(&p.ipv4_dst, fa->hop, 4);
	rc = bpf_fib_lookup(ctx, &p, sizeof(p), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS) {
		count(STAT_FAST_NO_ROUTE);
		return -1;
	}
	if (!egress_ok(ctx->ingress_ifindex, p.ifindex)) {
		count(STAT_FAST_EGRESS);
		return -1;
	}

	if (fa->kind == FAST_NAT_DST || fa->kind == FAST_NAT_SRC) {
		__u32 *addr = fa->kind == FAST_NAT_DST ? &ip->daddr : &ip->saddr;
		__u16 *port = fa->kind == FAST_NAT_DST ? &ports[1] : &ports[0];
		__u32 na;

		__builtin_memcpy(&na, fa->addr, 4);
		old[0] = *addr & 0xffff;
		old[1] = *addr >> 16;
		old[2] = *port;
		new[0] = na & 0xffff;
		new[1] = na >> 16;
		new[2] = fa->port;
		*check = l4_replace(proto, *check, old, new, 3);
		ip->check = csum_replace(ip->check, old, new, 2);
		*addr = na;
		*port = fa->port;
	}
	// TTL and protocol share a 16-bit word of the header checksum.
	old[0] = *(__u16 *)&ip->ttl;
	ip->ttl -= 1;
	new[0] = *(__u16 *)&ip->ttl;
	ip->check = csum_replace(ip->check, old, new, 1);
	return fast_send(ctx, eth, &p, fk, tot_len);
}

static __always_inline int fast_v6(struct xdp_md *ctx, struct ethhdr *eth,
				   struct ipv6hdr *ip6, void *l4, void *end,
				   struct flow_key *fk)
{
	struct fast_action *fa = bpf_map_lookup_elem(&rvs_fast, fk);
	struct bpf_fib_lookup p = {};
	__u16 *check, *ports, *w;
	__u16 old[9], new[9], plen;
	__u32 s = 0;
	__u8 proto;
	int rc;

	if (!fa || fa->family != RVS_V6)
		return -1;
	if ((void *)(ip6 + 1) > end)
		return -1;
	proto = ip6->nexthdr;
	check = l4_check(l4, end, proto);
	if (!check)
		return -1;
	ports = l4;
	plen = bpf_ntohs(ip6->payload_len);
	w = (__u16 *)&ip6->saddr;
#pragma unroll
	for (int i = 0; i < 16; i++)
		s += w[i];
	s += bpf_htons(proto) + bpf_htons(plen);
	if (csum_fold32(s) == *check) {
		count(STAT_FAST_PARTIAL);
		return -1;
	}
	if (ip6->hop_limit <= 1)
		return -1;

	p.family = RVS_AF_INET6;
	p.flowinfo = *(__be32 *)ip6 & bpf_htonl(0x0fffffff);
	p.l4_protocol = proto;
	p.tot_len = plen + sizeof(*ip6);
	p.ifindex = ctx->ingress_ifindex;
	__builtin_memcpy(p.ipv6_src, &ip6->saddr, 16);
	if (fa->kind == FAST_NAT_SRC)
		__builtin_memcpy(p.ipv6_src, fa->addr, 16);
	__builtin_memcpy(p.ipv6_dst, fa->hop, 16);
	rc = bpf_fib_lookup(ctx, &p, sizeof(p), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS) {
		count(STAT_FAST_NO_ROUTE);
		return -1;
	}
	if (!egress_ok(ctx->ingress_ifindex, p.ifindex)) {
		count(STAT_FAST_EGRESS);
		return -1;
	}

	if (fa->kind == FAST_NAT_DST || fa->kind == FAST_NAT_SRC) {
		__u16 *a = fa->kind == FAST_NAT_DST ? (__u16 *)&ip6->daddr
						    : (__u16 *)&ip6->saddr;
		__u16 *port = fa->kind == FAST_NAT_DST ? &ports[1] : &ports[0];

		__builtin_memcpy(new, fa->addr, 16);
#pragma unroll
		for (int i = 0; i < 8; i++)
			old[i] = a[i];
		old[8] = *port;
		new[8] = fa->port;
		*check = l4_replace(proto, *check, old, new, 9);
		__builtin_memcpy(a, fa->addr, 16);
		*port = fa->port;
	}
	ip6->hop_limit -= 1;
	return fast_send(ctx, eth, &p, fk, (__u64)plen + sizeof(*ip6));
}

// The steering decision, with (`fast`) or without the fast path first.
static __always_inline int process(struct xdp_md *ctx, const int fast)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct flow_key fk = {};
	struct service_key sk = {};
	void *l3;
	void *l4;
	int tagged = 0;
	__u16 proto;
	__u8 l4proto;

	count(STAT_SEEN);
	if ((void *)(eth + 1) > end)
		goto pass;
	proto = eth->h_proto;
	l4 = eth + 1;
	// One 802.1Q/802.1ad tag at most.
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		struct vlan_hdr_rvs *vh = l4;
		if ((void *)(vh + 1) > end)
			goto pass;
		proto = vh->proto;
		l4 = vh + 1;
		tagged = 1;
	}
	l3 = l4;

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = l4;
		if ((void *)(ip + 1) > end)
			goto pass;
		if (ip->ihl < 5)
			goto pass;
		// Fragments other than the first carry no ports: the kernel
		// reassembles them.
		if (ip->frag_off & bpf_htons(0x1fff))
			goto pass;
		l4proto = ip->protocol;
		fk.family = RVS_V4;
		__builtin_memcpy(fk.saddr, &ip->saddr, 4);
		__builtin_memcpy(fk.daddr, &ip->daddr, 4);
		l4 = (void *)ip + ip->ihl * 4;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = l4;
		if ((void *)(ip6 + 1) > end)
			goto pass;
		// Extension headers are not followed: such packets pass.
		l4proto = ip6->nexthdr;
		fk.family = RVS_V6;
		__builtin_memcpy(fk.saddr, &ip6->saddr, 16);
		__builtin_memcpy(fk.daddr, &ip6->daddr, 16);
		l4 = ip6 + 1;
	} else {
		goto pass;
	}

	fk.proto = l4proto;
	if (l4proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;
		if ((void *)(th + 1) > end)
			goto pass;
		fk.sport = th->source;
		fk.dport = th->dest;
		if (fast && !tagged && !th->syn && !th->fin && !th->rst) {
			int r = fk.family == RVS_V4
					? fast_v4(ctx, eth, l3, l4, end, &fk)
					: fast_v6(ctx, eth, l3, l4, end, &fk);
			if (r >= 0)
				return r;
		}
		if (bpf_map_lookup_elem(&rvs_flows, &fk))
			return steer(ctx, STAT_STEER_FLOW);
		if (!th->syn || th->ack)
			goto pass;
	} else if (l4proto == IPPROTO_UDP) {
		struct udphdr *uh = l4;
		if ((void *)(uh + 1) > end)
			goto pass;
		fk.sport = uh->source;
		fk.dport = uh->dest;
		if (fast && !tagged) {
			int r = fk.family == RVS_V4
					? fast_v4(ctx, eth, l3, l4, end, &fk)
					: fast_v6(ctx, eth, l3, l4, end, &fk);
			if (r >= 0)
				return r;
		}
		if (bpf_map_lookup_elem(&rvs_flows, &fk))
			return steer(ctx, STAT_STEER_FLOW);
	} else {
		goto pass;
	}

	sk.proto = l4proto;
	sk.family = fk.family;
	sk.port = fk.dport;
	__builtin_memcpy(sk.addr, fk.daddr, 16);
	if (bpf_map_lookup_elem(&rvs_services, &sk))
		return steer(ctx, STAT_STEER_NEW);
	sk.port = 0;
	if (bpf_map_lookup_elem(&rvs_services, &sk))
		return steer(ctx, STAT_STEER_NEW);
pass:
	count(STAT_PASS);
	return XDP_PASS;
}

// Steering only (the default datapath).
SEC("xdp")
int rvs_steer(struct xdp_md *ctx)
{
	return process(ctx, 0);
}

// Fast path for established flows, then steering (--xdp-fastpath).
SEC("xdp")
int rvs_steer_fast(struct xdp_md *ctx)
{
	return process(ctx, 1);
}

char _license[] SEC("license") = "Dual MIT/GPL";
