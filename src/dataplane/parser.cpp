// Run side: the packet parser (parser.hpp).
//
// Every function here is noexcept, allocation-free and bounded.  Offsets are absolute (from the start of
// the frame) and kept in size_t; each function is handed an `end` that its caller has already checked
// against the frame, and reads nothing at or past it.  A length field is only ever compared with such an
// end, never used to extend one.
#include "dataplane/parser.hpp"

#include <algorithm>
#include <bit>
#include <cstring>

namespace tagwall::dataplane {
namespace {

using rules::Family;
using rules::IpAddr;

constexpr size_t kMaxFrame = 0xFFFF;  // ParsedPacket offsets are 16-bit
constexpr size_t kEthHeader = 14, kVlanTag = 4, kArpPacket = 28, kIpv4MinHeader = 20, kIpv6Header = 40,
                 kIpv6FragmentHeader = 8, kTcpMinHeader = 20, kUdpHeader = 8, kIcmpHeader = 8, kSctpHeader = 12,
                 kQuotedL4Bytes = 8;
constexpr uint8_t kMaxWindowScale = 14;  // RFC 7323 §2.3

// Copied over `out` first: a plain copy from read-only data, where `out = ParsedPacket{}` would build a
// temporary on the stack with narrow stores and read it back wide (store-forwarding stalls, ~3x slower).
constexpr ParsedPacket kNothingParsed{};

// Where an L4 header lies, and whose fault a cut header is.
struct L4Span {
    size_t begin = 0, end = 0;    // [begin, end) inside the frame: the IP payload after all headers
    Family family = Family::v4;
    bool first_fragment = false;  // a header cut here is the fragment's fault, not the packet's
};

uint16_t load16(const uint8_t* p) noexcept;
uint32_t load32(const uint8_t* p) noexcept;
void set_ipv4(IpAddr& a, const uint8_t* p) noexcept;
void set_ipv4_words(IpAddr& a, const uint8_t* p) noexcept;
uint8_t find_window_scale(const uint8_t* p, size_t len) noexcept;
bool parse_common(const uint8_t* f, size_t size, ParsedPacket& out) noexcept;
std::optional<Reason> parse_general(std::span<const uint8_t> frame, ParsedPacket& out) noexcept;
std::optional<Reason> parse_arp(const uint8_t* f, size_t l3, size_t size, ParsedPacket& out) noexcept;
std::optional<Reason> parse_ipv4(const uint8_t* f, size_t l3, size_t size, ParsedPacket& out) noexcept;
std::optional<Reason> parse_ipv6(const uint8_t* f, size_t l3, size_t size, ParsedPacket& out) noexcept;

}  // namespace

std::optional<Reason> parse_frame(std::span<const uint8_t> frame, ParsedPacket& out) noexcept {
    out = kNothingParsed;
    if (parse_common(frame.data(), std::min(frame.size(), kMaxFrame), out)) [[likely]]
        return std::nullopt;
    return parse_general(frame, out);
}

bool parse_ack_segment(std::span<const uint8_t> frame, AckSegment& out) noexcept {
    const uint8_t* f = frame.data();
    const size_t size = std::min(frame.size(), kMaxFrame);
    if (size < kEthHeader + kIpv4MinHeader + kTcpMinHeader) return false;
    const uint16_t outer = load16(f + 12);
    const bool tagged = outer == kEtherTypeVlan || outer == kEtherTypeQinq;  // as parse_common(): either kind
    const size_t l3 = tagged ? kEthHeader + kVlanTag : kEthHeader;
    if (size < l3 + kIpv4MinHeader + kTcpMinHeader) return false;
    // 40 bytes readable from l3, whatever the lengths say.  The TCP flags are looked at first: a SYN, the
    // other common frame, leaves here for parse_frame() after a few instructions.
    const uint8_t* ip = f + l3;
    const uint8_t* p = ip + kIpv4MinHeader;
    const uint8_t flags = p[13];
    if ((flags & (kTcpSyn | kTcpAck | kTcpRst | kTcpFin)) != kTcpAck) return false;
    if ((tagged ? load16(f + 16) : outer) != kEtherTypeIpv4 || ip[0] != 0x45 || ip[9] != kIpProtoTcp ||
        (load16(ip + 6) & 0x3FFF) != 0)
        return false;
    const size_t total = load16(ip + 2);
    if (total > size - l3 || total < kIpv4MinHeader + kTcpMinHeader) return false;
    const size_t len = total - kIpv4MinHeader;  // the whole TCP header is inside `total`
    const size_t header = (size_t{p[12]} >> 4) * 4;
    if (header < kTcpMinHeader || header > len) return false;
    set_ipv4_words(out.src, ip + 12);
    set_ipv4_words(out.dst, ip + 16);
    std::memcpy(out.dst_mac.data(), f, 6);
    std::memcpy(out.src_mac.data(), f + 6, 6);
    out.vlan = tagged ? load16(f + 14) & 0x0FFF : 0;
    out.l3_length = static_cast<uint16_t>(total);
    out.sport = load16(p);
    out.dport = load16(p + 2);
    out.tcp_seq = load32(p + 4);
    out.tcp_ack = load32(p + 8);
    out.tcp_window = load16(p + 14);
    out.payload_length = static_cast<uint16_t>(len - header);
    out.tcp_flags = flags;
    return true;
}

std::optional<Reason> detail::parse_frame_general(std::span<const uint8_t> frame, ParsedPacket& out) noexcept {
    out = kNothingParsed;
    return parse_general(frame, out);
}

namespace {

std::optional<Reason> parse_general(std::span<const uint8_t> frame, ParsedPacket& out) noexcept {
    const uint8_t* f = frame.data();
    const size_t size = std::min(frame.size(), kMaxFrame);
    if (size < kEthHeader) return Reason::truncated_ethernet;

    std::memcpy(out.dst_mac.data(), f, 6);
    std::memcpy(out.src_mac.data(), f + 6, 6);
    uint16_t type = load16(f + 12);
    size_t l3 = kEthHeader;
    if (type == kEtherTypeVlan || type == kEtherTypeQinq) {  // 802.1ad S-tag alone counts as a VLAN tag
        if (size < kEthHeader + kVlanTag) return Reason::truncated_vlan;
        out.tagged = true;
        out.vlan = load16(f + 14) & 0x0FFF;
        type = load16(f + 16);
        l3 += kVlanTag;
        if (type == kEtherTypeVlan || type == kEtherTypeQinq) {
            out.ethertype = type;
            return Reason::qinq;
        }
    }
    out.ethertype = type;

    switch (type) {
    case kEtherTypeIpv4: return parse_ipv4(f, l3, size, out);
    case kEtherTypeIpv6: return parse_ipv6(f, l3, size, out);
    case kEtherTypeArp: return parse_arp(f, l3, size, out);
    default: return Reason::unsupported_ethertype;
    }
}

// The commonest frame, read straight through: Ethernet with at most one 802.1Q tag, IPv4 without
// options and not fragmented, a complete TCP header or a UDP datagram whose length fits.  It sets
// exactly the fields the general path sets for such a frame (`out` is reset already), and returns
// false, having written nothing that matters, for anything else: the general path then reads the
// frame from the start.  Unit tests and fuzz-packet compare the two (detail::parse_frame_general).
[[gnu::always_inline]] inline bool parse_common(const uint8_t* f, size_t size, ParsedPacket& out) noexcept {
    if (size < kEthHeader + kIpv4MinHeader + kUdpHeader) return false;
    uint16_t type = load16(f + 12);
    size_t l3 = kEthHeader;
    bool tagged = false;
    if (type == kEtherTypeVlan || type == kEtherTypeQinq) {
        if (size < kEthHeader + kVlanTag + kIpv4MinHeader + kUdpHeader) return false;
        tagged = true;
        type = load16(f + 16);
        l3 += kVlanTag;
    }
    const uint8_t* ip = f + l3;
    if (type != kEtherTypeIpv4 || ip[0] != 0x45 || (load16(ip + 6) & 0x3FFF) != 0) return false;
    const size_t total = load16(ip + 2);
    if (total > size - l3) return false;
    const uint8_t proto = ip[9];
    if (total < kIpv4MinHeader + kUdpHeader) return false;
    const uint8_t* p = ip + kIpv4MinHeader;
    const size_t len = total - kIpv4MinHeader;
    size_t header = 0, payload = 0;  // TCP: its header with options; both: the L4 payload
    if (proto == kIpProtoTcp) {
        if (len < kTcpMinHeader) return false;
        header = (size_t{p[12]} >> 4) * 4;
        if (header < kTcpMinHeader || header > len) return false;
        payload = len - header;
    } else if (proto == kIpProtoUdp) {
        const size_t length = load16(p + 4);
        if (length < kUdpHeader || length > len) return false;
        payload = length - kUdpHeader;
    } else {
        return false;
    }
    std::memcpy(out.dst_mac.data(), f, 6);
    std::memcpy(out.src_mac.data(), f + 6, 6);
    if (tagged) {
        out.tagged = true;
        out.vlan = load16(f + 14) & 0x0FFF;
    }
    out.ethertype = kEtherTypeIpv4;
    out.kind = PacketKind::ipv4;
    out.l3_offset = static_cast<uint16_t>(l3);
    out.l3_length = static_cast<uint16_t>(total);
    out.ttl = ip[8];
    out.proto = proto;
    set_ipv4(out.src, ip + 12);
    set_ipv4(out.dst, ip + 16);
    out.l4_offset = static_cast<uint16_t>(l3 + kIpv4MinHeader);
    out.l4_length = static_cast<uint16_t>(len);
    out.sport = load16(p);
    out.dport = load16(p + 2);
    if (proto == kIpProtoTcp) {
        out.tcp_seq = load32(p + 4);
        out.tcp_ack = load32(p + 8);
        out.tcp_flags = p[13];
        out.tcp_window = load16(p + 14);
        out.tcp_wscale = header == kTcpMinHeader ? kNoWindowScale
                                                 : find_window_scale(p + kTcpMinHeader, header - kTcpMinHeader);
    }
    out.payload_length = static_cast<uint16_t>(payload);
    out.l4_present = true;
    return true;
}

// --- field access: unaligned loads in network byte order ---

uint16_t load16(const uint8_t* p) noexcept {
    uint16_t v;
    std::memcpy(&v, p, sizeof v);
    if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap16(v);
    return v;
}

uint32_t load32(const uint8_t* p) noexcept {
    uint32_t v;
    std::memcpy(&v, p, sizeof v);
    if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap32(v);
    return v;
}

// Addresses are written in place (building an IpAddr on the stack and copying it costs a store-forwarding
// stall per address); `a` is still as parse_frame() reset it: zero bytes, family v4.
//
// The address goes in as the whole first 8-byte word (bytes 4..7 zero, as they already are): the key and
// the identity hash read the address back as 8-byte words, and a 4-byte store inside the reset's wider
// one could not be forwarded to such a load (it would wait for both stores to reach the cache).
void set_ipv4(IpAddr& a, const uint8_t* p) noexcept {
    uint32_t v4;
    std::memcpy(&v4, p, sizeof v4);
    const uint64_t first = std::endian::native == std::endian::little ? uint64_t{v4} : uint64_t{v4} << 32;
    std::memcpy(a.bytes.data(), &first, sizeof first);
}

// The whole IpAddr of the IPv4 address at p (the bytes past it zero, as parse_frame() leaves them) in
// two 8-byte stores, which 8-byte loads of the address words read back from the store buffer (a 4-byte
// store under a 16-byte one could not be forwarded to them).
void set_ipv4_words(IpAddr& a, const uint8_t* p) noexcept {
    set_ipv4(a, p);
    const uint64_t second = 0;
    std::memcpy(a.bytes.data() + 8, &second, sizeof second);
    a.family = Family::v4;
}

void set_ipv6(IpAddr& a, const uint8_t* p) noexcept {
    a.family = Family::v6;
    std::memcpy(a.bytes.data(), p, 16);
}

bool is_ipv6_extension(uint8_t next) noexcept {
    switch (next) {
    case kIpProtoHopByHop:
    case kIpProtoRouting:
    case kIpProtoFragment:
    case kIpProtoAh:
    case kIpProtoDstOpts:
    case kIpProtoMobility: return true;
    default: return false;
    }
}

// Length of the extension header at p; p[0..1] must be readable.
size_t ipv6_extension_length(uint8_t type, const uint8_t* p) noexcept {
    if (type == kIpProtoFragment) return kIpv6FragmentHeader;
    if (type == kIpProtoAh) return (size_t{p[1]} + 2) * 4;  // RFC 4302: 4-byte units, minus 2
    return (size_t{p[1]} + 1) * 8;                           // RFC 8200: 8-byte units, not counting the first
}

std::optional<Reason> parse_l4(const uint8_t* f, const L4Span& s, ParsedPacket& out) noexcept;

// --- L3 ---

std::optional<Reason> parse_arp(const uint8_t* f, size_t l3, size_t size, ParsedPacket& out) noexcept {
    out.kind = PacketKind::arp;
    if (size - l3 < kArpPacket) return Reason::truncated_arp;
    const uint8_t* p = f + l3;
    // Ethernet hardware, IPv4 protocol, 6- and 4-byte addresses: the only ARP there is to police.
    if (load16(p) != 1 || load16(p + 2) != kEtherTypeIpv4 || p[4] != 6 || p[5] != 4) return Reason::truncated_arp;
    out.arp_op = load16(p + 6);
    std::memcpy(out.arp_sender_mac.data(), p + 8, 6);
    set_ipv4(out.arp_sender_ip, p + 14);
    set_ipv4(out.arp_target_ip, p + 24);
    return std::nullopt;
}

// A later fragment: no L4 header, only data, which l4_offset/l4_length delimit.
std::optional<Reason> later_fragment(size_t begin, size_t end, ParsedPacket& out) noexcept {
    out.l4_offset = static_cast<uint16_t>(begin);
    out.l4_length = static_cast<uint16_t>(end - begin);
    out.payload_length = out.l4_length;
    return std::nullopt;
}

std::optional<Reason> parse_ipv4(const uint8_t* f, size_t l3, size_t size, ParsedPacket& out) noexcept {
    out.kind = PacketKind::ipv4;
    const size_t available = size - l3;
    if (available < kIpv4MinHeader) return Reason::truncated_ipv4;
    const uint8_t* ip = f + l3;
    if (ip[0] >> 4 != 4) return Reason::bad_ipv4_version;
    const size_t header = size_t{ip[0] & 0x0Fu} * 4;
    if (header < kIpv4MinHeader || header > available) return Reason::bad_ipv4_ihl;
    const size_t total = load16(ip + 2);
    if (total < header || total > available) return Reason::bad_ipv4_length;  // padding may follow `total`

    out.l3_offset = static_cast<uint16_t>(l3);
    out.l3_length = static_cast<uint16_t>(total);
    out.ttl = ip[8];
    out.proto = ip[9];
    set_ipv4(out.src, ip + 12);
    set_ipv4(out.dst, ip + 16);
    if (out.proto == kIpProtoHopByHop) return Reason::bad_ip_proto;  // hop-by-hop exists only in IPv6

    L4Span l4{l3 + header, l3 + total, Family::v4, false};
    const uint16_t frag = load16(ip + 6);
    const bool more = (frag & 0x2000) != 0;
    const uint16_t offset = static_cast<uint16_t>((frag & 0x1FFF) * 8);
    if (more || offset != 0) {
        out.fragment = true;
        out.first_fragment = offset == 0;
        out.more_fragments = more;
        out.fragment_offset = offset;
        out.fragment_data = static_cast<uint16_t>(l4.begin);
        out.fragment_id = load16(ip + 4);
        // RFC 1858: at offset 8 a fragment can rewrite the TCP flags of the first one.
        if (offset == 8 && out.proto == kIpProtoTcp) return Reason::fragment_overlap;
        if (offset != 0) return later_fragment(l4.begin, l4.end, out);
        l4.first_fragment = true;
    }
    return parse_l4(f, l4, out);
}

// Walks the extension-header chain in [pos, end) to the upper-layer header.  A header cut before the
// fragment header is the packet's fault (`truncated_ipv6_ext`); one cut after the fragment header of a
// first fragment is the fragmenter's (`ipv6_l4_not_in_first`, RFC 7112).
std::optional<Reason> walk_ipv6_chain(const uint8_t* f, size_t pos, size_t end, uint8_t next,
                                      ParsedPacket& out) noexcept {
    bool first_fragment = false, seen_fragment_header = false;
    for (unsigned count = 0; is_ipv6_extension(next); ++count) {
        if (next == kIpProtoHopByHop && count != 0) return Reason::bad_ip_proto;  // RFC 8200 §4.3
        if (count == kMaxIpv6ExtHeaders) return Reason::ipv6_ext_chain_too_long;
        const Reason cut = first_fragment ? Reason::ipv6_l4_not_in_first : Reason::truncated_ipv6_ext;
        if (end - pos < 2) return cut;
        const size_t length = ipv6_extension_length(next, f + pos);
        if (length > end - pos) return cut;
        const uint8_t type = next;
        next = f[pos];
        if (type != kIpProtoFragment) {
            pos += length;
            continue;
        }
        // Two fragment headers would give one packet two identities (offset, id): refuse to choose.
        if (seen_fragment_header) return Reason::ipv6_fragment_repeated;
        seen_fragment_header = true;
        const uint16_t field = load16(f + pos + 2);
        const uint16_t offset = field & 0xFFF8;  // 13 bits of 8-byte units, already in place
        const bool more = (field & 1) != 0;
        const uint32_t id = load32(f + pos + 4);
        pos += length;
        if (offset == 0 && !more) continue;  // an atomic fragment is a whole packet (RFC 6946)
        out.fragment = true;
        out.first_fragment = offset == 0;
        out.more_fragments = more;
        out.fragment_offset = offset;
        out.fragment_data = static_cast<uint16_t>(pos);
        out.fragment_id = id;
        if (offset != 0) {
            out.proto = next;  // the first header of the fragmentable part, not necessarily the L4 one
            return later_fragment(pos, end, out);
        }
        first_fragment = true;
    }
    out.proto = next;
    return parse_l4(f, L4Span{pos, end, Family::v6, first_fragment}, out);
}

std::optional<Reason> parse_ipv6(const uint8_t* f, size_t l3, size_t size, ParsedPacket& out) noexcept {
    out.kind = PacketKind::ipv6;
    const size_t available = size - l3;
    if (available < kIpv6Header) return Reason::truncated_ipv6;
    const uint8_t* ip = f + l3;
    if (ip[0] >> 4 != 6) return Reason::bad_ipv6_version;
    const size_t payload = load16(ip + 4);
    // A zero payload length announces a jumbogram (RFC 2675), which no Ethernet frame can carry.
    if (payload == 0 || payload > available - kIpv6Header) return Reason::bad_ipv6_length;

    out.l3_offset = static_cast<uint16_t>(l3);
    out.l3_length = static_cast<uint16_t>(kIpv6Header + payload);
    out.ttl = ip[7];
    set_ipv6(out.src, ip + 8);
    set_ipv6(out.dst, ip + 24);
    return walk_ipv6_chain(f, l3 + kIpv6Header, l3 + kIpv6Header + payload, ip[6], out);
}

// --- L4 ---

// The reason for an L4 header cut short: the packet's own reason, or the fragmenter's in a first fragment.
Reason cut(const L4Span& s, Reason whole_packet_reason) noexcept {
    if (!s.first_fragment) return whole_packet_reason;
    return s.family == Family::v4 ? Reason::fragment_tiny : Reason::ipv6_l4_not_in_first;
}

std::optional<Reason> parse_tcp(const uint8_t* p, size_t len, const L4Span& s, ParsedPacket& out) noexcept;
std::optional<Reason> parse_udp(const uint8_t* p, size_t len, const L4Span& s, ParsedPacket& out) noexcept;
std::optional<Reason> parse_sctp(const uint8_t* p, size_t len, const L4Span& s, ParsedPacket& out) noexcept;
std::optional<Reason> parse_icmp(const uint8_t* p, size_t len, const L4Span& s, ParsedPacket& out) noexcept;
std::optional<Reason> parse_icmpv6(const uint8_t* p, size_t len, const L4Span& s, ParsedPacket& out) noexcept;

std::optional<Reason> parse_l4(const uint8_t* f, const L4Span& s, ParsedPacket& out) noexcept {
    out.l4_offset = static_cast<uint16_t>(s.begin);
    out.l4_length = static_cast<uint16_t>(s.end - s.begin);
    const uint8_t* p = f + s.begin;
    const size_t len = s.end - s.begin;
    std::optional<Reason> fault;
    switch (out.proto) {
    case kIpProtoTcp: fault = parse_tcp(p, len, s, out); break;
    case kIpProtoUdp: fault = parse_udp(p, len, s, out); break;
    case kIpProtoSctp: fault = parse_sctp(p, len, s, out); break;
    case kIpProtoIcmp:
        if (s.family == Family::v4) fault = parse_icmp(p, len, s, out);
        else out.payload_length = out.l4_length;
        break;
    case kIpProtoIcmpv6:
        if (s.family == Family::v6) fault = parse_icmpv6(p, len, s, out);
        else out.payload_length = out.l4_length;
        break;
    default: out.payload_length = out.l4_length; break;  // ESP, no-next-header, ...: nothing to read
    }
    out.l4_present = !fault;
    return fault;
}

// The window-scale option in [p, p + len); a malformed list ends the search, it does not drop the segment.
uint8_t find_window_scale(const uint8_t* p, size_t len) noexcept {
    uint8_t scale = kNoWindowScale;
    size_t i = 0;
    while (i < len) {
        const uint8_t kind = p[i];
        if (kind == 0) break;  // end of option list
        if (kind == 1) {       // no-operation
            ++i;
            continue;
        }
        if (len - i < 2) break;
        const size_t option_length = p[i + 1];
        if (option_length < 2 || option_length > len - i) break;
        if (kind == 3 && option_length == 3) scale = std::min(p[i + 2], kMaxWindowScale);
        i += option_length;
    }
    return scale;
}

std::optional<Reason> parse_tcp(const uint8_t* p, size_t len, const L4Span& s, ParsedPacket& out) noexcept {
    if (len < kTcpMinHeader) return cut(s, Reason::truncated_tcp);
    const size_t header = (size_t{p[12]} >> 4) * 4;
    if (header < kTcpMinHeader) return Reason::bad_tcp_data_offset;
    if (header > len) return cut(s, Reason::bad_tcp_data_offset);
    out.sport = load16(p);
    out.dport = load16(p + 2);
    out.tcp_seq = load32(p + 4);
    out.tcp_ack = load32(p + 8);
    out.tcp_flags = p[13];
    out.tcp_window = load16(p + 14);
    out.tcp_wscale = find_window_scale(p + kTcpMinHeader, header - kTcpMinHeader);
    out.payload_length = static_cast<uint16_t>(len - header);
    return std::nullopt;
}

std::optional<Reason> parse_udp(const uint8_t* p, size_t len, const L4Span& s, ParsedPacket& out) noexcept {
    if (len < kUdpHeader) return cut(s, Reason::truncated_udp);
    out.sport = load16(p);
    out.dport = load16(p + 2);
    if (s.first_fragment) {  // the UDP length counts the whole datagram, not this fragment
        out.payload_length = static_cast<uint16_t>(len - kUdpHeader);
        return std::nullopt;
    }
    const size_t length = load16(p + 4);
    if (length < kUdpHeader || length > len) return Reason::bad_udp_length;
    out.payload_length = static_cast<uint16_t>(length - kUdpHeader);
    return std::nullopt;
}

std::optional<Reason> parse_sctp(const uint8_t* p, size_t len, const L4Span& s, ParsedPacket& out) noexcept {
    if (len < kSctpHeader) return cut(s, Reason::truncated_sctp);
    out.sport = load16(p);
    out.dport = load16(p + 2);
    out.payload_length = static_cast<uint16_t>(len - kSctpHeader);
    return std::nullopt;
}

// --- ICMP errors: the quoted packet, read as far as it goes; nothing here is a drop ---

void read_quoted_l4(const uint8_t* p, size_t len, Family family, ParsedPacket& out) noexcept {
    if (len < kQuotedL4Bytes) return;
    out.inner_l4_present = true;
    const uint8_t proto = out.inner_proto;
    if (proto == kIpProtoTcp || proto == kIpProtoUdp || proto == kIpProtoSctp) {
        out.inner_sport = load16(p);
        out.inner_dport = load16(p + 2);
        return;
    }
    out.inner_icmp_type = p[0];  // meaningful for ICMP / ICMPv6 only: which message was quoted
    const bool echo = family == Family::v4 ? proto == kIpProtoIcmp && (p[0] == 0 || p[0] == 8)
                                           : proto == kIpProtoIcmpv6 && (p[0] == 128 || p[0] == 129);
    if (echo) out.inner_sport = out.inner_dport = load16(p + 4);
}

void read_quoted_ipv4(const uint8_t* p, size_t len, ParsedPacket& out) noexcept {
    if (len < kIpv4MinHeader || p[0] >> 4 != 4) return;
    const size_t header = size_t{p[0] & 0x0Fu} * 4;
    if (header < kIpv4MinHeader || header > len) return;
    out.inner_l3_present = true;
    out.inner_proto = p[9];
    set_ipv4(out.inner_src, p + 12);
    set_ipv4(out.inner_dst, p + 16);
    if ((load16(p + 6) & 0x1FFF) != 0) return;  // a later fragment quotes data, not an L4 header
    read_quoted_l4(p + header, len - header, Family::v4, out);
}

void read_quoted_ipv6(const uint8_t* p, size_t len, ParsedPacket& out) noexcept {
    if (len < kIpv6Header || p[0] >> 4 != 6) return;
    out.inner_l3_present = true;
    set_ipv6(out.inner_src, p + 8);
    set_ipv6(out.inner_dst, p + 24);
    uint8_t next = p[6];
    size_t pos = kIpv6Header;
    for (unsigned count = 0; is_ipv6_extension(next); ++count) {
        // Every extension header is at least 8 bytes; a cut or overlong chain leaves inner_proto at the
        // last header reached, with no L4.
        if (count == kMaxIpv6ExtHeaders || len - pos < 8) break;
        const size_t length = ipv6_extension_length(next, p + pos);
        if (length > len - pos) break;
        if (next == kIpProtoFragment && (load16(p + pos + 2) & 0xFFF8) != 0) {
            out.inner_proto = p[pos];
            return;  // a later fragment
        }
        next = p[pos];
        pos += length;
    }
    out.inner_proto = next;
    if (!is_ipv6_extension(next)) read_quoted_l4(p + pos, len - pos, Family::v6, out);
}

std::optional<Reason> parse_icmp(const uint8_t* p, size_t len, const L4Span& s, ParsedPacket& out) noexcept {
    if (len < kIcmpHeader) return cut(s, Reason::truncated_icmp);
    out.icmp_type = p[0];
    out.icmp_code = p[1];
    out.payload_length = static_cast<uint16_t>(len - kIcmpHeader);
    switch (out.icmp_type) {
    case 0:  // echo reply
    case 8:  // echo request
        out.icmp_id = load16(p + 4);
        break;
    case 3:   // destination unreachable
    case 4:   // source quench
    case 5:   // redirect
    case 11:  // time exceeded
    case 12:  // parameter problem
        out.icmp_error = true;
        read_quoted_ipv4(p + kIcmpHeader, len - kIcmpHeader, out);
        break;
    default: break;
    }
    return std::nullopt;
}

std::optional<Reason> parse_neighbour_discovery(const uint8_t* p, size_t len, ParsedPacket& out) noexcept;

std::optional<Reason> parse_icmpv6(const uint8_t* p, size_t len, const L4Span& s, ParsedPacket& out) noexcept {
    if (len < kIcmpHeader) return cut(s, Reason::truncated_icmp);
    out.icmp_type = p[0];
    out.icmp_code = p[1];
    out.payload_length = static_cast<uint16_t>(len - kIcmpHeader);
    switch (out.icmp_type) {
    case 128:  // echo request
    case 129:  // echo reply
        out.icmp_id = load16(p + 4);
        return std::nullopt;
    case 1:  // destination unreachable
    case 2:  // packet too big
    case 3:  // time exceeded
    case 4:  // parameter problem
        out.icmp_error = true;
        read_quoted_ipv6(p + kIcmpHeader, len - kIcmpHeader, out);
        return std::nullopt;
    case 133:  // router solicitation
    case 134:  // router advertisement
    case 135:  // neighbour solicitation
    case 136:  // neighbour advertisement
    case 137:  // redirect
        return parse_neighbour_discovery(p, len, out);
    default: return std::nullopt;
    }
}

// RFC 4861.  The target address (NS, NA, redirect) and the first Ethernet link-layer address option
// that speaks for the message: the source's (type 1) in RS, RA and NS, the target's (type 2) in NA and
// redirect (whose only link-layer option is the target's).  An option of length 0 ends the walk.
std::optional<Reason> parse_neighbour_discovery(const uint8_t* p, size_t len, ParsedPacket& out) noexcept {
    constexpr uint8_t kSourceLinkLayer = 1, kTargetLinkLayer = 2;
    out.nd = true;
    size_t options = 0;
    uint8_t wanted = kSourceLinkLayer;
    switch (out.icmp_type) {
    case 133: options = 8; break;
    case 134: options = 16; break;
    case 135:
    case 136:
        if (len < 24) return Reason::truncated_icmp;
        set_ipv6(out.nd_target, p + 8);
        options = 24;
        if (out.icmp_type == 136) wanted = kTargetLinkLayer;
        break;
    default:  // 137, redirect: target, then destination
        if (len >= 24) set_ipv6(out.nd_target, p + 8);
        options = 40;
        wanted = kTargetLinkLayer;
        break;
    }
    for (size_t i = options; i < len && len - i >= 2;) {
        const size_t option_length = size_t{p[i + 1]} * 8;
        if (option_length == 0 || option_length > len - i) break;
        if (p[i] == wanted && option_length == 8 && !out.nd_has_ll) {
            out.nd_has_ll = true;
            std::memcpy(out.nd_ll.data(), p + i + 2, 6);
        }
        i += option_length;
    }
    return std::nullopt;
}

}  // namespace
}  // namespace tagwall::dataplane
