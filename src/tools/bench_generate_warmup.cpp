// The warm-up of `tagwall-bench generate`: see bench_generate_context.hpp.
#include <array>
#include <string>
#include <unordered_set>
#include <vector>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "dataplane/packet.hpp"
#include "tools/bench_generate_context.hpp"

namespace tagwall::tools::generate {
namespace {

constexpr int kWarmupRounds = 4;  // handshake rounds at most

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

}  // namespace

// The handshake of every flow, phase by phase; flows whose ACK did not come through (a frame lost on
// the way, as TCP would retransmit) go through it again, up to kWarmupRounds times.  Returns the
// JSON summary; `established` is how many flows' ACKs came through.
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

}  // namespace tagwall::tools::generate
