// What the parser extracts from one frame: the only view of a packet the rest of the pipeline uses.
//
// Run side.  One ParsedPacket per packet of a burst lives in the worker's scratch array; the parser
// fills it without allocating and without trusting any length field (parser.hpp).  Offsets are from
// the start of the frame.  Fields of a layer are meaningful only when that layer is present (`kind`,
// `l4_present`, `icmp_error`, ...); the parser zeroes what it does not set.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>

#include "rules/address.hpp"

namespace tagwall::dataplane {

using Mac = std::array<uint8_t, 6>;

// Two MACs compared as a 32- and a 16-bit word, without a call to memcmp.
inline bool same_mac(const Mac& x, const Mac& y) noexcept {
    uint32_t x4, y4;
    uint16_t x2, y2;
    std::memcpy(&x4, x.data(), 4);
    std::memcpy(&y4, y.data(), 4);
    std::memcpy(&x2, x.data() + 4, 2);
    std::memcpy(&y2, y.data() + 4, 2);
    return ((x4 ^ y4) | static_cast<uint32_t>(x2 ^ y2)) == 0;
}
inline bool is_zero_mac(const Mac& m) noexcept { return same_mac(m, Mac{}); }

enum class PacketKind : uint8_t { other, arp, ipv4, ipv6 };

inline constexpr uint8_t kTcpFin = 0x01, kTcpSyn = 0x02, kTcpRst = 0x04, kTcpPsh = 0x08, kTcpAck = 0x10,
                         kTcpUrg = 0x20, kTcpEce = 0x40, kTcpCwr = 0x80;
inline constexpr uint8_t kNoWindowScale = 0xFF;

struct ParsedPacket {
    // --- L2 ---
    Mac dst_mac{}, src_mac{};
    uint16_t vlan = 0;        // 0 when untagged (SPEC §4: the segment of an untagged packet is vlan 0)
    bool tagged = false;
    uint16_t ethertype = 0;   // after the VLAN tag
    PacketKind kind = PacketKind::other;

    // --- ARP (kind == arp; Ethernet/IPv4 ARP only) ---
    uint16_t arp_op = 0;      // 1 request, 2 reply
    Mac arp_sender_mac{};
    rules::IpAddr arp_sender_ip, arp_target_ip;

    // --- L3 (kind == ipv4 || kind == ipv6) ---
    uint16_t l3_offset = 0;
    uint16_t l3_length = 0;   // IPv4 total length / IPv6 40 + payload length, as checked against the frame
    rules::IpAddr src, dst;
    uint8_t proto = 0;        // the L4 protocol after the IPv6 extension-header chain (in an IPv6 later
                              // fragment: the fragment header's next header, which need not be the L4 one)
    uint8_t ttl = 0;          // TTL / hop limit

    // --- fragments ---
    bool fragment = false;        // part of a fragmented datagram (MF set or offset > 0)
    bool first_fragment = false;  // fragment with offset 0
    bool more_fragments = false;
    uint16_t fragment_offset = 0; // in bytes
    uint16_t fragment_data = 0;   // where the fragment's data starts in the frame: the IPv4 payload, or
                                  // what follows the IPv6 Fragment header (RFC 8200 §4.5: extension
                                  // headers after it are fragment data, and count in the offsets)
    uint32_t fragment_id = 0;     // IPv4 id (16 bits) or IPv6 fragment header id

    // --- L4 (l4_present: not a later fragment, and the header was complete; in a later fragment
    //     l4_offset/l4_length/payload_length delimit the fragment's data) ---
    bool l4_present = false;
    uint16_t l4_offset = 0;
    uint16_t l4_length = 0;       // from l4_offset to the end of the IP payload
    uint16_t sport = 0, dport = 0;        // TCP/UDP/SCTP
    uint8_t tcp_flags = 0;
    uint32_t tcp_seq = 0, tcp_ack = 0;
    uint16_t tcp_window = 0;              // raw, unscaled
    uint8_t tcp_wscale = kNoWindowScale;  // window-scale option, when present (SYN segments)
    uint16_t payload_length = 0;          // L4 payload bytes (TCP: after options)
    uint8_t icmp_type = 0, icmp_code = 0;
    uint16_t icmp_id = 0;                 // echo request/reply identifier

    // --- ICMP/ICMPv6 errors: the embedded header, for `related` (first 8 bytes of L4 are enough) ---
    bool icmp_error = false;
    bool inner_l3_present = false;        // the quoted IP header was complete (inner_src/dst/proto valid)
    bool inner_l4_present = false;        // ... and its first 8 L4 bytes too (inner ports / echo id valid)
    rules::IpAddr inner_src, inner_dst;
    uint8_t inner_proto = 0;
    uint8_t inner_icmp_type = 0;                // the quoted ICMP/ICMPv6 message's type (inner_l4_present)
    uint16_t inner_sport = 0, inner_dport = 0;  // or the echo id in both for an embedded echo

    // --- IPv6 neighbour discovery (ICMPv6 133-137) ---
    bool nd = false;
    rules::IpAddr nd_target;             // NS/NA/redirect target
    bool nd_has_ll = false;
    Mac nd_ll{};                          // source/target link-layer address option

    friend bool operator==(const ParsedPacket&, const ParsedPacket&) = default;
};

// What the established fast path (Pipeline::process) reads of the commonest frame: a TCP segment whose
// only core flag is ACK (PSH, URG, ECE, CWR aside), in IPv4 without options and not fragmented, in
// Ethernet with at most one 802.1Q tag.  parse_ack_segment() (parser.hpp) fills it for exactly such
// frames, with the values parse_frame() gives the fields of the same names.  It is a fifth of a
// ParsedPacket and written whole, so the fast path neither resets nor fills the rest; a frame the fast
// path does not decide is parsed again, in full.
struct AckSegment {
    // IPv4, each written as two 8-byte words (parse_ack_segment) at an 8-byte boundary: the key and the
    // identity hash read them back as words, which the store buffer then forwards whole.
    alignas(8) rules::IpAddr src;
    alignas(8) rules::IpAddr dst;
    Mac dst_mac{}, src_mac{};
    uint16_t vlan = 0;       // 0 when untagged
    uint16_t l3_length = 0;
    uint16_t sport = 0, dport = 0;
    uint32_t tcp_seq = 0, tcp_ack = 0;
    uint16_t tcp_window = 0;
    uint16_t payload_length = 0;
    uint8_t tcp_flags = 0;

    friend bool operator==(const AckSegment&, const AckSegment&) = default;
};

}  // namespace tagwall::dataplane
