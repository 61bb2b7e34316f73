// `tagwall-bench generate`: the traffic generator and sink of the real-I/O replay harness
// (scripts/bench-replay.sh).  It measures a device under test (tagwall, Open vSwitch with DPDK, a plain
// dpdk-testpmd) through its ports, RFC 2544 style: offered vs forwarded frames, and the highest rate
// with zero loss over a fixed interval, found by binary search.
//
// Wiring.  The device has P wire pairs, each a workload-side and an uplink-side port; every port is a
// net_memif server whose socket is MEMIF_DIR/w<k>.sock or MEMIF_DIR/u<k>.sock.  The generator opens
// the client end of each (generator port w<k> faces the device's workload port of pair k, u<k> its
// uplink port): the client side of every connection sends on u<k> and receives on w<k>, the server
// side the other way round.  It runs on its own CPUs (--cpus; the device has others): each lcore
// sends and receives on the pairs given to it (pair k to lcore k mod L).
//
// Traffic comes from the policy, as in `tagwall-bench pipeline` (bench_pipeline_traffic.hpp): the
// (client, endpoint, TCP port) conversations its allow rules admit (rules with `log: true` left out
// unless --include-logged: a device that logs each connection would be measured on its log), flow f
// on pair f mod P.  Mixes:
//   established  --flows connections open their handshake first (warm-up: every SYN, then every
//                SYN-ACK, then every ACK, each phase sent once the previous came through, with back-
//                pressure instead of pacing, untimed; a connection whose ACK did not come through goes
//                through the handshake again, as TCP would retransmit, up to 4 rounds), then each trial
//                loops one ACK each way per flow: 64-byte frames
//   imix         the same connections, each direction's segments carrying payload so that frames are
//                60/590/1514 bytes in the proportions 7:4:1 (simple IMIX, 64/594/1518 with the FCS)
//   new-conn     connections per second (RFC 9411's CPS): each connection is SYN, SYN-ACK, ACK, RST
//                with new 5-tuples for every connection (the client port and service advance over the
//                whole space, never repeating within a run unless it wraps); the generator's server and
//                client sides answer each segment only when it came through the device
//                (bench_generate_frames.hpp), so a connection counts only when all four did
//   denied       --flows SYNs the policy refuses (the allowed conversations on a TCP port no rule admits:
//                checked with the classifier), looped; a firewall forwards none of them
//
// A trial.  For --trial-seconds, each lcore offers its share of the rate (frames/s; connections/s for
// new-conn), paced on the TSC in bursts of up to 32 frames, copying each preloaded frame into a fresh
// mbuf (new-conn writes each SYN), and polls its receive ports between bursts.  Then it keeps
// receiving until nothing arrived for 20 ms (at most 1 s) so that frames in flight count.
// Counting, and how loss is measured:
//   offered (tx_attempted)  every frame the schedule sent to the device's port, accepted or not
//   tx_refused              frames the device's receive ring had no room for (on a memif the sender sees
//                           what a NIC would count as rx_missed): lost, never retried
//   forwarded (rx_valid)    frames that came back carrying the generator's marker, on the pair they were
//                           sent on and out of the other side (bench_generate_frames.hpp); anything else
//                           received is rx_foreign and never counts
//   lost = offered - forwarded (new-conn: connections started - connections completed); a trial has zero
//   loss when lost <= --loss-tolerance x offered (default 0: not one frame).
// When the generator itself cannot keep the requested rate (its cores are the limit), the trial's
// offered rate falls short of the request and the trial says generator_limited.
// Search (--search): the first trial offers --rate-max (0: as fast as the generator can), then the
// rate is halved and bisected until the bracket is within --resolution; --rate R instead runs one
// trial at R.  --between-trials CMD runs a shell command before each trial (the harness flushes the
// device's connection table there for new-conn).
//
// Control side: the main lcore opens the ports, builds the frames and runs the search; during a trial
// every lcore (the main one included) runs only its pairs, with its own counters; nothing is shared
// but the read-only frames.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tagwall::tools {

struct GenerateOptions {
    std::string policy_path;
    std::string mix = "established";  // established | imix | new-conn | denied
    std::string memif_dir;             // where the device's memif sockets are
    unsigned pairs = 1;
    unsigned memif_rsize = 10;         // log2 of the memif ring size the generator (the client) asks for
    unsigned rx_queues = 1;            // receive queues per port (the rings the device may transmit on)
    std::vector<unsigned> cpus;        // the generator's CPUs (empty: the first CPU it may use)
    uint64_t flows = 10'000;           // established, imix, denied
    bool search = false;
    double rate = 0;                   // one trial at this rate (frames/s; new-conn: connections/s); 0: unlimited
    double rate_max = 0;               // --search: the first trial's rate (0: as fast as the generator can)
    double resolution = 0.02;          // --search: stop when the bracket is within this fraction
    unsigned max_trials = 14;
    double trial_seconds = 2;
    double loss_tolerance = 0;
    std::string between_trials;        // shell command run before each trial
    std::string after_trials;          // shell command run after the last trial, the ports still connected
    bool include_logged = false;
    uint64_t seed = 1;
    double link_timeout_seconds = 10;
    std::string file_prefix;           // EAL --file-prefix (default tagwall-gen-PID)
    std::string write_pcap;            // also write the frames it loops (new-conn: its first SYNs) here
    bool json = false;
    bool quiet = false;
};

// Runs the generator; returns the process exit status (0: it ran, whatever it measured).
int run_generate(const GenerateOptions& options);

// `tagwall-bench generate ARGS...`: parses the options (bench_generate_cli.cpp) and runs.
int run_generate_command(const std::vector<std::string>& args);

}  // namespace tagwall::tools
