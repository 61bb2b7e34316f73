// `tagwall check`: load, compile and analyse a policy, then print what an engineer needs to review it.
#include "tools/check_report.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "rules/analysis.hpp"
#include "rules/policy_loader.hpp"
#include "rules/ruleset.hpp"

namespace tagwall::tools {
namespace {

using namespace tagwall::rules;

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
    std::string out;
    for (const auto& p : parts) {
        if (!out.empty()) out += sep;
        out += p;
    }
    return out;
}

std::string tags_text(const Tags& tags) {
    std::vector<std::string> parts;
    for (const auto& [k, v] : tags) parts.push_back(k + "=" + v);
    return parts.empty() ? "-" : join(parts, " ");
}

std::string selector_text(const Policy& p, const Selector& s) {
    if (s.any) return "any";
    std::vector<std::string> names;
    for (auto g : s.groups) names.push_back(p.groups[g].name);
    return join(names, ",");
}

std::string services_text(const Policy& p, const Rule& r) {
    if (r.any_service) return "any";
    std::vector<std::string> names;
    for (auto s : r.services) {
        const auto& svc = p.services[s];
        if (!svc.name.empty()) {
            names.push_back(svc.name);
            continue;
        }
        for (const auto& item : svc.items) names.push_back(item.str());
    }
    return join(names, ",");
}

std::string group_text(const Policy& p, uint32_t g, const std::vector<uint32_t>& member_endpoints) {
    const auto& group = p.groups[g];
    std::vector<std::string> members;
    for (auto e : member_endpoints) members.push_back(p.endpoints[e].name);
    const std::string who = members.empty() ? "(no endpoint)" : join(members, ", ");
    switch (group.kind) {
    case Group::Kind::tags: return fmt::format("tags {} -> {}", tags_text(group.tags), who);
    case Group::Kind::segment: return fmt::format("segment {} -> {}", p.segments[group.segment].name, who);
    case Group::Kind::cidr: {
        std::vector<std::string> prefixes;
        for (const auto& c : group.cidrs) prefixes.push_back(c.str());
        return fmt::format("cidr {} (external addresses only)", join(prefixes, ", "));
    }
    }
    return "";
}

void print_summary(const Policy& p, std::FILE* out) {
    fmt::print(out, "\nSegments\n");
    for (uint32_t s = 0; s < p.segments.size(); ++s) {
        const auto n = std::count_if(p.endpoints.begin(), p.endpoints.end(), [&](const Endpoint& e) { return e.segment == s; });
        fmt::print(out, "  {:<16} vlan {:<5} {} endpoint(s)\n", p.segments[s].name, p.segments[s].vlan, n);
    }
    fmt::print(out, "\nEndpoints\n");
    for (const auto& e : p.endpoints) {
        std::vector<std::string> addrs;
        for (const auto& a : e.addrs) addrs.push_back(a.str());
        fmt::print(out, "  {:<16} {:<12} {:<40} {:<17} {}\n", e.name, p.segments[e.segment].name, join(addrs, ", "),
                   e.mac ? e.mac->str() : "-", tags_text(e.tags));
    }
    fmt::print(out, "\nGroups\n");
    const auto members = MembershipIndex(p.groups).members(p.endpoints);
    for (uint32_t g = 0; g < p.groups.size(); ++g)
        fmt::print(out, "  {:<16} {}\n", p.groups[g].name, group_text(p, g, members[g]));
    fmt::print(out, "\nRules (first match wins)\n");
    fmt::print(out, "  {:>3}  {:<18} {:<20} {:<20} {:<24} {:<7} {:<4} {}\n", "#", "ID", "FROM", "TO", "SERVICES",
               "ACTION", "LOG", "LINE");
    for (size_t i = 0; i < p.rules.size(); ++i) {
        const auto& r = p.rules[i];
        fmt::print(out, "  {:>3}  {:<18} {:<20} {:<20} {:<24} {:<7} {:<4} {}\n", i + 1, r.id,
                   selector_text(p, r.from), selector_text(p, r.to), services_text(p, r), action_name(r.action),
                   r.log ? "yes" : "-", r.pos.line);
    }
    fmt::print(out, "  {:>3}  {:<18} {:<20} {:<20} {:<24} {:<7}\n", "-", "(default)", "any", "any", "any",
               action_name(p.default_action));
}

// Analysis findings become positioned warnings, so that editors and CI annotate the rule's line.
void add_findings(const Policy& p, const Analysis& a, Diagnostics& diag) {
    for (const auto& f : a.rules) diag.warning(p.rules[f.rule].pos, f.message);
    for (const auto& f : a.groups)
        if (f.kind == GroupFinding::Kind::unused) diag.warning(p.groups[f.group].pos, f.message);
}

void print_diagnostics(const Diagnostics& diag, std::FILE* out) {
    const auto items = diag.sorted();
    if (items.empty()) return;
    fmt::print(out, "\n");
    for (const auto& d : items) fmt::print(out, "{}\n", d.str());
}

}  // namespace

int run_check(const CheckOptions& options, std::FILE* out) {
    LoadOptions load_options;
    load_options.max_file_bytes = options.max_file_mb << 20;
    auto result = load_policy_file(options.policy_path, load_options);
    auto& diag = result.diagnostics;
    if (!result.policy) {
        print_diagnostics(diag, out);
        fmt::print(out, "\n{}: INVALID: {} error(s); nothing was loaded\n", options.policy_path, diag.error_count());
        return 1;
    }
    const Policy& policy = *result.policy;
    try {
        RuleSet::compile(policy);  // proves the compiled form builds, as the daemon would
    } catch (const PolicyError& e) {
        for (const auto& d : e.diagnostics()) diag.error(d.pos, d.message);
        print_diagnostics(diag, out);
        fmt::print(out, "\n{}: INVALID: {} error(s)\n", options.policy_path, diag.error_count());
        return 1;
    }
    add_findings(policy, analyze(policy), diag);
    fmt::print(out, "{}: policy version {}: {} segment(s), {} endpoint(s), {} group(s), {} service(s), {} rule(s), "
                    "default {}\n",
               options.policy_path, policy.version, policy.segments.size(), policy.endpoints.size(),
               policy.groups.size(), std::count_if(policy.services.begin(), policy.services.end(),
                                                   [](const Service& s) { return !s.name.empty(); }),
               policy.rules.size(), action_name(policy.default_action));
    if (!options.quiet) print_summary(policy, out);
    print_diagnostics(diag, out);
    const size_t warnings = diag.items().size() - diag.error_count();
    fmt::print(out, "\n{}: valid, {} warning(s)\n", options.policy_path, warnings);
    return 0;
}

}  // namespace tagwall::tools
