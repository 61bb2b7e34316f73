// Events as JSON lines (SPEC §6): the control thread's side of the workers' event rings.
//
// Control side only (allocates).  format_event() turns one worker Event into one line of JSON with the
// names an operator reads: the rule's id, the segment's name, both endpoints' names (resolved here, not
// on the worker), the protocol's name and the reason.  Keys, in this order:
//   time (UTC, ISO 8601 with milliseconds), verdict (allow|drop|reject), rule (id or null), generation,
//   reason (the coarse word of `replay --verdicts`: rule, default, spoofed, invalid, revoked, ...),
//   detail (the fine-grained counter name: spoofed_mac, invalid_tcp_window, ...), segment (name or
//   null), port (the ingress port's name), src, dst, proto (tcp|udp|icmp|icmpv6|sctp|NUMBER), sport,
//   dport (TCP/UDP/SCTP), icmp_type, icmp_code (ICMP), src_endpoint, dst_endpoint (names or null).
// A frame that did not parse as IP carries no addresses (ARP: the sender and target addresses).
#pragma once

#include <time.h>

#include <cstdint>
#include <map>
#include <utility>
#include <string>
#include <vector>

#include "dataplane/events.hpp"
#include "rules/ruleset.hpp"

namespace tagwall::control {

// `wall_origin_ns`: CLOCK_REALTIME nanoseconds at which the worker clock (Event::time_ns) read 0.
std::string format_event(const dataplane::Event& e, const rules::RuleSet& rules,
                         const std::vector<std::string>& port_names, uint64_t wall_origin_ns);

// The one-line human form the daemon prints with --events: "drop web-1 198.18.10.11:40000 -> ... tcp/5432 (default)".
std::string describe_event(const dataplane::Event& e, const rules::RuleSet& rules,
                           const std::vector<std::string>& port_names);

std::string protocol_name(uint8_t proto);

// Shared by the event log, the commands and the daemon (control side).
uint64_t clock_ns(clockid_t clock);                        // CLOCK_REALTIME / CLOCK_MONOTONIC in ns
std::string iso_time(uint64_t wall_ns, bool millis = true); // "2026-11-22T21:11:42.392Z" (UTC)
std::string segment_name(const rules::RuleSet& rules, uint16_t vlan);  // "" when the VLAN names none
std::string rule_id(const rules::RuleSet& rules, int32_t rule);         // "" for -1 or out of range

// The event log's flood guard (SPEC §6: "rate-limited per rule so a flood cannot fill a disk"): a token
// bucket per rule, and one per reason for events no rule decided (spoofed, invalid, default ...).
// Control side.  admit() says whether an event is written; what it refuses is counted per key and
// reported by take_suppressed() (the daemon writes one summary line per key and interval).
class EventLimiter {
public:
    explicit EventLimiter(uint32_t per_second = 100, uint32_t burst = 200) : rate_(per_second), burst_(burst) {}
    bool admit(const dataplane::Event& e, uint64_t now_ns);
    // (key, count) of the events refused since the last call, and resets the counts.
    std::vector<std::pair<std::string, uint64_t>> take_suppressed(const rules::RuleSet& rules);
    uint64_t suppressed_total() const noexcept { return total_; }

private:
    struct Bucket {
        double tokens = 0;
        uint64_t last_ns = 0;
        uint64_t suppressed = 0;
        bool started = false;
    };
    static int64_t key_of(const dataplane::Event& e) noexcept;  // rule index, or -1 - reason
    uint32_t rate_, burst_;
    std::map<int64_t, Bucket> buckets_;
    uint64_t total_ = 0;
};

}  // namespace tagwall::control
