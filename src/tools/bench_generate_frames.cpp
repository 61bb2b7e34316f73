// The frames of `tagwall-bench generate`: see bench_generate_frames.hpp.
#include "tools/bench_generate_frames.hpp"

#include <cstring>

#include "dataplane/checksum.hpp"

namespace tagwall::tools::gen {
namespace {

constexpr uint16_t kEtherTypeIpv4 = 0x0800, kEtherTypeVlan = 0x8100;
constexpr uint8_t kIpProtoTcp = 6;
constexpr size_t kIpHeader = 20, kTcpHeader = 20;

void put16(uint8_t* p, uint16_t v) noexcept {
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
}
void put32(uint8_t* p, uint32_t v) noexcept {
    put16(p, static_cast<uint16_t>(v >> 16));
    put16(p + 2, static_cast<uint16_t>(v));
}
uint16_t get16(const uint8_t* p) noexcept { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t get32(const uint8_t* p) noexcept { return uint32_t{get16(p)} << 16 | get16(p + 2); }

constexpr uint16_t marker_id(uint8_t pair, Side side) noexcept {
    return static_cast<uint16_t>(kMarker << 8 | (pair & 0x7F) << 1 | static_cast<uint8_t>(side));
}

// Where the IPv4 header starts, for a frame laid out as write_segment() writes it (0: not such a frame).
size_t ipv4_offset(std::span<const uint8_t> f) noexcept {
    if (f.size() < 14 + kIpHeader + kTcpHeader) return 0;
    size_t l3 = 12;
    uint16_t type = get16(f.data() + 12);
    if (type == kEtherTypeVlan) {
        if (f.size() < 18 + kIpHeader + kTcpHeader) return 0;
        type = get16(f.data() + 16);
        l3 = 16;
    }
    if (type != kEtherTypeIpv4) return 0;
    const uint8_t* ip = f.data() + l3 + 2;
    if (ip[0] != 0x45 || ip[9] != kIpProtoTcp) return 0;
    return l3 + 2;
}

// IPv4 and TCP checksums of a frame whose IPv4 header starts at `l3`; the payload runs to the IPv4
// total length.
void fill_checksums(uint8_t* ip) noexcept {
    put16(ip + 10, 0);
    put16(ip + 10, dataplane::internet_checksum(ip, kIpHeader));
    const uint16_t total = get16(ip + 2);
    const uint16_t tcp_len = static_cast<uint16_t>(total - kIpHeader);
    uint8_t* tcp = ip + kIpHeader;
    put16(tcp + 16, 0);
    const uint64_t pseudo = dataplane::internet_sum(ip + 12, 8) + kIpProtoTcp + tcp_len;
    put16(tcp + 16, dataplane::internet_checksum(tcp, tcp_len, pseudo));
}

}  // namespace

size_t write_segment(std::span<uint8_t> out, const TcpSegment& s) noexcept {
    const size_t length = frame_length(s.vlan, s.payload);
    if (out.size() < length) return 0;
    uint8_t* p = out.data();
    std::memset(p, 0, length);
    std::memcpy(p, s.dst_mac.data(), 6);
    std::memcpy(p + 6, s.src_mac.data(), 6);
    size_t l3 = 12;
    if (s.vlan != 0) {
        put16(p + 12, kEtherTypeVlan);
        put16(p + 14, s.vlan);
        l3 = 16;
    }
    put16(p + l3, kEtherTypeIpv4);
    uint8_t* ip = p + l3 + 2;
    ip[0] = 0x45;
    ip[1] = static_cast<uint8_t>((s.trial & 0x3F) << 2);
    put16(ip + 2, static_cast<uint16_t>(kIpHeader + kTcpHeader + s.payload));
    put16(ip + 4, marker_id(s.pair, s.side));
    put16(ip + 6, 0x4000);  // DF
    ip[8] = 64;
    ip[9] = kIpProtoTcp;
    put32(ip + 12, s.src_ip);
    put32(ip + 16, s.dst_ip);
    uint8_t* tcp = ip + kIpHeader;
    put16(tcp, s.sport);
    put16(tcp + 2, s.dport);
    put32(tcp + 4, s.seq);
    put32(tcp + 8, s.ack);
    tcp[12] = 5 << 4;
    tcp[13] = s.flags;
    put16(tcp + 14, 65535);
    fill_checksums(ip);
    return length;
}

Marker read_marker(std::span<const uint8_t> frame) noexcept {
    const size_t l3 = ipv4_offset(frame);
    if (l3 == 0) return {};
    const uint8_t* ip = frame.data() + l3;
    const uint16_t id = get16(ip + 4);
    if (id >> 8 != kMarker) return {};
    return {true, static_cast<uint8_t>((id >> 1) & 0x7F), static_cast<Side>(id & 1), ip[kIpHeader + 13],
            static_cast<uint8_t>(ip[1] >> 2)};
}

uint64_t connection_key_of(std::span<const uint8_t> frame) noexcept {
    const Marker m = read_marker(frame);
    if (!m.ours) return 0;
    const uint8_t* ip = frame.data() + ipv4_offset(frame);
    const uint32_t src = get32(ip + 12), dst = get32(ip + 16);
    const uint16_t sport = get16(ip + kIpHeader), dport = get16(ip + kIpHeader + 2);
    return m.side == Side::client ? connection_key(src, dst, sport, dport) : connection_key(dst, src, dport, sport);
}

bool set_trial(std::span<uint8_t> frame, uint8_t trial) noexcept {
    const size_t l3 = ipv4_offset(frame);
    if (l3 == 0) return false;
    uint8_t* ip = frame.data() + l3;
    ip[1] = static_cast<uint8_t>((trial & 0x3F) << 2);
    put16(ip + 10, 0);
    put16(ip + 10, dataplane::internet_checksum(ip, kIpHeader));
    return true;
}

Answer answer_in_place(std::span<uint8_t> frame, Side receiver) noexcept {
    const size_t l3 = ipv4_offset(frame);
    if (l3 == 0) return Answer::none;
    uint8_t* p = frame.data();
    uint8_t* ip = p + l3;
    uint8_t* tcp = ip + kIpHeader;
    const uint16_t id = get16(ip + 4);
    if (id >> 8 != kMarker || static_cast<Side>(id & 1) != other(receiver)) return Answer::none;
    if (get16(ip + 2) != kIpHeader + kTcpHeader) return Answer::none;  // the exchange carries no payload
    const uint8_t flags = tcp[13];
    const uint32_t seq = get32(tcp + 4), ack = get32(tcp + 8);
    Answer answer = Answer::none;
    uint32_t new_seq = 0, new_ack = 0;
    uint8_t new_flags = 0;
    if (receiver == Side::server && flags == dataplane::kTcpSyn) {
        answer = Answer::syn_ack;
        new_seq = server_isn(seq);
        new_ack = seq + 1;
        new_flags = dataplane::kTcpSyn | dataplane::kTcpAck;
    } else if (receiver == Side::client && flags == (dataplane::kTcpSyn | dataplane::kTcpAck)) {
        answer = Answer::ack;
        new_seq = ack;
        new_ack = seq + 1;
        new_flags = dataplane::kTcpAck;
    } else if (receiver == Side::server && flags == dataplane::kTcpAck) {
        answer = Answer::rst;
        new_seq = ack;
        new_ack = seq;
        new_flags = dataplane::kTcpRst | dataplane::kTcpAck;
    } else if (receiver == Side::client && (flags & dataplane::kTcpRst) != 0) {
        return Answer::done;
    } else {
        return Answer::none;
    }
    uint8_t mac[6];
    std::memcpy(mac, p, 6);
    std::memmove(p, p + 6, 6);
    std::memcpy(p + 6, mac, 6);
    uint8_t addr[4];
    std::memcpy(addr, ip + 12, 4);
    std::memmove(ip + 12, ip + 16, 4);
    std::memcpy(ip + 16, addr, 4);
    uint8_t port[2];
    std::memcpy(port, tcp, 2);
    std::memmove(tcp, tcp + 2, 2);
    std::memcpy(tcp + 2, port, 2);
    put16(ip + 4, static_cast<uint16_t>((id & ~1u) | static_cast<uint8_t>(receiver)));
    ip[8] = 64;
    put32(tcp + 4, new_seq);
    put32(tcp + 8, new_ack);
    tcp[13] = new_flags;
    fill_checksums(ip);
    return answer;
}

}  // namespace tagwall::tools::gen
