// RCU publication of policy generations to running workers (SPEC §6), with DPDK's rte_rcu_qsbr.
//
// Concurrency contract.  One PolicyPublisher per appliance (or replay).  The control thread calls
// publish() and policy(); worker w calls only the worker functions with its own index, from its own
// thread, and never concurrently with itself.  Nothing here needs the EAL (the QSBR variable lives in
// ordinary aligned memory), so std::threads (tagwall-bench replay, the tests) use it as lcores do.
//
// The protocol, per worker poll iteration:
//     const PolicyBundle* b = pub.current();           // top of the iteration, acquire
//     if (b->generation != pipeline.generation()) { pipeline.adopt(*b, w); pub.adopted(w, b->generation); }
//     ... rx burst, process, tx ...
//     pub.quiescent(w);                                 // nothing of this iteration's bundle is held now
// and offline(w) / online(w) around an idle sleep (an offline worker never delays a publication's
// grace period; on coming back online it re-reads current() at the top of its next iteration).
// publish() stores the new pointer (release), waits until every registered, online worker has adopted
// the new generation (the acknowledgement SPEC's `policy load` reports) and until a grace period has
// passed (every worker quiescent since the store), then frees the old bundle: no worker can hold a
// pointer into it any more.  A packet is therefore decided by exactly one generation.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "dataplane/policy_bundle.hpp"

struct rte_rcu_qsbr;

namespace tagwall::dataplane {

// How long each phase of a publication took.
struct PublishTiming {
    double publish_ms = 0;  // storing the pointer
    double ack_ms = 0;      // until every online worker ran the new generation
    double grace_ms = 0;    // until every worker passed a quiescent state (then the old one is freed)
};

class PolicyPublisher {
public:
    // --- control side ---
    PolicyPublisher(std::unique_ptr<PolicyBundle> first, unsigned workers);
    ~PolicyPublisher();
    PolicyPublisher(const PolicyPublisher&) = delete;
    PolicyPublisher& operator=(const PolicyPublisher&) = delete;

    // Publishes `next` (a generation other than the current one's).  With `workers_running` false (no
    // worker registered or all stopped) it swaps at once and the caller adopts for its stopped
    // pipelines.  Returns the phases' durations.
    PublishTiming publish(std::unique_ptr<PolicyBundle> next, bool workers_running);
    const PolicyBundle& policy() const noexcept { return *current_; }
    uint32_t seen(unsigned worker) const noexcept { return slots_[worker].seen.load(std::memory_order_acquire); }
    unsigned workers() const noexcept { return static_cast<unsigned>(slots_.size()); }

    // --- worker w ---
    void register_worker(unsigned w) noexcept;    // once, before its first iteration (then online)
    void unregister_worker(unsigned w) noexcept;  // once, after its last
    const PolicyBundle* current() const noexcept { return published_.load(std::memory_order_acquire); }
    void adopted(unsigned w, uint32_t generation) noexcept {
        slots_[w].seen.store(generation, std::memory_order_release);
    }
    void quiescent(unsigned w) noexcept;
    void offline(unsigned w) noexcept;
    void online(unsigned w) noexcept;

private:
    struct alignas(64) Slot {
        std::atomic<uint32_t> seen{0};
        std::atomic<bool> online{false};
    };
    std::unique_ptr<PolicyBundle> current_;
    std::atomic<const PolicyBundle*> published_{nullptr};
    std::vector<Slot> slots_;
    rte_rcu_qsbr* qsbr_ = nullptr;
};

}  // namespace tagwall::dataplane
