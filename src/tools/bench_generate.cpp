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
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <pcap/pcap.h>
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
#include "tools/bench_generate_context.hpp"
#include "tools/bench_generate_frames.hpp"
#include "tools/bench_pipeline_traffic.hpp"

namespace tagwall::tools {
namespace {

using namespace generate;  // the generator's own types (bench_generate_context.hpp)

constexpr double kQuietSeconds = 0.05;     // a trial's drain ends after this long without a frame ...
constexpr double kMaxDrainSeconds = 1.0;   // ... or after this long in any case
constexpr uint16_t kDeniedPort = 9;        // discard: a port the allow rules should not admit
constexpr std::array<uint16_t, 12> kImixLengths{60, 60, 60, 590, 60, 60, 590, 60, 60, 590, 1514, 590};

// One lcore's share of a trial.
struct LcoreTask {
    Context* ctx = nullptr;
    std::vector<Pair*> pairs;
    double rate = 0;  // per second; 0: unlimited
    double seconds = 0;
    Counters out;
};

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

// --write-pcap: the frames each pair loops, its client's then its server's (new-conn: the first 1000
// SYNs of each pair, which the mix writes afresh for every connection).
void write_pcap(const Context& ctx, const std::string& path) {
    pcap_t* dead = pcap_open_dead(DLT_EN10MB, 65535);
    pcap_dumper_t* dump = dead != nullptr ? pcap_dump_open(dead, path.c_str()) : nullptr;
    if (dump == nullptr) {
        const std::string why = dead != nullptr ? pcap_geterr(dead) : "pcap_open_dead failed";
        if (dead != nullptr) pcap_close(dead);
        throw std::runtime_error(fmt::format("--write-pcap {}: {}", path, why));
    }
    auto put = [&](const uint8_t* frame, size_t len) {
        pcap_pkthdr h{};
        h.caplen = h.len = static_cast<bpf_u_int32>(len);
        pcap_dump(reinterpret_cast<u_char*>(dump), &h, frame);
    };
    std::array<uint8_t, gen::kMaxFrame> buf{};
    for (const Pair& p : ctx.pairs) {
        for (const FrameStore* s : {&p.client, &p.server})
            for (size_t i = 0; i < s->size(); ++i) put(s->bytes.data() + s->offset[i], s->length[i]);
        if (ctx.mix != Mix::new_conn) continue;
        for (uint64_t j = 0; j < 1000; ++j) {
            const traffic::FlowSpec f = traffic::flow(
                ctx.traffic, (j * ctx.pairs.size() + p.index) % ctx.traffic.max_flows(), ctx.seed);
            put(buf.data(), gen::write_segment(buf, client_segment(f, p.index, dataplane::kTcpSyn, f.isn_client, 0, 0,
                                                                    f.service->dport)));
        }
    }
    pcap_dump_close(dump);
    pcap_close(dead);
}

// The ports, the pool and the looped frames; the EAL is started here.
struct Setup {
    std::vector<unsigned> cpus;
    std::vector<unsigned> lcores;  // the main lcore first
    bool hugepages = false;
};

Setup open_generator(const GenerateOptions& o, Context& ctx) {
    namespace dp = tagwall::dataplane;
    Setup st;
    st.cpus = o.cpus;
    if (st.cpus.empty()) st.cpus.push_back(dp::allowed_cpus().empty() ? 0 : dp::allowed_cpus()[0]);
    st.hugepages = dp::hugepages_available();
    const dp::EalInfo eal = dp::init_eal_with_args(eal_args(o, st.cpus, st.hugepages), st.hugepages);
    if (!o.quiet) fmt::print(stderr, "tagwall-bench generate: EAL {}\n", eal.args_joined);

    const size_t mbufs = 8192 + size_t{o.pairs} * 2 * (o.rx_queues * kRxDesc + kTxDesc) + st.cpus.size() * 1024;
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
    if (ctx.mix != Mix::new_conn)
        for (uint64_t f = 0; f < o.flows; ++f) ctx.pairs[f % o.pairs].flows.push_back(f);
    build_stores(ctx);
    wait_links_up(ctx.pairs, o.link_timeout_seconds);
    st.lcores.push_back(rte_get_main_lcore());
    unsigned lc = 0;
    RTE_LCORE_FOREACH_WORKER(lc) st.lcores.push_back(lc);
    return st;
}

void close_generator(Context& ctx) noexcept {
    for (Pair& p : ctx.pairs)
        for (const uint16_t port : {p.w_port, p.u_port}) {
            rte_eth_dev_stop(port);
            rte_eth_dev_close(port);
        }
    rte_mempool_free(ctx.pool);
    ctx.pool = nullptr;
}

// --search: a trial at --rate-max, then bisection between 0 and what that trial offered; otherwise one
// trial at --rate.
std::vector<TrialResult> search(Context& ctx, const std::vector<unsigned>& lcores, const GenerateOptions& o) {
    std::vector<TrialResult> trials;
    auto trial = [&](double rate) {
        trials.push_back(run_trial(ctx, lcores, rate, o.trial_seconds, o));
        if (!o.quiet) print_trial(trials.back(), ctx.mix, trials.size());
        return trials.back().zero_loss;
    };
    if (!o.search) {
        trial(o.rate);
        return trials;
    }
    if (trial(o.rate_max) || trials.front().offered == 0) return trials;
    double lo = 0, hi = static_cast<double>(trials.front().offered) / trials.front().seconds;
    while (trials.size() < o.max_trials && hi - lo > o.resolution * hi) {
        const double mid = (lo + hi) / 2;
        (trial(mid) ? lo : hi) = mid;
    }
    return trials;
}

nlohmann::json describe(const GenerateOptions& o, const Context& ctx, const Setup& st) {
    nlohmann::json out{{"mix", o.mix},
                       {"pairs", o.pairs},
                       {"generator_cpus", st.cpus},
                       {"hugepages", st.hugepages},
                       {"conversations", ctx.traffic.services.size()},
                       {"trial_seconds", o.trial_seconds},
                       {"loss_tolerance", o.loss_tolerance}};
    if (ctx.mix != Mix::new_conn) out["flows"] = o.flows;
    double frame_bytes = 0;
    size_t frames = 0;
    for (const Pair& p : ctx.pairs)
        for (const FrameStore* s : {&p.client, &p.server}) {
            for (const uint16_t len : s->length) frame_bytes += len;
            frames += s->size();
        }
    if (frames != 0) out["frame_bytes_mean"] = frame_bytes / static_cast<double>(frames);
    return out;
}

void print_warmup(const nlohmann::json& warmup, uint64_t established, uint64_t flows) {
    std::string rounds;
    for (const auto& r : warmup["rounds"])
        rounds += fmt::format("{}{} flows: {} SYN, {} SYN-ACK, {} ACK through", rounds.empty() ? "" : "; again for ",
                              r["flows"].get<uint64_t>(), r["syn"].get<uint64_t>(), r["syn_ack"].get<uint64_t>(),
                              r["ack"].get<uint64_t>());
    fmt::print(stderr, "tagwall-bench generate: warm-up: {}; {} of {} connections established\n", rounds, established,
               flows);
}

}  // namespace

int run_generate(const GenerateOptions& o) {
    if (o.pairs == 0 || o.pairs > gen::kMaxPairs) throw std::invalid_argument("--pairs must be 1..128");
    Context ctx;
    ctx.mix = parse_mix(o.mix);
    ctx.seed = o.seed;
    const traffic::LoadedPolicy policy = traffic::load_policy(o.policy_path, "trie");
    ctx.traffic = conversations(policy, ctx.mix, o.include_logged);
    if (ctx.mix != Mix::new_conn && o.flows > ctx.traffic.max_flows())
        throw std::invalid_argument(fmt::format("--flows {}: the policy's conversations give at most {} distinct flows",
                                                o.flows, ctx.traffic.max_flows()));
    const Setup st = open_generator(o, ctx);
    if (!o.write_pcap.empty()) write_pcap(ctx, o.write_pcap);
    nlohmann::json out = describe(o, ctx, st);
    if (ctx.mix == Mix::established || ctx.mix == Mix::imix) {
        uint64_t established = 0;
        out["warmup"] = warm_up(ctx, 30 + static_cast<double>(o.flows) / 1e5, established);
        out["established_flows"] = established;
        if (!o.quiet) print_warmup(out["warmup"], established, o.flows);
    }
    const std::vector<TrialResult> trials = search(ctx, st.lcores, o);
    if (!o.after_trials.empty()) {
        const int rc = std::system(o.after_trials.c_str());
        if (rc != 0 && !o.quiet) fmt::print(stderr, "tagwall-bench generate: warning: --after-trials exited with {}\n", rc);
    }
    nlohmann::json list = nlohmann::json::array();
    const TrialResult* best = nullptr;
    for (const TrialResult& r : trials) {
        list.push_back(to_json(r, ctx.mix));
        if (r.zero_loss && (best == nullptr || r.offered / r.seconds > best->offered / best->seconds)) best = &r;
    }
    out["trials"] = list;
    out["max"] = to_json(trials.front(), ctx.mix);
    out["no_drop"] = best != nullptr ? to_json(*best, ctx.mix) : nlohmann::json(nullptr);
    close_generator(ctx);
    if (o.json) fmt::print("{}\n", out.dump());
    tagwall::dataplane::cleanup_eal();
    return 0;
}

}  // namespace tagwall::tools
