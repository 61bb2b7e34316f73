// The text forms of services, protocols and ICMP types: "tcp/443", "udp/1024-65535", "icmp/echo-request",
// "icmpv6/128", "proto/47", "tcp".  Build side (the loader) and tools (tagwallctl trace) share them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "rules/policy.hpp"

namespace tagwall::rules {

// Parses one service item; on failure returns nullopt and says why in `why` (a sentence that ends
// without a period, to be prefixed with a position).
std::optional<ServiceItem> parse_service_item(std::string_view text, std::string& why);

// "tcp" -> 6, "udp" -> 17, "icmp" -> 1, "icmpv6" -> 58, "sctp" -> 132, or a number 0..255.
std::optional<uint8_t> parse_protocol(std::string_view text);
const char* protocol_name(uint8_t proto) noexcept;  // nullptr when the language has no name for it

// ICMP (proto 1) or ICMPv6 (proto 58) type by name or number.
std::optional<uint8_t> parse_icmp_type(uint8_t proto, std::string_view text);

}  // namespace tagwall::rules
