// Worker events as JSON lines and as one-line descriptions: see event_log.hpp.
#include "control/event_log.hpp"

#include <time.h>

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace tagwall::control {

namespace {

using dataplane::Event;

const char* verdict_word(rules::Action a) {
    switch (a) {
    case rules::Action::allow: return "allow";
    case rules::Action::drop: return "drop";
    case rules::Action::reject: return "reject";
    }
    return "?";
}

bool has_ports(uint8_t proto) { return proto == 6 || proto == 17 || proto == 132; }
bool is_icmp(const Event& e) {
    return (e.src.family == rules::Family::v4 && e.proto == 1) || (e.src.family == rules::Family::v6 && e.proto == 58);
}

std::string endpoint_name(const rules::RuleSet& rules, const rules::IpAddr& a) {
    const rules::Identity id = rules.resolve(a);
    if (id.endpoint == rules::kExternal || id.endpoint >= rules.endpoints().size()) return {};
    return rules.endpoints()[id.endpoint].name;
}

}  // namespace

uint64_t clock_ns(clockid_t clock) {
    timespec ts{};
    clock_gettime(clock, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

std::string iso_time(uint64_t wall_ns, bool millis) {
    const time_t secs = static_cast<time_t>(wall_ns / 1'000'000'000ull);
    tm t{};
    gmtime_r(&secs, &t);
    const std::string date = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", t.tm_year + 1900, t.tm_mon + 1,
                                         t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec);
    return millis ? fmt::format("{}.{:03}Z", date, (wall_ns / 1'000'000ull) % 1000) : fmt::format("{}Z", date);
}

std::string segment_name(const rules::RuleSet& rules, uint16_t vlan) {
    const int32_t s = rules.segment_of(vlan);
    if (s < 0 || static_cast<size_t>(s) >= rules.segments().size()) return {};
    return rules.segments()[static_cast<size_t>(s)].name;
}

std::string rule_id(const rules::RuleSet& rules, int32_t rule) {
    if (rule < 0 || static_cast<size_t>(rule) >= rules.rules().size()) return {};
    return rules.rules()[static_cast<size_t>(rule)].id;
}

std::string protocol_name(uint8_t proto) {
    switch (proto) {
    case 1: return "icmp";
    case 6: return "tcp";
    case 17: return "udp";
    case 58: return "icmpv6";
    case 132: return "sctp";
    default: return std::to_string(proto);
    }
}

std::string format_event(const Event& e, const rules::RuleSet& rules, const std::vector<std::string>& port_names,
                         uint64_t wall_origin_ns) {
    nlohmann::ordered_json j;
    j["time"] = iso_time(wall_origin_ns + e.time_ns);
    j["verdict"] = verdict_word(e.action);
    const std::string rule = rule_id(rules, e.rule);
    j["rule"] = rule.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(rule);
    j["generation"] = e.generation;
    j["reason"] = std::string(dataplane::info(e.reason).word);
    j["detail"] = std::string(dataplane::info(e.reason).counter);
    const std::string seg = segment_name(rules, e.vlan);
    j["segment"] = seg.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(seg);
    j["vlan"] = e.vlan;
    j["port"] = e.port < port_names.size() ? port_names[e.port] : std::to_string(e.port);
    if (e.ip) {
        j["src"] = e.src.str();
        j["dst"] = e.dst.str();
        j["proto"] = protocol_name(e.proto);
        if (has_ports(e.proto)) {
            j["sport"] = e.sport;
            j["dport"] = e.dport;
        } else if (is_icmp(e)) {
            j["icmp_type"] = e.icmp_type;
            j["icmp_code"] = e.icmp_code;
        }
        const std::string s = endpoint_name(rules, e.src), d = endpoint_name(rules, e.dst);
        j["src_endpoint"] = s.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(s);
        j["dst_endpoint"] = d.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(d);
    }
    return j.dump();
}

std::string describe_event(const Event& e, const rules::RuleSet& rules, const std::vector<std::string>& port_names) {
    const std::string port = e.port < port_names.size() ? port_names[e.port] : std::to_string(e.port);
    std::string why = std::string(dataplane::info(e.reason).counter);
    const std::string rule = rule_id(rules, e.rule);
    if (!rule.empty())
        why = e.reason == dataplane::Reason::rule ? fmt::format("rule {}", rule) : fmt::format("{}, rule {}", why, rule);
    if (!e.ip) return fmt::format("{:<6} on {}: {} ({})", verdict_word(e.action), port, "non-IP frame", why);
    auto end = [&](const rules::IpAddr& a, uint16_t p) {
        const std::string name = endpoint_name(rules, a);
        const std::string addr = a.family == rules::Family::v6 ? fmt::format("[{}]", a.str()) : a.str();
        const std::string where = has_ports(e.proto) ? fmt::format("{}:{}", addr, p) : addr;
        return name.empty() ? where : fmt::format("{} {}", name, where);
    };
    std::string service = protocol_name(e.proto);
    if (has_ports(e.proto)) service += fmt::format("/{}", e.dport);
    else if (is_icmp(e)) service += fmt::format(" type {}", e.icmp_type);
    return fmt::format("{:<6} {} -> {} {} on {} ({})", verdict_word(e.action), end(e.src, e.sport), end(e.dst, e.dport),
                       service, port, why);
}

int64_t EventLimiter::key_of(const Event& e) noexcept {
    return e.rule >= 0 ? e.rule : -1 - static_cast<int64_t>(e.reason);
}

bool EventLimiter::admit(const Event& e, uint64_t now_ns) {
    Bucket& b = buckets_[key_of(e)];
    if (!b.started) {
        b.started = true;
        b.tokens = burst_;
        b.last_ns = now_ns;
    } else if (now_ns > b.last_ns) {
        b.tokens = std::min<double>(burst_, b.tokens + static_cast<double>(now_ns - b.last_ns) * rate_ / 1e9);
        b.last_ns = now_ns;
    }
    if (b.tokens >= 1) {
        b.tokens -= 1;
        return true;
    }
    ++b.suppressed;
    ++total_;
    return false;
}

std::vector<std::pair<std::string, uint64_t>> EventLimiter::take_suppressed(const rules::RuleSet& rules) {
    std::vector<std::pair<std::string, uint64_t>> out;
    for (auto& [key, b] : buckets_) {
        if (b.suppressed == 0) continue;
        std::string name = key >= 0 ? fmt::format("rule {}", rule_id(rules, static_cast<int32_t>(key)))
                                    : std::string(dataplane::kReasons[static_cast<size_t>(-1 - key)].counter);
        out.emplace_back(std::move(name), b.suppressed);
        b.suppressed = 0;
    }
    return out;
}

}  // namespace tagwall::control
