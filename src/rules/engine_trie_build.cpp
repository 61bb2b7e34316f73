// Build side of the trie engine: tree construction, cut selection, pruning, incremental updates.
#include <algorithm>
#include <numeric>
#include <stdexcept>

#include <fmt/format.h>

#include "rules/engine_trie.hpp"

namespace tagwall::rules {
namespace {

constexpr unsigned kMaxDepth = 32;
// A rule is "wide" in an address field when it covers more than 2^16 values (a prefix shorter than /16).
constexpr uint64_t kWideSpan = 1u << 16;
// With port splitting on, a destination port range wider than this goes to the "wide ports" trees.
constexpr uint32_t kWidePorts = 1000;
// Average copies of each rule in the leaves beyond which the engine splits by port width too.
constexpr size_t kMaxReplication = 16;
// A leaf may grow this far past kLeafRules through inserts before its subtree is rebuilt.
constexpr size_t kLeafOverflow = 4 * TrieEngine::kLeafRules;

struct ReplicationExceeded {};

bool overlaps(const FieldRule& r, const std::array<FieldRange, kFieldCount>& region) noexcept {
    for (size_t f = 0; f < kFieldCount; ++f)
        if (r.field[f].hi < region[f].lo || r.field[f].lo > region[f].hi) return false;
    return true;
}

bool covers(const FieldRule& r, const std::array<FieldRange, kFieldCount>& region) noexcept {
    for (size_t f = 0; f < kFieldCount; ++f)
        if (r.field[f].lo > region[f].lo || r.field[f].hi < region[f].hi) return false;
    return true;
}

// A cut of one field: points p[0] < p[1] < ... ; child i covers [p[i-1], p[i] - 1].
struct Cut {
    uint8_t field = 0;
    std::vector<uint32_t> points;
    size_t copies = SIZE_MAX;   // total rule copies over all children
    size_t largest = SIZE_MAX;  // rules in the fullest child
};

// Child index range [first, last] a rule's range [lo, hi] reaches under `points`.
std::pair<size_t, size_t> children_of(const std::vector<uint32_t>& points, uint32_t lo, uint32_t hi) {
    const auto first = static_cast<size_t>(std::upper_bound(points.begin(), points.end(), lo) - points.begin());
    const auto last = static_cast<size_t>(std::upper_bound(points.begin(), points.end(), hi) - points.begin());
    return {first, last};
}

// Candidate cut of field f: the region's inner rule boundaries, taken at quantiles.
Cut propose_cut(const std::vector<FieldRule>& all, const std::vector<uint32_t>& rules,
                const std::array<FieldRange, kFieldCount>& region, uint8_t f) {
    Cut cut;
    cut.field = f;
    const auto [rlo, rhi] = region[f];
    std::vector<uint32_t> bounds;
    bounds.reserve(rules.size() * 2);
    for (auto i : rules) {
        const auto& fr = all[i].field[f];
        if (fr.lo > rlo) bounds.push_back(fr.lo);
        if (fr.hi < rhi) bounds.push_back(fr.hi + 1);
    }
    if (bounds.empty()) return cut;  // every rule spans the region in this field
    std::sort(bounds.begin(), bounds.end());
    bounds.erase(std::unique(bounds.begin(), bounds.end()), bounds.end());
    const size_t want = std::min<size_t>(TrieEngine::kFanout - 1, bounds.size());
    for (size_t j = 1; j <= want; ++j) {
        const uint32_t p = bounds[(j * bounds.size()) / (want + 1)];
        if (cut.points.empty() || cut.points.back() < p) cut.points.push_back(p);
    }
    std::vector<size_t> per_child(cut.points.size() + 1, 0);
    size_t copies = 0;
    for (auto i : rules) {
        const auto [a, b] = children_of(cut.points, all[i].field[f].lo, all[i].field[f].hi);
        for (size_t c = a; c <= b; ++c) ++per_child[c];
        copies += b - a + 1;
    }
    cut.copies = copies;
    cut.largest = *std::max_element(per_child.begin(), per_child.end());
    return cut;
}

}  // namespace

TrieEngine::TrieEngine(std::span<const FieldRule> rules) : rules_(rules.begin(), rules.end()) {
    std::stable_sort(rules_.begin(), rules_.end(),
                     [](const FieldRule& a, const FieldRule& b) { return a.priority < b.priority; });
    for (size_t i = 1; i < rules_.size(); ++i)
        if (rules_[i].priority == rules_[i - 1].priority)
            throw std::invalid_argument(fmt::format("trie: two rules share priority {}", rules_[i].priority));
    avx2_ = __builtin_cpu_supports("avx2");
    // Four trees (by address width) are cheapest to walk.  When they still copy rules heavily (sets
    // with many wide port ranges, like ipc1 at 100k rules), splitting by port width as well costs one
    // or two more tree walks per key but cuts build time and memory several-fold.  The first attempt
    // gives up as soon as it passes the replication budget, so the fallback costs little extra.
    block_budget_ = kMaxReplication * std::max<size_t>(rules_.size(), 64) / kLeafRules;
    try {
        build_all();
    } catch (const ReplicationExceeded&) {
        split_ports_ = true;
        block_budget_ = 0;  // this is the layout that copes best: let it take what it needs
        build_all();
    }
    block_budget_ = 0;  // updates may replicate as they need
}

void TrieEngine::build_all() {
    nodes_.clear();
    blocks_.clear();
    garbage_blocks_ = 0;
    max_depth_seen_ = 0;
    trees_.assign(split_ports_ ? 8 : 4, Tree{});
    std::vector<std::vector<uint32_t>> members(trees_.size());
    for (uint32_t i = 0; i < rules_.size(); ++i) members[tree_of(rules_[i])].push_back(i);
    Region everything;
    for (size_t f = 0; f < kFieldCount; ++f) everything.f[f] = {0, kFieldMax[f]};
    for (size_t t = 0; t < trees_.size(); ++t) {
        if (members[t].empty()) continue;
        trees_[t].min_priority = rules_[members[t].front()].priority;
        trees_[t].root = build(std::move(members[t]), everything, 0);
    }
    order_trees();
}

// Lookups visit trees in order of their best rule, so that a match found early prunes the rest.
void TrieEngine::order_trees() {
    tree_order_.resize(trees_.size());
    std::iota(tree_order_.begin(), tree_order_.end(), 0);
    std::stable_sort(tree_order_.begin(), tree_order_.end(),
                     [&](uint8_t a, uint8_t b) { return trees_[a].min_priority < trees_[b].min_priority; });
    lookup_trees_.clear();
    for (auto t : tree_order_)
        if (trees_[t].root != kLeafFlag) lookup_trees_.push_back(trees_[t]);
}

size_t TrieEngine::tree_of(const FieldRule& r) const noexcept {
    const bool wide_src = uint64_t{r.field[kFieldSrc].hi} - r.field[kFieldSrc].lo >= kWideSpan;
    const bool wide_dst = uint64_t{r.field[kFieldDst].hi} - r.field[kFieldDst].lo >= kWideSpan;
    const bool wide_ports = split_ports_ && r.field[kFieldDport].hi - r.field[kFieldDport].lo > kWidePorts;
    return (wide_ports ? 4u : 0u) + (wide_src ? 2u : 0u) + (wide_dst ? 1u : 0u);
}

uint32_t TrieEngine::index_of(uint32_t priority) const noexcept {
    const auto it = std::lower_bound(rules_.begin(), rules_.end(), priority,
                                     [](const FieldRule& r, uint32_t p) { return r.priority < p; });
    return static_cast<uint32_t>(it - rules_.begin());
}

// Builds the subtree for `rules` (indices into rules_, in priority order) inside `region`.
uint32_t TrieEngine::build(std::vector<uint32_t> rules, const Region& region, unsigned depth) {
    max_depth_seen_ = std::max(max_depth_seen_, depth);
    // Redundancy pruning: nothing after a rule that covers the whole region can ever be the answer.
    for (size_t i = 0; i < rules.size(); ++i) {
        if (covers(rules_[rules[i]], region.f)) {
            rules.resize(i + 1);
            break;
        }
    }
    if (rules.size() <= kLeafRules || depth >= kMaxDepth) return make_leaf(rules);

    Cut best;
    for (uint8_t f = 0; f < kFieldCount; ++f) {
        Cut c = propose_cut(rules_, rules, region.f, f);
        if (c.points.empty() || c.largest >= rules.size()) continue;  // no progress on this field
        if (c.copies < best.copies || (c.copies == best.copies && c.largest < best.largest)) best = std::move(c);
    }
    if (best.points.empty()) return make_leaf(rules);  // rules identical within this region

    // Distribute, then merge neighbouring children that received the same rules.
    const size_t n = best.points.size() + 1;
    std::vector<std::vector<uint32_t>> lists(n);
    for (auto i : rules) {
        const auto [a, b] = children_of(best.points, rules_[i].field[best.field].lo, rules_[i].field[best.field].hi);
        for (size_t c = a; c <= b; ++c) lists[c].push_back(i);
    }
    std::vector<uint32_t> points;
    std::vector<std::vector<uint32_t>> merged;
    for (size_t c = 0; c < n; ++c) {
        if (c > 0 && lists[c] == merged.back()) continue;
        if (c > 0) points.push_back(best.points[c - 1]);
        merged.push_back(std::move(lists[c]));
    }
    if (merged.size() == 1) return build(std::move(merged[0]), region, depth + 1);

    const auto node_index = static_cast<uint32_t>(nodes_.size());
    if (node_index >= kLeafFlag) throw std::runtime_error("trie: too many nodes");
    nodes_.push_back(Node{});
    std::array<uint32_t, kFanout> children{};
    for (size_t c = 0; c < merged.size(); ++c) {
        Region sub = region;
        if (c > 0) sub.f[best.field].lo = points[c - 1];
        if (c < points.size()) sub.f[best.field].hi = points[c] - 1;
        children[c] = build(std::move(merged[c]), sub, depth + 1);
    }
    Node& node = nodes_[node_index];  // re-fetch: the recursion grew nodes_
    node.field = best.field;
    node.children = static_cast<uint8_t>(merged.size());
    for (size_t j = 0; j < kFanout - 1; ++j) node.point[j] = j < points.size() ? points[j] : UINT32_MAX;
    for (size_t c = 0; c < kFanout; ++c) node.child[c] = children[std::min(c, merged.size() - 1)];
    return node_index;
}

uint32_t TrieEngine::make_leaf(const std::vector<uint32_t>& rules) {
    if (rules.empty()) return kLeafFlag;
    if (block_budget_ && blocks_.size() > block_budget_) throw ReplicationExceeded{};
    const size_t count = (rules.size() + kLeafRules - 1) / kLeafRules;
    if (count > 127) throw std::runtime_error("trie: leaf too large (more than 1016 identical rules in a region)");
    const auto first = static_cast<uint32_t>(blocks_.size());
    if (first + count >= (1u << 24)) throw std::runtime_error("trie: too many leaf blocks");
    blocks_.resize(blocks_.size() + count);
    for (size_t b = 0; b < count; ++b) {
        Block& blk = blocks_[first + b];
        for (size_t s = 0; s < kLeafRules; ++s) {
            const size_t k = b * kLeafRules + s;
            for (size_t f = 0; f < kFieldCount; ++f) {
                blk.lo[f][s] = k < rules.size() ? rules_[rules[k]].field[f].lo : 1;
                blk.hi[f][s] = k < rules.size() ? rules_[rules[k]].field[f].hi : 0;
            }
            blk.priority[s] = k < rules.size() ? rules_[rules[k]].priority : UINT32_MAX;
            blk.id[s] = k < rules.size() ? rules_[rules[k]].id : kNoMatch;
        }
    }
    return kLeafFlag | static_cast<uint32_t>(count << 24) | first;
}

// Rules of a leaf, as indices into rules_ (the leaf stores priorities; rules_ may have shifted).
std::vector<uint32_t> TrieEngine::leaf_rules(uint32_t ref) const {
    std::vector<uint32_t> out;
    const uint32_t count = (ref >> 24) & 0x7F, first = ref & 0xFFFFFF;
    for (uint32_t b = 0; b < count; ++b)
        for (size_t s = 0; s < kLeafRules; ++s)
            if (blocks_[first + b].priority[s] != UINT32_MAX) out.push_back(index_of(blocks_[first + b].priority[s]));
    return out;
}

uint32_t TrieEngine::rebuild_leaf(std::vector<uint32_t> rules, const Region& region, unsigned depth) {
    std::sort(rules.begin(), rules.end());
    rules.erase(std::unique(rules.begin(), rules.end()), rules.end());
    // Small enough to stay one leaf: avoid growing the tree for every insert.
    if (rules.size() <= kLeafOverflow) {
        for (size_t i = 0; i < rules.size(); ++i)
            if (covers(rules_[rules[i]], region.f)) { rules.resize(i + 1); break; }
        if (rules.size() <= kLeafOverflow) return make_leaf(rules);
    }
    return build(std::move(rules), region, depth);
}

// --- incremental updates ---------------------------------------------------------------------------

bool TrieEngine::insert(const FieldRule& rule) {
    const uint32_t at = index_of(rule.priority);
    if (at < rules_.size() && rules_[at].priority == rule.priority)
        throw std::invalid_argument(fmt::format("trie: priority {} is already present", rule.priority));
    rules_.insert(rules_.begin() + at, rule);
    Tree& tree = trees_[tree_of(rule)];
    Region everything;
    for (size_t f = 0; f < kFieldCount; ++f) everything.f[f] = {0, kFieldMax[f]};
    tree.root = update_at(tree.root, everything, rule, 0, &TrieEngine::insert_into_leaf);
    tree.min_priority = std::min(tree.min_priority, rule.priority);
    order_trees();
    return true;
}

// Applies `leaf_update` to every leaf the rule's box reaches under `ref`; returns the new reference.
uint32_t TrieEngine::update_at(uint32_t ref, const Region& region, const FieldRule& rule, unsigned depth,
                               LeafUpdate leaf_update) {
    if (ref & kLeafFlag) return (this->*leaf_update)(ref, region, rule, depth);
    const Node node = nodes_[ref];
    for (unsigned c = 0; c < node.children; ++c) {
        Region sub = region;
        if (c > 0) sub.f[node.field].lo = node.point[c - 1];
        if (c + 1 < node.children) sub.f[node.field].hi = node.point[c] - 1;
        if (!overlaps(rule, sub.f)) continue;
        const uint32_t updated = update_at(node.child[c], sub, rule, depth + 1, leaf_update);
        nodes_[ref].child[c] = updated;  // re-index: the recursion may have grown nodes_
    }
    for (unsigned c = node.children; c < kFanout; ++c) nodes_[ref].child[c] = nodes_[ref].child[node.children - 1];
    return ref;
}

uint32_t TrieEngine::insert_into_leaf(uint32_t ref, const Region& region, const FieldRule& rule, unsigned depth) {
    auto rules = leaf_rules(ref);
    garbage_blocks_ += (ref >> 24) & 0x7F;
    rules.push_back(index_of(rule.priority));
    return rebuild_leaf(std::move(rules), region, depth);
}

bool TrieEngine::erase(uint32_t priority) {
    const uint32_t at = index_of(priority);
    if (at >= rules_.size() || rules_[at].priority != priority) return true;  // absent: nothing to do
    const FieldRule rule = rules_[at];
    Tree& tree = trees_[tree_of(rule)];
    Region everything;
    for (size_t f = 0; f < kFieldCount; ++f) everything.f[f] = {0, kFieldMax[f]};
    tree.root = update_at(tree.root, everything, rule, 0, &TrieEngine::erase_from_leaf);
    rules_.erase(rules_.begin() + at);
    if (tree.min_priority == priority) {
        tree.min_priority = UINT32_MAX;
        for (const auto& r : rules_)
            if (&trees_[tree_of(r)] == &tree) { tree.min_priority = r.priority; break; }
    }
    order_trees();
    return true;
}

uint32_t TrieEngine::erase_from_leaf(uint32_t ref, const Region& region, const FieldRule& rule, unsigned depth) {
    auto rules = leaf_rules(ref);
    const uint32_t gone = index_of(rule.priority);
    const auto it = std::find(rules.begin(), rules.end(), gone);
    if (it == rules.end()) return ref;  // hidden here by an earlier rule: the leaf does not change
    const bool was_last = it + 1 == rules.end();
    rules.erase(it);
    // If the erased rule covered this region it may have hidden later rules: bring them back.
    if (was_last && covers(rule, region.f)) {
        const size_t tree = tree_of(rule);
        for (uint32_t i = gone + 1; i < rules_.size(); ++i)
            if (tree_of(rules_[i]) == tree && overlaps(rules_[i], region.f)) {
                rules.push_back(i);
                if (covers(rules_[i], region.f)) break;
            }
    }
    garbage_blocks_ += (ref >> 24) & 0x7F;
    // Indices past `gone` shift down by one once rules_ drops it; build with the table as it is now
    // (the erased rule is no longer referenced, so the shift happens after this leaf is written).
    return rebuild_leaf(std::move(rules), region, depth);
}

ClassifierStats TrieEngine::stats() const {
    const size_t bytes = nodes_.size() * sizeof(Node) + blocks_.size() * sizeof(Block) +
                         rules_.size() * sizeof(FieldRule) + trees_.size() * sizeof(Tree);
    std::vector<size_t> per_tree(trees_.size(), 0);
    for (const auto& r : rules_) ++per_tree[tree_of(r)];
    std::string trees;
    for (const auto t : tree_order_)
        if (per_tree[t]) trees += fmt::format("{}{} rules from priority {}", trees.empty() ? "" : ", ", per_tree[t],
                                              trees_[t].min_priority);
    return {bytes, fmt::format("{} trees ({}), {} nodes, {} leaf blocks ({} orphaned by updates), depth {}, {}",
                               lookup_trees_.size(), trees, nodes_.size(), blocks_.size() - garbage_blocks_,
                               garbage_blocks_, max_depth_seen_, avx2_ ? "avx2 walk" : "scalar walk")};
}

}  // namespace tagwall::rules
