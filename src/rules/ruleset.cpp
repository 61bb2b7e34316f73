// Build side: Policy -> RuleSet (identity classes, external address ranges, rule class bitsets).
#include "rules/ruleset.hpp"

#include <algorithm>
#include <map>

#include <fmt/format.h>

namespace tagwall::rules {
namespace {

// Interns group sets: equal sets get the same identity-class index.
class ClassTable {
public:
    uint32_t intern(const DynBitset& groups) {
        const auto [it, fresh] = index_.emplace(groups, static_cast<uint32_t>(classes_.size()));
        if (fresh) classes_.push_back(groups);
        return it->second;
    }
    std::vector<DynBitset> take() { return std::move(classes_); }

private:
    std::map<DynBitset, uint32_t> index_;
    std::vector<DynBitset> classes_;
};

// Cuts the external space of one family at every boundary of every cidr group and gives each piece the
// class of the groups that contain it.  A sweep over sorted boundaries: O((P log P) + P * G/64).
std::vector<ExternalRange> cut_external_space(const Policy& policy, Family family, ClassTable& classes) {
    struct Event {
        IpAddr at;
        uint32_t group;
        int delta;
    };
    std::vector<Event> events;
    IpAddr zero;
    zero.family = family;
    for (uint32_t g = 0; g < policy.groups.size(); ++g) {
        for (const auto& p : policy.groups[g].cidrs) {
            if (p.family() != family) continue;
            events.push_back({p.first(), g, +1});
            IpAddr after = p.last();
            if (increment(after)) events.push_back({after, g, -1});
        }
    }
    std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) { return a.at < b.at; });
    std::vector<int> active(policy.groups.size(), 0);
    DynBitset groups(policy.groups.size());
    std::vector<ExternalRange> out{{zero, classes.intern(groups)}};
    for (size_t i = 0; i < events.size();) {
        const IpAddr at = events[i].at;
        for (; i < events.size() && events[i].at == at; ++i) {
            const auto g = events[i].group;
            active[g] += events[i].delta;
            if (active[g] > 0) groups.set(g); else groups.reset(g);
        }
        const uint32_t cls = classes.intern(groups);
        if (out.back().first == at) out.back().identity_class = cls;
        else if (out.back().identity_class != cls) out.push_back({at, cls});
    }
    // Merge neighbours that ended up in the same class (a replaced first range can match its neighbour).
    out.erase(std::unique(out.begin(), out.end(),
                          [](const ExternalRange& a, const ExternalRange& b) { return a.identity_class == b.identity_class; }),
              out.end());
    return out;
}

DynBitset selector_groups(const Selector& s, size_t group_count) {
    DynBitset out(group_count);
    for (auto g : s.groups) out.set(g);
    return out;
}

DynBitset classes_of(const Selector& s, const std::vector<DynBitset>& classes, size_t group_count) {
    DynBitset out(classes.size(), s.any);
    if (s.any) return out;
    const auto groups = selector_groups(s, group_count);
    for (size_t c = 0; c < classes.size(); ++c)
        if (classes[c].intersects(groups)) out.set(c);
    return out;
}

}  // namespace

bool CompiledRule::service_matches(const PacketKey& k) const noexcept {
    if (any_service) return true;
    for (const auto& s : services) {
        if (s.proto != k.proto) continue;
        if (proto_has_ports(s.proto)) {
            if (k.dport >= s.port_lo && k.dport <= s.port_hi) return true;
        } else if (proto_is_icmp(s.proto)) {
            if (s.icmp_type < 0 || s.icmp_type == k.icmp_type) return true;
        } else {
            return true;
        }
    }
    return false;
}

std::shared_ptr<const RuleSet> RuleSet::compile(const Policy& policy) {
    std::shared_ptr<RuleSet> rs(new RuleSet());
    rs->source_file_ = policy.file;
    rs->segments_ = policy.segments;
    rs->default_action_ = policy.default_action;
    rs->vlan_to_segment_.fill(kNoSegment);
    for (uint32_t s = 0; s < policy.segments.size(); ++s) rs->vlan_to_segment_[policy.segments[s].vlan] = static_cast<int32_t>(s);
    for (const auto& g : policy.groups) rs->group_names_.push_back(g.name);

    ClassTable classes;
    const size_t group_count = policy.groups.size();
    for (uint32_t e = 0; e < policy.endpoints.size(); ++e) {
        const auto& src = policy.endpoints[e];
        DynBitset groups(group_count);
        for (uint32_t g = 0; g < group_count; ++g)
            if (policy.is_member(src, policy.groups[g])) groups.set(g);
        rs->endpoints_.push_back({src.name, src.segment, policy.segments.at(src.segment).vlan, src.addrs, src.mac,
                                  src.tags, classes.intern(groups)});
        for (const auto& a : src.addrs) {
            if (!rs->endpoint_by_addr_.emplace(a, e).second)
                throw PolicyError({{Severity::error, src.pos, fmt::format("address {} bound twice", a.str())}});
        }
    }
    rs->external_v4_ = cut_external_space(policy, Family::v4, classes);
    rs->external_v6_ = cut_external_space(policy, Family::v6, classes);
    rs->classes_ = classes.take();

    for (const auto& r : policy.rules) {
        CompiledRule cr{.id = r.id, .action = r.action, .log = r.log,
                        .from_classes = classes_of(r.from, rs->classes_, group_count),
                        .to_classes = classes_of(r.to, rs->classes_, group_count),
                        .any_service = r.any_service, .services = {}, .pos = r.pos};
        for (auto s : r.services)
            for (const auto& item : policy.services.at(s).items) cr.services.push_back(item);
        rs->rules_.push_back(std::move(cr));
    }
    return rs;
}

Identity RuleSet::resolve(const IpAddr& addr) const noexcept {
    if (const auto it = endpoint_by_addr_.find(addr); it != endpoint_by_addr_.end())
        return {it->second, endpoints_[it->second].identity_class};
    const auto& ranges = external_ranges(addr.family);
    // The last range whose first address is <= addr; ranges[0] starts at the family's zero address.
    const auto it = std::upper_bound(ranges.begin(), ranges.end(), addr,
                                     [](const IpAddr& a, const ExternalRange& r) { return a < r.first; });
    return {kExternal, std::prev(it)->identity_class};
}

bool RuleSet::rule_matches(uint32_t rule, const Identity& src, const Identity& dst, const PacketKey& k) const noexcept {
    const auto& r = rules_[rule];
    return r.from_classes.test(src.identity_class) && r.to_classes.test(dst.identity_class) && r.service_matches(k);
}

}  // namespace tagwall::rules
