// Events as JSON lines (control/event_log.hpp): the fields an operator reads, and the flood guard.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "control/event_log.hpp"
#include "rules/policy_loader.hpp"

using tagwall::control::EventLimiter;
using tagwall::control::format_event;
using tagwall::dataplane::Event;
using tagwall::dataplane::Reason;

namespace {

std::shared_ptr<const tagwall::rules::RuleSet> rules() {
    auto loaded = tagwall::rules::load_policy_text(R"(version: 1
segments: [{name: lan, vlan: 10}]
endpoints:
  - {name: db-1, segment: lan, ip: [198.18.30.31], tags: {tier: db}}
groups:
  db: {tags: {tier: db}}
  outside: {cidr: ["0.0.0.0/0"]}
services: {postgres: [tcp/5432]}
rules:
  - {id: no-db, from: outside, to: db, services: [postgres], action: reject}
default: drop
)", "t.yaml");
    REQUIRE(loaded.policy);
    return tagwall::rules::RuleSet::compile(*loaded.policy);
}

Event event(int32_t rule, Reason reason) {
    Event e;
    e.ip = true;
    e.src = *tagwall::rules::IpAddr::parse("198.19.200.10");
    e.dst = *tagwall::rules::IpAddr::parse("198.18.30.31");
    e.proto = 6;
    e.sport = 40000;
    e.dport = 5432;
    e.vlan = 10;
    e.rule = rule;
    e.reason = reason;
    e.action = rule >= 0 ? tagwall::rules::Action::reject : tagwall::rules::Action::drop;
    e.generation = 3;
    e.time_ns = 1'500'000'000;
    return e;
}

}  // namespace

TEST_CASE("event log: one JSON object with names, not indices", "[events]") {
    const auto rs = rules();
    const auto j = nlohmann::json::parse(format_event(event(0, Reason::rule), *rs, {"uplink"}, 1'700'000'000'000'000'000ull));
    CHECK(j["verdict"] == "reject");
    CHECK(j["rule"] == "no-db");
    CHECK(j["reason"] == "rule");
    CHECK(j["generation"] == 3);
    CHECK(j["segment"] == "lan");
    CHECK(j["port"] == "uplink");
    CHECK(j["src"] == "198.19.200.10");
    CHECK(j["dst_endpoint"] == "db-1");
    CHECK(j["src_endpoint"].is_null());
    CHECK(j["proto"] == "tcp");
    CHECK(j["dport"] == 5432);
    CHECK(j["time"] == "2023-11-14T22:13:21.500Z");
    const auto d = nlohmann::json::parse(format_event(event(-1, Reason::spoofed_mac), *rs, {"uplink"}, 0));
    CHECK(d["rule"].is_null());
    CHECK(d["reason"] == "spoofed");
    CHECK(d["detail"] == "spoofed_mac");
}

TEST_CASE("event log: the flood guard limits each rule and reason on its own", "[events]") {
    const auto rs = rules();
    EventLimiter limiter(10, 20);  // 10 per second, bursts of 20
    uint64_t now = 1'000'000'000;
    int rule_written = 0, spoof_written = 0;
    for (int i = 0; i < 100; ++i) {
        rule_written += limiter.admit(event(0, Reason::rule), now);
        spoof_written += limiter.admit(event(-1, Reason::spoofed_ip), now);
    }
    CHECK(rule_written == 20);
    CHECK(spoof_written == 20);
    CHECK(limiter.suppressed_total() == 160);
    const auto s = limiter.take_suppressed(*rs);
    REQUIRE(s.size() == 2);
    CHECK(limiter.take_suppressed(*rs).empty());
    now += 1'000'000'000;  // a second later: 10 more
    int later = 0;
    for (int i = 0; i < 100; ++i) later += limiter.admit(event(0, Reason::rule), now);
    CHECK(later == 10);
}
