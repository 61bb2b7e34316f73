// The packet parser: one frame's bytes in, a ParsedPacket (packet.hpp) or a drop reason out.
//
// Run side: any worker, per packet.  parse_frame() is noexcept, allocates nothing, logs nothing and keeps
// no state; it reads only inside `frame` and trusts no length field.  It is straight-line code: each
// layer checks that its header fits in what the outer layer vouched for, reads fields with memcpy and
// byte swaps, and hands the rest to the next layer.
//
// What it understands (SPEC §5): Ethernet with at most one 802.1Q/802.1ad tag (a second tag is `qinq`);
// ARP (Ethernet/IPv4 only); IPv4 (options skipped, never interpreted); IPv6 with its extension-header
// chain walked to the upper-layer header (hop-by-hop, routing, fragment, destination options, AH,
// mobility; at most 8 of them); TCP (with the window-scale option), UDP, SCTP ports; ICMP and ICMPv6,
// with the embedded header of an error message (for `related`) and the target and link-layer option
// of neighbour discovery.  Checksums are not verified.
//
// Length rules worth knowing:
//  - the IP total length (IPv4) or 40 + payload length (IPv6) ends the packet: Ethernet padding after
//    it is ignored, and a length past the frame is a drop;
//  - a frame longer than 65535 bytes is seen as its first 65535 bytes (offsets are 16-bit);
//  - fragments: `fragment_data` is where the fragment's data starts (after the IPv6 Fragment header,
//    whatever extension headers follow it); a later fragment (offset > 0) has no L4 header
//    (`l4_present` false; l4_offset and l4_length then delimit the fragment's data, and l4_offset is
//    fragment_data); a first fragment must hold the whole L4 header
//    (`fragment_tiny`, RFC 1858) and, in IPv6, the whole header chain (`ipv6_l4_not_in_first`,
//    RFC 7112); an IPv4 TCP fragment at offset 8 is `fragment_overlap` (RFC 1858).  An IPv6 "atomic"
//    fragment (offset 0, M clear) is not a fragment (RFC 6946).
//  - an ICMP error whose quoted packet is cut is not a drop: `inner_l3_present` / `inner_l4_present`
//    say how much of it was there, and the connection tracker decides.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "dataplane/packet.hpp"
#include "dataplane/reasons.hpp"

namespace tagwall::dataplane {

// Parses one frame into `out`, which it overwrites entirely (what a frame does not carry is left at its
// ParsedPacket default).  Returns nullopt when the frame parsed, otherwise why it must be dropped; on a
// drop `out` holds what was parsed before the fault (for counters and events only).
//
// `out` is an output parameter on purpose: the worker parses a burst into its preallocated scratch
// array, and returning a ~200-byte struct per packet would copy it.
std::optional<Reason> parse_frame(std::span<const uint8_t> frame, ParsedPacket& out) noexcept;

// The established fast path's parse: true, with `out` written whole, when `frame` is what AckSegment
// describes (packet.hpp); then parse_frame() accepts it too, and gives every field of `out` the same
// value.  False, with `out` unspecified, for every other frame.
bool parse_ack_segment(std::span<const uint8_t> frame, AckSegment& out) noexcept;
// Whether `frame` may be one parse_ack_segment() takes, judged by its TCP flags alone (the byte where an
// IPv4 header without options puts them, behind at most one VLAN tag): false means it is not one, so
// that the worker sends a SYN straight to parse_frame() without a call.  True promises nothing.
inline bool maybe_ack_segment(std::span<const uint8_t> frame) noexcept {
    constexpr size_t kFlagsOffset = 14 + 20 + 13;  // Ethernet, IPv4 without options, TCP byte 13
    const uint8_t* f = frame.data();
    if (frame.size() < kFlagsOffset + 4 + 1) return false;  // (parse_ack_segment wants more anyway)
    const bool tagged = (f[12] == 0x81 && f[13] == 0x00) || (f[12] == 0x88 && f[13] == 0xa8);
    return (f[kFlagsOffset + (tagged ? 4 : 0)] & 0x17) == 0x10;  // of SYN, ACK, RST, FIN: ACK alone
}

namespace detail {
// parse_frame() without its shortcut for the commonest frames (Ethernet, one optional 802.1Q tag, IPv4
// without options, TCP or UDP): the reference the shortcut is tested against.
std::optional<Reason> parse_frame_general(std::span<const uint8_t> frame, ParsedPacket& out) noexcept;
}  // namespace detail

// Protocol numbers and ethertypes the parser and its callers name.
inline constexpr uint16_t kEtherTypeIpv4 = 0x0800, kEtherTypeArp = 0x0806, kEtherTypeVlan = 0x8100,
                          kEtherTypeQinq = 0x88a8, kEtherTypeIpv6 = 0x86dd;
inline constexpr uint8_t kIpProtoHopByHop = 0, kIpProtoIcmp = 1, kIpProtoTcp = 6, kIpProtoUdp = 17,
                         kIpProtoRouting = 43, kIpProtoFragment = 44, kIpProtoEsp = 50, kIpProtoAh = 51,
                         kIpProtoIcmpv6 = 58, kIpProtoNoNext = 59, kIpProtoDstOpts = 60,
                         kIpProtoSctp = 132, kIpProtoMobility = 135;
inline constexpr unsigned kMaxIpv6ExtHeaders = 8;

}  // namespace tagwall::dataplane
