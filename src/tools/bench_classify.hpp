// `tagwall-bench classify`: a ClassBench rule set and trace through one classifier engine (SPEC §7).
//
// Every engine runs under the same conditions: the EAL is started for all of them (hugepages when
// available), the build is timed, one warm-up pass over the trace fills --matches, then timed passes
// (at least --iterations, and until --min-seconds have passed) classify the whole trace in bursts of
// kBurst keys.  Control side; single-threaded.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "dataplane/eal.hpp"

namespace tagwall::tools {

struct ClassifyBenchOptions {
    std::string rules_path;
    std::string trace_path;
    std::string engine;
    unsigned iterations = 3;   // at least this many timed passes...
    double min_seconds = 0.5;  // ...and more until this much time was measured (short traces are noisy)
    bool json = false;
    std::string matches_path;  // empty: do not write
    unsigned updates = 0;      // rules to erase and re-insert one at a time, timing each (0: skip)
    dataplane::EalOptions eal;
};

inline constexpr size_t kBurst = 64;  // keys per classify_burst call, as a worker's rx burst

// Runs the benchmark and prints the report (human or JSON) on stdout.  Returns the exit status (0);
// throws std::runtime_error on unreadable input, EAL or engine failures.
int run_classify_bench(const ClassifyBenchOptions& options);

}  // namespace tagwall::tools
