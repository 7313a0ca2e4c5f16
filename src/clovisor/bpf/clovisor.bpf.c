// SPDX-License-Identifier: GPL-2.0
/*
 * clovisor: L3/L4 session evidence, compiled once (scripts/setup.d/clovisor.sh) into build/clovisor/clovisor.bpf.o.
 *
 * Socket tier (always on, one attach per node): tracepoints sock:inet_sock_set_state, tcp:tcp_retransmit_skb,
 * tcp:tcp_send_reset, tcp:tcp_receive_reset. Live connections sit in `conns` (keyed by the socket address) and
 * are emitted once, at close, on the perf array `events`. Cost grows with connection churn, not packets.
 *
 * Packet tier (opt-in per workload): two tc programs for the host-side veth of a workload, `tc_from_pod`
 * (veth ingress: packets leaving the workload) and `tc_to_pod` (veth egress). Per 5-tuple counters in `flows`.
 * They always return TC_ACT_UNSPEC so other tc programs keep running after them.
 *
 * Nothing is dropped silently: a full map or a full perf ring increments a counter in `stats`.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#define AF_INET 2
#define AF_INET6 10
#define ETH_P_IP 0x0800
#define IPPROTO_TCP_ 6
#define TC_ACT_UNSPEC_ (-1)

/* TCP states (include/net/tcp_states.h). */
#define ST_ESTABLISHED 1
#define ST_SYN_SENT 2
#define ST_SYN_RECV 3
#define ST_CLOSE 7
#define ST_LISTEN 10

/* Indexes of `stats`; the reader in src/clovisor/records.ts names them. */
enum {
  STAT_CONNS_FULL = 0,     /* a new connection did not fit in `conns` */
  STAT_EVENTS_LOST,        /* bpf_perf_event_output failed: ring full */
  STAT_FLOWS_FULL,         /* a new 5-tuple did not fit in `flows` */
  STAT_EVENTS_SENT,
  STAT_RST_NO_SOCKET,      /* resets sent for a segment that had no socket (connection refused) */
  STAT_UNTRACKED_CLOSE,    /* a close of a socket first seen mid-life (before the tracer started) */
  STAT_PACKETS,
  STAT_EGRESS_SKIPPED,     /* outbound connections not traced: destination not in `egress_match` */
  STAT_HTTP_SENT,          /* request heads emitted on `http_events` (packet tier) */
  STAT_HTTP_LOST,          /* request heads that did not fit in `http_events` */
  STAT_MAX,
};

enum { ROLE_UNKNOWN = 0, ROLE_CLIENT = 1, ROLE_SERVER = 2 };
enum { CLOSE_FIN = 1, CLOSE_RESET = 2, CLOSE_CONNECT_FAILED = 3, CLOSE_HANDSHAKE_FAILED = 4 };
/* Not a session: a reset sent by a socket already in CLOSE (an abortive close, SO_LINGER 0 / tcp_disconnect, sets
 * CLOSE before it sends the RST, so the session was emitted and its record deleted). The reader adds it to the
 * session it just received for the same socket (same sk, netns and ports), its short-lived tombstone. */
#define EVENT_LATE_RESET 5

struct conn {
  __u64 t_start;   /* SYN sent / SYN received (bpf_ktime_get_ns) */
  __u64 t_est;
  __u32 netns;
  __u16 family;
  __u8 role;
  __u8 state;      /* last TCP state seen (open connections in evidence) */
  __u16 sport;     /* local port at ESTABLISHED: a closing socket has already released it */
  __u16 dport;
  __u32 retrans;
  __u32 syn_retrans;
  __u32 rst_sent;
  __u32 rst_rcvd;
  __u8 skip;       /* outbound to a destination not in `egress_match`: closed silently, never emitted */
  __u8 pad[3];
};

/* One closed session, as emitted on `events`. Layout mirrored by decodeSessionEvent() in records.ts. */
struct session_event {
  __u64 sk;
  __u64 t_start;
  __u64 t_est;
  __u64 t_close;
  __u64 bytes_acked;
  __u64 bytes_received;
  __u32 netns;
  __u32 segs_in;
  __u32 segs_out;
  __u32 total_retrans;
  __u32 srtt_us;
  __u32 retrans;
  __u32 syn_retrans;
  __u32 rst_sent;
  __u32 rst_rcvd;
  __u16 family;
  __u16 sport;
  __u16 dport;
  __u8 role;
  __u8 close_kind;
  __u8 saddr[16];
  __u8 daddr[16];
  __u8 oldstate;
  __u8 pad[7];
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, __u64);
  __type(value, struct conn);
} conns SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
  __uint(key_size, sizeof(__u32));
  __uint(value_size, sizeof(__u32));
} events SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, STAT_MAX);
  __type(key, __u32);
  __type(value, __u64);
} stats SEC(".maps");

/* Network namespaces to trace (inode number → 1); when `filter_on[0]` is 1 only these are traced.
 * `filter_on[1]` is 1 when `egress_match` restricts outbound connections. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1024);
  __type(key, __u32);
  __type(value, __u8);
} netns_filter SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 2);
  __type(key, __u32);
  __type(value, __u32);
} filter_on SEC(".maps");

/* Clovisor's `clovisor_egress_match`: outbound destinations to trace. netns 0 = every traced namespace (an entry
 * without pod prefix), addr 0 = any address ("0:<port>"). Looked up once per outbound connect, at SYN_SENT. */
struct egress_key {
  __u32 netns;
  __u32 addr;      /* network order */
  __u16 port;      /* host order */
  __u16 pad;
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, struct egress_key);
  __type(value, __u8);
} egress_match SEC(".maps");

struct flow_key {
  __u32 ifindex;
  __u32 pod_addr;   /* network order */
  __u32 peer_addr;
  __u16 pod_port;   /* host order */
  __u16 peer_port;
  __u8 proto;
  __u8 pad[3];
};

struct flow {
  __u64 packets[2]; /* [0] from the workload, [1] to the workload */
  __u64 bytes[2];
  __u64 t_first;
  __u64 t_last;
  __u64 t_syn;
  __u64 t_synack;
  __u64 t_req;      /* first client payload */
  __u64 t_resp;     /* first server payload */
  __u32 syn;
  __u32 synack;
  __u32 fin;
  __u32 rst;
  __u32 retrans;    /* data segments whose end is not beyond the highest end seen (heuristic) */
  __u32 seq_end[2];
  __u8 pod_is_client; /* 1 client, 2 server, 0 unknown */
  __u8 have_req;
  __u8 have_resp;
  __u8 pad;
  char req[48];     /* first client payload bytes (plaintext HTTP request line) */
  char resp[16];    /* first server payload bytes ("HTTP/1.1 200 ...") */
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, struct flow_key);
  __type(value, struct flow);
} flows SEC(".maps");

/* Request heads of the packet tier: one record per flow, at its first client payload segment. The record is a
 * struct http_head followed by the packet's first `cap` bytes, which bpf_perf_event_output copies from the skb
 * itself (BPF_F_CTX_LEN_MASK; what bcc's perf_submit_skb does), so neither a scratch buffer nor a loop is needed.
 * The copy is bounded: headers + at most HTTP_HEAD_MAX payload bytes. A ring of its own, so that request heads
 * can never crowd out the session events the l4 evidence is made of. */
#define HTTP_HEAD_MAX 512
#define HTTP_HEAD_MAGIC 0x48545450 /* "HTTP" */

struct http_head {
  __u32 magic;
  __u32 ifindex;
  __u32 pod_addr;   /* network order, as in flow_key */
  __u32 peer_addr;
  __u16 pod_port;   /* host order */
  __u16 peer_port;
  __u16 payload_off; /* where the TCP payload starts in the copied packet */
  __u16 cap;         /* bytes of the packet that follow this header */
  __u64 t;
};

struct {
  __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
  __uint(key_size, sizeof(__u32));
  __uint(value_size, sizeof(__u32));
} http_events SEC(".maps");

static __always_inline void stat_inc(__u32 idx) {
  __u64 *v = bpf_map_lookup_elem(&stats, &idx);
  if (v) __sync_fetch_and_add(v, 1);
}

static __always_inline __u32 sk_netns(struct sock *sk) {
  return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

static __always_inline int netns_wanted(__u32 inum) {
  __u32 zero = 0;
  __u32 *on = bpf_map_lookup_elem(&filter_on, &zero);
  if (!on || *on == 0) return 1;
  return bpf_map_lookup_elem(&netns_filter, &inum) != NULL;
}

static __always_inline int egress_wanted(__u32 inum, __u32 addr, __u16 port) {
  __u32 one = 1;
  __u32 *on = bpf_map_lookup_elem(&filter_on, &one);
  if (!on || *on == 0) return 1;
  struct egress_key k = { .netns = inum, .addr = addr, .port = port };
  if (bpf_map_lookup_elem(&egress_match, &k)) return 1;
  k.addr = 0;
  if (bpf_map_lookup_elem(&egress_match, &k)) return 1;
  k.netns = 0;
  if (bpf_map_lookup_elem(&egress_match, &k)) return 1;
  k.addr = addr;
  return bpf_map_lookup_elem(&egress_match, &k) != NULL;
}

static __always_inline void emit_close(void *ctx, struct sock *sk, struct conn *c, int oldstate) {
  struct session_event e = {};
  struct tcp_sock *tp = (struct tcp_sock *)sk;
  e.sk = (__u64)sk;
  e.t_close = bpf_ktime_get_ns();
  e.netns = c ? c->netns : sk_netns(sk);
  e.family = BPF_CORE_READ(sk, __sk_common.skc_family);
  e.sport = BPF_CORE_READ(sk, __sk_common.skc_num);
  e.dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
  if (e.family == AF_INET) {
    __u32 s = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr), d = BPF_CORE_READ(sk, __sk_common.skc_daddr);
    __builtin_memcpy(e.saddr, &s, 4);
    __builtin_memcpy(e.daddr, &d, 4);
  } else {
    BPF_CORE_READ_INTO(&e.saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
    BPF_CORE_READ_INTO(&e.daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
  }
  e.bytes_acked = BPF_CORE_READ(tp, bytes_acked);
  e.bytes_received = BPF_CORE_READ(tp, bytes_received);
  e.segs_in = BPF_CORE_READ(tp, segs_in);
  e.segs_out = BPF_CORE_READ(tp, segs_out);
  e.total_retrans = BPF_CORE_READ(tp, total_retrans);
  e.srtt_us = BPF_CORE_READ(tp, srtt_us) >> 3;
  e.oldstate = oldstate;
  if (c) {
    e.t_start = c->t_start;
    e.t_est = c->t_est;
    e.role = c->role;
    e.retrans = c->retrans;
    e.syn_retrans = c->syn_retrans;
    e.rst_sent = c->rst_sent;
    e.rst_rcvd = c->rst_rcvd;
    if (!e.sport) e.sport = c->sport;
    if (!e.dport) e.dport = c->dport;
  }
  if (oldstate == ST_SYN_SENT) e.close_kind = CLOSE_CONNECT_FAILED;
  else if (oldstate == ST_SYN_RECV) e.close_kind = CLOSE_HANDSHAKE_FAILED;
  else if (e.rst_sent || e.rst_rcvd || oldstate == ST_ESTABLISHED) e.close_kind = CLOSE_RESET;
  else e.close_kind = CLOSE_FIN;
  if (bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &e, sizeof(e)) == 0) stat_inc(STAT_EVENTS_SENT);
  else stat_inc(STAT_EVENTS_LOST);
}

SEC("tracepoint/sock/inet_sock_set_state")
int tp_inet_sock_set_state(struct trace_event_raw_inet_sock_set_state *ctx) {
  if (BPF_CORE_READ(ctx, protocol) != IPPROTO_TCP_) return 0;
  struct sock *sk = (struct sock *)BPF_CORE_READ(ctx, skaddr);
  int oldstate = BPF_CORE_READ(ctx, oldstate), newstate = BPF_CORE_READ(ctx, newstate);
  __u64 key = (__u64)sk;
  __u32 inum = sk_netns(sk);
  if (!netns_wanted(inum)) return 0;

  if (newstate == ST_SYN_SENT || (newstate == ST_SYN_RECV && oldstate == ST_LISTEN)) {
    struct conn c = {};
    c.t_start = bpf_ktime_get_ns();
    c.netns = inum;
    c.family = BPF_CORE_READ(ctx, family);
    c.role = newstate == ST_SYN_SENT ? ROLE_CLIENT : ROLE_SERVER;
    c.state = newstate;
    if (newstate == ST_SYN_SENT) {
      /* An IPv6 destination matches only "0:<port>" entries (addr 0). */
      __u32 daddr = 0;
      if (c.family == AF_INET) BPF_CORE_READ_INTO(&daddr, ctx, daddr);
      if (!egress_wanted(inum, daddr, BPF_CORE_READ(ctx, dport))) {
        c.skip = 1; /* kept in `conns` so that its close is recognised and stays silent */
        stat_inc(STAT_EGRESS_SKIPPED);
      }
    }
    if (bpf_map_update_elem(&conns, &key, &c, BPF_ANY) != 0) stat_inc(STAT_CONNS_FULL);
    return 0;
  }
  struct conn *c = bpf_map_lookup_elem(&conns, &key);
  if (c) c->state = newstate;
  if (newstate == ST_ESTABLISHED) {
    if (c) {
      c->t_est = bpf_ktime_get_ns();
      c->sport = BPF_CORE_READ(ctx, sport);
      c->dport = BPF_CORE_READ(ctx, dport);
    }
    return 0;
  }
  if (newstate == ST_CLOSE) {
    if (oldstate == ST_LISTEN) return 0; /* a listener going away is not a session */
    if (!c) stat_inc(STAT_UNTRACKED_CLOSE);
    if (!c || !c->skip) emit_close(ctx, sk, c, oldstate);
    if (c) bpf_map_delete_elem(&conns, &key);
  }
  return 0;
}

SEC("tracepoint/tcp/tcp_retransmit_skb")
int tp_tcp_retransmit_skb(struct trace_event_raw_tcp_retransmit_skb *ctx) {
  __u64 key = (__u64)BPF_CORE_READ(ctx, skaddr);
  struct conn *c = bpf_map_lookup_elem(&conns, &key);
  if (!c) return 0;
  __sync_fetch_and_add(&c->retrans, 1);
  if (BPF_CORE_READ(ctx, state) == ST_SYN_SENT) __sync_fetch_and_add(&c->syn_retrans, 1);
  return 0;
}

SEC("tracepoint/tcp/tcp_send_reset")
int tp_tcp_send_reset(struct trace_event_raw_tcp_send_reset *ctx) {
  __u64 key = (__u64)BPF_CORE_READ(ctx, skaddr);
  if (!key) {
    /* No socket: a reset answering a segment nobody listens for (refused connect). */
    struct sk_buff *skb = (struct sk_buff *)BPF_CORE_READ(ctx, skbaddr);
    __u32 inum = skb ? BPF_CORE_READ(skb, dev, nd_net.net, ns.inum) : 0;
    if (netns_wanted(inum)) stat_inc(STAT_RST_NO_SOCKET);
    return 0;
  }
  struct conn *c = bpf_map_lookup_elem(&conns, &key);
  if (c) {
    __sync_fetch_and_add(&c->rst_sent, 1);
    return 0;
  }
  if (BPF_CORE_READ(ctx, state) != ST_CLOSE) return 0;
  struct sock *sk = (struct sock *)key;
  __u32 inum = sk_netns(sk);
  if (!netns_wanted(inum)) return 0;
  struct session_event e = {};
  e.sk = key;
  e.t_close = bpf_ktime_get_ns();
  e.netns = inum;
  e.family = BPF_CORE_READ(sk, __sk_common.skc_family);
  e.sport = BPF_CORE_READ(sk, __sk_common.skc_num);
  e.dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
  e.rst_sent = 1;
  e.close_kind = EVENT_LATE_RESET;
  if (bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &e, sizeof(e)) == 0) stat_inc(STAT_EVENTS_SENT);
  else stat_inc(STAT_EVENTS_LOST);
  return 0;
}

SEC("tracepoint/tcp/tcp_receive_reset")
int tp_tcp_receive_reset(struct trace_event_raw_tcp_event_sk *ctx) {
  __u64 key = (__u64)BPF_CORE_READ(ctx, skaddr);
  struct conn *c = bpf_map_lookup_elem(&conns, &key);
  if (c) __sync_fetch_and_add(&c->rst_rcvd, 1);
  return 0;
}

/* ---- packet tier ---- */

static __always_inline int is_method_start(char ch) { return ch >= 'A' && ch <= 'Z'; }

static __always_inline void emit_http_head(struct __sk_buff *skb, struct flow_key *k, __u32 off, __u32 payload, __u64 now) {
  struct http_head h = {};
  __u32 cap = off + (payload < HTTP_HEAD_MAX ? payload : HTTP_HEAD_MAX);
  if (cap > skb->len) cap = skb->len;
  h.magic = HTTP_HEAD_MAGIC;
  h.ifindex = k->ifindex;
  h.pod_addr = k->pod_addr;
  h.peer_addr = k->peer_addr;
  h.pod_port = k->pod_port;
  h.peer_port = k->peer_port;
  h.payload_off = off;
  h.cap = cap;
  h.t = now;
  __u64 flags = BPF_F_CURRENT_CPU | ((__u64)(cap & 0xfffff) << 32);
  if (bpf_perf_event_output(skb, &http_events, flags, &h, sizeof(h)) == 0) stat_inc(STAT_HTTP_SENT);
  else stat_inc(STAT_HTTP_LOST);
}

static __always_inline int track_packet(struct __sk_buff *skb, int to_pod) {
  void *data = (void *)(long)skb->data, *data_end = (void *)(long)skb->data_end;
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP)) return TC_ACT_UNSPEC_;
  struct iphdr *ip = (void *)(eth + 1);
  if ((void *)(ip + 1) > data_end || ip->protocol != IPPROTO_TCP_) return TC_ACT_UNSPEC_;
  __u32 ihl = ip->ihl * 4;
  if (ihl < 20) return TC_ACT_UNSPEC_;
  struct tcphdr *th = (void *)ip + ihl;
  if ((void *)(th + 1) > data_end) return TC_ACT_UNSPEC_;
  stat_inc(STAT_PACKETS);

  struct flow_key k = {};
  k.ifindex = skb->ifindex;
  k.proto = IPPROTO_TCP_;
  if (to_pod) {
    k.pod_addr = ip->daddr; k.peer_addr = ip->saddr;
    k.pod_port = bpf_ntohs(th->dest); k.peer_port = bpf_ntohs(th->source);
  } else {
    k.pod_addr = ip->saddr; k.peer_addr = ip->daddr;
    k.pod_port = bpf_ntohs(th->source); k.peer_port = bpf_ntohs(th->dest);
  }
  __u64 now = bpf_ktime_get_ns();
  struct flow *f = bpf_map_lookup_elem(&flows, &k);
  if (!f) {
    struct flow nf = {};
    nf.t_first = now;
    if (bpf_map_update_elem(&flows, &k, &nf, BPF_NOEXIST) != 0 && bpf_map_lookup_elem(&flows, &k) == NULL) {
      stat_inc(STAT_FLOWS_FULL);
      return TC_ACT_UNSPEC_;
    }
    f = bpf_map_lookup_elem(&flows, &k);
    if (!f) return TC_ACT_UNSPEC_;
  }
  int dir = to_pod ? 1 : 0;
  __sync_fetch_and_add(&f->packets[dir], 1);
  __sync_fetch_and_add(&f->bytes[dir], skb->len);
  f->t_last = now;

  __u32 doff = th->doff * 4;
  __u32 tot = bpf_ntohs(ip->tot_len);
  __u32 payload = tot > ihl + doff ? tot - ihl - doff : 0;
  if (th->syn && !th->ack) {
    __sync_fetch_and_add(&f->syn, 1);
    if (!f->t_syn) f->t_syn = now;
    f->pod_is_client = to_pod ? 2 : 1;
  } else if (th->syn && th->ack) {
    __sync_fetch_and_add(&f->synack, 1);
    if (!f->t_synack) f->t_synack = now;
  }
  if (th->fin) __sync_fetch_and_add(&f->fin, 1);
  if (th->rst) __sync_fetch_and_add(&f->rst, 1);

  if (payload > 0) {
    __u32 seq_end = bpf_ntohl(th->seq) + payload;
    __u32 prev = f->seq_end[dir];
    if (prev && (__s32)(seq_end - prev) <= 0) __sync_fetch_and_add(&f->retrans, 1);
    else f->seq_end[dir] = seq_end;
    /* Which side is the client: the one that sent the SYN; unknown (mid-stream) flows: the pod is the server. */
    int from_client = f->pod_is_client == 1 ? !to_pod : to_pod;
    __u32 off = sizeof(struct ethhdr) + ihl + doff;
    if (from_client && !f->have_req) {
      f->t_req = now;
      f->have_req = 1;
      if (payload >= sizeof(f->req)) bpf_skb_load_bytes(skb, off, f->req, sizeof(f->req));
      else if (payload >= 16) bpf_skb_load_bytes(skb, off, f->req, 16);
      if (!is_method_start(f->req[0])) f->req[0] = 0;
      else emit_http_head(skb, &k, off, payload, now);
    } else if (!from_client && !f->have_resp) {
      f->t_resp = now;
      f->have_resp = 1;
      if (payload >= sizeof(f->resp)) bpf_skb_load_bytes(skb, off, f->resp, sizeof(f->resp));
    }
  }
  return TC_ACT_UNSPEC_;
}

SEC("tc")
int tc_from_pod(struct __sk_buff *skb) { return track_packet(skb, 0); }

SEC("tc")
int tc_to_pod(struct __sk_buff *skb) { return track_packet(skb, 1); }

char LICENSE[] SEC("license") = "GPL";
