// The running appliance (SPEC §5): DPDK ports opened from the config, one poll-mode worker per lcore,
// each with its own Pipeline, and the queue plan that keeps both directions of a flow on one worker.
//
// Concurrency contract.  An Appliance is built, started, stopped and destroyed by the control thread
// (the EAL's main lcore).  Between start() and stop() the workers run on their lcores and own their
// pipelines, queues and tx buffers; the control thread touches only the event rings (as their
// consumer), the published policy pointer, the per-worker request flags, and counters it reads without
// synchronisation for display (64-bit aligned loads on x86: a torn value is impossible, a slightly
// stale one is expected; the same holds for `tagwallctl flows`, which reads the flow tables live).
// Everything that allocates happens on the control side: the workers never allocate, lock, throw or log.
//
// Policy publication (SPEC §6) is RCU (dataplane/publisher.hpp): every worker reads the published
// pointer at the top of each poll iteration and adopts a new generation there, between bursts, so a
// packet is decided entirely by one rule set; it reports a quiescent state at the end of each
// iteration and is offline while it idle-sleeps.  publish() returns once every worker runs the new
// generation and a grace period has passed, and only then frees the old bundle.
//
// The queue plan (decided once, in the constructor, and printed by describe()):
//   - one worker: it polls queue 0 of every port and transmits on queue 0 of every port;
//   - W workers, every port capable of RSS with W rx and W tx queues: RSS with a symmetric key
//     (0x6d5a repeated: the Toeplitz hash then gives (a,b) and (b,a) the same value, so both directions
//     of a connection reach one worker) over IP addresses and TCP/UDP/SCTP ports; worker w polls rx
//     queue w of every port and transmits on tx queue w of every port.  IP fragments are hashed on
//     their addresses only (RTE_ETH_RSS_FRAG_*), so a datagram's fragments meet on one worker, but a
//     first fragment whose ports are hashed by the NIC may land elsewhere (said plainly in docs);
//   - W workers without RSS in wire mode: each wire pair is given to one worker, which owns both of
//     its ports (queue 0), so a flow's two directions meet there; at most one worker per pair;
//   - W workers without RSS in switch mode: one worker (any port can reach any other, so no port
//     can be given to another worker), with a warning.
//
// The worker loop, per poll: for each (port, queue) it owns: rx burst (32) -> Pipeline::process ->
// per verdict: allow to its port's tx buffer (a flood goes to every other port, the same mbuf with its
// reference count raised), reject: the answer built into a fresh mbuf and sent out of the ingress port,
// drop: freed.  Then every tx buffer is flushed; what a full tx queue refuses is freed and counted.
// An idle worker (nothing received for kIdlePollsBeforeSleep polls) sleeps kIdleSleepUs between polls,
// so that a VM with few cores is not starved by a spinning lcore; traffic ends the sleep at the next
// poll.  Flows and fragments are aged on every poll, in bounded batches.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/config.hpp"
#include "dataplane/events.hpp"
#include "dataplane/pipeline.hpp"
#include "dataplane/policy_bundle.hpp"
#include "dataplane/publisher.hpp"
#include "rules/classifier_policy.hpp"

struct rte_mempool;

namespace tagwall::dataplane {

// A port as opened.
struct PortInfo {
    std::string name;        // from the config
    std::string dpdk_name;   // the ethdev's name
    uint16_t port_id = 0;    // DPDK port id
    PortRole role = PortRole::workload;
    uint16_t rx_queues = 1, tx_queues = 1;
    bool rss = false;
    std::string driver;
    std::string mac;         // "52:54:00:..."
};

// One worker's share of the queues.
struct WorkerPlan {
    unsigned lcore = 0;
    std::vector<std::pair<uint8_t, uint16_t>> rx;  // (port index, rx queue)
    std::vector<uint16_t> tx_queue;                 // per port index: the tx queue this worker uses
};

// Counters of one port that the worker loop keeps beyond the pipeline's (pipeline.hpp PortCounters).
struct WorkerPortCounters {
    uint64_t tx_sent = 0;         // frames the PMD accepted
    uint64_t tx_full = 0;         // frames the tx queue refused (freed)
    uint64_t rejects_sent = 0;    // reject answers sent out of this port
};

struct WorkerCounters {
    uint64_t polls = 0;
    uint64_t busy_polls = 0;          // polls that received something
    uint64_t rx_multiseg = 0;         // frames in several segments (decided on their first segment only)
    uint64_t flood_copies = 0;
    uint64_t reject_no_mbuf = 0;      // a reject answer not sent: the mbuf pool was empty
    uint64_t events_lost = 0;
};

// One port's counters summed over the workers (for display: see the concurrency contract).
struct PortTotals {
    uint64_t rx = 0, tx = 0, dropped = 0, tx_full = 0, rejects = 0;
};

struct ApplianceOptions {
    std::string engine = "trie";
    uint32_t generation = 1;
    std::string policy_file;  // where the first policy came from (PolicyBundle::file)
};


class Appliance {
public:
    static constexpr uint16_t kBurst = 32;
    static constexpr uint16_t kRxDesc = 1024, kTxDesc = 1024;
    static constexpr uint64_t kIdlePollsBeforeSleep = 1000;
    static constexpr unsigned kIdleSleepUs = 50;

    // Opens and configures every port of `config` (the EAL must be running with the config's
    // devices), plans the queues and builds one Pipeline per worker on `rules`.  Throws
    // std::runtime_error with the port's name on any failure (ports already opened are closed).
    Appliance(const ApplianceConfig& config, std::shared_ptr<const rules::RuleSet> rules,
              const ApplianceOptions& options = {});
    ~Appliance();
    Appliance(const Appliance&) = delete;
    Appliance& operator=(const Appliance&) = delete;

    // Starts the ports and launches the workers on their lcores.
    void start();
    // Asks the workers to stop, waits for them, stops the ports.  Idempotent.
    void stop();
    bool running() const noexcept { return running_; }

    // --- policy and requests (control side; while running, they wait for the workers) ---
    // Publishes `next` (its generation must differ from the current one's) and frees the old bundle.
    PublishTiming publish(std::unique_ptr<PolicyBundle> next);
    const PolicyBundle& policy() const noexcept { return publisher_->policy(); }
    const std::string& engine() const noexcept { return engine_; }
    // Asks every worker to empty its connection table; returns how many connections were removed.
    uint64_t flush_flows();

    // What was planned: ports, queues, workers, warnings about fallbacks (one line each).
    std::vector<std::string> describe() const;
    const std::vector<std::string>& warnings() const noexcept { return warnings_; }

    // The consumer side of each worker's event ring.
    size_t worker_count() const noexcept { return workers_.size(); }
    EventRing& events(size_t worker) noexcept { return *workers_[worker]->events; }
    const Pipeline& pipeline(size_t worker) const noexcept { return *workers_[worker]->pipeline; }
    const WorkerCounters& worker_counters(size_t worker) const noexcept { return workers_[worker]->counters; }
    const WorkerPortCounters& worker_port_counters(size_t worker, size_t port) const noexcept {
        return workers_[worker]->port_counters[port];
    }
    const std::vector<PortInfo>& ports() const noexcept { return ports_; }
    PortTotals port_totals(size_t port) const noexcept;
    const rules::RuleSet& ruleset() const noexcept { return *policy().rules; }
    uint64_t events_lost(size_t worker) const noexcept { return workers_[worker]->events->lost(); }
    unsigned worker_lcore(size_t worker) const noexcept { return workers_[worker]->plan.lcore; }
    uint32_t worker_generation(size_t worker) const noexcept { return publisher_->seen(static_cast<unsigned>(worker)); }
    bool rss() const noexcept { return rss_; }
    bool l2_switch() const noexcept { return l2_switch_; }
    // CLOCK_MONOTONIC nanoseconds when the workers' clock read 0 (events carry the workers' clock).
    uint64_t clock_origin_ns() const noexcept { return clock_origin_ns_; }

private:
    struct Worker {
        WorkerPlan plan;
        std::unique_ptr<EventRing> events;
        std::unique_ptr<Pipeline> pipeline;
        std::vector<WorkerPortCounters> port_counters;
        WorkerCounters counters;
        Appliance* owner = nullptr;
        unsigned index = 0;
        std::atomic<uint64_t> flush_asked{0};  // control increments: empty the connection table
        std::atomic<uint64_t> flush_done{0};   // worker stores flush_asked's value when done
        std::atomic<uint64_t> flushed{0};      // connections removed by the last flush
        std::atomic<bool> exited{false};       // worker stores true (release) as its last act; stop() acquires
    };
    static int worker_entry(void* arg);
    void run_worker(Worker& w);
    void plan_queues(const ApplianceConfig& config);
    void close_ports() noexcept;

    std::unique_ptr<PolicyPublisher> publisher_;
    std::string engine_;
    std::vector<PortInfo> ports_;
    std::vector<std::unique_ptr<Worker>> workers_;
    std::vector<std::string> warnings_;
    rte_mempool* pool_ = nullptr;
    bool l2_switch_ = false;
    bool rss_ = false;
    bool running_ = false;
    bool ports_started_ = false;
    std::atomic<bool> stop_{false};
    uint64_t tsc_origin_ = 0;
    uint64_t clock_origin_ns_ = 0;
    uint64_t tsc_hz_ = 0;
};

}  // namespace tagwall::dataplane
