// The answer a `reject` verdict sends back (SPEC: "reject (TCP RST / ICMP(v6) unreachable sent back out
// the ingress port, rate-limited)"), and the token bucket that limits how many are sent.
//
// Concurrency contract: run side.  build_reject() is a pure function: noexcept, no allocation, no state,
// no logging; it reads only inside `frame` and writes only inside `out` (the two must not overlap).  A
// RejectLimiter belongs to one worker (it lives in the worker's context) and is used only by its own
// core; it has no atomics.  With N workers the appliance sends up to N times one limiter's rate, so
// whoever builds the workers divides the configured rate among them.
//
// What the answer is (the behaviour of Linux/nftables `reject`, written from the RFCs):
//   - Ethernet: back to the packet's source MAC, from its destination MAC (the appliance answers as the
//     host that was asked), with the packet's VLAN tag kept (same TPID and VLAN id, PCP 0) when it had
//     one.  Frames shorter than 60 bytes are zero-padded to 60 (the Ethernet minimum without FCS), so
//     that no PMD has to.
//   - A TCP segment other than an RST gets an RST (RFC 9293 §3.10.7.1): if the segment had ACK, seq = its
//     ack and flags RST; otherwise seq 0, ack = its seq + its length (payload, + 1 for SYN, + 1 for FIN)
//     and flags RST|ACK.  Window 0, no options.  In a first fragment the length is that fragment's,
//     which still acknowledges the SYN (the receiver accepts an RST whose ack lies in (ISS, SND.NXT]).
//   - Anything else gets ICMP destination unreachable / port unreachable (type 3 code 3) quoting the
//     packet up to 576 bytes of answer (RFC 1812 §4.3.2.3), or ICMPv6 destination unreachable / port
//     unreachable (type 1 code 4) quoting it up to 1280 bytes of answer (RFC 4443 §2.4(c)).  The quote is
//     the IP packet as received (Ethernet padding excluded).
//   - New IP header: IPv4 IHL 5, TOS 0, id 0, DF, TTL 64; IPv6 traffic class 0, flow label 0, hop limit
//     64, no extension headers.  Addresses swapped.  Every checksum is computed.
//
// When no answer is sent (0 is returned), following RFC 1122 §3.2.2, RFC 1812 §4.3.2.7, RFC 4443 §2.4(e)
// and RFC 9293 §3.10.7.1:
//   - not IPv4/IPv6 (ARP, anything else), or a later fragment (no L4 header to answer);
//   - a TCP RST; an ICMP error (p.icmp_error; for ICMPv6 any type below 128) or ICMPv6 neighbour
//     discovery / redirect (133-137);
//   - a destination MAC with the group bit (broadcast, multicast);
//   - a destination address that is IPv4 limited broadcast or multicast (224/4), IPv6 multicast (ff00::/8),
//     or one the answer could not come from: unspecified (0.0.0.0, ::) or loopback (127/8, ::1);
//   - a source address that is not one host: IPv4 0/8, 127/8, multicast (224/4) or reserved and
//     broadcast (240/4); IPv6 unspecified, loopback or multicast;
//   - `out` shorter than the answer (kRejectMaxFrame is always enough);
//   - a ParsedPacket that does not fit `frame` (offsets past it, L3 not right after the Ethernet
//     header): never the case for what parse_frame() made of this frame, checked all the same.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "dataplane/packet.hpp"

namespace tagwall::dataplane {

inline constexpr size_t kRejectMaxFrame = 14 + 4 + 1280;  // the largest answer built (a VLAN-tagged IPv6
                                                          // min-MTU packet)

// Builds, into `out`, the frame that answers a rejected packet: `frame` are the packet's bytes as received
// and `p` what parse_frame() made of them.  Returns the answer's length, or 0 when no answer may be sent.
size_t build_reject(std::span<const uint8_t> frame, const ParsedPacket& p, std::span<uint8_t> out) noexcept;

// The other half of closing a revoked TCP connection (SPEC §6: "TCP gets an RST both ways"): an RST
// that continues the packet's own direction, as if its sender had reset the connection, for the
// packet's destination.  Same MACs, addresses and ports as the packet, seq = the packet's seq (what
// the destination expects next, since the packet itself is not delivered), flags RST, no ACK; built
// and checked as build_reject() builds and checks its answers.  0 for anything but a TCP segment
// without RST, and in every case where build_reject() would not answer the mirrored packet.
size_t build_forward_rst(std::span<const uint8_t> frame, const ParsedPacket& p, std::span<uint8_t> out) noexcept;

// A token bucket: `rate` answers per second on average, at most `burst` at once.  Integer arithmetic in
// nano-tokens (one answer = 10^9 of them, one nanosecond adds `rate`), exact for every rate and burst and
// free of overflow for any now_ns below 2^64.  The first take() starts with a full bucket whatever its
// now; time going backwards refills nothing (the bucket keeps the latest time it saw).  rate 0: `burst`
// answers ever; burst 0: none.
class RejectLimiter {
public:
    explicit RejectLimiter(uint32_t rate = 1000, uint32_t burst = 100) noexcept;

    // One answer may be sent at now_ns (monotonic nanoseconds): takes a token and returns true, or
    // returns false when the bucket is empty.
    bool take(uint64_t now_ns) noexcept;

    uint32_t rate() const noexcept { return rate_; }
    uint32_t burst() const noexcept { return burst_; }

private:
    void refill(uint64_t now_ns) noexcept;

    uint64_t tokens_ = 0;   // nano-tokens, at most capacity_
    uint64_t capacity_;     // burst * 10^9 < 2^63
    uint64_t last_ns_ = 0;  // the latest now seen
    uint32_t rate_, burst_;
    bool started_ = false;
};

}  // namespace tagwall::dataplane
