// The classifier's view of a connection: the key of its first packet, rebuilt from its entry.
// Used where a connection is judged again without a packet in hand: re-verification after a policy
// change (pipeline.cpp) and `policy load --dry-run` (control/commands.cpp).  Run side and control side
// alike: noexcept, no allocation.
#pragma once

#include "dataplane/flow_table.hpp"
#include "rules/ruleset.hpp"

namespace tagwall::dataplane {

// Initiator -> responder.  ICMP entries exist only for echo exchanges, so their key is an echo request.
inline rules::PacketKey initiator_key(const FlowEntry& e) noexcept {
    const bool b_opened = e.initiator_is_b();
    const rules::Family fam = e.key.family;
    rules::PacketKey key;
    key.vlan = e.key.vlan;
    key.proto = e.key.proto;
    key.src.family = key.dst.family = fam;
    key.src.bytes = b_opened ? e.key.addr_b : e.key.addr_a;
    key.dst.bytes = b_opened ? e.key.addr_a : e.key.addr_b;
    const bool icmp = (fam == rules::Family::v4 && key.proto == 1) || (fam == rules::Family::v6 && key.proto == 58);
    if (icmp) {
        key.icmp_type = fam == rules::Family::v4 ? 8 : 128;
    } else {
        key.sport = b_opened ? e.key.port_b : e.key.port_a;
        key.dport = b_opened ? e.key.port_a : e.key.port_b;
    }
    return key;
}

}  // namespace tagwall::dataplane
