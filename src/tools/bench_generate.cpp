// `tagwall-bench generate`: see bench_generate.hpp.
#include "tools/bench_generate.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_memcpy.h>

#include "dataplane/config.hpp"
#include "dataplane/eal.hpp"
#include "dataplane/parser.hpp"
#include "tools/bench_generate_frames.hpp"
#include "tools/bench_pipeline_traffic.hpp"

namespace tagwall::tools {
namespace {

using gen::Side;

constexpr uint16_t kBurst = 32;
constexpr uint16_t kRxDesc = 1024, kTxDesc = 1024;
constexpr double kQuietSeconds = 0.05;     // a trial's drain ends after this long without a frame ...
constexpr double kMaxDrainSeconds = 1.0;   // ... or after this long in any case
constexpr uint16_t kDeniedPort = 9;        // discard: a port the allow rules should not admit
constexpr std::array<uint16_t, 12> kImixLengths{60, 60, 60, 590, 60, 60, 590, 60, 60, 590, 1514, 590};

enum class Mix { established, imix, new_conn, denied };

// Frames a side sends in a loop, preloaded: frame i is bytes[offset[i], offset[i] + length[i]).
struct FrameStore {
    std::vector<uint8_t> bytes;
    std::vector<uint64_t> offset;
    std::vector<uint16_t> length;
    size_t next = 0;  // the next frame to send (the owning lcore's)

    void add(const gen::TcpSegment& s) {
        const size_t at = bytes.size();
        const size_t len = gen::frame_length(s.vlan, s.payload);
        bytes.resize(at + len);
        gen::write_segment(std::span<uint8_t>(bytes.data() + at, len), s);
        offset.push_back(at);
        length.push_back(static_cast<uint16_t>(len));
    }
    size_t size() const noexcept { return offset.size(); }
};

struct Pair {
    uint8_t index = 0;
    uint16_t w_port = 0, u_port = 0;  // DPDK ports facing the device's workload / uplink port
    uint16_t rx_queues = 1;           // receive queues polled on each
    std::vector<uint64_t> flows;      // flow indices of this pair (established, imix, denied)
    FrameStore client, server;        // looped frames (denied: client only)
    uint64_t next_connection = 0;     // new-conn: this pair's connections so far, across trials
};

struct Counters {
    uint64_t tx_attempted = 0, tx_refused = 0, tx_bytes = 0, tx_no_mbuf = 0;
    uint64_t answers_attempted = 0, answers_refused = 0;
    uint64_t rx_valid = 0, rx_bytes = 0, rx_foreign = 0;
    uint64_t rx_stale = 0;  // frames of ours from an earlier trial (a device that stalled): not counted
    uint64_t connections_done = 0;
    uint64_t send_tsc = 0;

    void add(const Counters& o) noexcept {
        tx_attempted += o.tx_attempted;
        tx_refused += o.tx_refused;
        tx_bytes += o.tx_bytes;
        tx_no_mbuf += o.tx_no_mbuf;
        answers_attempted += o.answers_attempted;
        answers_refused += o.answers_refused;
        rx_valid += o.rx_valid;
        rx_bytes += o.rx_bytes;
        rx_foreign += o.rx_foreign;
        rx_stale += o.rx_stale;
        connections_done += o.connections_done;
        send_tsc = std::max(send_tsc, o.send_tsc);
    }
};

struct Context {
    Mix mix = Mix::established;
    uint8_t trial = 0;  // the current trial, mod 64 (0: the warm-up)
    std::vector<Pair> pairs;
    traffic::Traffic traffic;
    uint64_t seed = 1;
    rte_mempool* pool = nullptr;
};

// One lcore's share of a trial.
struct LcoreTask {
    Context* ctx = nullptr;
    std::vector<Pair*> pairs;
    double rate = 0;  // per second; 0: unlimited
    double seconds = 0;
    Counters out;
};

gen::TcpSegment client_segment(const traffic::FlowSpec& f, uint8_t pair, uint8_t flags, uint32_t seq, uint32_t ack,
                               uint16_t payload, uint16_t dport) {
    const traffic::Service& s = *f.service;
    return {traffic::kClientMac, s.server_mac, s.vlan, s.client_ip, s.server_ip, f.sport, dport, seq, ack, flags,
            payload, pair, Side::client};
}

gen::TcpSegment server_segment(const traffic::FlowSpec& f, uint8_t pair, uint8_t flags, uint32_t seq, uint32_t ack,
                               uint16_t payload) {
    const traffic::Service& s = *f.service;
    return {s.server_mac, traffic::kClientMac, s.vlan, s.server_ip, s.client_ip, s.dport, f.sport, seq, ack,
            flags, payload, pair, Side::server};
}


// --- the frames each pair loops over ---

uint16_t payload_of(Mix mix, uint16_t vlan, size_t frame) noexcept {
    if (mix != Mix::imix) return 0;
    return gen::payload_for_length(vlan, kImixLengths[frame % kImixLengths.size()]);
}

// established/imix: one ACK each way per flow (imix: with payload); denied: the SYN of each flow.
void build_stores(Context& ctx) {
    for (Pair& p : ctx.pairs) {
        for (size_t i = 0; i < p.flows.size(); ++i) {
            const traffic::FlowSpec f = traffic::flow(ctx.traffic, p.flows[i], ctx.seed);
            if (ctx.mix == Mix::denied) {
                p.client.add(client_segment(f, p.index, dataplane::kTcpSyn, f.isn_client, 0, 0, kDeniedPort));
                continue;
            }
            const uint16_t vlan = f.service->vlan;
            const uint8_t flags = ctx.mix == Mix::imix ? dataplane::kTcpAck | dataplane::kTcpPsh : dataplane::kTcpAck;
            const uint16_t cp = payload_of(ctx.mix, vlan, 2 * i), sp = payload_of(ctx.mix, vlan, 2 * i + 1);
            p.client.add(client_segment(f, p.index, cp != 0 ? flags : dataplane::kTcpAck, f.isn_client + 1,
                                        f.isn_server + 1, cp, f.service->dport));
            p.server.add(server_segment(f, p.index, sp != 0 ? flags : dataplane::kTcpAck, f.isn_server + 1,
                                        f.isn_client + 1, sp));
        }
    }
}

// The policy's conversations, without logged rules unless asked; for denied, only those whose port
// kDeniedPort the classifier refuses.
traffic::Traffic conversations(const traffic::LoadedPolicy& policy, Mix mix, bool include_logged) {
    traffic::Traffic t = traffic::discover_services(policy);
    const auto& rules = policy.rules->rules();
    std::erase_if(t.services, [&](const traffic::Service& s) {
        if (!include_logged && s.rule >= 0 && rules[static_cast<size_t>(s.rule)].log) return true;
        if (mix != Mix::denied) return false;
        rules::PacketKey key;
        key.vlan = s.vlan;
        key.src = rules::IpAddr::v4(s.client_ip);
        key.dst = rules::IpAddr::v4(s.server_ip);
        key.proto = dataplane::kIpProtoTcp;
        key.sport = 40000;
        key.dport = kDeniedPort;
        return policy.classifier->classify(key).action == rules::Action::allow;
    });
    if (t.services.empty())
        throw std::runtime_error(include_logged ? "the policy admits no conversation this mix can use"
                                                : "the policy admits no conversation this mix can use outside "
                                                  "rules with `log: true` (--include-logged uses those too)");
    return t;
}

// --- ports ---

std::string memif_devargs(unsigned index, const std::string& dir, char side, unsigned pair, unsigned rsize) {
    return fmt::format("net_memif{},role=client,socket={}/{}{}.sock,socket-abstract=no,rsize={}", index, dir, side,
                       pair, rsize);
}

// One transmit queue; `rx_queues` receive queues (a memif client's receive queues are the rings its
// server may transmit on: a server that sends on several, as OVS does from each of its threads, needs
// as many here or its frames on the others are lost).
uint16_t open_port(const std::string& name, rte_mempool* pool, uint16_t rx_queues) {
    uint16_t id = 0;
    if (rte_eth_dev_get_port_by_name(name.c_str(), &id) != 0)
        throw std::runtime_error(fmt::format("no DPDK port {}", name));
    rte_eth_conf conf{};
    int rc = rte_eth_dev_configure(id, rx_queues, 1, &conf);
    uint16_t rxd = kRxDesc, txd = kTxDesc;
    if (rc == 0) rc = rte_eth_dev_adjust_nb_rx_tx_desc(id, &rxd, &txd);
    for (uint16_t q = 0; rc == 0 && q < rx_queues; ++q)
        rc = rte_eth_rx_queue_setup(id, q, rxd, static_cast<unsigned>(rte_socket_id()), nullptr, pool);
    if (rc == 0) rc = rte_eth_tx_queue_setup(id, 0, txd, static_cast<unsigned>(rte_socket_id()), nullptr);
    if (rc == 0) rc = rte_eth_dev_start(id);
    if (rc != 0) throw std::runtime_error(fmt::format("port {}: {}", name, rte_strerror(-rc)));
    return id;
}

void wait_links_up(const std::vector<Pair>& pairs, double timeout_seconds) {
    const uint64_t deadline = rte_get_tsc_cycles() + static_cast<uint64_t>(timeout_seconds * static_cast<double>(rte_get_tsc_hz()));
    for (const Pair& p : pairs) {
        for (const uint16_t port : {p.w_port, p.u_port}) {
            while (true) {
                rte_eth_link link{};
                rte_eth_link_get_nowait(port, &link);
                if (link.link_status == RTE_ETH_LINK_UP) break;
                if (rte_get_tsc_cycles() > deadline)
                    throw std::runtime_error(fmt::format("pair {}: the memif link of port {} is not up after {} s: is the "
                                                         "device under test running, as the memif server?",
                                                         p.index, port, timeout_seconds));
                rte_delay_us_sleep(10'000);
            }
        }
    }
}

// --- receiving ---

// One receive burst on `port` (where frames sent by the other side arrive); new-conn answers in place.
void poll_rx(const Pair& p, uint16_t port, uint16_t queue, Side receiver, bool answer, uint8_t trial, Counters& c) {
    std::array<rte_mbuf*, kBurst> rx{}, reply{}, release{};
    const uint16_t n = rte_eth_rx_burst(port, queue, rx.data(), kBurst);
    if (n == 0) return;
    uint16_t replies = 0, releases = 0;
    for (uint16_t i = 0; i < n; ++i) {
        rte_mbuf* m = rx[i];
        const std::span<uint8_t> frame(rte_pktmbuf_mtod(m, uint8_t*), m->data_len);
        const gen::Marker mk = gen::read_marker(frame);
        if (mk.ours && mk.pair == p.index && mk.side == gen::other(receiver) && mk.trial != trial) {
            ++c.rx_stale;
        } else if (mk.ours && mk.pair == p.index && mk.side == gen::other(receiver)) {
            ++c.rx_valid;
            c.rx_bytes += m->pkt_len;
            if (answer) {
                const gen::Answer a = gen::answer_in_place(frame, receiver);
                if (a == gen::Answer::done) ++c.connections_done;
                if (a != gen::Answer::none && a != gen::Answer::done) {
                    reply[replies++] = m;
                    continue;
                }
            }
        } else {
            ++c.rx_foreign;
        }
        release[releases++] = m;
    }
    if (releases != 0) rte_pktmbuf_free_bulk(release.data(), releases);
    if (replies != 0) {
        const uint16_t sent = rte_eth_tx_burst(port, 0, reply.data(), replies);
        c.answers_attempted += replies;
        c.answers_refused += replies - sent;
        if (sent < replies) rte_pktmbuf_free_bulk(reply.data() + sent, replies - sent);
    }
}

void poll_pair(const Pair& p, bool answer, uint8_t trial, Counters& c) {
    for (uint16_t q = 0; q < p.rx_queues; ++q) {
        poll_rx(p, p.w_port, q, Side::server, answer, trial, c);
        poll_rx(p, p.u_port, q, Side::client, answer, trial, c);
    }
}

// --- sending ---

// Sends up to n frames of a store, from where it left off, looping.
void send_stored(uint16_t port, FrameStore& s, uint16_t n, rte_mempool* pool, Counters& c) {
    std::array<rte_mbuf*, kBurst> m{};
    if (s.size() == 0) return;
    if (rte_pktmbuf_alloc_bulk(pool, m.data(), n) != 0) {
        ++c.tx_no_mbuf;
        return;
    }
    for (uint16_t i = 0; i < n; ++i) {
        const size_t f = s.next;
        s.next = f + 1 == s.size() ? 0 : f + 1;
        const uint16_t len = s.length[f];
        rte_memcpy(rte_pktmbuf_mtod(m[i], void*), s.bytes.data() + s.offset[f], len);
        m[i]->data_len = len;
        m[i]->pkt_len = len;
        c.tx_bytes += len;
    }
    const uint16_t sent = rte_eth_tx_burst(port, 0, m.data(), n);
    c.tx_attempted += n;
    c.tx_refused += n - sent;
    if (sent < n) rte_pktmbuf_free_bulk(m.data() + sent, n - sent);
}

// new-conn: n SYNs of new connections on the pair's client port.
void send_syns(const Context& ctx, Pair& p, uint16_t n, Counters& c) {
    std::array<rte_mbuf*, kBurst> m{};
    if (rte_pktmbuf_alloc_bulk(ctx.pool, m.data(), n) != 0) {
        ++c.tx_no_mbuf;
        return;
    }
    const uint64_t space = ctx.traffic.max_flows();
    const uint64_t npairs = ctx.pairs.size();
    for (uint16_t i = 0; i < n; ++i) {
        const uint64_t conn = (p.next_connection++ * npairs + p.index) % space;
        const traffic::FlowSpec f = traffic::flow(ctx.traffic, conn, ctx.seed);
        gen::TcpSegment syn = client_segment(f, p.index, dataplane::kTcpSyn, f.isn_client, 0, 0, f.service->dport);
        syn.trial = ctx.trial;
        const size_t len = gen::write_segment(
            std::span<uint8_t>(rte_pktmbuf_mtod(m[i], uint8_t*), rte_pktmbuf_tailroom(m[i])), syn);
        m[i]->data_len = static_cast<uint16_t>(len);
        m[i]->pkt_len = static_cast<uint32_t>(len);
        c.tx_bytes += len;
    }
    const uint16_t sent = rte_eth_tx_burst(p.u_port, 0, m.data(), n);
    c.tx_attempted += n;
    c.tx_refused += n - sent;
    if (sent < n) rte_pktmbuf_free_bulk(m.data() + sent, n - sent);
}

// --- a trial, on each lcore ---

int run_lcore_task(void* arg) {
    LcoreTask& t = *static_cast<LcoreTask*>(arg);
    Context& ctx = *t.ctx;
    const bool answer = ctx.mix == Mix::new_conn;
    struct Stream {
        Pair* pair;
        Side side;
    };
    std::vector<Stream> streams;
    for (Pair* p : t.pairs) {
        streams.push_back({p, Side::client});
        if (ctx.mix == Mix::established || ctx.mix == Mix::imix) streams.push_back({p, Side::server});
    }
    const double hz = static_cast<double>(rte_get_tsc_hz());
    const double per_tsc = t.rate / hz;
    const uint64_t start = rte_rdtsc();
    // A paced trial sends its rate x seconds frames (a late lcore catches up, at most 10% over time);
    // an unlimited one sends for the trial's time.
    const uint64_t frames = static_cast<uint64_t>(t.rate * t.seconds);
    const uint64_t end = start + static_cast<uint64_t>(t.seconds * hz * (t.rate > 0 ? 1.1 : 1.0));
    size_t rr = 0;
    Counters& c = t.out;
    for (uint64_t now = start; now < end && (t.rate == 0 || c.tx_attempted < frames); now = rte_rdtsc()) {
        uint64_t n = kBurst;
        if (t.rate > 0) {
            const auto due = static_cast<uint64_t>(static_cast<double>(now - start) * per_tsc);
            n = std::min(due, frames) > c.tx_attempted ? std::min<uint64_t>(std::min(due, frames) - c.tx_attempted, kBurst) : 0;
        }
        if (n != 0 && !streams.empty()) {
            const Stream& s = streams[rr];
            rr = rr + 1 == streams.size() ? 0 : rr + 1;
            if (answer) {
                send_syns(ctx, *s.pair, static_cast<uint16_t>(n), c);
            } else if (s.side == Side::client) {
                send_stored(s.pair->u_port, s.pair->client, static_cast<uint16_t>(n), ctx.pool, c);
            } else {
                send_stored(s.pair->w_port, s.pair->server, static_cast<uint16_t>(n), ctx.pool, c);
            }
        }
        for (Pair* p : t.pairs) poll_pair(*p, answer, ctx.trial, c);
    }
    c.send_tsc = rte_rdtsc() - start;
    // Drain: what is in flight still counts.
    const auto quiet = static_cast<uint64_t>(kQuietSeconds * hz);
    const uint64_t drain_end = rte_rdtsc() + static_cast<uint64_t>(kMaxDrainSeconds * hz);
    uint64_t last = rte_rdtsc();
    for (uint64_t now = last; now < drain_end && now - last < quiet; now = rte_rdtsc()) {
        const uint64_t before = c.rx_valid + c.rx_foreign + c.rx_stale;
        for (Pair* p : t.pairs) poll_pair(*p, answer, ctx.trial, c);
        if (c.rx_valid + c.rx_foreign + c.rx_stale != before) last = rte_rdtsc();
    }
    return 0;
}

// --- warm-up (established, imix): every flow's handshake through the device, one phase at a time ---

gen::TcpSegment handshake_segment(const traffic::FlowSpec& f, uint8_t pair, int phase) {
    switch (phase) {
    case 0: return client_segment(f, pair, dataplane::kTcpSyn, f.isn_client, 0, 0, f.service->dport);
    case 1: return server_segment(f, pair, dataplane::kTcpSyn | dataplane::kTcpAck, f.isn_server, f.isn_client + 1, 0);
    default:
        return client_segment(f, pair, dataplane::kTcpAck, f.isn_client + 1, f.isn_server + 1, 0, f.service->dport);
    }
}

// Receives during the warm-up: counts frames of ours (trial 0), and with `through` records the
// connection of each client ACK that came through (the last segment of a handshake).
void warmup_poll(const Pair& p, std::unordered_set<uint64_t>* through, Counters& c) {
    std::array<rte_mbuf*, kBurst> rx{};
    for (uint16_t q = 0; q < p.rx_queues; ++q) {
        for (const uint16_t port : {p.w_port, p.u_port}) {
            const uint16_t n = rte_eth_rx_burst(port, q, rx.data(), kBurst);
            for (uint16_t i = 0; i < n; ++i) {
                const std::span<const uint8_t> frame(rte_pktmbuf_mtod(rx[i], const uint8_t*), rx[i]->data_len);
                const gen::Marker mk = gen::read_marker(frame);
                const Side expected = port == p.w_port ? Side::client : Side::server;
                if (mk.ours && mk.pair == p.index && mk.side == expected && mk.trial == 0) {
                    ++c.rx_valid;
                    if (through != nullptr && mk.tcp_flags == dataplane::kTcpAck) through->insert(gen::connection_key_of(frame));
                } else {
                    ++c.rx_foreign;
                }
            }
            if (n != 0) rte_pktmbuf_free_bulk(rx.data(), n);
        }
    }
}

// Sends one handshake segment (phase 0 SYN, 1 SYN-ACK, 2 ACK) for every flow in todo[k] of each pair
// k (back-pressure: what a full ring refuses is sent again), receiving as it goes; returns how many
// came through.  Phase 2 records in `through` the connections whose ACK came through.
uint64_t warmup_phase(Context& ctx, int phase, const std::vector<std::vector<uint64_t>>& todo, double timeout_seconds,
                      std::unordered_set<uint64_t>& through) {
    const Side sender = phase == 1 ? Side::server : Side::client;
    std::unordered_set<uint64_t>* record = phase == 2 ? &through : nullptr;
    std::vector<size_t> cursor(ctx.pairs.size(), 0);
    Counters c;
    uint64_t expected = 0;
    for (const auto& t : todo) expected += t.size();
    const double hz = static_cast<double>(rte_get_tsc_hz());
    const uint64_t deadline = rte_rdtsc() + static_cast<uint64_t>(timeout_seconds * hz);
    bool more = true;
    while (more && rte_rdtsc() < deadline) {
        more = false;
        for (size_t k = 0; k < ctx.pairs.size(); ++k) {
            Pair& p = ctx.pairs[k];
            const auto n = static_cast<uint16_t>(std::min<size_t>(kBurst, todo[k].size() - cursor[k]));
            if (n != 0) {
                std::array<rte_mbuf*, kBurst> m{};
                if (rte_pktmbuf_alloc_bulk(ctx.pool, m.data(), n) == 0) {
                    for (uint16_t i = 0; i < n; ++i) {
                        const traffic::FlowSpec f = traffic::flow(ctx.traffic, todo[k][cursor[k] + i], ctx.seed);
                        const size_t len = gen::write_segment(
                            std::span<uint8_t>(rte_pktmbuf_mtod(m[i], uint8_t*), rte_pktmbuf_tailroom(m[i])),
                            handshake_segment(f, p.index, phase));
                        m[i]->data_len = static_cast<uint16_t>(len);
                        m[i]->pkt_len = static_cast<uint32_t>(len);
                    }
                    const uint16_t sent = rte_eth_tx_burst(sender == Side::client ? p.u_port : p.w_port, 0, m.data(), n);
                    if (sent < n) rte_pktmbuf_free_bulk(m.data() + sent, n - sent);
                    cursor[k] += sent;
                }
                more = more || cursor[k] < todo[k].size();
            }
            warmup_poll(p, record, c);
        }
    }
    uint64_t last = rte_rdtsc();
    const auto quiet = static_cast<uint64_t>(0.2 * hz);
    while (c.rx_valid < expected && rte_rdtsc() - last < quiet && rte_rdtsc() < deadline) {
        const uint64_t before = c.rx_valid;
        for (const Pair& p : ctx.pairs) warmup_poll(p, record, c);
        if (c.rx_valid != before) last = rte_rdtsc();
    }
    return c.rx_valid;
}

// The handshake of every flow, phase by phase; flows whose ACK did not come through (a frame lost on
// the way, as TCP would retransmit) go through it again, up to kWarmupRounds times.  Returns the
// JSON summary; `established` is how many flows' ACKs came through.
constexpr int kWarmupRounds = 4;
nlohmann::json warm_up(Context& ctx, double timeout_seconds, uint64_t& established) {
    std::vector<std::vector<uint64_t>> todo;
    for (const Pair& p : ctx.pairs) todo.push_back(p.flows);
    std::unordered_set<uint64_t> through;
    nlohmann::json rounds = nlohmann::json::array();
    for (int round = 0; round < kWarmupRounds; ++round) {
        std::array<uint64_t, 3> n{};
        for (int phase = 0; phase < 3; ++phase) n[static_cast<size_t>(phase)] = warmup_phase(ctx, phase, todo, timeout_seconds, through);
        size_t sent = 0;
        for (auto& t : todo) sent += t.size();
        rounds.push_back({{"flows", sent}, {"syn", n[0]}, {"syn_ack", n[1]}, {"ack", n[2]}});
        for (auto& t : todo)
            std::erase_if(t, [&](uint64_t flow) {
                const traffic::FlowSpec f = traffic::flow(ctx.traffic, flow, ctx.seed);
                return through.count(gen::connection_key(f.service->client_ip, f.service->server_ip, f.sport,
                                                         f.service->dport)) != 0;
            });
        size_t left = 0;
        for (const auto& t : todo) left += t.size();
        if (left == 0) break;
    }
    size_t left = 0, all = 0;
    for (const auto& t : todo) left += t.size();
    for (const Pair& p : ctx.pairs) all += p.flows.size();
    established = all - left;
    return {{"rounds", rounds}, {"established", established}};
}

// --- trials and the search ---

struct TrialResult {
    double rate = 0;  // requested (0: unlimited)
    Counters c;
    double seconds = 0;
    uint64_t offered = 0, forwarded = 0, lost = 0;  // frames (new-conn: connections)
    bool zero_loss = false, generator_limited = false;
};

TrialResult run_trial(Context& ctx, const std::vector<unsigned>& lcores, double rate, double seconds,
                      const GenerateOptions& o) {
    // This trial's number in every frame it sends (a late frame of the last one is then told apart).
    ctx.trial = static_cast<uint8_t>(ctx.trial % 63 + 1);
    for (Pair& p : ctx.pairs)
        for (FrameStore* st : {&p.client, &p.server})
            for (size_t i = 0; i < st->size(); ++i)
                gen::set_trial(std::span<uint8_t>(st->bytes.data() + st->offset[i], st->length[i]), ctx.trial);
    if (!o.between_trials.empty()) {
        const int rc = std::system(o.between_trials.c_str());
        if (rc != 0 && !o.quiet) fmt::print(stderr, "tagwall-bench generate: warning: --between-trials exited with {}\n", rc);
    }
    std::vector<LcoreTask> tasks(lcores.size());
    for (size_t k = 0; k < ctx.pairs.size(); ++k) tasks[k % tasks.size()].pairs.push_back(&ctx.pairs[k]);
    for (LcoreTask& t : tasks) {
        t.ctx = &ctx;
        t.seconds = seconds;
        t.rate = rate * static_cast<double>(t.pairs.size()) / static_cast<double>(ctx.pairs.size());
    }
    for (size_t i = 1; i < tasks.size(); ++i)
        if (rte_eal_remote_launch(run_lcore_task, &tasks[i], lcores[i]) != 0)
            throw std::runtime_error(fmt::format("cannot launch the generator on lcore {}", lcores[i]));
    run_lcore_task(&tasks[0]);
    for (size_t i = 1; i < tasks.size(); ++i) rte_eal_wait_lcore(lcores[i]);

    TrialResult r;
    r.rate = rate;
    for (const LcoreTask& t : tasks) r.c.add(t.out);
    r.seconds = static_cast<double>(r.c.send_tsc) / static_cast<double>(rte_get_tsc_hz());
    r.offered = r.c.tx_attempted;
    r.forwarded = ctx.mix == Mix::new_conn ? r.c.connections_done : r.c.rx_valid;
    r.lost = r.offered > r.forwarded ? r.offered - r.forwarded : 0;
    r.zero_loss = static_cast<double>(r.lost) <= o.loss_tolerance * static_cast<double>(r.offered) && r.offered > 0;
    r.generator_limited =
        r.c.tx_no_mbuf != 0 || (rate > 0 && static_cast<double>(r.offered) < 0.98 * rate * r.seconds);
    return r;
}

nlohmann::json to_json(const TrialResult& r, Mix mix) {
    const double s = r.seconds > 0 ? r.seconds : 1;
    nlohmann::json j{{"rate_requested", r.rate},
                     {"seconds", r.seconds},
                     {"offered", r.offered},
                     {"forwarded", r.forwarded},
                     {"lost", r.lost},
                     {"zero_loss", r.zero_loss},
                     {"generator_limited", r.generator_limited},
                     {"tx_attempted", r.c.tx_attempted},
                     {"tx_refused", r.c.tx_refused},
                     {"tx_no_mbuf", r.c.tx_no_mbuf},
                     {"rx_valid", r.c.rx_valid},
                     {"rx_foreign", r.c.rx_foreign},
                     {"rx_stale", r.c.rx_stale},
                     {"offered_pps", static_cast<double>(r.c.tx_attempted + r.c.answers_attempted) / s},
                     {"forwarded_pps", static_cast<double>(r.c.rx_valid) / s},
                     {"offered_gbps", static_cast<double>(r.c.tx_bytes + 24 * r.c.tx_attempted) * 8 / s / 1e9},
                     {"forwarded_gbps", static_cast<double>(r.c.rx_bytes + 24 * r.c.rx_valid) * 8 / s / 1e9}};
    if (mix == Mix::new_conn) {
        j["connections_offered_per_s"] = static_cast<double>(r.offered) / s;
        j["connections_completed_per_s"] = static_cast<double>(r.forwarded) / s;
        j["answers_attempted"] = r.c.answers_attempted;
        j["answers_refused"] = r.c.answers_refused;
    }
    return j;
}

void print_trial(const TrialResult& r, Mix mix, size_t number) {
    const double s = r.seconds > 0 ? r.seconds : 1;
    const char* unit = mix == Mix::new_conn ? "conn/s" : "fps";
    fmt::print(stderr,
               "tagwall-bench generate: trial {:2}: asked {:>12} {}, offered {:10.0f} {} ({:.3f} Mpps), forwarded "
               "{:.3f} Mpps, lost {} of {} (refused at the device's rx {}){}{}{}\n",
               number, r.rate > 0 ? fmt::format("{:.0f}", r.rate) : std::string("max"), unit,
               static_cast<double>(r.offered) / s, unit,
               static_cast<double>(r.c.tx_attempted + r.c.answers_attempted) / s / 1e6,
               static_cast<double>(r.c.rx_valid) / s / 1e6, r.lost, r.offered, r.c.tx_refused,
               r.c.rx_stale != 0 ? fmt::format(", {} late from the last trial", r.c.rx_stale) : std::string(),
               r.zero_loss ? ", ZERO LOSS" : "", r.generator_limited ? ", generator-limited" : "");
}

Mix parse_mix(const std::string& m) {
    if (m == "established") return Mix::established;
    if (m == "imix") return Mix::imix;
    if (m == "new-conn") return Mix::new_conn;
    if (m == "denied") return Mix::denied;
    throw std::invalid_argument(fmt::format("unknown mix '{}' (established, imix, new-conn, denied)", m));
}

std::vector<std::string> eal_args(const GenerateOptions& o, const std::vector<unsigned>& cpus, bool hugepages) {
    std::vector<std::string> a{"tagwall-bench-generate"};
    std::string map;
    for (size_t i = 0; i < cpus.size(); ++i) map += fmt::format("{}{}@{}", i == 0 ? "" : ",", i, cpus[i]);
    a.insert(a.end(), {"--lcores", map, "--no-pci", "--no-telemetry",
                       fmt::format("--file-prefix={}", o.file_prefix.empty() ? fmt::format("tagwall-gen-{}", getpid())
                                                                             : o.file_prefix)});
    if (o.quiet || o.json) a.emplace_back("--log-level=lib.eal:error");
    if (hugepages)
        a.emplace_back("--huge-unlink");  // nothing left in hugetlbfs, whatever happens to this process
    else
        a.insert(a.end(), {"--no-huge", "-m", "1024"});
    for (unsigned k = 0; k < o.pairs; ++k) {
        a.insert(a.end(), {"--vdev", memif_devargs(2 * k, o.memif_dir, 'w', k, o.memif_rsize)});
        a.insert(a.end(), {"--vdev", memif_devargs(2 * k + 1, o.memif_dir, 'u', k, o.memif_rsize)});
    }
    return a;
}

}  // namespace

int run_generate(const GenerateOptions& o) {
    namespace dp = tagwall::dataplane;
    const Mix mix = parse_mix(o.mix);
    if (o.pairs == 0 || o.pairs > gen::kMaxPairs) throw std::invalid_argument("--pairs must be 1..128");
    std::vector<unsigned> cpus = o.cpus;
    if (cpus.empty()) cpus.push_back(dp::allowed_cpus().empty() ? 0 : dp::allowed_cpus()[0]);

    Context ctx;
    ctx.mix = mix;
    ctx.seed = o.seed;
    const traffic::LoadedPolicy policy = traffic::load_policy(o.policy_path, "trie");
    ctx.traffic = conversations(policy, mix, o.include_logged);
    if (mix != Mix::new_conn && o.flows > ctx.traffic.max_flows())
        throw std::invalid_argument(fmt::format("--flows {}: the policy's conversations give at most {} distinct flows",
                                                o.flows, ctx.traffic.max_flows()));

    const bool hugepages = dp::hugepages_available();
    const auto args = eal_args(o, cpus, hugepages);
    const dp::EalInfo eal = dp::init_eal_with_args(args, hugepages);
    if (!o.quiet) fmt::print(stderr, "tagwall-bench generate: EAL {}\n", eal.args_joined);

    const size_t mbufs = 8192 + size_t{o.pairs} * 2 * (o.rx_queues * kRxDesc + kTxDesc) + cpus.size() * 1024;
    ctx.pool = rte_pktmbuf_pool_create("gen_mbufs", static_cast<unsigned>(mbufs), 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                       static_cast<int>(rte_socket_id()));
    if (ctx.pool == nullptr) throw std::runtime_error(fmt::format("mbuf pool: {}", rte_strerror(rte_errno)));
    ctx.pairs.resize(o.pairs);
    for (unsigned k = 0; k < o.pairs; ++k) {
        Pair& p = ctx.pairs[k];
        p.index = static_cast<uint8_t>(k);
        p.rx_queues = static_cast<uint16_t>(o.rx_queues);
        p.w_port = open_port(fmt::format("net_memif{}", 2 * k), ctx.pool, p.rx_queues);
        p.u_port = open_port(fmt::format("net_memif{}", 2 * k + 1), ctx.pool, p.rx_queues);
    }
    if (mix != Mix::new_conn)
        for (uint64_t f = 0; f < o.flows; ++f) ctx.pairs[f % o.pairs].flows.push_back(f);
    build_stores(ctx);
    wait_links_up(ctx.pairs, o.link_timeout_seconds);

    std::vector<unsigned> lcores{rte_get_main_lcore()};
    unsigned lc = 0;
    RTE_LCORE_FOREACH_WORKER(lc) lcores.push_back(lc);

    nlohmann::json out{{"mix", o.mix},
                       {"pairs", o.pairs},
                       {"generator_cpus", cpus},
                       {"hugepages", hugepages},
                       {"conversations", ctx.traffic.services.size()},
                       {"trial_seconds", o.trial_seconds},
                       {"loss_tolerance", o.loss_tolerance}};
    if (mix != Mix::new_conn) out["flows"] = o.flows;
    double frame_bytes = 0;
    size_t frames = 0;
    for (const Pair& p : ctx.pairs)
        for (const FrameStore* s : {&p.client, &p.server}) {
            for (const uint16_t len : s->length) frame_bytes += len;
            frames += s->size();
        }
    if (frames != 0) out["frame_bytes_mean"] = frame_bytes / static_cast<double>(frames);

    if (mix == Mix::established || mix == Mix::imix) {
        const double warm_timeout = 30 + static_cast<double>(o.flows) / 1e5;
        uint64_t established = 0;
        out["warmup"] = warm_up(ctx, warm_timeout, established);
        out["established_flows"] = established;
        if (!o.quiet) {
            std::string rounds;
            for (const auto& r : out["warmup"]["rounds"])
                rounds += fmt::format("{}{} flows: {} SYN, {} SYN-ACK, {} ACK through", rounds.empty() ? "" : "; again for ",
                                      r["flows"].get<uint64_t>(), r["syn"].get<uint64_t>(), r["syn_ack"].get<uint64_t>(),
                                      r["ack"].get<uint64_t>());
            fmt::print(stderr, "tagwall-bench generate: warm-up: {}; {} of {} connections established\n", rounds,
                       established, o.flows);
        }
    }

    std::vector<TrialResult> trials;
    auto trial = [&](double rate) -> const TrialResult& {
        trials.push_back(run_trial(ctx, lcores, rate, o.trial_seconds, o));
        if (!o.quiet) print_trial(trials.back(), mix, trials.size());
        return trials.back();
    };
    if (!o.search) {
        trial(o.rate);
    } else {
        const TrialResult first = trial(o.rate_max);
        if (!first.zero_loss && first.offered > 0) {
            double lo = 0, hi = static_cast<double>(first.offered) / first.seconds;
            while (trials.size() < o.max_trials && hi - lo > o.resolution * hi) {
                const double mid = (lo + hi) / 2;
                if (trial(mid).zero_loss)
                    lo = mid;
                else
                    hi = mid;
            }
        }
    }
    nlohmann::json list = nlohmann::json::array();
    const TrialResult* best = nullptr;
    for (const TrialResult& r : trials) {
        list.push_back(to_json(r, mix));
        if (r.zero_loss && (best == nullptr || r.offered / r.seconds > best->offered / best->seconds)) best = &r;
    }
    out["trials"] = list;
    out["max"] = to_json(trials.front(), mix);
    out["no_drop"] = best != nullptr ? to_json(*best, mix) : nlohmann::json(nullptr);

    for (Pair& p : ctx.pairs)
        for (const uint16_t port : {p.w_port, p.u_port}) {
            rte_eth_dev_stop(port);
            rte_eth_dev_close(port);
        }
    rte_mempool_free(ctx.pool);
    if (o.json) fmt::print("{}\n", out.dump());
    dp::cleanup_eal();
    return 0;
}

}  // namespace tagwall::tools
