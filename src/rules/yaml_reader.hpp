// Reading operator-written YAML (policies, appliance configs) defensively, with positioned diagnostics.
//
// Control side only.  Shared by the policy loader (rules/policy_loader.cpp) and the appliance config
// loader (dataplane/config.cpp): the size-limited file read, the parse that turns yaml-cpp's exceptions
// into FILE:LINE:COL errors, and YamlReader, the typed accessors a loader walks a document with.
// Every accessor type-checks before use, reports its own error and returns nullopt/false, so that a
// loader can go on and report every problem in the file rather than the first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "rules/diagnostics.hpp"

namespace tagwall::rules {

// True when `size` bytes may be parsed; otherwise an error at 1:1 says the `what` ("policy", "config")
// is over the limit.
bool within_size_limit(size_t size, const std::string& name, size_t max_bytes, std::string_view what,
                       Diagnostics& diag);

// The whole of a regular file of at most max_bytes; nullopt (with the error) otherwise.
std::optional<std::string> read_yaml_file(const std::string& path, size_t max_bytes, std::string_view what,
                                          Diagnostics& diag);

// yaml-cpp's parse, with syntax errors and too-deep nesting as positioned errors.
std::optional<YAML::Node> parse_yaml(const std::string& text, const std::string& name, Diagnostics& diag);

class YamlReader {
public:
    using Keys = std::vector<std::string>;
    using KeyMap = std::unordered_map<std::string, YAML::Node>;

    // After max_errors errors the reader stops (one last error says so); visit() allows at most
    // visit_budget nodes, which bounds the work an alias-expanded document can cause.
    YamlReader(std::string file, Diagnostics& diag, size_t max_errors, size_t visit_budget);

    SourcePos pos(const YAML::Node& n) const;
    void error(const YAML::Node& n, std::string msg);
    bool visit(const YAML::Node& n);
    bool expect(const YAML::Node& n, YAML::NodeType::value type, const std::string& what);
    // The keys of a map, each checked against `allowed` (unknown: error with "did you mean") and once only.
    KeyMap keys_of(const YAML::Node& map, const Keys& allowed, const std::string& what);
    std::optional<std::string> scalar(const YAML::Node& n, const std::string& what);
    // A plain decimal number in [min, max].
    std::optional<uint64_t> number(const YAML::Node& n, const std::string& what, uint64_t min, uint64_t max);

    static const char* kind_name(const YAML::Node& n);

protected:
    std::string file_;
    Diagnostics& diag_;

private:
    size_t max_errors_;
    size_t visit_budget_;
    size_t visits_ = 0;
    bool stopped_ = false;
};

}  // namespace tagwall::rules
