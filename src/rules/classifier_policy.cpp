// Build side (to_field_rules, retag) and run side (PolicyClassifier::classify) of the policy bridge.
#include "rules/classifier_policy.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>

namespace tagwall::rules {
namespace {

// Runs of consecutive set bits, as closed ranges.
std::vector<FieldRange> runs_of(const DynBitset& set) {
    std::vector<FieldRange> out;
    for (size_t i = set.next(0); i < set.size();) {
        size_t j = i;
        while (j + 1 < set.size() && set.test(j + 1)) ++j;
        out.push_back({static_cast<uint32_t>(i), static_cast<uint32_t>(j)});
        i = set.next(j + 1);
    }
    return out;
}

// Field ranges (sport, dport, proto) for one service item.
std::array<FieldRange, 3> service_ranges(const ServiceItem& s) {
    const FieldRange any_port{0, 0xFFFF};
    const FieldRange proto{s.proto, s.proto};
    if (proto_has_ports(s.proto)) return {any_port, FieldRange{s.port_lo, s.port_hi}, proto};
    if (proto_is_icmp(s.proto)) {
        const FieldRange type = s.icmp_type < 0 ? any_port : FieldRange{uint32_t(s.icmp_type), uint32_t(s.icmp_type)};
        return {any_port, type, proto};
    }
    return {any_port, any_port, proto};
}

std::vector<std::array<FieldRange, 3>> services_of(const CompiledRule& rule) {
    std::vector<std::array<FieldRange, 3>> services;
    if (rule.any_service) services.push_back({FieldRange{0, 0xFFFF}, FieldRange{0, 0xFFFF}, FieldRange{0, 0xFF}});
    for (const auto& s : rule.services) services.push_back(service_ranges(s));
    return services;
}

// Appends rule r's field rules for every (src run) x (dst run) x service, from `priority` on.
uint32_t expand(std::vector<FieldRule>& out, const std::vector<FieldRange>& srcs, const std::vector<FieldRange>& dsts,
                const std::vector<std::array<FieldRange, 3>>& services, size_t r, uint32_t priority) {
    for (const auto& src : srcs)
        for (const auto& dst : dsts)
            for (const auto& svc : services) {
                FieldRule fr;
                fr.field = {src, dst, svc[0], svc[1], svc[2]};
                fr.priority = priority++;
                fr.id = static_cast<int32_t>(r);
                out.push_back(fr);
            }
    return priority;
}

}  // namespace

uint32_t priority_stride(const RuleSet& rs) {
    uint64_t largest = 1;
    for (const auto& rule : rs.rules())
        largest = std::max<uint64_t>(largest, uint64_t{runs_of(rule.from_classes).size()} *
                                                  runs_of(rule.to_classes).size() * services_of(rule).size());
    const uint64_t rules = std::max<size_t>(rs.rules().size(), 1);
    uint64_t stride = 64;
    while (stride < 2 * largest) stride *= 2;
    if (stride * rules > 0x7FFFFFFFu) throw std::length_error("policy too large for the classifier's priority space");
    // Room for identity classes made later by retagging: up to 16x more, as far as priorities reach.
    for (int i = 0; i < 4 && 2 * stride * rules <= 0x7FFFFFFFu; ++i) stride *= 2;
    return static_cast<uint32_t>(stride);
}

std::vector<FieldRule> to_field_rules(const RuleSet& rs, uint32_t stride) {
    if (stride == 0) stride = priority_stride(rs);
    std::vector<FieldRule> out;
    for (size_t r = 0; r < rs.rules().size(); ++r) {
        const auto& rule = rs.rules()[r];
        expand(out, runs_of(rule.from_classes), runs_of(rule.to_classes), services_of(rule), r,
               static_cast<uint32_t>(r) * stride);
    }
    return out;
}

FieldKey to_field_key(const PacketKey& k, const Identity& src, const Identity& dst) noexcept {
    const bool icmp = proto_is_icmp(k.proto);
    return {src.identity_class, dst.identity_class, icmp ? uint32_t{k.icmp_code} : uint32_t{k.sport},
            icmp ? uint32_t{k.icmp_type} : uint32_t{k.dport}, uint32_t{k.proto}};
}

FieldKey to_field_key(const RuleSet& rs, const PacketKey& k) noexcept {
    return to_field_key(k, rs.resolve(k.src), rs.resolve(k.dst));
}

PolicyClassifier::PolicyClassifier(std::shared_ptr<const RuleSet> rules, std::string_view engine)
    : rules_(std::move(rules)), engine_name_(engine) {
    actions_.reserve(rules_->rules().size());
    for (const auto& rule : rules_->rules()) actions_.push_back(rule.action);
    rebuild();
}

RetagResult PolicyClassifier::retag(uint32_t endpoint, Tags tags) {
    Retagged next = rules_->with_endpoint_tags(endpoint, std::move(tags));
    std::vector<FieldRule> added;
    bool fits = true;
    std::vector<uint32_t> next_priority = next_priority_;
    if (next.new_class) {
        const uint32_t c = next.identity_class;
        const std::vector<FieldRange> just_c{{c, c}};
        for (size_t r = 0; r < next.rules->rules().size() && fits; ++r) {
            const auto& rule = next.rules->rules()[r];
            const bool from = rule.from_classes.test(c), to = rule.to_classes.test(c);
            if (!from && !to) continue;
            // (c, every destination) and (every source but c, c): each pair once.
            DynBitset others = rule.from_classes;
            others.reset(c);
            const auto services = services_of(rule);
            uint32_t p = next_priority[r];
            if (from) p = expand(added, just_c, runs_of(rule.to_classes), services, r, p);
            if (to) p = expand(added, runs_of(others), just_c, services, r, p);
            fits = p <= (static_cast<uint32_t>(r) + 1) * stride_;
            next_priority[r] = p;
        }
    }
    RetagResult result{added.size(), false};
    for (const auto& fr : added) {
        if (!fits || !engine_->insert(fr)) {  // a rule's block is full, or the engine (rte_acl) cannot update
            result.rebuilt = true;
            break;
        }
    }
    rules_ = std::move(next.rules);
    if (result.rebuilt) {
        rebuild();
    } else {
        next_priority_ = std::move(next_priority);
        field_rules_ += added.size();
    }
    return result;
}

void PolicyClassifier::rebuild() {
    stride_ = priority_stride(*rules_);
    const auto field_rules = to_field_rules(*rules_, stride_);
    field_rules_ = field_rules.size();
    next_priority_.assign(rules_->rules().size(), 0);
    for (size_t r = 0; r < next_priority_.size(); ++r) next_priority_[r] = static_cast<uint32_t>(r) * stride_;
    for (const auto& fr : field_rules) next_priority_[static_cast<size_t>(fr.id)] = fr.priority + 1;
    engine_ = make_classifier(engine_name_, field_rules);
}

Decision PolicyClassifier::classify(const PacketKey& key) const noexcept {
    return classify(key, rules_->resolve(key.src), rules_->resolve(key.dst));
}

Decision PolicyClassifier::classify(const PacketKey& key, const Identity& src, const Identity& dst) const noexcept {
    const FieldKey fk = to_field_key(key, src, dst);
    Decision d;
    classify_burst(std::span<const uint16_t>(&key.vlan, 1), std::span<const FieldKey>(&fk, 1),
                   std::span<Decision>(&d, 1));
    return d;
}

void PolicyClassifier::classify_burst(std::span<const uint16_t> vlans, std::span<const FieldKey> keys,
                                      std::span<Decision> out) const noexcept {
    constexpr size_t kChunk = 32;  // engine answers on the stack: no allocation
    for (size_t base = 0; base < keys.size(); base += kChunk) {
        const size_t n = std::min(kChunk, keys.size() - base);
        std::array<int32_t, kChunk> ids;
        engine_->classify_burst(keys.subspan(base, n), std::span<int32_t>(ids.data(), n));
        for (size_t i = 0; i < n; ++i)
            out[base + i] = rules_->segment_of(vlans[base + i]) == kNoSegment
                                ? Decision{Action::drop, -1, DecisionReason::unknown_segment}
                                : decision(ids[i]);
    }
}

Decision PolicyClassifier::decision(int32_t id) const noexcept {
    if (id == kNoMatch) return {rules_->default_action(), -1, DecisionReason::default_action};
    return {actions_[static_cast<size_t>(id)], id, DecisionReason::rule};
}

}  // namespace tagwall::rules
