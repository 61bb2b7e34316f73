// `tagwall-bench retag`: load a policy, build the engine, then flip `env` (prod <-> staging) on random
// endpoints one at a time, timing each PolicyClassifier::retag (new rule set + engine update), and
// compare with what a full recompile + rebuild of the same policy costs.
#include "tools/bench_retag.hpp"

#include <algorithm>
#include <chrono>
#include <random>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "rules/classifier_policy.hpp"
#include "rules/policy_loader.hpp"

namespace tagwall::tools {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

int run_retag_bench(const RetagBenchOptions& o) {
    const rules::Policy policy = rules::load_policy_or_throw(o.policy_path);
    if (policy.endpoints.empty()) throw std::runtime_error(fmt::format("{}: the policy has no endpoints", o.policy_path));
    const dataplane::EalInfo eal = dataplane::init_eal(o.eal);
    double compile_ms = 0, build_ms = 0, retag_total_ms = 0;
    std::vector<double> retag_ms;
    size_t inserted = 0, new_rules_retags = 0, field_rules = 0, rebuilds = 0;
    {
        auto start = Clock::now();
        auto ruleset = rules::RuleSet::compile(policy);
        compile_ms = ms_since(start);
        start = Clock::now();
        rules::PolicyClassifier classifier(ruleset, o.engine);
        build_ms = ms_since(start);
        field_rules = classifier.field_rule_count();
        std::mt19937 rng(20261122);
        for (unsigned i = 0; i < o.count; ++i) {
            const auto e = static_cast<uint32_t>(rng() % policy.endpoints.size());
            rules::Tags tags = classifier.ruleset().endpoints()[e].tags;
            auto env = tags.find("env");
            if (env == tags.end()) tags["env"] = "staging";
            else env->second = env->second == "prod" ? "staging" : "prod";
            const auto t = Clock::now();
            const auto result = classifier.retag(e, std::move(tags));
            retag_ms.push_back(ms_since(t));
            inserted += result.field_rules_added;
            new_rules_retags += result.field_rules_added > 0;
            rebuilds += result.rebuilt;
        }
        for (double v : retag_ms) retag_total_ms += v;
    }
    dataplane::cleanup_eal();
    const double rebuild_ms = compile_ms + build_ms;
    if (o.json) {
        nlohmann::json j = {{"engine", o.engine}, {"policy", o.policy_path}, {"rules", policy.rules.size()},
                            {"endpoints", policy.endpoints.size()}, {"field_rules", field_rules},
                            {"compile_ms", compile_ms}, {"build_ms", build_ms}, {"rebuild_ms", rebuild_ms},
                            {"retags", retag_ms.size()}, {"retags_adding_rules", new_rules_retags},
                            {"field_rules_inserted", inserted}, {"engine_rebuilds", rebuilds}, {"retag_ms_p50", percentile(retag_ms, 0.5)},
                            {"retag_ms_p99", percentile(retag_ms, 0.99)}, {"retag_ms_max", percentile(retag_ms, 1.0)},
                            {"retag_ms_mean", retag_ms.empty() ? 0 : retag_total_ms / double(retag_ms.size())},
                            {"hugepages", eal.hugepages}};
        fmt::print("{}\n", j.dump());
        return 0;
    }
    fmt::print("policy        {}: {} rules, {} endpoints -> {} field rules ({} engine)\n", o.policy_path,
               policy.rules.size(), policy.endpoints.size(), field_rules, o.engine);
    fmt::print("full rebuild  {:.2f} ms (compile {:.2f} ms + engine build {:.2f} ms)\n", rebuild_ms, compile_ms, build_ms);
    fmt::print("retag         {} endpoint tag changes: p50 {:.3f} ms, p99 {:.3f} ms, max {:.3f} ms; {} of them "
               "needed new field rules ({} in all); the engine was rebuilt {} time(s), updated in place otherwise\n",
               retag_ms.size(), percentile(retag_ms, 0.5), percentile(retag_ms, 0.99), percentile(retag_ms, 1.0),
               new_rules_retags, inserted, rebuilds);
    fmt::print("hugepages     {}\n", eal.hugepages ? "yes" : "no");
    return 0;
}

}  // namespace tagwall::tools
