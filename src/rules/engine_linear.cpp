// Linear engine: build and run side in one, it is that small.
#include "rules/engine_linear.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace tagwall::rules {

namespace {
bool by_priority(const FieldRule& a, const FieldRule& b) { return a.priority < b.priority; }
}  // namespace

LinearEngine::LinearEngine(std::span<const FieldRule> rules) : rules_(rules.begin(), rules.end()) {
    std::stable_sort(rules_.begin(), rules_.end(), by_priority);
}

int32_t LinearEngine::classify(const FieldKey& key) const noexcept {
    for (const auto& r : rules_)
        if (r.matches(key)) return r.id;
    return kNoMatch;
}

void LinearEngine::classify_burst(std::span<const FieldKey> keys, std::span<int32_t> out) const noexcept {
    for (size_t i = 0; i < keys.size(); ++i) out[i] = classify(keys[i]);
}

ClassifierStats LinearEngine::stats() const {
    return {rules_.capacity() * sizeof(FieldRule), fmt::format("{} rules, scanned in order", rules_.size())};
}

bool LinearEngine::insert(const FieldRule& rule) {
    rules_.insert(std::upper_bound(rules_.begin(), rules_.end(), rule, by_priority), rule);
    return true;
}

bool LinearEngine::erase(uint32_t priority) {
    const auto it = std::find_if(rules_.begin(), rules_.end(), [&](const FieldRule& r) { return r.priority == priority; });
    if (it != rules_.end()) rules_.erase(it);
    return true;
}

}  // namespace tagwall::rules
