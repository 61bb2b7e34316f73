// The packet parser, table by table (SPEC §5): what each layer fills, one drop reason per malformed
// case, truncation at every byte of valid frames, and random mutations that must never crash.
//
// Every frame is handed to the parser in a std::vector of exactly its size, so that an AddressSanitizer
// build catches any read past the end.
#include <catch2/catch.hpp>

#include <algorithm>
#include <functional>
#include <random>
#include <string>

#include "dataplane/ack_segment_ref.hpp"
#include "dataplane/fragments.hpp"
#include "dataplane/frames.hpp"
#include "dataplane/parser.hpp"

using namespace tagwall::dataplane;
using namespace tagwall::test;
using tagwall::rules::Family;

namespace {

const Mac kMacA = mac("52:54:00:00:10:11"), kMacB = mac("52:54:00:00:30:11"),
          kBroadcast = mac("ff:ff:ff:ff:ff:ff"), kZero = mac("00:00:00:00:00:00");
const IpAddr k4A = ip("198.18.10.11"), k4B = ip("198.18.30.11");
const IpAddr k6A = ip("2001:db8:10::11"), k6B = ip("2001:db8:30::11"), k6Unspecified = ip("::"),
             k6SolicitedB = ip("ff02::1:ff00:11");

Frame eth() { return Frame().eth(kMacA, kMacB); }
Frame v4(const Ipv4Opts& o = {}) { return eth().ipv4(k4A, k4B, o); }
Frame v6(const Ipv6Opts& o = {}) { return eth().ipv6(k6A, k6B, o); }

Bytes patched(Bytes b, size_t at, uint8_t value) {
    b.at(at) = value;
    return b;
}
Bytes cut(const Bytes& b, size_t n) { return Bytes(b.begin(), b.begin() + static_cast<ptrdiff_t>(n)); }

std::string outcome(const std::optional<Reason>& r) { return r ? std::string(info(*r).counter) : "parsed"; }

// parse_frame(), checked against its reference: the shortcut for common frames must leave exactly what
// the general path leaves, and decide the same.
std::optional<Reason> parse_both(std::span<const uint8_t> frame, ParsedPacket& p) {
    const auto r = parse_frame(frame, p);
    ParsedPacket q;
    const auto g = detail::parse_frame_general(frame, q);
    if (r != g || !(p == q)) FAIL_CHECK("parse_frame() and its general path disagree");
    // And the established fast path's parse, against what parse_frame() read.
    AckSegment a;
    const bool ack = parse_ack_segment(frame, a);
    const auto want = expected_ack_segment(p, r);
    if (ack != want.has_value() || (ack && !(a == *want)))
        FAIL_CHECK("parse_ack_segment() " << (ack ? "accepts" : "refuses") << " a frame that parse_frame() reads as "
                                          << (want ? "an ACK segment" : "something else") << (ack && want ? ", with other values" : ""));
    return r;
}

std::optional<Reason> parse(const Bytes& frame, ParsedPacket& p) {
    const Bytes exact(frame.begin(), frame.end());  // capacity == size: ASan sees any overread
    return parse_both(exact, p);
}

struct Case {
    const char* name;
    Bytes frame;
    std::optional<Reason> expect;                     // nullopt: the frame parses
    std::function<void(const ParsedPacket&)> check;  // run when the outcome is the expected one
};

void run(const std::vector<Case>& cases) {
    for (const Case& c : cases) {
        INFO(c.name);
        ParsedPacket p;
        const auto r = parse(c.frame, p);
        CHECK(outcome(r) == outcome(c.expect));
        if (r == c.expect && c.check) c.check(p);
    }
}

// A success must describe bytes inside the frame.
void check_within(const ParsedPacket& p, size_t size) {
    if (p.kind != PacketKind::ipv4 && p.kind != PacketKind::ipv6) return;
    CHECK(size_t{p.l3_offset} + p.l3_length <= size);
    if (p.l4_present || p.fragment) {
        CHECK(p.l4_offset >= p.l3_offset);
        CHECK(size_t{p.l4_offset} + p.l4_length <= size_t{p.l3_offset} + p.l3_length);
        CHECK(p.payload_length <= p.l4_length);
    }
}

// TCP options: MSS 1460, SACK permitted, timestamps, NOP, window scale `scale`.
Bytes syn_options(uint8_t scale) {
    return {2, 4, 0x05, 0xB4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, scale};
}

}  // namespace

TEST_CASE("parser: Ethernet and VLAN tags", "[parser]") {
    const Bytes tcp = v4().tcp(1234, 80).bytes();
    run({
        {"untagged TCP/IPv4", tcp, std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.dst_mac == kMacB);
             CHECK(p.src_mac == kMacA);
             CHECK_FALSE(p.tagged);
             CHECK(p.vlan == 0);
             CHECK(p.ethertype == kEtherTypeIpv4);
             CHECK(p.kind == PacketKind::ipv4);
             CHECK(p.l3_offset == 14);
         }},
        {"802.1Q tag, UDP", eth().vlan(10).ipv4(k4A, k4B).udp(5353, 53).payload(12).bytes(), std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.tagged);
             CHECK(p.vlan == 10);
             CHECK(p.ethertype == kEtherTypeIpv4);
             CHECK(p.l3_offset == 18);
             CHECK(p.l4_offset == 38);
             CHECK(p.sport == 5353);
             CHECK(p.dport == 53);
             CHECK(p.payload_length == 12);
         }},
        {"priority bits are not the VLAN id", eth().vlan(4095, 0x8100, 7).ipv4(k4A, k4B).udp(1, 2).bytes(),
         std::nullopt, [](const ParsedPacket& p) { CHECK(p.vlan == 4095); }},
        {"an 802.1ad tag alone is a VLAN tag", eth().vlan(30, 0x88a8).ipv6(k6A, k6B).udp(1, 2).bytes(),
         std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.vlan == 30);
             CHECK(p.kind == PacketKind::ipv6);
         }},
        {"QinQ 802.1ad + 802.1Q", eth().vlan(100, 0x88a8).vlan(10).ipv4(k4A, k4B).udp(1, 2).bytes(), Reason::qinq,
         [](const ParsedPacket& p) { CHECK(p.vlan == 100); }},
        {"two 802.1Q tags", eth().vlan(10).vlan(20).ipv4(k4A, k4B).udp(1, 2).bytes(), Reason::qinq, nullptr},
        {"empty frame", Bytes{}, Reason::truncated_ethernet, nullptr},
        {"13 bytes", cut(tcp, 13), Reason::truncated_ethernet, nullptr},
        {"tag cut short", cut(eth().vlan(10).ipv4(k4A, k4B).bytes(), 17), Reason::truncated_vlan, nullptr},
        {"LLDP", eth().ethertype(0x88cc).payload(40).bytes(), Reason::unsupported_ethertype,
         [](const ParsedPacket& p) {
             CHECK(p.kind == PacketKind::other);
             CHECK(p.ethertype == 0x88cc);
             CHECK(p.src_mac == kMacA);
         }},
        {"unknown ethertype behind a tag", eth().vlan(10).ethertype(0x8847).payload(40).bytes(),
         Reason::unsupported_ethertype,
         [](const ParsedPacket& p) {
             CHECK(p.vlan == 10);
             CHECK(p.ethertype == 0x8847);
         }},
    });
}

TEST_CASE("parser: ARP", "[parser]") {
    const Bytes request = Frame().eth(kMacA, kBroadcast).arp(1, kMacA, k4A, kZero, k4B).bytes();
    const Bytes reply = Frame().eth(kMacB, kMacA).arp(2, kMacB, k4B, kMacA, k4A).pad(18).bytes();
    run({
        {"request", request, std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.kind == PacketKind::arp);
             CHECK(p.ethertype == kEtherTypeArp);
             CHECK(p.arp_op == 1);
             CHECK(p.arp_sender_mac == kMacA);
             CHECK(p.arp_sender_ip == k4A);
             CHECK(p.arp_target_ip == k4B);
             CHECK(p.arp_target_ip.family == Family::v4);
         }},
        {"reply, padded to 60 bytes", reply, std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.arp_op == 2);
             CHECK(p.arp_sender_mac == kMacB);
             CHECK(p.arp_sender_ip == k4B);
         }},
        {"tagged request", Frame().eth(kMacA, kBroadcast).vlan(10).arp(1, kMacA, k4A, kZero, k4B).bytes(),
         std::nullopt, [](const ParsedPacket& p) { CHECK(p.vlan == 10); }},
        {"hardware length 5", patched(request, 14 + 4, 5), Reason::truncated_arp, nullptr},
        {"protocol length 16", patched(request, 14 + 5, 16), Reason::truncated_arp, nullptr},
        {"hardware type 6 (IEEE 802)", patched(request, 14 + 1, 6), Reason::truncated_arp, nullptr},
        {"protocol type IPv6", patched(patched(request, 14 + 2, 0x86), 14 + 3, 0xdd), Reason::truncated_arp,
         nullptr},
        {"27 bytes of ARP", cut(request, 14 + 27), Reason::truncated_arp, nullptr},
    });
}

TEST_CASE("parser: IPv4 header", "[parser]") {
    const Bytes tcp = v4({.ttl = 63}).tcp(40000, 443).payload(10).bytes();
    run({
        {"TCP/IPv4", tcp, std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.src == k4A);
             CHECK(p.dst == k4B);
             CHECK(p.src.family == Family::v4);
             CHECK(p.ttl == 63);
             CHECK(p.proto == kIpProtoTcp);
             CHECK(p.l3_offset == 14);
             CHECK(p.l3_length == 50);
             CHECK(p.l4_present);
             CHECK(p.l4_offset == 34);
             CHECK(p.l4_length == 30);
             CHECK_FALSE(p.fragment);
         }},
        {"options are skipped", v4({.options = {7, 7, 4, 0, 0, 0, 0}}).udp(1, 2).bytes(), std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.l4_offset == 42);
             CHECK(p.sport == 1);
         }},
        {"version 6 under the IPv4 ethertype", v4({.version = 6}).udp(1, 2).bytes(), Reason::bad_ipv4_version,
         nullptr},
        {"IHL 4", v4({.ihl = 4}).udp(1, 2).bytes(), Reason::bad_ipv4_ihl, nullptr},
        {"IHL 0", v4({.ihl = 0}).udp(1, 2).bytes(), Reason::bad_ipv4_ihl, nullptr},
        {"IHL 15 past the packet", v4({.ihl = 15}).udp(1, 2).bytes(), Reason::bad_ipv4_ihl, nullptr},
        {"total length below the header", v4({.total_length = 19}).udp(1, 2).bytes(), Reason::bad_ipv4_length,
         nullptr},
        {"total length below IHL*4", v4({.options = {1, 1, 1, 1}, .total_length = 22}).udp(1, 2).bytes(),
         Reason::bad_ipv4_length, nullptr},
        {"total length past the frame", v4({.total_length = 51}).tcp(1, 2).payload(10).bytes(),
         Reason::bad_ipv4_length, nullptr},
        {"19 bytes of IPv4", cut(tcp, 14 + 19), Reason::truncated_ipv4, nullptr},
        {"Ethernet padding after a short packet", v4().udp(1, 2).payload(2).pad(16).bytes(), std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.l3_length == 30);
             CHECK(p.l4_length == 10);
             CHECK(p.payload_length == 2);
         }},
        {"proto 0 (hop-by-hop) in IPv4", v4({.proto = 0}).udp(1, 2).bytes(), Reason::bad_ip_proto, nullptr},
        {"GRE: L4 without ports", v4({.proto = 47}).payload(24).bytes(), std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.proto == 47);
             CHECK(p.l4_present);
             CHECK(p.sport == 0);
             CHECK(p.l4_length == 24);
         }},
        {"ICMPv6 under IPv4: no ICMP parsing", v4({.proto = 58}).payload(4).bytes(), std::nullopt,
         [](const ParsedPacket& p) { CHECK(p.proto == 58); }},
        {"DF alone is not a fragment", v4({.df = true}).udp(1, 2).bytes(), std::nullopt,
         [](const ParsedPacket& p) { CHECK_FALSE(p.fragment); }},
    });
}

TEST_CASE("parser: IPv4 fragments (RFC 1858)", "[parser]") {
    run({
        {"first fragment", v4({.id = 777, .mf = true}).tcp(1234, 80).payload(100).bytes(), std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.fragment);
             CHECK(p.first_fragment);
             CHECK(p.more_fragments);
             CHECK(p.fragment_offset == 0);
             CHECK(p.fragment_id == 777);
             CHECK(p.l4_present);
             CHECK(p.dport == 80);
         }},
        {"middle fragment: no L4", v4({.proto = 6, .id = 777, .frag_offset = 1480, .mf = true}).payload(64).bytes(),
         std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.fragment);
             CHECK_FALSE(p.first_fragment);
             CHECK(p.more_fragments);
             CHECK(p.fragment_offset == 1480);
             CHECK_FALSE(p.l4_present);
             CHECK(p.proto == kIpProtoTcp);
             CHECK(p.sport == 0);
             CHECK(p.l4_offset == 34);
             CHECK(p.l4_length == 64);
         }},
        {"last fragment", v4({.proto = 17, .frag_offset = 2960}).payload(8).bytes(), std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.fragment);
             CHECK_FALSE(p.more_fragments);
             CHECK_FALSE(p.l4_present);
         }},
        {"TCP fragment at offset 8", v4({.proto = 6, .frag_offset = 8, .mf = true}).payload(16).bytes(),
         Reason::fragment_overlap, nullptr},
        {"UDP fragment at offset 8", v4({.proto = 17, .frag_offset = 8}).payload(16).bytes(), std::nullopt,
         [](const ParsedPacket& p) { CHECK_FALSE(p.l4_present); }},
        {"tiny first fragment: 16 bytes of TCP", cut(v4({.mf = true, .total_length = 36}).tcp(1, 2).bytes(), 50),
         Reason::fragment_tiny, nullptr},
        {"tiny first fragment: TCP options cut", v4({.mf = true}).tcp(1, 2, {.data_offset = 8}).bytes(),
         Reason::fragment_tiny, nullptr},
        {"first fragment with a bad data offset", v4({.mf = true}).tcp(1, 2, {.data_offset = 3}).bytes(),
         Reason::bad_tcp_data_offset, nullptr},
        {"tiny first fragment: 4 bytes of UDP", v4({.proto = 17, .mf = true}).payload(4).bytes(),
         Reason::fragment_tiny, nullptr},
        {"tiny first fragment: 4 bytes of ICMP", v4({.proto = 1, .mf = true}).payload(4).bytes(),
         Reason::fragment_tiny, nullptr},
        {"tiny first fragment: 8 bytes of SCTP", v4({.proto = 132, .mf = true}).payload(8).bytes(),
         Reason::fragment_tiny, nullptr},
        {"first UDP fragment: the UDP length counts the datagram",
         v4({.mf = true}).udp(1, 53, {.length = 3000}).payload(1472).bytes(), std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.first_fragment);
             CHECK(p.dport == 53);
             CHECK(p.payload_length == 1472);
         }},
        {"a first fragment of GRE needs no header", v4({.proto = 47, .mf = true}).payload(2).bytes(), std::nullopt,
         nullptr},
    });
}

TEST_CASE("parser: TCP", "[parser]") {
    run({
        {"SYN with options", v4().tcp(40000, 5432, {.seq = 1000, .ack = 0, .flags = kTcpSyn, .window = 29200,
                                                    .options = syn_options(7)})
                                 .bytes(),
         std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.sport == 40000);
             CHECK(p.dport == 5432);
             CHECK(p.tcp_seq == 1000);
             CHECK(p.tcp_ack == 0);
             CHECK(p.tcp_flags == kTcpSyn);
             CHECK(p.tcp_window == 29200);
             CHECK(p.tcp_wscale == 7);
             CHECK(p.payload_length == 0);
             CHECK(p.l4_length == 40);
         }},
        {"ACK with data", v4().tcp(1, 2, {.seq = 0xFFFFFFFF, .ack = 0x80000001, .flags = kTcpAck | kTcpPsh})
                              .payload(100)
                              .bytes(),
         std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.tcp_seq == 0xFFFFFFFFu);
             CHECK(p.tcp_ack == 0x80000001u);
             CHECK(p.tcp_flags == (kTcpAck | kTcpPsh));
             CHECK(p.tcp_wscale == kNoWindowScale);
             CHECK(p.payload_length == 100);
         }},
        {"all eight flag bits", v4().tcp(1, 2, {.flags = 0xFF}).bytes(), std::nullopt,
         [](const ParsedPacket& p) { CHECK(p.tcp_flags == 0xFF); }},
        {"window scale above 14 is capped", v4().tcp(1, 2, {.flags = kTcpSyn, .options = {3, 3, 20}}).bytes(),
         std::nullopt, [](const ParsedPacket& p) { CHECK(p.tcp_wscale == 14); }},
        {"window scale 0", v4().tcp(1, 2, {.flags = kTcpSyn, .options = {1, 3, 3, 0}}).bytes(), std::nullopt,
         [](const ParsedPacket& p) { CHECK(p.tcp_wscale == 0); }},
        {"window scale reported outside SYN too", v4().tcp(1, 2, {.flags = kTcpAck, .options = {3, 3, 2}}).bytes(),
         std::nullopt, [](const ParsedPacket& p) { CHECK(p.tcp_wscale == 2); }},
        {"option length 0 stops the walk", v4().tcp(1, 2, {.flags = kTcpSyn, .options = {8, 0, 3, 3, 7}}).bytes(),
         std::nullopt, [](const ParsedPacket& p) { CHECK(p.tcp_wscale == kNoWindowScale); }},
        {"option length 1 stops the walk", v4().tcp(1, 2, {.flags = kTcpSyn, .options = {8, 1, 3, 3, 7}}).bytes(),
         std::nullopt, [](const ParsedPacket& p) { CHECK(p.tcp_wscale == kNoWindowScale); }},
        {"option past the header stops the walk",
         v4().tcp(1, 2, {.flags = kTcpSyn, .options = {1, 1, 1, 1, 1, 1, 3, 3}}).bytes(), std::nullopt,
         [](const ParsedPacket& p) { CHECK(p.tcp_wscale == kNoWindowScale); }},
        {"option kind alone at the header's end", v4().tcp(1, 2, {.options = {1, 1, 1, 8}}).bytes(), std::nullopt,
         [](const ParsedPacket& p) { CHECK(p.tcp_wscale == kNoWindowScale); }},
        {"a scale before a malformed option is kept",
         v4().tcp(1, 2, {.flags = kTcpSyn, .options = {3, 3, 5, 8, 40}}).bytes(), std::nullopt,
         [](const ParsedPacket& p) { CHECK(p.tcp_wscale == 5); }},
        {"nothing after end-of-list", v4().tcp(1, 2, {.flags = kTcpSyn, .options = {0, 3, 3, 7}}).bytes(),
         std::nullopt, [](const ParsedPacket& p) { CHECK(p.tcp_wscale == kNoWindowScale); }},
        {"window scale with length 4 is not one", v4().tcp(1, 2, {.options = {3, 4, 7, 1}}).bytes(), std::nullopt,
         [](const ParsedPacket& p) { CHECK(p.tcp_wscale == kNoWindowScale); }},
        {"19 bytes of TCP", v4({.proto = 6}).payload(19).bytes(), Reason::truncated_tcp, nullptr},
        {"data offset 4", v4().tcp(1, 2, {.data_offset = 4}).bytes(), Reason::bad_tcp_data_offset, nullptr},
        {"data offset 0", v4().tcp(1, 2, {.data_offset = 0}).payload(20).bytes(), Reason::bad_tcp_data_offset,
         nullptr},
        {"data offset past the segment", v4().tcp(1, 2, {.data_offset = 15}).payload(39).bytes(),
         Reason::bad_tcp_data_offset, nullptr},
        {"data offset 15 exactly filled", v4().tcp(1, 2, {.data_offset = 15}).payload(40).bytes(), std::nullopt,
         [](const ParsedPacket& p) { CHECK(p.payload_length == 0); }},
    });
}

TEST_CASE("parser: UDP and SCTP", "[parser]") {
    run({
        {"UDP", v4().udp(5353, 53).payload(30).bytes(), std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.proto == kIpProtoUdp);
             CHECK(p.sport == 5353);
             CHECK(p.dport == 53);
             CHECK(p.payload_length == 30);
             CHECK(p.l4_length == 38);
         }},
        {"UDP length shorter than the IP payload", v4().udp(1, 2, {.length = 10}).payload(30).bytes(), std::nullopt,
         [](const ParsedPacket& p) { CHECK(p.payload_length == 2); }},
        {"UDP length 7", v4().udp(1, 2, {.length = 7}).payload(30).bytes(), Reason::bad_udp_length, nullptr},
        {"UDP length past the IP payload", v4().udp(1, 2, {.length = 39}).payload(30).bytes(),
         Reason::bad_udp_length, nullptr},
        {"7 bytes of UDP", v4({.proto = 17}).payload(7).bytes(), Reason::truncated_udp, nullptr},
        {"UDP/IPv6", v6().udp(546, 547).payload(5).bytes(), std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.dport == 547);
             CHECK(p.payload_length == 5);
         }},
        {"SCTP", v4().sctp(36412, 38412, 0xdeadbeef).payload(16).bytes(), std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.proto == kIpProtoSctp);
             CHECK(p.sport == 36412);
             CHECK(p.dport == 38412);
             CHECK(p.payload_length == 16);
         }},
        {"SCTP/IPv6", v6().sctp(1, 2).bytes(), std::nullopt, [](const ParsedPacket& p) { CHECK(p.dport == 2); }},
        {"11 bytes of SCTP", v4({.proto = 132}).payload(11).bytes(), Reason::truncated_sctp, nullptr},
    });
}

TEST_CASE("parser: ICMP, and the packet an error quotes", "[parser]") {
    const Bytes quoted_tcp = Frame().ipv4(k4B, k4A, {.ttl = 1}).tcp(443, 40000, {.seq = 5}).payload(20).bytes();
    const Bytes quoted_udp = Frame().ipv4(k4B, k4A).udp(53, 5353).payload(20).bytes();
    const Bytes quoted_echo = Frame().ipv4(k4B, k4A).icmp_echo(8, 0x1234).bytes();
    const Bytes quoted_later_fragment = Frame().ipv4(k4B, k4A, {.proto = 17, .frag_offset = 64}).payload(16).bytes();
    run({
        {"echo request", v4().icmp_echo(8, 0xBEEF, 1).payload(56).bytes(), std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.proto == kIpProtoIcmp);
             CHECK(p.icmp_type == 8);
             CHECK(p.icmp_code == 0);
             CHECK(p.icmp_id == 0xBEEF);
             CHECK_FALSE(p.icmp_error);
             CHECK(p.payload_length == 56);
         }},
        {"echo reply", v4().icmp_echo(0, 7).bytes(), std::nullopt,
         [](const ParsedPacket& p) { CHECK(p.icmp_id == 7); }},
        {"timestamp request: no id", v4().icmp(13, 0, 0x00070000).payload(12).bytes(), std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.icmp_type == 13);
             CHECK(p.icmp_id == 0);
         }},
        {"7 bytes of ICMP", v4({.proto = 1}).payload(7).bytes(), Reason::truncated_icmp, nullptr},
        {"port unreachable quoting TCP", v4().icmp_error(3, 3, cut(quoted_tcp, 28)).bytes(), std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.icmp_error);
             CHECK(p.icmp_type == 3);
             CHECK(p.icmp_code == 3);
             CHECK(p.inner_l3_present);
             CHECK(p.inner_l4_present);
             CHECK(p.inner_src == k4B);
             CHECK(p.inner_dst == k4A);
             CHECK(p.inner_proto == kIpProtoTcp);
             CHECK(p.inner_sport == 443);
             CHECK(p.inner_dport == 40000);
         }},
        {"time exceeded quoting the whole TCP segment", v4().icmp_error(11, 0, quoted_tcp).bytes(), std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.inner_l4_present);
             CHECK(p.inner_dport == 40000);
         }},
        {"quoting UDP", v4().icmp_error(3, 1, quoted_udp).bytes(), std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.inner_proto == kIpProtoUdp);
             CHECK(p.inner_sport == 53);
             CHECK(p.inner_dport == 5353);
         }},
        {"quoting an echo request", v4().icmp_error(11, 0, quoted_echo).bytes(), std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.inner_proto == kIpProtoIcmp);
             CHECK(p.inner_icmp_type == 8);  // which side of the exchange it was (conntrack.hpp)
             CHECK(p.inner_sport == 0x1234);
             CHECK(p.inner_dport == 0x1234);
         }},
        {"quoting only the IP header", v4().icmp_error(3, 1, cut(quoted_tcp, 20)).bytes(), std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.icmp_error);
             CHECK(p.inner_l3_present);
             CHECK_FALSE(p.inner_l4_present);
             CHECK(p.inner_proto == kIpProtoTcp);
             CHECK(p.inner_sport == 0);
         }},
        {"quoting 4 bytes of L4", v4().icmp_error(3, 1, cut(quoted_tcp, 24)).bytes(), std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.inner_l3_present);
             CHECK_FALSE(p.inner_l4_present);
         }},
        {"quoting a cut IP header", v4().icmp_error(3, 1, cut(quoted_tcp, 12)).bytes(), std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.icmp_error);
             CHECK_FALSE(p.inner_l3_present);
             CHECK_FALSE(p.inner_l4_present);
         }},
        {"quoting nothing", v4().icmp(3, 1).bytes(), std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.icmp_error);
             CHECK_FALSE(p.inner_l3_present);
         }},
        {"quoting an IPv6 packet", v4().icmp_error(3, 1, Frame().ipv6(k6B, k6A).udp(1, 2).bytes()).bytes(),
         std::nullopt, [](const ParsedPacket& p) { CHECK_FALSE(p.inner_l3_present); }},
        {"quoting a later fragment", v4().icmp_error(3, 1, quoted_later_fragment).bytes(), std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.inner_l3_present);
             CHECK(p.inner_proto == kIpProtoUdp);
             CHECK_FALSE(p.inner_l4_present);
         }},
        {"parameter problem, source quench, redirect are errors too",
         v4().icmp_error(12, 0, cut(quoted_udp, 28)).bytes(), std::nullopt,
         [](const ParsedPacket& p) { CHECK(p.icmp_error); }},
    });
    for (uint8_t type : {4, 5})
        run({{"other error types", v4().icmp_error(type, 0, quoted_udp).bytes(), std::nullopt,
              [](const ParsedPacket& p) { CHECK(p.inner_l4_present); }}});
}

TEST_CASE("parser: ICMPv6 echo and errors", "[parser]") {
    const Bytes quoted_tcp = Frame().ipv6(k6B, k6A).tcp(443, 40000).payload(10).bytes();
    run({
        {"echo request", v6().icmp_echo(128, 0xABCD, 3).payload(8).bytes(), std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.proto == kIpProtoIcmpv6);
             CHECK(p.icmp_type == 128);
             CHECK(p.icmp_id == 0xABCD);
             CHECK_FALSE(p.nd);
         }},
        {"echo reply", v6().icmp_echo(129, 42).bytes(), std::nullopt,
         [](const ParsedPacket& p) { CHECK(p.icmp_id == 42); }},
        {"ICMPv4 type 8 under IPv6 is not an echo", v6().icmp(8, 0, 0x00010000).bytes(), std::nullopt,
         [](const ParsedPacket& p) { CHECK(p.icmp_id == 0); }},
        {"7 bytes of ICMPv6", v6({.next_header = 58}).payload(7).bytes(), Reason::truncated_icmp, nullptr},
        {"unreachable quoting TCP", v6().icmp_error(1, 4, quoted_tcp).bytes(), std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.icmp_error);
             CHECK(p.inner_l3_present);
             CHECK(p.inner_l4_present);
             CHECK(p.inner_src == k6B);
             CHECK(p.inner_dst == k6A);
             CHECK(p.inner_proto == kIpProtoTcp);
             CHECK(p.inner_sport == 443);
             CHECK(p.inner_dport == 40000);
         }},
        {"packet too big quoting dst-options + UDP",
         v6().icmp_error(2, 0, Frame().ipv6(k6B, k6A).ipv6_ext(60, 16).udp(53, 9).bytes()).bytes(), std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.inner_proto == kIpProtoUdp);
             CHECK(p.inner_l4_present);
             CHECK(p.inner_dport == 9);
         }},
        {"time exceeded quoting an echo request",
         v6().icmp_error(3, 0, Frame().ipv6(k6B, k6A).icmp_echo(128, 99).bytes()).bytes(), std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.inner_proto == kIpProtoIcmpv6);
             CHECK(p.inner_sport == 99);
             CHECK(p.inner_dport == 99);
         }},
        {"quoting a cut extension header",
         v6().icmp_error(4, 0, cut(Frame().ipv6(k6B, k6A).ipv6_ext(60, 16).udp(1, 2).bytes(), 50)).bytes(),
         std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.inner_l3_present);
             CHECK(p.inner_proto == kIpProtoDstOpts);
             CHECK_FALSE(p.inner_l4_present);
         }},
        {"quoting a later fragment",
         v6().icmp_error(1, 0, Frame().ipv6(k6B, k6A).ipv6_frag({.offset = 8, .id = 1}).udp(1, 2).bytes()).bytes(),
         std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.inner_proto == kIpProtoUdp);
             CHECK_FALSE(p.inner_l4_present);
         }},
        {"quoting 39 bytes", v6().icmp_error(1, 0, cut(quoted_tcp, 39)).bytes(), std::nullopt,
         [](const ParsedPacket& p) { CHECK_FALSE(p.inner_l3_present); }},
        {"quoting 44 bytes", v6().icmp_error(1, 0, cut(quoted_tcp, 44)).bytes(), std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.inner_l3_present);
             CHECK_FALSE(p.inner_l4_present);
         }},
    });
}

TEST_CASE("parser: IPv6 neighbour discovery", "[parser]") {
    const Frame nd = Frame().eth(kMacA, mac("33:33:ff:00:00:11")).ipv6(k6A, k6SolicitedB, {.hop_limit = 255});
    run({
        {"NS with a source link-layer option", Frame(nd).nd_ns(k6B, kMacA).bytes(), std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.nd);
             CHECK(p.icmp_type == 135);
             CHECK(p.ttl == 255);
             CHECK(p.nd_target == k6B);
             CHECK(p.nd_target.family == Family::v6);
             CHECK(p.nd_has_ll);
             CHECK(p.nd_ll == kMacA);
         }},
        {"NS for duplicate address detection: no option",
         Frame().eth(kMacA, kBroadcast).ipv6(k6Unspecified, k6SolicitedB).nd_ns(k6A).bytes(), std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.nd);
             CHECK(p.src == k6Unspecified);
             CHECK(p.nd_target == k6A);
             CHECK_FALSE(p.nd_has_ll);
         }},
        {"NS: an unknown option, then the link-layer one",
         Frame(nd).nd_ns(k6B).raw({14, 1, 0, 0, 0, 0, 0, 0}).nd_ll_option(1, kMacB).bytes(), std::nullopt,
         [](const ParsedPacket& p) { CHECK(p.nd_ll == kMacB); }},
        {"NS: the first link-layer option wins", Frame(nd).nd_ns(k6B, kMacA).nd_ll_option(1, kMacB).bytes(),
         std::nullopt, [](const ParsedPacket& p) { CHECK(p.nd_ll == kMacA); }},
        {"NS: a target link-layer option is not the source's", Frame(nd).nd_ns(k6B).nd_ll_option(2, kMacB).bytes(),
         std::nullopt, [](const ParsedPacket& p) { CHECK_FALSE(p.nd_has_ll); }},
        {"NS: option length 0 ends the walk", Frame(nd).nd_ns(k6B).raw({1, 0, 1, 2, 3, 4, 5, 6}).nd_ll_option(1, kMacB).bytes(),
         std::nullopt, [](const ParsedPacket& p) { CHECK_FALSE(p.nd_has_ll); }},
        {"NS: option past the message", Frame(nd).nd_ns(k6B).raw({1, 2, 1, 2, 3, 4, 5, 6}).bytes(), std::nullopt,
         [](const ParsedPacket& p) { CHECK_FALSE(p.nd_has_ll); }},
        {"NS: a 16-byte link-layer option is not Ethernet's",
         Frame(nd).nd_ns(k6B).raw({1, 2, 1, 2, 3, 4, 5, 6, 0, 0, 0, 0, 0, 0, 0, 0}).bytes(), std::nullopt,
         [](const ParsedPacket& p) { CHECK_FALSE(p.nd_has_ll); }},
        {"NS: target cut", Frame(nd).icmp(135, 0).payload(12).bytes(), Reason::truncated_icmp, nullptr},
        {"NA with a target link-layer option", Frame(nd).nd_na(k6A, kMacA).bytes(), std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.icmp_type == 136);
             CHECK(p.nd_target == k6A);
             CHECK(p.nd_ll == kMacA);
         }},
        {"NA: a source link-layer option is not the target's", Frame(nd).nd_na(k6A).nd_ll_option(1, kMacA).bytes(),
         std::nullopt, [](const ParsedPacket& p) { CHECK_FALSE(p.nd_has_ll); }},
        {"NA: target cut", Frame(nd).icmp(136, 0).payload(15).bytes(), Reason::truncated_icmp, nullptr},
        {"RS with a source link-layer option", Frame(nd).icmp(133, 0).nd_ll_option(1, kMacA).bytes(), std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.nd);
             CHECK(p.nd_ll == kMacA);
         }},
        {"RA with a source link-layer option", Frame(nd).icmp(134, 0).payload(8, 0).nd_ll_option(1, kMacB).bytes(),
         std::nullopt, [](const ParsedPacket& p) { CHECK(p.nd_ll == kMacB); }},
        {"RA cut before its options", Frame(nd).icmp(134, 0).payload(4).bytes(), std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.nd);
             CHECK_FALSE(p.nd_has_ll);
         }},
        {"redirect: target and its link-layer option",
         Frame(nd).icmp(137, 0).raw(Bytes(k6B.bytes.begin(), k6B.bytes.end())).payload(16, 0).nd_ll_option(2, kMacB).bytes(),
         std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.nd_target == k6B);
             CHECK(p.nd_ll == kMacB);
         }},
    });
}

TEST_CASE("parser: IPv6 header and extension-header chain", "[parser]") {
    const Bytes tcp = v6({.hop_limit = 17}).tcp(40000, 443).payload(10).bytes();
    auto chain = [](int n) {
        Frame f = v6();
        for (int i = 0; i < n; ++i) f.ipv6_ext(i % 2 ? 43 : 60);
        return f.tcp(1, 2).bytes();
    };
    run({
        {"TCP/IPv6", tcp, std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.kind == PacketKind::ipv6);
             CHECK(p.src == k6A);
             CHECK(p.dst == k6B);
             CHECK(p.ttl == 17);
             CHECK(p.proto == kIpProtoTcp);
             CHECK(p.l3_offset == 14);
             CHECK(p.l3_length == 70);
             CHECK(p.l4_offset == 54);
             CHECK(p.l4_length == 30);
             CHECK(p.dport == 443);
             CHECK(p.payload_length == 10);
         }},
        {"version 4 under the IPv6 ethertype", v6({.version = 4}).udp(1, 2).bytes(), Reason::bad_ipv6_version,
         nullptr},
        {"39 bytes of IPv6", cut(tcp, 14 + 39), Reason::truncated_ipv6, nullptr},
        {"payload length past the frame", v6({.payload_length = 31}).tcp(1, 2).payload(10).bytes(),
         Reason::bad_ipv6_length, nullptr},
        {"payload length 0 (jumbogram)", v6({.payload_length = 0}).tcp(1, 2).bytes(), Reason::bad_ipv6_length,
         nullptr},
        {"Ethernet padding after a short packet", v6().udp(1, 2).pad(20).bytes(), std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.l3_length == 48);
             CHECK(p.l4_length == 8);
         }},
        {"hop-by-hop first", v6().ipv6_ext(0).udp(1, 2).bytes(), std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.proto == kIpProtoUdp);
             CHECK(p.l4_offset == 62);
         }},
        {"hop-by-hop second", v6().ipv6_ext(60).ipv6_ext(0).udp(1, 2).bytes(), Reason::bad_ip_proto, nullptr},
        {"routing, AH, destination options, then TCP",
         v6().ipv6_ext(43, 24).ipv6_ext(51, 12).ipv6_ext(60, 8).tcp(1, 2).bytes(), std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.proto == kIpProtoTcp);
             CHECK(p.l4_offset == 54 + 24 + 12 + 8);
             CHECK(p.l4_present);
         }},
        {"mobility header, then no next header", v6().ipv6_ext(135, 16).protocol(59).bytes(), std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.proto == kIpProtoNoNext);
             CHECK(p.l4_present);
         }},
        {"ESP: no ports", v6({.next_header = 50}).payload(40).bytes(), std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.proto == kIpProtoEsp);
             CHECK(p.sport == 0);
             CHECK(p.l4_length == 40);
         }},
        {"8 extension headers", chain(8), std::nullopt,
         [](const ParsedPacket& p) { CHECK(p.l4_offset == 54 + 64); }},
        {"9 extension headers", chain(9), Reason::ipv6_ext_chain_too_long, nullptr},
        {"extension header length past the payload",
         v6({.payload_length = 16}).ipv6_ext(60, 24).bytes(), Reason::truncated_ipv6_ext, nullptr},
        {"extension header announced, 1 byte there", v6({.next_header = 43}).payload(1).bytes(),
         Reason::truncated_ipv6_ext, nullptr},
        {"AH cut", v6({.next_header = 51, .payload_length = 8}).raw({6, 2}).payload(14).bytes(),
         Reason::truncated_ipv6_ext, nullptr},
        {"TCP cut after the chain", cut(v6({.payload_length = 8 + 19}).ipv6_ext(60).tcp(1, 2).bytes(), 14 + 40 + 27),
         Reason::truncated_tcp, nullptr},
    });
}

TEST_CASE("parser: where a fragment's data starts, and the span the fragment table records", "[parser]") {
    // RFC 8200 §4.5: the fragmentable part starts right after the Fragment header, extension headers
    // included.  FragmentSpan::of used to measure from the L4 header, so a first fragment whose
    // Fragment header is followed by destination options was recorded short by them: a later fragment
    // overlapping those bytes passed, and the datagram never completed.
    ParsedPacket p;
    const Bytes v4_first = v4({.id = 7, .mf = true}).tcp(1234, 80).payload(100).bytes();
    REQUIRE_FALSE(parse(v4_first, p));
    CHECK(p.fragment_data == 34);
    CHECK(FragmentSpan::of(p).length == 120);
    const Bytes v6_first = v6().ipv6_frag({.more = true, .id = 9}).ipv6_ext(60, 16).tcp(1234, 80).payload(100).bytes();
    REQUIRE_FALSE(parse(v6_first, p));
    CHECK(p.l4_offset == 54 + 8 + 16);
    CHECK(p.fragment_data == 54 + 8);
    const FragmentSpan first = FragmentSpan::of(p);
    CHECK(first.offset == 0);
    CHECK(first.length == 16 + 20 + 100);  // the options count, like the TCP header and the data
    CHECK(first.more);
    const Bytes v6_later = v6().ipv6_frag({.offset = 136, .id = 9}).protocol(60).payload(24).bytes();
    REQUIRE_FALSE(parse(v6_later, p));
    CHECK(p.fragment_data == 54 + 8);
    CHECK(FragmentSpan::of(p).offset == 136);
    CHECK(FragmentSpan::of(p).length == 24);
}

TEST_CASE("parser: IPv6 fragments (RFC 7112)", "[parser]") {
    run({
        {"destination options + fragment header + TCP, first fragment",
         v6().ipv6_ext(60).ipv6_frag({.offset = 0, .more = true, .id = 0xA1B2C3D4}).tcp(1234, 22).payload(100).bytes(),
         std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.fragment);
             CHECK(p.first_fragment);
             CHECK(p.more_fragments);
             CHECK(p.fragment_id == 0xA1B2C3D4u);
             CHECK(p.proto == kIpProtoTcp);
             CHECK(p.l4_present);
             CHECK(p.l4_offset == 54 + 16);
             CHECK(p.fragment_data == 54 + 16);  // the destination options come before the Fragment header
             CHECK(p.dport == 22);
         }},
        {"later fragment: no L4", v6().ipv6_frag({.offset = 1232, .more = true, .id = 9}).udp(1, 2).payload(24).bytes(),
         std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.fragment);
             CHECK_FALSE(p.first_fragment);
             CHECK(p.fragment_offset == 1232);
             CHECK(p.fragment_id == 9);
             CHECK_FALSE(p.l4_present);
             CHECK(p.proto == kIpProtoUdp);
             CHECK(p.sport == 0);
             CHECK(p.l4_offset == 62);
             CHECK(p.l4_length == 32);
         }},
        {"last fragment", v6().ipv6_frag({.offset = 2464, .id = 9}).payload(8).bytes(), std::nullopt,
         [](const ParsedPacket& p) {
             CHECK(p.fragment);
             CHECK_FALSE(p.more_fragments);
         }},
        {"atomic fragment: a whole packet (RFC 6946)", v6().ipv6_frag({.id = 5}).udp(1, 2).bytes(), std::nullopt,
         [](const ParsedPacket& p) {
             CHECK_FALSE(p.fragment);
             CHECK(p.l4_present);
             CHECK(p.dport == 2);
         }},
        {"first fragment whose TCP header is cut", v6().ipv6_frag({.more = true}).protocol(6).payload(16).bytes(),
         Reason::ipv6_l4_not_in_first, nullptr},
        {"first fragment whose TCP options are cut",
         v6().ipv6_frag({.more = true}).tcp(1, 2, {.data_offset = 10}).bytes(), Reason::ipv6_l4_not_in_first,
         nullptr},
        {"first fragment whose UDP header is cut", v6().ipv6_frag({.more = true}).protocol(17).payload(6).bytes(),
         Reason::ipv6_l4_not_in_first, nullptr},
        {"first fragment whose ICMPv6 header is cut", v6().ipv6_frag({.more = true}).protocol(58).payload(4).bytes(),
         Reason::ipv6_l4_not_in_first, nullptr},
        {"first fragment whose chain is cut after the fragment header",
         v6({.payload_length = 8 + 8}).ipv6_frag({.more = true}).ipv6_ext(60, 16).bytes(),
         Reason::ipv6_l4_not_in_first, nullptr},
        {"first fragment ending on the fragment header", v6().ipv6_frag({.more = true}).protocol(60).bytes(),
         Reason::ipv6_l4_not_in_first, nullptr},
        {"a chain cut before the fragment header",
         v6({.payload_length = 8}).ipv6_ext(60, 16).ipv6_frag({.more = true}).tcp(1, 2).bytes(),
         Reason::truncated_ipv6_ext, nullptr},
        {"fragment header cut", v6({.next_header = 44}).payload(7).bytes(), Reason::truncated_ipv6_ext, nullptr},
        {"two fragment headers", v6().ipv6_frag({.more = true, .id = 1}).ipv6_frag({.offset = 8, .id = 2}).udp(1, 2).bytes(),
         Reason::ipv6_fragment_repeated, nullptr},
        {"first fragment with ESP needs no header", v6().ipv6_frag({.more = true}).protocol(50).payload(2).bytes(),
         std::nullopt, nullptr},
    });
}

TEST_CASE("parser: every field a frame does not carry is reset", "[parser]") {
    ParsedPacket p;
    REQUIRE_FALSE(parse_both(v4().icmp_error(3, 3, Frame().ipv4(k4B, k4A).tcp(1, 2).bytes()).bytes(), p));
    REQUIRE(p.inner_l4_present);
    REQUIRE_FALSE(parse_both(v6().ipv6_frag({.more = true, .id = 3})
                                  .tcp(7, 8, {.seq = 9, .flags = kTcpSyn, .options = {3, 3, 4}})
                                  .bytes(),
                              p));
    REQUIRE(p.tcp_wscale == 4);
    REQUIRE_FALSE(parse_both(Frame().eth(kMacA, kBroadcast).arp(1, kMacA, k4A, kZero, k4B).bytes(), p));
    CHECK(p.kind == PacketKind::arp);
    CHECK_FALSE(p.l4_present);
    CHECK_FALSE(p.fragment);
    CHECK(p.fragment_id == 0);
    CHECK(p.sport == 0);
    CHECK(p.tcp_seq == 0);
    CHECK(p.tcp_wscale == kNoWindowScale);
    CHECK_FALSE(p.icmp_error);
    CHECK_FALSE(p.inner_l4_present);
    CHECK(p.src == IpAddr{});
    CHECK(p.l3_length == 0);
    REQUIRE(parse_both(Bytes(10, 0), p) == Reason::truncated_ethernet);
    CHECK(p.kind == PacketKind::other);
    CHECK(p.arp_op == 0);
}

TEST_CASE("parser: the established fast path's AckSegment", "[parser]") {
    // parse_both() checks every frame of these tests against the reference (ack_segment_ref.hpp); here,
    // which frames it takes, and that an AckSegment written over another one keeps nothing of it.
    AckSegment a;
    const Bytes tagged_ack =
        eth().vlan(10).ipv4(k4A, k4B).tcp(40000, 5432, {.seq = 7, .ack = 9, .flags = kTcpAck | kTcpPsh, .window = 512,
                                                        .options = {1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2}})
            .payload(30)
            .bytes();
    REQUIRE(parse_ack_segment(Bytes(v6().tcp(1, 2, {.flags = kTcpAck}).bytes()), a) == false);
    REQUIRE(parse_ack_segment(tagged_ack, a));
    CHECK(a.vlan == 10);
    CHECK(a.src == k4A);
    CHECK(a.dst == k4B);
    CHECK(a.src_mac == kMacA);
    CHECK(a.dst_mac == kMacB);
    CHECK(a.sport == 40000);
    CHECK(a.dport == 5432);
    CHECK(a.tcp_seq == 7);
    CHECK(a.tcp_ack == 9);
    CHECK(a.tcp_window == 512);
    CHECK(a.tcp_flags == (kTcpAck | kTcpPsh));
    CHECK(a.payload_length == 30);
    CHECK(a.l3_length == 20 + 32 + 30);
    ParsedPacket p;
    REQUIRE_FALSE(parse_both(tagged_ack, p));
    REQUIRE(parse_ack_segment(v4().tcp(1, 2, {.flags = kTcpAck}).bytes(), a));  // untagged, over the tagged one
    CHECK(a.vlan == 0);
    CHECK(a.payload_length == 0);
    const auto refused = [&](const char* what, const Bytes& frame) {
        INFO(what);
        CHECK_FALSE(parse_ack_segment(frame, a));
        CHECK_FALSE(parse_both(frame, p));  // each of them parses: the fast path leaves it to the general one
    };
    refused("SYN", v4().tcp(1, 2, {.flags = kTcpSyn}).bytes());
    refused("SYN-ACK", v4().tcp(1, 2, {.flags = kTcpSyn | kTcpAck}).bytes());
    refused("FIN-ACK", v4().tcp(1, 2, {.flags = kTcpFin | kTcpAck}).bytes());
    refused("RST-ACK", v4().tcp(1, 2, {.flags = kTcpRst | kTcpAck}).bytes());
    refused("no ACK", v4().tcp(1, 2, {.flags = kTcpPsh}).bytes());
    refused("IPv4 options", v4({.options = {1, 1, 1, 1}}).tcp(1, 2, {.flags = kTcpAck}).bytes());
    refused("first fragment", v4({.mf = true}).tcp(1, 2, {.flags = kTcpAck}).bytes());
    refused("UDP", v4().udp(1, 2).bytes());
}

TEST_CASE("parser: truncation at every byte of a valid frame is a drop, never an overread", "[parser]") {
    const std::vector<std::pair<const char*, Bytes>> frames = {
        {"TCP/IPv4 with options",
         v4({.options = {1, 1, 1, 0}}).tcp(40000, 443, {.flags = kTcpSyn, .options = syn_options(7)}).payload(20).bytes()},
        {"TCP/IPv6 behind destination options and a fragment header",
         v6().ipv6_ext(60, 16).ipv6_frag({.more = true, .id = 77}).tcp(1, 2, {.options = syn_options(3)}).payload(8).bytes()},
        {"VLAN-tagged UDP", eth().vlan(10).ipv4(k4A, k4B).udp(5353, 53).payload(16).bytes()},
        {"ICMP error quoting TCP", v4().icmp_error(3, 3, Frame().ipv4(k4B, k4A).tcp(443, 40000).bytes()).bytes()},
        {"NS with a link-layer option", Frame().eth(kMacA, kBroadcast).ipv6(k6A, k6SolicitedB).nd_ns(k6B, kMacA).bytes()},
    };
    for (const auto& [name, frame] : frames) {
        INFO(name);
        ParsedPacket p;
        REQUIRE_FALSE(parse(frame, p));
        size_t drops = 0;
        for (size_t n = 0; n < frame.size(); ++n) {
            const Bytes truncated(frame.begin(), frame.begin() + static_cast<ptrdiff_t>(n));  // its own allocation
            const auto r = parse_both(truncated, p);
            if (r) ++drops;
            else FAIL_CHECK("parsed at " << n << " of " << frame.size() << " bytes");
        }
        CHECK(drops == frame.size());
    }
}

// Cut the IP packet itself and make its length fields agree, so that every inner layer meets the end.
TEST_CASE("parser: IP packets cut at every byte with honest lengths stay within the frame", "[parser]") {
    const std::vector<Bytes> frames = {
        v4().tcp(40000, 443, {.flags = kTcpSyn, .options = syn_options(7)}).bytes(),
        v4({.mf = true}).tcp(1, 2).payload(8).bytes(),
        v4().icmp_error(3, 3, Frame().ipv4(k4B, k4A).tcp(443, 40000).bytes()).bytes(),
        v6().ipv6_ext(60, 16).ipv6_frag({.more = true, .id = 77}).tcp(1, 2).bytes(),
        v6().ipv6_ext(0).ipv6_ext(51, 16).udp(1, 2).bytes(),
        v6().icmp_error(1, 0, Frame().ipv6(k6B, k6A).ipv6_ext(60).udp(1, 2).bytes()).bytes(),
        v6().nd_ns(k6B, kMacA).bytes(),
    };
    size_t parsed = 0, dropped = 0;
    for (const Bytes& frame : frames) {
        const bool is_v6 = frame[12] == 0x86;
        for (size_t n = 14 + (is_v6 ? 41 : 20); n < frame.size(); ++n) {
            Bytes truncated(frame.begin(), frame.begin() + static_cast<ptrdiff_t>(n));
            const size_t length = is_v6 ? n - 14 - 40 : n - 14;
            truncated[14 + (is_v6 ? 4 : 2)] = static_cast<uint8_t>(length >> 8);
            truncated[14 + (is_v6 ? 5 : 3)] = static_cast<uint8_t>(length);
            ParsedPacket p;
            if (parse_both(truncated, p)) {
                ++dropped;
            } else {
                ++parsed;
                check_within(p, n);
            }
        }
    }
    CHECK(dropped > 0);
    CHECK(parsed > 0);  // quoted packets cut short still parse
}

TEST_CASE("parser: random mutations of valid frames never crash", "[parser]") {
    const std::vector<Bytes> bases = {
        v4({.options = {1, 1, 1, 0}}).tcp(40000, 443, {.flags = kTcpSyn, .options = syn_options(7)}).payload(20).bytes(),
        v4({.id = 5, .mf = true}).udp(1, 2, {.length = 900}).payload(64).bytes(),
        eth().vlan(10).ipv4(k4A, k4B).sctp(1, 2).payload(8).bytes(),
        eth().vlan(10, 0x88a8).vlan(20).ipv4(k4A, k4B).udp(1, 2).bytes(),
        v4().icmp_error(3, 3, Frame().ipv4(k4B, k4A).tcp(443, 40000).bytes()).bytes(),
        v4().icmp_echo(8, 1).payload(16).bytes(),
        Frame().eth(kMacA, kBroadcast).arp(1, kMacA, k4A, kZero, k4B).pad(18).bytes(),
        v6().ipv6_ext(0).ipv6_ext(60, 16).ipv6_frag({.more = true, .id = 77}).tcp(1, 2, {.options = syn_options(3)}).bytes(),
        v6().ipv6_ext(43, 16).ipv6_ext(51, 12).udp(1, 2).payload(8).bytes(),
        v6().icmp_error(1, 0, Frame().ipv6(k6B, k6A).ipv6_ext(60).tcp(1, 2).bytes()).bytes(),
        v6().nd_ns(k6B, kMacA).bytes(),
        v6().icmp(134, 0).payload(8).nd_ll_option(1, kMacB).bytes(),
        // the parser's shortcut (parse_common): mutations at its every check
        eth().vlan(10).ipv4(k4A, k4B).tcp(40000, 443, {.flags = kTcpAck}).bytes(),
        v4().tcp(40000, 443, {.flags = kTcpAck, .options = syn_options(7)}).payload(6).bytes(),
        eth().vlan(10).ipv4(k4A, k4B).udp(5353, 53).payload(16).bytes(),
    };
    std::mt19937 rng(20240601);
    size_t parsed = 0;
    for (int i = 0; i < 20000; ++i) {
        Bytes frame = bases[rng() % bases.size()];
        const int flips = 1 + static_cast<int>(rng() % 4);
        for (int k = 0; k < flips; ++k) {
            const size_t hot = std::min<size_t>(frame.size(), 96);  // headers live up front
            frame[rng() % hot] = static_cast<uint8_t>(rng());
        }
        if (rng() % 2) frame.resize(rng() % (frame.size() + 1));
        const Bytes exact(frame.begin(), frame.end());
        ParsedPacket p;
        if (!parse_both(exact, p)) {
            ++parsed;
            check_within(p, exact.size());
        }
    }
    CHECK(parsed > 0);
}
