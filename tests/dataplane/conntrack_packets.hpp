// Test helpers for connection tracking: ParsedPackets as the parser would produce them, built from a
// few fields (the tracker never looks at bytes).
#pragma once

#include <cstdint>
#include <string_view>

#include "dataplane/packet.hpp"
#include "rules/address.hpp"

namespace tagwall::dataplane::testing {

inline rules::IpAddr addr(std::string_view text) { return *rules::IpAddr::parse(text); }

inline ParsedPacket ip_packet(const rules::IpAddr& src, const rules::IpAddr& dst, uint8_t proto,
                              uint16_t payload = 0) {
    ParsedPacket p;
    const bool v4 = src.family == rules::Family::v4;
    p.kind = v4 ? PacketKind::ipv4 : PacketKind::ipv6;
    p.ethertype = v4 ? 0x0800 : 0x86dd;
    p.src = src;
    p.dst = dst;
    p.proto = proto;
    p.ttl = 64;
    p.l3_offset = 14;
    p.l4_present = true;
    p.l4_offset = static_cast<uint16_t>(v4 ? 34 : 54);
    p.payload_length = payload;
    return p;
}

// "S", "S.", ".", "P.", "F.", "R", "R.", "" ...: S SYN, . ACK, F FIN, R RST, P PSH, U URG.
inline uint8_t tcp_flags(std::string_view text) {
    uint8_t f = 0;
    for (const char c : text) {
        switch (c) {
        case 'S': f |= kTcpSyn; break;
        case '.': f |= kTcpAck; break;
        case 'F': f |= kTcpFin; break;
        case 'R': f |= kTcpRst; break;
        case 'P': f |= kTcpPsh; break;
        case 'U': f |= kTcpUrg; break;
        default: break;
        }
    }
    return f;
}

inline ParsedPacket tcp(const rules::IpAddr& src, uint16_t sport, const rules::IpAddr& dst, uint16_t dport,
                        std::string_view flags, uint32_t seq, uint32_t ack, uint16_t window,
                        uint16_t payload = 0, uint8_t wscale = kNoWindowScale) {
    ParsedPacket p = ip_packet(src, dst, 6, payload);
    p.sport = sport;
    p.dport = dport;
    p.tcp_flags = tcp_flags(flags);
    p.tcp_seq = seq;
    p.tcp_ack = ack;
    p.tcp_window = window;
    p.tcp_wscale = wscale;
    const uint16_t l3 = src.family == rules::Family::v4 ? 20 : 40;
    p.l4_length = static_cast<uint16_t>(20 + payload);
    p.l3_length = static_cast<uint16_t>(l3 + p.l4_length);
    return p;
}

inline ParsedPacket udp(const rules::IpAddr& src, uint16_t sport, const rules::IpAddr& dst, uint16_t dport,
                        uint16_t payload = 32) {
    ParsedPacket p = ip_packet(src, dst, 17, payload);
    p.sport = sport;
    p.dport = dport;
    p.l4_length = static_cast<uint16_t>(8 + payload);
    p.l3_length = static_cast<uint16_t>((src.family == rules::Family::v4 ? 20 : 40) + p.l4_length);
    return p;
}

inline ParsedPacket icmp(const rules::IpAddr& src, const rules::IpAddr& dst, uint8_t type, uint16_t id = 0) {
    const bool v4 = src.family == rules::Family::v4;
    ParsedPacket p = ip_packet(src, dst, v4 ? 1 : 58, 56);
    p.icmp_type = type;
    p.icmp_id = id;
    p.l4_length = 64;
    p.l3_length = static_cast<uint16_t>((v4 ? 20 : 40) + 64);
    return p;
}

inline ParsedPacket echo_request(const rules::IpAddr& src, const rules::IpAddr& dst, uint16_t id) {
    return icmp(src, dst, src.family == rules::Family::v4 ? 8 : 128, id);
}
inline ParsedPacket echo_reply(const rules::IpAddr& src, const rules::IpAddr& dst, uint16_t id) {
    return icmp(src, dst, src.family == rules::Family::v4 ? 0 : 129, id);
}

// An ICMP error from `src` to `dst` quoting a packet (inner_src, inner_sport) -> (inner_dst, inner_dport)
// of protocol inner_proto (for a quoted echo, both ports hold its identifier, and inner_icmp_type says
// whether it was a request or a reply).
inline ParsedPacket icmp_error(const rules::IpAddr& src, const rules::IpAddr& dst, const rules::IpAddr& inner_src,
                               uint16_t inner_sport, const rules::IpAddr& inner_dst, uint16_t inner_dport,
                               uint8_t inner_proto, uint8_t inner_icmp_type = 0) {
    const bool v4 = src.family == rules::Family::v4;
    ParsedPacket p = icmp(src, dst, v4 ? 3 : 1);  // destination unreachable
    p.icmp_code = v4 ? 3 : 4;                     // port unreachable
    p.icmp_error = true;
    p.inner_l3_present = true;
    p.inner_l4_present = true;
    p.inner_src = inner_src;
    p.inner_dst = inner_dst;
    p.inner_proto = inner_proto;
    p.inner_icmp_type = inner_icmp_type;
    p.inner_sport = inner_sport;
    p.inner_dport = inner_dport;
    return p;
}

}  // namespace tagwall::dataplane::testing
