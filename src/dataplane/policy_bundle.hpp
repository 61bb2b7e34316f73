// One published policy generation: everything a worker needs to decide packets under it, built by the
// control thread and handed to the workers as one pointer (SPEC §6, STYLE convention 2).
//
// Concurrency contract.  A PolicyBundle is built on the control side (allocates) and is immutable once
// published, except for its per-worker rule counters: worker w writes only counters[w], the control
// thread reads them (plain 64-bit loads for display: a value may be a packet stale, never torn on
// x86-64).  The control thread frees a bundle only after every worker has passed a quiescent state
// since it was unpublished (RCU, dataplane/appliance.hpp), so a worker may keep raw pointers into the
// bundle it adopted until its next poll iteration.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/identity.hpp"
#include "rules/classifier_policy.hpp"
#include "rules/ruleset.hpp"

namespace tagwall::dataplane {

// What one worker counted for one rule under one generation.
struct RuleCounter {
    uint64_t packets = 0;  // packets the rule decided (new connections, drops, rejects, revocations)
    uint64_t bytes = 0;    // their frame bytes
    uint64_t last_ns = 0;  // worker clock of the last one (0: never)
};

struct PolicyBundle {
    std::shared_ptr<const rules::RuleSet> rules;
    std::shared_ptr<const IdentityTable> identity;
    std::shared_ptr<const rules::PolicyClassifier> classifier;
    uint32_t generation = 0;
    std::vector<uint8_t> rule_logs;                        // per rule: `log: true`
    std::vector<std::unique_ptr<RuleCounter[]>> counters;  // [worker][rule]
    std::string file;                                      // where the policy came from
    uint64_t loaded_at_ns = 0;                             // CLOCK_REALTIME when it was compiled

    // Builds a bundle for `workers` workers around a compiled classifier (control side; the identity
    // table is built from the classifier's rule set unless one is given).
    static std::unique_ptr<PolicyBundle> make(std::shared_ptr<const rules::PolicyClassifier> classifier,
                                              uint32_t generation, size_t workers, std::string file,
                                              std::shared_ptr<const IdentityTable> identity = nullptr);
    size_t rule_count() const noexcept { return rule_logs.size(); }
};

}  // namespace tagwall::dataplane
