// Build side: small queries over the validated policy model.
#include "rules/policy.hpp"

#include <fmt/format.h>

namespace tagwall::rules {

const char* action_name(Action a) noexcept {
    switch (a) {
    case Action::allow: return "allow";
    case Action::drop: return "drop";
    case Action::reject: return "reject";
    }
    return "?";
}

std::string ServiceItem::str() const {
    const char* name = proto == kProtoTcp      ? "tcp"
                       : proto == kProtoUdp    ? "udp"
                       : proto == kProtoSctp   ? "sctp"
                       : proto == kProtoIcmp   ? "icmp"
                       : proto == kProtoIcmpV6 ? "icmpv6"
                                               : nullptr;
    if (!name) return fmt::format("proto/{}", proto);
    if (proto_has_ports(proto)) {
        if (port_lo == 0 && port_hi == 65535) return name;
        if (port_lo == port_hi) return fmt::format("{}/{}", name, port_lo);
        return fmt::format("{}/{}-{}", name, port_lo, port_hi);
    }
    if (icmp_type < 0) return name;
    return fmt::format("{}/{}", name, icmp_type);
}

bool Policy::is_member(const Endpoint& e, const Group& g) {
    switch (g.kind) {
    case Group::Kind::segment: return e.segment == g.segment;
    case Group::Kind::cidr: return false;  // cidr groups match external addresses only (SPEC §4)
    case Group::Kind::tags:
        for (const auto& [k, v] : g.tags) {
            const auto it = e.tags.find(k);
            if (it == e.tags.end() || it->second != v) return false;
        }
        return true;
    }
    return false;
}

std::vector<uint32_t> Policy::members_of(uint32_t g) const {
    std::vector<uint32_t> out;
    for (uint32_t i = 0; i < endpoints.size(); ++i)
        if (is_member(endpoints[i], groups[g])) out.push_back(i);
    return out;
}

MembershipIndex::MembershipIndex(const std::vector<Group>& groups) : groups_(groups) {
    for (uint32_t g = 0; g < groups.size(); ++g) {
        if (groups[g].kind == Group::Kind::tags && !groups[g].tags.empty()) {
            const auto& [k, v] = *groups[g].tags.begin();
            by_tag_[k + "=" + v].push_back(g);
        } else if (groups[g].kind == Group::Kind::segment) {
            if (by_segment_.size() <= groups[g].segment) by_segment_.resize(groups[g].segment + 1);
            by_segment_[groups[g].segment].push_back(g);
        }
    }
}

DynBitset MembershipIndex::memberships(uint32_t segment, const Tags& tags) const {
    DynBitset out(groups_.size());
    const Endpoint e{.name = {}, .segment = segment, .addrs = {}, .mac = {}, .tags = tags, .pos = {}};
    for (const auto& [k, v] : tags)
        if (const auto it = by_tag_.find(k + "=" + v); it != by_tag_.end())
            for (const auto g : it->second)
                if (Policy::is_member(e, groups_[g])) out.set(g);
    if (segment < by_segment_.size())
        for (const auto g : by_segment_[segment]) out.set(g);
    return out;
}

std::vector<std::vector<uint32_t>> MembershipIndex::members(const std::vector<Endpoint>& endpoints) const {
    std::vector<std::vector<uint32_t>> out(groups_.size());
    for (uint32_t e = 0; e < endpoints.size(); ++e) {
        const DynBitset m = memberships(endpoints[e].segment, endpoints[e].tags);
        for (size_t g = m.next(0); g < m.size(); g = m.next(g + 1)) out[g].push_back(e);
    }
    return out;
}

}  // namespace tagwall::rules
