// `tagwall-bench retag`: how long an endpoint tag change takes to reach the classifier, against a full
// recompile and rebuild.  Control side; single-threaded.
#pragma once

#include <string>

#include "dataplane/eal.hpp"

namespace tagwall::tools {

struct RetagBenchOptions {
    std::string policy_path;
    std::string engine = "trie";
    unsigned count = 200;  // retags to time
    bool json = false;
    dataplane::EalOptions eal;
};

int run_retag_bench(const RetagBenchOptions& options);

}  // namespace tagwall::tools
