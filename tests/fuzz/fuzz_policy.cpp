// fuzz-policy: policy YAML text through what `tagwall check` does (tools/check_report.cpp run_check: load,
// compile, analyse, print the report), then through the classifiers, differentially.
//
// The input is the text of a policy file.  Invariants:
//   - run_check() says valid (0) exactly when the loader accepts the text and the rule set compiles;
//     the loader refuses only with at least one error, and every diagnostic names the file;
//   - RuleSet::compile never throws on what the loader accepted (its documented contract);
//   - analysis findings name existing rules, and a rule is shadowed only by rules above it;
//   - on a few hundred packet keys aimed at the policy's own edges (every endpoint address, both ends
//     of every CIDR and one address beyond each, every service's port bounds and one beyond, the ICMP
//     types, every segment's VLAN and one that names none), the trie engine, the linear engine and a
//     reference written here from RuleSet::rule_matches (first matching rule, else the default; a VLAN
//     that names no segment is dropped) give the same decision; no key is decided by a rule the
//     analysis reported as shadowed or matching nothing; the dataplane's IdentityTable resolves every
//     address as RuleSet::resolve does;
//   - retagging (tagwallctl endpoint tag): one endpoint given another endpoint's or a tag group's tags,
//     PolicyClassifier::retag (in place, or rebuilt) decides every key as a classifier built afresh on
//     RuleSet::with_endpoint_tags does.
// The keys are drawn with a generator seeded from the input, so a crash reproduces.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/identity.hpp"
#include "fuzz_support.hpp"
#include "rules/analysis.hpp"
#include "rules/classifier_policy.hpp"
#include "rules/policy_loader.hpp"
#include "tools/check_report.hpp"

namespace {

using namespace tagwall;
using namespace tagwall::rules;

constexpr const char* kName = "fuzzed.yaml";
constexpr size_t kKeys = 256;

// splitmix64: a small deterministic generator.
struct Rng {
    uint64_t s;
    uint64_t next() {
        uint64_t z = (s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    template <class T>
    const T& pick(const std::vector<T>& v) { return v[next() % v.size()]; }
};

uint64_t hash_of(const uint8_t* data, size_t size) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < size; ++i) h = (h ^ data[i]) * 1099511628211ull;
    return h;
}

// `tagwall check` on the text, through a memory file (the report goes to /dev/null).
int check_status(const uint8_t* data, size_t size) {
    const int fd = memfd_create("fuzz-policy", MFD_CLOEXEC);
    FUZZ_CHECK(fd >= 0, "memfd_create failed");
    FUZZ_CHECK(write(fd, data, size) == static_cast<ssize_t>(size), "memfd write failed");
    static std::FILE* const null_out = std::fopen("/dev/null", "w");
    const int status = tools::run_check({fmt::format("/proc/self/fd/{}", fd), false, 32}, null_out);
    close(fd);
    return status;
}

struct KeySpace {
    std::vector<IpAddr> v4, v6;
    std::vector<uint16_t> ports{0, 1, 22, 53, 443, 1023, 1024, 65535};
    std::vector<uint8_t> protos{kProtoTcp, kProtoUdp, kProtoIcmp, kProtoIcmpV6, kProtoSctp, 47};
    std::vector<uint8_t> icmp_types{0, 3, 8, 11, 1, 128, 129, 135};
    std::vector<uint16_t> vlans{4095};
};

void add_addr(KeySpace& ks, const IpAddr& a) { (a.family == Family::v4 ? ks.v4 : ks.v6).push_back(a); }

KeySpace key_space(const Policy& p) {
    KeySpace ks;
    for (const char* a : {"0.0.0.0", "255.255.255.255", "198.18.0.1", "198.19.255.255", "::", "::1", "2001:db8::1",
                          "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"})
        add_addr(ks, *IpAddr::parse(a));
    for (const Endpoint& e : p.endpoints)
        for (const IpAddr& a : e.addrs) add_addr(ks, a);
    for (const Group& g : p.groups)
        for (const Prefix& c : g.cidrs) {
            IpAddr lo = c.first(), hi = c.last();
            add_addr(ks, lo);
            add_addr(ks, hi);
            if (decrement(lo)) add_addr(ks, lo);
            if (increment(hi)) add_addr(ks, hi);
        }
    for (const Service& s : p.services)
        for (const ServiceItem& i : s.items) {
            ks.protos.push_back(i.proto);
            if (proto_has_ports(i.proto)) {
                for (const uint16_t port : {i.port_lo, i.port_hi}) ks.ports.push_back(port);
                if (i.port_lo > 0) ks.ports.push_back(static_cast<uint16_t>(i.port_lo - 1));
                if (i.port_hi < 65535) ks.ports.push_back(static_cast<uint16_t>(i.port_hi + 1));
            }
            if (proto_is_icmp(i.proto) && i.icmp_type >= 0) ks.icmp_types.push_back(static_cast<uint8_t>(i.icmp_type));
        }
    for (const Segment& s : p.segments) {
        ks.vlans.push_back(s.vlan);
        if (s.vlan < 4095) ks.vlans.push_back(static_cast<uint16_t>(s.vlan + 1));
    }
    return ks;
}

std::vector<PacketKey> draw_keys(const KeySpace& ks, Rng& rng) {
    std::vector<PacketKey> keys;
    for (size_t n = 0; n < kKeys; ++n) {
        PacketKey k;
        const std::vector<IpAddr>& fam = (rng.next() & 1) ? ks.v6 : ks.v4;
        k.src = rng.pick(fam);
        k.dst = rng.pick(fam);
        k.vlan = rng.pick(ks.vlans);
        k.proto = rng.pick(ks.protos);
        if (proto_is_icmp(k.proto)) {
            k.icmp_type = rng.pick(ks.icmp_types);
            k.icmp_code = static_cast<uint8_t>(rng.next() % 4);
        } else {
            k.sport = rng.pick(ks.ports);
            k.dport = rng.pick(ks.ports);
        }
        keys.push_back(k);
    }
    return keys;
}

// First match wins, from the rule set's own definition of a match.
Decision reference(const RuleSet& rs, const PacketKey& k) {
    if (rs.segment_of(k.vlan) == kNoSegment) return {Action::drop, -1, DecisionReason::unknown_segment};
    const Identity s = rs.resolve(k.src), d = rs.resolve(k.dst);
    for (uint32_t i = 0; i < rs.rules().size(); ++i)
        if (rs.rule_matches(i, s, d, k)) return {rs.rules()[i].action, static_cast<int32_t>(i), DecisionReason::rule};
    return {rs.default_action(), -1, DecisionReason::default_action};
}

std::string key_text(const PacketKey& k) {
    return fmt::format("vlan {} {} -> {} proto {} ports {}/{} icmp {}/{}", k.vlan, k.src.str(), k.dst.str(), k.proto,
                       k.sport, k.dport, k.icmp_type, k.icmp_code);
}

void check_decisions(const RuleSet& rs, const std::vector<PacketKey>& keys, const std::vector<bool>& never_matches) {
    const auto shared = std::shared_ptr<const RuleSet>(&rs, [](const RuleSet*) {});
    const PolicyClassifier trie(shared, "trie"), linear(shared, "linear");
    const dataplane::IdentityTable ids(rs);
    for (const PacketKey& k : keys) {
        const Decision want = reference(rs, k);
        const Decision t = trie.classify(k), l = linear.classify(k);
        FUZZ_CHECK(t == want, "{}: trie decides rule {} ({}), the reference rule {} ({})", key_text(k), t.rule,
                   action_name(t.action), want.rule, action_name(want.action));
        FUZZ_CHECK(l == want, "{}: linear decides rule {}, the reference rule {}", key_text(k), l.rule, want.rule);
        if (want.rule >= 0)
            FUZZ_CHECK(!never_matches[static_cast<size_t>(want.rule)], "{}: decided by rule '{}', which the analysis "
                       "says can never match", key_text(k), rs.rules()[static_cast<size_t>(want.rule)].id);
        for (const IpAddr* a : {&k.src, &k.dst}) {
            const Identity x = ids.resolve(*a), y = rs.resolve(*a);
            FUZZ_CHECK(x.endpoint == y.endpoint && x.identity_class == y.identity_class,
                       "IdentityTable::resolve({}) = ({}, {}), RuleSet::resolve = ({}, {})", a->str(), x.endpoint,
                       x.identity_class, y.endpoint, y.identity_class);
        }
    }
}

// Retags one endpoint with tags found elsewhere in the policy; the in-place update must decide as a
// classifier built on the retagged rule set.
void check_retag(const Policy& p, const std::shared_ptr<const RuleSet>& rs, const std::vector<PacketKey>& keys,
                 Rng& rng) {
    if (p.endpoints.empty()) return;
    std::vector<Tags> candidates{Tags{}};
    for (const Endpoint& e : p.endpoints) candidates.push_back(e.tags);
    for (const Group& g : p.groups)
        if (g.kind == Group::Kind::tags) candidates.push_back(g.tags);
    const uint32_t endpoint = static_cast<uint32_t>(rng.next() % p.endpoints.size());
    const Tags tags = rng.pick(candidates);

    PolicyClassifier updated(rs, "trie");
    updated.retag(endpoint, tags);
    const Retagged fresh = rs->with_endpoint_tags(endpoint, tags);
    const PolicyClassifier rebuilt(fresh.rules, "linear");
    for (const PacketKey& k : keys) {
        const Decision a = updated.classify(k), b = rebuilt.classify(k);
        FUZZ_CHECK(a == b, "{}: after retagging endpoint {}, the updated trie decides rule {}, a fresh classifier "
                   "rule {}", key_text(k), p.endpoints[endpoint].name, a.rule, b.rule);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const int status = check_status(data, size);
    const std::string text(reinterpret_cast<const char*>(data), size);
    const LoadResult loaded = load_policy_text(text, kName);
    for (const Diagnostic& d : loaded.diagnostics.items())
        FUZZ_CHECK(d.str().rfind(kName, 0) == 0, "a diagnostic that does not name the file: {}", d.str());
    if (!loaded.policy) {
        FUZZ_CHECK(loaded.diagnostics.error_count() > 0, "a policy refused without an error");
        FUZZ_CHECK(status == 1, "tagwall check said {} for a policy the loader refused", status);
        return 0;
    }
    const Policy& policy = *loaded.policy;
    std::shared_ptr<const RuleSet> rs;
    try {
        rs = RuleSet::compile(policy);
    } catch (const std::exception& e) {
        FUZZ_CHECK(false, "RuleSet::compile threw on a policy the loader accepted: {}", e.what());
    }
    FUZZ_CHECK(status == 0, "tagwall check said {} for a policy that loads and compiles", status);
    FUZZ_CHECK(rs->rules().size() == policy.rules.size(), "{} rules compiled of {}", rs->rules().size(),
               policy.rules.size());

    const Analysis analysis = analyze(policy);
    std::vector<bool> never_matches(policy.rules.size(), false);
    for (const RuleFinding& f : analysis.rules) {
        FUZZ_CHECK(f.rule < policy.rules.size(), "a finding about rule {} of {}", f.rule, policy.rules.size());
        for (const uint32_t other : f.because_of)
            FUZZ_CHECK(other < policy.rules.size() && other != f.rule, "rule {} found because of rule {}", f.rule, other);
        if (f.kind == RuleFinding::Kind::shadowed) {
            for (const uint32_t other : f.because_of)
                FUZZ_CHECK(other < f.rule, "rule {} shadowed by rule {} below it", f.rule, other);
            never_matches[f.rule] = true;
        }
        if (f.kind == RuleFinding::Kind::matches_nothing) never_matches[f.rule] = true;
    }

    Rng rng{hash_of(data, size)};
    const KeySpace ks = key_space(policy);
    const std::vector<PacketKey> keys = draw_keys(ks, rng);
    check_decisions(*rs, keys, never_matches);
    check_retag(policy, rs, keys, rng);
    return 0;
}
