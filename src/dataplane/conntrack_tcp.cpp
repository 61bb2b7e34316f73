// TCP connection tracking (run side, owning worker): the design is in conntrack_tcp.hpp.
#include "dataplane/conntrack_tcp.hpp"

#include <algorithm>

namespace tagwall::dataplane {
namespace {

using namespace tcp_window;

constexpr L4Update pass() noexcept { return {L4Action::pass, Reason::established}; }
constexpr L4Update drop(Reason r) noexcept { return {L4Action::drop, r}; }

uint8_t core_flags(const ParsedPacket& p) noexcept { return p.tcp_flags & kTcpCoreFlags; }

bool flags_valid(uint8_t core) noexcept {
    switch (core) {
    case kTcpSyn:
    case kTcpSyn | kTcpAck:
    case kTcpAck:
    case kTcpFin | kTcpAck:
    case kTcpRst:
    case kTcpRst | kTcpAck: return true;
    default: return false;
    }
}

// A window of `bytes` in units of 2^scale, rounded up (what a window field with that scale can say).
uint16_t window_units(uint32_t bytes, uint8_t scale) noexcept {
    const uint32_t units = (bytes + (1u << scale) - 1) >> scale;
    return static_cast<uint16_t>(std::min<uint32_t>(units, 0xFFFF));
}

// The SYN+ACK that answers the initiator's SYN: the responder's side starts, the scales are settled.
void open_responder(FlowEntry& e, const ParsedPacket& p) noexcept {
    const bool scaled = e.tcp_wscale[0] != kNoWindowScale && p.tcp_wscale != kNoWindowScale;
    const uint8_t scale0 = scaled ? std::min(e.tcp_wscale[0], kTcpMaxWindowScale) : 0;
    const uint8_t scale1 = scaled ? std::min(p.tcp_wscale, kTcpMaxWindowScale) : 0;
    const uint32_t syn_window0 = e.tcp_maxwin[0];  // the SYN's window: bytes, never scaled
    const uint32_t syn_window1 = p.tcp_window;
    e.tcp_end[1] = segment_end(p);
    e.tcp_maxack[1] = p.tcp_ack;
    e.tcp_maxack[0] = e.tcp_end[1];  // what the initiator is about to acknowledge
    e.tcp_wscale = {scale0, scale1};
    e.tcp_maxwin = {window_units(syn_window0, scale0), window_units(syn_window1, scale1)};
    e.tcp_maxend[0] = p.tcp_ack + std::max<uint32_t>(syn_window1, 1);
    e.tcp_maxend[1] = e.tcp_end[1] + std::max<uint32_t>(syn_window0, 1);
    e.state = FlowState::tcp_syn_recv;
    e.flags |= kFlowSeenReply;
}

L4Update in_syn_sent(FlowEntry& e, const ParsedPacket& p, bool reply) noexcept {
    const uint8_t f = core_flags(p);
    if (!reply) {
        if (f == kTcpSyn) {  // retransmitted (or retried with a new ISN): start over from it
            tcp_open(e, p);
            return pass();
        }
        if (f & kTcpRst) {
            if (p.tcp_seq != e.tcp_end[0]) return drop(Reason::rst_out_of_window);
            e.state = FlowState::tcp_close;
            return pass();
        }
        return drop(Reason::invalid_tcp_state);  // nothing but a SYN before the SYN+ACK
    }
    if (f == (kTcpSyn | kTcpAck)) {
        if (p.tcp_ack != e.tcp_end[0]) return drop(Reason::invalid_tcp_window);
        open_responder(e, p);
        return pass();
    }
    if (f & kTcpRst) {  // connection refused: acceptable only when it acknowledges the SYN
        if ((f & kTcpAck) == 0 || p.tcp_ack != e.tcp_end[0]) return drop(Reason::rst_out_of_window);
        e.state = FlowState::tcp_close;
        return pass();
    }
    return drop(Reason::invalid_tcp_state);  // a bare SYN (simultaneous open: unsupported), or data
}

// A SYN or SYN+ACK once the responder has answered (SYN_RECV and later).
L4Update syn_when_synchronized(FlowEntry& e, const ParsedPacket& p, int s, int r) noexcept {
    const uint8_t f = core_flags(p);
    if (f == kTcpSyn && (e.state == FlowState::tcp_time_wait || e.state == FlowState::tcp_close))
        return {L4Action::reopen, Reason::established};
    if (f == kTcpSyn && s == 0 && e.state == FlowState::tcp_syn_recv && segment_end(p) == e.tcp_end[0])
        return pass();  // the initiator repeats its SYN: our SYN+ACK has not reached it yet
    if (f == (kTcpSyn | kTcpAck) && s == 1 && segment_end(p) == e.tcp_end[1] && ack_in_window(e, p, s, r))
        return pass();  // the responder repeats its SYN+ACK: the initiator's ACK has not reached it
    return drop(Reason::invalid_tcp_state);
}

L4Update on_rst(FlowEntry& e, const ParsedPacket& p, int s, int r) noexcept {
    if (p.tcp_seq == e.tcp_end[s] || p.tcp_seq == e.tcp_maxack[r]) {
        e.state = FlowState::tcp_close;
        return pass();
    }
    // In the window but not exact: let the endpoint send its challenge ACK; keep the state.
    if (seq_in_window(e, p, s, r)) return {L4Action::pass, Reason::rst_in_window};
    return drop(Reason::rst_out_of_window);
}

// The state of a synchronized connection, from its FIN bits.
FlowState closing_state(uint8_t flags) noexcept {
    const bool fin0 = flags & tcp_fin_sent_flag(0), fin1 = flags & tcp_fin_sent_flag(1);
    const bool acked0 = flags & tcp_fin_acked_flag(0), acked1 = flags & tcp_fin_acked_flag(1);
    if (!fin0 && !fin1) return FlowState::tcp_established;
    if (fin0 && fin1) return acked0 && acked1 ? FlowState::tcp_time_wait : FlowState::tcp_last_ack;
    return (fin0 ? acked0 : acked1) ? FlowState::tcp_close_wait : FlowState::tcp_fin_wait;
}

}  // namespace

void tcp_extend_segment(FlowEntry& e, int dir, uint32_t end) noexcept {
    if (seq_lt(e.tcp_end[dir], end)) e.tcp_end[dir] = end;
}

L4Update tcp_on_miss(const ParsedPacket& p) noexcept {
    return core_flags(p) == kTcpSyn ? L4Update{L4Action::classify, Reason::established}
                                    : drop(Reason::invalid_no_flow);
}

void tcp_open(FlowEntry& e, const ParsedPacket& p) noexcept {
    e.state = FlowState::tcp_syn_sent;
    e.tcp_end = {segment_end(p), 0};
    e.tcp_maxend = {e.tcp_end[0], 0};  // nothing beyond the SYN until the responder offers a window
    e.tcp_maxack = {0, e.tcp_end[0]};  // what the responder is about to acknowledge
    e.tcp_maxwin = {p.tcp_window, 0};  // bytes until the SYN+ACK settles the scales
    e.tcp_wscale = {p.tcp_wscale, kNoWindowScale};
    e.flags &= static_cast<uint8_t>(~(tcp_fin_sent_flag(0) | tcp_fin_sent_flag(1) | tcp_fin_acked_flag(0) |
                                      tcp_fin_acked_flag(1)));
}

L4Update tcp_update(FlowEntry& e, const ParsedPacket& p, bool reply) noexcept {
    const uint8_t f = core_flags(p);
    // Fast path, the same decisions as the general one below for its commonest case (conntrack_tcp.hpp).
    if (tcp_is_established_ack(e, p)) [[likely]]
        return tcp_established_ack(e, p, reply);
    if (!flags_valid(f)) return drop(Reason::invalid_tcp_state);
    if (e.state == FlowState::tcp_syn_sent) return in_syn_sent(e, p, reply);
    // Reset before the SYN+ACK (refused or aborted): no window was ever agreed, so only a new SYN
    // (port reuse) means anything.
    if (!responder_known(e)) return f == kTcpSyn ? L4Update{L4Action::reopen, Reason::established}
                                                 : drop(Reason::invalid_tcp_state);
    const int s = reply ? 1 : 0, r = 1 - s;
    if (f & kTcpSyn) return syn_when_synchronized(e, p, s, r);
    if (f & kTcpRst) return on_rst(e, p, s, r);
    if (!seq_in_window(e, p, s, r) || !ack_in_window(e, p, s, r)) return drop(Reason::invalid_tcp_window);
    advance(e, p, s, r);
    switch (e.state) {
    case FlowState::tcp_close: break;  // after an RST: stragglers pass, the state stays
    case FlowState::tcp_syn_recv:
        // The handshake completes when the initiator acknowledges the SYN+ACK.
        if (s == 0 && (f & kTcpAck) && p.tcp_ack == e.tcp_end[1]) {
            e.flags |= kFlowAssured;
            e.state = closing_state(e.flags);
        }
        break;
    default: e.state = closing_state(e.flags); break;
    }
    return pass();
}

}  // namespace tagwall::dataplane
