// The linear reference classifier: first matching rule, top to bottom, exactly as SPEC §4 reads.
//
// This is the oracle that every fast engine (trie, rte_acl) is tested against, so it is written to be
// obviously right rather than fast: resolve both addresses to identities, then test each rule in order.
// Run side: classify() is const, noexcept and does not allocate; several workers may share one instance.
#pragma once

#include <memory>

#include "rules/ruleset.hpp"

namespace tagwall::rules {

class LinearClassifier {
public:
    explicit LinearClassifier(std::shared_ptr<const RuleSet> rules) : rules_(std::move(rules)) {}

    Decision classify(const PacketKey& key) const noexcept;
    const RuleSet& ruleset() const noexcept { return *rules_; }

private:
    std::shared_ptr<const RuleSet> rules_;
};

}  // namespace tagwall::rules
