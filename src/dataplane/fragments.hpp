// The fragment table (SPEC §5): later fragments follow the verdict of their datagram's first fragment.
//
// Concurrency contract: one table per worker, written only by its own core (it lives in the worker's
// context).  The constructor runs on the control thread before the worker starts and allocates the
// whole table; nothing allocates afterwards.  Every other function is run side: noexcept, no
// allocation, no locks, no logging.  Fragments of one datagram must reach one worker (NICs hash
// fragments, the first included, on addresses only; a software dispatcher must do the same).
//
// What it does.  tagwall never reassembles and never holds a fragment.  Before the pipeline decides a
// first fragment (offset 0) it asks `check_first` whether the table would take it at all: a first
// fragment of a datagram already in the table (a repeated first fragment: an overlap) and one the
// table has no room for are dropped there, before connection tracking or the policy see anything in
// them (a dropped packet must not change a connection's state: a forged second first fragment
// carrying an exact RST would otherwise close the connection in the firewall while the endpoints,
// which never see it, keep it).  The pipeline then classifies the first fragment like any packet
// and tells the table the decision (`first_fragment`): allowed, with an opaque handle (the flow or
// rule it belongs to), or denied, with its reason.  Later fragments (`later_fragment`) pass only
// while they are tied to an allowed first fragment, and otherwise drop with the first's reason, or
// `fragment_no_first` when there is no first.
//
// Decisions (each one a choice a reviewer should be able to find here):
//   - Key: (segment VLAN, family, source, destination, protocol, fragment id).  IPv6 keys carry
//     protocol 0: RFC 8200 §4.5 identifies a datagram by (source, destination, id) alone, and the
//     protocol a parser reports for a later IPv6 fragment (the Fragment header's next header) differs
//     from the first fragment's L4 protocol whenever an extension header follows the Fragment header.
//   - A fragment that arrives before its first fragment is dropped (`fragment_no_first`) and leaves no
//     state: nothing is passed that is not tied to an allowed first fragment, and a flood of orphan
//     fragments costs no table space.  The datagram is lost; the sender recovers as from any loss.
//   - Spans are in the datagram's fragmentable part (FragmentSpan::of): IPv4's payload, or what
//     follows the IPv6 Fragment header, extension headers included (RFC 8200 §4.5).
//   - TCP segments in fragments.  The pipeline tracks a TCP first fragment with the bytes it carries;
//     the segment goes on in the later fragments, and the receiver acknowledges all of it.  So a TCP
//     first fragment's decision carries where its segment starts in sequence space (TcpSegmentStart),
//     and every later fragment that passes reports how far the segment now reaches (tcp_end, the FIN
//     counted after the last fragment) for the pipeline to extend the connection's tracking.
//   - Byte ranges seen are kept per datagram (merged, up to kMaxRanges disjoint pieces).  Any overlap,
//     an exact duplicate included, drops the rest of the datagram (`fragment_overlap`; RFC 5722, and
//     the same for IPv4, RFC 1858): the table never sees the bytes, so a range-identical fragment may
//     carry different ones, and no stack can then be trusted to reassemble what the first fragment's
//     classification saw.  A network that duplicates a fragment costs that datagram.
//   - Lengths must add up (`fragment_bad_length`): no empty fragment, every fragment but the last a
//     multiple of 8 bytes, nothing past offset 65535 (ping of death) or past the end a last fragment
//     declared, and one end only.  More than `max_fragments` fragments, or more than kMaxRanges holes
//     at once, is `fragment_too_many`.  After any of these the datagram is dead: its later fragments
//     drop with the same reason until its entry times out.
//   - A datagram is forgotten when its last fragment has arrived and every hole is filled, or when its
//     timeout (counted from its first fragment, never extended) passes.
//   - Table full: a new first fragment may take the slot of, in this order, an expired entry, a denied
//     or dead datagram (the oldest; evicting one changes its later fragments' reason, never their
//     verdict), or an allowed datagram that has been idle for `idle_evictable` (the oldest).  An
//     allowed datagram that is still receiving fragments is never evicted; when only such entries are
//     candidates, the new first fragment gets `fragment_table_full` and the pipeline must drop it
//     (forwarding it alone would only waste the receiver's reassembly memory).
//   - Memory: capacity() slots of kEntryBytes (a 96-byte entry and its 4-byte tag), allocated at
//     construction; memory_bytes() says how much (the default 4096 slots: 400 KiB per worker), and
//     high_water() the most datagrams held at once.  Lookups hash the key with a per-table random seed and look at two
//     buckets of 8 slots (two-choice hashing): bounded work, and hard for a sender to aim at one bucket.
//   - Time is injected: `now` is any monotonic clock; the defaults assume nanoseconds.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "dataplane/packet.hpp"
#include "dataplane/reasons.hpp"

namespace tagwall::dataplane {

// Which datagram a fragment belongs to.
struct FragmentKey {
    std::array<uint8_t, 16> src{}, dst{};
    uint32_t id = 0;
    uint16_t vlan = 0;
    uint8_t proto = 0;  // IPv4 protocol; always 0 for IPv6 (see above)
    rules::Family family = rules::Family::v4;

    static FragmentKey of(const ParsedPacket& p) noexcept;
    friend bool operator==(const FragmentKey&, const FragmentKey&) = default;
};
static_assert(sizeof(FragmentKey) == 40, "hash key without padding");

// Where a fragment's data lies in its datagram, in bytes: offset from the fragment header, `length`
// bytes of fragment data (IPv4: total length minus the header; IPv6: what follows the Fragment
// header), `more` the MF flag.
struct FragmentSpan {
    uint16_t offset = 0;
    uint16_t length = 0;
    bool more = false;

    // From the parser's fields: the fragment's data is l4_length bytes (parser.hpp).  Exact for IPv4
    // and for every later fragment; for an IPv6 first fragment whose Fragment header is followed by
    // more extension headers it is short by those headers (a multiple of 8), which only means the
    // table never sees that datagram complete and forgets it at its timeout instead.
    static FragmentSpan of(const ParsedPacket& p) noexcept {
        return {p.fragment_offset, static_cast<uint16_t>(p.l3_offset + p.l3_length - p.fragment_data),
                p.more_fragments};
    }
};

// The TCP segment an allowed first fragment starts (see "TCP segments in fragments" above).
struct TcpSegmentStart {
    bool present = false;  // the datagram is a TCP segment
    bool fin = false;      // ... with FIN: it counts one after the segment's last byte
    uint32_t base = 0;     // the sequence number of the fragmentable part's byte 0 (seq - where the
                           // payload starts in it): a fragment ending at byte E reaches base + E
};

// What the pipeline decided for a first fragment.
struct FirstDecision {
    bool allowed = false;
    Reason reason = Reason::default_action;  // when denied: the reason its later fragments get too
    uint32_t handle = 0;                     // opaque to the table: a flow handle or rule index
    TcpSegmentStart tcp{};                   // allowed TCP datagrams only

    static FirstDecision allow(uint32_t handle, TcpSegmentStart tcp = {}) noexcept {
        return {true, Reason::established, handle, tcp};
    }
    static FirstDecision deny(Reason r, uint32_t handle = 0) noexcept { return {false, r, handle, {}}; }
};

struct FragmentVerdict {
    bool pass = false;
    Reason reason = Reason::fragment_no_first;  // why not; meaningless when pass
    uint32_t handle = 0;                        // the first fragment's handle, when tied to one
    bool tcp = false;                           // pass, in a TCP datagram: its segment reaches tcp_end
    uint32_t tcp_end = 0;
};

struct FragmentConfig {
    uint32_t capacity = 4096;                  // datagrams tracked at once (rounded up: see capacity())
    uint16_t max_fragments = 64;               // per datagram, the first included
    uint64_t timeout = 30'000'000'000;         // from the first fragment, in units of `now` (30 s in ns)
    uint64_t idle_evictable = 1'000'000'000;   // an allowed datagram idle this long may be evicted
    uint64_t seed = 0;                         // hash seed; 0 draws one from std::random_device
};

class FragmentTable {
public:
    static constexpr size_t kMaxRanges = 6;    // disjoint received pieces per datagram
    static constexpr size_t kBucketSlots = 8;
    static constexpr size_t kEntryBytes = 96 + 4;  // an entry and its tag

    // --- control thread, before the worker runs: allocates everything (throws std::invalid_argument
    //     on a zero capacity or max_fragments, std::bad_alloc) ---
    explicit FragmentTable(const FragmentConfig& config = {});

    // --- the owning worker only: noexcept, no allocation ---
    // Before a first fragment (span.offset == 0) is decided: nullopt when first_fragment() would record
    // it, else the verdict that drops it now: a repeated first fragment of a live datagram follows it
    // (an overlap: the datagram dies; a denied or dead datagram: its reason); one whose lengths no
    // fragment may have is `fragment_bad_length`, and one the table has no room for is
    // `fragment_table_full`, whatever the policy would say.
    std::optional<FragmentVerdict> check_first(const FragmentKey& key, FragmentSpan span, uint64_t now) noexcept;
    // A first fragment (span.offset == 0) and what the pipeline decided for it.  An allowed first
    // fragment passes only when this returns pass; a denied one always drops (with decision.reason,
    // or a fragment reason when the datagram was already dead).
    FragmentVerdict first_fragment(const FragmentKey& key, FragmentSpan span, FirstDecision decision,
                                   uint64_t now) noexcept;
    // A fragment with offset > 0.
    FragmentVerdict later_fragment(const FragmentKey& key, FragmentSpan span, uint64_t now) noexcept;
    // Ages at most `max_slots` slots, resuming where the previous call stopped; returns how many
    // datagrams it forgot.  Call once per poll iteration with a small budget.
    size_t expire(uint64_t now, size_t max_slots) noexcept;

    size_t size() const noexcept { return live_; }
    size_t high_water() const noexcept { return high_water_; }  // the largest size() so far
    size_t capacity() const noexcept { return entries_.size(); }
    size_t memory_bytes() const noexcept;

private:
    struct Range {
        uint16_t begin = 0, end = 0;  // [begin, end)
    };
    enum class State : uint8_t { empty, allowed, denied, dead };
    struct Entry {
        FragmentKey key;
        uint64_t expires = 0;
        uint64_t last_seen = 0;
        uint32_t handle = 0;
        uint16_t fragments = 0;
        uint16_t datagram_end = 0;  // 0 until the last fragment (MF clear) has been seen
        State state = State::empty;
        Reason reason = Reason::fragment_no_first;  // denied or dead: what later fragments get
        uint8_t range_count = 0;
        uint8_t tcp = 0;            // kEntryTcp | kEntryTcpFin (TcpSegmentStart), for allowed datagrams
        uint32_t tcp_base = 0;      // TcpSegmentStart::base
        std::array<Range, kMaxRanges> ranges{};  // sorted, disjoint, not touching
    };
    static constexpr uint8_t kEntryTcp = 1, kEntryTcpFin = 2;
    static_assert(sizeof(Entry) == 96 && sizeof(Entry) + sizeof(uint32_t) == kEntryBytes,
                  "two entries per three cache lines: keep it tight");

    struct Slots {
        size_t first_bucket, second_bucket;
        uint32_t tag;
    };
    Slots slots_for(const FragmentKey& key) const noexcept;
    Entry* find(const FragmentKey& key, const Slots& s) noexcept;
    size_t pick_slot(const Slots& s, uint64_t now) const noexcept;  // for a new datagram, or SIZE_MAX
    Entry* insert(const FragmentKey& key, const Slots& s, uint64_t now) noexcept;
    void release(Entry& e) noexcept;
    bool expired(const Entry& e, uint64_t now) const noexcept { return now >= e.expires; }
    FragmentVerdict follow(Entry& e, FragmentSpan span, uint64_t now) noexcept;
    // Records a span; returns false (and kills the datagram) when it breaks a rule; sets `complete`.
    bool add_span(Entry& e, FragmentSpan span, bool& complete) noexcept;
    bool add_range(Entry& e, Range r) noexcept;
    bool kill(Entry& e, Reason r) noexcept;  // the datagram is dead: returns false

    FragmentConfig config_;
    uint64_t seed_ = 0;
    size_t bucket_mask_ = 0;
    std::vector<uint32_t> tags_;  // per slot: 0 = empty, else a nonzero hash tag
    std::vector<Entry> entries_;
    size_t live_ = 0;
    size_t high_water_ = 0;
    size_t expire_cursor_ = 0;
};

}  // namespace tagwall::dataplane
