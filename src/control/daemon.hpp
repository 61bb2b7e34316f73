// `tagwall --config FILE`: the appliance in the foreground (SPEC §2/§5/§6).
//
// The control thread (this process's main thread, the EAL's main lcore): reads the config and the
// policy (every error positioned, nothing started on error), starts the EAL with the arguments the
// config implies, opens the ports and launches the workers (dataplane/appliance.hpp), opens the control
// socket (control/socket_server.hpp), then loops until SIGINT or SIGTERM: drains the workers' event
// rings into the event log (JSON lines, control/event_log.hpp) and to `events --follow` clients,
// answers socket requests (control/commands.hpp), and on SIGHUP reloads the policy file (published by
// RCU; a file that does not load changes nothing and the errors go to stderr).  Then it stops the
// workers, drains what is left, prints a summary (per port, per rule, per reason), removes the socket
// and exits 0.
//
// Output contract (tests and scripts rely on it):
//   - a line starting with `tagwall: ready` on stdout once every port is started and the workers run;
//   - with `events_to_stdout`, one line per event on stdout (describe_event) as they are drained;
//   - the summary on stdout after the stop, starting with `tagwall: stopped`.
#pragma once

#include <string>
#include <vector>

namespace tagwall::control {

struct DaemonOptions {
    std::string config_path;
    std::vector<std::string> eal_extra;  // raw EAL arguments after `--`
    bool events_to_stdout = false;
    std::string engine = "trie";
};

// Runs the appliance until a stop signal.  Returns the process exit status (0 after a clean stop, 1
// when the config, the policy, the EAL or a port failed); prints its own errors on stderr.
int run_daemon(const DaemonOptions& options);

}  // namespace tagwall::control
