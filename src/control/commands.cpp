// The daemon's commands: see commands.hpp.
#include "control/commands.hpp"

#include <time.h>
#include <unistd.h>

#include <chrono>
#include <exception>
#include <map>
#include <stdexcept>

#include <fmt/format.h>

#include "control/event_log.hpp"
#include "control/socket_server.hpp"
#include "dataplane/flow_key.hpp"
#include "rules/policy_loader.hpp"

namespace tagwall::control {

namespace {

namespace dp = tagwall::dataplane;
using json = nlohmann::ordered_json;

// A request the daemon cannot honour as given (an unknown filter ...): its message is the answer.
struct RequestError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::string iso(uint64_t wall_ns) { return iso_time(wall_ns, false); }

nlohmann::json fail(const std::string& message, const std::vector<std::string>& errors = {}) {
    nlohmann::json r{{"ok", false}, {"error", message}};
    if (!errors.empty()) r["errors"] = errors;
    return r;
}

nlohmann::json ok(json result) { return nlohmann::json{{"ok", true}, {"result", nlohmann::json::parse(result.dump())}}; }

std::string str_arg(const nlohmann::json& req, const char* key) {
    const auto it = req.find(key);
    return it != req.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// Worker clock (ns since start) -> CLOCK_REALTIME.
uint64_t to_wall(const CommandContext& ctx, uint64_t worker_ns) { return ctx.wall_origin_ns + worker_ns; }

uint64_t worker_now_ns(const CommandContext& ctx) {
    return clock_ns(CLOCK_MONOTONIC) - ctx.appliance.clock_origin_ns();
}

// A segment's name, or "vlan N" for a VLAN that names none (a flow from an older generation).
std::string segment_label(const rules::RuleSet& rs, uint16_t vlan) {
    const std::string name = segment_name(rs, vlan);
    return name.empty() ? fmt::format("vlan {}", vlan) : name;
}

std::string end_text(const rules::IpAddr& a, uint16_t port, bool ports) {
    const std::string addr = a.family == rules::Family::v6 ? fmt::format("[{}]", a.str()) : a.str();
    return ports ? fmt::format("{}:{}", addr, port) : addr;
}

// --- status, stats, ports ----------------------------------------------------------------------

// The control socket: who is connected, what it turned away or cut off, and its limits.
json control_json(const SocketServer& server) {
    const SocketCounters& c = server.counters();
    const SocketOptions& o = server.options();
    return {{"clients", server.clients()},
            {"followers", server.followers()},
            {"buffered_bytes", server.buffered_bytes()},
            {"accepted", c.accepted},
            {"requests", c.requests},
            {"refused_peers", c.refused_peers},
            {"refused_full", c.refused_full},
            {"malformed", c.malformed},
            {"oversized", c.oversized},
            {"timed_out", c.timed_out},
            {"idle_closed", c.idle_closed},
            {"dropped_slow", c.dropped_slow},
            {"accept_errors", c.accept_errors},
            {"limits",
             {{"max_clients", o.max_clients},
              {"max_request", o.max_request},
              {"max_output", o.max_output},
              {"request_timeout_s", static_cast<double>(o.request_timeout_ns) / 1e9},
              {"idle_timeout_s", static_cast<double>(o.idle_timeout_ns) / 1e9}}}};
}

json status(CommandContext& ctx) {
    const auto& app = ctx.appliance;
    const auto& pol = app.policy();
    json r;
    r["version"] = TAGWALL_VERSION;
    r["pid"] = static_cast<int64_t>(getpid());
    r["uptime_s"] = static_cast<double>(clock_ns(CLOCK_REALTIME) - ctx.started_wall_ns) / 1e9;
    r["workers"] = app.worker_count();
    r["forwarding"] = ctx.forwarding;
    r["ports"] = app.ports().size();
    r["hugepages"] = ctx.hugepages;
    r["policy"] = {{"file", pol.file},
                   {"generation", pol.generation},
                   {"rules", pol.rules->rules().size()},
                   {"loaded_at", iso(pol.loaded_at_ns)}};
    if (ctx.socket != nullptr) r["control"] = control_json(*ctx.socket);
    return r;
}

json stats(CommandContext& ctx) {
    const auto& app = ctx.appliance;
    uint64_t rx = 0, tx = 0, dropped = 0, allow = 0, drop = 0, reject = 0, flows = 0, lost = 0;
    std::array<uint64_t, dp::kReasonCount> reasons{};
    // The connection and fragment tables, summed over the workers: fixed sizes, and what the
    // eviction rules did (flow_table.hpp: only entries that never completed a handshake are evicted).
    uint64_t flow_capacity = 0, inserted = 0, evicted = 0, refused = 0, expired = 0, erased = 0;
    uint64_t frag_capacity = 0, frag_in_use = 0, frag_high_water = 0, frag_memory = 0;
    json workers = json::array();
    for (size_t w = 0; w < app.worker_count(); ++w) {
        const auto& pipe = app.pipeline(w);
        uint64_t wrx = 0;
        for (size_t p = 0; p < app.ports().size(); ++p) {
            const auto& c = pipe.port_counters(static_cast<uint8_t>(p));
            wrx += c.rx;
            dropped += c.dropped;
            tx += app.worker_port_counters(w, p).tx_sent;
        }
        rx += wrx;
        const auto& v = pipe.verdict_counters();
        allow += v.allow;
        drop += v.drop;
        reject += v.reject;
        const auto& table = pipe.conntrack().table();
        const size_t f = table.size();
        flows += f;
        flow_capacity += table.capacity();
        inserted += table.stats().inserted;
        evicted += table.stats().evicted;
        refused += table.stats().refused;
        expired += table.stats().expired;
        erased += table.stats().erased;
        const auto& frags = pipe.fragments();
        frag_capacity += frags.capacity();
        frag_in_use += frags.size();
        frag_high_water += frags.high_water();
        frag_memory += frags.memory_bytes();
        lost += app.events_lost(w);
        for (size_t r = 0; r < dp::kReasonCount; ++r) reasons[r] += pipe.reason_counters()[r];
        workers.push_back({{"worker", w}, {"lcore", app.worker_lcore(w)}, {"generation", app.worker_generation(w)},
                           {"rx", wrx}, {"allow", v.allow}, {"drop", v.drop}, {"reject", v.reject}, {"flows", f}});
    }
    json by_reason = json::object();
    for (size_t r = 0; r < dp::kReasonCount; ++r)
        if (reasons[r] != 0) by_reason[std::string(dp::kReasons[r].counter)] = reasons[r];
    json out;
    out["totals"] = {{"rx", rx},         {"tx", tx},         {"dropped", dropped}, {"allow", allow},
                     {"drop", drop},     {"reject", reject}, {"flows", flows},     {"events_lost", lost}};
    out["reasons"] = by_reason;
    out["tables"] = {{"flows", {{"capacity", flow_capacity}, {"in_use", flows}, {"inserted", inserted},
                                {"evicted", evicted}, {"refused", refused}, {"expired", expired}, {"erased", erased}}},
                     {"fragments", {{"capacity", frag_capacity}, {"in_use", frag_in_use},
                                    {"high_water", frag_high_water}, {"memory_bytes", frag_memory}}}};
    out["workers"] = workers;
    if (ctx.socket != nullptr) out["control"] = control_json(*ctx.socket);
    return out;
}

json ports(CommandContext& ctx) {
    const auto& app = ctx.appliance;
    json list = json::array();
    for (size_t p = 0; p < app.ports().size(); ++p) {
        const auto& info = app.ports()[p];
        const dp::PortTotals t = app.port_totals(p);
        list.push_back({{"name", info.name},
                        {"role", std::string(dp::to_string(info.role))},
                        {"driver", info.driver},
                        {"mac", info.mac},
                        {"rx", t.rx},
                        {"tx", t.tx},
                        {"dropped", t.dropped},
                        {"tx_full", t.tx_full},
                        {"rejects", t.rejects}});
    }
    return {{"ports", list}};
}

// --- rules and policy ----------------------------------------------------------------------------

json rule_table(CommandContext& ctx) {
    const auto& pol = ctx.appliance.policy();
    const auto& rules = pol.rules->rules();
    json list = json::array();
    for (size_t r = 0; r < rules.size(); ++r) {
        uint64_t packets = 0, bytes = 0, last = 0;
        for (const auto& c : pol.counters) {
            packets += c[r].packets;
            bytes += c[r].bytes;
            last = std::max(last, c[r].last_ns);
        }
        list.push_back({{"id", rules[r].id},
                        {"action", rules::action_name(rules[r].action)},
                        {"line", rules[r].pos.line},
                        {"log", rules[r].log},
                        {"hits", packets},
                        {"bytes", bytes},
                        {"last_hit", last == 0 ? json(nullptr) : json(iso(to_wall(ctx, last)))}});
    }
    return {{"generation", pol.generation}, {"default", rules::action_name(pol.rules->default_action())}, {"rules", list}};
}

json policy_show(CommandContext& ctx) {
    const auto& pol = ctx.appliance.policy();
    return {{"file", pol.file},
            {"generation", pol.generation},
            {"loaded_at", iso(pol.loaded_at_ns)},
            {"rules", pol.rules->rules().size()},
            {"endpoints", pol.rules->endpoints().size()},
            {"segments", pol.rules->segments().size()},
            {"default", rules::action_name(pol.rules->default_action())},
            {"engine", ctx.appliance.engine()}};
}

// The rule that allowed a connection: its id, or "#N (generation G)" for one allowed under an older
// generation that has not sent a packet since (it is re-verified then), or "-".
std::string flow_rule_label(const CommandContext& ctx, const dp::FlowEntry& e, const dp::FlowAttribution& a) {
    const auto& pol = ctx.appliance.policy();
    if (a.rule_index < 0) return "-";
    if (e.generation == pol.generation && static_cast<size_t>(a.rule_index) < pol.rules->rules().size())
        return pol.rules->rules()[static_cast<size_t>(a.rule_index)].id;
    return fmt::format("#{} (generation {})", a.rule_index, e.generation);
}

// `k` is the entry's initiator_key().
json flow_json(const CommandContext& ctx, const rules::RuleSet& rs, size_t worker, dp::FlowHandle h,
               const dp::FlowEntry& e, const rules::PacketKey& k, uint64_t now) {
    const bool ports = k.proto == 6 || k.proto == 17 || k.proto == 132;
    const auto& table = ctx.appliance.pipeline(worker).conntrack().table();
    const dp::FlowId id = table.id(h);
    return {{"worker", worker},
            {"id", fmt::format("{:x}", id.packed())},
            {"segment", segment_label(rs, k.vlan)},
            {"proto", protocol_name(k.proto)},
            {"initiator", end_text(k.src, k.sport, ports)},
            {"responder", end_text(k.dst, k.dport, ports)},
            {"state", std::string(dp::to_string(e.state))},
            {"rule", flow_rule_label(ctx, e, table.attribution(h))},
            {"generation", e.generation},
            {"packets", {e.packets[0], e.packets[1]}},
            {"bytes", {e.bytes[0], e.bytes[1]}},
            {"idle_s", now > e.last_seen ? static_cast<double>(now - e.last_seen) / 1e9 : 0.0}};
}

// --- policy load ---------------------------------------------------------------------------------

std::vector<std::string> error_lines(const rules::Diagnostics& d) {
    std::vector<std::string> out;
    for (const auto& x : d.sorted())
        if (x.severity == rules::Severity::error) out.push_back(x.str());
    return out;
}

// The dry run: every live connection judged by `next`.  Lists those it would cut (at most `limit`),
// and per rule how many live connections it decides now and would decide under `next` (only rules
// whose count would change).
struct DryRun {
    json cut = json::array();
    size_t cut_count = 0;
    size_t checked = 0;
    json rule_changes = json::array();
};

DryRun judge_live_connections(CommandContext& ctx, const rules::PolicyClassifier& next, size_t limit) {
    DryRun out;
    const auto& now_rules = *ctx.appliance.policy().rules;
    const auto& next_rules = next.ruleset();
    const uint32_t generation = ctx.appliance.policy().generation;
    std::map<std::string, std::pair<uint64_t, uint64_t>> by_rule;  // id -> (now, next)
    const uint64_t now = worker_now_ns(ctx);
    for (size_t w = 0; w < ctx.appliance.worker_count(); ++w) {
        const auto& table = ctx.appliance.pipeline(w).conntrack().table();
        table.for_each([&](dp::FlowHandle h, const dp::FlowEntry& e) {
            if (table.expired(e, now)) return;
            ++out.checked;
            const int32_t rule = table.attribution(h).rule_index;
            if (e.generation == generation && rule >= 0 && static_cast<size_t>(rule) < now_rules.rules().size())
                ++by_rule[now_rules.rules()[static_cast<size_t>(rule)].id].first;
            const rules::PacketKey k = dp::initiator_key(e);
            const rules::Decision d = next.classify(k);
            if (d.rule >= 0) ++by_rule[next_rules.rules()[static_cast<size_t>(d.rule)].id].second;
            if (d.action == rules::Action::allow) return;
            ++out.cut_count;
            if (out.cut.size() >= limit) return;
            json f = flow_json(ctx, now_rules, w, h, e, k, now);
            f["new_action"] = rules::action_name(d.action);
            f["new_rule"] = d.rule >= 0 ? json(next_rules.rules()[static_cast<size_t>(d.rule)].id) : json(nullptr);
            out.cut.push_back(std::move(f));
        });
    }
    for (const auto& [id, counts] : by_rule)
        if (counts.first != counts.second)
            out.rule_changes.push_back({{"rule", id}, {"connections_now", counts.first}, {"connections_after", counts.second}});
    return out;
}

// `flows [segment=S proto=P addr=A port=N rule=R]`: live connections of every worker, at most 1000 shown.
json handle_flows(CommandContext& ctx, const nlohmann::json& req) {
    std::map<std::string, std::string> filter;
    if (const auto it = req.find("filter"); it != req.end() && it->is_object()) {
        for (const auto& [k, v] : it->items()) {
            if (v.is_string()) filter[k] = v.get<std::string>();
            else if (v.is_number_unsigned()) filter[k] = std::to_string(v.get<uint64_t>());
        }
    }
    for (const auto& [k, v] : filter)
        if (k != "segment" && k != "proto" && k != "addr" && k != "port" && k != "rule")
            throw RequestError(fmt::format("flows: unknown filter '{}' (segment, proto, addr, port, rule)", k));
    const auto& rs = *ctx.appliance.policy().rules;
    const uint64_t now = worker_now_ns(ctx);
    constexpr size_t kMaxShown = 1000;
    json list = json::array();
    size_t total = 0, matched = 0;
    for (size_t w = 0; w < ctx.appliance.worker_count(); ++w) {
        const auto& table = ctx.appliance.pipeline(w).conntrack().table();
        table.for_each([&](dp::FlowHandle h, const dp::FlowEntry& e) {
            if (table.expired(e, now)) return;
            ++total;
            // Judged on the key first; the JSON is built only for what is shown.
            const rules::PacketKey k = dp::initiator_key(e);
            auto has = [&](const char* name, auto pred) {
                const auto it = filter.find(name);
                return it == filter.end() || pred(it->second);
            };
            const bool keep =
                has("segment", [&](const std::string& v) { return segment_label(rs, k.vlan) == v; }) &&
                has("proto", [&](const std::string& v) { return protocol_name(k.proto) == v; }) &&
                has("rule", [&](const std::string& v) { return flow_rule_label(ctx, e, table.attribution(h)) == v; }) &&
                has("addr", [&](const std::string& v) { return k.src.str() == v || k.dst.str() == v; }) &&
                has("port", [&](const std::string& v) {
                    return std::to_string(k.sport) == v || std::to_string(k.dport) == v;
                });
            if (!keep) return;
            ++matched;
            if (list.size() < kMaxShown) list.push_back(flow_json(ctx, rs, w, h, e, k, now));
        });
    }
    return {{"total", total}, {"matched", matched}, {"shown", list.size()}, {"flows", list}};
}

// --- endpoints -----------------------------------------------------------------------------------

json endpoint_list(CommandContext& ctx) {
    const auto& rs = *ctx.appliance.policy().rules;
    json list = json::array();
    for (const auto& e : rs.endpoints()) {
        json ips = json::array();
        for (const auto& a : e.addrs) ips.push_back(a.str());
        json tags = json::object();
        for (const auto& [k, v] : e.tags) tags[k] = v;
        list.push_back({{"name", e.name},
                        {"segment", rs.segments()[e.segment].name},
                        {"ips", ips},
                        {"mac", e.mac ? json(e.mac->str()) : json(nullptr)},
                        {"tags", tags}});
    }
    return {{"endpoints", list}};
}

nlohmann::json endpoint_retag(CommandContext& ctx, const nlohmann::json& req, bool tag) {
    const std::string name = str_arg(req, "name");
    const auto& rs = *ctx.appliance.policy().rules;
    uint32_t index = rules::kExternal;
    for (size_t i = 0; i < rs.endpoints().size(); ++i)
        if (rs.endpoints()[i].name == name) index = static_cast<uint32_t>(i);
    if (index == rules::kExternal) return fail(fmt::format("no endpoint named '{}' (tagwallctl endpoint list)", name));
    rules::Tags tags = rs.endpoints()[index].tags;
    if (tag) {
        const auto it = req.find("tags");
        if (it == req.end() || !it->is_object() || it->empty()) return fail("endpoint tag: give tags as KEY=VALUE");
        for (const auto& [k, v] : it->items()) {
            if (!v.is_string()) return fail(fmt::format("endpoint tag: the value of '{}' must be a string", k));
            tags[k] = v.get<std::string>();
        }
    } else {
        const auto it = req.find("keys");
        if (it == req.end() || !it->is_array() || it->empty()) return fail("endpoint untag: give the tag keys to remove");
        for (const auto& k : *it) {
            if (!k.is_string()) return fail("endpoint untag: keys must be strings");
            if (tags.erase(k.get<std::string>()) == 0)
                return fail(fmt::format("endpoint '{}' has no tag '{}'", name, k.get<std::string>()));
        }
    }
    // A new rule set and a new classifier for it: the published one is never modified in place.
    const rules::Retagged retagged = rs.with_endpoint_tags(index, tags);
    const auto t0 = std::chrono::steady_clock::now();
    auto classifier = std::make_shared<const rules::PolicyClassifier>(retagged.rules, ctx.appliance.engine());
    const double compile_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    const uint32_t generation = ctx.appliance.policy().generation + 1;
    auto bundle = dp::PolicyBundle::make(std::move(classifier), generation, ctx.appliance.worker_count(),
                                         ctx.appliance.policy().file);
    const dp::PublishTiming t = ctx.appliance.publish(std::move(bundle));
    json out_tags = json::object();
    for (const auto& [k, v] : tags) out_tags[k] = v;
    return ok({{"generation", generation},
               {"endpoint", name},
               {"tags", out_tags},
               {"compile_ms", compile_ms},
               {"publish_ms", t.publish_ms},
               {"ack_ms", t.ack_ms},
               {"grace_ms", t.grace_ms}});
}

// --- trace ---------------------------------------------------------------------------------------

std::optional<uint8_t> protocol_number(const std::string& p) {
    if (p == "tcp") return 6;
    if (p == "udp") return 17;
    if (p == "icmp") return 1;
    if (p == "icmpv6") return 58;
    if (p == "sctp") return 132;
    if (!p.empty() && p.size() <= 3 && p.find_first_not_of("0123456789") == std::string::npos) {
        const int n = std::stoi(p);
        if (n <= 255) return static_cast<uint8_t>(n);
    }
    return std::nullopt;
}

json identity_json(const rules::RuleSet& rs, const rules::IpAddr& a, const rules::Identity& id) {
    json groups = json::array();
    if (id.identity_class < rs.identity_classes().size()) {
        const auto& bits = rs.identity_classes()[id.identity_class];
        for (size_t g = 0; g < rs.group_names().size(); ++g)
            if (bits.test(g)) groups.push_back(rs.group_names()[g]);
    }
    return {{"address", a.str()},
            {"endpoint", id.endpoint == rules::kExternal ? json(nullptr) : json(rs.endpoints()[id.endpoint].name)},
            {"groups", groups}};
}

nlohmann::json trace(CommandContext& ctx, const nlohmann::json& req) {
    const auto& pol = ctx.appliance.policy();
    const auto& rs = *pol.rules;
    const std::string seg = str_arg(req, "segment");
    int32_t segment = rules::kNoSegment;
    for (size_t i = 0; i < rs.segments().size(); ++i)
        if (rs.segments()[i].name == seg) segment = static_cast<int32_t>(i);
    if (segment < 0) return fail(fmt::format("trace: no segment named '{}'", seg));
    const auto src = rules::IpAddr::parse(str_arg(req, "src"));
    const auto dst = rules::IpAddr::parse(str_arg(req, "dst"));
    if (!src || !dst) return fail("trace: SRC and DST must be IPv4 or IPv6 addresses");
    if (src->family != dst->family) return fail("trace: SRC and DST must be of one family");
    const auto proto = protocol_number(str_arg(req, "proto"));
    if (!proto) return fail(fmt::format("trace: unknown protocol '{}' (tcp, udp, icmp, icmpv6, sctp or a number)",
                                        str_arg(req, "proto")));
    rules::PacketKey key;
    key.vlan = rs.segments()[static_cast<size_t>(segment)].vlan;
    key.src = *src;
    key.dst = *dst;
    key.proto = *proto;
    auto port = [&](const char* k) -> uint16_t {
        const auto it = req.find(k);
        return it != req.end() && it->is_number_unsigned() && it->get<uint64_t>() <= 65535 ? it->get<uint16_t>() : 0;
    };
    const bool icmp = *proto == 1 || *proto == 58;
    if (icmp) {
        key.icmp_type = static_cast<uint8_t>(port("icmp_type") != 0 ? port("icmp_type") : (*proto == 1 ? 8 : 128));
    } else {
        key.sport = port("sport");
        key.dport = port("dport");
    }
    const rules::Identity s = rs.resolve(key.src), d = rs.resolve(key.dst);
    const rules::Decision decision = pol.classifier->classify(key, s, d);
    json r;
    r["action"] = rules::action_name(decision.action);
    r["rule"] = decision.rule >= 0 ? json(rs.rules()[static_cast<size_t>(decision.rule)].id) : json(nullptr);
    r["reason"] = decision.reason == rules::DecisionReason::rule ? "rule" : "default";
    r["generation"] = pol.generation;
    r["src"] = identity_json(rs, key.src, s);
    r["dst"] = identity_json(rs, key.dst, d);
    // Every rule above the decision (and the decider itself), and why each did or did not match: the
    // first match wins, so these are the rules an operator reads to see why this one decided.
    json considered = json::array();
    const size_t last = decision.rule >= 0 ? static_cast<size_t>(decision.rule) : rs.rules().size() - 1;
    for (size_t i = 0; !rs.rules().empty() && i <= last; ++i) {
        const auto& rule = rs.rules()[i];
        std::vector<std::string> misses;
        if (!rule.from_classes.test(s.identity_class)) misses.push_back("the source is not in 'from'");
        if (!rule.to_classes.test(d.identity_class)) misses.push_back("the destination is not in 'to'");
        if (!rule.service_matches(key)) misses.push_back("the service does not match");
        std::string why = "matches";
        for (size_t m = 0; m < misses.size(); ++m) why = m == 0 ? misses[m] : fmt::format("{}; {}", why, misses[m]);
        considered.push_back({{"rule", rule.id},
                              {"line", rule.pos.line},
                              {"action", rules::action_name(rule.action)},
                              {"matches", misses.empty()},
                              {"why", why}});
    }
    r["considered"] = considered;
    const std::string what = icmp ? fmt::format("{} type {}", protocol_name(*proto), key.icmp_type)
                                  : fmt::format("{}/{}", protocol_name(*proto), key.dport);
    if (decision.rule >= 0) {
        const auto& rule = rs.rules()[static_cast<size_t>(decision.rule)];
        r["explanation"] = fmt::format("{} -> {} {} in segment {}: rule '{}' (line {}) is the first that matches: {}",
                                       key.src.str(), key.dst.str(), what, seg, rule.id, rule.pos.line,
                                       rules::action_name(rule.action));
    } else {
        r["explanation"] = fmt::format("{} -> {} {} in segment {}: no rule matches; the default decides: {}",
                                       key.src.str(), key.dst.str(), what, seg, rules::action_name(decision.action));
    }
    return ok(r);
}

}  // namespace

nlohmann::json load_policy(CommandContext& ctx, const std::string& file, bool dry_run) {
    using Clock = std::chrono::steady_clock;
    const auto t0 = Clock::now();
    const auto loaded = rules::load_policy_file(file);
    if (!loaded.policy)
        return fail(fmt::format("{}: invalid ({} error(s)); the running policy (generation {}) stays", file,
                                loaded.diagnostics.error_count(), ctx.appliance.policy().generation),
                    error_lines(loaded.diagnostics));
    std::shared_ptr<const rules::PolicyClassifier> classifier;
    try {
        classifier = std::make_shared<const rules::PolicyClassifier>(rules::RuleSet::compile(*loaded.policy),
                                                                     ctx.appliance.engine());
    } catch (const std::exception& e) {
        return fail(fmt::format("{}: cannot compile: {}; the running policy stays", file, e.what()));
    }
    const double compile_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (dry_run) {
        DryRun d = judge_live_connections(ctx, *classifier, 1000);
        return ok({{"dry_run", true},
                   {"file", file},
                   {"rules", classifier->ruleset().rules().size()},
                   {"compile_ms", compile_ms},
                   {"checked", d.checked},
                   {"would_cut_count", d.cut_count},
                   {"would_cut", std::move(d.cut)},
                   {"rule_changes", std::move(d.rule_changes)}});
    }
    const uint32_t generation = ctx.appliance.policy().generation + 1;
    auto bundle = dp::PolicyBundle::make(std::move(classifier), generation, ctx.appliance.worker_count(), file);
    const dp::PublishTiming t = ctx.appliance.publish(std::move(bundle));
    return ok({{"generation", generation},
               {"file", file},
               {"rules", ctx.appliance.policy().rules->rules().size()},
               {"compile_ms", compile_ms},
               {"publish_ms", t.publish_ms},
               {"ack_ms", t.ack_ms},
               {"grace_ms", t.grace_ms}});
}

nlohmann::json handle_command(const nlohmann::json& req, CommandContext& ctx) {
    try {
        if (const auto it = req.find("cmd"); it != req.end() && !it->is_string())
            return fail(fmt::format("malformed request: \"cmd\" must be a string, not a {}", it->type_name()));
        const std::string cmd = str_arg(req, "cmd");
        const std::string action = str_arg(req, "action");
        if (cmd == "status") return ok(status(ctx));
        if (cmd == "stats") return ok(stats(ctx));
        if (cmd == "ports") return ok(ports(ctx));
        if (cmd == "rules") return ok(rule_table(ctx));
        if (cmd == "policy") {
            if (action == "show" || action.empty()) return ok(policy_show(ctx));
            if (action == "load") {
                const std::string file = str_arg(req, "file");
                if (file.empty()) return fail("policy load: which file?");
                const auto it = req.find("dry_run");
                return load_policy(ctx, file, it != req.end() && it->is_boolean() && it->get<bool>());
            }
            return fail(fmt::format("policy: unknown action '{}' (show, load)", action));
        }
        if (cmd == "endpoint") {
            if (action == "list" || action.empty()) return ok(endpoint_list(ctx));
            if (action == "tag") return endpoint_retag(ctx, req, true);
            if (action == "untag") return endpoint_retag(ctx, req, false);
            return fail(fmt::format("endpoint: unknown action '{}' (list, tag, untag)", action));
        }
        if (cmd == "flows") {
            if (action == "flush") return ok({{"flushed", ctx.appliance.flush_flows()}});
            if (!action.empty()) return fail(fmt::format("flows: unknown action '{}' (flush)", action));
            return ok(handle_flows(ctx, req));
        }
        if (cmd == "trace") return trace(ctx, req);
        if (cmd == "events") return ok({{"following", true}});
        if (cmd.empty()) return fail("malformed request: no \"cmd\"");
        return fail(fmt::format("unknown command '{}' (status, stats, ports, rules, policy, endpoint, flows, trace, "
                                "events)",
                                cmd));
    } catch (const RequestError& e) {  // the request's fault, not the daemon's
        return fail(e.what());
    } catch (const std::exception& e) {
        return fail(fmt::format("internal error: {}", e.what()));
    }
}

}  // namespace tagwall::control
