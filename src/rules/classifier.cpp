// Build side: the engine factory.
#include "rules/classifier.hpp"

#include <stdexcept>

#include <fmt/format.h>

#include "rules/engine_linear.hpp"
#include "rules/engine_rte_acl.hpp"
#include "rules/engine_trie.hpp"

namespace tagwall::rules {

FieldRule wildcard_rule(uint32_t priority, int32_t id) noexcept {
    FieldRule r;
    for (size_t f = 0; f < kFieldCount; ++f) r.field[f] = {0, kFieldMax[f]};
    r.priority = priority;
    r.id = id;
    return r;
}

std::vector<std::string> classifier_engines() { return {"trie", "rte_acl", "linear"}; }

std::unique_ptr<Classifier> make_classifier(std::string_view engine, std::span<const FieldRule> rules) {
    if (engine == "linear") return std::make_unique<LinearEngine>(rules);
    if (engine == "trie") return std::make_unique<TrieEngine>(rules);
    if (engine == "rte_acl") return std::make_unique<RteAclEngine>(rules);
    throw std::invalid_argument(fmt::format("unknown classifier engine '{}' (known: trie, rte_acl, linear)", engine));
}

}  // namespace tagwall::rules
