// `tagwall check`: offline validation and analysis of a policy file, as a readable report.
// Control side; no EAL, no root.
#pragma once

#include <cstdio>
#include <string>

namespace tagwall::tools {

struct CheckOptions {
    std::string policy_path;
    bool quiet = false;         // diagnostics and the verdict line only
    size_t max_file_mb = 32;
};

// Prints the report to `out`; returns the exit status: 0 valid, 1 invalid.
int run_check(const CheckOptions& options, std::FILE* out);

}  // namespace tagwall::tools
