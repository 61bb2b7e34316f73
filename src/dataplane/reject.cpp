// Run side: the answers a `reject` verdict sends back, and their rate limiter (reject.hpp).
//
// build_reject() first decides whether an answer may be sent (answerable), then computes its length,
// checks it against `out`, and writes it front to back: Ethernet, IP header, then the RST or the ICMP
// message.  Checksums are computed last, over what was written.  Multi-byte fields are written byte by
// byte in network order; nothing here depends on the host's byte order or on alignment.
#include "dataplane/reject.hpp"

#include "dataplane/checksum.hpp"

#include <algorithm>
#include <array>
#include <cstring>

#include "dataplane/parser.hpp"

namespace tagwall::dataplane {
namespace {

constexpr size_t kEthHeader = 14, kVlanTag = 4, kEthMinFrame = 60, kIpv4Header = 20, kIpv6Header = 40,
                 kTcpHeader = 20, kIcmpHeader = 8;
constexpr size_t kIpv4MaxAnswer = 576;   // RFC 1812 §4.3.2.3
constexpr size_t kIpv6MaxAnswer = 1280;  // RFC 4443 §2.4(c): the IPv6 minimum MTU
constexpr uint8_t kAnswerTtl = 64;
constexpr uint8_t kIcmpUnreachable = 3, kIcmpPortUnreachable = 3;
constexpr uint8_t kIcmpv6Unreachable = 1, kIcmpv6PortUnreachable = 4;
constexpr uint8_t kIcmpv6FirstInformational = 128;  // RFC 4443 §2.1: types below are errors

static_assert(kRejectMaxFrame == kEthHeader + kVlanTag + kIpv6MaxAnswer);

bool answerable(std::span<const uint8_t> frame, const ParsedPacket& p) noexcept;
void write_ethernet(std::span<const uint8_t> frame, const ParsedPacket& p, uint8_t* o) noexcept;
void write_ipv4(const ParsedPacket& p, uint8_t proto, size_t l4_length, uint8_t* ip) noexcept;
void write_ipv6(const ParsedPacket& p, uint8_t proto, size_t l4_length, uint8_t* ip) noexcept;
void write_rst(const ParsedPacket& p, uint8_t* tcp) noexcept;
void write_unreachable(const ParsedPacket& p, uint8_t* icmp) noexcept;
uint32_t pseudo_header_sum(const ParsedPacket& p, uint8_t proto, size_t l4_length) noexcept;
void store16(uint8_t* o, uint16_t v) noexcept;
void store32(uint8_t* o, uint32_t v) noexcept;

}  // namespace

size_t build_reject(std::span<const uint8_t> frame, const ParsedPacket& p, std::span<uint8_t> out) noexcept {
    if (!answerable(frame, p)) return 0;
    const bool v4 = p.kind == PacketKind::ipv4;
    const bool tcp = p.proto == kIpProtoTcp;
    const size_t ip_header = v4 ? kIpv4Header : kIpv6Header;
    const size_t max_quote = (v4 ? kIpv4MaxAnswer : kIpv6MaxAnswer) - ip_header - kIcmpHeader;
    const size_t quote = tcp ? 0 : std::min<size_t>(p.l3_length, max_quote);
    const size_t l4_length = tcp ? kTcpHeader : kIcmpHeader + quote;
    const size_t length = p.l3_offset + ip_header + l4_length;
    const size_t padded = std::max(length, kEthMinFrame);
    if (out.size() < padded) return 0;

    uint8_t* o = out.data();
    uint8_t* ip = o + p.l3_offset;
    uint8_t* l4 = ip + ip_header;
    const uint8_t proto = tcp ? kIpProtoTcp : v4 ? kIpProtoIcmp : kIpProtoIcmpv6;
    write_ethernet(frame, p, o);
    if (v4) write_ipv4(p, proto, l4_length, ip);
    else write_ipv6(p, proto, l4_length, ip);
    if (tcp) {
        write_rst(p, l4);
    } else {
        write_unreachable(p, l4);
        std::memcpy(l4 + kIcmpHeader, frame.data() + p.l3_offset, quote);
    }
    // ICMP (v4) has no pseudo header; TCP and ICMPv6 do (RFC 9293 §3.1, RFC 4443 §2.3).
    const uint32_t pseudo = proto == kIpProtoIcmp ? 0 : pseudo_header_sum(p, proto, l4_length);
    store16(l4 + (tcp ? 16 : 2), internet_checksum(l4, l4_length, pseudo));
    std::memset(o + length, 0, padded - length);
    return padded;
}

size_t build_forward_rst(std::span<const uint8_t> frame, const ParsedPacket& p, std::span<uint8_t> out) noexcept {
    if ((p.kind != PacketKind::ipv4 && p.kind != PacketKind::ipv6) || p.proto != kIpProtoTcp || !p.l4_present ||
        (p.tcp_flags & kTcpRst) != 0)
        return 0;
    // build_reject() answers the packet's sender; the mirrored packet's sender is this packet's
    // destination.  With only ACK set, the RST's sequence number is the mirrored packet's ack.
    ParsedPacket q = p;
    q.src_mac = p.dst_mac;
    q.dst_mac = p.src_mac;
    q.src = p.dst;
    q.dst = p.src;
    q.sport = p.dport;
    q.dport = p.sport;
    q.tcp_flags = kTcpAck;
    q.tcp_ack = p.tcp_seq;
    return build_reject(frame, q, out);
}

RejectLimiter::RejectLimiter(uint32_t rate, uint32_t burst) noexcept
    : capacity_(uint64_t{burst} * 1'000'000'000u), rate_(rate), burst_(burst) {}

bool RejectLimiter::take(uint64_t now_ns) noexcept {
    constexpr uint64_t kToken = 1'000'000'000u;  // nano-tokens per answer
    refill(now_ns);
    if (tokens_ < kToken) return false;
    tokens_ -= kToken;
    return true;
}

void RejectLimiter::refill(uint64_t now_ns) noexcept {
    if (!started_) {
        started_ = true;
        last_ns_ = now_ns;
        tokens_ = capacity_;
        return;
    }
    if (now_ns <= last_ns_) return;  // backwards (or no) time: nothing minted, the latest time is kept
    const uint64_t elapsed = now_ns - last_ns_;
    last_ns_ = now_ns;
    const uint64_t room = capacity_ - tokens_;
    // elapsed * rate_ may overflow; compare with the time that fills the bucket first.
    if (rate_ == 0) return;
    if (elapsed >= room / rate_ + 1) tokens_ = capacity_;
    else tokens_ += elapsed * rate_;  // elapsed <= room / rate_: the product is at most room
}

namespace {

constexpr std::array<uint8_t, 16> kIpv6Unspecified{},
                                  kIpv6Loopback{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

bool is_ipv4_multicast_or_reserved(const uint8_t* a) noexcept { return a[0] >= 224; }  // 224/4, 240/4

bool source_is_one_host(const ParsedPacket& p) noexcept {
    const uint8_t* s = p.src.bytes.data();
    if (p.kind == PacketKind::ipv4) return s[0] != 0 && s[0] != 127 && !is_ipv4_multicast_or_reserved(s);
    return p.src.bytes != kIpv6Unspecified && p.src.bytes != kIpv6Loopback && s[0] != 0xFF;
}

bool destination_answerable(const ParsedPacket& p) noexcept {
    const uint8_t* d = p.dst.bytes.data();
    if (p.kind == PacketKind::ipv4) {
        const bool limited_broadcast = d[0] == 255 && d[1] == 255 && d[2] == 255 && d[3] == 255;
        const bool multicast = d[0] >= 224 && d[0] < 240;
        const bool unspecified = d[0] == 0 && d[1] == 0 && d[2] == 0 && d[3] == 0;
        return !limited_broadcast && !multicast && !unspecified && d[0] != 127;
    }
    return p.dst.bytes != kIpv6Unspecified && p.dst.bytes != kIpv6Loopback && d[0] != 0xFF;
}

// The ParsedPacket describes this frame: L3 right after the Ethernet header (and tag), the IP packet and
// the L4 span inside the frame.  Everything build_reject() reads from `frame` lies inside what this vouches.
bool fits_frame(std::span<const uint8_t> frame, const ParsedPacket& p) noexcept {
    const size_t l3 = p.l3_offset, l3_end = l3 + p.l3_length;
    const size_t ip_header = p.kind == PacketKind::ipv4 ? kIpv4Header : kIpv6Header;
    if (l3 != kEthHeader + (p.tagged ? kVlanTag : 0)) return false;
    if (p.l3_length < ip_header || l3_end > frame.size()) return false;
    if (!p.l4_present) return true;
    return p.l4_offset >= l3 + ip_header && size_t{p.l4_offset} + p.l4_length <= l3_end;
}

// Whether this protocol's message may be answered (RFC 9293 §3.10.7.1: never an RST; RFC 1122 §3.2.2,
// RFC 4443 §2.4(e): never an ICMP error; nor neighbour discovery).  The TCP and ICMP fields are read only
// when the L4 header was there: without it an RST or an error cannot be told apart, so nothing is sent.
bool protocol_answerable(const ParsedPacket& p) noexcept {
    const bool v4 = p.kind == PacketKind::ipv4;
    if (p.proto == kIpProtoTcp) return p.l4_present && !(p.tcp_flags & kTcpRst);
    if (v4 && p.proto == kIpProtoIcmp) return p.l4_present && !p.icmp_error;
    if (!v4 && p.proto == kIpProtoIcmpv6)
        return p.l4_present && !p.icmp_error && !p.nd && p.icmp_type >= kIcmpv6FirstInformational;
    return true;
}

bool answerable(std::span<const uint8_t> frame, const ParsedPacket& p) noexcept {
    if (p.kind != PacketKind::ipv4 && p.kind != PacketKind::ipv6) return false;
    if (p.dst_mac[0] & 0x01) return false;  // group bit: broadcast or multicast
    if (!fits_frame(frame, p)) return false;
    if (p.fragment && !p.first_fragment) return false;
    return source_is_one_host(p) && destination_answerable(p) && protocol_answerable(p);
}

void write_ethernet(std::span<const uint8_t> frame, const ParsedPacket& p, uint8_t* o) noexcept {
    std::memcpy(o, p.src_mac.data(), 6);
    std::memcpy(o + 6, p.dst_mac.data(), 6);
    size_t at = 12;
    if (p.tagged) {
        std::memcpy(o + 12, frame.data() + 12, 2);  // the TPID as received (802.1Q, or an 802.1ad S-tag)
        store16(o + 14, static_cast<uint16_t>(p.vlan & 0x0FFF));  // PCP 0, DEI 0
        at += kVlanTag;
    }
    store16(o + at, p.kind == PacketKind::ipv4 ? kEtherTypeIpv4 : kEtherTypeIpv6);
}

void write_ipv4(const ParsedPacket& p, uint8_t proto, size_t l4_length, uint8_t* ip) noexcept {
    ip[0] = 0x45;  // version 4, IHL 5
    ip[1] = 0;     // TOS
    store16(ip + 2, static_cast<uint16_t>(kIpv4Header + l4_length));
    store16(ip + 4, 0);       // id: DF is set, so RFC 6864 §4.1 lets it be anything
    store16(ip + 6, 0x4000);  // DF, offset 0
    ip[8] = kAnswerTtl;
    ip[9] = proto;
    store16(ip + 10, 0);
    std::memcpy(ip + 12, p.dst.bytes.data(), 4);
    std::memcpy(ip + 16, p.src.bytes.data(), 4);
    store16(ip + 10, internet_checksum(ip, kIpv4Header));
}

void write_ipv6(const ParsedPacket& p, uint8_t proto, size_t l4_length, uint8_t* ip) noexcept {
    store32(ip, 0x60000000u);  // version 6, traffic class 0, flow label 0
    store16(ip + 4, static_cast<uint16_t>(l4_length));
    ip[6] = proto;
    ip[7] = kAnswerTtl;
    std::memcpy(ip + 8, p.dst.bytes.data(), 16);
    std::memcpy(ip + 24, p.src.bytes.data(), 16);
}

void write_rst(const ParsedPacket& p, uint8_t* tcp) noexcept {
    store16(tcp, p.dport);
    store16(tcp + 2, p.sport);
    if (p.tcp_flags & kTcpAck) {
        store32(tcp + 4, p.tcp_ack);
        store32(tcp + 8, 0);
        tcp[13] = kTcpRst;
    } else {
        const uint32_t length = uint32_t{p.payload_length} + ((p.tcp_flags & kTcpSyn) ? 1 : 0) +
                                ((p.tcp_flags & kTcpFin) ? 1 : 0);
        store32(tcp + 4, 0);
        store32(tcp + 8, p.tcp_seq + length);  // modulo 2^32, as sequence numbers are
        tcp[13] = kTcpRst | kTcpAck;
    }
    tcp[12] = static_cast<uint8_t>(kTcpHeader / 4 << 4);  // data offset 5, no options
    store16(tcp + 14, 0);             // window
    store16(tcp + 16, 0);             // checksum, filled by the caller
    store16(tcp + 18, 0);             // urgent pointer
}

void write_unreachable(const ParsedPacket& p, uint8_t* icmp) noexcept {
    const bool v4 = p.kind == PacketKind::ipv4;
    icmp[0] = v4 ? kIcmpUnreachable : kIcmpv6Unreachable;
    icmp[1] = v4 ? kIcmpPortUnreachable : kIcmpv6PortUnreachable;
    store16(icmp + 2, 0);  // checksum, filled by the caller
    store32(icmp + 4, 0);  // unused (RFC 4884 length 0: no extension)
}

// The pseudo header of the answer (its source is p.dst, its destination p.src; the sum is the same).
uint32_t pseudo_header_sum(const ParsedPacket& p, uint8_t proto, size_t l4_length) noexcept {
    const size_t address_length = p.kind == PacketKind::ipv4 ? 4 : 16;
    uint32_t sum = 0;
    for (size_t i = 0; i < address_length; i += 2) {
        sum += uint32_t{p.src.bytes[i]} << 8 | p.src.bytes[i + 1];
        sum += uint32_t{p.dst.bytes[i]} << 8 | p.dst.bytes[i + 1];
    }
    // IPv4: zero, protocol, TCP length (16 bits); IPv6: length (32 bits), zeros, next header.  Both add
    // up to proto + length, the length being below 2^16 here.
    return sum + proto + static_cast<uint32_t>(l4_length);
}

void store16(uint8_t* o, uint16_t v) noexcept {
    o[0] = static_cast<uint8_t>(v >> 8);
    o[1] = static_cast<uint8_t>(v);
}

void store32(uint8_t* o, uint32_t v) noexcept {
    store16(o, static_cast<uint16_t>(v >> 16));
    store16(o + 2, static_cast<uint16_t>(v));
}

}  // namespace
}  // namespace tagwall::dataplane
