// Run side: the linear reference classifier (see classifier_linear.hpp).
#include "rules/classifier_linear.hpp"

namespace tagwall::rules {

Decision LinearClassifier::classify(const PacketKey& key) const noexcept {
    const RuleSet& rs = *rules_;
    if (rs.segment_of(key.vlan) == kNoSegment) return {Action::drop, -1, DecisionReason::unknown_segment};
    const Identity src = rs.resolve(key.src);
    const Identity dst = rs.resolve(key.dst);
    const auto n = static_cast<uint32_t>(rs.rules().size());
    for (uint32_t r = 0; r < n; ++r)
        if (rs.rule_matches(r, src, dst, key)) return {rs.rules()[r].action, static_cast<int32_t>(r), DecisionReason::rule};
    return {rs.default_action(), -1, DecisionReason::default_action};
}

}  // namespace tagwall::rules
