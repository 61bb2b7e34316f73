// DPDK EAL start-up for tagwall's programs: nobody types EAL arguments (SPEC §2), they are derived here.
//
// A tool (tagwall-bench, the unit tests) gets a single-lcore EAL with no PCI scan, no telemetry socket
// and no shared configuration, so that it never meets another DPDK process's files:
//   PROGRAM --no-pci --no-telemetry -l CPU [--log-level=lib.eal:error]
//           (--in-memory | --no-huge -m MB --no-shconf --file-prefix=tagwall-PID)
//           [--force-max-simd-bitwidth=N] [EXTRA...]
// (--no-huge implies legacy memory, which --in-memory refuses; --no-shconf is the part of it we need.)
// CPU is the first CPU the process may run on (so `taskset -c 3 tagwall-bench ...` pins it to 3).
// Hugepages are used when the kernel has free ones in a mounted, writable hugetlbfs; otherwise the EAL
// runs with --no-huge and a heap of `no_huge_mb` MB (anonymous memory, touched only when used), and a
// warning says that lookups will be slower (4 KB pages: TLB misses on large tables).
//
// Concurrency contract: control thread only, once per process (rte_eal_init cannot run twice; a second
// call returns the first call's result).  Errors throw std::runtime_error.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace tagwall::dataplane {

enum class HugepageMode { automatic, required, off };  // SPEC §3 `hugepages: auto | required | off`

struct EalOptions {
    std::string program = "tagwall";  // argv[0] as DPDK sees it (its log lines name it)
    bool quiet = true;                // EAL logs errors only
    HugepageMode hugepages = HugepageMode::automatic;
    bool warn_no_huge = true;         // print the fallback warning on stderr (automatic mode only)
    size_t no_huge_mb = 2048;         // heap size when running without hugepages
    unsigned max_simd_bitwidth = 0;   // 0: DPDK's default (256 on x86); 512 lets rte_acl use AVX-512
    std::vector<std::string> extra_args;  // appended as is (an expert's raw EAL arguments)
};

struct EalInfo {
    bool hugepages = false;
    std::string args_joined;  // the EAL command line, for the tools to print
};

// Starts the EAL as described above.  Returns what was used.
EalInfo init_eal(const EalOptions& options);

// Starts the EAL with exactly these arguments (program name first), as eal_args_for() derives them from
// an appliance config; `hugepages` says whether they use hugepages (for EalInfo).
EalInfo init_eal_with_args(const std::vector<std::string>& args, bool hugepages);

// The tools' shorthand: automatic hugepages, everything else default.
EalInfo init_eal_for_tool(std::string_view tool_name, bool quiet, size_t no_huge_mb = 2048);

// True when rte_eal_init has succeeded in this process (and cleanup_eal has not run).
bool eal_initialised() noexcept;

// Free hugepages of the default size and a writable hugetlbfs mount to take them from.
bool hugepages_available();

// rte_eal_cleanup; call once at exit, after every DPDK object is freed.  Safe when never initialised.
void cleanup_eal() noexcept;

}  // namespace tagwall::dataplane
