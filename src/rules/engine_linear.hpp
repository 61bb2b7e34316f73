// The linear engine over field rules: every rule in priority order, first match wins.  The oracle the
// trie and rte_acl engines are tested against on ClassBench and random sets.  Updates are trivial.
#pragma once

#include "rules/classifier.hpp"

namespace tagwall::rules {

class LinearEngine final : public Classifier {
public:
    explicit LinearEngine(std::span<const FieldRule> rules);
    std::string_view name() const noexcept override { return "linear"; }
    void classify_burst(std::span<const FieldKey> keys, std::span<int32_t> out) const noexcept override;
    int32_t classify(const FieldKey& key) const noexcept;
    ClassifierStats stats() const override;
    bool insert(const FieldRule& rule) override;
    bool erase(uint32_t priority) override;

private:
    std::vector<FieldRule> rules_;  // sorted by priority
};

}  // namespace tagwall::rules
