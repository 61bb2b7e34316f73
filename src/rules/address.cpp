// Build side: text parsing and formatting of addresses (control code; may allocate).
#include "rules/address.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace tagwall::rules {

IpAddr IpAddr::v4(uint32_t host_order) noexcept {
    IpAddr a;
    a.family = Family::v4;
    a.bytes[0] = static_cast<uint8_t>(host_order >> 24);
    a.bytes[1] = static_cast<uint8_t>(host_order >> 16);
    a.bytes[2] = static_cast<uint8_t>(host_order >> 8);
    a.bytes[3] = static_cast<uint8_t>(host_order);
    return a;
}

IpAddr IpAddr::v6(const std::array<uint8_t, 16>& b) noexcept {
    IpAddr a;
    a.family = Family::v6;
    a.bytes = b;
    return a;
}

std::optional<IpAddr> IpAddr::parse(std::string_view text) {
    if (text.empty() || text.size() > INET6_ADDRSTRLEN) return std::nullopt;
    std::string s(text);
    IpAddr a;
    if (s.find(':') == std::string::npos) {
        in_addr v4{};
        if (inet_pton(AF_INET, s.c_str(), &v4) != 1) return std::nullopt;
        std::memcpy(a.bytes.data(), &v4, 4);
        a.family = Family::v4;
        return a;
    }
    in6_addr v6{};
    if (inet_pton(AF_INET6, s.c_str(), &v6) != 1) return std::nullopt;
    std::memcpy(a.bytes.data(), &v6, 16);
    a.family = Family::v6;
    return a;
}

uint32_t IpAddr::v4_host_order() const noexcept {
    return (uint32_t{bytes[0]} << 24) | (uint32_t{bytes[1]} << 16) | (uint32_t{bytes[2]} << 8) | bytes[3];
}

IpAddr IpAddr::masked(unsigned len) const noexcept {
    IpAddr r = *this;
    const unsigned total = max_prefix_len(family);
    for (unsigned i = len; i < total; ++i) r.bytes[i / 8] &= static_cast<uint8_t>(~(0x80u >> (i % 8)));
    return r;
}

std::string IpAddr::str() const {
    char buf[INET6_ADDRSTRLEN] = {};
    inet_ntop(family == Family::v4 ? AF_INET : AF_INET6, bytes.data(), buf, sizeof buf);
    return buf;
}

std::optional<Prefix> Prefix::parse(std::string_view text, std::string* why) {
    auto fail = [&](std::string msg) -> std::optional<Prefix> {
        if (why) *why = std::move(msg);
        return std::nullopt;
    };
    const auto slash = text.find('/');
    const auto addr = IpAddr::parse(text.substr(0, slash));
    if (!addr) return fail(fmt::format("'{}' is not an IPv4 or IPv6 address", text.substr(0, slash)));
    const unsigned max = max_prefix_len(addr->family);
    unsigned len = max;
    if (slash != std::string_view::npos) {
        const auto digits = text.substr(slash + 1);
        const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), len);
        if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size() || len > max)
            return fail(fmt::format("prefix length '{}' must be 0..{} for {}", digits, max,
                                    addr->family == Family::v4 ? "IPv4" : "IPv6"));
    }
    Prefix p{addr->masked(len), static_cast<uint8_t>(len)};
    if (p.addr != *addr)
        return fail(fmt::format("'{}' has host bits set below /{} (did you mean {}?)", text, len, p.str()));
    return p;
}

bool Prefix::contains(const IpAddr& a) const noexcept {
    if (a.family != addr.family) return false;
    const unsigned full = len / 8;
    if (std::memcmp(a.bytes.data(), addr.bytes.data(), full) != 0) return false;
    if (len % 8 == 0) return true;
    const uint8_t mask = static_cast<uint8_t>(0xFFu << (8 - len % 8));
    return (a.bytes[full] & mask) == addr.bytes[full];
}

IpAddr Prefix::last() const noexcept {
    IpAddr r = addr;
    const unsigned total = max_prefix_len(addr.family);
    for (unsigned i = len; i < total; ++i) r.bytes[i / 8] |= static_cast<uint8_t>(0x80u >> (i % 8));
    return r;
}

std::string Prefix::str() const { return fmt::format("{}/{}", addr.str(), len); }

std::optional<MacAddr> MacAddr::parse(std::string_view text, std::string* why) {
    auto fail = [&](std::string msg) -> std::optional<MacAddr> {
        if (why) *why = std::move(msg);
        return std::nullopt;
    };
    MacAddr m;
    if (text.size() != 17) return fail(fmt::format("'{}' is not a MAC address (expected 52:54:00:00:10:11)", text));
    const char sep = text[2];
    if (sep != ':' && sep != '-') return fail(fmt::format("'{}' is not a MAC address (expected 52:54:00:00:10:11)", text));
    for (int i = 0; i < 6; ++i) {
        const auto part = text.substr(static_cast<size_t>(i) * 3, 2);
        unsigned v = 0;
        const auto [end, ec] = std::from_chars(part.data(), part.data() + 2, v, 16);
        const bool sep_ok = i == 5 || text[static_cast<size_t>(i) * 3 + 2] == sep;
        if (ec != std::errc{} || end != part.data() + 2 || !sep_ok)
            return fail(fmt::format("'{}' is not a MAC address (expected 52:54:00:00:10:11)", text));
        m.bytes[static_cast<size_t>(i)] = static_cast<uint8_t>(v);
    }
    if (m.bytes[0] & 1) return fail(fmt::format("'{}' is a multicast MAC; an endpoint's MAC must be unicast", text));
    if (m == MacAddr{}) return fail("00:00:00:00:00:00 cannot be bound to an endpoint");
    return m;
}

std::string MacAddr::str() const {
    return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", bytes[0], bytes[1], bytes[2], bytes[3],
                       bytes[4], bytes[5]);
}

bool increment(IpAddr& a) noexcept {
    const int last = a.family == Family::v4 ? 3 : 15;
    for (int i = last; i >= 0; --i)
        if (++a.bytes[static_cast<size_t>(i)] != 0) return true;
    return false;  // wrapped: a was the last address
}

bool decrement(IpAddr& a) noexcept {
    const int last = a.family == Family::v4 ? 3 : 15;
    for (int i = last; i >= 0; --i)
        if (a.bytes[static_cast<size_t>(i)]-- != 0) return true;
    return false;
}

}  // namespace tagwall::rules

size_t std::hash<tagwall::rules::IpAddr>::operator()(const tagwall::rules::IpAddr& a) const noexcept {
    uint64_t hi = 0, lo = 0;
    std::memcpy(&hi, a.bytes.data(), 8);
    std::memcpy(&lo, a.bytes.data() + 8, 8);
    uint64_t h = hi * 0x9E3779B97F4A7C15ull ^ (lo + static_cast<uint64_t>(a.family)) * 0xC2B2AE3D27D4EB4Full;
    return static_cast<size_t>(h ^ (h >> 29));
}
