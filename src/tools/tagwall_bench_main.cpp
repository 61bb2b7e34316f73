// tagwall-bench: the benchmarks of SPEC §7.  A thin main: option parsing and dispatch; the work is in
// bench_classify.cpp, bench_retag.cpp, bench_replay.cpp, bench_pipeline.cpp and bench_generate.cpp.
#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include "rules/classifier.hpp"
#include "tools/bench_classify.hpp"
#include "tools/bench_generate.hpp"
#include "tools/bench_pipeline.hpp"
#include "dataplane/config.hpp"
#include "tools/bench_replay.hpp"
#include "tools/bench_retag.hpp"

namespace po = boost::program_options;

namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

const char* const kOverview = R"(tagwall-bench - measure tagwall's classifier and dataplane

Usage:
  tagwall-bench classify --rules FILE --trace FILE --engine ENGINE [options] [-- EAL-ARGS...]
  tagwall-bench retag --policy FILE [--engine trie|rte_acl|linear] [--count N] [--json]
                                      endpoint tag changes reaching the classifier, vs a full rebuild
  tagwall-bench replay --policy FILE --pcap [PORT=]FILE ... [--iterations N] [--workers W] [--json]
                      [--verdicts OUT]
                                      pcap replay through the worker pipeline (W workers: W threads)
  tagwall-bench pipeline --policy FILE [--scenario established|new-flow|baseline|memory|all] [--json]
                                      the worker pipeline's Mpps and cycles/packet on synthetic traffic
  tagwall-bench generate --policy FILE --memif-dir DIR [--mix M] [--search] [--json]
                                      traffic generator and sink with real I/O (memif) for a device
                                      under test: offered vs forwarded, zero-loss rate (bench-replay.sh)
  tagwall-bench COMMAND --help        the options of one command

The DPDK-backed runs use hugepages when the machine has them, and say so.  scripts/bench-classify.sh runs every
engine on every ClassBench set and writes docs/perf/classify.{md,json,png}; scripts/bench-dataplane.sh
runs `pipeline --scenario all` on a 10k-rule policy and writes docs/perf/dataplane.{md,json}.
)";

const char* const kClassifyHelp = R"(Usage: tagwall-bench classify --rules FILE --trace FILE --engine trie|rte_acl|linear
                              [--iterations N] [--json] [--matches OUT] [options] [-- EAL-ARGS...]

Classifies a ClassBench trace against a ClassBench rule set with one engine:
  trie      tagwall's multi-bit trie classifier
  rte_acl   DPDK's rte_acl, with the best classify algorithm the CPU supports (see --max-simd-bitwidth)
  linear    the reference: every rule in order, first match wins (slow on large sets)
Rules: `@SIP/LEN DIP/LEN SPORT_LO : SPORT_HI DPORT_LO : DPORT_HI PROTO/MASK [FLAGS/MASK]`, one per line,
first line = highest priority.  Trace: `SIP DIP SPORT DPORT PROTO ...`, addresses as decimal integers.

What is measured, on one core (the EAL pins this process to the first CPU it may use):
  build      wall time of the engine's build from the parsed rules (steady_clock)
  memory     what the engine holds for lookups (rte_acl: growth of DPDK's heap over the build)
  lookups    after one warm-up pass, timed passes over the whole trace in bursts of 64 keys (at least
             --iterations, and more until --min-seconds were measured): Mpps = lookups / seconds,
             and TSC cycles per lookup (rte_rdtsc: the constant-rate TSC, not core clock cycles)
Every engine starts the DPDK EAL the same way (hugepages when available, else --no-huge with a
warning), so that all run under the same conditions.

Output: a few aligned lines, or with --json one object with the keys engine, rules, trace_lines,
build_ms, memory_bytes, mpps, cycles_per_lookup (plus iterations, seconds, matched, hugepages, detail...).
--matches OUT writes one line per trace line: the 0-based index of the first matching rule, or -1.

Examples:
  tagwall-bench classify -r acl1_10k.rules -t acl1_10k.trace -e trie
  tagwall-bench classify -r fw1_1k.rules -t fw1_1k.trace -e rte_acl --json --matches /tmp/fw1.acl

Exit status: 0 ok, 1 failure (unreadable input, EAL or engine error), 2 usage error.
)";

int usage_error(const std::string& msg) {
    fmt::print(stderr, "tagwall-bench: {}\nTry 'tagwall-bench --help'.\n", msg);
    return kExitUsage;
}

tagwall::dataplane::HugepageMode parse_hugepage_mode(const std::string& s) {
    using tagwall::dataplane::HugepageMode;
    if (s == "auto") return HugepageMode::automatic;
    if (s == "required") return HugepageMode::required;
    if (s == "off") return HugepageMode::off;
    throw po::validation_error(po::validation_error::invalid_option_value, "hugepages", s);
}

int run_classify_command(std::vector<std::string> args) {
    // Everything after `--` goes to the EAL untouched.
    std::vector<std::string> eal_args;
    if (const auto dashes = std::find(args.begin(), args.end(), "--"); dashes != args.end()) {
        eal_args.assign(dashes + 1, args.end());
        args.erase(dashes, args.end());
    }
    po::options_description opts("classify options");
    opts.add_options()
        ("help,h", "show this help")
        ("rules,r", po::value<std::string>(), "ClassBench rule file")
        ("trace,t", po::value<std::string>(), "ClassBench trace file")
        ("engine,e", po::value<std::string>(), "trie | rte_acl | linear")
        ("iterations,n", po::value<unsigned>()->default_value(3), "timed passes over the trace (after one warm-up), at least")
        ("min-seconds", po::value<double>()->default_value(0.5), "...and more passes until this long was measured (0: exactly N)")
        ("json", "print one JSON object instead of the human report")
        ("matches", po::value<std::string>(), "write the matching rule index (or -1) of every trace line to this file")
        ("updates", po::value<unsigned>()->default_value(0),
         "after measuring, erase and re-insert N rules one at a time, timing each (engines that cannot update "
         "in place report that every change is a rebuild)")
        ("hugepages", po::value<std::string>()->default_value("auto"), "auto | required | off")
        ("no-huge-mb", po::value<size_t>()->default_value(4096), "DPDK heap size (MB) when running without hugepages")
        ("max-simd-bitwidth", po::value<unsigned>()->default_value(512),
         "EAL --force-max-simd-bitwidth: 512 lets rte_acl run its widest path (avx512x32) where the CPU has "
         "it; 0 keeps DPDK's default cap (256 on x86: avx512x16 or avx2), which is ~1.8x slower on ClassBench")
        ("eal-log", "let the EAL log at its default level (it logs errors only otherwise)");
    po::variables_map vm;
    po::store(po::command_line_parser(args).options(opts).run(), vm);
    po::notify(vm);
    if (vm.count("help")) {
        fmt::print("{}\n", kClassifyHelp);
        std::cout << opts << '\n';
        return 0;
    }
    for (const char* required : {"rules", "trace", "engine"})
        if (!vm.count(required)) return usage_error(fmt::format("classify: --{} is required", required));

    tagwall::tools::ClassifyBenchOptions o;
    o.rules_path = vm["rules"].as<std::string>();
    o.trace_path = vm["trace"].as<std::string>();
    o.engine = vm["engine"].as<std::string>();
    const auto engines = tagwall::rules::classifier_engines();
    if (std::find(engines.begin(), engines.end(), o.engine) == engines.end())
        return usage_error(fmt::format("classify: unknown engine '{}' (trie, rte_acl or linear)", o.engine));
    o.iterations = vm["iterations"].as<unsigned>();
    if (o.iterations == 0 || o.iterations > 100000) return usage_error("classify: --iterations must be 1..100000");
    o.min_seconds = vm["min-seconds"].as<double>();
    if (!(o.min_seconds >= 0 && o.min_seconds <= 3600)) return usage_error("classify: --min-seconds must be 0..3600");
    o.json = vm.count("json") > 0;
    if (vm.count("matches")) o.matches_path = vm["matches"].as<std::string>();
    o.updates = vm["updates"].as<unsigned>();
    o.eal.program = "tagwall-bench";
    o.eal.quiet = vm.count("eal-log") == 0;
    o.eal.hugepages = parse_hugepage_mode(vm["hugepages"].as<std::string>());
    o.eal.no_huge_mb = vm["no-huge-mb"].as<size_t>();
    if (o.eal.no_huge_mb < 64) return usage_error("classify: --no-huge-mb must be at least 64");
    o.eal.max_simd_bitwidth = vm["max-simd-bitwidth"].as<unsigned>();
    o.eal.extra_args = eal_args;
    return tagwall::tools::run_classify_bench(o);
}

int run_retag_command(const std::vector<std::string>& args) {
    po::options_description opts("retag options");
    opts.add_options()
        ("help,h", "show this help")
        ("policy,p", po::value<std::string>(), "policy.yaml (scripts/gen-policy.py makes large ones)")
        ("engine,e", po::value<std::string>()->default_value("trie"), "trie | rte_acl | linear")
        ("count,n", po::value<unsigned>()->default_value(200), "endpoint tag changes to time")
        ("json", "print one JSON object");
    po::variables_map vm;
    po::store(po::command_line_parser(args).options(opts).run(), vm);
    po::notify(vm);
    if (vm.count("help")) {
        fmt::print("Usage: tagwall-bench retag --policy FILE [--engine E] [--count N] [--json]\n\n"
                   "Flips the env tag (prod <-> staging) of random endpoints one at a time and times how long each\n"
                   "change takes to reach the classifier (a new rule set with the endpoint's new memberships, and\n"
                   "the engine updated in place where it can be), against a full compile + engine build.\n\n");
        std::cout << opts << '\n';
        return 0;
    }
    if (!vm.count("policy")) return usage_error("retag: --policy is required");
    tagwall::tools::RetagBenchOptions o;
    o.policy_path = vm["policy"].as<std::string>();
    o.engine = vm["engine"].as<std::string>();
    const auto engines = tagwall::rules::classifier_engines();
    if (std::find(engines.begin(), engines.end(), o.engine) == engines.end())
        return usage_error(fmt::format("retag: unknown engine '{}' (trie, rte_acl or linear)", o.engine));
    o.count = vm["count"].as<unsigned>();
    o.json = vm.count("json") > 0;
    o.eal.program = "tagwall-bench";
    return tagwall::tools::run_retag_bench(o);
}

const char* const kReplayHelp = R"(Usage: tagwall-bench replay (--policy FILE | --config FILE) --pcap [PORT=]FILE ... [--iterations N]
                            [--workers W] [--engine trie|rte_acl|linear] [--json] [--verdicts OUT]

Replays pcaps through the worker pipeline (parse, SpoofGuard, connection table, classifier, verdict).
With --policy the appliance is a wire of two ports: `workload` (role workload) and `uplink` (role
uplink).  With --config it is the appliance that config describes: its ports by name and role, its
forwarding (wire pairs, or switch with its MAC table), its flow-table capacity and timeouts and its
policy; nothing is opened (the ports' devargs are ignored), so no root is needed.  Each --pcap
PORT=FILE is what arrived on that port (a bare FILE: the workload port, or with --config the first
port whose role is workload); several are merged by packet timestamp, and each packet is processed at its own timestamp (deterministic).
Every packet is loaded into memory once; each iteration runs them all through fresh pipelines, and
only the processing is timed.

--workers W deals the frames to W pipelines, each run on its own thread, as symmetric RSS deals a
port's traffic to its queues: a hash of (VLAN, addresses, protocol, ports) that is the same both ways,
so both directions of a connection meet on one worker; fragments and ICMP are hashed without ports (a
later fragment has none, so its first must not use them), and an ICMP error by the packet it quotes,
so that it reaches the worker that holds the connection it is related to.  Each worker processes its
share in merged-timestamp order.  The verdicts (--verdicts) do not depend on W, except for a TCP/UDP
connection that sends both fragmented and unfragmented packets: those halves land on different workers,
as they would with RSS on a NIC.  Rates: each worker's over its own processing time; the total over
the wall time from the workers' common start to the last one's end (on fewer cores than workers, the
threads share them).

--verdicts OUT writes, for the first iteration, one line per packet in merged order:
  PORT INDEX VERDICT REASON
INDEX is the 0-based index in that port's file, VERDICT allow|drop|reject, REASON the deciding rule's
id, or default, established, related, spoofed, invalid, malformed, unknown-segment, arp-nd ...
--json prints packets, mpps, cycles_per_packet, flows, verdicts{allow,drop,reject}, reasons{...}, in
total and per worker (`workers`: one object each, with its `worker` index).

Exit status: 0 ok, 1 failure (unreadable policy or pcap, engine error), 2 usage error.
)";

int run_replay_command(const std::vector<std::string>& args) {
    po::options_description opts("replay options");
    opts.add_options()
        ("help,h", "show this help")
        ("policy,p", po::value<std::string>(), "policy.yaml: a two-port wire (workload, uplink)")
        ("config,c", po::value<std::string>(), "tagwall.yaml: the config's ports, forwarding and flow table")
        ("pcap", po::value<std::vector<std::string>>(),
         "[PORT=]FILE, repeatable (PORT: workload or uplink with --policy, a config port with --config)")
        ("iterations,n", po::value<unsigned>()->default_value(1), "passes over the packets, each through a fresh pipeline")
        ("workers,w", po::value<unsigned>()->default_value(1),
         "worker pipelines, each on its own thread; frames dealt by a symmetric flow hash")
        ("engine,e", po::value<std::string>()->default_value("trie"), "trie | rte_acl | linear")
        ("json", "print one JSON object")
        ("verdicts", po::value<std::string>(), "write PORT INDEX VERDICT REASON for every packet of the first iteration");
    po::variables_map vm;
    po::store(po::command_line_parser(args).options(opts).run(), vm);
    po::notify(vm);
    if (vm.count("help")) {
        fmt::print("{}\n", kReplayHelp);
        std::cout << opts << '\n';
        return 0;
    }
    if (vm.count("config") && vm.count("policy")) return usage_error("replay: --policy and --config are exclusive");
    if (!vm.count("policy") && !vm.count("config")) return usage_error("replay: --policy or --config is required");
    if (!vm.count("pcap")) return usage_error("replay: at least one --pcap is required");
    tagwall::tools::ReplayBenchOptions o;
    std::string default_port = "workload";
    if (vm.count("config")) {
        // The config's appliance: its ports, roles, forwarding and flow table; its devargs are not opened.
        namespace dp = tagwall::dataplane;
        const std::string path = vm["config"].as<std::string>();
        const auto loaded = dp::load_config_file(path);
        for (const auto& d : loaded.diagnostics.sorted()) fmt::print(stderr, "{}\n", d.str());
        if (!loaded.config) {
            fmt::print(stderr, "tagwall-bench: {}: INVALID ({} error(s))\n", path, loaded.diagnostics.error_count());
            return kExitFailure;
        }
        const dp::ApplianceConfig& c = *loaded.config;
        o.policy_path = c.policy;
        o.port_names.clear();
        o.ports.clear();
        for (const auto& p : c.dataplane.ports) {
            o.port_names.push_back(p.name);
            o.ports.push_back({p.role, dp::kNoPort});
        }
        if (o.ports.size() > dp::Pipeline::kMaxPorts) return usage_error("replay: more than 64 ports in the config");
        o.l2_switch = c.dataplane.forwarding == dp::ForwardingMode::l2_switch;
        auto index_of = [&](const std::string& name) {
            return static_cast<uint8_t>(std::find(o.port_names.begin(), o.port_names.end(), name) - o.port_names.begin());
        };
        for (const auto& [a, b] : c.dataplane.pairs) {  // the loader checked that both name ports
            o.ports[index_of(a)].peer = index_of(b);
            o.ports[index_of(b)].peer = index_of(a);
        }
        o.flow_capacity = c.dataplane.flows.capacity;
        o.timeouts = c.dataplane.flows.timeouts;
        default_port = o.port_names.front();
        for (size_t i = 0; i < o.ports.size(); ++i)
            if (o.ports[i].role == dp::PortRole::workload) {
                default_port = o.port_names[i];
                break;
            }
    } else {
        o.policy_path = vm["policy"].as<std::string>();
    }
    const auto& ports = o.port_names;
    std::string port_list;
    for (const auto& p : ports) port_list += (port_list.empty() ? "" : ", ") + p;
    for (const std::string& arg : vm["pcap"].as<std::vector<std::string>>()) {
        tagwall::tools::ReplayPcap p{default_port, arg};
        if (const auto eq = arg.find('='); eq != std::string::npos) {
            const std::string port = arg.substr(0, eq);
            if (std::find(ports.begin(), ports.end(), port) != ports.end())
                p = {port, arg.substr(eq + 1)};
            else if (port.find('/') == std::string::npos)
                return usage_error(fmt::format("replay: unknown port '{}' in --pcap {} ({})", port, arg, port_list));
        }
        if (p.path.empty()) return usage_error(fmt::format("replay: --pcap {} names no file", arg));
        o.pcaps.push_back(p);
    }
    o.engine = vm["engine"].as<std::string>();
    const auto engines = tagwall::rules::classifier_engines();
    if (std::find(engines.begin(), engines.end(), o.engine) == engines.end())
        return usage_error(fmt::format("replay: unknown engine '{}' (trie, rte_acl or linear)", o.engine));
    o.iterations = vm["iterations"].as<unsigned>();
    if (o.iterations == 0 || o.iterations > 1000000) return usage_error("replay: --iterations must be 1..1000000");
    o.workers = vm["workers"].as<unsigned>();
    if (o.workers == 0 || o.workers > 64) return usage_error("replay: --workers must be 1..64");
    o.json = vm.count("json") > 0;
    if (vm.count("verdicts")) o.verdicts_path = vm["verdicts"].as<std::string>();
    o.eal.program = "tagwall-bench";
    return tagwall::tools::run_replay_bench(o);
}

const char* const kPipelineHelp = R"(Usage: tagwall-bench pipeline --policy FILE [--scenario established|new-flow|baseline|memory|all]
                              [--flows N] [--packets N] [--new-flows N] [--iterations N] [--min-seconds S]
                              [--flow-capacity N] [--memory-flows N] [--stride 64|128] [--json]
                              [--hugepages auto|required|off]

Measures one worker's pipeline (parse, SpoofGuard, connection table, classifier, verdict) on synthetic
traffic, on one core, with Pipeline::process() called on bursts of 32 frames as the worker loop does.

Traffic: 64-byte Ethernet/IPv4/TCP frames (60 bytes + FCS; 802.1Q-tagged with the segment's VLAN;
lengths and checksums correct), written into memory from the DPDK EAL heap (hugepages when available)
at a 64- or 128-byte stride.  The appliance is replay's wire: clients send on the `uplink` port,
servers answer on the `workload` port.  Which conversations: the policy's allow rules are asked through
the classifier which (client, endpoint, TCP port) triples they admit - a client is an external address
or an endpoint of the rule's `from` side, the server an endpoint of its `to` side (it sends from its
own address and MAC, so SpoofGuard passes it) - and N distinct flows are spread over those triples by
client port.  Every flow is checked with the classifier before it is used, and every scenario fails
(exit 1) when less than 99% of its packets were allowed.

Scenarios:
  established  --flows N (default 100000) flows complete a TCP handshake (untimed), then each timed pass
               sends a pure ACK each way for every flow, shuffled across flows and directions
  baseline     the same frames in the same memory and bursts through the worker's parse (an ACK's
               short parse_ack_segment(), anything else parse_frame()) and the choice of the wire peer
               only ("parse and forward"): the ratio scenario / baseline says what the firewall costs
               on top of forwarding
  new-flow     every packet the SYN of a new connection (--new-flows, else --packets, distinct 5-tuples;
               default 1000000), each pass into a fresh pipeline; with --flow-capacity below that, the
               full table evicts half-open entries (reported)
  memory       --memory-flows (default 1000000) flows established at once, then one pass of ACKs or
               more; process RSS (/proc/self/statm) and EAL heap use after the pipeline's construction
               and after the traffic (the flow table is allocated at start: the growth should be ~0)
  all          all four (established and baseline passes alternate while both need more; the much
               faster baseline then finishes its passes alone)

Timing: one untimed warm-up pass, then at least --iterations timed passes and more until --min-seconds
were measured; only the processing loop is timed (rte_rdtsc and steady_clock).  Two figures:
  median   each pass is cut into 1024-packet segments; the median over the passes of each pass's
           median segment: what the code costs when it has the core (on a shared machine a long pass
           always includes preemption; most short segments do not)
  wall     packets / seconds over all passes, preemption and neighbours included (JSON: also the
           fastest pass, "best")
Cycles are TSC cycles per packet (the constant-rate TSC, not core clock cycles); "vs base" compares
median rates.  The flow table holds --flow-capacity connections (default: the power of two >= 2x the
scenario's flows); it is allocated when the pipeline is built, as the worker's is.

Output: a small table, or with --json one object per scenario and line: scenario, packets, flows,
mpps, cycles_per_packet (wall), mpps_median, cycles_per_packet_median, mpps_best, verdicts{allow,drop,
reject}, reasons{...}, flow table figures, vs_baseline; the baseline's object carries
established_vs_baseline and new_flow_vs_baseline (and *_wall); memory's the rss_* and eal_heap_* bytes.

Examples:
  scripts/gen-policy.py --apps 3333 > /tmp/policy-10k.yaml          # 10002 rules
  tagwall-bench pipeline --policy /tmp/policy-10k.yaml
  tagwall-bench pipeline -p /tmp/policy-10k.yaml --scenario new-flow --new-flows 4000000 --json

Exit status: 0 ok, 1 failure (unreadable policy, no allowed traffic, mostly dropped traffic, no memory),
2 usage error.
)";

int run_pipeline_command(const std::vector<std::string>& args) {
    po::options_description opts("pipeline options");
    opts.add_options()
        ("help,h", "show this help")
        ("policy,p", po::value<std::string>(), "policy.yaml (scripts/gen-policy.py makes large ones)")
        ("scenario,s", po::value<std::string>()->default_value("all"),
         "established | new-flow | baseline | memory | all | swap")
        ("swap-hz", po::value<double>()->default_value(10), "swap: policy publications per second")
        ("flows,f", po::value<uint32_t>()->default_value(100000), "established/baseline: concurrent flows")
        ("packets", po::value<uint64_t>()->default_value(0),
         "packets per timed pass (0: established/baseline 2 x flows, new-flow 1000000)")
        ("new-flows", po::value<uint64_t>()->default_value(0), "new-flow only: SYNs per pass (0: as --packets)")
        ("iterations,n", po::value<unsigned>()->default_value(3), "timed passes per scenario, at least")
        ("min-seconds", po::value<double>()->default_value(0.5), "...and more passes until this long was measured")
        ("flow-capacity", po::value<uint32_t>()->default_value(0), "flow table size (0: power of two >= 2 x flows)")
        ("memory-flows", po::value<uint32_t>()->default_value(1000000), "memory: flows held at once")
        ("stride", po::value<unsigned>()->default_value(64), "bytes between frames in memory: 64 or 128")
        ("engine,e", po::value<std::string>()->default_value("trie"), "trie | rte_acl | linear")
        ("seed", po::value<uint64_t>()->default_value(1), "traffic order, sequence numbers, flow table hash seed")
        ("hugepages", po::value<std::string>()->default_value("auto"), "auto | required | off (EAL heap for the frames)")
        ("no-huge-mb", po::value<size_t>()->default_value(2048), "DPDK heap size (MB) when running without hugepages")
        ("json", "one JSON object per scenario and line");
    po::variables_map vm;
    po::store(po::command_line_parser(args).options(opts).run(), vm);
    po::notify(vm);
    if (vm.count("help")) {
        fmt::print("{}\n", kPipelineHelp);
        std::cout << opts << '\n';
        return 0;
    }
    if (!vm.count("policy")) return usage_error("pipeline: --policy is required");
    tagwall::tools::PipelineBenchOptions o;
    o.policy_path = vm["policy"].as<std::string>();
    o.scenario = vm["scenario"].as<std::string>();
    static const std::vector<std::string> kScenarios{"established", "new-flow", "baseline", "memory", "all", "swap"};
    if (std::find(kScenarios.begin(), kScenarios.end(), o.scenario) == kScenarios.end())
        return usage_error(fmt::format("pipeline: unknown scenario '{}' (established, new-flow, baseline, memory, all "
                                       "or swap)",
                                       o.scenario));
    o.engine = vm["engine"].as<std::string>();
    const auto engines = tagwall::rules::classifier_engines();
    if (std::find(engines.begin(), engines.end(), o.engine) == engines.end())
        return usage_error(fmt::format("pipeline: unknown engine '{}' (trie, rte_acl or linear)", o.engine));
    o.flows = vm["flows"].as<uint32_t>();
    o.packets = vm["packets"].as<uint64_t>();
    o.new_flows = vm["new-flows"].as<uint64_t>();
    o.memory_flows = vm["memory-flows"].as<uint32_t>();
    o.flow_capacity = vm["flow-capacity"].as<uint32_t>();
    o.iterations = vm["iterations"].as<unsigned>();
    o.min_seconds = vm["min-seconds"].as<double>();
    o.stride = vm["stride"].as<unsigned>();
    o.seed = vm["seed"].as<uint64_t>();
    o.json = vm.count("json") > 0;
    o.swap_hz = vm["swap-hz"].as<double>();
    if (!(o.swap_hz > 0 && o.swap_hz <= 10000)) return usage_error("pipeline: --swap-hz must be in (0, 10000]");
    constexpr uint32_t kMaxFlows = 1u << 27;
    if (o.flows == 0 || o.flows > kMaxFlows) return usage_error("pipeline: --flows must be 1..134217728");
    if (o.memory_flows == 0 || o.memory_flows > kMaxFlows)
        return usage_error("pipeline: --memory-flows must be 1..134217728");
    if (o.packets > (uint64_t{1} << 32)) return usage_error("pipeline: --packets must be at most 4294967296");
    if (o.new_flows > (uint64_t{1} << 28)) return usage_error("pipeline: --new-flows must be at most 268435456");
    if (o.flow_capacity > (1u << 28)) return usage_error("pipeline: --flow-capacity must be at most 268435456");
    if (o.iterations == 0 || o.iterations > 100000) return usage_error("pipeline: --iterations must be 1..100000");
    if (!(o.min_seconds >= 0 && o.min_seconds <= 3600)) return usage_error("pipeline: --min-seconds must be 0..3600");
    if (o.stride != 64 && o.stride != 128) return usage_error("pipeline: --stride must be 64 or 128");
    o.eal.program = "tagwall-bench";
    o.eal.hugepages = parse_hugepage_mode(vm["hugepages"].as<std::string>());
    o.eal.no_huge_mb = vm["no-huge-mb"].as<size_t>();
    if (o.eal.no_huge_mb < 64) return usage_error("pipeline: --no-huge-mb must be at least 64");
    return tagwall::tools::run_pipeline_bench(o);
}

}  // namespace

int main(int argc, char** argv) {
    const std::vector<std::string> args(argv + std::min(argc, 2), argv + argc);
    const std::string command = argc >= 2 ? argv[1] : "";
    try {
        if (command == "classify") return run_classify_command(args);
        if (command == "replay") return run_replay_command(args);
        if (command == "retag") return run_retag_command(args);
        if (command == "--help" || command == "-h" || command == "help") {
            fmt::print("{}", kOverview);
            return 0;
        }
        if (command == "pipeline") return run_pipeline_command(args);
        if (command == "generate") return tagwall::tools::run_generate_command(args);
        if (command.empty()) return usage_error("which benchmark? (classify, retag, replay, pipeline or generate)");
        return usage_error(
            fmt::format("unknown command '{}' (classify, retag, replay, pipeline or generate)", command));
    } catch (const po::error& e) {
        return usage_error(e.what());
    } catch (const std::exception& e) {
        fmt::print(stderr, "tagwall-bench: {}\n", e.what());
        return kExitFailure;
    }
}
