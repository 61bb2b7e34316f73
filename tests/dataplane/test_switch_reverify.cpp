// Switch mode (MAC table, learning, flooding), re-verification after a policy change (`revoked`),
// events and reject answers, through the worker Pipeline.
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "dataplane/events.hpp"
#include "dataplane/frames.hpp"
#include "dataplane/mac_table.hpp"
#include "dataplane/parser.hpp"
#include "dataplane/pipeline.hpp"
#include "rules/policy_loader.hpp"

using namespace tagwall::dataplane;
using tagwall::rules::Action;
using tagwall::rules::RuleSet;
using tagwall::test::Bytes;
using tagwall::test::Frame;
using tagwall::test::ip;
using tagwall::test::mac;

namespace {

constexpr uint64_t kSec = 1'000'000'000;

// web-1 and db-1 on workload ports of their own, a router behind the uplink.  Two policies: v1 lets
// web reach db on postgres and logs it; v2 no longer does (and rejects ssh from web); v3 allows
// postgres again through another rule.
std::string policy(const std::string& rules) {
    return R"(version: 1
segments:
  - {name: lan, vlan: 0}
  - {name: dmz, vlan: 10}
endpoints:
  - {name: web-1, segment: lan, ip: [198.18.10.11, "2001:db8:10::11"], mac: "52:54:00:00:10:11", tags: {tier: web}}
  - {name: db-1, segment: lan, ip: [198.18.10.31], mac: "52:54:00:00:10:31", tags: {tier: db}}
groups:
  web: {tags: {tier: web}}
  db: {tags: {tier: db}}
  internet: {cidr: ["0.0.0.0/0", "::/0"]}
services:
  postgres: [tcp/5432]
  ssh: [tcp/22]
  https: [tcp/443]
  dns: [udp/53]
rules:
)" + rules + "default: drop\n";
}
const std::string kV1 = policy("  - {id: web-db, from: web, to: db, services: [postgres], action: allow, log: true}\n"
                               "  - {id: web-dns, from: web, to: internet, services: [dns], action: allow}\n");
const std::string kV2 = policy("  - {id: no-ssh, from: web, to: db, services: [ssh], action: reject}\n"
                               "  - {id: web-db-no, from: web, to: db, services: [postgres], action: reject}\n");
const std::string kV3 = policy("  - {id: web-https, from: web, to: internet, services: [https], action: allow}\n"
                               "  - {id: web-db-2, from: web, to: db, services: [postgres], action: allow}\n");

constexpr uint8_t kWebPort = 0, kDbPort = 1, kUplink = 2;
const auto kWebMac = mac("52:54:00:00:10:11");
const auto kDbMac = mac("52:54:00:00:10:31");
const auto kRouterMac = mac("00:00:5e:00:01:01");
const auto kBroadcast = mac("ff:ff:ff:ff:ff:ff");
const auto kWeb = ip("198.18.10.11");
const auto kDb = ip("198.18.10.31");
const auto kResolver = ip("198.19.53.53");

struct Compiled {
    std::shared_ptr<const IdentityTable> ids;
    std::shared_ptr<const tagwall::rules::PolicyClassifier> cls;
};
Compiled compile(const std::string& text) {
    auto loaded = tagwall::rules::load_policy_text(text, "t.yaml");
    REQUIRE(loaded.policy);
    const auto rs = RuleSet::compile(*loaded.policy);
    return {std::make_shared<const IdentityTable>(*rs), std::make_shared<const tagwall::rules::PolicyClassifier>(rs, "trie")};
}

struct Switch {
    EventRing events{64};
    std::unique_ptr<Pipeline> pipe;
    uint64_t now = 10 * kSec;

    explicit Switch(bool l2_switch = true, uint32_t reject_burst = 100) {
        const Compiled c = compile(kV1);
        PipelineConfig cfg;
        cfg.flows.capacity = 1024;
        cfg.flows.seed = 1;
        cfg.fragments.capacity = 64;
        cfg.fragments.seed = 1;
        cfg.l2_switch = l2_switch;
        cfg.macs.seed = 1;
        cfg.events = &events;
        cfg.reject_burst = reject_burst;
        cfg.reject_rate = 1;
        pipe = std::make_unique<Pipeline>(
            c.ids, c.cls, 1,
            std::vector<PortConfig>{{PortRole::workload, kNoPort}, {PortRole::workload, kNoPort}, {PortRole::uplink, kNoPort}},
            cfg);
    }
    Verdict run(const Bytes& b, uint8_t port) {
        now += 1'000'000;
        const FrameRef f{b.data(), static_cast<uint16_t>(b.size()), port};
        Verdict v;
        pipe->process(std::span<const FrameRef>(&f, 1), now, std::span<Verdict>(&v, 1));
        return v;
    }
    Verdict web_to_db(uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags) {
        return run(Frame().eth(kWebMac, kDbMac).ipv4(kWeb, kDb).tcp(40000, dport, {.seq = seq, .ack = ack, .flags = flags}).bytes(),
                   kWebPort);
    }
    Verdict db_to_web(uint16_t sport, uint32_t seq, uint32_t ack, uint8_t flags) {
        return run(Frame().eth(kDbMac, kWebMac).ipv4(kDb, kWeb).tcp(sport, 40000, {.seq = seq, .ack = ack, .flags = flags}).bytes(),
                   kDbPort);
    }
    std::vector<Event> drain() {
        std::vector<Event> out;
        Event e;
        while (events.pop(e)) out.push_back(e);
        return out;
    }
};

}  // namespace

TEST_CASE("mac table: learn, look up, move, age", "[switch]") {
    MacTable t({.capacity = 64, .aging_ns = 300 * kSec, .seed = 1});
    CHECK(t.port_of(0, kWebMac, kSec) == MacTable::kUnknown);
    t.learn(0, kWebMac, 3, kSec);
    CHECK(t.port_of(0, kWebMac, 2 * kSec) == 3);
    CHECK(t.port_of(10, kWebMac, 2 * kSec) == MacTable::kUnknown);  // per VLAN
    t.learn(0, kWebMac, 4, 3 * kSec);                                // the station moved
    CHECK(t.port_of(0, kWebMac, 3 * kSec) == 4);
    CHECK(t.moves() == 1);
    CHECK(t.size(3 * kSec) == 1);
    CHECK(t.port_of(0, kWebMac, 3 * kSec + 300 * kSec) == MacTable::kUnknown);  // aged out
    CHECK(t.size(400 * kSec) == 0);
}

TEST_CASE("mac table: a full table replaces the stalest entries, never grows", "[switch]") {
    MacTable t({.capacity = 16, .aging_ns = 1000 * kSec, .seed = 7});
    for (uint32_t i = 0; i < 200; ++i) {
        Mac m{0x02, 0, 0, static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i), 1};
        t.learn(0, m, static_cast<uint8_t>(i % 5), (i + 1) * kSec);
        CHECK(t.port_of(0, m, (i + 1) * kSec) == i % 5);  // the newest is always found
    }
    CHECK(t.capacity() == 16);
    CHECK(t.size(201 * kSec) <= 16);
}

TEST_CASE("event ring: in order, and a full ring counts what it loses", "[events]") {
    EventRing r(4);
    for (int i = 0; i < 6; ++i) {
        Event e;
        e.rule = i;
        const bool pushed = r.push(e);
        CHECK(pushed == (i < 4));
    }
    CHECK(r.lost() == 2);
    Event e;
    for (int i = 0; i < 4; ++i) {
        REQUIRE(r.pop(e));
        CHECK(e.rule == i);
    }
    CHECK_FALSE(r.pop(e));
}

TEST_CASE("switch: broadcast and unknown unicast flood, learned MACs go to their port", "[switch]") {
    Switch s;
    // web-1 asks for db-1 (ARP broadcast): flooded; web-1's MAC is learned on its port
    auto v = s.run(Frame().eth(kWebMac, kBroadcast).arp(1, kWebMac, kWeb, Mac{}, kDb).bytes(), kWebPort);
    CHECK(v.action == Action::allow);
    CHECK(v.out_port == kFlood);
    // db-1 answers (unicast to web-1, now known): to web-1's port only
    v = s.run(Frame().eth(kDbMac, kWebMac).arp(2, kDbMac, kDb, kWebMac, kWeb).bytes(), kDbPort);
    CHECK(v.out_port == kWebPort);
    // web-1 to db-1 (learned from its ARP reply)
    v = s.web_to_db(5432, 1000, 0, kTcpSyn);
    CHECK(v.action == Action::allow);
    CHECK(v.out_port == kDbPort);
    CHECK(s.pipe->flooded() == 1);
    CHECK(s.pipe->port_counters(kUplink).tx == 1);  // the flood's copy
    CHECK(s.pipe->port_counters(kDbPort).tx == 2);  // the flood's copy and the SYN

    // web-1 to a resolver behind the router: the router's MAC is unknown -> flooded, then learned
    // from the router's answer on the uplink
    v = s.run(Frame().eth(kWebMac, kRouterMac).ipv4(kWeb, kResolver).udp(5555, 53).bytes(), kWebPort);
    CHECK(v.action == Action::allow);
    CHECK(v.out_port == kFlood);
    v = s.run(Frame().eth(kRouterMac, kWebMac).ipv4(kResolver, kWeb).udp(53, 5555).bytes(), kUplink);
    CHECK(v.reason == Reason::established);
    CHECK(v.out_port == kWebPort);
    v = s.run(Frame().eth(kWebMac, kRouterMac).ipv4(kWeb, kResolver).udp(5555, 53).bytes(), kWebPort);
    CHECK(v.out_port == kUplink);
}

TEST_CASE("switch: an uplink frame cannot move a workload's MAC; a frame to its own port goes nowhere", "[switch]") {
    Switch s;
    REQUIRE(s.run(Frame().eth(kWebMac, kBroadcast).arp(1, kWebMac, kWeb, Mac{}, kDb).bytes(), kWebPort).out_port == kFlood);
    // the uplink claims web-1's MAC (an external source, so SpoofGuard does not object on an uplink)
    auto v = s.run(Frame().eth(kWebMac, kBroadcast).arp(1, kWebMac, ip("198.19.1.1"), Mac{}, kDb).bytes(), kUplink);
    CHECK(v.out_port == kFlood);
    CHECK(s.pipe->mac_table().port_of(0, kWebMac, s.now) == kWebPort);
    // an unbound MAC on a workload port (spoofing an address fails SpoofGuard first) is not learned
    v = s.run(Frame().eth(mac("02:00:00:00:00:99"), kBroadcast).arp(1, mac("02:00:00:00:00:99"), kWeb, Mac{}, kDb).bytes(),
              kWebPort);
    CHECK(v.action == Action::drop);
    CHECK(s.pipe->mac_table().port_of(0, mac("02:00:00:00:00:99"), s.now) == MacTable::kUnknown);
    // db-1's ARP reply addressed to web-1 but arriving on web-1's own port: filtered
    s.run(Frame().eth(kDbMac, kBroadcast).arp(1, kDbMac, kDb, Mac{}, kWeb).bytes(), kDbPort);
    v = s.run(Frame().eth(kWebMac, kDbMac).arp(2, kWebMac, kWeb, kDbMac, kDb).bytes(), kWebPort);
    CHECK(v.out_port == kDbPort);
}

TEST_CASE("re-verification: a policy that no longer allows an open connection revokes it", "[pipeline][revoked]") {
    Switch s(false);
    REQUIRE(s.web_to_db(5432, 1000, 0, kTcpSyn).reason == Reason::rule);
    REQUIRE(s.db_to_web(5432, 9000, 1001, kTcpSyn | kTcpAck).reason == Reason::established);
    REQUIRE(s.web_to_db(5432, 1001, 9001, kTcpAck).reason == Reason::established);
    REQUIRE(s.pipe->conntrack().table().size() == 1);

    const Compiled v2 = compile(kV2);
    s.pipe->set_policy(v2.ids, v2.cls, 2);
    // the reply direction is the first to arrive after the change: revoked, with the new rule's action
    auto v = s.db_to_web(5432, 9001, 1001, kTcpAck | kTcpPsh);
    CHECK(v.reason == Reason::revoked);
    CHECK(v.action == Action::reject);
    CHECK(v.rule == 1);  // web-db-no, which decides the connection's original direction now
    CHECK(info(v.reason).word == "revoked");
    CHECK(s.pipe->conntrack().table().size() == 0);
    CHECK(s.pipe->revoked() == 1);
    // and the connection is gone: the next segment has no state
    v = s.web_to_db(5432, 1001, 9001, kTcpAck);
    CHECK(v.reason == Reason::invalid_no_flow);
}

TEST_CASE("re-verification: a revoked TCP connection is reset both ways", "[pipeline][revoked][reject]") {
    Switch s(false);
    s.pipe = nullptr;
    // wire mode this time: web-1's port paired with db-1's
    const Compiled c = compile(kV1);
    PipelineConfig cfg;
    cfg.flows.capacity = 64;
    cfg.fragments.capacity = 16;
    s.pipe = std::make_unique<Pipeline>(c.ids, c.cls, 1,
                                        std::vector<PortConfig>{{PortRole::workload, kDbPort}, {PortRole::workload, kWebPort}},
                                        cfg);
    REQUIRE(s.web_to_db(5432, 1000, 0, kTcpSyn).reason == Reason::rule);
    REQUIRE(s.db_to_web(5432, 9000, 1001, kTcpSyn | kTcpAck).reason == Reason::established);
    const Compiled v2 = compile(kV2);
    s.pipe->set_policy(v2.ids, v2.cls, 2);
    const Bytes b = Frame().eth(kWebMac, kDbMac).ipv4(kWeb, kDb).tcp(40000, 5432, {.seq = 1001, .ack = 9001, .flags = kTcpAck | kTcpPsh})
                        .payload(10).bytes();
    const FrameRef f{b.data(), static_cast<uint16_t>(b.size()), kWebPort};
    Verdict v;
    s.pipe->process(std::span<const FrameRef>(&f, 1), s.now, std::span<Verdict>(&v, 1));
    REQUIRE(v.reason == Reason::revoked);
    REQUIRE(v.action == Action::reject);
    std::array<uint8_t, kRejectMaxFrame> out{};
    // to the sender: an RST answering its segment
    size_t n = s.pipe->reject_answer(f, s.now, out);
    REQUIRE(n > 0);
    ParsedPacket p;
    REQUIRE_FALSE(parse_frame(std::span<const uint8_t>(out.data(), n), p).has_value());
    CHECK(p.src == kDb);
    CHECK(p.dst == kWeb);
    CHECK(p.tcp_flags == kTcpRst);
    CHECK(p.tcp_seq == 9001);
    // to the other end: an RST continuing the sender's direction, out of the peer port
    uint8_t port = kNoPort;
    n = s.pipe->revoke_peer_rst(f, s.now, out, port);
    REQUIRE(n > 0);
    CHECK(port == kDbPort);
    REQUIRE_FALSE(parse_frame(std::span<const uint8_t>(out.data(), n), p).has_value());
    CHECK(p.src == kWeb);
    CHECK(p.dst == kDb);
    CHECK(p.src_mac == kWebMac);
    CHECK(p.dst_mac == kDbMac);
    CHECK(p.sport == 40000);
    CHECK(p.dport == 5432);
    CHECK(p.tcp_flags == kTcpRst);
    CHECK(p.tcp_seq == 1001);
    // a UDP packet has no such RST
    const Bytes u = Frame().eth(kWebMac, kDbMac).ipv4(kWeb, kDb).udp(1, 2).bytes();
    CHECK(s.pipe->revoke_peer_rst({u.data(), static_cast<uint16_t>(u.size()), kWebPort}, s.now, out, port) == 0);
}

TEST_CASE("re-verification: a connection still allowed takes the new rule and generation", "[pipeline][revoked]") {
    Switch s(false);
    REQUIRE(s.web_to_db(5432, 1000, 0, kTcpSyn).reason == Reason::rule);
    REQUIRE(s.db_to_web(5432, 9000, 1001, kTcpSyn | kTcpAck).reason == Reason::established);
    const Compiled v3 = compile(kV3);
    s.pipe->set_policy(v3.ids, v3.cls, 3);
    auto v = s.web_to_db(5432, 1001, 9001, kTcpAck);
    CHECK(v.action == Action::allow);
    CHECK(v.reason == Reason::established);
    const FlowEntry& e = s.pipe->conntrack().table().entry(0);
    CHECK(e.generation == 3);
    CHECK(s.pipe->conntrack().table().attribution(0).rule_index == 1);  // web-db-2
    CHECK(s.pipe->revoked() == 0);
    // UDP and ICMP-free flows re-verify from their original direction too: the DNS flow of v1 is
    // revoked under v3 (no dns rule), even when its reply comes first
    s.pipe->set_policy(compile(kV1).ids, compile(kV1).cls, 4);
    REQUIRE(s.run(Frame().eth(kWebMac, kRouterMac).ipv4(kWeb, kResolver).udp(5555, 53).bytes(), kWebPort).reason ==
            Reason::rule);
    s.pipe->set_policy(v3.ids, v3.cls, 5);
    v = s.run(Frame().eth(kRouterMac, kWebMac).ipv4(kResolver, kWeb).udp(53, 5555).bytes(), kUplink);
    CHECK(v.reason == Reason::revoked);
    CHECK(v.action == Action::drop);
}

TEST_CASE("events: drops, rejects and logged allows are reported, established packets are not", "[events]") {
    Switch s(false);
    s.drain();
    REQUIRE(s.web_to_db(5432, 1000, 0, kTcpSyn).reason == Reason::rule);   // web-db logs
    REQUIRE(s.db_to_web(5432, 9000, 1001, kTcpSyn | kTcpAck).reason == Reason::established);
    REQUIRE(s.web_to_db(22, 1, 0, kTcpSyn).action == Action::drop);         // default
    REQUIRE(s.run(Frame().eth(kWebMac, kRouterMac).ipv4(ip("198.18.10.99"), kDb).tcp(1, 5432, {.flags = kTcpSyn}).bytes(),
                  kWebPort).reason == Reason::spoofed_ip);
    REQUIRE(s.run(Bytes{1, 2, 3}, kWebPort).reason == Reason::truncated_ethernet);
    const auto ev = s.drain();
    REQUIRE(ev.size() == 4);
    CHECK(ev[0].action == Action::allow);
    CHECK(ev[0].rule == 0);
    CHECK(ev[0].ip);
    CHECK(ev[0].src == kWeb);
    CHECK(ev[0].dst == kDb);
    CHECK(ev[0].dport == 5432);
    CHECK(ev[0].generation == 1);
    CHECK(ev[1].action == Action::drop);
    CHECK(ev[1].reason == Reason::default_action);
    CHECK(ev[1].dport == 22);
    CHECK(ev[2].reason == Reason::spoofed_ip);
    CHECK(ev[3].reason == Reason::truncated_ethernet);
    CHECK_FALSE(ev[3].ip);
    CHECK(ev[3].port == kWebPort);
}

TEST_CASE("reject answers: an RST for a rejected SYN, within the rate limit", "[pipeline][reject]") {
    Switch s(false, 2);  // burst of 2, 1 per second
    const Compiled v2 = compile(kV2);
    s.pipe->set_policy(v2.ids, v2.cls, 2);
    std::array<uint8_t, kRejectMaxFrame> out{};
    for (int i = 0; i < 3; ++i) {
        const Bytes b =
            Frame().eth(kWebMac, kDbMac).ipv4(kWeb, kDb).tcp(static_cast<uint16_t>(41000 + i), 22, {.seq = 77, .flags = kTcpSyn}).bytes();
        const FrameRef f{b.data(), static_cast<uint16_t>(b.size()), kWebPort};
        Verdict v;
        s.pipe->process(std::span<const FrameRef>(&f, 1), s.now, std::span<Verdict>(&v, 1));
        REQUIRE(v.action == Action::reject);
        CHECK(v.out_port == kWebPort);
        const size_t n = s.pipe->reject_answer(f, s.now, out);
        if (i < 2) {
            REQUIRE(n > 0);
            ParsedPacket p;
            REQUIRE_FALSE(parse_frame(std::span<const uint8_t>(out.data(), n), p).has_value());
            CHECK(p.src == kDb);
            CHECK(p.dst == kWeb);
            CHECK(p.sport == 22);
            CHECK(p.dport == 41000 + i);
            CHECK(p.tcp_flags == (kTcpRst | kTcpAck));
            CHECK(p.tcp_ack == 78);
            CHECK(p.dst_mac == kWebMac);
        } else {
            CHECK(n == 0);  // over the burst
        }
    }
    CHECK(s.pipe->reason_count(Reason::reject_rate_limited) == 1);
}
