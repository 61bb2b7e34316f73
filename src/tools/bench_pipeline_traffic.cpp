// The synthetic traffic of `tagwall-bench pipeline`: see bench_pipeline_traffic.hpp.
#include "tools/bench_pipeline_traffic.hpp"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <optional>
#include <set>
#include <stdexcept>
#include <tuple>
#include <utility>

#include <fmt/format.h>
#include <rte_common.h>
#include <rte_malloc.h>

#include "dataplane/checksum.hpp"
#include "dataplane/hash.hpp"
#include "dataplane/parser.hpp"
#include "rules/policy_loader.hpp"

namespace tagwall::tools::traffic {
namespace {

constexpr double kMinAllowedShare = 0.99;
constexpr size_t kMaxServices = size_t{1} << 20;
constexpr size_t kMaxDestinationsPerRule = 16384;
constexpr size_t kClientsPerRule = 4;  // endpoint clients and external clients, each

}  // namespace

// --- the policy and its services ---

LoadedPolicy load_policy(const std::string& path, const std::string& engine) {
    LoadedPolicy p;
    p.rules = rules::RuleSet::compile(rules::load_policy_or_throw(path));
    p.identity = std::make_shared<const dataplane::IdentityTable>(*p.rules);
    p.classifier = std::make_shared<const rules::PolicyClassifier>(p.rules, engine);
    return p;
}

namespace {

std::optional<uint32_t> first_v4(const rules::CompiledEndpoint& e) {
    for (const rules::IpAddr& a : e.addrs)
        if (a.family == rules::Family::v4) return a.v4_host_order();
    return std::nullopt;
}

// The TCP port a rule's services admit (one per item), or 80 for `any`.
std::vector<uint16_t> rule_ports(const rules::CompiledRule& r) {
    std::vector<uint16_t> ports;
    if (r.any_service) ports.push_back(80);
    for (const rules::ServiceItem& s : r.services) {
        if (s.proto != dataplane::kIpProtoTcp) continue;
        const uint16_t p = s.port_lo != 0 ? s.port_lo : std::min<uint16_t>(s.port_hi, 80);
        if (p != 0) ports.push_back(p);
    }
    return ports;
}

// One external address per external IPv4 range, with its identity class: a documentation address
// (TEST-NET-3, -2, -1) when the range holds one, else the middle of its unicast part; never one that
// an endpoint owns.
std::vector<std::pair<uint32_t, uint32_t>> external_clients(const LoadedPolicy& p) {
    constexpr uint32_t kTestNets[] = {0xCB00710A, 0xC633640A, 0xC000020A};  // 203.0.113.10 198.51.100.10 192.0.2.10
    constexpr uint32_t kUnicastFirst = 0x01000000, kUnicastLast = 0xDFFFFFFE;  // 1.0.0.0 .. 223.255.255.254
    std::vector<std::pair<uint32_t, uint32_t>> out;
    const auto& ranges = p.rules->external_ranges(rules::Family::v4);
    for (size_t i = 0; i < ranges.size(); ++i) {
        const uint32_t first = std::max(ranges[i].first.v4_host_order(), kUnicastFirst);
        const uint32_t last =
            std::min(i + 1 < ranges.size() ? ranges[i + 1].first.v4_host_order() - 1 : UINT32_MAX, kUnicastLast);
        if (first > last) continue;
        std::vector<uint32_t> candidates(std::begin(kTestNets), std::end(kTestNets));
        candidates.insert(candidates.end(), {first + (last - first) / 2, first, last});
        for (const uint32_t a : candidates) {
            if (a < first || a > last) continue;
            const rules::Identity id = p.identity->resolve(rules::IpAddr::v4(a));
            if (id.endpoint != rules::kExternal) continue;
            out.emplace_back(a, id.identity_class);
            break;
        }
    }
    return out;
}

// The MAC a server sends from: its bound one, or a locally administered one no endpoint owns.
std::optional<Mac> server_mac(const LoadedPolicy& p, const rules::CompiledEndpoint& e, uint32_t index) {
    if (e.mac) return e.mac->bytes;
    const Mac m{0x02, 0x54, static_cast<uint8_t>(index >> 24), static_cast<uint8_t>(index >> 16),
                static_cast<uint8_t>(index >> 8), static_cast<uint8_t>(index)};
    if (p.identity->endpoint_by_mac(e.vlan, m) != rules::kExternal) return std::nullopt;
    return m;
}

// A few clients from the rule's `from` side: the first endpoint of each of its identity classes, and
// external addresses whose class it holds (kClientsPerRule of each, at most).
std::vector<uint32_t> clients_of(const LoadedPolicy& p, const rules::CompiledRule& r,
                                 const std::vector<std::vector<uint32_t>>& by_class,
                                 const std::vector<std::pair<uint32_t, uint32_t>>& externals) {
    std::vector<uint32_t> clients;
    for (size_t k = r.from_classes.next(0); k < r.from_classes.size() && clients.size() < kClientsPerRule;
         k = r.from_classes.next(k + 1))
        if (k < by_class.size() && !by_class[k].empty()) clients.push_back(*first_v4(p.rules->endpoints()[by_class[k][0]]));
    for (size_t i = 0, n = 0; i < externals.size() && n < kClientsPerRule; ++i) {
        if (!r.from_classes.test(externals[i].second)) continue;
        clients.push_back(externals[i].first);
        ++n;
    }
    return clients;
}

// The rule that allows TCP from `client` to `server`:`port` in the segment of `vlan`, if one does.
std::optional<int32_t> allowing_rule(const LoadedPolicy& p, uint32_t client, uint32_t server, uint16_t vlan,
                                     uint16_t port) {
    rules::PacketKey key;
    key.vlan = vlan;
    key.src = rules::IpAddr::v4(client);
    key.dst = rules::IpAddr::v4(server);
    key.proto = dataplane::kIpProtoTcp;
    key.sport = 40000;
    key.dport = port;
    const rules::Decision d = p.classifier->classify(key);
    if (d.action != rules::Action::allow) return std::nullopt;
    return d.rule;
}

}  // namespace

// Asks the classifier which (client, endpoint, port) conversations the allow rules admit: for each
// allow rule, a few clients of its `from` side (endpoints and external addresses) to the endpoints
// of its `to` side on its TCP ports.  Only what classify() allows is kept.
Traffic discover_services(const LoadedPolicy& p) {
    const rules::RuleSet& rs = *p.rules;
    std::vector<std::vector<uint32_t>> by_class(rs.identity_classes().size());
    for (uint32_t e = 0; e < rs.endpoints().size(); ++e)
        if (first_v4(rs.endpoints()[e])) by_class[rs.endpoints()[e].identity_class].push_back(e);
    const auto externals = external_clients(p);

    Traffic t;
    std::set<std::tuple<uint32_t, uint32_t, uint16_t>> seen;
    std::set<int32_t> rules_used;
    std::set<uint16_t> all_ports;
    for (const rules::CompiledRule& r : rs.rules()) {
        if (r.action != rules::Action::allow || t.services.size() >= kMaxServices) continue;
        const std::vector<uint32_t> clients = clients_of(p, r, by_class, externals);
        size_t destinations = 0;
        for (size_t k = r.to_classes.next(0); k < r.to_classes.size() && destinations < kMaxDestinationsPerRule;
             k = r.to_classes.next(k + 1)) {
            if (k >= by_class.size()) continue;
            for (const uint32_t e : by_class[k]) {
                if (++destinations > kMaxDestinationsPerRule) break;
                const rules::CompiledEndpoint& ep = rs.endpoints()[e];
                const auto mac = server_mac(p, ep, e);
                if (!mac) continue;
                const uint32_t server = *first_v4(ep);
                for (const uint16_t port : rule_ports(r)) {
                    for (const uint32_t client : clients) {
                        if (client == server || !seen.emplace(client, server, port).second) continue;
                        const auto rule = allowing_rule(p, client, server, ep.vlan, port);
                        if (!rule) continue;
                        t.services.push_back({client, server, port, ep.vlan, *mac, *rule});
                        rules_used.insert(*rule);
                        all_ports.insert(port);
                    }
                }
            }
        }
    }
    if (t.services.empty())
        throw std::runtime_error(fmt::format("{}: no allow rule admits TCP to an endpoint's IPv4 address from the "
                                             "uplink: nothing to measure", rs.source_file()));
    for (uint32_t port = 1024; port <= 65535; ++port)
        if (!all_ports.count(static_cast<uint16_t>(port))) t.client_ports.push_back(static_cast<uint16_t>(port));
    t.rules_used = rules_used.size();
    return t;
}

FlowSpec flow(const Traffic& t, uint64_t i, uint64_t seed) noexcept {
    const size_t s = t.services.size();
    const uint64_t h = dataplane::mix64(i * dataplane::kGoldenRatio64 ^ seed);
    return {&t.services[i % s], t.client_ports[i / s], static_cast<uint32_t>(h), static_cast<uint32_t>(h >> 32)};
}

// Every flow's first packet through the classifier, before the dataplane sees it.
void verify_flows(const LoadedPolicy& p, const Traffic& t, uint64_t count, uint64_t seed) {
    uint64_t allowed = 0;
    for (uint64_t i = 0; i < count; ++i) {
        const FlowSpec f = flow(t, i, seed);
        rules::PacketKey key;
        key.vlan = f.service->vlan;
        key.src = rules::IpAddr::v4(f.service->client_ip);
        key.dst = rules::IpAddr::v4(f.service->server_ip);
        key.proto = dataplane::kIpProtoTcp;
        key.sport = f.sport;
        key.dport = f.service->dport;
        allowed += p.classifier->classify(key).action == rules::Action::allow;
    }
    if (static_cast<double>(allowed) < kMinAllowedShare * static_cast<double>(count))
        throw std::runtime_error(fmt::format("the classifier allows only {} of the {} synthesized flows", allowed, count));
}

// --- frames ---

namespace {

void put16(uint8_t* p, uint16_t v) noexcept {
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
}
void put32(uint8_t* p, uint32_t v) noexcept {
    put16(p, static_cast<uint16_t>(v >> 16));
    put16(p + 2, static_cast<uint16_t>(v));
}


}  // namespace

FrameBuffer::FrameBuffer(size_t count, unsigned stride) : count_(count), stride_(stride) {
    bytes_ = static_cast<uint8_t*>(rte_zmalloc("tagwall-bench-frames", count * stride, RTE_CACHE_LINE_SIZE));
    refs_ = static_cast<FrameRef*>(rte_zmalloc("tagwall-bench-refs", count * sizeof(FrameRef), RTE_CACHE_LINE_SIZE));
    if (bytes_ == nullptr || refs_ == nullptr) {
        rte_free(bytes_);
        rte_free(refs_);
        throw std::runtime_error(fmt::format("rte_zmalloc: no room for {} frames ({:.1f} MB on the EAL heap)", count,
                                             static_cast<double>(count * (stride + sizeof(FrameRef))) / 1e6));
    }
}

FrameBuffer::~FrameBuffer() {
    rte_free(bytes_);
    rte_free(refs_);
}

// Ethernet (802.1Q when the VLAN is not 0) / IPv4 (20 bytes, DF) / TCP (20 bytes, window 65535, no
// payload), zero-padded to 60 bytes, checksums filled in.
void FrameBuffer::write(size_t i, const FlowSpec& f, uint8_t flags, bool reply) noexcept {
    const Service& s = *f.service;
    uint8_t* p = frame(i);
    std::memset(p, 0, kFrameLength);
    std::memcpy(p, reply ? kClientMac.data() : s.server_mac.data(), 6);
    std::memcpy(p + 6, reply ? s.server_mac.data() : kClientMac.data(), 6);
    size_t l3 = 12;
    if (s.vlan != 0) {
        put16(p + 12, dataplane::kEtherTypeVlan);
        put16(p + 14, s.vlan);
        l3 = 16;
    }
    put16(p + l3, dataplane::kEtherTypeIpv4);
    uint8_t* ip = p + l3 + 2;
    const uint32_t src = reply ? s.server_ip : s.client_ip, dst = reply ? s.client_ip : s.server_ip;
    ip[0] = 0x45;
    put16(ip + 2, 40);                                          // total length
    put16(ip + 4, static_cast<uint16_t>(i));                    // id
    put16(ip + 6, 0x4000);                                      // DF
    ip[8] = 64;
    ip[9] = dataplane::kIpProtoTcp;
    put32(ip + 12, src);
    put32(ip + 16, dst);
    put16(ip + 10, dataplane::internet_checksum(ip, 20));
    uint8_t* tcp = ip + 20;
    const bool syn = (flags & dataplane::kTcpSyn) != 0;
    const uint32_t own_isn = reply ? f.isn_server : f.isn_client, peer_isn = reply ? f.isn_client : f.isn_server;
    put16(tcp, reply ? s.dport : f.sport);
    put16(tcp + 2, reply ? f.sport : s.dport);
    put32(tcp + 4, syn ? own_isn : own_isn + 1);
    put32(tcp + 8, (flags & dataplane::kTcpAck) ? peer_isn + 1 : 0);
    tcp[12] = 5 << 4;
    tcp[13] = flags;
    put16(tcp + 14, 65535);
    const uint64_t pseudo = dataplane::internet_sum(ip + 12, 8) + dataplane::kIpProtoTcp + 20;
    put16(tcp + 16, dataplane::internet_checksum(tcp, 20, pseudo));
    refs_[i] = {p, kFrameLength, reply ? kWorkloadPort : kUplinkPort};
}

}  // namespace tagwall::tools::traffic
