// The connection table (SPEC §5): one per worker, fixed capacity, direction-independent keys.
//
// Concurrency contract: a FlowTable lives in its worker's context and is written only by that worker.
// The constructor runs on the control thread before the worker starts and allocates everything the
// table will ever use; nothing allocates afterwards.  Every other function is run side: noexcept, no
// allocation, no locks, no logging.  The `const` functions (find, entry, for_each, id, resolve, size)
// may also be called from another thread while the owning worker is stopped (tests, shutdown dumps);
// anything else reaches a live table through the worker's rings (STYLE convention 3).
//
// This file knows entries, keys, time and memory.  What a packet does to an entry (TCP windows, the
// UDP/ICMP pseudo-states, `related`) is the business of conntrack.hpp and conntrack_tcp.hpp; the only
// protocol facts the table uses are an entry's state (for its timeout) and its `assured` flag (for
// eviction).
//
// Decisions (each one a choice a reviewer should be able to find here):
//   - Key: (segment VLAN, family, protocol, two addresses, two ports) in canonical order: the (address,
//     port) pair that compares lower is side a.  Both directions of a connection build the same key,
//     and DirectedKey::src_is_b tells which way a packet goes; an entry records which side opened it,
//     so `reply` = (packet's side) != (opener's side).  ICMP echo is the exception: its key is
//     (requester, responder, id, id) in that order, which is already direction-independent and keeps
//     "A pings B" and "B pings A" with the same id apart (no echo-id-0 confusion, CVE-2024-6640).
//     When both ends are identical (a LAND packet) every packet looks like the original direction.
//   - Layout: entries are 128 bytes (two cache lines, static_assert below) in one pool indexed by a
//     FlowHandle that stays valid while the entry lives; they hold what a packet of the connection
//     reads or writes, and nothing else (the rule and identities that allowed it are kept apart, in a
//     FlowAttribution per entry).  The index is two-choice hashed: each key has
//     two 64-byte buckets of 8 slots, a slot being a 32-bit signature and an entry index.  A lookup
//     reads at most two bucket lines and compares full keys only on a signature match.  An insert goes
//     to the key's first bucket while that has 3 free slots or more (so that a lookup mostly reads, and
//     the burst prefetches, one bucket line), else to the emptier of the two.  Buckets are provisioned
//     at >= 1.25 slots per entry, so a bucket pair is full only when the pool nearly is.  The hash is
//     keyed by a per-table random seed, so a sender cannot cheaply aim many keys at one bucket pair.
//   - Time is injected: `now` is the worker's monotonic clock in nanoseconds, read once per burst.
//     An entry whose state's timeout has passed is dead: lookups treat it as absent (and free it),
//     eviction takes it first, and expire() frees it in bounded batches.
//   - Eviction.  When the pool or both buckets are full, a new connection may take the place of an
//     entry that is expired or not `assured` (TCP never reached ESTABLISHED; UDP/ICMP/other never saw
//     a reply), the oldest first among what is cheap to see: the new key's two buckets and, when the
//     pool is empty, the next kEvictionScan entries of a rotating cursor.  An assured connection is
//     never evicted; when no candidate qualifies the new connection is refused (`flow_table_full`).
//     A SYN flood therefore recycles half-open entries among themselves and cannot push out a
//     connection that completed its handshake.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>
#include <type_traits>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "dataplane/hash.hpp"
#include "dataplane/huge_array.hpp"
#include "rules/address.hpp"

namespace tagwall::dataplane {

// --- keys ---

struct FlowKey {
    std::array<uint8_t, 16> addr_a{}, addr_b{};  // network byte order; IPv4 in the first four bytes
    uint16_t port_a = 0, port_b = 0;             // TCP/UDP/SCTP ports (0 when the protocol has none);
                                                 // ICMP echo: the identifier in both
    uint16_t vlan = 0;                           // the segment
    uint8_t proto = 0;
    rules::Family family = rules::Family::v4;

    friend bool operator==(const FlowKey&, const FlowKey&) = default;
};
static_assert(sizeof(FlowKey) == 40 && std::has_unique_object_representations_v<FlowKey>,
              "hash key without padding: it is hashed as five 64-bit words");

// A key as the five 64-bit words it is hashed and compared as (loads the compiler keeps in registers).
inline uint64_t key_word(const FlowKey& k, size_t i) noexcept {
    uint64_t w;
    std::memcpy(&w, reinterpret_cast<const char*>(&k) + i * sizeof w, sizeof w);
    return w;
}
inline constexpr size_t kFlowKeyWords = sizeof(FlowKey) / sizeof(uint64_t);

// Key equality as five word compares, without a call to memcmp.
inline bool same_key(const FlowKey& x, const FlowKey& y) noexcept {
    uint64_t diff = 0;
    for (size_t i = 0; i < kFlowKeyWords; ++i) diff |= key_word(x, i) ^ key_word(y, i);
    return diff == 0;
}

// make_flow_key() for an IPv4 pair whose addresses are given as their four bytes in network order,
// loaded as native 32-bit words: the same key (and `src_is_b`), as the five words it is hashed and
// compared as.  The caller writes them with five aligned 8-byte stores and hashes the words it holds
// (FlowTable::slots_for_words): a key built field by field and read back as words at once stalls on
// store forwarding, a cost the established fast path paid on every packet.  Little-endian hosts.
inline std::array<uint64_t, kFlowKeyWords> ipv4_key_words(uint16_t vlan, uint32_t src4, uint32_t dst4, uint8_t proto,
                                                          uint16_t sport, uint16_t dport, bool& src_is_b) noexcept {
    static_assert(std::endian::native == std::endian::little);
    static_assert(offsetof(FlowKey, addr_b) == 16 && offsetof(FlowKey, port_a) == 32 &&
                  offsetof(FlowKey, port_b) == 34 && offsetof(FlowKey, vlan) == 36 && offsetof(FlowKey, proto) == 38 &&
                  offsetof(FlowKey, family) == 39);
    // make_flow_key's order: the addresses' first words (an IPv4 address zero-extended; the second
    // words are both zero), then the ports.
    src_is_b = src4 != dst4 ? src4 > dst4 : sport > dport;
    const uint32_t a = src_is_b ? dst4 : src4, b = src_is_b ? src4 : dst4;
    const uint16_t port_a = src_is_b ? dport : sport, port_b = src_is_b ? sport : dport;
    const uint64_t tail = uint64_t{port_a} | uint64_t{port_b} << 16 | uint64_t{vlan} << 32 | uint64_t{proto} << 48 |
                          uint64_t{static_cast<uint8_t>(rules::Family::v4)} << 56;
    return {a, 0, b, 0, tail};
}

// A key and the direction of the packet that built it.
struct DirectedKey {
    FlowKey key;
    bool src_is_b = false;  // the packet travels from side b to side a
};

// The key of a packet from (src, sport) to (dst, dport).  Inline: every packet builds one.
inline DirectedKey make_flow_key(uint16_t vlan, const rules::IpAddr& src, const rules::IpAddr& dst, uint8_t proto,
                                 uint16_t sport, uint16_t dport) noexcept {
    // Whether end (src, sport) sorts after end (dst, dport).  Any total order makes keys direction-
    // independent; this one compares the addresses as two native 64-bit words, then the ports.
    uint64_t ws[2], wd[2];
    std::memcpy(ws, src.bytes.data(), sizeof ws);
    std::memcpy(wd, dst.bytes.data(), sizeof wd);
    const bool src_is_b = ws[0] != wd[0] ? ws[0] > wd[0] : ws[1] != wd[1] ? ws[1] > wd[1] : sport > dport;
    DirectedKey k;
    k.key.vlan = vlan;
    k.key.proto = proto;
    k.key.family = src.family;
    k.src_is_b = src_is_b;
    k.key.addr_a = src_is_b ? dst.bytes : src.bytes;
    k.key.addr_b = src_is_b ? src.bytes : dst.bytes;
    k.key.port_a = src_is_b ? dport : sport;
    k.key.port_b = src_is_b ? sport : dport;
    return k;
}
// The key of an ICMP/ICMPv6 echo exchange; `request` says whether src is the requester.
DirectedKey make_echo_key(uint16_t vlan, const rules::IpAddr& src, const rules::IpAddr& dst, uint8_t proto,
                          uint16_t id, bool request) noexcept;

// --- entries ---

// One state per protocol phase; the state alone selects an entry's timeout.
enum class FlowState : uint8_t {
    free = 0,  // not in use
    tcp_syn_sent,
    tcp_syn_recv,
    tcp_established,
    tcp_fin_wait,    // one side sent FIN, not yet acknowledged
    tcp_close_wait,  // one side's FIN acknowledged, the other still open
    tcp_last_ack,    // both sides sent FIN, not both acknowledged
    tcp_time_wait,   // both FINs acknowledged
    tcp_close,       // reset
    udp_unreplied,
    udp_replied,
    icmp_unreplied,  // ICMP/ICMPv6 echo
    icmp_replied,
    other_unreplied,  // any other protocol (SCTP included: tracked by ports, without its own state machine)
    other_replied,
};
inline constexpr size_t kFlowStateCount = static_cast<size_t>(FlowState::other_replied) + 1;
std::string_view to_string(FlowState s) noexcept;

// FlowEntry::flags.  The table itself reads only kFlowAssured.
inline constexpr uint8_t kFlowInitiatorIsB = 0x01;  // the side that opened the connection is key side b
inline constexpr uint8_t kFlowSeenReply = 0x02;     // a packet went the reply way
inline constexpr uint8_t kFlowAssured = 0x04;       // handshake completed / replied: never evicted
// Bits 0x08-0x40 belong to the protocol tracker (TCP: FIN sent and FIN acknowledged, per direction).

using FlowHandle = uint32_t;
inline constexpr FlowHandle kNoFlow = UINT32_MAX;

// Index 0 of the per-direction arrays is the original direction (the initiator's packets), 1 the reply.
struct alignas(64) FlowEntry {
    // --- line 0: what a lookup compares, and the counters every packet bumps ---
    FlowKey key;
    uint64_t last_seen = 0;                      // `now` of the last packet passed
    std::array<uint64_t, 2> packets{};
    // --- line 1: what an established packet reads and writes besides line 0 ---
    std::array<uint64_t, 2> bytes{};             // IP bytes (header included)
    uint32_t generation = 0;                     // the policy generation it was allowed (or re-verified) under
    // SpoofGuard's answer remembered (the established fast path, pipeline.hpp): the source MAC with
    // which this direction's source address was found bound (IdentityTable::bound_source) under
    // `generation`'s identity table; all zero: none yet.  Cleared whenever `generation` changes.
    std::array<std::array<uint8_t, 6>, 2> source_mac{};
    // TCP tracking per direction, in the manner of pf / nf_conntrack (conntrack_tcp.hpp says how):
    std::array<uint32_t, 2> tcp_end{};           // highest sequence number sent + 1 (td_end)
    std::array<uint32_t, 2> tcp_maxend{};        // highest sequence number the peer let it send (td_maxend)
    std::array<uint32_t, 2> tcp_maxack{};        // highest acknowledgement it sent
    std::array<uint16_t, 2> tcp_maxwin{};        // largest window it advertised, in its own scale units
    std::array<uint8_t, 2> tcp_wscale{};         // its window scale (the SYN's option until the SYN-ACK)
    FlowState state = FlowState::free;
    uint8_t flags = 0;                           // kFlow* bits

    bool initiator_is_b() const noexcept { return (flags & kFlowInitiatorIsB) != 0; }
};
static_assert(sizeof(FlowEntry) == 128 && alignof(FlowEntry) == 64, "an entry is exactly two cache lines");
static_assert(offsetof(FlowEntry, packets) + sizeof(FlowEntry::packets) == 64,
              "key, timestamp and packet counters share the first line");
static_assert(offsetof(FlowEntry, flags) == 127, "no padding anywhere in an entry");

// What the policy said of a connection, kept beside its entry (FlowTable::attribution) rather than in
// it: no packet of an established connection reads it, so it does not take room in the entry's two
// lines.  Written when the connection opens and when it is re-verified.
struct FlowAttribution {
    int32_t rule_index = -1;             // the policy rule that allowed the connection
    std::array<uint32_t, 2> identity{};  // identity classes of the initiator and the responder
    uint32_t reserved = 0;
};
static_assert(sizeof(FlowAttribution) == 16);

// A flow's name outside its worker (events, `tagwallctl flows`, requests sent to the worker through its
// ring), in the manner of VPP's session ids: the owning worker, the slot, and the policy epoch (the
// low 16 bits of the generation the flow was allowed or last re-verified under).  resolve() refuses
// an id whose slot is free or whose epoch no longer matches; a requester that holds an id across a
// long time and must be certain compares the key too.
struct FlowId {
    uint32_t index = kNoFlow;
    uint16_t worker = 0;
    uint16_t epoch = 0;

    uint64_t packed() const noexcept {
        return (uint64_t{worker} << 48) | (uint64_t{epoch} << 32) | index;
    }
    static FlowId unpack(uint64_t v) noexcept {
        return {static_cast<uint32_t>(v), static_cast<uint16_t>(v >> 48), static_cast<uint16_t>(v >> 32)};
    }
    friend bool operator==(const FlowId&, const FlowId&) = default;
};

// --- configuration ---

// Timeouts per state, in units of `now` (nanoseconds).  Defaults follow nf_conntrack.
struct FlowTimeouts {
    static constexpr uint64_t kSecond = 1'000'000'000;
    uint64_t tcp_syn_sent = 120 * kSecond;
    uint64_t tcp_syn_recv = 60 * kSecond;
    uint64_t tcp_established = 5 * 86400 * kSecond;
    uint64_t tcp_fin_wait = 120 * kSecond;
    uint64_t tcp_close_wait = 60 * kSecond;
    uint64_t tcp_last_ack = 60 * kSecond;
    uint64_t tcp_time_wait = 120 * kSecond;
    uint64_t tcp_close = 10 * kSecond;
    uint64_t udp_unreplied = 30 * kSecond;
    uint64_t udp_replied = 120 * kSecond;
    uint64_t icmp = 30 * kSecond;
    uint64_t other = 60 * kSecond;

    uint64_t of(FlowState s) const noexcept;
};

struct FlowTableConfig {
    uint32_t capacity = 65536;  // connections held at once; memory is allocated for exactly this many
    uint16_t worker = 0;        // the owning worker's index (carried in FlowIds)
    uint64_t seed = 0;          // hash seed; 0 draws one from std::random_device
    FlowTimeouts timeouts{};
};

struct FlowTableStats {
    uint64_t inserted = 0;
    uint64_t evicted = 0;   // not-assured entries that made room for a new connection
    uint64_t refused = 0;   // new connections refused: nothing could be evicted
    uint64_t expired = 0;   // entries freed because their timeout passed
    uint64_t erased = 0;    // entries removed by erase() (RST reuse, revocation, flush)
};

enum class InsertStatus : uint8_t { inserted, existed, full };
struct InsertResult {
    FlowHandle handle = kNoFlow;
    InsertStatus status = InsertStatus::full;
};

class FlowTable {
public:
    static constexpr size_t kBucketSlots = 8;
    static constexpr size_t kFirstBucketFill = 5;         // slots of its first bucket a key may fill (emptier_bucket)
    static constexpr size_t kEvictionScan = 16;           // pool entries looked at per eviction, beyond the buckets
    static constexpr uint32_t kMaxCapacity = 1u << 28;

    // --- control thread, before the worker runs: allocates everything (throws std::invalid_argument on
    //     a zero or oversized capacity, std::bad_alloc) ---
    explicit FlowTable(const FlowTableConfig& config = {});
    FlowTable(const FlowTable&) = delete;
    FlowTable& operator=(const FlowTable&) = delete;

    // Where a key lives: its two buckets and its signature, from the table's keyed hash.  A pure function
    // of the key (and the table's fixed seed and size): a caller that looks one key up several times
    // (prefetch, lookup, insert) computes it once and hands it to the overloads below.
    struct Slots {
        size_t first, second;  // bucket indices (distinct)
        uint32_t sig;          // nonzero
    };
    Slots slots_for(const FlowKey& key) const noexcept;
    // The same from the key's five words (key_word(key, 0..4)), for a caller that holds them.
    Slots slots_for_words(const std::array<uint64_t, kFlowKeyWords>& words) const noexcept;

    // --- the owning worker only: noexcept, no allocation ---
    // The live entry for `key`, or kNoFlow.  An expired match is freed and reported absent.
    FlowHandle lookup(const FlowKey& key, uint64_t now) noexcept { return lookup(key, slots_for(key), now); }
    FlowHandle lookup(const FlowKey& key, const Slots& s, uint64_t now) noexcept;
    // The live entry for `key`, or a new one (zeroed, keyed, in state `initial`, last_seen = now) that
    // the caller fills in at once; `full` when no room could be made (see eviction above).
    InsertResult lookup_or_insert(const FlowKey& key, FlowState initial, uint64_t now) noexcept {
        return lookup_or_insert(key, slots_for(key), initial, now);
    }
    // `s` must be slots_for(key).
    InsertResult lookup_or_insert(const FlowKey& key, const Slots& s, FlowState initial, uint64_t now) noexcept;
    // The same for a key the caller knows has no entry (lookup() just returned kNoFlow for it and the
    // table has not changed since): the insert without the search.  Never `existed`.
    InsertResult insert_new(const FlowKey& key, const Slots& s, FlowState initial, uint64_t now) noexcept;
    void erase(FlowHandle h) noexcept;
    // Ages at most `max_slots` pool slots, resuming where the previous call stopped, and frees the
    // expired entries among them; returns how many it freed.  Call once per poll iteration.
    size_t expire(uint64_t now, size_t max_slots) noexcept;
    FlowEntry& entry(FlowHandle h) noexcept { return entries_[h]; }
    FlowAttribution& attribution(FlowHandle h) noexcept { return attributions_[h]; }

    // Burst prefetching (the worker looks a burst's keys up in two passes before deciding any packet,
    // so that each packet's cache misses overlap the others'): the key's first bucket, then the entry
    // whose signature matches in it, or else the second bucket.  Hints only: nothing is read that a
    // lookup would not read.
    void prefetch_buckets(const FlowKey& key) const noexcept { prefetch_buckets(slots_for(key)); }
    bool prefetch_entry(const FlowKey& key) const noexcept { return prefetch_entry(slots_for(key)); }
    void prefetch_buckets(const Slots& s) const noexcept { __builtin_prefetch(&buckets_[s.first]); }
    // Returns false when the first bucket holds no entry with the key's signature: the key is probably
    // new (or in its second bucket, which is prefetched instead).
    bool prefetch_entry(const Slots& s) const noexcept;
    // The entries the next `n` inserts will take (the top of the free stack), for writing: a burst
    // that is about to open n connections overlaps their first writes too.
    // (GCC may judge a function whose only effects are prefetches free of side effects and delete the
    // call: with LTO it did to this one.  The empty volatile asm keeps the hints.)
    void prefetch_free(size_t n) const noexcept {
        for (size_t j = 0; j < n && j < free_top_; ++j) {
            const FlowHandle h = free_[free_top_ - 1 - j];
            const auto* e = reinterpret_cast<const char*>(&entries_[h]);
            __builtin_prefetch(e, 1);
            __builtin_prefetch(e + 64, 1);
            __builtin_prefetch(&attributions_[h], 1);
            asm volatile("" : : "r"(e));
        }
    }

    // --- const: the owning worker, or any thread while the worker is stopped ---
    // lookup() without its side effect: an expired match is reported absent and left in place.
    FlowHandle find(const FlowKey& key, uint64_t now) const noexcept { return find(key, slots_for(key), now); }
    FlowHandle find(const FlowKey& key, const Slots& s, uint64_t now) const noexcept;
    const FlowEntry& entry(FlowHandle h) const noexcept { return entries_[h]; }
    const FlowAttribution& attribution(FlowHandle h) const noexcept { return attributions_[h]; }
    bool live(FlowHandle h) const noexcept { return h < capacity_ && entries_[h].state != FlowState::free; }
    bool expired(const FlowEntry& e, uint64_t now) const noexcept {
        return now > e.last_seen && now - e.last_seen >= timeout_[static_cast<size_t>(e.state)];
    }
    // Calls f(FlowHandle, const FlowEntry&) for every entry in use (expired ones included: aging is
    // lazy), in slot order.
    template <class F>
    void for_each(F&& f) const {
        for (FlowHandle h = 0; h < capacity_; ++h)
            if (entries_[h].state != FlowState::free) f(h, entries_[h]);
    }
    FlowId id(FlowHandle h) const noexcept {
        return {h, worker_, static_cast<uint16_t>(entries_[h].generation)};
    }
    FlowHandle resolve(FlowId id) const noexcept;

    size_t size() const noexcept { return live_; }
    size_t capacity() const noexcept { return capacity_; }
    size_t bucket_count() const noexcept { return bucket_mask_ + 1; }
    size_t memory_bytes() const noexcept;
    const FlowTableStats& stats() const noexcept { return stats_; }
    const FlowTimeouts& timeouts() const noexcept { return timeouts_; }
    uint16_t worker() const noexcept { return worker_; }

private:
    struct alignas(64) Bucket {
        std::array<uint32_t, kBucketSlots> sig;    // 0 = empty slot
        std::array<uint32_t, kBucketSlots> entry;  // index into entries_
    };
    static_assert(sizeof(Bucket) == 64, "a bucket is one cache line");

    static unsigned sig_matches(const Bucket& b, uint32_t sig) noexcept;
    FlowHandle search(const FlowKey& key, const Slots& s) const noexcept;
    Bucket* emptier_bucket(const Slots& s) noexcept;
    FlowHandle pick_victim(const Slots& s, bool scan_pool, uint64_t now) noexcept;
    void release(FlowHandle h) noexcept;  // unlinks and frees a live entry

    size_t capacity_;
    uint16_t worker_;
    uint64_t seed_;
    FlowTimeouts timeouts_;
    std::array<uint64_t, kFlowStateCount> timeout_{};
    size_t bucket_mask_ = 0;
    unsigned bucket_bits_ = 0;
    // Everything below is sized at construction and never grows.
    HugeArray<Bucket> buckets_;
    HugeArray<FlowEntry> entries_;
    HugeArray<FlowAttribution> attributions_;  // per entry, reset when it is inserted
    std::unique_ptr<FlowHandle[]> free_;  // stack of free entry indices
    size_t free_top_ = 0;
    size_t live_ = 0;
    size_t aging_cursor_ = 0;
    size_t eviction_cursor_ = 0;
    FlowTableStats stats_;
};

// --- the lookup path, inline: every packet takes it ---

inline FlowTable::Slots FlowTable::slots_for(const FlowKey& key) const noexcept {
    std::array<uint64_t, kFlowKeyWords> w;
    for (size_t i = 0; i < kFlowKeyWords; ++i) w[i] = key_word(key, i);
    return slots_for_words(w);
}

inline FlowTable::Slots FlowTable::slots_for_words(const std::array<uint64_t, kFlowKeyWords>& w) const noexcept {
    // Keyed multiply-xor over the five words, then murmur3's finalizer to spread the high bits down.
    uint64_t h = seed_;
    for (size_t i = 0; i < kFlowKeyWords; ++i) h = (h ^ w[i]) * kGoldenRatio64;
    h = mix64(h);
    Slots s;
    s.sig = static_cast<uint32_t>(h >> 32);
    if (s.sig == 0) s.sig = 1;
    s.first = static_cast<size_t>(h) & bucket_mask_;
    // The second choice comes from the signature's bits, through a multiplication so that it does not
    // repeat the first's.
    s.second = static_cast<size_t>((uint64_t{s.sig} * kGoldenRatio64) >> (64 - bucket_bits_));
    if (s.second == s.first) s.second = s.first ^ 1;
    return s;
}

// Which of a bucket's eight slots hold signature `sig`: bit i for slot i.  SSE2 compares the eight
// 32-bit signatures in two instructions (every x86-64 has it); elsewhere a plain loop.
inline unsigned FlowTable::sig_matches(const Bucket& b, uint32_t sig) noexcept {
#if defined(__SSE2__)
    const __m128i want = _mm_set1_epi32(static_cast<int>(sig));
    const __m128i lo = _mm_cmpeq_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(b.sig.data())), want);
    const __m128i hi = _mm_cmpeq_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(b.sig.data() + 4)), want);
    return static_cast<unsigned>(_mm_movemask_ps(_mm_castsi128_ps(lo))) |
           (static_cast<unsigned>(_mm_movemask_ps(_mm_castsi128_ps(hi))) << 4);
#else
    unsigned m = 0;
    for (size_t i = 0; i < kBucketSlots; ++i) m |= static_cast<unsigned>(b.sig[i] == sig) << i;
    return m;
#endif
}

inline FlowHandle FlowTable::search(const FlowKey& key, const Slots& s) const noexcept {
    for (const size_t b : {s.first, s.second}) {
        const Bucket& bucket = buckets_[b];
        for (unsigned m = sig_matches(bucket, s.sig); m != 0; m &= m - 1) {
            const uint32_t e = bucket.entry[std::countr_zero(m)];
            if (same_key(entries_[e].key, key)) return e;
        }
    }
    return kNoFlow;
}

inline FlowHandle FlowTable::find(const FlowKey& key, const Slots& s, uint64_t now) const noexcept {
    const FlowHandle h = search(key, s);
    return h != kNoFlow && !expired(entries_[h], now) ? h : kNoFlow;
}

inline FlowHandle FlowTable::lookup(const FlowKey& key, const Slots& s, uint64_t now) noexcept {
    const FlowHandle h = search(key, s);
    if (h == kNoFlow) return kNoFlow;
    if (expired(entries_[h], now)) [[unlikely]] {
        release(h);
        ++stats_.expired;
        return kNoFlow;
    }
    return h;
}

}  // namespace tagwall::dataplane
