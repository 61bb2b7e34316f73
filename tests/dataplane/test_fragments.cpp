// The fragment table with injected time: datagrams as sequences of fragments, each with the verdict and
// reason it must get; then the hostile patterns (overlap, too many, orphan floods, CVE-2019-5597).
#include <catch2/catch.hpp>

#include <random>
#include <stdexcept>
#include <vector>

#include "dataplane/fragments.hpp"

using namespace tagwall::dataplane;
using tagwall::rules::IpAddr;

namespace {

constexpr uint64_t kSecond = 1'000'000'000;
constexpr uint64_t kMs = 1'000'000;

FragmentKey key(uint32_t id, uint8_t proto = 17, uint16_t vlan = 10) {
    FragmentKey k;
    k.src = IpAddr::parse("198.18.10.11")->bytes;
    k.dst = IpAddr::parse("198.18.30.11")->bytes;
    k.id = id;
    k.vlan = vlan;
    k.proto = proto;
    return k;
}

FragmentKey key6(uint32_t id) {
    FragmentKey k;
    k.src = IpAddr::parse("2001:db8:10::11")->bytes;
    k.dst = IpAddr::parse("2001:db8:30::11")->bytes;
    k.id = id;
    k.vlan = 10;
    k.family = tagwall::rules::Family::v6;
    return k;
}

FragmentConfig config(uint32_t capacity = 64) {
    FragmentConfig c;
    c.capacity = capacity;
    c.seed = 0x5eed;
    return c;
}

// One fragment of a scripted datagram: its span and what the table must answer.
struct Step {
    uint16_t offset, length;
    bool more;
    bool pass;
    Reason reason;  // when !pass
};

constexpr Reason kPass = Reason::established;  // placeholder: not compared when pass

struct Script {
    const char* what;
    FirstDecision decision;  // for the step at offset 0
    std::vector<Step> steps;
    size_t live_after;       // table entries left when the script ends
};

void run(const Script& s) {
    INFO(s.what);
    FragmentTable t(config());
    uint64_t now = 1000;
    const auto k = key(7);
    for (size_t i = 0; i < s.steps.size(); ++i) {
        const Step& st = s.steps[i];
        INFO("step " << i << " offset " << st.offset << " length " << st.length << (st.more ? " MF" : ""));
        const FragmentSpan span{st.offset, st.length, st.more};
        const auto v = st.offset == 0 ? t.first_fragment(k, span, s.decision, now) : t.later_fragment(k, span, now);
        CHECK(v.pass == st.pass);
        if (!st.pass) CHECK(info(v.reason).counter == info(st.reason).counter);
        if (v.pass) CHECK(v.handle == s.decision.handle);
        now += kMs;
    }
    CHECK(t.size() == s.live_after);
}

}  // namespace

TEST_CASE("fragments: later fragments follow their first fragment", "[fragments]") {
    const auto allow = FirstDecision::allow(42);
    const auto deny = FirstDecision::deny(Reason::default_action, 3);
    const Script scripts[] = {
        {"in order", allow, {{0, 1480, true, true, kPass}, {1480, 1480, true, true, kPass}, {2960, 40, false, true, kPass}}, 0},
        {"last before middle", allow, {{0, 1480, true, true, kPass}, {2960, 40, false, true, kPass}, {1480, 1480, true, true, kPass}}, 0},
        {"reverse after the first", allow,
         {{0, 8, true, true, kPass}, {32, 8, false, true, kPass}, {24, 8, true, true, kPass}, {16, 8, true, true, kPass}, {8, 8, true, true, kPass}}, 0},
        {"gone once complete: a late copy is an orphan", allow,
         {{0, 1480, true, true, kPass}, {1480, 100, false, true, kPass}, {1480, 100, false, false, Reason::fragment_no_first}}, 0},
        {"denied first: later fragments drop with its reason", deny,
         {{0, 1480, true, false, Reason::default_action}, {1480, 1480, true, false, Reason::default_action},
          {2960, 40, false, false, Reason::default_action}}, 1},
        {"later fragment with no first", allow, {{1480, 1480, true, false, Reason::fragment_no_first}}, 0},
        {"fragments before their first are dropped and leave nothing", allow,
         {{1480, 1480, true, false, Reason::fragment_no_first}, {2960, 40, false, false, Reason::fragment_no_first},
          {0, 1480, true, true, kPass}}, 1},
        {"first fragment twice (exact duplicate)", allow,
         {{0, 1480, true, true, kPass}, {0, 1480, true, false, Reason::fragment_overlap},
          {1480, 40, false, false, Reason::fragment_overlap}}, 1},
        {"exact duplicate of a later fragment", allow,
         {{0, 1480, true, true, kPass}, {1480, 1480, true, true, kPass}, {1480, 1480, true, false, Reason::fragment_overlap},
          {2960, 40, false, false, Reason::fragment_overlap}}, 1},
        {"RFC 1858 overlap: offset 8 rewrites the TCP header", allow,
         {{0, 24, true, true, kPass}, {8, 40, false, false, Reason::fragment_overlap}}, 1},
        {"partial overlap of two later fragments", allow,
         {{0, 16, true, true, kPass}, {32, 16, true, true, kPass}, {40, 16, false, false, Reason::fragment_overlap}}, 1},
        {"overlap inside a merged range", allow,
         {{0, 16, true, true, kPass}, {16, 16, true, true, kPass}, {8, 16, true, false, Reason::fragment_overlap}}, 1},
        {"fragment touching on both sides merges", allow,
         {{0, 16, true, true, kPass}, {32, 8, false, true, kPass}, {16, 16, true, true, kPass}}, 0},
        {"non-final fragment not a multiple of 8", allow,
         {{0, 16, true, true, kPass}, {16, 13, true, false, Reason::fragment_bad_length},
          {32, 8, false, false, Reason::fragment_bad_length}}, 1},
        {"empty fragment", allow, {{0, 16, true, true, kPass}, {16, 0, false, false, Reason::fragment_bad_length}}, 1},
        {"ping of death: past 65535", allow,
         {{0, 1480, true, true, kPass}, {65528, 100, false, false, Reason::fragment_bad_length}}, 1},
        {"a fragment past the declared end", allow,
         {{0, 16, true, true, kPass}, {32, 8, false, true, kPass}, {40, 8, true, false, Reason::fragment_bad_length}}, 1},
        {"two different ends", allow,
         {{0, 16, true, true, kPass}, {32, 8, false, true, kPass}, {16, 8, false, false, Reason::fragment_bad_length}}, 1},
        {"a last fragment before data already seen", allow,
         {{0, 16, true, true, kPass}, {32, 8, true, true, kPass}, {16, 8, false, false, Reason::fragment_bad_length}}, 1},
        {"first fragment not a multiple of 8", allow, {{0, 13, true, false, Reason::fragment_bad_length}}, 1},
    };
    for (const auto& s : scripts) run(s);
}

TEST_CASE("fragments: too many fragments, and too many holes", "[fragments]") {
    SECTION("more than max_fragments") {
        auto c = config();
        c.max_fragments = 4;
        FragmentTable t(c);
        const auto k = key(1);
        CHECK(t.first_fragment(k, {0, 8, true}, FirstDecision::allow(1), 0).pass);
        for (uint16_t i = 1; i < 4; ++i) CHECK(t.later_fragment(k, {static_cast<uint16_t>(i * 8), 8, true}, 0).pass);
        auto v = t.later_fragment(k, {32, 8, false}, 0);
        CHECK_FALSE(v.pass);
        CHECK(v.reason == Reason::fragment_too_many);
        v = t.later_fragment(k, {40, 8, false}, 0);
        CHECK(v.reason == Reason::fragment_too_many);
    }
    SECTION("the default: 64 fragments pass, the 65th does not") {
        FragmentTable t(config());
        const auto k = key(2);
        CHECK(t.first_fragment(k, {0, 8, true}, FirstDecision::allow(1), 0).pass);
        for (uint16_t i = 1; i < 64; ++i) CHECK(t.later_fragment(k, {static_cast<uint16_t>(i * 8), 8, true}, 0).pass);
        CHECK(t.later_fragment(k, {64 * 8, 8, false}, 0).reason == Reason::fragment_too_many);
    }
    SECTION("more holes than kMaxRanges") {
        FragmentTable t(config());
        const auto k = key(3);
        CHECK(t.first_fragment(k, {0, 8, true}, FirstDecision::allow(1), 0).pass);
        for (uint16_t i = 1; i < FragmentTable::kMaxRanges; ++i)
            CHECK(t.later_fragment(k, {static_cast<uint16_t>(i * 16), 8, true}, 0).pass);
        const auto v = t.later_fragment(k, {static_cast<uint16_t>(FragmentTable::kMaxRanges * 16), 8, true}, 0);
        CHECK(v.reason == Reason::fragment_too_many);
    }
    SECTION("holes filled in any order complete the datagram") {
        FragmentTable t(config());
        const auto k = key(4);
        CHECK(t.first_fragment(k, {0, 8, true}, FirstDecision::allow(1), 0).pass);
        for (uint16_t i = 1; i < FragmentTable::kMaxRanges; ++i)
            CHECK(t.later_fragment(k, {static_cast<uint16_t>(i * 16), 8, i + 1u < FragmentTable::kMaxRanges}, 0).pass);
        for (uint16_t i = FragmentTable::kMaxRanges - 1; i >= 1; --i)
            CHECK(t.later_fragment(k, {static_cast<uint16_t>(i * 16 - 8), 8, true}, 0).pass);
        CHECK(t.size() == 0);
    }
}

TEST_CASE("fragments: keys", "[fragments]") {
    FragmentTable t(config());
    CHECK(t.first_fragment(key(9), {0, 16, true}, FirstDecision::allow(5), 0).pass);
    SECTION("IPv4: another protocol, VLAN, id or address is another datagram") {
        CHECK(t.later_fragment(key(9, 6), {16, 8, false}, 0).reason == Reason::fragment_no_first);
        CHECK(t.later_fragment(key(9, 17, 30), {16, 8, false}, 0).reason == Reason::fragment_no_first);
        CHECK(t.later_fragment(key(10), {16, 8, false}, 0).reason == Reason::fragment_no_first);
        auto swapped = key(9);
        std::swap(swapped.src, swapped.dst);
        CHECK(t.later_fragment(swapped, {16, 8, false}, 0).reason == Reason::fragment_no_first);
        CHECK(t.later_fragment(key(9), {16, 8, false}, 0).pass);
    }
    SECTION("IPv6: the protocol is not part of the key (RFC 8200), FragmentKey::of leaves it out") {
        ParsedPacket first;
        first.vlan = 10;
        first.kind = PacketKind::ipv6;
        first.src = *IpAddr::parse("2001:db8:10::11");
        first.dst = *IpAddr::parse("2001:db8:30::11");
        first.fragment_id = 0xdeadbeef;
        first.proto = 6;  // TCP after a destination-options header
        ParsedPacket later = first;
        later.proto = 60;  // what the Fragment header of a later fragment says: destination options
        CHECK(FragmentKey::of(first) == FragmentKey::of(later));
        CHECK(t.first_fragment(FragmentKey::of(first), {0, 1232, true}, FirstDecision::allow(6), 0).pass);
        const auto v = t.later_fragment(FragmentKey::of(later), {1232, 100, false}, 0);
        CHECK(v.pass);
        CHECK(v.handle == 6);
    }
    SECTION("IPv4: FragmentKey::of keeps the protocol") {
        ParsedPacket p;
        p.vlan = 10;
        p.kind = PacketKind::ipv4;
        p.src = *IpAddr::parse("198.18.10.11");
        p.dst = *IpAddr::parse("198.18.30.11");
        p.fragment_id = 9;
        p.proto = 17;
        CHECK(FragmentKey::of(p) == key(9));
        p.proto = 6;
        CHECK_FALSE(FragmentKey::of(p) == key(9));
    }
}

TEST_CASE("fragments: timeout with injected time", "[fragments]") {
    FragmentTable t(config());
    const auto k = key(11);
    CHECK(t.first_fragment(k, {0, 1480, true}, FirstDecision::allow(1), 0).pass);
    CHECK(t.later_fragment(k, {1480, 1480, true}, 29 * kSecond).pass);
    SECTION("the timeout counts from the first fragment and is never extended") {
        const auto v = t.later_fragment(k, {2960, 40, false}, 30 * kSecond);
        CHECK_FALSE(v.pass);
        CHECK(v.reason == Reason::fragment_no_first);
        CHECK(t.size() == 0);
    }
    SECTION("a first fragment after the timeout starts a new datagram") {
        CHECK(t.first_fragment(k, {0, 1480, true}, FirstDecision::deny(Reason::rule, 9), 31 * kSecond).reason == Reason::rule);
        CHECK(t.later_fragment(k, {1480, 1480, true}, 31 * kSecond).reason == Reason::rule);
    }
    SECTION("expire() ages in bounded batches") {
        for (uint32_t id = 100; id < 140; ++id) CHECK(t.first_fragment(key(id), {0, 8, true}, FirstDecision::allow(id), kSecond).pass);
        CHECK(t.size() == 41);
        CHECK(t.expire(29 * kSecond, t.capacity()) == 0);
        size_t freed = 0, calls = 0;
        while (t.size() > 0 && calls < 1000) freed += t.expire(31 * kSecond, 4), ++calls;
        CHECK(freed == 41);
        CHECK(calls <= t.capacity() / 4 + 1);
    }
    SECTION("a configured timeout") {
        auto c = config();
        c.timeout = 5 * kSecond;
        FragmentTable t5(c);
        CHECK(t5.first_fragment(k, {0, 8, true}, FirstDecision::allow(1), 0).pass);
        CHECK(t5.later_fragment(k, {8, 8, true}, 4 * kSecond).pass);
        CHECK(t5.later_fragment(k, {16, 8, false}, 5 * kSecond).reason == Reason::fragment_no_first);
    }
}

TEST_CASE("fragments: a full table", "[fragments]") {
    // 16 slots: two buckets of eight, so every datagram competes with every other.
    FragmentTable t(config(16));
    REQUIRE(t.capacity() == 16);
    CHECK(t.memory_bytes() == 16 * FragmentTable::kEntryBytes);
    const auto victim = key(1);
    uint64_t now = 0;
    CHECK(t.first_fragment(victim, {0, 8, true}, FirstDecision::allow(77), now).pass);
    uint16_t next = 8;

    SECTION("a flood of denied first fragments never displaces an allowed datagram") {
        for (uint32_t id = 1000; id < 6000; ++id) {
            now += kMs / 10;
            const auto v = t.first_fragment(key(id), {0, 8, true}, FirstDecision::deny(Reason::default_action), now);
            CHECK_FALSE(v.pass);
            CHECK(v.reason == Reason::default_action);
            if (id % 100 == 0) {  // the victim keeps sending
                CHECK(t.later_fragment(victim, {next, 8, true}, now).pass);
                next += 8;
            }
        }
        CHECK(t.size() == 16);
        const auto last = t.later_fragment(victim, {next, 8, false}, now);
        CHECK(last.pass);
        CHECK(last.handle == 77);
        CHECK(t.size() == 15);
    }
    SECTION("a flood of orphan fragments takes no room at all") {
        for (uint32_t id = 1000; id < 6000; ++id)
            CHECK(t.later_fragment(key(id), {8, 8, true}, now).reason == Reason::fragment_no_first);
        CHECK(t.size() == 1);
        CHECK(t.later_fragment(victim, {8, 8, false}, now).pass);
    }
    SECTION("allowed datagrams that stall: full until they are idle, and the active one survives") {
        for (uint32_t id = 1000; id < 1015; ++id)
            CHECK(t.first_fragment(key(id), {0, 8, true}, FirstDecision::allow(id), now).pass);
        CHECK(t.size() == 16);
        const auto full = t.first_fragment(key(2000), {0, 8, true}, FirstDecision::allow(2000), now + kMs);
        CHECK_FALSE(full.pass);
        CHECK(full.reason == Reason::fragment_table_full);
        // A denied first fragment keeps its own reason even when it cannot be recorded.
        CHECK(t.first_fragment(key(2001), {0, 8, true}, FirstDecision::deny(Reason::rule), now + kMs).reason == Reason::rule);
        // The victim stays active; the stalled ones go idle after a second and may be evicted.
        for (int i = 0; i < 20; ++i) {
            now += 100 * kMs;
            CHECK(t.later_fragment(victim, {next, 8, true}, now).pass);
            next += 8;
        }
        for (uint32_t id = 3000; id < 3100; ++id)
            CHECK(t.first_fragment(key(id), {0, 8, true}, FirstDecision::allow(id), now).pass != (id >= 3015));
        CHECK(t.later_fragment(victim, {next, 8, false}, now).pass);
    }
}

TEST_CASE("fragments: CVE-2019-5597 pattern (IPv6 fragments that disagree about the header chain)", "[fragments]") {
    // pf reassembled fragments whose extension-header chains differed and used the wrong one.  tagwall
    // classifies the first fragment only; the attack then needs a fragment overlapping the first one's
    // headers, which kills the datagram: none of its later fragments pass.
    FragmentTable t(config());
    const auto k = key6(0x5597);
    // First fragment: destination options (8 bytes) then TCP (20 bytes) then data, 8-aligned.
    CHECK(t.first_fragment(k, {0, 48, true}, FirstDecision::allow(1), 0).pass);
    // Second fragment at offset 8 claims another chain (say, ICMPv6 where TCP was): overlap.
    auto v = t.later_fragment(k, {8, 48, true}, 0);
    CHECK_FALSE(v.pass);
    CHECK(v.reason == Reason::fragment_overlap);
    v = t.later_fragment(k, {56, 8, false}, 0);
    CHECK(v.reason == Reason::fragment_overlap);
    // Two first fragments with different chains: the second is an overlap as well.
    const auto k2 = key6(0x5598);
    CHECK(t.first_fragment(k2, {0, 48, true}, FirstDecision::allow(2), 0).pass);
    CHECK(t.first_fragment(k2, {0, 16, true}, FirstDecision::allow(2), 0).reason == Reason::fragment_overlap);
    CHECK(t.later_fragment(k2, {48, 8, false}, 0).reason == Reason::fragment_overlap);
}

TEST_CASE("fragments: memory stays at its cap under a random fragment flood", "[fragments]") {
    FragmentTable t(config(256));
    const size_t memory = t.memory_bytes();
    CHECK(memory == t.capacity() * FragmentTable::kEntryBytes);
    std::mt19937_64 rng(7);
    uint64_t now = 0;
    size_t passed = 0;
    for (int i = 0; i < 200000; ++i) {
        now += 10'000;  // 100k fragments per second
        const auto k = key(static_cast<uint32_t>(rng() % 2000), static_cast<uint8_t>(rng() % 2 ? 6 : 17));
        const FragmentSpan span{static_cast<uint16_t>((rng() % 64) * 8), static_cast<uint16_t>((rng() % 4 + 1) * 8),
                                rng() % 8 != 0};
        FragmentVerdict v;
        if (span.offset == 0) {
            const auto d = rng() % 2 ? FirstDecision::allow(1) : FirstDecision::deny(Reason::default_action);
            v = t.first_fragment(k, span, d, now);
        } else {
            v = t.later_fragment(k, span, now);
        }
        passed += v.pass;
        if (i % 64 == 0) t.expire(now, 16);
        REQUIRE(t.size() <= t.capacity());
    }
    CHECK(passed > 0);
    CHECK(t.memory_bytes() == memory);
}

TEST_CASE("fragments: configuration is checked", "[fragments]") {
    FragmentConfig c;
    c.capacity = 0;
    CHECK_THROWS_AS(FragmentTable(c), std::invalid_argument);
    c = {};
    c.max_fragments = 0;
    CHECK_THROWS_AS(FragmentTable(c), std::invalid_argument);
    c = {};
    c.capacity = 1000;
    const FragmentTable t(c);
    CHECK(t.capacity() == 1024);  // 125 buckets of 8, rounded up to 128
}

TEST_CASE("fragments: check_first refuses, before anything is decided, what first_fragment would refuse", "[fragments]") {
    // The pipeline used to track and classify a first fragment before the table refused it: a forged
    // repeated first fragment carrying an exact RST closed the connection in the firewall although
    // the packet was dropped (pcaps/adversarial/011-frag-tcp).  check_first answers first.
    FragmentTable t(config(16));  // two buckets of eight: every datagram competes with every other
    uint64_t now = 0;
    const auto k = key(1);
    SECTION("a new datagram with room: nothing to say, and nothing recorded") {
        CHECK_FALSE(t.check_first(k, {0, 1480, true}, now).has_value());
        CHECK(t.size() == 0);
    }
    SECTION("a repeated first fragment overlaps: the datagram dies") {
        REQUIRE(t.first_fragment(k, {0, 1480, true}, FirstDecision::allow(5), now).pass);
        const auto v = t.check_first(k, {0, 1480, true}, now);
        REQUIRE(v.has_value());
        CHECK_FALSE(v->pass);
        CHECK(v->reason == Reason::fragment_overlap);
        CHECK(t.later_fragment(k, {1480, 8, false}, now).reason == Reason::fragment_overlap);
    }
    SECTION("a repeated first fragment of a denied datagram gets its reason, unclassified") {
        REQUIRE_FALSE(t.first_fragment(k, {0, 1480, true}, FirstDecision::deny(Reason::default_action), now).pass);
        const auto v = t.check_first(k, {0, 1480, true}, now);
        REQUIRE(v.has_value());
        CHECK(v->reason == Reason::default_action);
    }
    SECTION("lengths no fragment may have") {
        for (const FragmentSpan span : {FragmentSpan{0, 12, true}, FragmentSpan{0, 0, true}}) {
            const auto v = t.check_first(k, span, now);
            REQUIRE(v.has_value());
            CHECK(v->reason == Reason::fragment_bad_length);
        }
        CHECK_FALSE(t.check_first(k, {0, 12, false}, now).has_value());  // a last fragment may be odd
    }
    SECTION("no room: fragment_table_full, whatever the decision would be") {
        for (uint32_t id = 100; id < 116; ++id)
            REQUIRE(t.first_fragment(key(id), {0, 8, true}, FirstDecision::allow(id), now).pass);
        const auto v = t.check_first(k, {0, 8, true}, now + kMs);
        REQUIRE(v.has_value());
        CHECK(v->reason == Reason::fragment_table_full);
        // once the others are idle they may be evicted: room again
        CHECK_FALSE(t.check_first(k, {0, 8, true}, now + 2 * kSecond).has_value());
    }
    SECTION("an expired datagram is forgotten: its key starts anew") {
        REQUIRE(t.first_fragment(k, {0, 8, true}, FirstDecision::allow(5), now).pass);
        CHECK_FALSE(t.check_first(k, {0, 8, true}, now + FragmentConfig{}.timeout).has_value());
        CHECK(t.size() == 0);
    }
}

TEST_CASE("fragments: a TCP datagram says how far its segment reaches", "[fragments]") {
    // A TCP segment in fragments: the first fragment is tracked with the bytes it carries, the later
    // ones tell the pipeline how far the segment reaches, so that the receiver's ACK of all of it is in
    // the window (pcaps/adversarial/011-frag-tcp: it was `invalid_tcp_window`).
    FragmentTable t(config());
    const auto k = key(9, 6);
    const uint32_t base = 0xFFFFFF00u;  // wraps: sequence space is modular
    const auto first = t.first_fragment(k, {0, 1480, true}, FirstDecision::allow(3, {true, true, base}), 0);
    REQUIRE(first.pass);
    CHECK(first.tcp);
    CHECK(first.tcp_end == base + 1480);
    CHECK(first.handle == 3);
    const auto middle = t.later_fragment(k, {1480, 1480, true}, 0);
    CHECK(middle.tcp);
    CHECK(middle.tcp_end == base + 2960);
    const auto last = t.later_fragment(k, {2960, 60, false}, 0);
    CHECK(last.tcp);
    CHECK(last.tcp_end == base + 3020 + 1);  // the FIN counts after the last byte
    CHECK(t.size() == 0);                     // complete
    // a datagram that is not a TCP segment reports nothing
    const auto k2 = key(10);
    REQUIRE(t.first_fragment(k2, {0, 8, true}, FirstDecision::allow(4), 0).pass);
    CHECK_FALSE(t.later_fragment(k2, {8, 8, false}, 0).tcp);
}

TEST_CASE("fragments: the high-water mark", "[fragments]") {
    FragmentTable t(config());
    CHECK(t.high_water() == 0);
    for (uint32_t id = 0; id < 10; ++id) REQUIRE(t.first_fragment(key(id), {0, 8, true}, FirstDecision::allow(id), 0).pass);
    for (uint32_t id = 0; id < 10; ++id) REQUIRE(t.later_fragment(key(id), {8, 8, false}, 0).pass);
    CHECK(t.size() == 0);
    CHECK(t.high_water() == 10);
}
