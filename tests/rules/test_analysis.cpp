// Tests for the build-side policy analysis behind `tagwall check`: shadowed, redundant and empty rules,
// empty and unused groups.  Policies are written in the policy language itself and loaded by the loader.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "rules/analysis.hpp"
#include "rules/policy_loader.hpp"

using namespace tagwall::rules;

namespace {

// Endpoints, groups and services shared by every case; each case adds its own rules and default.
//   shop-web: web-1 (v4+v6)            web (tier web): web-1, web-2 (v4)
//   shop (app shop): web-1, api-1, db-1, cache-1 (v6 only)
//   ext4 / ext6 / ext: external test ranges;  net24 = lo25 + hi25
const char* const kPreamble = R"(version: 1
segments:
  - {name: outside, vlan: 0}
  - {name: web, vlan: 10}
  - {name: db, vlan: 30}
  - {name: lab, vlan: 40}
endpoints:
  - {name: web-1, segment: web, ip: [198.18.10.11, "2001:db8:10::11"], tags: {app: shop, tier: web}}
  - {name: web-2, segment: web, ip: [198.18.10.12], tags: {app: blog, tier: web}}
  - {name: api-1, segment: web, ip: [198.18.10.21], tags: {app: shop, tier: api}}
  - {name: db-1, segment: db, ip: [198.18.30.11, "2001:db8:30::11"], tags: {app: shop, tier: db}}
  - {name: cache-1, segment: db, ip: ["2001:db8:30::21"], tags: {app: shop, tier: cache}}
groups:
  shop-web: {tags: {app: shop, tier: web}}
  web: {tags: {tier: web}}
  shop: {tags: {app: shop}}
  shop-db: {tags: {app: shop, tier: db}}
  cache: {tags: {tier: cache}}
  web-seg: {segment: web}
  nobody: {tags: {app: nothing}}
  ext4: {cidr: [198.18.0.0/15]}
  ext6: {cidr: ["2001:db8::/32"]}
  ext: {cidr: [198.18.0.0/15, "2001:db8::/32"]}
  net24: {cidr: [198.18.100.0/24]}
  lo25: {cidr: [198.18.100.0/25]}
  hi25: {cidr: [198.18.100.128/25]}
  web-1-addr: {cidr: [198.18.10.11/32]}
services:
  low: [tcp/1-100]
  mid: [tcp/101-200]
  span: [tcp/50-150]
)";

Policy load(const std::string& rules, const std::string& default_action = "drop") {
    const std::string text = std::string(kPreamble) + "rules:\n" + rules + "default: " + default_action + "\n";
    LoadResult r = load_policy_text(text, "test.yaml");
    for (const auto& d : r.diagnostics.items())
        if (d.severity == Severity::error) UNSCOPED_INFO(d.str());
    REQUIRE(r.policy);
    return std::move(*r.policy);
}

const char* kind_name(RuleFinding::Kind k) {
    switch (k) {
    case RuleFinding::Kind::shadowed: return "shadowed";
    case RuleFinding::Kind::redundant: return "redundant";
    case RuleFinding::Kind::matches_nothing: return "matches-nothing";
    case RuleFinding::Kind::incomplete: return "incomplete";
    }
    return "?";
}

// "c shadowed by a,b conflicting", "a redundant by b +default": one line per finding, easy to diff.
std::string describe(const Policy& p, const RuleFinding& f) {
    std::string out = p.rules[f.rule].id + " " + kind_name(f.kind);
    for (size_t k = 0; k < f.because_of.size(); ++k) out += (k ? "," : " by ") + p.rules[f.because_of[k]].id;
    if (f.conflicting) out += " conflicting";
    if (f.by_default) out += " +default";
    return out;
}

std::vector<std::string> describe_all(const Policy& p, const Analysis& a) {
    std::vector<std::string> out;
    for (const auto& f : a.rules) out.push_back(describe(p, f));
    return out;
}

std::string rule_ref(const Policy& p, size_t i) {
    return "'" + p.rules[i].id + "' (line " + std::to_string(p.rules[i].pos.line) + ")";
}

struct Case {
    const char* name;
    std::string rules;
    std::string default_action;
    std::vector<std::string> expected;
};

}  // namespace

TEST_CASE("analysis finds exactly the shadowed and redundant rules", "[analysis]") {
    const std::vector<Case> cases = {
        {"an exact duplicate is shadowed, and the first is redundant since the duplicate would take over",
         "  - {id: a, from: shop-web, to: shop-db, services: [tcp/5432], action: allow}\n"
         "  - {id: b, from: shop-web, to: shop-db, services: [tcp/5432], action: allow}\n",
         "drop", {"a redundant by b", "b shadowed by a"}},
        {"a duplicate with another action is a conflicting shadow",
         "  - {id: a, from: shop-web, to: shop-db, services: [tcp/5432], action: allow}\n"
         "  - {id: b, from: shop-web, to: shop-db, services: [tcp/5432], action: reject}\n",
         "drop", {"b shadowed by a conflicting"}},
        {"two port ranges jointly cover a third",
         "  - {id: a, from: ext, to: shop-web, services: [low], action: allow}\n"
         "  - {id: b, from: ext, to: shop-web, services: [mid], action: allow}\n"
         "  - {id: c, from: ext, to: shop-web, services: [span], action: allow}\n",
         "drop", {"c shadowed by a,b"}},
        {"two /25 halves jointly cover the /24",
         "  - {id: a, from: lo25, to: shop-web, services: [tcp/443], action: allow}\n"
         "  - {id: b, from: hi25, to: shop-web, services: [tcp/443], action: allow}\n"
         "  - {id: c, from: net24, to: shop-web, services: [tcp/443], action: allow}\n",
         "drop", {"a redundant by c", "b redundant by c", "c shadowed by a,b"}},
        {"a v4 and a v6 group jointly cover a dual-stack one",
         "  - {id: a, from: ext4, to: shop-db, action: allow}\n"
         "  - {id: b, from: ext6, to: shop-db, action: allow}\n"
         "  - {id: c, from: ext, to: shop-db, services: [tcp/5432], action: allow}\n",
         "drop", {"c shadowed by a,b"}},
        {"a segment group covers a tag group whose members all live in it",
         "  - {id: a, from: web-seg, to: shop-db, action: allow}\n"
         "  - {id: b, from: shop-web, to: shop-db, services: [tcp/5432], action: reject}\n",
         "drop", {"b shadowed by a conflicting"}},
        {"only rules that really cover part of it are named",
         "  - {id: a, from: ext, to: shop-web, services: [tcp/443], action: allow}\n"
         "  - {id: unrelated, from: web, to: shop-db, services: [tcp/5432], action: allow}\n"
         "  - {id: too-late, from: ext4, to: [shop-web, shop-db], services: [tcp/443], action: allow}\n"
         "  - {id: b, from: ext, to: shop-web, services: [tcp/80], action: allow}\n"
         "  - {id: c, from: ext, to: shop-web, services: [tcp/80, tcp/443], action: reject}\n",
         "drop", {"c shadowed by a,b conflicting"}},
        {"any to any covers everything after it",
         "  - {id: all, from: any, to: any, action: allow}\n"
         "  - {id: b, from: shop-web, to: shop-db, services: [tcp/5432], action: reject}\n"
         "  - {id: c, from: [ext, web], to: any, services: [udp/53], action: drop}\n",
         "drop", {"b shadowed by all conflicting", "c shadowed by all conflicting"}},
        {"partial overlap of port ranges",
         "  - {id: a, from: ext, to: shop-web, services: [low], action: allow}\n"
         "  - {id: b, from: ext, to: shop-web, services: [span], action: allow}\n",
         "drop", {}},
        {"a /25 then the /24 around it",
         "  - {id: a, from: lo25, to: shop-web, services: [tcp/443], action: allow}\n"
         "  - {id: b, from: net24, to: shop-web, services: [tcp/443], action: reject}\n",
         "drop", {}},
        {"a tag group then a wider one with members outside it",
         "  - {id: a, from: ext, to: web, services: [tcp/443], action: allow}\n"
         "  - {id: b, from: ext, to: shop, services: [tcp/443], action: allow}\n",
         "drop", {}},
        {"a v4-only rule before a dual-stack one",
         "  - {id: a, from: ext4, to: shop-db, action: allow}\n"
         "  - {id: b, from: ext, to: shop-db, action: reject}\n",
         "drop", {}},
        {"an IPv4 address range never covers an endpoint bound to that address",
         "  - {id: a, from: ext4, to: shop-db, action: allow}\n"
         "  - {id: b, from: shop-web, to: shop-db, action: reject}\n",
         "drop", {}},
        {"a specific allow before a broader allow is redundant",
         "  - {id: a, from: ext4, to: shop-web, services: [tcp/443], action: allow}\n"
         "  - {id: b, from: ext, to: web, services: [tcp/80, tcp/443], action: allow}\n",
         "drop", {"a redundant by b"}},
        {"a drop above nothing but the drop default is redundant",
         "  - {id: a, from: ext, to: shop-db, action: drop}\n"
         "  - {id: b, from: shop-web, to: shop-db, services: [tcp/5432], action: allow}\n",
         "drop", {"a redundant +default"}},
        {"a drop is not redundant when a later allow would take part of its traffic",
         "  - {id: a, from: ext, to: shop-db, action: drop}\n"
         "  - {id: b, from: ext6, to: shop, services: [tcp/5432], action: allow}\n",
         "drop", {}},
        {"a later rule and the default share the takeover",
         "  - {id: a, from: ext, to: shop-web, services: [tcp/443], action: allow}\n"
         "  - {id: b, from: ext4, to: shop-web, services: [tcp], action: allow}\n",
         "allow", {"a redundant by b +default", "b redundant +default"}},
        {"icmp/echo-request is shadowed by icmp",
         "  - {id: a, from: ext, to: shop-web, services: [icmp], action: allow}\n"
         "  - {id: b, from: ext, to: shop-web, services: [icmp/echo-request], action: allow}\n",
         "drop", {"b shadowed by a"}},
        {"icmp is not shadowed by icmp/echo-request",
         "  - {id: a, from: ext, to: shop-web, services: [icmp/echo-request], action: allow}\n"
         "  - {id: b, from: ext, to: shop-web, services: [icmp], action: reject}\n",
         "drop", {}},
        {"icmp does not cover icmpv6",
         "  - {id: a, from: ext, to: shop-web, services: [icmp], action: allow}\n"
         "  - {id: b, from: ext, to: shop-web, services: [icmpv6/echo-request], action: allow}\n",
         "drop", {}},
        {"a protocol alone covers each of its ports",
         "  - {id: a, from: ext, to: shop-web, services: [tcp], action: reject}\n"
         "  - {id: b, from: ext, to: shop-web, services: [tcp/22], action: allow}\n"
         "  - {id: c, from: ext, to: shop-web, services: [udp/53], action: allow}\n",
         "drop", {"b shadowed by a conflicting"}},
        {"rules whose own space is empty",
         "  - {id: v4-to-v6, from: ext4, to: cache, action: allow}\n"
         "  - {id: to-nobody, from: ext, to: nobody, action: allow}\n"
         "  - {id: bound-addr, from: web-1-addr, to: shop-db, action: allow}\n"
         "  - {id: after, from: ext4, to: cache, action: reject}\n",
         "drop", {"v4-to-v6 matches-nothing", "to-nobody matches-nothing", "bound-addr matches-nothing",
                  "after matches-nothing"}},
    };
    for (const auto& c : cases) {
        DYNAMIC_SECTION(c.name) {
            const Policy p = load(c.rules, c.default_action);
            CHECK(describe_all(p, analyze(p)) == c.expected);
        }
    }
}

TEST_CASE("analysis messages name the rules and their lines", "[analysis]") {
    SECTION("a joint cover with a conflict") {
        const Policy p = load("  - {id: a, from: ext, to: shop-web, services: [low], action: allow}\n"
                              "  - {id: b, from: ext, to: shop-web, services: [mid], action: allow}\n"
                              "  - {id: c, from: ext, to: shop-web, services: [span], action: reject}\n");
        const Analysis a = analyze(p);
        REQUIRE(a.rules.size() == 1);
        REQUIRE(p.rules[2].pos.line > 0);
        CHECK(a.rules[0].message == "rule " + rule_ref(p, 2) + " can never match: rules " + rule_ref(p, 0) + ", " +
                                        rule_ref(p, 1) +
                                        " cover all of its traffic and decide it differently (allow vs reject)");
    }
    SECTION("a redundant rule") {
        const Policy p = load("  - {id: a, from: ext, to: shop-db, action: drop}\n");
        const Analysis a = analyze(p);
        REQUIRE(a.rules.size() == 1);
        CHECK(a.rules[0].message == "rule " + rule_ref(p, 0) +
                                        " is redundant: without it, the default action gives all of its traffic "
                                        "the same verdict (drop)");
    }
    SECTION("a redundant rule whose logging differs says so") {
        const Policy p = load("  - {id: a, from: ext4, to: shop-web, services: [tcp/443], action: allow, log: true}\n"
                              "  - {id: b, from: ext, to: shop-web, services: [tcp/443], action: allow}\n");
        const Analysis a = analyze(p);
        REQUIRE(a.rules.size() == 1);
        CHECK(a.rules[0].message == "rule " + rule_ref(p, 0) + " is redundant: without it, rule " + rule_ref(p, 1) +
                                        " gives all of its traffic the same verdict (allow), though what is "
                                        "logged would change");
    }
    SECTION("a rule that matches nothing says why") {
        const Policy p = load("  - {id: a, from: ext4, to: cache, action: allow}\n");
        const Analysis a = analyze(p);
        REQUIRE(a.rules.size() == 1);
        CHECK_THAT(a.rules[0].message, Catch::Contains("'a'") && Catch::Contains("share no address family"));
    }
}

TEST_CASE("analysis reports a rule it could not finish as incomplete", "[analysis]") {
    // b minus a leaves two boxes: the web endpoints towards both groups, and ext4 towards shop-db.
    const Policy p = load("  - {id: a, from: ext4, to: shop-web, action: allow}\n"
                          "  - {id: b, from: [ext4, web], to: [shop-web, shop-db], action: allow}\n");
    CHECK(describe_all(p, analyze(p, {.max_boxes = 2})) == std::vector<std::string>{"a redundant by b"});
    CHECK(describe_all(p, analyze(p, {.max_boxes = 1})) ==
          std::vector<std::string>{"a redundant by b", "b incomplete"});
}

TEST_CASE("analysis handles thousands of rules", "[analysis]") {
    constexpr int kRules = 2000;
    std::string rules;
    for (int port = 1; port <= kRules; ++port)
        rules += "  - {id: r" + std::to_string(port) + ", from: ext, to: shop-web, services: [tcp/" +
                 std::to_string(port) + "], action: allow}\n";
    rules += "  - {id: all, from: ext, to: shop-web, services: [tcp/1-" + std::to_string(kRules) +
             "], action: reject}\n";
    rules += "  - {id: more, from: ext, to: shop-web, services: [tcp/1-" + std::to_string(kRules + 1) +
             "], action: reject}\n";
    const Policy p = load(rules);
    const Analysis a = analyze(p);
    REQUIRE(a.rules.size() == 1);
    const RuleFinding& f = a.rules[0];
    CHECK(p.rules[f.rule].id == "all");
    CHECK(f.kind == RuleFinding::Kind::shadowed);
    CHECK(f.conflicting);
    CHECK(f.because_of.size() == kRules);
    CHECK_THAT(f.message, Catch::Contains("and 1995 more"));
}

TEST_CASE("analysis reports empty and unused groups", "[analysis]") {
    const char* const text = R"(version: 1
segments:
  - {name: web, vlan: 10}
  - {name: lab, vlan: 40}
endpoints:
  - {name: web-1, segment: web, ip: [198.18.10.11], tags: {tier: web}}
groups:
  web: {tags: {tier: web}}
  ghost: {tags: {tier: ghost}}
  lab-seg: {segment: lab}
  web-seg: {segment: web}
  admins: {cidr: [198.18.200.0/24]}
  spare: {cidr: ["2001:db8::/32"]}
rules:
  - {id: a, from: admins, to: [web, ghost], action: allow}
  - {id: b, from: any, to: lab-seg, action: reject}
default: drop
)";
    LoadResult r = load_policy_text(text, "test.yaml");
    REQUIRE(r.policy);
    const Policy& p = *r.policy;
    const std::vector<GroupFinding> groups = analyze(p).groups;
    std::vector<std::string> found;
    for (const auto& g : groups)
        found.push_back(p.groups[g.group].name + (g.kind == GroupFinding::Kind::empty ? " empty" : " unused"));
    // Cidr groups are never empty; an empty group that a rule names is still used.
    CHECK(found == std::vector<std::string>{"ghost empty", "lab-seg empty", "web-seg unused", "spare unused"});
    REQUIRE_FALSE(groups.empty());
    CHECK(groups[0].message ==
          "group 'ghost' (line " + std::to_string(p.groups[1].pos.line) + ") has no member endpoints");
}
