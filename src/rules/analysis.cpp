// Build side: offline analysis of a validated policy (shadowed, redundant and empty rules) for `tagwall check`.
#include "rules/analysis.hpp"

#include <algorithm>
#include <array>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "rules/bitset.hpp"

namespace tagwall::rules {
namespace {

constexpr std::array<Family, 2> kFamilies = {Family::v4, Family::v6};

// A set of packets of one address family: source atoms × destination atoms × service atoms.
struct Box {
    DynBitset src, dst, svc;

    bool empty() const noexcept { return src.none() || dst.none() || svc.none(); }
    // Service first: it is the smallest set and the one rules most often differ in.
    bool intersects(const Box& o) const noexcept {
        return svc.intersects(o.svc) && dst.intersects(o.dst) && src.intersects(o.src);
    }
};

// A union of disjoint boxes: what is left of a rule's space after taking other rules' boxes out.
class Region {
public:
    Region() = default;
    explicit Region(const Box& b) {
        if (!b.empty()) boxes_.push_back(b);
    }
    bool empty() const noexcept { return boxes_.empty(); }
    size_t size() const noexcept { return boxes_.size(); }
    bool intersects(const Box& e) const noexcept;
    // Takes e out of the region; true when e overlapped it (so it really covered something).
    bool remove(const Box& e);

private:
    std::vector<Box> boxes_;
};

// Identity classes of one address family, and for each group the classes it matches.
struct IdentityAtoms {
    size_t count = 0;
    std::vector<DynBitset> of_group;  // indexed like Policy::groups
};

// Elementary service classes: port intervals per port protocol, types per ICMP protocol, one class per
// other protocol named, and one class for every protocol no service names.
class ServiceAtoms {
public:
    explicit ServiceAtoms(const Policy& policy);
    size_t count() const noexcept { return count_; }
    DynBitset of_item(const ServiceItem& item) const;

private:
    struct Proto {
        uint32_t base = 0;        // index of its first atom
        std::vector<int> starts;  // port protocols: interval starts; ICMP: the types named
    };
    std::map<uint8_t, Proto> protos_;
    size_t count_ = 0;
};

// For each atom of one dimension, the rules whose side contains it: the rules a box can overlap are
// found by a few word-wise ORs instead of a test against every other rule.
class RuleIndex {
public:
    RuleIndex() = default;
    RuleIndex(const std::vector<Box>& boxes, DynBitset Box::*side);
    DynBitset rules_touching(const DynBitset& atoms) const;

private:
    std::vector<DynBitset> by_atom_;
    size_t rules_ = 0;
};

// Decides, rule by rule, whether it is shadowed, redundant, or matches nothing.
class RuleAnalyzer {
public:
    // `memberships`: for each endpoint, its groups, already narrowed to the groups rules refer to.
    RuleAnalyzer(const Policy& policy, const std::vector<DynBitset>& memberships, const AnalysisOptions& options);
    // Call in rule order: a rule found shadowed is skipped as a cover of later ones (everything it could
    // take out was already taken out by the rules that shadow it, so the results are the same).
    std::optional<RuleFinding> analyze(uint32_t rule);

private:
    struct Cover {
        std::array<Region, 2> left;      // per family, what no earlier rule covers
        std::vector<uint32_t> rules;     // earlier rules that covered part of it
        bool over_budget = false;
    };
    struct Takeover {
        bool redundant = false;
        bool by_default = false;
        bool over_budget = false;
        std::vector<uint32_t> rules;     // later rules that take over part of it
    };
    using Overlaps = std::array<DynBitset, 2>;  // per family, the rules whose box meets this rule's
    Overlaps overlapping(uint32_t rule) const;
    Cover cover_by_earlier(uint32_t rule, const Overlaps& overlaps) const;
    Takeover take_over(uint32_t rule, const Overlaps& overlaps, std::array<Region, 2> left) const;
    RuleFinding matches_nothing(uint32_t rule) const;

    const Policy& policy_;
    AnalysisOptions options_;
    std::array<std::vector<Box>, 2> boxes_;  // [family][rule]
    std::array<RuleIndex, 2> by_src_, by_dst_;  // [family]
    RuleIndex by_svc_;                          // services are the same in both families
    DynBitset shadowed_;                        // rules analysed so far and found shadowed
};

std::vector<DynBitset> endpoint_memberships(const Policy& policy);
DynBitset referenced_groups(const Policy& policy);
std::vector<GroupFinding> group_findings(const Policy& policy, const std::vector<DynBitset>& memberships);
RuleFinding make_finding(RuleFinding::Kind kind, uint32_t rule, std::string message);
std::string rule_ref(const Rule& r);
std::string rule_list(const Policy& policy, const std::vector<uint32_t>& rules);
std::string shadow_message(const Policy& policy, const RuleFinding& f);
std::string redundant_message(const Policy& policy, const RuleFinding& f);
void note_mutual_findings(const Policy& policy, std::vector<RuleFinding>& findings);

}  // namespace

Analysis analyze(const Policy& policy, const AnalysisOptions& options) {
    const std::vector<DynBitset> memberships = endpoint_memberships(policy);
    Analysis out;
    // Groups no rule names would only split identities into more atoms than the rules can tell apart.
    const DynBitset referenced = referenced_groups(policy);
    std::vector<DynBitset> referenced_memberships;
    referenced_memberships.reserve(memberships.size());
    for (const auto& m : memberships) referenced_memberships.push_back(m & referenced);
    RuleAnalyzer analyzer(policy, referenced_memberships, options);
    for (uint32_t i = 0; i < policy.rules.size(); ++i)
        if (auto finding = analyzer.analyze(i)) out.rules.push_back(std::move(*finding));
    note_mutual_findings(policy, out.rules);
    out.groups = group_findings(policy, memberships);
    return out;
}

namespace {

// ---- boxes and regions ----

// B − E, for a B that intersects E, as up to three disjoint non-empty boxes: outside E's sources, then
// inside them but outside its destinations, then inside both but outside its services.
struct Pieces {
    std::array<Box, 3> box;
    size_t count = 0;
};

Pieces difference(Box b, const Box& e) {
    Pieces out;
    if (!b.src.subset_of(e.src)) {
        out.box[out.count++] = Box{b.src.minus(e.src), b.dst, b.svc};
        b.src = b.src & e.src;
    }
    if (!b.dst.subset_of(e.dst)) {
        out.box[out.count++] = Box{b.src, b.dst.minus(e.dst), b.svc};
        b.dst = b.dst & e.dst;
    }
    if (!b.svc.subset_of(e.svc)) {
        b.svc = b.svc.minus(e.svc);
        out.box[out.count++] = std::move(b);
    }
    return out;
}

bool Region::intersects(const Box& e) const noexcept {
    return std::any_of(boxes_.begin(), boxes_.end(), [&](const Box& b) { return b.intersects(e); });
}

// Walks down so that a box moved in from the back (already seen, or a new piece disjoint from e) never
// needs a second look.
bool Region::remove(const Box& e) {
    bool hit = false;
    for (size_t i = boxes_.size(); i-- > 0;) {
        if (!boxes_[i].intersects(e)) continue;
        hit = true;
        Pieces pieces = difference(std::move(boxes_[i]), e);
        if (pieces.count == 0) {
            if (i + 1 != boxes_.size()) boxes_[i] = std::move(boxes_.back());
            boxes_.pop_back();
            continue;
        }
        boxes_[i] = std::move(pieces.box[0]);
        for (size_t k = 1; k < pieces.count; ++k) boxes_.push_back(std::move(pieces.box[k]));
    }
    return hit;
}

// ---- identity atoms ----

// For each endpoint, the set of groups it is a member of (tag and segment groups only).  Policy::is_member
// decides; an index narrows the endpoints it is asked about to those carrying the group's first tag or
// living in its segment, which every member does, so that thousands of endpoints × groups stay cheap.
std::vector<DynBitset> endpoint_memberships(const Policy& policy) {
    const MembershipIndex index(policy.groups);
    std::vector<DynBitset> out;
    out.reserve(policy.endpoints.size());
    for (const auto& e : policy.endpoints) out.push_back(index.memberships(e.segment, e.tags));
    return out;
}

bool has_family(const Endpoint& e, Family f) {
    return std::any_of(e.addrs.begin(), e.addrs.end(), [f](const IpAddr& a) { return a.family == f; });
}

// The group sets of the external address space of family f: the space is cut into elementary
// intervals at every cidr prefix boundary and around every endpoint address (those are not external),
// and each interval belongs to the cidr groups that contain it.
std::vector<DynBitset> external_group_sets(const Policy& policy, const DynBitset& referenced, Family f) {
    struct Edge {
        IpAddr at;
        uint32_t group;
        int delta;
    };
    std::vector<Edge> edges;
    IpAddr zero;
    zero.family = f;
    std::set<IpAddr> cuts{zero}, bound;
    for (uint32_t g = 0; g < policy.groups.size(); ++g) {
        if (policy.groups[g].kind != Group::Kind::cidr || !referenced.test(g)) continue;
        for (const auto& p : policy.groups[g].cidrs) {
            if (p.family() != f) continue;
            edges.push_back({p.first(), g, +1});
            cuts.insert(p.first());
            IpAddr end = p.last();
            if (!increment(end)) continue;
            edges.push_back({end, g, -1});
            cuts.insert(end);
        }
    }
    for (const auto& e : policy.endpoints)
        for (IpAddr a : e.addrs) {
            if (a.family != f) continue;
            bound.insert(a);
            cuts.insert(a);
            if (increment(a)) cuts.insert(a);
        }
    std::sort(edges.begin(), edges.end(), [](const Edge& a, const Edge& b) { return a.at < b.at; });
    std::vector<int> depth(policy.groups.size(), 0);
    DynBitset current(policy.groups.size());
    std::set<DynBitset> out;
    size_t k = 0;
    for (const auto& c : cuts) {
        for (; k < edges.size() && edges[k].at <= c; ++k) {
            depth[edges[k].group] += edges[k].delta;
            if (depth[edges[k].group] > 0) current.set(edges[k].group);
            else current.reset(edges[k].group);
        }
        if (!bound.contains(c)) out.insert(current);
    }
    return {out.begin(), out.end()};
}

// Atoms are the distinct group sets among the endpoints of family f and the external intervals: two
// identities in exactly the same (referenced) groups are indistinguishable to every rule.
IdentityAtoms build_identity_atoms(const Policy& policy, const std::vector<DynBitset>& memberships, Family f) {
    std::set<DynBitset> sets;
    for (size_t e = 0; e < policy.endpoints.size(); ++e)
        if (has_family(policy.endpoints[e], f)) sets.insert(memberships[e]);
    for (auto& s : external_group_sets(policy, referenced_groups(policy), f)) sets.insert(std::move(s));

    IdentityAtoms atoms;
    atoms.count = sets.size();
    atoms.of_group.assign(policy.groups.size(), DynBitset(atoms.count));
    size_t atom = 0;
    for (const auto& s : sets) {
        for (size_t g = s.next(0); g < s.size(); g = s.next(g + 1)) atoms.of_group[g].set(atom);
        ++atom;
    }
    return atoms;
}

DynBitset selector_atoms(const Selector& s, const IdentityAtoms& atoms) {
    if (s.any) return DynBitset(atoms.count, true);
    DynBitset out(atoms.count);
    for (const uint32_t g : s.groups) out = out | atoms.of_group[g];
    return out;
}

// ---- service atoms ----

ServiceAtoms::ServiceAtoms(const Policy& policy) {
    std::map<uint8_t, std::set<int>> starts;
    for (const auto& s : policy.services)
        for (const auto& item : s.items) {
            auto& st = starts[item.proto];
            if (proto_has_ports(item.proto)) {
                st.insert(0);
                st.insert(item.port_lo);
                if (item.port_hi < 65535) st.insert(item.port_hi + 1);
            } else if (proto_is_icmp(item.proto) && item.icmp_type >= 0) {
                st.insert(item.icmp_type);
            }
        }
    uint32_t next = 0;
    for (const auto& [proto, st] : starts) {
        Proto p{next, {st.begin(), st.end()}};
        // A port protocol has one atom per interval; any other has one per type named plus "the rest".
        next += static_cast<uint32_t>(p.starts.size() + (proto_has_ports(proto) ? 0 : 1));
        protos_.emplace(proto, std::move(p));
    }
    count_ = next + 1;  // the last atom: every protocol no service names
}

DynBitset ServiceAtoms::of_item(const ServiceItem& item) const {
    DynBitset out(count_);
    const Proto& p = protos_.at(item.proto);
    const auto& starts = p.starts;
    if (proto_has_ports(item.proto)) {
        for (size_t k = 0; k < starts.size(); ++k)
            if (starts[k] >= item.port_lo && starts[k] <= item.port_hi) out.set(p.base + k);
    } else if (proto_is_icmp(item.proto) && item.icmp_type >= 0) {
        const auto it = std::lower_bound(starts.begin(), starts.end(), int{item.icmp_type});
        out.set(p.base + static_cast<size_t>(it - starts.begin()));
    } else {
        for (size_t k = 0; k <= starts.size(); ++k) out.set(p.base + k);  // every type, or the one atom
    }
    return out;
}

DynBitset rule_services(const Policy& policy, const Rule& r, const ServiceAtoms& atoms) {
    if (r.any_service) return DynBitset(atoms.count(), true);
    DynBitset out(atoms.count());
    for (const uint32_t s : r.services)
        for (const auto& item : policy.services[s].items) out = out | atoms.of_item(item);
    return out;
}

// ---- rules ----

RuleIndex::RuleIndex(const std::vector<Box>& boxes, DynBitset Box::*side) : rules_(boxes.size()) {
    if (boxes.empty()) return;
    by_atom_.assign((boxes.front().*side).size(), DynBitset(rules_));
    for (size_t r = 0; r < boxes.size(); ++r) {
        const DynBitset& atoms = boxes[r].*side;
        for (size_t a = atoms.next(0); a < atoms.size(); a = atoms.next(a + 1)) by_atom_[a].set(r);
    }
}

DynBitset RuleIndex::rules_touching(const DynBitset& atoms) const {
    DynBitset out(rules_);
    for (size_t a = atoms.next(0); a < atoms.size(); a = atoms.next(a + 1)) out = out | by_atom_[a];
    return out;
}

RuleAnalyzer::RuleAnalyzer(const Policy& policy, const std::vector<DynBitset>& memberships,
                           const AnalysisOptions& options)
    : policy_(policy), options_(options), shadowed_(policy.rules.size()) {
    const ServiceAtoms services(policy);
    std::vector<DynBitset> svc;
    svc.reserve(policy.rules.size());
    for (const auto& r : policy.rules) svc.push_back(rule_services(policy, r, services));
    for (size_t f = 0; f < kFamilies.size(); ++f) {
        const IdentityAtoms ids = build_identity_atoms(policy, memberships, kFamilies[f]);
        boxes_[f].reserve(policy.rules.size());
        for (size_t i = 0; i < policy.rules.size(); ++i) {
            const Rule& r = policy.rules[i];
            boxes_[f].push_back(Box{selector_atoms(r.from, ids), selector_atoms(r.to, ids), svc[i]});
        }
        by_src_[f] = RuleIndex(boxes_[f], &Box::src);
        by_dst_[f] = RuleIndex(boxes_[f], &Box::dst);
    }
    by_svc_ = RuleIndex(boxes_[0], &Box::svc);
}

std::optional<RuleFinding> RuleAnalyzer::analyze(uint32_t rule) {
    if (boxes_[0][rule].empty() && boxes_[1][rule].empty()) return matches_nothing(rule);
    const std::string over_budget = fmt::format(
        "rule {} was not fully analysed: its traffic split into more than {} pieces; nothing is claimed",
        rule_ref(policy_.rules[rule]), options_.max_boxes);
    const Overlaps overlaps = overlapping(rule);
    Cover cover = cover_by_earlier(rule, overlaps);
    if (cover.over_budget) return make_finding(RuleFinding::Kind::incomplete, rule, over_budget);
    if (cover.left[0].empty() && cover.left[1].empty()) {
        shadowed_.set(rule);
        RuleFinding f = make_finding(RuleFinding::Kind::shadowed, rule, "");
        f.because_of = std::move(cover.rules);
        f.conflicting = std::any_of(f.because_of.begin(), f.because_of.end(), [&](uint32_t j) {
            return policy_.rules[j].action != policy_.rules[rule].action;
        });
        f.message = shadow_message(policy_, f);
        return f;
    }
    Takeover t = take_over(rule, overlaps, std::move(cover.left));
    if (t.over_budget) return make_finding(RuleFinding::Kind::incomplete, rule, over_budget);
    if (!t.redundant) return std::nullopt;
    RuleFinding f = make_finding(RuleFinding::Kind::redundant, rule, "");
    f.because_of = std::move(t.rules);
    f.by_default = t.by_default;
    f.message = redundant_message(policy_, f);
    return f;
}

RuleAnalyzer::Overlaps RuleAnalyzer::overlapping(uint32_t rule) const {
    Overlaps out;
    const DynBitset svc = by_svc_.rules_touching(boxes_[0][rule].svc);
    for (size_t f = 0; f < kFamilies.size(); ++f) {
        const Box& mine = boxes_[f][rule];
        out[f] = mine.empty() ? DynBitset(policy_.rules.size())
                              : svc & by_src_[f].rules_touching(mine.src) & by_dst_[f].rules_touching(mine.dst);
        out[f].reset(rule);
    }
    return out;
}

// Takes every earlier rule's box out of this rule's space, family by family.
RuleAnalyzer::Cover RuleAnalyzer::cover_by_earlier(uint32_t rule, const Overlaps& overlaps) const {
    Cover out;
    std::array<std::vector<uint32_t>, 2> by;
    for (size_t f = 0; f < kFamilies.size(); ++f) {
        out.left[f] = Region(boxes_[f][rule]);
        const DynBitset& earlier = overlaps[f];
        for (size_t j = earlier.next(0); j < rule && !out.left[f].empty(); j = earlier.next(j + 1)) {
            if (shadowed_.test(j)) continue;
            if (out.left[f].remove(boxes_[f][j])) by[f].push_back(static_cast<uint32_t>(j));
            if (out.left[f].size() > options_.max_boxes) {
                out.over_budget = true;
                return out;
            }
        }
    }
    std::set_union(by[0].begin(), by[0].end(), by[1].begin(), by[1].end(), std::back_inserter(out.rules));
    return out;
}

// Walks the later rules over what this rule actually decides (`left`): rules with the same action take
// their part over; one with another action that reaches what is left means the rule matters.  What no
// later rule takes falls to the default action.
RuleAnalyzer::Takeover RuleAnalyzer::take_over(uint32_t rule, const Overlaps& overlaps,
                                               std::array<Region, 2> left) const {
    Takeover out;
    const Action action = policy_.rules[rule].action;
    const DynBitset later = overlaps[0] | overlaps[1];
    for (size_t j = later.next(rule + 1); j < later.size(); j = later.next(j + 1)) {
        const bool same = policy_.rules[j].action == action;
        bool took = false;
        for (size_t f = 0; f < kFamilies.size(); ++f) {
            if (left[f].empty() || !overlaps[f].test(j)) continue;
            const Box& theirs = boxes_[f][j];
            if (!same && left[f].intersects(theirs)) return out;  // a different verdict: it matters
            if (same && left[f].remove(theirs)) took = true;
            if (left[f].size() > options_.max_boxes) {
                out.over_budget = true;
                return out;
            }
        }
        if (took) out.rules.push_back(static_cast<uint32_t>(j));
        if (left[0].empty() && left[1].empty()) {
            out.redundant = true;
            return out;
        }
    }
    out.by_default = true;
    out.redundant = policy_.default_action == action;
    return out;
}

RuleFinding RuleAnalyzer::matches_nothing(uint32_t rule) const {
    auto none_in_both = [&](DynBitset Box::*side) {
        return (boxes_[0][rule].*side).none() && (boxes_[1][rule].*side).none();
    };
    const char* why = none_in_both(&Box::svc)   ? "its services select no packet"
                      : none_in_both(&Box::src) ? "its sources ('from') match no endpoint or address"
                      : none_in_both(&Box::dst) ? "its destinations ('to') match no endpoint or address"
                                                : "its sources and destinations share no address family";
    return make_finding(RuleFinding::Kind::matches_nothing, rule,
                        fmt::format("rule {} can match no packet: {}", rule_ref(policy_.rules[rule]), why));
}

// ---- groups ----

DynBitset referenced_groups(const Policy& policy) {
    DynBitset used(policy.groups.size());
    for (const auto& r : policy.rules)
        for (const Selector* s : {&r.from, &r.to})
            for (const uint32_t g : s->groups) used.set(g);
    return used;
}

std::vector<GroupFinding> group_findings(const Policy& policy, const std::vector<DynBitset>& memberships) {
    const DynBitset used = referenced_groups(policy);
    DynBitset populated(policy.groups.size());
    for (const auto& m : memberships) populated = populated | m;
    std::vector<GroupFinding> out;
    for (uint32_t g = 0; g < policy.groups.size(); ++g) {
        const Group& group = policy.groups[g];
        const std::string name = fmt::format("group '{}' (line {})", group.name, group.pos.line);
        if (group.kind != Group::Kind::cidr && !populated.test(g))
            out.push_back({GroupFinding::Kind::empty, g, name + " has no member endpoints"});
        if (!used.test(g)) out.push_back({GroupFinding::Kind::unused, g, name + " is not used by any rule"});
    }
    return out;
}

// ---- messages ----

RuleFinding make_finding(RuleFinding::Kind kind, uint32_t rule, std::string message) {
    RuleFinding f{};
    f.kind = kind;
    f.rule = rule;
    f.message = std::move(message);
    return f;
}

std::string rule_ref(const Rule& r) { return fmt::format("'{}' (line {})", r.id, r.pos.line); }

// "rule 'a' (line 5)" or "rules 'a' (line 5), 'b' (line 7)", shortened past a handful.
std::string rule_list(const Policy& policy, const std::vector<uint32_t>& rules) {
    constexpr size_t kShown = 5;
    std::string out = rules.size() == 1 ? "rule " : "rules ";
    for (size_t k = 0; k < rules.size() && k < kShown; ++k)
        out += (k ? ", " : "") + rule_ref(policy.rules[rules[k]]);
    if (rules.size() > kShown) out += fmt::format(" and {} more", rules.size() - kShown);
    return out;
}

std::string shadow_message(const Policy& policy, const RuleFinding& f) {
    const Rule& r = policy.rules[f.rule];
    std::string out = fmt::format("rule {} can never match: {} {} all of its traffic", rule_ref(r),
                                  rule_list(policy, f.because_of), f.because_of.size() == 1 ? "covers" : "cover");
    if (!f.conflicting) return out;
    std::set<std::string> theirs;
    for (const uint32_t j : f.because_of)
        if (policy.rules[j].action != r.action) theirs.insert(action_name(policy.rules[j].action));
    return out + fmt::format(" and {} it differently ({} vs {})", f.because_of.size() == 1 ? "decides" : "decide",
                             fmt::join(theirs, "/"), action_name(r.action));
}

std::string redundant_message(const Policy& policy, const RuleFinding& f) {
    const Rule& r = policy.rules[f.rule];
    std::string who = f.because_of.empty() ? "" : rule_list(policy, f.because_of);
    if (f.by_default) who += who.empty() ? "the default action" : " and the default action";
    const bool plural = f.because_of.size() + (f.by_default ? 1 : 0) > 1;
    std::string out = fmt::format("rule {} is redundant: without it, {} {} all of its traffic the same verdict ({})",
                                  rule_ref(r), who, plural ? "give" : "gives", action_name(r.action));
    const bool log_differs = std::any_of(f.because_of.begin(), f.because_of.end(),
                                         [&](uint32_t j) { return policy.rules[j].log != r.log; });
    if (log_differs) out += ", though what is logged would change";
    return out;
}

// "a is redundant because of b" and "b is shadowed by a" are each true alone, but deleting both would
// lose the traffic.  Say so on the redundant finding, so that nobody follows both warnings.
void note_mutual_findings(const Policy& policy, std::vector<RuleFinding>& findings) {
    std::vector<const RuleFinding*> shadowed_by_rule(policy.rules.size(), nullptr);
    for (const auto& f : findings)
        if (f.kind == RuleFinding::Kind::shadowed) shadowed_by_rule[f.rule] = &f;
    for (auto& f : findings) {
        if (f.kind != RuleFinding::Kind::redundant) continue;
        std::vector<uint32_t> mutual;
        for (const uint32_t j : f.because_of) {
            const RuleFinding* s = shadowed_by_rule[j];
            if (s && std::find(s->because_of.begin(), s->because_of.end(), f.rule) != s->because_of.end())
                mutual.push_back(j);
        }
        if (!mutual.empty())
            f.message += fmt::format("; {} {} shadowed by this rule: delete one side, not both",
                                     rule_list(policy, mutual), mutual.size() == 1 ? "is itself" : "are themselves");
    }
}

}  // namespace
}  // namespace tagwall::rules
