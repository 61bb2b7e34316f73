// The running appliance: ports, queue plan, worker lcores.  See appliance.hpp.
#include "dataplane/appliance.hpp"

#include <time.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <stdexcept>

#include <fmt/format.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_malloc.h>
#include <rte_mempool.h>
#include <rte_pause.h>

#include "dataplane/identity.hpp"

namespace tagwall::dataplane {

namespace {

__extension__ typedef unsigned __int128 uint128_t;

uint64_t monotonic_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// The ethdev name a port's devargs create: the PCI address, or the vdev name before the first ','.
std::string dpdk_name_of(const std::string& devargs) {
    const auto comma = devargs.find(',');
    return devargs.substr(0, comma);
}

std::string mac_text(const rte_ether_addr& a) {
    return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", a.addr_bytes[0], a.addr_bytes[1], a.addr_bytes[2],
                       a.addr_bytes[3], a.addr_bytes[4], a.addr_bytes[5]);
}

[[noreturn]] void port_error(const PortInfo& p, const char* what, int rc) {
    throw std::runtime_error(fmt::format("port {} ({}): {} failed: {}", p.name, p.dpdk_name, what, rte_strerror(-rc)));
}

// A tx buffer per (worker, port): frames gathered during a poll, sent in one burst.
struct TxBuffer {
    static constexpr uint16_t kSize = 2 * Appliance::kBurst;
    std::array<rte_mbuf*, kSize> frames{};
    uint16_t count = 0;
};

}  // namespace

Appliance::Appliance(const ApplianceConfig& config, std::shared_ptr<const rules::RuleSet> rules,
                     const ApplianceOptions& options)
    : engine_(options.engine), l2_switch_(config.dataplane.forwarding == ForwardingMode::l2_switch) {
    const auto& dp = config.dataplane;
    if (dp.ports.empty()) throw std::runtime_error("no ports configured");
    if (dp.ports.size() > Pipeline::kMaxPorts) throw std::runtime_error("more than 64 ports");
    try {
        for (const PortSpec& spec : dp.ports) {
            PortInfo p;
            p.name = spec.name;
            p.dpdk_name = dpdk_name_of(spec.devargs);
            p.role = spec.role;
            if (rte_eth_dev_get_port_by_name(p.dpdk_name.c_str(), &p.port_id) != 0)
                throw std::runtime_error(fmt::format("port {}: no DPDK device '{}' (devargs \"{}\" at {}): is the "
                                                     "interface there, and is the driver built into DPDK?",
                                                     p.name, p.dpdk_name, spec.devargs, spec.pos.str()));
            ports_.push_back(std::move(p));
        }
        plan_queues(config);

        // The mbuf pool: every descriptor of every queue, the workers' bursts and tx buffers, the
        // per-lcore caches, and room for reject answers and floods in flight.
        size_t mbufs = 4096;
        for (const PortInfo& p : ports_) mbufs += size_t{p.rx_queues} * kRxDesc + size_t{p.tx_queues} * kTxDesc;
        mbufs += workers_.size() * (kBurst + ports_.size() * TxBuffer::kSize + 512);
        const unsigned cache = 256;
        pool_ = rte_pktmbuf_pool_create("tagwall_mbufs", static_cast<unsigned>(mbufs), cache, 0,
                                        RTE_MBUF_DEFAULT_BUF_SIZE, static_cast<int>(rte_socket_id()));
        if (pool_ == nullptr)
            throw std::runtime_error(fmt::format("cannot create a pool of {} mbufs: {}", mbufs, rte_strerror(rte_errno)));

        for (PortInfo& p : ports_) {
            rte_eth_dev_info info{};
            int rc = rte_eth_dev_info_get(p.port_id, &info);
            if (rc != 0) port_error(p, "rte_eth_dev_info_get", rc);
            p.driver = info.driver_name != nullptr ? info.driver_name : "?";
            rte_eth_conf conf{};
            std::vector<uint8_t> key;
            if (p.rss) {
                key.resize(info.hash_key_size != 0 ? info.hash_key_size : 40);
                for (size_t i = 0; i < key.size(); ++i) key[i] = (i % 2 == 0) ? 0x6d : 0x5a;
                conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
                conf.rx_adv_conf.rss_conf.rss_key = key.data();
                conf.rx_adv_conf.rss_conf.rss_key_len = static_cast<uint8_t>(key.size());
                conf.rx_adv_conf.rss_conf.rss_hf =
                    (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP | RTE_ETH_RSS_SCTP) & info.flow_type_rss_offloads;
            }
            rc = rte_eth_dev_configure(p.port_id, p.rx_queues, p.tx_queues, &conf);
            if (rc != 0) port_error(p, "rte_eth_dev_configure", rc);
            uint16_t rxd = kRxDesc, txd = kTxDesc;
            rc = rte_eth_dev_adjust_nb_rx_tx_desc(p.port_id, &rxd, &txd);
            if (rc != 0) port_error(p, "rte_eth_dev_adjust_nb_rx_tx_desc", rc);
            int socket = rte_eth_dev_socket_id(p.port_id);
            if (socket < 0) socket = SOCKET_ID_ANY;
            for (uint16_t q = 0; q < p.rx_queues; ++q) {
                rc = rte_eth_rx_queue_setup(p.port_id, q, rxd, static_cast<unsigned>(socket), nullptr, pool_);
                if (rc != 0) port_error(p, "rte_eth_rx_queue_setup", rc);
            }
            for (uint16_t q = 0; q < p.tx_queues; ++q) {
                rc = rte_eth_tx_queue_setup(p.port_id, q, txd, static_cast<unsigned>(socket), nullptr);
                if (rc != 0) port_error(p, "rte_eth_tx_queue_setup", rc);
            }
            rte_ether_addr mac{};
            if (rte_eth_macaddr_get(p.port_id, &mac) == 0) p.mac = mac_text(mac);
        }

        // The first policy generation, and one pipeline per worker on it.
        publisher_ = std::make_unique<PolicyPublisher>(
            PolicyBundle::make(std::make_shared<const rules::PolicyClassifier>(std::move(rules), options.engine),
                               options.generation, workers_.size(), options.policy_file),
            static_cast<unsigned>(workers_.size()));
        const PolicyBundle& first = publisher_->policy();
        const auto& identity = first.identity;
        const auto& classifier = first.classifier;
        std::vector<PortConfig> pipeline_ports(ports_.size());
        for (size_t i = 0; i < ports_.size(); ++i) pipeline_ports[i].role = ports_[i].role;
        if (!l2_switch_) {
            auto index_of = [&](const std::string& name) {
                for (size_t i = 0; i < ports_.size(); ++i)
                    if (ports_[i].name == name) return static_cast<uint8_t>(i);
                throw std::runtime_error(fmt::format("pair names an unknown port '{}'", name));
            };
            for (const auto& [a, b] : dp.pairs) {
                const uint8_t ia = index_of(a), ib = index_of(b);
                pipeline_ports[ia].peer = ib;
                pipeline_ports[ib].peer = ia;
            }
        }
        const uint32_t per_worker =
            std::max<uint32_t>(FlowsConfig::kMinCapacity, dp.flows.capacity / static_cast<uint32_t>(workers_.size()));
        for (auto& w : workers_) {
            w->events = std::make_unique<EventRing>(8192);
            PipelineConfig pc;
            pc.flows.capacity = per_worker;
            pc.flows.worker = static_cast<uint16_t>(w->index);
            pc.flows.timeouts = dp.flows.timeouts;
            pc.l2_switch = l2_switch_;
            pc.events = w->events.get();
            w->pipeline = std::make_unique<Pipeline>(identity, classifier, options.generation, pipeline_ports, pc);
            w->pipeline->adopt(first, w->index);  // count into the bundle's counters from the start
            w->port_counters.resize(ports_.size());
        }
    } catch (...) {
        close_ports();
        throw;
    }
}

Appliance::~Appliance() {
    stop();
    close_ports();
}

void Appliance::plan_queues(const ApplianceConfig& config) {
    const unsigned wanted = std::max(1u, config.dataplane.workers);
    std::vector<unsigned> lcores;
    unsigned lcore = 0;
    RTE_LCORE_FOREACH_WORKER(lcore) lcores.push_back(lcore);
    if (lcores.empty())
        throw std::runtime_error("the EAL has no worker lcore (tagwall needs lcore 0 for control and one per worker)");
    unsigned workers = std::min<unsigned>(wanted, static_cast<unsigned>(lcores.size()));
    if (workers < wanted)
        warnings_.push_back(fmt::format("{} workers configured but only {} worker lcores: running {}", wanted,
                                        lcores.size(), workers));

    bool all_rss = workers > 1;
    for (PortInfo& p : ports_) {
        rte_eth_dev_info info{};
        const int rc = rte_eth_dev_info_get(p.port_id, &info);
        if (rc != 0) port_error(p, "rte_eth_dev_info_get", rc);
        if (info.flow_type_rss_offloads == 0 || info.max_rx_queues < workers || info.max_tx_queues < workers)
            all_rss = false;
    }

    auto make_worker = [&](unsigned index) {
        auto w = std::make_unique<Worker>();
        w->owner = this;
        w->index = index;
        w->plan.lcore = lcores[index];
        w->plan.tx_queue.assign(ports_.size(), 0);
        return w;
    };

    if (workers == 1 || all_rss) {
        rss_ = workers > 1;
        for (PortInfo& p : ports_) {
            p.rss = rss_;
            p.rx_queues = p.tx_queues = static_cast<uint16_t>(workers);
        }
        for (unsigned i = 0; i < workers; ++i) {
            auto w = make_worker(i);
            for (size_t port = 0; port < ports_.size(); ++port) {
                w->plan.rx.emplace_back(static_cast<uint8_t>(port), static_cast<uint16_t>(i));
                w->plan.tx_queue[port] = static_cast<uint16_t>(i);
            }
            workers_.push_back(std::move(w));
        }
        return;
    }

    if (config.dataplane.forwarding == ForwardingMode::l2_switch) {
        warnings_.push_back(fmt::format("{} workers configured, but not every port can spread flows with RSS over {} "
                                        "queues: in switch mode any port reaches any other, so one worker runs",
                                        workers, workers));
        auto w = make_worker(0);
        for (size_t port = 0; port < ports_.size(); ++port) w->plan.rx.emplace_back(static_cast<uint8_t>(port), 0);
        workers_.push_back(std::move(w));
        return;
    }

    // Wire mode without RSS: a pair per worker (round robin), each owning both of its ports.
    const auto& pairs = config.dataplane.pairs;
    const unsigned used = std::min<unsigned>(workers, static_cast<unsigned>(std::max<size_t>(1, pairs.size())));
    if (used < workers)
        warnings_.push_back(fmt::format("{} workers configured, but without RSS each wire pair is one worker's: "
                                        "running {} ({} pair{})",
                                        workers, used, pairs.size(), pairs.size() == 1 ? "" : "s"));
    for (unsigned i = 0; i < used; ++i) workers_.push_back(make_worker(i));
    auto index_of = [&](const std::string& name) -> size_t {
        for (size_t i = 0; i < ports_.size(); ++i)
            if (ports_[i].name == name) return i;
        throw std::runtime_error(fmt::format("pair names an unknown port '{}'", name));
    };
    std::vector<bool> owned(ports_.size(), false);
    for (size_t k = 0; k < pairs.size(); ++k) {
        Worker& w = *workers_[k % used];
        for (const auto& name : {pairs[k].first, pairs[k].second}) {
            const size_t port = index_of(name);
            if (!owned[port]) w.plan.rx.emplace_back(static_cast<uint8_t>(port), 0);
            owned[port] = true;
        }
    }
    for (size_t port = 0; port < ports_.size(); ++port)  // unpaired ports: received and dropped by worker 0
        if (!owned[port]) workers_[0]->plan.rx.emplace_back(static_cast<uint8_t>(port), 0);
}

std::vector<std::string> Appliance::describe() const {
    std::vector<std::string> out;
    for (const PortInfo& p : ports_)
        out.push_back(fmt::format("port {} ({}, {}): dpdk port {} driver {} mac {} rx/tx queues {}/{}{}", p.name,
                                  to_string(p.role), p.dpdk_name, p.port_id, p.driver, p.mac, p.rx_queues, p.tx_queues,
                                  p.rss ? " rss(symmetric)" : ""));
    for (const auto& w : workers_) {
        std::string polls;
        for (const auto& [port, q] : w->plan.rx)
            polls += fmt::format("{}{}:{}", polls.empty() ? "" : " ", ports_[port].name, q);
        out.push_back(fmt::format("worker {} on lcore {}: polls {}", w->index, w->plan.lcore, polls));
    }
    return out;
}

void Appliance::start() {
    if (running_) return;
    for (PortInfo& p : ports_) {
        const int rc = rte_eth_dev_start(p.port_id);
        if (rc != 0) port_error(p, "rte_eth_dev_start", rc);
        ports_started_ = true;
        const int prc = rte_eth_promiscuous_enable(p.port_id);  // an inline appliance sees every frame
        if (prc != 0 && prc != -ENOTSUP)
            warnings_.push_back(fmt::format("port {}: promiscuous mode: {}", p.name, rte_strerror(-prc)));
    }
    tsc_hz_ = rte_get_tsc_hz();
    tsc_origin_ = rte_rdtsc();
    clock_origin_ns_ = monotonic_ns();
    stop_.store(false);
    for (auto& w : workers_) {
        const int rc = rte_eal_remote_launch(&Appliance::worker_entry, w.get(), w->plan.lcore);
        if (rc != 0) {
            stop();
            throw std::runtime_error(fmt::format("cannot launch worker {} on lcore {}: {}", w->index, w->plan.lcore,
                                                 rte_strerror(-rc)));
        }
        running_ = true;
    }
}

void Appliance::stop() {
    if (running_) {
        stop_.store(true);
        for (auto& w : workers_) {
            rte_eal_wait_lcore(w->plan.lcore);
            // rte_eal_wait_lcore() joins inside librte_eal, where ThreadSanitizer cannot see it; this
            // acquire of the worker's last store makes the join visible to it (and costs nothing).
            (void)w->exited.load(std::memory_order_acquire);
        }
        running_ = false;
    }
    if (ports_started_) {
        for (PortInfo& p : ports_) rte_eth_dev_stop(p.port_id);
        ports_started_ = false;
    }
}

void Appliance::close_ports() noexcept {
    for (PortInfo& p : ports_) rte_eth_dev_close(p.port_id);
    ports_.clear();
    if (pool_ != nullptr) {
        rte_mempool_free(pool_);
        pool_ = nullptr;
    }
}

PublishTiming Appliance::publish(std::unique_ptr<PolicyBundle> next) {
    const PublishTiming t = publisher_->publish(std::move(next), running_);
    if (!running_)  // stopped workers adopt here, on the control thread
        for (auto& w : workers_) w->pipeline->adopt(publisher_->policy(), w->index);
    return t;
}

uint64_t Appliance::flush_flows() {
    uint64_t total = 0;
    for (auto& w : workers_) {
        if (!running_) {
            total += w->pipeline->flush_flows();
            continue;
        }
        const uint64_t ask = w->flush_asked.fetch_add(1) + 1;
        while (w->flush_done.load(std::memory_order_acquire) != ask) rte_pause();
        total += w->flushed.load();
    }
    return total;
}

PortTotals Appliance::port_totals(size_t port) const noexcept {
    PortTotals t;
    for (const auto& w : workers_) {
        const PortCounters& c = w->pipeline->port_counters(static_cast<uint8_t>(port));
        t.rx += c.rx;
        t.dropped += c.dropped;
        const WorkerPortCounters& wc = w->port_counters[port];
        t.tx += wc.tx_sent;
        t.tx_full += wc.tx_full;
        t.rejects += wc.rejects_sent;
    }
    return t;
}

int Appliance::worker_entry(void* arg) {
    auto* w = static_cast<Worker*>(arg);
    w->owner->run_worker(*w);
    w->exited.store(true, std::memory_order_release);  // the worker's last access to its state: see stop()
    return 0;
}

void Appliance::run_worker(Worker& w) {
    Pipeline& pipe = *w.pipeline;
    const size_t nports = ports_.size();
    std::array<rte_mbuf*, kBurst> rx{};
    std::array<FrameRef, kBurst> frames{};
    std::array<Verdict, kBurst> verdicts{};
    // Allocated before the loop (the worker's only allocation, at start): one tx buffer per port.
    std::vector<TxBuffer> tx(nports);
    std::vector<uint16_t> port_ids(nports);
    for (size_t i = 0; i < nports; ++i) port_ids[i] = ports_[i].port_id;
    const uint64_t ns_per_cycle_q32 = (uint64_t{1'000'000'000} << 32) / tsc_hz_;
    auto now_ns = [&]() -> uint64_t {
        return static_cast<uint64_t>((static_cast<uint128_t>(rte_rdtsc() - tsc_origin_) * ns_per_cycle_q32) >> 32);
    };
    auto flush = [&](size_t port) {
        TxBuffer& b = tx[port];
        if (b.count == 0) return;
        const uint16_t sent = rte_eth_tx_burst(port_ids[port], w.plan.tx_queue[port], b.frames.data(), b.count);
        w.port_counters[port].tx_sent += sent;
        if (sent < b.count) {
            w.port_counters[port].tx_full += b.count - sent;
            rte_pktmbuf_free_bulk(b.frames.data() + sent, b.count - sent);
        }
        b.count = 0;
    };
    auto enqueue = [&](size_t port, rte_mbuf* m) {
        TxBuffer& b = tx[port];
        if (b.count == TxBuffer::kSize) flush(port);
        b.frames[b.count++] = m;
    };

    // Sends m out of `out`: a port, kFlood (every port but in_port: the same mbuf, its reference count
    // raised) or anything else (nowhere: freed).
    auto send = [&](rte_mbuf* m, uint8_t out, size_t in_port) {
        if (out < nports) {
            enqueue(out, m);
        } else if (out == kFlood && nports >= 2) {
            rte_mbuf_refcnt_update(m, static_cast<int16_t>(nports - 2));
            for (size_t o = 0; o < nports; ++o)
                if (o != in_port) enqueue(o, m);
            w.counters.flood_copies += nports - 1;
        } else {
            rte_pktmbuf_free(m);
        }
    };
    // A revoked TCP connection is reset towards its other end too (SPEC §6: "an RST both ways").
    auto send_peer_rst = [&](const FrameRef& frame, uint64_t now) {
        rte_mbuf* rst = rte_pktmbuf_alloc(pool_);
        if (rst == nullptr) {
            ++w.counters.reject_no_mbuf;
            return;
        }
        uint8_t out = kNoPort;
        const size_t len = pipe.revoke_peer_rst(
            frame, now, std::span<uint8_t>(rte_pktmbuf_mtod(rst, uint8_t*), rte_pktmbuf_tailroom(rst)), out);
        if (len == 0) {
            rte_pktmbuf_free(rst);
            return;
        }
        rst->data_len = static_cast<uint16_t>(len);
        rst->pkt_len = static_cast<uint32_t>(len);
        send(rst, out, frame.port);
    };

    PolicyPublisher& pub = *publisher_;
    pub.register_worker(w.index);
    uint64_t idle = 0;
    while (!stop_.load(std::memory_order_relaxed)) {
        ++w.counters.polls;
        // Requests from the control thread, between bursts: a new policy generation, a flush.
        const PolicyBundle* policy = pub.current();
        if (policy->generation != pipe.generation()) {
            pipe.adopt(*policy, w.index);
            pub.adopted(w.index, policy->generation);
        }
        if (const uint64_t ask = w.flush_asked.load(std::memory_order_acquire);
            ask != w.flush_done.load(std::memory_order_relaxed)) {
            w.flushed.store(pipe.flush_flows(), std::memory_order_relaxed);
            w.flush_done.store(ask, std::memory_order_release);
        }
        bool got = false;
        for (const auto& [port, queue] : w.plan.rx) {
            const uint16_t n = rte_eth_rx_burst(port_ids[port], queue, rx.data(), kBurst);
            if (n == 0) continue;
            got = true;
            const uint64_t now = now_ns();
            for (uint16_t i = 0; i < n; ++i) {
                rte_mbuf* m = rx[i];
                if (m->nb_segs > 1) ++w.counters.rx_multiseg;
                frames[i] = {rte_pktmbuf_mtod(m, const uint8_t*), m->data_len, port};
            }
            pipe.process(std::span<const FrameRef>(frames.data(), n), now, std::span<Verdict>(verdicts.data(), n));
            for (uint16_t i = 0; i < n; ++i) {
                rte_mbuf* m = rx[i];
                const Verdict& v = verdicts[i];
                switch (v.action) {
                case rules::Action::allow: send(m, v.out_port, port); break;
                case rules::Action::reject: {
                    rte_mbuf* answer = rte_pktmbuf_alloc(pool_);
                    if (answer == nullptr) {
                        ++w.counters.reject_no_mbuf;
                    } else {
                        const size_t len = pipe.reject_answer(
                            frames[i], now,
                            std::span<uint8_t>(rte_pktmbuf_mtod(answer, uint8_t*), rte_pktmbuf_tailroom(answer)));
                        if (len == 0) {
                            rte_pktmbuf_free(answer);
                        } else {
                            answer->data_len = static_cast<uint16_t>(len);
                            answer->pkt_len = static_cast<uint32_t>(len);
                            ++w.port_counters[port].rejects_sent;
                            enqueue(port, answer);
                        }
                    }
                    if (v.reason == Reason::revoked) send_peer_rst(frames[i], now);
                    rte_pktmbuf_free(m);
                    break;
                }
                case rules::Action::drop: rte_pktmbuf_free(m); break;
                }
            }
            ++w.counters.busy_polls;
        }
        for (size_t port = 0; port < nports; ++port) flush(port);
        pub.quiescent(w.index);  // nothing from this iteration's policy is held now
        if (got) {
            idle = 0;
        } else {
            pipe.expire(now_ns());  // age flows and fragments while the wire is quiet too
            if (++idle >= kIdlePollsBeforeSleep) {
                pub.offline(w.index);
                rte_delay_us_sleep(kIdleSleepUs);
                pub.online(w.index);
            }
        }
    }
    pub.unregister_worker(w.index);
    for (size_t port = 0; port < nports; ++port) flush(port);
    w.counters.events_lost = w.events->lost();
}

}  // namespace tagwall::dataplane
