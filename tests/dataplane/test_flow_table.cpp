// The connection table and the protocol-independent part of connection tracking: keys, handles,
// eviction under a full table, timeouts and aging with injected time, the UDP / ICMP echo / other
// pseudo-states, ICMP errors as `related`, and memory that does not grow after construction.
#include <catch2/catch.hpp>

#include <cstring>
#include <random>
#include <set>
#include <utility>
#include <string>
#include <vector>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "dataplane/conntrack.hpp"
#include "dataplane/conntrack_packets.hpp"
#include "dataplane/flow_table.hpp"

using namespace tagwall::dataplane;
using namespace tagwall::dataplane::testing;
using tagwall::rules::IpAddr;

namespace {

constexpr uint64_t kSec = FlowTimeouts::kSecond;
constexpr uint64_t kMs = kSec / 1000;
constexpr uint16_t kW = 65535;
const FlowOrigin kOrigin{.rule_index = 1, .generation = 5, .src_identity = 10, .dst_identity = 20};

IpAddr host(uint32_t n) { return IpAddr::v4(0xC6120000u + n); }  // 198.18.x.y

// Opens a TCP connection client:cport -> server:443 and takes it as far as `steps` segments of the
// usual exchange: SYN, SYN+ACK, ACK, client FIN, server ACK, server FIN, client ACK.
FlowHandle tcp_flow(ConnTrack& ct, const IpAddr& c, uint16_t cport, const IpAddr& s, uint64_t now, int steps = 3) {
    const ParsedPacket seq[] = {
        tcp(c, cport, s, 443, "S", 1000, 0, kW),      tcp(s, 443, c, cport, "S.", 5000, 1001, kW),
        tcp(c, cport, s, 443, ".", 1001, 5001, kW),   tcp(c, cport, s, 443, "F.", 1001, 5001, kW),
        tcp(s, 443, c, cport, ".", 5001, 1002, kW),   tcp(s, 443, c, cport, "F.", 5001, 1002, kW),
        tcp(c, cport, s, 443, ".", 1002, 5002, kW),
    };
    CtResult r = ct.track(seq[0], 0, now);
    if (r.action != CtAction::classify) return kNoFlow;
    r = ct.create(seq[0], 0, kOrigin, now);
    if (r.action != CtAction::pass) return kNoFlow;
    for (int i = 1; i < steps; ++i)
        if (ct.track(seq[i], 0, now).action != CtAction::pass) return kNoFlow;
    return r.handle;
}

FlowHandle open(ConnTrack& ct, const ParsedPacket& p, uint64_t now, uint16_t segment = 0) {
    const CtResult r = ct.track(p, segment, now);
    if (r.action != CtAction::classify) return kNoFlow;
    const CtResult c = ct.create(p, segment, kOrigin, now);
    return c.action == CtAction::pass ? c.handle : kNoFlow;
}

}  // namespace

// --- keys ---

TEST_CASE("flow keys are the same both ways and tell the direction", "[flows]") {
    const IpAddr a = addr("198.18.10.11"), b = addr("198.18.30.11");
    const DirectedKey ab = make_flow_key(10, a, b, 6, 40000, 443);
    const DirectedKey ba = make_flow_key(10, b, a, 6, 443, 40000);
    CHECK(ab.key == ba.key);
    CHECK(ab.src_is_b != ba.src_is_b);
    CHECK_FALSE(ab.src_is_b);  // a sorts first
    // Every field separates keys.
    CHECK_FALSE(make_flow_key(11, a, b, 6, 40000, 443).key == ab.key);
    CHECK_FALSE(make_flow_key(10, a, b, 17, 40000, 443).key == ab.key);
    CHECK_FALSE(make_flow_key(10, a, b, 6, 40001, 443).key == ab.key);
    CHECK_FALSE(make_flow_key(10, a, b, 6, 443, 40000).key == ab.key);  // ports belong to their address
    // The same bytes in another family are another address.
    IpAddr a6 = a, b6 = b;
    a6.family = b6.family = tagwall::rules::Family::v6;
    CHECK_FALSE(make_flow_key(10, a6, b6, 6, 40000, 443).key == ab.key);
    // One address, two ports: the ports decide the order.
    const DirectedKey lo = make_flow_key(0, a, a, 17, 1000, 2000), hi = make_flow_key(0, a, a, 17, 2000, 1000);
    CHECK(lo.key == hi.key);
    CHECK(lo.src_is_b != hi.src_is_b);
}

TEST_CASE("the fast path's IPv4 key words are make_flow_key's key", "[flows]") {
    // Random pairs, and pairs whose addresses are equal (the ports decide), both ways.
    std::mt19937_64 rng(7);
    const FlowTable table(FlowTableConfig{.capacity = 1024, .worker = 0, .seed = 99, .timeouts = {}});
    for (int i = 0; i < 2000; ++i) {
        const uint32_t s4 = static_cast<uint32_t>(rng()), d4 = i % 4 == 0 ? s4 : static_cast<uint32_t>(rng());
        const auto sport = static_cast<uint16_t>(i % 8 == 0 ? 443 : rng()), dport = static_cast<uint16_t>(rng());
        const auto vlan = static_cast<uint16_t>(rng() & 0xFFF);
        IpAddr src, dst;
        std::memcpy(src.bytes.data(), &s4, 4);
        std::memcpy(dst.bytes.data(), &d4, 4);
        const DirectedKey want = make_flow_key(vlan, src, dst, 6, sport, dport);
        bool src_is_b = !want.src_is_b;
        const auto words = ipv4_key_words(vlan, s4, d4, 6, sport, dport, src_is_b);
        INFO("pair " << i);
        CHECK(src_is_b == want.src_is_b);
        for (size_t w = 0; w < kFlowKeyWords; ++w) CHECK(words[w] == key_word(want.key, w));
        const FlowTable::Slots a = table.slots_for(want.key), b = table.slots_for_words(words);
        CHECK((a.first == b.first && a.second == b.second && a.sig == b.sig));
    }
}

TEST_CASE("echo keys keep the two ping directions apart, identifier 0 included", "[flows]") {
    const IpAddr a = addr("2001:db8::a"), b = addr("2001:db8::b");
    for (const uint16_t id : {uint16_t{0}, uint16_t{77}}) {
        const DirectedKey a_pings_b = make_echo_key(0, a, b, 58, id, true);
        const DirectedKey b_answers_a = make_echo_key(0, b, a, 58, id, false);
        const DirectedKey b_pings_a = make_echo_key(0, b, a, 58, id, true);
        CHECK(a_pings_b.key == b_answers_a.key);
        CHECK_FALSE(a_pings_b.src_is_b);
        CHECK(b_answers_a.src_is_b);
        CHECK_FALSE(a_pings_b.key == b_pings_a.key);
    }
}

// --- the table itself ---

TEST_CASE("flow table: an entry and its attribution start afresh when a slot is reused", "[flows]") {
    FlowTable t(FlowTableConfig{.capacity = 4, .seed = 1});
    const FlowKey k1 = make_flow_key(0, host(1), host(2), 6, 1000, 80).key;
    const FlowKey k2 = make_flow_key(0, host(3), host(4), 6, 1000, 80).key;
    const InsertResult r1 = t.lookup_or_insert(k1, FlowState::tcp_syn_sent, 1);
    REQUIRE(r1.status == InsertStatus::inserted);
    CHECK(t.attribution(r1.handle).rule_index == -1);
    t.attribution(r1.handle) = FlowAttribution{.rule_index = 7, .identity = {1, 2}};
    t.entry(r1.handle).generation = 3;
    t.entry(r1.handle).source_mac[1] = {2, 0, 0, 0, 0, 9};
    t.erase(r1.handle);
    const InsertResult r2 = t.lookup_or_insert(k2, FlowState::tcp_syn_sent, 2);
    REQUIRE(r2.status == InsertStatus::inserted);
    REQUIRE(r2.handle == r1.handle);  // the free stack gives the slot back first
    CHECK(t.attribution(r2.handle).rule_index == -1);
    CHECK(t.attribution(r2.handle).identity == std::array<uint32_t, 2>{0, 0});
    CHECK(t.entry(r2.handle).generation == 0);
    CHECK(is_zero_mac(t.entry(r2.handle).source_mac[0]));
    CHECK(is_zero_mac(t.entry(r2.handle).source_mac[1]));
}

TEST_CASE("flow table: insert, look up, erase; handles stay put", "[flows]") {
    FlowTable t(FlowTableConfig{.capacity = 1000, .worker = 3, .seed = 1});
    CHECK(t.capacity() == 1000);
    CHECK(t.bucket_count() * FlowTable::kBucketSlots >= 1250);
    CHECK(t.memory_bytes() == t.bucket_count() * 64 + 1000 * (128 + 16 + 4));  // entry, attribution, free stack
    std::vector<FlowKey> keys;
    std::vector<FlowHandle> handles;
    for (uint32_t i = 0; i < 1000; ++i) {
        keys.push_back(make_flow_key(0, host(i), host(5000), 17, static_cast<uint16_t>(i), 53).key);
        const InsertResult r = t.lookup_or_insert(keys.back(), FlowState::udp_unreplied, 1);
        REQUIRE(r.status == InsertStatus::inserted);
        handles.push_back(r.handle);
    }
    CHECK(std::set<FlowHandle>(handles.begin(), handles.end()).size() == 1000);
    CHECK(t.size() == 1000);
    CHECK(t.lookup_or_insert(keys[7], FlowState::udp_unreplied, 1).status == InsertStatus::existed);
    for (uint32_t i = 0; i < 1000; i += 2) t.erase(handles[i]);
    CHECK(t.size() == 500);
    for (uint32_t i = 0; i < 1000; ++i) {
        INFO("key " << i);
        CHECK(t.lookup(keys[i], 2) == (i % 2 ? handles[i] : kNoFlow));
    }
    size_t visited = 0;
    t.for_each([&](FlowHandle h, const FlowEntry& e) {
        ++visited;
        CHECK(e.state == FlowState::udp_unreplied);
        CHECK(h % 2 == 1);  // a fresh pool hands out indices in order
    });
    CHECK(visited == 500);
    // Flow ids: worker, slot and policy epoch.
    FlowEntry& e = t.entry(handles[1]);
    e.generation = 0x12345;
    const FlowId id = t.id(handles[1]);
    CHECK(id.worker == 3);
    CHECK(FlowId::unpack(id.packed()) == id);
    CHECK(t.resolve(id) == handles[1]);
    e.generation = 0x12346;  // re-verified under another generation: the old id is stale
    CHECK(t.resolve(id) == kNoFlow);
    CHECK(t.resolve(t.id(handles[0])) == kNoFlow);  // a free slot
}

// A key lives in its second bucket only when its first was too full.  A small table run at full load
// through many rounds of inserts (lookup_or_insert, or insert_new after a lookup found nothing) and
// erases in random order puts plenty of keys in second buckets and takes them out again: every lookup
// must agree with a model of what is in the table.
TEST_CASE("flow table: keys in their second bucket are found until erased, under churn", "[flows]") {
    FlowTable t(FlowTableConfig{.capacity = 64, .seed = 5});
    std::vector<FlowKey> keys;
    for (uint32_t i = 0; i < 200; ++i)
        keys.push_back(make_flow_key(0, host(i % 50), host(9000), 6, static_cast<uint16_t>(1000 + i), 443).key);
    std::vector<FlowHandle> held(keys.size(), kNoFlow);
    uint64_t rng = 12345;
    auto next = [&rng] {
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        return static_cast<uint32_t>(rng >> 33);
    };
    size_t inserted = 0, erased = 0, full = 0;
    for (int step = 0; step < 20000; ++step) {
        const size_t k = next() % keys.size();
        if (held[k] == kNoFlow) {
            // Both ways in: lookup_or_insert, and insert_new after a lookup that found nothing.
            const bool after_miss = step % 2 == 0;
            if (after_miss) REQUIRE(t.lookup(keys[k], 1) == kNoFlow);
            const InsertResult r = after_miss ? t.insert_new(keys[k], t.slots_for(keys[k]), FlowState::tcp_established, 1)
                                              : t.lookup_or_insert(keys[k], FlowState::tcp_established, 1);
            REQUIRE(r.status != InsertStatus::existed);
            if (r.status == InsertStatus::full) {
                ++full;
            } else {
                held[k] = r.handle;
                t.entry(r.handle).flags |= kFlowAssured;  // never evicted: the model stays exact
                ++inserted;
            }
        } else if (next() % 2 == 0) {
            t.erase(held[k]);
            held[k] = kNoFlow;
            ++erased;
        }
        if (step % 97 == 0) {
            size_t live = 0;
            for (size_t i = 0; i < keys.size(); ++i) {
                INFO("step " << step << ", key " << i);
                REQUIRE(t.lookup(keys[i], 2) == held[i]);
                live += held[i] != kNoFlow;
            }
            REQUIRE(t.size() == live);
        }
    }
    CHECK(inserted > 2000);
    CHECK(erased > 2000);
    CHECK(full > 0);  // the table was driven to full load, where second buckets fill
}

TEST_CASE("a table full of established connections refuses new ones", "[flows]") {
    ConnTrack ct(FlowTableConfig{.capacity = 64, .seed = 11});
    const IpAddr server = host(1);
    for (uint16_t i = 0; i < 64; ++i) REQUIRE(tcp_flow(ct, host(100 + i), 40000, server, i * kSec) != kNoFlow);
    REQUIRE(ct.table().size() == 64);
    for (uint16_t i = 0; i < 200; ++i) {
        const ParsedPacket syn = tcp(host(1000 + i), 50000, server, 443, "S", 1, 0, kW);
        REQUIRE(ct.track(syn, 0, 100 * kSec).action == CtAction::classify);
        const CtResult r = ct.create(syn, 0, kOrigin, 100 * kSec);
        CHECK(r.action == CtAction::drop);
        CHECK(r.reason == Reason::flow_table_full);
    }
    CHECK(ct.table().stats().refused == 200);
    CHECK(ct.table().stats().evicted == 0);
    for (uint16_t i = 0; i < 64; ++i)  // every established connection still works
        CHECK(ct.track(tcp(host(100 + i), 40000, server, 443, "P.", 1001, 5001, kW, 10), 0, 100 * kSec).action ==
              CtAction::pass);
}

TEST_CASE("half-open connections make room for new ones, oldest first", "[flows]") {
    ConnTrack ct(FlowTableConfig{.capacity = 64, .seed = 12});
    const IpAddr server = host(1);
    std::vector<FlowHandle> old;
    for (uint16_t i = 0; i < 64; ++i) old.push_back(tcp_flow(ct, host(100 + i), 40000, server, (1 + i) * kMs, 1));
    REQUIRE(ct.table().size() == 64);
    // 16 new SYNs: each evicts an old half-open entry; the new ones, younger than all the old ones,
    // are never the oldest in view.
    for (uint16_t i = 0; i < 16; ++i) {
        INFO("new SYN " << i);
        REQUIRE(tcp_flow(ct, host(1000 + i), 50000, server, 1000 * kMs, 1) != kNoFlow);
    }
    CHECK(ct.table().size() == 64);
    CHECK(ct.table().stats().evicted == 16);
    CHECK(ct.table().stats().refused == 0);
    for (uint16_t i = 0; i < 16; ++i)
        CHECK(ct.find(tcp(host(1000 + i), 50000, server, 443, "S", 1000, 0, kW), 0, 1000 * kMs) != kNoFlow);
    size_t old_left = 0;
    for (uint16_t i = 0; i < 64; ++i)
        old_left += ct.find(tcp(host(100 + i), 40000, server, 443, "S", 1000, 0, kW), 0, 1000 * kMs) != kNoFlow;
    CHECK(old_left == 48);
}

TEST_CASE("eviction never takes an established connection", "[flows]") {
    ConnTrack ct(FlowTableConfig{.capacity = 64, .seed = 13});
    const IpAddr server = host(1);
    for (uint16_t i = 0; i < 64; ++i)  // alternately established and half-open
        REQUIRE(tcp_flow(ct, host(100 + i), 40000, server, (1 + i) * kMs, i % 2 ? 1 : 3) != kNoFlow);
    for (uint16_t i = 0; i < 200; ++i) {  // a SYN flood, several times what the half-open ones hold
        const ParsedPacket syn = tcp(host(1000 + i), 50000, server, 443, "S", 1, 0, kW);
        ct.track(syn, 0, 1000 * kMs);
        const CtResult r = ct.create(syn, 0, kOrigin, 1000 * kMs);
        CHECK(r.action == CtAction::pass);  // 32 evictable slots are always in view
    }
    CHECK(ct.table().size() == 64);
    CHECK(ct.table().stats().evicted == 200);
    for (uint16_t i = 0; i < 64; i += 2) {
        INFO("established connection " << i);
        CHECK(ct.track(tcp(host(100 + i), 40000, server, 443, "P.", 1001, 5001, kW, 10), 0, 1000 * kMs).action ==
              CtAction::pass);
    }
}

TEST_CASE("an expired entry is reclaimed before anything is evicted", "[flows]") {
    ConnTrack ct(FlowTableConfig{.capacity = 8, .seed = 14});
    for (uint16_t i = 0; i < 8; ++i) REQUIRE(tcp_flow(ct, host(100 + i), 40000, host(1), kSec) != kNoFlow);
    // All established (5 days); none can be evicted until they expire.
    const ParsedPacket syn = tcp(host(99), 1, host(1), 443, "S", 1, 0, kW);
    CHECK(ct.create(syn, 0, kOrigin, 2 * kSec).reason == Reason::flow_table_full);
    const uint64_t later = kSec + FlowTimeouts{}.tcp_established;
    CHECK(ct.create(syn, 0, kOrigin, later).action == CtAction::pass);
    CHECK(ct.table().stats().evicted == 0);
    CHECK(ct.table().stats().expired == 1);
}

// --- time ---

TEST_CASE("each state has its timeout", "[flows]") {
    const FlowTimeouts defaults;
    const IpAddr c = host(10), s = host(20);
    struct Row {
        const char* name;
        FlowState state;
        uint64_t timeout;
        std::vector<ParsedPacket> packets;
    };
    const auto tcp_steps = [&](int n) {
        const std::vector<ParsedPacket> all{
            tcp(c, 1234, s, 80, "S", 1000, 0, kW),    tcp(s, 80, c, 1234, "S.", 5000, 1001, kW),
            tcp(c, 1234, s, 80, ".", 1001, 5001, kW), tcp(c, 1234, s, 80, "F.", 1001, 5001, kW),
            tcp(s, 80, c, 1234, ".", 5001, 1002, kW), tcp(s, 80, c, 1234, "F.", 5001, 1002, kW),
            tcp(c, 1234, s, 80, ".", 1002, 5002, kW)};
        return std::vector<ParsedPacket>(all.begin(), all.begin() + n);
    };
    std::vector<ParsedPacket> reset = tcp_steps(3);
    reset.push_back(tcp(c, 1234, s, 80, "R", 1001, 0, 0));
    const std::vector<Row> rows{
        {"SYN_SENT", FlowState::tcp_syn_sent, 120 * kSec, tcp_steps(1)},
        {"SYN_RECV", FlowState::tcp_syn_recv, 60 * kSec, tcp_steps(2)},
        {"ESTABLISHED", FlowState::tcp_established, 5 * 86400 * kSec, tcp_steps(3)},
        {"FIN_WAIT", FlowState::tcp_fin_wait, 120 * kSec, tcp_steps(4)},
        {"CLOSE_WAIT", FlowState::tcp_close_wait, 60 * kSec, tcp_steps(5)},
        {"LAST_ACK", FlowState::tcp_last_ack, 60 * kSec, tcp_steps(6)},
        {"TIME_WAIT", FlowState::tcp_time_wait, 120 * kSec, tcp_steps(7)},
        {"CLOSE", FlowState::tcp_close, 10 * kSec, reset},
        {"UDP unreplied", FlowState::udp_unreplied, 30 * kSec, {udp(c, 5353, s, 53)}},
        {"UDP replied", FlowState::udp_replied, 120 * kSec, {udp(c, 5353, s, 53), udp(s, 53, c, 5353)}},
        {"ICMP unreplied", FlowState::icmp_unreplied, 30 * kSec, {echo_request(c, s, 9)}},
        {"ICMP replied", FlowState::icmp_replied, 30 * kSec, {echo_request(c, s, 9), echo_reply(s, c, 9)}},
        {"other unreplied", FlowState::other_unreplied, 60 * kSec, {ip_packet(c, s, 47)}},
        {"other replied", FlowState::other_replied, 60 * kSec, {ip_packet(c, s, 47), ip_packet(s, c, 47)}},
    };
    for (const Row& row : rows) {
        INFO(row.name);
        CHECK(defaults.of(row.state) == row.timeout);
        ConnTrack ct(FlowTableConfig{.capacity = 4, .seed = 2});
        const uint64_t t0 = 1000 * kSec;
        REQUIRE(open(ct, row.packets[0], t0) != kNoFlow);
        for (size_t i = 1; i < row.packets.size(); ++i)
            REQUIRE(ct.track(row.packets[i], 0, t0).action == CtAction::pass);
        const FlowHandle h = ct.find(row.packets[0], 0, t0);
        REQUIRE(h != kNoFlow);
        CHECK(ct.table().entry(h).state == row.state);
        CHECK(ct.find(row.packets[0], 0, t0 + row.timeout - 1) == h);
        CHECK(ct.find(row.packets[0], 0, t0 + row.timeout) == kNoFlow);
        CHECK(ct.expire(t0 + row.timeout - 1, 4) == 0);
        CHECK(ct.expire(t0 + row.timeout, 4) == 1);
        CHECK(ct.table().size() == 0);
    }
}

TEST_CASE("timeouts are configurable, and every passed packet restarts its connection's", "[flows]") {
    FlowTimeouts timeouts;
    timeouts.udp_unreplied = 5 * kSec;
    ConnTrack ct(FlowTableConfig{.capacity = 4, .seed = 2, .timeouts = timeouts});
    const ParsedPacket p = udp(host(1), 5000, host(2), 53);
    REQUIRE(open(ct, p, 100 * kSec) != kNoFlow);
    REQUIRE(ct.track(p, 0, 104 * kSec).action == CtAction::pass);
    CHECK(ct.find(p, 0, 108 * kSec) != kNoFlow);
    CHECK(ct.find(p, 0, 109 * kSec) == kNoFlow);
    // A late packet finds nothing: the lookup frees the dead entry and the policy is asked again.
    CHECK(ct.track(p, 0, 109 * kSec).action == CtAction::classify);
    CHECK(ct.table().size() == 0);
}

TEST_CASE("a segment of an expired TCP connection is invalid_no_flow", "[flows]") {
    ConnTrack ct(FlowTableConfig{.capacity = 4, .seed = 2});
    REQUIRE(tcp_flow(ct, host(1), 40000, host(2), kSec) != kNoFlow);
    const ParsedPacket data = tcp(host(1), 40000, host(2), 443, "P.", 1001, 5001, kW, 100);
    const uint64_t last = kSec + FlowTimeouts{}.tcp_established - 1;
    CHECK(ct.track(data, 0, last).action == CtAction::pass);  // refreshes the connection
    const CtResult r = ct.track(data, 0, last + FlowTimeouts{}.tcp_established);
    CHECK(r.action == CtAction::drop);
    CHECK(r.reason == Reason::invalid_no_flow);
}

TEST_CASE("aging runs in bounded batches from a cursor", "[flows]") {
    ConnTrack ct(FlowTableConfig{.capacity = 64, .seed = 3});
    for (uint16_t i = 0; i < 40; ++i) REQUIRE(open(ct, udp(host(i), 1000, host(500), 53), kSec) != kNoFlow);
    for (uint16_t i = 0; i < 10; ++i)  // ten of them answered: 120 s instead of 30
        REQUIRE(ct.track(udp(host(500), 53, host(i), 1000), 0, kSec).action == CtAction::pass);
    const uint64_t later = 40 * kSec;
    size_t freed = 0, calls = 0;
    while (calls < 7) {  // 7 batches of 10 slots cover the 64-slot pool
        const size_t n = ct.expire(later, 10);
        CHECK(n <= 10);
        freed += n;
        ++calls;
    }
    CHECK(freed == 30);
    CHECK(ct.table().size() == 10);
    CHECK(ct.expire(later, 1000) == 0);          // nothing more to free; the budget is capped at capacity
    CHECK(ct.expire(200 * kSec, 1000) == 10);
    CHECK(ct.table().stats().expired == 40);
}

// --- pseudo-states ---

TEST_CASE("UDP: unreplied until an answer, then replied and assured", "[flows]") {
    ConnTrack ct(FlowTableConfig{.capacity = 16, .seed = 4});
    const IpAddr c = addr("2001:db8:10::11"), s = addr("2001:db8:30::11");
    const ParsedPacket query = udp(c, 5353, s, 53, 40), answer = udp(s, 53, c, 5353, 200);
    CHECK(ct.track(query, 10, kSec).action == CtAction::classify);
    const CtResult opened = ct.create(query, 10, kOrigin, kSec);
    REQUIRE(opened.action == CtAction::pass);
    CHECK(opened.reason == Reason::rule);
    const FlowEntry& e = ct.table().entry(opened.handle);
    CHECK(e.state == FlowState::udp_unreplied);
    CHECK(ct.track(query, 10, 2 * kSec).reason == Reason::established);
    CHECK(e.state == FlowState::udp_unreplied);
    CHECK((e.flags & kFlowAssured) == 0);
    const CtResult back = ct.track(answer, 10, 3 * kSec);
    CHECK(back.action == CtAction::pass);
    CHECK(back.reply);
    CHECK(back.handle == opened.handle);
    CHECK(e.state == FlowState::udp_replied);
    CHECK((e.flags & (kFlowAssured | kFlowSeenReply)) == (kFlowAssured | kFlowSeenReply));
    CHECK(e.packets == std::array<uint64_t, 2>{2, 1});
    CHECK(e.bytes == std::array<uint64_t, 2>{2 * (40 + 8 + 40), 40 + 8 + 200});
    CHECK(e.last_seen == 3 * kSec);
    // Another segment is another connection.
    CHECK(ct.track(answer, 11, 3 * kSec).action == CtAction::classify);
}

TEST_CASE("two packets of one burst open one connection", "[flows]") {
    ConnTrack ct(FlowTableConfig{.capacity = 16, .seed = 4});
    const ParsedPacket p = udp(host(1), 1000, host(2), 53);
    // The worker looks up the whole burst first: both packets miss.
    REQUIRE(ct.track(p, 0, kSec).action == CtAction::classify);
    REQUIRE(ct.track(p, 0, kSec).action == CtAction::classify);
    const CtResult first = ct.create(p, 0, kOrigin, kSec);
    const CtResult second = ct.create(p, 0, kOrigin, kSec);
    CHECK(first.reason == Reason::rule);
    CHECK(second.action == CtAction::pass);
    CHECK(second.reason == Reason::established);
    CHECK(second.handle == first.handle);
    CHECK(ct.table().size() == 1);
    CHECK(ct.table().entry(first.handle).packets[0] == 2);
    ct.close(first.handle);
    CHECK(ct.table().size() == 0);
    CHECK(ct.track(p, 0, kSec).action == CtAction::classify);
}

TEST_CASE("other protocols and SCTP: pseudo-states by ports", "[flows]") {
    ConnTrack ct(FlowTableConfig{.capacity = 16, .seed = 4});
    ParsedPacket sctp = ip_packet(host(1), host(2), 132);
    sctp.sport = 3868;
    sctp.dport = 3868;
    ParsedPacket back = ip_packet(host(2), host(1), 132);
    back.sport = 3868;
    back.dport = 3868;
    REQUIRE(open(ct, sctp, kSec) != kNoFlow);
    CHECK(ct.track(back, 0, kSec).reply);
    sctp.sport = 3869;
    CHECK(ct.track(sctp, 0, kSec).action == CtAction::classify);
    // ICMP in IPv6 (protocol 1) is just another protocol.
    const ParsedPacket odd = ip_packet(addr("2001:db8::1"), addr("2001:db8::2"), 1);
    CHECK(ct.track(odd, 0, kSec).action == CtAction::classify);
    CHECK(ct.create(odd, 0, kOrigin, kSec).action == CtAction::pass);
    CHECK(ct.table().entry(ct.find(odd, 0, kSec)).state == FlowState::other_unreplied);
}

TEST_CASE("what connection tracking does not track", "[flows]") {
    ConnTrack ct(FlowTableConfig{.capacity = 16, .seed = 4});
    ParsedPacket arp;
    arp.kind = PacketKind::arp;
    CHECK(ct.track(arp, 0, kSec).action == CtAction::classify_stateless);
    // ICMP messages that are neither echo nor error: timestamp, router solicitation, MLD report.
    for (const auto& [family_v4, type] : {std::pair{true, 13}, std::pair{false, 133}, std::pair{false, 143}}) {
        const ParsedPacket p = icmp(family_v4 ? host(1) : addr("fe80::1"), family_v4 ? host(2) : addr("ff02::2"),
                                    static_cast<uint8_t>(type));
        INFO("ICMP type " << type);
        CHECK(ct.track(p, 0, kSec).action == CtAction::classify_stateless);
        const CtResult c = ct.create(p, 0, kOrigin, kSec);
        CHECK(c.action == CtAction::pass);
        CHECK(c.handle == kNoFlow);
    }
    // A later fragment belongs to the fragment table.
    ParsedPacket later = udp(host(1), 1, host(2), 2);
    later.l4_present = false;
    later.fragment = true;
    later.fragment_offset = 1480;
    CHECK(ct.track(later, 0, kSec).reason == Reason::fragment_no_first);
    CHECK(ct.table().size() == 0);
}

// --- ICMP ---

TEST_CASE("ICMP echo: requests open, replies answer, unsolicited replies drop", "[flows]") {
    for (const bool v6 : {false, true}) {
        INFO((v6 ? "ICMPv6" : "ICMP"));
        ConnTrack ct(FlowTableConfig{.capacity = 16, .seed = 5});
        const IpAddr a = addr(v6 ? "2001:db8::a" : "198.18.0.10"), b = addr(v6 ? "2001:db8::b" : "198.18.0.11");
        for (const uint16_t id : {uint16_t{0}, uint16_t{4242}}) {
            INFO("id " << id);
            const CtResult unsolicited = ct.track(echo_reply(b, a, id), 0, kSec);
            CHECK(unsolicited.action == CtAction::drop);
            CHECK(unsolicited.reason == Reason::invalid_icmp_no_flow);
            CHECK(ct.create(echo_reply(b, a, id), 0, kOrigin, kSec).reason == Reason::invalid_icmp_no_flow);
            const FlowHandle h = open(ct, echo_request(a, b, id), kSec);
            REQUIRE(h != kNoFlow);
            CHECK(ct.track(echo_request(a, b, id), 0, kSec).handle == h);  // the next ping of the same run
            const CtResult reply = ct.track(echo_reply(b, a, id), 0, kSec);
            CHECK(reply.action == CtAction::pass);
            CHECK(reply.reply);
            CHECK(ct.table().entry(h).state == FlowState::icmp_replied);
            // b pinging a with the same identifier is another exchange, which the policy must allow.
            CHECK(ct.track(echo_request(b, a, id), 0, kSec).action == CtAction::classify);
            CHECK(ct.track(echo_reply(a, b, id), 0, kSec).reason == Reason::invalid_icmp_no_flow);
            // Another identifier is another exchange.
            CHECK(ct.track(echo_reply(b, a, static_cast<uint16_t>(id + 1)), 0, kSec).action == CtAction::drop);
        }
    }
}

TEST_CASE("ICMP errors pass only as related to a live connection", "[flows]") {
    ConnTrack ct(FlowTableConfig{.capacity = 16, .seed = 6});
    const IpAddr c = host(11), s = host(22), router = host(99), other = host(33);
    const FlowHandle dns = open(ct, udp(c, 5353, s, 53), kSec);
    const FlowHandle web = tcp_flow(ct, c, 40000, s, kSec);
    const FlowHandle ping = open(ct, echo_request(c, s, 7), kSec);
    REQUIRE(dns != kNoFlow);
    REQUIRE(web != kNoFlow);
    REQUIRE(ping != kNoFlow);
    struct Row {
        const char* name;
        ParsedPacket packet;
        CtAction action;
        Reason reason;
        FlowHandle handle;
        bool reply;
    };
    ParsedPacket cut = icmp_error(s, c, c, 5353, s, 53, 17);
    cut.inner_l4_present = false;
    ParsedPacket no_l3 = icmp_error(s, c, c, 5353, s, 53, 17);
    no_l3.inner_l3_present = false;
    const std::vector<Row> rows{
        {"port unreachable from the server, quoting the query", icmp_error(s, c, c, 5353, s, 53, 17),
         CtAction::pass, Reason::related, dns, true},
        {"time exceeded from a router on the way", icmp_error(router, c, c, 5353, s, 53, 17), CtAction::pass,
         Reason::related, dns, true},
        {"an error about the answer, sent to the server", icmp_error(c, s, s, 53, c, 5353, 17), CtAction::pass,
         Reason::related, dns, false},
        {"an error about the TCP connection", icmp_error(router, s, s, 443, c, 40000, 6), CtAction::pass,
         Reason::related, web, false},
        {"an error about the echo request", icmp_error(router, c, c, 7, s, 7, 1, 8), CtAction::pass,
         Reason::related, ping, true},
        {"an error about the echo reply", icmp_error(router, s, s, 7, c, 7, 1, 0), CtAction::pass, Reason::related,
         ping, false},
        {"quoting a port with no connection", icmp_error(s, c, c, 5354, s, 53, 17), CtAction::drop,
         Reason::related_no_flow, kNoFlow, false},
        {"quoting another protocol", icmp_error(s, c, c, 5353, s, 53, 132), CtAction::drop,
         Reason::related_no_flow, kNoFlow, false},
        {"addressed to a third host (CVE-2019-5598 pattern)", icmp_error(s, other, c, 5353, s, 53, 17),
         CtAction::drop, Reason::related_no_flow, kNoFlow, false},
        {"quoted header cut before its ports", cut, CtAction::drop, Reason::related_no_flow, kNoFlow, false},
        {"quoted IP header missing", no_l3, CtAction::drop, Reason::related_no_flow, kNoFlow, false},
    };
    for (const Row& row : rows) {
        INFO(row.name);
        const CtResult r = ct.track(row.packet, 0, 2 * kSec);
        CHECK(r.action == row.action);
        CHECK(r.reason == row.reason);
        if (r.action == CtAction::pass) {
            CHECK(r.handle == row.handle);
            CHECK(r.reply == row.reply);
        }
    }
    // Another segment has other connections.
    CHECK(ct.track(icmp_error(s, c, c, 5353, s, 53, 17), 30, 2 * kSec).reason == Reason::related_no_flow);
    // Errors refresh nothing and are not counted on the connection.
    CHECK(ct.table().entry(dns).last_seen == kSec);
    CHECK(ct.table().entry(dns).packets[1] == 0);
    // A dead connection relates nothing.
    CHECK(ct.track(icmp_error(s, c, c, 5353, s, 53, 17), 0, kSec + FlowTimeouts{}.udp_unreplied).reason ==
          Reason::related_no_flow);
}

TEST_CASE("ICMP errors quoting an echo match only the exchange the quoted message belongs to", "[flows]") {
    // CVE-2024-6640 pattern.  The tracker used to try the quoted identifier both as a request from
    // inner_src and as a reply to it, whatever the quoted type: an error quoting a request the
    // responder never sent, a reply the requester never sent, or any non-echo ICMP message whose bytes
    // 4-5 equal the identifier (0 for most) passed as `related` to the echo exchange.
    for (const bool v6 : {false, true}) {
        INFO((v6 ? "ICMPv6" : "ICMP"));
        ConnTrack ct(FlowTableConfig{.capacity = 16, .seed = 6});
        const IpAddr c = v6 ? addr("2001:db8::11") : host(11), s = v6 ? addr("2001:db8::22") : host(22);
        const IpAddr router = v6 ? addr("2001:db8::99") : host(99);
        const uint8_t proto = v6 ? 58 : 1, request = v6 ? 128 : 8, reply = v6 ? 129 : 0;
        const uint8_t unreachable = v6 ? 1 : 3, solicitation = 135;
        const FlowHandle ping = open(ct, echo_request(c, s, 0), kSec);
        REQUIRE(ping != kNoFlow);
        struct Row {
            const char* name;
            ParsedPacket packet;
            Reason reason;
        };
        const std::vector<Row> rows{
            {"the requester's request, to the requester", icmp_error(router, c, c, 0, s, 0, proto, request),
             Reason::related},
            {"the responder's reply, to the responder", icmp_error(router, s, s, 0, c, 0, proto, reply),
             Reason::related},
            {"a request the responder never sent", icmp_error(router, s, s, 0, c, 0, proto, request),
             Reason::related_no_flow},
            {"a reply the requester never sent", icmp_error(router, c, c, 0, s, 0, proto, reply),
             Reason::related_no_flow},
            {"a quoted unreachable (identifier bytes 0)", icmp_error(router, c, c, 0, s, 0, proto, unreachable),
             Reason::related_no_flow},
            {"a quoted neighbour solicitation", icmp_error(router, c, c, 0, s, 0, proto, solicitation),
             Reason::related_no_flow},
        };
        for (const Row& row : rows) {
            INFO(row.name);
            const CtResult r = ct.track(row.packet, 0, 2 * kSec);
            CHECK(r.reason == row.reason);
            CHECK(r.action == (row.reason == Reason::related ? CtAction::pass : CtAction::drop));
        }
    }
}

TEST_CASE("ICMPv6 packet too big is related to its IPv6 connection", "[flows]") {
    ConnTrack ct(FlowTableConfig{.capacity = 16, .seed = 6});
    const IpAddr c = addr("2001:db8:10::11"), s = addr("2001:db8:30::11"), router = addr("2001:db8:ff::1");
    REQUIRE(tcp_flow(ct, c, 40000, s, kSec) != kNoFlow);
    ParsedPacket ptb = icmp_error(router, s, s, 443, c, 40000, 6);
    ptb.icmp_type = 2;
    ptb.icmp_code = 0;
    const CtResult r = ct.track(ptb, 0, kSec);
    CHECK(r.action == CtAction::pass);
    CHECK(r.reason == Reason::related);
    // An IPv4 header quoted in an ICMPv6 error relates nothing.
    ParsedPacket mixed = icmp_error(router, s, host(1), 443, host(2), 40000, 6);
    CHECK(ct.track(mixed, 0, kSec).reason == Reason::related_no_flow);
}

// --- memory ---

#if defined(__GLIBC__)
TEST_CASE("after construction nothing allocates: a flood, handshakes and aging leave the heap as it was", "[flows]") {
    ConnTrack ct(FlowTableConfig{.capacity = 4096, .seed = 8});
    const FlowOrigin origin{.rule_index = 0, .generation = 1, .src_identity = 0, .dst_identity = 0};
    auto flood = [&](uint32_t round, uint64_t now) {
        for (uint32_t i = 0; i < 20000; ++i) {  // 5x the capacity in SYNs, UDP and pings
            const IpAddr src = IpAddr::v4(0x0A000000u + round * 20000 + i), dst = IpAddr::v4(0xC6120001u);
            const ParsedPacket syn = tcp(src, 1000, dst, 443, "S", i, 0, 1000);
            if (ct.track(syn, 0, now).action == CtAction::classify) ct.create(syn, 0, origin, now);
            const ParsedPacket synack = tcp(dst, 443, src, 1000, "S.", 7, i + 1, 1000);
            ct.track(synack, 0, now);
            const ParsedPacket q = udp(src, 2000, dst, 53);
            if (ct.track(q, 0, now).action == CtAction::classify) ct.create(q, 0, origin, now);
            ct.track(echo_request(src, dst, 1), 0, now);
            ct.expire(now, 64);
        }
    };
    flood(0, kSec);  // first use: pages of the pool are touched, nothing else
    const size_t before = mallinfo2().uordblks;
    for (uint32_t round = 1; round < 4; ++round) flood(round, round * 100 * kSec);
    const size_t after = mallinfo2().uordblks;
    CHECK(after == before);
    CHECK(ct.table().size() <= 4096);
    CHECK(ct.table().stats().evicted > 0);
}
#endif
