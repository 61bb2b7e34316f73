// TCP connection tracking: the state machine and sequence/window checks of one connection.
//
// Concurrency contract: run side, owning worker only (through ConnTrack): noexcept, no allocation.  The
// functions touch one FlowEntry and nothing else.
//
// The model is Guido van Rooij's "Real Stateful TCP Packet Filtering in IP Filter", as pf and
// nf_conntrack apply it.  For each direction the entry keeps (flow_table.hpp):
//   end     highest sequence number the sender has sent, + 1 (SYN and FIN count one each)
//   maxend  highest sequence number the receiver has let it reach: max(ack + max(window, 1)) over the
//           receiver's segments (the 1 lets a zero-window probe through)
//   maxwin  largest window the sender advertised (scaled: maxwin << wscale)
//   maxack  highest acknowledgement the sender sent
// A segment from S to R, seg_end = seq + payload (+1 for SYN, +1 for FIN), must satisfy
//   I    seg_end <= S.maxend                          no data beyond what R offered
//   II   seg_end >= S.end - R.maxwin                  no older than R's largest window
//   III  ack     <= R.end                             no acknowledgement of data R never sent
//   IV   ack     >= R.end - (S.maxwin + kAckSlack)    no acknowledgement older than S's window, plus
//                                                     the usual slack of one unscaled window and an MTU
// (III and IV when ACK is set), in 32-bit sequence space; else `invalid_tcp_window`, dropped, state kept.
// Window scaling (RFC 7323) applies only when both SYNs carried the option; the window field of a SYN
// is never scaled.  Flag combinations other than SYN, SYN+ACK, ACK, FIN+ACK, RST, RST+ACK (PSH, URG,
// ECE, CWR aside) are `invalid_tcp_state`: NULL, bare FIN, SYN+FIN, SYN+RST, ... .
//
// States (FlowState::tcp_*; one state per connection, as in nf_conntrack):
//   SYN from the initiator opens SYN_SENT; the responder's SYN+ACK acknowledging it exactly moves to
//   SYN_RECV; the initiator's ACK of the SYN+ACK to ESTABLISHED (the entry becomes assured).  Then the
//   FINs decide: one FIN -> FIN_WAIT, acknowledged -> CLOSE_WAIT; both -> LAST_ACK, both
//   acknowledged -> TIME_WAIT.  An accepted RST -> CLOSE.
//
// Choices a reviewer should find here:
//   - No mid-stream pickup: an entry starts with a SYN (ConnTrack: `invalid_no_flow` otherwise).
//   - A retransmitted SYN in SYN_SENT passes and restarts the initiator's tracking (with a new ISN too:
//     the client gave up and retried on the same port).  A retransmitted SYN in SYN_RECV passes when
//     its sequence number is the original one, and a retransmitted SYN+ACK (its sequence number is the
//     responder's ISN, its ack within the window) passes in SYN_RECV and later: the initiator's ACK
//     may have been lost after tagwall, and the responder must be able to repeat itself.
//   - Simultaneous open (a SYN without ACK from the responder in SYN_SENT) is not supported: it is
//     `invalid_tcp_state`.  Real stacks almost never do it, and accepting it means accepting a SYN
//     from the side the policy did not allow to open the connection.
//   - A SYN on a synchronized connection (SYN_RECV .. LAST_ACK) is `invalid_tcp_state`: dropped, state
//     kept.  nf_conntrack lets it through without changing state ("ignore"), and rebuilds the entry if
//     the answer proves the old connection gone; pf drops it (it fails the window check) unless both
//     sides are closing, when it removes the state and evaluates the rules again.  We follow pf: a
//     forged SYN must neither tear down nor re-seed tracking, and passing it would let a third party
//     provoke the RFC 5961 challenge ACK at will.  The cost is the rebooted-client case: its new SYN on
//     the old port is dropped until the old entry ends (the server's next segment draws an exact RST
//     from the client, which closes it).  In TIME_WAIT or CLOSE a SYN starts a new connection (port
//     reuse): the entry is erased and the policy is asked again (L4Action::reopen).
//   - RST (RFC 5961 §3): an RST whose sequence number is exactly the one its receiver expects (the
//     sender's end, or the highest ack its receiver sent) closes the connection (CLOSE, a short
//     timeout).  An RST inside the window but not exact is passed and changes nothing (counted as
//     `rst_in_window`, whose verdict word is `established`): the endpoint answers it with a challenge
//     ACK, and only the real peer can answer that with an exact RST.  This is nf_conntrack's choice
//     (it keeps the old state "to allow a possible challenge ACK"); dropping it instead would also
//     be safe against a blind attacker, but would hide from the endpoint an RST its own RFC 5961
//     logic is entitled to see.
//     Tearing the entry down here would let any in-window guess kill the connection in the firewall
//     while the endpoints keep it.  An RST outside the window is `rst_out_of_window`: dropped, counted,
//     not obeyed.  In SYN_SENT an RST from the responder counts only when it acknowledges the SYN
//     (connection refused), and one from the initiator only at its exact sequence number.
#pragma once

#include <cstdint>
#include <type_traits>

#include "dataplane/conntrack.hpp"

namespace tagwall::dataplane {

inline constexpr uint32_t kTcpAckSlack = 65535 + 1500;  // one unscaled maximum window and an MTU
inline constexpr uint8_t kTcpMaxWindowScale = 14;       // RFC 7323 §2.3

// FlowEntry::flags bits owned by the TCP tracker, per direction (0 original, 1 reply).
constexpr uint8_t tcp_fin_sent_flag(int dir) noexcept { return dir == 0 ? 0x08 : 0x10; }
constexpr uint8_t tcp_fin_acked_flag(int dir) noexcept { return dir == 0 ? 0x20 : 0x40; }

// The window checks of the header comment, on the entry's per-direction fields; `s` is the direction
// the segment travels (0 original, 1 reply), `r` the other.  Inline: every established packet runs them.
// `Segment` is a ParsedPacket, or the fast path's AckSegment (packet.hpp): the TCP fields they share.
namespace tcp_window {

inline constexpr uint8_t kTcpCoreFlags = kTcpSyn | kTcpAck | kTcpRst | kTcpFin;
inline constexpr uint8_t kTcpFinFlags =
    tcp_fin_sent_flag(0) | tcp_fin_sent_flag(1) | tcp_fin_acked_flag(0) | tcp_fin_acked_flag(1);

// 32-bit sequence space comparisons (RFC 1982 style).
constexpr bool seq_lt(uint32_t a, uint32_t b) noexcept { return static_cast<int32_t>(a - b) < 0; }
constexpr bool seq_le(uint32_t a, uint32_t b) noexcept { return static_cast<int32_t>(a - b) <= 0; }

// An AckSegment's only core flag is ACK by construction (parse_ack_segment): the flag tests below fold
// away for it.
template <class Segment>
inline constexpr bool kAckOnly = std::is_same_v<Segment, AckSegment>;

template <class Segment>
inline uint32_t segment_end(const Segment& p) noexcept {
    if constexpr (kAckOnly<Segment>) return p.tcp_seq + p.payload_length;
    return p.tcp_seq + p.payload_length + ((p.tcp_flags & kTcpSyn) ? 1u : 0u) + ((p.tcp_flags & kTcpFin) ? 1u : 0u);
}

// Whether the responder's SYN+ACK has been seen (it settles the window scales: tcp_wscale[1] holds
// kNoWindowScale until then, in SYN_SENT and in a CLOSE reached from it).
inline bool responder_known(const FlowEntry& e) noexcept { return e.tcp_wscale[1] != kNoWindowScale; }

// Largest window direction `d` advertised, in bytes (at least 1).  Valid once responder_known().
inline uint32_t max_window(const FlowEntry& e, int d) noexcept {
    const uint32_t w = uint32_t{e.tcp_maxwin[d]} << e.tcp_wscale[d];
    return w > 1 ? w : 1;
}

template <class Segment>
inline bool seq_in_window(const FlowEntry& e, const Segment& p, int s, int r) noexcept {
    const uint32_t end = segment_end(p);
    return seq_le(end, e.tcp_maxend[s])                      // I
           && seq_le(e.tcp_end[s] - max_window(e, r), end);  // II
}

template <class Segment>
inline bool ack_in_window(const FlowEntry& e, const Segment& p, int s, int r) noexcept {
    if (!kAckOnly<Segment> && (p.tcp_flags & kTcpAck) == 0) return true;
    return seq_le(p.tcp_ack, e.tcp_end[r])                                          // III
           && seq_le(e.tcp_end[r] - (max_window(e, s) + kTcpAckSlack), p.tcp_ack);  // IV
}

// Records what an accepted segment from s tells about both directions.
template <class Segment>
inline void advance(FlowEntry& e, const Segment& p, int s, int r) noexcept {
    const uint32_t end = segment_end(p);
    if (seq_lt(e.tcp_end[s], end)) e.tcp_end[s] = end;
    if (p.tcp_window > e.tcp_maxwin[s]) e.tcp_maxwin[s] = p.tcp_window;
    if (kAckOnly<Segment> || (p.tcp_flags & kTcpAck)) {
        if (seq_lt(e.tcp_maxack[s], p.tcp_ack)) e.tcp_maxack[s] = p.tcp_ack;
        const uint32_t shifted = uint32_t{p.tcp_window} << e.tcp_wscale[s];
        const uint32_t right = p.tcp_ack + (shifted > 1 ? shifted : 1);
        if (seq_lt(e.tcp_maxend[r], right)) e.tcp_maxend[r] = right;
        if ((e.flags & tcp_fin_sent_flag(r)) && p.tcp_ack == e.tcp_end[r]) e.flags |= tcp_fin_acked_flag(r);
    }
    if (!kAckOnly<Segment> && (p.tcp_flags & kTcpFin)) e.flags |= tcp_fin_sent_flag(s);
}

}  // namespace tcp_window

// The commonest segment: an ACK (no SYN, RST or FIN; PSH and the rest aside) on an ESTABLISHED
// connection whose ends have sent no FIN.  tcp_update() decides it with tcp_established_ack() alone,
// and so does the established fast path (ConnTrack::pass_established); the state cannot change.
template <class Segment>
inline bool tcp_is_established_ack(const FlowEntry& e, const Segment& p) noexcept {
    using namespace tcp_window;
    return e.state == FlowState::tcp_established && (p.tcp_flags & kTcpCoreFlags) == kTcpAck &&
           responder_known(e) && (e.flags & kTcpFinFlags) == 0;
}
// Its decision: `established` with the window advanced, or `invalid_tcp_window` with the entry as it was.
template <class Segment>
inline L4Update tcp_established_ack(FlowEntry& e, const Segment& p, bool reply) noexcept {
    using namespace tcp_window;
    const int s = reply ? 1 : 0, r = 1 - s;
    if (!seq_in_window(e, p, s, r) || !ack_in_window(e, p, s, r))
        return {L4Action::drop, Reason::invalid_tcp_window};
    advance(e, p, s, r);
    return {L4Action::pass, Reason::established};
}

// A pure SYN (no ACK, RST or FIN) may open a connection; anything else without an entry is
// `invalid_no_flow`.
L4Update tcp_on_miss(const ParsedPacket& p) noexcept;
// The entry of a connection the SYN `p` opened (state SYN_SENT).
void tcp_open(FlowEntry& e, const ParsedPacket& p) noexcept;
// A segment of an existing connection.
L4Update tcp_update(FlowEntry& e, const ParsedPacket& p, bool reply) noexcept;
// A fragmented segment from direction `dir` (0 original, 1 reply) reaches `end` (a later fragment
// passed: fragments.hpp, "TCP segments in fragments"): what the sender has sent now reaches that far,
// so that the receiver's acknowledgement of the whole segment is inside the window (check III).
void tcp_extend_segment(FlowEntry& e, int dir, uint32_t end) noexcept;

inline constexpr L4Tracker kTcpTracker{tcp_on_miss, tcp_open, tcp_update};

}  // namespace tagwall::dataplane
