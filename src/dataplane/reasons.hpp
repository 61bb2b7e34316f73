// Every reason the dataplane gives for a verdict, in one list (STYLE convention 5).
//
// One X-macro row per reason makes the enum, the per-reason counter name, the word `tagwall-bench
// replay --verdicts` prints in its REASON column (SPEC §7: several fine-grained drop reasons print as
// one coarse word such as `malformed`) and a sentence for events and `tagwallctl stats`.
// Run side and build side alike: constexpr data, no allocation.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tagwall::dataplane {

// X(name, counter, verdict_word, description)
#define TAGWALL_REASONS(X)                                                                                    \
    /* decisions */                                                                                           \
    X(rule, "rule", "rule", "a policy rule decided (its id is reported instead of this word)")                \
    X(default_action, "default", "default", "no rule matched; the policy's default decided")                  \
    X(established, "established", "established", "part of a connection the policy allowed")                  \
    X(related, "related", "related", "an ICMP error about a connection the policy allowed")                  \
    X(rst_in_window, "rst_in_window", "established",                                                          \
      "an RST in the window but not exact: passed for the endpoint's challenge ACK (RFC 5961), state kept")  \
    X(revoked, "revoked", "revoked", "a connection the current policy no longer allows")                     \
    X(arp_nd, "arp_nd", "arp-nd", "ARP or IPv6 neighbour discovery, passed after SpoofGuard")                \
    /* where the packet belongs */                                                                            \
    X(unknown_segment, "unknown_segment", "unknown-segment", "the VLAN names no segment")                    \
    X(unsupported_ethertype, "unsupported_ethertype", "unsupported", "neither IPv4, IPv6 nor ARP")            \
    /* SpoofGuard */                                                                                          \
    X(spoofed_ip, "spoofed_ip", "spoofed", "source address not bound to an endpoint of this segment")        \
    X(spoofed_mac, "spoofed_mac", "spoofed", "source address bound, but to another MAC")                     \
    X(spoofed_arp, "spoofed_arp", "spoofed", "ARP sender not bound to an endpoint of this segment")          \
    X(spoofed_nd, "spoofed_nd", "spoofed", "neighbour discovery for an address not bound here")              \
    /* connection tracking */                                                                                 \
    X(invalid_no_flow, "invalid_no_flow", "invalid", "a TCP segment other than SYN with no connection")      \
    X(invalid_tcp_state, "invalid_tcp_state", "invalid", "TCP flags not acceptable in the connection's state")\
    X(invalid_tcp_window, "invalid_tcp_window", "invalid", "TCP sequence or ack outside the window")         \
    X(rst_out_of_window, "rst_out_of_window", "invalid", "an RST outside the window: ignored, not obeyed")    \
    X(related_no_flow, "related_no_flow", "invalid", "an ICMP error whose embedded header matches no flow")   \
    X(invalid_icmp_no_flow, "invalid_icmp_no_flow", "invalid", "an ICMP echo reply with no echo request")     \
    X(flow_table_full, "flow_table_full", "flow-table-full", "no room for a new connection")                  \
    /* fragments */                                                                                           \
    X(fragment_tiny, "fragment_tiny", "malformed", "a first fragment too short for the L4 header (RFC 1858)")\
    X(fragment_overlap, "fragment_overlap", "malformed", "a fragment overlapping another (RFC 1858/5722)")    \
    X(fragment_no_first, "fragment_no_first", "invalid", "a fragment whose first fragment was not allowed")  \
    X(fragment_too_many, "fragment_too_many", "malformed", "more fragments in one datagram than allowed")    \
    X(fragment_bad_length, "fragment_bad_length", "malformed",                                                \
      "fragment lengths that do not add up: empty, not 8-aligned, past 65535 or past the datagram's end")   \
    X(fragment_table_full, "fragment_table_full", "invalid", "no room to track another fragmented datagram") \
    X(ipv6_l4_not_in_first, "ipv6_l4_not_in_first", "malformed",                                              \
      "IPv6 first fragment without the whole header chain (RFC 7112)")                                        \
    /* malformed: no length field is trusted */                                                               \
    X(truncated_ethernet, "truncated_ethernet", "malformed", "shorter than an Ethernet header")               \
    X(truncated_vlan, "truncated_vlan", "malformed", "802.1Q tag cut short")                                  \
    X(qinq, "qinq", "malformed", "more than one VLAN tag (QinQ is not supported)")                           \
    X(truncated_arp, "truncated_arp", "malformed", "ARP shorter than its header, or not Ethernet/IPv4")       \
    X(truncated_ipv4, "truncated_ipv4", "malformed", "shorter than an IPv4 header")                           \
    X(bad_ipv4_version, "bad_ipv4_version", "malformed", "IPv4 ethertype with another IP version")            \
    X(bad_ipv4_ihl, "bad_ipv4_ihl", "malformed", "IPv4 header length below 5 words or past the packet")      \
    X(bad_ipv4_length, "bad_ipv4_length", "malformed", "IPv4 total length below the header or past the frame")\
    X(truncated_ipv6, "truncated_ipv6", "malformed", "shorter than an IPv6 header")                           \
    X(bad_ipv6_version, "bad_ipv6_version", "malformed", "IPv6 ethertype with another IP version")            \
    X(bad_ipv6_length, "bad_ipv6_length", "malformed", "IPv6 payload length past the frame")                 \
    X(truncated_ipv6_ext, "truncated_ipv6_ext", "malformed", "an IPv6 extension header cut short")           \
    X(ipv6_ext_chain_too_long, "ipv6_ext_chain_too_long", "malformed", "more IPv6 extension headers than allowed")\
    X(ipv6_fragment_repeated, "ipv6_fragment_repeated", "malformed", "two fragment headers in one IPv6 chain")  \
    X(bad_ip_proto, "bad_ip_proto", "malformed", "IP protocol 0 (hop-by-hop) outside its place, or reserved") \
    X(truncated_tcp, "truncated_tcp", "malformed", "shorter than a TCP header")                               \
    X(bad_tcp_data_offset, "bad_tcp_data_offset", "malformed", "TCP data offset below 5 or past the segment") \
    X(truncated_udp, "truncated_udp", "malformed", "shorter than a UDP header")                               \
    X(bad_udp_length, "bad_udp_length", "malformed", "UDP length below 8 or past the datagram")              \
    X(truncated_icmp, "truncated_icmp", "malformed", "shorter than an ICMP header")                           \
    X(truncated_sctp, "truncated_sctp", "malformed", "shorter than an SCTP common header")                    \
    /* actions */                                                                                             \
    X(reject_rate_limited, "reject_rate_limited", "reject-limited", "reject answer not sent: over the rate limit")

enum class Reason : uint8_t {
#define TAGWALL_REASON_ENUM(name, counter, word, text) name,
    TAGWALL_REASONS(TAGWALL_REASON_ENUM)
#undef TAGWALL_REASON_ENUM
};

struct ReasonInfo {
    std::string_view counter;  // counter name: stats, JSON
    std::string_view word;     // replay --verdicts REASON column
    std::string_view text;     // for humans
};

inline constexpr std::array kReasons{
#define TAGWALL_REASON_INFO(name, counter, word, text) ReasonInfo{counter, word, text},
    TAGWALL_REASONS(TAGWALL_REASON_INFO)
#undef TAGWALL_REASON_INFO
};
inline constexpr size_t kReasonCount = kReasons.size();

constexpr const ReasonInfo& info(Reason r) noexcept { return kReasons[static_cast<size_t>(r)]; }

}  // namespace tagwall::dataplane
