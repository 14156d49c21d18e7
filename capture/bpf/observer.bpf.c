// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/* edgewise's tcx observers: they look at every packet, emit SYN and
 * SYN-ACK events (with the raw TCP header and options), DNS responses (UDP
 * source port 53, payload up to dns_max_payload bytes; TCP segments from
 * port 53 in parts of DNS_MAX bytes), the first payload
 * of each flow (a banner, up to BANNER_MAX bytes, and the payloads after
 * it while they continue a TLS handshake record it began, or, after a
 * proxy handshake, its next PROXY_PARTS payloads) and a sample of each flow
 * at most once per flow_sample_ns (so that connections older than the
 * observer still show) into one ring buffer, and count what they emit and
 * what the full ring made them lose.
 * A packet of a banned edge (banned_edges, until its expiry) is dropped
 * (TC_ACT_SHOT) and counted, and the edge's drops are reported as a drop
 * event at most once a second (so that userspace sees the client keep
 * trying); every other packet gets TC_ACT_UNSPEC (TCX_NEXT under tcx),
 * leaving its verdict to the programs after them.
 *
 * Packets are read after VLAN tags and inside tunnels (parse_ip), from the
 * IP header on L3 devices (the _l3 programs).
 *
 * The common packet is kept cheap: a packet of an established TCP or UDP
 * flow that is neither due for a sample nor waiting for its banner is
 * answered in the entry program from a small per-CPU cache (flow_cache,
 * known_flow), in a few dozen instructions; on the full path, headers are
 * read straight from the packet when its linear part holds them, and the
 * drop map is only looked up while ban_gate says a ban may hold. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "event.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the loader before loading; 1..=DNS_MAX. */
volatile const __u32 dns_max_payload = DNS_MAX;
/* A flow is sampled at most once per this many nanoseconds. */
volatile const __u64 flow_sample_ns = 10ULL * 1000 * 1000 * 1000;
/* When set, the egress observer emits events only for packets whose source
 * is in egress_sources (pod CIDRs); bans apply to every packet. */
volatile const __u8 egress_filter = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNTER_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct source_prefix);
	__type(value, __u8);
} egress_sources SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct flow_key);
	__type(value, struct flow_state);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct edge_key);
	__type(value, struct ban);
} banned_edges SEC(".maps");

/* One entry: no ban in banned_edges lasts past this time (bpf_ktime_get_ns).
 * Userspace raises it with every ban and never lowers it, so that while no
 * ban holds, a packet costs one array read instead of a hash lookup. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} ban_gate SEC(".maps");

/* A per-CPU, direct-mapped memory of flows' states as last read from
 * flows: a packet whose flow is here, not due for a sample (the state in
 * flows can only be more recent) and with its banner seen skips the hash
 * lookup; anything else goes to flows, which stays the authority. */
#define FLOW_CACHE_SLOTS 64

struct flow_cache_slot {
	struct flow_key key;
	struct flow_state state;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FLOW_CACHE_SLOTS);
	__type(key, __u32);
	__type(value, struct flow_cache_slot);
} flow_cache SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *value = bpf_map_lookup_elem(&counters, &which);
	if (value)
		*value += 1;
}

/* The furthest offset the direct path reads at: past the longest IPv4
 * header inside a VXLAN or Geneve packet behind VLAN tags; beyond it (IPv6
 * inside, Geneve options) the helper copies. */
#define HEADERS_MAX 160

/* A length the verifier can prove is in [1, max] on the register handed
 * to the helper (see EBPF-NOTES: clamp len - 1 behind an empty asm). */
static __always_inline __u32 clamp_len_to(__u32 len, __u32 max, const __u32 mask)
{
	__u32 m = len - 1;
	if (m > max - 1)
		m = max - 1;
	asm volatile("" : "+r"(m));
	m &= mask;
	return m + 1;
}

static __always_inline __u32 clamp_len(__u32 len, __u32 max)
{
	return clamp_len_to(len, max, EVENT_MAX_DATA - 1);
}

/* The packet as the observers read it, under tc/tcx or XDP: xdp and l2 are
 * constants in each entry point, so each program keeps only its own
 * calls. */
struct packet {
	void *ctx;
	void *data;
	void *data_end;
	__u32 len; /* the whole packet, as on the wire */
	__u32 ifindex;
	__u8 xdp;
	/* 1: an Ethernet header comes first; 0: an L3 device (ipip, sit,
	 * WireGuard, tun), whose packets begin with the IP header. */
	__u8 l2;
	/* An L3 device's packet protocol (skb->protocol, network order). */
	__u16 protocol;
};

/* Copies len bytes at offset of the packet into to (len in [1, N] on the
 * register, see clamp_len). */
static __always_inline int load_bytes(const struct packet *pkt, __u32 offset, void *to, __u32 len)
{
	if (pkt->xdp)
		return bpf_xdp_load_bytes(pkt->ctx, offset, to, len);
	return bpf_skb_load_bytes(pkt->ctx, offset, to, len);
}

/* Copies len bytes at offset of the packet into to: straight from the
 * packet's linear part when it holds them (the usual case for headers),
 * through the helper otherwise. */
static __always_inline int load(const struct packet *pkt, __u32 offset, void *to, const __u32 len)
{
	if (offset <= HEADERS_MAX && pkt->data + offset + len <= pkt->data_end) {
		__builtin_memcpy(to, pkt->data + offset, len);
		return 0;
	}
	return load_bytes(pkt, offset, to, len);
}

struct flow {
	__u8 family;
	__u8 protocol;
	__u8 src[16];
	__u8 dst[16];
	__u32 l4; /* offset of the transport header */
	__u32 l4_len; /* bytes from it to the end of the IP packet */
	/* When the packet is seen, on the coarse clock (jiffies resolution,
	 * at most a tick behind bpf_ktime_get_ns): plenty for windows of
	 * seconds, and far cheaper than a precise read in a VM. */
	__u64 now;
};

/* A value whose bounds the verifier forgets but for [0, mask]: what
 * follows is then verified from one state, not from one per way the value
 * was reached (extension headers stepped over, tunnel kind and depth). */
static __always_inline __u32 opaque(__u32 value, const __u32 mask)
{
	asm volatile("" : "+r"(value));
	return value & mask;
}

/* Whether an IPv6 next header is an extension header the parse steps
 * over: hop-by-hop, routing, fragment, destination options, AH. */
static __always_inline int ipv6_extension(__u8 next)
{
	return next == IPPROTO_HOPOPTS || next == IPPROTO_ROUTING || next == IPPROTO_FRAGMENT ||
	       next == IPPROTO_DSTOPTS || next == IPPROTO_AH;
}

/* The IP header of protocol proto (network order) at l3 into flow, which
 * is left as it was when the header is not there whole or not IP; IPv6
 * extension headers stepped over. */
static __always_inline int read_l3(const struct packet *pkt, __u16 proto, __u32 l3, struct flow *flow)
{
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;
		if (load(pkt, l3, &ip, sizeof(ip)) < 0)
			return -1;
		if (ip.ihl < 5 || (ip.frag_off & bpf_htons(0x1fff)) != 0)
			return -1; /* not the first fragment: no transport header */
		__u32 header = ip.ihl * 4;
		__u32 total = bpf_ntohs(ip.tot_len);
		if (total < header)
			return -1;
		flow->family = 4;
		flow->protocol = ip.protocol;
		__builtin_memcpy(flow->src, &ip.saddr, 4);
		__builtin_memcpy(flow->dst, &ip.daddr, 4);
		flow->l4 = l3 + header;
		flow->l4_len = total - header;
		return 0;
	}
	if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;
		if (load(pkt, l3, &ip6, sizeof(ip6)) < 0)
			return -1;
		__u8 next = ip6.nexthdr;
		__u32 at = l3 + sizeof(ip6);
		__u32 payload = bpf_ntohs(ip6.payload_len);
		/* Extension headers, as the replay's decoder follows them. */
#pragma unroll
		for (int n = 0; n < IPV6_EXTENSIONS_MAX && ipv6_extension(next); n++) {
			__u8 ext[4];
			if (load(pkt, at, ext, sizeof(ext)) < 0)
				return -1;
			__u32 len = next == IPPROTO_FRAGMENT ? 8 : next == IPPROTO_AH ? (ext[1] + 2) * 4 : (ext[1] + 1) * 8;
			/* Not the first fragment: no transport header. */
			if (next == IPPROTO_FRAGMENT && (((__u32)ext[2] << 8 | ext[3]) & 0xfff8) != 0)
				return -1;
			if (len > payload)
				return -1;
			next = ext[0];
			at = opaque(at + len, 0xffff);
			payload = opaque(payload - len, 0xffff);
		}
		if (ipv6_extension(next))
			count(COUNTER_PARSE_LIMIT);
		flow->family = 6;
		flow->protocol = next;
		__builtin_memcpy(flow->src, &ip6.saddr, 16);
		__builtin_memcpy(flow->dst, &ip6.daddr, 16);
		flow->l4 = at;
		flow->l4_len = payload;
		return 0;
	}
	return -1;
}

/* read_l3 as global functions, one per context: the verifier checks the
 * IP header and its extension headers once, not once per link layer and
 * tunnel level that leads to them. */
__attribute__((noinline)) int read_l3_skb(struct __sk_buff *skb, __u32 proto, __u32 l3, struct flow *flow)
{
	if (!flow)
		return -1;
	struct packet pkt = {
		.ctx = skb,
		.data = (void *)(long)skb->data,
		.data_end = (void *)(long)skb->data_end,
		.len = skb->len,
		.xdp = 0,
	};
	return read_l3(&pkt, proto, l3, flow);
}

__attribute__((noinline)) int read_l3_xdp(struct xdp_md *xdp, __u32 proto, __u32 l3, struct flow *flow)
{
	if (!flow)
		return -1;
	struct packet pkt = {
		.ctx = xdp,
		.data = (void *)(long)xdp->data,
		.data_end = (void *)(long)xdp->data_end,
		.len = bpf_xdp_get_buff_len(xdp),
		.xdp = 1,
	};
	return read_l3(&pkt, proto, l3, flow);
}

static __always_inline int parse_l3(const struct packet *pkt, __u16 proto, __u32 l3, struct flow *flow)
{
	if (pkt->xdp)
		return read_l3_xdp(pkt->ctx, proto, l3, flow);
	return read_l3_skb(pkt->ctx, proto, l3, flow);
}

/* Steps over up to VLAN_TAGS_MAX VLAN tags (802.1Q, 802.1ad QinQ) after
 * the Ethernet addresses at eth: the protocol after them and where its
 * header begins; -1 past that (counted) or on a short packet. A tag the
 * device took off (skb->vlan_tci) is not in the packet. */
static __always_inline int ether_type(const struct packet *pkt, __u32 eth, __u16 *proto, __u32 *l3)
{
	__u32 at = eth + 12;
#pragma unroll
	for (int tags = 0; tags <= VLAN_TAGS_MAX; tags++) {
		if (load(pkt, at, proto, sizeof(*proto)) < 0)
			return -1;
		if (*proto != bpf_htons(ETH_P_8021Q) && *proto != bpf_htons(ETH_P_8021AD)) {
			*l3 = at + 2;
			return 0;
		}
		at += 4;
	}
	count(COUNTER_PARSE_LIMIT);
	return -1;
}

/* Whether a UDP port is a tunnel's. */
static __always_inline int tunnel_port(__be16 port)
{
	return port == bpf_htons(VXLAN_PORT) || port == bpf_htons(VXLAN_LINUX_PORT) ||
	       port == bpf_htons(VXLAN_GPE_PORT) || port == bpf_htons(GENEVE_PORT);
}

/* A UDP port's tunnel: where its inner packet begins after the UDP
 * header's end, and whether it is an Ethernet frame (else *proto says
 * which IP); 0 for none. */
static __always_inline __u32 udp_tunnel(const struct packet *pkt, __be16 port, __u32 udp_end, __u8 *ethernet,
					__u16 *proto)
{
	if (port == bpf_htons(VXLAN_PORT) || port == bpf_htons(VXLAN_LINUX_PORT)) {
		__u8 flags;
		/* The I flag: a valid VNI, an Ethernet frame follows. */
		if (load(pkt, udp_end, &flags, sizeof(flags)) < 0 || !(flags & 0x08))
			return 0;
		*ethernet = 1;
		return udp_end + 8;
	}
	if (port == bpf_htons(VXLAN_GPE_PORT)) {
		__u8 head[4];
		/* The P flag: the next protocol is given. */
		if (load(pkt, udp_end, head, sizeof(head)) < 0 || !(head[0] & 0x04))
			return 0;
		*ethernet = head[3] == 3;
		*proto = head[3] == 1 ? bpf_htons(ETH_P_IP) : bpf_htons(ETH_P_IPV6);
		return head[3] >= 1 && head[3] <= 3 ? udp_end + 8 : 0;
	}
	if (port == bpf_htons(GENEVE_PORT)) {
		__u8 head[4];
		if (load(pkt, udp_end, head, sizeof(head)) < 0)
			return 0;
		/* Version 0, protocol Transparent Ethernet Bridging. */
		if ((head[0] >> 6) != 0 || head[2] != 0x65 || head[3] != 0x58)
			return 0;
		*ethernet = 1;
		return udp_end + 8 + (head[0] & 0x3f) * 4;
	}
	return 0;
}

/* Where the inner packet of a tunnel the flow carries begins (IP in IP,
 * GRE with an IP or Ethernet payload, VXLAN, VXLAN-GPE, Geneve, by the
 * destination port and then the source port, as the replay's decoder
 * does), and whether it is an Ethernet frame (else *proto says which IP);
 * 0 for none. ERSPAN is opened by the replay only (a mirror session, not
 * a node's traffic). */
static __always_inline __u32 tunnel_inner(const struct packet *pkt, const struct flow *flow, __u8 *ethernet,
					  __u16 *proto)
{
	*ethernet = 0;
	if (flow->protocol == IPPROTO_IPIP || flow->protocol == IPPROTO_IPV6) {
		*proto = flow->protocol == IPPROTO_IPIP ? bpf_htons(ETH_P_IP) : bpf_htons(ETH_P_IPV6);
		return flow->l4;
	}
	if (flow->protocol == IPPROTO_GRE) {
		__be16 head[2];
		if (load(pkt, flow->l4, head, sizeof(head)) < 0)
			return 0;
		__u16 flags = bpf_ntohs(head[0]);
		/* Version 0 only; no source routing (deprecated). */
		if ((flags & 0x0007) || (flags & 0x4000))
			return 0;
		__u32 len = 4 + ((flags & 0x8000) ? 4 : 0) + ((flags & 0x2000) ? 4 : 0) + ((flags & 0x1000) ? 4 : 0);
		if (head[1] == bpf_htons(0x6558)) {
			*ethernet = 1;
			return flow->l4 + len;
		}
		if (head[1] == bpf_htons(ETH_P_IP) || head[1] == bpf_htons(ETH_P_IPV6)) {
			*proto = head[1];
			return flow->l4 + len;
		}
		return 0;
	}
	if (flow->protocol != IPPROTO_UDP)
		return 0;
	__be16 ports[2];
	if (load(pkt, flow->l4, ports, sizeof(ports)) < 0)
		return 0;
	__u32 udp_end = flow->l4 + sizeof(struct udphdr);
	return udp_tunnel(pkt, tunnel_port(ports[1]) ? ports[1] : ports[0], udp_end, ethernet, proto);
}

/* The packet's flow: the IP header after the link layer (none on an L3
 * device; VLAN tags stepped over), and, for a tunnel's packet, the inner
 * packet's instead, up to TUNNEL_DEPTH_MAX tunnels deep as the replay's
 * decoder opens them (a deeper one is observed by the last packet opened,
 * and counted). A tunnel whose inner packet does not parse is left
 * closed. */
static __always_inline int parse_ip(const struct packet *pkt, struct flow *flow)
{
	__u16 proto = pkt->protocol;
	__u32 l3 = 0;
	if (pkt->l2 && ether_type(pkt, 0, &proto, &l3) < 0)
		return -1;
	if (parse_l3(pkt, proto, l3, flow) < 0)
		return -1;
	__u8 ethernet;
#pragma unroll
	for (int depth = 0; depth < TUNNEL_DEPTH_MAX; depth++) {
		__u32 inner = tunnel_inner(pkt, flow, &ethernet, &proto);
		if (inner == 0)
			return 0;
		l3 = opaque(inner, 0xffff);
		/* parse_l3 writes the flow only once the inner header is
		 * whole: a tunnel that does not parse leaves the outer one. */
		if ((ethernet && ether_type(pkt, l3, &proto, &l3) < 0) || parse_l3(pkt, proto, l3, flow) < 0)
			return 0;
	}
	if (tunnel_inner(pkt, flow, &ethernet, &proto) != 0)
		count(COUNTER_PARSE_LIMIT);
	return 0;
}

/* size bytes of the ring (a constant: an event, a banner or a DNS event),
 * counted as lost when the ring is full. */
static __always_inline void *reserve_bytes(__u64 size)
{
	void *event = bpf_ringbuf_reserve(&events, size, 0);
	if (!event)
		count(COUNTER_LOST);
	return event;
}

static __always_inline struct event *reserve(void)
{
	return reserve_bytes(sizeof(struct event));
}

static __always_inline void fill_header(struct event *event, const struct packet *pkt, const struct flow *flow,
					__u8 kind, __u8 direction, __u16 src_port, __u16 dst_port)
{
	/* Ring buffer memory is not zeroed. */
	__builtin_memset(&event->header, 0, sizeof(event->header));
	event->header.timestamp_ns = bpf_ktime_get_ns();
	event->header.ifindex = pkt->ifindex;
	event->header.kind = kind;
	event->header.direction = direction;
	event->header.family = flow->family;
	event->header.protocol = flow->protocol;
	__builtin_memcpy(event->header.src, flow->src, 16);
	__builtin_memcpy(event->header.dst, flow->dst, 16);
	event->header.src_port = src_port;
	event->header.dst_port = dst_port;
	event->header.wire_len = pkt->len;
}

/* Copies n bytes at offset (n already in [1, the size of data] on its
 * register, see clamp_len) into data, the data of the reserved event that
 * header begins, and submits it; discards it when the copy fails. */
static __always_inline void copy_submit(struct event_header *header, __u8 *data, const struct packet *pkt,
					__u32 offset, __u32 n)
{
	if (load_bytes(pkt, offset, data, n) < 0) {
		bpf_ringbuf_discard(header, 0);
		count(COUNTER_COPY_FAILED);
		return;
	}
	header->data_len = n;
	bpf_ringbuf_submit(header, 0);
	count(COUNTER_EVENTS);
}

/* Copies len bytes at offset (cut to [1, max]) into the event's data and
 * submits it; discards it when the copy fails. */
static __always_inline void submit_copy(struct event *event, const struct packet *pkt, __u32 offset, __u32 len,
					__u32 max)
{
	copy_submit(&event->header, event->data, pkt, offset, clamp_len(len, max));
}

/* A banner event: the payload (payload_len bytes at payload, cut to
 * BANNER_MAX) and the segment's sequence number. */
static __always_inline void emit_banner(const struct packet *pkt, const struct flow *flow, __u8 direction,
					 __u16 src_port, __u16 dst_port, __u32 payload, __u32 payload_len, __u32 seq)
{
	struct banner_event *event = reserve_bytes(sizeof(*event));
	if (!event)
		return;
	fill_header((struct event *)event, pkt, flow, EVENT_BANNER, direction, src_port, dst_port);
	event->header.seq = seq;
	copy_submit(&event->header, event->data, pkt, payload, clamp_len_to(payload_len, BANNER_MAX, BANNER_MAX - 1));
}

/* How many bytes after this first payload still belong to the TLS
 * handshake record it begins (0 when it begins none, or holds all of it),
 * at most BANNER_FOLLOW_MAX in all. */
static __always_inline __u16 handshake_follow(const struct packet *pkt, __u32 payload, __u32 payload_len)
{
	__u8 record[5];
	if (payload_len < sizeof(record) || load(pkt, payload, record, sizeof(record)) < 0)
		return 0;
	if (record[0] != 22 || record[1] != 3 || record[2] > 4)
		return 0;
	__u32 total = sizeof(record) + (((__u32)record[3] << 8) | record[4]);
	if (total > BANNER_FOLLOW_MAX)
		total = BANNER_FOLLOW_MAX;
	return total > payload_len ? total - payload_len : 0;
}

/* Whether the payload begins a proxy handshake: a SOCKS 5 greeting
 * (version 5, n methods, exactly 2 + n bytes), a SOCKS 4 CONNECT
 * request, or an HTTP CONNECT request. */
static __always_inline int proxy_request(const struct packet *pkt, __u32 payload, __u32 payload_len)
{
	__u8 b[8] = {};
	if (payload_len >= 8) {
		if (load(pkt, payload, b, 8) < 0)
			return 0;
	} else if (payload_len < 3 || load(pkt, payload, b, 3) < 0) {
		return 0;
	}
	if (b[0] == 5 && b[1] >= 1 && b[1] <= 16 && payload_len == 2 + (__u32)b[1])
		return 1;
	if (b[0] == 4 && b[1] == 1 && payload_len >= 9)
		return 1;
	return payload_len >= 8 && b[0] == 'C' && b[1] == 'O' && b[2] == 'N' && b[3] == 'N' && b[4] == 'E' &&
	       b[5] == 'C' && b[6] == 'T' && b[7] == ' ';
}

/* Whether the reverse of the flow `key` began a proxy handshake (so this
 * is the proxy's answer). */
static __always_inline int answers_proxy(const struct flow_key *key)
{
	struct flow_key reverse = {};
	__builtin_memcpy(reverse.src, key->dst, 16);
	__builtin_memcpy(reverse.dst, key->src, 16);
	reverse.src_port = key->dst_port;
	reverse.dst_port = key->src_port;
	reverse.protocol = key->protocol;
	reverse.family = key->family;
	struct flow_state *state = bpf_map_lookup_elem(&flows, &reverse);
	return state && state->proxy;
}

/* Whether two flow keys are equal (five 8-byte words). */
static __always_inline int same_flow(const struct flow_key *a, const struct flow_key *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;
	return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) | (x[4] ^ y[4])) == 0;
}

/* A non-SYN packet of a flow: a flow sample at most once per
 * flow_sample_ns, and a banner event for the flow's first payload
 * (payload_len bytes at payload; 0 for none; seq the TCP sequence number),
 * for the payloads that continue a TLS handshake record it began, and for
 * the PROXY_PARTS payloads after a proxy handshake (its own, or the one
 * the reverse flow began). */
static __always_inline void observe_flow(const struct packet *pkt, const struct flow *flow, __u8 direction,
					 __u16 src_port, __u16 dst_port, __u32 payload, __u32 payload_len, __u32 seq)
{
	struct flow_key key = {};
	__builtin_memcpy(key.src, flow->src, 16);
	__builtin_memcpy(key.dst, flow->dst, 16);
	key.src_port = src_port;
	key.dst_port = dst_port;
	key.protocol = flow->protocol;
	key.family = flow->family;
	__u64 now = flow->now;
	__u32 words[10];
	__builtin_memcpy(words, &key, sizeof(words));
	__u32 slot_index = words[0] ^ words[3] ^ words[4] ^ words[7] ^ words[8];
	slot_index = (slot_index ^ (slot_index >> 16) ^ (slot_index >> 6)) & (FLOW_CACHE_SLOTS - 1);
	struct flow_cache_slot *slot = bpf_map_lookup_elem(&flow_cache, &slot_index);
	if (slot && now - slot->state.sampled_ns <= flow_sample_ns &&
	    (payload_len == 0 || slot->state.banner_seen) && same_flow(&slot->key, &key))
		return;
	struct flow_state *state = bpf_map_lookup_elem(&flows, &key);
	if (!state) {
		struct flow_state fresh = {};
		/* A flow first seen now is sampled now. */
		fresh.sampled_ns = now - flow_sample_ns - 1;
		bpf_map_update_elem(&flows, &key, &fresh, BPF_NOEXIST);
		state = bpf_map_lookup_elem(&flows, &key);
		if (!state)
			return;
	}
	if (now - state->sampled_ns > flow_sample_ns) {
		state->sampled_ns = now;
		struct event *event = reserve();
		if (event) {
			fill_header(event, pkt, flow, EVENT_FLOW_SAMPLE, direction, src_port, dst_port);
			bpf_ringbuf_submit(event, 0);
			count(COUNTER_EVENTS);
		}
	}
	if (payload_len != 0 && !state->banner_seen) {
		if (state->banner_follow != 0) {
			/* A TLS handshake record going on. */
			__u32 left = state->banner_follow;
			state->banner_follow = payload_len >= left ? 0 : left - payload_len;
		} else if (state->proxy_parts != 0) {
			/* A payload after a proxy handshake: a hello may begin here. */
			state->proxy_parts -= 1;
			state->banner_follow = handshake_follow(pkt, payload, payload_len);
		} else {
			/* The flow's first payload. */
			state->banner_follow = handshake_follow(pkt, payload, payload_len);
			if (state->banner_follow == 0 && proxy_request(pkt, payload, payload_len)) {
				state->proxy = 1;
				state->proxy_parts = PROXY_PARTS;
			} else if (state->banner_follow == 0 && answers_proxy(&key)) {
				state->proxy_parts = PROXY_PARTS;
			}
		}
		state->banner_seen = state->banner_follow == 0 && state->proxy_parts == 0;
		emit_banner(pkt, flow, direction, src_port, dst_port, payload, payload_len, seq);
	}
	if (slot) {
		slot->key = key;
		slot->state = *state;
	}
}

/* A DNS event of the payload's len bytes at offset (cut to dns_max_payload
 * for a UDP response, counted), with seq for a TCP segment's part: in the
 * ring's usual event when it fits, else in a DNS_MAX one. */
static __always_inline void emit_dns(const struct packet *pkt, const struct flow *flow, __u8 kind, __u8 direction,
				     __u16 src_port, __u16 dst_port, __u32 offset, __u32 len, __u32 seq)
{
	__u32 max = kind == EVENT_DNS_SEGMENT ? DNS_MAX : dns_max_payload;
	if (max < 1 || max > DNS_MAX)
		max = DNS_MAX;
	if (len > max)
		count(COUNTER_CUT);
	/* Most answers fit the ring's usual event; only a longer one
	 * reserves the large one. */
	if (len <= EVENT_MAX_DATA || max <= EVENT_MAX_DATA) {
		struct event *event = reserve();
		if (!event)
			return;
		fill_header(event, pkt, flow, kind, direction, src_port, dst_port);
		event->header.seq = seq;
		submit_copy(event, pkt, offset, len, max < EVENT_MAX_DATA ? max : EVENT_MAX_DATA);
		return;
	}
	struct dns_event *event = reserve_bytes(sizeof(*event));
	if (!event)
		return;
	fill_header((struct event *)event, pkt, flow, kind, direction, src_port, dst_port);
	event->header.seq = seq;
	copy_submit(&event->header, event->data, pkt, offset, clamp_len_to(len, max, DNS_MAX - 1));
}

/* The payload of a TCP segment from port 53 (payload_len bytes at payload,
 * from sequence number seq) as DNS events of up to DNS_MAX bytes each. */
static __always_inline void emit_dns_segment(const struct packet *pkt, const struct flow *flow, __u8 direction,
					     __u16 src_port, __u16 dst_port, __u32 payload, __u32 payload_len,
					     __u32 seq)
{
#pragma unroll
	for (__u32 part = 0; part < DNS_SEGMENT_PARTS; part++) {
		__u32 done = part * DNS_MAX;
		if (done >= payload_len)
			return;
		__u32 left = payload_len - done;
		if (part == DNS_SEGMENT_PARTS - 1 && left > DNS_MAX)
			count(COUNTER_CUT);
		emit_dns(pkt, flow, EVENT_DNS_SEGMENT, direction, src_port, dst_port, payload + done,
			 left > DNS_MAX ? DNS_MAX : left, seq + done);
	}
}

static __always_inline void observe_tcp(const struct packet *pkt, const struct flow *flow, __u8 direction)
{
	struct tcphdr tcp;
	if (load(pkt, flow->l4, &tcp, sizeof(tcp)) < 0)
		return;
	if (!tcp.syn) {
		__u32 header = tcp.doff * 4;
		if (header < sizeof(tcp) || header > flow->l4_len)
			return;
		/* What the packet holds of the payload, if it was cut short. */
		__u32 payload_len = flow->l4_len - header;
		__u32 held = pkt->len > flow->l4 + header ? pkt->len - flow->l4 - header : 0;
		if (payload_len > held)
			payload_len = held;
		if (tcp.source == bpf_htons(53) && payload_len != 0)
			emit_dns_segment(pkt, flow, direction, 53, bpf_ntohs(tcp.dest), flow->l4 + header, payload_len,
					 bpf_ntohl(tcp.seq));
		observe_flow(pkt, flow, direction, bpf_ntohs(tcp.source), bpf_ntohs(tcp.dest), flow->l4 + header,
			     payload_len, bpf_ntohl(tcp.seq));
		return;
	}
	if (tcp.rst || tcp.fin)
		return;
	__u32 header = tcp.doff * 4;
	if (header < sizeof(tcp) || header > 60)
		return;
	struct event *event = reserve();
	if (!event)
		return;
	fill_header(event, pkt, flow, tcp.ack ? EVENT_SYN_ACK : EVENT_SYN, direction, bpf_ntohs(tcp.source),
		    bpf_ntohs(tcp.dest));
	submit_copy(event, pkt, flow->l4, header, 60);
}

static __always_inline void observe_udp(const struct packet *pkt, const struct flow *flow, __u8 direction)
{
	struct udphdr udp;
	if (load(pkt, flow->l4, &udp, sizeof(udp)) < 0)
		return;
	if (udp.source != bpf_htons(53)) {
		observe_flow(pkt, flow, direction, bpf_ntohs(udp.source), bpf_ntohs(udp.dest), 0, 0, 0);
		return;
	}
	__u32 payload = bpf_ntohs(udp.len);
	if (payload <= sizeof(udp))
		return;
	payload -= sizeof(udp);
	/* What the packet holds, if it was cut short. */
	__u32 available = pkt->len > flow->l4 + sizeof(udp) ? pkt->len - flow->l4 - sizeof(udp) : 0;
	if (payload > available) {
		count(COUNTER_FRAGMENTED);
		payload = available;
	}
	if (payload == 0)
		return;
	emit_dns(pkt, flow, EVENT_DNS_RESPONSE, direction, bpf_ntohs(udp.source), bpf_ntohs(udp.dest),
		 flow->l4 + sizeof(udp), payload, 0);
}

/* Reports the drops of a banned edge since its last report, at most once
 * per DROP_REPORT_NS (racing CPUs may both report; the counts still add
 * up). */
static __always_inline void report_drops(const struct packet *pkt, const struct flow *flow, struct ban *ban,
					 __u8 direction, __u16 src_port, __u16 dst_port, __u64 now)
{
	if (now - ban->reported_ns < DROP_REPORT_NS)
		return;
	ban->reported_ns = now;
	__u64 drops = ban->drops;
	__u64 since = drops - ban->reported_drops;
	ban->reported_drops = drops;
	struct event *event = reserve();
	if (!event)
		return;
	fill_header(event, pkt, flow, EVENT_DROP, direction, src_port, dst_port);
	__builtin_memcpy(event->data, &since, sizeof(since));
	event->header.data_len = sizeof(since);
	bpf_ringbuf_submit(event, 0);
	count(COUNTER_EVENTS);
}

/* Whether the packet belongs to an edge banned until later than now. */
static __always_inline int banned(const struct packet *pkt, const struct flow *flow, __u8 direction)
{
	if (flow->protocol != IPPROTO_TCP && flow->protocol != IPPROTO_UDP)
		return 0;
	__u32 zero = 0;
	__u64 *gate = bpf_map_lookup_elem(&ban_gate, &zero);
	/* No ban was ever set, or none lasts until now (the coarse clock
	 * lags, so it errs towards looking). */
	if (!gate || *gate == 0 || flow->now >= *gate)
		return 0;
	__be16 ports[2];
	if (load(pkt, flow->l4, ports, sizeof(ports)) < 0)
		return 0;
	struct edge_key key = {};
	__builtin_memcpy(key.src, flow->src, 16);
	__builtin_memcpy(key.dst, flow->dst, 16);
	key.dst_port = bpf_ntohs(ports[1]);
	key.protocol = flow->protocol;
	key.family = flow->family;
	struct ban *ban = bpf_map_lookup_elem(&banned_edges, &key);
	if (!ban)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	if (now >= ban->expires_ns)
		return 0;
	__sync_fetch_and_add(&ban->drops, 1);
	count(COUNTER_DROPPED);
	report_drops(pkt, flow, ban, direction, bpf_ntohs(ports[0]), key.dst_port, now);
	return 1;
}

/* Whether the egress filter lets the packet's source be observed. */
static __always_inline int watched_source(const struct flow *flow)
{
	struct source_prefix key = { .prefix_len = 128 };
	if (flow->family == 4) {
		key.address[10] = 0xff;
		key.address[11] = 0xff;
		__builtin_memcpy(&key.address[12], flow->src, 4);
	} else {
		__builtin_memcpy(key.address, flow->src, 16);
	}
	return bpf_map_lookup_elem(&egress_sources, &key) != 0;
}

/* Observes one parsed packet; whether it belongs to a banned edge and must
 * be dropped. */
static __always_inline int observe(const struct packet *pkt, struct flow *flow, __u8 direction)
{
	flow->now = bpf_ktime_get_coarse_ns();
	if (banned(pkt, flow, direction))
		return 1;
	if (direction == DIRECTION_EGRESS && egress_filter && !watched_source(flow))
		return 0;
	if (flow->protocol == IPPROTO_TCP)
		observe_tcp(pkt, flow, direction);
	else if (flow->protocol == IPPROTO_UDP)
		observe_udp(pkt, flow, direction);
	return 0;
}

/* The observation of a parsed packet, as global functions: the verifier
 * checks each once, with the flow's fields unknown, rather than once per
 * way the parse can go (link type, VLAN depth, tunnel kind), which would
 * multiply its work past its limits. The packet's pointers are taken from
 * the context again (a pointer handed in memory would be a plain number
 * here). */
__attribute__((noinline)) int observe_skb(struct __sk_buff *skb, struct flow *flow, __u32 direction)
{
	if (!flow)
		return 0;
	struct packet pkt = {
		.ctx = skb,
		.data = (void *)(long)skb->data,
		.data_end = (void *)(long)skb->data_end,
		.len = skb->len,
		.ifindex = skb->ifindex,
		.xdp = 0,
	};
	return observe(&pkt, flow, direction);
}

__attribute__((noinline)) int observe_xdp_md(struct xdp_md *xdp, struct flow *flow)
{
	if (!flow)
		return 0;
	struct packet pkt = {
		.ctx = xdp,
		.data = (void *)(long)xdp->data,
		.data_end = (void *)(long)xdp->data_end,
		.len = bpf_xdp_get_buff_len(xdp),
		.ifindex = xdp->ingress_ifindex,
		.xdp = 1,
	};
	return observe(&pkt, flow, DIRECTION_INGRESS);
}

/* The common packet answered from the flow cache alone: a TCP segment
 * without SYN, or a UDP datagram that is not a tunnel's, neither from port
 * 53, right after an IPv4 header without options or an IPv6 header without
 * extension headers, themselves right after an untagged Ethernet header
 * (l2) or first on an L3 device, of a flow the cache holds as neither due
 * for a sample nor waiting for its banner, while no ban may hold and no
 * egress filter applies: 1 when it is answered (nothing to do), 0 for the
 * full path, which answers such a packet the same way (observe_flow's
 * first test). It reads the packet's headers in place and one cache slot,
 * so the code an established flow's packet runs stays a few dozen
 * instructions: on bulk traffic the full path cost several times what it
 * cost in a hot loop, likely its code and stack fetched again for every
 * packet (README, Measured). */
static __always_inline int known_flow(struct __sk_buff *skb, __u8 l2, __u8 direction)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u32 l3 = l2 ? ETH_HLEN : 0;
	if (data + l3 > data_end || (direction == DIRECTION_EGRESS && egress_filter))
		return 0;
	__be16 proto = l2 ? ((struct ethhdr *)data)->h_proto : (__be16)skb->protocol;
	/* The flow key's words as observe_flow makes them (addresses in 16
	 * bytes, IPv4 in the first 4), the transport protocol and header, and
	 * the IP payload's length. */
	__u64 k0, k1, k2, k3;
	__u32 family, total;
	__u8 protocol;
	void *l4;
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data + l3;
		if ((void *)(ip + 1) > data_end || *(__u8 *)ip != 0x45 || (ip->frag_off & bpf_htons(0x1fff)))
			return 0;
		k0 = ip->saddr;
		k1 = 0;
		k2 = ip->daddr;
		k3 = 0;
		family = 4;
		protocol = ip->protocol;
		total = bpf_ntohs(ip->tot_len);
		if (total < sizeof(*ip))
			return 0;
		total -= sizeof(*ip);
		l4 = ip + 1;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data + l3;
		if ((void *)(ip6 + 1) > data_end)
			return 0;
		const __u64 *addresses = (const __u64 *)&ip6->saddr;
		k0 = addresses[0];
		k1 = addresses[1];
		k2 = addresses[2];
		k3 = addresses[3];
		family = 6;
		protocol = ip6->nexthdr;
		total = bpf_ntohs(ip6->payload_len);
		l4 = ip6 + 1;
	} else {
		return 0;
	}
	/* Both ports first, in TCP and UDP alike. */
	__be16 *ports_be = l4;
	__u32 payload;
	if (protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = l4;
		if ((void *)(tcp + 1) > data_end || tcp->syn)
			return 0;
		__u32 header = tcp->doff * 4;
		if (header < sizeof(*tcp) || total < header)
			return 0;
		payload = total - header;
	} else if (protocol == IPPROTO_UDP) {
		struct udphdr *udp = l4;
		if ((void *)(udp + 1) > data_end || tunnel_port(udp->source) || tunnel_port(udp->dest))
			return 0;
		payload = 0; /* UDP flows have no banner */
	} else {
		return 0;
	}
	if (ports_be[0] == bpf_htons(53))
		return 0;
	__u32 zero = 0;
	__u64 *gate = bpf_map_lookup_elem(&ban_gate, &zero);
	if (!gate || *gate != 0)
		return 0;
	__u32 ports = (__u32)bpf_ntohs(ports_be[0]) | (__u32)bpf_ntohs(ports_be[1]) << 16;
	__u32 index = (__u32)k0 ^ (__u32)(k1 >> 32) ^ (__u32)k2 ^ (__u32)(k3 >> 32) ^ ports;
	index = (index ^ (index >> 16) ^ (index >> 6)) & (FLOW_CACHE_SLOTS - 1);
	struct flow_cache_slot *slot = bpf_map_lookup_elem(&flow_cache, &index);
	if (!slot)
		return 0;
	const __u64 *key = (const __u64 *)&slot->key;
	__u64 tail = ports | (__u64)(protocol | family << 8) << 32;
	if ((key[0] ^ k0) | (key[1] ^ k1) | (key[2] ^ k2) | (key[3] ^ k3) | (key[4] ^ tail))
		return 0;
	if (payload != 0 && !slot->state.banner_seen)
		return 0;
	return bpf_ktime_get_coarse_ns() - slot->state.sampled_ns <= flow_sample_ns;
}

static __always_inline int observe_tc(struct __sk_buff *skb, __u8 direction, __u8 l2)
{
	if (known_flow(skb, l2, direction))
		return TC_ACT_UNSPEC;
	struct packet pkt = {
		.ctx = skb,
		.data = (void *)(long)skb->data,
		.data_end = (void *)(long)skb->data_end,
		.len = skb->len,
		.xdp = 0,
		.l2 = l2,
		.protocol = l2 ? 0 : (__u16)skb->protocol,
	};
	struct flow flow = {};
	if (parse_ip(&pkt, &flow) < 0)
		return TC_ACT_UNSPEC;
	return observe_skb(skb, &flow, direction) ? TC_ACT_SHOT : TC_ACT_UNSPEC;
}

/* For tcx and for classic clsact filters alike. */
SEC("classifier")
int observe_ingress(struct __sk_buff *skb)
{
	return observe_tc(skb, DIRECTION_INGRESS, 1);
}

SEC("classifier")
int observe_egress(struct __sk_buff *skb)
{
	return observe_tc(skb, DIRECTION_EGRESS, 1);
}

/* The same for L3 devices (no Ethernet header: ipip, sit, WireGuard, tun),
 * chosen at attach by the device's link type. */
SEC("classifier")
int observe_ingress_l3(struct __sk_buff *skb)
{
	return observe_tc(skb, DIRECTION_INGRESS, 0);
}

SEC("classifier")
int observe_egress_l3(struct __sk_buff *skb)
{
	return observe_tc(skb, DIRECTION_EGRESS, 0);
}

/* The ingress observer where tc cannot attach: XDP sees only what arrives
 * (a SYN-ACK coming back, a DNS answer), so the interface's egress goes
 * unobserved. A banned edge's packet gets XDP_DROP, every other XDP_PASS. */
SEC("xdp")
int observe_xdp(struct xdp_md *xdp)
{
	struct packet pkt = {
		.ctx = xdp,
		.data = (void *)(long)xdp->data,
		.data_end = (void *)(long)xdp->data_end,
		.len = bpf_xdp_get_buff_len(xdp),
		.xdp = 1,
		.l2 = 1,
	};
	struct flow flow = {};
	if (parse_ip(&pkt, &flow) < 0)
		return XDP_PASS;
	return observe_xdp_md(xdp, &flow) ? XDP_DROP : XDP_PASS;
}

/* An empty program attached the same way: the baseline the kernel-cost
 * measurement (capture/examples/kernel_cost.rs) compares the observers with. */
SEC("classifier")
int pass_through(struct __sk_buff *skb)
{
	return TC_ACT_UNSPEC;
}
