// fuzz-pipeline: a pcap file (the input's bytes) through the whole worker Pipeline, as `tagwall-bench
// replay` runs it: packets sorted by timestamp, in bursts, each burst at its first packet's time,
// under a fixed policy (tests/fuzz/fuzz_support.hpp kFuzzPolicy: pcaps/policy.yaml and more).
//
// Ports, forwarding mode and the twin pipelines (batched process() against process_one(), which must
// agree on everything) are described in tests/fuzz/fuzz_replay.hpp, with the invariants checked after
// every burst: each verdict consistent with its reason and the policy (a rule's own action, the
// default's, drops for every malformed or invalid reason), where it goes (wire peer, switch port or
// flood, never its own ingress port; a reject back out of its ingress port), counters that add up
// (verdicts = frames, reasons = frames received on known ports, port drops <= port rx), reject answers
// that parse back with the right addresses, and every event formatted as a JSON line that says the
// verdict.  Each input gets fresh pipelines (tables of 16 flows and 8 datagrams, so that the fuzzer
// reaches full tables, eviction and the fragment limits).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "dataplane/identity.hpp"
#include "fuzz_replay.hpp"
#include "rules/classifier_policy.hpp"

namespace {

using namespace tagwall;

struct World {
    World() { fuzz::use_small_pages(); }
    std::shared_ptr<const rules::RuleSet> rules = fuzz::compile_policy_text(fuzz::kFuzzPolicy, "fuzz-policy.yaml");
    std::shared_ptr<const dataplane::IdentityTable> ids = std::make_shared<const dataplane::IdentityTable>(*rules);
    std::shared_ptr<const rules::PolicyClassifier> cls = std::make_shared<const rules::PolicyClassifier>(rules, "trie");
};

World& world() {
    static World w;
    return w;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    World& w = world();
    fuzz::Capture cap = fuzz::read_capture(std::span<const uint8_t>(data, size), fuzz::kMaxReplayPackets);
    if (cap.packets.empty()) return 0;
    std::stable_sort(cap.packets.begin(), cap.packets.end(),
                     [](const fuzz::CapturedPacket& a, const fuzz::CapturedPacket& b) { return a.ts_ns < b.ts_ns; });
    const std::vector<dataplane::FrameRef> frames = fuzz::frames_of(cap);
    fuzz::TwinReplay twin(w.ids, w.cls, 1, (cap.sigfigs_field & 1) != 0);
    twin.run(frames, cap.packets, 0, frames.size(), *w.rules);
    FUZZ_CHECK(twin.decided() == frames.size(), "{} of {} frames decided", twin.decided(), frames.size());
    return 0;
}
