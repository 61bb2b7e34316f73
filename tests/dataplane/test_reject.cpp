// The answers a `reject` verdict sends back (reject.hpp), table by table: offending frames are built with
// frames.hpp and parsed, the answer is built, then parsed back with parse_frame() and checked field by
// field, with an independent checksum verifier that sums over the answer's bytes.  Then every case that
// must not be answered, `out` too small, a ParsedPacket that lies about the frame, cuts and mutations
// that must never produce a bad answer, and the rate limiter with injected time.
//
// Every frame is handed over in a std::vector of exactly its size, so that an AddressSanitizer build
// catches any read past the end.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "dataplane/frames.hpp"
#include "dataplane/parser.hpp"
#include "dataplane/reject.hpp"

using namespace tagwall::dataplane;
using namespace tagwall::test;
using tagwall::rules::Family;

namespace {

const Mac kMacA = mac("52:54:00:00:10:11"), kMacB = mac("52:54:00:00:30:11");
const IpAddr k4A = ip("198.18.10.11"), k4B = ip("198.18.30.11");
const IpAddr k6A = ip("2001:db8:10::11"), k6B = ip("2001:db8:30::11");

Frame eth() { return Frame().eth(kMacA, kMacB); }

// --- an independent checksum verifier: a correct checksum makes the one's-complement sum 0xFFFF ---

uint64_t add_words(const uint8_t* data, size_t length, uint64_t sum = 0) {
    for (size_t i = 0; i < length; ++i) sum += (i % 2 == 0) ? uint64_t{data[i]} * 256 : data[i];
    return sum;
}
uint64_t add_address(const IpAddr& a, uint64_t sum) {
    return add_words(a.bytes.data(), a.family == Family::v4 ? 4 : 16, sum);
}
bool sums_to_ffff(uint64_t sum) {
    while (sum > 0xFFFF) sum = (sum & 0xFFFF) + (sum >> 16);
    return sum == 0xFFFF;
}

// Every checksum of an answer, given what parse_frame() made of it.
void check_checksums(const Bytes& answer, const ParsedPacket& a) {
    const uint8_t* l3 = answer.data() + a.l3_offset;
    const uint8_t* l4 = answer.data() + a.l4_offset;
    const size_t l4_length = size_t{a.l3_offset} + a.l3_length - a.l4_offset;
    if (a.kind == PacketKind::ipv4) CHECK(sums_to_ffff(add_words(l3, 20)));
    uint64_t pseudo = 0;
    if (a.proto != kIpProtoIcmp) {  // TCP over both families, ICMPv6: a pseudo header
        pseudo = add_address(a.dst, add_address(a.src, 0));
        pseudo += a.proto;
        pseudo += l4_length;  // IPv4: 16-bit length; IPv6: 32-bit length: the same sum below 2^16
    }
    CHECK(sums_to_ffff(add_words(l4, l4_length, pseudo)));
}

// --- building and parsing ---

ParsedPacket parse_ok(const Bytes& frame) {
    const Bytes exact(frame.begin(), frame.end());  // capacity == size: ASan sees any overread
    ParsedPacket p;
    const auto r = parse_frame(exact, p);
    INFO("parse: " << (r ? std::string(info(*r).counter) : "parsed"));
    REQUIRE_FALSE(r);
    return p;
}

// The answer to `frame` (empty when none), with `out` of `room` bytes.
Bytes reject(const Bytes& frame, size_t room = kRejectMaxFrame) {
    const Bytes exact(frame.begin(), frame.end());
    ParsedPacket p;
    parse_frame(exact, p);  // the never-answer cases include frames that do not parse
    std::vector<uint8_t> out(room, 0xEE);
    const size_t n = build_reject(exact, p, out);
    REQUIRE(n <= room);
    out.resize(n);
    return out;
}

uint16_t load16(const Bytes& b, size_t at) { return static_cast<uint16_t>(b.at(at) << 8 | b.at(at + 1)); }

// What every answer shares: Ethernet back to the sender with the tag kept, a fresh IP header from the
// address that was asked to the one that asked, correct checksums.  Returns the answer parsed.
ParsedPacket check_common(const Bytes& frame, const Bytes& answer) {
    const ParsedPacket o = parse_ok(frame);
    REQUIRE_FALSE(answer.empty());
    const ParsedPacket a = parse_ok(answer);
    CHECK(a.kind == o.kind);
    CHECK(a.dst_mac == o.src_mac);
    CHECK(a.src_mac == o.dst_mac);
    CHECK(a.tagged == o.tagged);
    CHECK(a.vlan == o.vlan);
    if (o.tagged) {
        CHECK(load16(answer, 12) == load16(frame, 12));  // the TPID
        CHECK((answer.at(14) >> 5) == 0);                 // PCP 0
    }
    CHECK(a.l3_offset == o.l3_offset);
    CHECK(a.src == o.dst);
    CHECK(a.dst == o.src);
    CHECK(a.ttl == 64);
    CHECK_FALSE(a.fragment);
    CHECK(a.l4_present);
    const size_t ip_end = size_t{a.l3_offset} + a.l3_length;
    CHECK(answer.size() == std::max<size_t>(ip_end, 60));  // padded to the Ethernet minimum
    CHECK(std::all_of(answer.begin() + static_cast<ptrdiff_t>(ip_end), answer.end(),
                      [](uint8_t b) { return b == 0; }));
    const uint8_t* l3 = answer.data() + a.l3_offset;
    if (a.kind == PacketKind::ipv4) {
        CHECK(l3[0] == 0x45);                  // version 4, IHL 5
        CHECK(l3[1] == 0);                     // TOS
        CHECK(load16(answer, a.l3_offset + 4) == 0);       // id
        CHECK(load16(answer, a.l3_offset + 6) == 0x4000);  // DF, offset 0
    } else {
        CHECK(l3[0] == 0x60);  // version 6, traffic class 0, flow label 0
        CHECK(l3[1] == 0);
        CHECK(l3[2] == 0);
        CHECK(l3[3] == 0);
        CHECK(a.l4_offset == a.l3_offset + 40);  // no extension headers
    }
    check_checksums(answer, a);
    return a;
}

// The frames every answer is checked on: both families, untagged, 802.1Q with a priority, 802.1ad.
struct Envelope {
    const char* name;
    std::function<Frame()> start;  // Ethernet (and tag), ready for the IP layer
    Family family;
};
const std::vector<Envelope>& envelopes() {
    static const std::vector<Envelope> all{
        {"IPv4", [] { return eth(); }, Family::v4},
        {"IPv4, VLAN 10 PCP 5", [] { return eth().vlan(10, 0x8100, 5); }, Family::v4},
        {"IPv6", [] { return eth(); }, Family::v6},
        {"IPv6, VLAN 4094 PCP 7", [] { return eth().vlan(4094, 0x8100, 7); }, Family::v6},
        {"IPv4, 802.1ad tag", [] { return eth().vlan(30, 0x88a8); }, Family::v4},
    };
    return all;
}
Frame ip_layer(const Envelope& e) {
    return e.family == Family::v4 ? e.start().ipv4(k4A, k4B) : e.start().ipv6(k6A, k6B);
}

// A TCP segment, or UDP with `payload` bytes, from A to B.
Bytes udp_frame(Family f, size_t payload, std::optional<uint16_t> vlan = {}) {
    Frame fr = eth();
    if (vlan) fr.vlan(*vlan);
    if (f == Family::v4) fr.ipv4(k4A, k4B);
    else fr.ipv6(k6A, k6B);
    return fr.udp(40000, 53).payload(payload).bytes();
}

}  // namespace

TEST_CASE("reject: a TCP segment gets an RST (RFC 9293 3.10.7.1)", "[reject]") {
    struct Case {
        const char* name;
        TcpOpts tcp;
        size_t payload;
        uint8_t flags;  // of the RST
        uint32_t seq, ack;
    };
    const std::vector<Case> cases{
        {"SYN", {.seq = 1000, .flags = kTcpSyn, .options = {2, 4, 0x05, 0xB4}}, 0, kTcpRst | kTcpAck, 0, 1001},
        {"SYN with payload (TFO)", {.seq = 1000, .flags = kTcpSyn}, 100, kTcpRst | kTcpAck, 0, 1101},
        {"SYN at the end of sequence space", {.seq = 0xFFFFFFFF, .flags = kTcpSyn}, 0, kTcpRst | kTcpAck, 0, 0},
        {"ACK segment with data", {.seq = 5000, .ack = 7777, .flags = kTcpAck | kTcpPsh}, 50, kTcpRst, 7777, 0},
        {"bare ACK", {.seq = 5000, .ack = 0xDEADBEEF, .flags = kTcpAck}, 0, kTcpRst, 0xDEADBEEF, 0},
        {"SYN|ACK", {.seq = 1, .ack = 55, .flags = kTcpSyn | kTcpAck}, 0, kTcpRst, 55, 0},
        {"FIN without ACK", {.seq = 300, .flags = kTcpFin}, 0, kTcpRst | kTcpAck, 0, 301},
        {"FIN with data, no ACK", {.seq = 300, .flags = kTcpFin | kTcpPsh}, 10, kTcpRst | kTcpAck, 0, 311},
        {"FIN|ACK", {.seq = 300, .ack = 900, .flags = kTcpFin | kTcpAck}, 0, kTcpRst, 900, 0},
        {"SYN|FIN", {.seq = 10, .flags = kTcpSyn | kTcpFin}, 0, kTcpRst | kTcpAck, 0, 12},
        {"no flags, data", {.seq = 9, .flags = 0}, 3, kTcpRst | kTcpAck, 0, 12},
    };
    for (const Envelope& e : envelopes()) {
        for (const Case& c : cases) {
            INFO(e.name << ": " << c.name);
            const Bytes frame = ip_layer(e).tcp(40000, 5432, c.tcp).payload(c.payload).bytes();
            const Bytes answer = reject(frame);
            const ParsedPacket o = parse_ok(frame);
            const ParsedPacket a = check_common(frame, answer);
            CHECK(a.proto == kIpProtoTcp);
            CHECK(a.sport == 5432);
            CHECK(a.dport == 40000);
            CHECK(a.tcp_flags == c.flags);
            CHECK(a.tcp_seq == c.seq);
            CHECK(a.tcp_ack == c.ack);
            CHECK(a.tcp_window == 0);
            CHECK(a.l4_length == 20);  // data offset 5, no options, no payload
            CHECK(answer.at(a.l4_offset + 12) == 0x50);
            CHECK(load16(answer, a.l4_offset + 18) == 0);  // urgent pointer
            CHECK(a.payload_length == 0);
            CHECK(a.l3_length == (e.family == Family::v4 ? 40 : 60));
            CHECK(o.l4_present);
        }
    }
}

TEST_CASE("reject: a TCP SYN in a first fragment still gets an RST", "[reject]") {
    for (const Family f : {Family::v4, Family::v6}) {
        INFO((f == Family::v4 ? "IPv4" : "IPv6"));
        Frame fr = eth();
        if (f == Family::v4) fr.ipv4(k4A, k4B, {.id = 7, .mf = true});
        else fr.ipv6(k6A, k6B).ipv6_frag({.offset = 0, .more = true, .id = 7});
        const Bytes frame = fr.tcp(40000, 22, {.seq = 41, .flags = kTcpSyn}).payload(40).bytes();
        REQUIRE(parse_ok(frame).first_fragment);
        const ParsedPacket a = check_common(frame, reject(frame));
        CHECK(a.tcp_flags == (kTcpRst | kTcpAck));
        CHECK(a.tcp_ack == 41 + 1 + 40);  // what this fragment carries: still in (ISS, SND.NXT]
    }
}

TEST_CASE("reject: anything else gets ICMP / ICMPv6 port unreachable quoting the packet", "[reject]") {
    struct Case {
        const char* name;
        Bytes frame;
    };
    const std::vector<Case> cases{
        {"UDP/IPv4", udp_frame(Family::v4, 20)},
        {"UDP/IPv6", udp_frame(Family::v6, 20)},
        {"UDP/IPv4, VLAN 20", udp_frame(Family::v4, 20, 20)},
        {"UDP/IPv6, VLAN 4095", udp_frame(Family::v6, 0, 4095)},
        {"UDP/IPv4, 802.1ad tag", eth().vlan(30, 0x88a8).ipv4(k4A, k4B).udp(1, 2).bytes()},
        {"SCTP/IPv4", eth().ipv4(k4A, k4B).sctp(38412, 38412, 0x1234).payload(16).bytes()},
        {"SCTP/IPv6", eth().ipv6(k6A, k6B).sctp(38412, 38412, 0x1234).payload(16).bytes()},
        {"ICMP echo request", eth().ipv4(k4A, k4B).icmp_echo(8, 77, 1).payload(56).bytes()},
        {"ICMP timestamp request (not an error)", eth().ipv4(k4A, k4B).icmp(13, 0).payload(12).bytes()},
        {"ICMPv6 echo request", eth().ipv6(k6A, k6B).icmp_echo(128, 77, 1).payload(56).bytes()},
        {"ICMPv6 informational type 200", eth().ipv6(k6A, k6B).icmp(200, 0).bytes()},
        {"GRE/IPv4 (no L4 layer parsed)", eth().ipv4(k4A, k4B).protocol(47).payload(12).bytes()},
        {"IPv6 no next header", eth().ipv6(k6A, k6B).protocol(59).payload(8).bytes()},
        {"UDP/IPv6 behind hop-by-hop and destination options",
         eth().ipv6(k6A, k6B).ipv6_ext(0).ipv6_ext(60, 16).udp(1, 2).payload(8).bytes()},
        {"UDP/IPv4 with options", eth().ipv4(k4A, k4B, {.options = {1, 1, 1, 0}}).udp(1, 2).bytes()},
        {"UDP/IPv4 first fragment", eth().ipv4(k4A, k4B, {.id = 9, .mf = true}).udp(1, 2).payload(64).bytes()},
        {"UDP/IPv6 first fragment",
         eth().ipv6(k6A, k6B).ipv6_frag({.more = true, .id = 9}).udp(1, 2).payload(64).bytes()},
        {"UDP/IPv4 with Ethernet padding (not quoted)", eth().ipv4(k4A, k4B).udp(1, 2).pad(18).bytes()},
        {"ESP/IPv6", eth().ipv6(k6A, k6B).protocol(kIpProtoEsp).payload(40).bytes()},
    };
    for (const Case& c : cases) {
        INFO(c.name);
        const ParsedPacket o = parse_ok(c.frame);
        const Bytes answer = reject(c.frame);
        const ParsedPacket a = check_common(c.frame, answer);
        const bool v4 = o.kind == PacketKind::ipv4;
        CHECK(a.proto == (v4 ? kIpProtoIcmp : kIpProtoIcmpv6));
        CHECK(a.icmp_type == (v4 ? 3 : 1));
        CHECK(a.icmp_code == (v4 ? 3 : 4));
        CHECK(a.icmp_error);
        CHECK(load16(answer, a.l4_offset + 4) == 0);  // unused
        CHECK(load16(answer, a.l4_offset + 6) == 0);
        // The quote is the offending IP packet, whole here (every one is small), padding excluded.
        CHECK(a.payload_length == o.l3_length);
        CHECK(a.l3_length == (v4 ? 20 : 40) + 8 + o.l3_length);
        const auto quoted = answer.begin() + a.l4_offset + 8;
        CHECK(std::equal(quoted, quoted + o.l3_length, c.frame.begin() + o.l3_offset));
        // ... which the parser reads as the packet the error is about.
        CHECK(a.inner_l3_present);
        CHECK(a.inner_src == o.src);
        CHECK(a.inner_dst == o.dst);
        if (o.l4_present && (o.proto == kIpProtoUdp || o.proto == kIpProtoSctp)) {
            CHECK(a.inner_proto == o.proto);
            CHECK(a.inner_sport == o.sport);
            CHECK(a.inner_dport == o.dport);
        }
    }
}

TEST_CASE("reject: the quote is cut at 576 bytes (IPv4) and 1280 bytes (IPv6) of answer", "[reject]") {
    struct Case {
        const char* name;
        Bytes frame;
        size_t answer_l3_length;  // the answer's IP packet
    };
    // UDP: 20 or 40 bytes of IP header + 8 of UDP + payload.
    const std::vector<Case> cases{
        {"IPv4, 548 bytes: quoted whole, answer exactly 576", udp_frame(Family::v4, 548 - 28), 576},
        {"IPv4, 549 bytes: one byte cut", udp_frame(Family::v4, 549 - 28), 576},
        {"IPv4, 1500 bytes", udp_frame(Family::v4, 1500 - 28), 576},
        {"IPv4, 100 bytes: whole", udp_frame(Family::v4, 100 - 28), 128},
        {"IPv4 tagged, 65000 bytes", udp_frame(Family::v4, 65000 - 28, 10), 576},
        {"IPv6, 1232 bytes: quoted whole, answer exactly 1280", udp_frame(Family::v6, 1232 - 48), 1280},
        {"IPv6, 1233 bytes: one byte cut", udp_frame(Family::v6, 1233 - 48), 1280},
        {"IPv6, 1500 bytes", udp_frame(Family::v6, 1500 - 48), 1280},
        {"IPv6 tagged, 9000 bytes", udp_frame(Family::v6, 9000 - 48, 10), 1280},
        {"IPv6, 65000 bytes", udp_frame(Family::v6, 65000 - 48), 1280},
    };
    for (const Case& c : cases) {
        INFO(c.name);
        const ParsedPacket o = parse_ok(c.frame);
        const Bytes answer = reject(c.frame);
        const ParsedPacket a = check_common(c.frame, answer);
        CHECK(a.l3_length == c.answer_l3_length);
        const size_t quote = c.answer_l3_length - (o.kind == PacketKind::ipv4 ? 28 : 48);
        CHECK(a.payload_length == quote);
        const auto quoted = answer.begin() + a.l4_offset + 8;
        CHECK(std::equal(quoted, quoted + static_cast<ptrdiff_t>(quote), c.frame.begin() + o.l3_offset));
        CHECK(a.inner_sport == 40000);
        CHECK(answer.size() <= kRejectMaxFrame);
    }
    // The largest answer is kRejectMaxFrame exactly.
    CHECK(reject(udp_frame(Family::v6, 2000, 10)).size() == kRejectMaxFrame);
}

TEST_CASE("reject: what is never answered", "[reject]") {
    const Mac kBroadcast = mac("ff:ff:ff:ff:ff:ff"), kMulticast4 = mac("01:00:5e:00:00:01"),
              kMulticast6 = mac("33:33:00:00:00:01"), kZero = mac("00:00:00:00:00:00");
    const Bytes quoted4 = Frame().ipv4(k4B, k4A).udp(53, 40000).payload(8).bytes();
    const Bytes quoted6 = Frame().ipv6(k6B, k6A).udp(53, 40000).payload(8).bytes();
    auto v4 = [](const IpAddr& src, const IpAddr& dst, const Ipv4Opts& o = {}) {
        return eth().ipv4(src, dst, o);
    };
    auto v6 = [](const IpAddr& src, const IpAddr& dst) { return eth().ipv6(src, dst); };
    struct Case {
        const char* name;
        Bytes frame;
    };
    const std::vector<Case> cases{
        // TCP RST (RFC 9293)
        {"RST", v4(k4A, k4B).tcp(1, 2, {.seq = 5, .flags = kTcpRst}).bytes()},
        {"RST|ACK", v4(k4A, k4B).tcp(1, 2, {.seq = 5, .ack = 6, .flags = kTcpRst | kTcpAck}).bytes()},
        {"RST/IPv6", v6(k6A, k6B).tcp(1, 2, {.flags = kTcpRst}).bytes()},
        {"RST|SYN", v4(k4A, k4B).tcp(1, 2, {.flags = kTcpRst | kTcpSyn}).bytes()},
        // ICMP errors (RFC 1122 3.2.2, RFC 4443 2.4(e))
        {"ICMP port unreachable", v4(k4A, k4B).icmp_error(3, 3, quoted4).bytes()},
        {"ICMP source quench", v4(k4A, k4B).icmp_error(4, 0, quoted4).bytes()},
        {"ICMP redirect", v4(k4A, k4B).icmp_error(5, 1, quoted4).bytes()},
        {"ICMP time exceeded", v4(k4A, k4B).icmp_error(11, 0, quoted4).bytes()},
        {"ICMP parameter problem", v4(k4A, k4B).icmp_error(12, 0, quoted4).bytes()},
        {"ICMP error quoting nothing", v4(k4A, k4B).icmp(3, 1).bytes()},
        {"ICMPv6 unreachable", v6(k6A, k6B).icmp_error(1, 4, quoted6).bytes()},
        {"ICMPv6 packet too big", v6(k6A, k6B).icmp_error(2, 0, quoted6).bytes()},
        {"ICMPv6 time exceeded", v6(k6A, k6B).icmp_error(3, 0, quoted6).bytes()},
        {"ICMPv6 parameter problem", v6(k6A, k6B).icmp_error(4, 1, quoted6).bytes()},
        {"ICMPv6 unassigned error type 100", v6(k6A, k6B).icmp(100, 0).payload(8).bytes()},
        {"ICMPv6 error type 127", v6(k6A, k6B).icmp(127, 0).bytes()},
        // neighbour discovery, sent unicast here so that only the type decides
        {"ICMPv6 router solicitation", v6(k6A, k6B).icmp(133, 0).bytes()},
        {"ICMPv6 router advertisement", v6(k6A, k6B).icmp(134, 0).payload(8).bytes()},
        {"ICMPv6 neighbour solicitation", v6(k6A, k6B).nd_ns(k6B, kMacA).bytes()},
        {"ICMPv6 neighbour advertisement", v6(k6A, k6B).nd_na(k6A, kMacA).bytes()},
        {"ICMPv6 redirect", v6(k6A, k6B).icmp(137, 0).payload(32).bytes()},
        // later fragments
        {"IPv4 later fragment", v4(k4A, k4B, {.proto = 17, .id = 3, .frag_offset = 16, .mf = true}).payload(16).bytes()},
        {"IPv4 last fragment", v4(k4A, k4B, {.proto = 6, .id = 3, .frag_offset = 1480}).payload(20).bytes()},
        {"IPv6 later fragment", v6(k6A, k6B).ipv6_frag({.offset = 16, .id = 3}).protocol(17).payload(16).bytes()},
        // not IP
        {"ARP request", eth().arp(1, kMacA, k4A, kZero, k4B).bytes()},
        {"ARP reply", eth().arp(2, kMacA, k4A, kMacB, k4B).bytes()},
        {"LLDP", eth().ethertype(0x88cc).payload(40).bytes()},
        {"QinQ", eth().vlan(100, 0x88a8).vlan(10).ipv4(k4A, k4B).udp(1, 2).bytes()},
        {"truncated IPv4", eth().ethertype(0x0800).payload(10).bytes()},
        // destination MAC: group bit
        {"broadcast MAC", Frame().eth(kMacA, kBroadcast).ipv4(k4A, k4B).udp(1, 2).bytes()},
        {"IPv4 multicast MAC", Frame().eth(kMacA, kMulticast4).ipv4(k4A, k4B).tcp(1, 2, {.flags = kTcpSyn}).bytes()},
        {"IPv6 multicast MAC", Frame().eth(kMacA, kMulticast6).ipv6(k6A, k6B).udp(1, 2).bytes()},
        // destination address
        {"to 255.255.255.255", v4(k4A, ip("255.255.255.255")).udp(68, 67).bytes()},
        {"to 224.0.0.1", v4(k4A, ip("224.0.0.1")).udp(1, 2).bytes()},
        {"to 239.255.255.250", v4(k4A, ip("239.255.255.250")).udp(1900, 1900).bytes()},
        {"to 0.0.0.0", v4(k4A, ip("0.0.0.0")).udp(1, 2).bytes()},
        {"to 127.0.0.1", v4(k4A, ip("127.0.0.1")).tcp(1, 2, {.flags = kTcpSyn}).bytes()},
        {"to ff02::1", v6(k6A, ip("ff02::1")).udp(1, 2).bytes()},
        {"to ff05::1:3", v6(k6A, ip("ff05::1:3")).tcp(1, 2, {.flags = kTcpSyn}).bytes()},
        {"to ::", v6(k6A, ip("::")).udp(1, 2).bytes()},
        {"to ::1", v6(k6A, ip("::1")).udp(1, 2).bytes()},
        // source address
        {"from 0.0.0.0", v4(ip("0.0.0.0"), k4B).udp(68, 67).bytes()},
        {"from 0.1.2.3", v4(ip("0.1.2.3"), k4B).udp(1, 2).bytes()},
        {"from 127.0.0.1", v4(ip("127.0.0.1"), k4B).tcp(1, 2, {.flags = kTcpSyn}).bytes()},
        {"from 224.0.0.5", v4(ip("224.0.0.5"), k4B).udp(1, 2).bytes()},
        {"from 240.0.0.1", v4(ip("240.0.0.1"), k4B).udp(1, 2).bytes()},
        {"from 255.255.255.255", v4(ip("255.255.255.255"), k4B).udp(1, 2).bytes()},
        {"from ::", v6(ip("::"), k6B).udp(1, 2).bytes()},
        {"from ::1", v6(ip("::1"), k6B).tcp(1, 2, {.flags = kTcpSyn}).bytes()},
        {"from ff02::1", v6(ip("ff02::1"), k6B).udp(1, 2).bytes()},
    };
    for (const Case& c : cases) {
        INFO(c.name);
        CHECK(reject(c.frame).empty());
    }
    // The same frames, tagged or not, are answered once the one thing that forbids it is gone.
    CHECK_FALSE(reject(v4(k4A, k4B).tcp(1, 2, {.flags = kTcpSyn}).bytes()).empty());
    CHECK_FALSE(reject(v6(k6A, k6B).udp(1, 2).bytes()).empty());
    CHECK_FALSE(reject(eth().vlan(100, 0x88a8).ipv4(k4A, k4B).udp(1, 2).bytes()).empty());
}

TEST_CASE("reject: out too small", "[reject]") {
    const std::vector<Bytes> frames{
        eth().ipv4(k4A, k4B).tcp(1, 2, {.flags = kTcpSyn}).bytes(),  // 54 -> padded to 60
        eth().vlan(5).ipv6(k6A, k6B).tcp(1, 2, {.flags = kTcpSyn}).bytes(),
        udp_frame(Family::v4, 30, 7),
        udp_frame(Family::v6, 3000),
    };
    for (const Bytes& frame : frames) {
        const Bytes full = reject(frame);
        REQUIRE(full.size() >= 60);
        INFO("answer of " << full.size() << " bytes");
        CHECK(reject(frame, full.size()) == full);
        CHECK(reject(frame, full.size() - 1).empty());
        CHECK(reject(frame, 59).empty());
        CHECK(reject(frame, 0).empty());
    }
}

TEST_CASE("reject: a ParsedPacket that does not fit the frame is not answered", "[reject]") {
    const Bytes frame = udp_frame(Family::v4, 20, 10);
    const Bytes exact(frame.begin(), frame.end());
    const ParsedPacket good = parse_ok(frame);
    std::array<uint8_t, kRejectMaxFrame> out{};
    REQUIRE(build_reject(exact, good, out) > 0);

    struct Case {
        const char* name;
        std::function<void(ParsedPacket&)> lie;
        size_t frame_size;
    };
    const std::vector<Case> cases{
        {"frame shorter than the IP packet", [](ParsedPacket&) {}, frame.size() - 1},
        {"empty frame", [](ParsedPacket&) {}, 0},
        {"L3 past the frame", [](ParsedPacket& p) { p.l3_offset = 60000; }, frame.size()},
        {"L3 not after the tag", [](ParsedPacket& p) { p.l3_offset = 14; }, frame.size()},
        {"tag claimed on an untagged offset", [](ParsedPacket& p) { p.l3_offset = 22; }, frame.size()},
        {"IP length past the frame", [](ParsedPacket& p) { p.l3_length = 65535; }, frame.size()},
        {"IP length below a header", [](ParsedPacket& p) { p.l3_length = 19; }, frame.size()},
        {"L4 before the IP header's end", [](ParsedPacket& p) { p.l4_offset = p.l3_offset + 4; }, frame.size()},
        {"L4 past the IP packet", [](ParsedPacket& p) { p.l4_length = 4000; }, frame.size()},
        {"IPv6 kind on an IPv4 length", [](ParsedPacket& p) { p.kind = PacketKind::ipv6; p.l3_length = 30; },
         frame.size()},
    };
    for (const Case& c : cases) {
        INFO(c.name);
        ParsedPacket p = good;
        c.lie(p);
        const Bytes shorter(frame.begin(), frame.begin() + static_cast<ptrdiff_t>(c.frame_size));
        CHECK(build_reject(shorter, p, out) == 0);
    }
}

TEST_CASE("reject: cut and mutated frames never give a bad answer", "[reject]") {
    const std::vector<Bytes> seeds{
        eth().vlan(10).ipv4(k4A, k4B).tcp(1, 2, {.seq = 7, .flags = kTcpSyn}).payload(9).bytes(),
        eth().ipv6(k6A, k6B).ipv6_ext(0).udp(1, 2).payload(30).bytes(),
        eth().ipv4(k4A, k4B, {.options = {7, 7, 4, 0}}).icmp_echo(8, 1).payload(20).bytes(),
        eth().ipv6(k6A, k6B).icmp_error(1, 4, Frame().ipv6(k6B, k6A).tcp(2, 1).bytes()).bytes(),
    };
    // Whatever the parser accepts and build_reject answers must parse back and carry correct checksums.
    auto check = [](const Bytes& frame) {
        const Bytes exact(frame.begin(), frame.end());
        ParsedPacket p;
        if (parse_frame(exact, p)) return;
        std::array<uint8_t, kRejectMaxFrame> out{};
        const size_t n = build_reject(exact, p, out);
        if (n == 0) return;
        const Bytes answer(out.begin(), out.begin() + static_cast<ptrdiff_t>(n));
        ParsedPacket a;
        REQUIRE_FALSE(parse_frame(answer, a));
        check_checksums(answer, a);
        CHECK(a.src == p.dst);
        CHECK(a.dst == p.src);
    };
    for (const Bytes& seed : seeds) {
        for (size_t n = 0; n <= seed.size(); ++n)
            check(Bytes(seed.begin(), seed.begin() + static_cast<ptrdiff_t>(n)));
    }
    std::mt19937 random(20240601);
    for (int i = 0; i < 4000; ++i) {
        Bytes frame = seeds[static_cast<size_t>(i) % seeds.size()];
        const int flips = 1 + static_cast<int>(random() % 4);
        for (int k = 0; k < flips; ++k) frame[random() % frame.size()] = static_cast<uint8_t>(random());
        check(frame);
    }
}

TEST_CASE("reject: the checksum verifier sees a wrong checksum", "[reject]") {
    // Guards the tests above against a verifier that accepts anything.
    for (const Bytes& frame : {udp_frame(Family::v4, 10), udp_frame(Family::v6, 10)}) {
        Bytes answer = reject(frame);
        const ParsedPacket a = parse_ok(answer);
        const uint8_t* l4 = answer.data() + a.l4_offset;
        const size_t l4_length = size_t{a.l3_offset} + a.l3_length - a.l4_offset;
        const uint64_t pseudo = a.kind == PacketKind::ipv4
                                    ? 0
                                    : add_address(a.dst, add_address(a.src, 0)) + a.proto + l4_length;
        CHECK(sums_to_ffff(add_words(l4, l4_length, pseudo)));
        answer[a.l4_offset + 8 + 5] ^= 0x01;  // a quoted byte
        CHECK_FALSE(sums_to_ffff(add_words(answer.data() + a.l4_offset, l4_length, pseudo)));
    }
}

TEST_CASE("reject: RejectLimiter burst, refill and backwards time", "[reject]") {
    constexpr uint64_t kMs = 1'000'000, kS = 1'000'000'000;
    auto takes = [](RejectLimiter& l, uint64_t now, int n) {
        int granted = 0;
        for (int i = 0; i < n; ++i) granted += l.take(now) ? 1 : 0;
        return granted;
    };

    SECTION("defaults") {
        RejectLimiter l;
        CHECK(l.rate() == 1000);
        CHECK(l.burst() == 100);
        CHECK(takes(l, 5 * kS, 200) == 100);
        CHECK(takes(l, 5 * kS + kMs, 10) == 1);  // 1000 per second: one per millisecond
    }
    SECTION("the first call starts with a full bucket, at any now") {
        const uint64_t starts[] = {0, 123456789, uint64_t{1} << 62, (uint64_t{1} << 63) - 1};
        for (const uint64_t start : starts) {
            RejectLimiter l(10, 5);
            CHECK(takes(l, start, 10) == 5);
        }
    }
    SECTION("refill: exact, never past the burst") {
        const uint64_t t0 = 77 * kS;
        RejectLimiter l(10, 5);  // one every 100 ms
        CHECK(takes(l, t0, 5) == 5);
        CHECK_FALSE(l.take(t0));
        CHECK_FALSE(l.take(t0 + 100 * kMs - 1));
        CHECK(l.take(t0 + 100 * kMs));
        CHECK_FALSE(l.take(t0 + 100 * kMs));
        CHECK(takes(l, t0 + 350 * kMs, 10) == 2);  // 250 ms: 2.5 tokens, the half kept
        CHECK(takes(l, t0 + 400 * kMs, 10) == 1);  // 0.5 + 0.5
        CHECK(takes(l, t0 + 3600 * kS, 100) == 5);  // an hour idle: the burst, no more
    }
    SECTION("a rate that does not divide a second") {
        RejectLimiter l(3, 1);
        CHECK(l.take(0));
        CHECK_FALSE(l.take(333'333'333));  // 999'999'999 nano-tokens
        CHECK(l.take(333'333'334));
        RejectLimiter deep(3, 100);  // room for what 10 s bring: nothing lost to the cap
        const uint64_t t0 = 5 * kS;
        CHECK(takes(deep, t0, 100) == 100);
        CHECK(takes(deep, t0 + 10 * kS, 100) == 30);  // exactly 30, nothing left over
        CHECK_FALSE(deep.take(t0 + 10 * kS + 333'333'333));
        CHECK(deep.take(t0 + 10 * kS + 333'333'334));
    }
    SECTION("time going backwards mints nothing") {
        const uint64_t t0 = 10 * kS;
        RejectLimiter l(10, 5);
        CHECK(takes(l, t0, 5) == 5);
        CHECK_FALSE(l.take(t0 - 5 * kS));
        CHECK_FALSE(l.take(0));
        CHECK_FALSE(l.take(t0 + 99 * kMs));  // the refill counts from t0, not from the earlier times
        CHECK(l.take(t0 + 100 * kMs));
        CHECK_FALSE(l.take(t0 + 100 * kMs));
    }
    SECTION("no overflow at the extremes") {
        constexpr uint32_t kMax = std::numeric_limits<uint32_t>::max();
        RejectLimiter big(kMax, kMax);
        CHECK(big.take(0));
        CHECK(big.take(uint64_t{1} << 63));
        CHECK(big.take(std::numeric_limits<uint64_t>::max()));

        RejectLimiter fast(kMax, 1);  // 4.29 answers per nanosecond, capped at 1
        CHECK(fast.take(0));
        CHECK_FALSE(fast.take(0));
        CHECK(fast.take(1));
        CHECK_FALSE(fast.take(1));

        RejectLimiter slow(1, 2);
        CHECK(takes(slow, 0, 3) == 2);
        CHECK(takes(slow, uint64_t{1} << 63, 5) == 2);  // 2^63 ns idle: full, not wrapped
        CHECK(takes(slow, std::numeric_limits<uint64_t>::max(), 5) == 2);
    }
    SECTION("rate 0: the burst, once; burst 0: nothing") {
        RejectLimiter once(0, 3);
        CHECK(takes(once, 0, 10) == 3);
        CHECK(takes(once, uint64_t{1} << 62, 10) == 0);
        RejectLimiter never(1000, 0);
        CHECK(takes(never, 0, 10) == 0);
        CHECK(takes(never, 100 * kS, 10) == 0);
    }
}
