// `tagwall-bench generate`'s command line (the generator itself is bench_generate.cpp).
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include "tools/bench_generate.hpp"

namespace tagwall::tools {
namespace {

namespace po = boost::program_options;

const char* const kGenerateHelp = R"(Usage: tagwall-bench generate --policy FILE --memif-dir DIR [--pairs P] [--cpus LIST]
                              [--mix established|imix|new-conn|denied] [--flows N]
                              [--rate R | --search [--rate-max R]] [--trial-seconds S] [--json]

The traffic generator and sink of scripts/bench-replay.sh: real I/O into a device under test over
net_memif.  The device (tagwall, ovs-vswitchd, dpdk-testpmd ...) is the memif SERVER of 2 x P ports,
sockets DIR/w<k>.sock (its workload-side port of wire pair k) and DIR/u<k>.sock (its uplink side),
and forwards each pair's two ports to each other; start it first.  This process is the client of
every port, on its own CPUs (--cpus; pair k is sent and received by the k mod L-th of them).

Mixes (conversations the policy's allow rules admit, as tagwall-bench pipeline finds them):
  established  --flows TCP connections, handshakes first (untimed warm-up), then one 64-byte ACK each
               way per flow, looped
  imix         the same connections; frames of 60/590/1514 bytes (64/594/1518 with FCS), 7:4:1
  new-conn     connections per second: SYN, SYN-ACK, ACK, RST, each segment answered by the
               generator's other side only once it came through; new 5-tuples for every connection
  denied       --flows SYNs to a TCP port the policy refuses, looped: a firewall forwards none

Counting: offered = every frame the schedule sent to the device (also those its full receive ring
refused: lost, as a NIC's rx_missed); forwarded = frames of ours that came back on the right pair
and side (a marker in the IPv4 id; anything else is rx_foreign); new-conn counts connections that
completed all four segments.  Zero loss: lost <= --loss-tolerance x offered.  --search: a trial at
--rate-max (0: as fast as the generator can), then bisection to the highest zero-loss rate.
--json prints one object: mix, pairs, flows, warmup, trials[], max (the first trial), no_drop (the
best zero-loss trial, or null); rates are frames/s (new-conn: connections/s, and pps of all segments).

Example (tagwall, or any memif device, already running with servers in /tmp/lab):
  tagwall-bench generate --policy p.yaml --memif-dir /tmp/lab --cpus 0 --mix established \
      --flows 100000 --search --trial-seconds 2 --json

Exit status: 0 ran (whatever it measured), 1 failure (no link, EAL, policy), 2 usage error.
)";

std::vector<unsigned> parse_cpu_list(const std::string& text) {
    std::vector<unsigned> cpus;
    std::stringstream in(text);
    std::string item;
    while (std::getline(in, item, ',')) {
        const auto dash = item.find('-');
        try {
            size_t used = 0;
            const unsigned lo = static_cast<unsigned>(std::stoul(item.substr(0, dash), &used));
            const unsigned hi = dash == std::string::npos ? lo : static_cast<unsigned>(std::stoul(item.substr(dash + 1)));
            if (hi < lo || hi > 1023) throw std::invalid_argument(item);
            for (unsigned c = lo; c <= hi; ++c) cpus.push_back(c);
        } catch (const std::exception&) {
            throw po::error(fmt::format("--cpus: '{}' is not a CPU or a range of CPUs", item));
        }
    }
    if (cpus.empty()) throw po::error("--cpus: no CPU given");
    return cpus;
}

}  // namespace

int run_generate_command(const std::vector<std::string>& args) {
    po::options_description opts("generate options");
    GenerateOptions o;
    opts.add_options()
        ("help,h", "show this help")
        ("policy,p", po::value<std::string>(&o.policy_path), "the policy whose conversations make the traffic")
        ("memif-dir", po::value<std::string>(&o.memif_dir), "directory of the device's memif sockets (w<k>.sock, u<k>.sock)")
        ("pairs", po::value<unsigned>(&o.pairs)->default_value(1), "wire pairs of the device (1..128)")
        ("cpus", po::value<std::string>(), "the generator's CPUs, e.g. 0 or 0,1 or 0-1 (default: the first it may use)")
        ("mix", po::value<std::string>(&o.mix)->default_value("established"), "established | imix | new-conn | denied")
        ("flows", po::value<uint64_t>(&o.flows)->default_value(10000), "established, imix, denied: flows looped over")
        ("rate", po::value<double>(&o.rate)->default_value(0), "one trial at this rate, frames/s (new-conn: connections/s); 0: as fast as possible")
        ("search", "binary search for the highest zero-loss rate")
        ("rate-max", po::value<double>(&o.rate_max)->default_value(0), "--search: the first trial's rate (0: as fast as possible)")
        ("resolution", po::value<double>(&o.resolution)->default_value(0.02), "--search: stop when the bracket is within this fraction")
        ("max-trials", po::value<unsigned>(&o.max_trials)->default_value(14), "--search: at most this many trials")
        ("trial-seconds", po::value<double>(&o.trial_seconds)->default_value(2), "sending time of each trial")
        ("loss-tolerance", po::value<double>(&o.loss_tolerance)->default_value(0), "fraction of offered frames a zero-loss trial may lose")
        ("between-trials", po::value<std::string>(&o.between_trials), "shell command run before each trial")
        ("after-trials", po::value<std::string>(&o.after_trials),
         "shell command run after the last trial while the memif ports are still connected (the harness reads the "
         "device's counters there)")
        ("include-logged", "also use conversations of rules with `log: true`")
        ("rx-queues", po::value<unsigned>(&o.rx_queues)->default_value(1),
         "receive queues per port: a memif server transmits on the client's receive rings, and one that sends from "
         "several threads (OVS: each PMD thread and the main thread) needs one ring each")
        ("memif-rsize", po::value<unsigned>(&o.memif_rsize)->default_value(10), "log2 of the memif ring size (1..14)")
        ("seed", po::value<uint64_t>(&o.seed)->default_value(1), "sequence numbers and flow order")
        ("link-timeout", po::value<double>(&o.link_timeout_seconds)->default_value(10), "seconds to wait for the memif links")
        ("file-prefix", po::value<std::string>(&o.file_prefix), "EAL --file-prefix (default tagwall-gen-PID)")
        ("write-pcap", po::value<std::string>(&o.write_pcap),
         "also write the frames the mix loops to this pcap (new-conn: the first SYNs of each pair), to inspect or "
         "replay them elsewhere")
        ("json", "print one JSON object on stdout")
        ("quiet,q", "no progress lines on stderr");
    po::variables_map vm;
    po::store(po::command_line_parser(args).options(opts).run(), vm);
    po::notify(vm);
    if (vm.count("help")) {
        fmt::print("{}\n", kGenerateHelp);
        std::cout << opts << '\n';
        return 0;
    }
    if (o.policy_path.empty()) throw po::error("generate: --policy is required");
    if (o.memif_dir.empty()) throw po::error("generate: --memif-dir is required");
    if (vm.count("cpus")) o.cpus = parse_cpu_list(vm["cpus"].as<std::string>());
    o.search = vm.count("search") > 0;
    o.include_logged = vm.count("include-logged") > 0;
    o.json = vm.count("json") > 0;
    o.quiet = vm.count("quiet") > 0;
    if (o.mix != "established" && o.mix != "imix" && o.mix != "new-conn" && o.mix != "denied")
        throw po::error(fmt::format("generate: unknown mix '{}' (established, imix, new-conn, denied)", o.mix));
    if (o.pairs == 0 || o.pairs > 128) throw po::error("generate: --pairs must be 1..128");
    if (o.cpus.size() > o.pairs) throw po::error("generate: more --cpus than pairs (each CPU needs a pair to drive)");
    if (o.flows == 0 || o.flows > (uint64_t{1} << 26)) throw po::error("generate: --flows must be 1..67108864");
    if (o.flows < o.pairs) throw po::error("generate: --flows must be at least --pairs");
    if (!(o.rate >= 0) || !(o.rate_max >= 0)) throw po::error("generate: rates must be >= 0");
    if (!(o.resolution > 0 && o.resolution < 1)) throw po::error("generate: --resolution must be in (0, 1)");
    if (!(o.trial_seconds > 0 && o.trial_seconds <= 3600)) throw po::error("generate: --trial-seconds must be in (0, 3600]");
    if (!(o.loss_tolerance >= 0 && o.loss_tolerance < 1)) throw po::error("generate: --loss-tolerance must be in [0, 1)");
    if (o.memif_rsize < 1 || o.memif_rsize > 14) throw po::error("generate: --memif-rsize must be 1..14");
    if (o.rx_queues == 0 || o.rx_queues > 64) throw po::error("generate: --rx-queues must be 1..64");
    if (o.max_trials == 0) throw po::error("generate: --max-trials must be at least 1");
    return run_generate(o);
}

}  // namespace tagwall::tools
