// Identity and SpoofGuard (SPEC §4): who sent a packet, whether it may claim that, and who receives it.
//
// Concurrency contract: an IdentityTable is built on the control thread from one compiled RuleSet
// (allocates, may throw std::bad_alloc) and is never modified afterwards.  It is published to the
// workers together with that RuleSet (one RCU publish; STYLE convention 2) and read through
// `const IdentityTable&`: every run-side query is const, noexcept, allocation- and lock-free.  It copies
// what it needs, so it does not reference the RuleSet it came from; rebuild it whenever the RuleSet is
// rebuilt (a tag change that changes identity classes produces a new RuleSet, hence a new table).
//
// Design.  Two flat open-addressing tables are built once, sized to at most half full, probed
// linearly, and never grow:
//   - address -> endpoint (32-byte slots holding the endpoint's segment VLAN and bound MAC, so that the
//     SpoofGuard check of a bound source costs one slot read);
//   - (segment VLAN, MAC) -> endpoint, for EUI-64 link-local sources, for endpoints without a bound MAC
//     (a frame whose MAC is bound to *another* endpoint of the segment may not claim them) and for the
//     switch-mode MAC table.
// A probe stops at an empty slot or after the longest probe sequence seen at build time, so an
// attacker choosing addresses cannot make a lookup longer than the policy's own worst cluster.
// Addresses bound to no endpoint are external: their identity class comes from a binary search of the
// cidr-cut ranges (the same ranges RuleSet::resolve searches).  RuleSet::resolve is the reference;
// tests check this table against it.
//
// SpoofGuard on a workload port (the rules, in the order they are applied):
//   1. The packet's VLAN must name a segment (`unknown_segment`).
//   2. IP: the source must be bound to an endpoint of the packet's segment (`spoofed_ip`), and the
//      Ethernet source must be that endpoint's MAC when one is bound; when none is bound, any MAC except
//      one bound to another endpoint of the segment (`spoofed_mac`).
//      Exceptions, accepted as *infrastructure only* (SourceCheck::infrastructure_only):
//        - 0.0.0.0 for DHCP (UDP 68 -> 67);
//        - :: for duplicate address detection and its helpers: ICMPv6 NS (DAD), RS, MLD reports;
//        - fe80::/64 whose interface id is the EUI-64 of a MAC bound in this segment, sent from that
//          MAC, for host-side ND and MLD: RS, NS, NA, MLD report/done.  Router messages (RA, redirect,
//          MLD query) from a workload are not infrastructure a workload needs.
//   3. ARP: the sender IP must be bound to an endpoint of the segment, and the sender MAC and the
//      Ethernet source must both be its bound MAC (or, when none is bound, equal each other and not be
//      another endpoint's MAC) -> else `spoofed_arp`.  An ARP probe (RFC 5227: request from sender IP
//      0.0.0.0) is the IPv4 DAD and is accepted as infrastructure when its target IP could be claimed
//      by that frame under the same rule (otherwise a probe could knock a bound address off the link).
//   4. ND (after rule 2 accepted the source): an NA's target must be an address the sender could claim
//      (bound here with the frame's MAC, or the EUI-64 link-local of the frame's bound MAC) and belong
//      to the same endpoint as the source; a DAD NS's target likewise; a link-layer option must carry
//      the frame's MAC, except on a redirect whose option names another node -> else `spoofed_nd`.
// On an uplink port nothing is checked beyond rule 1: the source resolves by address (an endpoint's
// address arriving there is that endpoint).
//
// What infrastructure_only asks of the pipeline: the packet is accepted as exactly the protocol that
// admitted it.  It must not create a connection entry, and no rule may turn it into anything else
// (the protocol test above already confines it; the flag lets the pipeline count it and skip the
// classifier).  Its identity is the endpoint that owns the frame's MAC in this segment when there is
// one (so events can name it), otherwise the external identity of the source address.
#pragma once

#include <array>
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "dataplane/packet.hpp"
#include "dataplane/port_role.hpp"
#include "dataplane/reasons.hpp"
#include "rules/ruleset.hpp"

namespace tagwall::dataplane {

// The outcome of SpoofGuard for one packet's source.
struct SourceCheck {
    bool ok = false;
    bool infrastructure_only = false;   // accepted only as DHCP/DAD/ND/MLD/ARP probe: see the header
    Reason reason = Reason::spoofed_ip; // why not ok; meaningless when ok
    rules::Identity identity;           // the source's identity; meaningful when ok
};

class IdentityTable {
public:
    // --- control thread only ---
    explicit IdentityTable(const rules::RuleSet& rules);

    // --- any worker: const, noexcept, no allocation ---
    // SpoofGuard and source identity for a parsed packet that arrived on a port of this role.
    SourceCheck check_source(const ParsedPacket& p, PortRole role) const noexcept;
    // The fast path's SpoofGuard (Pipeline::process): true when check_source(p, workload) accepts `p` as
    // an ordinary packet from a bound address (not ND, not infrastructure-only), with that endpoint in
    // `endpoint`.  False says only "ask check_source()", which gives the verdict and its reason.
    bool bound_source(const ParsedPacket& p, uint32_t& endpoint) const noexcept;
    // The same for the fast path's AckSegment (an IPv4 TCP segment: never ND): the answer bound_source()
    // gives for the packet parse_frame() reads from the same frame.
    bool bound_source(const AckSegment& a, uint32_t& endpoint) const noexcept;
    // A hint for a burst (Pipeline::process): brings in the slot where check_source() and
    // bound_source() start looking for `p`'s source address.
    void prefetch_source(const ParsedPacket& p) const noexcept;
    // The same for both addresses, before a packet that opens a connection is classified (resolve()).
    void prefetch_ends(const ParsedPacket& p) const noexcept;
    // Identity of any address (destination, or a source on an uplink): same answer as RuleSet::resolve.
    rules::Identity resolve(const rules::IpAddr& addr) const noexcept;
    // Endpoint whose bound MAC this is in the segment of `vlan`, or rules::kExternal.
    uint32_t endpoint_by_mac(uint16_t vlan, const Mac& mac) const noexcept;
    bool segment_known(uint16_t vlan) const noexcept { return vlan < known_vlans_.size() && known_vlans_[vlan]; }

    size_t memory_bytes() const noexcept;

private:
    // One bound address.  `endpoint == kExternal` marks an empty slot.
    struct AddrSlot {
        std::array<uint8_t, 16> addr{};
        uint32_t endpoint = rules::kExternal;
        uint16_t vlan = 0;
        rules::Family family = rules::Family::v4;
        bool has_mac = false;
        Mac mac{};
        uint16_t unused = 0;
    };
    static_assert(sizeof(AddrSlot) == 32, "two address slots per cache line");

    // (vlan << 48 | MAC) -> endpoint; key UINT64_MAX marks an empty slot (a VLAN never reaches 0xFFFF).
    struct MacSlot {
        uint64_t key = UINT64_MAX;
        uint32_t endpoint = rules::kExternal;
        uint32_t unused = 0;
    };
    static_assert(sizeof(MacSlot) == 16);

    // An address an endpoint may claim, and who owns it.
    enum class Claim : uint8_t { bound, link_local, unbound, wrong_segment, wrong_mac };
    struct ClaimResult {
        Claim claim = Claim::unbound;
        uint32_t endpoint = rules::kExternal;
    };

    const AddrSlot* find_addr(const rules::IpAddr& a) const noexcept;
    void prefetch_addr(const rules::IpAddr& a) const noexcept;  // the first slot find_addr(a) reads
    ClaimResult claim(const rules::IpAddr& a, uint16_t vlan, const Mac& frame_mac) const noexcept;
    SourceCheck check_workload_ip(const ParsedPacket& p) const noexcept;
    SourceCheck check_workload_arp(const ParsedPacket& p) const noexcept;
    bool nd_consistent(const ParsedPacket& p, uint32_t sender) const noexcept;
    rules::Identity endpoint_identity(uint32_t e) const noexcept { return {e, endpoint_class_[e]}; }

    std::vector<AddrSlot> addr_slots_;
    uint32_t addr_mask_ = 0;
    uint32_t addr_max_probe_ = 0;
    std::vector<MacSlot> mac_slots_;
    uint32_t mac_mask_ = 0;
    uint32_t mac_max_probe_ = 0;
    std::vector<uint32_t> endpoint_class_;
    // External ranges, as RuleSet::external_ranges: IPv4 firsts as host-order integers, IPv6 as
    // (high, low) 64-bit halves, so that the binary search compares integers.
    std::vector<uint32_t> ext_v4_first_;
    std::vector<uint32_t> ext_v4_class_;
    std::vector<std::array<uint64_t, 2>> ext_v6_first_;
    std::vector<uint32_t> ext_v6_class_;
    std::bitset<4096> known_vlans_;
};

}  // namespace tagwall::dataplane
