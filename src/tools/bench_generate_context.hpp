// The state `tagwall-bench generate` shares between its files (bench_generate.hpp says what the
// generator is): the pairs of memif ports with their looped frames, the counters of a trial, and the
// segments of a flow.  Internal to the generator; control side builds it, then during a trial each
// lcore writes only its own pairs' cursors and its own Counters.
#pragma once

#include <rte_mempool.h>

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include <nlohmann/json.hpp>

#include "tools/bench_generate_frames.hpp"
#include "tools/bench_pipeline_traffic.hpp"

namespace tagwall::tools::generate {

using gen::Side;

inline constexpr uint16_t kBurst = 32;
inline constexpr uint16_t kRxDesc = 1024, kTxDesc = 1024;

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

inline gen::TcpSegment client_segment(const traffic::FlowSpec& f, uint8_t pair, uint8_t flags, uint32_t seq, uint32_t ack,
                               uint16_t payload, uint16_t dport) {
    const traffic::Service& s = *f.service;
    return {traffic::kClientMac, s.server_mac, s.vlan, s.client_ip, s.server_ip, f.sport, dport, seq, ack, flags,
            payload, pair, Side::client};
}

inline gen::TcpSegment server_segment(const traffic::FlowSpec& f, uint8_t pair, uint8_t flags, uint32_t seq, uint32_t ack,
                               uint16_t payload) {
    const traffic::Service& s = *f.service;
    return {s.server_mac, traffic::kClientMac, s.vlan, s.server_ip, s.client_ip, s.dport, f.sport, seq, ack,
            flags, payload, pair, Side::server};
}

// The warm-up of the established and IMIX mixes (bench_generate_warmup.cpp): every flow's handshake
// through the device, phase by phase, again for the flows whose ACK did not come through; returns its
// JSON summary and sets `established` to how many connections completed it.
nlohmann::json warm_up(Context& ctx, double timeout_seconds, uint64_t& established);

}  // namespace tagwall::tools::generate
