// The connection table: construction (control thread), then lookup, insertion, eviction and aging
// (owning worker, noexcept, no allocation).
#include "dataplane/flow_table.hpp"
#include "dataplane/hash.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <random>
#include <stdexcept>

namespace tagwall::dataplane {

// --- keys ---

DirectedKey make_echo_key(uint16_t vlan, const rules::IpAddr& src, const rules::IpAddr& dst, uint8_t proto,
                          uint16_t id, bool request) noexcept {
    DirectedKey k;
    k.key.vlan = vlan;
    k.key.proto = proto;
    k.key.family = src.family;
    k.key.addr_a = request ? src.bytes : dst.bytes;  // side a is the requester
    k.key.addr_b = request ? dst.bytes : src.bytes;
    k.key.port_a = k.key.port_b = id;
    k.src_is_b = !request;
    return k;
}

std::string_view to_string(FlowState s) noexcept {
    static constexpr std::array<std::string_view, kFlowStateCount> kNames{
        "free",          "syn_sent",       "syn_recv",     "established",    "fin_wait",
        "close_wait",    "last_ack",       "time_wait",    "close",          "udp_unreplied",
        "udp_replied",   "icmp_unreplied", "icmp_replied", "other_unreplied", "other_replied"};
    const auto i = static_cast<size_t>(s);
    return i < kNames.size() ? kNames[i] : "?";
}

uint64_t FlowTimeouts::of(FlowState s) const noexcept {
    switch (s) {
    case FlowState::free: return 0;
    case FlowState::tcp_syn_sent: return tcp_syn_sent;
    case FlowState::tcp_syn_recv: return tcp_syn_recv;
    case FlowState::tcp_established: return tcp_established;
    case FlowState::tcp_fin_wait: return tcp_fin_wait;
    case FlowState::tcp_close_wait: return tcp_close_wait;
    case FlowState::tcp_last_ack: return tcp_last_ack;
    case FlowState::tcp_time_wait: return tcp_time_wait;
    case FlowState::tcp_close: return tcp_close;
    case FlowState::udp_unreplied: return udp_unreplied;
    case FlowState::udp_replied: return udp_replied;
    case FlowState::icmp_unreplied:
    case FlowState::icmp_replied: return icmp;
    case FlowState::other_unreplied:
    case FlowState::other_replied: return other;
    }
    return 0;
}

// --- construction ---

FlowTable::FlowTable(const FlowTableConfig& config)
    : capacity_(config.capacity),
      worker_(config.worker),
      seed_(config.seed != 0 ? config.seed : random_seed()),
      timeouts_(config.timeouts) {
    if (config.capacity == 0 || config.capacity > kMaxCapacity)
        throw std::invalid_argument("flow table capacity must be between 1 and 2^28");
    for (size_t s = 0; s < kFlowStateCount; ++s) timeout_[s] = timeouts_.of(static_cast<FlowState>(s));
    // >= 1.25 bucket slots per entry, a power of two, at least two buckets (two distinct choices).
    const size_t wanted = std::max<size_t>(2, (capacity_ * 5 / 4 + kBucketSlots - 1) / kBucketSlots);
    const size_t buckets = std::bit_ceil(wanted);
    bucket_mask_ = buckets - 1;
    bucket_bits_ = static_cast<unsigned>(std::countr_zero(buckets));
    buckets_ = make_huge_array<Bucket>(buckets);  // value-initialised: every slot empty
    entries_ = make_huge_array<FlowEntry>(capacity_);
    attributions_ = make_huge_array<FlowAttribution>(capacity_);
    free_ = std::make_unique<FlowHandle[]>(capacity_);
    // Lowest indices on top, so a fresh table fills its pool in order.
    for (size_t i = 0; i < capacity_; ++i) free_[i] = static_cast<FlowHandle>(capacity_ - 1 - i);
    free_top_ = capacity_;
}

size_t FlowTable::memory_bytes() const noexcept {
    return (bucket_mask_ + 1) * sizeof(Bucket) +
           capacity_ * (sizeof(FlowEntry) + sizeof(FlowAttribution) + sizeof(FlowHandle));
}

// --- lookups ---

bool FlowTable::prefetch_entry(const Slots& s) const noexcept {
    // Most keys live in their first bucket (emptier_bucket): its entry, else the second bucket, whose
    // entry the lookup then finds without help.
    const Bucket& first = buckets_[s.first];
    if (const unsigned m = sig_matches(first, s.sig); m != 0) {
        const auto* e = reinterpret_cast<const char*>(&entries_[first.entry[std::countr_zero(m)]]);
        __builtin_prefetch(e);
        __builtin_prefetch(e + 64);
        return true;
    }
    __builtin_prefetch(&buckets_[s.second]);
    return false;
}

FlowHandle FlowTable::resolve(FlowId id) const noexcept {
    if (id.worker != worker_ || !live(id.index)) return kNoFlow;
    return static_cast<uint16_t>(entries_[id.index].generation) == id.epoch ? id.index : kNoFlow;
}

// --- insertion and eviction ---

InsertResult FlowTable::lookup_or_insert(const FlowKey& key, const Slots& s, FlowState initial,
                                         uint64_t now) noexcept {
    if (const FlowHandle h = search(key, s); h != kNoFlow) {
        if (!expired(entries_[h], now)) return {h, InsertStatus::existed};
        release(h);
        ++stats_.expired;
    }
    return insert_new(key, s, initial, now);
}

InsertResult FlowTable::insert_new(const FlowKey& key, const Slots& s, FlowState initial, uint64_t now) noexcept {
    Bucket* bucket = emptier_bucket(s);
    if (bucket == nullptr || free_top_ == 0) {
        // Room must be made.  With both buckets full the victim must come from them; with only the
        // pool exhausted any evictable entry will do, so a few more pool entries are looked at too.
        const FlowHandle victim = pick_victim(s, bucket != nullptr, now);
        if (victim == kNoFlow) {
            ++stats_.refused;
            return {kNoFlow, InsertStatus::full};
        }
        ++(expired(entries_[victim], now) ? stats_.expired : stats_.evicted);
        release(victim);
        bucket = emptier_bucket(s);
    }
    const FlowHandle h = free_[--free_top_];
    const auto slot = static_cast<size_t>(std::countr_zero(sig_matches(*bucket, 0)));  // emptier_bucket(): one is free
    bucket->sig[slot] = s.sig;
    bucket->entry[slot] = h;

    FlowEntry& e = entries_[h];
    e = FlowEntry{};
    attributions_[h] = FlowAttribution{};
    e.key = key;
    e.last_seen = now;
    e.state = initial;
    ++live_;
    ++stats_.inserted;
    return {h, InsertStatus::inserted};
}

// Among the new key's buckets (and, when scan_pool, the next kEvictionScan pool entries): an expired
// entry if there is one, else the least recently seen entry that is not assured.
FlowHandle FlowTable::pick_victim(const Slots& s, bool scan_pool, uint64_t now) noexcept {
    FlowHandle best = kNoFlow;
    uint64_t best_seen = UINT64_MAX;
    auto consider = [&](FlowHandle h) noexcept {
        const FlowEntry& e = entries_[h];
        if (e.state == FlowState::free) return false;
        if (expired(e, now)) {
            best = h;
            return true;  // cannot do better
        }
        if ((e.flags & kFlowAssured) == 0 && e.last_seen < best_seen) {
            best = h;
            best_seen = e.last_seen;
        }
        return false;
    };
    for (const size_t b : {s.first, s.second}) {
        const Bucket& bucket = buckets_[b];
        for (size_t i = 0; i < kBucketSlots; ++i)
            if (bucket.sig[i] != 0 && consider(bucket.entry[i])) return best;
    }
    if (scan_pool) {
        for (size_t n = 0; n < kEvictionScan && n < capacity_; ++n) {
            const auto h = static_cast<FlowHandle>(eviction_cursor_);
            eviction_cursor_ = eviction_cursor_ + 1 == capacity_ ? 0 : eviction_cursor_ + 1;
            if (consider(h)) return best;
        }
    }
    return best;
}

void FlowTable::erase(FlowHandle h) noexcept {
    if (!live(h)) return;
    release(h);
    ++stats_.erased;
}

void FlowTable::release(FlowHandle h) noexcept {
    FlowEntry& e = entries_[h];
    const Slots s = slots_for(e.key);
    auto unlink = [&](Bucket& bucket) noexcept {
        for (size_t i = 0; i < kBucketSlots; ++i) {
            if (bucket.sig[i] == s.sig && bucket.entry[i] == h) {
                bucket.sig[i] = 0;
                return true;
            }
        }
        return false;
    };
    if (!unlink(buckets_[s.first])) unlink(buckets_[s.second]);
    e.state = FlowState::free;
    free_[free_top_++] = h;
    --live_;
}

// --- aging ---

size_t FlowTable::expire(uint64_t now, size_t max_slots) noexcept {
    if (live_ == 0) return 0;
    size_t freed = 0;
    const size_t budget = std::min(max_slots, capacity_);
    for (size_t n = 0; n < budget; ++n) {
        const auto h = static_cast<FlowHandle>(aging_cursor_);
        aging_cursor_ = aging_cursor_ + 1 == capacity_ ? 0 : aging_cursor_ + 1;
        const FlowEntry& e = entries_[h];
        if (e.state != FlowState::free && expired(e, now)) {
            release(h);
            ++freed;
        }
    }
    stats_.expired += freed;
    return freed;
}

namespace {

// Set bits of an 8-bit slot mask, in a few register operations: std::popcount on the baseline x86-64
// target (no POPCNT) is a call into libgcc, and every insert counts two buckets.
constexpr size_t slots_in(unsigned m) noexcept {
    m = m - ((m >> 1) & 0x55u);
    m = (m & 0x33u) + ((m >> 2) & 0x33u);
    return (m + (m >> 4)) & 0x0Fu;
}
static_assert(slots_in(0) == 0 && slots_in(0xFF) == 8 && slots_in(0xA5) == 4 && slots_in(0x80) == 1);

}  // namespace

// Where a new key goes: its first bucket while that is at most 5/8 full, so that a lookup mostly reads
// one bucket line (the burst prefetches only the first); past that, the emptier of the two (the
// two-choice balance that keeps a bucket pair from filling before the pool does).
FlowTable::Bucket* FlowTable::emptier_bucket(const Slots& s) noexcept {
    Bucket& first = buckets_[s.first];
    const size_t f = slots_in(sig_matches(first, 0));
    if (f >= kBucketSlots - kFirstBucketFill) return &first;
    Bucket& second = buckets_[s.second];
    const size_t g = slots_in(sig_matches(second, 0));
    if (f == 0 && g == 0) return nullptr;
    return f >= g ? &first : &second;
}

}  // namespace tagwall::dataplane
