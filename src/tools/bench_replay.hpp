// `tagwall-bench replay` (SPEC §7): pcaps through the real worker pipeline (dataplane/pipeline.hpp).
//
// Every packet of every --pcap is loaded into memory once (libpcap, Ethernet captures only), the files
// are merged by timestamp (stable: equal timestamps keep the command-line order, then file order), and
// each iteration runs them all through a FRESH Pipeline, so that every iteration sees the same
// verdicts.  `now` is each packet's own pcap timestamp in nanoseconds: runs are deterministic.  Only
// the processing is timed (TSC and steady_clock), never the pipeline's construction.
//
// With --policy the appliance is a wire of two ports: `workload` (index 0, role workload) and `uplink`
// (index 1, role uplink).  One worker only for now.  Control side; single-threaded.
#pragma once

#include <string>
#include <vector>

#include "dataplane/eal.hpp"

namespace tagwall::tools {

struct ReplayPcap {
    std::string port;  // "workload" or "uplink"
    std::string path;
};

struct ReplayBenchOptions {
    std::string policy_path;
    std::vector<ReplayPcap> pcaps;
    std::string engine = "trie";
    unsigned iterations = 1;
    bool json = false;
    std::string verdicts_path;  // empty: do not write
    dataplane::EalOptions eal;  // started only for the rte_acl engine
};

// The port names of the --policy wire, by index.
const std::vector<std::string>& replay_port_names();

// Runs the replay and prints the report (human or JSON) on stdout.  Returns the exit status (0);
// throws std::runtime_error on unreadable input (policy, pcap) and engine failures.
int run_replay_bench(const ReplayBenchOptions& options);

}  // namespace tagwall::tools
