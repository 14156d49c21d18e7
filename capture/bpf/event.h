/* The record the observer programs write into the ring buffer; mirrored by
 * `EventHeader` in capture/src/event.rs (same layout, size asserted on both
 * sides). Addresses are in network order, ports in host order; IPv4
 * addresses fill the first 4 bytes of the 16. */
#ifndef EDGEWISE_EVENT_H
#define EDGEWISE_EVENT_H

#include <linux/types.h>

#define EVENT_SYN 1
#define EVENT_SYN_ACK 2
#define EVENT_DNS_RESPONSE 3
#define EVENT_BANNER 4
#define EVENT_FLOW_SAMPLE 5
/* Packets of a banned edge were dropped: the data is the count since the
 * edge's last report (a __u64), at most one report per edge per
 * DROP_REPORT_NS. */
#define EVENT_DROP 6
/* A TCP segment from port 53 (DNS over TCP): the payload from the
 * segment's sequence number, up to DNS_MAX bytes an event; userspace puts
 * the 2-byte framed messages back together. */
#define EVENT_DNS_SEGMENT 7

/* A banned edge's drops are reported at most once per this. */
#define DROP_REPORT_NS (1000ULL * 1000 * 1000)

/* The most bytes of one payload a banner event carries: a ClientHello
 * with post-quantum key shares (about 2 KB) fits. A power of two (the
 * copy's length is masked with BANNER_MAX - 1). */
#define BANNER_MAX 2048

/* When a flow's first payload starts a TLS handshake record that goes on
 * past it, the next payloads are banner events too, until the record's
 * bytes or this many bytes from the flow's first payload are seen. */
#define BANNER_FOLLOW_MAX 8192

/* When a flow begins a proxy handshake (a SOCKS 4 or 5 request, HTTP
 * CONNECT), or answers one, its next this many payloads are banner events
 * too: the TLS hello that follows the handshake is among them. */
#define PROXY_PARTS 3

#define DIRECTION_INGRESS 0
#define DIRECTION_EGRESS 1

/* The most payload bytes an event carries (TCP headers need 60). */
#define EVENT_MAX_DATA 512

/* The most bytes of DNS a DNS event carries: an EDNS0 answer of the usual
 * 4,096-byte buffer. A power of two (the copy's length is masked with
 * DNS_MAX - 1). */
#define DNS_MAX 4096
/* The most DNS events one TCP segment from port 53 gives (a segment the
 * stack has not cut to the path's MTU yet can be long): past
 * DNS_MAX * DNS_SEGMENT_PARTS bytes it is cut, and counted. */
#define DNS_SEGMENT_PARTS 4

#define COUNTER_EVENTS 0
/* Events lost because the ring was full. */
#define COUNTER_LOST 1
#define COUNTER_DROPPED 2
/* Events whose data is cut: a DNS response longer than the copy limit, a
 * TCP segment from port 53 longer than its events hold. */
#define COUNTER_CUT 3
/* Events lost because the copy from the packet failed. */
#define COUNTER_COPY_FAILED 4
/* Packets not observed because their headers go past what the parser
 * follows: a fourth VLAN tag, a fifth tunnel inside tunnels, a fifth IPv6
 * extension header. */
#define COUNTER_PARSE_LIMIT 5
/* UDP DNS answers larger than their packet: the first IP fragment of an
 * answer over the path's MTU, delivered with what it holds (the other
 * fragments are not followed). */
#define COUNTER_FRAGMENTED 6
#define COUNTER_COUNT 7

/* IPv6 extension headers stepped over before the transport header, at
 * most (a packet with more is counted in COUNTER_PARSE_LIMIT). */
#define IPV6_EXTENSIONS_MAX 4

/* Tunnels opened in one packet, at most: as many as the replay's decoder
 * (edgewise-packet's MAX_TUNNEL_DEPTH) opens. */
#define TUNNEL_DEPTH_MAX 4

/* VLAN tags followed in a frame: as many as the replay's decoder
 * (etherparse) follows. */
#define VLAN_TAGS_MAX 3

/* VXLAN (IANA's port, and the one Linux and Flannel use by default),
 * VXLAN-GPE and Geneve: opened to the inner packet. */

#define VXLAN_PORT 4789
#define VXLAN_LINUX_PORT 8472
#define GENEVE_PORT 6081
#define VXLAN_GPE_PORT 4790

struct event_header {
	__u64 timestamp_ns;
	__u32 ifindex;
	__u8 kind;
	__u8 direction;
	__u8 family;
	__u8 protocol;
	__u8 src[16];
	__u8 dst[16];
	__u16 src_port;
	__u16 dst_port;
	__u16 data_len;
	__u16 pad0;
	__u32 wire_len;
	/* A TCP segment's sequence number (host order); 0 otherwise. */
	__u32 seq;
};

_Static_assert(sizeof(struct event_header) == 64, "event_header is 64 bytes");

struct event {
	struct event_header header;
	__u8 data[EVENT_MAX_DATA];
};

/* A banner event: reserved at this size only for payloads a banner takes,
 * so the ring's other events stay small. */
struct banner_event {
	struct event_header header;
	__u8 data[BANNER_MAX];
};

/* A DNS event (a UDP response, or part of a TCP segment from port 53):
 * reserved at this size only for those. */
struct dns_event {
	struct event_header header;
	__u8 data[DNS_MAX];
};

/* A flow as the sampling map keys it: the 5-tuple as the packet has it
 * (each direction is its own flow). */
struct flow_key {
	__u8 src[16];
	__u8 dst[16];
	__u16 src_port;
	__u16 dst_port;
	__u8 protocol;
	__u8 family;
	__u16 pad;
};

/* When the flow was last sampled, whether its first payload was seen, and
 * how many bytes of a TLS handshake record begun there are still to follow
 * as banner events. */
struct flow_state {
	__u64 sampled_ns;
	__u8 banner_seen;
	/* The flow began a proxy handshake (SOCKS 4 or 5, HTTP CONNECT). */
	__u8 proxy;
	__u16 banner_follow;
	/* Payloads after a proxy handshake's first still to be banners. */
	__u8 proxy_parts;
	__u8 pad[3];
};

/* A source prefix the egress observer watches (LPM trie key: prefix length
 * in bits over the 16 address bytes; IPv4 as IPv4-mapped IPv6). */
struct source_prefix {
	__u32 prefix_len;
	__u8 address[16];
};

/* A banned edge: client address to server address, port and protocol;
 * mirrored by `EdgeKey` in capture/src/sys.rs. IPv4 addresses fill the
 * first 4 bytes, the rest is zero; family is 4 or 6. */
struct edge_key {
	__u8 src[16];
	__u8 dst[16];
	__u16 dst_port;
	__u8 protocol;
	__u8 family;
	__u32 pad;
};

_Static_assert(sizeof(struct edge_key) == 40, "edge_key is 40 bytes");

/* Until when (bpf_ktime_get_ns) the edge is dropped, how many packets
 * were, and when and at what count the last drop event went out; mirrored
 * by `BanValue`. */
struct ban {
	__u64 expires_ns;
	__u64 drops;
	__u64 reported_ns;
	__u64 reported_drops;
};

_Static_assert(sizeof(struct ban) == 32, "ban is 32 bytes");

#endif
