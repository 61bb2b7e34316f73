// tagwallctl's human output: each command's `result` (SPEC §6) as aligned tables, numbers right-aligned.
// Pure formatting: no I/O but the FILE* given.  A field the daemon leaves out prints as "-", so that an
// older or newer daemon never makes the CLI fail on a missing key.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tagwall::tools {

// The commands print_result() knows, as tagwallctl names them.
enum class CtlView { status, stats, ports, rules, policy_show, policy_load, policy_dry_run, endpoint_list,
                     endpoint_tags, flows, flows_flush, trace };

void print_result(CtlView view, const nlohmann::json& result, std::FILE* out);

// One event (a JSON object, SPEC §6) as one short line: time verdict src -> dst proto/dport rule/reason.
std::string describe_event_line(const nlohmann::json& event);

// A JSON value as table text: strings bare, null "-", floats with one decimal, arrays joined with ",".
std::string cell(const nlohmann::json& value);

// Columns aligned on their widest cell; numeric columns (declared with a leading '>') right-aligned.
class TextTable {
public:
    explicit TextTable(std::vector<std::string> headers);
    void add(std::vector<std::string> row);
    void print(std::FILE* out, const std::string& indent = "  ") const;
    size_t rows() const { return rows_.size(); }

private:
    std::vector<std::string> headers_;
    std::vector<bool> right_;
    std::vector<std::vector<std::string>> rows_;
};

}  // namespace tagwall::tools
