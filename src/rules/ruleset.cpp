// Build side: Policy -> RuleSet (identity classes, external address ranges, rule class bitsets).
#include "rules/ruleset.hpp"

#include <algorithm>
#include <map>
#include <numeric>

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

}  // namespace

namespace {

// For each group, the identity classes that contain it.
std::vector<std::vector<uint32_t>> classes_by_group(const std::vector<DynBitset>& classes, size_t group_count) {
    std::vector<std::vector<uint32_t>> out(group_count);
    for (uint32_t c = 0; c < classes.size(); ++c)
        for (size_t g = classes[c].next(0); g < classes[c].size(); g = classes[c].next(g + 1)) out[g].push_back(c);
    return out;
}

DynBitset classes_of(const Selector& s, size_t class_count, const std::vector<std::vector<uint32_t>>& by_group) {
    DynBitset out(class_count, s.any);
    if (s.any) return out;
    for (const auto g : s.groups)
        for (const auto c : by_group[g]) out.set(c);
    return out;
}

bool selects(const Selector& s, const DynBitset& groups) {
    if (s.any) return true;
    for (const auto g : s.groups)
        if (groups.test(g)) return true;
    return false;
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
    rs->membership_ = std::make_shared<const MembershipIndex>(policy.groups);
    for (uint32_t e = 0; e < policy.endpoints.size(); ++e) {
        const auto& src = policy.endpoints[e];
        const DynBitset groups = rs->membership_->memberships(src.segment, src.tags);
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
    rs->renumber_classes();
    const auto by_group = classes_by_group(rs->classes_, group_count);

    for (const auto& r : policy.rules) {
        CompiledRule cr{.id = r.id, .action = r.action, .log = r.log,
                        .from_classes = classes_of(r.from, rs->classes_.size(), by_group),
                        .to_classes = classes_of(r.to, rs->classes_.size(), by_group),
                        .from = r.from, .to = r.to, .any_service = r.any_service, .services = {}, .pos = r.pos};
        for (auto s : r.services)
            for (const auto& item : policy.services.at(s).items) cr.services.push_back(item);
        rs->rules_.push_back(std::move(cr));
    }
    return rs;
}

// Rules select sets of identity classes, and the field engines see those sets as runs of consecutive
// class numbers: a rule costs (runs of its sources) x (runs of its destinations) field rules.  Numbering
// the classes so that members of the same group sit together keeps those runs few: classes are sorted
// by their memberships, read in the order of the groups with the most member classes first.
void RuleSet::renumber_classes() {
    const size_t n = classes_.size(), groups = group_names_.size();
    std::vector<size_t> group_weight(groups, 0);
    for (const auto& c : classes_)
        for (size_t g = c.next(0); g < c.size(); g = c.next(g + 1)) ++group_weight[g];
    std::vector<size_t> group_order(groups);
    std::iota(group_order.begin(), group_order.end(), 0);
    std::stable_sort(group_order.begin(), group_order.end(),
                     [&](size_t a, size_t b) { return group_weight[a] > group_weight[b]; });
    std::vector<uint32_t> rank(groups);
    for (size_t i = 0; i < groups; ++i) rank[group_order[i]] = static_cast<uint32_t>(i);
    // Each class as the sorted ranks of its groups; comparing those lists is comparing memberships
    // group by group in rank order, at the cost of the (few) groups a class has.
    std::vector<std::vector<uint32_t>> ranks(n);
    for (size_t c = 0; c < n; ++c) {
        for (size_t g = classes_[c].next(0); g < classes_[c].size(); g = classes_[c].next(g + 1))
            ranks[c].push_back(rank[g]);
        std::sort(ranks[c].begin(), ranks[c].end());
    }
    std::vector<uint32_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
        const auto& ra = ranks[a];
        const auto& rb = ranks[b];
        const auto [ia, ib] = std::mismatch(ra.begin(), ra.end(), rb.begin(), rb.end());
        if (ia == ra.end()) return false;  // a's groups are a prefix of b's: b has one more, b first
        if (ib == rb.end()) return true;   // and the other way round
        return *ia < *ib;                  // the first group they differ on: a has the heavier one
    });
    std::vector<uint32_t> new_number(n);
    std::vector<DynBitset> renumbered(n);
    for (uint32_t i = 0; i < n; ++i) {
        new_number[order[i]] = i;
        renumbered[i] = std::move(classes_[order[i]]);
    }
    classes_ = std::move(renumbered);
    for (auto& e : endpoints_) e.identity_class = new_number[e.identity_class];
    for (auto* ranges : {&external_v4_, &external_v6_})
        for (auto& r : *ranges) r.identity_class = new_number[r.identity_class];
}

Retagged RuleSet::with_endpoint_tags(uint32_t endpoint, Tags tags) const {
    if (endpoint >= endpoints_.size()) throw std::out_of_range(fmt::format("no endpoint #{}", endpoint));
    std::shared_ptr<RuleSet> rs(new RuleSet(*this));
    CompiledEndpoint& e = rs->endpoints_[endpoint];
    e.tags = std::move(tags);
    const DynBitset groups = membership_->memberships(e.segment, e.tags);
    Retagged out;
    const auto found = std::find(rs->classes_.begin(), rs->classes_.end(), groups);
    out.identity_class = static_cast<uint32_t>(found - rs->classes_.begin());
    if (found == rs->classes_.end()) {
        out.new_class = true;
        rs->classes_.push_back(groups);
        // Only the rules that select the new class change; test() reads bits past a set's end as 0.
        const size_t n = rs->classes_.size();
        for (auto& r : rs->rules_) {
            if (selects(r.from, groups)) {
                r.from_classes.resize(n);
                r.from_classes.set(n - 1);
            }
            if (selects(r.to, groups)) {
                r.to_classes.resize(n);
                r.to_classes.set(n - 1);
            }
        }
    }
    e.identity_class = out.identity_class;
    out.rules = std::move(rs);
    return out;
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
