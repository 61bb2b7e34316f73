// Build side: parsing the text forms of services.
#include "rules/service_syntax.hpp"

#include <array>
#include <span>
#include <charconv>
#include <utility>

#include <fmt/format.h>

namespace tagwall::rules {
namespace {

struct NamedType {
    const char* name;
    uint8_t type;
};

constexpr std::array kIcmpTypes{
    NamedType{"echo-reply", 0},         NamedType{"destination-unreachable", 3},
    NamedType{"source-quench", 4},      NamedType{"redirect", 5},
    NamedType{"echo-request", 8},       NamedType{"router-advertisement", 9},
    NamedType{"router-solicitation", 10}, NamedType{"time-exceeded", 11},
    NamedType{"parameter-problem", 12}, NamedType{"timestamp-request", 13},
    NamedType{"timestamp-reply", 14},
};

constexpr std::array kIcmpV6Types{
    NamedType{"destination-unreachable", 1}, NamedType{"packet-too-big", 2},
    NamedType{"time-exceeded", 3},           NamedType{"parameter-problem", 4},
    NamedType{"echo-request", 128},          NamedType{"echo-reply", 129},
    NamedType{"mld-query", 130},             NamedType{"mld-report", 131},
    NamedType{"mld-done", 132},              NamedType{"router-solicitation", 133},
    NamedType{"router-advertisement", 134},  NamedType{"neighbor-solicitation", 135},
    NamedType{"neighbor-advertisement", 136}, NamedType{"redirect", 137},
    NamedType{"mldv2-report", 143},
};

// Strict decimal: digits only, no sign, no spaces, value <= max.
std::optional<unsigned> parse_number(std::string_view text, unsigned max) {
    unsigned v = 0;
    if (text.empty() || text.size() > 10) return std::nullopt;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || end != text.data() + text.size() || v > max) return std::nullopt;
    return v;
}

bool all_digits(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    return true;
}

std::optional<uint16_t> parse_port(std::string_view text, std::string& why) {
    if (!all_digits(text)) {
        why = fmt::format("'{}' is not a port number", text);
        return std::nullopt;
    }
    const auto v = parse_number(text, 65535);
    if (!v) {
        why = fmt::format("port {} is out of range 0-65535", text);
        return std::nullopt;
    }
    return static_cast<uint16_t>(*v);
}

bool parse_port_range(std::string_view text, ServiceItem& item, std::string& why) {
    const auto dash = text.find('-');
    const auto lo = parse_port(text.substr(0, dash), why);
    if (!lo) return false;
    auto hi = lo;
    if (dash != std::string_view::npos) {
        hi = parse_port(text.substr(dash + 1), why);
        if (!hi) return false;
        if (*hi < *lo) {
            why = fmt::format("port range {} is inverted (did you mean {}-{}?)", text, *hi, *lo);
            return false;
        }
    }
    item.port_lo = *lo;
    item.port_hi = *hi;
    return true;
}

std::string icmp_type_names(uint8_t proto) {
    std::string out;
    const auto& table = proto == kProtoIcmp ? std::span<const NamedType>(kIcmpTypes) : std::span<const NamedType>(kIcmpV6Types);
    for (const auto& t : table) out += (out.empty() ? "" : ", ") + std::string(t.name);
    return out;
}

}  // namespace

std::optional<uint8_t> parse_protocol(std::string_view text) {
    if (text == "tcp") return kProtoTcp;
    if (text == "udp") return kProtoUdp;
    if (text == "icmp") return kProtoIcmp;
    if (text == "icmpv6" || text == "ipv6-icmp") return kProtoIcmpV6;
    if (text == "sctp") return kProtoSctp;
    if (const auto v = parse_number(text, 255)) return static_cast<uint8_t>(*v);
    return std::nullopt;
}

const char* protocol_name(uint8_t proto) noexcept {
    switch (proto) {
    case kProtoTcp: return "tcp";
    case kProtoUdp: return "udp";
    case kProtoIcmp: return "icmp";
    case kProtoIcmpV6: return "icmpv6";
    case kProtoSctp: return "sctp";
    default: return nullptr;
    }
}

std::optional<uint8_t> parse_icmp_type(uint8_t proto, std::string_view text) {
    const auto table = proto == kProtoIcmp ? std::span<const NamedType>(kIcmpTypes) : std::span<const NamedType>(kIcmpV6Types);
    for (const auto& t : table)
        if (text == t.name) return t.type;
    if (const auto v = parse_number(text, 255)) return static_cast<uint8_t>(*v);
    return std::nullopt;
}

std::optional<ServiceItem> parse_service_item(std::string_view text, std::string& why) {
    const auto slash = text.find('/');
    const auto proto_text = text.substr(0, slash);
    const auto arg = slash == std::string_view::npos ? std::string_view{} : text.substr(slash + 1);
    ServiceItem item;
    if (proto_text == "proto") {  // proto/N: any other IP protocol by number
        const auto p = parse_number(arg, 255);
        if (!p) {
            why = fmt::format("'{}': protocol number must be 0-255", text);
            return std::nullopt;
        }
        item.proto = static_cast<uint8_t>(*p);
        return item;
    }
    const auto proto = all_digits(proto_text) ? std::nullopt : parse_protocol(proto_text);
    if (!proto) {
        why = fmt::format("'{}' is not a service: expected tcp/PORT[-PORT], udp/..., sctp/..., icmp[/TYPE], "
                          "icmpv6[/TYPE] or proto/NUMBER", text);
        return std::nullopt;
    }
    item.proto = *proto;
    if (slash == std::string_view::npos) return item;  // the whole protocol
    if (proto_has_ports(item.proto)) {
        if (!parse_port_range(arg, item, why)) return std::nullopt;
        return item;
    }
    const auto type = parse_icmp_type(item.proto, arg);
    if (!type) {
        why = fmt::format("'{}' is not an {} type (a number 0-255 or one of: {})", arg, proto_text,
                          icmp_type_names(item.proto));
        return std::nullopt;
    }
    item.icmp_type = *type;
    return item;
}

}  // namespace tagwall::rules
