// Identity and SpoofGuard: the build (constructor, control thread) and the run-side checks (workers).
#include "dataplane/identity.hpp"
#include "dataplane/hash.hpp"

#include <algorithm>
#include <bit>
#include <cstring>

namespace tagwall::dataplane {
namespace {

using rules::Family;
using rules::IpAddr;
using rules::kExternal;

// ICMPv6 types (RFC 4443, 4861, 2710, 3810).
constexpr uint8_t kMldReport = 131, kMldDone = 132, kRouterSolicit = 133,
                  kRouterAdvert = 134, kNeighborSolicit = 135, kNeighborAdvert = 136, kRedirect = 137,
                  kMld2Report = 143;
constexpr uint16_t kDhcpClientPort = 68, kDhcpServerPort = 67;
constexpr uint16_t kArpRequest = 1;

uint64_t load64(const uint8_t* p) noexcept {
    uint64_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

uint64_t load64_big_endian(const uint8_t* p) noexcept {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = v << 8 | p[i];
    return v;
}

uint64_t hash_addr(const std::array<uint8_t, 16>& a, Family f) noexcept {
    return mix64(load64(a.data()) ^ mix64(load64(a.data() + 8) + static_cast<uint64_t>(f)));
}

// vlan << 48 | the MAC's six bytes in order: two loads and byte swaps (a loop of six shifts was 18
// instructions, on every workload packet whose endpoint has no bound MAC).
uint64_t mac_key(uint16_t vlan, const Mac& mac) noexcept {
    uint32_t high;
    uint16_t low;
    std::memcpy(&high, mac.data(), 4);
    std::memcpy(&low, mac.data() + 4, 2);
    if constexpr (std::endian::native == std::endian::little) {
        high = __builtin_bswap32(high);
        low = __builtin_bswap16(low);
    }
    return uint64_t{vlan} << 48 | uint64_t{high} << 16 | low;
}

bool is_unspecified(const IpAddr& a) noexcept {
    return std::all_of(a.bytes.begin(), a.bytes.end(), [](uint8_t b) { return b == 0; });
}

// fe80::/64 with an EUI-64 interface id (RFC 4291 appendix A): the MAC it was made from.
bool eui64_link_local_mac(const IpAddr& a, Mac& mac) noexcept {
    const auto& b = a.bytes;
    if (a.family != Family::v6 || b[0] != 0xfe || b[1] != 0x80) return false;
    for (int i = 2; i < 8; ++i)
        if (b[i] != 0) return false;
    if (b[11] != 0xff || b[12] != 0xfe) return false;
    mac = {static_cast<uint8_t>(b[8] ^ 0x02), b[9], b[10], b[13], b[14], b[15]};
    return true;
}

bool is_icmpv6(const ParsedPacket& p) noexcept {
    return p.kind == PacketKind::ipv6 && p.l4_present && p.proto == rules::kProtoIcmpV6;
}

// What an unspecified source may be: a DHCP client (v4); DAD and the messages a host sends before it
// has an address (v6: RFC 4861 §4.1 RS, RFC 4862 §5.4 NS, RFC 3590/3810 MLD reports).
bool unspecified_source_allowed(const ParsedPacket& p) noexcept {
    if (p.kind == PacketKind::ipv4)
        return p.l4_present && p.proto == rules::kProtoUdp && p.sport == kDhcpClientPort &&
               p.dport == kDhcpServerPort;
    if (!is_icmpv6(p)) return false;
    const uint8_t t = p.icmp_type;
    return t == kRouterSolicit || t == kNeighborSolicit || t == kMldReport || t == kMld2Report;
}

// What an EUI-64 link-local source may be: host-side ND and MLD.  Router messages (RA, redirect, MLD
// query) are not something a workload needs.
bool link_local_source_allowed(const ParsedPacket& p) noexcept {
    if (!is_icmpv6(p)) return false;
    const uint8_t t = p.icmp_type;
    return t == kRouterSolicit || t == kNeighborSolicit || t == kNeighborAdvert || t == kMldReport ||
           t == kMldDone || t == kMld2Report;
}

SourceCheck fail(Reason r) noexcept { return {.ok = false, .infrastructure_only = false, .reason = r, .identity = {}}; }
SourceCheck pass(rules::Identity id, bool infrastructure_only = false) noexcept {
    return {.ok = true, .infrastructure_only = infrastructure_only, .reason = Reason::rule, .identity = id};
}

size_t table_size_for(size_t entries) noexcept { return std::bit_ceil(std::max<size_t>(8, entries * 2)); }

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Build side.

IdentityTable::IdentityTable(const rules::RuleSet& rules) {
    const auto& endpoints = rules.endpoints();
    size_t addr_count = 0, mac_count = 0;
    for (const auto& e : endpoints) {
        addr_count += e.addrs.size();
        mac_count += e.mac ? 1 : 0;
        endpoint_class_.push_back(e.identity_class);
    }

    addr_slots_.assign(table_size_for(addr_count), AddrSlot{});
    addr_mask_ = static_cast<uint32_t>(addr_slots_.size() - 1);
    mac_slots_.assign(table_size_for(mac_count), MacSlot{});
    mac_mask_ = static_cast<uint32_t>(mac_slots_.size() - 1);

    for (uint32_t e = 0; e < endpoints.size(); ++e) {
        const auto& ep = endpoints[e];
        for (const auto& a : ep.addrs) {
            if (find_addr(a) != nullptr) continue;  // RuleSet::compile refuses this; keep the first
            uint32_t probe = 0;
            uint64_t i = hash_addr(a.bytes, a.family);
            while (addr_slots_[i & addr_mask_].endpoint != kExternal) ++i, ++probe;
            auto& s = addr_slots_[i & addr_mask_];
            s.addr = a.bytes;
            s.family = a.family;
            s.endpoint = e;
            s.vlan = ep.vlan;
            s.has_mac = ep.mac.has_value();
            if (ep.mac) s.mac = ep.mac->bytes;
            addr_max_probe_ = std::max(addr_max_probe_, probe);
        }
        if (ep.mac && endpoint_by_mac(ep.vlan, ep.mac->bytes) == kExternal) {  // the loader refuses duplicates
            const uint64_t key = mac_key(ep.vlan, ep.mac->bytes);
            uint32_t probe = 0;
            uint64_t i = mix64(key);
            while (mac_slots_[i & mac_mask_].key != UINT64_MAX) ++i, ++probe;
            mac_slots_[i & mac_mask_] = {.key = key, .endpoint = e, .unused = 0};
            mac_max_probe_ = std::max(mac_max_probe_, probe);
        }
    }

    for (const auto& r : rules.external_ranges(Family::v4)) {
        ext_v4_first_.push_back(r.first.v4_host_order());
        ext_v4_class_.push_back(r.identity_class);
    }
    for (const auto& r : rules.external_ranges(Family::v6)) {
        ext_v6_first_.push_back({load64_big_endian(r.first.bytes.data()), load64_big_endian(r.first.bytes.data() + 8)});
        ext_v6_class_.push_back(r.identity_class);
    }
    for (uint16_t vlan = 0; vlan < known_vlans_.size(); ++vlan)
        if (rules.segment_of(vlan) != rules::kNoSegment) known_vlans_.set(vlan);
}

size_t IdentityTable::memory_bytes() const noexcept {
    return sizeof(*this) + addr_slots_.size() * sizeof(AddrSlot) + mac_slots_.size() * sizeof(MacSlot) +
           endpoint_class_.size() * sizeof(uint32_t) +
           ext_v4_first_.size() * (sizeof(uint32_t) + sizeof(uint32_t)) +
           ext_v6_first_.size() * (sizeof(ext_v6_first_[0]) + sizeof(uint32_t));
}

// ---------------------------------------------------------------------------------------------------
// Run side.

SourceCheck IdentityTable::check_source(const ParsedPacket& p, PortRole role) const noexcept {
    if (!segment_known(p.vlan)) return fail(Reason::unknown_segment);
    switch (p.kind) {
    case PacketKind::arp:
        return role == PortRole::uplink ? pass(resolve(p.arp_sender_ip)) : check_workload_arp(p);
    case PacketKind::ipv4:
    case PacketKind::ipv6:
        return role == PortRole::uplink ? pass(resolve(p.src)) : check_workload_ip(p);
    case PacketKind::other:
        break;
    }
    return fail(Reason::unsupported_ethertype);
}

rules::Identity IdentityTable::resolve(const IpAddr& addr) const noexcept {
    if (const AddrSlot* s = find_addr(addr)) return endpoint_identity(s->endpoint);
    if (addr.family == Family::v4) {
        // The last range whose first address is <= addr; the first range starts at 0.0.0.0.
        const auto it = std::upper_bound(ext_v4_first_.begin(), ext_v4_first_.end(), addr.v4_host_order());
        return {kExternal, ext_v4_class_[static_cast<size_t>(it - ext_v4_first_.begin()) - 1]};
    }
    const std::array<uint64_t, 2> key{load64_big_endian(addr.bytes.data()), load64_big_endian(addr.bytes.data() + 8)};
    const auto it = std::upper_bound(ext_v6_first_.begin(), ext_v6_first_.end(), key);
    return {kExternal, ext_v6_class_[static_cast<size_t>(it - ext_v6_first_.begin()) - 1]};
}

uint32_t IdentityTable::endpoint_by_mac(uint16_t vlan, const Mac& mac) const noexcept {
    const uint64_t key = mac_key(vlan, mac);
    uint64_t i = mix64(key);
    for (uint32_t probe = 0; probe <= mac_max_probe_; ++probe, ++i) {
        const MacSlot& s = mac_slots_[i & mac_mask_];
        if (s.key == key) return s.endpoint;
        if (s.key == UINT64_MAX) break;
    }
    return kExternal;
}

const IdentityTable::AddrSlot* IdentityTable::find_addr(const IpAddr& a) const noexcept {
    // The address as two words, compared without a call to memcmp.
    const uint64_t lo = load64(a.bytes.data()), hi = load64(a.bytes.data() + 8);
    uint64_t i = hash_addr(a.bytes, a.family);
    for (uint32_t probe = 0; probe <= addr_max_probe_; ++probe, ++i) {
        const AddrSlot& s = addr_slots_[i & addr_mask_];
        if (s.endpoint == kExternal) break;
        if (s.family == a.family && ((load64(s.addr.data()) ^ lo) | (load64(s.addr.data() + 8) ^ hi)) == 0) return &s;
    }
    return nullptr;
}

// May a frame from `frame_mac` in segment `vlan` claim address `a`?  `bound`: it is bound to an endpoint
// of this segment and the frame's MAC is that endpoint's (or, when it has none, no other endpoint's);
// `link_local`: it is the EUI-64 link-local of a MAC bound in this segment and the frame comes from
// that MAC.  The endpoint is the owner in both cases.
IdentityTable::ClaimResult IdentityTable::claim(const IpAddr& a, uint16_t vlan, const Mac& frame_mac) const noexcept {
    if (const AddrSlot* s = find_addr(a)) {
        if (s->vlan != vlan) return {Claim::wrong_segment, s->endpoint};
        if (s->has_mac ? !same_mac(s->mac, frame_mac) : endpoint_by_mac(vlan, frame_mac) != kExternal)
            return {Claim::wrong_mac, s->endpoint};
        return {Claim::bound, s->endpoint};
    }
    Mac derived;
    if (!eui64_link_local_mac(a, derived)) return {Claim::unbound, kExternal};
    const uint32_t owner = endpoint_by_mac(vlan, derived);
    if (owner == kExternal) return {Claim::unbound, kExternal};
    if (derived != frame_mac) return {Claim::wrong_mac, owner};
    return {Claim::link_local, owner};
}

void IdentityTable::prefetch_addr(const IpAddr& a) const noexcept {
    __builtin_prefetch(&addr_slots_[hash_addr(a.bytes, a.family) & addr_mask_]);
}

void IdentityTable::prefetch_source(const ParsedPacket& p) const noexcept { prefetch_addr(p.src); }

void IdentityTable::prefetch_ends(const ParsedPacket& p) const noexcept {
    prefetch_addr(p.src);
    prefetch_addr(p.dst);
}

bool IdentityTable::bound_source(const ParsedPacket& p, uint32_t& endpoint) const noexcept {
    if (p.nd || (p.kind != PacketKind::ipv4 && p.kind != PacketKind::ipv6) || !segment_known(p.vlan)) return false;
    const ClaimResult c = claim(p.src, p.vlan, p.src_mac);
    if (c.claim != Claim::bound) return false;
    endpoint = c.endpoint;
    return true;
}

bool IdentityTable::bound_source(const AckSegment& a, uint32_t& endpoint) const noexcept {
    if (!segment_known(a.vlan)) return false;
    const ClaimResult c = claim(a.src, a.vlan, a.src_mac);
    if (c.claim != Claim::bound) return false;
    endpoint = c.endpoint;
    return true;
}

SourceCheck IdentityTable::check_workload_ip(const ParsedPacket& p) const noexcept {
    const ClaimResult c = claim(p.src, p.vlan, p.src_mac);
    switch (c.claim) {
    case Claim::bound:
        if (p.nd && !nd_consistent(p, c.endpoint)) return fail(Reason::spoofed_nd);
        return pass(endpoint_identity(c.endpoint));
    case Claim::link_local:
        if (!link_local_source_allowed(p)) return fail(Reason::spoofed_ip);
        if (p.nd && !nd_consistent(p, c.endpoint)) return fail(Reason::spoofed_nd);
        return pass(endpoint_identity(c.endpoint), true);
    case Claim::wrong_mac:
        return fail(Reason::spoofed_mac);
    case Claim::unbound:
    case Claim::wrong_segment:
        break;
    }
    if (!is_unspecified(p.src) || !unspecified_source_allowed(p)) return fail(Reason::spoofed_ip);
    const uint32_t sender = endpoint_by_mac(p.vlan, p.src_mac);
    if (p.nd && !nd_consistent(p, sender)) return fail(Reason::spoofed_nd);
    return pass(sender != kExternal ? endpoint_identity(sender) : resolve(p.src), true);
}

SourceCheck IdentityTable::check_workload_arp(const ParsedPacket& p) const noexcept {
    if (p.arp_sender_mac != p.src_mac) return fail(Reason::spoofed_arp);
    if (is_unspecified(p.arp_sender_ip)) {
        // An ARP probe (RFC 5227): the prober must be able to claim the address it probes.
        if (p.arp_op != kArpRequest) return fail(Reason::spoofed_arp);
        const ClaimResult c = claim(p.arp_target_ip, p.vlan, p.src_mac);
        if (c.claim != Claim::bound) return fail(Reason::spoofed_arp);
        return pass(endpoint_identity(c.endpoint), true);
    }
    const ClaimResult c = claim(p.arp_sender_ip, p.vlan, p.src_mac);
    if (c.claim != Claim::bound) return fail(Reason::spoofed_arp);
    return pass(endpoint_identity(c.endpoint));
}

// The ND message's own claims, once its IP source was accepted.  `sender` is the endpoint that source
// belongs to (kExternal for an unspecified source from a MAC bound to no endpoint).
bool IdentityTable::nd_consistent(const ParsedPacket& p, uint32_t sender) const noexcept {
    if (!is_icmpv6(p)) return true;
    const bool ll_is_frame_mac = !p.nd_has_ll || p.nd_ll == p.src_mac;
    const auto target_is_senders = [&] {
        const ClaimResult t = claim(p.nd_target, p.vlan, p.src_mac);
        return (t.claim == Claim::bound || t.claim == Claim::link_local) &&
               (sender == kExternal || t.endpoint == sender);
    };
    switch (p.icmp_type) {
    case kNeighborSolicit:
        if (is_unspecified(p.src)) return !p.nd_has_ll && target_is_senders();  // DAD: no SLLA (RFC 4861 §4.3)
        return ll_is_frame_mac;
    case kRouterSolicit:
        if (is_unspecified(p.src)) return !p.nd_has_ll;  // RFC 4861 §4.1
        return ll_is_frame_mac;
    case kNeighborAdvert:
        return sender != kExternal && target_is_senders() && ll_is_frame_mac;
    case kRouterAdvert:
        return ll_is_frame_mac;
    case kRedirect:  // its option is the target's link-layer address: another node's
    default:
        return true;
    }
}

}  // namespace tagwall::dataplane
