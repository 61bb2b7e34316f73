// `tagwall-bench pipeline`: see bench_pipeline.hpp.  Read top-down: the entry point, the measuring
// helpers, the scenarios, then memory and output.  The traffic is in bench_pipeline_traffic.cpp.
#include "tools/bench_pipeline.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <stdexcept>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <rte_cycles.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

#include "dataplane/hash.hpp"
#include "dataplane/parser.hpp"
#include "dataplane/pipeline.hpp"
#include "dataplane/publisher.hpp"
#include "rules/policy_loader.hpp"
#include "tools/bench_pipeline_traffic.hpp"

namespace tagwall::tools {
namespace {

using Clock = std::chrono::steady_clock;
using dataplane::FrameRef;
using dataplane::Pipeline;
using dataplane::Verdict;
using Reasons = std::array<uint64_t, dataplane::kReasonCount>;
using traffic::FlowSpec;
using traffic::FrameBuffer;
using traffic::kFrameLength;
using traffic::kUplinkPort;
using traffic::kWorkloadPort;
using traffic::Traffic;

constexpr size_t kPipelineBurst = 32;      // FrameRefs per process() call: a worker's rx burst
constexpr double kMinAllowedShare = 0.99;  // below this the traffic is not what we meant to measure
constexpr size_t kHandshakeChunk = 4096;   // flows whose handshake frames are written at once

// The worker's clock: TSC-derived nanoseconds, read once per burst as the worker loop does.
class TscClock {
public:
    TscClock() : tsc0_(rte_rdtsc()), ns_per_tsc_(1e9 / static_cast<double>(rte_get_tsc_hz())) {}
    uint64_t now() const noexcept {
        return kEpochNs + static_cast<uint64_t>(static_cast<double>(rte_rdtsc() - tsc0_) * ns_per_tsc_);
    }

private:
    static constexpr uint64_t kEpochNs = 1'000'000'000;
    uint64_t tsc0_;
    double ns_per_tsc_;
};

// The cycles per packet of each run of kSegmentPackets packets within a pass.  On a shared machine a
// pass of a million packets always includes the scheduler giving the core away; most 1024-packet
// segments do not, so the median segment is what the code costs when it has the core.  Allocated
// before the pass; the pass only stores into it.
class Segments {
public:
    static constexpr uint64_t kSegmentPackets = 1024;
    explicit Segments(uint64_t packets_per_pass) : cpp_(packets_per_pass / kSegmentPackets + 1, 0) {}
    void start() noexcept {
        n_ = 0;
        packets_ = 0;
        last_ = rte_rdtsc();
    }
    void count(size_t packets) noexcept {
        packets_ += packets;
        if (packets_ < kSegmentPackets) return;
        const uint64_t t = rte_rdtsc();
        if (n_ < cpp_.size()) cpp_[n_++] = static_cast<double>(t - last_) / static_cast<double>(packets_);
        last_ = t;
        packets_ = 0;
    }
    // Ends a pass: one shorter than a segment counts as a single segment.
    void finish() noexcept {
        if (n_ == 0 && packets_ > 0 && !cpp_.empty())
            cpp_[n_++] = static_cast<double>(rte_rdtsc() - last_) / static_cast<double>(packets_);
    }
    // The median segment of the last pass (0 when it had none); reorders the stored values.
    double median() noexcept {
        if (n_ == 0) return 0;
        const auto mid = cpp_.begin() + static_cast<std::ptrdiff_t>(n_ / 2);
        std::nth_element(cpp_.begin(), mid, cpp_.begin() + static_cast<std::ptrdiff_t>(n_));
        return *mid;
    }

private:
    std::vector<double> cpp_;
    size_t n_ = 0;
    uint64_t packets_ = 0;
    uint64_t last_ = 0;
};

// Timed passes of one scenario.
struct Measure {
    uint64_t packets = 0, tsc = 0;
    double seconds = 0;
    unsigned passes = 0;
    double best_mpps = 0, best_cpp = 0;
    std::vector<double> pass_medians;  // each pass's median segment (cycles per packet)

    double mpps() const noexcept { return seconds > 0 ? static_cast<double>(packets) / seconds / 1e6 : 0; }
    double cpp() const noexcept { return packets ? static_cast<double>(tsc) / static_cast<double>(packets) : 0; }
    // The median over passes of each pass's median segment, in cycles per packet and in Mpps.
    double median_cpp() const {
        if (pass_medians.empty()) return 0;
        std::vector<double> v = pass_medians;
        std::sort(v.begin(), v.end());
        return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
    }
    double median_mpps() const {
        const double c = median_cpp();
        return c > 0 ? static_cast<double>(rte_get_tsc_hz()) / c / 1e6 : 0;
    }
};

struct MemorySnapshot {
    uint64_t rss_bytes = 0;
    uint64_t eal_heap_bytes = 0;
};

struct ScenarioResult {
    std::string name;
    Measure m;
    uint64_t flows = 0;
    uint32_t capacity = 0;      // 0: no pipeline (baseline)
    dataplane::VerdictCounters verdicts{};
    Reasons reasons{};
    dataplane::VerdictCounters setup{};  // the untimed handshakes
    size_t flows_live = 0;
    dataplane::FlowTableStats table{};
    size_t table_bytes = 0;
    std::optional<std::pair<MemorySnapshot, MemorySnapshot>> memory;  // before, after
};

struct Context {
    const PipelineBenchOptions& o;
    traffic::LoadedPolicy policy;
    Traffic traffic;
    TscClock clock;
};

void check_flow_count(const Traffic& t, uint64_t flows, std::string_view what);
uint64_t new_flow_packets(const PipelineBenchOptions& o) {
    return o.new_flows != 0 ? o.new_flows : o.packets != 0 ? o.packets : 1'000'000;
}
ScenarioResult run_new_flow(Context& c);
std::pair<std::optional<ScenarioResult>, std::optional<ScenarioResult>> run_established_and_baseline(
    Context& c, bool established, bool baseline);
ScenarioResult run_memory(Context& c);
int run_swap(Context& c, bool hugepages);
void check_allowed(const ScenarioResult& r, std::string_view what, const dataplane::VerdictCounters& v,
                   const Reasons& reasons);
void print_json(const Context& c, const std::vector<ScenarioResult>& results, bool hugepages);
void print_table(const Context& c, const std::vector<ScenarioResult>& results, bool hugepages);

}  // namespace

int run_pipeline_bench(const PipelineBenchOptions& o) {
    const bool all = o.scenario == "all";
    const dataplane::EalInfo eal = dataplane::init_eal(o.eal);
    struct EalGuard {
        ~EalGuard() { dataplane::cleanup_eal(); }
    } eal_guard;

    Context c{o, traffic::load_policy(o.policy_path, o.engine), {}, {}};
    c.traffic = traffic::discover_services(c.policy);
    if (o.scenario == "swap") {
        check_flow_count(c.traffic, o.flows, "swap --flows");
        return run_swap(c, eal.hugepages);
    }
    const bool est = all || o.scenario == "established", base = all || o.scenario == "baseline";
    const bool new_flow = all || o.scenario == "new-flow", memory = all || o.scenario == "memory";
    // Every scenario's flow count first, so that a run does not fail half-way.
    if (est || base) check_flow_count(c.traffic, o.flows, "established/baseline --flows");
    if (new_flow) check_flow_count(c.traffic, new_flow_packets(o), "new-flow --new-flows/--packets");
    if (memory) check_flow_count(c.traffic, o.memory_flows, "memory --memory-flows");
    std::vector<ScenarioResult> results;
    if (est || base) {
        auto [e, b] = run_established_and_baseline(c, est, base);
        if (e) results.push_back(std::move(*e));
        if (b) results.push_back(std::move(*b));
    }
    if (new_flow) results.push_back(run_new_flow(c));
    if (memory) results.push_back(run_memory(c));
    if (o.json) print_json(c, results, eal.hugepages);
    else print_table(c, results, eal.hugepages);
    return 0;
}

namespace {

// --- measuring ---

uint32_t default_capacity(const PipelineBenchOptions& o, uint64_t flows) {
    if (o.flow_capacity != 0) return o.flow_capacity;
    return static_cast<uint32_t>(std::min<uint64_t>(std::bit_ceil(std::max<uint64_t>(2 * flows, 2)),
                                                     dataplane::FlowTable::kMaxCapacity));
}

std::unique_ptr<Pipeline> make_pipeline(const Context& c, uint32_t capacity) {
    dataplane::PipelineConfig cfg;
    cfg.flows.capacity = capacity;
    cfg.flows.seed = dataplane::mix64(c.o.seed) | 1;
    const std::vector<dataplane::PortConfig> ports{{dataplane::PortRole::workload, kUplinkPort},
                                                   {dataplane::PortRole::uplink, kWorkloadPort}};
    return std::make_unique<Pipeline>(c.policy.identity, c.policy.classifier, 1, ports, cfg);
}

bool more_passes(const Measure& m, const PipelineBenchOptions& o) {
    return m.passes < o.iterations || m.seconds < o.min_seconds;
}

// Times run() (which processes `packets` packets, counting them into `seg`) and adds it to m.
template <class Run>
void timed(Measure& m, Segments& seg, uint64_t packets, Run&& run) {
    const auto t0 = Clock::now();
    const uint64_t c0 = rte_rdtsc();
    seg.start();
    run();
    seg.finish();
    const uint64_t cycles = rte_rdtsc() - c0;
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    m.packets += packets;
    m.tsc += cycles;
    m.seconds += seconds;
    ++m.passes;
    m.pass_medians.push_back(seg.median());
    const double mpps = seconds > 0 ? static_cast<double>(packets) / seconds / 1e6 : 0;
    if (mpps > m.best_mpps) {
        m.best_mpps = mpps;
        m.best_cpp = static_cast<double>(cycles) / static_cast<double>(packets);
    }
}

// `packets` frames of `frames`, from the first and round again, through the pipeline in bursts.
void pipeline_pass(Pipeline& pipe, FrameBuffer& frames, uint64_t packets, const TscClock& clock,
                   Segments* seg = nullptr) noexcept {
    std::array<Verdict, kPipelineBurst> out;
    const FrameRef* refs = frames.refs();
    size_t at = 0;
    for (uint64_t done = 0; done < packets;) {
        const size_t n = std::min({kPipelineBurst, static_cast<size_t>(packets - done), frames.size() - at});
        pipe.process(std::span<const FrameRef>(refs + at, n), clock.now(), out);
        if (seg) seg->count(n);
        at += n;
        if (at == frames.size()) at = 0;
        done += n;
    }
}

// The baseline's counters: what parse-and-forward decided.
struct ForwardCounts {
    dataplane::VerdictCounters verdicts{};
    Reasons reasons{};
    uint64_t forwarded[2] = {0, 0};  // per out port: where the wire sends it
};

// The baseline: the worker's parse (parse_ack_segment() for the ACKs its fast path reads so, else
// parse_frame(), prefetching the headers Pipeline::kFrameLead frames ahead as process() does) and the
// wire peer, nothing else; same bursts as pipeline_pass.
void forward_only_pass(FrameBuffer& frames, uint64_t packets, ForwardCounts& c, Segments* seg = nullptr) noexcept {
    static constexpr std::array<uint8_t, 2> kPeer{kUplinkPort, kWorkloadPort};
    std::array<Verdict, kPipelineBurst> out;
    dataplane::ParsedPacket scratch;
    dataplane::AckSegment ack;
    const FrameRef* refs = frames.refs();
    size_t at = 0;
    for (uint64_t done = 0; done < packets;) {
        const size_t n = std::min({kPipelineBurst, static_cast<size_t>(packets - done), frames.size() - at});
        for (size_t i = 0; i < n; ++i) {
            const FrameRef& f = refs[at + i];
            if (i + Pipeline::kFrameLead < n) __builtin_prefetch(refs[at + i + Pipeline::kFrameLead].data);
            const std::span<const uint8_t> bytes(f.data, f.length);
            if (!dataplane::parse_ack_segment(bytes, ack)) {
                if (const auto bad = dataplane::parse_frame(bytes, scratch)) {
                    out[i] = {rules::Action::drop, *bad, -1, dataplane::kNoPort};
                    ++c.verdicts.drop;
                    ++c.reasons[static_cast<size_t>(*bad)];
                    continue;
                }
            }
            out[i] = {rules::Action::allow, dataplane::Reason::established, -1, kPeer[f.port & 1]};
            ++c.verdicts.allow;
            ++c.forwarded[out[i].out_port];
        }
        if (seg) seg->count(n);
        at += n;
        if (at == frames.size()) at = 0;
        done += n;
    }
}

dataplane::VerdictCounters minus(const dataplane::VerdictCounters& a, const dataplane::VerdictCounters& b) {
    return {a.allow - b.allow, a.drop - b.drop, a.reject - b.reject};
}
Reasons minus(const Reasons& a, const Reasons& b) {
    Reasons r{};
    for (size_t i = 0; i < r.size(); ++i) r[i] = a[i] - b[i];
    return r;
}
void add(dataplane::VerdictCounters& a, const dataplane::VerdictCounters& b) {
    a.allow += b.allow;
    a.drop += b.drop;
    a.reject += b.reject;
}

// The handshakes of flows [0, n): SYN, SYN-ACK and ACK of each flow in a row, written chunk by chunk
// into `chunk` (3 x kHandshakeChunk frames; the caller allocates it, so that nothing is allocated here).
void handshake(Context& c, Pipeline& pipe, uint64_t n, FrameBuffer& chunk) {
    for (uint64_t first = 0; first < n; first += kHandshakeChunk) {
        const size_t flows = static_cast<size_t>(std::min<uint64_t>(kHandshakeChunk, n - first));
        for (size_t k = 0; k < flows; ++k) {
            const FlowSpec f = traffic::flow(c.traffic, first + k, c.o.seed);
            chunk.write(3 * k, f, dataplane::kTcpSyn, false);
            chunk.write(3 * k + 1, f, dataplane::kTcpSyn | dataplane::kTcpAck, true);
            chunk.write(3 * k + 2, f, dataplane::kTcpAck, false);
        }
        pipeline_pass(pipe, chunk, 3 * flows, c.clock);
    }
}

// One pure ACK each way for flows [0, n), in an order shuffled across flows and directions.
std::unique_ptr<FrameBuffer> ack_frames(const Context& c, uint64_t n) {
    std::vector<uint32_t> order(2 * n);
    for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), std::mt19937_64(c.o.seed));
    auto frames = std::make_unique<FrameBuffer>(order.size(), c.o.stride);
    for (size_t i = 0; i < order.size(); ++i)
        frames->write(i, traffic::flow(c.traffic, order[i] / 2, c.o.seed), dataplane::kTcpAck, (order[i] & 1) != 0);
    return frames;
}

void check_flow_count(const Traffic& t, uint64_t flows, std::string_view what) {
    if (flows <= t.max_flows()) return;
    throw std::runtime_error(fmt::format(
        "{}: {} flows asked, but the policy admits only {} (client, endpoint, port) services x {} client ports "
        "= {} distinct flows", what, flows, t.services.size(), t.client_ports.size(), t.max_flows()));
}

ScenarioResult base_result(std::string name, uint64_t flows, uint32_t capacity) {
    ScenarioResult r;
    r.name = std::move(name);
    r.flows = flows;
    r.capacity = capacity;
    r.m.pass_medians.reserve(4096);
    return r;
}

void take_table(ScenarioResult& r, const Pipeline& pipe) {
    r.flows_live = pipe.conntrack().table().size();
    r.table = pipe.conntrack().table().stats();
    r.table_bytes = pipe.conntrack().table().memory_bytes();
}

// established and baseline share their frames and alternate their passes (see the header).
std::pair<std::optional<ScenarioResult>, std::optional<ScenarioResult>> run_established_and_baseline(
    Context& c, bool established, bool baseline) {
    const PipelineBenchOptions& o = c.o;
    traffic::verify_flows(c.policy, c.traffic, o.flows, o.seed);
    const uint32_t capacity = default_capacity(o, o.flows);
    const uint64_t per_pass = o.packets != 0 ? o.packets : 2 * uint64_t{o.flows};
    const auto frames = ack_frames(c, o.flows);

    ScenarioResult est = base_result("established", o.flows, capacity), base = base_result("baseline", o.flows, 0);
    std::unique_ptr<Pipeline> pipe;
    dataplane::VerdictCounters v0{};
    Reasons r0{};
    if (established) {
        pipe = make_pipeline(c, capacity);
        FrameBuffer chunk(3 * kHandshakeChunk, o.stride);
        handshake(c, *pipe, o.flows, chunk);
        est.setup = pipe->verdict_counters();
        check_allowed(est, "handshake", est.setup, pipe->reason_counters());
        pipeline_pass(*pipe, *frames, per_pass, c.clock);  // warm-up
        v0 = pipe->verdict_counters();
        r0 = pipe->reason_counters();
    }
    ForwardCounts fwd;
    if (baseline) forward_only_pass(*frames, per_pass, fwd);  // warm-up
    fwd = {};
    Segments seg(per_pass);
    // Alternating while both need passes; the (much faster) baseline then goes on alone to its minimum.
    for (bool more_base = baseline, more_est = established; more_base || more_est;) {
        if (more_base) timed(base.m, seg, per_pass, [&] { forward_only_pass(*frames, per_pass, fwd, &seg); });
        if (more_est) timed(est.m, seg, per_pass, [&] { pipeline_pass(*pipe, *frames, per_pass, c.clock, &seg); });
        more_base = baseline && more_passes(base.m, o);
        more_est = established && more_passes(est.m, o);
    }
    std::pair<std::optional<ScenarioResult>, std::optional<ScenarioResult>> out;
    if (established) {
        est.verdicts = minus(pipe->verdict_counters(), v0);
        est.reasons = minus(pipe->reason_counters(), r0);
        take_table(est, *pipe);
        check_allowed(est, "timed ACKs", est.verdicts, est.reasons);
        out.first = std::move(est);
    }
    if (baseline) {
        base.verdicts = fwd.verdicts;
        base.reasons = fwd.reasons;
        check_allowed(base, "parsed frames", base.verdicts, base.reasons);
        out.second = std::move(base);
    }
    return out;
}

// --- swap: the established traffic while policies are published (see the header) ---

// As pipeline_pass, with the worker loop's RCU duties around each burst.
void rcu_pass(Pipeline& pipe, dataplane::PolicyPublisher& pub, FrameBuffer& frames, uint64_t packets,
              const TscClock& clock, Segments* seg = nullptr) noexcept {
    std::array<Verdict, kPipelineBurst> out;
    const FrameRef* refs = frames.refs();
    size_t at = 0;
    for (uint64_t done = 0; done < packets;) {
        const dataplane::PolicyBundle* b = pub.current();
        if (b->generation != pipe.generation()) {
            pipe.adopt(*b, 0);
            pub.adopted(0, b->generation);
        }
        const size_t n = std::min({kPipelineBurst, static_cast<size_t>(packets - done), frames.size() - at});
        pipe.process(std::span<const FrameRef>(refs + at, n), clock.now(), out);
        pub.quiescent(0);
        if (seg) seg->count(n);
        at += n;
        if (at == frames.size()) at = 0;
        done += n;
    }
}

double percentile(std::vector<double> v, double q) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5))];
}

int run_swap(Context& c, bool hugepages) {
    const PipelineBenchOptions& o = c.o;
    // What a load costs before anything is published: parse, compile, classifier, identity table.
    const auto t0 = Clock::now();
    const auto loaded = rules::load_policy_or_throw(o.policy_path);
    const auto t1 = Clock::now();
    const auto compiled = rules::RuleSet::compile(loaded);
    const auto t2 = Clock::now();
    auto classifier = std::make_shared<const rules::PolicyClassifier>(compiled, o.engine);
    const auto t3 = Clock::now();
    auto first = dataplane::PolicyBundle::make(classifier, 1, 1, o.policy_path);
    const auto t4 = Clock::now();
    auto ms = [](Clock::time_point a, Clock::time_point b) {
        return std::chrono::duration<double, std::milli>(b - a).count();
    };
    const double load_ms = ms(t0, t1), compile_ms = ms(t1, t2), classifier_ms = ms(t2, t3), identity_ms = ms(t3, t4);

    traffic::verify_flows(c.policy, c.traffic, o.flows, o.seed);
    const uint32_t capacity = default_capacity(o, o.flows);
    const uint64_t per_pass = o.packets != 0 ? o.packets : 2 * uint64_t{o.flows};
    const auto frames = ack_frames(c, o.flows);
    dataplane::PolicyPublisher pub(std::move(first), 1);
    auto pipe = make_pipeline(c, capacity);
    pipe->adopt(pub.policy(), 0);
    pub.register_worker(0);
    {
        FrameBuffer chunk(3 * kHandshakeChunk, o.stride);
        handshake(c, *pipe, o.flows, chunk);
    }
    rcu_pass(*pipe, pub, *frames, per_pass, c.clock);  // warm-up
    const dataplane::VerdictCounters v0 = pipe->verdict_counters();
    const uint64_t revoked0 = pipe->revoked();

    ScenarioResult steady = base_result("steady", o.flows, capacity), swapping = base_result("swapping", o.flows, capacity);
    std::vector<double> publish_ms, ack_ms, grace_ms;
    std::atomic<bool> swap_on{false}, quit{false};
    uint32_t generation = 1;
    // The control thread: while swap_on, a new generation of the same policy every 1/swap_hz seconds.
    // The EAL pinned this thread (the worker) to one CPU, and a new thread inherits that: the control
    // thread moves to the other CPUs, as the appliance's control lcore is apart from its workers.
    const unsigned worker_cpu = static_cast<unsigned>(sched_getcpu());
    std::thread control([&] {
        cpu_set_t others;
        CPU_ZERO(&others);
        for (unsigned cpu = 0; cpu < std::thread::hardware_concurrency(); ++cpu)
            if (cpu != worker_cpu) CPU_SET(cpu, &others);
        if (CPU_COUNT(&others) > 0) pthread_setaffinity_np(pthread_self(), sizeof others, &others);
        const auto period = std::chrono::duration<double>(1.0 / o.swap_hz);
        auto next = Clock::now();
        while (!quit.load()) {
            if (!swap_on.load()) {
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
                next = Clock::now() + std::chrono::duration_cast<Clock::duration>(period);
                continue;
            }
            if (Clock::now() < next) {
                std::this_thread::sleep_for(std::chrono::microseconds(200));
                continue;
            }
            next += std::chrono::duration_cast<Clock::duration>(period);
            const dataplane::PublishTiming t =
                pub.publish(dataplane::PolicyBundle::make(classifier, ++generation, 1, o.policy_path, c.policy.identity), true);
            publish_ms.push_back(t.publish_ms);
            ack_ms.push_back(t.ack_ms);
            grace_ms.push_back(t.grace_ms);
        }
    });
    Segments seg(per_pass);
    // Swapping passes must last long enough to see several publications.
    const double min_swap_seconds = std::max(o.min_seconds, 5.0 / o.swap_hz);
    // Steady passes first, then the swapping passes in one block (publications at a steady rate).
    while (more_passes(steady.m, o))
        timed(steady.m, seg, per_pass, [&] { rcu_pass(*pipe, pub, *frames, per_pass, c.clock, &seg); });
    swap_on = true;
    while (swapping.m.passes < o.iterations || swapping.m.seconds < min_swap_seconds)
        timed(swapping.m, seg, per_pass, [&] { rcu_pass(*pipe, pub, *frames, per_pass, c.clock, &seg); });
    swap_on = false;
    quit = true;
    control.join();
    pub.unregister_worker(0);
    const dataplane::VerdictCounters v = minus(pipe->verdict_counters(), v0);
    const uint64_t revoked = pipe->revoked() - revoked0;
    if (v.drop + v.reject != 0 || revoked != 0)
        throw std::runtime_error(fmt::format("swap: {} packets dropped, {} rejected, {} revoked: re-publishing the same "
                                             "policy must not change a verdict",
                                             v.drop, v.reject, revoked));
    const double ratio = steady.m.median_mpps() > 0 ? swapping.m.median_mpps() / steady.m.median_mpps() : 0;
    const double ratio_wall = steady.m.mpps() > 0 ? swapping.m.mpps() / steady.m.mpps() : 0;
    if (o.json) {
        nlohmann::json j = {{"scenario", "swap"},
                            {"rules", c.policy.rules->rules().size()},
                            {"flows", o.flows},
                            {"swap_hz", o.swap_hz},
                            {"publications", publish_ms.size()},
                            {"load_ms", load_ms},
                            {"compile_ms", compile_ms},
                            {"classifier_ms", classifier_ms},
                            {"identity_ms", identity_ms},
                            {"publish_ms", {{"p50", percentile(publish_ms, 0.5)}, {"p99", percentile(publish_ms, 0.99)},
                                            {"max", percentile(publish_ms, 1)}}},
                            {"ack_ms", {{"p50", percentile(ack_ms, 0.5)}, {"p99", percentile(ack_ms, 0.99)},
                                        {"max", percentile(ack_ms, 1)}}},
                            {"grace_ms", {{"p50", percentile(grace_ms, 0.5)}, {"p99", percentile(grace_ms, 0.99)},
                                          {"max", percentile(grace_ms, 1)}}},
                            {"steady_mpps_median", steady.m.median_mpps()},
                            {"swapping_mpps_median", swapping.m.median_mpps()},
                            {"steady_mpps", steady.m.mpps()},
                            {"swapping_mpps", swapping.m.mpps()},
                            {"swapping_vs_steady", ratio},
                            {"swapping_vs_steady_wall", ratio_wall},
                            {"hugepages", hugepages}};
        fmt::print("{}\n", j.dump());
        return 0;
    }
    fmt::print("policy      {}: {} rules, engine {}; {} flows established\n", o.policy_path,
               c.policy.rules->rules().size(), o.engine, o.flows);
    fmt::print("load        {:.1f} ms parse + {:.1f} ms compile + {:.1f} ms classifier + {:.1f} ms identity table\n",
               load_ms, compile_ms, classifier_ms, identity_ms);
    fmt::print("publish     {} publications at {} Hz: publish p50 {:.3f} ms; acknowledged p50 {:.3f} / p99 {:.3f} / "
               "max {:.3f} ms; grace p50 {:.3f} ms\n",
               publish_ms.size(), o.swap_hz, percentile(publish_ms, 0.5), percentile(ack_ms, 0.5),
               percentile(ack_ms, 0.99), percentile(ack_ms, 1), percentile(grace_ms, 0.5));
    fmt::print("throughput  steady {:.2f} Mpps median ({:.2f} wall); swapping {:.2f} Mpps median ({:.2f} wall); "
               "ratio {:.3f} (wall {:.3f})\n",
               steady.m.median_mpps(), steady.m.mpps(), swapping.m.median_mpps(), swapping.m.mpps(), ratio, ratio_wall);
    fmt::print("hugepages   {}\n", hugepages ? "yes" : "no");
    return 0;
}

// Every packet a SYN of a new connection, each pass into a fresh pipeline (built untimed).
ScenarioResult run_new_flow(Context& c) {
    const PipelineBenchOptions& o = c.o;
    const uint64_t packets = new_flow_packets(o);
    traffic::verify_flows(c.policy, c.traffic, packets, o.seed);
    const uint32_t capacity = default_capacity(o, packets);
    FrameBuffer syns(static_cast<size_t>(packets), o.stride);
    for (size_t i = 0; i < syns.size(); ++i) syns.write(i, traffic::flow(c.traffic, i, o.seed), dataplane::kTcpSyn, false);

    ScenarioResult r = base_result("new-flow", packets, capacity);
    {
        auto warm = make_pipeline(c, capacity);
        pipeline_pass(*warm, syns, packets, c.clock);
    }
    Segments seg(packets);
    while (more_passes(r.m, o)) {
        auto pipe = make_pipeline(c, capacity);
        timed(r.m, seg, packets, [&] { pipeline_pass(*pipe, syns, packets, c.clock, &seg); });
        add(r.verdicts, pipe->verdict_counters());
        const Reasons& rs = pipe->reason_counters();
        for (size_t i = 0; i < rs.size(); ++i) r.reasons[i] += rs[i];
        take_table(r, *pipe);
    }
    check_allowed(r, "SYNs", r.verdicts, r.reasons);
    return r;
}

MemorySnapshot memory_now();

// M flows held at once: memory after the pipeline's construction and after the flows and traffic.
ScenarioResult run_memory(Context& c) {
    const PipelineBenchOptions& o = c.o;
    const uint64_t flows = o.memory_flows;
    traffic::verify_flows(c.policy, c.traffic, flows, o.seed);
    const uint32_t capacity = default_capacity(o, flows);
    if (capacity < flows)
        throw std::runtime_error(fmt::format("memory: --flow-capacity {} cannot hold {} flows", capacity, flows));
    const auto frames = ack_frames(c, flows);  // every buffer the bench itself needs, before `before`
    FrameBuffer chunk(3 * kHandshakeChunk, o.stride);

    ScenarioResult r = base_result("memory", flows, capacity);
    Segments seg(frames->size());
    auto pipe = make_pipeline(c, capacity);
    const MemorySnapshot before = memory_now();
    handshake(c, *pipe, flows, chunk);
    r.setup = pipe->verdict_counters();
    const dataplane::VerdictCounters v0 = pipe->verdict_counters();
    const Reasons r0 = pipe->reason_counters();
    do {
        timed(r.m, seg, frames->size(), [&] { pipeline_pass(*pipe, *frames, frames->size(), c.clock, &seg); });
    } while (more_passes(r.m, o));
    const MemorySnapshot after = memory_now();
    r.memory = std::make_pair(before, after);
    r.verdicts = minus(pipe->verdict_counters(), v0);
    r.reasons = minus(pipe->reason_counters(), r0);
    take_table(r, *pipe);
    check_allowed(r, "handshake", r.setup, pipe->reason_counters());
    check_allowed(r, "timed ACKs", r.verdicts, r.reasons);
    return r;
}

std::string reasons_text(const Reasons& reasons) {
    std::string s;
    for (size_t i = 0; i < reasons.size(); ++i)
        if (reasons[i]) s += fmt::format("{}{} {}", s.empty() ? "" : ", ", dataplane::kReasons[i].counter, reasons[i]);
    return s.empty() ? "none" : s;
}

// Fails loudly when the traffic is not what the scenario means to measure.
void check_allowed(const ScenarioResult& r, std::string_view what, const dataplane::VerdictCounters& v,
                   const Reasons& reasons) {
    const uint64_t total = v.allow + v.drop + v.reject;
    if (total == 0 || static_cast<double>(v.allow) >= kMinAllowedShare * static_cast<double>(total)) return;
    throw std::runtime_error(fmt::format(
        "{}: only {} of {} {} were allowed (drop {}, reject {}; reasons: {}): the synthesized traffic is not "
        "what the policy allows, so the figures would not measure the allow path", r.name, v.allow, total, what,
        v.drop, v.reject, reasons_text(reasons)));
}

// --- memory ---

// Resident set from /proc/self/statm (read without allocating) and the EAL heap's allocated bytes.
MemorySnapshot memory_now() {
    MemorySnapshot s;
    if (const int fd = ::open("/proc/self/statm", O_RDONLY); fd >= 0) {
        char buf[256] = {};
        const ssize_t n = ::read(fd, buf, sizeof buf - 1);
        ::close(fd);
        unsigned long long pages = 0, resident = 0;
        if (n > 0 && std::sscanf(buf, "%llu %llu", &pages, &resident) == 2)
            s.rss_bytes = resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    }
    for (unsigned i = 0; i < rte_socket_count(); ++i) {
        rte_malloc_socket_stats stats{};
        if (rte_malloc_get_socket_stats(rte_socket_id_by_idx(i), &stats) == 0) s.eal_heap_bytes += stats.heap_allocsz_bytes;
    }
    return s;
}

// --- output ---

// a's rate over b's: from the median segments (what the code costs), or from the wall-clock totals.
double ratio(const ScenarioResult* a, const ScenarioResult* b) {
    return a && b && b->m.median_mpps() > 0 ? a->m.median_mpps() / b->m.median_mpps() : 0;
}
double ratio_wall(const ScenarioResult* a, const ScenarioResult* b) {
    return a && b && b->m.mpps() > 0 ? a->m.mpps() / b->m.mpps() : 0;
}

const ScenarioResult* find(const std::vector<ScenarioResult>& results, std::string_view name) {
    for (const auto& r : results)
        if (r.name == name) return &r;
    return nullptr;
}

void print_json(const Context& c, const std::vector<ScenarioResult>& results, bool hugepages) {
    const ScenarioResult* base = find(results, "baseline");
    for (const ScenarioResult& r : results) {
        nlohmann::json reasons = nlohmann::json::object();
        for (size_t i = 0; i < r.reasons.size(); ++i)
            if (r.reasons[i]) reasons[std::string(dataplane::kReasons[i].counter)] = r.reasons[i];
        nlohmann::json j = {
            {"scenario", r.name}, {"packets", r.m.packets}, {"flows", r.flows}, {"passes", r.m.passes},
            {"seconds", r.m.seconds}, {"mpps", r.m.mpps()}, {"cycles_per_packet", r.m.cpp()},
            {"mpps_median", r.m.median_mpps()}, {"cycles_per_packet_median", r.m.median_cpp()},
            {"mpps_best", r.m.best_mpps}, {"cycles_per_packet_best", r.m.best_cpp},
            {"verdicts", {{"allow", r.verdicts.allow}, {"drop", r.verdicts.drop}, {"reject", r.verdicts.reject}}},
            {"reasons", reasons}, {"engine", c.o.engine}, {"rules", c.policy.rules->rules().size()},
            {"services", c.traffic.services.size()}, {"frame_bytes", kFrameLength + 4}, {"stride", c.o.stride},
            {"burst", kPipelineBurst}, {"tsc_hz", rte_get_tsc_hz()}, {"hugepages", hugepages}};
        if (r.capacity != 0) {
            j["flow_capacity"] = r.capacity;
            j["flows_live"] = r.flows_live;
            j["flow_table_bytes"] = r.table_bytes;
            j["flow_table"] = {{"inserted", r.table.inserted}, {"evicted", r.table.evicted},
                               {"refused", r.table.refused}, {"expired", r.table.expired}};
        }
        if (r.setup.allow + r.setup.drop + r.setup.reject > 0)
            j["handshake_verdicts"] = {{"allow", r.setup.allow}, {"drop", r.setup.drop}, {"reject", r.setup.reject}};
        if (r.name == "new-flow") j["eviction"] = r.capacity < r.flows;
        auto or_null = [](bool have, double v) { return have ? nlohmann::json(v) : nlohmann::json(nullptr); };
        if (&r != base) {
            j["vs_baseline"] = or_null(base != nullptr, ratio(&r, base));
            j["vs_baseline_wall"] = or_null(base != nullptr, ratio_wall(&r, base));
        } else {
            const ScenarioResult* est = find(results, "established");
            const ScenarioResult* nf = find(results, "new-flow");
            j["established_vs_baseline"] = or_null(est != nullptr, ratio(est, base));
            j["new_flow_vs_baseline"] = or_null(nf != nullptr, ratio(nf, base));
            j["established_vs_baseline_wall"] = or_null(est != nullptr, ratio_wall(est, base));
            j["new_flow_vs_baseline_wall"] = or_null(nf != nullptr, ratio_wall(nf, base));
        }
        if (r.memory) {
            const auto& [before, after] = *r.memory;
            j["rss_before_bytes"] = before.rss_bytes;
            j["rss_after_bytes"] = after.rss_bytes;
            j["rss_growth_bytes"] = static_cast<int64_t>(after.rss_bytes) - static_cast<int64_t>(before.rss_bytes);
            j["eal_heap_before_bytes"] = before.eal_heap_bytes;
            j["eal_heap_after_bytes"] = after.eal_heap_bytes;
            j["eal_heap_growth_bytes"] =
                static_cast<int64_t>(after.eal_heap_bytes) - static_cast<int64_t>(before.eal_heap_bytes);
        }
        fmt::print("{}\n", j.dump());
    }
}

std::string mb(int64_t bytes) { return fmt::format("{:.1f} MB", static_cast<double>(bytes) / 1e6); }

void print_table(const Context& c, const std::vector<ScenarioResult>& results, bool hugepages) {
    const ScenarioResult* base = find(results, "baseline");
    fmt::print("policy      {}: {} rules, engine {}\n", c.o.policy_path, c.policy.rules->rules().size(), c.o.engine);
    fmt::print("traffic     {} allowed (client, endpoint, TCP port) services through {} rules; IPv4/TCP, "
               "64-byte frames (60 + FCS), stride {} B, bursts of {}\n",
               c.traffic.services.size(), c.traffic.rules_used, c.o.stride, kPipelineBurst);
    fmt::print("hugepages   {}\n", hugepages ? "yes (frames on the EAL heap)" : "NO (--no-huge: 4 KB pages)");
    fmt::print("TSC         {:.3f} GHz (cycles below are TSC cycles)\n\n", static_cast<double>(rte_get_tsc_hz()) / 1e9);
    fmt::print("{:<12} {:>8} {:>8} {:>9} {:>7} {:>7} {:>8} {:>8} {:>6}  {}\n", "", "", "", "", "Mpps", "Mpps",
               "cyc/pkt", "cyc/pkt", "vs", "");
    fmt::print("{:<12} {:>8} {:>8} {:>9} {:>7} {:>7} {:>8} {:>8} {:>6}  {}\n", "scenario", "flows", "capacity",
               "packets", "median", "wall", "median", "wall", "base", "verdicts (allow/drop/reject)");
    for (const ScenarioResult& r : results) {
        const std::string vs = base && &r != base ? fmt::format("{:.3f}", ratio(&r, base)) : std::string("-");
        fmt::print("{:<12} {:>8} {:>8} {:>9} {:>7.2f} {:>7.2f} {:>8.1f} {:>8.1f} {:>6}  {}/{}/{}\n", r.name, r.flows,
                   r.capacity ? fmt::format("{}", r.capacity) : std::string("-"), r.m.packets, r.m.median_mpps(),
                   r.m.mpps(), r.m.median_cpp(), r.m.cpp(), vs, r.verdicts.allow, r.verdicts.drop, r.verdicts.reject);
    }
    fmt::print("\n");
    for (const ScenarioResult& r : results) {
        fmt::print("{:<12} reasons: {}\n", r.name, reasons_text(r.reasons));
        if (r.setup.allow + r.setup.drop + r.setup.reject > 0)
            fmt::print("{:<12} handshakes: {} allowed, {} dropped, {} rejected (untimed)\n", "", r.setup.allow,
                       r.setup.drop, r.setup.reject);
        if (r.capacity != 0)
            fmt::print("{:<12} flow table: {} live of {}, {} ({} inserted, {} evicted, {} refused)\n", "", r.flows_live,
                       r.capacity, mb(static_cast<int64_t>(r.table_bytes)), r.table.inserted, r.table.evicted,
                       r.table.refused);
        if (r.name == "new-flow")
            fmt::print("{:<12} {}\n", "", r.capacity < r.flows ? "the table is smaller than a pass's SYNs: half-open "
                                                                 "entries are evicted to make room"
                                                               : "the table holds every SYN of a pass: no eviction");
        if (r.memory) {
            const auto& [before, after] = *r.memory;
            const auto rss0 = static_cast<int64_t>(before.rss_bytes), rss1 = static_cast<int64_t>(after.rss_bytes);
            const auto heap0 = static_cast<int64_t>(before.eal_heap_bytes);
            const auto heap1 = static_cast<int64_t>(after.eal_heap_bytes);
            fmt::print("{:<12} RSS {} after construction -> {} with {} flows (growth {}); EAL heap {} -> {} "
                       "(growth {} bytes)\n", "", mb(rss0), mb(rss1), r.flows_live, mb(rss1 - rss0), mb(heap0),
                       mb(heap1), heap1 - heap0);
        }
    }
    fmt::print("\nmedian: the median over passes of each pass's median 1024-packet segment (what the code costs when "
               "it has the core); wall: packets / seconds over all passes (scheduler and neighbours included)\n");
    if (base) fmt::print("vs base: the scenario's median Mpps / the parse-and-forward baseline's median Mpps\n");
}

}  // namespace
}  // namespace tagwall::tools
