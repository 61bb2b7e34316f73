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

// Priorities leave room after each policy rule's own field rules, so that entries for identity classes
// created later (retagging) slot in at the right place: rule r's field rules use priorities from
// r * stride.  `stride` 0 picks a power of two >= 64, at least twice the largest expansion of any rule,
// and up to 16x that when the priority space allows.
std::vector<FieldRule> to_field_rules(const RuleSet& rules, uint32_t stride = 0);
uint32_t priority_stride(const RuleSet& rules);

// The engine key for a packet, after identity resolution.
FieldKey to_field_key(const RuleSet& rules, const PacketKey& key) noexcept;
FieldKey to_field_key(const PacketKey& key, const Identity& src, const Identity& dst) noexcept;

struct RetagResult {
    size_t field_rules_added = 0;  // entries for a new identity class
    bool rebuilt = false;          // the engine was rebuilt rather than updated in place
};

class PolicyClassifier {
public:
    PolicyClassifier(std::shared_ptr<const RuleSet> rules, std::string_view engine);
    Decision classify(const PacketKey& key) const noexcept;
    // The same, with both ends already resolved to identities (the dataplane has them from SpoofGuard
    // and its own identity table): no address lookup here.
    Decision classify(const PacketKey& key, const Identity& src, const Identity& dst) const noexcept;
    // Many packets at once, each given by its segment's VLAN and its engine key (to_field_key, both ends
    // resolved): out[i] is what classify() decides for a packet with vlans[i] and keys[i].  The engine
    // walks the keys together, so that their cache misses overlap (the dataplane's burst of new
    // connections).  All three spans have the same length.
    void classify_burst(std::span<const uint16_t> vlans, std::span<const FieldKey> keys,
                        std::span<Decision> out) const noexcept;

    // Control side: the endpoint now carries `tags`.  The rule set is replaced by its retagged copy;
    // when the endpoint lands in an identity class that already exists nothing else changes, otherwise
    // the rules that select the new class get field rules for it, inserted into the engine in place.
    // The engine is rebuilt instead when it cannot update in place (rte_acl) or a rule's priority
    // block is full (priority_stride); the result says which happened.
    RetagResult retag(uint32_t endpoint, Tags tags);
    const RuleSet& ruleset() const noexcept { return *rules_; }
    const std::shared_ptr<const RuleSet>& ruleset_ptr() const noexcept { return rules_; }
    const Classifier& engine() const noexcept { return *engine_; }
    size_t field_rule_count() const noexcept { return field_rules_; }

private:
    void rebuild();
    Decision decision(int32_t id) const noexcept;  // the engine's answer (a rule id or kNoMatch) as a Decision

    std::shared_ptr<const RuleSet> rules_;
    std::string engine_name_;
    std::unique_ptr<Classifier> engine_;
    size_t field_rules_ = 0;
    uint32_t stride_ = 0;
    std::vector<uint32_t> next_priority_;  // per policy rule: the next free priority in its block
    std::vector<Action> actions_;          // per policy rule: its action (a rule's entry is large; this is
                                           // what a lookup reads, 10k rules in 10 kB)
};

}  // namespace tagwall::rules
