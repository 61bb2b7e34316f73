// The compiled, immutable rule set: what the dataplane reads.
//
// Concurrency contract: `compile` runs on the control thread (allocates, may throw PolicyError).  The
// result is never modified after it is built; worker cores hold it through `const RuleSet&` and call
// only the const, noexcept queries (`segment_of`, `resolve`, `rule_matches`).  Publication to workers
// is the control plane's business (RCU), not this file's.
//
// Identity model (SPEC §4): an address bound to an endpoint resolves to that endpoint whatever segment
// the packet is on; any other address is external.  Rules never look at an address directly, only at
// groups, so every identity is reduced to an *identity class*: the set of groups it belongs to.  All
// endpoints with the same memberships share a class; the external address space of each family is cut
// into ranges by the cidr groups' boundaries, and each range has a class.  A rule side is then a bitset
// over classes, and "does rule r match this source" is one bit test.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "rules/bitset.hpp"
#include "rules/policy.hpp"

namespace tagwall::rules {

inline constexpr uint32_t kExternal = UINT32_MAX;  // "no endpoint": the address is external
inline constexpr int32_t kNoSegment = -1;

// Everything a classifier needs to know about a packet.  For ICMP/ICMPv6, type and code are in
// icmp_type/icmp_code and the ports are ignored.
struct PacketKey {
    uint16_t vlan = 0;  // 0 = untagged
    IpAddr src, dst;    // same family
    uint8_t proto = 0;
    uint16_t sport = 0, dport = 0;
    uint8_t icmp_type = 0, icmp_code = 0;
};

enum class DecisionReason : uint8_t { rule, default_action, unknown_segment };

struct Decision {
    Action action = Action::drop;
    int32_t rule = -1;  // index into RuleSet::rules(); -1 when the default or the segment decided
    DecisionReason reason = DecisionReason::default_action;
    friend bool operator==(const Decision&, const Decision&) = default;
};

struct Identity {
    uint32_t endpoint = kExternal;  // index into RuleSet::endpoints(), or kExternal
    uint32_t identity_class = 0;    // index into RuleSet::identity_classes()
};

struct CompiledEndpoint {
    std::string name;
    uint32_t segment = 0;
    uint16_t vlan = 0;
    std::vector<IpAddr> addrs;
    std::optional<MacAddr> mac;
    Tags tags;
    uint32_t identity_class = 0;
};

struct CompiledRule {
    std::string id;
    Action action = Action::drop;
    bool log = false;
    DynBitset from_classes;  // identity classes this rule accepts as source
    DynBitset to_classes;    // ... and as destination
    Selector from, to;       // the groups behind them, to place identity classes made later (retagging)
    bool any_service = true;
    std::vector<ServiceItem> services;  // flattened from the named services; any of them matches
    SourcePos pos;

    bool service_matches(const PacketKey& k) const noexcept;
};

// One range of the external address space of a family and its identity class; ranges are sorted by
// `first` and cover the whole family, each ending where the next begins.
struct ExternalRange {
    IpAddr first;
    uint32_t identity_class = 0;
};

class RuleSet;

// The result of retagging an endpoint: a new rule set (this one is immutable), the identity class the
// endpoint now has, and whether that class is new (then rules may need new entries for it).
struct Retagged {
    std::shared_ptr<const RuleSet> rules;
    uint32_t identity_class = 0;
    bool new_class = false;
};

class RuleSet {
public:
    // Compiles a validated policy.  Throws PolicyError when the policy is inconsistent in a way the
    // loader could not see (it never is when it came from load_policy_*).
    static std::shared_ptr<const RuleSet> compile(const Policy& policy);

    // A copy of this rule set in which `endpoint` carries `tags`: its group memberships are recomputed
    // and it moves to the identity class of its new memberships, created when no identity had them;
    // no rule is recompiled.  Control side; throws std::out_of_range on a bad endpoint index.
    Retagged with_endpoint_tags(uint32_t endpoint, Tags tags) const;

    // --- run side: const, noexcept, no allocation ---
    // Segment index of a VLAN, or kNoSegment when the VLAN names no segment.
    int32_t segment_of(uint16_t vlan) const noexcept { return vlan < 4096 ? vlan_to_segment_[vlan] : kNoSegment; }
    Identity resolve(const IpAddr& addr) const noexcept;
    bool rule_matches(uint32_t rule, const Identity& src, const Identity& dst, const PacketKey& k) const noexcept;

    // --- read-only model, for classifiers, tools and the control plane ---
    const std::vector<CompiledRule>& rules() const noexcept { return rules_; }
    const std::vector<CompiledEndpoint>& endpoints() const noexcept { return endpoints_; }
    const std::vector<DynBitset>& identity_classes() const noexcept { return classes_; }  // class -> groups
    const std::vector<ExternalRange>& external_ranges(Family f) const noexcept {
        return f == Family::v4 ? external_v4_ : external_v6_;
    }
    const std::vector<std::string>& group_names() const noexcept { return group_names_; }
    const std::vector<Segment>& segments() const noexcept { return segments_; }
    Action default_action() const noexcept { return default_action_; }
    const std::string& source_file() const noexcept { return source_file_; }

private:
    RuleSet() = default;
    void renumber_classes();

    std::string source_file_;
    std::vector<Segment> segments_;
    std::array<int32_t, 4096> vlan_to_segment_{};
    std::vector<CompiledEndpoint> endpoints_;
    std::unordered_map<IpAddr, uint32_t> endpoint_by_addr_;
    std::vector<DynBitset> classes_;
    std::vector<ExternalRange> external_v4_, external_v6_;
    std::vector<std::string> group_names_;
    std::shared_ptr<const MembershipIndex> membership_;  // group definitions, indexed; shared by retagged copies
    std::vector<CompiledRule> rules_;
    Action default_action_ = Action::drop;
};

}  // namespace tagwall::rules
