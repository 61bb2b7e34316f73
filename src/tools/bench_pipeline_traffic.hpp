// The synthetic traffic of `tagwall-bench pipeline` (bench_pipeline.hpp says what it is and why):
// which conversations the policy allows, the flows spread over them, and the 64-byte frames written
// for them into memory from the EAL heap.
//
// Control side, single-threaded: the discovery and the frame writing run before any timing, and the
// EAL must be running (FrameBuffer allocates with rte_zmalloc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/identity.hpp"
#include "dataplane/packet.hpp"
#include "dataplane/pipeline.hpp"
#include "rules/classifier_policy.hpp"
#include "rules/ruleset.hpp"

namespace tagwall::tools::traffic {

using dataplane::FrameRef;
using dataplane::Mac;

inline constexpr uint16_t kFrameLength = 60;                  // a 64-byte frame without its FCS
inline constexpr uint8_t kWorkloadPort = 0, kUplinkPort = 1;  // replay's wire (replay_port_names())
inline constexpr Mac kClientMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x01};  // the router behind the uplink

// One conversation the policy allows: a client (external or endpoint address, on the uplink) to an
// endpoint's IPv4 address on a TCP port.  Addresses in host order.
struct Service {
    uint32_t client_ip = 0;
    uint32_t server_ip = 0;
    uint16_t dport = 0;
    uint16_t vlan = 0;
    Mac server_mac{};
    int32_t rule = -1;  // what the classifier said
};

// What discover_services() found, and the client ports flows use.
struct Traffic {
    std::vector<Service> services;
    std::vector<uint16_t> client_ports;  // 1024..65535 minus every service port
    size_t rules_used = 0;

    uint64_t max_flows() const noexcept { return uint64_t{services.size()} * client_ports.size(); }
};

// Flow i of the traffic, and its initial sequence numbers.
struct FlowSpec {
    const Service* service = nullptr;
    uint16_t sport = 0;
    uint32_t isn_client = 0, isn_server = 0;
};

// The policy as the dataplane sees it, compiled once (as replay does).
struct LoadedPolicy {
    std::shared_ptr<const rules::RuleSet> rules;
    std::shared_ptr<const dataplane::IdentityTable> identity;
    std::shared_ptr<const rules::PolicyClassifier> classifier;
};

// Frames on the EAL heap (hugepages when the EAL has them) with their FrameRefs, freed with rte_free.
class FrameBuffer {
public:
    FrameBuffer(size_t count, unsigned stride);
    ~FrameBuffer();
    FrameBuffer(const FrameBuffer&) = delete;
    FrameBuffer& operator=(const FrameBuffer&) = delete;
    uint8_t* frame(size_t i) noexcept { return bytes_ + i * stride_; }
    FrameRef* refs() noexcept { return refs_; }
    size_t size() const noexcept { return count_; }
    // Writes frame i (TCP segment `flags` of flow f; `reply`: server to client) and its FrameRef.
    void write(size_t i, const FlowSpec& f, uint8_t flags, bool reply) noexcept;

private:
    size_t count_;
    unsigned stride_;
    uint8_t* bytes_ = nullptr;
    FrameRef* refs_ = nullptr;
};


// Loads and compiles the policy, its identity table and its classifier (engine: trie, rte_acl, linear).
LoadedPolicy load_policy(const std::string& path, const std::string& engine);

// Asks the classifier which (client, endpoint, TCP port) conversations the allow rules admit.  Throws
// std::runtime_error when none.
Traffic discover_services(const LoadedPolicy& p);

// Flow i: service i mod S, the (i div S)-th client port, sequence numbers from (i, seed).  Needs
// i < t.max_flows().
FlowSpec flow(const Traffic& t, uint64_t i, uint64_t seed) noexcept;

// Classifies the first packet of flows [0, count); throws std::runtime_error when less than 99% of
// them are allowed.
void verify_flows(const LoadedPolicy& p, const Traffic& t, uint64_t count, uint64_t seed);

}  // namespace tagwall::tools::traffic
