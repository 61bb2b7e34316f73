// Shared by the libFuzzer targets of tests/fuzz (scripts/fuzz.sh runs them; --help lists them).
//
// Test code, one fuzz process: nothing here is thread-safe and nothing needs to be.  What a target finds
// is reported by aborting: FUZZ_CHECK prints the broken invariant and calls abort(), which libFuzzer
// records as a crash with the input that caused it.  A target checks invariants (what must hold for any
// input), never "no crash" alone.
//
//   - FUZZ_CHECK(cond, fmt, args...): the invariant, with a message saying what was expected;
//   - kFuzzPolicy: the policy the packet and pipeline targets run under.  Its first segment, endpoints
//     and rules are pcaps/policy.yaml's, so the seeds made from pcaps/ behave as in the pcap tests; the
//     rest adds a tagged segment, an endpoint without a bound MAC, external CIDR groups, a logged rule and
//     reject rules, so that every kind of decision is reachable;
//   - read_capture(): a tolerant in-memory pcap reader (libpcap on fmemopen): it keeps the packets read
//     before an error, as a capture cut short still delivers its first packets;
//   - check_parsed(): what parse_frame() promises about any frame (offsets inside it, layers consistent);
//   - check_answer(): what build_reject()/build_forward_rst() promise (an answer parses as IP, with the
//     addresses it must have).
#pragma once

#include <pcap/pcap.h>
#include <sys/prctl.h>

#include <algorithm>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "dataplane/packet.hpp"
#include "dataplane/parser.hpp"
#include "dataplane/reasons.hpp"
#include "rules/policy_loader.hpp"
#include "rules/ruleset.hpp"

#define FUZZ_CHECK(cond, ...)                                                                       \
    do {                                                                                            \
        if (!(cond)) [[unlikely]] {                                                                 \
            std::fprintf(stderr, "\nFUZZ INVARIANT BROKEN at %s:%d: %s\n  %s\n", __FILE__, __LINE__, \
                         #cond, fmt::format(__VA_ARGS__).c_str());                                  \
            std::fflush(stderr);                                                                    \
            std::abort();                                                                           \
        }                                                                                           \
    } while (0)

namespace tagwall::fuzz {

inline constexpr const char* kFuzzPolicy = R"(version: 1
segments:
  - {name: prod, vlan: 0}
  - {name: dmz, vlan: 10}
endpoints:
  - name: web-1
    segment: prod
    ip: [198.18.10.11, "2001:db8:10::11"]
    mac: "52:54:00:00:10:11"
    tags: {app: shop, tier: web}
  - name: db-1
    segment: prod
    ip: [198.18.30.11, "2001:db8:30::11"]
    mac: "52:54:00:00:30:11"
    tags: {app: shop, tier: db}
  - name: app-1
    segment: dmz
    ip: [198.18.20.11, "2001:db8:20::11"]
    tags: {app: shop, tier: app}
groups:
  shop-web: {tags: {app: shop, tier: web}}
  shop-db:  {tags: {app: shop, tier: db}}
  shop-app: {tags: {app: shop, tier: app}}
  dmz-seg:  {segment: dmz}
  lab:      {cidr: [198.19.0.0/16, "2001:db8:99::/48"]}
  internet: {cidr: ["0.0.0.0/0", "::/0"]}
services:
  postgres: [tcp/5432]
  ping:     [icmp/echo-request, icmpv6/echo-request]
  ssh:      [tcp/22]
  https:    [tcp/443]
  dns:      [udp/53, tcp/53]
  sctp-app: [sctp/3868]
rules:
  - {id: web-db,   from: shop-web, to: shop-db, services: [postgres], action: allow}
  - {id: web-ping, from: shop-web, to: shop-db, services: [ping],     action: allow}
  - {id: no-ssh,   from: shop-db,  to: shop-web, services: [ssh],      action: reject}
  - {id: web-out,  from: shop-web, to: internet, services: [https, dns], action: allow, log: true}
  - {id: lab-app,  from: lab,      to: dmz-seg,  services: [https, sctp-app, ping], action: allow}
  - {id: app-db,   from: shop-app, to: shop-db,  services: [postgres], action: allow, log: true}
  - {id: no-lab-udp, from: lab,    to: any,                            action: reject, log: true}
default: drop
)";

// The dataplane's tables ask for transparent huge pages (dataplane/huge_array.hpp: 2 MB-aligned maps with
// MADV_HUGEPAGE).  A fuzz target builds small tables for every input, and a 2 MB page zeroed (or
// compacted for) per table costs far more than the input itself: the process takes 4 KB pages instead.
inline void use_small_pages() { prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0); }

inline std::shared_ptr<const rules::RuleSet> compile_policy_text(const std::string& text, const std::string& name) {
    auto loaded = rules::load_policy_text(text, name);
    if (!loaded.policy) {
        for (const auto& d : loaded.diagnostics.sorted()) std::fprintf(stderr, "%s\n", d.str().c_str());
        std::fprintf(stderr, "fuzz harness: the built-in policy %s does not load\n", name.c_str());
        std::abort();
    }
    return rules::RuleSet::compile(*loaded.policy);
}

// --- in-memory pcap ---------------------------------------------------------------------------------

struct CapturedPacket {
    size_t offset = 0;     // into Capture::bytes
    uint16_t length = 0;   // caplen, at most 65535
    uint64_t ts_ns = 0;
    uint32_t ts_frac = 0;  // the record's raw sub-second field (usec or nsec, as written)
};

struct Capture {
    std::vector<uint8_t> bytes;
    std::vector<CapturedPacket> packets;
    bool ethernet = false;
    uint32_t sigfigs_field = 0;  // the file header's sigfigs (unused by pcap; the targets read options in it)
};

// Reads a classic pcap or pcapng held in memory, at most `max_packets` packets.  Never fails: what could
// not be read is simply not there (empty capture for a bad header).
inline Capture read_capture(std::span<const uint8_t> data, size_t max_packets) {
    Capture cap;
    if (data.size() < 24) return cap;
    // The header field libpcap does not expose: read it the way the magic number says.
    uint32_t magic = 0, sigfigs = 0;
    std::memcpy(&magic, data.data(), 4);
    std::memcpy(&sigfigs, data.data() + 12, 4);
    if (magic == 0xd4c3b2a1 || magic == 0x4d3cb2a1) sigfigs = __builtin_bswap32(sigfigs);
    cap.sigfigs_field = sigfigs;

    std::vector<uint8_t> copy(data.begin(), data.end());  // fmemopen wants a writable buffer
    FILE* f = fmemopen(copy.data(), copy.size(), "rb");
    if (f == nullptr) return cap;
    char err[PCAP_ERRBUF_SIZE] = {};
    pcap_t* pc = pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_NANO, err);
    if (pc == nullptr) {
        std::fclose(f);  // libpcap closes the FILE only once it owns it
        return cap;
    }
    cap.ethernet = pcap_datalink(pc) == DLT_EN10MB;
    pcap_pkthdr* hdr = nullptr;
    const u_char* bytes = nullptr;
    while (cap.packets.size() < max_packets && pcap_next_ex(pc, &hdr, &bytes) == 1) {
        CapturedPacket p;
        p.offset = cap.bytes.size();
        p.length = static_cast<uint16_t>(std::min<uint32_t>(hdr->caplen, 0xFFFF));
        p.ts_frac = static_cast<uint32_t>(hdr->ts.tv_usec);
        p.ts_ns = static_cast<uint64_t>(hdr->ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(hdr->ts.tv_usec);
        cap.bytes.insert(cap.bytes.end(), bytes, bytes + p.length);
        cap.packets.push_back(p);
    }
    pcap_close(pc);  // closes f
    return cap;
}

// --- what parse_frame() promises ---------------------------------------------------------------------

inline bool is_ip(const dataplane::ParsedPacket& p) {
    return p.kind == dataplane::PacketKind::ipv4 || p.kind == dataplane::PacketKind::ipv6;
}

// Checks a ParsedPacket against the frame it came from: every offset and length inside the frame (as
// the parser sees it: its first 65535 bytes), the layers consistent with each other.
inline void check_parsed(std::span<const uint8_t> frame, const dataplane::ParsedPacket& p,
                         const std::optional<dataplane::Reason>& bad) {
    using namespace dataplane;
    const size_t size = std::min<size_t>(frame.size(), 0xFFFF);
    FUZZ_CHECK(!p.tagged ? p.vlan == 0 : p.vlan < 4096, "vlan {} tagged {}", p.vlan, p.tagged);
    if (bad) {
        FUZZ_CHECK(static_cast<size_t>(*bad) < kReasonCount, "reason {} out of the list", static_cast<int>(*bad));
        FUZZ_CHECK(!info(*bad).word.empty() && !info(*bad).counter.empty(), "a reason without its words");
        FUZZ_CHECK(*bad != Reason::rule && *bad != Reason::default_action && *bad != Reason::established &&
                       *bad != Reason::rst_in_window && *bad != Reason::related && *bad != Reason::arp_nd && *bad != Reason::revoked,
                   "the parser gave a decision reason ({}) as a drop", info(*bad).counter);
        return;
    }
    FUZZ_CHECK(p.kind != PacketKind::other, "a frame that parsed is IP or ARP");
    if (p.kind == PacketKind::arp) {
        FUZZ_CHECK(p.arp_sender_ip.family == rules::Family::v4, "ARP sender is IPv4");
        return;
    }
    const bool v4 = p.kind == PacketKind::ipv4;
    FUZZ_CHECK(p.src.family == (v4 ? rules::Family::v4 : rules::Family::v6) && p.dst.family == p.src.family,
               "address families follow the IP version");
    FUZZ_CHECK(p.l3_offset == (p.tagged ? 18 : 14), "L3 right after the Ethernet header (offset {})", p.l3_offset);
    FUZZ_CHECK(size_t{p.l3_offset} + p.l3_length <= size, "L3 [{}, +{}) past the frame ({} bytes)", p.l3_offset,
               p.l3_length, size);
    FUZZ_CHECK(p.l3_length >= (v4 ? 20 : 40), "L3 length {} below the fixed header", p.l3_length);
    const size_t l3_end = size_t{p.l3_offset} + p.l3_length;
    if (p.first_fragment) FUZZ_CHECK(p.fragment && p.fragment_offset == 0, "first fragment at offset 0");
    if (p.fragment) {
        FUZZ_CHECK(p.fragment_offset % 8 == 0, "fragment offset {} not 8-aligned", p.fragment_offset);
        FUZZ_CHECK(p.first_fragment == (p.fragment_offset == 0), "first fragment iff offset 0");
        if (!p.first_fragment) FUZZ_CHECK(!p.l4_present, "a later fragment has no L4 header");
        if (p.first_fragment) FUZZ_CHECK(p.more_fragments, "a first fragment has more to come");
    }
    if (p.l4_present || (p.fragment && !p.first_fragment)) {
        FUZZ_CHECK(p.l4_offset >= size_t{p.l3_offset} + (v4 ? 20 : 40), "L4 offset {} inside the L3 header",
                   p.l4_offset);
        FUZZ_CHECK(size_t{p.l4_offset} + p.l4_length == l3_end, "L4 [{}, +{}) does not end the IP packet at {}",
                   p.l4_offset, p.l4_length, l3_end);
    }
    if (p.l4_present) {
        FUZZ_CHECK(p.payload_length <= p.l4_length, "payload {} longer than L4 {}", p.payload_length, p.l4_length);
        if (p.proto == kIpProtoTcp) FUZZ_CHECK(p.l4_length >= 20 + p.payload_length, "TCP header cut");
        if (p.tcp_wscale != kNoWindowScale) FUZZ_CHECK(p.tcp_wscale <= 14, "window scale {} above 14", p.tcp_wscale);
    }
    if (p.icmp_error) {
        FUZZ_CHECK(p.proto == (v4 ? kIpProtoIcmp : kIpProtoIcmpv6), "ICMP error of protocol {}", p.proto);
        if (p.inner_l3_present) FUZZ_CHECK(p.inner_src.family == p.src.family, "quoted packet of another family");
    }
    FUZZ_CHECK(!p.inner_l4_present || p.inner_l3_present, "quoted L4 without quoted L3");
    if (p.nd) FUZZ_CHECK(!v4 && p.proto == kIpProtoIcmpv6, "ND outside ICMPv6");
}

// --- what the reject answers promise -----------------------------------------------------------------

// `answer` (n bytes) answers the packet `p`: it parses as IP of p's family in p's VLAN, comes from p's
// destination and goes to p's source (`mirrored`, build_reject), or continues p's own direction
// (build_forward_rst).  A TCP answer is an RST.
inline void check_answer(std::span<const uint8_t> answer, const dataplane::ParsedPacket& p, bool mirrored,
                         const char* what) {
    using namespace dataplane;
    ParsedPacket a;
    const auto bad = parse_frame(answer, a);
    FUZZ_CHECK(!bad, "{}: the answer does not parse: {}", what, bad ? info(*bad).counter : "");
    check_parsed(answer, a, bad);
    FUZZ_CHECK(a.kind == p.kind, "{}: answer of another IP version", what);
    FUZZ_CHECK(a.vlan == p.vlan && a.tagged == p.tagged, "{}: answer leaves the packet's VLAN", what);
    FUZZ_CHECK(answer.size() >= 60, "{}: answer of {} bytes, below the Ethernet minimum", what, answer.size());
    const rules::IpAddr& want_src = mirrored ? p.dst : p.src;
    const rules::IpAddr& want_dst = mirrored ? p.src : p.dst;
    FUZZ_CHECK(a.src == want_src && a.dst == want_dst, "{}: answer {} -> {}, expected {} -> {}", what, a.src.str(),
               a.dst.str(), want_src.str(), want_dst.str());
    FUZZ_CHECK(!a.fragment, "{}: a fragmented answer", what);
    if (a.proto == kIpProtoTcp) FUZZ_CHECK((a.tcp_flags & kTcpRst) != 0, "{}: a TCP answer without RST", what);
    else FUZZ_CHECK(a.icmp_error, "{}: a non-TCP answer that is not an ICMP error", what);
}

}  // namespace tagwall::fuzz
