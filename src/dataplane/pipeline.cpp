// The per-packet pipeline of one worker: see pipeline.hpp for the steps and the contract.
#include "dataplane/pipeline.hpp"

#include <algorithm>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "dataplane/flow_key.hpp"
#include "dataplane/parser.hpp"

namespace tagwall::dataplane {

Pipeline::Pipeline(std::shared_ptr<const IdentityTable> identity,
                   std::shared_ptr<const rules::PolicyClassifier> classifier, uint32_t generation,
                   std::vector<PortConfig> ports, const PipelineConfig& config)
    : ports_(std::move(ports)),
      port_counters_(ports_.size()),
      ct_(config.flows),
      frags_(config.fragments),
      macs_(config.macs),
      limiter_(config.reject_rate, config.reject_burst),
      l2_switch_(config.l2_switch),
      events_(config.events),
      expire_budget_(config.expire_budget),
      flow_sweep_ns_(std::clamp<uint64_t>(config.flow_sweep_ns, 1, kMaxFlowSweepNs)) {
    if (ports_.empty() || ports_.size() > kMaxPorts)
        throw std::invalid_argument("pipeline: between 1 and 64 ports");
    for (const PortConfig& p : ports_)
        if (p.peer != kNoPort && p.peer >= ports_.size())
            throw std::invalid_argument("pipeline: a port's peer is not a port");
    set_policy(std::move(identity), std::move(classifier), generation);
}

void Pipeline::set_policy(std::shared_ptr<const IdentityTable> identity,
                          std::shared_ptr<const rules::PolicyClassifier> classifier, uint32_t generation) {
    if (!identity || !classifier) throw std::invalid_argument("pipeline: no policy");
    auto bundle = PolicyBundle::make(std::move(classifier), generation, 1, {}, std::move(identity));
    adopt(*bundle, 0);
    own_bundle_ = std::move(bundle);  // after adopt: the previous one may be what identity_ pointed into
}

void Pipeline::adopt(const PolicyBundle& b, size_t worker) noexcept {
    identity_ = b.identity;      // reference counts only: the bundle keeps every object alive
    classifier_ = b.classifier;
    generation_ = b.generation;
    rule_logs_ = b.rule_logs.data();
    rule_count_ = b.rule_count();
    rule_counters_ = worker < b.counters.size() ? b.counters[worker].get() : nullptr;
    if (rule_counters_ == nullptr) rule_count_ = 0;
}

uint64_t Pipeline::flush_flows() noexcept {
    FlowTable& t = ct_.table();
    uint64_t n = 0;
    for (FlowHandle h = 0; h < t.capacity(); ++h)
        if (t.live(h)) {
            t.erase(h);
            ++n;
        }
    return n;
}

void Pipeline::process(std::span<const FrameRef> frames, uint64_t now, std::span<Verdict> out) noexcept {
    const size_t n = frames.size() < out.size() ? frames.size() : out.size();
    // In locals: the parsers' byte stores could alias the vector's pointers, which would be reloaded.
    const size_t port_count = ports_.size();
    const PortConfig* const ports = ports_.data();
    for (size_t base = 0; base < n; base += kBatch) {
        const size_t m = n - base < kBatch ? n - base : kBatch;
        for (size_t i = 0; i < m; ++i) {
            const FrameRef& f = frames[base + i];
            // The frame a few ahead (its headers: the first line), as a worker prefetches fresh mbufs.
            if (i + kFrameLead < m) __builtin_prefetch(frames[base + i + kFrameLead].data);
            const bool from_workload = f.port < port_count && ports[f.port].role != PortRole::uplink;
            // The commonest frame, an ACK, is read into a small AckSegment; in full only if it needs more.
            const std::span<const uint8_t> bytes(f.data, f.length);
            batch_is_ack_[i] = maybe_ack_segment(bytes) && parse_ack_segment(bytes, batch_ack_[i]);
            if (batch_is_ack_[i]) {
                batch_bad_[i].reset();
                ct_.probe(batch_ack_[i], batch_probe_[i]);
                ct_.prefetch(batch_probe_[i], 0);
                // (no SpoofGuard prefetch: its answer is mostly remembered in the connection's entry)
                continue;
            }
            batch_bad_[i] = parse_frame(bytes, batch_[i]);
            if (!batch_bad_[i]) {
                ct_.probe(batch_[i], batch_[i].vlan, batch_probe_[i]);
                ct_.prefetch(batch_probe_[i], 0);
                if (from_workload) identity_->prefetch_source(batch_[i]);
            }
        }
        std::array<bool, kBatch> likely_new;
        bool any_new = false;
        for (size_t i = 0; i < m; ++i) {  // a new connection's addresses are looked up when it is classified
            // (an ACK opens nothing: its entry is only prefetched)
            batch_has_pre_[i] = false;
            // An ACK's entry is prefetched later, a few frames before it is decided (below): here
            // its bucket may not have arrived yet, and the line fill buffers are busy enough.
            likely_new[i] = !batch_is_ack_[i] && !batch_bad_[i] && !ct_.prefetch(batch_probe_[i], 1) &&
                            batch_probe_[i].shape == CtShape::tracked;
            if (likely_new[i]) identity_->prefetch_ends(batch_[i]);
            any_new |= likely_new[i];
        }
        if (any_new) preclassify(frames.subspan(base, m), likely_new);
        for (size_t i = 0; i < m && i < kAckLead; ++i)
            if (batch_is_ack_[i]) ct_.prefetch(batch_probe_[i], 1);
        for (size_t i = 0; i < m; ++i) {
            const FrameRef& f = frames[base + i];
            if (i + kAckLead < m && batch_is_ack_[i + kAckLead]) ct_.prefetch(batch_probe_[i + kAckLead], 1);
            if (batch_is_ack_[i]) {
                if (fast_established(f, batch_ack_[i], batch_probe_[i], now, out[base + i])) continue;
                // Not the fast path's (no entry, another state, out of the window ...): parsed in full,
                // and decided as any frame.  The probe stays: ConnTrack::probe gives the same for both.
                batch_bad_[i] = parse_frame(std::span<const uint8_t>(f.data, f.length), batch_[i]);
            } else if (!batch_bad_[i] && fast_established(f, batch_[i], batch_probe_[i], now, out[base + i])) {
                continue;
            }
            out[base + i] = process_parsed(f, batch_[i], batch_bad_[i], batch_probe_[i], now,
                                           batch_has_pre_[i] ? &batch_pre_[i] : nullptr);
        }
    }
    expire(now);
}

namespace {

// The policy's view of a parsed IP packet.
rules::PacketKey packet_key(const ParsedPacket& p) noexcept {
    rules::PacketKey key;
    key.vlan = p.vlan;
    key.src = p.src;
    key.dst = p.dst;
    key.proto = p.proto;
    key.sport = p.sport;
    key.dport = p.dport;
    key.icmp_type = p.icmp_type;
    key.icmp_code = p.icmp_code;
    return key;
}

}  // namespace

void Pipeline::preclassify(std::span<const FrameRef> frames, const std::array<bool, kBatch>& likely_new) noexcept {
    std::array<uint16_t, kBatch> vlans;
    std::array<rules::FieldKey, kBatch> keys;
    std::array<uint8_t, kBatch> which;
    const IdentityTable& ids = *identity_;
    size_t n = 0;
    for (size_t i = 0; i < frames.size(); ++i) {
        if (!likely_new[i] || frames[i].port >= ports_.size()) continue;
        const ParsedPacket& p = batch_[i];
        if (!ids.segment_known(p.vlan) || !ct_.opens_on_miss(p, batch_probe_[i])) continue;
        Preclassified& pc = batch_pre_[i];
        pc.src = ids.resolve(p.src);
        pc.dst = ids.resolve(p.dst);
        pc.key = rules::to_field_key(packet_key(p), pc.src, pc.dst);
        vlans[n] = p.vlan;
        keys[n] = pc.key;
        which[n] = static_cast<uint8_t>(i);
        ++n;
    }
    if (n == 0) return;  // (the established traffic's batches: nothing below, not even `decisions` built)
    std::array<rules::Decision, kBatch> decisions;
    classifier_->classify_burst(std::span<const uint16_t>(vlans.data(), n),
                                std::span<const rules::FieldKey>(keys.data(), n),
                                std::span<rules::Decision>(decisions.data(), n));
    // What deciding them will write: the rule counters, and the entries of the connections they open.
    size_t opening = 0;
    for (size_t j = 0; j < n; ++j) {
        const rules::Decision& d = decisions[j];
        batch_pre_[which[j]].decision = d;
        batch_has_pre_[which[j]] = true;
        if (d.rule >= 0 && static_cast<size_t>(d.rule) < rule_count_)
            __builtin_prefetch(&rule_counters_[static_cast<size_t>(d.rule)], 1);
        opening += d.action == rules::Action::allow;
    }
    ct_.prefetch_new(opening);
}

void Pipeline::expire(uint64_t now) noexcept {
    // Slots accrue at capacity per flow_sweep_ns of `now` (an elapsed time above one period counts as
    // one: the product stays below 2^62), are spent expire_budget at most per call, and at most one
    // sweep is owed.  A clock that goes back accrues nothing.
    const uint64_t capacity = ct_.table().capacity();
    const uint64_t elapsed = now > last_expire_ ? std::min(now - last_expire_, flow_sweep_ns_) : 0;
    last_expire_ = std::max(now, last_expire_);
    sweep_credit_ = std::min(sweep_credit_ + elapsed * capacity, capacity * flow_sweep_ns_);
    const uint64_t slots = std::min<uint64_t>(expire_budget_, sweep_credit_ / flow_sweep_ns_);
    sweep_credit_ -= slots * flow_sweep_ns_;
    if (slots != 0) ct_.expire(now, static_cast<size_t>(slots));
    frags_.expire(now, expire_budget_);
}

Verdict Pipeline::finish(const Verdict& decided, uint8_t in_port, const ParsedPacket* p) noexcept {
    // Field by field, not copied whole: `decided` was mostly just written field by field, and a wide
    // load of narrower stores cannot be forwarded (it waits for every older store to reach the cache,
    // those of a new connection's entry included).
    Verdict v{decided.action, decided.reason, decided.rule, kNoPort};
    ++reasons_[static_cast<size_t>(v.reason)];
    if (v.rule >= 0 && static_cast<size_t>(v.rule) < rule_count_) {
        RuleCounter& c = rule_counters_[static_cast<size_t>(v.rule)];
        ++c.packets;
        c.bytes += p != nullptr ? p->l3_length : 0;
        c.last_ns = now_;
    }
    PortCounters& in = port_counters_[in_port];
    switch (v.action) {
    case rules::Action::allow:
        ++verdicts_.allow;
        v.out_port = forward_port(*p, in_port, now_);
        count_tx(v.out_port, in_port);
        if (events_ != nullptr && v.reason == Reason::rule && v.rule >= 0 &&
            static_cast<size_t>(v.rule) < rule_count_ && rule_logs_[static_cast<size_t>(v.rule)] != 0)
            emit(v, in_port, p);
        break;
    case rules::Action::reject:
        ++verdicts_.reject;
        ++in.dropped;
        v.out_port = in_port;  // where reject_answer()'s answer goes
        if (events_ != nullptr) emit(v, in_port, p);
        break;
    case rules::Action::drop:
        ++verdicts_.drop;
        ++in.dropped;
        v.out_port = kNoPort;
        if (events_ != nullptr) emit(v, in_port, p);
        break;
    }
    return v;
}

void Pipeline::count_tx(uint8_t out_port, uint8_t in_port) noexcept {
    if (out_port == kFlood) [[unlikely]] {
        ++flooded_;
        for (size_t i = 0; i < ports_.size(); ++i)
            if (i != in_port) ++port_counters_[i].tx;
    } else if (out_port != kNoPort) {
        ++port_counters_[out_port].tx;
    }
}

void Pipeline::emit(const Verdict& v, uint8_t in_port, const ParsedPacket* p) noexcept {
    Event e;
    e.time_ns = now_;
    e.generation = generation_;
    e.rule = v.rule;
    e.port = in_port;
    e.action = v.action;
    e.reason = v.reason;
    if (p != nullptr) {
        e.vlan = p->vlan;
        if (p->kind == PacketKind::ipv4 || p->kind == PacketKind::ipv6) {
            e.ip = true;
            e.src = p->src;
            e.dst = p->dst;
            e.proto = p->proto;
            e.sport = p->sport;
            e.dport = p->dport;
            e.icmp_type = p->icmp_type;
            e.icmp_code = p->icmp_code;
        } else if (p->kind == PacketKind::arp) {
            e.src = p->arp_sender_ip;
            e.dst = p->arp_target_ip;
        }
    }
    events_->push(e);
}

template <class Frame>
uint8_t Pipeline::forward_port(const Frame& p, uint8_t in_port, uint64_t now) const noexcept {
    if (!l2_switch_) return ports_[in_port].peer;
    if (is_group_mac(p.dst_mac)) return kFlood;
    const uint8_t known = macs_.port_of(p.vlan, p.dst_mac, now);
    return known == MacTable::kUnknown ? kFlood : known == in_port ? kNoPort : known;
}

size_t Pipeline::revoke_peer_rst(const FrameRef& f, uint64_t now, std::span<uint8_t> out, uint8_t& port) noexcept {
    port = kNoPort;
    if (f.port >= ports_.size()) return 0;
    ParsedPacket& p = scratch_;
    if (parse_frame(std::span<const uint8_t>(f.data, f.length), p)) return 0;
    port = forward_port(p, f.port, now);
    if (port == kNoPort) return 0;
    const size_t n = build_forward_rst(std::span<const uint8_t>(f.data, f.length), p, out);
    if (n == 0) return 0;
    if (!limiter_.take(now)) {
        ++reasons_[static_cast<size_t>(Reason::reject_rate_limited)];
        return 0;
    }
    return n;
}

template <class Frame>
void Pipeline::learn(const Frame& p, bool attributed, uint8_t in_port) noexcept {
    if (is_group_mac(p.src_mac)) return;
    if (ports_[in_port].role == PortRole::workload) {
        if (attributed) macs_.learn(p.vlan, p.src_mac, in_port, now_);
    } else if (identity_->endpoint_by_mac(p.vlan, p.src_mac) == rules::kExternal) {
        macs_.learn(p.vlan, p.src_mac, in_port, now_);
    }
}

size_t Pipeline::reject_answer(const FrameRef& f, uint64_t now, std::span<uint8_t> out) noexcept {
    ParsedPacket& p = scratch_;
    if (parse_frame(std::span<const uint8_t>(f.data, f.length), p)) return 0;
    const size_t n = build_reject(std::span<const uint8_t>(f.data, f.length), p, out);
    if (n == 0) return 0;
    if (!limiter_.take(now)) {
        ++reasons_[static_cast<size_t>(Reason::reject_rate_limited)];
        return 0;
    }
    return n;
}

Verdict Pipeline::process_one(const FrameRef& f, uint64_t now) noexcept {
    ParsedPacket& p = scratch_;
    const auto bad = parse_frame(std::span<const uint8_t>(f.data, f.length), p);
    const CtProbe k = bad ? CtProbe{} : ct_.probe(p, p.vlan);
    return process_parsed(f, p, bad, k, now);
}

// The established fast path: the packets most traffic consists of (an ACK of an established TCP
// connection allowed under the current generation, from a source SpoofGuard accepts as bound, not a
// fragment) decided with the fewest steps.  Every test below is one process_parsed() makes on its way
// to the same verdict, in the same order where order matters (SpoofGuard before the connection table);
// whatever it is not sure of it leaves to process_parsed() with nothing counted or changed
// (ConnTrack::pass_established says how the table is left).  The fuzz target fuzz-pipeline compares
// process() with process_one(), which never takes this path, on every input.
template <class Segment>
bool Pipeline::fast_established(const FrameRef& f, const Segment& p, const CtProbe& k, uint64_t now,
                                Verdict& out) noexcept {
    if constexpr (std::is_same_v<Segment, ParsedPacket>) {  // an AckSegment is all of this by construction
        if (k.shape != CtShape::tracked || k.kind != L4Kind::tcp || p.fragment) return false;
    }
    if (f.port >= ports_.size()) return false;
    const IdentityTable& ids = *identity_;
    if (!ids.segment_known(p.vlan)) return false;
    bool reply = false;
    const FlowHandle h = ct_.established_entry(p, k, generation_, now, reply);
    if (h == kNoFlow) return false;
    // SpoofGuard, before the connection is tracked: off an uplink the source must be bound.  The entry
    // remembers the MAC this direction's source was last found bound with under its generation (which
    // is ours, and names one identity table): the same MAC from the same address (the key's) in the
    // same segment (the key's) gets the same answer, so the table is read again only for another MAC.
    Mac& known = ct_.table().entry(h).source_mac[reply];
    bool remember = false;
    if (ports_[f.port].role != PortRole::uplink && !(same_mac(known, p.src_mac) && !is_zero_mac(known))) {
        uint32_t endpoint;
        if (!ids.bound_source(p, endpoint)) return false;
        remember = true;
    }
    if (!ct_.pass_established(h, p, reply, now)) return false;
    if (remember) known = p.src_mac;
    // What process_parsed() and finish() count for an established allow (no rule counter, no event).
    // (learn: off an uplink the source was found bound, so the frame is attributed to its endpoint;
    // on an uplink `attributed` is not asked.)
    now_ = now;
    ++port_counters_[f.port].rx;
    if (l2_switch_) learn(p, true, f.port);
    ++reasons_[static_cast<size_t>(Reason::established)];
    ++verdicts_.allow;
    const uint8_t to = forward_port(p, f.port, now);
    count_tx(to, f.port);
    out = {rules::Action::allow, Reason::established, -1, to};
    return true;
}

Verdict Pipeline::process_parsed(const FrameRef& f, ParsedPacket& p, std::optional<Reason> bad, const CtProbe& k,
                                 uint64_t now, const Preclassified* pre) noexcept {
    constexpr auto kDrop = rules::Action::drop;
    now_ = now;
    if (f.port >= ports_.size()) {
        ++unknown_port_;
        ++verdicts_.drop;
        return {kDrop, Reason::unknown_segment, -1, kNoPort};
    }
    ++port_counters_[f.port].rx;
    if (bad) return finish({kDrop, *bad}, f.port, nullptr);

    const IdentityTable& ids = *identity_;
    if (!ids.segment_known(p.vlan)) return finish({kDrop, Reason::unknown_segment}, f.port, &p);

    // SpoofGuard on an uplink checks nothing for IP (the segment is known): it only resolves the source,
    // which decide() does when it needs it.  Everything else goes through check_source().
    const PortRole role = ports_[f.port].role;
    const bool uplink_ip = role == PortRole::uplink && (p.kind == PacketKind::ipv4 || p.kind == PacketKind::ipv6);
    SourceCheck src;
    if (uplink_ip) [[likely]] {
        src.ok = true;
    } else {
        src = ids.check_source(p, role);
        if (!src.ok) return finish({kDrop, src.reason}, f.port, &p);
    }
    if (l2_switch_) learn(p, src.identity.endpoint != rules::kExternal, f.port);
    if (p.kind == PacketKind::arp || p.nd || src.infrastructure_only)
        return finish({rules::Action::allow, Reason::arp_nd}, f.port, &p);
    if (p.kind != PacketKind::ipv4 && p.kind != PacketKind::ipv6)
        return finish({kDrop, Reason::unsupported_ethertype}, f.port, &p);

    if (p.fragment && !p.first_fragment) {
        const FragmentVerdict fv = frags_.later_fragment(FragmentKey::of(p), FragmentSpan::of(p), now);
        if (!fv.pass) return finish({kDrop, fv.reason}, f.port, &p);
        if (fv.tcp) ct_.extend_tcp_segment(fv.handle, p, fv.tcp_end);
        return finish({rules::Action::allow, Reason::established}, f.port, &p);
    }
    // A first fragment the fragment table would refuse (repeated, malformed lengths, or no room) is
    // dropped before anything in it is tracked or classified.
    if (p.fragment) [[unlikely]] {
        if (const auto refused = frags_.check_first(FragmentKey::of(p), FragmentSpan::of(p), now))
            return finish({kDrop, refused->reason}, f.port, &p);
    }

    Verdict v = decide(p, k, uplink_ip ? nullptr : &src.identity, now, pre);
    if (p.fragment) {  // a first fragment: its later fragments follow this decision
        const bool allowed = v.action == rules::Action::allow;
        const FirstDecision d = allowed ? first_allowed(p, static_cast<uint32_t>(v.rule), now)
                                        : FirstDecision::deny(v.reason, static_cast<uint32_t>(v.rule));
        const FragmentVerdict fv = frags_.first_fragment(FragmentKey::of(p), FragmentSpan::of(p), d, now);
        // (a connection the first fragment opened stays: the fragment table refusing the datagram
        // says nothing about the connection, whose next unfragmented packet is established)
        if (allowed && !fv.pass) v = {kDrop, fv.reason, -1, kNoPort};
    }
    return finish(v, f.port, &p);
}

// The fragment table's record of an allowed first fragment: the deciding rule, or for a TCP segment
// its connection and where the segment starts in sequence space (fragments.hpp, "TCP segments in
// fragments"): its payload starts after the extension headers that follow the Fragment header (IPv6)
// and the TCP header.
FirstDecision Pipeline::first_allowed(const ParsedPacket& p, uint32_t rule, uint64_t now) const noexcept {
    if (p.proto != kIpProtoTcp || !p.l4_present) return FirstDecision::allow(rule);
    const FlowHandle h = ct_.find(p, p.vlan, now);
    if (h == kNoFlow) return FirstDecision::allow(rule);
    const uint32_t payload_start = (p.l4_offset - p.fragment_data) + (p.l4_length - p.payload_length);
    return FirstDecision::allow(h, TcpSegmentStart{true, (p.tcp_flags & kTcpFin) != 0, p.tcp_seq - payload_start});
}

Verdict Pipeline::decide(const ParsedPacket& p, const CtProbe& k, const rules::Identity* src_or_null,
                         uint64_t now, const Preclassified* pre) noexcept {
    constexpr auto kDrop = rules::Action::drop;
    const CtResult r = ct_.track(p, k, now);
    switch (r.action) {
    case CtAction::pass:
        if (r.handle != kNoFlow && ct_.table().entry(r.handle).generation != generation_) [[unlikely]]
            return reverify(r);
        return {rules::Action::allow, r.reason};
    case CtAction::drop: return {kDrop, r.reason};
    case CtAction::classify:
    case CtAction::classify_stateless: break;
    }

    const rules::PacketKey key = packet_key(p);
    // Both ends resolved once, through the worker's identity table: classify and the new entry share
    // them.  A decision made ahead for the batch (preclassify, the same table) holds when the engine
    // key is the same.
    const rules::Identity src = src_or_null != nullptr ? *src_or_null
                                : pre != nullptr       ? pre->src
                                                       : identity_->resolve(p.src);
    const rules::Identity dst = pre != nullptr ? pre->dst : identity_->resolve(p.dst);
    const rules::Decision d = pre != nullptr && rules::to_field_key(key, src, dst) == pre->key
                                  ? pre->decision
                                  : classifier_->classify(key, src, dst);
    if (d.reason == rules::DecisionReason::unknown_segment) return {kDrop, Reason::unknown_segment};
    const Reason why = d.reason == rules::DecisionReason::rule ? Reason::rule : Reason::default_action;
    if (d.action != rules::Action::allow || r.action == CtAction::classify_stateless)
        return {d.action, why, d.rule};

    FlowOrigin origin;
    origin.rule_index = d.rule;
    origin.generation = generation_;
    origin.src_identity = src.identity_class;
    origin.dst_identity = dst.identity_class;
    const CtResult c = ct_.create_after_miss(p, k, origin, now);  // track() found no entry: r is `classify`
    if (c.action == CtAction::pass) return {rules::Action::allow, why, d.rule};
    return {kDrop, c.reason};
}

Verdict Pipeline::reverify(const CtResult& r) noexcept {
    FlowEntry& e = ct_.table().entry(r.handle);
    const rules::PacketKey key = initiator_key(e);
    const rules::Identity src = identity_->resolve(key.src);
    const rules::Identity dst = identity_->resolve(key.dst);
    const rules::Decision d = classifier_->classify(key, src, dst);
    if (d.action == rules::Action::allow) {
        FlowAttribution& a = ct_.table().attribution(r.handle);
        a.rule_index = d.rule;
        a.identity = {src.identity_class, dst.identity_class};
        e.generation = generation_;
        e.source_mac = {};  // SpoofGuard's answers were the old generation's identity table's
        return {rules::Action::allow, r.reason};
    }
    ct_.close(r.handle);
    return {d.action, Reason::revoked, d.rule};
}

}  // namespace tagwall::dataplane
