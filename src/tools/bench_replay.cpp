// `tagwall-bench replay`: see bench_replay.hpp.
#include "tools/bench_replay.hpp"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <latch>
#include <memory>
#include <optional>
#include <stdexcept>
#include <thread>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <pcap/pcap.h>
#include <rte_cycles.h>

#include "dataplane/hash.hpp"
#include "dataplane/identity.hpp"
#include "dataplane/parser.hpp"
#include "dataplane/pipeline.hpp"
#include "rules/classifier_policy.hpp"
#include "rules/policy_loader.hpp"
#include "rules/ruleset.hpp"

namespace tagwall::tools {
namespace {

using dataplane::FrameRef;
using dataplane::Pipeline;
using dataplane::Verdict;

constexpr size_t kReplayBurst = 32;

struct Packet {
    size_t offset = 0;   // into Capture::bytes
    uint16_t length = 0;
    uint8_t port = 0;
    size_t index = 0;    // 0-based index in its own file
    uint64_t ts_ns = 0;
};

struct Capture {
    std::vector<uint8_t> bytes;
    std::vector<Packet> packets;  // merged order
};

uint8_t port_index(const std::vector<std::string>& names, const std::string& name) {
    const auto it = std::find(names.begin(), names.end(), name);
    if (it == names.end()) throw std::runtime_error(fmt::format("unknown port '{}'", name));
    return static_cast<uint8_t>(it - names.begin());
}

void load_pcap(const ReplayPcap& in, const std::vector<std::string>& port_names, Capture& cap) {
    char err[PCAP_ERRBUF_SIZE] = {};
    pcap_t* pc = pcap_open_offline_with_tstamp_precision(in.path.c_str(), PCAP_TSTAMP_PRECISION_NANO, err);
    if (!pc) throw std::runtime_error(fmt::format("{}: {}", in.path, err));
    const std::unique_ptr<pcap_t, void (*)(pcap_t*)> guard(pc, pcap_close);
    if (pcap_datalink(pc) != DLT_EN10MB)
        throw std::runtime_error(fmt::format("{}: not an Ethernet capture (link type {})", in.path, pcap_datalink(pc)));
    const uint8_t port = port_index(port_names, in.port);
    pcap_pkthdr* hdr = nullptr;
    const u_char* data = nullptr;
    size_t index = 0;
    int rc = 0;
    while ((rc = pcap_next_ex(pc, &hdr, &data)) == 1) {
        Packet p;
        p.offset = cap.bytes.size();
        p.length = static_cast<uint16_t>(std::min<uint32_t>(hdr->caplen, 0xFFFF));
        p.port = port;
        p.index = index++;
        p.ts_ns = static_cast<uint64_t>(hdr->ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(hdr->ts.tv_usec);
        cap.bytes.insert(cap.bytes.end(), data, data + p.length);
        cap.packets.push_back(p);
    }
    if (rc == PCAP_ERROR) throw std::runtime_error(fmt::format("{}: {}", in.path, pcap_geterr(pc)));
}

// What one worker did in one iteration (and, summed, over all of them).
struct WorkerRun {
    size_t packets = 0;
    uint64_t tsc_cycles = 0;
    double seconds = 0;
    size_t flows = 0;
    std::array<uint64_t, dataplane::kReasonCount> reasons{};
    dataplane::VerdictCounters verdicts{};
    // The fragment table at the end of the run: fixed size (capacity slots, memory_bytes allocated at
    // start), how many datagrams it holds, and the most it ever held.
    size_t fragment_capacity = 0, fragments_in_use = 0, fragments_high_water = 0, fragment_memory = 0;
};

std::string_view action_word(rules::Action a) {
    switch (a) {
    case rules::Action::allow: return "allow";
    case rules::Action::drop: return "drop";
    case rules::Action::reject: return "reject";
    }
    return "?";
}

// The merged indices of each worker's frames, in merged order.
std::vector<std::vector<uint32_t>> dispatch(const std::vector<FrameRef>& frames, unsigned workers) {
    std::vector<std::vector<uint32_t>> shares(workers);
    for (uint32_t i = 0; i < frames.size(); ++i) {
        const unsigned w = workers == 1 ? 0 : static_cast<unsigned>(
            dispatch_hash(std::span<const uint8_t>(frames[i].data, frames[i].length)) % workers);
        shares[w].push_back(i);
    }
    return shares;
}

// One worker's share through its pipeline: bursts of kReplayBurst of its own packets, each at its own
// timestamp, the housekeeping once per burst at the burst's last timestamp.  Verdicts go to the
// frames' merged indices (each worker writes only its own).
WorkerRun run_share(Pipeline& pipe, const std::vector<FrameRef>& frames, const std::vector<Packet>& packets,
                    std::span<const uint32_t> share, std::vector<Verdict>& verdicts) noexcept {
    WorkerRun r;
    const auto t0 = std::chrono::steady_clock::now();
    const uint64_t c0 = rte_rdtsc();
    for (size_t b = 0; b < share.size(); b += kReplayBurst) {
        const size_t end = std::min(share.size(), b + kReplayBurst);
        for (size_t k = b; k < end; ++k) {
            const uint32_t i = share[k];
            verdicts[i] = pipe.process_one(frames[i], packets[i].ts_ns);
        }
        pipe.expire(packets[share[end - 1]].ts_ns);
    }
    r.tsc_cycles = rte_rdtsc() - c0;
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.packets = share.size();
    r.flows = pipe.conntrack().table().size();
    r.reasons = pipe.reason_counters();
    r.verdicts = pipe.verdict_counters();
    const dataplane::FragmentTable& frags = pipe.fragments();
    r.fragment_capacity = frags.capacity();
    r.fragments_in_use = frags.size();
    r.fragments_high_water = frags.high_water();
    r.fragment_memory = frags.memory_bytes();
    return r;
}

// The CPUs this process may use, read before the EAL pins the main thread to one of them: worker
// threads are let loose on all of them again.
cpu_set_t allowed_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) CPU_SET(0, &set);
    return set;
}

// Every worker's share, on threads started together (one worker: on this thread).  Returns the wall
// time from the common start to the last worker's end.
double run_workers(std::vector<std::unique_ptr<Pipeline>>& pipes, const std::vector<FrameRef>& frames,
                   const std::vector<Packet>& packets, const std::vector<std::vector<uint32_t>>& shares,
                   std::vector<Verdict>& verdicts, std::vector<WorkerRun>& runs, const cpu_set_t& cpus) {
    const size_t w_count = pipes.size();
    if (w_count == 1) {
        const auto t0 = std::chrono::steady_clock::now();
        runs[0] = run_share(*pipes[0], frames, packets, shares[0], verdicts);
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    std::latch go(1);
    std::vector<std::thread> threads;
    threads.reserve(w_count);
    try {
        for (size_t w = 0; w < w_count; ++w) {
            threads.emplace_back([&, w] {
                pthread_setaffinity_np(pthread_self(), sizeof cpus, &cpus);
                go.wait();
                runs[w] = run_share(*pipes[w], frames, packets, shares[w], verdicts);
            });
        }
    } catch (...) {  // a thread could not be started: let the others run out, then report it
        go.count_down();
        for (std::thread& t : threads) t.join();
        throw;
    }
    const auto t0 = std::chrono::steady_clock::now();
    go.count_down();
    for (std::thread& t : threads) t.join();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void add_run(WorkerRun& sum, const WorkerRun& r) {
    sum.packets += r.packets;
    sum.tsc_cycles += r.tsc_cycles;
    sum.seconds += r.seconds;
    sum.flows += r.flows;
    for (size_t i = 0; i < sum.reasons.size(); ++i) sum.reasons[i] += r.reasons[i];
    sum.verdicts.allow += r.verdicts.allow;
    sum.verdicts.drop += r.verdicts.drop;
    sum.verdicts.reject += r.verdicts.reject;
    sum.fragment_capacity += r.fragment_capacity;
    sum.fragments_in_use += r.fragments_in_use;
    sum.fragments_high_water += r.fragments_high_water;  // summed per worker: a bound, not a joint peak
    sum.fragment_memory += r.fragment_memory;
}

void write_verdicts(const std::string& path, const rules::RuleSet& ruleset, const std::vector<std::string>& port_names,
                    const std::vector<Packet>& packets, const std::vector<Verdict>& verdicts) {
    std::ofstream out(path);
    if (!out) throw std::runtime_error(fmt::format("cannot write {}", path));
    for (size_t i = 0; i < verdicts.size(); ++i) {
        const Verdict& v = verdicts[i];
        const std::string_view reason = v.reason == dataplane::Reason::rule && v.rule >= 0
                                            ? std::string_view(ruleset.rules()[static_cast<size_t>(v.rule)].id)
                                            : dataplane::info(v.reason).word;
        out << port_names[packets[i].port] << ' ' << packets[i].index << ' ' << action_word(v.action) << ' '
            << reason << '\n';
    }
    if (!out.flush()) throw std::runtime_error(fmt::format("cannot write {}", path));
}

// --- dispatch hash ---

struct End {
    std::array<uint64_t, 2> addr{};
    uint16_t port = 0;
    friend auto operator<=>(const End&, const End&) = default;
};

End end_of(const rules::IpAddr& a, uint16_t port) noexcept {
    End e;
    std::memcpy(e.addr.data(), a.bytes.data(), sizeof e.addr);
    e.port = port;
    return e;
}

uint64_t symmetric_hash(uint16_t vlan, rules::Family family, uint8_t proto, End a, End b) noexcept {
    if (b < a) std::swap(a, b);
    uint64_t h = dataplane::mix64(uint64_t{vlan} << 16 | uint64_t{static_cast<uint8_t>(family)} << 8 | proto);
    for (const uint64_t w : {a.addr[0], a.addr[1], b.addr[0], b.addr[1], uint64_t{a.port} << 16 | b.port})
        h = dataplane::mix64(h ^ w);
    return h;
}

bool has_ports(uint8_t proto) noexcept {
    return proto == dataplane::kIpProtoTcp || proto == dataplane::kIpProtoUdp || proto == dataplane::kIpProtoSctp;
}

// --- report ---

double mpps_of(uint64_t packets, double seconds) { return seconds > 0 ? static_cast<double>(packets) / seconds / 1e6 : 0; }
double cpp_of(uint64_t cycles, uint64_t packets) {
    return packets ? static_cast<double>(cycles) / static_cast<double>(packets) : 0;
}

nlohmann::json counts_json(const WorkerRun& r) {
    nlohmann::json reasons = nlohmann::json::object();
    for (size_t i = 0; i < dataplane::kReasonCount; ++i)
        if (r.reasons[i]) reasons[std::string(dataplane::kReasons[i].counter)] = r.reasons[i];
    return {{"flows", r.flows},
            {"verdicts", {{"allow", r.verdicts.allow}, {"drop", r.verdicts.drop}, {"reject", r.verdicts.reject}}},
            {"reasons", reasons},
            {"fragment_table", {{"capacity", r.fragment_capacity}, {"in_use", r.fragments_in_use},
                                {"high_water", r.fragments_high_water}, {"memory_bytes", r.fragment_memory}}}};
}

// `total`: every iteration summed, per worker (rates); `first`: the first iteration (counts).
void report(const ReplayBenchOptions& o, size_t packets, const std::vector<WorkerRun>& total,
            const std::vector<WorkerRun>& first, double wall_seconds, bool huge, bool eal_used) {
    WorkerRun sum, sum_first;
    for (const WorkerRun& r : total) add_run(sum, r);
    for (const WorkerRun& r : first) add_run(sum_first, r);
    const uint64_t processed = uint64_t{packets} * o.iterations;
    const double mpps = mpps_of(processed, wall_seconds);
    const double cpp = cpp_of(sum.tsc_cycles, processed);
    if (o.json) {
        nlohmann::json workers = nlohmann::json::array();
        for (size_t w = 0; w < total.size(); ++w) {
            nlohmann::json j = {{"worker", w}, {"packets", first[w].packets},
                                {"mpps", mpps_of(total[w].packets, total[w].seconds)},
                                {"cycles_per_packet", cpp_of(total[w].tsc_cycles, total[w].packets)},
                                {"seconds", total[w].seconds}};
            j.update(counts_json(first[w]));
            workers.push_back(j);
        }
        nlohmann::json j = {{"packets", packets}, {"mpps", mpps}, {"cycles_per_packet", cpp}};
        j.update(counts_json(sum_first));
        j["workers"] = workers;
        j["worker_count"] = total.size();
        j["engine"] = o.engine;
        j["iterations"] = o.iterations;
        j["seconds"] = wall_seconds;
        j["hugepages"] = huge;
        fmt::print("{}\n", j.dump());
        return;
    }
    fmt::print("engine        {}\n", o.engine);
    fmt::print("packets       {} ({} iterations)\n", packets, o.iterations);
    if (total.size() == 1) {
        fmt::print("throughput    {:.2f} Mpps, {:.1f} TSC cycles/packet ({:.3f} s, 1 worker)\n", mpps, cpp, wall_seconds);
    } else {
        fmt::print("throughput    {:.2f} Mpps with {} workers (wall {:.3f} s); {:.1f} TSC cycles/packet summed over "
                   "the workers\n", mpps, total.size(), wall_seconds, cpp);
        for (size_t w = 0; w < total.size(); ++w)
            fmt::print("  worker {:<3} {:>9} packets {:>8.2f} Mpps {:>8.1f} cycles/packet {:>7} flows  allow {}, "
                       "drop {}, reject {}\n", w, first[w].packets, mpps_of(total[w].packets, total[w].seconds),
                       cpp_of(total[w].tsc_cycles, total[w].packets), first[w].flows, first[w].verdicts.allow,
                       first[w].verdicts.drop, first[w].verdicts.reject);
    }
    fmt::print("flows         {}\n", sum_first.flows);
    fmt::print("fragments     {} datagrams held (at most {}), capacity {} in {} bytes\n", sum_first.fragments_in_use,
               sum_first.fragments_high_water, sum_first.fragment_capacity, sum_first.fragment_memory);
    fmt::print("verdicts      allow {}, drop {}, reject {}\n", sum_first.verdicts.allow, sum_first.verdicts.drop,
               sum_first.verdicts.reject);
    for (size_t r = 0; r < dataplane::kReasonCount; ++r)
        if (sum_first.reasons[r]) fmt::print("  {:<24} {}\n", dataplane::kReasons[r].counter, sum_first.reasons[r]);
    fmt::print("hugepages     {}\n", eal_used ? (huge ? "yes" : "no") : "not used (no EAL: the trie engine needs none)");
}

}  // namespace

const std::vector<std::string>& replay_port_names() {
    static const std::vector<std::string> kNames{"workload", "uplink"};
    return kNames;
}

uint64_t dispatch_hash(std::span<const uint8_t> frame) noexcept {
    dataplane::ParsedPacket p;
    const bool parsed = !dataplane::parse_frame(frame, p).has_value();
    const rules::Family family = p.src.family;
    if (parsed && p.kind == dataplane::PacketKind::arp)
        return symmetric_hash(p.vlan, family, 0, end_of(p.arp_sender_ip, 0), end_of(p.arp_target_ip, 0));
    if (!parsed || (p.kind != dataplane::PacketKind::ipv4 && p.kind != dataplane::PacketKind::ipv6))
        return symmetric_hash(p.vlan, family, p.proto, end_of(p.src, 0), end_of(p.dst, 0));
    if (p.icmp_error && p.inner_l3_present) {
        const bool ports = p.inner_l4_present && has_ports(p.inner_proto);
        return symmetric_hash(p.vlan, family, p.inner_proto, end_of(p.inner_src, ports ? p.inner_sport : 0),
                              end_of(p.inner_dst, ports ? p.inner_dport : 0));
    }
    if (p.fragment) {
        const uint8_t proto = family == rules::Family::v4 ? p.proto : 0;
        return symmetric_hash(p.vlan, family, proto, end_of(p.src, 0), end_of(p.dst, 0));
    }
    const bool ports = p.l4_present && has_ports(p.proto);
    return symmetric_hash(p.vlan, family, p.proto, end_of(p.src, ports ? p.sport : 0),
                          end_of(p.dst, ports ? p.dport : 0));
}

int run_replay_bench(const ReplayBenchOptions& o) {
    // Policy.
    const auto ruleset = rules::RuleSet::compile(rules::load_policy_or_throw(o.policy_path));

    const cpu_set_t cpus = allowed_cpus();
    std::optional<dataplane::EalInfo> eal;
    if (o.engine == "rte_acl") eal = dataplane::init_eal(o.eal);
    struct EalGuard {
        bool on;
        ~EalGuard() {
            if (on) dataplane::cleanup_eal();
        }
    } eal_guard{eal.has_value()};

    const auto identity = std::make_shared<const dataplane::IdentityTable>(*ruleset);
    const auto classifier = std::make_shared<const rules::PolicyClassifier>(ruleset, o.engine);

    // Packets, loaded once, merged by timestamp, and dealt to the workers.
    Capture cap;
    for (const ReplayPcap& p : o.pcaps) load_pcap(p, o.port_names, cap);
    std::stable_sort(cap.packets.begin(), cap.packets.end(),
                     [](const Packet& a, const Packet& b) { return a.ts_ns < b.ts_ns; });
    std::vector<FrameRef> frames;
    frames.reserve(cap.packets.size());
    for (const Packet& p : cap.packets) frames.push_back({cap.bytes.data() + p.offset, p.length, p.port});
    const unsigned workers = std::max(1u, o.workers);
    const auto shares = dispatch(frames, workers);

    const std::vector<dataplane::PortConfig>& ports = o.ports;
    std::vector<Verdict> verdicts(frames.size());
    std::vector<WorkerRun> total(workers), first(workers), runs(workers);
    double wall_seconds = 0;
    for (unsigned it = 0; it < o.iterations; ++it) {
        std::vector<std::unique_ptr<Pipeline>> pipes;
        for (unsigned w = 0; w < workers; ++w) {
            dataplane::PipelineConfig config;
            config.flows.worker = static_cast<uint16_t>(w);
            config.l2_switch = o.l2_switch;
            if (o.flow_capacity != 0) config.flows.capacity = std::max<uint32_t>(1024, o.flow_capacity / workers);
            if (o.timeouts) config.flows.timeouts = *o.timeouts;
            pipes.push_back(std::make_unique<Pipeline>(identity, classifier, 1, ports, config));
        }
        wall_seconds += run_workers(pipes, frames, cap.packets, shares, verdicts, runs, cpus);
        for (unsigned w = 0; w < workers; ++w) add_run(total[w], runs[w]);
        if (it == 0) {
            first = runs;
            if (!o.verdicts_path.empty()) write_verdicts(o.verdicts_path, *ruleset, o.port_names, cap.packets, verdicts);
        }
    }
    report(o, frames.size(), total, first, wall_seconds, eal && eal->hugepages, eal.has_value());
    return 0;
}

}  // namespace tagwall::tools
