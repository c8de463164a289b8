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
	STAT_MAX = 5,
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

SEC("xdp")
int rvs_steer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct flow_key fk = {};
	struct service_key sk = {};
	void *l4;
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
	}

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

char _license[] SEC("license") = "Dual MIT/GPL";
