// The frames of `tagwall-bench generate` (bench_generate.hpp says what the generator is): the TCP
// segments it offers to a device under test, the marker that tells its own frames from anything else
// the device may send back, and the answers its client and server sides give, in place, in the
// new-connections mix.
//
// Layout of every frame: Ethernet [802.1Q when the VLAN is not 0] / IPv4 (20 bytes, DF) / TCP (20
// bytes, window 65535) / zero payload, at least 60 bytes (a 64-byte frame once the FCS is added), with
// correct IPv4 and TCP checksums (Open vSwitch's userspace conntrack checks them).  The IPv4 id of
// every frame is the marker: kMarker in its high byte, and in its low byte the wire pair the frame
// was sent on (7 bits) and the side that sent it (1 bit), so that a frame counts as forwarded only
// when it comes back on the pair it was sent on, out of the other side of the device.  The DSCP bits
// of the IPv4 TOS byte carry the trial (mod 64) the frame was sent in, so that a frame a stalled device
// forwards late is not counted in the next trial.
//
// Sides.  The client side of pair k lives behind the device's uplink port (it sends the first
// segment of each connection, from an address the policy's allow rules admit), the server side behind
// its workload port (a policy endpoint, sending from its bound address and MAC).
//
// Run side: pure byte work, no DPDK, no allocation, noexcept (the generator's lcores call it per
// frame; the unit tests feed its output to a Pipeline).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "dataplane/packet.hpp"

namespace tagwall::tools::gen {

using dataplane::Mac;

inline constexpr uint8_t kMarker = 0xA5;
inline constexpr unsigned kMaxPairs = 128;
inline constexpr uint16_t kMinFrame = 60;    // 64 bytes on the wire with the FCS
inline constexpr uint16_t kMaxFrame = 1514;  // 1518 with the FCS

enum class Side : uint8_t { client = 0, server = 1 };

inline constexpr Side other(Side s) noexcept { return s == Side::client ? Side::server : Side::client; }

// One TCP segment as the generator sends it.  Addresses in host order.
struct TcpSegment {
    Mac src_mac{}, dst_mac{};
    uint16_t vlan = 0;
    uint32_t src_ip = 0, dst_ip = 0;
    uint16_t sport = 0, dport = 0;
    uint32_t seq = 0, ack = 0;
    uint8_t flags = 0;
    uint16_t payload = 0;  // zero bytes after the TCP header
    uint8_t pair = 0;      // < kMaxPairs
    Side side = Side::client;
    uint8_t trial = 0;     // mod 64, in the DSCP bits
};

// The length of the frame write_segment() writes for this VLAN and payload.
constexpr size_t frame_length(uint16_t vlan, uint16_t payload) noexcept {
    const size_t n = 14u + (vlan != 0 ? 4u : 0u) + 40u + payload;
    return n < kMinFrame ? kMinFrame : n;
}

// The payload that makes a frame of `length` bytes (without FCS) for this VLAN: 0 when even an empty
// segment is longer.
constexpr uint16_t payload_for_length(uint16_t vlan, uint16_t length) noexcept {
    const size_t headers = 14u + (vlan != 0 ? 4u : 0u) + 40u;
    return length > headers ? static_cast<uint16_t>(length - headers) : 0;
}

// Writes the frame into `out` (zeroing payload and padding); returns its length, or 0 when `out` is
// too small.
size_t write_segment(std::span<uint8_t> out, const TcpSegment& s) noexcept;

// What the generator's receive side reads from a frame: whether it is one of its own (IPv4/TCP with
// the marker), which pair and side sent it, and its TCP flags.
struct Marker {
    bool ours = false;
    uint8_t pair = 0;
    Side side = Side::client;
    uint8_t tcp_flags = 0;
    uint8_t trial = 0;
};
Marker read_marker(std::span<const uint8_t> frame) noexcept;

// A connection's key: the same for every segment of it, whichever side sent it.
constexpr uint64_t connection_key(uint32_t client_ip, uint32_t server_ip, uint16_t client_port,
                                  uint16_t server_port) noexcept {
    uint64_t x = (uint64_t{client_ip} << 32 | server_ip) * 0x9e3779b97f4a7c15ull;
    x ^= (uint64_t{client_port} << 16 | server_port) + 0x632be59bd9b4e019ull + (x << 6) + (x >> 2);
    x ^= x >> 31;
    return x * 0xbf58476d1ce4e5b9ull;
}
// The key of the connection a frame of ours belongs to (0 when it is not one of ours).
uint64_t connection_key_of(std::span<const uint8_t> frame) noexcept;

// Sets the trial of a frame write_segment() wrote (DSCP and the IPv4 header checksum); false when it
// is not such a frame.
bool set_trial(std::span<uint8_t> frame, uint8_t trial) noexcept;

// The new-connections mix: each connection is SYN (client), SYN-ACK (server), ACK (client), RST
// (server), every segment sent only once the one before it came through the device.  answer_in_place
// turns a received frame of ours into the next segment of its connection, sent by `receiver` (the
// side whose port it arrived on), rewriting it in place: addresses, MACs and ports swapped, sequence
// numbers and flags set, checksums recomputed, the marker's side flipped.  The server's initial
// sequence number is a hash of the client's, so that no state is kept.
enum class Answer : uint8_t {
    none,     // not a segment of this exchange (or arrived on the wrong side): nothing to send
    syn_ack,  // the server answers a SYN
    ack,      // the client completes the handshake
    rst,      // the server closes the connection
    done,     // the client received the RST: the connection went through, nothing to send
};
Answer answer_in_place(std::span<uint8_t> frame, Side receiver) noexcept;

// The server's initial sequence number for a client's.
constexpr uint32_t server_isn(uint32_t client_isn) noexcept {
    return (client_isn ^ 0x5bd1e995u) * 0x9e3779b1u + 0x7f4a7c15u;
}

}  // namespace tagwall::tools::gen
