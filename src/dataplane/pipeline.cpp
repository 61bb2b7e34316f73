// The per-packet pipeline of one worker: see pipeline.hpp for the steps and the contract.
#include "dataplane/pipeline.hpp"

#include <stdexcept>
#include <utility>

#include "dataplane/parser.hpp"

namespace tagwall::dataplane {

Pipeline::Pipeline(std::shared_ptr<const IdentityTable> identity,
                   std::shared_ptr<const rules::PolicyClassifier> classifier, uint32_t generation,
                   std::vector<PortConfig> ports, const PipelineConfig& config)
    : ports_(std::move(ports)),
      port_counters_(ports_.size()),
      ct_(config.flows),
      frags_(config.fragments),
      expire_budget_(config.expire_budget) {
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
    identity_ = std::move(identity);
    classifier_ = std::move(classifier);
    generation_ = generation;
}

void Pipeline::process(std::span<const FrameRef> frames, uint64_t now, std::span<Verdict> out) noexcept {
    const size_t n = frames.size() < out.size() ? frames.size() : out.size();
    for (size_t i = 0; i < n; ++i) out[i] = process_one(frames[i], now);
    expire(now);
}

void Pipeline::expire(uint64_t now) noexcept {
    ct_.expire(now, expire_budget_);
    frags_.expire(now, expire_budget_);
}

Verdict Pipeline::finish(Verdict v, uint8_t in_port) noexcept {
    ++reasons_[static_cast<size_t>(v.reason)];
    PortCounters& in = port_counters_[in_port];
    switch (v.action) {
    case rules::Action::allow:
        ++verdicts_.allow;
        v.out_port = ports_[in_port].peer;
        if (v.out_port != kNoPort) ++port_counters_[v.out_port].tx;
        break;
    case rules::Action::reject:
        ++verdicts_.reject;
        ++in.dropped;
        v.out_port = in_port;  // where the answer will go, once answers are sent
        break;
    case rules::Action::drop:
        ++verdicts_.drop;
        ++in.dropped;
        v.out_port = kNoPort;
        break;
    }
    return v;
}

Verdict Pipeline::process_one(const FrameRef& f, uint64_t now) noexcept {
    constexpr auto kDrop = rules::Action::drop;
    if (f.port >= ports_.size()) {
        ++unknown_port_;
        ++verdicts_.drop;
        return {kDrop, Reason::unknown_segment, -1, kNoPort};
    }
    ++port_counters_[f.port].rx;
    ParsedPacket& p = scratch_;
    if (const auto bad = parse_frame(std::span<const uint8_t>(f.data, f.length), p))
        return finish({kDrop, *bad}, f.port);

    const IdentityTable& ids = *identity_;
    if (!ids.segment_known(p.vlan)) return finish({kDrop, Reason::unknown_segment}, f.port);

    const SourceCheck src = ids.check_source(p, ports_[f.port].role);
    if (!src.ok) return finish({kDrop, src.reason}, f.port);
    if (p.kind == PacketKind::arp || p.nd || src.infrastructure_only)
        return finish({rules::Action::allow, Reason::arp_nd}, f.port);
    if (p.kind != PacketKind::ipv4 && p.kind != PacketKind::ipv6)
        return finish({kDrop, Reason::unsupported_ethertype}, f.port);

    if (p.fragment && !p.first_fragment) {
        const FragmentVerdict fv = frags_.later_fragment(FragmentKey::of(p), FragmentSpan::of(p), now);
        if (fv.pass) return finish({rules::Action::allow, Reason::established}, f.port);
        return finish({kDrop, fv.reason}, f.port);
    }

    Verdict v = decide(p, src.identity, now);
    if (p.fragment) {  // a first fragment: its later fragments follow this decision
        const bool allowed = v.action == rules::Action::allow;
        const FirstDecision d = allowed ? FirstDecision::allow(static_cast<uint32_t>(v.rule))
                                        : FirstDecision::deny(v.reason, static_cast<uint32_t>(v.rule));
        const FragmentVerdict fv = frags_.first_fragment(FragmentKey::of(p), FragmentSpan::of(p), d, now);
        // (a connection the first fragment opened stays: the fragment table refusing the datagram
        // says nothing about the connection, whose next unfragmented packet is established)
        if (allowed && !fv.pass) v = {kDrop, fv.reason, -1, kNoPort};
    }
    return finish(v, f.port);
}

Verdict Pipeline::decide(const ParsedPacket& p, const rules::Identity& src, uint64_t now) noexcept {
    constexpr auto kDrop = rules::Action::drop;
    const CtResult r = ct_.track(p, p.vlan, now);
    switch (r.action) {
    case CtAction::pass: return {rules::Action::allow, r.reason};
    case CtAction::drop: return {kDrop, r.reason};
    case CtAction::classify:
    case CtAction::classify_stateless: break;
    }

    rules::PacketKey key;
    key.vlan = p.vlan;
    key.src = p.src;
    key.dst = p.dst;
    key.proto = p.proto;
    key.sport = p.sport;
    key.dport = p.dport;
    key.icmp_type = p.icmp_type;
    key.icmp_code = p.icmp_code;
    // Both ends resolved once, through the worker's identity table: classify and the new entry share them.
    const rules::Identity dst = identity_->resolve(p.dst);
    const rules::Decision d = classifier_->classify(key, src, dst);
    if (d.reason == rules::DecisionReason::unknown_segment) return {kDrop, Reason::unknown_segment};
    const Reason why = d.reason == rules::DecisionReason::rule ? Reason::rule : Reason::default_action;
    if (d.action != rules::Action::allow || r.action == CtAction::classify_stateless)
        return {d.action, why, d.rule};

    FlowOrigin origin;
    origin.rule_index = d.rule;
    origin.generation = generation_;
    origin.src_identity = src.identity_class;
    origin.dst_identity = dst.identity_class;
    const CtResult c = ct_.create(p, p.vlan, origin, now);
    if (c.action == CtAction::pass) return {rules::Action::allow, why, d.rule};
    return {kDrop, c.reason};
}

}  // namespace tagwall::dataplane
