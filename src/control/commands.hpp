// The daemon's commands (SPEC §6): one JSON request in, one JSON response out.
//
// Control side only: every handler runs on the control thread, between its event drains.  Requests
// are {"cmd": NAME, ...}; responses are {"ok": true, "result": {...}} or {"ok": false, "error": MESSAGE,
// "errors": [positioned diagnostics]}.  tagwallctl (src/tools/tagwallctl_main.cpp) is the client; the
// result shapes are documented there and in docs/operations.md.
//
// What reads live worker state: stats, ports, rules and flows read counters and flow tables while the
// workers run (see appliance.hpp: values may be a packet stale).  What changes it goes through the
// workers: a policy load or an endpoint (un)tag publishes a new generation by RCU and returns when
// every worker runs it; `flows flush` asks each worker to empty its own table.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "dataplane/appliance.hpp"

namespace tagwall::control {

class SocketServer;

struct CommandContext {
    dataplane::Appliance& appliance;
    uint64_t started_wall_ns = 0;   // CLOCK_REALTIME when the daemon became ready
    uint64_t wall_origin_ns = 0;    // CLOCK_REALTIME at which the workers' clock read 0
    bool hugepages = false;
    std::string forwarding;
    const SocketServer* socket = nullptr;  // for its counters in status and stats (none: no "control")
};

// Handles one request (never throws: errors become {"ok": false, ...}).  `events --follow` is answered
// with {"ok": true, "result": {"following": true}}; the caller then streams events to that client.
nlohmann::json handle_command(const nlohmann::json& request, CommandContext& ctx);

// Loads, compiles and publishes a policy file as the next generation (SIGHUP and `policy load`).
// On failure returns the response to send (ok: false, with the diagnostics); nothing changes then.
nlohmann::json load_policy(CommandContext& ctx, const std::string& file, bool dry_run);

}  // namespace tagwall::control
