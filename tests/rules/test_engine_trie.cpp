// The trie engine's own cases: incremental inserts and erases must leave it answering exactly like a
// linear scan of the same rules, including where an erased rule used to hide later ones.
#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <set>

#include "rules/engine_linear.hpp"
#include "rules/engine_trie.hpp"

using namespace tagwall::rules;

namespace {

FieldRange random_prefix(std::mt19937& rng) {
    static const uint32_t bases[] = {0xC6120000u, 0xC6130000u, 0x0A000000u, 0xC0000200u};
    const uint32_t len = std::uniform_int_distribution<uint32_t>(0, 32)(rng);
    const uint32_t base = bases[rng() % 4] | (rng() & 0xFFFF);
    const uint32_t mask = len == 0 ? 0 : ~0u << (32 - len);
    return {base & mask, (base & mask) | ~mask};
}

FieldRange random_ports(std::mt19937& rng) {
    switch (rng() % 4) {
    case 0: return {0, 0xFFFF};
    case 1: { const uint32_t p = rng() % 2048; return {p, p}; }
    case 2: { const uint32_t a = rng() % 2048, b = rng() % 2048; return {std::min(a, b), std::max(a, b)}; }
    default: return {1024, 0xFFFF};
    }
}

FieldRule random_rule(std::mt19937& rng, uint32_t priority) {
    FieldRule r;
    r.field[kFieldSrc] = random_prefix(rng);
    r.field[kFieldDst] = random_prefix(rng);
    r.field[kFieldSport] = random_ports(rng);
    r.field[kFieldDport] = random_ports(rng);
    const uint32_t proto = rng() % 3 == 0 ? 0 : (rng() % 2 ? 6 : 17);
    r.field[kFieldProto] = proto == 0 ? FieldRange{0, 255} : FieldRange{proto, proto};
    r.priority = priority;
    r.id = static_cast<int32_t>(priority);
    return r;
}

// Keys at and around every rule's edges, plus random ones.
std::vector<FieldKey> probe_keys(std::mt19937& rng, const std::vector<FieldRule>& rules, size_t count) {
    std::vector<FieldKey> keys;
    for (size_t i = 0; i < count; ++i) {
        FieldKey k;
        const FieldRule& r = rules[rng() % rules.size()];
        for (size_t f = 0; f < kFieldCount; ++f) {
            const auto [lo, hi] = r.field[f];
            switch (rng() % 5) {
            case 0: k[f] = lo; break;
            case 1: k[f] = hi; break;
            case 2: k[f] = lo - 1; break;  // wraps at 0: still a valid key
            case 3: k[f] = hi + 1; break;
            default: k[f] = static_cast<uint32_t>(rng()); break;
            }
            k[f] = std::min(k[f], kFieldMax[f]);
        }
        keys.push_back(k);
    }
    return keys;
}

size_t mismatches(const Classifier& a, const Classifier& b, const std::vector<FieldKey>& keys) {
    std::vector<int32_t> ra(keys.size()), rb(keys.size());
    a.classify_burst(keys, ra);
    b.classify_burst(keys, rb);
    size_t n = 0;
    for (size_t i = 0; i < keys.size(); ++i) n += ra[i] != rb[i];
    return n;
}

}  // namespace

TEST_CASE("trie: inserts and erases match a linear scan after every step", "[trie]") {
    std::mt19937 rng(20261122);
    for (int round = 0; round < 20; ++round) {
        std::vector<FieldRule> rules;
        const uint32_t n = 50 + rng() % 300;
        for (uint32_t i = 0; i < n; ++i) rules.push_back(random_rule(rng, i * 4));  // gaps for inserts
        std::vector<FieldRule> initial(rules.begin(), rules.begin() + n / 2);
        TrieEngine trie(initial);
        LinearEngine linear(initial);
        const auto keys = probe_keys(rng, rules, 2000);
        REQUIRE(mismatches(trie, linear, keys) == 0);
        // Insert the rest in random order, erase some, and insert rules between existing priorities.
        std::set<uint32_t> live;
        for (const auto& r : initial) live.insert(r.priority);
        std::vector<FieldRule> rest(rules.begin() + n / 2, rules.end());
        std::shuffle(rest.begin(), rest.end(), rng);
        for (size_t i = 0; i < rest.size(); ++i) {
            REQUIRE(trie.insert(rest[i]));
            linear.insert(rest[i]);
            live.insert(rest[i].priority);
            if (i % 3 == 0) {
                const uint32_t victim = rules[rng() % rules.size()].priority;
                REQUIRE(trie.erase(victim));
                linear.erase(victim);
                live.erase(victim);
            }
            if (i % 5 == 0) {
                const FieldRule between = random_rule(rng, rules[rng() % rules.size()].priority + 1 + rng() % 3);
                if (live.insert(between.priority).second) {
                    REQUIRE(trie.insert(between));
                    linear.insert(between);
                }
            }
            if (i % 8 == 0) REQUIRE(mismatches(trie, linear, keys) == 0);
        }
        CHECK(mismatches(trie, linear, keys) == 0);
        CHECK(mismatches(trie, linear, probe_keys(rng, rules, 2000)) == 0);
    }
}

TEST_CASE("trie: erasing a rule that covered its region brings hidden rules back", "[trie]") {
    FieldRule wide = wildcard_rule(0, 0);
    FieldRule narrow = wildcard_rule(1, 1);
    narrow.field[kFieldDport] = {80, 80};
    std::vector<FieldRule> rules{wide, narrow};
    for (uint32_t i = 2; i < 40; ++i) {  // enough rules to force interior nodes
        FieldRule r = wildcard_rule(i, static_cast<int32_t>(i));
        r.field[kFieldSrc] = {i << 24, (i << 24) | 0xFFFFFF};
        rules.push_back(r);
    }
    TrieEngine trie(rules);
    FieldKey k{};
    k[kFieldSrc] = 5u << 24;
    k[kFieldDport] = 80;
    int32_t out = kNoMatch;
    trie.classify_burst(std::span<const FieldKey>(&k, 1), std::span<int32_t>(&out, 1));
    CHECK(out == 0);
    REQUIRE(trie.erase(0));
    trie.classify_burst(std::span<const FieldKey>(&k, 1), std::span<int32_t>(&out, 1));
    CHECK(out == 1);
    REQUIRE(trie.erase(1));
    trie.classify_burst(std::span<const FieldKey>(&k, 1), std::span<int32_t>(&out, 1));
    CHECK(out == 5);
    k[kFieldSrc] = 1u << 24;  // no rule left covers this one
    trie.classify_burst(std::span<const FieldKey>(&k, 1), std::span<int32_t>(&out, 1));
    CHECK(out == kNoMatch);
}

TEST_CASE("trie: duplicate priorities are refused", "[trie]") {
    std::vector<FieldRule> rules{wildcard_rule(3, 0), wildcard_rule(3, 1)};
    CHECK_THROWS_AS(TrieEngine(rules), std::invalid_argument);
    TrieEngine trie(std::vector<FieldRule>{wildcard_rule(3, 0)});
    CHECK_THROWS_AS(trie.insert(wildcard_rule(3, 9)), std::invalid_argument);
}
