// Events (SPEC §6): what the workers tell the control thread about their decisions, without logging.
//
// Concurrency contract: one EventRing per worker, single producer (the worker, run side: push() is
// noexcept, never allocates, never blocks, never locks) and single consumer (the control thread, which
// drains it and writes the JSON lines).  A full ring drops the event and counts it (`lost`), so a flood
// of denied packets costs the worker one failed push each, never a stall.
//
// An event is a fixed-size copy of what the control thread needs to name the packet: the rule index
// refers to the RuleSet of `generation`, and the control thread resolves the addresses to endpoint
// names itself (no lookup is spent on the worker for a packet that is being dropped anyway).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "dataplane/reasons.hpp"
#include "rules/address.hpp"
#include "rules/policy.hpp"

namespace tagwall::dataplane {

struct Event {
    uint64_t time_ns = 0;         // the worker's clock (CLOCK_MONOTONIC ns) when the packet was decided
    rules::IpAddr src, dst;       // meaningful when `ip`
    uint32_t generation = 0;
    int32_t rule = -1;            // index into RuleSet::rules(), or -1
    uint16_t sport = 0, dport = 0;
    uint16_t vlan = 0;
    uint8_t proto = 0;
    uint8_t icmp_type = 0, icmp_code = 0;
    uint8_t port = 0;             // ingress port
    rules::Action action = rules::Action::drop;
    Reason reason = Reason::default_action;
    bool ip = false;              // src/dst/proto/ports are known (the packet parsed as IP)
};

class EventRing {
public:
    explicit EventRing(size_t capacity = 4096);  // rounded up to a power of two; control side

    // --- the producer (the owning worker) ---
    bool push(const Event& e) noexcept;
    // --- the consumer (the control thread) ---
    bool pop(Event& out) noexcept;

    uint64_t lost() const noexcept { return lost_.load(std::memory_order_relaxed); }

private:
    std::unique_ptr<Event[]> slots_;
    size_t mask_;
    alignas(64) std::atomic<uint64_t> head_{0};  // next slot to write (producer)
    alignas(64) std::atomic<uint64_t> tail_{0};  // next slot to read (consumer)
    alignas(64) std::atomic<uint64_t> lost_{0};
};

}  // namespace tagwall::dataplane
