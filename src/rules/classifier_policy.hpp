// A compiled policy through any classifier engine: the bridge between the tag world (RuleSet) and
// the five-field engines (classifier.hpp).
//
// Build side: `to_field_rules` expands each policy rule into field rules over (source identity
// class, destination identity class, source port or ICMP code, destination port or ICMP type,
// protocol): one per run of consecutive classes on each side and per service item, all carrying the
// policy rule's index as id and consecutive priorities, so first match is preserved.
// Run side: PolicyClassifier::classify is const and noexcept, like the engine below it.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "rules/classifier.hpp"
#include "rules/ruleset.hpp"

namespace tagwall::rules {

std::vector<FieldRule> to_field_rules(const RuleSet& rules);

// The engine key for a packet, after identity resolution.
FieldKey to_field_key(const RuleSet& rules, const PacketKey& key) noexcept;

class PolicyClassifier {
public:
    PolicyClassifier(std::shared_ptr<const RuleSet> rules, std::string_view engine);
    Decision classify(const PacketKey& key) const noexcept;
    const RuleSet& ruleset() const noexcept { return *rules_; }
    const Classifier& engine() const noexcept { return *engine_; }
    size_t field_rule_count() const noexcept { return field_rules_; }

private:
    std::shared_ptr<const RuleSet> rules_;
    std::unique_ptr<Classifier> engine_;
    size_t field_rules_ = 0;
};

}  // namespace tagwall::rules
