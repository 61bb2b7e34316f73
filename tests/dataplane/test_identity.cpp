// Identity and SpoofGuard, table-driven: one policy, many parsed packets on workload and uplink ports,
// each with the verdict, reason and identity SpoofGuard must give.  The flat identity tables are also
// checked against the reference, RuleSet::resolve.
#include <catch2/catch.hpp>

#include <random>
#include <string>

#include <fmt/format.h>

#include "dataplane/identity.hpp"
#include "rules/policy_loader.hpp"

using namespace tagwall::dataplane;
using tagwall::rules::IpAddr;
using tagwall::rules::kExternal;
using tagwall::rules::RuleSet;

namespace {

const char* const kPolicy = R"(version: 1
segments:
  - {name: outside, vlan: 0}
  - {name: web, vlan: 10}
  - {name: db,  vlan: 30}
endpoints:
  - {name: web-1, segment: web, ip: [198.18.10.11, "2001:db8:10::11"], mac: "52:54:00:00:10:11", tags: {tier: web}}
  - {name: web-2, segment: web, ip: [198.18.10.12, "2001:db8:10::12"], tags: {tier: web}}
  - {name: web-3, segment: web, ip: [198.18.10.13], mac: "52:54:00:00:10:13", tags: {tier: web}}
  - {name: db-1,  segment: db,  ip: [198.18.30.11, "2001:db8:30::11"], mac: "52:54:00:00:30:11", tags: {tier: db}}
groups:
  web:      {tags: {tier: web}}
  db:       {tags: {tier: db}}
  admins:   {cidr: [192.0.2.0/24, "2001:db8:ad::/48"]}
  internet: {cidr: ["0.0.0.0/0", "::/0"]}
rules:
  - {id: web-in, from: internet, to: web, action: allow}
  - {id: web-db, from: web, to: db, action: allow}
  - {id: admin, from: admins, to: any, action: allow}
default: drop
)";

constexpr Mac kWeb1Mac{0x52, 0x54, 0x00, 0x00, 0x10, 0x11};
constexpr Mac kWeb3Mac{0x52, 0x54, 0x00, 0x00, 0x10, 0x13};
constexpr Mac kDb1Mac{0x52, 0x54, 0x00, 0x00, 0x30, 0x11};
constexpr Mac kStrangerMac{0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee};
constexpr Mac kRouterMac{0x00, 0x00, 0x5e, 0x00, 0x01, 0x01};
// fe80::5054:ff:fe00:1011, the EUI-64 link-local of web-1's MAC, and of web-3's and a stranger's.
constexpr const char* kWeb1LinkLocal = "fe80::5054:ff:fe00:1011";
constexpr const char* kWeb3LinkLocal = "fe80::5054:ff:fe00:1013";
constexpr const char* kStrangerLinkLocal = "fe80::aa:bbff:fecc:ddee";

constexpr uint8_t kTcp = 6, kUdp = 17, kIcmp6 = 58;
constexpr uint8_t kRS = 133, kRA = 134, kNS = 135, kNA = 136, kMldReport = 131, kMld2Report = 143,
                  kEchoRequest6 = 128;

IpAddr ip(const char* text) {
    const auto a = IpAddr::parse(text);
    if (!a) FAIL("bad address in test: " << text);
    return *a;
}

ParsedPacket l3(uint16_t vlan, Mac src_mac, const char* src, const char* dst, uint8_t proto) {
    ParsedPacket p;
    p.vlan = vlan;
    p.tagged = vlan != 0;
    p.src_mac = src_mac;
    p.src = ip(src);
    p.dst = ip(dst);
    p.kind = p.src.family == tagwall::rules::Family::v4 ? PacketKind::ipv4 : PacketKind::ipv6;
    p.ethertype = p.kind == PacketKind::ipv4 ? 0x0800 : 0x86dd;
    p.proto = proto;
    p.l4_present = true;
    return p;
}

ParsedPacket tcp(uint16_t vlan, Mac mac, const char* src, const char* dst) {
    auto p = l3(vlan, mac, src, dst, kTcp);
    p.sport = 40000;
    p.dport = 443;
    p.tcp_flags = kTcpSyn;
    return p;
}

ParsedPacket udp(uint16_t vlan, Mac mac, const char* src, const char* dst, uint16_t sport, uint16_t dport) {
    auto p = l3(vlan, mac, src, dst, kUdp);
    p.sport = sport;
    p.dport = dport;
    return p;
}

ParsedPacket icmp6(uint16_t vlan, Mac mac, const char* src, const char* dst, uint8_t type) {
    auto p = l3(vlan, mac, src, dst, kIcmp6);
    p.icmp_type = type;
    return p;
}

// ND message; `target` may be nullptr (RS/RA); `ll` is the link-layer option when given.
ParsedPacket nd(uint16_t vlan, Mac mac, const char* src, const char* dst, uint8_t type, const char* target,
                const Mac* ll = nullptr) {
    auto p = icmp6(vlan, mac, src, dst, type);
    p.nd = true;
    if (target) p.nd_target = ip(target);
    if (ll) {
        p.nd_has_ll = true;
        p.nd_ll = *ll;
    }
    return p;
}

ParsedPacket arp(uint16_t vlan, Mac eth_src, uint16_t op, Mac sender_mac, const char* sender_ip, const char* target_ip) {
    ParsedPacket p;
    p.vlan = vlan;
    p.tagged = vlan != 0;
    p.src_mac = eth_src;
    p.ethertype = 0x0806;
    p.kind = PacketKind::arp;
    p.arp_op = op;
    p.arp_sender_mac = sender_mac;
    p.arp_sender_ip = ip(sender_ip);
    p.arp_target_ip = ip(target_ip);
    return p;
}

std::shared_ptr<const RuleSet> compile(const std::string& yaml) {
    auto r = tagwall::rules::load_policy_text(yaml, "t.yaml");
    if (!r.policy) FAIL(r.diagnostics.items().front().str());
    return RuleSet::compile(*r.policy);
}

std::string endpoint_name(const RuleSet& rs, uint32_t e) { return e == kExternal ? "external" : rs.endpoints().at(e).name; }

struct Case {
    const char* what;
    PortRole role;
    ParsedPacket packet;
    bool ok;
    Reason reason;         // when !ok
    const char* endpoint;  // when ok: the source's endpoint name, or "external"
    bool infrastructure_only = false;
};

constexpr auto W = PortRole::workload;
constexpr auto U = PortRole::uplink;
constexpr Reason kOk = Reason::rule;  // placeholder in the table: not compared when ok

}  // namespace

TEST_CASE("SpoofGuard: IP sources on workload and uplink ports", "[identity]") {
    const auto rs = compile(kPolicy);
    const IdentityTable table(*rs);
    const Case cases[] = {
        // bound sources
        {"bound v4 source, its MAC, its segment", W, tcp(10, kWeb1Mac, "198.18.10.11", "198.18.30.11"), true, kOk, "web-1"},
        {"bound v6 source, its MAC, its segment", W, tcp(10, kWeb1Mac, "2001:db8:10::11", "2001:db8:30::11"), true, kOk, "web-1"},
        {"bound source, another workload's MAC", W, tcp(10, kWeb3Mac, "198.18.10.11", "198.18.30.11"), false, Reason::spoofed_mac, nullptr},
        {"bound source, a stranger's MAC", W, tcp(10, kStrangerMac, "2001:db8:10::11", "2001:db8:30::11"), false, Reason::spoofed_mac, nullptr},
        {"right IP and MAC, wrong segment (vlan 30)", W, tcp(30, kWeb1Mac, "198.18.10.11", "198.18.30.11"), false, Reason::spoofed_ip, nullptr},
        {"right IP and MAC, untagged", W, tcp(0, kWeb1Mac, "198.18.10.11", "198.18.30.11"), false, Reason::spoofed_ip, nullptr},
        {"unbound v4 source on a workload port", W, tcp(10, kStrangerMac, "198.18.10.99", "198.18.30.11"), false, Reason::spoofed_ip, nullptr},
        {"unbound v6 source on a workload port", W, tcp(10, kWeb1Mac, "2001:db8:10::99", "2001:db8:30::11"), false, Reason::spoofed_ip, nullptr},
        {"another segment's endpoint address on a workload port", W, tcp(10, kDb1Mac, "198.18.30.11", "198.18.10.11"), false, Reason::spoofed_ip, nullptr},
        {"unknown VLAN", W, tcp(99, kWeb1Mac, "198.18.10.11", "198.18.30.11"), false, Reason::unknown_segment, nullptr},
        // an endpoint without a bound MAC
        {"no bound MAC: any MAC", W, tcp(10, kStrangerMac, "198.18.10.12", "198.18.30.11"), true, kOk, "web-2"},
        {"no bound MAC: v6 too", W, tcp(10, kRouterMac, "2001:db8:10::12", "2001:db8:30::11"), true, kOk, "web-2"},
        {"no bound MAC: but not a MAC bound to another endpoint", W, tcp(10, kWeb1Mac, "198.18.10.12", "198.18.30.11"), false, Reason::spoofed_mac, nullptr},
        // uplink: resolution by address, no binding required
        {"unbound source on the uplink: external", U, tcp(0, kRouterMac, "203.0.113.9", "198.18.10.11"), true, kOk, "external"},
        {"endpoint address on the uplink: that endpoint", U, tcp(0, kRouterMac, "198.18.30.11", "198.18.10.11"), true, kOk, "db-1"},
        {"endpoint v6 address on the uplink, other VLAN", U, tcp(30, kRouterMac, "2001:db8:10::11", "2001:db8:30::11"), true, kOk, "web-1"},
        {"uplink, unknown VLAN", U, tcp(77, kRouterMac, "203.0.113.9", "198.18.10.11"), false, Reason::unknown_segment, nullptr},
        {"uplink, TCP from 0.0.0.0 is just external", U, tcp(0, kRouterMac, "0.0.0.0", "198.18.10.11"), true, kOk, "external"},
        // unspecified sources
        {"DHCP discover from 0.0.0.0", W, udp(10, kStrangerMac, "0.0.0.0", "255.255.255.255", 68, 67), true, kOk, "external", true},
        {"DHCP from 0.0.0.0 by a bound MAC names its endpoint", W, udp(10, kWeb1Mac, "0.0.0.0", "255.255.255.255", 68, 67), true, kOk, "web-1", true},
        {"UDP 68->68 from 0.0.0.0", W, udp(10, kWeb1Mac, "0.0.0.0", "255.255.255.255", 68, 68), false, Reason::spoofed_ip, nullptr},
        {"TCP from 0.0.0.0", W, tcp(10, kWeb1Mac, "0.0.0.0", "198.18.30.11"), false, Reason::spoofed_ip, nullptr},
        {"MLDv2 report from :: (before DAD)", W, icmp6(10, kWeb1Mac, "::", "ff02::16", kMld2Report), true, kOk, "web-1", true},
        {"MLDv1 report from ::", W, icmp6(10, kStrangerMac, "::", "ff02::1:ff00:11", kMldReport), true, kOk, "external", true},
        {"echo request from ::", W, icmp6(10, kWeb1Mac, "::", "2001:db8:30::11", kEchoRequest6), false, Reason::spoofed_ip, nullptr},
        {"TCP from ::", W, tcp(10, kWeb1Mac, "::", "2001:db8:30::11"), false, Reason::spoofed_ip, nullptr},
        // EUI-64 link-local of a bound MAC: infrastructure only
        {"link-local RS", W, nd(10, kWeb1Mac, kWeb1LinkLocal, "ff02::2", kRS, nullptr, &kWeb1Mac), true, kOk, "web-1", true},
        {"link-local MLD report", W, icmp6(10, kWeb1Mac, kWeb1LinkLocal, "ff02::16", kMld2Report), true, kOk, "web-1", true},
        {"link-local TCP", W, tcp(10, kWeb1Mac, kWeb1LinkLocal, "fe80::1"), false, Reason::spoofed_ip, nullptr},
        {"link-local echo request", W, icmp6(10, kWeb1Mac, kWeb1LinkLocal, "fe80::1", kEchoRequest6), false, Reason::spoofed_ip, nullptr},
        {"link-local RA: router messages are not workload infrastructure", W, nd(10, kWeb1Mac, kWeb1LinkLocal, "ff02::1", kRA, nullptr, &kWeb1Mac), false, Reason::spoofed_ip, nullptr},
        {"link-local of a bound MAC sent from another MAC", W, nd(10, kWeb3Mac, kWeb1LinkLocal, "ff02::2", kRS, nullptr), false, Reason::spoofed_mac, nullptr},
        {"link-local of a bound MAC in another segment", W, nd(30, kWeb1Mac, kWeb1LinkLocal, "ff02::2", kRS, nullptr), false, Reason::spoofed_ip, nullptr},
        {"link-local of an unbound MAC", W, nd(10, kStrangerMac, kStrangerLinkLocal, "ff02::2", kRS, nullptr), false, Reason::spoofed_ip, nullptr},
        {"non-EUI-64 link-local", W, nd(10, kWeb1Mac, "fe80::1234:5678:9abc:def0", "ff02::2", kRS, nullptr), false, Reason::spoofed_ip, nullptr},
        {"fe80::/10 outside fe80::/64 with an EUI-64 id", W, nd(10, kWeb1Mac, "fe80:1::5054:ff:fe00:1011", "ff02::2", kRS, nullptr), false, Reason::spoofed_ip, nullptr},
        {"uplink: link-local TCP is just external", U, tcp(0, kRouterMac, "fe80::1", "fe80::2"), true, kOk, "external"},
        // a later fragment has no L4: never infrastructure
        {"later fragment from 0.0.0.0", W, [] { auto p = udp(10, kWeb1Mac, "0.0.0.0", "255.255.255.255", 68, 67); p.l4_present = false; p.fragment = true; return p; }(), false, Reason::spoofed_ip, nullptr},
    };
    for (const auto& c : cases) {
        INFO(c.what);
        const SourceCheck got = table.check_source(c.packet, c.role);
        CHECK(got.ok == c.ok);
        if (!c.ok) {
            CHECK(info(got.reason).counter == info(c.reason).counter);
            continue;
        }
        CHECK(endpoint_name(*rs, got.identity.endpoint) == c.endpoint);
        CHECK(got.infrastructure_only == c.infrastructure_only);
        if (got.identity.endpoint != kExternal)
            CHECK(got.identity.identity_class == rs->endpoints()[got.identity.endpoint].identity_class);
    }
}

TEST_CASE("SpoofGuard: ARP and neighbour discovery", "[identity]") {
    const auto rs = compile(kPolicy);
    const IdentityTable table(*rs);
    const Case cases[] = {
        // ARP
        {"ARP request from a bound sender", W, arp(10, kWeb1Mac, 1, kWeb1Mac, "198.18.10.11", "198.18.10.1"), true, kOk, "web-1"},
        {"ARP reply from a bound sender", W, arp(10, kWeb1Mac, 2, kWeb1Mac, "198.18.10.11", "198.18.10.13"), true, kOk, "web-1"},
        {"gratuitous ARP (announcement)", W, arp(10, kWeb3Mac, 1, kWeb3Mac, "198.18.10.13", "198.18.10.13"), true, kOk, "web-3"},
        {"ARP reply lying about the sender IP", W, arp(10, kWeb3Mac, 2, kWeb3Mac, "198.18.10.11", "198.18.10.1"), false, Reason::spoofed_arp, nullptr},
        {"ARP reply with a lying sender MAC", W, arp(10, kWeb1Mac, 2, kStrangerMac, "198.18.10.11", "198.18.10.1"), false, Reason::spoofed_arp, nullptr},
        {"ARP with a consistent but wrong MAC", W, arp(10, kStrangerMac, 2, kStrangerMac, "198.18.10.11", "198.18.10.1"), false, Reason::spoofed_arp, nullptr},
        {"ARP sender unbound", W, arp(10, kStrangerMac, 1, kStrangerMac, "198.18.10.200", "198.18.10.1"), false, Reason::spoofed_arp, nullptr},
        {"ARP sender bound in another segment", W, arp(10, kDb1Mac, 1, kDb1Mac, "198.18.30.11", "198.18.10.1"), false, Reason::spoofed_arp, nullptr},
        {"ARP for an endpoint without a bound MAC", W, arp(10, kStrangerMac, 2, kStrangerMac, "198.18.10.12", "198.18.10.1"), true, kOk, "web-2"},
        {"ARP claiming the no-MAC endpoint from a bound MAC", W, arp(10, kWeb1Mac, 2, kWeb1Mac, "198.18.10.12", "198.18.10.1"), false, Reason::spoofed_arp, nullptr},
        {"ARP for the no-MAC endpoint, sender MAC != Ethernet source", W, arp(10, kStrangerMac, 2, kRouterMac, "198.18.10.12", "198.18.10.1"), false, Reason::spoofed_arp, nullptr},
        {"ARP probe (RFC 5227) for its own address", W, arp(10, kWeb1Mac, 1, kWeb1Mac, "0.0.0.0", "198.18.10.11"), true, kOk, "web-1", true},
        {"ARP probe for another endpoint's address", W, arp(10, kWeb3Mac, 1, kWeb3Mac, "0.0.0.0", "198.18.10.11"), false, Reason::spoofed_arp, nullptr},
        {"ARP reply from 0.0.0.0", W, arp(10, kWeb1Mac, 2, kWeb1Mac, "0.0.0.0", "198.18.10.11"), false, Reason::spoofed_arp, nullptr},
        {"ARP on the uplink: no binding required", U, arp(0, kRouterMac, 2, kRouterMac, "203.0.113.1", "203.0.113.9"), true, kOk, "external"},
        {"ARP on an unknown VLAN", W, arp(42, kWeb1Mac, 1, kWeb1Mac, "198.18.10.11", "198.18.10.1"), false, Reason::unknown_segment, nullptr},
        // NS
        {"NS from a bound address with its SLLA", W, nd(10, kWeb1Mac, "2001:db8:10::11", "ff02::1:ff00:1", kNS, "2001:db8:10::1", &kWeb1Mac), true, kOk, "web-1"},
        {"NS from the link-local with its SLLA", W, nd(10, kWeb1Mac, kWeb1LinkLocal, "ff02::1:ff00:1", kNS, "fe80::1", &kWeb1Mac), true, kOk, "web-1", true},
        {"NS whose SLLA lies", W, nd(10, kWeb1Mac, "2001:db8:10::11", "ff02::1:ff00:1", kNS, "2001:db8:10::1", &kWeb3Mac), false, Reason::spoofed_nd, nullptr},
        {"NS from an unbound source", W, nd(10, kStrangerMac, "2001:db8:10::99", "ff02::1:ff00:1", kNS, "2001:db8:10::1"), false, Reason::spoofed_ip, nullptr},
        {"DAD NS from :: for its own address", W, nd(10, kWeb1Mac, "::", "ff02::1:ff00:11", kNS, "2001:db8:10::11"), true, kOk, "web-1", true},
        {"DAD NS from :: for its own link-local", W, nd(10, kWeb1Mac, "::", "ff02::1:ff00:1011", kNS, kWeb1LinkLocal), true, kOk, "web-1", true},
        {"DAD NS by the no-MAC endpoint", W, nd(10, kStrangerMac, "::", "ff02::1:ff00:12", kNS, "2001:db8:10::12"), true, kOk, "external", true},
        {"DAD NS for another endpoint's address (DAD denial of service)", W, nd(10, kWeb3Mac, "::", "ff02::1:ff00:11", kNS, "2001:db8:10::11"), false, Reason::spoofed_nd, nullptr},
        {"DAD NS for an unbound address", W, nd(10, kWeb1Mac, "::", "ff02::1:ff00:99", kNS, "2001:db8:10::99"), false, Reason::spoofed_nd, nullptr},
        {"DAD NS with an SLLA (forbidden by RFC 4861)", W, nd(10, kWeb1Mac, "::", "ff02::1:ff00:11", kNS, "2001:db8:10::11", &kWeb1Mac), false, Reason::spoofed_nd, nullptr},
        {"RS from :: without SLLA", W, nd(10, kStrangerMac, "::", "ff02::2", kRS, nullptr), true, kOk, "external", true},
        {"RS from :: with an SLLA", W, nd(10, kWeb1Mac, "::", "ff02::2", kRS, nullptr, &kWeb1Mac), false, Reason::spoofed_nd, nullptr},
        {"NA from :: is never DAD", W, nd(10, kWeb1Mac, "::", "ff02::1", kNA, "2001:db8:10::11"), false, Reason::spoofed_ip, nullptr},
        // NA
        {"NA for its own address", W, nd(10, kWeb1Mac, "2001:db8:10::11", "2001:db8:10::1", kNA, "2001:db8:10::11", &kWeb1Mac), true, kOk, "web-1"},
        {"NA for its own address from its link-local", W, nd(10, kWeb1Mac, kWeb1LinkLocal, "fe80::1", kNA, "2001:db8:10::11", &kWeb1Mac), true, kOk, "web-1", true},
        {"NA for its own link-local", W, nd(10, kWeb1Mac, kWeb1LinkLocal, "fe80::1", kNA, kWeb1LinkLocal), true, kOk, "web-1", true},
        {"NA with a lying target (another endpoint)", W, nd(10, kWeb1Mac, "2001:db8:10::11", "ff02::1", kNA, "2001:db8:10::12", &kWeb1Mac), false, Reason::spoofed_nd, nullptr},
        {"NA with a lying target (the router)", W, nd(10, kWeb1Mac, kWeb1LinkLocal, "ff02::1", kNA, "fe80::1", &kWeb1Mac), false, Reason::spoofed_nd, nullptr},
        {"NA with another endpoint's link-local as target", W, nd(10, kWeb1Mac, kWeb1LinkLocal, "ff02::1", kNA, kWeb3LinkLocal), false, Reason::spoofed_nd, nullptr},
        {"NA with a target in another segment", W, nd(10, kWeb1Mac, "2001:db8:10::11", "ff02::1", kNA, "2001:db8:30::11"), false, Reason::spoofed_nd, nullptr},
        {"NA with a lying TLLA", W, nd(10, kWeb1Mac, "2001:db8:10::11", "ff02::1", kNA, "2001:db8:10::11", &kStrangerMac), false, Reason::spoofed_nd, nullptr},
        {"NA by the no-MAC endpoint for itself", W, nd(10, kStrangerMac, "2001:db8:10::12", "ff02::1", kNA, "2001:db8:10::12", &kStrangerMac), true, kOk, "web-2"},
        {"NA on the uplink: no binding required", U, nd(0, kRouterMac, "fe80::1", "ff02::1", kNA, "fe80::1", &kRouterMac), true, kOk, "external"},
    };
    for (const auto& c : cases) {
        INFO(c.what);
        const SourceCheck got = table.check_source(c.packet, c.role);
        CHECK(got.ok == c.ok);
        if (!c.ok) {
            CHECK(info(got.reason).counter == info(c.reason).counter);
            continue;
        }
        CHECK(endpoint_name(*rs, got.identity.endpoint) == c.endpoint);
        CHECK(got.infrastructure_only == c.infrastructure_only);
    }
}

TEST_CASE("identity: the flat tables agree with RuleSet::resolve", "[identity]") {
    // A generated policy big enough for probe sequences, with cidr groups that cut the external space.
    std::string yaml = "version: 1\nsegments:\n  - {name: s0, vlan: 0}\n  - {name: s1, vlan: 101}\nendpoints:\n";
    for (int e = 0; e < 3000; ++e)
        yaml += fmt::format("  - {{name: e{}, segment: s{}, ip: [10.{}.{}.{}, \"2001:db8:{:x}::{:x}\"], {}tags: {{t: v{}}}}}\n", e,
                            e % 2, e / 250, e % 250, e % 7 + 1, e % 16, e, e % 3 ? fmt::format("mac: \"02:00:00:00:{:02x}:{:02x}\", ", e / 256, e % 256) : "",
                            e % 5);
    yaml += "groups:\n";
    for (int t = 0; t < 5; ++t) yaml += fmt::format("  g{}: {{tags: {{t: v{}}}}}\n", t, t);
    yaml += "  nets: {cidr: [10.0.0.0/8, 192.0.2.0/24, 192.0.2.128/25, \"2001:db8::/32\", \"2001:db8:ad::/48\"]}\n"
            "  host: {cidr: [203.0.113.7, \"2001:db8:ad::7\"]}\n"
            "  internet: {cidr: [\"0.0.0.0/0\", \"::/0\"]}\n"
            "rules:\n  - {id: r, from: [nets, host, internet], to: [g0, g1, g2, g3, g4], action: allow}\ndefault: drop\n";
    const auto rs = compile(yaml);
    const IdentityTable table(*rs);

    std::vector<IpAddr> probes;
    for (const auto& e : rs->endpoints())
        for (const auto& a : e.addrs) probes.push_back(a);
    for (auto f : {tagwall::rules::Family::v4, tagwall::rules::Family::v6})
        for (const auto& r : rs->external_ranges(f)) {
            IpAddr a = r.first, b = r.first;
            probes.push_back(a);
            if (tagwall::rules::decrement(b)) probes.push_back(b);
            if (tagwall::rules::increment(a)) probes.push_back(a);
        }
    std::mt19937_64 rng(42);
    for (int i = 0; i < 20000; ++i) {
        IpAddr a;
        if (i % 2) {
            a = IpAddr::v4(static_cast<uint32_t>(rng()));
            if (i % 4 == 1) a.bytes[0] = 10;  // near the bound space
        } else {
            std::array<uint8_t, 16> b;
            for (auto& x : b) x = static_cast<uint8_t>(rng());
            if (i % 4 == 0) b[0] = 0x20, b[1] = 0x01, b[2] = 0x0d, b[3] = 0xb8;
            a = IpAddr::v6(b);
        }
        probes.push_back(a);
    }
    size_t mismatches = 0;
    for (const auto& a : probes) {
        const auto want = rs->resolve(a);
        const auto got = table.resolve(a);
        if (want.endpoint != got.endpoint || want.identity_class != got.identity_class) {
            if (++mismatches < 5) FAIL_CHECK(a.str() << ": want " << want.endpoint << "/" << want.identity_class
                                                    << " got " << got.endpoint << "/" << got.identity_class);
        }
    }
    CHECK(mismatches == 0);

    // Every bound MAC is found in its own segment only.
    for (uint32_t e = 0; e < rs->endpoints().size(); ++e) {
        const auto& ep = rs->endpoints()[e];
        if (!ep.mac) continue;
        CHECK(table.endpoint_by_mac(ep.vlan, ep.mac->bytes) == e);
        CHECK(table.endpoint_by_mac(ep.vlan == 0 ? 101 : 0, ep.mac->bytes) == kExternal);
    }
    CHECK(table.endpoint_by_mac(0, kStrangerMac) == kExternal);
    CHECK(table.memory_bytes() > 0);
}

TEST_CASE("identity: every bound source passes on its own segment only", "[identity]") {
    const auto rs = compile(kPolicy);
    const IdentityTable table(*rs);
    for (uint32_t e = 0; e < rs->endpoints().size(); ++e) {
        const auto& ep = rs->endpoints()[e];
        const Mac mac = ep.mac ? ep.mac->bytes : kStrangerMac;
        for (const auto& a : ep.addrs) {
            ParsedPacket p = tcp(ep.vlan, mac, "192.0.2.1", "192.0.2.2");
            p.src = a;
            p.dst = a;
            p.kind = a.family == tagwall::rules::Family::v4 ? PacketKind::ipv4 : PacketKind::ipv6;
            INFO(ep.name << " " << a.str());
            const auto own = table.check_source(p, PortRole::workload);
            CHECK(own.ok);
            CHECK(own.identity.endpoint == e);
            CHECK_FALSE(own.infrastructure_only);
            for (const auto& seg : rs->segments()) {
                if (seg.vlan == ep.vlan) continue;
                p.vlan = seg.vlan;
                CHECK(table.check_source(p, PortRole::workload).reason == Reason::spoofed_ip);
                CHECK(table.check_source(p, PortRole::uplink).identity.endpoint == e);
            }
        }
    }
}
