// ClassBench rule sets and traces (Taylor & Turner), read into the classifier engines' field space.
//
// Rules, one per line, first line = highest priority (see ../shared/classbench/README.md):
//   @SIP/LEN <TAB> DIP/LEN <TAB> SPORT_LO : SPORT_HI <TAB> DPORT_LO : DPORT_HI <TAB> PROTO/MASK [<TAB> FLAGS/MASK]
// e.g. `@62.195.163.3/32	144.191.142.14/32	0 : 65535	3745 : 3745	0x06/0xFF	0x1000/0x1000`.
// Prefixes become ranges (/0 = [0, 0xFFFFFFFF]; host bits below the prefix are ignored, as DPDK's
// test-acl does), the protocol is exact (mask 0xFF) or any (mask 0x00), the flags column is ignored.
// Rule i (0-based, counting rule lines only) gets priority = id = i.
// Traces, one header per line: `SIP DIP SPORT DPORT PROTO [FLAGS [FILTER]]`, decimal; only the first
// five are kept.  Blank lines are skipped in both.
//
// Build side (control thread, tools, tests): allocates; errors throw std::runtime_error whose text is
// `FILE:LINE: message`.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "rules/classifier.hpp"

namespace tagwall::rules {

std::vector<FieldRule> read_classbench_rules(const std::string& path);
std::vector<FieldKey> read_classbench_trace(const std::string& path);

// The same, from text already in memory; `name` is what error messages call the file.
std::vector<FieldRule> parse_classbench_rules(std::string_view text, std::string_view name);
std::vector<FieldKey> parse_classbench_trace(std::string_view text, std::string_view name);

}  // namespace tagwall::rules
