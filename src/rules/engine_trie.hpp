// The trie engine: a multi-way range-cutting decision tree ("multi-bit trie" over all five fields).
//
// Design (measured trade-offs in docs/classifier.md):
//   - Each interior node cuts ONE field of its region into up to 8 intervals at chosen split points
//     (a multi-bit step whose "bits" are not fixed powers of two but the rules' own boundaries, as in
//     HyperSplit, so port ranges split as well as prefixes).  The node is one 64-byte cache line: the
//     field, up to 7 split points and 8 child references; picking the child is 7 branch-free compares.
//   - The field and points of a node are chosen to minimise rule replication: the candidate points
//     are the region's rule boundaries taken at quantiles, and the field whose cut copies the fewest
//     rules into children wins.  Runs of children with identical rule lists are merged.
//   - Within a region, a rule that covers the whole region hides every later rule there; they are
//     dropped ("redundancy pruning", the reason wildcard-heavy firewall sets stay small).
//   - Leaves hold at most ~8 rules in priority order, stored structure-of-arrays in 384-byte blocks so
//     that one AVX2 pass tests 8 rules against the key; the first set bit is the answer.
//   - Rules are split into a few trees by how wide their address fields are (both specific, only the
//     source, only the destination, neither), which stops wide rules from being copied into every
//     leaf of a tree cut on addresses.  Sets that still replicate heavily are split by destination
//     port width as well (eight trees).  Lookup visits trees in order of their best priority and stops
//     as soon as no later tree can beat the match in hand.
//   - Updates: insert walks the new rule's box and adds it to the leaves it reaches (rebuilding a
//     leaf's subtree locally when it overflows); erase removes it and, where it had hidden later rules,
//     refills those leaves from the rule table.  Nothing is rebuilt globally.
//
// Concurrency: build/insert/erase on the control thread; classify_burst is const and may run on any
// number of workers.  insert/erase modify the structure in place (appending blocks and storing 32-bit
// child references), so a caller with concurrent readers publishes a copy (RCU) instead.
#pragma once

#include <cstdint>
#include <vector>

#include "rules/classifier.hpp"

namespace tagwall::rules {

class TrieEngine final : public Classifier {
public:
    explicit TrieEngine(std::span<const FieldRule> rules);
    std::string_view name() const noexcept override { return "trie"; }
    void classify_burst(std::span<const FieldKey> keys, std::span<int32_t> out) const noexcept override;
    ClassifierStats stats() const override;
    bool insert(const FieldRule& rule) override;
    bool erase(uint32_t priority) override;

    // Node and leaf layout, public for the static_asserts and the tests.
    static constexpr unsigned kFanout = 8;
    static constexpr unsigned kLeafRules = 8;  // rules per block
    static constexpr uint32_t kLeafFlag = 0x80000000u;

    struct alignas(64) Node {
        uint8_t field;
        uint8_t children;                 // 2..8 used; unused slots repeat the last child
        uint16_t reserved;
        uint32_t point[kFanout - 1];      // child i covers [point[i-1], point[i] - 1]; unused = UINT32_MAX
        uint32_t child[kFanout];          // node index, or kLeafFlag | (blocks << 24) | first block
    };
    struct alignas(64) Block {
        uint32_t lo[kFieldCount][kLeafRules];
        uint32_t hi[kFieldCount][kLeafRules];
        uint32_t priority[kLeafRules];    // UINT32_MAX in empty slots (which can never match: lo > hi)
        int32_t id[kLeafRules];
    };

    struct Tree {
        uint32_t root = kLeafFlag;   // an empty leaf: no rule
        uint32_t min_priority = UINT32_MAX;
    };

private:
    struct Region {
        std::array<FieldRange, kFieldCount> f;
    };
    // build side (engine_trie_build.cpp)
    void build_all();
    uint32_t build(std::vector<uint32_t> rules, const Region& region, unsigned depth);
    uint32_t make_leaf(const std::vector<uint32_t>& rules);
    using LeafUpdate = uint32_t (TrieEngine::*)(uint32_t ref, const Region& region, const FieldRule& rule,
                                                unsigned depth);
    uint32_t update_at(uint32_t ref, const Region& region, const FieldRule& rule, unsigned depth, LeafUpdate leaf_update);
    uint32_t insert_into_leaf(uint32_t ref, const Region& region, const FieldRule& rule, unsigned depth);
    uint32_t erase_from_leaf(uint32_t ref, const Region& region, const FieldRule& rule, unsigned depth);
    std::vector<uint32_t> leaf_rules(uint32_t ref) const;
    uint32_t rebuild_leaf(std::vector<uint32_t> rules, const Region& region, unsigned depth);
    size_t tree_of(const FieldRule& rule) const noexcept;
    void order_trees();
    uint32_t index_of(uint32_t priority) const noexcept;


    std::vector<FieldRule> rules_;   // every rule, by priority: the source of truth for builds/updates
    std::vector<Tree> trees_;          // by partition (see tree_of)
    std::vector<uint8_t> tree_order_;  // partitions by best priority
    std::vector<Tree> lookup_trees_;   // the non-empty trees in that order: what lookups walk
    std::vector<Node> nodes_;
    std::vector<Block> blocks_;
    size_t garbage_blocks_ = 0;      // blocks orphaned by updates (reclaimed at the next full build)
    unsigned max_depth_seen_ = 0;
    size_t block_budget_ = 0;        // while > 0, a build that needs more blocks gives up (see constructor)
    bool split_ports_ = false;       // partition by destination-port width as well (8 trees, not 4)
    bool avx2_ = false;
};

static_assert(sizeof(TrieEngine::Node) == 64, "a trie node is one cache line");
static_assert(sizeof(TrieEngine::Block) == 384, "a leaf block is six cache lines");

}  // namespace tagwall::rules
