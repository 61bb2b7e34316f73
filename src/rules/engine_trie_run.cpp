// Run side of the trie engine: const, noexcept, no allocation.  Keys are walked down each tree in
// small interleaved groups so that the next node of one key is being fetched while another key is
// compared; leaves are scanned eight rules at a time with AVX2 where the CPU has it.
#include <immintrin.h>

#include "rules/engine_trie.hpp"

namespace tagwall::rules {
namespace {

using Node = TrieEngine::Node;
using Block = TrieEngine::Block;
constexpr uint32_t kLeafFlag = TrieEngine::kLeafFlag;
constexpr size_t kGroup = 16;  // keys walked together
#ifdef TRIE_STATS
}
uint64_t g_nodes, g_blocks, g_trees;
namespace {
#define STAT(x) ++(x)
#else
#define STAT(x)
#endif

__attribute__((always_inline)) inline uint32_t child_of(const Node& n, uint32_t v) noexcept {
    uint32_t idx = 0;
    for (unsigned j = 0; j < TrieEngine::kFanout - 1; ++j) idx += v >= n.point[j];
    return n.child[idx];
}

// Bit s set when rule slot s of the block matches the key.
__attribute__((always_inline)) inline uint32_t block_matches_scalar(const Block& b, const FieldKey& key) noexcept {
    uint32_t mask = 0;
    for (unsigned s = 0; s < TrieEngine::kLeafRules; ++s) {
        bool m = true;
        for (size_t f = 0; f < kFieldCount; ++f) m &= key[f] >= b.lo[f][s] && key[f] <= b.hi[f][s];
        mask |= uint32_t{m} << s;
    }
    return mask;
}

__attribute__((target("avx2"))) inline uint32_t block_matches_avx2(const Block& b, const FieldKey& key) noexcept {
    __m256i ok = _mm256_set1_epi32(-1);
    for (size_t f = 0; f < kFieldCount; ++f) {
        const __m256i v = _mm256_set1_epi32(static_cast<int>(key[f]));
        const __m256i lo = _mm256_load_si256(reinterpret_cast<const __m256i*>(b.lo[f]));
        const __m256i hi = _mm256_load_si256(reinterpret_cast<const __m256i*>(b.hi[f]));
        // unsigned lo <= v  <=>  max(lo, v) == v;   v <= hi  <=>  min(v, hi) == v
        const __m256i ge = _mm256_cmpeq_epi32(_mm256_max_epu32(lo, v), v);
        const __m256i le = _mm256_cmpeq_epi32(_mm256_min_epu32(hi, v), v);
        ok = _mm256_and_si256(ok, _mm256_and_si256(ge, le));
    }
    return static_cast<uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(ok)));
}

// Scans a leaf's blocks in priority order; updates best when it finds a better rule.
template <bool Avx2>
__attribute__((always_inline)) inline void scan_leaf(const Block* blocks, uint32_t ref, const FieldKey& key, uint32_t& best_priority,
                      int32_t& best_id) noexcept {
    const uint32_t count = (ref >> 24) & 0x7F;
    const Block* b = blocks + (ref & 0xFFFFFF);
    for (uint32_t i = 0; i < count; ++i, ++b) {
        if (b->priority[0] >= best_priority) return;  // this block and every later one rank lower
        STAT(g_blocks);
        const uint32_t mask = Avx2 ? block_matches_avx2(*b, key) : block_matches_scalar(*b, key);
        if (mask) {
            const unsigned s = static_cast<unsigned>(__builtin_ctz(mask));
            if (b->priority[s] < best_priority) {
                best_priority = b->priority[s];
                best_id = b->id[s];
            }
            return;
        }
    }
}

// The walk, instantiated twice: once compiled for AVX2 (leaf scan and all the compares in the walk
// get the wider registers), once for any x86-64.  classify_burst picks one at run time.
template <bool Avx2>
__attribute__((always_inline)) inline void walk(const TrieEngine::Tree* trees, size_t tree_count, const Node* nodes,
                                                const Block* blocks, std::span<const FieldKey> keys,
                                                std::span<int32_t> out) noexcept {
    for (size_t base = 0; base < keys.size(); base += kGroup) {
        const size_t n = std::min(kGroup, keys.size() - base);
        uint32_t best_priority[kGroup];
        int32_t best_id[kGroup];
        for (size_t i = 0; i < n; ++i) best_priority[i] = UINT32_MAX, best_id[i] = kNoMatch;
        for (size_t t = 0; t < tree_count; ++t) {
            const auto& tree = trees[t];
            uint32_t ref[kGroup];
            bool any = false;
            for (size_t i = 0; i < n; ++i) {
                ref[i] = tree.min_priority < best_priority[i] ? tree.root : kLeafFlag;
                any |= ref[i] != kLeafFlag;
            }
            if (!any) continue;
            // Walk all keys one level per round until every one stands on a leaf.
            for (bool moving = true; moving;) {
                moving = false;
                for (size_t i = 0; i < n; ++i) {
                    if (ref[i] & kLeafFlag) continue;
                    STAT(g_nodes);
                    const Node& node = nodes[ref[i]];
                    const uint32_t next = child_of(node, keys[base + i][node.field]);
                    __builtin_prefetch(next & kLeafFlag ? static_cast<const void*>(blocks + (next & 0xFFFFFF))
                                                        : static_cast<const void*>(nodes + next));
                    ref[i] = next;
                    moving = true;
                }
            }
            for (size_t i = 0; i < n; ++i) {
                if (ref[i] == kLeafFlag) continue;
                STAT(g_trees);
                scan_leaf<Avx2>(blocks, ref[i], keys[base + i], best_priority[i], best_id[i]);
            }
        }
        for (size_t i = 0; i < n; ++i) out[base + i] = best_id[i];
    }
}

__attribute__((target("avx2,bmi,bmi2,popcnt"))) void walk_avx2(const TrieEngine::Tree* trees, size_t tree_count,
                                                                const Node* nodes, const Block* blocks,
                                                                std::span<const FieldKey> keys,
                                                                std::span<int32_t> out) noexcept {
    walk<true>(trees, tree_count, nodes, blocks, keys, out);
}

void walk_generic(const TrieEngine::Tree* trees, size_t tree_count, const Node* nodes, const Block* blocks,
                  std::span<const FieldKey> keys, std::span<int32_t> out) noexcept {
    walk<false>(trees, tree_count, nodes, blocks, keys, out);
}

}  // namespace

void TrieEngine::classify_burst(std::span<const FieldKey> keys, std::span<int32_t> out) const noexcept {
    const auto& trees = lookup_trees_;
    if (avx2_) walk_avx2(trees.data(), trees.size(), nodes_.data(), blocks_.data(), keys, out);
    else walk_generic(trees.data(), trees.size(), nodes_.data(), blocks_.data(), keys, out);
}

int32_t TrieEngine::classify_one(const FieldKey& key) const noexcept {
    int32_t id = kNoMatch;
    classify_burst(std::span<const FieldKey>(&key, 1), std::span<int32_t>(&id, 1));
    return id;
}

}  // namespace tagwall::rules
