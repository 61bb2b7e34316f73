// `tagwall-bench classify`: read, start the EAL, build (timed), warm up, measure, report.
#include "tools/bench_classify.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <charconv>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <rte_cycles.h>
#include <rte_log.h>

#include "rules/classbench.hpp"
#include "rules/classifier.hpp"

namespace tagwall::tools {

namespace {

using Clock = std::chrono::steady_clock;
using rules::FieldKey;

struct Measurement {
    double build_ms = 0;
    size_t memory_bytes = 0;
    std::string detail;
    double seconds = 0;
    uint64_t tsc_cycles = 0;
    size_t lookups = 0;
    unsigned iterations = 0;  // timed passes actually run
    size_t matched = 0;  // trace lines with a match (warm-up pass)
    uint64_t tsc_hz = 0;
    std::optional<size_t> build_scratch_bytes;  // rte_acl: its build's scratch heap, from its log
    // Single-rule updates (--updates): each erase and each re-insert timed on its own, in microseconds.
    std::vector<double> update_us;
    bool update_in_place = true;     // false: the engine can only rebuild (its update cost is build_ms)
    size_t update_mismatches = 0;    // trace lines whose answer changed after erasing and re-inserting
};

// rte_acl builds in a scratch heap of its own (libc memory, freed before rte_acl_build returns) that can
// be many times its run-time tables; it tells how large only in a debug log line, "memory consumed: N".
// This captures DPDK's log stream around the build to read it.  When the build fails, everything that
// was captured goes to stderr.  Tool-side only: it changes DPDK's global log stream during the build.
class AclBuildLog {
public:
    AclBuildLog() {
        stream_ = open_memstream(&text_, &size_);
        if (stream_ == nullptr) return;
        logtype_ = rte_log_register("lib.acl");
        if (logtype_ >= 0) {
            old_level_ = rte_log_get_level(static_cast<uint32_t>(logtype_));
            rte_log_set_level(static_cast<uint32_t>(logtype_), RTE_LOG_DEBUG);
        }
        rte_openlog_stream(stream_);
    }
    ~AclBuildLog() {
        if (stream_ != nullptr) fmt::print(stderr, "{}", stop());  // the build failed: show what rte_acl said
        std::free(text_);
    }
    AclBuildLog(const AclBuildLog&) = delete;
    AclBuildLog& operator=(const AclBuildLog&) = delete;

    // After a successful build: stops capturing, returns the largest "memory consumed" (0 when absent).
    size_t scratch_bytes() {
        const std::string_view log = stop();
        constexpr std::string_view kKey = "memory consumed: ";
        size_t largest = 0;
        for (size_t at = log.find(kKey); at != std::string_view::npos; at = log.find(kKey, at + 1)) {
            size_t value = 0;
            std::from_chars(log.data() + at + kKey.size(), log.data() + log.size(), value);
            largest = std::max(largest, value);
        }
        return largest;
    }

private:
    std::string_view stop() {
        if (stream_ != nullptr) {
            rte_openlog_stream(nullptr);  // back to DPDK's default stream
            std::fclose(stream_);         // flushes text_/size_
            stream_ = nullptr;
            if (logtype_ >= 0 && old_level_ >= 0)
                rte_log_set_level(static_cast<uint32_t>(logtype_), static_cast<uint32_t>(old_level_));
        }
        return text_ ? std::string_view(text_, size_) : std::string_view();
    }

    std::FILE* stream_ = nullptr;
    char* text_ = nullptr;
    size_t size_ = 0;
    int logtype_ = -1;
    int old_level_ = -1;
};

double ms_since(Clock::time_point start) {
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// One pass over the whole trace, kBurst keys per call.
void classify_trace(const rules::Classifier& engine, std::span<const FieldKey> keys, std::span<int32_t> out) {
    for (size_t i = 0; i < keys.size(); i += kBurst) {
        const size_t n = std::min(kBurst, keys.size() - i);
        engine.classify_burst(keys.subspan(i, n), out.subspan(i, n));
    }
}

void write_matches(const std::string& path, std::span<const int32_t> ids) {
    std::unique_ptr<std::FILE, decltype(&std::fclose)> f(std::fopen(path.c_str(), "w"), &std::fclose);
    if (!f) throw std::runtime_error(fmt::format("{}: cannot write: {}", path, std::strerror(errno)));
    fmt::memory_buffer buf;
    for (const int32_t id : ids) fmt::format_to(std::back_inserter(buf), "{}\n", id);
    if (std::fwrite(buf.data(), 1, buf.size(), f.get()) != buf.size() || std::fflush(f.get()) != 0)
        throw std::runtime_error(fmt::format("{}: write error: {}", path, std::strerror(errno)));
}

void measure_updates(rules::Classifier& engine, std::span<const rules::FieldRule> rule_list,
                     std::span<const FieldKey> keys, std::span<const int32_t> before, unsigned count, Measurement& m);

Measurement measure(const ClassifyBenchOptions& o, std::span<const rules::FieldRule> rule_list,
                    std::span<const FieldKey> keys) {
    Measurement m;
    std::optional<AclBuildLog> acl_log;
    if (o.engine == "rte_acl") acl_log.emplace();
    const auto build_start = Clock::now();
    const auto engine = rules::make_classifier(o.engine, rule_list);
    m.build_ms = ms_since(build_start);
    if (acl_log) m.build_scratch_bytes = acl_log->scratch_bytes();
    const auto stats = engine->stats();
    m.memory_bytes = stats.memory_bytes;
    m.detail = stats.detail;

    std::vector<int32_t> out(keys.size());
    classify_trace(*engine, keys, out);  // warm-up: caches, TLB, branch predictors; its results are the matches
    m.matched = static_cast<size_t>(std::count_if(out.begin(), out.end(), [](int32_t id) { return id != rules::kNoMatch; }));
    if (!o.matches_path.empty()) write_matches(o.matches_path, out);

    const auto start = Clock::now();
    const uint64_t tsc_start = rte_rdtsc();
    do {
        classify_trace(*engine, keys, out);
        ++m.iterations;
    } while (m.iterations < o.iterations || ms_since(start) < o.min_seconds * 1000.0);
    m.tsc_cycles = rte_rdtsc() - tsc_start;
    m.seconds = ms_since(start) / 1000.0;
    m.lookups = keys.size() * m.iterations;
    m.tsc_hz = rte_get_tsc_hz();
    if (o.updates > 0) {
        std::vector<int32_t> before(keys.size());
        classify_trace(*engine, keys, before);
        measure_updates(*engine, rule_list, keys, before, o.updates, m);
    }
    return m;
}

// Erases and re-inserts `count` rules chosen with a fixed seed, timing each operation; then checks that
// the engine answers the trace exactly as before (the rule set is the same again).
void measure_updates(rules::Classifier& engine, std::span<const rules::FieldRule> rule_list,
                     std::span<const FieldKey> keys, std::span<const int32_t> before, unsigned count, Measurement& m) {
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    for (unsigned i = 0; i < count && !rule_list.empty(); ++i) {
        seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
        const rules::FieldRule& rule = rule_list[seed % rule_list.size()];
        auto start = Clock::now();
        if (!engine.erase(rule.priority)) {
            m.update_in_place = false;
            return;
        }
        m.update_us.push_back(ms_since(start) * 1000.0);
        start = Clock::now();
        engine.insert(rule);
        m.update_us.push_back(ms_since(start) * 1000.0);
    }
    std::vector<int32_t> after(keys.size());
    classify_trace(engine, keys, after);
    for (size_t i = 0; i < keys.size(); ++i) m.update_mismatches += after[i] != before[i];
}

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

double mpps(const Measurement& m) { return m.seconds > 0 ? static_cast<double>(m.lookups) / m.seconds / 1e6 : 0; }
double cycles_per_lookup(const Measurement& m) {
    return m.lookups ? static_cast<double>(m.tsc_cycles) / static_cast<double>(m.lookups) : 0;
}

void print_json(const ClassifyBenchOptions& o, const dataplane::EalInfo& eal, size_t rule_count, size_t trace_lines,
                const Measurement& m) {
    nlohmann::json j = {
        {"engine", o.engine},
        {"rules", rule_count},
        {"trace_lines", trace_lines},
        {"build_ms", m.build_ms},
        {"memory_bytes", m.memory_bytes},
        {"mpps", mpps(m)},
        {"cycles_per_lookup", cycles_per_lookup(m)},
        {"iterations", m.iterations},
        {"min_seconds", o.min_seconds},
        {"seconds", m.seconds},
        {"matched", m.matched},
        {"burst", kBurst},
        {"tsc_hz", m.tsc_hz},
        {"hugepages", eal.hugepages},
        {"eal_args", eal.args_joined},
        {"detail", m.detail},
        {"rules_file", o.rules_path},
        {"trace_file", o.trace_path},
    };
    if (o.updates > 0) {
        j["update_in_place"] = m.update_in_place;
        j["update_ops"] = m.update_us.size();
        j["update_us_p50"] = percentile(m.update_us, 0.50);
        j["update_us_p99"] = percentile(m.update_us, 0.99);
        j["update_us_max"] = percentile(m.update_us, 1.0);
        j["update_mismatches"] = m.update_mismatches;
    }
    j["build_scratch_bytes"] = m.build_scratch_bytes ? nlohmann::json(*m.build_scratch_bytes) : nlohmann::json(nullptr);
    fmt::print("{}\n", j.dump());
}

void print_human(const ClassifyBenchOptions& o, const dataplane::EalInfo& eal, size_t rule_count, size_t trace_lines,
                 const Measurement& m) {
    fmt::print("engine        {} ({})\n", o.engine, m.detail);
    fmt::print("rules         {} from {}\n", rule_count, o.rules_path);
    fmt::print("trace         {} lines from {}, {} matched a rule\n", trace_lines, o.trace_path, m.matched);
    fmt::print("build         {:.2f} ms\n", m.build_ms);
    fmt::print("memory        {:.2f} MB ({} bytes)\n", static_cast<double>(m.memory_bytes) / 1e6, m.memory_bytes);
    if (m.build_scratch_bytes)
        fmt::print("build scratch {:.2f} MB (rte_acl's temporary build heap, freed after the build)\n",
                   static_cast<double>(*m.build_scratch_bytes) / 1e6);
    fmt::print("lookups       {:.2f} Mpps, {:.1f} TSC cycles/lookup ({} iterations x {} lookups in {:.3f} s, "
               "bursts of {})\n",
               mpps(m), cycles_per_lookup(m), m.iterations, trace_lines, m.seconds, kBurst);
    if (o.updates > 0 && !m.update_in_place)
        fmt::print("updates       none in place: every change is a full rebuild ({:.2f} ms)\n", m.build_ms);
    else if (o.updates > 0)
        fmt::print("updates       {} single-rule erase/insert: p50 {:.1f} us, p99 {:.1f} us, max {:.1f} us; "
                   "{} answers changed afterwards\n",
                   m.update_us.size(), percentile(m.update_us, 0.5), percentile(m.update_us, 0.99),
                   percentile(m.update_us, 1.0), m.update_mismatches);
    fmt::print("hugepages     {}\n", eal.hugepages ? "yes" : "NO (--no-huge: slower lookups)");
    fmt::print("EAL           {}\n", eal.args_joined);
}

}  // namespace

int run_classify_bench(const ClassifyBenchOptions& o) {
    const auto rule_list = rules::read_classbench_rules(o.rules_path);
    const auto keys = rules::read_classbench_trace(o.trace_path);
    if (keys.empty()) throw std::runtime_error(fmt::format("{}: the trace has no lines", o.trace_path));
    const dataplane::EalInfo eal = dataplane::init_eal(o.eal);
    const Measurement m = measure(o, rule_list, keys);  // the engine is freed inside, before the EAL goes
    dataplane::cleanup_eal();
    if (o.json)
        print_json(o, eal, rule_list.size(), keys.size(), m);
    else
        print_human(o, eal, rule_list.size(), keys.size(), m);
    return 0;
}

}  // namespace tagwall::tools
