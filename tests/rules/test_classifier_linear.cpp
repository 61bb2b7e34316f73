// The linear reference classifier, table-driven: one policy, many packets, each with the rule that must
// decide it.  This is the oracle for every fast engine, so its own cases cover each way a rule can match.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include "rules/classifier_linear.hpp"
#include "rules/classifier_policy.hpp"
#include "rules/policy_loader.hpp"

using namespace tagwall::rules;

namespace {

const char* const kPolicy = R"(version: 1
segments:
  - {name: outside, vlan: 0}
  - {name: web, vlan: 10}
  - {name: app, vlan: 20}
  - {name: db, vlan: 30}
endpoints:
  - {name: web-1, segment: web, ip: [198.18.10.11, "2001:db8:10::11"], tags: {app: shop, tier: web}}
  - {name: web-2, segment: web, ip: [198.18.10.12], tags: {app: shop, tier: web, env: canary}}
  - {name: app-1, segment: app, ip: [198.18.20.11, "2001:db8:20::11"], tags: {app: shop, tier: app}}
  - {name: db-1,  segment: db,  ip: [198.18.30.11, "2001:db8:30::11"], tags: {app: shop, tier: db}}
  - {name: mon-1, segment: app, ip: [198.18.20.99], tags: {role: monitoring}}
  - {name: lab-1, segment: web, ip: [198.19.1.5], tags: {app: lab}}
groups:
  shop-web: {tags: {app: shop, tier: web}}
  shop-app: {tags: {app: shop, tier: app}}
  shop-db:  {tags: {app: shop, tier: db}}
  canary:   {tags: {env: canary}}
  monitoring: {tags: {role: monitoring}}
  web-seg:  {segment: web}
  admins:   {cidr: [198.19.200.0/24, "2001:db8:ad::/48"]}
  admin-boss: {cidr: [198.19.200.7]}
  lab-net:  {cidr: [198.19.0.0/16]}
  internet: {cidr: ["0.0.0.0/0", "::/0"]}
services:
  https: [tcp/443]
  app: [tcp/8080-8089]
  postgres: [tcp/5432]
  dns: [udp/53, tcp/53]
  ping: [icmp/echo-request, icmpv6/echo-request]
  exporter: [tcp/9100]
  gre: [proto/47]
rules:
  - {id: canary-block, from: internet, to: canary, action: reject}
  - {id: web-in, from: internet, to: shop-web, services: [https, ping], action: allow}
  - {id: web-app, from: shop-web, to: shop-app, services: [app], action: allow}
  - {id: app-db, from: shop-app, to: shop-db, services: [postgres], action: allow, log: true}
  - {id: boss-db, from: admin-boss, to: shop-db, services: [postgres], action: allow}
  - {id: admin-db, from: admins, to: shop-db, action: reject}
  - {id: admin-ssh, from: admins, to: any, services: [tcp/22], action: allow}
  - {id: monitor, from: monitoring, to: [shop-web, shop-app, shop-db], services: [exporter, ping], action: allow}
  - {id: web-seg-dns, from: web-seg, to: any, services: [dns], action: allow}
  - {id: lab-gre, from: lab-net, to: any, services: [gre], action: allow}
  - {id: icmp-errors, from: any, to: any, services: [icmp/destination-unreachable, icmpv6/packet-too-big], action: allow}
default: drop
)";

struct Case {
    const char* what;
    uint16_t vlan;
    const char* src;
    const char* dst;
    uint8_t proto;
    uint16_t dport;     // or ICMP type for ICMP
    const char* rule;   // expected deciding rule id, or "default" / "unknown-segment"
    Action action;
};

PacketKey key_of(const Case& c) {
    PacketKey k;
    k.vlan = c.vlan;
    k.src = *IpAddr::parse(c.src);
    k.dst = *IpAddr::parse(c.dst);
    k.proto = c.proto;
    if (proto_is_icmp(c.proto)) {
        k.icmp_type = static_cast<uint8_t>(c.dport);
    } else {
        k.sport = 40000;
        k.dport = c.dport;
    }
    return k;
}

std::shared_ptr<const RuleSet> demo_rules() {
    auto r = load_policy_text(kPolicy, "classifier.yaml");
    if (!r.policy) FAIL(r.diagnostics.items().front().str());
    return RuleSet::compile(*r.policy);
}

}  // namespace

TEST_CASE("linear classifier: first match over tags, segments, cidrs, services", "[classifier][linear]") {
    const LinearClassifier cls(demo_rules());
    const auto& rules = cls.ruleset().rules();
    const Case cases[] = {
        // group by tags, IPv4 and IPv6
        {"internet to web https (v4)", 0, "203.0.113.9", "198.18.10.11", kProtoTcp, 443, "web-in", Action::allow},
        {"internet to web https (v6)", 0, "2001:db8:99::1", "2001:db8:10::11", kProtoTcp, 443, "web-in", Action::allow},
        {"internet to web http: no rule", 0, "203.0.113.9", "198.18.10.11", kProtoTcp, 80, "default", Action::drop},
        {"internet to canary: reject wins by order", 0, "203.0.113.9", "198.18.10.12", kProtoTcp, 443, "canary-block", Action::reject},
        {"internet to app tier: nothing", 0, "203.0.113.9", "198.18.20.11", kProtoTcp, 8080, "default", Action::drop},
        // port ranges, both bounds and one past each
        {"web to app, range low bound", 10, "198.18.10.11", "198.18.20.11", kProtoTcp, 8080, "web-app", Action::allow},
        {"web to app, range high bound", 10, "198.18.10.11", "198.18.20.11", kProtoTcp, 8089, "web-app", Action::allow},
        {"web to app, below range", 10, "198.18.10.11", "198.18.20.11", kProtoTcp, 8079, "default", Action::drop},
        {"web to app, above range", 10, "198.18.10.11", "198.18.20.11", kProtoTcp, 8090, "default", Action::drop},
        {"web to app over udp: wrong protocol", 10, "198.18.10.11", "198.18.20.11", kProtoUdp, 8080, "default", Action::drop},
        {"web to app (v6)", 10, "2001:db8:10::11", "2001:db8:20::11", kProtoTcp, 8085, "web-app", Action::allow},
        {"app to db postgres", 20, "198.18.20.11", "198.18.30.11", kProtoTcp, 5432, "app-db", Action::allow},
        {"web to db: skipping a tier is denied", 10, "198.18.10.11", "198.18.30.11", kProtoTcp, 5432, "default", Action::drop},
        // cidr groups match external addresses only; the more specific group first
        {"the admin /32 reaches the db", 0, "198.19.200.7", "198.18.30.11", kProtoTcp, 5432, "boss-db", Action::allow},
        {"other admins are rejected", 0, "198.19.200.8", "198.18.30.11", kProtoTcp, 5432, "admin-db", Action::reject},
        {"admins v6 rejected", 0, "2001:db8:ad:1::5", "2001:db8:30::11", kProtoTcp, 5432, "admin-db", Action::reject},
        {"admins ssh anywhere", 0, "198.19.200.8", "198.18.20.11", kProtoTcp, 22, "admin-ssh", Action::allow},
        {"admin /24 boundary: .255 in", 0, "198.19.200.255", "198.18.20.11", kProtoTcp, 22, "admin-ssh", Action::allow},
        {"admin /24 boundary: next /24 out", 0, "198.19.201.0", "198.18.20.11", kProtoTcp, 22, "default", Action::drop},
        {"an endpoint inside a cidr is not that cidr", 10, "198.19.1.5", "198.18.20.11", 47, 0, "default", Action::drop},
        {"external inside lab-net sends gre", 0, "198.19.1.6", "198.18.20.11", 47, 0, "lab-gre", Action::allow},
        {"endpoint is not 'internet' either", 10, "198.18.20.11", "198.18.10.11", kProtoTcp, 443, "default", Action::drop},
        // segment groups
        {"web segment dns over udp", 10, "198.19.1.5", "203.0.113.53", kProtoUdp, 53, "web-seg-dns", Action::allow},
        {"web segment dns over tcp", 10, "198.18.10.12", "203.0.113.53", kProtoTcp, 53, "web-seg-dns", Action::allow},
        {"app segment dns: not in web-seg", 20, "198.18.20.11", "203.0.113.53", kProtoUdp, 53, "default", Action::drop},
        {"identity is by address, not by the vlan it arrives on", 20, "198.18.10.11", "203.0.113.53", kProtoUdp, 53, "web-seg-dns", Action::allow},
        // ICMP and ICMPv6 types
        {"ping web v4", 0, "203.0.113.9", "198.18.10.11", kProtoIcmp, 8, "web-in", Action::allow},
        {"ping web v6", 0, "2001:db8:99::1", "2001:db8:10::11", kProtoIcmpV6, 128, "web-in", Action::allow},
        {"icmp echo-reply is not echo-request", 0, "203.0.113.9", "198.18.10.11", kProtoIcmp, 0, "default", Action::drop},
        {"icmpv6 type 8 is not icmp echo-request", 0, "2001:db8:99::1", "2001:db8:10::11", kProtoIcmpV6, 8, "default", Action::drop},
        {"icmp unreachable anywhere", 20, "198.18.20.11", "198.18.30.11", kProtoIcmp, 3, "icmp-errors", Action::allow},
        {"icmpv6 too big anywhere", 20, "2001:db8:20::11", "2001:db8:30::11", kProtoIcmpV6, 2, "icmp-errors", Action::allow},
        {"monitoring scrapes web", 20, "198.18.20.99", "198.18.10.12", kProtoTcp, 9100, "monitor", Action::allow},
        {"monitoring pings db", 20, "198.18.20.99", "198.18.30.11", kProtoIcmp, 8, "monitor", Action::allow},
        {"monitoring cannot reach lab", 20, "198.18.20.99", "198.19.1.5", kProtoTcp, 9100, "default", Action::drop},
        // segments
        {"unknown vlan is dropped before any rule", 99, "198.18.10.11", "198.18.20.11", kProtoTcp, 8080, "unknown-segment", Action::drop},
    };
    for (const auto& c : cases) {
        INFO(c.what);
        const Decision d = cls.classify(key_of(c));
        const std::string got = d.reason == DecisionReason::rule             ? rules.at(static_cast<size_t>(d.rule)).id
                                : d.reason == DecisionReason::unknown_segment ? "unknown-segment"
                                                                              : "default";
        CHECK(got == c.rule);
        CHECK(action_name(d.action) == std::string(action_name(c.action)));
    }
}

TEST_CASE("linear classifier: the default action decides what no rule matches", "[classifier][linear]") {
    for (const char* def : {"drop", "reject", "allow"}) {
        const std::string y = fmt::format("version: 1\nsegments: [{{name: s, vlan: 0}}]\nrules: []\ndefault: {}\n", def);
        auto r = load_policy_text(y, "d.yaml");
        REQUIRE(r.policy);
        const LinearClassifier cls(RuleSet::compile(*r.policy));
        PacketKey k;
        k.src = *IpAddr::parse("198.18.0.1");
        k.dst = *IpAddr::parse("198.18.0.2");
        k.proto = kProtoUdp;
        const auto d = cls.classify(k);
        CHECK(d.reason == DecisionReason::default_action);
        CHECK(d.rule == -1);
        CHECK(std::string(action_name(d.action)) == def);
    }
}

TEST_CASE("identity resolution: endpoints, nested cidrs, families", "[classifier][ruleset]") {
    const auto rs = demo_rules();
    const auto web1 = rs->resolve(*IpAddr::parse("198.18.10.11"));
    CHECK(rs->endpoints().at(web1.endpoint).name == "web-1");
    CHECK(rs->resolve(*IpAddr::parse("2001:db8:10::11")).endpoint == web1.endpoint);
    CHECK(rs->resolve(*IpAddr::parse("2001:db8:10::12")).endpoint == kExternal);
    // External classes: boss /32 inside admins /24 inside lab /16 inside internet /0.
    const auto& names = rs->group_names();
    auto groups_of = [&](const char* addr) {
        std::vector<std::string> out;
        const auto& set = rs->identity_classes().at(rs->resolve(*IpAddr::parse(addr)).identity_class);
        for (size_t g = 0; g < names.size(); ++g)
            if (set.test(g)) out.push_back(names[g]);
        return out;
    };
    CHECK(groups_of("198.19.200.7") == std::vector<std::string>{"admins", "admin-boss", "lab-net", "internet"});
    CHECK(groups_of("198.19.200.6") == std::vector<std::string>{"admins", "lab-net", "internet"});
    CHECK(groups_of("198.19.0.0") == std::vector<std::string>{"lab-net", "internet"});
    CHECK(groups_of("198.18.255.255") == std::vector<std::string>{"internet"});
    CHECK(groups_of("0.0.0.0") == std::vector<std::string>{"internet"});
    CHECK(groups_of("255.255.255.255") == std::vector<std::string>{"internet"});
    CHECK(groups_of("2001:db8:ad:ffff:ffff:ffff:ffff:ffff") == std::vector<std::string>{"admins", "internet"});
    CHECK(groups_of("2001:db8:ae::") == std::vector<std::string>{"internet"});
    CHECK(groups_of("198.18.10.11") == std::vector<std::string>{"shop-web", "web-seg"});
    // Endpoints with the same memberships share a class; ranges cover each family from its zero address.
    CHECK(rs->external_ranges(Family::v4).front().first.str() == "0.0.0.0");
    CHECK(rs->external_ranges(Family::v6).front().first.str() == "::");
    CHECK(rs->segment_of(30) == 3);
    CHECK(rs->segment_of(31) == kNoSegment);
    CHECK(rs->segment_of(5000) == kNoSegment);
}

namespace {

// Random packets over the policy's interesting addresses, ports, protocols and VLANs.
size_t count_mismatches(const LinearClassifier& reference, const PolicyClassifier& fast, uint32_t seed, int count) {
    const char* const v4[] = {"198.18.10.11", "198.18.10.12", "198.18.20.11", "198.18.30.11", "198.18.20.99",
                              "198.19.1.5",   "198.19.1.6",   "198.19.200.7", "198.19.200.8", "198.19.200.255",
                              "198.19.201.0", "203.0.113.9",  "0.0.0.0",      "255.255.255.255"};
    const char* const v6[] = {"2001:db8:10::11", "2001:db8:20::11", "2001:db8:30::11", "2001:db8:ad::1",
                              "2001:db8:ad:ffff:ffff:ffff:ffff:ffff", "2001:db8:ae::", "::", "2001:db8:99::1"};
    const uint8_t protos[] = {kProtoTcp, kProtoUdp, kProtoIcmp, kProtoIcmpV6, kProtoSctp, 47, 0};
    const uint16_t ports[] = {0, 1, 22, 53, 443, 5432, 8079, 8080, 8089, 8090, 9100, 65535};
    const uint8_t vlans[] = {0, 10, 20, 30, 99};
    auto next = [&](uint32_t n) { seed = seed * 1103515245u + 12345u; return (seed >> 8) % n; };
    size_t mismatches = 0;
    for (int i = 0; i < count; ++i) {
        PacketKey k;
        const bool six = next(3) == 0;
        k.vlan = vlans[next(5)];
        k.src = *IpAddr::parse(six ? v6[next(8)] : v4[next(14)]);
        k.dst = *IpAddr::parse(six ? v6[next(8)] : v4[next(14)]);
        k.proto = protos[next(7)];
        k.sport = ports[next(12)];
        k.dport = ports[next(12)];
        k.icmp_type = static_cast<uint8_t>(next(4) == 0 ? 8 : next(256));
        k.icmp_code = static_cast<uint8_t>(next(16));
        const Decision want = reference.classify(k);
        const Decision got = fast.classify(k);
        if (!(want == got) && ++mismatches <= 5)
            FAIL_CHECK(fmt::format("{}: {} -> {} proto {} dport {} type {}: want rule {} got {}",
                                   fast.engine().name(), k.src.str(), k.dst.str(), k.proto, k.dport, k.icmp_type,
                                   want.rule, got.rule));
    }
    return mismatches;
}

}  // namespace

TEST_CASE("policy through the field engines agrees with the linear reference", "[classifier][policy]") {
    const auto rs = demo_rules();
    const LinearClassifier reference(rs);
    for (const char* engine : {"linear", "trie"}) {
        const PolicyClassifier fast(rs, engine);
        CHECK(count_mismatches(reference, fast, 12345, 20000) == 0);
    }
}

TEST_CASE("retagging an endpoint updates the engines in place and decides like a recompiled policy",
          "[classifier][policy][retag]") {
    auto loaded = load_policy_text(kPolicy, "classifier.yaml");
    REQUIRE(loaded.policy);
    Policy policy = *loaded.policy;
    const auto index_of = [&](const char* name) {
        for (uint32_t e = 0; e < policy.endpoints.size(); ++e)
            if (policy.endpoints[e].name == name) return e;
        FAIL("no endpoint " << name);
        return 0u;
    };
    struct Step {
        const char* endpoint;
        Tags tags;
        bool expect_new_rules;
    };
    const Step steps[] = {
        // shop-app in the web segment: memberships nobody had -> rules selecting shop-app get entries
        {"web-2", {{"app", "shop"}, {"tier", "app"}}, true},
        {"lab-1", {{"app", "shop"}, {"tier", "db"}, {"env", "canary"}}, true},
        // no group at all: an existing class (only `any` rules select it), nothing to insert
        {"mon-1", {}, false},
        {"web-1", {{"role", "monitoring"}}, true},  // monitoring + web-seg: new
        {"lab-1", {{"app", "lab"}}, false},         // back to web-seg only, which it had at the start
    };
    for (const char* engine : {"trie", "linear"}) {
        PolicyClassifier fast(RuleSet::compile(policy), engine);
        Policy expected = policy;
        uint32_t seed = 777;
        for (const auto& step : steps) {
            INFO(engine << ": retag " << step.endpoint);
            const uint32_t e = index_of(step.endpoint);
            const auto result = fast.retag(e, step.tags);
            CHECK((result.field_rules_added > 0) == step.expect_new_rules);
            CHECK_FALSE(result.rebuilt);
            expected.endpoints[e].tags = step.tags;
            const LinearClassifier recompiled(RuleSet::compile(expected));
            CHECK(count_mismatches(recompiled, fast, seed++, 20000) == 0);
            CHECK(fast.ruleset().endpoints()[e].tags == step.tags);
        }
    }
}
