// The per-packet pipeline of one worker (SPEC §5): parse -> segment -> SpoofGuard -> ARP/ND ->
// fragments -> connection tracking -> (on a miss) classify -> verdict.
//
// Concurrency contract: one Pipeline per worker, used only by its own core.  It owns the worker's
// ConnTrack and FragmentTable and shares the published policy (IdentityTable and PolicyClassifier, both
// immutable) through shared_ptr.  The constructor and set_policy() run on the control side (they
// allocate); process() and the const accessors are run side: noexcept, no allocation, no locks, no
// logging.  (The worker loop will publish policies through RCU; until then set_policy() must only be
// called while the worker is stopped.)
//
// The steps of process(), for each frame:
//   1. parse_frame(): a malformed frame drops with the parser's reason.
//   2. the frame's VLAN must name a segment (`unknown_segment`).
//   3. SpoofGuard: IdentityTable::check_source() with the role of the port the frame arrived on.
//   4. ARP, IPv6 neighbour discovery and packets SpoofGuard accepted as infrastructure only (DHCP,
//      DAD, MLD from link-local ...) pass with reason `arp_nd`: no connection, no rule.
//   5. fragments: a later fragment follows its first fragment (FragmentTable::later_fragment); a first
//      fragment is decided by the steps below and its decision recorded (first_fragment), which may
//      still drop it (fragment table full, dead datagram).
//   6. ConnTrack::track(): pass (established / related), drop (invalid ...), or classify.
//   7. classify: PolicyClassifier::classify() on the packet's key; allow opens a connection
//      (ConnTrack::create with the rule, the policy generation and both identity classes; reason
//      `rule`), drop and reject give the deciding rule, or the default (reason `default`).  A reject
//      is only a verdict for now: the RST / ICMP unreachable answer is not sent yet, only counted.
//
// Not done yet (the later parts): re-verification of established connections after a policy
// swap (entries record their generation; `revoked` is never given), switch mode (out_port is the wire
// peer), sending reject answers.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "dataplane/conntrack.hpp"
#include "dataplane/fragments.hpp"
#include "dataplane/identity.hpp"
#include "dataplane/packet.hpp"
#include "dataplane/reasons.hpp"
#include "rules/classifier_policy.hpp"
#include "rules/policy.hpp"

namespace tagwall::dataplane {

inline constexpr uint8_t kNoPort = 0xFF;

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
    uint8_t out_port = kNoPort;              // allow: where to send it; reject: where the answer goes
};

// A port of the appliance: its SpoofGuard role and, in wire mode, the port it is paired with.
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
    size_t expire_budget = 64;  // flow and fragment slots aged per process() call
};

class Pipeline {
public:
    static constexpr size_t kMaxPorts = 64;

    // --- control side: allocates; throws std::invalid_argument on a bad port list ---
    Pipeline(std::shared_ptr<const IdentityTable> identity, std::shared_ptr<const rules::PolicyClassifier> classifier,
             uint32_t generation, std::vector<PortConfig> ports, const PipelineConfig& config = {});
    void set_policy(std::shared_ptr<const IdentityTable> identity,
                    std::shared_ptr<const rules::PolicyClassifier> classifier, uint32_t generation);

    // --- the owning worker only: noexcept, no allocation ---
    // Decides every frame of a burst; `out` must hold at least frames.size() verdicts.  `now` is in ns
    // (any monotonic clock; replay uses the pcap timestamps).
    void process(std::span<const FrameRef> frames, uint64_t now, std::span<Verdict> out) noexcept;
    // One frame, without the housekeeping: a caller that gives each frame its own `now` (replay: the
    // pcap timestamp) calls this per frame and expire() once per burst, as process() does.
    Verdict process_one(const FrameRef& frame, uint64_t now) noexcept;
    // Ages a few flow and fragment slots (PipelineConfig::expire_budget of each).
    void expire(uint64_t now) noexcept;

    // --- counters and state: the owning worker, or any thread while it is stopped ---
    const std::array<uint64_t, kReasonCount>& reason_counters() const noexcept { return reasons_; }
    uint64_t reason_count(Reason r) const noexcept { return reasons_[static_cast<size_t>(r)]; }
    const VerdictCounters& verdict_counters() const noexcept { return verdicts_; }
    const PortCounters& port_counters(uint8_t port) const noexcept { return port_counters_[port]; }
    size_t port_count() const noexcept { return ports_.size(); }
    uint64_t unknown_port_frames() const noexcept { return unknown_port_; }
    uint32_t generation() const noexcept { return generation_; }
    const ConnTrack& conntrack() const noexcept { return ct_; }
    const FragmentTable& fragments() const noexcept { return frags_; }

private:
    // Steps 6-7 for a packet that passed SpoofGuard; `src` is its source identity.
    Verdict decide(const ParsedPacket& p, const rules::Identity& src, uint64_t now) noexcept;
    Verdict finish(Verdict v, uint8_t in_port) noexcept;

    std::shared_ptr<const IdentityTable> identity_;
    std::shared_ptr<const rules::PolicyClassifier> classifier_;
    uint32_t generation_ = 0;
    std::vector<PortConfig> ports_;
    std::vector<PortCounters> port_counters_;
    ConnTrack ct_;
    FragmentTable frags_;
    size_t expire_budget_ = 64;
    ParsedPacket scratch_{};
    std::array<uint64_t, kReasonCount> reasons_{};
    VerdictCounters verdicts_{};
    uint64_t unknown_port_ = 0;
};

}  // namespace tagwall::dataplane
