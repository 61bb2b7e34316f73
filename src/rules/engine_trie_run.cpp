// Run side of the trie engine: const, noexcept, no allocation.  The walk itself lives in
// engine_trie_walk.inc and is compiled twice, for AVX2 and for any x86-64; classify_burst picks the
// copy the CPU can run, once per burst.
#include <immintrin.h>

#include <algorithm>

#include "rules/engine_trie.hpp"

namespace tagwall::rules {

#ifdef TRIE_STATS  // counters for tuning builds only (-DTRIE_STATS); never in the product
uint64_t g_nodes, g_blocks, g_trees;
#define STAT(x) ++(x)
#else
#define STAT(x)
#endif

namespace {

using Node = TrieEngine::Node;
using Block = TrieEngine::Block;
constexpr uint32_t kLeafFlag = TrieEngine::kLeafFlag;
constexpr size_t kGroup = 16;  // keys walked together

namespace generic {
#define TRIE_WALK_AVX2 0
#include "rules/engine_trie_walk.inc"
#undef TRIE_WALK_AVX2
}  // namespace generic

// GCC takes the target for a region; clang (the sanitizer and fuzz builds) only as a function attribute.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,bmi,bmi2,popcnt"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,bmi,bmi2,popcnt")
#endif
namespace avx2 {
#define TRIE_WALK_AVX2 1
#include "rules/engine_trie_walk.inc"
#undef TRIE_WALK_AVX2
}  // namespace avx2
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

}  // namespace

void TrieEngine::classify_burst(std::span<const FieldKey> keys, std::span<int32_t> out) const noexcept {
    const auto& trees = lookup_trees_;
    if (avx2_) avx2::walk(trees.data(), trees.size(), nodes_.data(), blocks_.data(), keys, out);
    else generic::walk(trees.data(), trees.size(), nodes_.data(), blocks_.data(), keys, out);
}

}  // namespace tagwall::rules
