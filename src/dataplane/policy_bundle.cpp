// A published policy generation: see policy_bundle.hpp.
#include "dataplane/policy_bundle.hpp"

#include <time.h>

namespace tagwall::dataplane {

std::unique_ptr<PolicyBundle> PolicyBundle::make(std::shared_ptr<const rules::PolicyClassifier> classifier,
                                                 uint32_t generation, size_t workers, std::string file,
                                                 std::shared_ptr<const IdentityTable> identity) {
    auto b = std::make_unique<PolicyBundle>();
    b->rules = classifier->ruleset_ptr();
    b->identity = identity ? std::move(identity) : std::make_shared<const IdentityTable>(*b->rules);
    b->classifier = std::move(classifier);
    b->generation = generation;
    const auto& rules = b->rules->rules();
    b->rule_logs.resize(rules.size());
    for (size_t i = 0; i < rules.size(); ++i) b->rule_logs[i] = rules[i].log ? 1 : 0;
    for (size_t w = 0; w < workers; ++w) b->counters.push_back(std::make_unique<RuleCounter[]>(rules.size()));
    b->file = std::move(file);
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    b->loaded_at_ns = static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
    return b;
}

}  // namespace tagwall::dataplane
