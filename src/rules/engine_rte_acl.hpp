// The rte_acl engine: the same field rules through DPDK's ACL library, the peer the trie is measured
// against.  rte_acl builds a set of 8-bit-stride multi-bit tries and walks them with SIMD (SSE, AVX2,
// AVX-512); it has no incremental update, so insert/erase return false and the caller rebuilds.
//
// How the five fields map onto rte_acl (see AclInput in the .cpp): the first field must be one byte
// (the protocol), every later group of four input bytes is one "input index" (source, destination, and
// the two ports sharing one).  Addresses are MASK fields when every rule's range is a prefix (ClassBench),
// RANGE fields otherwise; ports are RANGE; the protocol is a BITMASK when every rule is exact-or-any and a
// RANGE otherwise.  rte_acl's priorities are "higher wins", ours "lower wins": rules are ranked and rank r
// becomes RTE_ACL_MAX_PRIORITY - r.  userdata (never 0, 0 means "no match") is rank + 1 and indexes ids_.
//
// Needs an initialised EAL (tagwall::dataplane::init_eal*): the context lives in rte_malloc memory,
// hugepages when the EAL has them.  memory_bytes is the growth of rte_malloc's heaps (every socket)
// across create + add + build: the context, its rule copies and the run-time tries; rte_acl's temporary
// build memory comes from libc malloc and is freed before build returns, so it is not counted.  Another
// thread allocating from rte_malloc during a build would be counted too; tools build from one thread.
//
// Concurrency contract: construction and destruction on the control thread (throws std::runtime_error
// with rte_strerror's text on any rte_acl failure); classify_burst from any thread, const, noexcept,
// no allocation (one stack scratch block of kChunk keys per call).
#pragma once

#include <string>
#include <vector>

#include "rules/classifier.hpp"

struct rte_acl_ctx;

namespace tagwall::rules {

class RteAclEngine final : public Classifier {
public:
    explicit RteAclEngine(std::span<const FieldRule> rules);
    ~RteAclEngine() override;
    RteAclEngine(const RteAclEngine&) = delete;
    RteAclEngine& operator=(const RteAclEngine&) = delete;

    std::string_view name() const noexcept override { return "rte_acl"; }
    void classify_burst(std::span<const FieldKey> keys, std::span<int32_t> out) const noexcept override;
    ClassifierStats stats() const override;

    // The classify algorithm rte_acl runs ("avx2", "avx512x16", "sse", "scalar" ...).
    std::string_view algorithm() const noexcept { return algorithm_; }

    // Keys converted and classified per rte_acl_classify call (the stack scratch block).
    static constexpr size_t kChunk = 64;

private:
    rte_acl_ctx* ctx_ = nullptr;   // null when there are no rules: every key misses
    std::vector<int32_t> ids_;     // rank -> FieldRule::id; rte_acl's userdata is rank + 1
    size_t memory_bytes_ = 0;
    std::string_view algorithm_ = "none";
    std::string layout_;           // which rte_acl field type each field got
};

}  // namespace tagwall::rules
