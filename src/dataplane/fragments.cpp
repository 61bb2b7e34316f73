// The fragment table: construction (control thread) and the per-fragment bookkeeping (owning worker).
#include "dataplane/fragments.hpp"
#include "dataplane/hash.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <random>
#include <stdexcept>

namespace tagwall::dataplane {
namespace {

constexpr uint32_t kMaxDatagramEnd = 65535;  // no IPv4 or (non-jumbo) IPv6 datagram reaches past this
constexpr uint16_t kFragmentUnit = 8;

uint64_t saturating_add(uint64_t a, uint64_t b) noexcept { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

FragmentVerdict drop(Reason r, uint32_t handle) noexcept { return {false, r, handle, false, 0}; }

// Lengths no fragment may have, whatever else arrived: empty, not 8-aligned (or, but for the last,
// not a multiple of 8 bytes), or ending past the largest datagram.
bool malformed(FragmentSpan span) noexcept {
    const uint32_t end = uint32_t{span.offset} + span.length;
    return span.length == 0 || span.offset % kFragmentUnit != 0 || (span.more && span.length % kFragmentUnit != 0) ||
           end > kMaxDatagramEnd;
}

}  // namespace

FragmentKey FragmentKey::of(const ParsedPacket& p) noexcept {
    FragmentKey k;
    k.src = p.src.bytes;
    k.dst = p.dst.bytes;
    k.id = p.fragment_id;
    k.vlan = p.vlan;
    k.family = p.src.family;
    k.proto = k.family == rules::Family::v4 ? p.proto : 0;
    return k;
}

// ---------------------------------------------------------------------------------------------------
// Control thread.

FragmentTable::FragmentTable(const FragmentConfig& config) : config_(config) {
    if (config.capacity == 0) throw std::invalid_argument("fragment table: capacity must be at least 1");
    if (config.max_fragments == 0) throw std::invalid_argument("fragment table: max_fragments must be at least 1");
    const size_t buckets = std::bit_ceil(std::max<size_t>(2, (size_t{config.capacity} + kBucketSlots - 1) / kBucketSlots));
    bucket_mask_ = buckets - 1;
    seed_ = config.seed != 0 ? config.seed : random_seed();
    tags_.assign(buckets * kBucketSlots, 0);
    entries_.assign(buckets * kBucketSlots, Entry{});
}

size_t FragmentTable::memory_bytes() const noexcept { return entries_.size() * kEntryBytes; }

// ---------------------------------------------------------------------------------------------------
// Owning worker.

std::optional<FragmentVerdict> FragmentTable::check_first(const FragmentKey& key, FragmentSpan span,
                                                         uint64_t now) noexcept {
    const Slots s = slots_for(key);
    if (Entry* e = find(key, s)) {
        if (!expired(*e, now)) return follow(*e, span, now);  // a second first fragment: it overlaps
        release(*e);
    }
    if (malformed(span)) return drop(Reason::fragment_bad_length, 0);
    if (pick_slot(s, now) == SIZE_MAX) return drop(Reason::fragment_table_full, 0);
    return std::nullopt;
}

FragmentVerdict FragmentTable::first_fragment(const FragmentKey& key, FragmentSpan span, FirstDecision decision,
                                              uint64_t now) noexcept {
    const Slots s = slots_for(key);
    if (Entry* e = find(key, s)) {
        if (!expired(*e, now)) return follow(*e, span, now);  // a second first fragment: it overlaps
        release(*e);
    }
    Entry* e = insert(key, s, now);
    if (e == nullptr)
        return drop(decision.allowed ? Reason::fragment_table_full : decision.reason, decision.handle);
    e->handle = decision.handle;
    if (!decision.allowed) {
        e->state = State::denied;
        e->reason = decision.reason;
        return drop(decision.reason, decision.handle);
    }
    e->state = State::allowed;
    if (decision.tcp.present) {
        e->tcp = static_cast<uint8_t>(kEntryTcp | (decision.tcp.fin ? kEntryTcpFin : 0));
        e->tcp_base = decision.tcp.base;
    }
    return follow(*e, span, now);
}

FragmentVerdict FragmentTable::later_fragment(const FragmentKey& key, FragmentSpan span, uint64_t now) noexcept {
    Entry* e = find(key, slots_for(key));
    if (e != nullptr && expired(*e, now)) {
        release(*e);
        e = nullptr;
    }
    if (e == nullptr) return drop(Reason::fragment_no_first, 0);
    return follow(*e, span, now);
}

size_t FragmentTable::expire(uint64_t now, size_t max_slots) noexcept {
    if (live_ == 0) return 0;  // the common case: no fragmented datagram in flight
    size_t freed = 0;
    const size_t budget = std::min(max_slots, entries_.size());
    for (size_t n = 0; n < budget; ++n) {
        const size_t i = expire_cursor_;
        expire_cursor_ = (expire_cursor_ + 1) & (entries_.size() - 1);  // slot count is a power of two
        if (tags_[i] != 0 && expired(entries_[i], now)) {
            release(entries_[i]);
            ++freed;
        }
    }
    return freed;
}

// ---------------------------------------------------------------------------------------------------
// Helpers.

// A fragment of a datagram the table knows: it follows the first fragment's verdict while the
// datagram is alive, and the datagram is forgotten once complete.
FragmentVerdict FragmentTable::follow(Entry& e, FragmentSpan span, uint64_t now) noexcept {
    if (e.state != State::allowed) return drop(e.reason, e.handle);
    e.last_seen = now;
    bool complete = false;
    if (!add_span(e, span, complete)) return drop(e.reason, e.handle);
    FragmentVerdict v{true, Reason::established, e.handle, false, 0};
    if (e.tcp & kEntryTcp) {
        const bool fin = (e.tcp & kEntryTcpFin) != 0 && !span.more;
        v.tcp = true;
        v.tcp_end = e.tcp_base + span.offset + span.length + (fin ? 1u : 0u);
    }
    if (complete) release(e);
    return v;
}

bool FragmentTable::add_span(Entry& e, FragmentSpan span, bool& complete) noexcept {
    const uint32_t begin = span.offset, end = begin + span.length;
    if (malformed(span)) return kill(e, Reason::fragment_bad_length);
    if (e.fragments >= config_.max_fragments) return kill(e, Reason::fragment_too_many);
    ++e.fragments;
    if (e.datagram_end != 0 && (end > e.datagram_end || (!span.more && end != e.datagram_end)))
        return kill(e, Reason::fragment_bad_length);
    if (!span.more) {
        if (e.range_count != 0 && e.ranges[e.range_count - 1].end > end) return kill(e, Reason::fragment_bad_length);
        e.datagram_end = static_cast<uint16_t>(end);
    }
    if (!add_range(e, {static_cast<uint16_t>(begin), static_cast<uint16_t>(end)})) return false;
    complete = e.datagram_end != 0 && e.range_count == 1 && e.ranges[0].begin == 0 &&
               e.ranges[0].end == e.datagram_end;
    return true;
}

// Inserts [r.begin, r.end) into the sorted, disjoint, non-touching ranges, merging the ones it touches.
bool FragmentTable::add_range(Entry& e, Range r) noexcept {
    auto& ranges = e.ranges;
    const size_t n = e.range_count;
    size_t i = 0;
    while (i < n && ranges[i].end < r.begin) ++i;  // wholly before r, not touching
    size_t j = i;
    while (j < n && ranges[j].begin <= r.end) ++j;  // [i, j): touch or overlap r
    for (size_t k = i; k < j; ++k)
        if (ranges[k].begin < r.end && r.begin < ranges[k].end) return kill(e, Reason::fragment_overlap);
    const size_t count = n - (j - i) + 1;
    if (count > kMaxRanges) return kill(e, Reason::fragment_too_many);
    if (j > i) {
        r.begin = std::min(r.begin, ranges[i].begin);
        r.end = std::max(r.end, ranges[j - 1].end);
    }
    // Move the ranges after the merged ones so that exactly one slot sits at i.
    const auto src = ranges.begin() + static_cast<ptrdiff_t>(j);
    const auto dst = ranges.begin() + static_cast<ptrdiff_t>(i + 1);
    const auto end = ranges.begin() + static_cast<ptrdiff_t>(n);
    if (dst > src) std::move_backward(src, end, ranges.begin() + static_cast<ptrdiff_t>(count));
    else if (dst < src) std::move(src, end, dst);
    ranges[i] = r;
    e.range_count = static_cast<uint8_t>(count);
    return true;
}

bool FragmentTable::kill(Entry& e, Reason r) noexcept {
    e.state = State::dead;
    e.reason = r;
    return false;
}

FragmentTable::Slots FragmentTable::slots_for(const FragmentKey& key) const noexcept {
    std::array<uint64_t, sizeof(FragmentKey) / sizeof(uint64_t)> words;
    std::memcpy(words.data(), &key, sizeof key);
    uint64_t h = seed_;
    for (uint64_t w : words) h = mix64(h ^ w);
    const size_t first = h & bucket_mask_;
    size_t second = mix64(h ^ seed_) & bucket_mask_;
    if (second == first) second = first ^ 1;  // at least two buckets
    return {first, second, static_cast<uint32_t>(h >> 32) | 1u};
}

FragmentTable::Entry* FragmentTable::find(const FragmentKey& key, const Slots& s) noexcept {
    for (const size_t bucket : {s.first_bucket, s.second_bucket}) {
        const size_t base = bucket * kBucketSlots;
        for (size_t i = base; i < base + kBucketSlots; ++i)
            if (tags_[i] == s.tag && entries_[i].key == key) return &entries_[i];
    }
    return nullptr;
}

// A slot for a new datagram among the two buckets: a free or expired one, else the oldest denied or
// dead datagram, else the allowed datagram idle longest once idle_evictable has passed; SIZE_MAX when
// every candidate is an allowed datagram still in progress.
size_t FragmentTable::pick_slot(const Slots& s, uint64_t now) const noexcept {
    size_t victim = SIZE_MAX;
    int victim_rank = 3;  // 0 free or expired, 1 denied or dead, 2 idle allowed, 3 not evictable
    uint64_t victim_seen = UINT64_MAX;
    for (const size_t bucket : {s.first_bucket, s.second_bucket}) {
        const size_t base = bucket * kBucketSlots;
        for (size_t i = base; i < base + kBucketSlots && victim_rank > 0; ++i) {
            const Entry& e = entries_[i];
            int rank = 3;
            if (tags_[i] == 0 || expired(e, now)) rank = 0;
            else if (e.state != State::allowed) rank = 1;
            else if (now - std::min(now, e.last_seen) >= config_.idle_evictable) rank = 2;
            if (rank < victim_rank || (rank == victim_rank && rank < 3 && e.last_seen < victim_seen)) {
                victim = i;
                victim_rank = rank;
                victim_seen = e.last_seen;
            }
        }
    }
    return victim;
}

// Takes pick_slot()'s slot (evicting what it holds) for a new datagram; nullptr when there is none.
FragmentTable::Entry* FragmentTable::insert(const FragmentKey& key, const Slots& s, uint64_t now) noexcept {
    const size_t victim = pick_slot(s, now);
    if (victim == SIZE_MAX) return nullptr;
    if (tags_[victim] != 0) release(entries_[victim]);
    Entry& e = entries_[victim];
    e = Entry{};
    e.key = key;
    e.expires = saturating_add(now, config_.timeout);
    e.last_seen = now;
    tags_[victim] = s.tag;
    high_water_ = std::max(high_water_, ++live_);
    return &e;
}

void FragmentTable::release(Entry& e) noexcept {
    const auto i = static_cast<size_t>(&e - entries_.data());
    tags_[i] = 0;
    e.state = State::empty;
    --live_;
}

}  // namespace tagwall::dataplane
