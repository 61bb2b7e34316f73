// The policy loader: every error class has a test that asserts its message and its FILE:LINE:COL.
// Positions are asserted against the offending token, found in the test's own YAML text, so a test
// reads as "the error points at `tcp/70000`".
#include <catch2/catch.hpp>

#include <string>

#include <fmt/format.h>

#include "rules/policy_loader.hpp"

using namespace tagwall::rules;

namespace {

// 1-based line and column of the first occurrence of `token` in `text`.
std::pair<int, int> position_of(const std::string& text, const std::string& token) {
    const auto at = text.find(token);
    REQUIRE(at != std::string::npos);
    const auto line_start = text.rfind('\n', at);
    const int line = 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<long>(at), '\n'));
    const int col = static_cast<int>(at - (line_start == std::string::npos ? 0 : line_start + 1)) + 1;
    return {line, col};
}

std::vector<Diagnostic> errors_of(const LoadResult& r) {
    std::vector<Diagnostic> out;
    for (const auto& d : r.diagnostics.sorted())
        if (d.severity == Severity::error) out.push_back(d);
    return out;
}

std::string dump(const LoadResult& r) {
    std::string out;
    for (const auto& d : r.diagnostics.sorted()) out += d.str() + "\n";
    return out;
}

// Asserts that loading `yaml` fails with an error at `token` whose message contains `message`.
void require_error_at(const std::string& yaml, const std::string& token, const std::string& message) {
    const auto r = load_policy_text(yaml, "p.yaml");
    INFO("diagnostics:\n" << dump(r));
    CHECK_FALSE(r.policy);
    const auto [line, col] = position_of(yaml, token);
    bool found = false;
    for (const auto& d : errors_of(r))
        if (d.pos.file == "p.yaml" && d.pos.line == line && d.pos.col == col &&
            d.message.find(message) != std::string::npos)
            found = true;
    INFO("expected p.yaml:" << line << ":" << col << ": error: ..." << message << "...");
    CHECK(found);
}

const std::string kHeader = R"(version: 1
segments:
  - {name: web, vlan: 10}
  - {name: db, vlan: 30}
endpoints:
  - {name: web-1, segment: web, ip: [198.18.10.11, "2001:db8:10::11"], mac: "52:54:00:00:10:11", tags: {app: shop, tier: web}}
  - {name: db-1, segment: db, ip: [198.18.30.11], tags: {app: shop, tier: db}}
)";

}  // namespace

TEST_CASE("a complete policy loads with every element resolved", "[loader]") {
    const std::string yaml = kHeader + R"(groups:
  shop-web: {tags: {app: shop, tier: web}}
  shop-db: {tags: {tier: db}}
  admins: {cidr: [198.19.200.0/24, "2001:db8:ad::/48"]}
  db-seg: {segment: db}
services:
  postgres: [tcp/5432]
  dns: [udp/53, tcp/53]
  high: tcp/1024-65535
  ping: [icmp/echo-request, icmpv6/128]
rules:
  - {id: web-db, from: shop-web, to: [shop-db, db-seg], services: [postgres], action: allow, log: true}
  - {id: admin-ssh, from: admins, to: any, services: [tcp/22, ping], action: allow}
  - {id: no-admin-db, from: admins, to: shop-db, action: reject}
  - {id: any-any, from: any, to: any, services: any, action: drop}
default: reject
)";
    const auto r = load_policy_text(yaml, "p.yaml");
    INFO(dump(r));
    REQUIRE(r.policy);
    const Policy& p = *r.policy;
    CHECK(p.segments.size() == 2);
    CHECK(p.segments[1].vlan == 30);
    REQUIRE(p.endpoints.size() == 2);
    CHECK(p.endpoints[0].addrs.size() == 2);
    CHECK(p.endpoints[0].mac->str() == "52:54:00:00:10:11");
    CHECK(p.endpoints[1].segment == 1);
    CHECK(p.groups.size() == 4);
    CHECK(p.groups[2].kind == Group::Kind::cidr);
    CHECK(p.groups[2].cidrs.size() == 2);
    CHECK(p.members_of(0) == std::vector<uint32_t>{0});
    CHECK(p.members_of(3) == std::vector<uint32_t>{1});
    REQUIRE(p.rules.size() == 4);
    CHECK(p.rules[0].log);
    CHECK(p.rules[0].to.groups.size() == 2);
    CHECK(p.rules[1].to.any);
    CHECK_FALSE(p.rules[1].any_service);
    CHECK(p.rules[1].services.size() == 2);
    CHECK(p.services[p.rules[1].services[0]].items[0].port_lo == 22);  // inline tcp/22
    CHECK(p.services[p.rules[1].services[0]].name.empty());
    CHECK(p.rules[2].any_service);
    CHECK(p.rules[3].any_service);
    CHECK(p.rules[2].action == Action::reject);
    CHECK(p.default_action == Action::reject);
    CHECK(p.rules[0].pos.line == position_of(yaml, "{id: web-db").first);
    const auto& high = p.services[2];
    CHECK(high.items[0].port_lo == 1024);
    CHECK(high.items[0].port_hi == 65535);
    CHECK(p.services[3].items[1].proto == kProtoIcmpV6);
    CHECK(p.services[3].items[1].icmp_type == 128);
    CHECK(r.diagnostics.items().empty());
}

TEST_CASE("empty and non-map documents", "[loader]") {
    for (const char* text : {"", "\n\n", "# only a comment\n", "~\n"}) {
        const auto r = load_policy_text(text, "p.yaml");
        REQUIRE(errors_of(r).size() == 1);
        CHECK(errors_of(r)[0].str() == "p.yaml:1:1: error: the policy is empty; it needs at least 'version: 1' and some rules");
    }
    require_error_at("- a\n- b\n", "- a", "the policy file must be a map, not a list");
    require_error_at("just words\n", "just", "the policy file must be a map, not a scalar");
}

TEST_CASE("YAML syntax errors carry the parser's position", "[loader]") {
    const auto r = load_policy_text("version: 1\nrules: [ {id: a\n", "p.yaml");
    const auto errs = errors_of(r);
    REQUIRE(errs.size() == 1);
    CHECK(errs[0].message.rfind("YAML syntax: ", 0) == 0);
    CHECK(errs[0].pos.line >= 2);
    const auto tab = load_policy_text("version: 1\nsegments:\n\t- {name: a, vlan: 1}\n", "p.yaml");
    CHECK_FALSE(tab.policy);
}

TEST_CASE("wrong types are reported where they are", "[loader]") {
    require_error_at("version: 1\nsegments: oops\n", "oops", "'segments' (a list of {name, vlan}) must be a list, not a scalar");
    require_error_at("version: 1\nrules: {a: 1}\n", "{a: 1}", "must be a list, not a map");
    require_error_at("version: 1\ngroups: [a, b]\n", "[a, b]", "'groups' (a map of NAME: {tags|cidr|segment: ...}) must be a map, not a list");
    require_error_at(kHeader + "groups:\n  g: {tags: [app, shop]}\n", "[app, shop]", "'tags' of group 'g' ({key: value, ...}) must be a map, not a list");
    require_error_at(kHeader + "groups:\n  g: {tags: {app: [x]}}\n", "[x]", "value of tag 'app' must be a single value, not a list");
    require_error_at("version: 1\nsegments:\n  - {name: [a], vlan: 1}\n", "[a]", "segment name must be a single value, not a list");
    require_error_at("version: 1\nsegments:\n  - {name: a, vlan: ten}\n", "ten", "'vlan' must be a number from 0 to 4094, not 'ten'");
    require_error_at("version: 1\nsegments:\n  - {name: a, vlan: 4095}\n", "4095", "'vlan' must be a number from 0 to 4094, not '4095'");
    require_error_at(kHeader + "rules:\n  - {id: r, from: any, to: any, action: allow, log: maybe}\n", "maybe", "'log' must be true or false, not 'maybe'");
    require_error_at(kHeader + "endpoints2: 1\n", "endpoints2", "unknown key 'endpoints2' in the policy (did you mean 'endpoints'?)");
    require_error_at(kHeader + "rules:\n  - {id: r, from: any, to: any, action: [allow]}\n", "[allow]", "'action' of rule 'r' must be a single value, not a list");
    require_error_at(kHeader + "rules:\n  - {id: r, from: {a: b}, to: any, action: allow}\n", "{a: b}", "'from' of rule 'r' must be a value or a list of values, not a map");
    require_error_at(kHeader + "rules:\n  - just-a-string\n", "just-a-string", "a rule ({id, from, to, services, action}) must be a map, not a scalar");
    require_error_at("version: 1\nsegments:\n  - {name: a, vlan: 1}\nendpoints:\n  - {name: e, segment: a, ip: {x: 1}}\n", "{x: 1}", "'ip' of endpoint 'e' must be a value or a list of values, not a map");
}

TEST_CASE("unknown keys: an error, with a suggestion when one is close", "[loader]") {
    require_error_at(kHeader + "rulez:\n  - {id: r, from: any, to: any, action: allow}\n", "rulez", "unknown key 'rulez' in the policy (did you mean 'rules'?)");
    require_error_at(kHeader + "rules:\n  - {id: r, from: any, to: any, acton: allow}\n", "acton", "unknown key 'acton' in a rule (did you mean 'action'?)");
    require_error_at(kHeader + "groups:\n  g: {tag: {app: shop}}\n", "tag:", "unknown key 'tag' in group 'g' (did you mean 'tags'?)");
    require_error_at("version: 1\nsegments:\n  - {name: a, vlan: 1, colour: red}\n", "colour", "unknown key 'colour' in a segment");
    const auto r = load_policy_text("version: 1\nsegments:\n  - {name: a, vlan: 1, colour: red}\n", "p.yaml");
    CHECK(errors_of(r)[0].message.find("did you mean") == std::string::npos);
}

TEST_CASE("duplicate names, ids, keys, addresses and MACs", "[loader]") {
    {
        const auto r = load_policy_text("version: 1\nversion: 1\n", "p.yaml");
        REQUIRE(errors_of(r).size() == 1);
        CHECK(errors_of(r)[0].str() == "p.yaml:2:1: error: duplicate key 'version' in the policy");
    }
    {
        const std::string y = "version: 1\nsegments:\n  - {name: web, vlan: 1}\n  - {name: web, vlan: 2}\n";
        const auto r = load_policy_text(y, "p.yaml");
        REQUIRE(errors_of(r).size() == 1);
        CHECK(errors_of(r)[0].str() == "p.yaml:4:12: error: duplicate segment name 'web' (first defined at p.yaml:3:5)");
    }
    const std::string dup_vlan = "version: 1\nsegments:\n  - {name: a, vlan: 7}\n  - {name: b, vlan: 07}\n";
    require_error_at(dup_vlan, "07", "vlan 7 is already segment 'a'; a VLAN carries one segment");
    require_error_at(kHeader + "  - {name: web-1, segment: web, ip: 198.18.10.99}\n", "web-1, segment: web, ip: 198.18.10.99",
                     "duplicate endpoint name 'web-1' (first defined at p.yaml:6:5)");
    require_error_at(kHeader + "  - {name: web-9, segment: web, ip: [198.18.30.11]}\n", "198.18.30.11]}\n",
                     "address 198.18.30.11 is already bound to endpoint 'db-1'; an address identifies one workload");
    require_error_at(kHeader + "  - {name: web-9, segment: web, ip: [198.18.10.99, 198.18.10.99]}\n", "198.18.10.99]}",
                     "address 198.18.10.99 is listed twice");
    require_error_at(kHeader + "  - {name: web-9, segment: web, ip: 198.18.10.99, mac: \"52:54:00:00:10:11\"}\n",
                     "\"52:54:00:00:10:11\"}\n", "MAC 52:54:00:00:10:11 is already bound to endpoint 'web-1' in segment 'web'");
    require_error_at(kHeader + "groups:\n  g: {segment: web}\n  g: {segment: db}\n", "g: {segment: db}",
                     "duplicate group 'g' (first defined at p.yaml:9:3)");
    require_error_at(kHeader + "services:\n  s: tcp/1\n  s: tcp/2\n", "s: tcp/2", "duplicate service 's' (first defined at p.yaml:9:3)");
    require_error_at(kHeader + "rules:\n  - {id: r, from: any, to: any, action: allow}\n  - {id: r, from: any, to: any, action: drop}\n",
                     "r, from: any, to: any, action: drop", "duplicate rule id 'r' (first used at p.yaml:9:5)");
    require_error_at(kHeader + "rules:\n  - {id: r, id: s, from: any, to: any, action: allow}\n", "id: s", "duplicate key 'id' in a rule");
}

TEST_CASE("addresses, CIDRs and MACs are validated", "[loader]") {
    const std::string seg = "version: 1\nsegments:\n  - {name: a, vlan: 1}\n";
    require_error_at(seg + "endpoints:\n  - {name: e, segment: a, ip: 198.18.0.300}\n", "198.18.0.300", "'198.18.0.300' is not an IPv4 or IPv6 address");
    require_error_at(seg + "endpoints:\n  - {name: e, segment: a, ip: 198.18.0.0/24}\n", "198.18.0.0/24", "an endpoint binds addresses, not prefixes");
    require_error_at(seg + "endpoints:\n  - {name: e, segment: a, ip: []}\n", "[]", "'ip' of endpoint 'e' lists no address");
    require_error_at(seg + "endpoints:\n  - {name: e, segment: a}\n", "{name: e, segment: a}", "endpoint 'e' is missing 'ip'");
    require_error_at(seg + "endpoints:\n  - {name: e, segment: a, ip: 198.18.0.1, mac: \"52:54:00:zz:00:01\"}\n", "\"52:54:00:zz:00:01\"",
                     "'52:54:00:zz:00:01' is not a MAC address (expected 52:54:00:00:10:11)");
    require_error_at(seg + "endpoints:\n  - {name: e, segment: a, ip: 198.18.0.1, mac: \"01:00:5e:00:00:01\"}\n", "\"01:00:5e",
                     "is a multicast MAC");
    require_error_at(kHeader + "groups:\n  g: {cidr: [198.18.0.1/24]}\n", "198.18.0.1/24",
                     "bad CIDR: '198.18.0.1/24' has host bits set below /24 (did you mean 198.18.0.0/24?)");
    require_error_at(kHeader + "groups:\n  g: {cidr: 198.18.0.0/33}\n", "198.18.0.0/33", "bad CIDR: prefix length '33' must be 0..32 for IPv4");
    require_error_at(kHeader + "groups:\n  g: {cidr: [\"2001:db8::/200\"]}\n", "\"2001:db8::/200\"", "bad CIDR: prefix length '200' must be 0..128 for IPv6");
    require_error_at(kHeader + "groups:\n  g: {cidr: [not-a-net]}\n", "not-a-net", "bad CIDR: 'not-a-net' is not an IPv4 or IPv6 address");
    require_error_at(kHeader + "groups:\n  g: {cidr: []}\n", "[]", "group 'g' lists no prefix");
}

TEST_CASE("services: ports, ranges, protocols and ICMP types", "[loader]") {
    require_error_at(kHeader + "services:\n  s: [tcp/70000]\n", "tcp/70000", "port 70000 is out of range 0-65535");
    require_error_at(kHeader + "services:\n  s: [udp/1-65536]\n", "udp/1-65536", "port 65536 is out of range 0-65535");
    require_error_at(kHeader + "services:\n  s: [tcp/2000-1000]\n", "tcp/2000-1000", "port range 2000-1000 is inverted (did you mean 1000-2000?)");
    require_error_at(kHeader + "services:\n  s: [tcp/http]\n", "tcp/http", "'http' is not a port number");
    require_error_at(kHeader + "services:\n  s: [tcp/-5]\n", "tcp/-5", "'' is not a port number");
    require_error_at(kHeader + "services:\n  s: [tpc/80]\n", "tpc/80", "'tpc/80' is not a service");
    require_error_at(kHeader + "services:\n  s: [icmp/echo]\n", "icmp/echo", "'echo' is not an icmp type (a number 0-255 or one of: echo-reply");
    require_error_at(kHeader + "services:\n  s: [icmpv6/256]\n", "icmpv6/256", "'256' is not an icmpv6 type");
    require_error_at(kHeader + "services:\n  s: [proto/300]\n", "proto/300", "'proto/300': protocol number must be 0-255");
    require_error_at(kHeader + "services:\n  s: []\n", "[]", "service 's' lists nothing");
    require_error_at(kHeader + "services:\n  any: [tcp/1]\n", "any:", "'any' is reserved");
    require_error_at(kHeader + "rules:\n  - {id: r, from: any, to: any, services: [tcp/99999], action: allow}\n", "tcp/99999", "port 99999 is out of range");

    const auto r = load_policy_text(kHeader + "services:\n  s: [tcp, udp/0-65535, icmp, icmp/3, icmpv6/echo-reply, sctp/9, proto/47]\n", "p.yaml");
    INFO(dump(r));
    REQUIRE(r.policy);
    const auto& items = r.policy->services[0].items;
    REQUIRE(items.size() == 7);
    CHECK(items[0].str() == "tcp");
    CHECK(items[1].str() == "udp");
    CHECK(items[2].icmp_type == -1);
    CHECK(items[3].icmp_type == 3);
    CHECK(items[4].icmp_type == 129);
    CHECK(items[5].str() == "sctp/9");
    CHECK(items[6].proto == 47);
}

TEST_CASE("groups must reference something that exists", "[loader]") {
    require_error_at(kHeader + "groups:\n  g: {segment: dbb}\n", "dbb", "unknown segment 'dbb' in group 'g' (did you mean 'db'?)");
    require_error_at(kHeader + "groups:\n  g: {tags: {}}\n", "{}", "group 'g' has no tags; it would match every endpoint");
    require_error_at(kHeader + "groups:\n  g: {tags: {a: b}, cidr: [198.18.0.0/16]}\n", "{tags: {a: b}, cidr", "group 'g' must have exactly one of 'tags', 'cidr' or 'segment' (it has 2)");
    require_error_at(kHeader + "groups:\n  g: {}\n", "{}", "(it has 0)");
    require_error_at(kHeader + "groups:\n  any: {segment: db}\n", "any:", "'any' is reserved");
    require_error_at(kHeader + "groups:\n  \"bad name\": {segment: db}\n", "\"bad name\"", "group name 'bad name' is not a valid name");
    require_error_at("version: 1\nsegments:\n  - {name: a, vlan: 1}\nendpoints:\n  - {name: e, segment: b, ip: 198.18.0.1}\n", "b, ip", "unknown segment 'b' in endpoint 'e'");

    // A tag group that matches nothing is a warning, not an error (membership is dynamic).
    const auto ok = load_policy_text(kHeader + "groups:\n  ghosts: {tags: {tier: ghost}}\nrules: []\ndefault: drop\n", "p.yaml");
    REQUIRE(ok.policy);
    REQUIRE(ok.diagnostics.items().size() == 1);
    CHECK(ok.diagnostics.items()[0].str() == "p.yaml:9:3: warning: group 'ghosts' matches no endpoint (no endpoint carries all its tags)");
}

TEST_CASE("rules must reference groups and services that exist", "[loader]") {
    const std::string g = kHeader + "groups:\n  shop-web: {tags: {tier: web}}\n  shop-db: {tags: {tier: db}}\nservices:\n  postgres: tcp/5432\n";
    require_error_at(g + "rules:\n  - {id: r, from: shop-wbe, to: shop-db, action: allow}\n", "shop-wbe",
                     "unknown group 'shop-wbe' in 'from' of rule 'r' (did you mean 'shop-web'?)");
    require_error_at(g + "rules:\n  - {id: r, from: shop-web, to: [shop-db, nobody-at-all], action: allow}\n", "nobody-at-all",
                     "unknown group 'nobody-at-all' in 'to' of rule 'r'");
    require_error_at(g + "rules:\n  - {id: r, from: shop-web, to: shop-db, services: [postgress], action: allow}\n", "postgress",
                     "unknown service 'postgress' in 'services' of rule 'r' (did you mean 'postgres'?)");
    require_error_at(g + "rules:\n  - {id: r, to: shop-db, action: allow}\n", "{id: r, to", "rule 'r' is missing 'from' (write 'from: any' to match every source)");
    require_error_at(g + "rules:\n  - {id: r, from: any, action: allow}\n", "{id: r, from", "rule 'r' is missing 'to'");
    require_error_at(g + "rules:\n  - {id: r, from: any, to: any}\n", "{id: r, from", "rule 'r' is missing 'action'");
    require_error_at(g + "rules:\n  - {from: any, to: any, action: allow}\n", "{from", "a rule is missing 'id'");
    require_error_at(g + "rules:\n  - {id: r, from: [], to: any, action: allow}\n", "[]", "'from' of rule 'r' is empty");
    require_error_at(g + "rules:\n  - {id: r, from: any, to: any, services: [], action: allow}\n", "[]", "'services' of rule 'r' is empty");
    require_error_at(g + "rules:\n  - {id: r, from: any, to: any, action: deny}\n", "deny", "'action' of rule 'r' must be allow, drop or reject, not 'deny'");
    require_error_at(g + "default: deny\n", "deny", "'default' must be drop, reject or allow, not 'deny'");
    require_error_at("version: 2\n", "2", "unsupported policy version '2': this tagwall reads version 1");
    require_error_at("segments: []\n", "segments", "missing 'version' (write 'version: 1')");
}

TEST_CASE("every error in a file is reported, in file order", "[loader]") {
    const std::string y = R"(version: 1
segments:
  - {name: web, vlan: 10}
  - {name: web, vlan: 11}
endpoints:
  - {name: e1, segment: nowhere, ip: 198.18.0.1}
  - {name: e2, segment: web, ip: 198.18.0.999}
groups:
  g: {cidr: [198.18.0.1/16]}
services:
  s: [tcp/70000, udp/9-1]
rules:
  - {id: a, from: gg, to: any, services: [s], action: allow}
  - {id: a, from: any, to: any, action: allow, colour: red}
default: maybe
)";
    const auto r = load_policy_text(y, "p.yaml");
    CHECK_FALSE(r.policy);
    const auto errs = errors_of(r);
    INFO(dump(r));
    std::vector<int> lines;
    for (const auto& e : errs) lines.push_back(e.pos.line);
    CHECK(lines == std::vector<int>{4, 6, 7, 9, 11, 11, 13, 13, 14, 14, 15});
    CHECK(std::is_sorted(lines.begin(), lines.end()));
}

TEST_CASE("hostile documents: huge, deeply nested, alias bombs", "[loader]") {
    SECTION("a 50 MB file is refused before parsing, with a position") {
        std::string big = "version: 1\nrules:\n";
        const std::string line = "  - {id: r, from: any, to: any, action: allow}  # padding padding padding\n";
        while (big.size() < (50u << 20)) big += line;
        const auto r = load_policy_text(big, "big.yaml");
        REQUIRE(errors_of(r).size() == 1);
        CHECK(errors_of(r)[0].str().rfind("big.yaml:1:1: error: the policy is 50.0 MB, more than the 32 MB limit", 0) == 0);
    }
    SECTION("deeply nested flow sequences") {
        const std::string deep = "version: 1\nrules: " + std::string(100000, '[') + std::string(100000, ']') + "\n";
        const auto r = load_policy_text(deep, "deep.yaml");
        CHECK_FALSE(r.policy);
        REQUIRE(errors_of(r).size() == 1);
        CHECK(errors_of(r)[0].message.find("YAML syntax") == 0);
    }
    SECTION("deeply nested block maps") {
        std::string deep = "version: 1\nrules:\n";
        for (int i = 0; i < 5000; ++i) deep += std::string(static_cast<size_t>(i + 1), ' ') + "k:\n";
        const auto r = load_policy_text(deep, "deep.yaml");
        CHECK_FALSE(r.policy);
        CHECK_FALSE(errors_of(r).empty());
    }
    SECTION("aliases that expand to many duplicate rules stop at an error cap") {
        std::string y = kHeader + "rules:\n  - &r {id: dup, from: any, to: any, action: allow}\n";
        for (int i = 0; i < 100000; ++i) y += "  - *r\n";
        const auto r = load_policy_text(y, "p.yaml");
        CHECK_FALSE(r.policy);
        const auto errs = errors_of(r);
        CHECK(errs.size() <= 1001);
        CHECK(errs.back().message.find("too many errors") != std::string::npos);
    }
    SECTION("binary garbage") {
        std::string junk;
        for (int i = 0; i < 4096; ++i) junk += static_cast<char>((i * 7919) % 256);
        const auto r = load_policy_text(junk, "junk.yaml");
        CHECK_FALSE(r.policy);
        CHECK_FALSE(errors_of(r).empty());
    }
}

TEST_CASE("files: missing, unreadable and the size limit", "[loader]") {
    const auto missing = load_policy_file("/nonexistent/policy.yaml");
    REQUIRE(errors_of(missing).size() == 1);
    CHECK(errors_of(missing)[0].str() == "/nonexistent/policy.yaml: error: cannot open: No such file or directory");
    const auto dir = load_policy_file("/");
    CHECK_FALSE(dir.policy);
    REQUIRE(errors_of(dir).size() == 1);
    CHECK(errors_of(dir)[0].str() == "/: error: cannot read: it is a directory");
    CHECK_THROWS_AS(load_policy_or_throw("/nonexistent/policy.yaml"), PolicyError);
}
