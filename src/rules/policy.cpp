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

bool Policy::is_member(const Endpoint& e, const Group& g) const {
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

}  // namespace tagwall::rules
