// Build side: policy.yaml -> validated Policy, with every error positioned.
//
// The walk is defensive by design: every node is type-checked before use, every error is recorded and
// the walk goes on with the next element, and sections that depend on others (endpoints on segments,
// rules on groups and services) still run when their dependencies had errors, only skipping the
// references they cannot resolve.  Nothing here trusts yaml-cpp's conversions; scalars are parsed by hand.
#include "rules/policy_loader.hpp"

#include <algorithm>
#include <charconv>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "rules/service_syntax.hpp"
#include "rules/yaml_reader.hpp"

namespace tagwall::rules {
namespace {

// After this many errors the loader stops: the rest would be noise, and an alias bomb of bad elements
// must not turn into gigabytes of diagnostics.
constexpr size_t kMaxErrors = 1000;

// Each node the loader visits costs one unit; aliases can make a small file expand into a huge tree,
// and this bounds the work whatever the document does.
constexpr size_t kVisitBudget = 20'000'000;

bool valid_name(std::string_view s) {
    if (s.empty() || s.size() > 64) return false;
    for (char c : s) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                        c == '_' || c == '.' || c == ':';
        if (!ok) return false;
    }
    return true;
}

class Loader : public YamlReader {
public:
    Loader(std::string file, Diagnostics& diag) : YamlReader(std::move(file), diag, kMaxErrors, kVisitBudget) {
        policy_.file = file_;
    }

    std::optional<Policy> load(const YAML::Node& root);

private:

    // --- sections, in dependency order ---
    void load_version(const YAML::Node& n);
    void load_segments(const YAML::Node& n);
    void load_endpoints(const YAML::Node& n);
    void load_endpoint(const YAML::Node& n);
    void load_endpoint_addresses(const YAML::Node& n, Endpoint& e);
    void load_groups(const YAML::Node& n);
    void load_group(const YAML::Node& key, const YAML::Node& n);
    void warn_empty_groups();
    void load_services(const YAML::Node& n);
    std::vector<ServiceItem> load_service_items(const YAML::Node& n, const std::string& service);
    void load_rules(const YAML::Node& n);
    void load_rule(const YAML::Node& n);
    Selector load_selector(const YAML::Node& n, const std::string& rule, const char* side);
    void load_rule_services(const YAML::Node& n, Rule& r);
    void load_default(const YAML::Node& n);

    // --- typed accessors; each reports its own error and returns nullopt/false on bad input ---
    std::optional<std::string> name(const YAML::Node& n, const std::string& what);
    std::optional<bool> boolean(const YAML::Node& n, const std::string& what);
    std::optional<Tags> tags(const YAML::Node& n, const std::string& what);
    std::vector<YAML::Node> scalar_or_list(const YAML::Node& n, const std::string& what);
    std::optional<uint32_t> lookup(const std::unordered_map<std::string, uint32_t>& table, const YAML::Node& n,
                                   const std::string& kind, const std::string& what);
    std::optional<YAML::Node> required(const std::unordered_map<std::string, YAML::Node>& keys, const char* key,
                                       const YAML::Node& owner, const std::string& what, const char* hint = "");

    void warning(const YAML::Node& n, std::string msg) { diag_.warning(pos(n), std::move(msg)); }

    Policy policy_;
    std::unordered_map<std::string, uint32_t> segment_by_name_, endpoint_by_name_, group_by_name_, service_by_name_;
    std::unordered_map<uint16_t, uint32_t> segment_by_vlan_;
    std::unordered_map<IpAddr, uint32_t> endpoint_by_addr_;
    std::map<std::pair<uint32_t, MacAddr>, uint32_t> endpoint_by_mac_;  // (segment, mac)
    std::unordered_map<std::string, SourcePos> rule_ids_;
};

// ---------------------------------------------------------------------------------------------------
// Top level

std::optional<Policy> Loader::load(const YAML::Node& root) {
    if (!root.IsDefined() || root.IsNull()) {
        diag_.error({file_, 1, 1}, "the policy is empty; it needs at least 'version: 1' and some rules");
        return std::nullopt;
    }
    if (!expect(root, YAML::NodeType::Map, "the policy file")) return std::nullopt;
    const auto keys = keys_of(root, {"version", "segments", "endpoints", "groups", "services", "rules", "default"},
                              "the policy");
    if (const auto it = keys.find("version"); it != keys.end())
        load_version(it->second);
    else
        diag_.error(pos(root), "missing 'version' (write 'version: 1')");
    auto section = [&](const char* key, void (Loader::*fn)(const YAML::Node&)) {
        if (const auto it = keys.find(key); it != keys.end()) (this->*fn)(it->second);
    };
    section("segments", &Loader::load_segments);
    section("endpoints", &Loader::load_endpoints);
    section("groups", &Loader::load_groups);
    warn_empty_groups();
    section("services", &Loader::load_services);
    section("rules", &Loader::load_rules);
    if (const auto it = keys.find("default"); it != keys.end())
        load_default(it->second);
    else
        diag_.warning(pos(root), "no 'default' action given; using 'drop' (write 'default: drop' to say so)");
    if (!keys.contains("rules")) diag_.warning(pos(root), "the policy has no 'rules': the default decides everything");
    if (diag_.has_errors()) return std::nullopt;
    return std::move(policy_);
}

void Loader::load_version(const YAML::Node& n) {
    const auto v = scalar(n, "'version'");
    if (v && *v != "1") error(n, fmt::format("unsupported policy version '{}': this tagwall reads version 1", *v));
}

void Loader::load_default(const YAML::Node& n) {
    const auto v = scalar(n, "'default'");
    if (!v) return;
    policy_.default_pos = pos(n);
    if (*v == "drop") policy_.default_action = Action::drop;
    else if (*v == "reject") policy_.default_action = Action::reject;
    else if (*v == "allow") policy_.default_action = Action::allow;
    else error(n, fmt::format("'default' must be drop, reject or allow, not '{}'", *v));
}

// ---------------------------------------------------------------------------------------------------
// Segments and endpoints

void Loader::load_segments(const YAML::Node& n) {
    if (n.IsNull()) return;
    if (!expect(n, YAML::NodeType::Sequence, "'segments' (a list of {name, vlan})")) return;
    for (const auto& item : n) {
        if (!visit(item) || !expect(item, YAML::NodeType::Map, "a segment ({name: web, vlan: 10})")) continue;
        const auto keys = keys_of(item, {"name", "vlan", "description"}, "a segment");
        const auto name_node = required(keys, "name", item, "a segment");
        const auto vlan_node = required(keys, "vlan", item, "a segment");
        if (!name_node || !vlan_node) continue;
        const auto seg_name = name(*name_node, "segment name");
        const auto vlan = number(*vlan_node, "'vlan'", 0, 4094);
        if (!seg_name || !vlan) continue;
        if (segment_by_name_.contains(*seg_name)) {
            error(*name_node, fmt::format("duplicate segment name '{}' (first defined at {})", *seg_name,
                                          policy_.segments[segment_by_name_[*seg_name]].pos.str()));
            continue;
        }
        const auto v16 = static_cast<uint16_t>(*vlan);
        if (const auto it = segment_by_vlan_.find(v16); it != segment_by_vlan_.end()) {
            error(*vlan_node, fmt::format("vlan {} is already segment '{}'; a VLAN carries one segment", v16,
                                          policy_.segments[it->second].name));
            continue;
        }
        const auto idx = static_cast<uint32_t>(policy_.segments.size());
        policy_.segments.push_back({*seg_name, v16, pos(item)});
        segment_by_name_[*seg_name] = idx;
        segment_by_vlan_[v16] = idx;
    }
}

void Loader::load_endpoints(const YAML::Node& n) {
    if (n.IsNull()) return;
    if (!expect(n, YAML::NodeType::Sequence, "'endpoints' (a list of {name, segment, ip, mac, tags})")) return;
    for (const auto& item : n)
        if (visit(item) && expect(item, YAML::NodeType::Map, "an endpoint ({name, segment, ip, tags})"))
            load_endpoint(item);
}

void Loader::load_endpoint(const YAML::Node& n) {
    const auto keys = keys_of(n, {"name", "segment", "ip", "mac", "tags", "description"}, "an endpoint");
    const auto name_node = required(keys, "name", n, "an endpoint");
    if (!name_node) return;
    const auto ep_name = name(*name_node, "endpoint name");
    if (!ep_name) return;
    const std::string what = fmt::format("endpoint '{}'", *ep_name);
    Endpoint e{.name = *ep_name, .pos = pos(n)};
    bool ok = true;
    if (endpoint_by_name_.contains(*ep_name)) {
        error(*name_node, fmt::format("duplicate endpoint name '{}' (first defined at {})", *ep_name,
                                      policy_.endpoints[endpoint_by_name_[*ep_name]].pos.str()));
        ok = false;
    }
    if (const auto seg = required(keys, "segment", n, what)) {
        const auto idx = lookup(segment_by_name_, *seg, "segment", what);
        ok = ok && idx.has_value();
        e.segment = idx.value_or(0);
    } else {
        ok = false;
    }
    if (const auto ip = required(keys, "ip", n, what)) load_endpoint_addresses(*ip, e);
    if (e.addrs.empty()) ok = false;
    if (const auto it = keys.find("mac"); it != keys.end()) {
        if (const auto text = scalar(it->second, fmt::format("'mac' of {}", what))) {
            std::string why;
            e.mac = MacAddr::parse(*text, &why);
            if (!e.mac) error(it->second, why), ok = false;
        } else {
            ok = false;
        }
    }
    if (const auto it = keys.find("tags"); it != keys.end()) {
        auto t = tags(it->second, fmt::format("'tags' of {}", what));
        ok = ok && t.has_value();
        if (t) e.tags = std::move(*t);
    }
    if (!ok) return;
    const auto idx = static_cast<uint32_t>(policy_.endpoints.size());
    if (e.mac) {
        const auto [it, fresh] = endpoint_by_mac_.emplace(std::pair{e.segment, *e.mac}, idx);
        if (!fresh)
            return error(keys.at("mac"), fmt::format("MAC {} is already bound to endpoint '{}' in segment '{}'",
                                                     e.mac->str(), policy_.endpoints[it->second].name,
                                                     policy_.segments[e.segment].name));
    }
    for (const auto& a : e.addrs) endpoint_by_addr_[a] = idx;
    endpoint_by_name_[e.name] = idx;
    policy_.endpoints.push_back(std::move(e));
}

void Loader::load_endpoint_addresses(const YAML::Node& n, Endpoint& e) {
    const std::string what = fmt::format("'ip' of endpoint '{}'", e.name);
    if (n.IsMap()) return (void)scalar_or_list(n, what);  // reports the wrong type
    const auto items = scalar_or_list(n, what);
    bool bad = false;
    for (const auto& item : items) {
        const auto text = scalar(item, what);
        if (!text) { bad = true; continue; }
        const auto addr = IpAddr::parse(*text);
        if (!addr) {
            const bool looks_like_prefix = text->find('/') != std::string::npos;
            error(item, looks_like_prefix
                            ? fmt::format("'{}': an endpoint binds addresses, not prefixes (use a cidr group for ranges)", *text)
                            : fmt::format("'{}' is not an IPv4 or IPv6 address", *text));
            bad = true;
            continue;
        }
        if (const auto it = endpoint_by_addr_.find(*addr); it != endpoint_by_addr_.end()) {
            error(item, fmt::format("address {} is already bound to endpoint '{}'; an address identifies one workload",
                                    addr->str(), policy_.endpoints[it->second].name));
            bad = true;
            continue;
        }
        if (std::find(e.addrs.begin(), e.addrs.end(), *addr) != e.addrs.end()) {
            error(item, fmt::format("address {} is listed twice", addr->str()));
            bad = true;
            continue;
        }
        e.addrs.push_back(*addr);
    }
    if (items.empty() && !bad) error(n, fmt::format("{} lists no address; an endpoint needs at least one", what));
    if (bad) e.addrs.clear();
}

// ---------------------------------------------------------------------------------------------------
// Groups and services

void Loader::load_groups(const YAML::Node& n) {
    if (n.IsNull()) return;
    if (!expect(n, YAML::NodeType::Map, "'groups' (a map of NAME: {tags|cidr|segment: ...})")) return;
    std::unordered_map<std::string, SourcePos> seen;
    for (auto it = n.begin(); it != n.end(); ++it) {
        if (!visit(it->second)) break;
        const auto group_name = name(it->first, "group name");
        if (!group_name) continue;
        if (*group_name == "any") {
            error(it->first, "'any' is reserved (it already means every source or destination)");
            continue;
        }
        if (const auto [s, fresh] = seen.emplace(*group_name, pos(it->first)); !fresh) {
            error(it->first, fmt::format("duplicate group '{}' (first defined at {})", *group_name, s->second.str()));
            continue;
        }
        load_group(it->first, it->second);
    }
}

void Loader::load_group(const YAML::Node& key, const YAML::Node& n) {
    const std::string group_name = key.Scalar();
    const std::string what = fmt::format("group '{}'", group_name);
    if (!expect(n, YAML::NodeType::Map, fmt::format("{} (one of {{tags: ...}}, {{cidr: [...]}}, {{segment: NAME}})", what)))
        return;
    const auto keys = keys_of(n, {"tags", "cidr", "segment", "description"}, what);
    const int kinds = int(keys.contains("tags")) + int(keys.contains("cidr")) + int(keys.contains("segment"));
    if (kinds != 1) {
        error(n, fmt::format("{} must have exactly one of 'tags', 'cidr' or 'segment' (it has {})", what, kinds));
        return;
    }
    Group g{.name = group_name, .pos = pos(key)};
    if (keys.contains("tags")) {
        g.kind = Group::Kind::tags;
        auto t = tags(keys.at("tags"), fmt::format("'tags' of {}", what));
        if (!t) return;
        if (t->empty()) return error(keys.at("tags"), fmt::format("{} has no tags; it would match every endpoint "
                                                                  "(use 'any' or a segment group)", what));
        g.tags = std::move(*t);
    } else if (keys.contains("segment")) {
        g.kind = Group::Kind::segment;
        const auto idx = lookup(segment_by_name_, keys.at("segment"), "segment", what);
        if (!idx) return;
        g.segment = *idx;
    } else {
        g.kind = Group::Kind::cidr;
        bool bad = false;
        for (const auto& item : scalar_or_list(keys.at("cidr"), fmt::format("'cidr' of {}", what))) {
            const auto text = scalar(item, fmt::format("'cidr' of {}", what));
            std::string why;
            const auto p = text ? Prefix::parse(*text, &why) : std::nullopt;
            if (!p) {
                if (text) error(item, fmt::format("bad CIDR: {}", why));
                bad = true;
                continue;
            }
            g.cidrs.push_back(*p);
        }
        if (bad) return;
        if (g.cidrs.empty()) return error(keys.at("cidr"), fmt::format("{} lists no prefix", what));
    }
    group_by_name_[group_name] = static_cast<uint32_t>(policy_.groups.size());
    policy_.groups.push_back(std::move(g));
}

// A tag or segment group with no member is legal (membership is dynamic: endpoints may be tagged into
// it at runtime) but is usually a typo, so it is a warning (SPEC §4).
void Loader::warn_empty_groups() {
    const auto members = MembershipIndex(policy_.groups).members(policy_.endpoints);
    for (uint32_t g = 0; g < policy_.groups.size(); ++g) {
        const auto& group = policy_.groups[g];
        if (group.kind == Group::Kind::cidr || !members[g].empty()) continue;
        diag_.warning(group.pos, group.kind == Group::Kind::tags
                                     ? fmt::format("group '{}' matches no endpoint (no endpoint carries all its tags)", group.name)
                                     : fmt::format("group '{}' matches no endpoint (segment '{}' has none)", group.name,
                                                   policy_.segments[group.segment].name));
    }
}

void Loader::load_services(const YAML::Node& n) {
    if (n.IsNull()) return;
    if (!expect(n, YAML::NodeType::Map, "'services' (a map of NAME: [tcp/443, ...])")) return;
    for (auto it = n.begin(); it != n.end(); ++it) {
        if (!visit(it->second)) break;
        const auto svc_name = name(it->first, "service name");
        if (!svc_name) continue;
        if (*svc_name == "any") {
            error(it->first, "'any' is reserved (omit 'services' or write 'services: any' in a rule)");
            continue;
        }
        if (const auto s = service_by_name_.find(*svc_name); s != service_by_name_.end()) {
            error(it->first, fmt::format("duplicate service '{}' (first defined at {})", *svc_name,
                                         policy_.services[s->second].pos.str()));
            continue;
        }
        auto items = load_service_items(it->second, *svc_name);
        if (items.empty()) continue;
        service_by_name_[*svc_name] = static_cast<uint32_t>(policy_.services.size());
        policy_.services.push_back({*svc_name, std::move(items), pos(it->first)});
    }
}

std::vector<ServiceItem> Loader::load_service_items(const YAML::Node& n, const std::string& service) {
    const std::string what = fmt::format("service '{}'", service);
    std::vector<ServiceItem> out;
    bool bad = false;
    const auto items = scalar_or_list(n, what);
    for (const auto& item : items) {
        const auto text = scalar(item, what);
        if (!text) { bad = true; continue; }
        std::string why;
        auto parsed = parse_service_item(*text, why);
        if (!parsed) { error(item, why); bad = true; continue; }
        parsed->pos = pos(item);
        out.push_back(*parsed);
    }
    if (items.empty() && n.IsDefined()) error(n, fmt::format("{} lists nothing (write e.g. [tcp/443])", what)), bad = true;
    if (bad) out.clear();
    return out;
}

// ---------------------------------------------------------------------------------------------------
// Rules

void Loader::load_rules(const YAML::Node& n) {
    if (n.IsNull()) return;
    if (!expect(n, YAML::NodeType::Sequence, "'rules' (a list of {id, from, to, services, action})")) return;
    for (const auto& item : n)
        if (visit(item) && expect(item, YAML::NodeType::Map, "a rule ({id, from, to, services, action})"))
            load_rule(item);
}

void Loader::load_rule(const YAML::Node& n) {
    const auto keys = keys_of(n, {"id", "from", "to", "services", "action", "log", "description"}, "a rule");
    const auto id_node = required(keys, "id", n, "a rule");
    const auto id = id_node ? name(*id_node, "rule id") : std::nullopt;
    const std::string what = id ? fmt::format("rule '{}'", *id) : std::string("a rule");
    Rule r{.id = id.value_or(""), .pos = pos(n)};
    const size_t errors_before = diag_.error_count();
    if (id) {
        if (const auto [it, fresh] = rule_ids_.emplace(*id, pos(n)); !fresh)
            error(*id_node, fmt::format("duplicate rule id '{}' (first used at {})", *id, it->second.str()));
    }
    if (const auto from = required(keys, "from", n, what, " (write 'from: any' to match every source)"))
        r.from = load_selector(*from, what, "from");
    if (const auto to = required(keys, "to", n, what, " (write 'to: any' to match every destination)"))
        r.to = load_selector(*to, what, "to");
    if (const auto it = keys.find("services"); it != keys.end()) load_rule_services(it->second, r);
    if (const auto action = required(keys, "action", n, what)) {
        const auto v = scalar(*action, fmt::format("'action' of {}", what));
        if (v == "allow") r.action = Action::allow;
        else if (v == "drop") r.action = Action::drop;
        else if (v == "reject") r.action = Action::reject;
        else if (v) error(*action, fmt::format("'action' of {} must be allow, drop or reject, not '{}'", what, *v));
    }
    if (const auto it = keys.find("log"); it != keys.end()) r.log = boolean(it->second, "'log'").value_or(false);
    if (const auto it = keys.find("description"); it != keys.end())
        r.description = scalar(it->second, "'description'").value_or("");
    if (id && diag_.error_count() == errors_before) policy_.rules.push_back(std::move(r));
}

Selector Loader::load_selector(const YAML::Node& n, const std::string& rule, const char* side) {
    Selector s;
    const std::string what = fmt::format("'{}' of {}", side, rule);
    const auto items = scalar_or_list(n, what);
    if (items.empty() && (n.IsSequence() || n.IsNull()))
        error(n, fmt::format("{} is empty; write a group name, a list of them, or 'any'", what));
    for (const auto& item : items) {
        const auto text = scalar(item, what);
        if (!text) continue;
        if (*text == "any") {
            s.any = true;
            continue;
        }
        if (const auto g = lookup(group_by_name_, item, "group", what)) s.groups.push_back(*g);
    }
    if (s.any) s.groups.clear();
    return s;
}

void Loader::load_rule_services(const YAML::Node& n, Rule& r) {
    const std::string what = fmt::format("'services' of rule '{}'", r.id);
    const auto items = scalar_or_list(n, what);
    if (items.empty() && (n.IsSequence() || n.IsNull()))
        return error(n, fmt::format("{} is empty; omit it or write 'services: any' to match every service", what));
    r.any_service = false;
    for (const auto& item : items) {
        const auto text = scalar(item, what);
        if (!text) continue;
        if (*text == "any") {
            r.any_service = true;
            continue;
        }
        if (text->find('/') != std::string::npos || parse_protocol(*text)) {  // inline: tcp/8443, icmp
            if (service_by_name_.contains(*text)) {
                r.services.push_back(service_by_name_.at(*text));
                continue;
            }
            std::string why;
            auto parsed = parse_service_item(*text, why);
            if (!parsed) {
                error(item, why);
                continue;
            }
            parsed->pos = pos(item);
            r.services.push_back(static_cast<uint32_t>(policy_.services.size()));
            policy_.services.push_back({"", {*parsed}, pos(item)});
            continue;
        }
        if (const auto s = lookup(service_by_name_, item, "service", what)) r.services.push_back(*s);
    }
    if (r.any_service) r.services.clear();
}

// ---------------------------------------------------------------------------------------------------
// Typed accessors

std::optional<std::string> Loader::name(const YAML::Node& n, const std::string& what) {
    auto s = scalar(n, what);
    if (s && !valid_name(*s)) {
        error(n, fmt::format("{} '{}' is not a valid name (1-64 characters: letters, digits, '-', '_', '.', ':')",
                             what, *s));
        return std::nullopt;
    }
    return s;
}

std::optional<bool> Loader::boolean(const YAML::Node& n, const std::string& what) {
    const auto s = scalar(n, what);
    if (!s) return std::nullopt;
    if (*s == "true" || *s == "yes" || *s == "on") return true;
    if (*s == "false" || *s == "no" || *s == "off") return false;
    error(n, fmt::format("{} must be true or false, not '{}'", what, *s));
    return std::nullopt;
}

std::optional<Tags> Loader::tags(const YAML::Node& n, const std::string& what) {
    if (!expect(n, YAML::NodeType::Map, fmt::format("{} ({{key: value, ...}})", what))) return std::nullopt;
    Tags out;
    bool ok = true;
    for (auto it = n.begin(); it != n.end(); ++it) {
        if (!visit(it->second)) return std::nullopt;
        const auto key = name(it->first, "tag key");
        const auto value = name(it->second, fmt::format("value of tag '{}'", key.value_or("?")));
        if (!key || !value) { ok = false; continue; }
        if (!out.emplace(*key, *value).second) {
            error(it->first, fmt::format("tag '{}' is given twice in {}", *key, what));
            ok = false;
        }
    }
    if (!ok) return std::nullopt;
    return out;
}

std::vector<YAML::Node> Loader::scalar_or_list(const YAML::Node& n, const std::string& what) {
    std::vector<YAML::Node> out;
    if (n.IsScalar()) {
        out.push_back(n);
    } else if (n.IsSequence()) {
        for (const auto& item : n) {
            if (!visit(item)) break;
            out.push_back(item);
        }
    } else if (!n.IsNull()) {
        error(n, fmt::format("{} must be a value or a list of values, not {}", what, kind_name(n)));
    }
    return out;
}

std::optional<uint32_t> Loader::lookup(const std::unordered_map<std::string, uint32_t>& table, const YAML::Node& n,
                                       const std::string& kind, const std::string& what) {
    const auto key = scalar(n, what);
    if (!key) return std::nullopt;
    if (const auto it = table.find(*key); it != table.end()) return it->second;
    std::vector<std::string> names;
    names.reserve(table.size());
    for (const auto& [k, v] : table) names.push_back(k);
    std::sort(names.begin(), names.end());  // deterministic suggestions
    const auto hint = closest_match(*key, names);
    error(n, hint.empty() ? fmt::format("unknown {} '{}' in {}", kind, *key, what)
                          : fmt::format("unknown {} '{}' in {} (did you mean '{}'?)", kind, *key, what, hint));
    return std::nullopt;
}

std::optional<YAML::Node> Loader::required(const std::unordered_map<std::string, YAML::Node>& keys, const char* key,
                                           const YAML::Node& owner, const std::string& what, const char* hint) {
    if (const auto it = keys.find(key); it != keys.end()) return it->second;
    error(owner, fmt::format("{} is missing '{}'{}", what, key, hint));
    return std::nullopt;
}

// ---------------------------------------------------------------------------------------------------

LoadResult parse_and_load(const std::string& text, const std::string& name) {
    LoadResult result;
    const auto root = parse_yaml(text, name, result.diagnostics);
    if (!root) return result;
    try {
        Loader loader(name, result.diagnostics);
        result.policy = loader.load(*root);
    } catch (const std::exception& e) {  // yaml-cpp can still throw on odd documents; never crash
        result.diagnostics.error({name, 1, 1}, fmt::format("cannot read the policy: {}", e.what()));
        result.policy.reset();
    }
    return result;
}

}  // namespace

LoadResult load_policy_text(const std::string& text, const std::string& name, const LoadOptions& options) {
    LoadResult r;
    if (!within_size_limit(text.size(), name, options.max_file_bytes, "policy", r.diagnostics)) return r;
    return parse_and_load(text, name);
}

LoadResult load_policy_file(const std::string& path, const LoadOptions& options) {
    LoadResult r;
    const auto text = read_yaml_file(path, options.max_file_bytes, "policy", r.diagnostics);
    if (!text) return r;
    return parse_and_load(*text, path);
}

Policy load_policy_or_throw(const std::string& path, const LoadOptions& options) {
    auto r = load_policy_file(path, options);
    if (!r.policy) throw PolicyError(r.diagnostics.sorted());
    return std::move(*r.policy);
}

}  // namespace tagwall::rules
