// The reference for parse_ack_segment() (parser.hpp), written from what parse_frame() says of a frame:
// the AckSegment it must give, or nullopt where it must refuse.  Shared by the parser's unit tests and
// fuzz-packet, which check every frame they see against it.
#pragma once

#include <optional>

#include "dataplane/packet.hpp"
#include "dataplane/parser.hpp"

namespace tagwall::test {

inline std::optional<dataplane::AckSegment> expected_ack_segment(const dataplane::ParsedPacket& p,
                                                                 const std::optional<dataplane::Reason>& bad) {
    using namespace dataplane;
    constexpr uint8_t kCore = kTcpSyn | kTcpAck | kTcpRst | kTcpFin;
    // IPv4 without options (the L4 header right after 20 bytes), not a fragment, a whole TCP header,
    // ACK the only core flag, at most one VLAN tag (a second one is `qinq`, a drop).
    if (bad || p.kind != PacketKind::ipv4 || p.fragment || p.proto != kIpProtoTcp || !p.l4_present ||
        p.l4_offset != p.l3_offset + 20 || (p.tcp_flags & kCore) != kTcpAck)
        return std::nullopt;
    AckSegment a;
    a.src = p.src;
    a.dst = p.dst;
    a.dst_mac = p.dst_mac;
    a.src_mac = p.src_mac;
    a.vlan = p.vlan;
    a.l3_length = p.l3_length;
    a.sport = p.sport;
    a.dport = p.dport;
    a.tcp_seq = p.tcp_seq;
    a.tcp_ack = p.tcp_ack;
    a.tcp_window = p.tcp_window;
    a.payload_length = p.payload_length;
    a.tcp_flags = p.tcp_flags;
    return a;
}

}  // namespace tagwall::test
