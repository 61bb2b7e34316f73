// Every classifier engine against the linear reference (STYLE §10): random rule sets with keys aimed at
// the edges, the shared ClassBench 1k sets with their traces, and the corner cases.
//
// The random test reads TAGWALL_DIFF_COUNT (rule sets, default 100) and TAGWALL_DIFF_SEED (default fixed);
// scripts/diff-classify.sh runs it with larger counts.  Set i uses seed + i, so a failure names the one
// set to replay.  rte_acl needs the DPDK EAL: it is started once, lazily, without hugepages (this is a
// correctness test, and CI machines may have none).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>

#include <fmt/format.h>

#include "dataplane/eal.hpp"
#include "rules/classbench.hpp"
#include "rules/classifier.hpp"
#include "rules/engine_linear.hpp"

using namespace tagwall::rules;

namespace {

void ensure_eal() {
    static const bool started = [] {
        tagwall::dataplane::EalOptions o;
        o.program = "tagwall-unit-tests";
        o.hugepages = tagwall::dataplane::HugepageMode::off;
        o.no_huge_mb = 1024;
        tagwall::dataplane::init_eal(o);
        return true;
    }();
    (void)started;
}

std::vector<std::string> fast_engines() {
    auto engines = classifier_engines();
    std::erase(engines, "linear");
    return engines;
}

std::unique_ptr<Classifier> build(const std::string& engine, std::span<const FieldRule> rules) {
    if (engine == "rte_acl") ensure_eal();
    return make_classifier(engine, rules);
}

unsigned long env_or(const char* name, unsigned long fallback) {
    const char* v = std::getenv(name);
    return v && *v ? std::strtoul(v, nullptr, 10) : fallback;
}

std::string describe(const FieldKey& k) {
    return fmt::format("src {:#010x} dst {:#010x} sport {} dport {} proto {}", k[kFieldSrc], k[kFieldDst],
                       k[kFieldSport], k[kFieldDport], k[kFieldProto]);
}

std::string describe(const FieldRule& r) {
    std::string s = fmt::format("prio {} id {}:", r.priority, r.id);
    for (const auto& f : r.field) s += fmt::format(" [{:#x},{:#x}]", f.lo, f.hi);
    return s;
}

// Runs `engine` over `keys` in one call (the engine chunks as it likes) and compares with the reference.
// Returns the number of mismatches; the first one is described in `first`.
size_t compare_with_linear(const Classifier& engine, std::span<const FieldRule> rules, std::span<const FieldKey> keys,
                           std::string& first) {
    const LinearEngine linear(rules);
    std::vector<int32_t> expected(keys.size()), got(keys.size(), 12345);
    linear.classify_burst(keys, expected);
    engine.classify_burst(keys, got);
    size_t mismatches = 0;
    for (size_t i = 0; i < keys.size(); ++i) {
        if (expected[i] == got[i]) continue;
        if (mismatches++ > 0) continue;
        first = fmt::format("key #{} ({}): linear says {}, {} says {}", i, describe(keys[i]), expected[i],
                            engine.name(), got[i]);
        for (const FieldRule& r : rules)
            if (r.id == expected[i] || r.id == got[i]) first += fmt::format("\n  rule {}", describe(r));
    }
    return mismatches;
}

// ---------------------------------------------------------------------------------------------------
// Random rule sets.  Values come from small per-set pools so that prefixes nest and overlap, ranges share
// bounds, and keys land on bounds and just outside them.

struct SetStyle {
    bool address_ranges = false;  // arbitrary address ranges, not only prefixes (rte_acl: RANGE fields)
    bool proto_ranges = false;    // arbitrary protocol ranges, not only exact-or-any
};

class RandomSet {
public:
    RandomSet(uint64_t seed, size_t rule_count, SetStyle style) : rng_(seed), style_(style) {
        const size_t anchors = 2 + pick(6);
        for (size_t i = 0; i < anchors; ++i) anchor_.push_back(static_cast<uint32_t>(rng_()));
        anchor_.push_back(0);
        anchor_.push_back(0xFFFFFFFFu);
        std::vector<uint32_t> priorities(rule_count);
        for (size_t i = 0; i < rule_count; ++i) priorities[i] = static_cast<uint32_t>(i * 7 + 3);
        std::shuffle(priorities.begin(), priorities.end(), rng_);
        for (size_t i = 0; i < rule_count; ++i) {
            FieldRule r;
            r.field[kFieldSrc] = address();
            r.field[kFieldDst] = address();
            r.field[kFieldSport] = port();
            r.field[kFieldDport] = port();
            r.field[kFieldProto] = protocol();
            r.priority = priorities[i];
            r.id = static_cast<int32_t>(i);
            rules.push_back(r);
        }
        make_keys();
    }

    std::vector<FieldRule> rules;
    std::vector<FieldKey> keys;

private:
    size_t pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
    uint32_t between(uint32_t lo, uint32_t hi) { return std::uniform_int_distribution<uint32_t>(lo, hi)(rng_); }
    bool chance(unsigned percent) { return pick(100) < percent; }

    FieldRange address() {
        const uint32_t a = anchor_[pick(anchor_.size())];
        if (style_.address_ranges && chance(40)) {
            const uint32_t span = chance(50) ? between(0, 300) : static_cast<uint32_t>(rng_()) >> between(0, 31);
            const uint32_t lo = chance(50) ? a : a - std::min(a, between(0, 1000));
            return {lo, lo + std::min(span, 0xFFFFFFFFu - lo)};
        }
        unsigned len;
        if (chance(8)) len = 0;
        else if (chance(25)) len = 32;
        else len = between(1, 31);
        const uint32_t mask = len == 0 ? 0 : ~uint32_t{0} << (32 - len);
        return {a & mask, (a & mask) | ~mask};
    }

    uint32_t port_value() {
        static constexpr uint32_t kPool[] = {0, 1, 53, 80, 443, 1023, 1024, 8080, 65534, 65535};
        return chance(70) ? kPool[pick(std::size(kPool))] : between(0, 65535);
    }

    FieldRange port() {
        switch (pick(5)) {
        case 0:
        case 1: return {0, 65535};
        case 2: {
            const uint32_t v = port_value();
            return {v, v};
        }
        case 3: return {0, port_value()};
        default: {
            uint32_t a = port_value(), b = port_value();
            if (a > b) std::swap(a, b);
            return chance(30) ? FieldRange{a, 65535} : FieldRange{a, b};
        }
        }
    }

    FieldRange protocol() {
        static constexpr uint32_t kPool[] = {6, 17, 1, 0, 255, 47, 58};
        if (chance(35)) return {0, 255};
        if (style_.proto_ranges && chance(40)) {
            uint32_t a = kPool[pick(std::size(kPool))], b = between(0, 255);
            if (a > b) std::swap(a, b);
            return {a, b};
        }
        const uint32_t p = kPool[pick(std::size(kPool))];
        return {p, p};
    }

    // A value of field f near r: a bound, just outside a bound, or inside.
    uint32_t near(const FieldRange& r, size_t f) {
        switch (pick(6)) {
        case 0: return r.lo;
        case 1: return r.hi;
        case 2: return r.lo > 0 ? r.lo - 1 : r.lo;
        case 3: return r.hi < kFieldMax[f] ? r.hi + 1 : r.hi;
        case 4: return r.lo + (r.hi - r.lo) / 2;
        default: return between(r.lo, r.hi);
        }
    }

    uint32_t random_value(size_t f) {
        if (chance(20)) return chance(50) ? 0 : kFieldMax[f];
        return f == kFieldSrc || f == kFieldDst ? static_cast<uint32_t>(rng_()) : between(0, kFieldMax[f]);
    }

    void make_keys() {
        for (const FieldRule& r : rules) {
            for (int k = 0; k < 4; ++k) {  // on the rule, then one field nudged to or past an edge
                FieldKey key;
                for (size_t f = 0; f < kFieldCount; ++f) key[f] = between(r.field[f].lo, r.field[f].hi);
                const size_t f = pick(kFieldCount);
                key[f] = near(r.field[f], f);
                keys.push_back(key);
            }
            FieldKey mixed;  // each field taken near a different rule
            for (size_t f = 0; f < kFieldCount; ++f) mixed[f] = near(rules[pick(rules.size())].field[f], f);
            keys.push_back(mixed);
        }
        for (int i = 0; i < 48; ++i) {
            FieldKey key;
            for (size_t f = 0; f < kFieldCount; ++f) key[f] = random_value(f);
            keys.push_back(key);
        }
        keys.push_back({0, 0, 0, 0, 0});
        keys.push_back({0xFFFFFFFFu, 0xFFFFFFFFu, 65535, 65535, 255});
    }

    std::mt19937_64 rng_;
    SetStyle style_;
    std::vector<uint32_t> anchor_;
};

std::string classbench_dir() {
    if (const char* dir = std::getenv("TAGWALL_CLASSBENCH_DIR"); dir && *dir) return dir;
    return std::string(TAGWALL_SOURCE_ROOT) + "/../shared/classbench";
}

}  // namespace

TEST_CASE("every engine agrees with linear on random rule sets aimed at edges", "[engines][diff]") {
    const unsigned long count = env_or("TAGWALL_DIFF_COUNT", 100);
    const unsigned long seed = env_or("TAGWALL_DIFF_SEED", 20240611);
    for (const std::string& engine : fast_engines()) {
        size_t total_keys = 0;
        for (unsigned long set = 0; set < count; ++set) {
            std::mt19937_64 shape(seed + set);
            const size_t rule_count = 1 + shape() % 200;
            const SetStyle style{shape() % 3 == 0, shape() % 4 == 0};
            const RandomSet s(seed + set * 0x9E3779B97F4A7C15ull, rule_count, style);
            const auto classifier = build(engine, s.rules);
            std::string first;
            const size_t mismatches = compare_with_linear(*classifier, s.rules, s.keys, first);
            total_keys += s.keys.size();
            INFO(fmt::format("engine {}, set {} (TAGWALL_DIFF_SEED={} set {}), {} rules{}{}: {}", engine, set, seed, set,
                             rule_count, style.address_ranges ? ", address ranges" : "",
                             style.proto_ranges ? ", protocol ranges" : "", first));
            REQUIRE(mismatches == 0);
        }
        INFO(engine);
        CHECK(total_keys > count * 10);
    }
}

TEST_CASE("every engine: no rules, one wildcard rule, duplicate ids", "[engines]") {
    const std::vector<FieldKey> keys{{0, 0, 0, 0, 0}, {0xFFFFFFFFu, 1, 65535, 80, 6}, {123, 456, 7, 8, 17}};
    for (const std::string& engine : fast_engines()) {
        INFO(engine);
        std::vector<int32_t> out(keys.size(), 99);
        build(engine, {})->classify_burst(keys, out);
        CHECK(out == std::vector<int32_t>(keys.size(), kNoMatch));

        const std::vector<FieldRule> one{wildcard_rule(5, 42)};
        build(engine, one)->classify_burst(keys, out);
        CHECK(out == std::vector<int32_t>(keys.size(), 42));

        // One policy rule expanded to several field rules shares its id; the lowest priority still wins.
        std::vector<FieldRule> expanded{wildcard_rule(9, 3), wildcard_rule(1, 7), wildcard_rule(4, 7)};
        expanded[1].field[kFieldProto] = {6, 6};
        expanded[2].field[kFieldProto] = {17, 17};
        build(engine, expanded)->classify_burst(keys, out);
        CHECK(out == std::vector<int32_t>{3, 7, 7});
    }
}

TEST_CASE("rte_acl reports its algorithm and memory", "[engines]") {
    const std::vector<FieldRule> rules{wildcard_rule(0, 0)};
    const auto acl = build("rte_acl", rules);
    const auto stats = acl->stats();
    CHECK(stats.memory_bytes > 0);
    CHECK_THAT(stats.detail, Catch::Matchers::Contains("classify algorithm"));
    CHECK_FALSE(acl->insert(wildcard_rule(1, 1)));
    CHECK_FALSE(acl->erase(0));
}

TEST_CASE("every engine agrees with linear on the shared ClassBench 1k sets", "[engines][classbench]") {
    const std::string dir = classbench_dir();
    for (const char* set : {"acl1_1k", "fw1_1k", "ipc1_1k"}) {
        const std::string rules_path = fmt::format("{}/{}.rules", dir, set);
        const std::string trace_path = fmt::format("{}/{}.trace", dir, set);
        if (!std::filesystem::exists(rules_path) || !std::filesystem::exists(trace_path)) {
            WARN(fmt::format("{} not found: skipped (set TAGWALL_CLASSBENCH_DIR)", rules_path));
            continue;
        }
        const auto rules = read_classbench_rules(rules_path);
        const auto keys = read_classbench_trace(trace_path);
        for (const std::string& engine : fast_engines()) {
            std::string first;
            const size_t mismatches = compare_with_linear(*build(engine, rules), rules, keys, first);
            INFO(fmt::format("{} on {} ({} rules, {} keys): {}", engine, set, rules.size(), keys.size(), first));
            CHECK(mismatches == 0);
        }
    }
}
