// Loading policy.yaml (policy language v1, SPEC §4) into a validated Policy.
//
// Build side only; may allocate and throw.  The loader walks the whole document and reports every
// problem it finds, each with its FILE:LINE:COL, instead of stopping at the first.  Bad input of any
// kind (empty file, wrong types, unknown keys, huge or deeply nested documents) yields diagnostics,
// never a crash.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "rules/diagnostics.hpp"
#include "rules/policy.hpp"

namespace tagwall::rules {

struct LoadOptions {
    // Files larger than this are refused before parsing: yaml-cpp needs ~40x the file size in memory,
    // and no sane policy comes near it (100k rules are ~12 MB).
    size_t max_file_bytes = 32u << 20;
};

struct LoadResult {
    std::optional<Policy> policy;  // set when there are no errors
    Diagnostics diagnostics;       // errors and warnings, in any case
};

// Reads and validates FILE.  Never throws for bad content; I/O failures are diagnostics too.
LoadResult load_policy_file(const std::string& path, const LoadOptions& options = {});

// Same, from text already in memory; `name` is the file name used in positions.
LoadResult load_policy_text(const std::string& text, const std::string& name, const LoadOptions& options = {});

// Convenience for callers that want an exception: returns the policy or throws PolicyError.
Policy load_policy_or_throw(const std::string& path, const LoadOptions& options = {});

}  // namespace tagwall::rules
