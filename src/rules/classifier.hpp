// The classifier engines' common interface: first-matching rule over a five-field integer space.
//
// Every engine (linear reference, trie, rte_acl) classifies the same thing: a key of five unsigned
// fields against an ordered list of rules, each field of a rule a closed range.  ClassBench sets map
// onto it directly (source/destination IPv4 prefixes become ranges, ports are ranges, the protocol is
// exact or any).  Tag policies map onto it after identity resolution: the address fields carry the
// *identity classes* of source and destination (RuleSet::resolve), so IPv4 and IPv6 workloads share one
// 32-bit space and no engine ever needs 128-bit fields.
//
// Concurrency contract:
//   - build (make_classifier), insert and erase: control thread only; may allocate and throw;
//   - classify_burst, memory_bytes: any thread, const, noexcept, no allocation.  Engines that support
//     in-place updates document how readers stay safe (the trie publishes copied paths, RCU style).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tagwall::rules {

enum FieldIndex : uint8_t { kFieldSrc = 0, kFieldDst = 1, kFieldSport = 2, kFieldDport = 3, kFieldProto = 4 };
inline constexpr size_t kFieldCount = 5;
// Largest value each field can take (the address fields are full 32-bit; ports 16; protocol 8).
inline constexpr std::array<uint32_t, kFieldCount> kFieldMax{0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFu, 0xFFFFu, 0xFFu};

inline constexpr int32_t kNoMatch = -1;

struct FieldRange {
    uint32_t lo = 0, hi = 0;
    bool contains(uint32_t v) const noexcept { return v >= lo && v <= hi; }
    friend bool operator==(const FieldRange&, const FieldRange&) = default;
};

// One rule.  Among all rules that match a key, the one with the lowest `priority` wins; classify
// returns its `id`.  Priorities are unique within a classifier.  For a ClassBench file and for a
// compiled policy, priority is the rule's position and the id says which source rule it came from
// (several field rules may share an id when one policy rule expands to several ranges).
struct FieldRule {
    std::array<FieldRange, kFieldCount> field{};
    uint32_t priority = 0;
    int32_t id = 0;

    bool matches(const std::array<uint32_t, kFieldCount>& key) const noexcept {
        for (size_t f = 0; f < kFieldCount; ++f)
            if (!field[f].contains(key[f])) return false;
        return true;
    }
};

using FieldKey = std::array<uint32_t, kFieldCount>;

// A rule covering the whole space.
FieldRule wildcard_rule(uint32_t priority, int32_t id) noexcept;

struct ClassifierStats {
    size_t memory_bytes = 0;   // everything the engine holds for lookups
    std::string detail;        // engine-specific: tree depth, node counts, algorithm chosen...
};

class Classifier {
public:
    virtual ~Classifier() = default;
    virtual std::string_view name() const noexcept = 0;

    // For each key, the id of the best (lowest-priority) matching rule, or kNoMatch.
    virtual void classify_burst(std::span<const FieldKey> keys, std::span<int32_t> out) const noexcept = 0;
    virtual ClassifierStats stats() const = 0;

    // Incremental updates.  Return false when the engine cannot update in place; the caller then
    // rebuilds from the full list (that is what rte_acl always needs).  Inserting a priority that is
    // already present is a caller bug; erasing one that is absent is a no-op.
    virtual bool insert(const FieldRule&) { return false; }
    virtual bool erase(uint32_t /*priority*/) { return false; }
};

// Engines by name: "linear", "trie", "rte_acl" (rte_acl needs an initialised DPDK EAL).
// Throws std::invalid_argument on an unknown name, std::runtime_error when the engine cannot build.
std::unique_ptr<Classifier> make_classifier(std::string_view engine, std::span<const FieldRule> rules);
std::vector<std::string> classifier_engines();

}  // namespace tagwall::rules
