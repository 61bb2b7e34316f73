// Build side (to_field_rules) and run side (PolicyClassifier::classify) of the policy bridge.
#include "rules/classifier_policy.hpp"

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

}  // namespace

std::vector<FieldRule> to_field_rules(const RuleSet& rs) {
    std::vector<FieldRule> out;
    uint32_t priority = 0;
    for (size_t r = 0; r < rs.rules().size(); ++r) {
        const auto& rule = rs.rules()[r];
        std::vector<std::array<FieldRange, 3>> services;
        if (rule.any_service) services.push_back({FieldRange{0, 0xFFFF}, FieldRange{0, 0xFFFF}, FieldRange{0, 0xFF}});
        for (const auto& s : rule.services) services.push_back(service_ranges(s));
        for (const auto& src : runs_of(rule.from_classes))
            for (const auto& dst : runs_of(rule.to_classes))
                for (const auto& svc : services) {
                    FieldRule fr;
                    fr.field = {src, dst, svc[0], svc[1], svc[2]};
                    fr.priority = priority++;
                    fr.id = static_cast<int32_t>(r);
                    out.push_back(fr);
                }
    }
    return out;
}

FieldKey to_field_key(const RuleSet& rs, const PacketKey& k) noexcept {
    const bool icmp = proto_is_icmp(k.proto);
    return {rs.resolve(k.src).identity_class, rs.resolve(k.dst).identity_class,
            icmp ? uint32_t{k.icmp_code} : uint32_t{k.sport}, icmp ? uint32_t{k.icmp_type} : uint32_t{k.dport},
            uint32_t{k.proto}};
}

PolicyClassifier::PolicyClassifier(std::shared_ptr<const RuleSet> rules, std::string_view engine)
    : rules_(std::move(rules)) {
    const auto field_rules = to_field_rules(*rules_);
    field_rules_ = field_rules.size();
    engine_ = make_classifier(engine, field_rules);
}

Decision PolicyClassifier::classify(const PacketKey& key) const noexcept {
    if (rules_->segment_of(key.vlan) == kNoSegment) return {Action::drop, -1, DecisionReason::unknown_segment};
    const FieldKey fk = to_field_key(*rules_, key);
    int32_t id = kNoMatch;
    engine_->classify_burst(std::span<const FieldKey>(&fk, 1), std::span<int32_t>(&id, 1));
    if (id == kNoMatch) return {rules_->default_action(), -1, DecisionReason::default_action};
    return {rules_->rules()[static_cast<size_t>(id)].action, id, DecisionReason::rule};
}

}  // namespace tagwall::rules
