// `tagwall-bench pipeline`: the worker pipeline's packet rate and cycles per packet on synthetic
// traffic that the policy allows, against a "parse and forward only" baseline (SPEC §7).
//
// Traffic.  Every frame is a 64-byte Ethernet/IPv4/TCP frame (60 bytes in memory, the FCS being the
// NIC's business), 802.1Q-tagged with the destination endpoint's segment VLAN, with correct lengths and
// IP/TCP checksums, written by this file into memory from the EAL heap (hugepages when available) at a
// 64- or 128-byte stride, and fed to Pipeline::process() in bursts of 32 FrameRefs - what the worker
// loop does with an rx burst.  The appliance is replay's wire: port 0 `workload` (role workload) and
// port 1 `uplink` (role uplink).  Clients are on the uplink; servers are policy endpoints on the
// workload port, sending from their own address (and bound MAC, when they have one), so SpoofGuard
// passes them.
//
// Which conversations: the policy's allow rules are asked, through PolicyClassifier::classify, which
// (client address, endpoint address, TCP port) triples they admit - "services": the candidate clients
// are one external address per external range of the policy and a sample of endpoints, the candidate
// ports the allow rules' TCP ports.  Flow i uses service i mod S with the (i div S)-th client port
// (client ports skip every candidate service port, so no two flows share a 5-tuple in either
// direction), and every flow is classified once more before it is used.  IPv4 only.
//
// Scenarios (each timed pass measures only the processing loop, with rte_rdtsc and steady_clock; the
// "median" figures come from 1024-packet segments of each pass, which mostly escape preemption on a
// shared machine, the "wall" figures from whole passes):
//   established  N flows complete their handshakes (SYN, SYN-ACK, ACK; untimed), then each pass sends
//                one pure ACK each way per flow, in an order shuffled across flows and directions
//   baseline     the same frames, the same memory and bursts, through the worker's parse (an ACK's
//                parse_ack_segment(), else parse_frame()) and the wire peer choice only: what any
//                forwarding costs
//   new-flow     every packet a SYN of a new connection (distinct 5-tuples) into a fresh pipeline
//   memory       M flows (default 1M) established and one pass of ACKs; the process RSS and the EAL
//                heap are read after the pipeline's construction and after the traffic (the flow
//                table is allocated at start: growth should be ~0)
//   swap         (not part of `all`) the established traffic through a worker that checks for a new
//                policy generation before every burst, as the appliance's worker does (RCU,
//                dataplane/publisher.hpp), in passes that alternate: "steady" (nothing published) and
//                "swapping" (a control thread publishes a new generation of the same policy --swap-hz
//                times a second, so every flow is re-verified on its next packet after each one); the
//                ratio swapping / steady, each publication's phases (publish, acknowledged, grace:
//                p50/p99/max), and the policy's load and compile times
// The established and baseline passes alternate while both need more; the baseline (~20x faster, so
// it needs many more passes to fill its minimum time) then goes on alone, its frames warm in the cache.
//
// Control side; single-threaded (one worker, on the core the EAL pins this process to).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "dataplane/eal.hpp"

namespace tagwall::tools {

struct PipelineBenchOptions {
    std::string policy_path;
    std::string scenario = "all";   // established | new-flow | baseline | memory | all | swap
    std::string engine = "trie";
    uint32_t flows = 100'000;       // established / baseline: concurrent flows
    uint64_t packets = 0;           // packets per timed pass; 0: established/baseline 2 x flows,
                                    // new-flow 1,000,000 SYNs
    uint64_t new_flows = 0;         // new-flow only: SYNs per pass (0: `packets`, or its default)
    uint32_t memory_flows = 1'000'000;
    uint32_t flow_capacity = 0;     // 0: the power of two >= 2 x the scenario's flows
    unsigned iterations = 3;        // at least this many timed passes per scenario...
    double min_seconds = 0.5;       // ...and more until this much was measured
    unsigned stride = 64;           // bytes between frames: 64 or 128
    uint64_t seed = 1;              // traffic order, ISNs and the flow tables' hash seed
    double swap_hz = 10;            // swap: policy publications per second during the swapping passes
    bool json = false;
    dataplane::EalOptions eal;      // hugepages when available (automatic), unless told otherwise
};

// Runs the scenarios and prints the report (a small table, or with `json` one JSON object per
// scenario and line).  Returns 0; throws std::runtime_error when the policy admits no traffic, the
// traffic is mostly dropped, or memory cannot be had.
int run_pipeline_bench(const PipelineBenchOptions& options);

}  // namespace tagwall::tools
