// The worker -> control thread event ring: see events.hpp.
#include "dataplane/events.hpp"

#include <bit>

namespace tagwall::dataplane {

EventRing::EventRing(size_t capacity) {
    const size_t cap = std::bit_ceil(capacity < 2 ? size_t{2} : capacity);
    slots_ = std::make_unique<Event[]>(cap);
    mask_ = cap - 1;
}

bool EventRing::push(const Event& e) noexcept {
    const uint64_t head = head_.load(std::memory_order_relaxed);
    if (head - tail_.load(std::memory_order_acquire) > mask_) {
        lost_.fetch_add(1, std::memory_order_relaxed);
        return false;
    }
    slots_[head & mask_] = e;
    head_.store(head + 1, std::memory_order_release);
    return true;
}

bool EventRing::pop(Event& out) noexcept {
    const uint64_t tail = tail_.load(std::memory_order_relaxed);
    if (tail == head_.load(std::memory_order_acquire)) return false;
    out = slots_[tail & mask_];
    tail_.store(tail + 1, std::memory_order_release);
    return true;
}

}  // namespace tagwall::dataplane
