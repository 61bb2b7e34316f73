// fuzz-packet: one frame through the parser, SpoofGuard and the connection table, and the frame's reject
// answers; then, as the input asks, the frame's mirrored reply and a repeat of the frame, so that the
// connection table's update paths (TCP state machine, windows, pseudo-states) see more than misses.
//
// Input: a 6-byte header, then the frame.
//   byte 0   bit 0: the frame arrives on the uplink (else a workload port); the reply on the other one
//            bit 1: send the mirrored reply (MACs, addresses and ports swapped; ICMP echo request <-> reply)
//            bit 2: send the frame again after the reply
//            bit 3: the mirrored reply of a TCP segment is a SYN|ACK (else the frame's flags plus ACK)
//   byte 1   time step: the clock advances 2^(byte % 40) ns before each packet (up to ~18 minutes)
//   2..5     the mirrored TCP reply's sequence number (its ack is the frame's seq + segment length)
//
// Invariants checked for every packet (tests/fuzz/fuzz_support.hpp check_parsed() for the parser):
//   - parser: parse_frame()'s shortcut for common frames decides and fills exactly what its general path
//     (detail::parse_frame_general) does;
//   - SpoofGuard: on a workload port, an accepted IP packet that is not infrastructure-only has a source
//     bound to an endpoint of its segment and, when that endpoint has a bound MAC, is sent from it; an
//     accepted ARP message likewise for its sender; the identity given is that endpoint's.  On an uplink
//     the identity is the address's.  IdentityTable::resolve agrees with RuleSet::resolve (the reference)
//     on both addresses.  bound_source() (the established fast path's SpoofGuard) accepts exactly the
//     IP packets check_source() accepts as neither ND nor infrastructure, with the same endpoint.
//   - reject answers (build_reject, build_forward_rst): inside the buffer, parse back as IP with the
//     right addresses, and are RSTs for TCP (check_answer()).
//   - connection table: pass reasons are established/related/rule, a drop's reason is a tracking or
//     fragment reason; a passing packet names a live entry (except `related`, stateless ICMP) that find()
//     finds again; the reply of the connection the frame opened is seen as a reply of that very entry,
//     the repeat as the original direction; size() never passes capacity();
//   - symmetry: the frame and its mirror have one connection key with opposite directions, and one
//     dispatch hash (tools/bench_replay.hpp: what keeps a flow on one worker of a multi-worker replay).
// The table is emptied after each input, so that every input is decided on its own.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "../dataplane/ack_segment_ref.hpp"
#include "dataplane/conntrack.hpp"
#include "dataplane/identity.hpp"
#include "dataplane/parser.hpp"
#include "dataplane/reject.hpp"
#include "fuzz_support.hpp"
#include "tools/bench_replay.hpp"

namespace {

using namespace tagwall;
using namespace tagwall::dataplane;
using fuzz::check_parsed;
using fuzz::is_ip;

struct World {
    std::shared_ptr<const rules::RuleSet> rules = fuzz::compile_policy_text(fuzz::kFuzzPolicy, "fuzz-policy.yaml");
    IdentityTable ids{*rules};
    ConnTrack ct{FlowTableConfig{.capacity = 64, .worker = 0, .seed = 1, .timeouts = {}}};
};

World& world() {
    static World w;
    return w;
}

bool identity_equal(const rules::Identity& a, const rules::Identity& b) {
    return a.endpoint == b.endpoint && a.identity_class == b.identity_class;
}

void check_identity(const World& w, const ParsedPacket& p, PortRole role, const SourceCheck& src) {
    const rules::RuleSet& rs = *w.rules;
    if (is_ip(p)) {
        for (const rules::IpAddr* a : {&p.src, &p.dst})
            FUZZ_CHECK(identity_equal(w.ids.resolve(*a), rs.resolve(*a)), "IdentityTable::resolve({}) differs from "
                       "RuleSet::resolve", a->str());
    }
    if (!src.ok) {
        FUZZ_CHECK(src.reason == Reason::unknown_segment || src.reason == Reason::unsupported_ethertype ||
                       src.reason == Reason::spoofed_ip || src.reason == Reason::spoofed_mac ||
                       src.reason == Reason::spoofed_arp || src.reason == Reason::spoofed_nd,
                   "SpoofGuard refused with reason {}", info(src.reason).counter);
        return;
    }
    FUZZ_CHECK(w.ids.segment_known(p.vlan), "accepted a packet of unknown VLAN {}", p.vlan);
    FUZZ_CHECK(src.identity.endpoint == rules::kExternal || src.identity.endpoint < rs.endpoints().size(),
               "identity names endpoint {}", src.identity.endpoint);
    FUZZ_CHECK(src.identity.identity_class < rs.identity_classes().size(), "identity class {} out of range",
               src.identity.identity_class);
    if (role == PortRole::uplink) {
        if (is_ip(p))
            FUZZ_CHECK(identity_equal(src.identity, rs.resolve(p.src)), "uplink source identity is not the address's");
        return;
    }
    if (src.infrastructure_only) return;  // DHCP/DAD/ND/MLD/ARP probe: no claim on an address
    const rules::IpAddr& claimed = p.kind == PacketKind::arp ? p.arp_sender_ip : p.src;
    const uint32_t e = rs.resolve(claimed).endpoint;
    FUZZ_CHECK(e != rules::kExternal, "workload port accepted {} which no endpoint binds", claimed.str());
    const rules::CompiledEndpoint& ep = rs.endpoints()[e];
    FUZZ_CHECK(ep.vlan == p.vlan, "workload port accepted {} (endpoint {} of vlan {}) in vlan {}", claimed.str(),
               ep.name, ep.vlan, p.vlan);
    if (ep.mac) {
        FUZZ_CHECK(p.src_mac == ep.mac->bytes, "workload port accepted {} from a MAC other than {}'s", claimed.str(),
                   ep.name);
        if (p.kind == PacketKind::arp)
            FUZZ_CHECK(p.arp_sender_mac == ep.mac->bytes, "ARP sender MAC is not {}'s bound MAC", ep.name);
    }
    FUZZ_CHECK(src.identity.endpoint == e, "identity {} is not the endpoint {} that binds {}", src.identity.endpoint,
               e, claimed.str());
}

void check_answers(std::span<const uint8_t> frame, const ParsedPacket& p) {
    std::array<uint8_t, kRejectMaxFrame> out{};
    const size_t n = build_reject(frame, p, out);
    FUZZ_CHECK(n <= out.size(), "reject answer of {} bytes", n);
    if (n != 0) {
        FUZZ_CHECK(is_ip(p) && !(p.fragment && !p.first_fragment), "an answer to a non-IP or later fragment");
        fuzz::check_answer(std::span<const uint8_t>(out.data(), n), p, true, "build_reject");
    }
    const size_t m = build_forward_rst(frame, p, out);
    FUZZ_CHECK(m <= out.size(), "forward RST of {} bytes", m);
    if (m != 0) {
        FUZZ_CHECK(p.proto == kIpProtoTcp && (p.tcp_flags & kTcpRst) == 0, "forward RST for a non-TCP or RST");
        fuzz::check_answer(std::span<const uint8_t>(out.data(), m), p, false, "build_forward_rst");
    }
}

// The established fast path's view of the frame (parse_ack_segment) against parse_frame()'s: accepted
// exactly for the frames the reference says, with the same values, the same connection probe, and the
// same SpoofGuard answer.
void check_ack_segment(const World& w, std::span<const uint8_t> frame, const ParsedPacket& p,
                       const std::optional<Reason>& bad, PortRole role) {
    AckSegment a;
    const bool ack = parse_ack_segment(frame, a);
    const auto want = test::expected_ack_segment(p, bad);
    FUZZ_CHECK(ack == want.has_value(), "parse_ack_segment() {} a frame parse_frame() reads as {}",
               ack ? "accepts" : "refuses", want ? "an ACK segment" : "something else");
    if (!ack) return;
    FUZZ_CHECK(a == *want, "parse_ack_segment() reads other values than parse_frame()");
    CtProbe k;
    w.ct.probe(a, k);
    const CtProbe q = w.ct.probe(p, p.vlan);
    FUZZ_CHECK(k.shape == q.shape && k.kind == q.kind && k.segment == q.segment && k.key.key == q.key.key &&
                   k.key.src_is_b == q.key.src_is_b && k.slots.first == q.slots.first &&
                   k.slots.second == q.slots.second && k.slots.sig == q.slots.sig,
               "the AckSegment's connection probe differs from the packet's");
    if (role == PortRole::workload) {
        uint32_t e1 = rules::kExternal, e2 = rules::kExternal;
        const bool b1 = w.ids.bound_source(a, e1), b2 = w.ids.bound_source(p, e2);
        FUZZ_CHECK(b1 == b2 && e1 == e2, "bound_source() answers the AckSegment otherwise than the packet");
    }
}

// What one packet did in the connection table.
struct Step {
    bool tracked = false;   // reached the connection table
    CtResult result;
    bool opened = false;    // created a new entry
};

Step track_one(World& w, std::span<const uint8_t> frame, PortRole role, uint64_t now) {
    Step s;
    ParsedPacket p;
    const auto bad = parse_frame(frame, p);
    check_parsed(frame, p, bad);
    ParsedPacket general;
    const auto general_bad = detail::parse_frame_general(frame, general);
    FUZZ_CHECK(bad == general_bad && p == general, "parse_frame()'s shortcut and its general path disagree");
    check_ack_segment(w, frame, p, bad, role);
    if (bad) return s;
    // The connection probe's key (built as words for IPv4) is make_flow_key's, in the same slots.
    if (const CtProbe q = w.ct.probe(p, p.vlan); q.shape == CtShape::tracked && q.kind != L4Kind::icmp) {
        const DirectedKey want = make_flow_key(p.vlan, p.src, p.dst, p.proto, p.sport, p.dport);
        const FlowTable::Slots ws = w.ct.table().slots_for(want.key);
        FUZZ_CHECK(q.key.key == want.key && q.key.src_is_b == want.src_is_b && q.slots.first == ws.first &&
                       q.slots.second == ws.second && q.slots.sig == ws.sig,
                   "the probe's key or slots are not make_flow_key's");
    }
    check_answers(frame, p);
    const SourceCheck src = w.ids.check_source(p, role);
    check_identity(w, p, role, src);
    if (role == PortRole::workload) {  // the fast path's SpoofGuard says yes exactly when check_source() does
        uint32_t endpoint = rules::kExternal;
        const bool bound = w.ids.bound_source(p, endpoint);
        const bool ordinary = src.ok && !src.infrastructure_only && is_ip(p) && !p.nd;
        FUZZ_CHECK(bound == ordinary, "bound_source() says {}, check_source() ok {} infrastructure {}", bound,
                   src.ok, src.infrastructure_only);
        if (bound) FUZZ_CHECK(endpoint == src.identity.endpoint, "bound_source() names another endpoint");
    }
    if (!src.ok || p.kind == PacketKind::arp || p.nd || src.infrastructure_only || !is_ip(p)) return s;
    if (p.fragment && !p.first_fragment) return s;  // the fragment table's, not the connection table's

    s.tracked = true;
    ConnTrack& ct = w.ct;
    CtResult r = ct.track(p, p.vlan, now);
    if (r.action == CtAction::classify) {
        const FlowOrigin origin{.rule_index = 0, .generation = 1, .src_identity = 0, .dst_identity = 0};
        r = ct.create(p, p.vlan, origin, now);
        FUZZ_CHECK(r.action == CtAction::pass || r.action == CtAction::drop, "create() answered {}",
                   static_cast<int>(r.action));
        s.opened = r.action == CtAction::pass && r.reason == Reason::rule;
    }
    s.result = r;
    switch (r.action) {
    case CtAction::pass:
        FUZZ_CHECK(r.reason == Reason::established || r.reason == Reason::rst_in_window || r.reason == Reason::related ||
                       r.reason == Reason::rule,
                   "pass with reason {}", info(r.reason).counter);
        if (r.reason != Reason::related && r.handle != kNoFlow) {
            FUZZ_CHECK(ct.table().live(r.handle), "a passing packet names dead entry {}", r.handle);
            FUZZ_CHECK(ct.find(p, p.vlan, now) == r.handle, "find() does not find the entry the packet passed on");
        }
        if (r.reason == Reason::related) FUZZ_CHECK(p.icmp_error, "related, but not an ICMP error");
        break;
    case CtAction::drop: {
        const Reason x = r.reason;
        FUZZ_CHECK(x == Reason::invalid_no_flow || x == Reason::invalid_tcp_state || x == Reason::invalid_tcp_window ||
                       x == Reason::rst_out_of_window || x == Reason::related_no_flow ||
                       x == Reason::invalid_icmp_no_flow || x == Reason::flow_table_full ||
                       x == Reason::fragment_no_first,
                   "connection tracking dropped with reason {}", info(x).counter);
        break;
    }
    case CtAction::classify_stateless:
        FUZZ_CHECK(r.handle == kNoFlow, "a stateless packet names an entry");
        break;
    case CtAction::classify: FUZZ_CHECK(false, "classify after create()"); break;
    }
    FUZZ_CHECK(ct.table().size() <= ct.table().capacity(), "table holds {} of {}", ct.table().size(),
               ct.table().capacity());
    return s;
}

void store16(std::vector<uint8_t>& f, size_t at, uint16_t v) {
    f[at] = static_cast<uint8_t>(v >> 8);
    f[at + 1] = static_cast<uint8_t>(v);
}
void store32(std::vector<uint8_t>& f, size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) f[at + static_cast<size_t>(i)] = static_cast<uint8_t>(v >> (24 - 8 * i));
}

// The frame as its destination would answer it: MACs, addresses and L4 ports swapped; TCP gets
// `reply_seq` and an ack of the frame's segment; an ICMP echo request becomes an echo reply (and a reply
// a request).
std::vector<uint8_t> mirror(std::span<const uint8_t> frame, const ParsedPacket& p, uint32_t reply_seq, bool syn_ack) {
    std::vector<uint8_t> f(frame.begin(), frame.end());
    std::swap_ranges(f.begin(), f.begin() + 6, f.begin() + 6);
    if (!is_ip(p)) return f;
    const size_t l3 = p.l3_offset;
    const size_t at = p.kind == PacketKind::ipv4 ? l3 + 12 : l3 + 8, len = p.kind == PacketKind::ipv4 ? 4 : 16;
    std::swap_ranges(f.begin() + static_cast<long>(at), f.begin() + static_cast<long>(at + len),
                     f.begin() + static_cast<long>(at + len));
    if (!p.l4_present) return f;
    const size_t l4 = p.l4_offset;
    if (p.proto == kIpProtoTcp || p.proto == kIpProtoUdp || p.proto == kIpProtoSctp) {
        store16(f, l4, p.dport);
        store16(f, l4 + 2, p.sport);
    }
    if (p.proto == kIpProtoTcp) {
        const uint32_t seg = p.payload_length + ((p.tcp_flags & kTcpSyn) ? 1u : 0u) + ((p.tcp_flags & kTcpFin) ? 1u : 0u);
        store32(f, l4 + 4, reply_seq);
        store32(f, l4 + 8, p.tcp_seq + seg);
        f[l4 + 13] = syn_ack ? (kTcpSyn | kTcpAck) : static_cast<uint8_t>(p.tcp_flags | kTcpAck);
    } else if (p.l4_length >= 8 && p.kind == PacketKind::ipv4 && p.proto == kIpProtoIcmp &&
               (p.icmp_type == 8 || p.icmp_type == 0)) {
        f[l4] = p.icmp_type == 8 ? 0 : 8;  // echo request <-> echo reply
    } else if (p.l4_length >= 8 && p.kind == PacketKind::ipv6 && p.proto == kIpProtoIcmpv6 &&
               (p.icmp_type == 128 || p.icmp_type == 129)) {
        f[l4] = p.icmp_type == 128 ? 129 : 128;
    }
    return f;
}

// Both directions of a connection share one key (its entry) with opposite directions, and one
// dispatch hash (tagwall-bench replay --workers: the same worker), whatever the addresses and ports.
void check_symmetry(const World& w, std::span<const uint8_t> frame, const ParsedPacket& p,
                    const std::vector<uint8_t>& reply) {
    ParsedPacket m;
    if (parse_frame(reply, m) || p.icmp_error || p.fragment) return;  // an error or fragment has no mirror
    const CtProbe a = w.ct.probe(p, p.vlan), b = w.ct.probe(m, m.vlan);
    if (a.shape == CtShape::tracked && b.shape == CtShape::tracked) {
        FUZZ_CHECK(a.key.key == b.key.key, "a packet and its mirror have different connection keys");
        const bool same_ends = p.src == p.dst && p.sport == p.dport;
        if (!same_ends) FUZZ_CHECK(a.key.src_is_b != b.key.src_is_b, "a packet and its mirror travel the same way");
    }
    FUZZ_CHECK(tools::dispatch_hash(frame) == tools::dispatch_hash(reply),
               "a packet and its mirror are dispatched to different workers");
}

void empty_table(ConnTrack& ct) {
    FlowTable& t = ct.table();
    for (FlowHandle h = 0; h < t.capacity(); ++h)
        if (t.live(h)) t.erase(h);
    FUZZ_CHECK(t.size() == 0, "{} entries left after erasing every live one", t.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    constexpr size_t kHeader = 6;
    if (size < kHeader) return 0;
    World& w = world();
    const uint8_t flags = data[0];
    const uint64_t step = uint64_t{1} << (data[1] % 40);
    uint32_t reply_seq = 0;
    for (size_t i = 2; i < 6; ++i) reply_seq = reply_seq << 8 | data[i];
    const std::span<const uint8_t> frame(data + kHeader, size - kHeader);
    const PortRole role = (flags & 1) ? PortRole::uplink : PortRole::workload;
    const PortRole other = (flags & 1) ? PortRole::workload : PortRole::uplink;

    uint64_t now = 1'000'000'000;
    const Step first = track_one(w, frame, role, now);
    bool reply_opened = false;  // the reply opened a connection of its own: the repeat is its reply
    if (first.tracked && (flags & 2)) {
        ParsedPacket p;
        parse_frame(frame, p);
        const std::vector<uint8_t> reply = mirror(frame, p, reply_seq, (flags & 8) != 0);
        check_symmetry(w, frame, p, reply);
        now += step;
        const Step r = track_one(w, reply, other, now);
        reply_opened = r.opened;
        // The reply of the connection the frame opened belongs to that entry, the other way (unless the
        // two ends are one and the same: then the mirror is the frame itself, the LAND-attack shape).
        const bool same_ends = p.src == p.dst && p.sport == p.dport;
        if (first.opened && !same_ends && r.tracked && r.result.action == CtAction::pass &&
            r.result.reason == Reason::established) {
            FUZZ_CHECK(r.result.handle == first.result.handle, "the reply passed on entry {}, not {}",
                       r.result.handle, first.result.handle);
            FUZZ_CHECK(r.result.reply, "the mirrored reply is not seen as a reply");
        }
    }
    if (first.tracked && (flags & 4)) {
        now += step;
        const Step again = track_one(w, frame, role, now);
        if (first.opened && !reply_opened && again.result.action == CtAction::pass &&
            again.result.reason == Reason::established)
            FUZZ_CHECK(!again.result.reply, "the repeated frame is seen as a reply");
    }
    empty_table(w.ct);
    return 0;
}
