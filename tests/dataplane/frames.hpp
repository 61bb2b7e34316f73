// Test code: a small builder for the Ethernet frames that dataplane tests feed the parser, the worker
// pipeline and replay.
//
// Layers are appended outermost first, and each layer tells the one before it what it is: `.vlan()`,
// `.ipv4()`, `.ipv6()` and `.arp()` fill the pending ethertype, `.tcp()`, `.udp()`, `.icmp()`, an IPv6
// extension header... fill the pending protocol / next-header byte.  Lengths (IPv4 total length, IPv6
// payload length, UDP length) are computed in bytes() from what follows, up to the IP packet's end
// (`.pad()` adds Ethernet padding after it).  Every computed field can be overridden, since tests must
// lie about lengths.  Checksums are left zero: the parser does not read them.
//
//     auto syn = Frame().eth(mac("52:54:00:00:10:11"), mac("52:54:00:00:30:11")).vlan(10)
//                    .ipv4(ip("198.18.10.11"), ip("198.18.30.11"), {.ttl = 63})
//                    .tcp(40000, 5432, {.seq = 1, .flags = kTcpSyn, .options = {3, 3, 7}})
//                    .bytes();
//
// A Frame without `.eth()` is a bare IP packet: that is how an ICMP error's quoted packet is made.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/packet.hpp"
#include "rules/address.hpp"

namespace tagwall::test {

using Bytes = std::vector<uint8_t>;
using dataplane::Mac;
using rules::IpAddr;

// "52:54:00:00:10:11" (any MAC, broadcast included); throws on anything else.
inline Mac mac(std::string_view text) {
    Mac m{};
    if (text.size() != 17) throw std::invalid_argument("bad MAC: " + std::string(text));
    for (size_t i = 0; i < 6; ++i) {
        if (i > 0 && text[i * 3 - 1] != ':') throw std::invalid_argument("bad MAC: " + std::string(text));
        m[i] = static_cast<uint8_t>(std::stoul(std::string(text.substr(i * 3, 2)), nullptr, 16));
    }
    return m;
}

// "198.18.0.1" or "2001:db8::1"; throws on anything else.
inline IpAddr ip(std::string_view text) {
    const auto a = IpAddr::parse(text);
    if (!a) throw std::invalid_argument("bad address: " + std::string(text));
    return *a;
}

// Designated initializers must follow this order: {.proto = 17, .id = 5, .mf = true, .total_length = 99}.
struct Ipv4Opts {
    std::optional<uint8_t> proto;  // default: set by the next layer
    uint8_t ttl = 64;
    uint16_t id = 0;
    uint16_t frag_offset = 0;  // bytes (a multiple of 8)
    bool mf = false, df = false;
    Bytes options;                 // after the fixed header, zero-padded to 4 bytes
    // lies
    std::optional<uint8_t> version;        // default 4
    std::optional<uint8_t> ihl;            // 4-byte words; default from the options
    std::optional<uint16_t> total_length;  // default: to the end of the IP packet
};

struct Ipv6Opts {
    std::optional<uint8_t> next_header;  // default: set by the next layer
    uint8_t hop_limit = 64;
    // lies
    std::optional<uint8_t> version;          // default 6
    std::optional<uint16_t> payload_length;  // default: to the end of the IP packet
};

struct Ipv6FragOpts {
    uint16_t offset = 0;  // bytes (a multiple of 8)
    bool more = false;
    uint32_t id = 0;
};

struct TcpOpts {
    uint32_t seq = 0, ack = 0;
    uint8_t flags = 0;
    uint16_t window = 65535;
    Bytes options;                       // raw option bytes, zero-padded (end of list) to 4 bytes
    std::optional<uint8_t> data_offset;  // lie: 4-byte words; default from the options
};

struct UdpOpts {
    std::optional<uint16_t> length;  // lie; default: to the end of the IP packet
};

class Frame {
public:
    // --- L2 ---
    Frame& eth(const Mac& src, const Mac& dst) {
        append(dst.begin(), dst.end());
        append(src.begin(), src.end());
        type_slot_ = open_slot(2);
        return *this;
    }
    Frame& vlan(uint16_t id, uint16_t tpid = 0x8100, uint8_t priority = 0) {
        fill_type(tpid);
        put16(static_cast<uint16_t>(priority << 13 | (id & 0x0FFF)));
        type_slot_ = open_slot(2);
        return *this;
    }
    Frame& ethertype(uint16_t type) {  // for anything the builder has no layer for
        fill_type(type);
        return *this;
    }
    Frame& arp(uint16_t op, const Mac& sender_mac, const IpAddr& sender_ip, const Mac& target_mac,
               const IpAddr& target_ip) {
        fill_type(0x0806);
        put16(1);       // Ethernet
        put16(0x0800);  // IPv4
        bytes_.push_back(6);
        bytes_.push_back(4);
        put16(op);
        append(sender_mac.begin(), sender_mac.end());
        append(sender_ip.bytes.begin(), sender_ip.bytes.begin() + 4);
        append(target_mac.begin(), target_mac.end());
        append(target_ip.bytes.begin(), target_ip.bytes.begin() + 4);
        return *this;
    }

    // --- L3 ---
    Frame& ipv4(const IpAddr& src, const IpAddr& dst, const Ipv4Opts& o = {}) {
        fill_type(0x0800);
        const size_t start = bytes_.size();
        const size_t header = 20 + (o.options.size() + 3) / 4 * 4;
        bytes_.push_back(static_cast<uint8_t>(o.version.value_or(4) << 4 | o.ihl.value_or(header / 4)));
        bytes_.push_back(0);  // DSCP/ECN
        length_field(o.total_length, Fixup::ipv4_total, start);
        put16(o.id);
        put16(static_cast<uint16_t>((o.df ? 0x4000 : 0) | (o.mf ? 0x2000 : 0) | (o.frag_offset / 8)));
        bytes_.push_back(o.ttl);
        proto_field(o.proto);
        put16(0);  // checksum
        append(src.bytes.begin(), src.bytes.begin() + 4);
        append(dst.bytes.begin(), dst.bytes.begin() + 4);
        append(o.options.begin(), o.options.end());
        bytes_.resize(start + header, 0);
        family_ = rules::Family::v4;
        return *this;
    }
    Frame& ipv6(const IpAddr& src, const IpAddr& dst, const Ipv6Opts& o = {}) {
        fill_type(0x86dd);
        const size_t start = bytes_.size();
        bytes_.push_back(static_cast<uint8_t>(o.version.value_or(6) << 4));
        bytes_.insert(bytes_.end(), 3, 0);  // traffic class, flow label
        length_field(o.payload_length, Fixup::ipv6_payload, start);
        proto_field(o.next_header);
        bytes_.push_back(o.hop_limit);
        append(src.bytes.begin(), src.bytes.end());
        append(dst.bytes.begin(), dst.bytes.end());
        family_ = rules::Family::v6;
        return *this;
    }
    // A zero-filled extension header of `length` bytes (a multiple of 8; of 4 for AH, 51) with its
    // length field set to match.  Zero bytes are valid Pad1 options in hop-by-hop and destination options.
    Frame& ipv6_ext(uint8_t type, size_t length = 8) {
        fill_proto(type);
        const size_t start = bytes_.size();
        proto_slot_ = open_slot(1);
        bytes_.push_back(static_cast<uint8_t>(type == 51 ? length / 4 - 2 : length / 8 - 1));
        bytes_.resize(start + length, 0);
        return *this;
    }
    // Fills the pending protocol / next-header byte: for what the builder has no layer for (ESP, 59...).
    Frame& protocol(uint8_t proto) {
        fill_proto(proto);
        return *this;
    }
    Frame& ipv6_frag(const Ipv6FragOpts& o) {
        fill_proto(44);
        proto_slot_ = open_slot(1);
        bytes_.push_back(0);
        put16(static_cast<uint16_t>((o.offset & 0xFFF8) | (o.more ? 1 : 0)));
        put32(o.id);
        return *this;
    }

    // --- L4 ---
    Frame& tcp(uint16_t sport, uint16_t dport, const TcpOpts& o = {}) {
        fill_proto(6);
        const size_t start = bytes_.size();
        const size_t header = 20 + (o.options.size() + 3) / 4 * 4;
        put16(sport);
        put16(dport);
        put32(o.seq);
        put32(o.ack);
        bytes_.push_back(static_cast<uint8_t>(o.data_offset.value_or(header / 4) << 4));
        bytes_.push_back(o.flags);
        put16(o.window);
        put32(0);  // checksum, urgent pointer
        append(o.options.begin(), o.options.end());
        bytes_.resize(start + header, 0);
        return *this;
    }
    Frame& udp(uint16_t sport, uint16_t dport, const UdpOpts& o = {}) {
        fill_proto(17);
        const size_t start = bytes_.size();
        put16(sport);
        put16(dport);
        length_field(o.length, Fixup::udp_length, start);
        put16(0);  // checksum
        return *this;
    }
    Frame& sctp(uint16_t sport, uint16_t dport, uint32_t verification_tag = 0) {
        fill_proto(132);
        put16(sport);
        put16(dport);
        put32(verification_tag);
        put32(0);  // checksum
        return *this;
    }
    // ICMP after IPv4, ICMPv6 after IPv6; `rest` is the second word of the header (echo: id << 16 | seq).
    Frame& icmp(uint8_t type, uint8_t code, uint32_t rest = 0) {
        fill_proto(family_ == rules::Family::v4 ? 1 : 58);
        bytes_.push_back(type);
        bytes_.push_back(code);
        put16(0);  // checksum
        put32(rest);
        return *this;
    }
    Frame& icmp_echo(uint8_t type, uint16_t id, uint16_t seq = 0) {
        return icmp(type, 0, uint32_t{id} << 16 | seq);
    }
    // An error message quoting `quoted` (a bare IP packet, e.g. Frame().ipv4(...).tcp(...).bytes(),
    // possibly cut short).
    Frame& icmp_error(uint8_t type, uint8_t code, const Bytes& quoted) {
        icmp(type, code);
        return raw(quoted);
    }
    // Neighbour solicitation / advertisement for `target`, with a source (NS) or target (NA)
    // link-layer address option when `ll` is given.
    Frame& nd_ns(const IpAddr& target, const std::optional<Mac>& ll = {}) {
        icmp(135, 0);
        append(target.bytes.begin(), target.bytes.end());
        return ll ? nd_ll_option(1, *ll) : *this;
    }
    Frame& nd_na(const IpAddr& target, const std::optional<Mac>& ll = {}, uint32_t flags = 0x60000000) {
        icmp(136, 0, flags);
        append(target.bytes.begin(), target.bytes.end());
        return ll ? nd_ll_option(2, *ll) : *this;
    }
    Frame& nd_ll_option(uint8_t type, const Mac& ll) {
        bytes_.push_back(type);
        bytes_.push_back(1);  // 8-byte units
        append(ll.begin(), ll.end());
        return *this;
    }

    // --- data ---
    Frame& payload(size_t n, uint8_t fill = 0x5A) {
        bytes_.insert(bytes_.end(), n, fill);
        return *this;
    }
    Frame& raw(const Bytes& b) {
        append(b.begin(), b.end());
        return *this;
    }
    // Ethernet padding after the IP packet: counted in no length field.
    Frame& pad(size_t n) {
        if (!ip_end_) ip_end_ = bytes_.size();
        return payload(n, 0);
    }

    // The frame, with the computed length fields filled in.
    Bytes bytes() const {
        Bytes out = bytes_;
        const size_t end = ip_end_.value_or(out.size());
        for (const Fixup& f : fixups_) {
            size_t value = end - f.start;
            if (f.kind == Fixup::ipv6_payload) value -= 40;
            const size_t at = f.start + (f.kind == Fixup::ipv4_total ? 2 : 4);
            out[at] = static_cast<uint8_t>(value >> 8);
            out[at + 1] = static_cast<uint8_t>(value);
        }
        return out;
    }

private:
    struct Fixup {
        enum Kind { ipv4_total, ipv6_payload, udp_length } kind;
        size_t start;  // where the header that holds the field starts
    };

    template <typename It>
    void append(It first, It last) {
        bytes_.insert(bytes_.end(), first, last);
    }
    void put16(uint16_t v) {
        bytes_.push_back(static_cast<uint8_t>(v >> 8));
        bytes_.push_back(static_cast<uint8_t>(v));
    }
    void put32(uint32_t v) {
        put16(static_cast<uint16_t>(v >> 16));
        put16(static_cast<uint16_t>(v));
    }
    size_t open_slot(size_t n) {
        bytes_.insert(bytes_.end(), n, 0);
        return bytes_.size() - n;
    }
    void fill_type(uint16_t type) {
        if (!type_slot_) return;  // a bare IP packet, or the ethertype was given
        bytes_[*type_slot_] = static_cast<uint8_t>(type >> 8);
        bytes_[*type_slot_ + 1] = static_cast<uint8_t>(type);
        type_slot_.reset();
    }
    void fill_proto(uint8_t proto) {
        if (!proto_slot_) return;  // given explicitly
        bytes_[*proto_slot_] = proto;
        proto_slot_.reset();
    }
    void proto_field(const std::optional<uint8_t>& given) {
        if (given) {
            bytes_.push_back(*given);
            proto_slot_.reset();
        } else {
            proto_slot_ = open_slot(1);
        }
    }
    void length_field(const std::optional<uint16_t>& given, Fixup::Kind kind, size_t start) {
        if (!given) fixups_.push_back({kind, start});
        put16(given.value_or(0));
    }

    Bytes bytes_;
    std::optional<size_t> type_slot_, proto_slot_, ip_end_;
    std::vector<Fixup> fixups_;
    rules::Family family_ = rules::Family::v4;
};

}  // namespace tagwall::test
