// TCP connection tracking, packetdrill style: each case is a sequence of segments between a client (the
// initiator) and a server, each with the verdict and reason it must get and the connection state after
// it.  Sequence numbers are relative to the sender's ISN and acknowledgements to the receiver's, as in
// packetdrill.  Every case runs over IPv4 and IPv6, with the client on either side of the canonical key
// order, and (unless a case pins absolute numbers) with ISNs that wrap around 2^32 during the case.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include <fmt/format.h>

#include "dataplane/conntrack.hpp"
#include "dataplane/conntrack_tcp.hpp"
#include "dataplane/conntrack_packets.hpp"

using namespace tagwall::dataplane;
using namespace tagwall::dataplane::testing;
using tagwall::rules::IpAddr;

namespace {

enum class Dir : uint8_t { C, S };  // client -> server, server -> client
constexpr Dir C = Dir::C, S = Dir::S;

enum class Want : uint8_t {
    open,    // no connection: the policy is asked (classify) and create() opens it
    pass,    // part of the connection (`established`)
    drop,    // dropped with `reason`
    reopen,  // the old connection is over: classify, and create() opens a new one
};
struct Outcome {
    Want want;
    Reason reason = Reason::established;
};
constexpr Outcome kOpen{Want::open}, kPass{Want::pass}, kReopen{Want::reopen};
constexpr Outcome kChallenged{Want::pass, Reason::rst_in_window};  // passed, state kept (RFC 5961)
constexpr Outcome drop(Reason r) { return {Want::drop, r}; }

constexpr uint16_t kW = 65535;
constexpr uint8_t kNoWs = kNoWindowScale;

struct Step {
    Dir dir;
    const char* flags;
    uint32_t seq;   // relative to the sender's ISN (absolute when `absolute`)
    uint32_t ack;   // relative to the receiver's ISN (ignored by the tracker without '.')
    uint16_t win;
    uint16_t len;
    Outcome outcome;
    FlowState after;
    uint8_t wscale = kNoWs;
    bool absolute = false;
};

struct Case {
    const char* name;
    std::vector<Step> steps;
    bool pinned_isn = false;  // uses absolute sequence numbers: run with the ordinary ISNs only
};

using enum FlowState;

// The three steps every synchronized case starts with.
std::vector<Step> handshake(std::vector<Step> rest) {
    std::vector<Step> steps{
        {C, "S", 0, 0, kW, 0, kOpen, tcp_syn_sent},
        {S, "S.", 0, 1, kW, 0, kPass, tcp_syn_recv},
        {C, ".", 1, 1, kW, 0, kPass, tcp_established},
    };
    steps.insert(steps.end(), rest.begin(), rest.end());
    return steps;
}

const std::vector<Case>& cases() {
    static const std::vector<Case> kCases{
        {"handshake, data both ways, FIN/ACK from each side",
         handshake({
             {C, "P.", 1, 1, kW, 1000, kPass, tcp_established},
             {S, ".", 1, 1001, kW, 0, kPass, tcp_established},
             {S, "P.", 1, 1001, kW, 500, kPass, tcp_established},
             {C, ".", 1001, 501, kW, 0, kPass, tcp_established},
             {C, "F.", 1001, 501, kW, 0, kPass, tcp_fin_wait},
             {S, ".", 501, 1002, kW, 0, kPass, tcp_close_wait},
             {S, "F.", 501, 1002, kW, 0, kPass, tcp_last_ack},
             {C, ".", 1002, 502, kW, 0, kPass, tcp_time_wait},
             {C, ".", 1002, 502, kW, 0, kPass, tcp_time_wait},  // a retransmitted last ACK
         })},
        {"the first data segment may complete the handshake",
         {
             {C, "S", 0, 0, kW, 0, kOpen, tcp_syn_sent},
             {S, "S.", 0, 1, kW, 0, kPass, tcp_syn_recv},
             {C, "P.", 1, 1, kW, 100, kPass, tcp_established},
         }},
        {"simultaneous close",
         handshake({
             {S, "F.", 1, 1, kW, 0, kPass, tcp_fin_wait},
             {C, "F.", 1, 2, kW, 0, kPass, tcp_last_ack},  // acks the server's FIN, sends its own
             {S, ".", 2, 2, kW, 0, kPass, tcp_time_wait},
         })},
        {"RST at sequence number 0 is ignored and counted",
         handshake({
             {C, "R", 0, 0, 0, 0, drop(Reason::rst_out_of_window), tcp_established, kNoWs, true},
             {S, "R.", 0, 1, 0, 0, drop(Reason::rst_out_of_window), tcp_established, kNoWs, true},
             {C, "P.", 1, 1, kW, 100, kPass, tcp_established},
             {S, ".", 1, 101, kW, 0, kPass, tcp_established},
         }),
         true},
        {"RST far out of the window is ignored",
         handshake({
             {C, "R", 0x40000000, 0, 0, 0, drop(Reason::rst_out_of_window), tcp_established},
             {S, "R.", 0x80000001, 1, 0, 0, drop(Reason::rst_out_of_window), tcp_established},
             {C, "R", static_cast<uint32_t>(1 - kW - 10), 0, 0, 0, drop(Reason::rst_out_of_window),
              tcp_established},  // just below the left edge
             {C, "P.", 1, 1, kW, 100, kPass, tcp_established},
         })},
        {"RST in the window but not exact passes and changes nothing",
         handshake({
             {C, "P.", 1, 1, kW, 1000, kPass, tcp_established},
             {S, ".", 1, 1001, kW, 0, kPass, tcp_established},
             {C, "R", 6001, 0, 0, 0, kChallenged, tcp_established},
             {S, "R.", 30001, 1001, 0, 0, kChallenged, tcp_established},
             {C, "P.", 1001, 1, kW, 100, kPass, tcp_established},
             {S, ".", 1, 1101, kW, 0, kPass, tcp_established},
         })},
        {"RST at the expected sequence number closes",
         handshake({
             {C, "P.", 1, 1, kW, 1000, kPass, tcp_established},
             {S, ".", 1, 1001, kW, 0, kPass, tcp_established},
             {C, "R", 1001, 0, 0, 0, kPass, tcp_close},
             {S, ".", 1, 1001, kW, 0, kPass, tcp_close},  // a straggler still in the window passes
         })},
        {"RST+ACK from the server at the expected sequence number closes",
         handshake({
             {S, "R.", 1, 1, 0, 0, kPass, tcp_close},
         })},
        {"RST at the sequence number its receiver acknowledged closes (data in flight)",
         handshake({
             {C, "P.", 1, 1, kW, 1000, kPass, tcp_established},
             {S, ".", 1, 1001, kW, 0, kPass, tcp_established},
             {C, "P.", 1001, 1, kW, 1000, kPass, tcp_established},  // not yet acknowledged
             {C, "R", 1001, 0, 0, 0, kPass, tcp_close},
         })},
        {"SYN on an established connection is dropped and changes nothing",
         handshake({
             {C, "S", 0x12345678, 0, kW, 0, drop(Reason::invalid_tcp_state), tcp_established},
             {C, "S", 0, 0, kW, 0, drop(Reason::invalid_tcp_state), tcp_established},
             {S, "S", 0, 0, kW, 0, drop(Reason::invalid_tcp_state), tcp_established},
             {C, "P.", 1, 1, kW, 100, kPass, tcp_established},
             {S, ".", 1, 101, kW, 0, kPass, tcp_established},
         })},
        {"retransmitted SYN and SYN+ACK pass",
         {
             {C, "S", 0, 0, kW, 0, kOpen, tcp_syn_sent},
             {C, "S", 0, 0, kW, 0, kPass, tcp_syn_sent},
             {S, "S.", 0, 1, kW, 0, kPass, tcp_syn_recv},
             {C, "S", 0, 0, kW, 0, kPass, tcp_syn_recv},    // our SYN+ACK had not reached it yet
             {S, "S.", 0, 1, kW, 0, kPass, tcp_syn_recv},   // nor the SYN+ACK the client
             {C, ".", 1, 1, kW, 0, kPass, tcp_established},
             {S, "S.", 0, 1, kW, 0, kPass, tcp_established},  // the client's ACK was lost after us
             {C, "S", 0, 0, kW, 0, drop(Reason::invalid_tcp_state), tcp_established},
             {C, "P.", 1, 1, kW, 10, kPass, tcp_established},
         }},
        {"a SYN retried with a new ISN restarts the handshake",
         {
             {C, "S", 0, 0, kW, 0, kOpen, tcp_syn_sent},
             {C, "S", 5000, 0, kW, 0, kPass, tcp_syn_sent},
             {S, "S.", 0, 1, kW, 0, drop(Reason::invalid_tcp_window), tcp_syn_sent},  // answers the old one
             {S, "S.", 0, 5001, kW, 0, kPass, tcp_syn_recv},
             {C, ".", 5001, 1, kW, 0, kPass, tcp_established},
         }},
        {"simultaneous open is not supported",
         {
             {C, "S", 0, 0, kW, 0, kOpen, tcp_syn_sent},
             {S, "S", 0, 0, kW, 0, drop(Reason::invalid_tcp_state), tcp_syn_sent},
             {S, "S.", 0, 1, kW, 0, kPass, tcp_syn_recv},
         }},
        {"nothing but SYN+ACK or RST from the server before its SYN+ACK",
         {
             {C, "S", 0, 0, kW, 0, kOpen, tcp_syn_sent},
             {S, ".", 0, 1, kW, 0, drop(Reason::invalid_tcp_state), tcp_syn_sent},
             {C, ".", 1, 1, kW, 0, drop(Reason::invalid_tcp_state), tcp_syn_sent},
             {S, "S.", 0, 7, kW, 0, drop(Reason::invalid_tcp_window), tcp_syn_sent},  // wrong ack
             {S, "S.", 0, 1, kW, 0, kPass, tcp_syn_recv},
         }},
        {"connection refused: RST+ACK acknowledging the SYN",
         {
             {C, "S", 0, 0, kW, 0, kOpen, tcp_syn_sent},
             {S, "R", 0, 0, 0, 0, drop(Reason::rst_out_of_window), tcp_syn_sent},  // no ACK
             {S, "R.", 0, 2, 0, 0, drop(Reason::rst_out_of_window), tcp_syn_sent},  // wrong ack
             {S, "R.", 0, 1, 0, 0, kPass, tcp_close},
             {S, "S.", 0, 1, kW, 0, drop(Reason::invalid_tcp_state), tcp_close},  // no window was agreed
             {C, ".", 1, 1, kW, 0, drop(Reason::invalid_tcp_state), tcp_close},
             {S, "R.", 0, 1, 0, 0, drop(Reason::invalid_tcp_state), tcp_close},
             {C, "S", 0, 0, kW, 0, kReopen, tcp_syn_sent},  // the client tries again
             {S, "S.", 0, 1, kW, 0, kPass, tcp_syn_recv},
         }},
        {"the client aborts its own SYN",
         {
             {C, "S", 0, 0, kW, 0, kOpen, tcp_syn_sent},
             {C, "R", 7, 0, 0, 0, drop(Reason::rst_out_of_window), tcp_syn_sent},
             {C, "R", 1, 0, 0, 0, kPass, tcp_close},
             {C, "R", 1, 0, 0, 0, drop(Reason::invalid_tcp_state), tcp_close},
         }},
        {"window scaling used when both SYNs offer it",
         {
             {C, "S", 0, 0, kW, 0, kOpen, tcp_syn_sent, 7},
             {S, "S.", 0, 1, kW, 0, kPass, tcp_syn_recv, 7},
             {C, ".", 1, 1, 512, 0, kPass, tcp_established},
             {S, ".", 1, 1, 1000, 0, kPass, tcp_established},            // 1000 << 7 = 128000 bytes
             {C, "P.", 70001, 1, 512, 1000, kPass, tcp_established},
             {C, "P.", 127001, 1, 512, 1000, kPass, tcp_established},   // ends exactly at the edge
             {C, "P.", 128001, 1, 512, 1, drop(Reason::invalid_tcp_window), tcp_established},
         }},
        {"window scaling offered by the client only is not used",
         {
             {C, "S", 0, 0, kW, 0, kOpen, tcp_syn_sent, 7},
             {S, "S.", 0, 1, kW, 0, kPass, tcp_syn_recv},
             {C, ".", 1, 1, 512, 0, kPass, tcp_established},
             {S, ".", 1, 1, 1000, 0, kPass, tcp_established},  // 1000 bytes; the SYN+ACK's 65535 still holds
             {C, "P.", 70001, 1, 512, 1000, drop(Reason::invalid_tcp_window), tcp_established},
             {C, "P.", 64536, 1, 512, 1000, kPass, tcp_established},  // ends at ack + 65535
         }},
        {"window scaling offered by the server only is not used",
         {
             {C, "S", 0, 0, kW, 0, kOpen, tcp_syn_sent},
             {S, "S.", 0, 1, kW, 0, kPass, tcp_syn_recv, 7},
             {C, ".", 1, 1, kW, 0, kPass, tcp_established},
             {S, ".", 1, 1, 1000, 0, kPass, tcp_established},
             {C, "P.", 70001, 1, kW, 1000, drop(Reason::invalid_tcp_window), tcp_established},
         }},
        {"data beyond the advertised window",
         {
             {C, "S", 0, 0, kW, 0, kOpen, tcp_syn_sent},
             {S, "S.", 0, 1, 1000, 0, kPass, tcp_syn_recv},
             {C, ".", 1, 1, kW, 0, kPass, tcp_established},
             {C, "P.", 1, 1, kW, 600, kPass, tcp_established},
             {C, "P.", 601, 1, kW, 600, drop(Reason::invalid_tcp_window), tcp_established},
             {C, "P.", 601, 1, kW, 400, kPass, tcp_established},  // ends exactly at the window's edge
             {S, ".", 1, 1001, 2000, 0, kPass, tcp_established},
             {C, "P.", 1001, 1, kW, 2000, kPass, tcp_established},
             {C, "P.", 3001, 1, kW, 1, drop(Reason::invalid_tcp_window), tcp_established},
             {S, ".", 1, 3001, 0, 0, kPass, tcp_established},     // zero window
             {C, ".", 3001, 1, kW, 1, kPass, tcp_established},    // a one-byte zero-window probe
             {C, ".", 3001, 1, kW, 2, drop(Reason::invalid_tcp_window), tcp_established},
         }},
        {"old duplicate ACKs: recent ones pass, ones older than the window do not",
         handshake({
             {S, "P.", 1, 1, kW, 60000, kPass, tcp_established},
             {C, ".", 1, 60001, kW, 0, kPass, tcp_established},
             {S, "P.", 60001, 1, kW, 60000, kPass, tcp_established},
             {C, ".", 1, 120001, kW, 0, kPass, tcp_established},
             {S, "P.", 120001, 1, kW, 60000, kPass, tcp_established},
             {C, ".", 1, 180001, kW, 0, kPass, tcp_established},
             {C, ".", 1, 180001, kW, 0, kPass, tcp_established},   // duplicate ACK
             {C, ".", 1, 120001, kW, 0, kPass, tcp_established},   // old, inside window + slack
             {C, ".", 1, 1, kW, 0, drop(Reason::invalid_tcp_window), tcp_established},       // too old
             {C, ".", 1, 180002, kW, 0, drop(Reason::invalid_tcp_window), tcp_established},  // unsent data
             {S, "P.", 120001, 1, kW, 60000, kPass, tcp_established},  // retransmission inside the window
             {S, "P.", 1, 1, kW, 60000, drop(Reason::invalid_tcp_window), tcp_established},  // far too old
         })},
        {"challenge ACK: a forged in-window RST passes, the server's ACK and the client carry on",
         handshake({
             {C, "P.", 1, 1, kW, 1000, kPass, tcp_established},
             {S, ".", 1, 1001, kW, 0, kPass, tcp_established},
             {C, "R", 1501, 0, 0, 0, kChallenged, tcp_established},    // the attacker's guess
             {S, ".", 1, 1001, kW, 0, kPass, tcp_established},        // the server's challenge ACK
             {C, "P.", 1001, 1, kW, 100, kPass, tcp_established},     // the real client ignores it
             {S, ".", 1, 1101, kW, 0, kPass, tcp_established},
         })},
        {"challenge ACK answered by a client that lost the connection: its exact RST closes",
         handshake({
             {C, "P.", 1, 1, kW, 1000, kPass, tcp_established},
             {S, ".", 1, 1001, kW, 0, kPass, tcp_established},
             {C, "R", 1501, 0, 0, 0, kChallenged, tcp_established},
             {S, ".", 1, 1001, kW, 0, kPass, tcp_established},
             {C, "R", 1001, 0, 0, 0, kPass, tcp_close},
         })},
        {"flag combinations no stack sends are invalid",
         handshake({
             {C, "", 1, 1, kW, 0, drop(Reason::invalid_tcp_state), tcp_established},      // NULL
             {C, "F", 1, 1, kW, 0, drop(Reason::invalid_tcp_state), tcp_established},     // FIN without ACK
             {C, "FPU", 1, 1, kW, 0, drop(Reason::invalid_tcp_state), tcp_established},   // Xmas
             {C, "SF", 1, 1, kW, 0, drop(Reason::invalid_tcp_state), tcp_established},
             {C, "SR", 1, 1, kW, 0, drop(Reason::invalid_tcp_state), tcp_established},
             {C, "RF.", 1, 1, kW, 0, drop(Reason::invalid_tcp_state), tcp_established},
             {C, "PU.", 1, 1, kW, 1, kPass, tcp_established},  // PSH and URG are fine
         })},
        {"a SYN after TIME_WAIT opens a new connection on the same ports",
         handshake({
             {C, "F.", 1, 1, kW, 0, kPass, tcp_fin_wait},
             {S, "F.", 1, 2, kW, 0, kPass, tcp_last_ack},
             {C, ".", 2, 2, kW, 0, kPass, tcp_time_wait},
             {C, "S.", 100000, 0, kW, 0, drop(Reason::invalid_tcp_state), tcp_time_wait},
             {C, "S", 100000, 0, kW, 0, kReopen, tcp_syn_sent},
             {S, "S.", 70000, 100001, kW, 0, kPass, tcp_syn_recv},
             {C, ".", 100001, 70001, kW, 0, kPass, tcp_established},
         })},
        {"a SYN after an RST opens a new connection",
         handshake({
             {C, "R", 1, 0, 0, 0, kPass, tcp_close},
             {C, "S", 100000, 0, kW, 0, kReopen, tcp_syn_sent},
         })},
        {"a SYN on a closing connection is invalid",
         handshake({
             {C, "F.", 1, 1, kW, 0, kPass, tcp_fin_wait},
             {C, "S", 100000, 0, kW, 0, drop(Reason::invalid_tcp_state), tcp_fin_wait},
         })},
    };
    return kCases;
}

struct Variant {
    bool v6;
    bool client_high;  // the client's address sorts after the server's (it is key side b)
    uint32_t client_isn, server_isn;

    std::string str() const {
        return fmt::format("{} client-{} isn {:#x}/{:#x}", v6 ? "IPv6" : "IPv4", client_high ? "high" : "low",
                           client_isn, server_isn);
    }
};

constexpr uint16_t kSegment = 10;
constexpr uint16_t kClientPort = 40000, kServerPort = 5432;

ParsedPacket segment_for(const Step& s, const Variant& v) {
    const IpAddr low = addr(v.v6 ? "2001:db8:10::11" : "198.18.10.11");
    const IpAddr high = addr(v.v6 ? "2001:db8:30::11" : "198.18.30.11");
    const IpAddr& client = v.client_high ? high : low;
    const IpAddr& server = v.client_high ? low : high;
    const bool from_client = s.dir == Dir::C;
    const uint32_t own_isn = from_client ? v.client_isn : v.server_isn;
    const uint32_t peer_isn = from_client ? v.server_isn : v.client_isn;
    const uint32_t seq = s.absolute ? s.seq : own_isn + s.seq;
    const std::string_view flags = s.flags;
    const uint32_t ack = flags.find('.') != std::string_view::npos ? peer_isn + s.ack : 0;
    return from_client ? tcp(client, kClientPort, server, kServerPort, flags, seq, ack, s.win, s.len, s.wscale)
                       : tcp(server, kServerPort, client, kClientPort, flags, seq, ack, s.win, s.len, s.wscale);
}

void run(const Case& c, const Variant& v) {
    ConnTrack ct(FlowTableConfig{.capacity = 16, .seed = 7});
    const FlowOrigin origin{.rule_index = 3, .generation = 1, .src_identity = 11, .dst_identity = 22};
    uint64_t now = 1'000'000'000;
    for (size_t i = 0; i < c.steps.size(); ++i) {
        const Step& s = c.steps[i];
        INFO(c.name << " [" << v.str() << "] step " << i + 1 << ": " << (s.dir == Dir::C ? "C " : "S ")
                    << '"' << s.flags << "\" seq " << s.seq << " ack " << s.ack << " len " << s.len);
        const ParsedPacket p = segment_for(s, v);
        now += 1'000'000;
        CtResult r = ct.track(p, kSegment, now);
        switch (s.outcome.want) {
        case Want::open:
        case Want::reopen:
            REQUIRE(r.action == CtAction::classify);
            r = ct.create(p, kSegment, origin, now);
            REQUIRE(r.action == CtAction::pass);
            REQUIRE(r.reason == Reason::rule);
            REQUIRE_FALSE(r.reply);
            break;
        case Want::pass:
            REQUIRE(r.action == CtAction::pass);
            REQUIRE(info(r.reason).counter == info(s.outcome.reason).counter);
            REQUIRE(r.reply == (s.dir == Dir::S));
            break;
        case Want::drop:
            REQUIRE(r.action == CtAction::drop);
            REQUIRE(info(r.reason).counter == info(s.outcome.reason).counter);
            break;
        }
        const FlowHandle h = ct.find(p, kSegment, now);
        REQUIRE(h != kNoFlow);
        REQUIRE(to_string(ct.table().entry(h).state) == to_string(s.after));
    }
}

}  // namespace

TEST_CASE("TCP tracking: packetdrill-style sequences", "[tcp]") {
    std::vector<Variant> variants;
    for (const bool v6 : {false, true}) {
        for (const bool client_high : {false, true}) {
            variants.push_back({v6, client_high, 1'000'000, 3'000'000'000u});
            variants.push_back({v6, client_high, 0xFFFFFFF0u, 0x7FFFFFF8u});  // both wrap (unsigned, signed)
        }
    }
    for (const Case& c : cases()) {
        for (const Variant& v : variants) {
            if (c.pinned_isn && v.client_isn != 1'000'000) continue;
            run(c, v);
        }
    }
}

TEST_CASE("TCP tracking: only a SYN opens a connection", "[tcp]") {
    ConnTrack ct(FlowTableConfig{.capacity = 16, .seed = 7});
    const IpAddr a = addr("198.18.10.11"), b = addr("198.18.30.11");
    struct Row {
        const char* flags;
        CtAction action;
        Reason reason;
    };
    const Row rows[] = {
        {"S", CtAction::classify, Reason::rule},
        {"S.", CtAction::drop, Reason::invalid_no_flow},
        {".", CtAction::drop, Reason::invalid_no_flow},
        {"P.", CtAction::drop, Reason::invalid_no_flow},
        {"F.", CtAction::drop, Reason::invalid_no_flow},
        {"R", CtAction::drop, Reason::invalid_no_flow},
        {"R.", CtAction::drop, Reason::invalid_no_flow},
        {"SF", CtAction::drop, Reason::invalid_no_flow},
        {"", CtAction::drop, Reason::invalid_no_flow},
    };
    uint16_t port = 40000;
    for (const Row& row : rows) {
        INFO("flags \"" << row.flags << '"');
        const ParsedPacket p = tcp(a, port++, b, 80, row.flags, 1000, 0, kW);
        const CtResult r = ct.track(p, 0, 1);
        CHECK(r.action == row.action);
        if (r.action == CtAction::drop) CHECK(r.reason == row.reason);
        // create() refuses what track() refused, and opens nothing.
        const CtResult c = ct.create(p, 0, FlowOrigin{}, 1);
        CHECK(c.action == (row.action == CtAction::classify ? CtAction::pass : CtAction::drop));
    }
    CHECK(ct.table().size() == 1);
}

TEST_CASE("TCP tracking: established state, assured flag and counters", "[tcp]") {
    ConnTrack ct(FlowTableConfig{.capacity = 16, .seed = 7});
    const IpAddr c = addr("198.18.30.11"), s = addr("198.18.10.11");  // the client is key side b
    const FlowOrigin origin{.rule_index = 4, .generation = 9, .src_identity = 100, .dst_identity = 200};
    REQUIRE(ct.track(tcp(c, 40000, s, 443, "S", 100, 0, kW), 0, 10).action == CtAction::classify);
    const CtResult opened = ct.create(tcp(c, 40000, s, 443, "S", 100, 0, kW), 0, origin, 10);
    REQUIRE(opened.action == CtAction::pass);
    const FlowEntry& e = ct.table().entry(opened.handle);
    CHECK(e.initiator_is_b());
    CHECK((e.flags & kFlowAssured) == 0);
    const FlowAttribution& a = ct.table().attribution(opened.handle);
    CHECK(a.rule_index == 4);
    CHECK(e.generation == 9);
    CHECK(a.identity[0] == 100);
    CHECK(a.identity[1] == 200);
    REQUIRE(ct.track(tcp(s, 443, c, 40000, "S.", 500, 101, kW), 0, 20).reply);
    CHECK((e.flags & kFlowSeenReply) != 0);
    CHECK((e.flags & kFlowAssured) == 0);
    REQUIRE(ct.track(tcp(c, 40000, s, 443, ".", 101, 501, kW), 0, 30).action == CtAction::pass);
    CHECK(e.state == FlowState::tcp_established);
    CHECK((e.flags & kFlowAssured) != 0);
    CHECK(e.packets[0] == 2);
    CHECK(e.packets[1] == 1);
    CHECK(e.bytes[0] == 80);
    CHECK(e.bytes[1] == 40);
    CHECK(e.last_seen == 30);
    // A dropped segment touches neither counters nor the timestamp.
    REQUIRE(ct.track(tcp(c, 40000, s, 443, "S", 100, 0, kW), 0, 40).action == CtAction::drop);
    CHECK(e.packets[0] == 2);
    CHECK(e.last_seen == 30);
}

TEST_CASE("TCP tracking: a SYN after TIME_WAIT opened by create() in the same burst", "[tcp]") {
    ConnTrack ct(FlowTableConfig{.capacity = 16, .seed = 7});
    const IpAddr c = addr("198.18.10.11"), s = addr("198.18.30.11");
    const FlowOrigin origin{.rule_index = 2, .generation = 8, .src_identity = 1, .dst_identity = 2};
    const ParsedPacket steps[] = {
        tcp(c, 40000, s, 80, "S", 100, 0, kW),    tcp(s, 80, c, 40000, "S.", 900, 101, kW),
        tcp(c, 40000, s, 80, ".", 101, 901, kW),  tcp(c, 40000, s, 80, "F.", 101, 901, kW),
        tcp(s, 80, c, 40000, "F.", 901, 102, kW), tcp(c, 40000, s, 80, ".", 102, 902, kW),
    };
    REQUIRE(ct.create(steps[0], 0, origin, 1).action == CtAction::pass);
    for (size_t i = 1; i < std::size(steps); ++i) REQUIRE(ct.track(steps[i], 0, 1).action == CtAction::pass);
    const ParsedPacket again = tcp(c, 40000, s, 80, "S", 77777, 0, kW);
    // The worker classified the burst before an earlier packet reached the old entry: create() is
    // handed the SYN while the TIME_WAIT entry still exists.
    const CtResult r = ct.create(again, 0, FlowOrigin{.rule_index = 5, .generation = 9}, 2);
    REQUIRE(r.action == CtAction::pass);
    CHECK(r.reason == Reason::rule);
    const FlowEntry& e = ct.table().entry(r.handle);
    CHECK(e.state == FlowState::tcp_syn_sent);
    CHECK(ct.table().attribution(r.handle).rule_index == 5);
    CHECK(e.generation == 9);
    CHECK(ct.table().size() == 1);
}
