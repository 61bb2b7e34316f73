// RCU publication of policy generations: see publisher.hpp.
#include "dataplane/publisher.hpp"

#include <sched.h>

#include <chrono>
#include <cstdlib>
#include <new>
#include <stdexcept>

#include <rte_pause.h>
#include <rte_rcu_qsbr.h>

namespace tagwall::dataplane {

namespace {

// The control thread's wait for the workers: spin briefly (a worker's poll iteration is microseconds),
// then yield, so that on a machine with fewer cores than threads the workers get the core it would burn.
void relax(unsigned spin) noexcept {
    if (spin < 1024) rte_pause();
    else sched_yield();
}

}  // namespace

PolicyPublisher::PolicyPublisher(std::unique_ptr<PolicyBundle> first, unsigned workers)
    : current_(std::move(first)), slots_(workers == 0 ? 1 : workers) {
    if (current_ == nullptr) throw std::invalid_argument("publisher: no first policy");
    published_.store(current_.get());
    for (auto& s : slots_) s.seen.store(current_->generation);
    const size_t size = rte_rcu_qsbr_get_memsize(static_cast<uint32_t>(slots_.size()));
    const size_t rounded = (size + 63) / 64 * 64;
    qsbr_ = static_cast<rte_rcu_qsbr*>(std::aligned_alloc(64, rounded));
    if (qsbr_ == nullptr) throw std::bad_alloc();
    if (rte_rcu_qsbr_init(qsbr_, static_cast<uint32_t>(slots_.size())) != 0) {
        std::free(qsbr_);
        throw std::runtime_error("rte_rcu_qsbr_init failed");
    }
}

PolicyPublisher::~PolicyPublisher() { std::free(qsbr_); }

void PolicyPublisher::register_worker(unsigned w) noexcept {
    rte_rcu_qsbr_thread_register(qsbr_, w);
    online(w);
}

void PolicyPublisher::unregister_worker(unsigned w) noexcept {
    offline(w);
    rte_rcu_qsbr_thread_unregister(qsbr_, w);
}

void PolicyPublisher::quiescent(unsigned w) noexcept { rte_rcu_qsbr_quiescent(qsbr_, w); }

void PolicyPublisher::offline(unsigned w) noexcept {
    slots_[w].online.store(false, std::memory_order_release);
    rte_rcu_qsbr_thread_offline(qsbr_, w);
}

void PolicyPublisher::online(unsigned w) noexcept {
    rte_rcu_qsbr_thread_online(qsbr_, w);
    slots_[w].online.store(true, std::memory_order_release);
}

PublishTiming PolicyPublisher::publish(std::unique_ptr<PolicyBundle> next, bool workers_running) {
    using Clock = std::chrono::steady_clock;
    auto ms = [](Clock::time_point a, Clock::time_point b) {
        return std::chrono::duration<double, std::milli>(b - a).count();
    };
    if (next == nullptr || next->generation == current_->generation)
        throw std::invalid_argument("publish: a new bundle with a new generation is needed");
    PublishTiming t;
    const uint32_t generation = next->generation;
    const auto t0 = Clock::now();
    std::unique_ptr<PolicyBundle> old = std::move(current_);
    current_ = std::move(next);
    published_.store(current_.get(), std::memory_order_release);
    const uint64_t token = workers_running ? rte_rcu_qsbr_start(qsbr_) : 0;
    const auto t1 = Clock::now();
    t.publish_ms = ms(t0, t1);
    if (workers_running) {
        // Acknowledgement: every worker that is online runs the new generation.  An offline (idle)
        // worker adopts it at the top of its next iteration, before it touches a packet.
        for (auto& s : slots_)
            for (unsigned spin = 0;
                 s.online.load(std::memory_order_acquire) && s.seen.load(std::memory_order_acquire) != generation; ++spin)
                relax(spin);
    } else {
        for (auto& s : slots_) s.seen.store(generation);
    }
    const auto t2 = Clock::now();
    t.ack_ms = ms(t1, t2);
    if (workers_running)
        for (unsigned spin = 0; rte_rcu_qsbr_check(qsbr_, token, false) == 0; ++spin) relax(spin);
    t.grace_ms = ms(t2, Clock::now());
    old.reset();
    return t;
}

}  // namespace tagwall::dataplane
