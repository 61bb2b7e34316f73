// `tagwall-bench replay`: see bench_replay.hpp.
#include "tools/bench_replay.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <memory>
#include <optional>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <pcap/pcap.h>
#include <rte_cycles.h>

#include "dataplane/identity.hpp"
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

uint8_t port_index(const std::string& name) {
    const auto& names = replay_port_names();
    const auto it = std::find(names.begin(), names.end(), name);
    if (it == names.end()) throw std::runtime_error(fmt::format("unknown port '{}' (workload or uplink)", name));
    return static_cast<uint8_t>(it - names.begin());
}

void load_pcap(const ReplayPcap& in, Capture& cap) {
    char err[PCAP_ERRBUF_SIZE] = {};
    pcap_t* pc = pcap_open_offline_with_tstamp_precision(in.path.c_str(), PCAP_TSTAMP_PRECISION_NANO, err);
    if (!pc) throw std::runtime_error(fmt::format("{}: {}", in.path, err));
    const std::unique_ptr<pcap_t, void (*)(pcap_t*)> guard(pc, pcap_close);
    if (pcap_datalink(pc) != DLT_EN10MB)
        throw std::runtime_error(fmt::format("{}: not an Ethernet capture (link type {})", in.path, pcap_datalink(pc)));
    const uint8_t port = port_index(in.port);
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

struct Run {
    uint64_t tsc_cycles = 0;
    double seconds = 0;
    size_t flows = 0;
    std::array<uint64_t, dataplane::kReasonCount> reasons{};
    dataplane::VerdictCounters verdicts{};
};

std::string_view action_word(rules::Action a) {
    switch (a) {
    case rules::Action::allow: return "allow";
    case rules::Action::drop: return "drop";
    case rules::Action::reject: return "reject";
    }
    return "?";
}

}  // namespace

const std::vector<std::string>& replay_port_names() {
    static const std::vector<std::string> kNames{"workload", "uplink"};
    return kNames;
}

int run_replay_bench(const ReplayBenchOptions& o) {
    // Policy.
    const auto ruleset = rules::RuleSet::compile(rules::load_policy_or_throw(o.policy_path));

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

    // Packets, loaded once and merged by timestamp.
    Capture cap;
    for (const ReplayPcap& p : o.pcaps) load_pcap(p, cap);
    std::stable_sort(cap.packets.begin(), cap.packets.end(),
                     [](const Packet& a, const Packet& b) { return a.ts_ns < b.ts_ns; });
    std::vector<FrameRef> frames;
    frames.reserve(cap.packets.size());
    for (const Packet& p : cap.packets) frames.push_back({cap.bytes.data() + p.offset, p.length, p.port});

    const std::vector<dataplane::PortConfig> ports{{dataplane::PortRole::workload, 1}, {dataplane::PortRole::uplink, 0}};
    std::vector<Verdict> verdicts(frames.size());
    Run total;
    Run first;
    for (unsigned it = 0; it < o.iterations; ++it) {
        Pipeline pipe(identity, classifier, 1, ports);
        const auto t0 = std::chrono::steady_clock::now();
        const uint64_t c0 = rte_rdtsc();
        // Bursts of kReplayBurst packets as a worker's rx burst, each packet at its own timestamp; the
        // housekeeping runs once per burst, at the burst's last timestamp.
        for (size_t b = 0; b < frames.size(); b += kReplayBurst) {
            const size_t end = std::min(frames.size(), b + kReplayBurst);
            for (size_t i = b; i < end; ++i) verdicts[i] = pipe.process_one(frames[i], cap.packets[i].ts_ns);
            pipe.expire(cap.packets[end - 1].ts_ns);
        }
        total.tsc_cycles += rte_rdtsc() - c0;
        total.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (it == 0) {
            first.flows = pipe.conntrack().table().size();
            first.reasons = pipe.reason_counters();
            first.verdicts = pipe.verdict_counters();
            if (!o.verdicts_path.empty()) {
                std::ofstream out(o.verdicts_path);
                if (!out) throw std::runtime_error(fmt::format("cannot write {}", o.verdicts_path));
                for (size_t i = 0; i < frames.size(); ++i) {
                    const Verdict& v = verdicts[i];
                    const std::string_view reason =
                        v.reason == dataplane::Reason::rule && v.rule >= 0
                            ? std::string_view(ruleset->rules()[static_cast<size_t>(v.rule)].id)
                            : dataplane::info(v.reason).word;
                    out << replay_port_names()[cap.packets[i].port] << ' ' << cap.packets[i].index << ' '
                        << action_word(v.action) << ' ' << reason << '\n';
                }
                if (!out.flush()) throw std::runtime_error(fmt::format("cannot write {}", o.verdicts_path));
            }
        }
    }

    const uint64_t processed = uint64_t{frames.size()} * o.iterations;
    const double mpps = total.seconds > 0 ? static_cast<double>(processed) / total.seconds / 1e6 : 0;
    const double cpp = processed ? static_cast<double>(total.tsc_cycles) / static_cast<double>(processed) : 0;
    const bool huge = eal && eal->hugepages;

    if (o.json) {
        nlohmann::json reasons = nlohmann::json::object();
        for (size_t r = 0; r < dataplane::kReasonCount; ++r)
            if (first.reasons[r]) reasons[std::string(dataplane::kReasons[r].counter)] = first.reasons[r];
        nlohmann::json worker = {
            {"worker", 0},
            {"packets", frames.size()},
            {"mpps", mpps},
            {"cycles_per_packet", cpp},
            {"flows", first.flows},
            {"verdicts", {{"allow", first.verdicts.allow}, {"drop", first.verdicts.drop}, {"reject", first.verdicts.reject}}},
            {"reasons", reasons},
        };
        nlohmann::json j = worker;
        j.erase("worker");
        j["workers"] = nlohmann::json::array({worker});
        j["engine"] = o.engine;
        j["iterations"] = o.iterations;
        j["seconds"] = total.seconds;
        j["hugepages"] = huge;
        fmt::print("{}\n", j.dump());
        return 0;
    }
    fmt::print("engine        {}\n", o.engine);
    fmt::print("packets       {} ({} iterations)\n", frames.size(), o.iterations);
    fmt::print("throughput    {:.2f} Mpps, {:.1f} TSC cycles/packet ({:.3f} s, 1 worker)\n", mpps, cpp, total.seconds);
    fmt::print("flows         {}\n", first.flows);
    fmt::print("verdicts      allow {}, drop {}, reject {}\n", first.verdicts.allow, first.verdicts.drop,
               first.verdicts.reject);
    for (size_t r = 0; r < dataplane::kReasonCount; ++r)
        if (first.reasons[r]) fmt::print("  {:<24} {}\n", dataplane::kReasons[r].counter, first.reasons[r]);
    fmt::print("hugepages     {}\n", eal ? (huge ? "yes" : "no") : "not used (no EAL: the trie engine needs none)");
    return 0;
}

}  // namespace tagwall::tools
