// Offline analysis of a validated policy: rules that can never match, rules that change nothing,
// groups that match nothing.  This is what `tagwall check` reports.
//
// Build side only.  The analysis is exact over the policy's own vocabulary: the space a rule covers is
// (source identity × destination identity × service), where identities are reduced to equivalence
// classes ("atoms": every endpoint or external address range that belongs to exactly the same set of
// groups) and services to elementary protocol/port/ICMP-type intervals.  Each address family is analysed
// separately, so a v4-only group never "covers" v6 traffic.  Regions are unions of boxes; covering is
// decided by box subtraction, so a partial overlap is never mistaken for a cover.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "rules/policy.hpp"

namespace tagwall::rules {

struct RuleFinding {
    enum class Kind : uint8_t {
        shadowed,    // earlier rules cover every packet this rule could match: it never matches
        redundant,   // it can match, but removing it changes no verdict (later rules/default agree)
        matches_nothing,  // its own from/to/services select no possible packet (e.g. v4 cidr to v6-only)
        incomplete,  // the analysis hit its work budget for this rule; nothing is claimed
    };
    Kind kind;
    uint32_t rule = 0;                 // index into Policy::rules
    std::vector<uint32_t> because_of;  // rules that cover it (shadowed) or take over (redundant)
    bool by_default = false;           // redundant: (part of) its traffic falls to the default action
    bool conflicting = false;          // shadowed by rules with a different action (a likely bug)
    std::string message;               // one readable sentence naming the rules involved
};

struct GroupFinding {
    enum class Kind : uint8_t { empty, unused };
    Kind kind;
    uint32_t group = 0;
    std::string message;
};

struct AnalysisOptions {
    // Upper bound on boxes kept per rule during subtraction; beyond it the rule is reported
    // `incomplete` rather than spending unbounded time.
    size_t max_boxes = 200000;
};

struct Analysis {
    std::vector<RuleFinding> rules;    // in rule order
    std::vector<GroupFinding> groups;  // in group order
};

Analysis analyze(const Policy& policy, const AnalysisOptions& options = {});

}  // namespace tagwall::rules
