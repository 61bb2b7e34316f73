// RCU publication (dataplane/publisher.hpp) under load: two worker threads decide new connections
// while the control thread swaps between a policy that allows them and one that rejects them, 1000
// times.  Every verdict must be the one its generation's policy gives (a packet is never decided by a
// mix, or by a generation other than the one the worker reports), every publish must return only once
// every worker runs the new generation, and no frame may go undecided.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "dataplane/frames.hpp"
#include "dataplane/pipeline.hpp"
#include "dataplane/publisher.hpp"
#include "rules/policy_loader.hpp"

using namespace tagwall::dataplane;
using tagwall::rules::Action;
using tagwall::test::Bytes;
using tagwall::test::Frame;
using tagwall::test::ip;
using tagwall::test::mac;

namespace {

std::shared_ptr<const tagwall::rules::PolicyClassifier> classifier(const char* action) {
    const std::string text = std::string(R"(version: 1
segments: [{name: lan, vlan: 0}]
endpoints:
  - {name: server, segment: lan, ip: [198.18.0.2], mac: "52:54:00:00:00:02", tags: {role: server}}
groups:
  servers: {tags: {role: server}}
  outside: {cidr: ["0.0.0.0/0"]}
services: {https: [tcp/443]}
rules:
  - {id: the-rule, from: outside, to: servers, services: [https], action: )") + action + R"(}
default: drop
)";
    auto loaded = tagwall::rules::load_policy_text(text, "t.yaml");
    REQUIRE(loaded.policy);
    return std::make_shared<const tagwall::rules::PolicyClassifier>(tagwall::rules::RuleSet::compile(*loaded.policy),
                                                                     "trie");
}

}  // namespace

TEST_CASE("publisher: 1000 swaps under load, every verdict from one whole generation", "[publisher][rcu]") {
    constexpr unsigned kWorkers = 2;
    constexpr uint32_t kSwaps = 1000;
    const auto allow = classifier("allow");
    const auto reject = classifier("reject");
    // Odd generations allow, even ones reject.
    PolicyPublisher pub(PolicyBundle::make(allow, 1, kWorkers, "a"), kWorkers);

    // SYNs of distinct connections from the uplink to the server, one set per worker.
    std::vector<std::vector<Bytes>> frames(kWorkers);
    for (unsigned w = 0; w < kWorkers; ++w)
        for (uint16_t i = 0; i < 256; ++i)
            frames[w].push_back(Frame()
                                    .eth(mac("02:00:00:00:00:01"), mac("52:54:00:00:00:02"))
                                    .ipv4(ip("198.19.0.1"), ip("198.18.0.2"))
                                    .tcp(static_cast<uint16_t>(10000 + w * 1000 + i), 443, {.seq = 1, .flags = kTcpSyn})
                                    .bytes());

    std::atomic<bool> stop{false};
    std::atomic<unsigned> registered{0};
    std::atomic<uint64_t> decided{0}, wrong{0}, undecided{0};
    std::vector<std::thread> threads;
    for (unsigned w = 0; w < kWorkers; ++w) {
        threads.emplace_back([&, w] {
            const PolicyBundle& first = pub.policy();
            PipelineConfig cfg;
            cfg.flows.capacity = 1024;  // full quickly: half-open entries are evicted, as under a SYN flood
            Pipeline pipe(first.identity, first.classifier, first.generation,
                          {{PortRole::workload, 1}, {PortRole::uplink, 0}}, cfg);
            pipe.adopt(first, w);
            pub.register_worker(w);
            ++registered;
            std::vector<FrameRef> refs(32);
            std::vector<Verdict> out(32);
            uint64_t now = 1'000'000'000, next = 0;
            while (!stop.load(std::memory_order_relaxed)) {
                const PolicyBundle* b = pub.current();
                if (b->generation != pipe.generation()) {
                    pipe.adopt(*b, w);
                    pub.adopted(w, b->generation);
                }
                for (size_t i = 0; i < refs.size(); ++i) {
                    const Bytes& f = frames[w][next++ % frames[w].size()];
                    refs[i] = {f.data(), static_cast<uint16_t>(f.size()), 1};
                    out[i] = Verdict{Action::drop, Reason::truncated_ethernet, -2, kNoPort};
                }
                now += 1'000'000;
                pipe.process(refs, now, out);
                const bool allows = pipe.generation() % 2 == 1;
                for (const Verdict& v : out) {
                    if (v.rule == -2) ++undecided;
                    // Allowing generation: a new connection by the rule, or a SYN again on one it opened (or
                    // one an older allowing generation opened, re-verified).  Rejecting generation: a new
                    // connection rejected by the rule, or one opened earlier and now revoked by it.
                    const bool ok = allows ? v.action == Action::allow &&
                                                 (v.reason == Reason::rule ? v.rule == 0 : v.reason == Reason::established)
                                           : v.action == Action::reject && v.rule == 0 &&
                                                 (v.reason == Reason::rule || v.reason == Reason::revoked);
                    if (!ok) ++wrong;
                    ++decided;
                }
                pub.quiescent(w);
                std::this_thread::yield();  // three busy threads may share two cores here
            }
            pub.unregister_worker(w);
        });
    }

    while (registered.load() < kWorkers) std::this_thread::yield();
    uint64_t not_acknowledged = 0;
    for (uint32_t g = 2; g <= kSwaps + 1; ++g) {
        pub.publish(PolicyBundle::make(g % 2 == 1 ? allow : reject, g, kWorkers, "swap"), true);
        for (unsigned w = 0; w < kWorkers; ++w)
            if (pub.seen(w) != g) ++not_acknowledged;
    }
    stop = true;
    for (auto& t : threads) t.join();

    CHECK(pub.policy().generation == kSwaps + 1);
    CHECK(not_acknowledged == 0);
    CHECK(decided.load() > 0);
    CHECK(undecided.load() == 0);
    CHECK(wrong.load() == 0);
}

TEST_CASE("publisher: with no worker running a publication swaps at once", "[publisher][rcu]") {
    PolicyPublisher pub(PolicyBundle::make(classifier("allow"), 1, 3, "a"), 3);
    const PublishTiming t = pub.publish(PolicyBundle::make(classifier("reject"), 2, 3, "b"), false);
    CHECK(pub.policy().generation == 2);
    CHECK(pub.seen(0) == 2);
    CHECK(pub.seen(2) == 2);
    CHECK(t.ack_ms >= 0);
    CHECK_THROWS(pub.publish(PolicyBundle::make(classifier("allow"), 2, 3, "c"), false));  // same generation
}
