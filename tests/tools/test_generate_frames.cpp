// The frames of `tagwall-bench generate` (tools/bench_generate_frames.hpp): what it writes parses with
// correct checksums, its marker is read back (and never found in a frame it did not write), and the
// new-connections exchange it answers in place is one a stateful firewall passes: SYN, SYN-ACK, ACK,
// RST through a real Pipeline, each allowed, the connection closed at the end.
#include <catch2/catch.hpp>

#include <memory>
#include <vector>

#include "dataplane/checksum.hpp"
#include "dataplane/parser.hpp"
#include "dataplane/pipeline.hpp"
#include "rules/policy_loader.hpp"
#include "tools/bench_generate_frames.hpp"

using namespace tagwall::tools::gen;
using namespace tagwall::dataplane;
using tagwall::rules::Action;

namespace {

const char* const kPolicy = R"(version: 1
segments:
  - {name: outside, vlan: 0}
  - {name: web, vlan: 10}
endpoints:
  - {name: web-1, segment: web, ip: [198.18.10.11], mac: "52:54:00:00:10:11", tags: {tier: web}}
groups:
  web: {tags: {tier: web}}
  internet: {cidr: ["0.0.0.0/0"]}
services:
  https: [tcp/443]
rules:
  - {id: web-in, from: internet, to: web, services: [https], action: allow}
default: drop
)";

constexpr uint8_t kWorkload = 0, kUplink = 1;
constexpr uint32_t kClient = 0xC6336410;  // 198.51.100.16
constexpr uint32_t kWeb = 0xC6120A0B;     // 198.18.10.11
const Mac kClientMac{0x02, 0, 0, 0, 0, 1};
const Mac kWebMac{0x52, 0x54, 0, 0, 0x10, 0x11};

TcpSegment syn(uint16_t dport = 443, uint16_t payload = 0, uint8_t pair = 3) {
    return {kClientMac, kWebMac, 10, kClient, kWeb, 40000, dport, 1000, 0, kTcpSyn, payload, pair, Side::client};
}

bool checksums_ok(const std::vector<uint8_t>& f, size_t l3) {
    const uint8_t* ip = f.data() + l3;
    if (internet_checksum(ip, 20) != 0) return false;
    const size_t total = size_t{ip[2]} << 8 | ip[3];
    const uint64_t pseudo = internet_sum(ip + 12, 8) + 6 + (total - 20);
    return internet_checksum(ip + 20, total - 20, pseudo) == 0;
}

struct Wire {
    std::unique_ptr<Pipeline> pipe;
    uint64_t now = 1'000'000'000;
    Wire() {
        auto loaded = tagwall::rules::load_policy_text(kPolicy, "t.yaml");
        REQUIRE(loaded.policy);
        const auto rs = tagwall::rules::RuleSet::compile(*loaded.policy);
        PipelineConfig cfg;
        cfg.flows.capacity = 1024;
        cfg.flows.seed = 1;
        cfg.fragments.capacity = 64;
        cfg.fragments.seed = 1;
        pipe = std::make_unique<Pipeline>(std::make_shared<const IdentityTable>(*rs),
                                          std::make_shared<const tagwall::rules::PolicyClassifier>(rs, "trie"), 1,
                                          std::vector<PortConfig>{{PortRole::workload, kUplink}, {PortRole::uplink, kWorkload}},
                                          cfg);
    }
    Verdict run(const std::vector<uint8_t>& f, uint8_t port) {
        now += 1'000'000;
        const FrameRef ref{f.data(), static_cast<uint16_t>(f.size()), port};
        Verdict v;
        pipe->process(std::span<const FrameRef>(&ref, 1), now, std::span<Verdict>(&v, 1));
        return v;
    }
};

}  // namespace

TEST_CASE("generate frames: written segments parse, with correct lengths and checksums", "[generate]") {
    for (const uint16_t vlan : {uint16_t{0}, uint16_t{10}}) {
        for (const uint16_t length : {uint16_t{60}, uint16_t{590}, uint16_t{1514}}) {
            TcpSegment s = syn();
            s.vlan = vlan;
            s.payload = payload_for_length(vlan, length);
            std::vector<uint8_t> f(frame_length(vlan, s.payload));
            REQUIRE(write_segment(f, s) == f.size());
            CHECK(f.size() == length);
            ParsedPacket p;
            REQUIRE_FALSE(parse_frame(f, p).has_value());
            CHECK(p.kind == PacketKind::ipv4);
            CHECK(p.vlan == vlan);
            CHECK(p.dport == 443);
            CHECK(checksums_ok(f, vlan != 0 ? 18 : 14));
        }
    }
    std::vector<uint8_t> small(59);
    CHECK(write_segment(small, syn()) == 0);
}

TEST_CASE("generate frames: the marker names the pair and side, and only in frames of ours", "[generate]") {
    std::vector<uint8_t> f(60);
    TcpSegment s = syn();
    s.pair = 77;
    s.side = Side::server;
    s.flags = kTcpAck;
    write_segment(f, s);
    const Marker m = read_marker(f);
    CHECK(m.ours);
    CHECK(m.pair == 77);
    CHECK(m.side == Side::server);
    CHECK(m.tcp_flags == kTcpAck);
    std::vector<uint8_t> other = f;
    other[18 + 4] = 0x12;  // another IPv4 id: not our marker
    CHECK_FALSE(read_marker(other).ours);
    std::vector<uint8_t> arp = f;
    arp[16] = 0x08;
    arp[17] = 0x06;
    CHECK_FALSE(read_marker(arp).ours);
    CHECK_FALSE(read_marker(std::span<const uint8_t>(f.data(), 30)).ours);
}

TEST_CASE("generate frames: the trial number travels in the DSCP bits, the checksum follows", "[generate]") {
    std::vector<uint8_t> f(60);
    TcpSegment s = syn();
    s.trial = 5;
    write_segment(f, s);
    CHECK(read_marker(f).trial == 5);
    REQUIRE(set_trial(f, 70));  // mod 64
    CHECK(read_marker(f).trial == 6);
    CHECK(checksums_ok(f, 18));
    std::vector<uint8_t> arp = f;
    arp[16] = 0x08;
    arp[17] = 0x06;
    CHECK_FALSE(set_trial(arp, 1));
    // An answer keeps the trial of the segment it answers.
    REQUIRE(answer_in_place(f, Side::server) == Answer::syn_ack);
    CHECK(read_marker(f).trial == 6);
}

TEST_CASE("generate frames: a new connection answered in place passes a stateful firewall", "[generate]") {
    Wire wire;
    std::vector<uint8_t> f(60);
    write_segment(f, syn());
    Verdict v = wire.run(f, kUplink);
    CHECK(v.action == Action::allow);
    CHECK(v.out_port == kWorkload);

    // Answers only come from the side the frame was sent to.
    std::vector<uint8_t> copy = f;
    CHECK(answer_in_place(copy, Side::client) == Answer::none);
    CHECK(copy == f);

    REQUIRE(answer_in_place(f, Side::server) == Answer::syn_ack);
    CHECK(checksums_ok(f, 18));
    Marker m = read_marker(f);
    CHECK((m.side == Side::server && m.pair == 3 && m.tcp_flags == (kTcpSyn | kTcpAck)));
    v = wire.run(f, kWorkload);
    CHECK(v.action == Action::allow);
    CHECK(v.reason == Reason::established);

    REQUIRE(answer_in_place(f, Side::client) == Answer::ack);
    CHECK(checksums_ok(f, 18));
    v = wire.run(f, kUplink);
    CHECK(v.action == Action::allow);
    CHECK(v.reason == Reason::established);

    REQUIRE(answer_in_place(f, Side::server) == Answer::rst);
    CHECK(checksums_ok(f, 18));
    v = wire.run(f, kWorkload);
    CHECK(v.action == Action::allow);
    CHECK(v.reason == Reason::established);
    CHECK(wire.pipe->reason_count(Reason::rst_out_of_window) == 0);

    CHECK(answer_in_place(f, Side::client) == Answer::done);
    // The RST was obeyed: the one connection is closed.
    std::vector<FlowState> states;
    wire.pipe->conntrack().table().for_each([&](FlowHandle, const FlowEntry& e) { states.push_back(e.state); });
    CHECK(states == std::vector<FlowState>{FlowState::tcp_close});
}

TEST_CASE("generate frames: both sides of a connection have one key, other connections another", "[generate]") {
    std::vector<uint8_t> f(60);
    write_segment(f, syn());
    const uint64_t key = connection_key_of(f);
    CHECK(key == connection_key(kClient, kWeb, 40000, 443));
    REQUIRE(answer_in_place(f, Side::server) == Answer::syn_ack);
    CHECK(connection_key_of(f) == key);
    TcpSegment other = syn();
    other.sport = 40001;
    write_segment(f, other);
    CHECK(connection_key_of(f) != key);
    f[18 + 4] = 0;  // not our marker
    CHECK(connection_key_of(f) == 0);
}

TEST_CASE("generate frames: a SYN to a port the policy refuses is dropped, and nothing answers a drop", "[generate]") {
    Wire wire;
    std::vector<uint8_t> f(60);
    write_segment(f, syn(9));
    const Verdict v = wire.run(f, kUplink);
    CHECK(v.action == Action::drop);
    CHECK(v.reason == Reason::default_action);
}
