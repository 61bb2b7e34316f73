// fuzz-policy-pcap: a policy and a capture in one input, split at the first "\n#pcap\n" (policy text
// before it, pcap bytes after).  The capture is replayed (tests/fuzz/fuzz_replay.hpp: two pipelines, as
// two workers of one PolicyPublisher) under the fixed policy kFuzzPolicy as generation 1; after the
// first half of its packets the fuzzed policy is loaded, compiled and published as generation 2 through
// PolicyPublisher::publish() (the stopped-worker path the appliance takes for stopped workers: swap,
// then each pipeline adopts the published bundle between bursts); then the second half is replayed.
//
// Invariants, beyond the replay's own (tests/fuzz/fuzz_replay.hpp):
//   - a policy that does not load has at least one error and changes nothing (generation 1 stays
//     published and decides the rest); one that loads compiles without throwing (RuleSet::compile may
//     only throw on policies the loader did not validate);
//   - after the swap the pipelines run generation 2 and count into its bundle (one counter per rule);
//     every verdict's rule is a rule of the new policy;
//   - continuous verification (SPEC §6): a packet that passes as `established` after the swap belongs
//     to an entry of generation 2 whose connection the new policy allows (its initiator's key classified
//     with both ends resolved through the new identity table).  Later fragments, which follow their
//     first fragment's decision through the fragment table, are not connection packets and are skipped.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "dataplane/identity.hpp"
#include "dataplane/policy_bundle.hpp"
#include "dataplane/publisher.hpp"
#include "fuzz_replay.hpp"
#include "rules/classifier_policy.hpp"

namespace {

using namespace tagwall;

constexpr std::string_view kSeparator = "\n#pcap\n";

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

// The fuzzed policy compiled, or null when it does not load.
std::shared_ptr<const rules::PolicyClassifier> compile_fuzzed(const std::string& text) {
    const rules::LoadResult loaded = rules::load_policy_text(text, "fuzzed.yaml");
    if (!loaded.policy) {
        FUZZ_CHECK(loaded.diagnostics.error_count() > 0, "a policy refused without an error");
        return nullptr;
    }
    std::shared_ptr<const rules::RuleSet> rs;
    try {
        rs = rules::RuleSet::compile(*loaded.policy);
    } catch (const std::exception& e) {
        FUZZ_CHECK(false, "RuleSet::compile threw on a policy the loader accepted: {}", e.what());
    }
    return std::make_shared<const rules::PolicyClassifier>(rs, "trie");
}

// The SPEC §6 check for the packets of [begin, end) that passed as `established` under generation 2.
void check_reverified(dataplane::Pipeline& pipe, const dataplane::IdentityTable& ids,
                      const rules::PolicyClassifier& cls, std::span<const dataplane::FrameRef> frames,
                      const std::vector<fuzz::CapturedPacket>& packets, size_t begin,
                      const std::vector<dataplane::Verdict>& verdicts) {
    for (size_t i = 0; i < verdicts.size(); ++i) {
        if (verdicts[i].reason != dataplane::Reason::established) continue;
        const dataplane::FrameRef& f = frames[begin + i];
        dataplane::ParsedPacket p;
        if (dataplane::parse_frame(std::span<const uint8_t>(f.data, f.length), p)) continue;
        if (p.fragment && !p.first_fragment) continue;
        const dataplane::FlowHandle h = pipe.conntrack().find(p, p.vlan, packets.back().ts_ns);
        if (h == dataplane::kNoFlow) continue;  // closed or expired since
        const dataplane::FlowEntry& e = pipe.conntrack().table().entry(h);
        FUZZ_CHECK(e.generation == 2, "packet {} passed on an entry of generation {} after the swap", begin + i,
                   e.generation);
        const rules::PacketKey k = dataplane::initiator_key(e);
        const rules::Decision d = cls.classify(k, ids.resolve(k.src), ids.resolve(k.dst));
        FUZZ_CHECK(d.action == rules::Action::allow, "packet {} passed as established on a connection the new "
                   "policy does not allow (rule {})", begin + i, d.rule);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    World& w = world();
    const std::string_view all(reinterpret_cast<const char*>(data), size);
    const size_t cut = all.find(kSeparator);
    if (cut == std::string_view::npos) return 0;
    const std::string policy_text(all.substr(0, cut));
    const auto pcap = std::span<const uint8_t>(data + cut + kSeparator.size(), size - cut - kSeparator.size());
    fuzz::Capture cap = fuzz::read_capture(pcap, fuzz::kMaxReplayPackets);
    if (cap.packets.empty()) return 0;
    std::stable_sort(cap.packets.begin(), cap.packets.end(),
                     [](const fuzz::CapturedPacket& a, const fuzz::CapturedPacket& b) { return a.ts_ns < b.ts_ns; });
    const std::vector<dataplane::FrameRef> frames = fuzz::frames_of(cap);

    // Generation 1, published to the two pipelines as workers 0 and 1.
    dataplane::PolicyPublisher pub(dataplane::PolicyBundle::make(w.cls, 1, 2, "fuzz-policy.yaml"), 2);
    fuzz::TwinReplay twin(w.ids, w.cls, 1, (cap.sigfigs_field & 1) != 0);
    twin.a().adopt(pub.policy(), 0);
    twin.b().adopt(pub.policy(), 1);
    const size_t half = frames.size() / 2;
    twin.run(frames, cap.packets, 0, half, *w.rules);

    const dataplane::PolicyBundle* before = &pub.policy();
    const auto next = compile_fuzzed(policy_text);
    if (!next) {
        twin.run(frames, cap.packets, half, frames.size(), *w.rules);
        FUZZ_CHECK(&pub.policy() == before && pub.policy().generation == 1 && twin.a().generation() == 1,
                   "a policy that did not load changed the published one");
        return 0;
    }
    pub.publish(dataplane::PolicyBundle::make(next, 2, 2, "fuzzed.yaml"), false);
    twin.a().adopt(pub.policy(), 0);
    twin.b().adopt(pub.policy(), 1);
    const rules::RuleSet& rs = next->ruleset();
    FUZZ_CHECK(twin.a().generation() == 2 && twin.b().generation() == 2, "the pipelines did not adopt generation 2");
    FUZZ_CHECK(twin.a().rule_counters().size() == rs.rules().size(), "{} rule counters for {} rules",
               twin.a().rule_counters().size(), rs.rules().size());
    const auto& ids = *pub.policy().identity;
    const auto after = twin.run(frames, cap.packets, half, frames.size(), rs);
    check_reverified(twin.a(), ids, *next, frames, cap.packets, half, after);
    return 0;
}
