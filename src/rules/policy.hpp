// The policy as the operator wrote it: policy language v1 (SPEC §4), validated, with source positions.
//
// Build side only.  `load_policy` (policy_loader.hpp) produces a Policy in which every cross-reference
// has been resolved to an index and every value checked; `compile` (ruleset.hpp) turns it into the
// immutable RuleSet the dataplane reads.  Nothing here is touched by worker cores.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <unordered_map>

#include "rules/address.hpp"
#include "rules/bitset.hpp"
#include "rules/diagnostics.hpp"

namespace tagwall::rules {

enum class Action : uint8_t { allow, drop, reject };
const char* action_name(Action a) noexcept;

// IP protocol numbers the language names.
inline constexpr uint8_t kProtoIcmp = 1;
inline constexpr uint8_t kProtoTcp = 6;
inline constexpr uint8_t kProtoUdp = 17;
inline constexpr uint8_t kProtoIcmpV6 = 58;
inline constexpr uint8_t kProtoSctp = 132;

constexpr bool proto_has_ports(uint8_t p) noexcept { return p == kProtoTcp || p == kProtoUdp || p == kProtoSctp; }
constexpr bool proto_is_icmp(uint8_t p) noexcept { return p == kProtoIcmp || p == kProtoIcmpV6; }

using Tags = std::map<std::string, std::string>;

struct Segment {
    std::string name;
    uint16_t vlan = 0;  // 0 = untagged
    SourcePos pos;
};

struct Endpoint {
    std::string name;
    uint32_t segment = 0;  // index into Policy::segments
    std::vector<IpAddr> addrs;
    std::optional<MacAddr> mac;
    Tags tags;
    SourcePos pos;
};

struct Group {
    enum class Kind : uint8_t { tags, cidr, segment };
    std::string name;
    Kind kind = Kind::tags;
    Tags tags;                   // Kind::tags: an endpoint is a member when it carries all of these
    std::vector<Prefix> cidrs;   // Kind::cidr: external addresses inside any of these
    uint32_t segment = 0;        // Kind::segment: every endpoint of this segment
    SourcePos pos;
};

// One element of a service: a protocol and, for TCP/UDP/SCTP, a destination port range, or for
// ICMP/ICMPv6 a type.  `tcp` alone means every port; `icmp` alone every type.
struct ServiceItem {
    uint8_t proto = 0;
    uint16_t port_lo = 0, port_hi = 65535;  // meaningful when proto_has_ports(proto)
    int16_t icmp_type = -1;                 // -1 = any type; meaningful when proto_is_icmp(proto)
    SourcePos pos;
    std::string str() const;                // back to the language's own text: "tcp/1024-65535"
};

struct Service {
    std::string name;  // empty for a service written inline in a rule ("services: [tcp/8443]")
    std::vector<ServiceItem> items;
    SourcePos pos;
};

// A side of a rule: `any`, or a union of groups.
struct Selector {
    bool any = false;
    std::vector<uint32_t> groups;  // indices into Policy::groups
};

struct Rule {
    std::string id;
    Selector from, to;
    bool any_service = true;
    std::vector<uint32_t> services;  // indices into Policy::services
    Action action = Action::drop;
    bool log = false;
    std::string description;
    SourcePos pos;
};

struct Policy {
    std::string file;
    int version = 1;
    std::vector<Segment> segments;
    std::vector<Endpoint> endpoints;
    std::vector<Group> groups;
    std::vector<Service> services;
    std::vector<Rule> rules;
    Action default_action = Action::drop;
    SourcePos default_pos;

    // Endpoint indices that are members of group g (tag and segment groups; cidr groups have none).
    std::vector<uint32_t> members_of(uint32_t g) const;
    static bool is_member(const Endpoint& e, const Group& g);
};

// Which groups an endpoint belongs to, without testing every group: tag groups are filed under one of
// their tags ("k=v"), segment groups under their segment, and only those candidates are tested, so a
// policy with thousands of groups and endpoints costs (endpoints x their tags), not (endpoints x groups).
class MembershipIndex {
public:
    explicit MembershipIndex(const std::vector<Group>& groups);
    DynBitset memberships(uint32_t segment, const Tags& tags) const;
    // For every group, its member endpoints (tag and segment groups; cidr groups have none).
    std::vector<std::vector<uint32_t>> members(const std::vector<Endpoint>& endpoints) const;

private:
    std::vector<Group> groups_;
    std::unordered_map<std::string, std::vector<uint32_t>> by_tag_;
    std::vector<std::vector<uint32_t>> by_segment_;
};

}  // namespace tagwall::rules
