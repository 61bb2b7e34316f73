// `tagwall-bench replay` (SPEC §7): pcaps through the real worker pipeline (dataplane/pipeline.hpp).
//
// Every packet of every --pcap is loaded into memory once (libpcap, Ethernet captures only), the files
// are merged by timestamp (stable: equal timestamps keep the command-line order, then file order), and
// each iteration runs them all through FRESH Pipelines (one per worker), so that every iteration sees
// the same verdicts.  `now` is each packet's own pcap timestamp in nanoseconds: runs are
// deterministic.  Only the processing is timed (TSC and steady_clock), never the pipelines'
// construction.
//
// With --policy the appliance is a wire of two ports: `workload` (index 0, role workload) and `uplink`
// (index 1, role uplink).  With --config it is the config's appliance: its ports (names and roles, in
// config order), its forwarding (wire pairs, or switch with a MAC table per worker), its flow-table
// capacity (divided among the workers) and timeouts; the ports' devargs are not opened.
//
// Workers (--workers W > 1).  Every frame is given to one of W pipelines by a symmetric hash, as
// symmetric RSS spreads a port's traffic over its queues (dispatch_hash below): both directions of a
// connection meet on one worker, and fragments hash without ports so that later fragments follow
// their first.  Each worker runs its share in merged-timestamp order on its own std::thread with its
// own Pipeline (its own flow and fragment tables); the policy is shared, immutable.  Verdicts land at
// each frame's merged index, so --verdicts is written in merged order whichever worker decided, and is
// the same as with one worker as long as no connection's packets are split across workers (see
// dispatch_hash for the one case that can).  Only the processing is timed, per worker; the total
// rate is all packets over the wall time from the workers' common start to the last one's end.
//
// Control side: the main thread loads, builds and reports; worker threads only run their share.
//
// --json also reports each worker's fragment table at the end of the first iteration
// (`fragment_table`: capacity, in_use, high_water, memory_bytes; summed in the total), so that a
// fragment flood can show that the table stays at the size it was given.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "dataplane/eal.hpp"
#include "dataplane/pipeline.hpp"

namespace tagwall::tools {

struct ReplayPcap {
    std::string port;  // a port name: "workload" or "uplink" with --policy, a config's port with --config
    std::string path;
};

struct ReplayBenchOptions {
    std::string policy_path;
    // The appliance's ports (index = position): names, and role and wire peer for the pipeline.
    std::vector<std::string> port_names{"workload", "uplink"};
    std::vector<dataplane::PortConfig> ports{{dataplane::PortRole::workload, 1}, {dataplane::PortRole::uplink, 0}};
    bool l2_switch = false;
    uint32_t flow_capacity = 0;                // per appliance; 0: the pipeline's default per worker
    std::optional<dataplane::FlowTimeouts> timeouts;
    std::vector<ReplayPcap> pcaps;
    std::string engine = "trie";
    unsigned iterations = 1;
    unsigned workers = 1;
    bool json = false;
    std::string verdicts_path;  // empty: do not write
    dataplane::EalOptions eal;  // started only for the rte_acl engine
};

// The port names of the --policy wire, by index (the defaults of ReplayBenchOptions::port_names).
const std::vector<std::string>& replay_port_names();

// The worker dispatch hash of one frame: symmetric in its two ends, so that both directions of a
// connection get the same value.  What is hashed:
//   - TCP, UDP, SCTP (not fragmented): VLAN, family, protocol, both (address, port) ends;
//   - fragments (first and later alike), ICMP, other protocols: VLAN, family, protocol (0 for IPv6
//     fragments, as the fragment table keys them), both addresses - a later fragment carries no
//     ports, so its first must not be hashed with them either;
//   - an ICMP/ICMPv6 error: the quoted packet's header instead of its own, so that it reaches the
//     worker holding the connection it is `related` to (RSS would hash its outer header; a real
//     worker loop must then hand such errors on to the right worker);
//   - ARP: VLAN and the sender and target addresses; anything else (and frames that do not parse):
//     what the parser got, which is at least the VLAN.
// The one split this allows, as RSS on a NIC does: the fragmented datagrams of a TCP/UDP connection go
// to the worker of its address hash and its unfragmented packets to the worker of its port hash, so a
// connection with both kinds is tracked in two tables, each seeing part of it (with W > 1 its verdicts
// can then differ from W = 1).  The pcaps/ tests fragment only ICMP, which has no ports.
// Run side: noexcept, no allocation.
uint64_t dispatch_hash(std::span<const uint8_t> frame) noexcept;

// Runs the replay and prints the report (human or JSON) on stdout.  Returns the exit status (0);
// throws std::runtime_error on unreadable input (policy, pcap) and engine failures.
int run_replay_bench(const ReplayBenchOptions& options);

}  // namespace tagwall::tools
