// EAL start-up (control side): derive the arguments, check hugepages, call rte_eal_init once.
#include "dataplane/eal.hpp"

#include <sched.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>
#include <rte_eal.h>
#include <rte_errno.h>

namespace tagwall::dataplane {

namespace {

struct EalState {
    std::mutex mutex;
    std::optional<EalInfo> info;     // set once rte_eal_init succeeded
    std::vector<std::string> argv;   // kept alive: the EAL may keep pointers into argv
};

EalState& state() {
    static EalState s;
    return s;
}

// "HugePages_Free:     1024" from /proc/meminfo (pages of the default size).
long free_hugepages() {
    std::ifstream in("/proc/meminfo");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("HugePages_Free:", 0) != 0) continue;
        const char* p = line.c_str() + 15;
        while (*p == ' ' || *p == '\t') ++p;
        long value = 0;
        std::from_chars(p, line.c_str() + line.size(), value);
        return value;
    }
    return 0;
}

// Mount points of every hugetlbfs in /proc/mounts.
std::vector<std::string> hugetlbfs_mounts() {
    std::ifstream in("/proc/mounts");
    std::string line;
    std::vector<std::string> mounts;
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::string device, mount_point, fs_type;
        if (fields >> device >> mount_point >> fs_type && fs_type == "hugetlbfs") mounts.push_back(mount_point);
    }
    return mounts;
}

// The first CPU this process may run on: the EAL pins its main lcore there.
int first_allowed_cpu() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
            if (CPU_ISSET(cpu, &set)) return cpu;
    return 0;
}

std::vector<std::string> build_args(const EalOptions& o, bool use_hugepages) {
    std::vector<std::string> args{o.program, "--no-pci", "--no-telemetry", "-l", std::to_string(first_allowed_cpu())};
    if (o.quiet) args.emplace_back("--log-level=lib.eal:error");
    if (use_hugepages) {
        args.emplace_back("--in-memory");  // no hugepage files, no shared config: nothing left behind
    } else {
        // --no-huge is legacy memory, which --in-memory refuses: say "no shared config" and keep the
        // runtime directory private instead.
        args.insert(args.end(), {"--no-huge", "-m", std::to_string(o.no_huge_mb), "--no-shconf",
                                 fmt::format("--file-prefix=tagwall-{}", getpid())});
    }
    if (o.max_simd_bitwidth != 0) args.push_back(fmt::format("--force-max-simd-bitwidth={}", o.max_simd_bitwidth));
    args.insert(args.end(), o.extra_args.begin(), o.extra_args.end());
    return args;
}

EalInfo start_locked(EalState& s, bool use_hugepages);  // s.argv set, s.mutex held

}  // namespace

bool hugepages_available() {
    if (free_hugepages() <= 0) return false;
    for (const auto& mount : hugetlbfs_mounts())
        if (access(mount.c_str(), W_OK) == 0) return true;
    return false;
}

EalInfo init_eal(const EalOptions& options) {
    EalState& s = state();
    const std::lock_guard lock(s.mutex);
    if (s.info) return *s.info;

    bool use_hugepages = false;
    switch (options.hugepages) {
    case HugepageMode::off: break;
    case HugepageMode::required:
        if (!hugepages_available())
            throw std::runtime_error("hugepages required but not available (no free hugepages, or no writable "
                                     "hugetlbfs mount): reserve some with scripts/setup.sh");
        use_hugepages = true;
        break;
    case HugepageMode::automatic:
        use_hugepages = hugepages_available();
        if (!use_hugepages && options.warn_no_huge)
            fmt::print(stderr, "{}: warning: hugepages not available: running with --no-huge (lookups are slower)\n",
                       options.program);
        break;
    }

    s.argv = build_args(options, use_hugepages);
    return start_locked(s, use_hugepages);
}

EalInfo init_eal_with_args(const std::vector<std::string>& args, bool hugepages) {
    EalState& s = state();
    const std::lock_guard lock(s.mutex);
    if (s.info) return *s.info;
    s.argv = args;
    return start_locked(s, hugepages);
}

namespace {

EalInfo start_locked(EalState& s, bool use_hugepages) {
    std::vector<char*> argv;
    for (auto& a : s.argv) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int parsed = rte_eal_init(static_cast<int>(s.argv.size()), argv.data());
    std::string joined;
    for (const auto& a : s.argv) joined += (joined.empty() ? "" : " ") + a;
    if (parsed < 0)
        throw std::runtime_error(fmt::format("rte_eal_init failed: {} (EAL arguments: {})", rte_strerror(rte_errno), joined));
    s.info = EalInfo{use_hugepages, joined};
    return *s.info;
}

}  // namespace

EalInfo init_eal_for_tool(std::string_view tool_name, bool quiet, size_t no_huge_mb) {
    EalOptions o;
    o.program = std::string(tool_name);
    o.quiet = quiet;
    o.no_huge_mb = no_huge_mb;
    return init_eal(o);
}

bool eal_initialised() noexcept {
    EalState& s = state();
    const std::lock_guard lock(s.mutex);
    return s.info.has_value();
}

void cleanup_eal() noexcept {
    EalState& s = state();
    const std::lock_guard lock(s.mutex);
    if (!s.info) return;
    rte_eal_cleanup();
    s.info.reset();
}

}  // namespace tagwall::dataplane
