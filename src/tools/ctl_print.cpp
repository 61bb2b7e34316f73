// tagwallctl's human output: see ctl_print.hpp.  One print_* function per command, in the order of
// SPEC §6, then the helpers.
#include "tools/ctl_print.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

#include <fmt/format.h>

namespace tagwall::tools {

using nlohmann::json;

namespace {

// j[key], or null when j is not an object or has no such key.
const json& at(const json& j, const char* key) {
    static const json null_value;
    if (!j.is_object()) return null_value;
    const auto it = j.find(key);
    return it == j.end() ? null_value : *it;
}

std::string str(const json& j, const char* key) { return cell(at(j, key)); }

const json& list(const json& j, const char* key) {
    static const json empty = json::array();
    const json& v = at(j, key);
    return v.is_array() ? v : empty;
}

std::string plural(const json& n, const char* one, const char* many) {
    return fmt::format("{} {}", cell(n), n.is_number() && n.get<double>() == 1.0 ? one : many);
}

std::string duration(const json& seconds) {
    if (!seconds.is_number()) return "-";
    auto s = static_cast<uint64_t>(std::max(0.0, seconds.get<double>()));
    const uint64_t d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60;
    s %= 60;
    if (d > 0) return fmt::format("{}d {:02}h {:02}m", d, h, m);
    if (h > 0) return fmt::format("{}h {:02}m {:02}s", h, m, s);
    if (m > 0) return fmt::format("{}m {:02}s", m, s);
    return fmt::format("{}s", s);
}

std::string tags_text(const json& tags) {
    if (!tags.is_object() || tags.empty()) return "-";
    std::string out;
    for (const auto& [k, v] : tags.items()) out += fmt::format("{}{}={}", out.empty() ? "" : ",", k, cell(v));
    return out;
}

std::string pair_text(const json& v) {
    if (!v.is_array() || v.size() != 2) return cell(v);
    return fmt::format("{}/{}", cell(v[0]), cell(v[1]));
}

void print_kv(std::FILE* out, const std::vector<std::pair<std::string, std::string>>& rows) {
    size_t width = 0;
    for (const auto& [k, v] : rows) width = std::max(width, k.size() + 1);
    for (const auto& [k, v] : rows) fmt::print(out, "  {:<{}} {}\n", k + ":", width, v);
}

// The control socket's line (status and stats): who is connected and what was turned away.
std::string control_text(const json& c) {
    return fmt::format("{} client(s), {} following; refused: {} peer(s), {} over the limit; cut off: {} oversized, "
                       "{} timed out, {} slow reader(s), {} idle; {} malformed request(s)",
                       str(c, "clients"), str(c, "followers"), str(c, "refused_peers"), str(c, "refused_full"),
                       str(c, "oversized"), str(c, "timed_out"), str(c, "dropped_slow"), str(c, "idle_closed"),
                       str(c, "malformed"));
}

void print_status(const json& r, std::FILE* out) {
    const json& pol = at(r, "policy");
    fmt::print(out, "tagwall {} (pid {}), up {}\n", str(r, "version"), str(r, "pid"), duration(at(r, "uptime_s")));
    std::vector<std::pair<std::string, std::string>> rows = {
        {"workers", str(r, "workers")},
        {"forwarding", str(r, "forwarding")},
        {"ports", str(r, "ports")},
        {"hugepages", str(r, "hugepages")},
        {"policy", fmt::format("{} (generation {}, {}, loaded {})", str(pol, "file"), str(pol, "generation"),
                               plural(at(pol, "rules"), "rule", "rules"), str(pol, "loaded_at"))}};
    if (at(r, "control").is_object()) rows.emplace_back("control", control_text(at(r, "control")));
    print_kv(out, rows);
}

void print_stats(const json& r, std::FILE* out) {
    static const char* const kTotals[] = {"rx", "tx", "dropped", "allow", "drop", "reject", "flows", "events_lost"};
    const json& totals = at(r, "totals");
    TextTable t({">rx", ">tx", ">dropped", ">allow", ">drop", ">reject", ">flows", ">events_lost"});
    std::vector<std::string> row;
    for (const char* k : kTotals) row.push_back(str(totals, k));
    t.add(row);
    fmt::print(out, "totals:\n");
    t.print(out);

    std::vector<std::pair<std::string, json>> reasons;
    if (at(r, "reasons").is_object())
        for (const auto& [k, v] : at(r, "reasons").items())
            if (!(v.is_number() && v.get<double>() == 0)) reasons.emplace_back(k, v);
    std::stable_sort(reasons.begin(), reasons.end(), [](const auto& a, const auto& b) {
        return a.second.is_number() && b.second.is_number() && a.second.template get<double>() > b.second.template get<double>();
    });
    fmt::print(out, "by reason:\n");
    if (reasons.empty()) fmt::print(out, "  (no packet counted yet)\n");
    TextTable rt({"reason", ">packets"});
    for (const auto& [k, v] : reasons) rt.add({k, cell(v)});
    if (rt.rows() > 0) rt.print(out);

    if (const json& tables = at(r, "tables"); tables.is_object()) {
        const json& f = at(tables, "flows");
        const json& g = at(tables, "fragments");
        fmt::print(out, "tables:\n");
        TextTable tt({"table", ">capacity", ">in_use", ">inserted", ">evicted", ">refused", ">expired"});
        tt.add({"flows", str(f, "capacity"), str(f, "in_use"), str(f, "inserted"), str(f, "evicted"), str(f, "refused"),
                str(f, "expired")});
        tt.add({"fragments", str(g, "capacity"), str(g, "in_use"), "", "", "", ""});
        tt.print(out);
    }

    fmt::print(out, "workers:\n");
    TextTable wt({">worker", ">lcore", ">rx", ">allow", ">drop", ">reject", ">flows"});
    for (const auto& w : list(r, "workers"))
        wt.add({str(w, "worker"), str(w, "lcore"), str(w, "rx"), str(w, "allow"), str(w, "drop"), str(w, "reject"),
                str(w, "flows")});
    wt.print(out);
    if (at(r, "control").is_object()) fmt::print(out, "control socket:\n  {}\n", control_text(at(r, "control")));
}

void print_ports(const json& r, std::FILE* out) {
    TextTable t({"port", "role", "driver", "mac", ">rx", ">tx", ">dropped", ">tx_full", ">rejects"});
    for (const auto& p : list(r, "ports"))
        t.add({str(p, "name"), str(p, "role"), str(p, "driver"), str(p, "mac"), str(p, "rx"), str(p, "tx"),
               str(p, "dropped"), str(p, "tx_full"), str(p, "rejects")});
    t.print(out, "");
}

void print_rules(const json& r, std::FILE* out) {
    fmt::print(out, "policy generation {}; {}; default: {}\n", str(r, "generation"),
               plural(json(list(r, "rules").size()), "rule", "rules"), str(r, "default"));
    TextTable t({"rule", "action", ">line", ">hits", ">bytes", "last hit"});
    for (const auto& rule : list(r, "rules"))
        t.add({str(rule, "id"), str(rule, "action"), str(rule, "line"), str(rule, "hits"), str(rule, "bytes"),
               at(rule, "last_hit").is_null() ? "never" : str(rule, "last_hit")});
    t.print(out, "");
}

void print_policy_show(const json& r, std::FILE* out) {
    print_kv(out, {{"file", str(r, "file")},
                   {"generation", str(r, "generation")},
                   {"loaded at", str(r, "loaded_at")},
                   {"rules", str(r, "rules")},
                   {"endpoints", str(r, "endpoints")},
                   {"segments", str(r, "segments")},
                   {"default", str(r, "default")},
                   {"engine", str(r, "engine")}});
}

TextTable flow_table(const json& flows, bool with_verdict) {
    std::vector<std::string> headers = {">worker", "id", "segment", "proto", "initiator", "responder", "state",
                                        "rule", ">gen", ">packets", ">bytes", ">idle_s"};
    if (with_verdict) headers.insert(headers.end(), {"now", "by rule"});
    TextTable t(headers);
    for (const auto& f : flows) {
        std::vector<std::string> row = {str(f, "worker"), str(f, "id"), str(f, "segment"), str(f, "proto"),
                                        str(f, "initiator"), str(f, "responder"), str(f, "state"), str(f, "rule"),
                                        str(f, "generation"), pair_text(at(f, "packets")), pair_text(at(f, "bytes")),
                                        str(f, "idle_s")};
        if (with_verdict) row.insert(row.end(), {str(f, "new_action"), str(f, "new_rule")});
        t.add(row);
    }
    return t;
}

std::string ms(const json& v) { return v.is_number() ? fmt::format("{:.2f} ms", v.get<double>()) : "-"; }

void print_policy_load(const json& r, std::FILE* out) {
    fmt::print(out, "policy loaded: generation {} (compile {}, publish {}, every worker on it after {})\n",
               str(r, "generation"), ms(at(r, "compile_ms")), ms(at(r, "publish_ms")), ms(at(r, "ack_ms")));
    if (!at(r, "revoked").is_null())
        fmt::print(out, "connections no longer allowed: {} (each is closed on its next packet)\n", str(r, "revoked"));
}

void print_policy_dry_run(const json& r, std::FILE* out) {
    const json& cut = list(r, "would_cut");
    const json& count = at(r, "would_cut_count").is_number() ? at(r, "would_cut_count") : json(cut.size());
    fmt::print(out, "dry run: nothing changed.  {} checked; {} would be cut\n",
               plural(at(r, "checked"), "live connection", "live connections"), cell(count));
    if (cut.empty()) return;
    flow_table(cut, true).print(out, "");
    if (count.is_number() && count.get<double>() > static_cast<double>(cut.size()))
        fmt::print(out, "({} shown of {})\n", cut.size(), cell(count));
}

void print_endpoints(const json& r, std::FILE* out) {
    TextTable t({"endpoint", "segment", "addresses", "mac", "tags"});
    for (const auto& e : list(r, "endpoints"))
        t.add({str(e, "name"), str(e, "segment"), cell(at(e, "ips")), str(e, "mac"), tags_text(at(e, "tags"))});
    t.print(out, "");
}

void print_endpoint_tags(const json& r, std::FILE* out) {
    fmt::print(out, "endpoint {}: tags {}; policy generation {} in force\n", str(r, "endpoint"), tags_text(at(r, "tags")),
               str(r, "generation"));
}

void print_flows(const json& r, std::FILE* out) {
    const json& flows = list(r, "flows");
    if (!flows.empty()) flow_table(flows, false).print(out, "");
    const json& shown = at(r, "shown").is_null() ? json(flows.size()) : at(r, "shown");
    const json& matched = at(r, "matched");
    if (!matched.is_null() && matched != at(r, "total"))
        fmt::print(out, "{} shown; {} match the filter, of {} live\n", plural(shown, "connection", "connections"),
                   cell(matched), str(r, "total"));
    else
        fmt::print(out, "{} shown of {} live\n", plural(shown, "connection", "connections"), str(r, "total"));
}

std::string identity_text(const json& side) {
    std::string out = str(side, "address");
    const json& ep = at(side, "endpoint");
    out += ep.is_null() ? " (no endpoint: external)" : fmt::format(" (endpoint {})", cell(ep));
    const json& groups = list(side, "groups");
    if (!groups.empty()) out += fmt::format("; groups: {}", cell(groups));
    return out;
}

void print_trace(const json& r, std::FILE* out) {
    print_kv(out, {{"verdict", str(r, "action")},
                   {"rule", at(r, "rule").is_null() ? "- (none matches)" : str(r, "rule")},
                   {"reason", str(r, "reason")},
                   {"src", identity_text(at(r, "src"))},
                   {"dst", identity_text(at(r, "dst"))}});
    if (!at(r, "explanation").is_null()) fmt::print(out, "{}\n", str(r, "explanation"));
    const json& considered = list(r, "considered");
    if (!considered.empty()) {
        fmt::print(out, "rules in order (first match wins):\n");
        for (const auto& c : considered)
            fmt::print(out, "  {} {:<24} line {:<5} {:<7} {}\n", at(c, "matches").is_boolean() && c["matches"].get<bool>() ? "*" : " ",
                       str(c, "rule"), str(c, "line"), str(c, "action"), str(c, "why"));
    }
}

}  // namespace

void print_result(CtlView view, const json& result, std::FILE* out) {
    switch (view) {
        case CtlView::status: return print_status(result, out);
        case CtlView::stats: return print_stats(result, out);
        case CtlView::ports: return print_ports(result, out);
        case CtlView::rules: return print_rules(result, out);
        case CtlView::policy_show: return print_policy_show(result, out);
        case CtlView::policy_load: return print_policy_load(result, out);
        case CtlView::policy_dry_run: return print_policy_dry_run(result, out);
        case CtlView::endpoint_list: return print_endpoints(result, out);
        case CtlView::endpoint_tags: return print_endpoint_tags(result, out);
        case CtlView::flows: return print_flows(result, out);
        case CtlView::flows_flush:
            return fmt::print(out, "flushed {}\n", plural(at(result, "flushed"), "connection", "connections"));
        case CtlView::trace: return print_trace(result, out);
    }
}

std::string describe_event_line(const json& e) {
    auto end = [&](const char* addr, const char* port) {
        const std::string a = str(e, addr);
        if (at(e, port).is_null()) return a;
        return a.find(':') != std::string::npos ? fmt::format("[{}]:{}", a, str(e, port))
                                                : fmt::format("{}:{}", a, str(e, port));
    };
    std::string service = str(e, "proto");
    if (!at(e, "dport").is_null()) service = fmt::format("{}/{}", service, str(e, "dport"));
    else if (!at(e, "icmp_type").is_null()) service = fmt::format("{}/type {}", service, str(e, "icmp_type"));
    return fmt::format("{} {:<6} {} -> {} {} {}/{}", str(e, "time"), str(e, "verdict"), end("src", "sport"),
                       end("dst", "dport"), service, str(e, "rule"), str(e, "reason"));
}

std::string cell(const json& v) {
    switch (v.type()) {
        case json::value_t::null: return "-";
        case json::value_t::string: return v.get<std::string>();
        case json::value_t::boolean: return v.get<bool>() ? "yes" : "no";
        case json::value_t::number_float: {
            const double d = v.get<double>();
            return d == std::floor(d) && std::fabs(d) < 1e15 ? fmt::format("{:.0f}", d) : fmt::format("{:.1f}", d);
        }
        case json::value_t::array: {
            if (v.empty()) return "-";
            std::string out;
            for (const auto& x : v) {
                if (!out.empty()) out += ',';
                out += cell(x);
            }
            return out;
        }
        case json::value_t::object: return tags_text(v);
        default: return v.dump();
    }
}

TextTable::TextTable(std::vector<std::string> headers) {
    for (auto& h : headers) {
        const bool right = !h.empty() && h[0] == '>';
        right_.push_back(right);
        headers_.push_back(right ? h.substr(1) : h);
    }
}

void TextTable::add(std::vector<std::string> row) {
    row.resize(headers_.size(), "-");
    rows_.push_back(std::move(row));
}

void TextTable::print(std::FILE* out, const std::string& indent) const {
    std::vector<size_t> width(headers_.size());
    for (size_t c = 0; c < headers_.size(); ++c) {
        width[c] = headers_[c].size();
        for (const auto& row : rows_) width[c] = std::max(width[c], row[c].size());
    }
    auto line = [&](const std::vector<std::string>& cells) {
        std::string text = indent;
        for (size_t c = 0; c < cells.size(); ++c) {
            if (c > 0) text += "  ";
            const bool last = c + 1 == cells.size();
            if (right_[c]) text += fmt::format("{:>{}}", cells[c], width[c]);
            else text += last ? cells[c] : fmt::format("{:<{}}", cells[c], width[c]);
        }
        fmt::print(out, "{}\n", text);
    };
    line(headers_);
    for (const auto& row : rows_) line(row);
}

}  // namespace tagwall::tools
