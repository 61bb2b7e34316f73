// The per-packet pipeline of one worker (SPEC §5): parse -> segment -> SpoofGuard -> ARP/ND ->
// fragments -> connection tracking -> (on a miss) classify -> verdict -> where it goes.
//
// Concurrency contract: one Pipeline per worker, used only by its own core.  It owns the worker's
// ConnTrack, FragmentTable, MacTable and reject rate limiter, and shares the published policy
// (IdentityTable and PolicyClassifier, both immutable) through shared_ptr.  The constructor and
// set_policy() run on the control side (they allocate); process(), reject_answer() and the const
// accessors are run side: noexcept, no allocation, no locks, no logging (events go to an EventRing).
// set_policy() must only be called while the worker is stopped or between its bursts on its own
// thread (the RCU publication of issue 5 calls it there).
//
// The steps of process(), for each frame:
//   1. parse_frame(): a malformed frame drops with the parser's reason.
//   2. the frame's VLAN must name a segment (`unknown_segment`).
//   3. SpoofGuard: IdentityTable::check_source() with the role of the port the frame arrived on.
//      Switch mode learns the source MAC here (see below).
//   4. ARP, IPv6 neighbour discovery and packets SpoofGuard accepted as infrastructure only (DHCP,
//      DAD, MLD from link-local ...) pass with reason `arp_nd`: no connection, no rule.
//   5. fragments: a later fragment follows its first fragment (FragmentTable::later_fragment), and one
//      of a TCP segment extends its connection's tracking (ConnTrack::extend_tcp_segment).  A first
//      fragment the table would refuse (a repeated first fragment, or no room: check_first) is
//      dropped here, before anything in it is tracked; otherwise it is decided by the steps below and
//      its decision recorded (first_fragment).
//   6. ConnTrack::track(): pass (established / related), drop (invalid ...), or classify.
//      Re-verification (SPEC §6): a connection allowed under an older policy generation than the
//      pipeline's is classified again, from its original direction and with both ends resolved
//      through the current identity table, before this packet passes.  Still allowed: the entry
//      takes the deciding rule and the new generation.  No longer allowed: the entry is closed and
//      the packet gets the new decision's action with reason `revoked` (a reject answers it).
//   7. classify: PolicyClassifier::classify() on the packet's key; allow opens a connection
//      (ConnTrack::create with the rule, the policy generation and both identity classes; reason
//      `rule`), drop and reject give the deciding rule, or the default (reason `default`).
//   8. where it goes (Verdict::out_port): wire mode sends an allowed frame to the port's peer.  Switch
//      mode looks the destination MAC up in the worker's MAC table: a known unicast MAC goes to its
//      port (nowhere when that is the ingress port), broadcast, multicast and unknown unicast are
//      flooded (kFlood: every other port; the VLAN tag is kept, so the frame stays in its segment).
//      A reject's out_port is the ingress port: reject_answer() builds the RST / ICMP unreachable.
//
// The established fast path (fast_established, process() only): an ACK of an established TCP
// connection of the current generation, from a source SpoofGuard accepts as bound, not a fragment, is
// decided with the same tests in fewer steps (IdentityTable::bound_source, ConnTrack::established_entry
// and pass_established) and counted as step 8 would.  SpoofGuard's answer is remembered in the entry
// (FlowEntry::source_mac: per direction, the source MAC found bound): a generation names one policy,
// identity table included, so the same MAC from the same address in the same segment under the same
// generation gets the same answer without the table being read; re-verification forgets it.  This
// rests on what re-verification rests on too: a generation number is never given to two policies.
// Anything else goes through the steps above untouched; process_one() always does, and the tests
// compare the two.
//
// New connections in a batch (preclassify, process() only): before any frame of the batch is decided,
// the frames whose key has no entry in its first bucket and that may open a connection (a SYN, a UDP
// datagram, an echo request ...) have both ends resolved and are classified together, one trie walk
// over all of them (PolicyClassifier::classify_burst), so that their cache misses overlap; the rule
// counters and the flow entries they will write are prefetched.  Step 7 then uses that decision only
// when its own engine key is the same (a decision depends on nothing else but the segment): the
// verdicts are those of the steps above.  process_one() classifies each frame alone.
//
// Switch mode learning (MacTable): a source MAC is learned from a frame SpoofGuard accepted, and only
//   - on a workload port, when the frame was attributed to an endpoint (its MAC is the endpoint's
//     bound MAC, or the endpoint has none): an endpoint's MAC is "seeded" from its binding in the
//     sense that nothing else can claim it;
//   - on an uplink port, when the MAC is bound to no endpoint of the segment (an uplink frame cannot
//     move a workload's MAC to the uplink).
// Group (multicast) source MACs are never learned.
//
// Events: when PipelineConfig::events is set, every drop and reject of an IP packet, every drop of a
// frame that did not parse, and every allow by a rule with `log: true` that opens a connection is
// pushed to the ring (a full ring counts the event as lost; the packet's fate does not change).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "dataplane/conntrack.hpp"
#include "dataplane/events.hpp"
#include "dataplane/fragments.hpp"
#include "dataplane/identity.hpp"
#include "dataplane/mac_table.hpp"
#include "dataplane/packet.hpp"
#include "dataplane/policy_bundle.hpp"
#include "dataplane/reasons.hpp"
#include "dataplane/reject.hpp"
#include "rules/classifier_policy.hpp"
#include "rules/policy.hpp"

namespace tagwall::dataplane {

inline constexpr uint8_t kNoPort = 0xFF;   // nowhere: dropped, or filtered (switch mode, same port)
inline constexpr uint8_t kFlood = 0xFE;    // switch mode: every port but the ingress one

// One frame of a burst, as received on `port`.
struct FrameRef {
    const uint8_t* data = nullptr;
    uint16_t length = 0;
    uint8_t port = 0;
};

// What the pipeline decided for one frame.
struct Verdict {
    rules::Action action = rules::Action::drop;
    Reason reason = Reason::default_action;  // `rule` when a policy rule decided (then `rule` says which)
    int32_t rule = -1;                       // index into RuleSet::rules() of the deciding rule, or -1
    uint8_t out_port = kNoPort;              // allow: a port, kFlood or kNoPort; reject: the ingress port
};

// A port of the appliance: its SpoofGuard role and, in wire mode, the port it is paired with
// (switch mode ignores `peer`).
struct PortConfig {
    PortRole role = PortRole::uplink;
    uint8_t peer = kNoPort;
};

struct PortCounters {
    uint64_t rx = 0;       // frames received on the port
    uint64_t tx = 0;       // frames allowed out of the port
    uint64_t dropped = 0;  // frames received on the port and dropped (rejects included)
};

struct VerdictCounters {
    uint64_t allow = 0, drop = 0, reject = 0;
};

struct PipelineConfig {
    FlowTableConfig flows{};
    FragmentConfig fragments{};
    size_t expire_budget = 16;  // flow and fragment slots aged per expire() call (once per process() call,
                                // a burst), at most ...
    uint64_t flow_sweep_ns = 1'000'000'000;  // ... and flow slots only as many as sweep the whole flow
                                // table once per this period of `now`: aging is paced by time, not by the
                                // packet rate (at 15 Mpps, 16 slots a burst read a line per packet).
                                // Lookups free expired entries too, and eviction takes them first.
                                // Taken between 1 ns and Pipeline::kMaxFlowSweepNs (~17 s).
    bool l2_switch = false;     // forwarding: switch (MAC table) instead of wire (port peers)
    MacTableConfig macs{};
    uint32_t reject_rate = 1000;  // reject answers per second per worker, on average
    uint32_t reject_burst = 100;  // ... and at most this many at once
    EventRing* events = nullptr;  // not owned; must outlive the pipeline
};

class Pipeline {
public:
    static constexpr size_t kMaxPorts = 64;
    static constexpr size_t kBatch = 32;  // process() parses and prefetches this many frames ahead
    static constexpr size_t kFrameLead = 4;  // parsing frame i, it prefetches frame i + 4's headers
    static constexpr size_t kAckLead = 10;   // deciding frame i, the entry of an ACK at i + 10
    static constexpr uint64_t kMaxFlowSweepNs = uint64_t{1} << 34;  // (x capacity <= 2^62: no overflow)

    // --- control side: allocates; throws std::invalid_argument on a bad port list ---
    Pipeline(std::shared_ptr<const IdentityTable> identity, std::shared_ptr<const rules::PolicyClassifier> classifier,
             uint32_t generation, std::vector<PortConfig> ports, const PipelineConfig& config = {});
    void set_policy(std::shared_ptr<const IdentityTable> identity,
                    std::shared_ptr<const rules::PolicyClassifier> classifier, uint32_t generation);

    // --- the owning worker, between bursts: a published generation (appliance.hpp's RCU).  No
    //     allocation: it takes references to what `bundle` holds (the bundle outlives them until the
    //     RCU grace period) and counts rules into bundle.counters[worker]. ---
    void adopt(const PolicyBundle& bundle, size_t worker) noexcept;
    // Empties the connection table (`tagwallctl flows flush`); returns how many connections it held.
    uint64_t flush_flows() noexcept;

    // --- the owning worker only: noexcept, no allocation ---
    // Decides every frame of a burst; `out` must hold at least frames.size() verdicts.  `now` is in ns
    // (any monotonic clock; replay uses the pcap timestamps).  Frames are taken kBatch at a time: all
    // are parsed first (each prefetching a later one's headers) and their connection-table buckets,
    // then entries, prefetched, so that the cache misses of a batch overlap instead of queueing one
    // packet at a time; then each is decided in order.  An ACK's entry is prefetched while the frames
    // kAckLead before it are decided rather than with the others: that spreads the batch's misses over
    // the line fill buffers instead of stalling on them (~10% of the established path).
    void process(std::span<const FrameRef> frames, uint64_t now, std::span<Verdict> out) noexcept;
    // One frame, without the housekeeping: a caller that gives each frame its own `now` (replay: the
    // pcap timestamp) calls this per frame and expire() once per burst, as process() does.
    Verdict process_one(const FrameRef& frame, uint64_t now) noexcept;
    // Ages a few flow and fragment slots (PipelineConfig::expire_budget of each; flow slots paced by
    // PipelineConfig::flow_sweep_ns).
    void expire(uint64_t now) noexcept;
    // The answer to a frame this pipeline rejected (TCP RST or ICMP/ICMPv6 unreachable, reject.hpp),
    // built into `out`; 0 when none may be sent or the rate limit refuses (counted as
    // reject_rate_limited).  The frame is parsed again: rejects are the rare path.
    size_t reject_answer(const FrameRef& frame, uint64_t now, std::span<uint8_t> out) noexcept;
    // For a TCP packet rejected as `revoked`: the RST for the other end (reject.hpp build_forward_rst),
    // and in `port` where it goes (the wire peer, the destination MAC's port, or kFlood); 0 when none
    // is sent (not TCP, nowhere to send it, or the rate limit).  Call after reject_answer().
    size_t revoke_peer_rst(const FrameRef& frame, uint64_t now, std::span<uint8_t> out, uint8_t& port) noexcept;

    // --- counters and state: the owning worker, or any thread while it is stopped ---
    const std::array<uint64_t, kReasonCount>& reason_counters() const noexcept { return reasons_; }
    uint64_t reason_count(Reason r) const noexcept { return reasons_[static_cast<size_t>(r)]; }
    const VerdictCounters& verdict_counters() const noexcept { return verdicts_; }
    const PortCounters& port_counters(uint8_t port) const noexcept { return port_counters_[port]; }
    size_t port_count() const noexcept { return ports_.size(); }
    uint64_t unknown_port_frames() const noexcept { return unknown_port_; }
    uint32_t generation() const noexcept { return generation_; }
    uint64_t flooded() const noexcept { return flooded_; }
    // Per rule of the current policy: packets it decided (a new connection, a drop or reject by the
    // rule, a revocation); established packets are not counted.  Per policy generation: a new one
    // starts from zero (its bundle's counters).
    std::span<const RuleCounter> rule_counters() const noexcept { return {rule_counters_, rule_count_}; }
    uint64_t revoked() const noexcept { return reasons_[static_cast<size_t>(Reason::revoked)]; }
    const MacTable& mac_table() const noexcept { return macs_; }
    const ConnTrack& conntrack() const noexcept { return ct_; }
    const FragmentTable& fragments() const noexcept { return frags_; }

private:
    // A policy decision made ahead for a frame of process()'s batch that probably opens a connection
    // (no entry in its key's first bucket, and a packet that may open one): both ends resolved through
    // the identity table and the batch's such frames classified together (PolicyClassifier::
    // classify_burst), so that their trie walks overlap.  decide() takes `decision` only when its own
    // engine key is `key` (a decision depends on nothing else but the segment); otherwise, or when the
    // connection turns out to exist, the decision is simply not used.
    struct Preclassified {
        rules::Identity src, dst;  // IdentityTable::resolve of the source and destination addresses
        rules::FieldKey key{};     // rules::to_field_key with those identities
        rules::Decision decision;
    };

    // Steps 2-8 for a frame parse_frame() already read into `p` (`bad`: its verdict on the frame), with
    // its connection probe `k` (ConnTrack::probe; made only when the frame parsed) and, from process(),
    // the decision made ahead for it (nullptr: none).
    Verdict process_parsed(const FrameRef& frame, ParsedPacket& p, std::optional<Reason> bad, const CtProbe& k,
                           uint64_t now, const Preclassified* pre = nullptr) noexcept;
    // process()'s step between prefetching and deciding: fills batch_pre_ for the frames of the batch
    // that `likely_new` marks and that may open a connection, and sets their batch_has_pre_ (which
    // process() has cleared for every frame of the batch).
    void preclassify(std::span<const FrameRef> frames, const std::array<bool, kBatch>& likely_new) noexcept;
    // process()'s shortcut for an ACK of an established connection: true when it decided the frame
    // (into `out`) exactly as process_parsed() would; false when process_parsed() must, with nothing
    // changed.  `k` must be the probe of a frame that parsed.
    // `Segment`: the ParsedPacket of the frame, or its AckSegment (parse_ack_segment: then the frame is
    // parsed in full only when this returns false).
    template <class Segment>
    bool fast_established(const FrameRef& frame, const Segment& p, const CtProbe& k, uint64_t now,
                          Verdict& out) noexcept;
    // Steps 6-7 for a packet that passed SpoofGuard; `src` is its source identity, or nullptr when it
    // arrived on an uplink, where SpoofGuard only resolves the source address: that is done here, and
    // only when the policy is asked (an established packet never needs it).
    Verdict decide(const ParsedPacket& p, const CtProbe& k, const rules::Identity* src, uint64_t now,
                   const Preclassified* pre) noexcept;
    // Step 6's re-verification of the entry behind `r` (its generation is older than ours).
    Verdict reverify(const CtResult& r) noexcept;
    // What the fragment table records for an allowed first fragment (rule, or TCP connection and segment).
    FirstDecision first_allowed(const ParsedPacket& p, uint32_t rule, uint64_t now) const noexcept;
    // Counts the verdict and picks its out_port; `p` is the parsed frame, or nullptr when it did not parse.
    Verdict finish(const Verdict& decided, uint8_t in_port, const ParsedPacket* p) noexcept;
    // `Frame`: a ParsedPacket or an AckSegment (learn reads vlan and src_mac, forward_port vlan and dst_mac).
    template <class Frame>
    // `attributed`: SpoofGuard attributed the frame to an endpoint (see "Switch mode learning").
    void learn(const Frame& p, bool attributed, uint8_t in_port) noexcept;
    // Counts an allowed frame out of `out_port` (kFlood: every port but in_port; kNoPort: none).
    void count_tx(uint8_t out_port, uint8_t in_port) noexcept;
    // Step 8: where a frame entering on in_port goes (the wire peer; switch mode: the destination
    // MAC's port, kFlood for group and unknown MACs, kNoPort when that is in_port itself).
    template <class Frame>
    uint8_t forward_port(const Frame& p, uint8_t in_port, uint64_t now) const noexcept;
    void emit(const Verdict& v, uint8_t in_port, const ParsedPacket* p) noexcept;

    std::shared_ptr<const IdentityTable> identity_;
    std::shared_ptr<const rules::PolicyClassifier> classifier_;
    uint32_t generation_ = 0;
    std::vector<PortConfig> ports_;
    std::vector<PortCounters> port_counters_;
    ConnTrack ct_;
    FragmentTable frags_;
    MacTable macs_;
    RejectLimiter limiter_;
    bool l2_switch_ = false;
    EventRing* events_ = nullptr;
    std::unique_ptr<PolicyBundle> own_bundle_;  // set_policy's (a published bundle belongs to the appliance)
    const uint8_t* rule_logs_ = nullptr;        // per rule of the current policy: `log: true`
    RuleCounter* rule_counters_ = nullptr;
    size_t rule_count_ = 0;
    size_t expire_budget_ = 16;
    uint64_t flow_sweep_ns_ = 0;
    uint64_t sweep_credit_ = 0;       // flow slots owed to aging, times flow_sweep_ns_
    uint64_t last_expire_ = 0;        // `now` of the last expire()
    uint64_t now_ = 0;                // of the frame being processed
    uint64_t flooded_ = 0;
    ParsedPacket scratch_{};
    std::array<ParsedPacket, kBatch> batch_{};
    std::array<AckSegment, kBatch> batch_ack_{};  // valid where batch_is_ack_: batch_ is not parsed yet
    std::array<bool, kBatch> batch_is_ack_{};
    std::array<std::optional<Reason>, kBatch> batch_bad_{};
    std::array<CtProbe, kBatch> batch_probe_{};
    std::array<Preclassified, kBatch> batch_pre_{};
    std::array<bool, kBatch> batch_has_pre_{};
    std::array<uint64_t, kReasonCount> reasons_{};
    VerdictCounters verdicts_{};
    uint64_t unknown_port_ = 0;
};

}  // namespace tagwall::dataplane
