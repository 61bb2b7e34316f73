// Connection tracking dispatch (run side, owning worker): keys, the per-protocol table, the UDP / ICMP
// echo / other pseudo-states and ICMP errors as `related`.  The design is in conntrack.hpp.
#include "dataplane/conntrack.hpp"

#include <cstring>

#include <array>

#include "dataplane/conntrack_tcp.hpp"

namespace tagwall::dataplane {
namespace {

constexpr uint8_t kProtoIcmp = 1, kProtoTcp = 6, kProtoUdp = 17, kProtoIcmpv6 = 58;

// --- pseudo-states: unreplied until the first packet the other way, then replied (and assured) ---

constexpr L4Update classify_it() noexcept { return {L4Action::classify, Reason::established}; }

L4Update any_packet_opens(const ParsedPacket&) noexcept { return classify_it(); }

template <FlowState kUnreplied>
void open_unreplied(FlowEntry& e, const ParsedPacket&) noexcept {
    e.state = kUnreplied;
}

template <FlowState kReplied>
L4Update reply_answers(FlowEntry& e, const ParsedPacket&, bool reply) noexcept {
    if (reply && e.state != kReplied) {
        e.state = kReplied;
        e.flags |= kFlowSeenReply | kFlowAssured;
    }
    return {L4Action::pass, Reason::established};
}

bool is_echo_request(const ParsedPacket& p) noexcept {
    return p.icmp_type == (p.src.family == rules::Family::v4 ? 8 : 128);
}
bool is_echo(const ParsedPacket& p) noexcept {
    return p.src.family == rules::Family::v4 ? p.icmp_type == 8 || p.icmp_type == 0
                                             : p.icmp_type == 128 || p.icmp_type == 129;
}

// Echo keys put the requester first, so a reply always travels the reply way and a request the
// original way; only a request may open.
L4Update echo_request_opens(const ParsedPacket& p) noexcept {
    return is_echo_request(p) ? classify_it() : L4Update{L4Action::drop, Reason::invalid_icmp_no_flow};
}

constexpr std::array<L4Tracker, 4> kTrackers{{
    /* tcp   */ kTcpTracker,
    /* udp   */ {any_packet_opens, open_unreplied<FlowState::udp_unreplied>, reply_answers<FlowState::udp_replied>},
    /* icmp  */ {echo_request_opens, open_unreplied<FlowState::icmp_unreplied>, reply_answers<FlowState::icmp_replied>},
    /* other */ {any_packet_opens, open_unreplied<FlowState::other_unreplied>, reply_answers<FlowState::other_replied>},
}};

const L4Tracker& tracker(L4Kind k) noexcept { return kTrackers[static_cast<size_t>(k)]; }

constexpr FlowState kInitialState[] = {FlowState::tcp_syn_sent, FlowState::udp_unreplied,
                                       FlowState::icmp_unreplied, FlowState::other_unreplied};

// --- how a packet is seen ---

using Shape = CtShape;

struct Seen {
    Shape shape;
    L4Kind kind;
};

[[gnu::always_inline]] inline Seen shape_of(const ParsedPacket& p) noexcept {
    if (p.kind != PacketKind::ipv4 && p.kind != PacketKind::ipv6) [[unlikely]]
        return {Shape::stateless, L4Kind::other};
    const L4Kind kind = l4_kind(p.proto, p.src.family);
    if (kind != L4Kind::other && !p.l4_present) [[unlikely]]
        return {Shape::no_l4, kind};
    if (kind == L4Kind::icmp) {
        if (p.icmp_error) return {Shape::icmp_error, kind};
        if (!is_echo(p)) return {Shape::stateless, kind};
    }
    return {Shape::tracked, kind};
}

DirectedKey key_of(const ParsedPacket& p, uint16_t segment, L4Kind kind) noexcept {
    if (kind == L4Kind::icmp) return make_echo_key(segment, p.src, p.dst, p.proto, p.icmp_id, is_echo_request(p));
    return make_flow_key(segment, p.src, p.dst, p.proto, p.sport, p.dport);
}

constexpr CtResult drop(Reason r, FlowHandle h = kNoFlow, bool reply = false) noexcept {
    return {CtAction::drop, r, reply, h};
}

// A verdict for a packet that cannot be looked up at all.
CtResult untrackable(Shape shape) noexcept {
    switch (shape) {
    case Shape::stateless: return {CtAction::classify_stateless, Reason::rule, false, kNoFlow};
    // Later fragments belong to the fragment table; one that reaches connection tracking is orphaned.
    case Shape::no_l4: return drop(Reason::fragment_no_first);
    case Shape::icmp_error:
    case Shape::tracked: break;
    }
    return drop(Reason::related_no_flow);
}

// make_flow_key() and slots_for() for an IPv4 pair, without a round trip through memory: the key is
// built as the five words it is hashed as (ipv4_key_words), stored word by word from registers, and the
// registers are hashed.  Storing a key field by field, or copying one from a stack array 16 bytes at a
// time, and reading it back as 8-byte words stalls on store forwarding.
[[gnu::always_inline]] inline void probe_ipv4(const FlowTable& table, uint16_t segment, const rules::IpAddr& src,
                                              const rules::IpAddr& dst, uint8_t proto, uint16_t sport, uint16_t dport,
                                              CtProbe& k) noexcept {
    uint32_t src4, dst4;
    std::memcpy(&src4, src.bytes.data(), sizeof src4);
    std::memcpy(&dst4, dst.bytes.data(), sizeof dst4);
    const auto words = ipv4_key_words(segment, src4, dst4, proto, sport, dport, k.key.src_is_b);
    auto* key = reinterpret_cast<unsigned char*>(&k.key.key);  // trivially copyable, no padding
    for (size_t i = 0; i < kFlowKeyWords; ++i) std::memcpy(key + i * sizeof(uint64_t), &words[i], sizeof(uint64_t));
    k.slots = table.slots_for_words(words);
}

template <class Segment>
void refresh(FlowEntry& e, bool reply, const Segment& p, uint64_t now) noexcept {
    e.last_seen = now;
    ++e.packets[reply];
    e.bytes[reply] += p.l3_length;
}

}  // namespace

void ConnTrack::probe(const ParsedPacket& p, uint16_t segment, CtProbe& k) const noexcept {
    k.segment = segment;
    const Seen seen = shape_of(p);
    k.shape = seen.shape;
    k.kind = seen.kind;
    if (seen.shape != Shape::tracked) return;
    if (p.src.family == rules::Family::v4 && seen.kind != L4Kind::icmp) {
        probe_ipv4(table_, segment, p.src, p.dst, p.proto, p.sport, p.dport, k);
        return;
    }
    k.key = key_of(p, segment, seen.kind);
    k.slots = table_.slots_for(k.key.key);
}

void ConnTrack::probe(const AckSegment& a, CtProbe& k) const noexcept {
    k.segment = a.vlan;
    k.shape = Shape::tracked;
    k.kind = L4Kind::tcp;
    probe_ipv4(table_, a.vlan, a.src, a.dst, kProtoTcp, a.sport, a.dport, k);
}


L4Kind l4_kind(uint8_t proto, rules::Family family) noexcept {
    switch (proto) {
    case kProtoTcp: return L4Kind::tcp;
    case kProtoUdp: return L4Kind::udp;
    case kProtoIcmp: return family == rules::Family::v4 ? L4Kind::icmp : L4Kind::other;
    case kProtoIcmpv6: return family == rules::Family::v6 ? L4Kind::icmp : L4Kind::other;
    default: return L4Kind::other;
    }
}

// --- the owning worker ---

CtResult ConnTrack::track(const ParsedPacket& p, const CtProbe& probe, uint64_t now) noexcept {
    if (probe.shape != Shape::tracked) [[unlikely]] {
        if (probe.shape == Shape::icmp_error) return related(p, probe.segment, now);
        return untrackable(probe.shape);
    }
    const DirectedKey& k = probe.key;
    const FlowHandle h = table_.lookup(k.key, probe.slots, now);
    if (h != kNoFlow) [[likely]]
        return update(h, p, probe.kind, k.src_is_b, now);
    const L4Update u = tracker(probe.kind).on_miss(p);
    if (u.action == L4Action::classify) return {CtAction::classify, Reason::rule, false, kNoFlow};
    return drop(u.reason);
}

bool ConnTrack::opens_on_miss(const ParsedPacket& p, const CtProbe& k) const noexcept {
    return k.shape == Shape::tracked && tracker(k.kind).on_miss(p).action == L4Action::classify;
}

template <class Segment>
FlowHandle ConnTrack::established_entry(const Segment& p, const CtProbe& k, uint32_t generation, uint64_t now,
                                        bool& reply) noexcept {
    if (k.shape != Shape::tracked || k.kind != L4Kind::tcp) return kNoFlow;
    if ((p.tcp_flags & tcp_window::kTcpCoreFlags) != kTcpAck) return kNoFlow;  // before the lookup: SYNs, FINs...
    // find(), not lookup(): an expired entry stays for track() to free, should the packet get that far
    // (SpoofGuard, which the caller runs next, may drop it first).
    const FlowHandle h = table_.find(k.key.key, k.slots, now);
    if (h == kNoFlow) return kNoFlow;
    const FlowEntry& e = table_.entry(h);
    if (e.generation != generation || !tcp_is_established_ack(e, p)) return kNoFlow;
    reply = k.key.src_is_b != e.initiator_is_b();
    return h;
}
template FlowHandle ConnTrack::established_entry(const ParsedPacket&, const CtProbe&, uint32_t, uint64_t,
                                                 bool&) noexcept;
template FlowHandle ConnTrack::established_entry(const AckSegment&, const CtProbe&, uint32_t, uint64_t,
                                                 bool&) noexcept;

template <class Segment>
bool ConnTrack::pass_established(FlowHandle h, const Segment& p, bool reply, uint64_t now) noexcept {
    FlowEntry& e = table_.entry(h);
    // A segment outside the window is dropped without touching the entry: track() will find the same.
    if (tcp_established_ack(e, p, reply).action != L4Action::pass) return false;
    refresh(e, reply, p, now);
    return true;
}
template bool ConnTrack::pass_established(FlowHandle, const ParsedPacket&, bool, uint64_t) noexcept;
template bool ConnTrack::pass_established(FlowHandle, const AckSegment&, bool, uint64_t) noexcept;

CtResult ConnTrack::create(const ParsedPacket& p, const CtProbe& probe, const FlowOrigin& origin,
                           uint64_t now) noexcept {
    if (probe.shape == Shape::stateless) return {CtAction::pass, Reason::rule, false, kNoFlow};
    if (probe.shape != Shape::tracked) return track(p, probe, now);
    const L4Tracker& t = tracker(probe.kind);
    if (const L4Update u = t.on_miss(p); u.action != L4Action::classify) return drop(u.reason);

    const DirectedKey& k = probe.key;
    const FlowState initial = kInitialState[static_cast<size_t>(probe.kind)];
    InsertResult ins = table_.lookup_or_insert(k.key, probe.slots, initial, now);
    if (ins.status == InsertStatus::existed) {
        const CtResult r = update(ins.handle, p, probe.kind, k.src_is_b, now);
        if (r.action != CtAction::classify) return r;
        // The entry was over (a SYN after TIME_WAIT) and update() erased it: open the new connection,
        // which the policy has just allowed.
        ins = table_.lookup_or_insert(k.key, probe.slots, initial, now);
    }
    return opened(ins, p, probe, origin, now);
}

CtResult ConnTrack::create_after_miss(const ParsedPacket& p, const CtProbe& probe, const FlowOrigin& origin,
                                      uint64_t now) noexcept {
    if (probe.shape != Shape::tracked) return create(p, probe, origin, now);
    const FlowState initial = kInitialState[static_cast<size_t>(probe.kind)];
    return opened(table_.insert_new(probe.key.key, probe.slots, initial, now), p, probe, origin, now);
}

CtResult ConnTrack::opened(InsertResult ins, const ParsedPacket& p, const CtProbe& probe, const FlowOrigin& origin,
                           uint64_t now) noexcept {
    if (ins.status == InsertStatus::full) return drop(Reason::flow_table_full);
    FlowEntry& e = table_.entry(ins.handle);
    e.flags = probe.key.src_is_b ? kFlowInitiatorIsB : 0;
    e.generation = origin.generation;
    FlowAttribution& a = table_.attribution(ins.handle);
    a.rule_index = origin.rule_index;
    a.identity = {origin.src_identity, origin.dst_identity};
    tracker(probe.kind).open(e, p);
    refresh(e, false, p, now);
    return {CtAction::pass, Reason::rule, false, ins.handle};
}

CtResult ConnTrack::update(FlowHandle h, const ParsedPacket& p, L4Kind kind, bool src_is_b,
                           uint64_t now) noexcept {
    FlowEntry& e = table_.entry(h);
    const bool reply = src_is_b != e.initiator_is_b();
    // TCP called directly (the common case, and a direct call the branch predictor need not guess).
    const L4Update u = kind == L4Kind::tcp ? tcp_update(e, p, reply) : tracker(kind).update(e, p, reply);
    switch (u.action) {
    case L4Action::pass: refresh(e, reply, p, now); return {CtAction::pass, u.reason, reply, h};
    case L4Action::drop: return drop(u.reason, h, reply);
    case L4Action::classify:
    case L4Action::reopen: break;
    }
    table_.erase(h);
    return {CtAction::classify, Reason::rule, false, kNoFlow};
}

// An ICMP error: `related` to the connection of the packet it quotes, or dropped.
CtResult ConnTrack::related(const ParsedPacket& p, uint16_t segment, uint64_t now) noexcept {
    if (!p.inner_l3_present || p.inner_src.family != p.src.family || p.inner_dst.family != p.src.family)
        return drop(Reason::related_no_flow);
    // The error must go back to whoever sent the quoted packet.
    if (p.dst != p.inner_src) return drop(Reason::related_no_flow);
    const L4Kind kind = l4_kind(p.inner_proto, p.src.family);
    if (kind != L4Kind::other && !p.inner_l4_present) return drop(Reason::related_no_flow);

    DirectedKey k;
    FlowHandle h = kNoFlow;
    if (kind == L4Kind::icmp) {
        // Only an echo exchange has an entry, and the quoted message's type says which side of it
        // inner_src was: a request belongs to (inner_src asks inner_dst), a reply to (inner_dst asks
        // inner_src).  Any other quoted ICMP message (an error, ND...) has no identifier to look up,
        // whatever its bytes 4-5 hold (the CVE-2024-6640 pattern: type confusion with an echo state).
        const bool v4 = p.src.family == rules::Family::v4;
        const bool request = p.inner_icmp_type == (v4 ? 8 : 128);
        if (!request && p.inner_icmp_type != (v4 ? 0 : 129)) return drop(Reason::related_no_flow);
        k = make_echo_key(segment, p.inner_src, p.inner_dst, p.inner_proto, p.inner_sport, request);
        h = table_.lookup(k.key, now);
    } else {
        k = make_flow_key(segment, p.inner_src, p.inner_dst, p.inner_proto, p.inner_sport, p.inner_dport);
        h = table_.lookup(k.key, now);
    }
    if (h == kNoFlow) return drop(Reason::related_no_flow);
    const bool quoted_reply = k.src_is_b != table_.entry(h).initiator_is_b();
    return {CtAction::pass, Reason::related, !quoted_reply, h};
}

void ConnTrack::extend_tcp_segment(FlowHandle h, const ParsedPacket& p, uint32_t end) noexcept {
    if (!table_.live(h)) return;
    FlowEntry& e = table_.entry(h);
    const FlowKey& k = e.key;
    if (k.proto != kProtoTcp || k.vlan != p.vlan || k.family != p.src.family) return;
    const bool from_a = k.addr_a == p.src.bytes && k.addr_b == p.dst.bytes;
    const bool from_b = k.addr_b == p.src.bytes && k.addr_a == p.dst.bytes;
    if (from_a == from_b) return;  // not this connection's addresses (or both ends alike: ports would tell)
    tcp_extend_segment(e, from_b != e.initiator_is_b() ? 1 : 0, end);
}

// --- const ---

FlowHandle ConnTrack::find(const ParsedPacket& p, uint16_t segment, uint64_t now) const noexcept {
    const Seen seen = shape_of(p);
    if (seen.shape != Shape::tracked) return kNoFlow;
    return table_.find(key_of(p, segment, seen.kind).key, now);
}

}  // namespace tagwall::dataplane
