// Addresses, prefixes and MACs as the policy and the classifier see them.
//
// Build side and run side alike: these are plain values, cheap to copy, with no allocation except in the
// text parsers and formatters (control code only).  An IpAddr always holds 16 bytes; IPv4 addresses are
// stored in the first four (network byte order) with the rest zero, and carry their family, so that
// 198.18.0.1 and ::c612:1 are different addresses.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace tagwall::rules {

enum class Family : uint8_t { v4 = 4, v6 = 6 };

constexpr unsigned max_prefix_len(Family f) noexcept { return f == Family::v4 ? 32 : 128; }

struct IpAddr {
    std::array<uint8_t, 16> bytes{};  // network byte order; v4 uses bytes[0..3]
    Family family = Family::v4;

    static IpAddr v4(uint32_t host_order) noexcept;
    static IpAddr v6(const std::array<uint8_t, 16>& b) noexcept;
    // Parses dotted-quad IPv4 or RFC 4291 IPv6 text; nullopt on anything else.
    static std::optional<IpAddr> parse(std::string_view text);

    uint32_t v4_host_order() const noexcept;
    bool bit(unsigned i) const noexcept { return (bytes[i / 8] >> (7 - i % 8)) & 1u; }
    IpAddr masked(unsigned len) const noexcept;  // keeps the first len bits
    std::string str() const;

    friend auto operator<=>(const IpAddr&, const IpAddr&) = default;
};

struct Prefix {
    IpAddr addr;   // host bits are zero
    uint8_t len = 0;

    // "198.18.0.0/15", "2001:db8::/32", or a bare address (a host prefix).  Host bits set below the
    // length are an error, as in most firewalls, since they usually hide a typo.
    static std::optional<Prefix> parse(std::string_view text, std::string* why = nullptr);
    static Prefix host(const IpAddr& a) noexcept { return {a, static_cast<uint8_t>(max_prefix_len(a.family))}; }

    Family family() const noexcept { return addr.family; }
    bool contains(const IpAddr& a) const noexcept;
    bool contains(const Prefix& p) const noexcept { return p.len >= len && contains(p.addr); }
    // First and last address covered.
    IpAddr first() const noexcept { return addr; }
    IpAddr last() const noexcept;
    std::string str() const;

    friend auto operator<=>(const Prefix&, const Prefix&) = default;
};

struct MacAddr {
    std::array<uint8_t, 6> bytes{};
    // "52:54:00:00:10:11" or "52-54-00-00-10-11"; multicast and all-zero MACs are refused (a workload's
    // own MAC is always a unicast address).
    static std::optional<MacAddr> parse(std::string_view text, std::string* why = nullptr);
    std::string str() const;
    friend auto operator<=>(const MacAddr&, const MacAddr&) = default;
};

// Successor / predecessor in the same family; false on overflow (the last / first address).
bool increment(IpAddr& a) noexcept;
bool decrement(IpAddr& a) noexcept;

}  // namespace tagwall::rules

template <>
struct std::hash<tagwall::rules::IpAddr> {
    size_t operator()(const tagwall::rules::IpAddr& a) const noexcept;
};

template <>
struct fmt::formatter<tagwall::rules::IpAddr> : fmt::formatter<std::string_view> {
    auto format(const tagwall::rules::IpAddr& a, fmt::format_context& ctx) const {
        return fmt::formatter<std::string_view>::format(a.str(), ctx);
    }
};
template <>
struct fmt::formatter<tagwall::rules::Prefix> : fmt::formatter<std::string_view> {
    auto format(const tagwall::rules::Prefix& p, fmt::format_context& ctx) const {
        return fmt::formatter<std::string_view>::format(p.str(), ctx);
    }
};
