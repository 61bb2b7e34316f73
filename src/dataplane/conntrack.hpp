// Connection tracking (SPEC §5): which connection a packet belongs to, and whether it fits its state.
//
// Concurrency contract: one ConnTrack per worker, inside its worker context, owning that worker's
// FlowTable; the constructor runs on the control thread before the worker starts (it allocates the
// table).  track, create, close and expire are run side, for the owning worker only: noexcept, no
// allocation, no locks, no logging.  find and table() const follow FlowTable's const rules.
//
// The pipeline, per packet (after parse and identity; later fragments go to the fragment table and
// ARP/ND to SpoofGuard before this):
//     r = ct.track(packet, segment, now)
//     pass     -> forward; r.reason is `established`, `rst_in_window` or `related`; when the entry's generation is
//                 older than the published policy, re-verify it first (SPEC §6)
//     drop     -> drop and count r.reason
//     classify -> classify; if the policy allows, r = ct.create(packet, segment, {rule, generation,
//                 identities}, now), which passes (reason `rule`) or drops (`flow_table_full`)
//     classify_stateless -> classify this packet on its own; nothing is kept (create not needed)
//
// Per protocol (a tiny table of functions, OVS style; TCP in conntrack_tcp.hpp, the rest in
// conntrack.cpp):
//   - TCP: only a SYN may open a connection; any other segment without an entry is `invalid_no_flow`
//     (no mid-stream pickup).  The state machine and the window checks are in conntrack_tcp.hpp.
//   - UDP, SCTP and any other protocol: pseudo-states unreplied -> replied (the first packet the
//     other way); replied entries are assured.  SCTP is keyed by its ports, with no SCTP state machine.
//   - ICMP/ICMPv6 echo: a request opens, the reply with the same identifier answers it (keys in
//     flow_table.hpp); a reply with no request is `invalid_icmp_no_flow`.
//   - ICMP/ICMPv6 errors pass only as `related`: the quoted header must belong to a live entry of this
//     segment, and the error must be addressed to the sender of the quoted packet (an error about
//     someone else's connection is forged: the CVE-2019-5598 pattern).  A quoted ICMP message must be
//     an echo request or reply, and is looked up as exactly that (a quoted request from inner_src is
//     inner_src's exchange, a quoted reply is inner_dst's): a quoted non-echo message or an echo of
//     the other direction matches nothing, even with the same identifier (the CVE-2024-6640 pattern).
//     Anything else is `related_no_flow`.  The quoted TCP sequence number is not checked against the window (the
//     parser does not extract it).  An error refreshes nothing: it is not part of the connection.
//   - Other ICMP messages (timestamps, router and MLD messages, ...) keep no state: the policy decides
//     each one (classify_stateless).
#pragma once

#include <cstddef>
#include <cstdint>

#include "dataplane/flow_table.hpp"
#include "dataplane/packet.hpp"
#include "dataplane/reasons.hpp"

namespace tagwall::dataplane {

enum class CtAction : uint8_t { pass, drop, classify, classify_stateless };

struct CtResult {
    CtAction action = CtAction::drop;
    Reason reason = Reason::invalid_no_flow;  // pass: established, related or rule; drop: why
    bool reply = false;                       // the packet travels responder -> initiator
    FlowHandle handle = kNoFlow;              // the entry it belongs (or, for `related`, refers) to
};

enum class L4Kind : uint8_t { tcp, udp, icmp, other };  // the per-protocol trackers (below)

// How connection tracking sees a packet: with a connection key (tracked), as an ICMP error (looked up
// through the header it quotes), stateless (no entry: the policy decides it alone), or without its L4
// header (a later fragment).
enum class CtShape : uint8_t { tracked, icmp_error, stateless, no_l4 };

// A packet's connection key, built and hashed once per packet: the worker makes it while it prefetches
// a burst and hands it to prefetch(), track() and create().  `key` and `slots` are meaningful only when
// shape == tracked.  It depends on the packet and the table's fixed seed and size only, never on the
// table's contents, so it stays valid while the other packets of the burst are tracked.
struct CtProbe {
    DirectedKey key;
    FlowTable::Slots slots;
    uint16_t segment = 0;
    CtShape shape = CtShape::stateless;
    L4Kind kind = L4Kind::other;
};

// What the policy said when it allowed a new connection.
struct FlowOrigin {
    int32_t rule_index = -1;
    uint32_t generation = 0;
    uint32_t src_identity = 0;  // identity class of the packet's source (the initiator)
    uint32_t dst_identity = 0;
};

class ConnTrack {
public:
    // --- control thread, before the worker runs ---
    explicit ConnTrack(const FlowTableConfig& config = {}) : table_(config) {}

    // --- the owning worker only ---
    CtResult track(const ParsedPacket& p, uint16_t segment, uint64_t now) noexcept {
        return track(p, probe(p, segment), now);
    }
    // The same, with the packet's probe (probe(p, segment)) already made.
    CtResult track(const ParsedPacket& p, const CtProbe& k, uint64_t now) noexcept;
    // Opens the connection `p` starts, after the policy allowed it.  When an entry already exists (an
    // earlier packet of the same burst opened it) `p` is tracked against it instead.  A packet that
    // cannot open a connection gets the verdict track() gave it.
    CtResult create(const ParsedPacket& p, uint16_t segment, const FlowOrigin& origin, uint64_t now) noexcept {
        return create(p, probe(p, segment), origin, now);
    }
    CtResult create(const ParsedPacket& p, const CtProbe& k, const FlowOrigin& origin, uint64_t now) noexcept;
    // create() for the packet track() has just answered `classify` (so its key has no entry, and
    // nothing touched the table since): the same result without looking the key up again.
    CtResult create_after_miss(const ParsedPacket& p, const CtProbe& k, const FlowOrigin& origin,
                               uint64_t now) noexcept;
    // Burst prefetching (FlowTable::prefetch_*): stage 0 the key's buckets, stage 1 its entry.  Nothing
    // for a packet that has no connection key (stateless ICMP, ICMP errors, later fragments, non-IP).
    bool prefetch(const ParsedPacket& p, uint16_t segment, int stage) const noexcept {
        return prefetch(probe(p, segment), stage);
    }
    // Stage 1 returns false when the packet probably opens a connection (no entry with its signature in
    // its first bucket; always for a packet without a connection key): the caller may prefetch what
    // the policy will read.
    bool prefetch(const CtProbe& k, int stage) const noexcept {
        if (k.shape != CtShape::tracked) return false;
        if (stage == 0) {
            table_.prefetch_buckets(k.slots);
            return true;
        }
        return table_.prefetch_entry(k.slots);
    }
    // Hint: the next `n` connections created will be written soon (FlowTable::prefetch_free).
    void prefetch_new(size_t n) const noexcept { table_.prefetch_free(n); }
    // Whether `p` would be classified if its connection had no entry (a SYN, a UDP datagram, an echo
    // request ...: track()'s `classify` on a miss).  A hint for the burst (Pipeline::process asks the
    // policy ahead for such packets of a batch); track() decides.
    bool opens_on_miss(const ParsedPacket& p, const CtProbe& k) const noexcept;
    // The key of `p` in segment `segment`, hashed (const: reads only the table's seed).
    CtProbe probe(const ParsedPacket& p, uint16_t segment) const noexcept {
        CtProbe k;
        probe(p, segment, k);
        return k;
    }
    // The same, written into `out` (a burst's array: no copy); key and slots only when it is tracked.
    void probe(const ParsedPacket& p, uint16_t segment, CtProbe& out) const noexcept;
    // The probe of a frame parse_ack_segment() read into `a`: what the above makes, in segment a.vlan, of
    // the packet parse_frame() reads from the same frame.
    void probe(const AckSegment& a, CtProbe& out) const noexcept;
    // The established fast path (Pipeline::process), in two steps, so that the caller can run
    // SpoofGuard between them with the entry in hand:
    //   established_entry(): a TCP segment with ACK and no SYN, FIN or RST, on a connection in
    //     ESTABLISHED allowed under `generation`: its entry, and in `reply` whether it travels the
    //     reply way.  Otherwise kNoFlow.
    //   pass_established(): that segment, on the entry established_entry() gave, fits the window: it
    //     is tracked exactly as track() would (window advanced, timestamp and counters refreshed), and
    //     true.  Otherwise false.
    // A kNoFlow or false changed nothing (an expired entry is left for track() to free): the caller
    // then takes the general path, which decides the packet as it would have without these calls.
    // `Segment`: a ParsedPacket, or an AckSegment (the same decision from its fields).
    template <class Segment>
    FlowHandle established_entry(const Segment& p, const CtProbe& k, uint32_t generation, uint64_t now,
                                 bool& reply) noexcept;
    template <class Segment>
    bool pass_established(FlowHandle h, const Segment& p, bool reply, uint64_t now) noexcept;
    // Removes a connection (revoked by a new policy, `flows flush`).
    void close(FlowHandle h) noexcept { table_.erase(h); }
    // A later fragment `p` of a TCP segment that connection `h` passed in a first fragment reaches `end`
    // (FragmentVerdict::tcp_end): tcp_extend_segment() on the direction p travels.  Nothing when `h`
    // no longer holds a TCP connection between p's two addresses in p's segment (it ended, and the
    // slot may hold another).
    void extend_tcp_segment(FlowHandle h, const ParsedPacket& p, uint32_t end) noexcept;
    size_t expire(uint64_t now, size_t max_slots) noexcept { return table_.expire(now, max_slots); }
    FlowTable& table() noexcept { return table_; }

    // --- const: the owning worker, or any thread while the worker is stopped ---
    // The live entry `p` belongs to (an ICMP error: kNoFlow; see related above), without touching it.
    FlowHandle find(const ParsedPacket& p, uint16_t segment, uint64_t now) const noexcept;
    const FlowTable& table() const noexcept { return table_; }

private:
    // Fills the entry `ins` made for the connection `p` opens (or drops it: the table was full).
    CtResult opened(InsertResult ins, const ParsedPacket& p, const CtProbe& k, const FlowOrigin& origin,
                    uint64_t now) noexcept;
    CtResult related(const ParsedPacket& p, uint16_t segment, uint64_t now) noexcept;
    CtResult update(FlowHandle h, const ParsedPacket& p, L4Kind kind, bool src_is_b, uint64_t now) noexcept;

    FlowTable table_;
};

// --- the per-protocol interface (conntrack.cpp dispatches; conntrack_tcp.cpp implements TCP) ---

enum class L4Action : uint8_t {
    pass,      // the packet fits the entry (the caller refreshes timestamp and counters)
    drop,      // it does not; the entry is unchanged
    classify,  // no entry (on_miss) may be opened by this packet: ask the policy
    reopen,    // the entry is over and this packet starts a new connection: erase it, ask the policy
};

struct L4Update {
    L4Action action = L4Action::drop;
    Reason reason = Reason::established;  // for drop, and for pass: `established` or `rst_in_window`
};

struct L4Tracker {
    // A packet with no entry: may it open one (classify), or why not (drop)?
    L4Update (*on_miss)(const ParsedPacket& p) noexcept;
    // Fills the protocol part of a fresh entry from the packet that opened it.
    void (*open)(FlowEntry& e, const ParsedPacket& p) noexcept;
    // A packet of an existing entry travelling the original (reply = false) or the reply way.
    L4Update (*update)(FlowEntry& e, const ParsedPacket& p, bool reply) noexcept;
};

// The tracker a packet of protocol `proto` in `family` uses (ICMP only in IPv4, ICMPv6 only in IPv6).
L4Kind l4_kind(uint8_t proto, rules::Family family) noexcept;

}  // namespace tagwall::dataplane
