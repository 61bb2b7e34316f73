// The worker pipeline as the pcap targets run it (fuzz-pipeline, fuzz-policy-pcap), and what every
// verdict and counter must satisfy.  Test code, one thread.
//
// The appliance the captures arrive at (three ports, small tables so that a fuzzer-sized input fills them):
//   port 0  workload  wire peer 1          the `workload` port of `tagwall-bench replay --policy`
//   port 1  uplink    wire peer 0          its `uplink`
//   port 2  workload  no wire peer         (a port of its own in switch mode)
// A packet's port is the low two bits of its record's sub-second timestamp field; 3 is no port at all
// (counted as unknown, the path of a frame from a port the pipeline does not know).  The captures made
// by scripts/make-pcaps.py use whole milliseconds, so the seeds from pcaps/ arrive on port 0, as in the
// pcap tests.  Bit 0 of the pcap header's sigfigs field (always 0 in real captures) selects switch
// forwarding (MAC table, floods) instead of wire pairs.
//
// Each capture is replayed twice, side by side, through two pipelines built alike: A takes bursts of 32
// through process() (parse the batch, prefetch, decide), B the same frames one by one through
// process_one() at the same `now` and then expire(), as replay does.  The two must agree on every
// verdict, every counter, every reject answer and every event: the batched path may not depend on the
// order in which it prepares packets.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/event_log.hpp"
#include "dataplane/events.hpp"
#include "dataplane/flow_key.hpp"
#include "dataplane/pipeline.hpp"
#include "dataplane/reject.hpp"
#include "fuzz_support.hpp"

namespace tagwall::fuzz {

using dataplane::FrameRef;
using dataplane::Pipeline;
using dataplane::Verdict;

inline constexpr size_t kReplayPorts = 3;
inline constexpr size_t kReplayBurst = 32;
inline constexpr size_t kMaxReplayPackets = 512;

inline const std::vector<std::string>& replay_port_names() {
    static const std::vector<std::string> names{"workload", "uplink", "workload-2"};
    return names;
}

inline std::vector<dataplane::PortConfig> replay_ports() {
    using dataplane::PortRole;
    return {{PortRole::workload, 1}, {PortRole::uplink, 0}, {PortRole::workload, dataplane::kNoPort}};
}

inline dataplane::PipelineConfig replay_config(bool l2_switch, dataplane::EventRing* events) {
    dataplane::PipelineConfig c;
    c.flows.capacity = 16;
    c.flows.seed = 7;
    c.fragments.capacity = 8;
    c.fragments.max_fragments = 8;
    c.fragments.seed = 7;
    c.expire_budget = 4;
    c.l2_switch = l2_switch;
    c.macs.capacity = 16;
    c.reject_rate = 1000;
    c.reject_burst = 4;
    c.events = events;
    return c;
}

inline std::vector<FrameRef> frames_of(const Capture& cap) {
    std::vector<FrameRef> frames;
    frames.reserve(cap.packets.size());
    for (const CapturedPacket& p : cap.packets)
        frames.push_back({cap.bytes.data() + p.offset, p.length, static_cast<uint8_t>(p.ts_frac & 3)});
    return frames;
}

// The pair of pipelines, their event rings, and what they must agree on.
class TwinReplay {
public:
    TwinReplay(std::shared_ptr<const dataplane::IdentityTable> ids, std::shared_ptr<const rules::PolicyClassifier> cls,
               uint32_t generation, bool l2_switch)
        : l2_switch_(l2_switch),
          ring_a_(std::make_unique<dataplane::EventRing>(1024)),
          ring_b_(std::make_unique<dataplane::EventRing>(1024)),
          a_(ids, cls, generation, replay_ports(), replay_config(l2_switch, ring_a_.get())),
          b_(std::move(ids), std::move(cls), generation, replay_ports(), replay_config(l2_switch, ring_b_.get())) {}

    Pipeline& a() { return a_; }
    Pipeline& b() { return b_; }

    // Decides frames [begin, end) of `frames` in bursts; `rules` is the rule set both pipelines run now
    // (for rule indices and event names).  Returns A's verdicts.
    std::vector<Verdict> run(std::span<const FrameRef> frames, const std::vector<CapturedPacket>& packets, size_t begin,
                             size_t end, const rules::RuleSet& rules) {
        std::vector<Verdict> out;
        std::array<Verdict, kReplayBurst> va{};
        for (size_t base = begin; base < end; base += kReplayBurst) {
            const size_t n = std::min(kReplayBurst, end - base);
            const uint64_t now = packets[base].ts_ns;
            a_.process(frames.subspan(base, n), now, std::span<Verdict>(va.data(), n));
            for (size_t i = 0; i < n; ++i) {
                const FrameRef& f = frames[base + i];
                const Verdict vb = b_.process_one(f, now);
                const Verdict& v = va[i];
                FUZZ_CHECK(v.action == vb.action && v.reason == vb.reason && v.rule == vb.rule &&
                               v.out_port == vb.out_port,
                           "packet {}: process() says {}/{}/rule {}/port {}, process_one() {}/{}/rule {}/port {}",
                           base + i, static_cast<int>(v.action), dataplane::info(v.reason).counter, v.rule, v.out_port,
                           static_cast<int>(vb.action), dataplane::info(vb.reason).counter, vb.rule, vb.out_port);
                check_verdict(v, f, rules);
                out.push_back(v);
            }
            b_.expire(now);  // process() ended with it; the worker loop answers rejects after the burst
            for (size_t i = 0; i < n; ++i)
                if (va[i].action == rules::Action::reject) answer(frames[base + i], va[i], now);
            decided_ += n;
            check_counters();
            drain(rules);
        }
        return out;
    }

    size_t decided() const noexcept { return decided_; }

private:
    void check_verdict(const Verdict& v, const FrameRef& f, const rules::RuleSet& rules) const {
        using dataplane::Reason;
        const bool known = f.port < kReplayPorts;
        switch (v.reason) {
        case Reason::rule:
            FUZZ_CHECK(v.rule >= 0 && static_cast<size_t>(v.rule) < rules.rules().size(), "reason rule, rule {}", v.rule);
            FUZZ_CHECK(v.action == rules.rules()[static_cast<size_t>(v.rule)].action, "rule {} decided another action",
                       rules.rules()[static_cast<size_t>(v.rule)].id);
            break;
        case Reason::default_action:
            FUZZ_CHECK(v.rule == -1 && v.action == rules.default_action(), "default with rule {} action {}", v.rule,
                       static_cast<int>(v.action));
            break;
        case Reason::revoked:
            FUZZ_CHECK(v.action != rules::Action::allow, "a revoked connection allowed");
            break;
        case Reason::established:
        case Reason::rst_in_window:
        case Reason::related:
        case Reason::arp_nd:
            FUZZ_CHECK(v.action == rules::Action::allow && v.rule == -1, "{} not a plain allow",
                       dataplane::info(v.reason).counter);
            break;
        default:
            FUZZ_CHECK(v.action == rules::Action::drop, "{} is not a drop", dataplane::info(v.reason).counter);
            break;
        }
        switch (v.action) {
        case rules::Action::drop:
            FUZZ_CHECK(v.out_port == dataplane::kNoPort, "a drop goes to port {}", v.out_port);
            break;
        case rules::Action::reject:
            FUZZ_CHECK(v.out_port == f.port, "a reject answered out of port {}, not its ingress {}", v.out_port, f.port);
            break;
        case rules::Action::allow:
            FUZZ_CHECK(known, "a frame of unknown port {} allowed", f.port);
            if (!l2_switch_) FUZZ_CHECK(v.out_port == replay_ports()[f.port].peer, "wire: allowed to port {}", v.out_port);
            else FUZZ_CHECK(v.out_port < kReplayPorts || v.out_port == dataplane::kFlood || v.out_port == dataplane::kNoPort,
                            "switch: allowed to port {}", v.out_port);
            FUZZ_CHECK(v.out_port != f.port, "allowed back out of its ingress port {}", f.port);
            break;
        }
    }

    // A reject's answers, from both pipelines: identical, and well formed.
    void answer(const FrameRef& f, const Verdict& v, uint64_t now) {
        std::array<uint8_t, dataplane::kRejectMaxFrame> oa{}, ob{};
        const std::span<const uint8_t> frame(f.data, f.length);
        const size_t na = a_.reject_answer(f, now, oa), nb = b_.reject_answer(f, now, ob);
        FUZZ_CHECK(na == nb && std::equal(oa.begin(), oa.begin() + static_cast<long>(na), ob.begin()),
                   "the pipelines' reject answers differ ({} and {} bytes)", na, nb);
        dataplane::ParsedPacket p;
        FUZZ_CHECK(!dataplane::parse_frame(frame, p), "a rejected frame that does not parse");
        if (na != 0) check_answer(std::span<const uint8_t>(oa.data(), na), p, true, "reject_answer");
        if (v.reason == dataplane::Reason::revoked) {
            uint8_t pa = 0, pb = 0;
            const size_t ra = a_.revoke_peer_rst(f, now, oa, pa), rb = b_.revoke_peer_rst(f, now, ob, pb);
            FUZZ_CHECK(ra == rb && pa == pb, "the pipelines' revocation RSTs differ");
            if (ra != 0) {
                check_answer(std::span<const uint8_t>(oa.data(), ra), p, false, "revoke_peer_rst");
                FUZZ_CHECK(pa < kReplayPorts || pa == dataplane::kFlood, "revocation RST to port {}", pa);
            }
        }
    }

    void check_counters() const {
        const auto& ra = a_.reason_counters();
        const auto& rb = b_.reason_counters();
        FUZZ_CHECK(ra == rb, "the pipelines' reason counters differ");
        const auto& v = a_.verdict_counters();
        FUZZ_CHECK(v.allow + v.drop + v.reject == decided_, "{} verdicts counted for {} frames",
                   v.allow + v.drop + v.reject, decided_);
        uint64_t rx = 0, reasons = 0;
        for (size_t p = 0; p < kReplayPorts; ++p) {
            const auto& ca = a_.port_counters(static_cast<uint8_t>(p));
            const auto& cb = b_.port_counters(static_cast<uint8_t>(p));
            FUZZ_CHECK(ca.rx == cb.rx && ca.tx == cb.tx && ca.dropped == cb.dropped, "port {} counters differ", p);
            FUZZ_CHECK(ca.dropped <= ca.rx, "port {} dropped {} of {}", p, ca.dropped, ca.rx);
            rx += ca.rx;
        }
        for (size_t r = 0; r < ra.size(); ++r)
            if (r != static_cast<size_t>(dataplane::Reason::reject_rate_limited)) reasons += ra[r];
        FUZZ_CHECK(rx + a_.unknown_port_frames() == decided_, "rx {} + unknown {} != {} frames", rx,
                   a_.unknown_port_frames(), decided_);
        FUZZ_CHECK(reasons == rx, "{} reasons counted for {} frames received on ports", reasons, rx);
        const auto& ta = a_.conntrack().table();
        FUZZ_CHECK(ta.size() <= ta.capacity() && ta.size() == b_.conntrack().table().size(),
                   "flow tables hold {} and {} (capacity {})", ta.size(), b_.conntrack().table().size(), ta.capacity());
        FUZZ_CHECK(a_.flooded() == b_.flooded(), "flood counts differ");
    }

    // Both rings' events: the same, and each formats as a JSON object that says what happened.
    void drain(const rules::RuleSet& rules) {
        dataplane::Event ea, eb;
        while (ring_a_->pop(ea)) {
            FUZZ_CHECK(ring_b_->pop(eb), "pipeline B has fewer events");
            FUZZ_CHECK(ea.action == eb.action && ea.reason == eb.reason && ea.rule == eb.rule && ea.src == eb.src &&
                           ea.dst == eb.dst && ea.port == eb.port,
                       "the pipelines' events differ");
            const std::string line = control::format_event(ea, rules, replay_port_names(), 0);
            const auto j = nlohmann::json::parse(line, nullptr, false);
            FUZZ_CHECK(j.is_object() && j.contains("verdict") && j.contains("reason"), "event line {}", line);
            const char* want = ea.action == rules::Action::allow ? "allow"
                               : ea.action == rules::Action::drop ? "drop" : "reject";
            FUZZ_CHECK(j["verdict"] == want, "event line {} for a {}", line, want);
        }
        FUZZ_CHECK(!ring_b_->pop(eb), "pipeline B has more events");
        FUZZ_CHECK(ring_a_->lost() == ring_b_->lost(), "lost events differ");
    }

    bool l2_switch_;
    size_t decided_ = 0;
    std::unique_ptr<dataplane::EventRing> ring_a_, ring_b_;
    Pipeline a_, b_;
};

}  // namespace tagwall::fuzz
